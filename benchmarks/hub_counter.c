/* The hub benchmark's per-read work in C (benchmarks/hub_client.py).
 *
 * Tally: frames per subscriber, and how many fan-outs every subscriber has
 * whole; the same rules as hub_client.Tally.
 * Subscriber: a base type for the benchmark's asyncio subscribers.  Its
 * data_received, once the handshake is done, checks the header bytes of
 * every frame, counts whole frames into the tally and, for sampled
 * subscribers, reads each frame's sequence number and send time: the same
 * checks as hub_client.Subscriber.data_received and SampledSubscriber.parse,
 * with no Python code run per read.  Before the handshake is done it calls
 * the Python method `handshake(data)`.
 *
 * Every frame is FRAME_SIZE bytes: 0x82 (FIN, binary), 0x40 (unmasked,
 * 64-byte payload), then the payload, which starts with the big-endian
 * sequence number and send time (monotonic ns).
 *
 * Built at benchmark start by benchmarks/hub.py (tests/unit/c_build.py);
 * C99, CPython API only.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define OPCODE 0x82
#define LENGTH 0x40
#define FRAME_SIZE (2 + LENGTH)
#define HEAD_END (2 + 16) /* sequence number and send time end here */

/* ------------------------------------------------------------------ Tally */

typedef struct {
    PyObject_HEAD
    Py_ssize_t size;
    long long *counts;      /* frames per subscriber */
    unsigned char *lagging; /* 1: short of fan-out `complete` (while scanning) */
    Py_ssize_t lagging_count;
    int scanning;           /* lagging[] is valid (Python: lagging is not None) */
    long long total;
    long long complete;
    long long threshold;    /* total count at which fan-out `complete` may be done */
    PyObject *on_complete;  /* callable or NULL */
    PyObject *error;        /* first failure (str) or NULL */
} TallyObject;

static PyTypeObject TallyType;

static int
tally_init(TallyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"size", NULL};
    Py_ssize_t size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n:Tally", kwlist, &size)) {
        return -1;
    }
    if (size < 1) {
        PyErr_SetString(PyExc_ValueError, "Tally size must be at least 1");
        return -1;
    }
    if (self->counts != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Tally already initialised");
        return -1;
    }
    self->counts = PyMem_Calloc((size_t)size, sizeof(long long));
    self->lagging = PyMem_Calloc((size_t)size, 1);
    if (self->counts == NULL || self->lagging == NULL) {
        PyMem_Free(self->counts);
        PyMem_Free(self->lagging);
        self->counts = NULL;
        self->lagging = NULL;
        PyErr_NoMemory();
        return -1;
    }
    self->size = size;
    self->threshold = size;
    return 0;
}

static int
tally_traverse(TallyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->on_complete);
    Py_VISIT(self->error);
    return 0;
}

static int
tally_clear(TallyObject *self)
{
    Py_CLEAR(self->on_complete);
    Py_CLEAR(self->error);
    return 0;
}

