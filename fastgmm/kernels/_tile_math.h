/* Tile arithmetic for _cython.pyx that Cython cannot express well: C counterparts of two Numba kernels.
 *
 * 1. fastgmm_static_tile: the log-probabilities of a tile compiled for the exact number of features (as
 *    numba_._log_prob_tile_static). For small D the generic tile (_cython._log_prob_tile) spends its time storing
 *    and reloading its (D, TILE) buffers, one sweep per feature. Compiled for a constant D, the loops over features
 *    unroll, FASTGMM_POINTS points (8 with AVX-512, else 4) travel together in one vector register per feature,
 *    and nothing but the result is stored: at N=1e6, D=8, K=16 (full) the statistics pass was 2.1x slower than
 *    Numba's without this. With 4 points on AVX-512 (half its vectors) one pass at D=8, K=16 from the second
 *    iteration of the overlapping start took 6.7-8.6 ms per 1e5 rows (diag), 6.8-7.7 (spherical) and 10.2-12.7
 *    (full) on one core of an AMD Zen 4, against 5.7-5.8, 5.4-5.6 and 9.2-9.6 with 8.
 *    The vector type is a GCC/Clang extension (no intrinsics: the same source builds for SSE2, AVX2 or NEON). Other
 *    compilers get FASTGMM_STATIC_TILE 0, and _cython.pyx then keeps the generic tile.
 *    Layouts as in _cython.pyx: xt (D, TILE) transposed rows; means (K, D); U full (K, D, D), tied (1, D, D), diag
 *    (K, D), spherical (K,), each the Cholesky factor of a precision; a (K, TILE). Points are taken FASTGMM_POINTS
 *    at a time, so up to FASTGMM_POINTS - 1 columns past n are read and written: xt must be initialised memory (the
 *    caller allocates it zeroed) and a's columns past n are scratch. TILE is a multiple of 8.
 *
 * 2. fastgmm_exp_nonpositive: exp over the pairs of the sparse responsibilities, in a loop the compiler vectorises
 *    (as numba_._exp_nonpositive; libm's scalar exp was the largest cost of the responsibilities), and
 *    fastgmm_responsibilities_dense, the same exp over every pair of a tile.
 *
 * 3. fastgmm_gram_upper: the second moments of full and tied covariances, the blocked Gram product of
 *    numba_._gram_upper, in vectors of the machine's width (see there).
 *
 * 4. fastgmm_add_mahalanobis: |U^T (x - mu)|^2 of a tile for D above the compiled-for-D tile's, with its sums in
 *    registers (see there).
 */
#ifndef FASTGMM_STATIC_TILE_H
#define FASTGMM_STATIC_TILE_H

#include <stdint.h>
#include <string.h>

/* TILE, the covariance codes, the limits of the compiled-for-D tile (MAX_STATIC_TRIANGLE, MAX_STATIC_DIAGONAL) and
 * the constants of the exp: generated from _constants.py by setup.py. */
#include "_kernel_constants.h"

/* Rows of a centred-column buffer of D features: D rounded up to a multiple of 4 (fastgmm.kernels._layouts.gram_rows;
 * _cython.pyx's _gram_rows is this one, and tests/test_kernels.py checks the two agree). */
static inline int fastgmm_gram_rows(int D) {
    return (D + 3) / 4 * 4;
}

#if defined(__GNUC__) || defined(__clang__)
#define FASTGMM_STATIC_TILE 1

/* FASTGMM_POINTS doubles: 8 where the build has AVX-512 (32 vector registers), else 4. aligned(8): the columns of a
 * tile are read at any multiple of FASTGMM_POINTS points; may_alias: they are read from double arrays. A dereference
 * is then one unaligned vector load or store (memcpy into a local went through the stack in two halves, and the
 * store-forwarding stalls made the tile slower than the generic one). */
#if defined(__AVX512F__)
#define FASTGMM_POINTS 8
#else
#define FASTGMM_POINTS 4
#endif
typedef double fastgmm_v4 __attribute__((vector_size(8 * FASTGMM_POINTS), aligned(8), may_alias));

static inline __attribute__((always_inline)) fastgmm_v4 fastgmm_load4(const double* p) {
    return *(const fastgmm_v4*)p;
}

static inline __attribute__((always_inline)) void fastgmm_store4(double* p, fastgmm_v4 v) {
    *(fastgmm_v4*)p = v;
}

