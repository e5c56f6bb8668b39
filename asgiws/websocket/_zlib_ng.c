/* permessage-deflate on zlib-ng's native API, without a Python wrapper
 * between each message and the library.
 *
 * The `zlib-ng` package (the `standard` extra) ships zlib-ng inside its
 * extension module, and that module exports zlib-ng's native API (zng_*).
 * bind() finds those functions in the already loaded module with dlsym, once
 * at import; Deflater and Inflater then call them directly.  What that saves
 * per message, against the package's compressobj/decompressobj: argument
 * parsing, the GIL and a lock released and taken around every call, and a
 * 32 KiB output buffer allocated and shrunk per call (~5k instructions for a
 * compressed echo, docs/PERFORMANCE.md).  The compressed bytes are zlib-ng's
 * own either way: the same library, the same parameters.
 *
 * Only what deflate.py uses: compressobj(level, method, wbits, memLevel)
 * with compress(data) and flush(mode), decompressobj(wbits) with
 * decompress(data, max_length) and eof, and deflate_frame(), a whole
 * server message compressed into one frame (as _speedups.deflate_frame does
 * through a compressobj's methods).  Errors are raised as the package's
 * own error class, given to bind().
 *
 * zng_stream below is zlib-ng 2.x's (zlib-ng.h, "native API"); bind()
 * refuses any other major version, and deflate.py falls back to the
 * package's wrapper then (and when this module is not built). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifndef _WIN32
#include <dlfcn.h>
#endif

typedef struct {
    const uint8_t *next_in;
    uint32_t avail_in;
    size_t total_in;
    uint8_t *next_out;
    uint32_t avail_out;
    size_t total_out;
    const char *msg;
    void *state;
    void *(*zalloc)(void *opaque, unsigned int items, unsigned int size);
    void (*zfree)(void *opaque, void *address);
    void *opaque;
    int data_type;
    uint32_t adler;
    unsigned long reserved;
} zng_stream;

#define Z_NO_FLUSH 0
#define Z_SYNC_FLUSH 2
#define Z_FULL_FLUSH 3
#define Z_OK 0
#define Z_STREAM_END 1
#define Z_NEED_DICT 2
#define Z_STREAM_ERROR (-2)
#define Z_DATA_ERROR (-3)
#define Z_MEM_ERROR (-4)
#define Z_BUF_ERROR (-5)
#define Z_DEFLATED 8
#define Z_DEFAULT_STRATEGY 0

static int32_t (*zng_deflateInit2)(zng_stream *, int32_t, int32_t, int32_t, int32_t, int32_t);
static int32_t (*zng_deflate)(zng_stream *, int32_t);
static int32_t (*zng_deflateEnd)(zng_stream *);
static int32_t (*zng_inflateInit2)(zng_stream *, int32_t);
static int32_t (*zng_inflate)(zng_stream *, int32_t);
static int32_t (*zng_inflateEnd)(zng_stream *);
static PyObject *zlib_error; /* the package's error class; NULL until bind() */

/* Inputs this big are (de)compressed with the GIL released, as the
 * package's wrapper does for every call: other threads run meanwhile.
 * Smaller ones keep it, which costs other threads less than the release
 * and the wake-up would. */
#define RELEASE_GIL_AT (256 * 1024)

/* Output first goes to a buffer on the stack (a message's worth for most
 * messages), then to the heap, doubling; the result is copied into a bytes
 * object of the exact size, behind the frame header when there is one. */
#define STACK_OUT (16 * 1024)

typedef struct {
    unsigned char *buf; /* stack, or heap once it outgrew the stack */
    Py_ssize_t len, cap;
    unsigned char *stack;
} Output;

static void
output_init(Output *out, unsigned char *stack)
{
    out->buf = out->stack = stack;
    out->len = 0;
    out->cap = STACK_OUT;
}

/* Room for more output, at most `limit` bytes in all (0: no limit).  Runs
 * with or without the GIL: raw allocation only; 0 on success. */
