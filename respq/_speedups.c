/* Optional C accelerator for the request parser (respq/protocol.py).
 *
 * It handles only the common shape of a request: complete, canonical multibulk commands ("*N\r\n" then N times
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
#include <stdint.h>
#include <string.h>

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

PyDoc_STRVAR(parse_multibulk_doc,
"parse_multibulk(buf, pos, max_bulk_len, commands) -> int\n\n"
"Appends to ``commands`` the argument list of every complete, canonical multibulk command found in ``buf``\n"
"from ``pos`` on, and returns the position of the first byte it did not consume.");

static PyObject *
parse_multibulk(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t pos;
    long long max_bulk_len, count;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "parse_multibulk takes 4 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "parse_multibulk: buf must be bytes");
        return NULL;
    }
    if (!PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "parse_multibulk: commands must be a list");
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
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

static PyMethodDef speedups_methods[] = {
    {"parse_multibulk", (PyCFunction)(void (*)(void))parse_multibulk, METH_FASTCALL, parse_multibulk_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "respq._speedups", "C accelerator for respq's request parser.", -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