/* One component over a tile; cov and D are constants once inlined into the per-D functions below. */
static inline __attribute__((always_inline)) void fastgmm_component_tile(
    const double* __restrict__ xt, int n, const double* __restrict__ mu, const double* __restrict__ u, double c,
    double* __restrict__ a, const int cov, const int D)
{
    const fastgmm_v4 zero = {0.0};
    for (int p = 0; p < n; p += FASTGMM_POINTS) {
        fastgmm_v4 d[FASTGMM_MAX_STATIC_DIAGONAL];
        fastgmm_v4 acc = zero;
#pragma GCC unroll 16
        for (int i = 0; i < D; i++)
            d[i] = fastgmm_load4(xt + i * FASTGMM_TILE + p) - mu[i];
        if (cov == FASTGMM_FULL) {
            /* |U^T d|^2: column j of U against the first j + 1 features, as the Numba tile sums them. */
#pragma GCC unroll 16
            for (int j = 0; j < D; j++) {
                fastgmm_v4 s = zero;
#pragma GCC unroll 16
                for (int i = 0; i <= j; i++)
                    s += u[i * D + j] * d[i];
                acc += s * s;
            }
        } else if (cov == FASTGMM_DIAG) {
#pragma GCC unroll 16
            for (int i = 0; i < D; i++) {
                fastgmm_v4 t = u[i] * d[i];
                acc += t * t;
            }
        } else {
#pragma GCC unroll 16
            for (int i = 0; i < D; i++)
                acc += d[i] * d[i];
            acc *= u[0] * u[0];
        }
        fastgmm_store4(a + p, c - 0.5 * acc);
    }
}

#define FASTGMM_DEFINE_STATIC_TILE(D)                                                                               \
    static void fastgmm_static_tile_##D(const double* xt, int n, int cov, const double* means, const double* U,    \
                                        const double* log_const, int K, double* a) {                                \
        for (int k = 0; k < K; k++) {                                                                               \
            const double* mu = means + (long)k * D;                                                                 \
            double* ak = a + (long)k * FASTGMM_TILE;                                                                \
            if (cov == FASTGMM_FULL)                                                                                \
                fastgmm_component_tile(xt, n, mu, U + (long)k * D * D, log_const[k], ak, FASTGMM_FULL, D);          \
            else if (cov == FASTGMM_TIED)                                                                           \
                fastgmm_component_tile(xt, n, mu, U, log_const[k], ak, FASTGMM_FULL, D);                            \
            else if (cov == FASTGMM_DIAG)                                                                           \
                fastgmm_component_tile(xt, n, mu, U + (long)k * D, log_const[k], ak, FASTGMM_DIAG, D);              \
            else                                                                                                    \
                fastgmm_component_tile(xt, n, mu, U + k, log_const[k], ak, FASTGMM_SPHERICAL, D);                   \
        }                                                                                                           \
    }

FASTGMM_DEFINE_STATIC_TILE(1)
FASTGMM_DEFINE_STATIC_TILE(2)
FASTGMM_DEFINE_STATIC_TILE(3)
FASTGMM_DEFINE_STATIC_TILE(4)
FASTGMM_DEFINE_STATIC_TILE(5)
FASTGMM_DEFINE_STATIC_TILE(6)
FASTGMM_DEFINE_STATIC_TILE(7)
FASTGMM_DEFINE_STATIC_TILE(8)
FASTGMM_DEFINE_STATIC_TILE(9)
FASTGMM_DEFINE_STATIC_TILE(10)
FASTGMM_DEFINE_STATIC_TILE(11)
FASTGMM_DEFINE_STATIC_TILE(12)
FASTGMM_DEFINE_STATIC_TILE(13)
FASTGMM_DEFINE_STATIC_TILE(14)
FASTGMM_DEFINE_STATIC_TILE(15)
FASTGMM_DEFINE_STATIC_TILE(16)

/* Whether the compiled-for-D tile serves this covariance type and D. */
static int fastgmm_has_static_tile(int cov, int D) {
    int limit = cov == FASTGMM_FULL || cov == FASTGMM_TIED ? FASTGMM_MAX_STATIC_TRIANGLE : FASTGMM_MAX_STATIC_DIAGONAL;
    return D >= 1 && D <= limit;
}

/* a[k, p] = log_const_k - |U_k^T (x_p - mu_k)|^2 / 2 for p < n (and scratch up to n rounded up to FASTGMM_POINTS);
 * the caller checked fastgmm_has_static_tile. */