static int
output_grow(Output *out, Py_ssize_t limit)
{
    Py_ssize_t cap = out->cap * 2;
    unsigned char *buf;
    if (limit > 0 && cap > limit)
        cap = limit;
    if (out->buf == out->stack) {
        buf = PyMem_RawMalloc((size_t)cap);
        if (buf != NULL)
            memcpy(buf, out->buf, (size_t)out->len);
    }
    else
        buf = PyMem_RawRealloc(out->buf, (size_t)cap);
    if (buf == NULL)
        return -1;
    out->buf = buf;
    out->cap = cap;
    return 0;
}

static void
output_free(Output *out)
{
    if (out->buf != out->stack)
        PyMem_RawFree(out->buf);
}

/* Point the stream's output at the free part of `out`. */
static void
output_arrange(zng_stream *s, Output *out)
{
    Py_ssize_t room = out->cap - out->len;
    s->next_out = out->buf + out->len;
    s->avail_out = room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
}

static void
output_count(zng_stream *s, Output *out)
{
    out->len = (Py_ssize_t)(s->next_out - out->buf);
}

static PyObject *
raise_zlib_error(int32_t err, const zng_stream *s, const char *what)
{
    if (err == Z_MEM_ERROR)
        return PyErr_NoMemory();
    PyErr_Format(zlib_error, "Error %d while %s: %s", (int)err, what,
                 s->msg != NULL ? s->msg : "invalid input data");
    return NULL;
}

/* --- Deflater --------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    zng_stream zs;
    char ready; /* deflateInit2 succeeded: deflateEnd owed */
    char busy;  /* in use with the GIL released */
} Deflater;

static PyTypeObject DeflaterType;

static int
check_bound(void)
{
    if (zlib_error == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "zlib-ng is not bound: call bind() first");
        return -1;
    }
    return 0;
}

static int
enter(char *busy)
{
    if (*busy) {
        PyErr_SetString(PyExc_RuntimeError, "the stream is in use by another thread");
        return -1;
    }
    return 0;
}

/* Feed `data` (`n` bytes) through deflate with `flush`, appending to `out`.
 * Returns the last zlib result (Z_STREAM_ERROR or Z_MEM_ERROR: failed;
 * -100: out of memory for the output). */
static int32_t
run_deflate(zng_stream *s, const unsigned char *data, Py_ssize_t n, int32_t flush, Output *out)
{
    int32_t err = Z_OK;
    s->next_in = data;
    do {
        /* input beyond 4 GiB goes in slices (avail_in is 32 bits) */
        Py_ssize_t left = n - (Py_ssize_t)(s->next_in - data);
        int32_t mode = left > UINT32_MAX ? Z_NO_FLUSH : flush;
        s->avail_in = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        do {
            if (out->len == out->cap && output_grow(out, 0) < 0)
                return -100;
            output_arrange(s, out);
            err = zng_deflate(s, mode);
            output_count(s, out);
            if (err == Z_STREAM_ERROR || err == Z_MEM_ERROR)
                return err;
        } while (s->avail_out == 0 || s->avail_in != 0);
    } while ((Py_ssize_t)(s->next_in - data) < n);
    return err;
}

/* deflate `data` into `out` with `flush`, the GIL released for big inputs;
 * NULL-return convention: -1 with an exception set, 0 on success. */
static int
deflater_run(Deflater *self, Py_buffer *data, int32_t flush, Output *out)
{
    int32_t err;
    if (enter(&self->busy) < 0)
        return -1;
    if (data->len >= RELEASE_GIL_AT) {
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        err = run_deflate(&self->zs, data->buf, data->len, flush, out);
        Py_END_ALLOW_THREADS
        self->busy = 0;
    }
    else
        err = run_deflate(&self->zs, data->buf, data->len, flush, out);
    if (err == -100) {
        PyErr_NoMemory();
        return -1;
    }
    if (err == Z_STREAM_ERROR || err == Z_MEM_ERROR) {
        raise_zlib_error(err, &self->zs, "compressing data");
        return -1;
    }
    return 0;
}

