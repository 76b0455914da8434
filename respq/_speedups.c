/* Optional C accelerators: the request parser's common case (respq/protocol.py) and record framing
 * (respq/storage/framing.py, journal.py). Each function has a Python twin that defines what it must return; the
 * tests compare the two.
 *
 * The parser handles only the common shape of a request: complete, canonical multibulk commands ("*N\r\n" then N times
 * "$len\r\n<len bytes>\r\n", every number in digits without sign or leading zero). It stops at the first byte
 * that is anything else, and the Python parser takes that command through its exact, Redis-faithful path. So
 * this code never decides an error or a limit of its own: on input it does not accept, the result is the pure
 * Python parser's by construction, and tests/unit/test_protocol_speedups.py checks both agree on everything.
 *
 * Memory: a command is validated to its last byte before anything is allocated, so a declared count or length
 * costs nothing until its bytes have arrived.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- CRC32C (Castagnoli), the checksum of every stored record ---------------------------------------------- */
/* Same convention as the crc32c package: crc32c_update(previous, data) continues a checksum. */

static uint32_t crc_table[8][256];

static void
crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xff];
}

static uint32_t
crc_software(uint32_t crc, const unsigned char *p, size_t n)
{
    uint32_t c = ~crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        word ^= c;
        c = crc_table[7][word & 0xff] ^ crc_table[6][(word >> 8) & 0xff] ^ crc_table[5][(word >> 16) & 0xff] ^
            crc_table[4][(word >> 24) & 0xff] ^ crc_table[3][(word >> 32) & 0xff] ^
            crc_table[2][(word >> 40) & 0xff] ^ crc_table[1][(word >> 48) & 0xff] ^ crc_table[0][word >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_CRC_SSE42 1
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const unsigned char *p, size_t n)
{
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

static uint32_t (*crc32c_update)(uint32_t, const unsigned char *, size_t) = crc_software;

/* Longest count or length worth trying here: more digits than this is not canonical below the limits anyway. */
#define MAX_DIGITS 18
#define INT_MAX_COUNT 2147483647LL

/* Reads a canonical positive (or "0" when zero_ok) decimal number from p up to a CRLF inside [p, end).
 * Returns the position after the CRLF, or NULL when the number is not canonical or the CRLF is not there. */
static const char *
read_number(const char *p, const char *end, int zero_ok, long long *value)
{
    const char *start = p;
    long long n = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - start >= MAX_DIGITS)
            return NULL;
        n = n * 10 + (*p - '0');
        p++;
    }
    if (p == start || end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return NULL;
    if (*start == '0' && (p - start > 1 || !zero_ok))
        return NULL;
    *value = n;
    return p + 2;
}

/* The end of the canonical command at p, or NULL when there is none (not canonical, or not complete). */
static const char *
scan_command(const char *p, const char *end, long long max_bulk_len, long long *count_out)
{
    long long count, size, i;
    if (p >= end || *p != '*')
        return NULL;
    p = read_number(p + 1, end, 0, &count);
    if (p == NULL || count > INT_MAX_COUNT)
        return NULL;
    for (i = 0; i < count; i++) {
        if (p >= end || *p != '$')
            return NULL;
        p = read_number(p + 1, end, 1, &size);
        if (p == NULL || size > max_bulk_len || end - p < size + 2)
            return NULL;
        p += size;
        if (p[0] != '\r' || p[1] != '\n')
            return NULL;
        p += 2;
    }
    *count_out = count;
    return p;
}

/* A number of a header scan_command accepted: p is just after its '*' or '$'; returns the position after CRLF. */
static const char *
validated_number(const char *p, long long *value)
{
    long long n = 0;
    while (*p != '\r')
        n = n * 10 + (*p++ - '0');
    *value = n;
    return p + 2;
}

/* Builds the argument list of a command scan_command accepted (p at its '*'). */
static PyObject *
build_command(const char *p, long long count)
{
    long long i, size;
    PyObject *argv = PyList_New((Py_ssize_t)count);
    if (argv == NULL)
        return NULL;
    p = validated_number(p + 1, &size);
    for (i = 0; i < count; i++) {
        p = validated_number(p + 1, &size);
        PyObject *arg = PyBytes_FromStringAndSize(p, (Py_ssize_t)size);
        if (arg == NULL) {
            Py_DECREF(argv);
            return NULL;
        }
        PyList_SET_ITEM(argv, (Py_ssize_t)i, arg);
        p += size + 2;
    }
    return argv;
}


/* ---- argument helpers -------------------------------------------------------------------------------------- */

static int
check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t least, Py_ssize_t most)
{
    if (nargs >= least && nargs <= most)
        return 0;
    if (least == most)
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", name, least, nargs);
    else
        PyErr_Format(PyExc_TypeError, "%s takes %zd to %zd arguments (%zd given)", name, least, most, nargs);
    return -1;
}

