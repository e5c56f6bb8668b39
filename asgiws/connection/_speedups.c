/* Optional C accelerator of asgiws.connection: one shared frame written to
 * many connections (see asgiws/connection/shared_write.py).
 *
 * write_each(transports, fds, data): `data` to each transport.  Where the
 * transport has nothing buffered and is not closing, the bytes go straight
 * to its socket `fds[i]` with one send() -- what the transport's own write()
 * would do first, without its buffer bookkeeping and the Python call around
 * it -- and whatever the kernel does not take is handed to the transport.
 * Everywhere else (a descriptor of -1: TLS, or no socket of its own; bytes
 * already buffered; a transport closing) the transport writes it.
 *
 * Why each check:
 * - get_write_buffer_size() == 0: bytes the transport holds must go out
 *   before ours, so only an empty transport can be written around.
 * - not is_closing(): a transport that closed (by us, or by itself after an
 *   error) may have closed its descriptor already, and the number may belong
 *   to a newer connection by now.  While it is not closing, the descriptor is
 *   its own.
 * - A failed send() (EAGAIN: the kernel's buffer is full; EPIPE and the
 *   like: the peer is gone) hands `data` to the transport: it buffers it, or
 *   meets the same error and reports it the usual way (connection_lost).
 * MSG_DONTWAIT: send() never waits, whatever the descriptor's mode;
 * MSG_NOSIGNAL: a peer that is gone gives EPIPE, never SIGPIPE.  send()
 * rather than write(): the same bytes without the file layer's bookkeeping,
 * ~10 % less server CPU per delivery in the hub benchmark.
 *
 * write_plain(connections, data, max_queued): the fan-out's member loop
 * (`asgiws.connection.write_prepared_to_each`) for its common case, in C.
 * Each connection whose common case holds -- an open server engine sending
 * plain frames, nothing corked, not lost, no fragmented send under way, no
 * reporter, no debug logging, below the bound, and a descriptor already
 * looked up -- gets `data` as write_each would give it; the others come
 * back, in order, for the Python loop, which decides and reports.  The
 * checks read the instances' slots at the offsets `bind_plain` found in the
 * classes' member descriptors: in Python they were ~1,400 of a delivery's
 * ~2,300 user-space instructions.  A subclass of the connection class is
 * read this way only if it leaves those slots as they are (checked once
 * per class).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "structmember.h" /* T_OBJECT_EX: a __slots__ entry */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static PyObject *str_get_write_buffer_size;
static PyObject *str_is_closing;
static PyObject *str_write;

/* `transport.write(data[offset:])`. */
static int
transport_write(PyObject *transport, PyObject *data, Py_ssize_t offset)
{
    PyObject *chunk;
    if (offset == 0) {
        chunk = data;
        Py_INCREF(chunk);
    }
    else {
        chunk = PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + offset,
                                          PyBytes_GET_SIZE(data) - offset);
        if (chunk == NULL) {
            return -1;
        }
    }
    PyObject *result = PyObject_CallMethodOneArg(transport, str_write, chunk);
    Py_DECREF(chunk);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* Bytes of `data` the kernel took straight from us: 0 when the transport
 * must write all of it (see the module comment), -1 on a Python error. */
