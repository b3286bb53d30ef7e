/* The merge of partial pair aggregates (see offline/join/aggregate.py, reduce_pairs): rows of
 * (user id, rumor code, aggregates) combined in one hash table so each pair appears once, then
 * the distinct pairs sorted by (user id bytes, rumor code) with a radix sort.
 *
 * The numpy merge it replaces ranked both key columns (a dictionary encoding and a string sort
 * of the distinct users), argsorted an int64 key over every row and reduced each of the twelve
 * value columns with a gather and a reduceat. Here the rows are hashed once, the aggregates
 * combine in place, and only the distinct pairs are sorted: 8 bytes of the id at a time as an
 * unsigned key (LSD radix, passes whose byte is the same everywhere skipped), runs of equal
 * bytes that go on sorted again on the next 8 bytes. Runs without the GIL.
 *
 * Built as an optional extension: without it reduce_pairs takes its numpy path, and the tests
 * check that both give the same table.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MULTIPLIER 0x9E3779B97F4A7C15ULL
#define MULTIPLIER2 0xC2B2AE3D27D4EB4FULL
#define PREFETCH 16
/* Runs shorter than this are sorted by insertion instead of radix passes. */
#define SMALL_RUN 48
/* Rumor codes share a 32-bit tie word with 5 bits of how much of the id is left. */
#define RUMOR_BITS 27
/* Bytes of the id each sort level compares, and the radix digits of a record. */
#define KEY_BYTES 16
#define DIGITS 20

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

/* Hash of one id's bytes and a rumor code (the same folding as _idscan's pair hash). */
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

/* One pair's combined aggregates, in one cache line. */
typedef struct {
    int64_t count, first_ts, last_ts, first_share, last_share;
    uint32_t start, len; /* its user id in the data buffer (int32 offsets: under 2 GiB) */
    int32_t rumor;
    float score;
    int8_t action;
    uint8_t mask;
} Pair;

/* A sort record: 16 bytes of the id as a big-endian number (hi, lo), then (id bytes left,
 * capped at 17) and the rumor code, and the pair it stands for. */
typedef struct {
    uint64_t hi, lo;
    uint32_t tie;
    uint32_t pair;
    uint32_t start, len; /* the pair's id, copied here so deeper passes need not read the pair */
} Rec;

/* The big-endian number of up to 8 bytes of ``id`` (zero padded). */
static inline uint64_t be_bytes(const uint8_t *id, int64_t take) {
    if (take >= 8) return __builtin_bswap64(load_le64(id));
    uint64_t key = 0;
    for (int64_t i = 0; i < take; i++) key |= (uint64_t)id[i] << (56 - 8 * i);
    return key;
}

/* The id's bytes [depth, depth + 16) and the tie word of a record (its rumor in the low bits). */
static inline void rec_key(Rec *r, const uint8_t *data, int64_t depth, uint32_t rumor) {
    int64_t left = (int64_t)r->len - depth;
    const uint8_t *id = data + r->start + depth;
    r->hi = be_bytes(id, left < 8 ? left : 8);
    r->lo = left > 8 ? be_bytes(id + 8, left < 16 ? left - 8 : 8) : 0;
    r->tie = ((uint32_t)(left < KEY_BYTES + 1 ? left : KEY_BYTES + 1) << RUMOR_BITS) | rumor;
}

static inline int rec_less(const Rec *a, const Rec *b) {
    if (a->hi != b->hi) return a->hi < b->hi;
    if (a->lo != b->lo) return a->lo < b->lo;
    return a->tie < b->tie;
}

/* Byte ``digit`` of a record, least significant first: the tie word's 4, lo's 8, hi's 8. */
static inline unsigned rec_digit(const Rec *r, int digit) {
    if (digit < 4) return (r->tie >> (8 * digit)) & 0xff;
    if (digit < 12) return (unsigned)(r->lo >> (8 * (digit - 4))) & 0xff;
    return (unsigned)(r->hi >> (8 * (digit - 12))) & 0xff;
}

/* recs[0:n] sorted by (hi, lo, tie): insertion for short runs, else LSD radix through ``tmp``
 * with every digit's counts taken in one pass (digits equal everywhere are skipped). */
