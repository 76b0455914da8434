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
#include <structmember.h>
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
    /* A list or tuple of bytes (what every caller passes) is read in place, without a buffer request per value. */
    if (PyList_CheckExact(values) || PyTuple_CheckExact(values)) {
        Py_ssize_t count = PySequence_Fast_GET_SIZE(values), i;
        PyObject **objects = PySequence_Fast_ITEMS(values);
        size_t length = 0;
        for (i = 0; i < count; i++) {
            if (!PyBytes_CheckExact(objects[i]) || (size_t)PyBytes_GET_SIZE(objects[i]) > MAX_VALUE_LENGTH)
                break;  /* the general path below takes it (and refuses a value too long) */
            length += (size_t)PyBytes_GET_SIZE(objects[i]);
        }
        if (i == count) {
            PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(length + 4 * (size_t)count));
            if (out == NULL)
                return NULL;
            unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
            for (i = 0; i < count; i++) {
                Py_ssize_t len = PyBytes_GET_SIZE(objects[i]);
                p = put_u32(p, (uint32_t)len);
                memcpy(p, PyBytes_AS_STRING(objects[i]), (size_t)len);
                p += len;
            }
            return out;
        }
    }
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

PyDoc_STRVAR(encode_pairs_doc,
"encode_pairs(head, mapping) -> bytes | None\n\n"
"``head`` then encode_values of the dict's keys and values interleaved, in its order, when every one is bytes; None\n"
"otherwise (respq.types.hashes.model.py_encode_pairs).");

static PyObject *
encode_pairs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("encode_pairs", nargs, 2, 2) < 0)
        return NULL;
    PyObject *head = args[0], *mapping = args[1], *key, *value;
    if (!PyBytes_CheckExact(head) || !PyDict_CheckExact(mapping)) {
        PyErr_SetString(PyExc_TypeError, "encode_pairs: a bytes object and a dict");
        return NULL;
    }
    Py_ssize_t pos = 0;
    size_t total = (size_t)PyBytes_GET_SIZE(head);
    while (PyDict_Next(mapping, &pos, &key, &value)) {
        if (!PyBytes_CheckExact(key) || !PyBytes_CheckExact(value) ||
            (size_t)PyBytes_GET_SIZE(key) > MAX_VALUE_LENGTH || (size_t)PyBytes_GET_SIZE(value) > MAX_VALUE_LENGTH)
            Py_RETURN_NONE;
        total += (size_t)PyBytes_GET_SIZE(key) + (size_t)PyBytes_GET_SIZE(value) + 8;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (out == NULL)
        return NULL;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    memcpy(p, PyBytes_AS_STRING(head), (size_t)PyBytes_GET_SIZE(head));
    p += PyBytes_GET_SIZE(head);
    pos = 0;
    while (PyDict_Next(mapping, &pos, &key, &value)) {
        Py_ssize_t len = PyBytes_GET_SIZE(key);
        p = put_u32(p, (uint32_t)len);
        memcpy(p, PyBytes_AS_STRING(key), (size_t)len);
        p += len;
        len = PyBytes_GET_SIZE(value);
        p = put_u32(p, (uint32_t)len);
        memcpy(p, PyBytes_AS_STRING(value), (size_t)len);
        p += len;
    }
    return out;
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

/* ---- Redis listpack sizes (streamlog.py_lp_entry) -------------------------------------------------------------- */

/* Bytes of an integer element of a listpack: its encoding and the one-byte back length (listpack.c). */
static long long
lp_int_size(int64_t v)
{
    if (v >= 0 && v <= 127)
        return 2;
    if (v >= -4096 && v <= 4095)
        return 3;
    if (v >= -32768 && v <= 32767)
        return 4;
    if (v >= -8388608 && v <= 8388607)
        return 5;
    if (v >= -2147483648LL && v <= 2147483647LL)
        return 6;
    return 10;
}

/* lpStringToInt64: a canonical decimal integer within int64. */
static int
lp_string_integer(const unsigned char *s, Py_ssize_t len, int64_t *value)
{
    if (len == 0 || len > 20)
        return 0;
    if (len == 1 && s[0] == '0') {
        *value = 0;
        return 1;
    }
    Py_ssize_t i = 0;
    int negative = 0;
    if (s[0] == '-') {
        negative = 1;
        i = 1;
        if (len == 1)
            return 0;
    }
    if (s[i] < '1' || s[i] > '9')
        return 0;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned digit = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return 0;
        v = v * 10 + digit;
    }
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1)
            return 0;
        *value = (int64_t)(0 - v);
    } else {
        if (v > (uint64_t)INT64_MAX)
            return 0;
        *value = (int64_t)v;
    }
    return 1;
}