/* A compressobj()/decompressobj() whose init failed with `err`: what
 * zlib's raise (MemoryError, or ValueError for a bad level, wbits or
 * memLevel). */
static PyObject *
init_failed(PyObject *self, int32_t err)
{
    Py_DECREF(self);
    if (err == Z_MEM_ERROR)
        return PyErr_NoMemory();
    PyErr_SetString(PyExc_ValueError, "Invalid initialization option");
    return NULL;
}

static PyObject *
compressobj(PyObject *module, PyObject *args)
{
    int level, method, wbits, mem_level;
    int32_t err;
    Deflater *self;
    if (!PyArg_ParseTuple(args, "iiii:compressobj", &level, &method, &wbits, &mem_level))
        return NULL;
    if (check_bound() < 0)
        return NULL;
    self = PyObject_New(Deflater, &DeflaterType);
    if (self == NULL)
        return NULL;
    memset(&self->zs, 0, sizeof(self->zs));
    self->ready = 0;
    self->busy = 0;
    err = zng_deflateInit2(&self->zs, level, method, wbits, mem_level, Z_DEFAULT_STRATEGY);
    if (err == Z_OK) {
        self->ready = 1;
        return (PyObject *)self;
    }
    return init_failed((PyObject *)self, err);
}

static void
Deflater_dealloc(Deflater *self)
{
    if (self->ready)
        zng_deflateEnd(&self->zs);
    PyObject_Free(self);
}

static PyObject *
output_bytes(Output *out)
{
    PyObject *result = PyBytes_FromStringAndSize((const char *)out->buf, out->len);
    output_free(out);
    return result;
}

/* compress(data) -> bytes: zlib's Compress.compress (no flush). */
static PyObject *
Deflater_compress(Deflater *self, PyObject *arg)
{
    Py_buffer data;
    Output out;
    unsigned char stack[STACK_OUT];
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    output_init(&out, stack);
    if (deflater_run(self, &data, Z_NO_FLUSH, &out) < 0) {
        PyBuffer_Release(&data);
        output_free(&out);
        return NULL;
    }
    PyBuffer_Release(&data);
    return output_bytes(&out);
}

static int
flush_mode(PyObject *arg, int32_t *mode)
{
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value != Z_SYNC_FLUSH && value != Z_FULL_FLUSH) {
        PyErr_SetString(PyExc_ValueError, "flush mode must be Z_SYNC_FLUSH or Z_FULL_FLUSH");
        return -1;
    }
    *mode = (int32_t)value;
    return 0;
}

/* flush(mode) -> bytes: zlib's Compress.flush, Z_SYNC_FLUSH or Z_FULL_FLUSH. */
static PyObject *
Deflater_flush(Deflater *self, PyObject *arg)
{
    Py_buffer empty = {0};
    Output out;
    int32_t mode;
    unsigned char stack[STACK_OUT];
    if (flush_mode(arg, &mode) < 0)
        return NULL;
    empty.buf = stack; /* (no input: any valid pointer) */
    output_init(&out, stack);
    if (deflater_run(self, &empty, mode, &out) < 0) {
        output_free(&out);
        return NULL;
    }
    return output_bytes(&out);
}

