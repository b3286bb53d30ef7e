/* The selective Parquet page decoder's inner loops (see offline/join/pages.py and selective.py).
 *
 * Page headers are read from the Thrift compact protocol; dictionary indices and definition
 * levels from the RLE/bit-packed hybrid; PLAIN BYTE_ARRAY values by walking their 4-byte length
 * prefixes. Every function works on one (decompressed) page held by the caller, checks every
 * length against the buffer, raises ValueError on anything it cannot read (the caller then
 * falls back to pyarrow for that row group), and runs without the GIL.
 *
 * Built as an optional extension: without it the local join decodes every row with pyarrow
 * (the same answers; tests compare both).
 */
#include "_pqdecode.h"
#include <stdlib.h>
#include <string.h>

#define MULTIPLIER 0x9E3779B97F4A7C15ULL
#define MULTIPLIER2 0xC2B2AE3D27D4EB4FULL

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint32_t load_le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

/* ---- RLE / bit-packed hybrid ---------------------------------------------------------------- */

/* One run of the hybrid: ``count`` values, either all ``value`` (rle) or bit-packed at ``bits``. */
typedef struct {
    const uint8_t *p, *end;
    int width;
    int64_t count; /* values in the current run */
    int rle;
    uint64_t value;
    const uint8_t *packed;
} hybrid;

/* Starts the next run; returns 0 when the buffer cannot hold it. */
static int next_run(hybrid *h) {
    reader r = {h->p, h->end, 0};
    uint64_t header = read_varint(&r);
    if (r.bad) return 0;
    h->p = r.p;
    if (header & 1) {
        uint64_t groups = header >> 1;
        if (groups == 0 || groups > (uint64_t)(h->end - h->p) / (uint64_t)(h->width ? h->width : 1))
            return 0;
        h->rle = 0;
        h->count = (int64_t)groups * 8;
        h->packed = h->p;
        h->p += groups * (uint64_t)h->width;
    } else {
        int bytes = (h->width + 7) / 8;
        if (header >> 1 == 0 || h->end - h->p < bytes) return 0;
        uint64_t v = 0;
        for (int i = 0; i < bytes; i++) v |= (uint64_t)h->p[i] << (8 * i);
        h->p += bytes;
        h->rle = 1;
        h->count = (int64_t)(header >> 1);
        h->value = v;
    }
    return 1;
}

/* Value ``i`` of the current bit-packed run (LSB first). */
static inline uint64_t packed_at(const hybrid *h, int64_t i) {
    uint64_t bit = (uint64_t)i * (uint64_t)h->width;
    const uint8_t *q = h->packed + (bit >> 3);
    unsigned shift = bit & 7;
    uint64_t v = 0;
    int need = (int)((shift + (unsigned)h->width + 7) / 8);
    for (int k = 0; k < need; k++) v |= (uint64_t)q[k] << (8 * k);
    return (v >> shift) & ((h->width == 64) ? ~0ULL : ((1ULL << h->width) - 1));
}

PyDoc_STRVAR(level_count_doc,
             "level_count(buf, width, n, value) -> int\n\n"
             "How many of the first n values of the RLE/bit-packed hybrid ``buf`` (``width`` bits a\n"
             "value, no length prefix) equal ``value``: with definition levels, the non-null rows.");

static PyObject *level_count(PyObject *self, PyObject *args) {
    Py_buffer buf;
    int width;
    Py_ssize_t n;
    unsigned long long value;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*inK", &buf, &width, &n, &value)) return NULL;
    int ok = width >= 1 && width <= 32 && n >= 0;
    int64_t count = 0, done = 0;
    if (ok) {
        hybrid h = {buf.buf, (const uint8_t *)buf.buf + buf.len, width, 0, 0, 0, NULL};
        Py_BEGIN_ALLOW_THREADS;
        while (done < n) {
            if (!next_run(&h)) {
                ok = 0;
                break;
            }
            int64_t take = h.count < n - done ? h.count : n - done;
            if (h.rle) {
                if (h.value == value) count += take;
            } else {
                for (int64_t i = 0; i < take; i++) count += packed_at(&h, i) == value;
            }
            done += take;
        }
        Py_END_ALLOW_THREADS;
    }
    PyBuffer_Release(&buf);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "level_count: levels end early or bad width");
        return NULL;
    }
    return PyLong_FromLongLong(count);
}