static long long
lp_string_size(const unsigned char *s, Py_ssize_t len)
{
    int64_t value;
    if (lp_string_integer(s, len, &value))
        return lp_int_size(value);
    unsigned long long encoded = (unsigned long long)len + (len < 64 ? 1 : len < 4096 ? 2 : 5);
    if (encoded <= 127)
        return (long long)encoded + 1;
    if (encoded < 16383)
        return (long long)encoded + 2;
    if (encoded < 2097151)
        return (long long)encoded + 3;
    return (long long)encoded + (encoded < 268435455 ? 4 : 5);
}

/* A bytes-like item's data; ``view`` is filled (and must be released) only for objects that are not bytes. */
static int
item_data(PyObject *item, Py_buffer *view, const unsigned char **data, Py_ssize_t *len)
{
    view->obj = NULL;
    if (PyBytes_Check(item)) {
        *data = (const unsigned char *)PyBytes_AS_STRING(item);
        *len = PyBytes_GET_SIZE(item);
        return 0;
    }
    if (PyObject_GetBuffer(item, view, PyBUF_SIMPLE) < 0)
        return -1;
    *data = view->buf;
    *len = view->len;
    return 0;
}

/* The sizes of an entry (fields and values) in a listpack: its fields' and values' total length; what it adds to a
 * listpack with master field names ``master`` (NULL: not computed), its ID that far from the master ID; and a new
 * listpack holding it alone. -1 with an exception set on failure. */
static int
entry_sizes(PyObject *fields, PyObject *master, uint64_t ms_diff, uint64_t seq_diff, long long *total_out,
            long long *added_out, long long *alone_out)
{
    PyObject *fast = PySequence_Fast(fields, "lp_entry: fields must be a sequence of bytes");
    if (fast == NULL)
        return -1;
    PyObject *names_fast = NULL;
    if (master != NULL) {
        names_fast = PySequence_Fast(master, "lp_entry: master must be a sequence");
        if (names_fast == NULL) {
            Py_DECREF(fast);
            return -1;
        }
    }
    int result = -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast) / 2;
    PyObject **items = PySequence_Fast_ITEMS(fast);
    int same = names_fast != NULL && PySequence_Fast_GET_SIZE(names_fast) == count;
    long long names = 0, values = 0, total = 0;
    for (Py_ssize_t i = 0; i < 2 * count; i++) {
        Py_buffer view;
        const unsigned char *data;
        Py_ssize_t len;
        if (item_data(items[i], &view, &data, &len) < 0)
            goto done;
        total += len;
        if (i % 2) {
            values += lp_string_size(data, len);
        } else {
            names += lp_string_size(data, len);
            if (same) {
                Py_buffer other_view;
                const unsigned char *other;
                Py_ssize_t other_len;
                if (item_data(PySequence_Fast_ITEMS(names_fast)[i / 2], &other_view, &other, &other_len) < 0) {
                    if (view.obj != NULL)
                        PyBuffer_Release(&view);
                    goto done;
                }
                same = other_len == len && memcmp(other, data, (size_t)len) == 0;
                if (other_view.obj != NULL)
                    PyBuffer_Release(&other_view);
            }
        }
        if (view.obj != NULL)
            PyBuffer_Release(&view);
    }
    *total_out = total;
    *alone_out = 7 + lp_int_size(count) + names + 2 + 6 + values + lp_int_size(count + 3);
    *added_out = 0;
    if (names_fast != NULL) {
        long long added = 2 + lp_int_size((int64_t)ms_diff) + lp_int_size((int64_t)seq_diff) + values;
        if (same)
            added += lp_int_size(count + 3);
        else
            added += lp_int_size(count) + names + lp_int_size(2 * (int64_t)count + 4);
        *added_out = added;
    }
    result = 0;
