/* The selective decoder's page header parser: just enough of the Thrift compact protocol to
 * read a Parquet PageHeader (see offline/join/pages.py); anything malformed raises ValueError.
 */
#include "_pqdecode.h"
#include <string.h>

static int64_t read_zigzag(reader *r) {
    uint64_t v = read_varint(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void skip_value(reader *r, int type, int depth);

static void skip_struct(reader *r, int depth) {
    if (depth > 16) {
        r->bad = 1;
        return;
    }
    while (!r->bad) {
        if (r->p >= r->end) {
            r->bad = 1;
            return;
        }
        uint8_t h = *r->p++;
        if (h == 0) return;
        if ((h >> 4) == 0) read_zigzag(r);
        skip_value(r, h & 0x0f, depth + 1);
    }
}

static void skip_value(reader *r, int type, int depth) {
    switch (type) {
    case 1:
    case 2:
        return; /* booleans live in the field header */
    case 3:
        if (r->p >= r->end) r->bad = 1;
        else r->p++;
        return;
    case 4:
    case 5:
    case 6:
        read_varint(r);
        return;
    case 7:
        if (r->end - r->p < 8) r->bad = 1;
        else r->p += 8;
        return;
    case 8: {
        uint64_t len = read_varint(r);
        if (r->bad || (uint64_t)(r->end - r->p) < len) r->bad = 1;
        else r->p += len;
        return;
    }
    case 9:
    case 10: {
        if (r->p >= r->end) {
            r->bad = 1;
            return;
        }
        uint8_t h = *r->p++;
        uint64_t size = h >> 4;
        if (size == 15) size = read_varint(r);
        for (uint64_t i = 0; i < size && !r->bad; i++) {
            if ((h & 0x0f) == 1 || (h & 0x0f) == 2) {
                if (r->p >= r->end) r->bad = 1;
                else r->p++;
            } else {
                skip_value(r, h & 0x0f, depth + 1);
            }
        }
        return;
    }
    case 12:
        skip_struct(r, depth);
        return;
    default:
        r->bad = 1; /* maps and unknown types: never in a page header we read */
    }
}

/* Fields of one page header we use; -1 when absent. */
typedef struct {
    int64_t type, uncompressed, compressed, num_values, encoding, num_nulls, def_len, rep_len;
    int64_t def_encoding, is_compressed;
} page_header;

/* Reads the i32 fields (and v2's bool) of a DataPageHeader, DictionaryPageHeader or
 * DataPageHeaderV2 into ``h``; ``which`` is the PageHeader field id of the struct. */
static void read_sub_header(reader *r, int which, page_header *h) {
    int16_t last = 0;
    while (!r->bad) {
        if (r->p >= r->end) {
            r->bad = 1;
            return;
        }
        uint8_t b = *r->p++;
        if (b == 0) return;
        int type = b & 0x0f;
        int16_t id = (b >> 4) ? (int16_t)(last + (b >> 4)) : (int16_t)read_zigzag(r);
        last = id;
        if (which == 8 && id == 7 && (type == 1 || type == 2)) {
            h->is_compressed = type == 1;
            continue;
        }
        if (type != 5) {
            skip_value(r, type, 1);
            continue;
        }
        int64_t v = read_zigzag(r);
        if (id == 1) h->num_values = v;
        else if (which == 5 && id == 2) h->encoding = v;
        else if (which == 5 && id == 3) h->def_encoding = v;
        else if (which == 7 && id == 2) h->encoding = v;
        else if (which == 8 && id == 2) h->num_nulls = v;
        else if (which == 8 && id == 4) h->encoding = v;
        else if (which == 8 && id == 5) h->def_len = v;
        else if (which == 8 && id == 6) h->rep_len = v;
    }
}

static void read_page_header(reader *r, page_header *h) {
    int16_t last = 0;
    memset(h, 0xff, sizeof *h);
    h->is_compressed = 1;
    while (!r->bad) {
        if (r->p >= r->end) {
            r->bad = 1;
            return;
        }
        uint8_t b = *r->p++;
        if (b == 0) return;
        int type = b & 0x0f;
        int16_t id = (b >> 4) ? (int16_t)(last + (b >> 4)) : (int16_t)read_zigzag(r);
        last = id;
        if (type == 5 && id >= 1 && id <= 4) {
            int64_t v = read_zigzag(r);
            if (id == 1) h->type = v;
            else if (id == 2) h->uncompressed = v;
            else if (id == 3) h->compressed = v;
        } else if (type == 12 && (id == 5 || id == 7 || id == 8)) {
            read_sub_header(r, id, h);
        } else {
            skip_value(r, type, 1);
        }
    }
}

const char pq_page_headers_doc[] =
             "page_headers(chunk) -> list of tuples\n\n"
             "The pages of one column chunk's bytes, in order: (type, data offset, compressed size,\n"
             "uncompressed size, num_values, encoding, num_nulls, def levels bytes, rep levels\n"
             "bytes, def level encoding, is_compressed); -1 for a field the header lacks.";

PyObject *pq_page_headers(PyObject *self, PyObject *args) {
    Py_buffer chunk;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &chunk)) return NULL;
    PyObject *out = PyList_New(0);
    const uint8_t *base = chunk.buf;
    reader r = {base, base + chunk.len, 0};
    while (out != NULL && r.p < r.end) {
        page_header h;
        read_page_header(&r, &h);
        if (r.bad || h.type < 0 || h.compressed < 0 || h.uncompressed < 0 ||
            h.compressed > r.end - r.p) {
            PyErr_SetString(PyExc_ValueError, "page_headers: unreadable page header");
            Py_CLEAR(out);
            break;
        }
        Py_ssize_t data = r.p - base;
        PyObject *t = Py_BuildValue("(LnLLLLLLLLL)", (long long)h.type, data,
                                    (long long)h.compressed, (long long)h.uncompressed,
                                    (long long)h.num_values, (long long)h.encoding,
                                    (long long)h.num_nulls, (long long)h.def_len,
                                    (long long)h.rep_len, (long long)h.def_encoding,
                                    (long long)h.is_compressed);
        if (t == NULL || PyList_Append(out, t) < 0) Py_CLEAR(out);
        Py_XDECREF(t);
        r.p += h.compressed;
    }
    PyBuffer_Release(&chunk);
    return out;
}