PyDoc_STRVAR(dict_hits_doc,
             "dict_hits(buf, n, entry_pos, base, out_rows, out_pos) -> int\n\n"
             "Decode the n dictionary indices of a data page (``buf``: bit width byte, then the\n"
             "hybrid) and write, for each row whose entry has entry_pos[entry] >= 0 (int32), its\n"
             "number + ``base`` (int64) and that position (int32); returns how many. An index past\n"
             "the dictionary raises ValueError.");

static PyObject *dict_hits(PyObject *self, PyObject *args) {
    Py_buffer buf, entry, rows, pos;
    Py_ssize_t n, base;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*nw*w*", &buf, &n, &entry, &base, &rows, &pos)) return NULL;
    int ok = buf.len >= 1 && n >= 0 && rows.len >= n * 8 && pos.len >= n * 4;
    int64_t count = 0;
    if (ok) {
        const uint8_t *b = buf.buf;
        const int32_t *ep = entry.buf;
        uint64_t entries = (uint64_t)(entry.len / 4);
        int64_t *out_rows = rows.buf;
        int32_t *out_pos = pos.buf;
        hybrid h = {b + 1, b + buf.len, b[0], 0, 0, 0, NULL};
        ok = h.width <= 32;
        int64_t done = 0;
        Py_BEGIN_ALLOW_THREADS;
        while (ok && done < n) {
            if ((h.width == 0 && (h.rle = 1, h.value = 0, h.count = n - done)) || next_run(&h)) {
                int64_t take = h.count < n - done ? h.count : n - done;
                if (h.rle) {
                    if (h.value >= entries) {
                        ok = 0;
                        break;
                    }
                    int32_t p = ep[h.value];
                    if (p >= 0)
                        for (int64_t i = 0; i < take; i++) {
                            out_rows[count] = base + done + i;
                            out_pos[count++] = p;
                        }
                } else {
                    for (int64_t i = 0; i < take; i++) {
                        uint64_t v = packed_at(&h, i);
                        if (v >= entries) {
                            ok = 0;
                            break;
                        }
                        int32_t p = ep[v];
                        out_rows[count] = base + done + i;
                        out_pos[count] = p;
                        count += p >= 0;
                    }
                }
                done += take;
            } else {
                ok = 0;
            }
        }
        Py_END_ALLOW_THREADS;
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&entry);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&pos);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "dict_hits: unreadable dictionary indices");
        return NULL;
    }
    return PyLong_FromLongLong(count);
}

PyDoc_STRVAR(dict_take_doc,
             "dict_take(buf, n, entries, rows, out) -> None\n\n"
             "The dictionary indices (int32) at ``rows`` (int64, ascending, in [0, n)) of a data\n"
             "page's n indices, into ``out``: runs are skipped, bit-packed values read only at\n"
             "``rows``; each index taken is checked against ``entries``.");

static PyObject *dict_take(PyObject *self, PyObject *args) {
    Py_buffer buf, rows, out;
    Py_ssize_t n, entries;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*w*", &buf, &n, &entries, &rows, &out)) return NULL;
    Py_ssize_t k = rows.len / 8;
    int ok = buf.len >= 1 && n >= 0 && out.len >= k * 4;
    if (ok) {
        const uint8_t *b = buf.buf;
        const int64_t *want = rows.buf;
        int32_t *o = out.buf;
        hybrid h = {b + 1, b + buf.len, b[0], 0, 0, 0, NULL};
        ok = h.width <= 32;
        int64_t done = 0;
        Py_ssize_t j = 0;
        Py_BEGIN_ALLOW_THREADS;
        while (ok && done < n) {
            if ((h.width == 0 && (h.rle = 1, h.value = 0, h.count = n - done)) || next_run(&h)) {
                int64_t take = h.count < n - done ? h.count : n - done;
                if (h.rle) {
                    if (h.value >= (uint64_t)entries) ok = 0;
                    while (ok && j < k && want[j] < done + take) o[j++] = (int32_t)h.value;
                } else {
                    /* Only the wanted rows of a bit-packed run are decoded (random access). */
                    while (j < k && want[j] < done + take) {
                        int64_t i = want[j] - done;
                        uint64_t v = i >= 0 ? packed_at(&h, i) : (uint64_t)entries;
                        if (v >= (uint64_t)entries) {
                            ok = 0;
                            break;
                        }
                        o[j++] = (int32_t)v;
                    }
                }
                done += take;
            } else {
                ok = 0;
            }
        }
        Py_END_ALLOW_THREADS;
        ok = ok && j == k;
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&out);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "dict_take: unreadable indices or rows out of order");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- PLAIN BYTE_ARRAY ----------------------------------------------------------------------- */

