/* Optional accelerators for the WebSocket engine:
 * - apply_mask: XOR a payload with a 4-byte masking key, 8 bytes at a time
 *   (the fallback is mask.py's python_apply_mask);
 * - scan_frames: cut whole, simple data messages (one complete frame each) out
 *   of the receive buffer, unmasked and, for text, decoded, in one call (the
 *   fallback is frames.py's general parser, which handles every frame anyway);
 * - deflate_frame: compress a whole message into one server frame (the
 *   fallback is deflate.py's python_deflate_frame).
 * Tests compare both paths. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* XOR n bytes with the 4-byte key, 8 bytes at a time. */
static void
xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t n, const unsigned char *key)
{
    Py_ssize_t i = 0;
    uint64_t key8;
    unsigned char k8[8];
    memcpy(k8, key, 4);
    memcpy(k8 + 4, key, 4);
    memcpy(&key8, k8, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, in + i, 8);
        w ^= key8;
        memcpy(out + i, &w, 8);
    }
    for (; i < n; i++)
        out[i] = in[i] ^ key[i & 3];
}

static PyObject *
apply_mask(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *result = NULL;
    /* (parsed by hand, as scan_frames: once per unmasked frame part) */
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "apply_mask() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL)
        goto done;
    xor_mask((const unsigned char *)data.buf, (unsigned char *)PyBytes_AS_STRING(result),
             data.len, (const unsigned char *)mask.buf);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

/* What scan_frames appends to a compressed message (RFC 7692 7.2.2). */
static const char COMPRESSED_TAIL[4] = {0x00, 0x00, (char)0xff, (char)0xff};

/* scan_frames(buffer, pos, expect_masked, max_size, compressed=False)
 *     -> (messages, new_pos, close)
 *
 * Starting at `pos`, takes every frame that is complete in `buffer` and is a
 * whole message on its own: FIN set, RSV2/RSV3 clear, opcode text or binary,
 * masked as expected, length within max_size (-1: no limit).  Each becomes
 * bytes (binary) or str (text, strict UTF-8).  With `compressed` (deflate
 * negotiated) a frame with RSV1 set is taken too, as a tuple (is_text,
 * payload) of its unmasked, still compressed bytes followed by
 * COMPRESSED_TAIL (RFC 7692 7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff
 * to the tail end of the payload of the message", done here so that the
 * engine need not copy the payload again): the engine inflates it and
 * checks the result.  Stops, without consuming it, at the first frame
 * that is anything else (incomplete, fragmented, RSV1 without `compressed`,
 * control, invalid, bad UTF-8): the Python parser takes it from there and
 * applies every rule, including the errors.  The one control frame taken is
 * the peer's close frame, when it is complete and keeps the frame rules (FIN
 * set, no RSV bit, masked as expected, a payload of at most 125 bytes): the
 * scan ends with it, and `close` is its unmasked payload (None otherwise),
 * for the engine to read as its general parser would hand it over. */
static PyObject *
scan_frames(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t pos, max_size;
    int expect_masked, compressed = 0;
    PyObject *messages, *close = NULL, *result = NULL;
    /* (parsed by hand: PyArg_ParseTuple cost ~0.6k instructions a read) */
    if (nargs < 4 || nargs > 5) {
        PyErr_Format(PyExc_TypeError, "scan_frames() takes 4 or 5 arguments (%zd given)", nargs);
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    expect_masked = PyObject_IsTrue(args[2]);
    if (expect_masked < 0)
        return NULL;
    max_size = PyLong_AsSsize_t(args[3]);
    if (max_size == -1 && PyErr_Occurred())
        return NULL;
    if (nargs == 5) {
        compressed = PyObject_IsTrue(args[4]);
        if (compressed < 0)
            return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    messages = PyList_New(0);
    if (messages == NULL)
        goto done;
    {
        const unsigned char *buf = (const unsigned char *)view.buf;
        Py_ssize_t end = view.len;
        if (pos < 0 || pos > end) {
            PyErr_SetString(PyExc_ValueError, "pos out of range");
            Py_CLEAR(messages);
            goto done;
        }
        while (end - pos >= 2) {
            unsigned int b0 = buf[pos], b1 = buf[pos + 1];
            unsigned int opcode = b0 & 0x0F;
            int masked = (b1 & 0x80) != 0;
            uint64_t length = b1 & 0x7F;
            Py_ssize_t header = 2, avail = end - pos;
            const unsigned char *payload;
            PyObject *item;
            int deflated = (b0 & 0xF0) == 0xC0;
            if (b0 == 0x88 && length <= 125 && masked == (expect_masked != 0)) {
                /* 5.5: a close frame, final and at most 125 bytes */
                header = masked ? 6 : 2;
                if (avail < header + (Py_ssize_t)length)
                    break;
                close = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
                if (close == NULL) {
                    Py_CLEAR(messages);
                    goto done;
                }
                if (masked)
                    xor_mask(buf + pos + 6, (unsigned char *)PyBytes_AS_STRING(close),
                             (Py_ssize_t)length, buf + pos + 2);
                else
                    memcpy(PyBytes_AS_STRING(close), buf + pos + 2, (size_t)length);
                pos += header + (Py_ssize_t)length;
                break; /* nothing after the peer's close frame counts */
            }
            if (!((b0 & 0xF0) == 0x80 || (deflated && compressed)) || (opcode != 1 && opcode != 2))
                break;
            if (masked != (expect_masked != 0))
                break;
            if (length == 126) {
                if (avail < 4)
                    break;
                length = ((uint64_t)buf[pos + 2] << 8) | buf[pos + 3];
                header = 4;
            }
            else if (length == 127) {
                int i;
                if (avail < 10)
                    break;
                length = 0;
                for (i = 0; i < 8; i++)
                    length = (length << 8) | buf[pos + 2 + i];
                if (length >> 62)
                    break;
                header = 10;
            }
            if (max_size >= 0 && length > (uint64_t)max_size)
                break;
            if (masked)
                header += 4;
            if (avail < header || (uint64_t)(avail - header) < length)
                break;
            payload = buf + pos + header;
            if (deflated) {
                PyObject *raw = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length + 4);
                if (raw == NULL) {
                    Py_CLEAR(messages);
                    goto done;
                }
                if (masked)
                    xor_mask(payload, (unsigned char *)PyBytes_AS_STRING(raw),
                             (Py_ssize_t)length, payload - 4);
                else
                    memcpy(PyBytes_AS_STRING(raw), payload, (size_t)length);
                memcpy(PyBytes_AS_STRING(raw) + length, COMPRESSED_TAIL, 4);
                item = Py_BuildValue("(ON)", opcode == 1 ? Py_True : Py_False, raw);
                if (item == NULL) {
                    Py_CLEAR(messages);
                    goto done;
                }
            }
            else if (masked) {
                PyObject *raw = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
                if (raw == NULL) {
                    Py_CLEAR(messages);
                    goto done;
                }
                xor_mask(payload, (unsigned char *)PyBytes_AS_STRING(raw), (Py_ssize_t)length,
                         payload - 4);
                if (opcode == 1) {
                    item = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw), (Py_ssize_t)length,
                                                NULL);
                    Py_DECREF(raw);
                }
                else
                    item = raw;
            }
            else if (opcode == 1)
                item = PyUnicode_DecodeUTF8((const char *)payload, (Py_ssize_t)length, NULL);
            else
                item = PyBytes_FromStringAndSize((const char *)payload, (Py_ssize_t)length);
            if (item == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    Py_CLEAR(messages);
                    goto done;
                }
                PyErr_Clear(); /* invalid UTF-8: the Python path fails the connection */
                break;
            }
            if (PyList_Append(messages, item) < 0) {
                Py_DECREF(item);
                Py_CLEAR(messages);
                goto done;
            }
            Py_DECREF(item);
            pos += header + (Py_ssize_t)length;
        }
    }
    result = Py_BuildValue("(NnN)", messages, pos, close != NULL ? close : Py_NewRef(Py_None));
    close = NULL;