static void fastgmm_static_tile(const double* xt, int n, int cov, const double* means, const double* U,
                                const double* log_const, int K, int D, double* a) {
    switch (D) {
    case 1: fastgmm_static_tile_1(xt, n, cov, means, U, log_const, K, a); break;
    case 2: fastgmm_static_tile_2(xt, n, cov, means, U, log_const, K, a); break;
    case 3: fastgmm_static_tile_3(xt, n, cov, means, U, log_const, K, a); break;
    case 4: fastgmm_static_tile_4(xt, n, cov, means, U, log_const, K, a); break;
    case 5: fastgmm_static_tile_5(xt, n, cov, means, U, log_const, K, a); break;
    case 6: fastgmm_static_tile_6(xt, n, cov, means, U, log_const, K, a); break;
    case 7: fastgmm_static_tile_7(xt, n, cov, means, U, log_const, K, a); break;
    case 8: fastgmm_static_tile_8(xt, n, cov, means, U, log_const, K, a); break;
    case 9: fastgmm_static_tile_9(xt, n, cov, means, U, log_const, K, a); break;
    case 10: fastgmm_static_tile_10(xt, n, cov, means, U, log_const, K, a); break;
    case 11: fastgmm_static_tile_11(xt, n, cov, means, U, log_const, K, a); break;
    case 12: fastgmm_static_tile_12(xt, n, cov, means, U, log_const, K, a); break;
    case 13: fastgmm_static_tile_13(xt, n, cov, means, U, log_const, K, a); break;
    case 14: fastgmm_static_tile_14(xt, n, cov, means, U, log_const, K, a); break;
    case 15: fastgmm_static_tile_15(xt, n, cov, means, U, log_const, K, a); break;
    default: fastgmm_static_tile_16(xt, n, cov, means, U, log_const, K, a); break;
    }
}

#else
#define FASTGMM_STATIC_TILE 0
static int fastgmm_has_static_tile(int cov, int D) { (void)cov; (void)D; return 0; }
static void fastgmm_static_tile(const double* xt, int n, int cov, const double* means, const double* U,
                                const double* log_const, int K, int D, double* a) {
    (void)xt; (void)n; (void)cov; (void)means; (void)U; (void)log_const; (void)K; (void)D; (void)a;
}
#endif

/* out[p] = exp(x[p]) for x[p] <= 0 or -inf, the method and constants of numba_._exp_nonpositive: exp(r) 2^m with
 * m = round(x / ln 2), |r| <= ln(2)/2, exp(r) by its degree-13 Taylor polynomial (relative error < 1e-17), 2^m from
 * the low mantissa bits of x / ln 2 + 1.5 * 2^52; 0 below -708, exactly what the responsibilities need (their
 * largest term is 1). The memcpy bit casts are the portable spelling: compilers turn them into register moves.
 * setup.py compiles with -fassociative-math (for the reductions); here it would fold (v log2e + shifter) - shifter
 * into v log2e and lose the rounding to an integer that the method rests on (seen: wrong responsibilities), so it is
 * switched off for this function. */
#if defined(__clang__)
#define FASTGMM_NO_REASSOCIATION
#elif defined(__GNUC__)
#define FASTGMM_NO_REASSOCIATION __attribute__((optimize("no-associative-math")))
#else
#define FASTGMM_NO_REASSOCIATION
#endif

/* exp(v) for exp_min <= v <= 0. */
FASTGMM_NO_REASSOCIATION
static inline __attribute__((always_inline)) double fastgmm_exp_clamped(double v) {
#if defined(__clang__)
#pragma clang fp reassociate(off)
#endif
    const double log2e = FASTGMM_LOG2E, ln2_hi = FASTGMM_LN2_HI, ln2_lo = FASTGMM_LN2_LO;
    const double shifter = FASTGMM_EXP_SHIFTER;
    double t = v * log2e + shifter;
    double m = t - shifter;
    double r = (v - m * ln2_hi) - m * ln2_lo;
    /* Estrin's scheme, as numba_._exp_parts: four dependent steps instead of thirteen. */
    double r2 = r * r, r4 = r2 * r2;
    double q0 = (1.0 + r) + r2 * (0.5 + r * (1.0 / 6.0));
    double q1 = (1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0 + r * (1.0 / 5040.0));
    double q2 = (1.0 / 40320.0 + r * (1.0 / 362880.0)) + r2 * (1.0 / 3628800.0 + r * (1.0 / 39916800.0));
    double q3 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
    double q = (q0 + r4 * q1) + (r4 * r4) * (q2 + r4 * q3);
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023u) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return q * scale;
}

FASTGMM_NO_REASSOCIATION
static void fastgmm_exp_nonpositive(const double* __restrict__ x, double* __restrict__ out, int n) {
    const double exp_min = FASTGMM_EXP_MIN;
    for (int p = 0; p < n; p++) {
        const double e = fastgmm_exp_clamped(x[p] > exp_min ? x[p] : exp_min);
        out[p] = x[p] > exp_min ? e : 0.0;
    }
}

