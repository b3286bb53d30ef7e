/* A user's exposure hash decoded in C: feature_store/codecs.py's ``unpack_exposure`` over every
 * field of an HGETALL reply (the Python reference; tests compare the two on every codec, tag
 * score and bad value).
 *
 * decode(raw, state_type) -> [state_type(rumor_id, exposures, first_ts, last_ts, action, mask,
 * logits, tag_score), ...] in the dict's order. Codec 1: <BIIIBB (15 bytes); codec 2: <BIIIBBB
 * then four float32 option logits (32 bytes), the first ``k`` of them kept; either may end with
 * one tag-score byte q (the score q / 255; 1.0 without it). Any other value: ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define V1_SIZE 15
#define V2_SIZE 32
#define SLOTS 4
#define STEPS 255.0

static unsigned int u32(const unsigned char *p) {
    return (unsigned int)p[0] | (unsigned int)p[1] << 8 | (unsigned int)p[2] << 16
           | (unsigned int)p[3] << 24;
}

static double f32(const unsigned char *p) {
    unsigned int bits = u32(p);
    float f;
    memcpy(&f, &bits, 4);
    return (double)f;
}

static PyObject *empty_logits;

/* One value as a new state_type instance, or NULL (ValueError for an unknown encoding). */
static PyObject *state(PyTypeObject *type, PyObject *rumor, const unsigned char *p,
                       Py_ssize_t n) {
    int v2 = (n == V2_SIZE || n == V2_SIZE + 1) && p[0] == 2;
    int v1 = (n == V1_SIZE || n == V1_SIZE + 1) && p[0] == 1;
    if (!v1 && !v2) {
        PyErr_Format(PyExc_ValueError, "unknown exposure encoding for rumor %R", rumor);
        return NULL;
    }
    Py_ssize_t size = v2 ? V2_SIZE : V1_SIZE;
    PyObject *logits;
    if (v2) {
        Py_ssize_t k = p[15] < SLOTS ? p[15] : SLOTS;
        logits = PyTuple_New(k);
        if (logits == NULL) return NULL;
        for (Py_ssize_t j = 0; j < k; j++) {
            PyObject *f = PyFloat_FromDouble(f32(p + 16 + 4 * j));
            if (f == NULL) {
                Py_DECREF(logits);
                return NULL;
            }
            PyTuple_SET_ITEM(logits, j, f);
        }
    } else {
        logits = Py_NewRef(empty_logits);
    }
    double tag = n > size ? (double)p[size] / STEPS : 1.0;
    PyObject *items[8] = {
        Py_NewRef(rumor),
        PyLong_FromUnsignedLong(u32(p + 1)),
        PyLong_FromUnsignedLong(u32(p + 5)),
        PyLong_FromUnsignedLong(u32(p + 9)),
        PyLong_FromLong(p[13]),
        PyLong_FromLong(p[14]),
        logits,
        PyFloat_FromDouble(tag),
    };
    PyObject *out = type->tp_alloc(type, 8);
    for (int j = 0; j < 8; j++) {
        if (items[j] == NULL || out == NULL) {
            for (int m = 0; m < 8; m++) Py_XDECREF(items[m]);
            Py_XDECREF(out);
            return NULL;
        }
    }
    for (int j = 0; j < 8; j++) PyTuple_SET_ITEM(out, j, items[j]);
    return out;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    PyObject *raw, *type;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!", &PyDict_Type, &raw, &PyType_Type, &type)) return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "state_type must be a tuple type");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(raw, &pos, &key, &value)) {
        if (!PyBytes_Check(key) || !PyBytes_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "exposure hash fields and values must be bytes");
            goto fail;
        }
        PyObject *rumor = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key),
                                               "strict");
        if (rumor == NULL) goto fail;
        PyObject *s = state((PyTypeObject *)type, rumor,
                            (const unsigned char *)PyBytes_AS_STRING(value),
                            PyBytes_GET_SIZE(value));
        Py_DECREF(rumor);
        if (s == NULL) goto fail;
        int err = PyList_Append(out, s);
        Py_DECREF(s);
        if (err < 0) goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, "A user's exposure hash as states (see codecs.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_expdecode",
                                    "Exposure hashes decoded in C (feature_store/codecs.py).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__expdecode(void) {
    empty_logits = PyTuple_New(0);
    if (empty_logits == NULL) return NULL;
    return PyModule_Create(&module);
}
