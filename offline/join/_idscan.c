/* The id prefilter's row scan in one pass (see offline/idfilter.py for the definition), and the
 * per-(user, rumor) aggregation of the rows on tagged items (see offline/join/pair_agg.py).
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
#include <stdlib.h>
#include <string.h>

#define MULTIPLIER 0x9E3779B97F4A7C15ULL
#define MULTIPLIER2 0xC2B2AE3D27D4EB4FULL
/* Bytes of a user id kept in its group (longer ids compare the rest from the data buffer). */
#define INLINE_KEY 12
/* How many rows ahead the aggregation prefetches a row's hash slot (its group at half that). */
#define PREFETCH 16

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


/* Hash of one id's bytes and a rumor code: 8-byte words folded by multiply-xor, then mixed. */
static inline uint64_t pair_hash(const uint8_t *p, int64_t len, int32_t rumor) {
    uint64_t h = (uint64_t)len * MULTIPLIER2 ^ (uint64_t)(uint32_t)rumor * MULTIPLIER;
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

PyDoc_STRVAR(aggregate_pairs_doc,
             "aggregate_pairs(offsets, width, first, n, data, rows, rumor, score, ts, action,\n"
             "                surface, share, group_of, count, first_ts, last_ts, max_action,\n"
             "                mask, first_share, last_share, max_score) -> int\n\n"
             "Group the m = len(rows) joined rows by (user id, rumor) and aggregate each group in\n"
             "one pass; returns the number of groups. Joined row j is log row rows[j] (into the\n"
             "user id string array of n rows starting at row ``first``, with no nulls, and into\n"
             "``ts`` int64, ``action`` and ``surface`` int8) on rumor rumor[j] (int32, >= 0) with\n"
             "tag score score[j] (float32). group_of[g] (int64) is the joined row that opened\n"
             "group g; per group: the row count, min and max ts, max action, the bit mask of its\n"
             "surfaces (uint8), min and max ts of its ``share`` actions (INT64_MAX and INT64_MIN\n"
             "when it has none), max score. Every output holds at least m values.");

/* One group's aggregates and the first bytes of its user id, in one cache line. */
typedef struct {
    int64_t first_ts, last_ts, first_share, last_share;
    int64_t opened;   /* the joined row that opened the group */
    int32_t count, rumor;
    float score;
    uint16_t key_len;
    int8_t action;
    uint8_t mask;
    uint8_t key[INLINE_KEY];
} Group;

/* Whether group ``g`` is the pair (id of ``len`` bytes, rumor): the inline bytes first, the rest
 * of a long id from the data buffer. */
static inline int same_pair(const Group *g, const uint8_t *id, int64_t len, int32_t rumor,
                            const uint8_t *rest) {
    if (g->rumor != rumor || g->key_len != (uint16_t)(len < 0xffff ? len : 0xffff)) return 0;
    int64_t head = len < INLINE_KEY ? len : INLINE_KEY;
    if (memcmp(g->key, id, (size_t)head) != 0) return 0;
    return len <= INLINE_KEY || memcmp(rest + INLINE_KEY, id + INLINE_KEY, (size_t)(len - INLINE_KEY)) == 0;
}

static PyObject *aggregate_pairs(PyObject *self, PyObject *args) {
    Py_buffer offsets, data, rows, rumor, score, ts, action, surface;
    Py_buffer group_of, count, first_ts, last_ts, max_action, mask, first_share, last_share;
    Py_buffer max_score;
    int width, share;
    Py_ssize_t first, n, groups = 0;
    const char *error = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*inny*y*y*y*y*y*y*iw*w*w*w*w*w*w*w*w*", &offsets, &width,
                          &first, &n, &data, &rows, &rumor, &score, &ts, &action, &surface,
                          &share, &group_of, &count, &first_ts, &last_ts, &max_action, &mask,
                          &first_share, &last_share, &max_score))
        return NULL;
    Py_ssize_t m = rows.len / 8;
    if ((width != 4 && width != 8) || first < 0 || n < 0 || m >= INT32_MAX || rows.len != m * 8 ||
        rumor.len != m * 4 || score.len != m * 4 || ts.len < n * 8 || action.len < n ||
        surface.len < n || offsets.len < (first + n + (n > 0)) * width || group_of.len < m * 8 ||
        count.len < m * 8 || first_ts.len < m * 8 || last_ts.len < m * 8 || max_action.len < m ||
        mask.len < m || first_share.len < m * 8 || last_share.len < m * 8 ||
        max_score.len < m * 4)
        error = "aggregate_pairs: bad buffer sizes";
    Py_ssize_t slots = 16;
    while (slots < 2 * m) slots <<= 1;
    /* A slot: 0 when empty, else (the hash's top 32 bits << 32) | (group + 1). */
    uint64_t *table = error ? NULL : calloc((size_t)slots, sizeof(uint64_t));
    Group *state = error ? NULL : malloc((size_t)(m > 0 ? m : 1) * sizeof(Group));
    uint64_t *hashes = error ? NULL : malloc((size_t)(m > 0 ? m : 1) * sizeof(uint64_t));
    if (!error && (table == NULL || state == NULL || hashes == NULL))
        error = "aggregate_pairs: out of memory";
    if (!error) {
        const uint8_t *offs = offsets.buf, *bytes = data.buf;
        const int64_t *row = rows.buf, *t = ts.buf;
        const int32_t *rum = rumor.buf;
        const float *sc = score.buf;
        const int8_t *act = action.buf, *surf = surface.buf;
        Py_ssize_t data_len = data.len;
        uint64_t slot_mask = (uint64_t)slots - 1;
        Py_BEGIN_ALLOW_THREADS;
        /* Pass 1 (sequential): check every row and hash its pair. */
        for (Py_ssize_t j = 0; j < m; j++) {
            int64_t r = row[j];
            if (r < 0 || r >= n || rum[j] < 0) { error = "aggregate_pairs: row or rumor out of range"; break; }
            int64_t start = offset_at(offs, width, first + r), end = offset_at(offs, width, first + r + 1);
            if (start < 0 || end < start || end > data_len) { error = "aggregate_pairs: bad offsets"; break; }
            hashes[j] = pair_hash(bytes + start, end - start, rum[j]);
        }
        /* Pass 2: probe and update, the slot of a row PREFETCH rows ahead already on its way. */
        for (Py_ssize_t j = 0; j < m && !error; j++) {
            if (j + PREFETCH < m) __builtin_prefetch(&table[hashes[j + PREFETCH] & slot_mask]);
            if (j + PREFETCH / 2 < m) {
                uint64_t ahead = table[hashes[j + PREFETCH / 2] & slot_mask];
                if (ahead) __builtin_prefetch(&state[(ahead & 0xffffffffu) - 1]);
            }
            int64_t r = row[j];
            int64_t start = offset_at(offs, width, first + r), end = offset_at(offs, width, first + r + 1);
            const uint8_t *id = bytes + start;
            int64_t len = end - start;
            uint64_t h = hashes[j], tag = h >> 32;
            uint64_t s = h & slot_mask;
            Group *g = NULL;
            for (;; s = (s + 1) & slot_mask) {
                uint64_t e = table[s];
                if (!e) break;
                if ((e >> 32) != tag) continue;
                Group *c = &state[(e & 0xffffffffu) - 1];
                int64_t o = row[c->opened];
                if (same_pair(c, id, len, rum[j], bytes + offset_at(offs, width, first + o))) { g = c; break; }
            }
            int64_t when = t[r];
            int is_share = act[r] == share;
            if (g == NULL) {
                g = &state[groups];
                table[s] = (tag << 32) | (uint64_t)(groups + 1);
                groups++;
                g->opened = j;
                g->count = 1;
                g->rumor = rum[j];
                g->first_ts = g->last_ts = when;
                g->action = act[r];
                g->mask = (uint8_t)(1u << (surf[r] & 7));
                g->first_share = is_share ? when : INT64_MAX;
                g->last_share = is_share ? when : INT64_MIN;
                g->score = sc[j];
                g->key_len = (uint16_t)(len < 0xffff ? len : 0xffff);
                memcpy(g->key, id, (size_t)(len < INLINE_KEY ? len : INLINE_KEY));
                continue;
            }
            g->count += 1;
            if (when < g->first_ts) g->first_ts = when;
            if (when > g->last_ts) g->last_ts = when;
            if (act[r] > g->action) g->action = act[r];
            g->mask |= (uint8_t)(1u << (surf[r] & 7));
            if (is_share) {
                if (when < g->first_share) g->first_share = when;
                if (when > g->last_share) g->last_share = when;
            }
            if (sc[j] > g->score) g->score = sc[j];
        }
        /* Pass 3 (sequential): the groups' aggregates into the output columns. */
        int64_t *gof = group_of.buf, *cnt = count.buf, *fts = first_ts.buf, *lts = last_ts.buf;
        int64_t *fsh = first_share.buf, *lsh = last_share.buf;
        int8_t *mact = max_action.buf;
        uint8_t *msk = mask.buf;
        float *msc = max_score.buf;
        for (Py_ssize_t k = 0; k < groups && !error; k++) {
            const Group *g = &state[k];
            gof[k] = g->opened;
            cnt[k] = g->count;
            fts[k] = g->first_ts;
            lts[k] = g->last_ts;
            fsh[k] = g->first_share;
            lsh[k] = g->last_share;
            mact[k] = g->action;
            msk[k] = g->mask;
            msc[k] = g->score;
        }
        Py_END_ALLOW_THREADS;
    }
    free(table);
    free(state);
    free(hashes);
    Py_buffer *all[] = {&offsets, &data, &rows, &rumor, &score, &ts, &action, &surface,
                        &group_of, &count, &first_ts, &last_ts, &max_action, &mask,
                        &first_share, &last_share, &max_score};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return PyLong_FromSsize_t(groups);
}

static PyMethodDef methods[] = {
    {"candidate_rows", candidate_rows, METH_VARARGS, candidate_rows_doc},
    {"aggregate_pairs", aggregate_pairs, METH_VARARGS, aggregate_pairs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_idscan", "The id prefilter's one-pass row scan and the pair aggregation of the joined rows.", -1, methods,
};

PyMODINIT_FUNC PyInit__idscan(void) { return PyModule_Create(&module); }