static void sort_recs(Rec *recs, Rec *tmp, Py_ssize_t n, Py_ssize_t (*counts)[256]) {
    if (n < SMALL_RUN) {
        for (Py_ssize_t i = 1; i < n; i++) {
            Rec r = recs[i];
            Py_ssize_t j = i;
            while (j > 0 && rec_less(&r, &recs[j - 1])) {
                recs[j] = recs[j - 1];
                j--;
            }
            recs[j] = r;
        }
        return;
    }
    memset(counts, 0, sizeof(Py_ssize_t) * 256 * DIGITS);
    for (Py_ssize_t i = 0; i < n; i++)
        for (int digit = 0; digit < DIGITS; digit++) counts[digit][rec_digit(&recs[i], digit)]++;
    Rec *src = recs, *dst = tmp;
    for (int digit = 0; digit < DIGITS; digit++) {
        Py_ssize_t *c = counts[digit];
        if (c[rec_digit(&src[0], digit)] == n) continue; /* the same byte everywhere */
        Py_ssize_t at = 0;
        for (int b = 0; b < 256; b++) {
            Py_ssize_t k = c[b];
            c[b] = at;
            at += k;
        }
        for (Py_ssize_t i = 0; i < n; i++) dst[c[rec_digit(&src[i], digit)]++] = src[i];
        Rec *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != recs) memcpy(recs, src, (size_t)n * sizeof(Rec));
}

/* recs[0:n] (pairs whose ids agree on their first ``depth`` bytes) in (id, rumor) order. */
static void sort_pairs(Rec *recs, Rec *tmp, Py_ssize_t n, const uint8_t *data, int64_t depth,
                       Py_ssize_t (*counts)[256]) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + PREFETCH < n) __builtin_prefetch(data + recs[i + PREFETCH].start + depth);
        rec_key(&recs[i], data, depth, recs[i].tie & ((1u << RUMOR_BITS) - 1));
    }
    sort_recs(recs, tmp, n, counts);
    /* Runs with the same 16 bytes and more of the id left go on at the next 16. */
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t j = i + 1;
        if ((recs[i].tie >> RUMOR_BITS) == KEY_BYTES + 1) {
            while (j < n && recs[j].hi == recs[i].hi && recs[j].lo == recs[i].lo &&
                   (recs[j].tie >> RUMOR_BITS) == KEY_BYTES + 1)
                j++;
            if (j - i > 1) sort_pairs(recs + i, tmp, j - i, data, depth + KEY_BYTES, counts);
        }
        i = j;
    }
}

/* How many leading bytes every pair's id shares (so the sort starts after them). */
static int64_t common_prefix(const Pair *pairs, Py_ssize_t n, const uint8_t *data) {
    if (n == 0) return 0;
    const uint8_t *base = data + pairs[0].start;
    int64_t lcp = pairs[0].len;
    for (Py_ssize_t k = 1; k < n && lcp > 0; k++) {
        const uint8_t *id = data + pairs[k].start;
        int64_t len = pairs[k].len < lcp ? pairs[k].len : lcp, i = 0;
        while (i < len && id[i] == base[i]) i++;
        lcp = i;
    }
    return lcp;
}

/* A sort record for ids at most 8 bytes long past the common prefix: their bytes as one
 * big-endian word, the tie word as in Rec; no deeper level is ever needed. */
typedef struct {
    uint64_t key;
    uint32_t tie;
    uint32_t pair;
} Short;

#define SHORT_DIGITS 12

static inline unsigned short_digit(const Short *r, int digit) {
    if (digit < 4) return (r->tie >> (8 * digit)) & 0xff;
    return (unsigned)(r->key >> (8 * (digit - 4))) & 0xff;
}