static int
get_ssize(PyObject *object, Py_ssize_t *value)
{
    *value = PyLong_AsSsize_t(object);
    return *value == -1 && PyErr_Occurred() ? -1 : 0;
}

/* Appends bytes(data[:length]) to list; -1 with an exception set on failure. */
static int
append_bytes(PyObject *list, const unsigned char *data, Py_ssize_t length)
{
    PyObject *item = PyBytes_FromStringAndSize((const char *)data, length);
    if (item == NULL)
        return -1;
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

/* ---- record framing ------------------------------------------------------------------------------------------ */
/* A record: [u32 length][u8 type][u32 crc32c(type + payload)][payload][u32 length], little-endian. */

#define RECORD_OVERHEAD 13
#define MAX_VALUE_LENGTH 0xFFFFFFFFu /* a record's length field is a u32 */

static void
refuse_too_long(void)
{
    PyErr_SetString(PyExc_OverflowError, "a value longer than 4 GiB cannot be framed");
}

static unsigned char *
put_u32(unsigned char *p, uint32_t value)
{
    p[0] = (unsigned char)value;
    p[1] = (unsigned char)(value >> 8);
    p[2] = (unsigned char)(value >> 16);
    p[3] = (unsigned char)(value >> 24);
    return p + 4;
}

static unsigned char *
put_record(unsigned char *p, unsigned char rtype, const unsigned char *payload, size_t length)
{
    uint32_t crc = crc32c_update(crc32c_update(0, &rtype, 1), payload, length);
    p = put_u32(p, (uint32_t)length);
    *p++ = rtype;
    p = put_u32(p, crc);
    memcpy(p, payload, length);
    return put_u32(p + length, (uint32_t)length);
}

/* The bytes of every item of a sequence of buffers (bytes, in practice), held until release_items. */
typedef struct {
    PyObject *fast;
    Py_ssize_t count;
    Py_buffer *views;
} Items;

static void
release_items(Items *items)
{
    if (items->views != NULL) {
        for (Py_ssize_t i = 0; i < items->count; i++)
            if (items->views[i].obj != NULL)
                PyBuffer_Release(&items->views[i]);
        PyMem_Free(items->views);
    }
    Py_XDECREF(items->fast);
}

/* Fills ``items`` and the total of their lengths; -1 with an exception set (and nothing held) on failure. */
static int
get_items(PyObject *sequence, Items *items, size_t *total)
{
    items->fast = PySequence_Fast(sequence, "expected a sequence of bytes");
    items->views = NULL;
    items->count = 0;
    if (items->fast == NULL)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items->fast);
    items->views = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Py_buffer));
    if (items->views == NULL) {
        Py_DECREF(items->fast);
        items->fast = NULL;
        PyErr_NoMemory();
        return -1;
    }
    PyObject **objects = PySequence_Fast_ITEMS(items->fast);
    *total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyObject_GetBuffer(objects[i], &items->views[i], PyBUF_SIMPLE) < 0) {
            items->count = i;
            release_items(items);
            return -1;
        }
        items->count = i + 1;
        if ((size_t)items->views[i].len > MAX_VALUE_LENGTH) {
            release_items(items);
            refuse_too_long();
            return -1;
        }
        *total += (size_t)items->views[i].len;
    }
    return 0;
}

static int
get_rtype(PyObject *object, unsigned char *rtype)
{
    long value = PyLong_AsLong(object);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < 0 || value > 255) {
        PyErr_SetString(PyExc_ValueError, "record type must be 0..255");
        return -1;
    }
    *rtype = (unsigned char)value;
    return 0;
}