static PyMethodDef Deflater_methods[] = {
    {"compress", (PyCFunction)Deflater_compress, METH_O, "Compress data (no flush)."},
    {"flush", (PyCFunction)Deflater_flush, METH_O, "Flush with Z_SYNC_FLUSH or Z_FULL_FLUSH."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DeflaterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asgiws.websocket._zlib_ng.Deflater",
    .tp_basicsize = sizeof(Deflater),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A raw deflate stream on zlib-ng (made by compressobj()).",
    .tp_dealloc = (destructor)Deflater_dealloc,
    .tp_methods = Deflater_methods,
};

/* What a compressed message ends with before RFC 7692 7.2.1 removes it. */
static const unsigned char COMPRESSED_TAIL[4] = {0x00, 0x00, 0xff, 0xff};

/* deflate_frame(compressor, data, flush_mode, opcode) -> bytes
 *
 * _speedups.deflate_frame for a Deflater: `data` compressed and flushed in
 * one deflate call (the bytes compress() and flush() give), the 4 octets 0x00 0x00 0xff 0xff removed (RFC 7692
 * 7.2.1), behind the header of a whole compressed message (FIN and RSV1
 * set, `opcode`), in one bytes object. */
static PyObject *
deflate_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Output out;
    int32_t mode;
    long opcode;
    Py_ssize_t length, header, i;
    PyObject *frame;
    unsigned char *dst;
    unsigned char stack[STACK_OUT];
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "deflate_frame() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!Py_IS_TYPE(args[0], &DeflaterType)) {
        PyErr_SetString(PyExc_TypeError, "deflate_frame() needs a Deflater");
        return NULL;
    }
    if (flush_mode(args[2], &mode) < 0)
        return NULL;
    opcode = PyLong_AsLong(args[3]);
    if (opcode == -1 && PyErr_Occurred())
        return NULL;
    if (opcode < 0 || opcode > 15) {
        PyErr_SetString(PyExc_ValueError, "opcode must be in 0..15");
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    output_init(&out, stack);
    /* An empty message: compress(b"") first, as the package's path does.
     * deflate() skips a flush with no input right behind another flush of
     * the same kind; after a Z_NO_FLUSH call it sends an empty stored block,
     * one 0x00 octet once the tail is removed.  (An empty payload would
     * leave the peer's inflater inside a stored block once it appends the
     * tail, and garble the next message.) */
    if ((data.len == 0 && deflater_run((Deflater *)args[0], &data, Z_NO_FLUSH, &out) < 0)
        || deflater_run((Deflater *)args[0], &data, mode, &out) < 0) {
        PyBuffer_Release(&data);
        output_free(&out);
        return NULL;
    }
    PyBuffer_Release(&data);
    length = out.len;
    if (length >= 4 && memcmp(out.buf + length - 4, COMPRESSED_TAIL, 4) == 0)
        length -= 4;
    header = length < 126 ? 2 : length < 65536 ? 4 : 10;
    frame = PyBytes_FromStringAndSize(NULL, header + length);
    if (frame == NULL) {
        output_free(&out);
        return NULL;
    }
    dst = (unsigned char *)PyBytes_AS_STRING(frame);
    dst[0] = (unsigned char)(0xC0 | opcode); /* FIN, RSV1 (RFC 7692 6.1) */
    if (header == 2)
        dst[1] = (unsigned char)length;
    else if (header == 4) {
        dst[1] = 126;
        dst[2] = (unsigned char)(length >> 8);
        dst[3] = (unsigned char)length;
    }
    else {
        dst[1] = 127;
        for (i = 0; i < 8; i++)
            dst[2 + i] = (unsigned char)((uint64_t)length >> (56 - 8 * i));
    }
    memcpy(dst + header, out.buf, (size_t)length);
    output_free(&out);
    return frame;
}

/* --- Inflater --------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    zng_stream zs;
    char ready;
    char busy;
    char eof; /* the stream's final block ended */
} Inflater;

static PyTypeObject InflaterType;

static PyObject *
decompressobj(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"wbits", NULL};
    int wbits = 15;
    int32_t err;
    Inflater *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|i:decompressobj", keywords, &wbits))
        return NULL;
    if (check_bound() < 0)
        return NULL;
    self = PyObject_New(Inflater, &InflaterType);
    if (self == NULL)
        return NULL;
    memset(&self->zs, 0, sizeof(self->zs));
    self->ready = self->busy = self->eof = 0;
    err = zng_inflateInit2(&self->zs, wbits);
    if (err == Z_OK) {
        self->ready = 1;
        return (PyObject *)self;
    }
    return init_failed((PyObject *)self, err);
}