/* The dense responsibilities of a tile (numba_._responsibilities_dense, which says why in one sweep):
 * r[k n + p] = exp(a[k, p] - top[p]) where a[k, p] > floor[p], else 0, and total[p] their sum over k; a is (K,
 * FASTGMM_TILE). A live difference lies above LOG_NEGLIGIBLE, far above exp_min: no clamp. */
FASTGMM_NO_REASSOCIATION
static void fastgmm_responsibilities_dense(const double* __restrict__ a, int n, int K, const double* __restrict__ top,
                                           const double* __restrict__ floor_, double* __restrict__ r,
                                           double* __restrict__ total) {
    for (int p = 0; p < n; p++)
        total[p] = 0.0;
    for (int k = 0; k < K; k++) {
        const double* ak = a + (long)k * FASTGMM_TILE;
        double* rk = r + (long)k * n;
        for (int p = 0; p < n; p++) {
            const int live = ak[p] > floor_[p];
            const double e = fastgmm_exp_clamped(live ? ak[p] - top[p] : FASTGMM_EXP_MIN);
            rk[p] = live ? e : 0.0;
            total[p] += rk[p];
        }
    }
}

/* The vectors of fastgmm_gram_upper (the Gram product of the second moments) and of the register sums below.
 *
 * GCC auto-vectorised the plain loop (_cython.pyx's, once) at half of LLVM's rate on the same machine (AMD Zen 4,
 * D = 8: 12.6 against 27 GFMA/s; D = 32: 11.4 against 24.8), for two reasons seen in its assembly: eight sums are too
 * few to cover the FMA latency with both FMA units, and it folds each of the four column loads into both FMAs that
 * use it (a memory operand per FMA: 20 loads per 16 FMAs, where LLVM loads 12). So: vectors of the machine's width
 * (the build's -march: 8 doubles with AVX-512, 4 with AVX, else 2), two vectors of columns per step with their own
 * sums where there are 32 vector registers (AVX-512), and an empty asm statement that makes each loaded vector a
 * register value, which GCC then cannot fold into the FMAs. Measured after it: 27 and 23 GFMA/s. */
#if defined(__GNUC__) || defined(__clang__)
#if defined(__AVX512F__)
#define FASTGMM_VW 8
#define FASTGMM_GRAM_STEPS 2
#elif defined(__AVX__)
#define FASTGMM_VW 4
#define FASTGMM_GRAM_STEPS 1
#else
#define FASTGMM_VW 2
#define FASTGMM_GRAM_STEPS 1
#endif
typedef double fastgmm_vw __attribute__((vector_size(8 * FASTGMM_VW), aligned(8), may_alias));
#if defined(__x86_64__) || defined(__i386__)
#define FASTGMM_IN_REGISTER(v) __asm__("" : "+v"(v))
#elif defined(__aarch64__)
#define FASTGMM_IN_REGISTER(v) __asm__("" : "+w"(v))
#else
#define FASTGMM_IN_REGISTER(v) ((void)0)
#endif

static inline __attribute__((always_inline)) double fastgmm_hsum(fastgmm_vw v) {
    double s = 0.0;
    for (int l = 0; l < FASTGMM_VW; l++)
        s += v[l];
    return s;
}

/* Rows i0 to i0 + 3 of the diagonal 4 x 4 block: the columns centred (e = d - shift) and weighted (rd = rw e, stored
 * for the 2 x 4 blocks right of it), their sums added to s1 (rows below D) and the 10 products sum_q rd_i e_j,
 * i <= j, into gram; one sweep, the sums in registers. */
