/* Shared by the selective decoder's two C files (_pqdecode.c, _pqthrift.c). */
#ifndef DEBUNK_PQDECODE_H
#define DEBUNK_PQDECODE_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* A cursor over bytes; ``bad`` is set when a read runs past ``end`` or is malformed. */
typedef struct {
    const uint8_t *p, *end;
    int bad;
} reader;

static inline uint64_t read_varint(reader *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) break;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

PyObject *pq_page_headers(PyObject *self, PyObject *args);
extern const char pq_page_headers_doc[];

#endif
