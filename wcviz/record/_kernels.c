/* Fused passes over a float32 weight tensor for wcviz.record.stats (see wcviz/record/native.py).
 *
 * scan_f32 reads the weights once and returns what numpy needs six passes for: the float64
 * sums of w, |w| and w*w (w*w rounded to float32 first, as np.multiply does) bit-equal to
 * np.add.reduce(..., dtype=np.float64), the float32 max |w|, the count of weights per bucket
 * of their top 16 bits (the radix buckets of the exact quantiles) and the counts' running
 * sums in value order and in |w| order.
 *
 * Bit-equality with numpy: np.add.reduce of float32 into float64 casts the input in buffers of
 * 8192 elements and adds each buffer's pairwise sum to the running total (numpy's
 * DOUBLE_pairwise_sum: blocks of at most 128 elements summed in 8 lanes, bigger ones split in
 * halves rounded down to a multiple of 8). The same order of float64 additions is done here,
 * so the results are the same bits. Build without -ffast-math: the order matters.
 *
 * gather_sorted_f32 copies the weights whose bucket is marked in a 65536-byte table, sorted
 * (a few per cent of them: the buckets that hold a wanted rank or threshold).
 *
 * diff_sq_f32 gives the squared norm of the change since the last record (the update ratio)
 * and, in the same pass, overwrites the kept copy with the current weights.
 *
 * All three release the GIL, so the recorder's threads summarise layers in parallel.
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

/* x86-64 with glibc (ifunc): an AVX2 copy of the hot loops beside the baseline one, chosen at
 * load time. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

static inline double sq32(float x)
{
    return (double)(x * x); /* rounded to float32 first, as np.multiply(mag, mag) */
}

static inline uint32_t max_bits(const float *x, Py_ssize_t n, uint32_t mx)
{
    const uint32_t *bits = (const uint32_t *)x;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t m = bits[i] & 0x7FFFFFFFu;
        mx = m > mx ? m : mx;
    }
    return mx;
}

#if defined(__GNUC__) && !defined(WCVIZ_SCALAR_LANES)
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

/* numpy's 8 lanes over x[0..n8) (n8 >= 8, a multiple of 8): lane j starts at x[j] and adds
 * x[j + 8], x[j + 16], ... in order; for w, |w| and w*w (squared in float32), in vectors of
 * 4 lanes (the compiler does not vectorise the scalar loop). Also the max |w| bit pattern. */
HOT static void lanes(const float *x, Py_ssize_t n8, double *s, double *a, double *q,
                      uint32_t *maxbits)
{
    const v4i magnitude = {0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF};
    v4d vs[2], va[2], vq[2];
    v4i mx = {0, 0, 0, 0};
    for (Py_ssize_t i = 0; i < n8; i += 8)
        for (int h = 0; h < 2; h++) {
            v4f v;
            memcpy(&v, x + i + 4 * h, sizeof v);
            v4i b = (v4i)v & magnitude;
            v4f m = (v4f)b;
            v4d dv = __builtin_convertvector(v, v4d), dm = __builtin_convertvector(m, v4d),
                dq = __builtin_convertvector(m * m, v4d);
            if (i == 0) {
                vs[h] = dv, va[h] = dm, vq[h] = dq;
            } else {
                vs[h] += dv, va[h] += dm, vq[h] += dq;
            }
            v4i above = b > mx; /* bit patterns of |w| are non-negative as int32 */
            mx = (b & above) | (mx & ~above);
        }
    for (int j = 0; j < 8; j++) {
        s[j] = vs[j / 4][j % 4], a[j] = va[j / 4][j % 4], q[j] = vq[j / 4][j % 4];
        uint32_t m = (uint32_t)mx[j % 4];
        *maxbits = m > *maxbits ? m : *maxbits;
    }
}
#else
/* numpy's 8 lanes over x[0..n8) (n8 >= 8, a multiple of 8), as above, in scalar code. */
static void lanes(const float *x, Py_ssize_t n8, double *s, double *a, double *q,
                  uint32_t *maxbits)
{
    for (int j = 0; j < 8; j++) {
        s[j] = (double)x[j];
        a[j] = (double)fabsf(x[j]);
        q[j] = sq32(x[j]);
    }
    for (Py_ssize_t i = 8; i < n8; i += 8)
        for (int j = 0; j < 8; j++) {
            s[j] += (double)x[i + j];
            a[j] += (double)fabsf(x[i + j]);
            q[j] += sq32(x[i + j]);
        }
    *maxbits = max_bits(x, n8, *maxbits);
}
#endif

/* A leaf of numpy's pairwise sum (n <= BLOCK), for w, |w| and w*w at once; also the max of
 * the |w| bit patterns (for finite weights they order as the values; a NaN's are above
 * inf's, and the caller does not use the max of a non-finite array). */