static inline __attribute__((always_inline)) void fastgmm_gram_diagonal(
    const double* __restrict__ d, const double* __restrict__ shift, const double* __restrict__ rw, int m, int D,
    int i0, double* __restrict__ rd, double* __restrict__ gram, double* __restrict__ s1)
{
    const int rows = fastgmm_gram_rows(D);
    const double* c0 = d + (long)i0 * FASTGMM_TILE;
    double* w0 = rd + (long)i0 * FASTGMM_TILE;
    const double z0 = shift[i0], z1 = shift[i0 + 1], z2 = shift[i0 + 2], z3 = shift[i0 + 3];
    fastgmm_vw t[10], f[4];
    for (int e = 0; e < 10; e++)
        t[e] = (fastgmm_vw){0};
    for (int e = 0; e < 4; e++)
        f[e] = (fastgmm_vw){0};
    int q = 0;
    for (; q + FASTGMM_VW <= m; q += FASTGMM_VW) {
        const fastgmm_vw c = *(const fastgmm_vw*)(rw + q);
        fastgmm_vw b0 = *(const fastgmm_vw*)(c0 + q) - z0;
        fastgmm_vw b1 = *(const fastgmm_vw*)(c0 + FASTGMM_TILE + q) - z1;
        fastgmm_vw b2 = *(const fastgmm_vw*)(c0 + 2 * FASTGMM_TILE + q) - z2;
        fastgmm_vw b3 = *(const fastgmm_vw*)(c0 + 3 * FASTGMM_TILE + q) - z3;
        FASTGMM_IN_REGISTER(b0);
        FASTGMM_IN_REGISTER(b1);
        FASTGMM_IN_REGISTER(b2);
        FASTGMM_IN_REGISTER(b3);
        const fastgmm_vw a0 = c * b0, a1 = c * b1, a2 = c * b2, a3 = c * b3;
        *(fastgmm_vw*)(w0 + q) = a0;
        *(fastgmm_vw*)(w0 + FASTGMM_TILE + q) = a1;
        *(fastgmm_vw*)(w0 + 2 * FASTGMM_TILE + q) = a2;
        *(fastgmm_vw*)(w0 + 3 * FASTGMM_TILE + q) = a3;
        f[0] += a0;
        f[1] += a1;
        f[2] += a2;
        f[3] += a3;
        t[0] += a0 * b0;
        t[1] += a0 * b1;
        t[2] += a0 * b2;
        t[3] += a0 * b3;
        t[4] += a1 * b1;
        t[5] += a1 * b2;
        t[6] += a1 * b3;
        t[7] += a2 * b2;
        t[8] += a2 * b3;
        t[9] += a3 * b3;
    }
    double ts[10], fs[4];
    for (int e = 0; e < 10; e++)
        ts[e] = fastgmm_hsum(t[e]);
    for (int e = 0; e < 4; e++)
        fs[e] = fastgmm_hsum(f[e]);
    for (; q < m; q++) {
        const double c = rw[q];
        const double b0 = c0[q] - z0, b1 = c0[FASTGMM_TILE + q] - z1;
        const double b2 = c0[2 * FASTGMM_TILE + q] - z2, b3 = c0[3 * FASTGMM_TILE + q] - z3;
        const double a0 = c * b0, a1 = c * b1, a2 = c * b2, a3 = c * b3;
        w0[q] = a0;
        w0[FASTGMM_TILE + q] = a1;
        w0[2 * FASTGMM_TILE + q] = a2;
        w0[3 * FASTGMM_TILE + q] = a3;
        fs[0] += a0;
        fs[1] += a1;
        fs[2] += a2;
        fs[3] += a3;
        ts[0] += a0 * b0;
        ts[1] += a0 * b1;
        ts[2] += a0 * b2;
        ts[3] += a0 * b3;
        ts[4] += a1 * b1;
        ts[5] += a1 * b2;
        ts[6] += a1 * b3;
        ts[7] += a2 * b2;
        ts[8] += a2 * b3;
        ts[9] += a3 * b3;
    }
    double* g = gram + (long)i0 * rows + i0;
    g[0] = ts[0];
    g[1] = ts[1];
    g[2] = ts[2];
    g[3] = ts[3];
    g[rows + 1] = ts[4];
    g[rows + 2] = ts[5];
    g[rows + 3] = ts[6];
    g[2 * rows + 2] = ts[7];
    g[2 * rows + 3] = ts[8];
    g[3 * rows + 3] = ts[9];
    for (int e = 0; e < 4 && i0 + e < D; e++)
        s1[i0 + e] += fs[e];
}

/* With e = d - shift and rd = rw e: gram[i, j] = sum_q rd[i, q] e[j, q] over the first m columns for i <= j (entries
 * below the diagonal left as they were) and s1[i] += sum_q rd[i, q] for i < D; numba_._gram_upper's blocks (which
 * says why the columns are centred here, and why the diagonal blocks weight the rows): per group of four rows the
 * diagonal sweep, then 2 x 4 blocks right of it. d and rd have gram_rows(D) rows of FASTGMM_TILE and shift as many
 * entries, all zero after row D; rd is scratch; gram has gram_rows(D) columns. */