static void
tally_dealloc(TallyObject *self)
{
    PyObject_GC_UnTrack(self);
    tally_clear(self);
    PyMem_Free(self->counts);
    PyMem_Free(self->lagging);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
tally_ready(TallyObject *self)
{
    if (self->counts == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Tally not initialised");
        return -1;
    }
    return 0;
}

/* Fan-out `complete` is done: the next one may be, then on_complete. */
static int
tally_advance(TallyObject *self)
{
    self->scanning = 0;
    self->complete += 1;
    self->threshold += self->size;
    if (self->on_complete != NULL) {
        PyObject *callback = self->on_complete;
        Py_INCREF(callback); /* it may replace itself */
        PyObject *result = PyObject_CallNoArgs(callback);
        Py_DECREF(callback);
        if (result == NULL) {
            return -1;
        }
        Py_DECREF(result);
    }
    return 0;
}

/* While the total says fan-out `complete` could be done: the subscribers
 * still short of it, or the fan-out is done (and so on). */
static int
tally_scan(TallyObject *self)
{
    while (!self->scanning && self->total >= self->threshold) {
        const long long complete = self->complete;
        const long long *counts = self->counts;
        unsigned char *lagging = self->lagging;
        Py_ssize_t count = 0;
        for (Py_ssize_t i = 0; i < self->size; i++) {
            unsigned char short_of_it = counts[i] <= complete;
            lagging[i] = short_of_it;
            count += short_of_it;
        }
        if (count) {
            self->lagging_count = count;
            self->scanning = 1;
            return 0;
        }
        if (tally_advance(self) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
tally_add_frames(TallyObject *self, Py_ssize_t index, long long frames)
{
    if (index < 0 || index >= self->size) {
        PyErr_Format(PyExc_IndexError, "subscriber index %zd not below %zd", index, self->size);
        return -1;
    }
    long long count = self->counts[index] += frames;
    self->total += frames;
    if (!self->scanning) {
        return self->total >= self->threshold ? tally_scan(self) : 0;
    }
    if (count > self->complete && self->lagging[index]) {
        self->lagging[index] = 0;
        if (--self->lagging_count == 0) {
            if (tally_advance(self) < 0) {
                return -1;
            }
            return tally_scan(self);
        }
    }
    return 0;
}

/* Keeps the first failure only; takes no reference. */
static void
tally_fail_with(TallyObject *self, PyObject *why)
{
    if (self->error == NULL) {
        Py_INCREF(why);
        self->error = why;
    }
}

static PyObject *
tally_add(TallyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "add(index, frames) takes 2 arguments");
        return NULL;
    }
    if (tally_ready(self) < 0) {
        return NULL;
    }
    Py_ssize_t index = PyLong_AsSsize_t(args[0]);
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    long long frames = PyLong_AsLongLong(args[1]);
    if (frames == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (frames < 0) {
        PyErr_SetString(PyExc_ValueError, "frames must be >= 0");
        return NULL;
    }
    if (tally_add_frames(self, index, frames) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
tally_fail(TallyObject *self, PyObject *why)
{
    if (!PyUnicode_Check(why)) {
        PyErr_SetString(PyExc_TypeError, "fail(why): why must be a str");
        return NULL;
    }
    tally_fail_with(self, why);
    Py_RETURN_NONE;
}

static PyObject *
tally_get_counts(TallyObject *self, void *closure)
{
    if (tally_ready(self) < 0) {
        return NULL;
    }
    PyObject *list = PyList_New(self->size);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->size; i++) {
        PyObject *count = PyLong_FromLongLong(self->counts[i]);
        if (count == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, count);
    }
    return list;
}

static PyObject *
tally_get_lagging(TallyObject *self, void *closure)
{
    if (!self->scanning) {
        Py_RETURN_NONE;
    }
    PyObject *set = PySet_New(NULL);
    if (set == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->size; i++) {
        if (!self->lagging[i]) {
            continue;
        }
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PySet_Add(set, index) < 0) {
            Py_XDECREF(index);
            Py_DECREF(set);
            return NULL;
        }
        Py_DECREF(index);
    }
    return set;
}

static PyObject *
tally_get_on_complete(TallyObject *self, void *closure)
{
    PyObject *callback = self->on_complete != NULL ? self->on_complete : Py_None;
    Py_INCREF(callback);
    return callback;
}

static int
tally_set_on_complete(TallyObject *self, PyObject *value, void *closure)
{
    if (value == NULL || value == Py_None) {
        Py_CLEAR(self->on_complete);
        return 0;
    }
    if (!PyCallable_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "on_complete must be callable or None");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->on_complete, value);
    return 0;
}

static PyObject *
tally_get_error(TallyObject *self, void *closure)
{
    PyObject *error = self->error != NULL ? self->error : Py_None;
    Py_INCREF(error);
    return error;
}

static PyGetSetDef tally_getset[] = {
    {"counts", (getter)tally_get_counts, NULL, "frames per subscriber (a new list)", NULL},
    {"lagging", (getter)tally_get_lagging, NULL,
     "subscribers short of fan-out `complete` (a new set), or None", NULL},
    {"on_complete", (getter)tally_get_on_complete, (setter)tally_set_on_complete,
     "called with no arguments each time a fan-out completes", NULL},
    {"error", (getter)tally_get_error, NULL, "the first failure, or None", NULL},
    {NULL},
};

static PyMemberDef tally_members[] = {
    {"size", T_PYSSIZET, offsetof(TallyObject, size), READONLY, NULL},
    {"total", T_LONGLONG, offsetof(TallyObject, total), READONLY, NULL},
    {"complete", T_LONGLONG, offsetof(TallyObject, complete), READONLY, NULL},
    {"threshold", T_LONGLONG, offsetof(TallyObject, threshold), READONLY, NULL},
    {NULL},
};

static PyMethodDef tally_methods[] = {
    {"add", (PyCFunction)(void (*)(void))tally_add, METH_FASTCALL,
     "add(index, frames): `frames` more whole frames at subscriber `index`"},
    {"fail", (PyCFunction)tally_fail, METH_O, "fail(why): the run failed (the first why is kept)"},
    {NULL},
};

static PyTypeObject TallyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hub_counter.Tally",
    .tp_doc = "Tally(size): frames per subscriber, and how many fan-outs every "
              "subscriber has whole (hub_client.Tally in C).",
    .tp_basicsize = sizeof(TallyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)tally_init,
    .tp_dealloc = (destructor)tally_dealloc,
    .tp_traverse = (traverseproc)tally_traverse,
    .tp_clear = (inquiry)tally_clear,
    .tp_methods = tally_methods,
    .tp_members = tally_members,
    .tp_getset = tally_getset,
};

/* ------------------------------------------------------------- Subscriber */

typedef struct {
    PyObject_HEAD
    TallyObject *tally;    /* NULL until set */
    PyObject *head;        /* the handshake answer so far; None once upgraded */
    PyObject *latencies;   /* list appended to, or NULL (sampled subscribers) */
    Py_ssize_t index;
    Py_ssize_t phase;      /* bytes of the current frame already received */
    unsigned long long sequence; /* the sequence number due (sampled) */
    char closing;
    char sampled;          /* the class attribute `sampled`, read at creation */
    unsigned char partial[HEAD_END]; /* the current frame's first bytes (sampled) */
} SubscriberObject;

static PyObject *str_handshake; /* "handshake" */
static PyObject *str_sampled;   /* "sampled" */

static PyObject *
subscriber_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    /* Read before allocating: `sampled` is a class attribute of the Python
     * subclasses (hub_client.SampledSubscriber). */
    int sampled = 0;
    PyObject *flag = PyObject_GetAttr((PyObject *)type, str_sampled);
    if (flag == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
    }
    else {
        sampled = PyObject_IsTrue(flag);
        Py_DECREF(flag);
        if (sampled < 0) {
            return NULL;
        }
    }
    SubscriberObject *self = (SubscriberObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->head = PyBytes_FromStringAndSize(NULL, 0);
    if (self->head == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->sampled = (char)sampled;
    return (PyObject *)self;
}

static int
subscriber_traverse(SubscriberObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->tally);
    Py_VISIT(self->head);
    Py_VISIT(self->latencies);
    return 0;
}

static int
subscriber_clear(SubscriberObject *self)
{
    Py_CLEAR(self->tally);
    Py_CLEAR(self->head);
    Py_CLEAR(self->latencies);
    return 0;
}

static void
subscriber_dealloc(SubscriberObject *self)
{
    PyObject_GC_UnTrack(self);
    subscriber_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
subscriber_fail(SubscriberObject *self, const char *format, ...)
{
    va_list vargs;
    va_start(vargs, format);
    PyObject *why = PyUnicode_FromFormatV(format, vargs);
    va_end(vargs);
    if (why == NULL) {
        return -1;
    }
    tally_fail_with(self->tally, why);
    Py_DECREF(why);
    return 0;
}

static inline unsigned long long
load_be64(const unsigned char *p)
{
    unsigned long long value = 0;
    for (int i = 0; i < 8; i++) {
        value = (value << 8) | p[i];
    }
    return value;
}

/* One whole frame's head (its first HEAD_END bytes): the sequence number
 * due, and its latency.  1: go on, 0: out of order (failed), -1: error. */
static int
subscriber_check_frame(SubscriberObject *self, const unsigned char *frame,
                       unsigned long long now)
{
    unsigned long long sequence = load_be64(frame + 2);
    unsigned long long sent = load_be64(frame + 10);
    if (sequence != self->sequence) {
        if (subscriber_fail(self, "subscriber %zd: message %llu where %llu was due",
                            self->index, sequence, self->sequence) < 0) {
            return -1;
        }
        return 0;
    }
    self->sequence += 1;
    if (self->latencies != NULL) {
        PyObject *latency;
        if (sent <= now) {
            latency = PyLong_FromUnsignedLongLong(now - sent);
        }
        else if (sent - now <= (unsigned long long)LLONG_MAX) {
            latency = PyLong_FromLongLong(-(long long)(sent - now));
        }
        else { /* a nonsense stamp: exact, as in Python */
            PyObject *a = PyLong_FromUnsignedLongLong(now);
            PyObject *b = PyLong_FromUnsignedLongLong(sent);
            latency = a != NULL && b != NULL ? PyNumber_Subtract(a, b) : NULL;
            Py_XDECREF(a);
            Py_XDECREF(b);
        }
        if (latency == NULL) {
            return -1;
        }
        int appended = PyList_Append(self->latencies, latency);
        Py_DECREF(latency);
        if (appended < 0) {
            return -1;
        }
    }
    return 1;
}

/* Sampled subscribers: every frame this read completes, in order.  `phase`
 * is the phase before this read.  Keeps the first HEAD_END bytes of a frame
 * the read cut. */
static int
subscriber_parse(SubscriberObject *self, const unsigned char *data, Py_ssize_t n,
                 Py_ssize_t phase)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    const unsigned long long now =
        (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
    int going = 1; /* 0 after a failure: the rest of this read is not checked */
    Py_ssize_t pos = 0;
    if (phase > 0) { /* the frame an earlier read cut */
        if (phase < HEAD_END) {
            Py_ssize_t take = HEAD_END - phase < n ? HEAD_END - phase : n;
            memcpy(self->partial + phase, data, (size_t)take);
        }
        pos = FRAME_SIZE - phase;
        if (pos > n) {
            return 0; /* still not whole */
        }
        going = subscriber_check_frame(self, self->partial, now);
        if (going < 0) {
            return -1;
        }
    }
    for (; pos + FRAME_SIZE <= n; pos += FRAME_SIZE) {
        if (going) {
            going = subscriber_check_frame(self, data + pos, now);
            if (going < 0) {
                return -1;
            }
        }
    }
    if (pos < n) { /* a frame this read cut */
        Py_ssize_t take = n - pos < HEAD_END ? n - pos : HEAD_END;
        memcpy(self->partial, data + pos, (size_t)take);
    }
    return 0;
}

/* After the handshake: check, count, parse one read. */
static int
subscriber_frames(SubscriberObject *self, const unsigned char *data, Py_ssize_t n)
{
    TallyObject *tally = self->tally;
    if (tally == NULL || tally_ready(tally) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "subscriber has no tally");
        }
        return -1;
    }
    const Py_ssize_t phase = self->phase;
    /* Where a frame starts (stream offset % FRAME_SIZE == 0) the byte must
     * be the opcode, one later the length. */
    for (Py_ssize_t i = (FRAME_SIZE - phase) % FRAME_SIZE; i < n; i += FRAME_SIZE) {
        if (data[i] != OPCODE) {
            return subscriber_fail(self, "subscriber %zd: not a %d-byte binary frame",
                                   self->index, FRAME_SIZE);
        }
    }
    for (Py_ssize_t i = (FRAME_SIZE + 1 - phase) % FRAME_SIZE; i < n; i += FRAME_SIZE) {
        if (data[i] != LENGTH) {
            return subscriber_fail(self, "subscriber %zd: not a %d-byte binary frame",
                                   self->index, FRAME_SIZE);
        }
    }
    const Py_ssize_t end = phase + n;
    self->phase = end % FRAME_SIZE;
    if (self->sampled && subscriber_parse(self, data, n, phase) < 0) {
        return -1; /* before counting, which may publish the next message */
    }
    if (end >= FRAME_SIZE) {
        Py_INCREF(tally); /* on_complete may run any code, even replace our tally */
        int status = tally_add_frames(tally, self->index, end / FRAME_SIZE);
        Py_DECREF(tally);
        return status;
    }
    return 0;
}

