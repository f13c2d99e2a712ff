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
 * gather_sorted_f32 copies the weights of a list of buckets, sorted (a few per cent of them:
 * the buckets that hold a wanted rank or threshold). summary_f32 does a tensor's whole
 * summary in one call: the scan, one gather, and every rank and count query answered from
 * the sorted weights and the counts.
 *
 * diff_sq_f32 gives the squared norm of the change since the last record (the update ratio)
 * and, in the same pass, overwrites the kept copy with the current weights.
 *
 * The passes over the weights release the GIL, so the recorder's threads summarise layers in
 * parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

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

/* 8 lanes' sums added as numpy adds them. */
static inline double add8(const double *l)
{
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* The 8 lanes' sums of w, |w| and w*w, each added as numpy adds them. */
static inline sums_t reduce8(const double *s, const double *a, const double *q)
{
    sums_t out = {add8(s), add8(a), add8(q)};
    return out;
}

#if defined(__GNUC__) && !defined(WCVIZ_SCALAR_LANES)
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

/* numpy's 8 lanes over x[0..n8) (n8 >= 8, a multiple of 8): lane j starts at x[j] and adds
 * x[j + 8], x[j + 16], ... in order; for w, |w| and w*w (squared in float32), in vectors of
 * 4 lanes (the compiler does not vectorise the scalar loop); then the lanes' sums added as
 * numpy adds them (reduce8). Also the max |w| bit pattern. */
HOT static sums_t lanes(const float *x, Py_ssize_t n8, uint32_t *maxbits)
{
    double s[8], a[8], q[8];
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
    return reduce8(s, a, q);
}

#if defined(__x86_64__)
#define WIDE_LANES
#define WIDE __attribute__((target("avx512f,avx512vl,avx512dq")))

/* The 8 lanes' sums of one register added as numpy adds them,
 * ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)): each step adds every lane to its
 * neighbour at distance 1, 2, then 4 (in lane 0 the same additions, in the same order). */
WIDE static inline double tree8(__m512d r)
{
    r = _mm512_add_pd(r, _mm512_permute_pd(r, 0x55));          /* swap within pairs */
    r = _mm512_add_pd(r, _mm512_permutex_pd(r, 0x4E));         /* swap pairs */
    r = _mm512_add_pd(r, _mm512_shuffle_f64x2(r, r, 0x4E));    /* swap halves */
    return _mm512_cvtsd_f64(r);
}

/* The same 8 lanes, each sum in one AVX-512 register (lane j in element j): the same float64
 * additions in the same order, in fewer instructions (ResNet50's weights, one thread: the
 * sums alone 11.3 ms, against 14.5 ms with GCC's own 8-lane vectors). Intrinsics, because
 * GCC 12 splits each float32 -> float64 conversion of 8 lanes in two halves and a merge.
 * Used where the CPU has AVX-512 (wide_lanes_supported). */
WIDE static sums_t lanes_wide(const float *x, Py_ssize_t n8, uint32_t *maxbits)
{
    const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF);
    __m256 v = _mm256_loadu_ps(x);
    __m256i b = _mm256_and_si256(_mm256_castps_si256(v), magnitude), mx = b;
    __m256 m = _mm256_castsi256_ps(b);
    /* |w| in float64 is |the float64 w|: one conversion fewer (a few cycles each here) */
    __m512d vs = _mm512_cvtps_pd(v), va = _mm512_abs_pd(vs),
            vq = _mm512_cvtps_pd(_mm256_mul_ps(m, m));
    for (Py_ssize_t i = 8; i < n8; i += 8) {
        v = _mm256_loadu_ps(x + i);
        b = _mm256_and_si256(_mm256_castps_si256(v), magnitude);
        m = _mm256_castsi256_ps(b);
        __m512d dv = _mm512_cvtps_pd(v);
        vs = _mm512_add_pd(vs, dv);
        va = _mm512_add_pd(va, _mm512_abs_pd(dv));
        vq = _mm512_add_pd(vq, _mm512_cvtps_pd(_mm256_mul_ps(m, m)));
        mx = _mm256_max_epu32(mx, b);
    }
    uint32_t m8[8];
    _mm256_storeu_si256((__m256i *)m8, mx);
    for (int j = 0; j < 8; j++)
        *maxbits = m8[j] > *maxbits ? m8[j] : *maxbits;
    sums_t out = {tree8(vs), tree8(va), tree8(vq)};
    return out;
}

static int wide_lanes_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
}
#endif
#define NARROW_WIDTH 4
#else
/* numpy's 8 lanes over x[0..n8) (n8 >= 8, a multiple of 8), as above, in scalar code. */
static sums_t lanes(const float *x, Py_ssize_t n8, uint32_t *maxbits)
{
    double s[8], a[8], q[8];
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
    return reduce8(s, a, q);
}
#define NARROW_WIDTH 1
#endif

