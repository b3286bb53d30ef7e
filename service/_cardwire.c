/* Feed cards as protobuf wire bytes, in C: service/cards.py's ``card_wire`` (the Python
 * reference; tests compare the two, and both with ``to_card``'s serialized message).
 *
 * cards(tag, items) -> bytes: for each item (static, score, prebunk, action, exposures,
 * first_ts, last_ts, surfaces, text, affinity, update) one length-delimited field ``tag``
 * holding a DebunkCard: the card's static fields (already encoded, once per rumor and
 * debunk), its score, its Reason and its update mark.
 *
 * feeds(user_ids, cards, tails, end) -> bytes: a RankFeedBatchResponse's repeated ``feeds``
 * (field 1), one UserFeed per user in order: its user_id (field 1; left out when empty, as
 * proto3 writes it), then ``cards[i]`` (its cards field, already encoded) and ``tails[i]`` (its
 * experiment and arm fields, already encoded), each None for nothing; then ``end`` (the
 * response's own fields after ``feeds``). ``cards`` and ``tails`` are lists as long as
 * ``user_ids``, or None for all None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    unsigned char *buf;
    Py_ssize_t len, cap;
} Buf;

static int grow(Buf *b, Py_ssize_t need) {
    if (b->len + need <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + need) cap *= 2;
    unsigned char *p = PyMem_Realloc(b->buf, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->buf = p;
    b->cap = cap;
    return 0;
}

static int put(Buf *b, const void *src, Py_ssize_t n) {
    if (grow(b, n) < 0) return -1;
    memcpy(b->buf + b->len, src, n);
    b->len += n;
    return 0;
}

static int put_byte(Buf *b, unsigned char c) { return put(b, &c, 1); }

/* A varint of an int64 (negative: its 64-bit two's complement). */
static int put_varint(Buf *b, unsigned long long v) {
    unsigned char tmp[10];
    int n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v & 0x7F) | 0x80;
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    return put(b, tmp, n);
}

static int varint_size(unsigned long long v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A varint written at ``w`` (room checked by the caller); returns the byte after it. */
static unsigned char *write_varint(unsigned char *w, unsigned long long v) {
    while (v >= 0x80) {
        *w++ = (unsigned char)(v & 0x7F) | 0x80;
        v >>= 7;
    }
    *w++ = (unsigned char)v;
    return w;
}

static int put_fixed64(Buf *b, double d) {
    unsigned char tmp[8];
    memcpy(tmp, &d, 8); /* little-endian hosts only: checked at import */
    return put(b, tmp, 8);
}

static int put_fixed32(Buf *b, float f) {
    unsigned char tmp[4];
    memcpy(tmp, &f, 4);
    return put(b, tmp, 4);
}

/* One card's Reason into ``r`` (cleared first). */
static int reason(Buf *r, int prebunk, long long action, long long exposures, long long first,
                  long long last, const char *surf, Py_ssize_t surf_n, const char *text,
                  Py_ssize_t text_n, float affinity, int update) {
    r->len = 0;
    if (!prebunk) {
        if (put_byte(r, 0x08) || put_varint(r, (unsigned long long)(action + 1))
            || put_byte(r, 0x10) || put_varint(r, (unsigned long long)exposures))
            return -1;
        if (put_byte(r, 0x1a) || put_byte(r, (unsigned char)(1 + varint_size(first)))
            || put_byte(r, 0x08) || put_varint(r, (unsigned long long)first))
            return -1;
        if (put_byte(r, 0x22) || put_byte(r, (unsigned char)(1 + varint_size(last)))
            || put_byte(r, 0x08) || put_varint(r, (unsigned long long)last))
            return -1;
        if (put(r, surf, surf_n)) return -1;
    }
    if (put_byte(r, 0x32) || put_varint(r, (unsigned long long)text_n) || put(r, text, text_n))
        return -1;
    if (put_byte(r, 0x45) || put_fixed32(r, affinity)) return -1;
    if (prebunk) return put_byte(r, 0x38) || put_byte(r, 0x01);
    if (update) return put_byte(r, 0x48) || put_byte(r, 0x01);
    return 0;
}

static PyObject *cards(PyObject *self, PyObject *args) {
    const char *tag;
    Py_ssize_t tag_n;
    PyObject *items;
    (void)self;
    if (!PyArg_ParseTuple(args, "y#O!", &tag, &tag_n, &PyList_Type, &items)) return NULL;
    Buf out = {0}, r = {0};
    PyObject *ret = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        const char *st, *surf, *text;
        Py_ssize_t st_n, surf_n, text_n;
        double score, affinity;
        int prebunk, update;
        long long action, exposures, first, last;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(items, i), "y#dpLLLLy#y#dp", &st, &st_n, &score,
                              &prebunk, &action, &exposures, &first, &last, &surf, &surf_n,
                              &text, &text_n, &affinity, &update))
            goto done;
        if (reason(&r, prebunk, action, exposures, first, last, surf, surf_n, text, text_n,
                   (float)affinity, update))
            goto done;
        Py_ssize_t card_n = st_n + 9 + 1 + varint_size(r.len) + r.len + (update && !prebunk ? 2 : 0);
        if (put(&out, tag, tag_n) || put_varint(&out, card_n) || put(&out, st, st_n)
            || put_byte(&out, 0x31) || put_fixed64(&out, score) || put_byte(&out, 0x62)
            || put_varint(&out, r.len) || put(&out, r.buf, r.len))
            goto done;
        if (update && !prebunk && (put_byte(&out, 0x68) || put_byte(&out, 0x01))) goto done;
    }
    ret = PyBytes_FromStringAndSize((const char *)out.buf, out.len);