done:
    Py_DECREF(fast);
    Py_XDECREF(names_fast);
    return result;
}

PyDoc_STRVAR(lp_entry_doc,
"lp_entry(fields, master, ms_diff, seq_diff, room) -> int\n\n"
"The bytes an entry adds to a listpack with master field names ``master`` if its fields and values come to less\n"
"than ``room`` bytes; else (or with master None) minus the bytes of a listpack holding it alone\n"
"(respq.storage.streamlog.py_lp_entry).");

static PyObject *
lp_entry(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("lp_entry", nargs, 5, 5) < 0)
        return NULL;
    unsigned long long ms_diff = PyLong_AsUnsignedLongLongMask(args[2]);
    unsigned long long seq_diff = PyLong_AsUnsignedLongLongMask(args[3]);
    long long room = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    long long total, added, alone;
    PyObject *master = args[1] == Py_None ? NULL : args[1];
    if (entry_sizes(args[0], master, ms_diff, seq_diff, &total, &added, &alone) < 0)
        return NULL;
    return PyLong_FromLongLong(master != NULL && total < room ? added : -alone);
}

#define LP_SLOTS 7
#define LP_UNKNOWN UINT64_MAX

PyDoc_STRVAR(lp_place_doc,
"lp_place(listpacks, fields, names, ms, seq, max_entries, max_bytes) -> int\n\n"
"streamAppendItem's choice for an entry with ID ms-seq: the bytes it adds to the last listpack of ``listpacks``\n"
"(an array('Q') of 7 numbers per listpack; the last one's master field names are ``names``), updated in place,\n"
"or minus those of a new listpack holding it, which the caller appends (respq.storage.streamlog.py_lp_place).");

static PyObject *
lp_place(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("lp_place", nargs, 7, 7) < 0)
        return NULL;
    unsigned long long ms = PyLong_AsUnsignedLongLong(args[3]);
    unsigned long long seq = ms == (unsigned long long)-1 && PyErr_Occurred() ? 0 : PyLong_AsUnsignedLongLong(args[4]);
    long long max_entries = PyErr_Occurred() ? 0 : PyLong_AsLongLong(args[5]);
    long long max_bytes = PyErr_Occurred() ? 0 : PyLong_AsLongLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return NULL;
    PyObject *result = NULL;
    if (view.itemsize != 8 || view.len % (LP_SLOTS * 8)) {
        PyErr_SetString(PyExc_TypeError, "lp_place: listpacks must be an array('Q') of whole listpacks");
        goto done;
    }
    uint64_t *last = view.len ? (uint64_t *)view.buf + view.len / 8 - LP_SLOTS : NULL;
    /* 0 first ms, 1 first seq, 2 last ms, 3 last seq, 4 live, 5 total, 6 size */
    int joinable = last != NULL && last[6] != LP_UNKNOWN && args[2] != Py_None &&
                   !(max_entries > 0 && last[5] >= (uint64_t)max_entries);
    long long total, added, alone;
    if (entry_sizes(args[1], joinable ? args[2] : NULL, joinable ? ms - last[0] : 0,
                    joinable ? seq - last[1] : 0, &total, &added, &alone) < 0)
        goto done;
    if (joinable) {
        long long counters = last[5] <= 127 ? 4 : lp_int_size((int64_t)last[4]) + lp_int_size((int64_t)(last[5] - last[4]));
        if (total < max_bytes - (long long)last[6] - counters) {
            last[2] = ms;
            last[3] = seq;
            last[4] += 1;
            last[5] += 1;
            last[6] += (uint64_t)added;
            result = PyLong_FromLongLong(added);
            goto done;
        }
    }
    result = PyLong_FromLongLong(-alone);
done:
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(lp_join_many_doc,
"lp_join_many(listpacks, names, fields_list, ids, start, max_entries, max_bytes) -> (int, int)\n\n"
"lp_place of the entries from ``start`` on (IDs as ms << 64 | seq) while each joins the last listpack: how many\n"
"did, and minus the bytes of a listpack holding the next one alone (0 if none is left)\n"
"(respq.storage.streamlog.py_lp_join_many).");

