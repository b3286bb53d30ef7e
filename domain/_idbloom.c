/* The member filter's test in C: domain/membership.py's ``MemberFilter.contains_many`` (the
 * numpy reference; tests compare the two, and this digest with hashlib's).
 *
 * digest16(data) -> bytes: the 16-byte unkeyed BLAKE2b digest of ``data`` (RFC 7693), as
 * ``hashlib.blake2b(data, digest_size=16).digest()``.
 * contains(bits, k, m, user_ids) -> list[bool]: for each id (str, hashed as UTF-8), whether
 * all k bit positions (h1 mod m + i * (1 + h2 mod (m - 1))) mod m, i < k, are set in ``bits``
 * (little-endian bit order), h1 and h2 the digest's two little-endian 64-bit halves.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const unsigned char SIGMA[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

#define G(a, b, c, d, x, y)             \
    do {                                \
        v[a] = v[a] + v[b] + (x);       \
        v[d] = rotr(v[d] ^ v[a], 32);   \
        v[c] = v[c] + v[d];             \
        v[b] = rotr(v[b] ^ v[c], 24);   \
        v[a] = v[a] + v[b] + (y);       \
        v[d] = rotr(v[d] ^ v[a], 16);   \
        v[c] = v[c] + v[d];             \
        v[b] = rotr(v[b] ^ v[c], 63);   \
    } while (0)

/* One compression of the 128-byte ``block``; ``t`` bytes hashed so far, ``last`` the final. */
static void compress(uint64_t h[8], const unsigned char block[128], uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = IV[i];
    }
    v[12] ^= t; /* the counter's high word stays 0: inputs are far below 2**64 bytes */
    if (last) v[14] = ~v[14];
    for (int r = 0; r < 12; r++) {
        const unsigned char *s = SIGMA[r % 10];
        G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* The 16-byte digest's two halves (h[0], h[1] as the digest's little-endian words). */
static void digest16(const unsigned char *data, Py_ssize_t n, uint64_t *h1, uint64_t *h2) {
    uint64_t h[8];
    unsigned char block[128];
    memcpy(h, IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ 16; /* depth 1, fanout 1, no key, 16-byte digest */
    uint64_t t = 0;
    while (n > 128) {
        t += 128;
        compress(h, data, t, 0);
        data += 128;
        n -= 128;
    }
    memset(block, 0, sizeof block);
    memcpy(block, data, (size_t)n);
    t += (uint64_t)n;
    compress(h, block, t, 1);
    *h1 = h[0];
    *h2 = h[1];
}

static PyObject *py_digest16(PyObject *self, PyObject *args) {
    Py_buffer data;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    uint64_t h1, h2;
    digest16((const unsigned char *)data.buf, data.len, &h1, &h2);
    PyBuffer_Release(&data);
    unsigned char out[16];
    for (int i = 0; i < 8; i++) {
        out[i] = (unsigned char)(h1 >> (8 * i));
        out[8 + i] = (unsigned char)(h2 >> (8 * i));
    }
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

static PyObject *contains(PyObject *self, PyObject *args) {
    const unsigned char *bits;
    Py_ssize_t nbits;
    unsigned long long k, m;
    PyObject *ids;
    (void)self;
    if (!PyArg_ParseTuple(args, "y#KKO!", &bits, &nbits, &k, &m, &PyList_Type, &ids)) return NULL;
    if (m < 2 || (unsigned long long)nbits < (m + 7) / 8) {
        PyErr_SetString(PyExc_ValueError, "contains: bits shorter than m, or m < 2");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(ids);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *u = PyList_GET_ITEM(ids, i);
        Py_ssize_t len;
        const char *s = PyUnicode_Check(u) ? PyUnicode_AsUTF8AndSize(u, &len) : NULL;
        if (s == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "contains: ids are str");
            Py_DECREF(out);
            return NULL;
        }
        uint64_t h1, h2;
        digest16((const unsigned char *)s, len, &h1, &h2);
        uint64_t p = h1 % m, step = 1 + h2 % (m - 1);
        int hit = 1;
        for (unsigned long long j = 0; j < k; j++) {
            if (!((bits[p >> 3] >> (p & 7)) & 1)) {
                hit = 0;
                break;
            }
            p = (p + step) % m; /* p, step < m < 2**32: no overflow */
        }
        PyObject *b = hit ? Py_True : Py_False;
        Py_INCREF(b);
        PyList_SET_ITEM(out, i, b);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"digest16", py_digest16, METH_VARARGS, "16-byte BLAKE2b digest (domain/membership.py)."},
    {"contains", contains, METH_VARARGS, "The member filter's test of many ids."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_idbloom",
                                    "The member filter's test in C (domain/membership.py).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__idbloom(void) { return PyModule_Create(&module); }