static Py_ssize_t
write_around(PyObject *transport, int fd, const char *buf, Py_ssize_t len)
{
    PyObject *size = PyObject_CallMethodNoArgs(transport, str_get_write_buffer_size);
    if (size == NULL) {
        return -1;
    }
    Py_ssize_t buffered = PyLong_AsSsize_t(size);
    Py_DECREF(size);
    if (buffered == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (buffered != 0) {
        return 0;
    }
    PyObject *closing = PyObject_CallMethodNoArgs(transport, str_is_closing);
    if (closing == NULL) {
        return -1;
    }
    int is_closing = PyObject_IsTrue(closing);
    Py_DECREF(closing);
    if (is_closing != 0) {
        return is_closing < 0 ? -1 : 0;
    }
    ssize_t sent = send(fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return sent > 0 ? (Py_ssize_t)sent : 0;
}

/* `data` to one transport: around it, straight to its socket `fd`, where
 * write_around allows, and whatever that did not send through it (all of
 * it for an `fd` of -1).  0, or -1 on a Python error. */
static int
write_one(PyObject *transport, long fd, PyObject *data)
{
    const Py_ssize_t len = PyBytes_GET_SIZE(data);
    Py_ssize_t taken = 0;
    if (fd >= 0 && fd <= INT_MAX && len > 0) {
        taken = write_around(transport, (int)fd, PyBytes_AS_STRING(data), len);
    }
    if (taken < 0 || (taken < len && transport_write(transport, data, taken) < 0)) {
        return -1;
    }
    return 0;
}

static PyObject *
write_each(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "write_each(transports, fds, data) takes 3 arguments");
        return NULL;
    }
    PyObject *transports = args[0], *fds = args[1], *data = args[2];
    if (!PyList_CheckExact(transports) || !PyList_CheckExact(fds)) {
        PyErr_SetString(PyExc_TypeError, "write_each: transports and fds must be lists");
        return NULL;
    }
    if (!PyBytes_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "write_each: data must be bytes");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(transports);
    if (PyList_GET_SIZE(fds) != count) {
        PyErr_SetString(PyExc_ValueError, "write_each: one fd per transport");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        /* Borrowed items: hold them, the transport's methods run Python code
         * that could change the lists. */
        PyObject *transport = PyList_GET_ITEM(transports, i);
        PyObject *fd_item = PyList_GET_ITEM(fds, i);
        Py_INCREF(transport);
        Py_INCREF(fd_item);
        long fd = PyLong_AsLong(fd_item);
        Py_DECREF(fd_item);
        int failed = (fd == -1 && PyErr_Occurred()) || write_one(transport, fd, data) < 0;
        Py_DECREF(transport);
        if (failed) {
            return NULL;
        }
        if (PyList_GET_SIZE(transports) != count || PyList_GET_SIZE(fds) != count) {
            PyErr_SetString(PyExc_RuntimeError, "write_each: the lists changed while writing");
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* ---- write_plain ------------------------------------------------------- */

/* What bind_plain found: the classes, the offsets of the slots the common
 * case reads, and the engine's OPEN state. */
static PyTypeObject *conn_type, *writer_type, *engine_type;
static PyObject *open_state;

enum { C_ENGINE, C_WRITER, C_LOST, C_FRAGMENTED, C_REPORTER, C_DEBUG, CONN_SLOTS };
static const char *const conn_slot_names[CONN_SLOTS] = {
    "_engine", "_writer", "_lost", "_fragmented_send", "_reporter", "debug",
};
static PyObject *conn_slot_descrs[CONN_SLOTS];
static Py_ssize_t conn_slots[CONN_SLOTS];

enum { W_TRANSPORT, W_CORKED, W_PAUSED, W_FD, WRITER_SLOTS };
static const char *const writer_slot_names[WRITER_SLOTS] = {"transport", "corked", "paused", "fd"};
static Py_ssize_t writer_slots[WRITER_SLOTS];

enum { E_STATE, E_PLAIN, E_KEY, ENGINE_SLOTS };
static const char *const engine_slot_names[ENGINE_SLOTS] = {
    "state", "sends_plain_frames", "shared_compression_key",
};
static Py_ssize_t engine_slots[ENGINE_SLOTS];

/* Subclasses of conn_type seen to keep its slots (no attribute of the same
 * name in between, no __getattribute__ of their own); others go to the
 * Python loop. */
#define KNOWN_TYPES 8
static PyTypeObject *known_types[KNOWN_TYPES];

#define SLOT(obj, offsets, i) (*(PyObject **)((char *)(obj) + (offsets)[i]))

/* The member descriptor of `type`'s slot `name` (a new reference), or NULL
 * with TypeError when `name` is anything else there. */
static PyObject *
slot_descriptor(PyTypeObject *type, const char *name, Py_ssize_t *offset)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) {
        return NULL;
    }
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)
        || ((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "bind_plain: %s.%s is not a slot", type->tp_name, name);
        Py_DECREF(descr);
        return NULL;
    }
    *offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    return descr;
}