/* recs[0:n] sorted by (key, tie), LSD radix through ``tmp`` as sort_recs does. */
static void sort_short(Short *recs, Short *tmp, Py_ssize_t n, Py_ssize_t (*counts)[256]) {
    memset(counts, 0, sizeof(Py_ssize_t) * 256 * SHORT_DIGITS);
    for (Py_ssize_t i = 0; i < n; i++)
        for (int digit = 0; digit < SHORT_DIGITS; digit++) counts[digit][short_digit(&recs[i], digit)]++;
    Short *src = recs, *dst = tmp;
    for (int digit = 0; digit < SHORT_DIGITS && n > 0; digit++) {
        Py_ssize_t *c = counts[digit];
        if (c[short_digit(&src[0], digit)] == n) continue;
        Py_ssize_t at = 0;
        for (int b = 0; b < 256; b++) {
            Py_ssize_t k = c[b];
            c[b] = at;
            at += k;
        }
        for (Py_ssize_t i = 0; i < n; i++) dst[c[short_digit(&src[i], digit)]++] = src[i];
        Short *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != recs) memcpy(recs, src, (size_t)n * sizeof(Short));
}

/* The pairs' order, (id, rumor) ascending, into ``order``: one 8-byte word per id when every id
 * is at most 8 bytes past the common prefix, else 16 bytes per level (sort_pairs). Returns an
 * error message or NULL. */
static const char *pair_order(const Pair *state, Py_ssize_t groups, const uint8_t *bytes,
                              uint32_t *order) {
    Py_ssize_t m = groups > 0 ? groups : 1;
    int64_t lcp = common_prefix(state, groups, bytes), longest = 0;
    for (Py_ssize_t k = 0; k < groups; k++)
        if ((int64_t)state[k].len - lcp > longest) longest = (int64_t)state[k].len - lcp;
    Py_ssize_t (*counts)[256] = malloc(sizeof(Py_ssize_t) * 256 * DIGITS);
    if (counts == NULL) return "merge_pairs: out of memory";
    const char *error = NULL;
    if (longest <= 8) {
        Short *recs = malloc((size_t)m * sizeof(Short)), *tmp = malloc((size_t)m * sizeof(Short));
        if (recs == NULL || tmp == NULL) error = "merge_pairs: out of memory";
        else {
            for (Py_ssize_t k = 0; k < groups; k++) {
                const Pair *p = &state[k];
                int64_t left = (int64_t)p->len - lcp;
                recs[k].key = be_bytes(bytes + p->start + lcp, left);
                recs[k].tie = ((uint32_t)left << RUMOR_BITS) | (uint32_t)p->rumor;
                recs[k].pair = (uint32_t)k;
            }
            sort_short(recs, tmp, groups, counts);
            for (Py_ssize_t k = 0; k < groups; k++) order[k] = recs[k].pair;
        }
        free(recs);
        free(tmp);
    } else {
        Rec *recs = malloc((size_t)m * sizeof(Rec)), *tmp = malloc((size_t)m * sizeof(Rec));
        if (recs == NULL || tmp == NULL) error = "merge_pairs: out of memory";
        else {
            for (Py_ssize_t k = 0; k < groups; k++) {
                recs[k].pair = (uint32_t)k;
                recs[k].start = state[k].start;
                recs[k].len = state[k].len;
                recs[k].tie = (uint32_t)state[k].rumor;
            }
            sort_pairs(recs, tmp, groups, bytes, lcp, counts);
            for (Py_ssize_t k = 0; k < groups; k++) order[k] = recs[k].pair;
        }
        free(recs);
        free(tmp);
    }
    free(counts);
    return error;
}

PyDoc_STRVAR(merge_pairs_doc,
             "merge_pairs(offsets, width, first, n, data, rumor, count, first_ts, last_ts, action,\n"
             "            mask, first_share, last_share, score, out_offsets, out_data, out_rumor,\n"
             "            out_count, out_first_ts, out_last_ts, out_action, out_mask, out_first_share,\n"
             "            out_last_share, out_score) -> int\n\n"
             "Combine n rows of pair aggregates so each (user id, rumor) appears once, in (user id\n"
             "bytes, rumor) order; returns the number of pairs. Row i is user id i of a string\n"
             "array (no nulls; ``width``-byte offsets from row ``first``) on rumor[i] (int32,\n"
             "0 <= code < 2**27) with count (int64, summed), first_ts and last_ts (int64, min and\n"
             "max), action (int8, max), mask (uint8, or), first_share and last_share (int64 with\n"
             "INT64_MAX / INT64_MIN for none; min and max) and score (float32, max). The pairs'\n"
             "user ids go to out_offsets (int32, n + 1 of them) and out_data (as many bytes as the\n"
             "input's ids take); every other output holds at least n values.");