PyDoc_STRVAR(frame_doc, "frame(rtype, payload) -> bytes\n\nOne record (respq.storage.framing.py_frame).");

static PyObject *
frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char rtype;
    Py_buffer view;
    if (check_nargs("frame", nargs, 2, 2) < 0 || get_rtype(args[0], &rtype) < 0 ||
        PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if ((size_t)view.len > MAX_VALUE_LENGTH) {
        PyBuffer_Release(&view);
        refuse_too_long();
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, view.len + RECORD_OVERHEAD);
    if (out != NULL)
        put_record((unsigned char *)PyBytes_AS_STRING(out), rtype, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return out;
}

PyDoc_STRVAR(frame_values_doc,
"frame_values(rtype, values) -> bytes\n\nOne record per value, in one buffer (respq.storage.framing.py_frame_values).");

static PyObject *
frame_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char rtype;
    Items items;
    size_t total;
    if (check_nargs("frame_values", nargs, 2, 2) < 0 || get_rtype(args[0], &rtype) < 0 ||
        get_items(args[1], &items, &total) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(total + RECORD_OVERHEAD * (size_t)items.count));
    if (out != NULL) {
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; i < items.count; i++)
            p = put_record(p, rtype, items.views[i].buf, (size_t)items.views[i].len);
    }
    release_items(&items);
    return out;
}

PyDoc_STRVAR(encode_values_doc,
"encode_values(values) -> bytes\n\nEach value after its u32 length (respq.storage.journal.py_encode_values).");

static PyObject *
encode_values(PyObject *module, PyObject *values)
{
    Items items;
    size_t total;
    if (get_items(values, &items, &total) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(total + 4 * (size_t)items.count));
    if (out != NULL) {
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; i < items.count; i++) {
            p = put_u32(p, (uint32_t)items.views[i].len);
            memcpy(p, items.views[i].buf, (size_t)items.views[i].len);
            p += items.views[i].len;
        }
    }
    release_items(&items);
    return out;
}

static uint32_t
get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

PyDoc_STRVAR(scan_records_doc,
"scan_records(data, pos, limit, count) -> (payloads, pos)\n\n"
"The payloads of up to ``count`` consecutive well-formed records of data[pos:limit], and the position after\n"
"them; stops early at a record that is incomplete or fails a check (respq.storage.framing.py_scan_records).");

/* The scan both directions share: from ``pos`` towards ``bound`` (above it forward, below it backward), each record
   whole inside the region, its two lengths agreeing and its checksum right; stops at the first that is not. */
static PyObject *
scan(const char *name, PyObject *const *args, Py_ssize_t nargs, int backward)
{
    Py_buffer view;
    Py_ssize_t pos, bound, count;
    if (check_nargs(name, nargs, 4, 4) < 0 || get_ssize(args[1], &pos) < 0 || get_ssize(args[2], &bound) < 0 ||
        get_ssize(args[3], &count) < 0 || PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (!backward && bound > view.len)
        bound = view.len;
    if (backward ? bound < 0 || pos > view.len : pos < 0) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, backward ? "%s: region outside the data" : "%s: negative position", name);
        return NULL;
    }
    PyObject *payloads = PyList_New(0);
    if (payloads == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *data = view.buf;
    while (count > 0) {
        Py_ssize_t room = backward ? pos - bound : bound - pos;
        if (room < RECORD_OVERHEAD)
            break;
        uint32_t length = get_u32(backward ? data + pos - 4 : data + pos);
        if ((uint64_t)length > (uint64_t)(room - RECORD_OVERHEAD))
            break;
        const unsigned char *record = backward ? data + pos - RECORD_OVERHEAD - length : data + pos;
        unsigned char rtype = record[4];
        if (get_u32(backward ? record : record + 9 + length) != length)
            break;
        if (crc32c_update(crc32c_update(0, &rtype, 1), record + 9, length) != get_u32(record + 5))
            break;
        if (append_bytes(payloads, record + 9, (Py_ssize_t)length) < 0) {
            Py_DECREF(payloads);
            PyBuffer_Release(&view);
            return NULL;
        }
        pos += backward ? -(RECORD_OVERHEAD + (Py_ssize_t)length) : RECORD_OVERHEAD + (Py_ssize_t)length;
        count--;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", payloads, pos);
}

static PyObject *
scan_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return scan("scan_records", args, nargs, 0);
}

