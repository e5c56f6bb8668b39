/* Optional accelerator for the HTTP wire check (asgiws/http/wire.py).
 *
 * scan_head(buffer, pos, end) -> (method, target, major, minor, fields, size, framing) | None
 *
 * buffer[pos:end] is a whole request head up to and including the CRLF of
 * its last line (the final empty line not included).  When every line keeps
 * to the grammar wire.py's _CLEAN_HEAD pattern matches -- a request line
 * `token SP 1*VCHAR SP "HTTP/" DIGIT "." DIGIT CRLF`, then field lines
 * `token ":" *(HTAB / SP / VCHAR / obs-text) CRLF` -- it returns the request
 * line's parts (the two version digits as 1-byte bytes) and the fields as a
 * list of (name lower-cased, value without the spaces and tabs around it),
 * the head's size as the head limit counts it, and the fields framing and
 * request policy read (wire.FRAMING_POLICY_FIELDS, the same pairs), exactly
 * what `python_scan_head` returns.  Anything else is None, and the
 * checker reads the head line by line, which finds and words the fault.
 * Tests and the http_parser fuzz target compare both.
 *
 * share(names_and_values) hands in wire.SHARED_FIELD_BYTES once: a name or
 * value equal to one of them is returned as that object, not a new bytes,
 * as python_scan_head does with the dict (no allocation per field, and the
 * headers a WebSocket keeps for its life hold no copies). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static unsigned char TCHAR[256];
/* A field value's bytes: HTAB, SP, VCHAR, obs-text (no other control, no DEL). */
static unsigned char VALUE[256];

static void
init_tables(void)
{
    const char *specials = "!#$%&'*+-.^_`|~";
    int c;
    for (c = '0'; c <= '9'; c++)
        TCHAR[c] = 1;
    for (c = 'A'; c <= 'Z'; c++)
        TCHAR[c] = TCHAR[c + 32] = 1;
    for (; *specials; specials++)
        TCHAR[(unsigned char)*specials] = 1;
    VALUE['\t'] = 1;
    for (c = 0x20; c < 0x7f; c++)
        VALUE[c] = 1;
    for (c = 0x80; c < 0x100; c++)
        VALUE[c] = 1;
}

#define MAX_SHARED 64
#define MAX_SHARED_SIZE 63
static PyObject *shared[MAX_SHARED]; /* bytes objects, owned, by size */
static Py_ssize_t shared_count;
/* shared[first[n] : first[n] + count[n]] are the ones of size n: a field
 * looks at only those, so that a lookup costs less than the allocation. */
static unsigned char first[MAX_SHARED_SIZE + 1], count[MAX_SHARED_SIZE + 1];

static PyObject *
share(PyObject *self, PyObject *arg)
{
    Py_ssize_t i, n, size, k = 0;
    if (!PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) > MAX_SHARED) {
        PyErr_Format(PyExc_TypeError, "share(tuple of at most %d bytes)", MAX_SHARED);
        return NULL;
    }
    n = PyTuple_GET_SIZE(arg);
    for (i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(arg, i);
        if (!PyBytes_CheckExact(item) || PyBytes_GET_SIZE(item) > MAX_SHARED_SIZE) {
            PyErr_Format(PyExc_TypeError, "share(): every item must be bytes of at most %d",
                         MAX_SHARED_SIZE);
            return NULL;
        }
    }
    for (i = 0; i < shared_count; i++)
        Py_CLEAR(shared[i]);
    memset(count, 0, sizeof(count));
    for (size = 0; size <= MAX_SHARED_SIZE; size++) {
        first[size] = (unsigned char)k;
        for (i = 0; i < n; i++) {
            PyObject *item = PyTuple_GET_ITEM(arg, i);
            if (PyBytes_GET_SIZE(item) == size) {
                Py_INCREF(item);
                shared[k++] = item;
                count[size]++;
            }
        }
    }
    shared_count = k;
    Py_RETURN_NONE;
}

#define LOWER(c) ((c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c))

/* The shared object equal to buf[0:n] (lower-cased first when `lower`), a
 * new reference; NULL without an exception when there is none. */
static PyObject *
find_shared(const unsigned char *buf, Py_ssize_t n, int lower)
{
    Py_ssize_t i, j, stop;
    if (n > MAX_SHARED_SIZE)
        return NULL;
    stop = first[n] + count[n];
    for (i = first[n]; i < stop; i++) {
        const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(shared[i]);
        if (lower) {
            for (j = 0; j < n && LOWER(buf[j]) == s[j]; j++)
                ;
            if (j < n)
                continue;
        }
        else if (memcmp(buf, s, (size_t)n) != 0)
            continue;
        Py_INCREF(shared[i]);
        return shared[i];
    }
    return NULL;
}

/* A field name, lower-cased as bytes.lower() does (ASCII letters only). */
static PyObject *
lowered(const unsigned char *name, Py_ssize_t n)
{
    PyObject *out = find_shared(name, n, 1);
    char *dst;
    Py_ssize_t i;
    if (out != NULL)
        return out;
    out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL)
        return NULL;
    dst = PyBytes_AS_STRING(out);
    for (i = 0; i < n; i++) {
        unsigned char c = name[i];
        dst[i] = (char)LOWER(c);
    }
    return out;
}

