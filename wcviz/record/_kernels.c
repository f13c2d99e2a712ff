/* Fused passes over a float32 weight tensor for wcviz.record.stats (see wcviz/record/native.py).
 *
 * scan_f32 reads the weights once and returns what numpy needs six passes for: the float64
 * sums of w, |w| and w*w (w*w rounded to float32 first, as np.multiply does) bit-equal to
 * np.add.reduce(..., dtype=np.float64), the float32 max |w|, and the count of weights per
 * bucket of their top 16 bits (the radix buckets of the exact quantiles).
 *
 * Bit-equality with numpy: np.add.reduce of float32 into float64 casts the input in buffers of
 * 8192 elements and adds each buffer's pairwise sum to the running total (numpy's
 * DOUBLE_pairwise_sum: blocks of at most 128 elements summed in 8 lanes, bigger ones split in
 * halves rounded down to a multiple of 8). The same order of float64 additions is done here,
 * so the results are the same bits. Build without -ffast-math: the order matters.
 *
 * gather_f32 copies, in order, the weights whose bucket is marked in a 65536-byte table.
 *
 * diff_sq_f32 gives the squared norm of the change since the last record (the update ratio)
 * and, in the same pass, overwrites the kept copy with the current weights.
 *
 * Both release the GIL, so the recorder's threads summarise layers in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BUCKETS 65536
#define CHUNK 8192 /* numpy's default ufunc buffer size (elements) */
#define BLOCK 128  /* numpy's PW_BLOCKSIZE */
#define SPLIT_COUNTS (1 << 20) /* elements from which two count tables are used */

typedef struct {
    double sum, abs, sq;
} sums_t;

/* x86-64: an AVX2 copy of the hot loop beside the baseline one, chosen at load time. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

static inline double sq32(float x)
{
    return (double)(x * x); /* rounded to float32 first, as np.multiply(mag, mag) */
}

/* A leaf of numpy's pairwise sum (n <= BLOCK), for w, |w| and w*w at once; also the max of
 * the |w| bit patterns (for finite weights they order as the values; a NaN's are above
 * inf's, and the caller does not use the max of a non-finite array). */
HOT static sums_t leaf(const float *x, Py_ssize_t n, uint32_t *maxbits)
{
    const uint32_t *bits = (const uint32_t *)x;
    uint32_t mx = *maxbits;
    sums_t out;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t m = bits[i] & 0x7FFFFFFFu;
        mx = m > mx ? m : mx;
    }
    *maxbits = mx;
    if (n < 8) {
        out.sum = 0.0; out.abs = 0.0; out.sq = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {
            out.sum += (double)x[i];
            out.abs += (double)fabsf(x[i]);
            out.sq += sq32(x[i]);
        }
        return out;
    }
    double s[8], a[8], q[8];
    for (int j = 0; j < 8; j++) {
        s[j] = (double)x[j];
        a[j] = (double)fabsf(x[j]);
        q[j] = sq32(x[j]);
    }
    Py_ssize_t i;
    for (i = 8; i < n - (n % 8); i += 8) {
        for (int j = 0; j < 8; j++) {
            s[j] += (double)x[i + j];
            a[j] += (double)fabsf(x[i + j]);
            q[j] += sq32(x[i + j]);
        }
    }
    out.sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    out.abs = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    out.sq = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
    for (; i < n; i++) {
        out.sum += (double)x[i];
        out.abs += (double)fabsf(x[i]);
        out.sq += sq32(x[i]);
    }
    return out;
}

/* numpy's pairwise sum of n values (halves rounded down to a multiple of 8 down to BLOCK). */
static sums_t pairwise(const float *x, Py_ssize_t n, uint32_t *maxbits)
{
    if (n <= BLOCK)
        return leaf(x, n, maxbits);
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    sums_t left = pairwise(x, n2, maxbits), right = pairwise(x + n2, n - n2, maxbits);
    sums_t out = {left.sum + right.sum, left.abs + right.abs, left.sq + right.sq};
    return out;
}

/* Counts per top-16-bit bucket of one chunk (in cache after the sums). Two count tables for
 * even and odd elements (they may be the same): runs of equal buckets (weights cluster near
 * the mode) then do not wait on each other's increments. */