static PyObject *
lp_join_many(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("lp_join_many", nargs, 7, 7) < 0)
        return NULL;
    Py_ssize_t start;
    if (get_ssize(args[4], &start) < 0)
        return NULL;
    long long max_entries = PyLong_AsLongLong(args[5]);
    long long max_bytes = PyErr_Occurred() ? 0 : PyLong_AsLongLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *fields_list = PySequence_Fast(args[2], "lp_join_many: fields_list must be a sequence");
    if (fields_list == NULL)
        return NULL;
    PyObject *ids = PySequence_Fast(args[3], "lp_join_many: ids must be a sequence");
    if (ids == NULL) {
        Py_DECREF(fields_list);
        return NULL;
    }
    PyObject *result = NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        goto out;
    if (view.itemsize != 8 || view.len % (LP_SLOTS * 8)) {
        PyErr_SetString(PyExc_TypeError, "lp_join_many: listpacks must be an array('Q') of whole listpacks");
        goto done;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(ids);
    if (PySequence_Fast_GET_SIZE(fields_list) < count || start < 0 || start > count) {
        PyErr_SetString(PyExc_ValueError, "lp_join_many: fields_list and ids do not match");
        goto done;
    }
    uint64_t *last = view.len ? (uint64_t *)view.buf + view.len / 8 - LP_SLOTS : NULL;
    Py_ssize_t index = start;
    long long next_alone = 0;
    for (; index < count; index++) {
        unsigned char raw[16];
        PyObject *id = PySequence_Fast_ITEMS(ids)[index];
        if (!PyLong_Check(id)) {
            PyErr_SetString(PyExc_TypeError, "lp_join_many: ids must be ints");
            goto done;
        }
        if (_PyLong_AsByteArray((PyLongObject *)id, raw, 16, 1, 0) < 0)
            goto done;
        uint64_t seq, ms;
        memcpy(&seq, raw, 8);
        memcpy(&ms, raw + 8, 8);
        int joinable = last != NULL && last[6] != LP_UNKNOWN && args[1] != Py_None &&
                       !(max_entries > 0 && last[5] >= (uint64_t)max_entries);
        long long total, added, alone;
        if (entry_sizes(PySequence_Fast_ITEMS(fields_list)[index], joinable ? args[1] : NULL,
                        joinable ? ms - last[0] : 0, joinable ? seq - last[1] : 0, &total, &added, &alone) < 0)
            goto done;
        long long counters = 0;
        if (joinable)
            counters = last[5] <= 127 ? 4 : lp_int_size((int64_t)last[4]) + lp_int_size((int64_t)(last[5] - last[4]));
        if (!joinable || total >= max_bytes - (long long)last[6] - counters) {
            next_alone = -alone;
            break;
        }
        last[2] = ms;
        last[3] = seq;
        last[4] += 1;
        last[5] += 1;
        last[6] += (uint64_t)added;
    }
    result = Py_BuildValue("(nL)", index - start, next_alone);
done:
    PyBuffer_Release(&view);
out:
    Py_DECREF(fields_list);
    Py_DECREF(ids);
    return result;
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

/* ---- DUMP payloads (respq/rdb: crc64, lzf_compress; the Python twins there define the results) ------------ */

static uint64_t crc64_table[256];
static int crc64_ready = 0;

static void
crc64_init(void)
{
    for (int byte = 0; byte < 256; byte++) {
        uint64_t crc = (uint64_t)byte;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x95AC9329AC4BC9B5ULL : crc >> 1;
        crc64_table[byte] = crc;
    }
    crc64_ready = 1;
}

PyDoc_STRVAR(crc64_doc,
"crc64(data, value=0) -> int\n\n"
"Redis's CRC-64 (Jones polynomial, reflected) of data, continuing from value.");

static PyObject *
crc64(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    uint64_t crc = 0;
    if (check_nargs("crc64", nargs, 1, 2) < 0)
        return NULL;
    if (nargs == 2) {
        crc = PyLong_AsUnsignedLongLong(args[1]);
        if (crc == (uint64_t)-1 && PyErr_Occurred())
            return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (!crc64_ready)
        crc64_init();
    const unsigned char *data = view.buf;
    for (Py_ssize_t i = 0; i < view.len; i++)
        crc = crc64_table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(crc);
}

#define LZF_HLOG 16
#define LZF_HSIZE (1u << LZF_HLOG)
#define LZF_MAX_LIT (1 << 5)
#define LZF_MAX_OFF (1 << 13)
#define LZF_MAX_REF ((1 << 8) + (1 << 3))
#define LZF_IDX(h) ((((h) >> (3 * 8 - LZF_HLOG)) - (h) * 5) & (LZF_HSIZE - 1))

/* The compressor of respq/rdb's lzf_compress, step for step: 0 when out_len bytes are not enough. */
static Py_ssize_t
lzf_run(const unsigned char *data, Py_ssize_t in_len, unsigned char *out, Py_ssize_t out_len, Py_ssize_t *htab)
{
    Py_ssize_t ip = 0, op = 1, in_end = in_len, out_end = out_len, lit = 0;
    uint32_t hval = in_len > 1 ? ((uint32_t)data[0] << 8) | data[1] : 0;
    while (ip < in_end - 2) {
        hval = (hval << 8) | data[ip + 2];
        uint32_t slot = LZF_IDX(hval);
        Py_ssize_t ref = htab[slot];
        htab[slot] = ip;
        Py_ssize_t off = ip - ref - 1;
        if (ref > 0 && off < LZF_MAX_OFF && data[ref + 2] == data[ip + 2] && data[ref] == data[ip]
            && data[ref + 1] == data[ip + 1]) {
            Py_ssize_t len = 2;
            Py_ssize_t maxlen = in_end - ip - len;
            if (maxlen > LZF_MAX_REF)
                maxlen = LZF_MAX_REF;
            if (op + 4 >= out_end && op - (lit == 0) + 4 >= out_end)
                return 0;
            out[op - lit - 1] = (unsigned char)(lit - 1);
            op -= (lit == 0);
            int stopped = 0;
            if (maxlen > 16) {
                for (int i = 0; i < 16; i++) {
                    len++;
                    if (data[ref + len] != data[ip + len]) {
                        stopped = 1;
                        break;
                    }
                }
            }
            if (!stopped) {
                for (;;) {
                    len++;
                    if (!(len < maxlen && data[ref + len] == data[ip + len]))
                        break;
                }
            }
            len -= 2;
            ip++;
            if (len < 7) {
                out[op++] = (unsigned char)((off >> 8) + (len << 5));
            } else {
                out[op++] = (unsigned char)((off >> 8) + (7 << 5));
                out[op++] = (unsigned char)(len - 7);
            }
            out[op++] = (unsigned char)off;
            lit = 0;
            op++;
            ip += len + 1;
            if (ip >= in_end - 2)
                break;
            ip -= 2;
            hval = ((uint32_t)data[ip] << 8) | data[ip + 1];
            hval = (hval << 8) | data[ip + 2];
            htab[LZF_IDX(hval)] = ip;
            ip++;
            hval = (hval << 8) | data[ip + 2];
            htab[LZF_IDX(hval)] = ip;
            ip++;
        } else {
            if (op >= out_end)
                return 0;
            lit++;
            out[op++] = data[ip++];
            if (lit == LZF_MAX_LIT) {
                out[op - lit - 1] = (unsigned char)(lit - 1);
                lit = 0;
                op++;
            }
        }
    }
    if (op + 3 > out_end)
        return 0;
    while (ip < in_end) {
        lit++;
        out[op++] = data[ip++];
        if (lit == LZF_MAX_LIT) {
            out[op - lit - 1] = (unsigned char)(lit - 1);
            lit = 0;
            op++;
        }
    }
    out[op - lit - 1] = (unsigned char)(lit - 1);
    op -= (lit == 0);
    return op;
}

PyDoc_STRVAR(lzf_compress_doc,
"lzf_compress(data, out_len) -> bytes | None\n\n"
"liblzf's compression as Redis configures it (see respq/rdb), into at most out_len bytes; None without room.");

static PyObject *
lzf_compress(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t out_len;
    PyObject *result = NULL;
    if (check_nargs("lzf_compress", nargs, 2, 2) < 0 || get_ssize(args[1], &out_len) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len == 0 || out_len <= 0) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    unsigned char *out = PyMem_Malloc((size_t)out_len + 8);
    Py_ssize_t *htab = PyMem_Calloc(LZF_HSIZE, sizeof(Py_ssize_t));
    if (out == NULL || htab == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t written;
    Py_BEGIN_ALLOW_THREADS
    written = lzf_run(view.buf, view.len, out, out_len, htab);
    Py_END_ALLOW_THREADS
    if (written <= 0) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        result = PyBytes_FromStringAndSize((const char *)out, written);
    }
done:
    PyMem_Free(out);
    PyMem_Free(htab);
    PyBuffer_Release(&view);
    return result;
}

/* ---- Bit scans over string values (respq/types/strings/bits.py: popcount, first_bit) ---------------------- */

/* Byte range [start, end) of a buffer argument, checked against its length. */
static int
get_byte_range(const char *name, PyObject *const *args, Py_buffer *view, Py_ssize_t *start, Py_ssize_t *end)
{
    if (get_ssize(args[0], start) < 0 || get_ssize(args[1], end) < 0)
        return -1;
    if (*start < 0 || *end < *start || *end > view->len) {
        PyErr_Format(PyExc_ValueError, "%s: range out of bounds", name);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(popcount_doc,
"popcount(data, start, end) -> int\n\nSet bits in bytes data[start:end] (respq.types.strings.bits._popcount_py).");

static PyObject *
popcount(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t start, end;
    if (check_nargs("popcount", nargs, 3, 3) < 0 || PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (get_byte_range("popcount", args + 1, &view, &start, &end) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)view.buf + start;
    Py_ssize_t n = end - start;
    unsigned long long bits = 0;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        bits += (unsigned long long)__builtin_popcountll(word);
    }
    while (n--)
        bits += (unsigned long long)__builtin_popcount(*p++);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(bits);
}

PyDoc_STRVAR(first_bit_doc,
"first_bit(data, bit, start, end) -> int\n\nThe position in bits (from data's start) of the first bit equal to bit "
"in bytes data[start:end], -1 if none (respq.types.strings.bits._first_bit_py).");

static PyObject *
first_bit(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t start, end;
    if (check_nargs("first_bit", nargs, 4, 4) < 0)
        return NULL;
    int bit = PyObject_IsTrue(args[1]);
    if (bit < 0 || PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (get_byte_range("first_bit", args + 2, &view, &start, &end) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *base = view.buf, *p = base + start, *stop = base + end;
    /* Whole words of the byte that means "not here" (0x00 looking for a 1, 0xff looking for a 0) are skipped. */
    const uint64_t skip_word = bit ? 0 : UINT64_MAX;
    const unsigned char skip = bit ? 0 : 0xff;
    for (; stop - p >= 8; p += 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        if (word != skip_word)
            break;
    }
    Py_ssize_t found = -1;
    for (; p < stop; p++) {
        if (*p != skip) {
            unsigned int byte = bit ? *p : (unsigned char)~*p;
            found = (p - base) * 8 + (__builtin_clz(byte) - (int)(8 * sizeof(unsigned int) - 8));
            break;
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(found);
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

PyDoc_STRVAR(encode_bulks_doc,
"encode_bulks(items, nil) -> bytes | None\n\n"
"The RESP array of ``items`` when each is bytes (a bulk string) or None (``nil``, the protocol's null); None as\n"
"soon as one is anything else, for the caller's general encoder (respq.protocol._array).");

/* "<prefix><len>\r\n" ("$" of a bulk string, "*" of an array) written at p; returns the end. */
static char *
put_resp_header(char *p, char prefix, Py_ssize_t len)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + len % 10);
        len /= 10;
    } while (len > 0);
    *p++ = prefix;
    while (n > 0)
        *p++ = digits[--n];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static PyObject *
encode_bulks(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("encode_bulks", nargs, 2, 2) < 0)
        return NULL;
    PyObject *items = args[0], *nil = args[1];
    if (!PyList_CheckExact(items) || !PyBytes_CheckExact(nil)) {
        PyErr_SetString(PyExc_TypeError, "encode_bulks: a list and a bytes object");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(items), nil_len = PyBytes_GET_SIZE(nil);
    size_t total = 24;  /* "*<count>\r\n" */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (item == Py_None)
            total += (size_t)nil_len;
        else if (PyBytes_CheckExact(item))
            total += (size_t)PyBytes_GET_SIZE(item) + 24;  /* "$<len>\r\n" and the CRLF after */
        else
            Py_RETURN_NONE;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (out == NULL)
        return NULL;
    char *start = PyBytes_AS_STRING(out), *p = start;
    p = put_resp_header(p, '*', count);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (item == Py_None) {
            memcpy(p, PyBytes_AS_STRING(nil), (size_t)nil_len);
            p += nil_len;
            continue;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(item);
        p = put_resp_header(p, '$', len);
        memcpy(p, PyBytes_AS_STRING(item), (size_t)len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (_PyBytes_Resize(&out, p - start) < 0)
        return NULL;
    return out;
}

PyDoc_STRVAR(read_slots_doc,
"read_slots(catalog, keys, kind, value_slot, expire_slot) -> list | None\n\n"
"MGET's common case: for each key of ``keys`` (a list), None where the dict ``catalog`` has no entry, else the entry's\n"
"``value_slot`` (a __slots__ member of ``kind``) as bytes, when the entry is exactly a ``kind`` whose ``expire_slot``\n"
"is None; None as soon as an entry is anything else (cold, of another type, with an expiry), for the caller's\n"
"Python path, which defines the result (respq.keyspace.Keyspace.read_many).");

/* The offset of the object member ``descr`` (a __slots__ descriptor) in instances of ``kind``; -1 with an error. */
static Py_ssize_t
slot_offset(PyObject *descr, PyObject *kind)
{
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_SetString(PyExc_TypeError, "read_slots: a __slots__ member descriptor");
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if ((member->type != T_OBJECT_EX && member->type != T_OBJECT) ||
        !PyType_IsSubtype((PyTypeObject *)kind, PyDescr_TYPE(descr))) {
        PyErr_SetString(PyExc_TypeError, "read_slots: an object member of the type given");
        return -1;
    }
    return member->offset;
}

static PyObject *
read_slots(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("read_slots", nargs, 5, 5) < 0)
        return NULL;
    PyObject *catalog = args[0], *keys = args[1], *kind = args[2];
    if (!PyDict_CheckExact(catalog) || !PyList_CheckExact(keys) || !PyType_Check(kind)) {
        PyErr_SetString(PyExc_TypeError, "read_slots: a dict, a list and a type");
        return NULL;
    }
    Py_ssize_t value_at = slot_offset(args[3], kind), expire_at = slot_offset(args[4], kind);
    if (value_at < 0 || expire_at < 0)
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(keys);
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *entry = PyDict_GetItemWithError(catalog, PyList_GET_ITEM(keys, i)), *item;
        if (entry == NULL) {
            if (PyErr_Occurred())
                goto fail;
            item = Py_NewRef(Py_None);
        } else {
            if ((PyObject *)Py_TYPE(entry) != kind || *(PyObject **)((char *)entry + expire_at) != Py_None)
                goto other;
            PyObject *data = *(PyObject **)((char *)entry + value_at);
            if (data != NULL && PyBytes_CheckExact(data))
                item = Py_NewRef(data);
            else if (data != NULL && PyByteArray_CheckExact(data)) {
                item = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(data), PyByteArray_GET_SIZE(data));
                if (item == NULL)
                    goto fail;
            } else
                goto other;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
other:
    Py_DECREF(out);
    Py_RETURN_NONE;
fail:
    Py_DECREF(out);
    return NULL;
}

/* ---- Redis Cluster's hash slot: CRC16 (XMODEM: polynomial 0x1021, start 0) of the key or of its hash tag -------- */
static uint16_t crc16_table[256];

static void
crc16_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint16_t c = (uint16_t)(n << 8);
        for (int k = 0; k < 8; k++)
            c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
        crc16_table[n] = c;
    }
}

PyDoc_STRVAR(key_slot_doc, "key_slot(key: bytes) -> int: the key's hash slot (respq/cluster/keyslot.py's twin).");

static PyObject *
key_slot(PyObject *module, PyObject *key)
{
    if (!PyBytes_CheckExact(key)) {
        PyErr_SetString(PyExc_TypeError, "key_slot: a bytes object");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(key);
    Py_ssize_t len = PyBytes_GET_SIZE(key);
    const unsigned char *open = memchr(p, '{', (size_t)len);
    if (open != NULL) {  /* hash only what is between the first '{' and the next '}', when that is not empty */
        const unsigned char *close = memchr(open + 1, '}', (size_t)(p + len - open - 1));
        if (close != NULL && close > open + 1) {
            p = open + 1;
            len = close - p;
        }
    }
    uint16_t crc = 0;
    for (Py_ssize_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ p[i]) & 0xFF]);
    return PyLong_FromLong(crc & 0x3FFF);
}

static PyMethodDef speedups_methods[] = {
    {"parse_multibulk", (PyCFunction)(void (*)(void))parse_multibulk, METH_FASTCALL, parse_multibulk_doc},
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL, frame_doc},
    {"frame_values", (PyCFunction)(void (*)(void))frame_values, METH_FASTCALL, frame_values_doc},
    {"encode_values", (PyCFunction)encode_values, METH_O, encode_values_doc},
    {"encode_pairs", (PyCFunction)(void (*)(void))encode_pairs, METH_FASTCALL, encode_pairs_doc},
    {"scan_records", (PyCFunction)(void (*)(void))scan_records, METH_FASTCALL, scan_records_doc},
    {"pread_many", (PyCFunction)(void (*)(void))pread_many, METH_FASTCALL, pread_many_doc},
    {"scan_records_backward", (PyCFunction)(void (*)(void))scan_records_backward, METH_FASTCALL,
     scan_records_backward_doc},
    {"decode_values", (PyCFunction)(void (*)(void))decode_values, METH_FASTCALL, decode_values_doc},
    {"encode_fields", (PyCFunction)encode_fields, METH_O, encode_fields_doc},
    {"decode_fields", (PyCFunction)(void (*)(void))decode_fields, METH_FASTCALL, decode_fields_doc},
    {"crc32c", (PyCFunction)(void (*)(void))crc32c, METH_FASTCALL, crc32c_doc},
    {"crc64", (PyCFunction)(void (*)(void))crc64, METH_FASTCALL, crc64_doc},
    {"lzf_compress", (PyCFunction)(void (*)(void))lzf_compress, METH_FASTCALL, lzf_compress_doc},
    {"ld_parse", (PyCFunction)ld_parse, METH_O, ld_parse_doc},
    {"ld_add", (PyCFunction)(void (*)(void))ld_add, METH_FASTCALL, ld_add_doc},
    {"ld_is_finite", (PyCFunction)ld_is_finite, METH_O, ld_is_finite_doc},
    {"ld_format", (PyCFunction)ld_format, METH_O, ld_format_doc},
    {"lcs", (PyCFunction)(void (*)(void))lcs, METH_FASTCALL, lcs_doc},
    {"popcount", (PyCFunction)(void (*)(void))popcount, METH_FASTCALL, popcount_doc},
    {"first_bit", (PyCFunction)(void (*)(void))first_bit, METH_FASTCALL, first_bit_doc},
    {"lp_entry", (PyCFunction)(void (*)(void))lp_entry, METH_FASTCALL, lp_entry_doc},
    {"lp_place", (PyCFunction)(void (*)(void))lp_place, METH_FASTCALL, lp_place_doc},
    {"lp_join_many", (PyCFunction)(void (*)(void))lp_join_many, METH_FASTCALL, lp_join_many_doc},
    {"encode_bulks", (PyCFunction)(void (*)(void))encode_bulks, METH_FASTCALL, encode_bulks_doc},
    {"read_slots", (PyCFunction)(void (*)(void))read_slots, METH_FASTCALL, read_slots_doc},
    {"key_slot", (PyCFunction)key_slot, METH_O, key_slot_doc},
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
    crc16_init();
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
