/* The id prefilter's row scan in one pass (see offline/idfilter.py for the definition).
 *
 * numpy needs about fifteen passes over a batch to key, hash and look up every id; this loop
 * does it in one, reading the Arrow offsets, validity and data buffers in place, and writes the
 * numbers of the candidate rows straight away (so no mask has to be scanned again). It runs
 * without the GIL, so the join's worker threads scan batches at once.
 *
 * Built as an optional extension: when it is missing, idfilter.py falls back to numpy, and the
 * tests check that both give the same rows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MULTIPLIER 0x9E3779B97F4A7C15ULL
#define MULTIPLIER2 0xC2B2AE3D27D4EB4FULL

/* Little-endian uint64 from 8 possibly unaligned bytes. */
static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline int64_t offset_at(const uint8_t *offsets, int width, Py_ssize_t i) {
    if (width == 4) {
        int32_t v;
        memcpy(&v, offsets + 4 * i, 4);
        return v;
    }
    int64_t v;
    memcpy(&v, offsets + 8 * i, 8);
    return v;
}

/* Whether the bit of ``bucket`` is set in the filter's bitset. */
static inline int occupied(const uint8_t *table, Py_ssize_t table_len, uint64_t bucket) {
    if ((Py_ssize_t)(bucket >> 3) >= table_len) return 1;
    return (table[bucket >> 3] >> (bucket & 7)) & 1;
}

/* Whether row ``i`` may be a member: unkeyed rows always are; keyed rows when the bits of both
 * their buckets are set (the top ``64 - shift`` bits of the key times each multiplier). */
static inline int is_candidate(const uint8_t *validity, Py_ssize_t bit, int64_t start, int64_t end,
                               const uint8_t *data, Py_ssize_t data_len, const uint8_t *table,
                               Py_ssize_t table_len, unsigned shift) {
    int64_t length = end - start;
    if (validity != NULL && !((validity[bit >> 3] >> (bit & 7)) & 1)) return 1;
    if (length <= 0 || end < 8 || end > data_len) return 1;
    uint64_t key = load_le64(data + end - 8);
    if (length < 8) key >>= (uint64_t)(8 - length) * 8;
    return occupied(table, table_len, (key * MULTIPLIER) >> shift) &&
           occupied(table, table_len, (key * MULTIPLIER2) >> shift);
}

PyDoc_STRVAR(candidate_rows_doc,
             "candidate_rows(offsets, width, first, n, validity, data, table, shift, out) -> int\n\n"
             "Write the numbers (int64) of the rows that may be members into ``out`` and return\n"
             "how many there are. ``offsets`` holds ``width``-byte value offsets and ``validity``\n"
             "the validity bitmap (or None) of an array of ``n`` rows starting at row ``first``;\n"
             "``data`` is its value bytes (or None), ``table`` the filter's bitset.");

static PyObject *candidate_rows(PyObject *self, PyObject *args) {
    Py_buffer offsets, validity = {0}, data = {0}, table, out;
    PyObject *validity_obj, *data_obj;
    int width;
    unsigned shift;
    Py_ssize_t first, n, count = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*innOOy*Iw*", &offsets, &width, &first, &n, &validity_obj,
                          &data_obj, &table, &shift, &out))
        return NULL;
    int ok = (width == 4 || width == 8) && first >= 0 && n >= 0 && shift < 64 &&
             offsets.len >= (first + n + (n > 0)) * width && out.len >= n * 8;
    if (ok && validity_obj != Py_None) {
        ok = PyObject_GetBuffer(validity_obj, &validity, PyBUF_SIMPLE) == 0;
        ok = ok && validity.len * 8 >= first + n;
    }
    if (ok && data_obj != Py_None) ok = PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) == 0;
    if (!ok) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "candidate_rows: bad buffers");
    } else {
        const uint8_t *offs = offsets.buf, *valid = validity.buf, *bytes = data.buf;
        Py_ssize_t data_len = bytes != NULL && data.len >= 8 ? data.len : 0;
        int64_t *rows = out.buf;
        Py_BEGIN_ALLOW_THREADS;
        int64_t start = n > 0 ? offset_at(offs, width, first) : 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t end = offset_at(offs, width, first + i + 1);
            rows[count] = i;
            count += is_candidate(valid, first + i, start, end, bytes, data_len, table.buf,
                                  table.len, shift);
            start = end;
        }
        Py_END_ALLOW_THREADS;
    }
    if (validity.obj != NULL) PyBuffer_Release(&validity);
    if (data.obj != NULL) PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&table);
    PyBuffer_Release(&out);
    return ok ? PyLong_FromSsize_t(count) : NULL;
}

static PyMethodDef methods[] = {
    {"candidate_rows", candidate_rows, METH_VARARGS, candidate_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_idscan", "The id prefilter's one-pass row scan.", -1, methods,
};

PyMODINIT_FUNC PyInit__idscan(void) { return PyModule_Create(&module); }