static sums_t leaf(const float *x, Py_ssize_t n, uint32_t *maxbits)
{
    sums_t out;
    if (n < 8) {
        out.sum = 0.0; out.abs = 0.0; out.sq = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {
            out.sum += (double)x[i];
            out.abs += (double)fabsf(x[i]);
            out.sq += sq32(x[i]);
        }
        *maxbits = max_bits(x, n, *maxbits);
        return out;
    }
    double s[8], a[8], q[8];
    Py_ssize_t i = n - (n % 8);
    lanes(x, i, s, a, q, maxbits);
    out.sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    out.abs = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    out.sq = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
    for (; i < n; i++) {
        out.sum += (double)x[i];
        out.abs += (double)fabsf(x[i]);
        out.sq += sq32(x[i]);
    }
    *maxbits = max_bits(x + n - (n % 8), n % 8, *maxbits);
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

/* Bucket b's place in value order: negatives from the largest magnitude (0xFFFF) down to -0
 * (0x8000), then +0 (0) up to the largest positive (0x7FFF). */
static inline int signed_bucket(int position)
{
    return position < 0x8000 ? 0xFFFF - position : position - 0x8000;
}

/* Cumulative counts in value order (signed_cum, 65536) and of |w| (mag_cum, 32768: a
 * magnitude bucket holds both signs). */
static void cumulate(const int64_t *counts, int64_t *signed_cum, int64_t *mag_cum)
{
    int64_t acc = 0;
    for (int p = 0; p < BUCKETS; p++)
        signed_cum[p] = acc += counts[signed_bucket(p)];
    acc = 0;
    for (int m = 0; m < BUCKETS / 2; m++)
        mag_cum[m] = acc += counts[m] + counts[m | 0x8000];
}

static PyObject *scan_f32(PyObject *self, PyObject *args)
{
    PyObject *objs[4];
    if (!PyArg_ParseTuple(args, "OOOO:scan_f32", &objs[0], &objs[1], &objs[2], &objs[3]))
        return NULL;
    /* weights, counts, signed_cum, mag_cum */
    static const Py_ssize_t items[4] = {4, 8, 8, 8}, lengths[4] = {-1, BUCKETS, BUCKETS,
                                                                   BUCKETS / 2};
    static const char *names[4] = {"weights", "counts", "signed_cum", "mag_cum"};
    Py_buffer views[4];
    int held = 0;
    PyObject *result = NULL;
    for (; held < 4; held++) {
        if (get_buffer(objs[held], &views[held], held > 0, items[held], names[held]) < 0)
            goto done;
        if (lengths[held] >= 0 && views[held].len != lengths[held] * items[held]) {
            PyErr_Format(PyExc_ValueError, "scan_f32: %s must hold %zd int64", names[held],
                         lengths[held]);
            held++;
            goto done;
        }
    }
    const float *x = (const float *)views[0].buf;
    Py_ssize_t n = views[0].len / 4;
    /* The second table pays for itself (zeroing 512 kB, adding it in) on big tensors only. */
    int64_t *odd = NULL;
    if (n >= SPLIT_COUNTS && (odd = PyMem_RawCalloc(BUCKETS, sizeof(int64_t))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *even = (int64_t *)views[1].buf;
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
    cumulate(even, (int64_t *)views[2].buf, (int64_t *)views[3].buf);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(odd);
    float absmax;
    memcpy(&absmax, &maxbits, sizeof absmax);
    result = Py_BuildValue("dddd", total, l1, sq, (double)absmax);
done:
    while (held-- > 0)
        PyBuffer_Release(&views[held]);
    return result;
}

/* Sorts the n weights (bit patterns) of one bucket: they share their top 16 bits, so value
 * order is the order of the low 16 bits, reversed for a negative bucket. Two 8-bit counting
 * passes (through tmp), or insertion for a few. */
static void sort_bucket(uint32_t *v, Py_ssize_t n, uint32_t flip, uint32_t *tmp)
{
    if (n <= 128) {
        for (Py_ssize_t i = 1; i < n; i++) {
            uint32_t item = v[i], key = (item ^ flip) & 0xFFFFu;
            Py_ssize_t j = i;
            for (; j > 0 && ((v[j - 1] ^ flip) & 0xFFFFu) > key; j--)
                v[j] = v[j - 1];
            v[j] = item;
        }
        return;
    }
    for (int shift = 0; shift < 16; shift += 8) {
        Py_ssize_t at[256] = {0};
        uint32_t *src = shift ? tmp : v, *dst = shift ? v : tmp;
        for (Py_ssize_t i = 0; i < n; i++)
            at[((src[i] ^ flip) >> shift) & 0xFF]++;
        Py_ssize_t acc = 0;
        for (int d = 0; d < 256; d++) {
            Py_ssize_t c = at[d];
            at[d] = acc;
            acc += c;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            dst[at[((src[i] ^ flip) >> shift) & 0xFF]++] = src[i];
    }
}

/* Copies the weights of the marked buckets into dst, in array order; returns how many, or
 * -1 if there are more than room. Branch-free where a whole block surely fits: every weight
 * is stored and the write position moves on only for marked ones (a few per cent of the
 * weights, scattered: a branch would be mispredicted often). */
static Py_ssize_t gather(const uint32_t *bits, Py_ssize_t n, const uint8_t *take, uint32_t *dst,
                         Py_ssize_t room)
{
    enum { STEP = 1024 };
    Py_ssize_t written = 0, i = 0;
    for (; i + STEP <= n && room - written > STEP; i += STEP)
        for (Py_ssize_t k = i; k < i + STEP; k++) {
            dst[written] = bits[k];
            written += take[bits[k] >> 16];
        }
    for (; i < n; i++)
        if (take[bits[i] >> 16]) {
            if (written == room)
                return -1;
            dst[written++] = bits[i];
        }
    return written;
}

/* The weights of the marked buckets, in value order, into dst (room items, the exact sum
 * of their counts): gathered into flat, placed in their bucket's run (runs in value order),
 * then each run sorted. Returns 0, or -1 when the counts do not match the weights (dst may
 * then hold anything, but nothing is written outside it). */
static int gather_sorted(const uint32_t *bits, Py_ssize_t n, const uint8_t *take,
                         const int64_t *counts, uint32_t *dst, Py_ssize_t room,
                         int64_t *next, uint32_t *flat, uint32_t *tmp)
{
    if (gather(bits, n, take, flat, room) != room)
        return -1;
    int64_t acc = 0;
    for (int p = 0; p < BUCKETS; p++) {
        int b = signed_bucket(p);
        if (take[b]) {
            next[b] = acc;
            acc += counts[b];
        }
    }
    if (acc != room)
        return -1;
    for (Py_ssize_t i = 0; i < room; i++) {
        uint32_t b = flat[i] >> 16;
        if (next[b] >= room)
            return -1;
        dst[next[b]++] = flat[i];
    }
    acc = 0;
    for (int p = 0; p < BUCKETS; p++) {
        int b = signed_bucket(p);
        if (take[b]) {
            if (next[b] != acc + counts[b])
                return -1;
            sort_bucket(dst + acc, counts[b], b & 0x8000 ? 0xFFFFu : 0u, tmp);
            acc += counts[b];
        }
    }
    return 0;
}

static PyObject *gather_sorted_f32(PyObject *self, PyObject *args)
{
    PyObject *objs[4];
    if (!PyArg_ParseTuple(args, "OOOO:gather_sorted_f32", &objs[0], &objs[1], &objs[2],
                          &objs[3]))
        return NULL;
    /* weights, wanted, counts, out */
    static const Py_ssize_t items[4] = {4, 1, 8, 4};
    static const int writable[4] = {0, 0, 0, 1};
    static const char *names[4] = {"weights", "wanted", "counts", "out"};
    Py_buffer views[4];
    int held = 0, failed = 0;
    PyObject *result = NULL;
    for (; held < 4; held++)
        if (get_buffer(objs[held], &views[held], writable[held], items[held], names[held]) < 0)
            goto done;
    if (views[1].len != BUCKETS || views[2].len != BUCKETS * 8) {
        PyErr_Format(PyExc_ValueError, "gather_sorted_f32: wanted and counts must hold %d "
                     "items", BUCKETS);
        goto done;
    }
    const uint8_t *take = views[1].buf;
    const int64_t *counts = views[2].buf;
    Py_ssize_t room = views[3].len / 4;
    int64_t biggest = 0;
    for (int b = 0; b < BUCKETS; b++)
        if (take[b] && counts[b] > biggest)
            biggest = counts[b];
    /* next: only the wanted buckets' entries are touched; work: the gathered weights, then
     * the sort's temporary run */
    int64_t *next = PyMem_RawMalloc(BUCKETS * sizeof(int64_t));
    uint32_t *work = PyMem_RawMalloc((size_t)(room + biggest + 1) * sizeof(uint32_t));
    if (next == NULL || work == NULL) {
        PyMem_RawFree(next);
        PyMem_RawFree(work);
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    failed = gather_sorted(views[0].buf, views[0].len / 4, take, counts, views[3].buf, room,
                           next, work, work + room);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(next);
    PyMem_RawFree(work);
    if (failed)
        PyErr_SetString(PyExc_ValueError, "gather_sorted_f32: the counts are not those of "
                        "these weights, or out is not their sum over the wanted buckets");
    else
        result = Py_None, Py_INCREF(result);
done:
    while (held-- > 0)
        PyBuffer_Release(&views[held]);
    return result;
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
     "scan_f32(weights, counts, signed_cum, mag_cum) -> (sum, sum_abs, sum_sq, max_abs): one "
     "pass over float32 weights; counts (65536 int64) receives the weights per top-16-bit "
     "bucket, signed_cum (65536) and mag_cum (32768) their running sums in value order and "
     "in magnitude order."},
    {"gather_sorted_f32", gather_sorted_f32, METH_VARARGS,
     "gather_sorted_f32(weights, wanted, counts, out): the weights whose bucket is marked in "
     "wanted (65536 bytes), sorted, into out (exactly their number, from counts)."},
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