/* A name wire.FRAMING_POLICY_FIELDS holds: what WireCheck._framing reads. */
static int
is_framing_name(PyObject *name)
{
    const char *s = PyBytes_AS_STRING(name);
    switch (PyBytes_GET_SIZE(name)) {
    case 4:
        return memcmp(s, "host", 4) == 0;
    case 6:
        return memcmp(s, "expect", 6) == 0;
    case 7:
        return memcmp(s, "upgrade", 7) == 0;
    case 10:
        return memcmp(s, "connection", 10) == 0;
    case 14:
        return memcmp(s, "content-length", 14) == 0;
    case 17:
        return memcmp(s, "transfer-encoding", 17) == 0;
    default:
        return 0;
    }
}

static PyObject *
scan_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *buf;
    Py_ssize_t size, pos, end, p, start, method_end, target_start, target_end, head_size;
    PyObject *fields = NULL, *framing = NULL, *result = NULL;

    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan_head(bytes, pos, end)");
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    end = PyLong_AsSsize_t(args[2]);
    if (end == -1 && PyErr_Occurred())
        return NULL;
    buf = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    size = PyBytes_GET_SIZE(args[0]);
    if (pos < 0 || end > size || pos > end) {
        PyErr_SetString(PyExc_ValueError, "scan_head: pos and end out of range");
        return NULL;
    }

    /* request-line = method SP request-target SP HTTP-version CRLF */
    p = pos;
    while (p < end && TCHAR[buf[p]])
        p++;
    if (p == pos || p >= end || buf[p] != ' ')
        Py_RETURN_NONE;
    method_end = p++;
    target_start = p;
    while (p < end && buf[p] >= 0x21 && buf[p] <= 0x7e)
        p++;
    target_end = p;
    if (target_end == target_start || end - p < 11 || memcmp(buf + p, " HTTP/", 6) != 0 ||
        buf[p + 6] < '0' || buf[p + 6] > '9' || buf[p + 7] != '.' || buf[p + 8] < '0' ||
        buf[p + 8] > '9' || buf[p + 9] != '\r' || buf[p + 10] != '\n')
        Py_RETURN_NONE;
    p += 11;
    /* As WireCheck._framing counted it: " ", " HTTP/1.1", CRLF and the final
     * CRLF, plus ": " and CRLF per field (single spaces assumed). */
    head_size = (method_end - pos) + (target_end - target_start) + 14;

    fields = PyList_New(0);
    if (fields == NULL)
        return NULL;
    framing = PyList_New(0);
    if (framing == NULL)
        goto fail;
    while (p < end) {
        /* field-line = field-name ":" OWS field-value OWS CRLF */
        Py_ssize_t name_end, value_start, value_end;
        PyObject *name, *value, *pair;
        start = p;
        while (p < end && TCHAR[buf[p]])
            p++;
        if (p == start || p >= end || buf[p] != ':')
            goto not_clean;
        name_end = p++;
        value_start = p;
        while (p < end && VALUE[buf[p]])
            p++;
        if (end - p < 2 || buf[p] != '\r' || buf[p + 1] != '\n')
            goto not_clean;
        value_end = p;
        p += 2;
        while (value_start < value_end && (buf[value_start] == ' ' || buf[value_start] == '\t'))
            value_start++;
        while (value_end > value_start &&
               (buf[value_end - 1] == ' ' || buf[value_end - 1] == '\t'))
            value_end--;
        name = lowered(buf + start, name_end - start);
        if (name == NULL)
            goto fail;
        value = find_shared(buf + value_start, value_end - value_start, 0);
        if (value == NULL)
            value = PyBytes_FromStringAndSize((const char *)buf + value_start,
                                              value_end - value_start);
        if (value == NULL) {
            Py_DECREF(name);
            goto fail;
        }
        pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(name);
            Py_DECREF(value);
            goto fail;
        }
        PyTuple_SET_ITEM(pair, 0, name);
        PyTuple_SET_ITEM(pair, 1, value);
        head_size += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4;
        if (PyList_Append(fields, pair) < 0 ||
            (is_framing_name(name) && PyList_Append(framing, pair) < 0)) {
            Py_DECREF(pair);
            goto fail;
        }
        Py_DECREF(pair);
    }
    result = Py_BuildValue(
        "(y#y#y#y#NnN)", (const char *)buf + pos, method_end - pos,
        (const char *)buf + target_start, target_end - target_start,
        (const char *)buf + target_end + 6, (Py_ssize_t)1, (const char *)buf + target_end + 8,
        (Py_ssize_t)1, fields, head_size, framing);
    return result; /* (N: the tuple took the lists' references, or dropped them on failure) */

not_clean:
    Py_DECREF(fields);
    Py_XDECREF(framing);
    Py_RETURN_NONE;
fail:
    Py_DECREF(fields);
    Py_XDECREF(framing);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_head", (PyCFunction)(void (*)(void))scan_head, METH_FASTCALL,
     "scan_head(buffer, pos, end) -> (method, target, major, minor, fields, size, framing) or "
     "None"},
    {"share", share, METH_O, "share(tuple of bytes): the names and values scan_head shares"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "asgiws.http._speedups", "Optional accelerator for the HTTP wire check.",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    init_tables();
    return PyModule_Create(&module);
}