static int
find_slots(PyTypeObject *type, const char *const *names, int count, Py_ssize_t *offsets,
           PyObject **descrs)
{
    for (int i = 0; i < count; i++) {
        PyObject *descr = slot_descriptor(type, names[i], &offsets[i]);
        if (descr == NULL) {
            return -1;
        }
        if (descrs != NULL) {
            Py_XSETREF(descrs[i], descr);
        }
        else {
            Py_DECREF(descr);
        }
    }
    return 0;
}

static PyObject *
bind_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "bind_plain(connection_class, writer_class, engine_class, open_state)");
        return NULL;
    }
    PyTypeObject *conn = (PyTypeObject *)args[0], *writer = (PyTypeObject *)args[1];
    PyTypeObject *engine = (PyTypeObject *)args[2];
    /* Found first, kept only if all are there: a failed call changes nothing. */
    Py_ssize_t c_offsets[CONN_SLOTS], w_offsets[WRITER_SLOTS], e_offsets[ENGINE_SLOTS];
    PyObject *descrs[CONN_SLOTS] = {NULL};
    if (find_slots(conn, conn_slot_names, CONN_SLOTS, c_offsets, descrs) < 0
        || find_slots(writer, writer_slot_names, WRITER_SLOTS, w_offsets, NULL) < 0
        || find_slots(engine, engine_slot_names, ENGINE_SLOTS, e_offsets, NULL) < 0) {
        for (int i = 0; i < CONN_SLOTS; i++) {
            Py_XDECREF(descrs[i]);
        }
        return NULL;
    }
    for (int i = 0; i < CONN_SLOTS; i++) {
        conn_slots[i] = c_offsets[i];
        Py_XSETREF(conn_slot_descrs[i], descrs[i]);
    }
    memcpy(writer_slots, w_offsets, sizeof writer_slots);
    memcpy(engine_slots, e_offsets, sizeof engine_slots);
    for (int i = 0; i < KNOWN_TYPES; i++) {
        Py_CLEAR(known_types[i]);
    }
    Py_INCREF(conn);
    Py_XSETREF(conn_type, conn);
    Py_INCREF(writer);
    Py_XSETREF(writer_type, writer);
    Py_INCREF(engine);
    Py_XSETREF(engine_type, engine);
    Py_INCREF(args[3]);
    Py_XSETREF(open_state, args[3]);
    Py_RETURN_NONE;
}

/* 1 when instances of `type` keep conn_type's slots, 0 when not, -1 on error. */
static int
keeps_slots(PyTypeObject *type)
{
    if (type == conn_type) {
        return 1;
    }
    int free_entry = -1;
    for (int i = 0; i < KNOWN_TYPES; i++) {
        if (known_types[i] == type) {
            return 1;
        }
        if (known_types[i] == NULL && free_entry < 0) {
            free_entry = i;
        }
    }
    /* (An own __getattribute__ could answer for the slots: left to Python.) */
    if (!PyType_IsSubtype(type, conn_type) || type->tp_getattro != conn_type->tp_getattro) {
        return 0;
    }
    for (int i = 0; i < CONN_SLOTS; i++) {
        PyObject *found = PyObject_GetAttrString((PyObject *)type, conn_slot_names[i]);
        if (found == NULL) {
            return -1;
        }
        int same = found == conn_slot_descrs[i];
        Py_DECREF(found);
        if (!same) {
            return 0;
        }
    }
    if (free_entry >= 0) {
        Py_INCREF(type);
        known_types[free_entry] = type;
    }
    return 1;
}

/* 1 when `conn`'s common case holds, with `*transport` (a new reference)
 * and `*fd` its descriptor; 0 when the Python loop must decide; -1 on error.
 * What write_prepared_to_each checks, in the same order. */