PyDoc_STRVAR(scan_records_backward_doc,
"scan_records_backward(data, end, low, count) -> (payloads, start)\n\n"
"The payloads of up to ``count`` consecutive well-formed records of data[low:end] read from ``end`` towards ``low``\n"
"(last record first), and where the last one read starts; stops early at a record that is incomplete or fails a\n"
"check (respq.storage.framing.py_scan_records_backward).");

static PyObject *
scan_records_backward(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return scan("scan_records_backward", args, nargs, 1);
}

PyDoc_STRVAR(pread_many_doc,
"pread_many(fd, offsets, lengths) -> list\n\n"
"bytes of lengths[i] read at offsets[i] for each i, with the GIL released for the reads; a read cut short by the\n"
"end of the file gives fewer bytes (respq.storage.fileio.py_pread_many).");

typedef struct {
    off_t offset;
    Py_ssize_t length;
    Py_ssize_t got;
    char *buf;
} Read;

static PyObject *
pread_many(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    if (check_nargs("pread_many", nargs, 3, 3) < 0)
        return NULL;
    long fd_value = PyLong_AsLong(args[0]);
    if (fd_value == -1 && PyErr_Occurred())
        return NULL;
    if (fd_value < 0 || fd_value > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "pread_many: bad file descriptor");
        return NULL;
    }
    fd = (int)fd_value;
    PyObject *offsets = PySequence_Fast(args[1], "pread_many: offsets must be a sequence");
    if (offsets == NULL)
        return NULL;
    PyObject *lengths = PySequence_Fast(args[2], "pread_many: lengths must be a sequence");
    if (lengths == NULL) {
        Py_DECREF(offsets);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(offsets);
    PyObject *out = NULL;
    Read *reads = NULL;
    if (PySequence_Fast_GET_SIZE(lengths) != n) {
        PyErr_SetString(PyExc_ValueError, "pread_many: offsets and lengths differ in number");
        goto done;
    }
    reads = PyMem_Malloc(sizeof(Read) * (size_t)(n ? n : 1));
    out = PyList_New(n);
    if (reads == NULL || out == NULL) {
        Py_CLEAR(out);
        if (reads == NULL)
            PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t offset, length;
        if (get_ssize(PySequence_Fast_GET_ITEM(offsets, i), &offset) < 0 ||
            get_ssize(PySequence_Fast_GET_ITEM(lengths, i), &length) < 0) {
            Py_CLEAR(out);
            goto done;
        }
        if (offset < 0 || length < 0) {
            PyErr_SetString(PyExc_ValueError, "pread_many: negative offset or length");
            Py_CLEAR(out);
            goto done;
        }
        PyObject *item = PyBytes_FromStringAndSize(NULL, length);
        if (item == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, item);
        reads[i] = (Read){(off_t)offset, length, 0, PyBytes_AS_STRING(item)};
    }
    int error = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !error; i++) {
        Read *read = &reads[i];
        while (read->got < read->length) {
            ssize_t done = pread(fd, read->buf + read->got, (size_t)(read->length - read->got),
                                 read->offset + read->got);
            if (done < 0) {
                if (errno == EINTR)
                    continue;
                error = errno;
                break;
            }
            if (done == 0)
                break; /* end of file: this value comes back short */
            read->got += done;
        }
    }
    Py_END_ALLOW_THREADS
    if (error) {
        errno = error;
        PyErr_SetFromErrno(PyExc_OSError);
        Py_CLEAR(out);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (reads[i].got < reads[i].length) {
            PyObject *item = PyList_GET_ITEM(out, i);
            if (_PyBytes_Resize(&item, reads[i].got) < 0) {
                PyList_SET_ITEM(out, i, Py_NewRef(Py_None)); /* the resize freed the item */
                Py_CLEAR(out);
                goto done;
            }
            PyList_SET_ITEM(out, i, item);
        }
    }