done:
    Py_XDECREF(close);
    PyBuffer_Release(&view);
    return result;
}

/* Method names deflate_frame calls, interned once at import. */
static PyObject *name_compress, *name_flush;

/* deflate_frame(compressor, data, flush_mode, opcode) -> bytes
 *
 * A whole message compressed into one unmasked frame (what a server sends):
 * compressor.compress(data) and compressor.flush(flush_mode) -- a zlib or
 * zlib-ng compressobj -- with the 4 octets 0x00 0x00 0xff 0xff the flush
 * ends with removed (RFC 7692 7.2.1), behind the header of a whole
 * compressed message (FIN and RSV1 set, `opcode`), in one bytes object:
 * one allocation and one copy where joining the two outputs, cutting the
 * tail and prepending the header in Python cost three (the fallback is
 * deflate.py's python_deflate_frame; the tests compare both). */
static PyObject *
deflate_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *call[2], *head, *tail = NULL, *frame = NULL;
    long opcode;
    Py_ssize_t head_len, tail_len, length, header, i;
    unsigned char last[4], *out;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "deflate_frame() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    opcode = PyLong_AsLong(args[3]);
    if (opcode == -1 && PyErr_Occurred())
        return NULL;
    if (opcode < 0 || opcode > 15) {
        PyErr_SetString(PyExc_ValueError, "opcode must be in 0..15");
        return NULL;
    }
    call[0] = args[0];
    call[1] = args[1];
    head = PyObject_VectorcallMethod(name_compress, call, 2, NULL);
    if (head == NULL)
        return NULL;
    call[1] = args[2];
    tail = PyObject_VectorcallMethod(name_flush, call, 2, NULL);
    if (tail == NULL)
        goto done;
    if (!PyBytes_Check(head) || !PyBytes_Check(tail)) {
        PyErr_SetString(PyExc_TypeError, "the compressor must return bytes");
        goto done;
    }
    head_len = PyBytes_GET_SIZE(head);
    tail_len = PyBytes_GET_SIZE(tail);
    length = head_len + tail_len;
    if (length >= 4) {
        /* the output's last 4 octets, wherever the two parts meet */
        for (i = 0; i < 4; i++) {
            Py_ssize_t at = length - 4 + i;
            last[i] = (unsigned char)(at < head_len ? PyBytes_AS_STRING(head)[at]
                                                    : PyBytes_AS_STRING(tail)[at - head_len]);
        }
        if (memcmp(last, COMPRESSED_TAIL, 4) == 0)
            length -= 4;
    }
    header = length < 126 ? 2 : length < 65536 ? 4 : 10;
    frame = PyBytes_FromStringAndSize(NULL, header + length);
    if (frame == NULL)
        goto done;
    out = (unsigned char *)PyBytes_AS_STRING(frame);
    out[0] = (unsigned char)(0xC0 | opcode); /* FIN, RSV1 (RFC 7692 6.1) */
    if (header == 2)
        out[1] = (unsigned char)length;
    else if (header == 4) {
        out[1] = 126;
        out[2] = (unsigned char)(length >> 8);
        out[3] = (unsigned char)length;
    }
    else {
        out[1] = 127;
        for (i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)((uint64_t)length >> (56 - 8 * i));
    }
    out += header;
    if (length <= head_len)
        memcpy(out, PyBytes_AS_STRING(head), (size_t)length);
    else {
        memcpy(out, PyBytes_AS_STRING(head), (size_t)head_len);
        memcpy(out + head_len, PyBytes_AS_STRING(tail), (size_t)(length - head_len));
    }