static int
common_case(PyObject *conn, PyObject *max_queued, PyObject **transport, long *fd)
{
    int kept = keeps_slots(Py_TYPE(conn));
    if (kept <= 0) {
        return kept;
    }
    PyObject *engine = SLOT(conn, conn_slots, C_ENGINE);
    PyObject *writer = SLOT(conn, conn_slots, C_WRITER);
    if (engine == NULL || writer == NULL || !PyObject_TypeCheck(engine, engine_type)
        || !Py_IS_TYPE(writer, writer_type)) {
        return 0;
    }
    PyObject *t = SLOT(writer, writer_slots, W_TRANSPORT);
    PyObject *fd_item = SLOT(writer, writer_slots, W_FD);
    if (t == NULL || t == Py_None || SLOT(writer, writer_slots, W_CORKED) != Py_None
        || SLOT(engine, engine_slots, E_STATE) != open_state
        || SLOT(engine, engine_slots, E_PLAIN) != Py_True
        || SLOT(engine, engine_slots, E_KEY) != Py_None
        || SLOT(conn, conn_slots, C_LOST) != Py_False
        || SLOT(conn, conn_slots, C_FRAGMENTED) != Py_None
        || SLOT(conn, conn_slots, C_REPORTER) != Py_None
        || SLOT(conn, conn_slots, C_DEBUG) != Py_False
        || fd_item == NULL || !PyLong_CheckExact(fd_item)) {
        return 0;
    }
    *fd = PyLong_AsLong(fd_item);
    if (*fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    Py_INCREF(t);
    if (max_queued == Py_None) {
        if (SLOT(writer, writer_slots, W_PAUSED) != Py_False) {
            Py_DECREF(t);
            return 0;
        }
    }
    else {
        PyObject *size = PyObject_CallMethodNoArgs(t, str_get_write_buffer_size);
        int within = size == NULL ? -1 : PyObject_RichCompareBool(size, max_queued, Py_LE);
        Py_XDECREF(size);
        if (within <= 0) {
            Py_DECREF(t);
            return within;
        }
    }
    *transport = t;
    return 1;
}

static PyObject *
write_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "write_plain(connections, data, max_queued) takes 3 arguments");
        return NULL;
    }
    PyObject *connections = args[0], *data = args[1], *max_queued = args[2];
    if (conn_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write_plain: bind_plain() was not called");
        return NULL;
    }
    if (!PyList_CheckExact(connections) || !PyBytes_CheckExact(data)
        || (max_queued != Py_None && !PyLong_CheckExact(max_queued))) {
        PyErr_SetString(PyExc_TypeError,
                        "write_plain: a list of connections, bytes, and an int or None");
        return NULL;
    }
    PyObject *rest = PyList_New(0);
    if (rest == NULL) {
        return NULL;
    }
    Py_ssize_t written = 0;
    /* Indexes checked against the list's size each time: a transport's
     * methods run Python code, which could change it. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(connections); i++) {
        PyObject *conn = PyList_GET_ITEM(connections, i);
        Py_INCREF(conn);
        PyObject *transport = NULL;
        long fd = -1;
        int plain = common_case(conn, max_queued, &transport, &fd);
        if (plain == 1) {
            plain = write_one(transport, fd, data) < 0 ? -1 : 1;
            Py_DECREF(transport);
            written += plain == 1;
        }
        else if (plain == 0 && PyList_Append(rest, conn) < 0) {
            plain = -1;
        }
        Py_DECREF(conn);
        if (plain < 0) {
            Py_DECREF(rest);
            return NULL;
        }
    }
    return Py_BuildValue("(nN)", written, rest);
}

static PyMethodDef methods[] = {
    {"write_each", (PyCFunction)(void (*)(void))write_each, METH_FASTCALL,
     "write_each(transports, fds, data): data to each transport, straight to its "
     "socket fds[i] when the transport holds nothing and is not closing."},
    {"bind_plain", (PyCFunction)(void (*)(void))bind_plain, METH_FASTCALL,
     "bind_plain(connection_class, writer_class, engine_class, open_state): the "
     "classes whose slots write_plain reads."},
    {"write_plain", (PyCFunction)(void (*)(void))write_plain, METH_FASTCALL,
     "write_plain(connections, data, max_queued) -> (written, rest): data to each "
     "connection in its common case; the others, in order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "asgiws.connection._speedups",
    "C accelerator of asgiws.connection (see shared_write.py).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    str_get_write_buffer_size = PyUnicode_InternFromString("get_write_buffer_size");
    str_is_closing = PyUnicode_InternFromString("is_closing");
    str_write = PyUnicode_InternFromString("write");
    if (str_get_write_buffer_size == NULL || str_is_closing == NULL || str_write == NULL) {
        return NULL;
    }
    return PyModule_Create(&module);
}