done:
    PyMem_Free(reads);
    Py_DECREF(offsets);
    Py_DECREF(lengths);
    return out;
}

/* The values of a length-prefixed list from ``start`` on: decode_values' 4-byte little-endian lengths, or
 * decode_fields' LEB128 varints. ValueError(``malformed``) unless they fill the data exactly. */
static PyObject *
decode_list(const char *name, PyObject *const *args, Py_ssize_t nargs, int varint, const char *malformed)
{
    Py_buffer view;
    Py_ssize_t pos = 0;
    if (check_nargs(name, nargs, 1, 2) < 0 || (nargs == 2 && get_ssize(args[1], &pos) < 0) ||
        PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *values = PyList_New(0);
    if (values == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *data = view.buf;
    Py_ssize_t end = view.len;
    if (pos < 0 || pos > end)
        goto malformed;
    while (pos < end) {
        uint64_t length = 0;
        if (varint) {
            int shift = 0;
            for (;;) {
                if (pos >= end || shift > 56)
                    goto malformed;
                unsigned char byte = data[pos++];
                length |= (uint64_t)(byte & 0x7F) << shift;
                if (!(byte & 0x80))
                    break;
                shift += 7;
            }
        } else {
            if (end - pos < 4)
                goto malformed;
            length = get_u32(data + pos);
            pos += 4;
        }
        if (length > (uint64_t)(end - pos))
            goto malformed;
        if (append_bytes(values, data + pos, (Py_ssize_t)length) < 0) {
            Py_DECREF(values);
            PyBuffer_Release(&view);
            return NULL;
        }
        pos += (Py_ssize_t)length;
    }
    PyBuffer_Release(&view);
    return values;
malformed:
    Py_DECREF(values);
    PyBuffer_Release(&view);
    PyErr_SetString(PyExc_ValueError, malformed);
    return NULL;
}

PyDoc_STRVAR(decode_values_doc,
"decode_values(data, start=0) -> list\n\nThe values encode_values wrote, from ``start`` on "
"(respq.storage.journal.py_decode_values); ValueError if they do not fill the data exactly.");

static PyObject *
decode_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_list("decode_values", args, nargs, 0, "malformed value list");
}

PyDoc_STRVAR(encode_fields_doc,
"encode_fields(values) -> bytes\n\nEach value after its length as a LEB128 varint "
"(respq.types.streams.model.py_encode_fields).");

static PyObject *
encode_fields(PyObject *module, PyObject *values)
{
    Items items;
    size_t total;
    if (get_items(values, &items, &total) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(total + 10 * (size_t)items.count));
    if (out != NULL) {
        unsigned char *base = (unsigned char *)PyBytes_AS_STRING(out), *p = base;
        for (Py_ssize_t i = 0; i < items.count; i++) {
            uint64_t length = (uint64_t)items.views[i].len;
            while (length >= 0x80) {
                *p++ = (unsigned char)(length | 0x80);
                length >>= 7;
            }
            *p++ = (unsigned char)length;
            memcpy(p, items.views[i].buf, (size_t)items.views[i].len);
            p += items.views[i].len;
        }
        if (_PyBytes_Resize(&out, p - base) < 0)
            out = NULL;
    }
    release_items(&items);
    return out;
}

PyDoc_STRVAR(decode_fields_doc,
"decode_fields(data, start=0) -> list\n\nThe values encode_fields wrote, from ``start`` on "
"(respq.types.streams.model.py_decode_fields); ValueError if they do not fill the data exactly.");

static PyObject *
decode_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_list("decode_fields", args, nargs, 1, "malformed stream entry");
}

PyDoc_STRVAR(crc32c_doc,
"crc32c(data, value=0, software=False) -> int\n\n"
"CRC32C of data, continuing from value, with the implementation framing uses or the portable one (for the tests).");