static void
Inflater_dealloc(Inflater *self)
{
    if (self->ready)
        zng_inflateEnd(&self->zs);
    PyObject_Free(self);
}

/* Inflate `n` bytes into `out`, at most `limit` bytes of output (0: no
 * limit), stopping at the end of the stream.  Returns the last zlib result,
 * -100 when out of memory. */
static int32_t
run_inflate(Inflater *self, const unsigned char *data, Py_ssize_t n, Py_ssize_t limit, Output *out)
{
    zng_stream *s = &self->zs;
    int32_t err = Z_OK;
    s->next_in = data;
    if (limit > 0 && out->cap > limit)
        out->cap = limit;
    do {
        Py_ssize_t left = n - (Py_ssize_t)(s->next_in - data);
        s->avail_in = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        do {
            if (out->len == out->cap) {
                if (limit > 0 && out->len >= limit)
                    return err; /* as much as asked for: the caller decides */
                if (output_grow(out, limit) < 0)
                    return -100;
            }
            output_arrange(s, out);
            err = zng_inflate(s, Z_SYNC_FLUSH);
            output_count(s, out);
            switch (err) {
            case Z_OK:
            case Z_BUF_ERROR: /* no progress possible: the input is all used */
                break;
            case Z_STREAM_END:
                self->eof = 1; /* what follows a final block is ignored */
                return err;
            default:
                return err;
            }
        } while (s->avail_out == 0);
    } while ((Py_ssize_t)(s->next_in - data) < n && err != Z_BUF_ERROR);
    return err;
}

/* decompress(data, max_length=0) -> bytes: zlib's Decompress.decompress,
 * at most max_length bytes of output (0: no limit; what is left of the
 * input then is not kept: the caller refuses the message). */
static PyObject *
Inflater_decompress(Inflater *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Py_ssize_t limit = 0;
    Output out;
    int32_t err;
    unsigned char stack[STACK_OUT];
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "decompress() takes 1 or 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (nargs == 2) {
        limit = PyLong_AsSsize_t(args[1]);
        if (limit == -1 && PyErr_Occurred())
            return NULL;
        if (limit < 0) {
            PyErr_SetString(PyExc_ValueError, "max_length must be non-negative");
            return NULL;
        }
    }
    if (enter(&self->busy) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    output_init(&out, stack);
    if (data.len >= RELEASE_GIL_AT) {
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        err = run_inflate(self, data.buf, data.len, limit, &out);
        Py_END_ALLOW_THREADS
        self->busy = 0;
    }
    else
        err = run_inflate(self, data.buf, data.len, limit, &out);
    PyBuffer_Release(&data);
    if (err == -100) {
        output_free(&out);
        return PyErr_NoMemory();
    }
    if (err != Z_OK && err != Z_BUF_ERROR && err != Z_STREAM_END) {
        output_free(&out);
        return raise_zlib_error(err, &self->zs, "decompressing data");
    }
    return output_bytes(&out);
}

static PyObject *
Inflater_get_eof(Inflater *self, void *closure)
{
    return PyBool_FromLong(self->eof);
}