static PyObject *merge_pairs(PyObject *self, PyObject *args) {
    Py_buffer offsets, data, rumor, count, first_ts, last_ts, action, mask, first_share, last_share;
    Py_buffer score, o_offsets, o_data, o_rumor, o_count, o_first_ts, o_last_ts, o_action, o_mask;
    Py_buffer o_first_share, o_last_share, o_score;
    int width;
    Py_ssize_t first, n, groups = 0;
    const char *error = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*inny*y*y*y*y*y*y*y*y*y*w*w*w*w*w*w*w*w*w*w*w*", &offsets, &width,
                          &first, &n, &data, &rumor, &count, &first_ts, &last_ts, &action, &mask,
                          &first_share, &last_share, &score, &o_offsets, &o_data, &o_rumor,
                          &o_count, &o_first_ts, &o_last_ts, &o_action, &o_mask, &o_first_share,
                          &o_last_share, &o_score))
        return NULL;
    if ((width != 4 && width != 8) || first < 0 || n < 0 || n >= UINT32_MAX ||
        offsets.len < (first + n + (n > 0)) * width || rumor.len < n * 4 || count.len < n * 8 ||
        first_ts.len < n * 8 || last_ts.len < n * 8 || action.len < n || mask.len < n ||
        first_share.len < n * 8 || last_share.len < n * 8 || score.len < n * 4 ||
        o_offsets.len < (n + 1) * 4 || o_rumor.len < n * 4 || o_count.len < n * 8 ||
        o_first_ts.len < n * 8 || o_last_ts.len < n * 8 || o_action.len < n || o_mask.len < n ||
        o_first_share.len < n * 8 || o_last_share.len < n * 8 || o_score.len < n * 4)
        error = "merge_pairs: bad buffer sizes";
    Py_ssize_t slots = 16;
    while (slots < 2 * n) slots <<= 1;
    Py_ssize_t m = n > 0 ? n : 1;
    /* A slot: 0 when empty, else (the hash's top 32 bits << 32) | (pair + 1). */
    uint64_t *table = error ? NULL : calloc((size_t)slots, sizeof(uint64_t));
    Pair *state = error ? NULL : aligned_alloc(64, (size_t)m * sizeof(Pair));
    uint64_t *hashes = error ? NULL : malloc((size_t)m * sizeof(uint64_t));
    if (!error && (table == NULL || state == NULL || hashes == NULL))
        error = "merge_pairs: out of memory";
    if (!error) {
        const uint8_t *offs = offsets.buf, *bytes = data.buf;
        const int32_t *rum = rumor.buf;
        const int64_t *cnt = count.buf, *fts = first_ts.buf, *lts = last_ts.buf;
        const int64_t *fsh = first_share.buf, *lsh = last_share.buf;
        const int8_t *act = action.buf;
        const uint8_t *msk = mask.buf;
        const float *sc = score.buf;
        Py_ssize_t data_len = data.len;
        uint64_t slot_mask = (uint64_t)slots - 1;
        Py_BEGIN_ALLOW_THREADS;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t start = offset_at(offs, width, first + i), end = offset_at(offs, width, first + i + 1);
            if (start < 0 || end < start || end > data_len || end > INT32_MAX) { error = "merge_pairs: bad offsets"; break; }
            if (rum[i] < 0 || rum[i] >= (1 << RUMOR_BITS)) { error = "merge_pairs: rumor out of range"; break; }
            hashes[i] = pair_hash(bytes + start, end - start, rum[i]);
        }
        for (Py_ssize_t i = 0; i < n && !error; i++) {
            if (i + PREFETCH < n) __builtin_prefetch(&table[hashes[i + PREFETCH] & slot_mask]);
            if (i + PREFETCH / 2 < n) {
                uint64_t ahead = table[hashes[i + PREFETCH / 2] & slot_mask];
                if (ahead) __builtin_prefetch(&state[(ahead & 0xffffffffu) - 1]);
            }
            int64_t start = offset_at(offs, width, first + i), end = offset_at(offs, width, first + i + 1);
            int64_t len = end - start;
            uint64_t h = hashes[i], tag = h >> 32, s = h & slot_mask;
            Pair *g = NULL;
            for (;; s = (s + 1) & slot_mask) {
                uint64_t e = table[s];
                if (!e) break;
                if ((e >> 32) != tag) continue;
                Pair *c = &state[(e & 0xffffffffu) - 1];
                if (c->rumor == rum[i] && c->len == len &&
                    memcmp(bytes + c->start, bytes + start, (size_t)len) == 0) {
                    g = c;
                    break;
                }
            }
            if (g == NULL) {
                g = &state[groups];
                table[s] = (tag << 32) | (uint64_t)(groups + 1);
                groups++;
                g->start = (uint32_t)start;
                g->len = (uint32_t)len;
                g->rumor = rum[i];
                g->count = cnt[i];
                g->first_ts = fts[i];
                g->last_ts = lts[i];
                g->first_share = fsh[i];
                g->last_share = lsh[i];
                g->action = act[i];
                g->mask = msk[i];
                g->score = sc[i];
                continue;
            }
            g->count += cnt[i];
            if (fts[i] < g->first_ts) g->first_ts = fts[i];
            if (lts[i] > g->last_ts) g->last_ts = lts[i];
            if (fsh[i] < g->first_share) g->first_share = fsh[i];
            if (lsh[i] > g->last_share) g->last_share = lsh[i];
            if (act[i] > g->action) g->action = act[i];
            g->mask |= msk[i];
            if (sc[i] > g->score) g->score = sc[i];
        }
        free(table);
        free(hashes);
        table = NULL;
        hashes = NULL;
        uint32_t *order = error ? NULL : malloc((size_t)(groups > 0 ? groups : 1) * sizeof(uint32_t));
        if (!error && order == NULL) error = "merge_pairs: out of memory";
        if (!error) error = pair_order(state, groups, bytes, order);
        if (!error) {
            int32_t *ooff = o_offsets.buf;
            uint8_t *odata = o_data.buf;
            int64_t *ocnt = o_count.buf, *ofts = o_first_ts.buf;
            int64_t *olts = o_last_ts.buf, *ofsh = o_first_share.buf, *olsh = o_last_share.buf;
            int32_t *orum = o_rumor.buf;
            int8_t *oact = o_action.buf;
            uint8_t *omsk = o_mask.buf;
            float *osc = o_score.buf;
            ooff[0] = 0;
            for (Py_ssize_t k = 0; k < groups && !error; k++) {
                if (k + PREFETCH < groups) __builtin_prefetch(&state[order[k + PREFETCH]]);
                if (k + PREFETCH / 2 < groups)
                    __builtin_prefetch(bytes + state[order[k + PREFETCH / 2]].start);
                const Pair *g = &state[order[k]];
                if ((Py_ssize_t)ooff[k] + g->len > o_data.len) { error = "merge_pairs: out_data too small"; break; }
                memcpy(odata + ooff[k], bytes + g->start, g->len);
                ooff[k + 1] = ooff[k] + (int32_t)g->len;
                orum[k] = g->rumor;
                ocnt[k] = g->count;
                ofts[k] = g->first_ts;
                olts[k] = g->last_ts;
                ofsh[k] = g->first_share;
                olsh[k] = g->last_share;
                oact[k] = g->action;
                omsk[k] = g->mask;
                osc[k] = g->score;
            }
        }
        free(order);
        Py_END_ALLOW_THREADS;
    }
    free(table);
    free(state);
    free(hashes);
    Py_buffer *all[] = {&offsets, &data, &rumor, &count, &first_ts, &last_ts, &action, &mask,
                        &first_share, &last_share, &score, &o_offsets, &o_data, &o_rumor,
                        &o_count, &o_first_ts, &o_last_ts, &o_action, &o_mask, &o_first_share,
                        &o_last_share, &o_score};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return PyLong_FromSsize_t(groups);
}

static PyMethodDef methods[] = {
    {"merge_pairs", merge_pairs, METH_VARARGS, merge_pairs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pairmerge",
    "The hash merge of partial pair aggregates, with a radix sort of the distinct pairs.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__pairmerge(void) { return PyModule_Create(&module); }