done:
    PyMem_Free(out.buf);
    PyMem_Free(r.buf);
    return ret;
}

/* Item ``i`` of ``list`` (None: no list) as a byte span; 0 when it is None or empty. */
static int span(PyObject *list, Py_ssize_t i, const char **p, Py_ssize_t *n) {
    *n = 0;
    if (list == Py_None) return 0;
    PyObject *item = PyList_GET_ITEM(list, i);
    if (item == Py_None) return 0;
    if (!PyBytes_Check(item)) {
        PyErr_SetString(PyExc_TypeError, "feeds: cards and tails hold bytes or None");
        return -1;
    }
    *p = PyBytes_AS_STRING(item);
    *n = PyBytes_GET_SIZE(item);
    return 0;
}

static int check_list(PyObject *list, Py_ssize_t n, const char *what) {
    if (list == Py_None) return 0;
    if (!PyList_Check(list) || PyList_GET_SIZE(list) != n) {
        PyErr_Format(PyExc_TypeError, "feeds: %s must be None or a list as long as user_ids",
                     what);
        return -1;
    }
    return 0;
}

static PyObject *feeds(PyObject *self, PyObject *args) {
    PyObject *users, *cardl, *tails;
    const char *end;
    Py_ssize_t end_n;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!OOy#", &PyList_Type, &users, &cardl, &tails, &end, &end_n))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(users);
    if (check_list(cardl, n, "cards") || check_list(tails, n, "tails")) return NULL;
    /* Sizes first (one allocation), then the bytes. */
    Py_ssize_t total = end_n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *u = PyList_GET_ITEM(users, i);
        const char *p;
        Py_ssize_t un, cn, tn;
        if (!PyUnicode_Check(u)) {
            PyErr_SetString(PyExc_TypeError, "feeds: user ids are str");
            return NULL;
        }
        if (PyUnicode_AsUTF8AndSize(u, &un) == NULL) return NULL;
        if (span(cardl, i, &p, &cn) || span(tails, i, &p, &tn)) return NULL;
        Py_ssize_t body = (un ? 1 + varint_size(un) + un : 0) + cn + tn;
        total += 1 + varint_size(body) + body;
    }
    PyObject *ret = PyBytes_FromStringAndSize(NULL, total);
    if (ret == NULL) return NULL;
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(ret), *stop = w + total;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t un, cn, tn;
        const char *c = NULL, *t = NULL;
        const char *uid = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(users, i), &un);
        span(cardl, i, &c, &cn);
        span(tails, i, &t, &tn);
        Py_ssize_t body = (un ? 1 + varint_size(un) + un : 0) + cn + tn;
        if (stop - w < 1 + varint_size(body) + body) goto changed;
        *w++ = 0x0a;
        w = write_varint(w, body);
        if (un) {
            *w++ = 0x0a;
            w = write_varint(w, un);
            memcpy(w, uid, un);
            w += un;
        }
        if (cn) memcpy(w, c, cn);
        w += cn;
        if (tn) memcpy(w, t, tn);
        w += tn;
    }
    if (stop - w != end_n) goto changed;
    memcpy(w, end, end_n);
    return ret;
changed: /* the sizes differ from the first pass: cannot happen with the GIL held */
    Py_DECREF(ret);
    PyErr_SetString(PyExc_RuntimeError, "feeds: size mismatch");
    return NULL;
}

static PyMethodDef methods[] = {
    {"cards", cards, METH_VARARGS, "Feed cards as wire bytes (see service/cards.py)."},
    {"feeds", feeds, METH_VARARGS, "A batch answer's user feeds as wire bytes (service/cards.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cardwire",
                                    "Feed cards as protobuf wire bytes (service/cards.py).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__cardwire(void) {
    const unsigned int one = 1;
    if (*(const unsigned char *)&one != 1) {
        PyErr_SetString(PyExc_ImportError, "_cardwire assumes a little-endian host");
        return NULL;
    }
    return PyModule_Create(&module);
}