done:
    Py_DECREF(head);
    Py_XDECREF(tail);
    return frame;
}

/* PayloadAssembler(size): one big frame's payload, filled in place.
 *
 * The bytes object is allocated once at the frame's header and the chunks
 * are unmasked straight into it as they arrive, so a big message costs one
 * allocation and one copy instead of a copy per chunk plus a final join.
 * It is handed out by take() only once complete and never touched after,
 * so nobody ever sees it change. */
typedef struct {
    PyObject_HEAD
    PyObject *payload; /* the bytes being filled; NULL once taken */
    Py_ssize_t filled;
} Assembler;

static int
Assembler_init(Assembler *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "n:PayloadAssembler", &size))
        return -1;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 0");
        return -1;
    }
    Py_XSETREF(self->payload, PyBytes_FromStringAndSize(NULL, size));
    self->filled = 0;
    return self->payload == NULL ? -1 : 0;
}

static void
Assembler_dealloc(Assembler *self)
{
    Py_XDECREF(self->payload);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Assembler_add(Assembler *self, PyObject *args)
{
    Py_buffer data;
    PyObject *mask_obj;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*O:add", &data, &mask_obj))
        return NULL;
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "payload already taken");
        goto done;
    }
    if (data.len > PyBytes_GET_SIZE(self->payload) - self->filled) {
        PyErr_SetString(PyExc_ValueError, "more data than the payload size");
        goto done;
    }
    {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(self->payload) + self->filled;
        if (mask_obj == Py_None)
            memcpy(out, data.buf, data.len);
        else {
            char *key;
            Py_ssize_t key_len;
            unsigned char rotated[4];
            int i;
            if (PyBytes_AsStringAndSize(mask_obj, &key, &key_len) < 0)
                goto done;
            if (key_len != 4) {
                PyErr_SetString(PyExc_ValueError, "mask must be 4 bytes");
                goto done;
            }
            /* the key's phase continues where the previous chunk stopped */
            for (i = 0; i < 4; i++)
                rotated[i] = (unsigned char)key[(self->filled + i) & 3];
            xor_mask((const unsigned char *)data.buf, out, data.len, rotated);
        }
    }
    self->filled += data.len;
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
Assembler_take(Assembler *self, PyObject *unused)
{
    PyObject *payload = self->payload;
    if (payload == NULL || self->filled != PyBytes_GET_SIZE(payload)) {
        PyErr_SetString(PyExc_ValueError, "payload incomplete or already taken");
        return NULL;
    }
    self->payload = NULL;
    return payload;
}