static PyObject *
crc32c(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    unsigned long value = 0;
    uint32_t (*update)(uint32_t, const unsigned char *, size_t) = crc32c_update;
    if (check_nargs("crc32c", nargs, 1, 3) < 0)
        return NULL;
    if (nargs == 3) {
        int software = PyObject_IsTrue(args[2]);
        if (software < 0)
            return NULL;
        if (software)
            update = crc_software;
    }
    if (nargs >= 2) {
        value = PyLong_AsUnsignedLong(args[1]);
        if (value == (unsigned long)-1 && PyErr_Occurred())
            return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint32_t crc = update((uint32_t)value, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

PyDoc_STRVAR(parse_multibulk_doc,
"parse_multibulk(buf, pos, max_bulk_len, commands) -> int\n\n"
"Appends to ``commands`` the argument list of every complete, canonical multibulk command found in ``buf``\n"
"from ``pos`` on, and returns the position of the first byte it did not consume.");

static PyObject *
parse_multibulk(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t pos;
    long long max_bulk_len, count;
    if (check_nargs("parse_multibulk", nargs, 4, 4) < 0)
        return NULL;
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "parse_multibulk: buf must be bytes");
        return NULL;
    }
    if (!PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "parse_multibulk: commands must be a list");
        return NULL;
    }
    if (get_ssize(args[1], &pos) < 0)
        return NULL;
    max_bulk_len = PyLong_AsLongLong(args[2]);
    if (max_bulk_len == -1 && PyErr_Occurred())
        return NULL;
    const char *base = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (pos < 0 || pos > size) {
        PyErr_SetString(PyExc_ValueError, "parse_multibulk: pos out of range");
        return NULL;
    }
    const char *p = base + pos, *end = base + size;
    for (;;) {
        const char *next = scan_command(p, end, max_bulk_len, &count);
        if (next == NULL)
            break;
        PyObject *argv = build_command(p, count);
        if (argv == NULL)
            return NULL;
        int failed = PyList_Append(args[3], argv);
        Py_DECREF(argv);
        if (failed)
            return NULL;
        p = next;
    }
    return PyLong_FromSsize_t(p - base);
}

/* ---- strings: long double arithmetic and LCS, as Redis 7.0 computes them ------------------------------------ */
/* INCRBYFLOAT and HINCRBYFLOAT add in C's long double (80-bit extended on x86-64) and print the sum with "%.17Lf"
 * less its trailing zeros (util.c: ld2string, LD_STR_HUMAN), which is why 0.1 + 0.2 answers 0.3 there. A long double
 * travels through Python as the bytes of its representation (padding zeroed), opaque to everything but these
 * functions; respq/commands/floats.py holds the Python twins, an exact emulation of the same arithmetic. */

#define MAX_LONG_DOUBLE_CHARS (5 * 1024) /* Redis's buffer for a long double as text, both ways */

typedef union {
    long double value;
    unsigned char bytes[sizeof(long double)];
} LongDouble;

static PyObject *
long_double_bytes(long double value)
{
    LongDouble ld;
    memset(&ld, 0, sizeof ld);
    ld.value = value;
    return PyBytes_FromStringAndSize((const char *)ld.bytes, sizeof ld.bytes);
}

static int
long_double_arg(PyObject *arg, long double *value)
{
    LongDouble ld;
    if (!PyBytes_Check(arg) || PyBytes_GET_SIZE(arg) != (Py_ssize_t)sizeof ld.bytes) {
        PyErr_SetString(PyExc_TypeError, "expected a long double from ld_parse or ld_add");
        return -1;
    }
    memcpy(ld.bytes, PyBytes_AS_STRING(arg), sizeof ld.bytes);
    *value = ld.value;
    return 0;
}

PyDoc_STRVAR(ld_parse_doc,
"ld_parse(text) -> bytes | None\n\nThe long double ``text`` spells, as Redis's string2ld reads it (strtold over the "
"whole text: no leading space, nothing after, no NaN, no overflow or underflow to zero, under 5 KiB), or None.");