static PyObject *
subscriber_data_received(SubscriberObject *self, PyObject *data)
{
    if (self->head != Py_None) {
        if (self->head == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "subscriber has no head");
            return NULL;
        }
        PyObject *rest = PyObject_CallMethodOneArg((PyObject *)self, str_handshake, data);
        if (rest == NULL) {
            return NULL;
        }
        int more = PyObject_IsTrue(rest);
        PyObject *result = NULL;
        if (more < 0) {
            goto done;
        }
        if (more && !self->closing) { /* what followed the 101 answer */
            result = subscriber_data_received(self, rest);
            goto done;
        }
        result = Py_None;
        Py_INCREF(result);
    done:
        Py_DECREF(rest);
        return result;
    }
    if (self->closing) {
        Py_RETURN_NONE;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    int status = subscriber_frames(self, (const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
subscriber_get_tally(SubscriberObject *self, void *closure)
{
    PyObject *tally = self->tally != NULL ? (PyObject *)self->tally : Py_None;
    Py_INCREF(tally);
    return tally;
}

static int
subscriber_set_tally(SubscriberObject *self, PyObject *value, void *closure)
{
    if (value == NULL || !PyObject_TypeCheck(value, &TallyType)) {
        PyErr_SetString(PyExc_TypeError, "tally must be a hub_counter.Tally");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->tally, (TallyObject *)value);
    return 0;
}

static PyObject *
subscriber_get_head(SubscriberObject *self, void *closure)
{
    PyObject *head = self->head != NULL ? self->head : Py_None;
    Py_INCREF(head);
    return head;
}

static int
subscriber_set_head(SubscriberObject *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "head cannot be deleted");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->head, value);
    return 0;
}

static PyObject *
subscriber_get_phase(SubscriberObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->phase);
}

