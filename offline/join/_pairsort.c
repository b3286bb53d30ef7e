/* The pair reduce's two steps in C (see reduce_pairs in offline/join/aggregate.py): the rows'
 * order by (user id bytes, rumor rank) with the starts of its runs of equal pairs, and each value
 * column reduced over those runs.
 *
 * The order is an LSD radix sort of one 24-byte key a row: the id's first 16 bytes as two
 * big-endian words (zero-padded, so the words are in the ids' byte order), then a word of the
 * id's length (capped at 17: "longer than 16") and the rumor rank. Digits every key shares are
 * skipped, so the ids of one user range cost a few passes. Ids longer than 16 bytes that share
 * their first 16 are put in order by a comparison sort of that run alone. numpy's path hashes
 * and sorts the distinct ids, sorts an int64 key and gathers each column (about 5x the time).
 * Both steps run without the GIL, as does the third: the ids' 8-byte prefixes a scan cuts its
 * pairs into user buckets by (offline/join/buckets.py).
 *
 * Built as an optional extension: when it is missing, reduce_pairs takes numpy's path, and the
 * tests check that both give the same pairs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DIGITS 20
#define LONG_ID 17 /* the length code of an id longer than 16 bytes */
#define RANK_BITS 27

typedef struct {
    uint64_t p0, p1; /* id bytes 0-7 and 8-15, big-endian, zero-padded */
    uint32_t lo;     /* length code << RANK_BITS | rumor rank */
    uint32_t row;
} Key;

/* A comparison sort's view of the ids (one per thread: the sort runs without the GIL). */
typedef struct {
    const int32_t *offsets;
    const uint8_t *data;
} Ids;
static _Thread_local Ids sorting;