static void fastgmm_gram_upper(const double* __restrict__ d, const double* __restrict__ shift,
                               const double* __restrict__ rw, int m, int D, double* __restrict__ rd,
                               double* __restrict__ gram, double* __restrict__ s1) {
    const int rows = fastgmm_gram_rows(D);
    const int step = FASTGMM_VW * FASTGMM_GRAM_STEPS;
    for (int i0 = 0; i0 < D; i0 += 4) {
        fastgmm_gram_diagonal(d, shift, rw, m, D, i0, rd, gram, s1);
        for (int i = i0; i < i0 + 4; i += 2) {
            const double* r0 = rd + (long)i * FASTGMM_TILE;
            const double* r1 = r0 + FASTGMM_TILE;
            for (int j = i0 + 4; j < D; j += 4) {
                const double* c0 = d + (long)j * FASTGMM_TILE;
                const double* c1 = c0 + FASTGMM_TILE;
                const double* c2 = c1 + FASTGMM_TILE;
                const double* c3 = c2 + FASTGMM_TILE;
                const double z0 = shift[j], z1 = shift[j + 1], z2 = shift[j + 2], z3 = shift[j + 3];
                fastgmm_vw t[FASTGMM_GRAM_STEPS][8];
                for (int h = 0; h < FASTGMM_GRAM_STEPS; h++)
                    for (int e = 0; e < 8; e++)
                        t[h][e] = (fastgmm_vw){0};
                int q = 0;
                for (; q + step <= m; q += step) {
                    for (int h = 0; h < FASTGMM_GRAM_STEPS; h++) {
                        const int o = q + h * FASTGMM_VW;
                        fastgmm_vw a0 = *(const fastgmm_vw*)(r0 + o), a1 = *(const fastgmm_vw*)(r1 + o);
                        fastgmm_vw b0 = *(const fastgmm_vw*)(c0 + o) - z0, b1 = *(const fastgmm_vw*)(c1 + o) - z1;
                        fastgmm_vw b2 = *(const fastgmm_vw*)(c2 + o) - z2, b3 = *(const fastgmm_vw*)(c3 + o) - z3;
                        FASTGMM_IN_REGISTER(a0);
                        FASTGMM_IN_REGISTER(a1);
                        FASTGMM_IN_REGISTER(b0);
                        FASTGMM_IN_REGISTER(b1);
                        FASTGMM_IN_REGISTER(b2);
                        FASTGMM_IN_REGISTER(b3);
                        t[h][0] += a0 * b0;
                        t[h][1] += a0 * b1;
                        t[h][2] += a0 * b2;
                        t[h][3] += a0 * b3;
                        t[h][4] += a1 * b0;
                        t[h][5] += a1 * b1;
                        t[h][6] += a1 * b2;
                        t[h][7] += a1 * b3;
                    }
                }
                double s[8];
                for (int e = 0; e < 8; e++) {
                    fastgmm_vw v = t[0][e];
                    for (int h = 1; h < FASTGMM_GRAM_STEPS; h++)
                        v += t[h][e];
                    s[e] = fastgmm_hsum(v);
                }
                for (; q < m; q++) {
                    const double a0 = r0[q], a1 = r1[q];
                    const double b0 = c0[q] - z0, b1 = c1[q] - z1, b2 = c2[q] - z2, b3 = c3[q] - z3;
                    s[0] += a0 * b0;
                    s[1] += a0 * b1;
                    s[2] += a0 * b2;
                    s[3] += a0 * b3;
                    s[4] += a1 * b0;
                    s[5] += a1 * b1;
                    s[6] += a1 * b2;
                    s[7] += a1 * b3;
                }
                for (int e = 0; e < 4; e++) {
                    gram[(long)i * rows + j + e] = s[e];
                    gram[(long)(i + 1) * rows + j + e] = s[4 + e];
                }
            }
        }
    }
}

/* Rows [i0, i1) of the upper triangle of an 8-row Gram of centred columns (columns i0 to 7 of each), the sums of
 * the weighted centred rows i0 to i1 - 1 into s1, and, if total is not NULL, the sum of the weights into *total; all
 * in registers over the whole sweep. i0 and i1 are constants once inlined; the loops over them must be unrolled
 * before GCC decides where the arrays of sums live: without the pragmas it kept them on the stack, a load and a
 * store per FMA (a C harness, AMD Zen 4, a full tile: 5.2 ns per column and component; 1.7 ns with them). */