static PyObject *
ld_parse(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    char buf[MAX_LONG_DOUBLE_CHARS];
    char *end;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    size_t length = (size_t)view.len;
    if (length == 0 || length >= sizeof buf) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    memcpy(buf, view.buf, length);
    buf[length] = '\0';
    PyBuffer_Release(&view);
    errno = 0;
    long double value = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end != '\0' || (size_t)(end - buf) != length ||
        (errno == ERANGE && (value == HUGE_VALL || value == -HUGE_VALL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        Py_RETURN_NONE;
    return long_double_bytes(value);
}

PyDoc_STRVAR(ld_add_doc, "ld_add(a, b) -> bytes\n\nThe long double a + b.");

static PyObject *
ld_add(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long double a, b;
    if (check_nargs("ld_add", nargs, 2, 2) < 0 || long_double_arg(args[0], &a) < 0 ||
        long_double_arg(args[1], &b) < 0)
        return NULL;
    volatile long double sum = a + b; /* rounded to long double here, whatever the compiler keeps in registers */
    return long_double_bytes(sum);
}

PyDoc_STRVAR(ld_is_finite_doc, "ld_is_finite(a) -> bool\n\nNeither NaN nor infinite.");

static PyObject *
ld_is_finite(PyObject *module, PyObject *arg)
{
    long double value;
    if (long_double_arg(arg, &value) < 0)
        return NULL;
    return PyBool_FromLong(!isnan(value) && !isinf(value));
}

PyDoc_STRVAR(ld_format_doc,
"ld_format(a) -> bytes\n\nThe long double as Redis prints it for humans (ld2string, LD_STR_HUMAN): \"%.17Lf\" "
"without trailing zeros (nor a trailing point), \"-0\" as \"0\", infinities as \"inf\" and \"-inf\".");

static PyObject *
ld_format(PyObject *module, PyObject *arg)
{
    long double value;
    char buf[MAX_LONG_DOUBLE_CHARS];
    if (long_double_arg(arg, &value) < 0)
        return NULL;
    if (isinf(value))
        return PyBytes_FromString(value > 0 ? "inf" : "-inf");
    int written = snprintf(buf, sizeof buf, "%.17Lf", value);
    if (written < 0 || (size_t)written + 1 > sizeof buf) {
        PyErr_SetString(PyExc_ValueError, "ld_format: no room");
        return NULL;
    }
    size_t length = (size_t)written;
    if (strchr(buf, '.') != NULL) {
        while (buf[length - 1] == '0')
            length--;
        if (buf[length - 1] == '.')
            length--;
    }
    if (length == 2 && buf[0] == '-' && buf[1] == '0')
        return PyBytes_FromString("0");
    return PyBytes_FromStringAndSize(buf, (Py_ssize_t)length);
}

PyDoc_STRVAR(lcs_doc,
"lcs(a, b) -> (length, lcs, ranges) | None\n\n"
"The longest common subsequence of two byte strings as Redis's LCS finds it (the dynamic programming table, then a\n"
"walk back from its end): its length, the subsequence, and the matched ranges in the order Redis emits them, each\n"
"(a_start, a_end, b_start, b_end, length). None when the table cannot be allocated. The GIL is released while the\n"
"table is built.");

static PyObject *
lcs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer va, vb;
    PyObject *result = NULL, *text = NULL, *ranges = NULL;
    if (check_nargs("lcs", nargs, 2, 2) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[0], &va, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &vb, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&va);
        return NULL;
    }
    const unsigned char *a = va.buf, *b = vb.buf;
    if ((uint64_t)va.len >= UINT32_MAX - 1 || (uint64_t)vb.len >= UINT32_MAX - 1) {
        PyErr_SetString(PyExc_ValueError, "lcs: string too long");
        goto done;
    }
    uint32_t alen = (uint32_t)va.len, blen = (uint32_t)vb.len;
    uint64_t cells = (uint64_t)(alen + 1) * (blen + 1);
    uint32_t *table = cells <= SIZE_MAX / sizeof(uint32_t) ? malloc((size_t)cells * sizeof(uint32_t)) : NULL;
    if (table == NULL) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
#define LCS_AT(i, j) table[(uint64_t)(j) + (uint64_t)(i) * (blen + 1)]
    Py_BEGIN_ALLOW_THREADS
    for (uint32_t i = 0; i <= alen; i++) {
        for (uint32_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0)
                LCS_AT(i, j) = 0;
            else if (a[i - 1] == b[j - 1])
                LCS_AT(i, j) = LCS_AT(i - 1, j - 1) + 1;
            else {
                uint32_t up = LCS_AT(i - 1, j), left = LCS_AT(i, j - 1);
                LCS_AT(i, j) = up > left ? up : left;
            }
        }
    }
    Py_END_ALLOW_THREADS
    uint32_t length = LCS_AT(alen, blen), idx = length;
    text = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
    ranges = PyList_New(0);
    if (text == NULL || ranges == NULL)
        goto free_table;
    char *out = PyBytes_AS_STRING(text);
    /* The walk back, emitting each contiguous run of matches when it ends (Redis's order and rules). */
    uint32_t a_start = alen, a_end = 0, b_start = 0, b_end = 0; /* a_start == alen: no run open */
    uint32_t i = alen, j = blen;
    while (i > 0 && j > 0) {
        int emit = 0;
        if (a[i - 1] == b[j - 1]) {
            out[idx - 1] = (char)a[i - 1];
            if (a_start == alen) {
                a_start = a_end = i - 1;
                b_start = b_end = j - 1;
            } else if (a_start == i && b_start == j) {
                a_start--;
                b_start--;
            } else {
                emit = 1;
            }
            if (a_start == 0 || b_start == 0)
                emit = 1;
            idx--;
            i--;
            j--;
        } else {
            if (LCS_AT(i - 1, j) > LCS_AT(i, j - 1))
                i--;
            else
                j--;
            if (a_start != alen)
                emit = 1;
        }
        if (emit) {
            PyObject *range = Py_BuildValue("(IIIII)", a_start, a_end, b_start, b_end, a_end - a_start + 1);
            if (range == NULL || PyList_Append(ranges, range) < 0) {
                Py_XDECREF(range);
                goto free_table;
            }
            Py_DECREF(range);
            a_start = alen;
        }
    }
