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
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
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
    const char *buf = PyBytes_AS_STRING(data);
    const Py_ssize_t len = PyBytes_GET_SIZE(data);
    for (Py_ssize_t i = 0; i < count; i++) {
        /* Borrowed items: hold them, the transport's methods run Python code
         * that could change the lists. */
        PyObject *transport = PyList_GET_ITEM(transports, i);
        PyObject *fd_item = PyList_GET_ITEM(fds, i);
        Py_INCREF(transport);
        Py_INCREF(fd_item);
        long fd = PyLong_AsLong(fd_item);
        Py_DECREF(fd_item);
        Py_ssize_t taken = 0;
        if (fd == -1 && PyErr_Occurred()) {
            taken = -1;
        }
        else if (fd >= 0 && fd <= INT_MAX && len > 0) {
            taken = write_around(transport, (int)fd, buf, len);
        }
        if (taken >= 0 && taken < len && transport_write(transport, data, taken) < 0) {
            taken = -1;
        }
        Py_DECREF(transport);
        if (taken < 0) {
            return NULL;
        }
        if (PyList_GET_SIZE(transports) != count || PyList_GET_SIZE(fds) != count) {
            PyErr_SetString(PyExc_RuntimeError, "write_each: the lists changed while writing");
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"write_each", (PyCFunction)(void (*)(void))write_each, METH_FASTCALL,
     "write_each(transports, fds, data): data to each transport, straight to its "
     "socket fds[i] when the transport holds nothing and is not closing."},
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