#define FASTGMM_PRAGMA(x) _Pragma(#x)
#define FASTGMM_UNROLL(n) FASTGMM_PRAGMA(GCC unroll n)
static inline __attribute__((always_inline)) void fastgmm_moments_eight_rows(
    const double* __restrict__ d, const double* __restrict__ shift, const double* __restrict__ rw, int m,
    const int i0, const int i1, double* __restrict__ gram, double* __restrict__ s1, double* __restrict__ total)
{
    fastgmm_vw g[4][8], f[4], t = (fastgmm_vw){0};
    FASTGMM_UNROLL(4) for (int i = 0; i < i1 - i0; i++) {
        f[i] = (fastgmm_vw){0};
        FASTGMM_UNROLL(8) for (int j = 0; j < 8; j++)
            g[i][j] = (fastgmm_vw){0};
    }
    int q = 0;
    for (; q + FASTGMM_VW <= m; q += FASTGMM_VW) {
        const fastgmm_vw c = *(const fastgmm_vw*)(rw + q);
        fastgmm_vw e[8];
        FASTGMM_UNROLL(8) for (int j = i0; j < 8; j++) {
            e[j] = *(const fastgmm_vw*)(d + (long)j * FASTGMM_TILE + q) - shift[j];
            FASTGMM_IN_REGISTER(e[j]);
        }
        if (total)
            t += c;
        FASTGMM_UNROLL(4) for (int i = i0; i < i1; i++) {
            const fastgmm_vw u = c * e[i];
            f[i - i0] += u;
            FASTGMM_UNROLL(8) for (int j = i; j < 8; j++)
                g[i - i0][j] += u * e[j];
        }
    }
    double ts = fastgmm_hsum(t), fs[4], gs[4][8];
    FASTGMM_UNROLL(4) for (int i = i0; i < i1; i++) {
        fs[i - i0] = fastgmm_hsum(f[i - i0]);
        FASTGMM_UNROLL(8) for (int j = i; j < 8; j++)
            gs[i - i0][j] = fastgmm_hsum(g[i - i0][j]);
    }
    for (; q < m; q++) {
        const double c = rw[q];
        ts += c;
        for (int i = i0; i < i1; i++) {
            const double ei = d[(long)i * FASTGMM_TILE + q] - shift[i], u = c * ei;
            fs[i - i0] += u;
            for (int j = i; j < 8; j++)
                gs[i - i0][j] += u * (d[(long)j * FASTGMM_TILE + q] - shift[j]);
        }
    }
    if (total)
        *total = ts;
    for (int i = i0; i < i1; i++) {
        s1[i - i0] = fs[i - i0];
        for (int j = i; j < 8; j++)
            gram[i * 8 + j] = gs[i - i0][j];
    }
}

/* Full/tied moments of m columns d (8, FASTGMM_TILE; fastgmm_gram_rows(D) == 8, i.e. 5 <= D <= 8, rows zero after
 * D) about shift (8 entries, zero after D) with weights rw: sums[0] = sum rw, sums[1 + i] = sum rw (d_i - shift_i),
 * gram (8, 8) the upper triangle of sum rw (d - shift)(d - shift)^T. The 36 products in three sweeps (rows 0-1
 * against columns 0-7, 2-3 against 2-7, 4-7 against 4-7), each column centred as it is loaded: fastgmm_gram_upper's
 * 4 x 4 blocks make 48 FMAs per column for these 36 and need the weighted columns stored by a sweep of their own. */
static void fastgmm_moments_eight(const double* __restrict__ d, const double* __restrict__ shift,
                                  const double* __restrict__ rw, int m, double* __restrict__ sums,
                                  double* __restrict__ gram) {
    fastgmm_moments_eight_rows(d, shift, rw, m, 0, 2, gram, sums + 1, sums);
    fastgmm_moments_eight_rows(d, shift, rw, m, 2, 4, gram, sums + 3, NULL);
    fastgmm_moments_eight_rows(d, shift, rw, m, 4, 8, gram, sums + 5, NULL);
}

/* ak[p] += |U^T (x_p - mu)|^2 for p < n, through the upper triangle of U (D, D; entries below the diagonal are not
 * read), xt (D or more rows of FASTGMM_TILE) the tile; columns of xt and ak up to n rounded up to a multiple of
 * FASTGMM_VW are read and written (scratch past n; TILE is a multiple of every vector width).
 *
 * Four columns of U^T (x - mu) at a time for FASTGMM_MAHALANOBIS_VECTORS vectors of points, the sums in registers
 * from the first row of the triangle to the last: per row, one load per vector of points, centred as it is loaded
 * (as numba_._add_mahalanobis, which says why), and one broadcast per column for 4 x FASTGMM_MAHALANOBIS_VECTORS
 * FMAs, and nothing stored until the four columns are done. The loop over points with the sums in memory
 * (numba_._add_mahalanobis, which LLVM runs at 0.6 of the FMA rate) ran slower still under GCC, which loaded each
 * row once per FMA. */
#if defined(__AVX512F__)
#define FASTGMM_MAHALANOBIS_VECTORS 4
#else
#define FASTGMM_MAHALANOBIS_VECTORS 2
#endif