typedef sums_t (*lanes_fn)(const float *, Py_ssize_t, uint32_t *);
/* The lanes in use and their vector width (8: AVX-512, 4: 4-wide vectors, 1: scalar); set at
 * import to the widest the CPU has (tests switch them with _kernels.lanes to compare). */
static lanes_fn lanes_in_use = lanes;
static int width_in_use = NARROW_WIDTH;

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
    Py_ssize_t i = n - (n % 8);
    out = lanes_in_use(x, i, maxbits);
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

/* Bucket b's place in value order (the inverse of signed_bucket). */
static inline int signed_position(int64_t b)
{
    return b & 0x8000 ? 0xFFFF - (int)b : (int)b + 0x8000;
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

/* What one read of a float32 tensor gives: the float64 sums of w, |w| and w*w, and max |w|
 * (meaningful only when every weight is finite: sq is then finite too). */
typedef struct {
    double total, l1, sq;
    float absmax;
} scan_t;

/* The scan: sums, max |w|, counts per bucket and their running sums (see scan_f32). odd: a
 * second zeroed count table for big tensors, or NULL. */
static scan_t scan_into(const float *x, Py_ssize_t n, int64_t *counts, int64_t *odd,
                        int64_t *signed_cum, int64_t *mag_cum)
{
    scan_t out = {0.0, 0.0, 0.0, 0.0f};
    uint32_t maxbits = 0;
    memset(counts, 0, BUCKETS * sizeof(int64_t));
    for (Py_ssize_t start = 0; start < n; start += CHUNK) {
        Py_ssize_t len = n - start < CHUNK ? n - start : CHUNK;
        sums_t part = pairwise(x + start, len, &maxbits);
        out.total += part.sum;
        out.l1 += part.abs;
        out.sq += part.sq;
        count_chunk(x + start, len, counts, odd ? odd : counts);
    }
    for (int b = 0; odd && b < BUCKETS; b++)
        counts[b] += odd[b];
    cumulate(counts, signed_cum, mag_cum);
    memcpy(&out.absmax, &maxbits, sizeof out.absmax);
    return out;
}

/* The second count table of scan_into: it pays for itself (zeroing 512 kB, adding it in) on
 * big tensors only. *odd is NULL for small ones; -1 when out of memory (error set). */
static int odd_table(Py_ssize_t n, int64_t **odd)
{
    *odd = NULL;
    if (n >= SPLIT_COUNTS && (*odd = PyMem_RawCalloc(BUCKETS, sizeof(int64_t))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
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
    Py_ssize_t n = views[0].len / 4;
    int64_t *odd;
    if (odd_table(n, &odd) < 0)
        goto done;
    scan_t scan;
    Py_BEGIN_ALLOW_THREADS
    scan = scan_into(views[0].buf, n, views[1].buf, odd, views[2].buf, views[3].buf);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(odd);
    result = Py_BuildValue("dddd", scan.total, scan.l1, scan.sq, (double)scan.absmax);
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

/* Copies the weights of the marked buckets into dst (room + 2 items); returns how many, or
 * -1 if there are more than room + 2 (callers want exactly room). The two halves of the
 * weights are read side by side, the first half's marked weights written up from dst[0],
 * the second's down from dst[room + 1] (then moved to follow the first's): each write
 * position waits only on its own last step, half as many steps in a row (ResNet50's
 * summaries, one thread: 36.9 -> 35.2 ms). Branch-free while the next block surely fits:
 * every weight is stored and its write position moves on only for a marked one (a few per
 * cent, scattered: a branch would be mispredicted often); a stored weight that is not kept
 * lands on a free slot (up's below down's). */
static Py_ssize_t gather(const uint32_t *bits, Py_ssize_t n, const uint8_t *take, uint32_t *dst,
                         Py_ssize_t room)
{
    enum { STEP = 512 };
    Py_ssize_t half = n / 2, up = 0, down = room + 1, i = 0;
    for (; i + STEP <= half && down - up > 2 * STEP + 1; i += STEP)
        for (Py_ssize_t k = i; k < i + STEP; k++) {
            uint32_t a = bits[k], b = bits[half + k];
            dst[up] = a;
            up += take[a >> 16];
            dst[down] = b;
            down -= take[b >> 16];
        }
    for (Py_ssize_t k = i; k < half; k++) /* the rest of each half, checked */
        if (take[bits[k] >> 16]) {
            if (up > down)
                return -1;
            dst[up++] = bits[k];
        }
    for (Py_ssize_t k = half + i; k < n; k++)
        if (take[bits[k] >> 16]) {
            if (up > down)
                return -1;
            dst[down--] = bits[k];
        }
    memmove(dst + up, dst + down + 1, (size_t)(room - down + 1) * sizeof *dst);
    return up + room - down + 1;
}

/* The weights of the listed buckets (nb of them, in value order, each marked in take), in
 * value order, into dst (room items, the exact sum of their counts): gathered into flat
 * (room + 2 items), placed in their bucket's run, then each run sorted. Only the listed
 * buckets' entries of next are touched. Returns 0, or -1 when the counts do not match the
 * weights (dst may then hold anything, but nothing is written outside it). */
static int gather_sorted(const uint32_t *bits, Py_ssize_t n, const uint8_t *take,
                         const int64_t *list, Py_ssize_t nb, const int64_t *counts,
                         uint32_t *dst, Py_ssize_t room, int64_t *next, uint32_t *flat,
                         uint32_t *tmp)
{
    if (gather(bits, n, take, flat, room) != room)
        return -1;
    int64_t acc = 0;
    for (Py_ssize_t k = 0; k < nb; k++) {
        next[list[k]] = acc;
        acc += counts[list[k]];
    }
    for (Py_ssize_t i = 0; i < room; i++) {
        uint32_t b = flat[i] >> 16;
        if (next[b] >= room)
            return -1;
        dst[next[b]++] = flat[i];
    }
    acc = 0;
    for (Py_ssize_t k = 0; k < nb; k++) {
        int64_t b = list[k];
        if (next[b] != acc + counts[b])
            return -1;
        sort_bucket(dst + acc, counts[b], b & 0x8000 ? 0xFFFFu : 0u, tmp);
        acc += counts[b];
    }
    return 0;
}

/* Whether list (nb buckets) is in value order, without repeats, and its counts sum to room
 * (else a ValueError set and -1); also the biggest count. */
static int check_buckets(const char *what, const int64_t *list, Py_ssize_t nb,
                         const int64_t *counts, Py_ssize_t room, int64_t *biggest)
{
    int64_t total = 0;
    *biggest = 0;
    for (Py_ssize_t k = 0; k < nb; k++) {
        int64_t b = list[k];
        if (b < 0 || b >= BUCKETS || (k && signed_position(b) <= signed_position(list[k - 1]))) {
            PyErr_Format(PyExc_ValueError, "%s: buckets must lie in [0, 65536), in value "
                         "order, without repeats", what);
            return -1;
        }
        /* a negative count would place weights before dst; the sum stays within room */
        if (counts[b] < 0 || counts[b] > room - total) {
            total = -1;
            break;
        }
        total += counts[b];
        *biggest = counts[b] > *biggest ? counts[b] : *biggest;
    }
    if (total != room) {
        PyErr_Format(PyExc_ValueError, "%s: the sorted weights must be as many as the sum of "
                     "the buckets' counts, none negative", what);
        return -1;
    }
    return 0;
}

/* gather_sorted over a list checked by check_buckets (biggest: its biggest count; take: its
 * buckets marked), with its own scratch: 0, -1 when out of memory, -2 when the counts are
 * not those of the weights. */
static int gather_list(const uint32_t *bits, Py_ssize_t n, const uint8_t *take,
                       const int64_t *list, Py_ssize_t nb, const int64_t *counts,
                       Py_ssize_t room, int64_t biggest, uint32_t *dst)
{
    /* next: only the listed buckets' entries are touched; work: the gathered weights (room
     * + 2 for gather), then the sort's temporary run */
    int64_t *next = PyMem_RawMalloc(BUCKETS * sizeof(int64_t));
    uint32_t *work = PyMem_RawMalloc((size_t)(room + 2 + biggest + 1) * sizeof(uint32_t));
    int rc = -1;
    if (next != NULL && work != NULL)
        rc = gather_sorted(bits, n, take, list, nb, counts, dst, room, next, work,
                           work + room + 2) ? -2 : 0;
    PyMem_RawFree(next);
    PyMem_RawFree(work);
    return rc;
}

static PyObject *gather_sorted_f32(PyObject *self, PyObject *args)
{
    PyObject *objs[4];
    if (!PyArg_ParseTuple(args, "OOOO:gather_sorted_f32", &objs[0], &objs[1], &objs[2],
                          &objs[3]))
        return NULL;
    /* weights, buckets, counts, out */
    static const Py_ssize_t items[4] = {4, 8, 8, 4};
    static const int writable[4] = {0, 0, 0, 1};
    static const char *names[4] = {"weights", "buckets", "counts", "out"};
    Py_buffer views[4];
    int held = 0, rc;
    PyObject *result = NULL;
    uint8_t *take = NULL;
    for (; held < 4; held++)
        if (get_buffer(objs[held], &views[held], writable[held], items[held], names[held]) < 0)
            goto done;
    if (views[2].len != BUCKETS * 8) {
        PyErr_Format(PyExc_ValueError, "gather_sorted_f32: counts must hold %d items", BUCKETS);
        goto done;
    }
    const int64_t *list = views[1].buf, *counts = views[2].buf;
    Py_ssize_t nb = views[1].len / 8, room = views[3].len / 4;
    int64_t biggest;
    if (check_buckets("gather_sorted_f32", list, nb, counts, room, &biggest) < 0)
        goto done;
    if ((take = PyMem_RawCalloc(BUCKETS, 1)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nb; k++)
        take[list[k]] = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = gather_list(views[0].buf, views[0].len / 4, take, list, nb, counts, room, biggest,
                     views[3].buf);
    Py_END_ALLOW_THREADS
    if (rc == -1)
        PyErr_NoMemory();
    else if (rc == -2)
        PyErr_SetString(PyExc_ValueError, "gather_sorted_f32: the counts are not those of "
                        "these weights");
    else
        result = Py_None, Py_INCREF(result);
done:
    PyMem_RawFree(take);
    while (held-- > 0)
        PyBuffer_Release(&views[held]);
    return result;
}

static uint32_t bits_of(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static float float_of(uint32_t bits)
{
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* The bucket of a threshold of count_below (+0 taken as -0). */
static int64_t threshold_bucket(float t)
{
    return bits_of(t == 0.0f ? -0.0f : t) >> 16;
}

/* The gathered buckets' runs in the sorted weights: the buckets in value order and where
 * each run starts (start[k], k = 0..nb; start[nb] is their total). */
typedef struct {
    const int64_t *list;
    Py_ssize_t nb;
    const int64_t *counts;
    int64_t *start;
} runs_t;

/* The place k of bucket b in the list (by bisection in value order), -1 if not gathered. */
static Py_ssize_t run_of(const runs_t *r, int64_t b)
{
    if (b < 0 || b >= BUCKETS)
        return -1;
    int p = signed_position(b);
    Py_ssize_t lo = 0, hi = r->nb;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (signed_position(r->list[mid]) < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->nb && r->list[lo] == b ? lo : -1;
}

/* The local-th weight (0-based) of bucket b, as a double; -1 if b was not gathered or local
 * lies outside its run. */
static int select_signed(const runs_t *r, const float *v, int64_t b, int64_t local, double *out)
{
    Py_ssize_t k = run_of(r, b);
    if (k < 0 || local < 0 || local >= r->counts[b])
        return -1;
    *out = (double)v[r->start[k] + local];
    return 0;
}

/* The local-th smallest |w| (0-based) of magnitude bucket m: its negative run (ascending in
 * |w| when read backwards) and its positive run merged by bisection (the smallest count i
 * taken from the negatives whose next value is not below the positives' last one taken). */
static int select_magnitude(const runs_t *r, const float *v, int64_t m, int64_t local,
                            double *out)
{
    Py_ssize_t kn = run_of(r, m | 0x8000), kp = run_of(r, m);
    if (m < 0 || m >= 0x8000 || kn < 0 || kp < 0)
        return -1;
    const float *neg = v + r->start[kn], *pos = v + r->start[kp];
    int64_t na = r->counts[m | 0x8000], nb = r->counts[m];
    if (local < 0 || local >= na + nb)
        return -1;
#define NEG_ABS(i) fabsf(neg[na - 1 - (i)])
    int64_t lo = local + 1 - nb > 0 ? local + 1 - nb : 0, hi = local + 1 < na ? local + 1 : na;
    while (lo < hi) {
        int64_t i = lo + (hi - lo) / 2;
        if (pos[local - i] > NEG_ABS(i))
            lo = i + 1;
        else
            hi = i;
    }
    int64_t j = local + 1 - lo;
    float from_neg = lo ? NEG_ABS(lo - 1) : -INFINITY, from_pos = j ? pos[j - 1] : -INFINITY;
#undef NEG_ABS
    *out = (double)(from_pos > from_neg ? from_pos : from_neg);
    return 0;
}

/* #{w < t} (t != NaN; +0 taken as -0, the same value, whose bucket holds no positive weight):
 * the weights of the buckets wholly below t's, plus the sorted weights below t minus those
 * of the gathered buckets before t's; -1 if t's bucket was not gathered. */
static int count_below(const runs_t *r, const float *v, const int64_t *signed_cum, float t,
                       int64_t *out)
{
    if (t != t)
        return -1;
    int64_t b = threshold_bucket(t);
    Py_ssize_t k = run_of(r, b);
    if (k < 0)
        return -1;
    Py_ssize_t lo = 0, hi = r->start[r->nb];
    while (lo < hi) { /* the first sorted weight not below t */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (v[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    *out = signed_cum[signed_position(b)] - r->counts[b] + (lo - r->start[k]);
    return 0;
}

/* ---- One tensor's whole summary (summary_f32): the scan, then every wanted bucket
 * gathered once and every statistic answered from it, as wcviz.record.stats's
 * _summary_shared_finite does with numpy (the reference; the same bits, tests compare). */

/* A quantile plan of wcviz.record.stats._plan: the distinct ranks, and per quantile the
 * places of its two order statistics among them and the upper one's weight. */
typedef struct {
    const int64_t *ranks, *lo, *hi;
    const double *gamma;
    Py_ssize_t nranks, nq;
} plan_t;

/* Cutoff kinds of summary_f32: a number, t x std(w), t x median|w|. */
enum { CUT_NUMBER = 0, CUT_STD = 1, CUT_MED = 2 };

typedef struct {
    const float *x;
    Py_ssize_t n;
    int64_t *counts, *signed_cum, *mag_cum; /* scratch, 65536, 65536, 32768 */
    plan_t q, m;                            /* the quantiles', the median |w|'s */
    const int64_t *cut_kind;
    const double *cut_value; /* the number, or t */
    Py_ssize_t ncut;
    const float *edges; /* the histogram's thresholds (bins - 1) */
    Py_ssize_t nedges;
    double *out; /* quantiles, fractions, histogram, 5 moments, 0 */
} summary_in;

/* The buckets to gather, each once, in the order first wanted (marked: the gather's table). */
typedef struct {
    uint8_t *marked;
    int64_t *list;
    Py_ssize_t n;
} wanted_t;

static void want(wanted_t *w, int64_t b)
{
    if (!w->marked[b]) {
        w->marked[b] = 1;
        w->list[w->n++] = b;
    }
}

static void want_magnitude(wanted_t *w, int64_t m)
{
    want(w, m);
    want(w, m | 0x8000);
}

static int by_value(const void *a, const void *b)
{
    int pa = signed_position(*(const int64_t *)a), pb = signed_position(*(const int64_t *)b);
    return (pa > pb) - (pa < pb);
}

/* The magnitude bucket of a positive finite float32, -1 for others (their counts need no
 * bucket). */
static int64_t magnitude_bucket(float c)
{
    return c > 0.0f && isfinite(c) ? (int64_t)(bits_of(c) >> 16) : -1;
}

/* The magnitude bucket of a float32 c >= 0, that of the largest finite float32 for inf. */
static int64_t bucket_at_most_finite(float c)
{
    return bits_of(c < FLT_MAX ? c : FLT_MAX) >> 16;
}

/* numpy's _lerp: a + (b - a)·t, from the nearer end when t >= 0.5; a zero result is +0.0,
 * as in stats._lerp (the sort decides which zero sits at a rank). */
static double lerp(double a, double b, double t)
{
    double diff = b - a;
    return (t >= 0.5 ? b - diff * (1 - t) : a + diff * t) + 0.0;
}

/* The first place of the running counts cum[0..n) above r (numpy's searchsorted, side
 * "right"): the bucket that holds rank r. */
static Py_ssize_t holding(const int64_t *cum, Py_ssize_t n, int64_t r)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (cum[mid] <= r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* (bucket, rank inside it) of rank r of the weights in value order. */
static void signed_at(const summary_in *s, int64_t r, int64_t *bucket, int64_t *local)
{
    Py_ssize_t p = holding(s->signed_cum, BUCKETS, r);
    *bucket = signed_bucket((int)p);
    *local = r - (s->signed_cum[p] - s->counts[*bucket]);
}

/* (magnitude bucket, rank inside it) of rank r of |w| in value order. */
static void magnitude_at(const summary_in *s, int64_t r, int64_t *bucket, int64_t *local)
{
    Py_ssize_t m = holding(s->mag_cum, BUCKETS / 2, r);
    *bucket = m;
    *local = r - (s->mag_cum[m] - s->counts[m] - s->counts[m | 0x8000]);
}

/* #{|w| < c} for the float32 c: none for c <= 0 or NaN, all for inf. */
static int count_magnitude_below(const runs_t *r, const float *v, const summary_in *s, float c,
                                 int64_t *out)
{
    if (!(c > 0.0f) || !isfinite(c)) {
        *out = c == INFINITY ? s->n : 0;
        return 0;
    }
    int64_t below, not_above_minus;
    if (count_below(r, v, s->signed_cum, c, &below) < 0 ||
        count_below(r, v, s->signed_cum, nextafterf(-c, INFINITY), &not_above_minus) < 0)
        return -1;
    *out = below - not_above_minus;
    return 0;
}

/* The cutoffs known before the gather (numbers, std ones): their float32 values in cut32
 * (NaN for med ones); the buckets their counts need are wanted. Each med cutoff t·median|w|
 * lies between t × the smallest and t × the largest value of the median's buckets: those
 * magnitude buckets and one below (for next_up(-c)) are wanted (as in _shared_levels). */
static void want_cutoffs(const summary_in *s, double std, int64_t med_lo, int64_t med_hi,
                         wanted_t *w, float *cut32)
{
    float lo = float_of((uint32_t)med_lo << 16), hi = float_of((((uint32_t)med_hi + 1) << 16) - 1);
    for (Py_ssize_t i = 0; i < s->ncut; i++) {
        double t = s->cut_value[i];
        cut32[i] = NAN;
        if (s->cut_kind[i] == CUT_MED) {
            if (!(t > 0)) /* then c <= 0 (or NaN): a count of none, which needs no bucket */
                continue;
            /* t x an end may round to 0 or overflow where t x median|w| does not */
            int64_t first = bucket_at_most_finite((float)(t * lo)),
                    last = bucket_at_most_finite((float)(t * hi));
            for (int64_t m = first > 0 ? first - 1 : 0; m <= last; m++)
                want_magnitude(w, m);
            continue;
        }
        cut32[i] = (float)(s->cut_kind[i] == CUT_STD ? t * std : t);
        int64_t m = magnitude_bucket(cut32[i]);
        if (m >= 0) {
            want_magnitude(w, m);
            want(w, threshold_bucket(nextafterf(-cut32[i], INFINITY)));
        }
    }
}

/* The statistics from the gathered, sorted weights v (see summary_in.out). */
static int answer(const summary_in *s, const runs_t *r, const float *v, const double *moments,
                  const int64_t *q_at, const int64_t *m_at, float *cut32)
{
    double *out = s->out, stats[2];
    for (Py_ssize_t k = 0; k < s->q.nq; k++) {
        for (int e = 0; e < 2; e++) {
            Py_ssize_t j = (e ? s->q.hi : s->q.lo)[k];
            if (select_signed(r, v, q_at[2 * j], q_at[2 * j + 1], &stats[e]) < 0)
                return -1;
        }
        out[k] = lerp(stats[0], stats[1], s->q.gamma[k]);
    }
    out += s->q.nq;
    for (int e = 0; e < 2; e++) {
        Py_ssize_t j = (e ? s->m.hi : s->m.lo)[0];
        if (select_magnitude(r, v, m_at[2 * j], m_at[2 * j + 1], &stats[e]) < 0)
            return -1;
    }
    double median_abs = lerp(stats[0], stats[1], s->m.gamma[0]);
    for (Py_ssize_t i = 0; i < s->ncut; i++) {
        if (s->cut_kind[i] == CUT_MED)
            cut32[i] = (float)(s->cut_value[i] * median_abs);
        int64_t count;
        if (count_magnitude_below(r, v, s, cut32[i], &count) < 0)
            return -1;
        out[i] = (double)count / (double)s->n;
    }
    out += s->ncut;
    int64_t at_least = s->n; /* weights in this bin or above */
    for (Py_ssize_t e = 0; e <= s->nedges; e++) {
        int64_t below = s->n; /* weights below the next bin */
        if (e < s->nedges && count_below(r, v, s->signed_cum, s->edges[e], &below) < 0)
            return -1;
        out[e] = (double)(at_least - (s->n - below));
        at_least = s->n - below;
    }
    memcpy(out + s->nedges + 1, moments, 5 * sizeof(double));
    out[s->nedges + 6] = 0.0;
    return 0;
}

/* Wants every bucket a statistic needs (cut32: the cutoffs' float32 values, NaN for med
 * ones); q_at, m_at: (bucket, rank inside it) of each rank of the plans. */
static void want_all(const summary_in *s, double std, wanted_t *w, int64_t *q_at,
                     int64_t *m_at, float *cut32)
{
    for (Py_ssize_t j = 0; j < s->q.nranks; j++) {
        signed_at(s, s->q.ranks[j], &q_at[2 * j], &q_at[2 * j + 1]);
        want(w, q_at[2 * j]);
    }
    int64_t med_lo = BUCKETS, med_hi = 0;
    for (Py_ssize_t j = 0; j < s->m.nranks; j++) {
        magnitude_at(s, s->m.ranks[j], &m_at[2 * j], &m_at[2 * j + 1]);
        want_magnitude(w, m_at[2 * j]);
        med_lo = m_at[2 * j] < med_lo ? m_at[2 * j] : med_lo;
        med_hi = m_at[2 * j] > med_hi ? m_at[2 * j] : med_hi;
    }
    for (Py_ssize_t e = 0; e < s->nedges; e++)
        want(w, threshold_bucket(s->edges[e]));
    want_cutoffs(s, std, med_lo, med_hi, w, cut32);
}

/* The summary of s (GIL released): 0 done, 1 not finite (numpy's general path then), -1 out
 * of memory, -2 a statistic's bucket was not gathered (a bug). */
static int summarize(const summary_in *s, int64_t *odd)
{
    scan_t scan = scan_into(s->x, s->n, s->counts, odd, s->signed_cum, s->mag_cum);
    if (!isfinite(scan.sq))
        return 1;
    double n = (double)s->n, l2 = sqrt(scan.sq), mean = scan.total / n;
    double var = l2 * l2 / n - mean * mean;
    double std = sqrt(0.0 > var ? 0.0 : var); /* Python's max(var, 0.0), -0.0 and all */
    double moments[5] = {mean, std, (double)scan.absmax, l2,
                         l2 > 0 ? scan.l1 * scan.l1 / (n * l2 * l2) : NAN};
    wanted_t w = {PyMem_RawCalloc(BUCKETS, 1), PyMem_RawMalloc(BUCKETS * sizeof(int64_t)), 0};
    int64_t *at = PyMem_RawMalloc((size_t)(2 * (s->q.nranks + s->m.nranks) + 1) * sizeof(int64_t));
    float *cut32 = PyMem_RawMalloc((size_t)(s->ncut + 1) * sizeof(float));
    int64_t *start = NULL;
    float *v = NULL;
    int rc = -1;
    if (w.marked == NULL || w.list == NULL || at == NULL || cut32 == NULL)
        goto done;
    int64_t *q_at = at, *m_at = at + 2 * s->q.nranks;
    want_all(s, std, &w, q_at, m_at, cut32);
    qsort(w.list, w.n, sizeof(int64_t), by_value);
    int64_t room = 0, biggest = 0;
    for (Py_ssize_t k = 0; k < w.n; k++) {
        room += s->counts[w.list[k]];
        biggest = s->counts[w.list[k]] > biggest ? s->counts[w.list[k]] : biggest;
    }
    v = PyMem_RawMalloc((size_t)(room + 1) * sizeof(float));
    start = PyMem_RawMalloc((size_t)(w.n + 1) * sizeof(int64_t));
    if (v == NULL || start == NULL ||
        (rc = gather_list((const uint32_t *)s->x, s->n, w.marked, w.list, w.n, s->counts, room,
                          biggest, (uint32_t *)v)) < 0)
        goto done;
    start[0] = 0;
    for (Py_ssize_t k = 0; k < w.n; k++)
        start[k + 1] = start[k] + s->counts[w.list[k]];
    runs_t runs = {w.list, w.n, s->counts, start};
    rc = answer(s, &runs, v, moments, q_at, m_at, cut32) < 0 ? -2 : 0;
done:
    PyMem_RawFree(w.marked);
    PyMem_RawFree(w.list);
    PyMem_RawFree(at);
    PyMem_RawFree(cut32);
    PyMem_RawFree(v);
    PyMem_RawFree(start);
    return rc;
}

/* Whether the buffers of summary_f32 fit together (else a ValueError set). */
static int valid_summary(const summary_in *s, const Py_buffer *views)
{
    const char *problem = NULL;
    if (views[1].len != BUCKETS * 8 || views[2].len != BUCKETS * 8 ||
        views[3].len != BUCKETS / 2 * 8)
        problem = "counts and signed_cum must hold 65536 items, mag_cum 32768";
    else if (views[6].len != views[5].len || views[7].len != views[5].len ||
             views[9].len != 8 || views[10].len != 8 || views[11].len != 8 ||
             s->m.nranks < 1 || s->m.nranks > 2)
        problem = "a quantile plan's arrays differ in length, or the median's is not one";
    else if (views[13].len != views[12].len)
        problem = "cutoff_kinds and cutoffs differ in length";
    else if (s->n < 1 || views[15].len / 8 != s->q.nq + s->ncut + s->nedges + 7)
        problem = "out must hold quantiles + cutoffs + bins + 6 items, of at least one weight";
    for (Py_ssize_t j = 0; !problem && j < s->q.nranks + s->m.nranks; j++) {
        int64_t r = j < s->q.nranks ? s->q.ranks[j] : s->m.ranks[j - s->q.nranks];
        if (r < 0 || r >= s->n)
            problem = "a rank lies outside the weights";
    }
    for (Py_ssize_t k = 0; !problem && k < s->q.nq + 1; k++) {
        const plan_t *p = k < s->q.nq ? &s->q : &s->m;
        Py_ssize_t at = k < s->q.nq ? k : 0;
        if (p->lo[at] < 0 || p->lo[at] >= p->nranks || p->hi[at] < 0 || p->hi[at] >= p->nranks)
            problem = "a quantile's place lies outside its plan's ranks";
    }
    for (Py_ssize_t i = 0; !problem && i < s->ncut; i++)
        if (s->cut_kind[i] < CUT_NUMBER || s->cut_kind[i] > CUT_MED)
            problem = "a cutoff kind is not 0 (a number), 1 (std) or 2 (med)";
    if (problem)
        PyErr_Format(PyExc_ValueError, "summary_f32: %s", problem);
    return problem == NULL;
}

static PyObject *summary_f32(PyObject *self, PyObject *args)
{
    enum { N = 16 };
    PyObject *objs[N];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOOO:summary_f32", &objs[0], &objs[1], &objs[2],
                          &objs[3], &objs[4], &objs[5], &objs[6], &objs[7], &objs[8], &objs[9],
                          &objs[10], &objs[11], &objs[12], &objs[13], &objs[14], &objs[15]))
        return NULL;
    static const Py_ssize_t items[N] = {4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4, 8};
    static const char *names[N] = {
        "weights", "counts", "signed_cum", "mag_cum", "ranks", "lo", "hi", "gamma",
        "median_ranks", "median_lo", "median_hi", "median_gamma", "cutoff_kinds", "cutoffs",
        "edges", "out"};
    Py_buffer views[N];
    int held = 0, rc = -1;
    PyObject *result = NULL;
    int64_t *odd = NULL;
    for (; held < N; held++) {
        int writable = (held >= 1 && held <= 3) || held == N - 1; /* scratch and out */
        if (get_buffer(objs[held], &views[held], writable, items[held], names[held]) < 0)
            goto done;
    }
    summary_in s = {views[0].buf, views[0].len / 4, views[1].buf, views[2].buf, views[3].buf,
                    {views[4].buf, views[5].buf, views[6].buf, views[7].buf,
                     views[4].len / 8, views[5].len / 8},
                    {views[8].buf, views[9].buf, views[10].buf, views[11].buf,
                     views[8].len / 8, 1},
                    views[12].buf, views[13].buf, views[12].len / 8,
                    views[14].buf, views[14].len / 4, views[15].buf};
    if (!valid_summary(&s, views) || odd_table(s.n, &odd) < 0)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    rc = summarize(&s, odd);
    Py_END_ALLOW_THREADS
    if (rc == -1)
        PyErr_NoMemory();
    else if (rc == -2)
        PyErr_SetString(PyExc_RuntimeError, "summary_f32: a statistic's bucket was not "
                        "gathered");
    else
        result = PyBool_FromLong(rc == 0);
done:
    PyMem_RawFree(odd);
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
        double part = add8(lane);
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

static PyObject *lanes_width(PyObject *self, PyObject *args)
{
    int width = 0;
    if (!PyArg_ParseTuple(args, "|i:lanes", &width))
        return NULL;
    int before = width_in_use;
    if (width == NARROW_WIDTH) {
        lanes_in_use = lanes, width_in_use = width;
#ifdef WIDE_LANES
    } else if (width == 8 && wide_lanes_supported()) {
        lanes_in_use = lanes_wide, width_in_use = width;
#endif
    } else if (width) {
        return PyErr_Format(PyExc_ValueError, "lanes: width %d is not available here", width);
    }
    return PyLong_FromLong(before);
}

static PyMethodDef methods[] = {
    {"scan_f32", scan_f32, METH_VARARGS,
     "scan_f32(weights, counts, signed_cum, mag_cum) -> (sum, sum_abs, sum_sq, max_abs): one "
     "pass over float32 weights; counts (65536 int64) receives the weights per top-16-bit "
     "bucket, signed_cum (65536) and mag_cum (32768) their running sums in value order and "
     "in magnitude order."},
    {"gather_sorted_f32", gather_sorted_f32, METH_VARARGS,
     "gather_sorted_f32(weights, buckets, counts, out): the weights whose bucket is one of "
     "buckets (int64, in value order), sorted, into out (exactly their number, from counts)."},
    {"summary_f32", summary_f32, METH_VARARGS,
     "summary_f32(weights, counts, signed_cum, mag_cum, ranks, lo, hi, gamma, median_ranks, "
     "median_lo, median_hi, median_gamma, cutoff_kinds, cutoffs, edges, out) -> bool: the "
     "whole summary of float32 weights into out (float64: quantiles, near-zero fractions, "
     "histogram, 5 moments, 0), as wcviz.record.stats computes it with numpy; False (out "
     "untouched) when a weight is NaN or inf. counts, signed_cum, mag_cum: scratch."},
    {"lanes", lanes_width, METH_VARARGS,
     "lanes([width]) -> int: the vector width of the scan's sums (8: AVX-512, 4, 1: scalar); "
     "with width, those lanes are used from now on (ValueError where not available). The "
     "sums have the same bits at every width."},
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
#ifdef WIDE_LANES
    if (wide_lanes_supported())
        lanes_in_use = lanes_wide, width_in_use = 8;
#endif
    return PyModule_Create(&module);
}