static int
subscriber_set_phase(SubscriberObject *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "phase cannot be deleted");
        return -1;
    }
    Py_ssize_t phase = PyLong_AsSsize_t(value);
    if (phase == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (phase < 0 || phase >= FRAME_SIZE) {
        PyErr_Format(PyExc_ValueError, "phase must be in [0, %d)", FRAME_SIZE);
        return -1;
    }
    self->phase = phase;
    return 0;
}

static PyObject *
subscriber_get_latencies(SubscriberObject *self, void *closure)
{
    PyObject *latencies = self->latencies != NULL ? self->latencies : Py_None;
    Py_INCREF(latencies);
    return latencies;
}

static int
subscriber_set_latencies(SubscriberObject *self, PyObject *value, void *closure)
{
    if (value == NULL || value == Py_None) {
        Py_CLEAR(self->latencies);
        return 0;
    }
    if (!PyList_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "latencies must be a list or None");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->latencies, value);
    return 0;
}

static PyGetSetDef subscriber_getset[] = {
    {"tally", (getter)subscriber_get_tally, (setter)subscriber_set_tally,
     "the hub_counter.Tally counted into", NULL},
    {"head", (getter)subscriber_get_head, (setter)subscriber_set_head,
     "the handshake answer so far; None once upgraded", NULL},
    {"phase", (getter)subscriber_get_phase, (setter)subscriber_set_phase,
     "bytes of the current frame already received", NULL},
    {"latencies", (getter)subscriber_get_latencies, (setter)subscriber_set_latencies,
     "sampled subscribers append each frame's latency (ns) here while it is a list", NULL},
    {NULL},
};