static PyMethodDef Inflater_methods[] = {
    {"decompress", (PyCFunction)(void (*)(void))Inflater_decompress, METH_FASTCALL,
     "Inflate data, at most max_length bytes of output (0: no limit)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Inflater_getset[] = {
    {"eof", (getter)Inflater_get_eof, NULL, "The end of the deflate stream was reached.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject InflaterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asgiws.websocket._zlib_ng.Inflater",
    .tp_basicsize = sizeof(Inflater),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A raw inflate stream on zlib-ng (made by decompressobj()).",
    .tp_dealloc = (destructor)Inflater_dealloc,
    .tp_methods = Inflater_methods,
    .tp_getset = Inflater_getset,
};

/* --- binding ---------------------------------------------------------------- */

/* bind(library, error) -> str
 *
 * Take zlib-ng's native functions from `library`, the path of the loaded
 * extension module of the `zlib-ng` package, and `error`, its error class.
 * Returns zlib-ng's version; raises ImportError when the library is not
 * loaded, lacks a function, or is not zlib-ng 2.x (whose zng_stream this
 * module is compiled for), and RuntimeError once bound (the streams made
 * so far must be ended by the library that began them).  Nothing is bound
 * unless everything is found. */
static PyObject *
bind(PyObject *module, PyObject *args)
{
#ifdef _WIN32
    PyErr_SetString(PyExc_ImportError, "binding zlib-ng needs dlopen()");
    return NULL;
#else
    static const char *const names[] = {
        "zng_deflateInit2", "zng_deflate", "zng_deflateEnd",
        "zng_inflateInit2", "zng_inflate", "zng_inflateEnd",
    };
    void *found[sizeof names / sizeof names[0]];
    const char *path;
    PyObject *error;
    void *handle;
    const char *(*version)(void);
    size_t i;
    if (!PyArg_ParseTuple(args, "sO:bind", &path, &error))
        return NULL;
    if (!PyType_Check(error) || !PyType_IsSubtype((PyTypeObject *)error,
                                                  (PyTypeObject *)PyExc_Exception)) {
        PyErr_SetString(PyExc_TypeError, "error must be an exception class");
        return NULL;
    }
    if (zlib_error != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "zlib-ng is already bound");
        return NULL;
    }
    /* RTLD_NOLOAD: the copy of zlib-ng the package already loaded, or none */
    handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (handle == NULL) {
        PyErr_Format(PyExc_ImportError, "%s is not loaded", path);
        return NULL;
    }
    *(void **)(&version) = dlsym(handle, "zlibng_version");
    if (version == NULL) {
        PyErr_Format(PyExc_ImportError, "%s does not export zlibng_version", path);
        return NULL;
    }
    if (strncmp(version(), "2.", 2) != 0) {
        PyErr_Format(PyExc_ImportError, "zlib-ng %s is not 2.x", version());
        return NULL;
    }
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        found[i] = dlsym(handle, names[i]);
        if (found[i] == NULL) {
            PyErr_Format(PyExc_ImportError, "%s does not export %s", path, names[i]);
            return NULL;
        }
    }
    *(void **)(&zng_deflateInit2) = found[0];
    *(void **)(&zng_deflate) = found[1];
    *(void **)(&zng_deflateEnd) = found[2];
    *(void **)(&zng_inflateInit2) = found[3];
    *(void **)(&zng_inflate) = found[4];
    *(void **)(&zng_inflateEnd) = found[5];
    Py_INCREF(error);
    zlib_error = error;
    return PyUnicode_FromString(version());
#endif
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_VARARGS, "Bind zlib-ng's native API from the zlib-ng package's module."},
    {"compressobj", compressobj, METH_VARARGS,
     "compressobj(level, method, wbits, memLevel) -> Deflater."},
    {"decompressobj", (PyCFunction)(void (*)(void))decompressobj, METH_VARARGS | METH_KEYWORDS,
     "decompressobj(wbits=15) -> Inflater."},
    {"deflate_frame", (PyCFunction)(void (*)(void))deflate_frame, METH_FASTCALL,
     "A whole message compressed into one unmasked frame (RFC 7692)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "asgiws.websocket._zlib_ng", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__zlib_ng(void)
{
    PyObject *m;
    if (PyType_Ready(&DeflaterType) < 0 || PyType_Ready(&InflaterType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "Z_SYNC_FLUSH", Z_SYNC_FLUSH) < 0
        || PyModule_AddIntConstant(m, "Z_FULL_FLUSH", Z_FULL_FLUSH) < 0
        || PyModule_AddIntConstant(m, "DEFLATED", Z_DEFLATED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