static inline uint64_t load_be(const uint8_t *p, int64_t len) {
    uint8_t word[8] = {0};
    memcpy(word, p, (size_t)(len < 8 ? (len > 0 ? len : 0) : 8));
    uint64_t v;
    memcpy(&v, word, 8);
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline unsigned key_digit(const Key *k, int d) {
    if (d < 4) return (k->lo >> (8 * d)) & 0xff;
    if (d < 12) return (unsigned)(k->p1 >> (8 * (d - 4))) & 0xff;
    return (unsigned)(k->p0 >> (8 * (d - 12))) & 0xff;
}

/* Byte order of two whole ids, then rumor rank (for ids that share their first 16 bytes). */
static int compare_long(const void *a, const void *b) {
    const Key *x = a, *y = b;
    const int32_t *o = sorting.offsets;
    int64_t xs = o[x->row], xl = o[x->row + 1] - xs, ys = o[y->row], yl = o[y->row + 1] - ys;
    int c = memcmp(sorting.data + xs, sorting.data + ys, (size_t)(xl < yl ? xl : yl));
    if (c) return c;
    if (xl != yl) return xl < yl ? -1 : 1;
    uint32_t xr = x->lo & ((1u << RANK_BITS) - 1), yr = y->lo & ((1u << RANK_BITS) - 1);
    return (xr > yr) - (xr < yr);
}

static inline int same_id(const int32_t *o, const uint8_t *data, uint32_t a, uint32_t b) {
    int64_t as = o[a], al = o[a + 1] - as, bs = o[b], bl = o[b + 1] - bs;
    return al == bl && memcmp(data + as, data + bs, (size_t)al) == 0;
}

/* Sort ``keys`` (``spare`` as room) and return where the sorted keys are: one counting pass
 * over the digits that differ between keys, then one scatter pass for each of them. */
static Key *radix(Key *keys, Key *spare, Py_ssize_t n) {
    if (n < 2) return keys;
    uint64_t d0 = 0, d1 = 0, dlo = 0;
    for (Py_ssize_t i = 1; i < n; i++) {
        d0 |= keys[i].p0 ^ keys[0].p0;
        d1 |= keys[i].p1 ^ keys[0].p1;
        dlo |= keys[i].lo ^ keys[0].lo;
    }
    int used[DIGITS], count = 0;
    for (int d = 0; d < DIGITS; d++) {
        uint64_t differ = d < 4 ? dlo >> (8 * d) : d < 12 ? d1 >> (8 * (d - 4)) : d0 >> (8 * (d - 12));
        if (differ & 0xff) used[count++] = d;
    }
    uint32_t(*hist)[256] = calloc((size_t)(count > 0 ? count : 1), sizeof(*hist));
    if (hist == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        for (int j = 0; j < count; j++) hist[j][key_digit(&keys[i], used[j])]++;
    Key *src = keys, *dst = spare;
    for (int j = 0; j < count; j++) {
        uint32_t at = 0;
        for (int v = 0; v < 256; v++) {
            uint32_t c = hist[j][v];
            hist[j][v] = at;
            at += c;
        }
        int d = used[j];
        for (Py_ssize_t i = 0; i < n; i++) dst[hist[j][key_digit(&src[i], d)]++] = src[i];
        Key *t = src;
        src = dst;
        dst = t;
    }
    free(hist);
    return src;
}

PyDoc_STRVAR(pair_order_doc,
             "pair_order(offsets, first, n, data, ranks, order, starts) -> int\n\n"
             "Write into ``order`` (int64, n) the rows of a string array (int32 ``offsets`` of n\n"
             "values from value ``first``, value bytes ``data``; no nulls) in (id bytes, rank)\n"
             "order, ``ranks`` being each row's uint32 rumor rank (< 2**27), and into ``starts``\n"
             "(int64) the position in ``order`` where each run of equal (id, rank) begins; return\n"
             "how many runs there are.");

static PyObject *pair_order(PyObject *self, PyObject *args) {
    Py_buffer offsets, data, ranks, order, starts;
    Py_ssize_t first, n, runs = 0;
    const char *error = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*y*w*w*", &offsets, &first, &n, &data, &ranks, &order,
                          &starts))
        return NULL;
    if (first < 0 || n < 0 || n >= INT32_MAX || offsets.len < (first + n + 1) * 4 ||
        ranks.len != n * 4 || order.len < n * 8 || starts.len < n * 8)
        error = "pair_order: bad buffer sizes";
    Key *keys = error ? NULL : malloc((size_t)(n > 0 ? n : 1) * sizeof(Key));
    Key *spare = error ? NULL : malloc((size_t)(n > 0 ? n : 1) * sizeof(Key));
    if (!error && (keys == NULL || spare == NULL)) error = "pair_order: out of memory";
    if (!error) {
        const int32_t *o = (const int32_t *)offsets.buf + first;
        const uint8_t *bytes = data.buf;
        const uint32_t *rank = ranks.buf;
        int64_t *out = order.buf, *start = starts.buf;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t i = 0; i < n && !error; i++) {
            int64_t s = o[i], len = o[i + 1] - s;
            if (s < 0 || len < 0 || o[i + 1] > data.len) { error = "pair_order: bad offsets"; break; }
            if (rank[i] >> RANK_BITS) { error = "pair_order: rank out of range"; break; }
            uint32_t code = len > 16 ? LONG_ID : (uint32_t)len;
            keys[i].p0 = load_be(bytes + s, len);
            keys[i].p1 = load_be(bytes + s + 8, len - 8);
            keys[i].lo = code << RANK_BITS | rank[i];
            keys[i].row = (uint32_t)i;
        }
        Key *sorted = error ? NULL : radix(keys, spare, n);
        if (!error && sorted == NULL) error = "pair_order: out of memory";
        if (!error) {
            sorting.offsets = o;
            sorting.data = bytes;
            /* Long ids that share their first 16 bytes: a comparison sort of each such run. */
            for (Py_ssize_t i = 0; i < n;) {
                Py_ssize_t j = i + 1;
                if (sorted[i].lo >> RANK_BITS == LONG_ID) {
                    while (j < n && sorted[j].p0 == sorted[i].p0 && sorted[j].p1 == sorted[i].p1) j++;
                    if (j - i > 1) qsort(sorted + i, (size_t)(j - i), sizeof(Key), compare_long);
                }
                i = j;
            }
            for (Py_ssize_t i = 0; i < n; i++) {
                const Key *k = &sorted[i], *p = &sorted[i - (i > 0)];
                int same = i > 0 && k->p0 == p->p0 && k->p1 == p->p1 && k->lo == p->lo &&
                           (k->lo >> RANK_BITS != LONG_ID || same_id(o, bytes, k->row, p->row));
                if (!same) start[runs++] = i;
                out[i] = k->row;
            }
        }
        Py_END_ALLOW_THREADS;
    }
    free(keys);
    free(spare);
    Py_buffer *all[] = {&offsets, &data, &ranks, &order, &starts};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return PyLong_FromSsize_t(runs);
}