PyDoc_STRVAR(plain_take_doc,
             "plain_take(buf, n, rows) -> (offsets, data, empties)\n\n"
             "The values at ``rows`` (int64, ascending, in [0, n); None for all) of a PLAIN\n"
             "BYTE_ARRAY page of n values, as Arrow string buffers: int32 offsets (bytes) and data\n"
             "(bytes). Every length prefix is walked and checked; ``empties`` counts empty values\n"
             "among all n.");

static PyObject *plain_take(PyObject *self, PyObject *args) {
    Py_buffer buf, rows = {0};
    PyObject *rows_obj;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nO", &buf, &n, &rows_obj)) return NULL;
    int all = rows_obj == Py_None;
    if (!all && PyObject_GetBuffer(rows_obj, &rows, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    Py_ssize_t k = all ? n : rows.len / 8;
    int ok = n >= 0 && k >= 0 && k <= n;
    int64_t empties = 0, total = 0;
    int64_t *starts = ok ? malloc(sizeof(int64_t) * (size_t)(k + 1)) : NULL;
    uint32_t *lens = ok ? malloc(sizeof(uint32_t) * (size_t)(k + 1)) : NULL;
    PyObject *offsets = NULL, *data = NULL, *result = NULL;
    if (starts == NULL || lens == NULL) ok = 0;
    if (ok) {
        const uint8_t *b = buf.buf;
        const int64_t *want = rows.buf;
        Py_ssize_t len = buf.len, at = 0, j = 0;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (len - at < 4) {
                ok = 0;
                break;
            }
            uint32_t l = load_le32(b + at);
            at += 4;
            if ((uint64_t)(len - at) < l) {
                ok = 0;
                break;
            }
            empties += l == 0;
            if (all || (j < k && want[j] == i)) {
                starts[j] = at;
                lens[j++] = l;
                total += l;
            }
            at += l;
        }
        Py_END_ALLOW_THREADS;
        ok = ok && j == k && total <= INT32_MAX;
    }
    if (ok) {
        offsets = PyBytes_FromStringAndSize(NULL, (k + 1) * 4);
        data = PyBytes_FromStringAndSize(NULL, total);
    }
    if (offsets != NULL && data != NULL) {
        int32_t *o = (int32_t *)PyBytes_AS_STRING(offsets);
        char *d = PyBytes_AS_STRING(data);
        const uint8_t *b = buf.buf;
        int64_t pos = 0;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t j = 0; j < k; j++) {
            o[j] = (int32_t)pos;
            memcpy(d + pos, b + starts[j], lens[j]);
            pos += lens[j];
        }
        o[k] = (int32_t)pos;
        Py_END_ALLOW_THREADS;
        result = Py_BuildValue("(OOL)", offsets, data, (long long)empties);
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "plain_take: values run past the page or rows unsorted");
    }
    Py_XDECREF(offsets);
    Py_XDECREF(data);
    free(starts);
    free(lens);
    if (rows.obj != NULL) PyBuffer_Release(&rows);
    PyBuffer_Release(&buf);
    return result;
}

/* ---- Exact item lookup: an open-addressing table of the tagged item ids ---------------------- */

/* Hash of an id's bytes: 8-byte words folded by multiply-xor, then mixed. */
static inline uint64_t id_hash(const uint8_t *p, int64_t len) {
    uint64_t h = (uint64_t)len * MULTIPLIER2;
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) h = (h ^ load_le64(p + i)) * MULTIPLIER;
    if (i < len) {
        uint64_t tail = 0;
        memcpy(&tail, p + i, (size_t)(len - i));
        h = (h ^ tail) * MULTIPLIER;
    }
    h ^= h >> 29;
    h *= MULTIPLIER2;
    return h ^ (h >> 32);
}

PyDoc_STRVAR(item_table_doc,
             "item_table(offsets, data, n, slots) -> None\n\n"
             "Fill ``slots`` (int32, a power of two >= 2n long, all -1) with the positions of the n\n"
             "distinct ids of an Arrow string array (int32 ``offsets`` from its first row, ``data``).");