#undef LCS_AT
    result = Py_BuildValue("(IOO)", length, text, ranges);
free_table:
    free(table);
done:
    Py_XDECREF(text);
    Py_XDECREF(ranges);
    PyBuffer_Release(&va);
    PyBuffer_Release(&vb);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"parse_multibulk", (PyCFunction)(void (*)(void))parse_multibulk, METH_FASTCALL, parse_multibulk_doc},
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL, frame_doc},
    {"frame_values", (PyCFunction)(void (*)(void))frame_values, METH_FASTCALL, frame_values_doc},
    {"encode_values", (PyCFunction)encode_values, METH_O, encode_values_doc},
    {"scan_records", (PyCFunction)(void (*)(void))scan_records, METH_FASTCALL, scan_records_doc},
    {"pread_many", (PyCFunction)(void (*)(void))pread_many, METH_FASTCALL, pread_many_doc},
    {"scan_records_backward", (PyCFunction)(void (*)(void))scan_records_backward, METH_FASTCALL,
     scan_records_backward_doc},
    {"decode_values", (PyCFunction)(void (*)(void))decode_values, METH_FASTCALL, decode_values_doc},
    {"encode_fields", (PyCFunction)encode_fields, METH_O, encode_fields_doc},
    {"decode_fields", (PyCFunction)(void (*)(void))decode_fields, METH_FASTCALL, decode_fields_doc},
    {"crc32c", (PyCFunction)(void (*)(void))crc32c, METH_FASTCALL, crc32c_doc},
    {"ld_parse", (PyCFunction)ld_parse, METH_O, ld_parse_doc},
    {"ld_add", (PyCFunction)(void (*)(void))ld_add, METH_FASTCALL, ld_add_doc},
    {"ld_is_finite", (PyCFunction)ld_is_finite, METH_O, ld_is_finite_doc},
    {"ld_format", (PyCFunction)ld_format, METH_O, ld_format_doc},
    {"lcs", (PyCFunction)(void (*)(void))lcs, METH_FASTCALL, lcs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "respq._speedups", "C accelerators for respq's request parser, record framing and string arithmetic.", -1,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    crc_init();
#ifdef HAVE_CRC_SSE42
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        crc32c_update = crc_sse42;
#endif
    PyObject *module = PyModule_Create(&speedups_module);
    if (module != NULL && PyModule_AddStringConstant(module, "crc32c_implementation",
                                                     crc32c_update == crc_software ? "software" : "sse4.2") < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