static inline __attribute__((always_inline)) void fastgmm_mahalanobis_points(
    const double* __restrict__ xt, const double* __restrict__ mu, const double* __restrict__ U, int D, int j0,
    int columns, int p, double* __restrict__ ak, const int vectors)
{
    fastgmm_vw acc[FASTGMM_MAHALANOBIS_VECTORS][4];
    for (int v = 0; v < vectors; v++)
        for (int c = 0; c < 4; c++)
            acc[v][c] = (fastgmm_vw){0};
    const int last = j0 + columns;
    for (int i = 0; i < last; i++) {
        fastgmm_vw x[FASTGMM_MAHALANOBIS_VECTORS];
        for (int v = 0; v < vectors; v++) {
            x[v] = *(const fastgmm_vw*)(xt + (long)i * FASTGMM_TILE + p + v * FASTGMM_VW) - mu[i];
            FASTGMM_IN_REGISTER(x[v]);
        }
        /* Row i meets column j0 + c where i <= j0 + c: every column above the diagonal block. */
        const int first = i > j0 ? i - j0 : 0;
        const double* u = U + (long)i * D + j0;
        for (int c = 0; c < 4; c++) {
            if (c < first || c >= columns)
                continue;
            const double w = u[c];
            for (int v = 0; v < vectors; v++)
                acc[v][c] += w * x[v];
        }
    }
    for (int v = 0; v < vectors; v++) {
        fastgmm_vw sum = (acc[v][0] * acc[v][0] + acc[v][1] * acc[v][1])
                         + (acc[v][2] * acc[v][2] + acc[v][3] * acc[v][3]);
        double* out = ak + p + v * FASTGMM_VW;
        *(fastgmm_vw*)out = *(const fastgmm_vw*)out + sum;
    }
}

static void fastgmm_add_mahalanobis(const double* __restrict__ xt, const double* __restrict__ mu, int n,
                                    const double* __restrict__ U, int D, double* __restrict__ ak) {
    const int wide = FASTGMM_VW * FASTGMM_MAHALANOBIS_VECTORS;
    for (int j0 = 0; j0 < D; j0 += 4) {
        const int columns = D - j0 < 4 ? D - j0 : 4;
        int p = 0;
        for (; p + wide <= n; p += wide)
            fastgmm_mahalanobis_points(xt, mu, U, D, j0, columns, p, ak, FASTGMM_MAHALANOBIS_VECTORS);
        for (; p < n; p += FASTGMM_VW)
            fastgmm_mahalanobis_points(xt, mu, U, D, j0, columns, p, ak, 1);
    }
}
#else
static void fastgmm_gram_upper(const double* d, const double* shift, const double* rw, int m, int D, double* rd,
                               double* gram, double* s1) {
    const int rows = fastgmm_gram_rows(D);
    for (int i = 0; i < D; i++) {
        double f = 0.0;
        for (int q = 0; q < m; q++) {
            const double u = rw[q] * (d[(long)i * FASTGMM_TILE + q] - shift[i]);
            rd[(long)i * FASTGMM_TILE + q] = u;
            f += u;
        }
        s1[i] += f;
    }
    for (int i = 0; i < D; i++)
        for (int j = i; j < D; j++) {
            double s = 0.0;
            for (int q = 0; q < m; q++)
                s += rd[(long)i * FASTGMM_TILE + q] * (d[(long)j * FASTGMM_TILE + q] - shift[j]);
            gram[(long)i * rows + j] = s;
        }
}
static void fastgmm_moments_eight(const double* d, const double* shift, const double* rw, int m, double* sums,
                                  double* gram) {
    for (int i = 0; i < 9; i++)
        sums[i] = 0.0;
    for (int i = 0; i < 8; i++)
        for (int j = i; j < 8; j++)
            gram[i * 8 + j] = 0.0;
    for (int q = 0; q < m; q++) {
        sums[0] += rw[q];
        for (int i = 0; i < 8; i++) {
            const double u = rw[q] * (d[(long)i * FASTGMM_TILE + q] - shift[i]);
            sums[1 + i] += u;
            for (int j = i; j < 8; j++)
                gram[i * 8 + j] += u * (d[(long)j * FASTGMM_TILE + q] - shift[j]);
        }
    }
}
static void fastgmm_add_mahalanobis(const double* xt, const double* mu, int n, const double* U, int D, double* ak) {
    for (int p = 0; p < n; p++) {
        double acc = 0.0;
        for (int j = 0; j < D; j++) {
            double y = 0.0;
            for (int i = 0; i <= j; i++)
                y += U[(long)i * D + j] * (xt[(long)i * FASTGMM_TILE + p] - mu[i]);
            acc += y * y;
        }
        ak[p] += acc;
    }
}
#endif

#endif
