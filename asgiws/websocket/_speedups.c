/* Optional accelerators for the WebSocket engine:
 * - apply_mask: XOR a payload with a 4-byte masking key, 8 bytes at a time
 *   (the fallback is mask.py's python_apply_mask);
 * - scan_frames: cut whole, simple data messages (one complete frame each) out
 *   of the receive buffer, unmasked and, for text, decoded, in one call (the
 *   fallback is frames.py's general parser, which handles every frame anyway).
 * Tests compare both paths. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
apply_mask(PyObject *self, PyObject *args)
{
    Py_buffer data, mask;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*:apply_mask", &data, &mask))
        return NULL;
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL)
        goto done;
    {
        const unsigned char *in = (const unsigned char *)data.buf;
        const unsigned char *key = (const unsigned char *)mask.buf;
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        Py_ssize_t n = data.len, i = 0;
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
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

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

/* scan_frames(buffer, pos, expect_masked, max_size) -> (messages, new_pos)
 *
 * Starting at `pos`, takes every frame that is complete in `buffer` and is a
 * whole message on its own: FIN set, RSV bits clear, opcode text or binary,
 * masked as expected, length within max_size (-1: no limit).  Each becomes
 * bytes (binary) or str (text, strict UTF-8).  Stops, without consuming it,
 * at the first frame that is anything else (incomplete, fragmented,
 * compressed, control, invalid, bad UTF-8): the Python parser takes it from
 * there and applies every rule, including the errors. */
static PyObject *
scan_frames(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, max_size;
    int expect_masked;
    PyObject *messages, *result = NULL;
    if (!PyArg_ParseTuple(args, "y*npn:scan_frames", &view, &pos, &expect_masked, &max_size))
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
            if ((b0 & 0xF0) != 0x80 || (opcode != 1 && opcode != 2))
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
            if (masked) {
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
    result = Py_BuildValue("(Nn)", messages, pos);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"apply_mask", apply_mask, METH_VARARGS, "XOR data with a 4-byte mask."},
    {"scan_frames", scan_frames, METH_VARARGS,
     "Whole single-frame messages from a buffer: (list of str/bytes, new position)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "asgiws.websocket._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