static PyMemberDef subscriber_members[] = {
    {"index", T_PYSSIZET, offsetof(SubscriberObject, index), 0, NULL},
    {"sequence", T_ULONGLONG, offsetof(SubscriberObject, sequence), 0,
     "the sequence number due next (sampled subscribers)"},
    {"closing", T_BOOL, offsetof(SubscriberObject, closing), 0, NULL},
    {NULL},
};

static PyMethodDef subscriber_methods[] = {
    {"data_received", (PyCFunction)subscriber_data_received, METH_O,
     "data_received(data): the handshake (Python `handshake`), then frames"},
    {NULL},
};

static PyTypeObject SubscriberType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hub_counter.Subscriber",
    .tp_doc = "Base of the benchmark's subscribers: data_received in C. Subclasses "
              "provide handshake(data) -> bytes and may set the class attribute "
              "`sampled`.",
    .tp_basicsize = sizeof(SubscriberObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = subscriber_new,
    .tp_dealloc = (destructor)subscriber_dealloc,
    .tp_traverse = (traverseproc)subscriber_traverse,
    .tp_clear = (inquiry)subscriber_clear,
    .tp_methods = subscriber_methods,
    .tp_members = subscriber_members,
    .tp_getset = subscriber_getset,
};

/* ----------------------------------------------------------------- module */

static struct PyModuleDef hub_counter_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "hub_counter",
    .m_doc = "The hub benchmark's per-read work in C (benchmarks/hub_client.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit_hub_counter(void)
{
    if (str_handshake == NULL) {
        str_handshake = PyUnicode_InternFromString("handshake");
        if (str_handshake == NULL) {
            return NULL;
        }
    }
    if (str_sampled == NULL) {
        str_sampled = PyUnicode_InternFromString("sampled");
        if (str_sampled == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&TallyType) < 0 || PyType_Ready(&SubscriberType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&hub_counter_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddType(module, &TallyType) < 0 ||
        PyModule_AddType(module, &SubscriberType) < 0 ||
        PyModule_AddIntConstant(module, "FRAME_SIZE", FRAME_SIZE) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