PyDoc_STRVAR(prefixes_doc,
             "prefixes(offsets, first, n, data, rows, out) -> None\n\n"
             "Write into ``out`` (uint64) each id's first 8 bytes as a big-endian word, zero-padded\n"
             "(so the words are in the ids' byte order): of the string array's n values from value\n"
             "``first`` (int32 ``offsets``, value bytes ``data``), or of those at ``rows`` (int64,\n"
             "or None for every value in turn). Nulls are left to the caller.");

static PyObject *prefixes(PyObject *self, PyObject *args) {
    Py_buffer offsets, data, out, rows = {0};
    PyObject *rows_obj;
    Py_ssize_t first, n;
    const char *error = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*Ow*", &offsets, &first, &n, &data, &rows_obj, &out))
        return NULL;
    if (rows_obj != Py_None && PyObject_GetBuffer(rows_obj, &rows, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&offsets);
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t m = rows.buf != NULL ? rows.len / 8 : n;
    if (first < 0 || n < 0 || offsets.len < (first + n + 1) * 4 || out.len < m * 8 ||
        (rows.buf != NULL && rows.len != m * 8))
        error = "prefixes: bad buffer sizes";
    if (!error) {
        const int32_t *o = (const int32_t *)offsets.buf + first;
        const int64_t *at = rows.buf;
        const uint8_t *bytes = data.buf;
        uint64_t *dst = out.buf;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t i = 0; i < m; i++) {
            int64_t r = at != NULL ? at[i] : i;
            if (r < 0 || r >= n) { error = "prefixes: row out of range"; break; }
            int64_t s = o[r], len = o[r + 1] - s;
            if (s < 0 || len < 0 || o[r + 1] > data.len) { error = "prefixes: bad offsets"; break; }
            dst[i] = load_be(bytes + s, len);
        }
        Py_END_ALLOW_THREADS;
    }
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    if (rows.buf != NULL) PyBuffer_Release(&rows);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    Py_RETURN_NONE;
}

enum { SUM_I64, MIN_I64, MAX_I64, MAX_I8, ANY_BIT, MAX_F32 };