static PyObject *
Assembler_get_filled(Assembler *self, void *closure)
{
    return PyLong_FromSsize_t(self->filled);
}

static PyMethodDef Assembler_methods[] = {
    {"add", (PyCFunction)Assembler_add, METH_VARARGS,
     "Append a chunk, unmasked with the 4-byte mask (None: copied as is)."},
    {"take", (PyCFunction)Assembler_take, METH_NOARGS, "The complete payload as bytes."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Assembler_getset[] = {
    {"filled", (getter)Assembler_get_filled, NULL, "bytes added so far", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AssemblerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "asgiws.websocket._speedups.PayloadAssembler",
    .tp_basicsize = sizeof(Assembler),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One frame's payload, unmasked in place as chunks arrive.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Assembler_init,
    .tp_dealloc = (destructor)Assembler_dealloc,
    .tp_methods = Assembler_methods,
    .tp_getset = Assembler_getset,
};

static PyMethodDef methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, "XOR data with a 4-byte mask."},
    {"scan_frames", (PyCFunction)(void (*)(void))scan_frames, METH_FASTCALL,
     "Whole single-frame messages from a buffer: (list of str/bytes, new position)."},
    {"deflate_frame", (PyCFunction)(void (*)(void))deflate_frame, METH_FASTCALL,
     "A whole message compressed into one unmasked frame (RFC 7692)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "asgiws.websocket._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m;
    if (PyType_Ready(&AssemblerType) < 0)
        return NULL;
    name_compress = PyUnicode_InternFromString("compress");
    name_flush = PyUnicode_InternFromString("flush");
    if (name_compress == NULL || name_flush == NULL)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&AssemblerType);
    if (PyModule_AddObject(m, "PayloadAssembler", (PyObject *)&AssemblerType) < 0) {
        Py_DECREF(&AssemblerType);
        Py_DECREF(m);
        return NULL;
    }
    {
        PyObject *tail = PyBytes_FromStringAndSize(COMPRESSED_TAIL, 4);
        if (tail == NULL || PyModule_AddObject(m, "COMPRESSED_TAIL", tail) < 0) {
            Py_XDECREF(tail);
            Py_DECREF(m);
            return NULL;
        }
    }
    /* scan_frames returns (messages, new_pos, close): frames.py checks for it */
    if (PyModule_AddIntConstant(m, "SCANS_CLOSE_FRAMES", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