static PyObject *item_table(PyObject *self, PyObject *args) {
    Py_buffer offsets, data, slots;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &offsets, &data, &n, &slots)) return NULL;
    Py_ssize_t size = slots.len / 4;
    int ok = n >= 0 && offsets.len >= (n + 1) * 4 && size >= 2 * n && size > 0 &&
             (size & (size - 1)) == 0;
    if (ok) {
        const int32_t *o = offsets.buf;
        const uint8_t *d = data.buf;
        int32_t *t = slots.buf;
        uint64_t mask = (uint64_t)size - 1;
        for (Py_ssize_t i = 0; i < n && ok; i++) {
            if (o[i] < 0 || o[i + 1] < o[i] || o[i + 1] > data.len) {
                ok = 0;
                break;
            }
            uint64_t h = id_hash(d + o[i], o[i + 1] - o[i]) & mask;
            while (t[h] != -1) h = (h + 1) & mask;
            t[h] = (int32_t)i;
        }
    }
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&slots);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "item_table: bad buffers");
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(plain_hits_doc,
             "plain_hits(buf, n, bloom, shift, offsets, data, slots, base, out_rows, out_pos)\n"
             "    -> (count, empties)\n\n"
             "Walk the n values of a PLAIN BYTE_ARRAY page; the values the id prefilter keeps (its\n"
             "``bloom`` bitset and ``shift``, as idfilter.py defines them) are looked up exactly in\n"
             "the table of ``item_table`` (over the ids ``offsets``/``data``): write the row number\n"
             "+ ``base`` (int64) and the id's position (int32) of each value found; count the\n"
             "empty values.");

static PyObject *plain_hits(PyObject *self, PyObject *args) {
    Py_buffer buf, bloom, offsets, data, slots, rows, pos;
    Py_ssize_t n, base;
    unsigned shift;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*Iy*y*y*nw*w*", &buf, &n, &bloom, &shift, &offsets, &data,
                          &slots, &base, &rows, &pos))
        return NULL;
    Py_ssize_t size = slots.len / 4;
    int ok = n >= 0 && rows.len >= n * 8 && pos.len >= n * 4 && size > 0 &&
             (size & (size - 1)) == 0 && shift < 64;
    int64_t count = 0, empties = 0;
    if (ok) {
        const uint8_t *b = buf.buf, *d = data.buf, *bl = bloom.buf;
        Py_ssize_t blen = bloom.len;
        const int32_t *o = offsets.buf, *t = slots.buf;
        Py_ssize_t len = buf.len, at = 0, items = offsets.len / 4 - 1;
        uint64_t mask = (uint64_t)size - 1;
        int64_t *out_rows = rows.buf;
        int32_t *out_pos = pos.buf;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (len - at < 4) {
                ok = 0;
                break;
            }
            uint32_t l = load_le32(b + at);
            at += 4;
            if ((uint64_t)(len - at) < l) {
                ok = 0;
                break;
            }
            if (l == 0) {
                empties++;
                continue;
            }
            const uint8_t *v = b + at;
            at += l;
            if (at >= 8) { /* the prefilter: most untagged ids stop at two bit lookups */
                uint64_t key = load_le64(b + at - 8);
                if (l < 8) key >>= (uint64_t)(8 - l) * 8;
                uint64_t b1 = (key * MULTIPLIER) >> shift, b2 = (key * MULTIPLIER2) >> shift;
                if (!(((Py_ssize_t)(b1 >> 3) >= blen || ((bl[b1 >> 3] >> (b1 & 7)) & 1)) &&
                      ((Py_ssize_t)(b2 >> 3) >= blen || ((bl[b2 >> 3] >> (b2 & 7)) & 1))))
                    continue;
            }
            uint64_t h = id_hash(v, l) & mask;
            for (int32_t s; (s = t[h]) != -1; h = (h + 1) & mask) {
                if (s < items && o[s + 1] - o[s] == (int32_t)l && memcmp(d + o[s], v, l) == 0) {
                    out_rows[count] = base + i;
                    out_pos[count++] = s;
                    break;
                }
            }
        }
        Py_END_ALLOW_THREADS;
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&bloom);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&slots);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&pos);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "plain_hits: values run past the page");
        return NULL;
    }
    return Py_BuildValue("(LL)", (long long)count, (long long)empties);
}

static PyMethodDef methods[] = {
    {"page_headers", pq_page_headers, METH_VARARGS, pq_page_headers_doc},
    {"level_count", level_count, METH_VARARGS, level_count_doc},
    {"dict_hits", dict_hits, METH_VARARGS, dict_hits_doc},
    {"dict_take", dict_take, METH_VARARGS, dict_take_doc},
    {"plain_take", plain_take, METH_VARARGS, plain_take_doc},
    {"item_table", item_table, METH_VARARGS, item_table_doc},
    {"plain_hits", plain_hits, METH_VARARGS, plain_hits_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pqdecode",
    "The selective Parquet decoder's page header parser and page walks.", -1, methods,
};

PyMODINIT_FUNC PyInit__pqdecode(void) { return PyModule_Create(&module); }