static inline int bit(const uint8_t *bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

/* One kind's loop over the runs (the order and starts checked before): each run's first valid
 * value, combined with the next by ``COMBINE`` (on ``acc`` and ``v``). */
#define REDUCE(T, OUT, LOAD, COMBINE)                                                   \
    do {                                                                                \
        OUT *dst = out.buf;                                                             \
        for (Py_ssize_t g = 0; g < runs; g++) {                                         \
            int64_t s = start[g], e = g + 1 < runs ? start[g + 1] : n;                  \
            int seen = 0;                                                               \
            T acc = 0;                                                                  \
            for (int64_t i = s; i < e; i++) {                                           \
                int64_t r = ord[i] + offset;                                            \
                if (vbits != NULL && !bit(vbits, r)) continue;                          \
                T v = LOAD;                                                             \
                if (!seen) acc = v;                                                     \
                else { COMBINE; }                                                       \
                seen = 1;                                                               \
            }                                                                           \
            ok[g] = (uint8_t)seen;                                                      \
            dst[g] = (OUT)acc;                                                          \
        }                                                                               \
    } while (0)

PyDoc_STRVAR(reduce_runs_doc,
             "reduce_runs(kind, values, validity, offset, n, order, starts, runs, out, valid) -> None\n\n"
             "Reduce an Arrow column of ``n`` values from element ``offset`` (``values``: its\n"
             "data buffer; ``validity``: its bitmap, or None) over each of the ``runs`` runs of\n"
             "``order`` that begin at ``starts``, skipping nulls: kind 0 sums int64, 1 and 2 take\n"
             "the min and max of int64, 3 the max of int8, 4 ors a boolean bitmap, 5 takes the max\n"
             "of float32 (a NaN wins, as numpy's maximum). Writes each run's value into ``out``\n"
             "(int64, int8, uint8 or float32) and 1 into ``valid`` (uint8) when it had one.");

static PyObject *reduce_runs(PyObject *self, PyObject *args) {
    Py_buffer values, validity = {0}, order, starts, out, valid;
    PyObject *validity_obj;
    int kind;
    Py_ssize_t offset, n, runs;
    const char *error = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "iy*Onny*y*nw*w*", &kind, &values, &validity_obj, &offset, &n,
                          &order, &starts, &runs, &out, &valid))
        return NULL;
    if (validity_obj != Py_None && PyObject_GetBuffer(validity_obj, &validity, PyBUF_SIMPLE) < 0) {
        Py_buffer *got[] = {&values, &order, &starts, &out, &valid};
        for (size_t i = 0; i < sizeof(got) / sizeof(got[0]); i++) PyBuffer_Release(got[i]);
        return NULL;
    }
    static const int widths[] = {8, 8, 8, 1, 0, 4};
    int w = kind >= 0 && kind <= MAX_F32 ? widths[kind] : -1;
    int64_t end_bits = offset + n;
    if (w < 0 || offset < 0 || n < 0 || runs < 0 || runs > n || order.len < n * 8 ||
        starts.len < runs * 8 || valid.len < runs ||
        out.len < runs * (kind == ANY_BIT ? 1 : w) ||
        values.len < (kind == ANY_BIT ? (end_bits + 7) / 8 : end_bits * w) ||
        (validity.buf != NULL && validity.len < (end_bits + 7) / 8))
        error = "reduce_runs: bad arguments";
    if (!error) {
        const int64_t *ord = order.buf, *start = starts.buf;
        for (Py_ssize_t i = 0; i < n && !error; i++)
            if (ord[i] < 0 || ord[i] >= n) error = "reduce_runs: bad order";
        for (Py_ssize_t g = 0; g < runs && !error; g++) {
            int64_t s = start[g], e = g + 1 < runs ? start[g + 1] : n;
            if (s < 0 || e > n || s >= e) error = "reduce_runs: bad starts";
        }
    }
    if (!error) {
        const int64_t *ord = order.buf, *start = starts.buf;
        const uint8_t *vbits = validity.buf;
        uint8_t *ok = valid.buf;
        Py_BEGIN_ALLOW_THREADS;
        switch (kind) {
        case SUM_I64: REDUCE(int64_t, int64_t, ((const int64_t *)values.buf)[r], acc = (int64_t)((uint64_t)acc + (uint64_t)v)); break;
        case MIN_I64: REDUCE(int64_t, int64_t, ((const int64_t *)values.buf)[r], acc = v < acc ? v : acc); break;
        case MAX_I64: REDUCE(int64_t, int64_t, ((const int64_t *)values.buf)[r], acc = v > acc ? v : acc); break;
        case MAX_I8: REDUCE(int8_t, int8_t, ((const int8_t *)values.buf)[r], acc = v > acc ? v : acc); break;
        case ANY_BIT: REDUCE(uint8_t, uint8_t, (uint8_t)bit(values.buf, r), acc |= v); break;
        default: REDUCE(float, float, ((const float *)values.buf)[r], if (!isnan(acc) && (isnan(v) || v > acc)) acc = v); break;
        }
        Py_END_ALLOW_THREADS;
    }
    Py_buffer *all[] = {&values, &order, &starts, &out, &valid};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
    if (validity.buf != NULL) PyBuffer_Release(&validity);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"pair_order", pair_order, METH_VARARGS, pair_order_doc},
    {"reduce_runs", reduce_runs, METH_VARARGS, reduce_runs_doc},
    {"prefixes", prefixes, METH_VARARGS, prefixes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pairsort", "The pair reduce's order and run reduces, and the ids' 8-byte prefixes.", -1, methods,
};

PyMODINIT_FUNC PyInit__pairsort(void) { return PyModule_Create(&module); }