static void count_chunk(const float *x, Py_ssize_t n, int64_t *even, int64_t *odd)
{
    const uint32_t *bits = (const uint32_t *)x;
    Py_ssize_t i = 0;
    for (; i + 1 < n; i += 2) {
        even[bits[i] >> 16]++;
        odd[bits[i + 1] >> 16]++;
    }
    if (i < n)
        even[bits[i] >> 16]++;
}

/* Copies the weights of the marked buckets into dst (room items); sets *overflow and stops
 * if there are more. Branch-free where a whole block surely fits: every weight is stored
 * and the write position moves on only for marked ones (their buckets are few and mixed
 * with others, so a branch would be mispredicted often). */
static Py_ssize_t gather(const uint32_t *bits, Py_ssize_t n, const uint8_t *take, uint32_t *dst,
                         Py_ssize_t room, int *overflow)
{
    enum { STEP = 1024 };
    Py_ssize_t written = 0, i = 0;
    for (; i + STEP <= n && room - written > STEP; i += STEP)
        for (Py_ssize_t k = i; k < i + STEP; k++) {
            dst[written] = bits[k];
            written += take[bits[k] >> 16];
        }
    for (; i < n; i++) {
        if (take[bits[i] >> 16]) {
            if (written == room) {
                *overflow = 1;
                break;
            }
            dst[written++] = bits[i];
        }
    }
    return written;
}

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize,
                      const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (view->itemsize != itemsize || view->len % itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected items of %zd bytes", what, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *scan_f32(PyObject *self, PyObject *args)
{
    PyObject *arr_obj, *counts_obj;
    if (!PyArg_ParseTuple(args, "OO:scan_f32", &arr_obj, &counts_obj))
        return NULL;
    Py_buffer arr, counts;
    if (get_buffer(arr_obj, &arr, 0, 4, "weights") < 0)
        return NULL;
    if (get_buffer(counts_obj, &counts, 1, 8, "counts") < 0) {
        PyBuffer_Release(&arr);
        return NULL;
    }
    if (counts.len != BUCKETS * 8) {
        PyBuffer_Release(&arr);
        PyBuffer_Release(&counts);
        return PyErr_Format(PyExc_ValueError, "counts: expected %d int64", BUCKETS);
    }
    const float *x = (const float *)arr.buf;
    Py_ssize_t n = arr.len / 4;
    /* The second table pays for itself (zeroing 512 kB, adding it in) on big tensors only. */
    int64_t *odd = NULL;
    if (n >= SPLIT_COUNTS && (odd = PyMem_RawCalloc(BUCKETS, sizeof(int64_t))) == NULL) {
        PyBuffer_Release(&arr);
        PyBuffer_Release(&counts);
        return PyErr_NoMemory();
    }
    int64_t *even = (int64_t *)counts.buf;
    double total = 0.0, l1 = 0.0, sq = 0.0;
    uint32_t maxbits = 0;
    Py_BEGIN_ALLOW_THREADS
    memset(even, 0, BUCKETS * sizeof(int64_t));
    for (Py_ssize_t start = 0; start < n; start += CHUNK) {
        Py_ssize_t len = n - start < CHUNK ? n - start : CHUNK;
        sums_t part = pairwise(x + start, len, &maxbits);
        total += part.sum;
        l1 += part.abs;
        sq += part.sq;
        count_chunk(x + start, len, even, odd ? odd : even);
    }
    for (int b = 0; odd && b < BUCKETS; b++)
        even[b] += odd[b];
    Py_END_ALLOW_THREADS
    PyMem_RawFree(odd);
    PyBuffer_Release(&arr);
    PyBuffer_Release(&counts);
    float absmax;
    memcpy(&absmax, &maxbits, sizeof absmax);
    return Py_BuildValue("dddd", total, l1, sq, (double)absmax);
}

static PyObject *gather_f32(PyObject *self, PyObject *args)
{
    PyObject *arr_obj, *wanted_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOO:gather_f32", &arr_obj, &wanted_obj, &out_obj))
        return NULL;
    Py_buffer arr, wanted, out;
    if (get_buffer(arr_obj, &arr, 0, 4, "weights") < 0)
        return NULL;
    if (get_buffer(wanted_obj, &wanted, 0, 1, "wanted") < 0) {
        PyBuffer_Release(&arr);
        return NULL;
    }
    if (get_buffer(out_obj, &out, 1, 4, "out") < 0) {
        PyBuffer_Release(&arr);
        PyBuffer_Release(&wanted);
        return NULL;
    }
    Py_ssize_t written = 0, n = arr.len / 4, room = out.len / 4;
    int overflow = wanted.len != BUCKETS;
    if (!overflow) {
        const uint32_t *bits = (const uint32_t *)arr.buf;
        const uint8_t *take = (const uint8_t *)wanted.buf;
        uint32_t *dst = (uint32_t *)out.buf;
        Py_BEGIN_ALLOW_THREADS
        written = gather(bits, n, take, dst, room, &overflow);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&arr);
    PyBuffer_Release(&wanted);
    PyBuffer_Release(&out);
    if (overflow)
        return PyErr_Format(PyExc_ValueError,
                            "gather_f32: wanted must hold %d bytes and out room for every "
                            "weight of the wanted buckets", BUCKETS);
    return PyLong_FromSsize_t(written);
}

/* Sum of (prev[i] - w[i])^2: the difference rounded to float32, its square exact in float64,
 * summed in 8 lanes per chunk and the chunks in order (a fixed order, whatever the caller).
 * With keep, w is copied into prev in the same pass (prev then holds this record's weights). */
HOT static double diff_sq(float *prev, const float *w, Py_ssize_t n, int keep)
{
    double total = 0.0;
    for (Py_ssize_t start = 0; start < n; start += CHUNK) {
        Py_ssize_t len = n - start < CHUNK ? n - start : CHUNK, i = 0;
        double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (; i + 8 <= len; i += 8)
            for (int j = 0; j < 8; j++) {
                double d = (double)(prev[start + i + j] - w[start + i + j]);
                lane[j] += d * d;
                if (keep)
                    prev[start + i + j] = w[start + i + j];
            }
        double part = ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
                      ((lane[4] + lane[5]) + (lane[6] + lane[7]));
        for (; i < len; i++) {
            double d = (double)(prev[start + i] - w[start + i]);
            part += d * d;
            if (keep)
                prev[start + i] = w[start + i];
        }
        total += part;
    }
    return total;
}

static PyObject *diff_sq_f32(PyObject *self, PyObject *args)
{
    PyObject *prev_obj, *w_obj;
    int keep;
    if (!PyArg_ParseTuple(args, "OOp:diff_sq_f32", &prev_obj, &w_obj, &keep))
        return NULL;
    Py_buffer prev, w;
    if (get_buffer(prev_obj, &prev, keep, 4, "prev") < 0)
        return NULL;
    if (get_buffer(w_obj, &w, 0, 4, "weights") < 0) {
        PyBuffer_Release(&prev);
        return NULL;
    }
    if (prev.len != w.len) {
        PyBuffer_Release(&prev);
        PyBuffer_Release(&w);
        return PyErr_Format(PyExc_ValueError, "diff_sq_f32: prev and weights differ in size");
    }
    double total;
    Py_BEGIN_ALLOW_THREADS
    total = diff_sq((float *)prev.buf, (const float *)w.buf, w.len / 4, keep);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&prev);
    PyBuffer_Release(&w);
    return PyFloat_FromDouble(total);
}

static PyMethodDef methods[] = {
    {"scan_f32", scan_f32, METH_VARARGS,
     "scan_f32(weights, counts) -> (sum, sum_abs, sum_sq, max_abs): one pass over float32 "
     "weights; counts (65536 int64) receives the weights per top-16-bit bucket."},
    {"gather_f32", gather_f32, METH_VARARGS,
     "gather_f32(weights, wanted, out) -> n: copies the weights whose bucket is marked in "
     "wanted (65536 bytes) into out, in order; returns how many."},
    {"diff_sq_f32", diff_sq_f32, METH_VARARGS,
     "diff_sq_f32(prev, weights, keep) -> float: sum of squares of the float32 difference "
     "prev - weights, in float64; with keep, weights are copied into prev in the same pass."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "Fused float32 passes of wcviz.record.stats (see wcviz.record.native).", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
