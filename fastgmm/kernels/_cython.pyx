# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython kernels: the fallback compiled backend, with the Numba backend's algorithm (fastgmm/kernels/numba_.py)
and interface, built at install time with OpenMP where the compiler has it.

Rows are cut into blocks whose boundaries depend on N only; a thread takes whole blocks (``prange`` over blocks,
buffers private to the thread, as scikit-learn's ``_k_means_lloyd.pyx``) and writes each block's own partial
statistics, which the caller sums in block order: the result is bit-identical whatever the thread count. Inside a
block, rows go through in tiles of ``TILE`` rows held transposed, (D, TILE) in float64, so that the inner loops run
over the points of a tile (contiguous, independent: the C compiler vectorises them). As in the Numba kernel, a
component whose share is below 2^-100 of the point's best one counts as 0, and a tile takes the sparse path (exp
over the pairs that matter alone, staged by component) or the dense one (every pair, moments from the tile's
columns) by the fraction of pairs that count. Four pieces are C in ``_tile_math.h``: the log-probabilities of a tile
compiled for the exact D when D is small (Cython has no compile-time integers), an exp that vectorises, and, in
vectors of the build's width, the triangular product of larger D and the Gram product of the second moments (GCC
vectorised Cython's loops for these at half of LLVM's rate).
"""

from cython.parallel cimport parallel, prange
from libc.math cimport log, INFINITY, NAN
from libc.stdlib cimport calloc, free, malloc

cdef extern from "_tile_math.h" nogil:
    int FASTGMM_STATIC_TILE
    int fastgmm_has_static_tile(int cov, int D)
    void fastgmm_static_tile(
        const double* xt, int n, int cov, const double* means, const double* U, const double* log_const, int K, int D,
        double* a)
    void fastgmm_exp_nonpositive(const double* x, double* out, int n)
    void fastgmm_responsibilities_dense(const double* a, int n, int K, const double* top, const double* floor_,
                                        double* r, double* total)
    int fastgmm_gram_rows(int D)
    void fastgmm_gram_upper(const double* d, const double* shift, const double* rw, int m, int D, double* rd,
                            double* gram, double* s1)
    void fastgmm_add_mahalanobis(const double* xt, const double* mu, int n, const double* U, int D, double* ak)
    void fastgmm_moments_eight(const double* d, const double* shift, const double* rw, int m, double* sums,
                               double* gram)

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fastgmm_openmp(void) { return 1; }
    static int fastgmm_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int fastgmm_openmp(void) { return 0; }
    static int fastgmm_max_threads(void) { return 1; }
    #endif
    """
    int fastgmm_openmp() nogil
    int fastgmm_max_threads() nogil

ctypedef fused floating:
    float
    double

# The constants shared with the Numba kernels, generated from _constants.py by setup.py (see there for what each is).
cdef extern from "_kernel_constants.h":
    enum:
        TILE "FASTGMM_TILE"
        LOG_CHUNK "FASTGMM_LOG_CHUNK"
        FULL "FASTGMM_FULL"
        TIED "FASTGMM_TIED"
        DIAG "FASTGMM_DIAG"
        SPHERICAL "FASTGMM_SPHERICAL"
        MAX_SMALL_FEATURES "FASTGMM_MAX_SMALL_FEATURES"
        MAX_STATIC_TRIANGLE "FASTGMM_MAX_STATIC_TRIANGLE"
        MAX_STATIC_DIAGONAL "FASTGMM_MAX_STATIC_DIAGONAL"
    const double LOG_NEGLIGIBLE "FASTGMM_LOG_NEGLIGIBLE"
    const double LOG2E "FASTGMM_LOG2E"
    const double LN2_HI "FASTGMM_LN2_HI"
    const double LN2_LO "FASTGMM_LN2_LO"
    const double EXP_SHIFTER "FASTGMM_EXP_SHIFTER"
    const double EXP_MIN "FASTGMM_EXP_MIN"

OPENMP = bool(fastgmm_openmp())
STATIC_TILE = bool(FASTGMM_STATIC_TILE)
# The constants as this build compiled them, for tests/test_kernel_constants.py.
CONSTANTS = {
    "TILE": TILE, "LOG_CHUNK": LOG_CHUNK, "FULL": FULL, "TIED": TIED, "DIAG": DIAG, "SPHERICAL": SPHERICAL,
    "MAX_SMALL_FEATURES": MAX_SMALL_FEATURES, "MAX_STATIC_TRIANGLE": MAX_STATIC_TRIANGLE,
    "MAX_STATIC_DIAGONAL": MAX_STATIC_DIAGONAL, "LOG_NEGLIGIBLE": LOG_NEGLIGIBLE, "LOG2E": LOG2E, "LN2_HI": LN2_HI,
    "LN2_LO": LN2_LO, "EXP_SHIFTER": EXP_SHIFTER, "EXP_MIN": EXP_MIN,
}


def max_threads():
    """OpenMP's default thread count (1 without OpenMP)."""
    return fastgmm_max_threads()


def exp_nonpositive(const double[::1] x, double[::1] out):
    """``out = exp(x)`` by the kernels' vectorised exp (x <= 0 or -inf; 0 below -708), for the tests."""
    if out.shape[0] != x.shape[0]:
        raise ValueError("x and out must have the same length")
    if x.shape[0]:
        fastgmm_exp_nonpositive(&x[0], &out[0], <int> x.shape[0])


# ----------------------------------------------------------------------------------------------- tile arithmetic


cdef inline void _load_tile(const floating[:, :] X, Py_ssize_t start, int n, double* xt) noexcept nogil:
    cdef int p, i
    cdef int D = X.shape[1]
    for p in range(n):
        for i in range(D):
            xt[i * TILE + p] = X[start + p, i]


cdef inline int _gram_rows(int D) noexcept nogil:
    # fastgmm.kernels._layouts.gram_rows, written once for the extension in _tile_math.h
    return fastgmm_gram_rows(D)


cdef extern from *:
    # Pointers that the C compiler may assume distinct, so that it vectorises without run-time overlap checks.
    ctypedef double* rdouble "double * __restrict__"
    ctypedef const double* crdouble "const double * __restrict__"


# The kernels' arguments travel in groups, as the Numba kernels' tuples (numba_.py): the components in the kernel
# layouts; one block's partial statistics; a thread's buffers for the tiles of the E-step.
cdef struct Model:
    int cov, K, D
    const double* means  # (K, D)
    const double* U  # full (K, D, D), tied (1, D, D), diag (K, D), spherical (K,)
    const double* log_const  # (K,)


cdef struct Partials:
    double* nk  # (K,)
    double* s1  # (K, D)
    double* s2  # see _moments_dense


cdef struct Tile:
    # The tile: transposed rows (gram_rows(D), TILE, allocated zeroed: see _log_prob_tile and _moments_dense), a
    # row of scratch and the weighted log-probabilities (K, TILE).
    double* xt
    double* y
    double* a
    # Per point: the weights, the largest log-probability, its component, the floor, the live count, the sum of
    # the unnormalised responsibilities.
    double* wt
    double* top
    long* best
    double* floor_
    long* n_kept
    double* total
    # Per (point, component) pair, K TILE of each: rows, components, exponents and responsibilities.
    long* pair_p
    long* pair_k
    double* pair_v
    double* pair_r
    # The staging of _stage_tile: the pairs grouped by component (order, order_w, bounds), the stages (stages,
    # gram_rows(D), TILE) and their weights and fill counts, and _moments_dense's scratch.
    long* order
    double* order_w
    long* bounds
    double* stage_d
    double* stage_w
    long* count
    double* rd
    double* gram
    double* shift  # (K, gram_rows(D)): the means, zero after column D (_moments_dense); set by the caller
    bint direct  # one shared stage, reduced at once (``staged_components``)
    void* memory  # the one allocation the buffers above are carved from


cdef Tile _tile_buffers(int K, int D, int stages) noexcept nogil:
    """A thread's E-step buffers, carved out of one zeroed allocation (doubles first, then longs: every buffer stays
    aligned); ``memory`` is NULL when it fails. Returned by value: a variable assigned in a parallel block is
    private to the thread (taking its address is not an assignment for Cython)."""
    cdef Tile tile
    cdef Tile* t = &tile
    cdef int rows = _gram_rows(D)
    cdef size_t doubles = (
        2 * <size_t> rows * TILE + TILE + <size_t> K * TILE + 4 * TILE + 3 * <size_t> K * TILE
        + <size_t> stages * rows * TILE + <size_t> stages * TILE + <size_t> rows * rows + <size_t> K * rows
    )
    cdef size_t longs = 2 * TILE + 3 * <size_t> K * TILE + (K + 1) + K
    cdef double* d
    cdef long* l
    t.memory = calloc(doubles * sizeof(double) + longs * sizeof(long), 1)
    if t.memory == NULL:
        return tile
    d = <double*> t.memory
    t.xt = d; d += rows * TILE
    t.rd = d; d += rows * TILE
    t.y = d; d += TILE
    t.a = d; d += K * TILE
    t.wt = d; d += TILE
    t.top = d; d += TILE
    t.floor_ = d; d += TILE
    t.total = d; d += TILE
    t.pair_v = d; d += K * TILE
    t.pair_r = d; d += K * TILE
    t.order_w = d; d += K * TILE
    t.stage_d = d; d += stages * rows * TILE
    t.stage_w = d; d += stages * TILE
    t.gram = d; d += rows * rows
    t.shift = d; d += K * rows
    l = <long*> d
    t.best = l; l += TILE
    t.n_kept = l; l += TILE
    t.pair_p = l; l += K * TILE
    t.pair_k = l; l += K * TILE
    t.order = l; l += K * TILE
    t.bounds = l; l += K + 1
    t.count = l
    t.direct = stages < K
    return tile


cdef Tile _log_prob_buffers(int K, int D) noexcept nogil:
    """The buffers ``_log_prob_tile`` uses (zeroed: the C tiles read columns past n, see there), each NULL when its
    allocation fails; by value, as ``_tile_buffers``."""
    cdef Tile tile
    tile.xt = <double*> calloc(D * TILE, sizeof(double))
    tile.y = <double*> malloc(sizeof(double) * TILE)
    tile.a = <double*> calloc(K * TILE, sizeof(double))
    return tile


cdef void _log_prob_tile(const Model* model, Tile* tile, int n) noexcept nogil:
    """a[k, p] = log_const_k - |U_k^T (x_p - mu_k)|^2 / 2; U laid out as full (K, D, D), tied (1, D, D),
    diag (K, D), spherical (K,). Small D goes to the compiled-for-D tile of ``_tile_math.h``, larger D's triangular
    product to its ``fastgmm_add_mahalanobis``; both read a few columns of ``xt`` past n (so the tile's buffers are
    allocated zeroed) and write scratch into ``a`` there. The rows are centred as they are loaded (as
    ``numba_._add_mahalanobis``, which says why)."""
    cdef int cov = model.cov, K = model.K, D = model.D
    cdef crdouble means = model.means
    cdef crdouble U = model.U
    cdef crdouble log_const = model.log_const
    cdef crdouble xt = tile.xt
    cdef rdouble a = tile.a
    cdef int k, i, p
    cdef double m, u, t, c
    cdef rdouble ak
    cdef crdouble xi
    if fastgmm_has_static_tile(cov, D):
        fastgmm_static_tile(xt, n, cov, means, U, log_const, K, D, a)
        return
    for k in range(K):
        ak = a + k * TILE
        for p in range(n):
            ak[p] = 0.0
        if cov == FULL or cov == TIED:
            fastgmm_add_mahalanobis(xt, means + k * D, n, U + (0 if cov == TIED else k * D * D), D, ak)
        else:
            for i in range(D):
                u = U[k * D + i] if cov == DIAG else U[k]
                m = means[k * D + i]
                xi = xt + i * TILE
                for p in range(n):
                    t = u * (xi[p] - m)
                    ak[p] += t * t
        c = log_const[k]
        for p in range(n):
            ak[p] = c - 0.5 * ak[p]


cdef int _live_components(
    const double* a, int n, int K, double* top, long* best, double* floor_, long* n_kept,
) noexcept nogil:
    """Per point: the largest log-probability, its component, the floor and the live count, as
    ``numba_._live_components``; returns the tile's sum of live counts."""
    cdef int k, p, live = 0
    cdef double v, t
    cdef long j
    for p in range(n):
        top[p] = a[p]
        best[p] = 0
    for k in range(1, K):
        for p in range(n):
            # Unconditional stores: the loop vectorises.
            v = a[k * TILE + p]
            t = top[p]
            j = best[p]
            top[p] = v if v > t else t
            best[p] = k if v > t else j
    for p in range(n):
        floor_[p] = top[p] + LOG_NEGLIGIBLE
        n_kept[p] = 0
    for k in range(K):
        for p in range(n):
            n_kept[p] += a[k * TILE + p] > floor_[p]
    for p in range(n):
        live += n_kept[p]
    return live


cdef int _responsibilities_sparse(Tile* tile, int n, int K) noexcept nogil:
    """Sparse responsibilities of a tile, as ``numba_._responsibilities_sparse``; returns the number of pairs."""
    cdef const double* a = tile.a
    cdef const double* top = tile.top
    cdef const long* best = tile.best
    cdef const double* floor_ = tile.floor_
    cdef const long* n_kept = tile.n_kept
    cdef double* total = tile.total
    cdef long* pair_p = tile.pair_p
    cdef long* pair_k = tile.pair_k
    cdef double* pair_v = tile.pair_v
    cdef double* pair_r = tile.pair_r
    cdef int k, p, n_pairs = 0
    for p in range(n):
        if n_kept[p] > 1:
            for k in range(K):
                if a[k * TILE + p] > floor_[p] and k != best[p]:
                    pair_p[n_pairs] = p
                    pair_k[n_pairs] = k
                    pair_v[n_pairs] = a[k * TILE + p] - top[p]
                    n_pairs += 1
    fastgmm_exp_nonpositive(pair_v, pair_r, n_pairs)
    for p in range(n):
        total[p] = 1.0 if n_kept[p] > 0 else NAN
    for k in range(n_pairs):
        total[pair_p[k]] += pair_r[k]
    return n_pairs


cdef void _responsibilities_dense(
    crdouble a, int n, int K, crdouble top, crdouble floor_, const long* n_kept, rdouble total, rdouble r,
) noexcept nogil:
    """Dense responsibilities of a tile, ``r[k n + p]``, zero where negligible, as
    ``numba_._responsibilities_dense`` (one sweep: ``fastgmm_responsibilities_dense``)."""
    cdef int p
    fastgmm_responsibilities_dense(a, n, K, top, floor_, r, total)
    for p in range(n):
        total[p] = total[p] if n_kept[p] > 0 else NAN


cdef void _add_log_likelihood(
    const double* top, const double* total, int n, const double* w, Py_ssize_t start, bint weighted, double* wt,
    double* ll_tw,
) noexcept nogil:
    """ll_tw[0] += sum_p w_p (top_p + log total_p), ll_tw[1] += sum_p w_p; fills the tile's weights ``wt``. One log
    per LOG_CHUNK points, from eight interleaved running products, as ``numba_._add_log_likelihood``."""
    cdef int p, c, q, span = 8 * LOG_CHUNK
    cdef double wp, product, s = 0.0
    cdef double p0, p1, p2, p3, p4, p5, p6, p7
    if weighted:
        for p in range(n):
            wp = w[start + p]
            wt[p] = wp
            # A zero-weight row adds nothing, even where its log-likelihood is -inf.
            if wp != 0.0:
                ll_tw[0] += wp * (top[p] + log(total[p]))
            ll_tw[1] += wp
        return
    for p in range(n):
        wt[p] = 1.0
        s += top[p]
    c = 0
    while c + span <= n:
        p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = 1.0
        q = c
        while q < c + span:
            p0 *= total[q]
            p1 *= total[q + 1]
            p2 *= total[q + 2]
            p3 *= total[q + 3]
            p4 *= total[q + 4]
            p5 *= total[q + 5]
            p6 *= total[q + 6]
            p7 *= total[q + 7]
            q = q + 8
        s += ((log(p0) + log(p1)) + (log(p2) + log(p3))) + ((log(p4) + log(p5)) + (log(p6) + log(p7)))
        c = c + span
    while c < n:
        product = 1.0
        for p in range(c, min(c + LOG_CHUNK, n)):
            product *= total[p]
        s += log(product)
        c = c + LOG_CHUNK
    ll_tw[0] += s
    ll_tw[1] += n


def gram_rows(int n_features):
    """The rows this extension gives a centred-column buffer of D features (for the test that every copy of the
    layout agrees: the wrapper allocates the stages by ``_layouts.gram_rows``)."""
    return _gram_rows(n_features)


cdef inline void _add_upper(const double* gram, int D, double* s2k) noexcept nogil:
    cdef int i, j, rows = _gram_rows(D)
    for i in range(D):
        for j in range(i, D):
            s2k[i * D + j] += gram[i * rows + j]


cdef void _moments_dense(
    crdouble d, crdouble shift, crdouble rw, int m, int cov, int k, int D, rdouble rd, double* gram, Partials out,
) noexcept nogil:
    """Full/tied moments of m columns ``d`` (gram_rows(D), TILE, zero after row D) about ``shift`` (component k's
    mean, gram_rows(D), zero after D) with weights ``rw`` into component k's partials, as
    ``numba_._moments_dense`` (eight padded rows: ``fastgmm_moments_eight``'s register sums); s2 (K or 1, D, D)
    upper triangle."""
    cdef double* nk = out.nk
    cdef double* s1 = out.s1
    cdef double* s2 = out.s2
    cdef int i, q
    cdef double total = 0.0
    cdef double sums[9]
    if _gram_rows(D) == 8:
        fastgmm_moments_eight(d, shift, rw, m, sums, gram)
        nk[k] += sums[0]
        for i in range(D):
            s1[k * D + i] += sums[1 + i]
        _add_upper(gram, D, s2 + (0 if cov == TIED else k * D * D))
        return
    for q in range(m):
        total += rw[q]
    nk[k] += total
    fastgmm_gram_upper(d, shift, rw, m, D, rd, gram, s1 + k * D)
    _add_upper(gram, D, s2 + (0 if cov == TIED else k * D * D))


cdef void _moments_small(
    crdouble xt, int n, crdouble rw, const double* mu, int D, double* nk_k, double* s1_k, double* s2_k,
) noexcept nogil:
    """Full/tied moments of one component over a tile's columns for D <= MAX_SMALL_FEATURES, summed point by point
    in registers, as ``numba_._moments_small``; s2_k is the component's (D, D) upper triangle."""
    cdef int p
    cdef double c, d0, d1, d2, d3, u0, u1, u2, u3
    cdef double cs = 0.0, f0 = 0.0, f1 = 0.0, f2 = 0.0, f3 = 0.0
    cdef double g00 = 0.0, g01 = 0.0, g02 = 0.0, g11 = 0.0, g12 = 0.0, g22 = 0.0
    cdef double g03 = 0.0, g13 = 0.0, g23 = 0.0, g33 = 0.0
    cdef crdouble x0 = xt
    cdef crdouble x1 = xt + TILE
    cdef crdouble x2 = xt + 2 * TILE
    cdef crdouble x3 = xt + 3 * TILE
    if D == 1:
        for p in range(n):
            c = rw[p]
            d0 = x0[p] - mu[0]
            u0 = c * d0
            cs += c
            f0 += u0
            g00 += u0 * d0
        s2_k[0] += g00
    elif D == 2:
        for p in range(n):
            c = rw[p]
            d0 = x0[p] - mu[0]
            d1 = x1[p] - mu[1]
            u0 = c * d0
            u1 = c * d1
            cs += c
            f0 += u0
            f1 += u1
            g00 += u0 * d0
            g01 += u0 * d1
            g11 += u1 * d1
        s1_k[1] += f1
        s2_k[0] += g00
        s2_k[1] += g01
        s2_k[3] += g11
    elif D == 3:
        for p in range(n):
            c = rw[p]
            d0 = x0[p] - mu[0]
            d1 = x1[p] - mu[1]
            d2 = x2[p] - mu[2]
            u0 = c * d0
            u1 = c * d1
            u2 = c * d2
            cs += c
            f0 += u0
            f1 += u1
            f2 += u2
            g00 += u0 * d0
            g01 += u0 * d1
            g02 += u0 * d2
            g11 += u1 * d1
            g12 += u1 * d2
            g22 += u2 * d2
        s1_k[1] += f1
        s1_k[2] += f2
        s2_k[0] += g00
        s2_k[1] += g01
        s2_k[2] += g02
        s2_k[4] += g11
        s2_k[5] += g12
        s2_k[8] += g22
    else:
        for p in range(n):
            c = rw[p]
            d0 = x0[p] - mu[0]
            d1 = x1[p] - mu[1]
            d2 = x2[p] - mu[2]
            d3 = x3[p] - mu[3]
            u0 = c * d0
            u1 = c * d1
            u2 = c * d2
            u3 = c * d3
            cs += c
            f0 += u0
            f1 += u1
            f2 += u2
            f3 += u3
            g00 += u0 * d0
            g01 += u0 * d1
            g02 += u0 * d2
            g03 += u0 * d3
            g11 += u1 * d1
            g12 += u1 * d2
            g13 += u1 * d3
            g22 += u2 * d2
            g23 += u2 * d3
            g33 += u3 * d3
        s1_k[1] += f1
        s1_k[2] += f2
        s1_k[3] += f3
        s2_k[0] += g00
        s2_k[1] += g01
        s2_k[2] += g02
        s2_k[3] += g03
        s2_k[5] += g11
        s2_k[6] += g12
        s2_k[7] += g13
        s2_k[10] += g22
        s2_k[11] += g23
        s2_k[15] += g33
    nk_k[0] += cs
    s1_k[0] += f0


cdef void _moments_diagonal(
    crdouble xt, int n, crdouble rw, const double* mu, int D, double* nk_k, double* s1_k, double* s2_k,
) noexcept nogil:
    """Diagonal moments of one component over a tile's columns, four features per sweep (eight independent sums),
    as in ``numba_._moments_tile``."""
    cdef int i = 0, p
    cdef double c, m0, m1, m2, m3, d0, d1, d2, d3, u0, u1, u2, u3, f0, f1, f2, f3, g0, g1, g2, g3
    cdef double total = 0.0
    cdef crdouble x0
    cdef crdouble x1
    cdef crdouble x2
    cdef crdouble x3
    for p in range(n):
        total += rw[p]
    nk_k[0] += total
    while i + 4 <= D:
        x0 = xt + i * TILE
        x1 = x0 + TILE
        x2 = x1 + TILE
        x3 = x2 + TILE
        m0 = mu[i]
        m1 = mu[i + 1]
        m2 = mu[i + 2]
        m3 = mu[i + 3]
        f0 = f1 = f2 = f3 = g0 = g1 = g2 = g3 = 0.0
        for p in range(n):
            c = rw[p]
            d0 = x0[p] - m0
            d1 = x1[p] - m1
            d2 = x2[p] - m2
            d3 = x3[p] - m3
            u0 = c * d0
            u1 = c * d1
            u2 = c * d2
            u3 = c * d3
            f0 += u0
            f1 += u1
            f2 += u2
            f3 += u3
            g0 += u0 * d0
            g1 += u1 * d1
            g2 += u2 * d2
            g3 += u3 * d3
        s1_k[i] += f0
        s1_k[i + 1] += f1
        s1_k[i + 2] += f2
        s1_k[i + 3] += f3
        s2_k[i] += g0
        s2_k[i + 1] += g1
        s2_k[i + 2] += g2
        s2_k[i + 3] += g3
        i = i + 4
    while i < D:
        x0 = xt + i * TILE
        m0 = mu[i]
        f0 = g0 = 0.0
        for p in range(n):
            d0 = x0[p] - m0
            u0 = rw[p] * d0
            f0 += u0
            g0 += u0 * d0
        s1_k[i] += f0
        s2_k[i] += g0
        i = i + 1


cdef void _moments_tile(const Model* model, Tile* tile, int n, Partials out) noexcept nogil:
    """The moments of the whole tile from its dense responsibilities (``pair_r``), as ``numba_._moments_tile``."""
    cdef int cov = model.cov, K = model.K, D = model.D
    cdef const double* means = model.means
    cdef crdouble xt = tile.xt
    cdef crdouble r = tile.pair_r
    cdef rdouble wt = tile.wt
    cdef crdouble total = tile.total
    cdef rdouble rw = tile.y
    cdef rdouble rd = tile.rd
    cdef double* gram = tile.gram
    cdef double* nk = out.nk
    cdef double* s1 = out.s1
    cdef double* s2 = out.s2
    cdef int k, p, rows = _gram_rows(D)
    cdef double c
    cdef crdouble rk
    for p in range(n):
        wt[p] = wt[p] / total[p]
    for k in range(K):
        rk = r + k * n
        for p in range(n):
            c = rk[p] * wt[p]
            rw[p] = c if wt[p] > 0.0 else 0.0
        if (cov == FULL or cov == TIED) and D <= MAX_SMALL_FEATURES:
            _moments_small(xt, n, rw, means + k * D, D, nk + k, s1 + k * D, s2 + (0 if cov == TIED else k * D * D))
        elif cov == FULL or cov == TIED:
            _moments_dense(xt, tile.shift + k * rows, rw, n, cov, k, D, rd, gram, out)
        else:
            _moments_diagonal(xt, n, rw, means + k * D, D, nk + k, s1 + k * D, s2 + k * D)


cdef void _moments_gathered(const Model* model, const Tile* tile, Partials out) noexcept nogil:
    """Diagonal moments straight from the tile's rows grouped by component, as ``numba_._moments_gathered``."""
    cdef int K = model.K, D = model.D
    cdef const double* means = model.means
    cdef const double* xt = tile.xt
    cdef const long* order = tile.order
    cdef const double* order_w = tile.order_w
    cdef const long* bounds = tile.bounds
    cdef double* nk = out.nk
    cdef double* s1 = out.s1
    cdef double* s2 = out.s2
    cdef int k, i, q, first, last
    cdef double total, mu, t1, t2, d, v
    for k in range(K):
        first = bounds[k]
        last = bounds[k + 1]
        if first == last:
            continue
        total = 0.0
        for q in range(first, last):
            total += order_w[q]
        nk[k] += total
        for i in range(D):
            mu = means[k * D + i]
            t1 = 0.0
            t2 = 0.0
            for q in range(first, last):
                d = xt[i * TILE + order[q]] - mu
                v = order_w[q] * d
                t1 += v
                t2 += v * d
            s1[k * D + i] += t1
            s2[k * D + i] += t2


cdef void _stage_tile(const Model* model, Tile* tile, int n, int n_pairs, Partials out) noexcept nogil:
    """Group the tile's (row, component) pairs by component (counting sort) and append them to its staging columns
    (centred on the component's mean by ``_moments_dense``); a full stage is first reduced into the partials.
    ``tile.direct``: one shared stage, reduced at once (as ``numba_._stage_tile``)."""
    cdef int cov = model.cov, K = model.K, D = model.D
    cdef const double* xt = tile.xt
    cdef const long* best = tile.best
    cdef const long* n_kept = tile.n_kept
    cdef const double* total = tile.total
    cdef double* wt = tile.wt
    cdef const long* pair_p = tile.pair_p
    cdef const long* pair_k = tile.pair_k
    cdef const double* pair_r = tile.pair_r
    cdef long* order = tile.order
    cdef double* order_w = tile.order_w
    cdef long* bounds = tile.bounds
    cdef double* stage_d = tile.stage_d
    cdef double* stage_w = tile.stage_w
    cdef long* count = tile.count
    cdef double* rd = tile.rd
    cdef double* gram = tile.gram
    cdef bint direct = tile.direct
    cdef int p, q, k, i, c, m, first, st, rows = _gram_rows(D)
    for p in range(n):
        wt[p] = wt[p] / total[p]
    for k in range(K + 1):
        bounds[k] = 0
    for p in range(n):
        if n_kept[p] > 0 and wt[p] > 0.0:
            bounds[best[p] + 1] += 1
    for q in range(n_pairs):
        if wt[pair_p[q]] > 0.0:
            bounds[pair_k[q] + 1] += 1
    for k in range(K):
        bounds[k + 1] += bounds[k]
    for p in range(n):
        if n_kept[p] > 0 and wt[p] > 0.0:
            k = best[p]
            order[bounds[k]] = p
            order_w[bounds[k]] = wt[p]
            bounds[k] += 1
    for q in range(n_pairs):
        p = pair_p[q]
        if wt[p] > 0.0:
            k = pair_k[q]
            order[bounds[k]] = p
            order_w[bounds[k]] = pair_r[q] * wt[p]
            bounds[k] += 1
    for k in range(K, 0, -1):
        bounds[k] = bounds[k - 1]
    bounds[0] = 0
    if cov == DIAG or cov == SPHERICAL:
        _moments_gathered(model, tile, out)
        return
    for k in range(K):
        first = bounds[k]
        m = bounds[k + 1] - first
        if m == 0:
            continue
        st = 0 if direct else k
        if not direct and count[k] + m > TILE:
            _moments_dense(stage_d + k * rows * TILE, tile.shift + k * rows, stage_w + k * TILE, count[k], cov, k, D,
                           rd, gram, out)
            count[k] = 0
        c = 0 if direct else count[k]
        for i in range(D):
            for q in range(m):
                stage_d[(st * rows + i) * TILE + c + q] = xt[i * TILE + order[first + q]]
        for q in range(m):
            stage_w[st * TILE + c + q] = order_w[first + q]
        if direct:
            _moments_dense(stage_d, tile.shift + k * rows, stage_w, m, cov, k, D, rd, gram, out)
        else:
            count[k] = c + m


# ------------------------------------------------------------------------------------------------------- kernels


cdef void _set_shift(Tile* tile, const double* means, int K, int D) noexcept nogil:
    """The tile's ``shift``: the means (K, D), zero after column D (already, from the zeroed allocation)."""
    cdef int k, i, rows = _gram_rows(D)
    for k in range(K):
        for i in range(D):
            tile.shift[k * rows + i] = means[k * D + i]


def accumulate_blocks(
    const floating[:, :] X, const double[::1] w, bint weighted, tuple model, tuple partials, tuple plan,
    int n_threads,
):
    """The one-pass statistics, block b's partials into row b of ``partials`` ``(ll_tw, nk, s1, s2)``: ``ll_tw``
    (2), ``nk`` (K), ``s1`` (K D) and ``s2`` (flattened, see ``_moments_dense``). ``model`` is ``(cov, means, U,
    log_const)`` with U flattened; ``plan`` ``(block_size, stages, dense_live)``: ``stages`` is K, or 1 to reduce
    each tile's rows at once; tiles whose points keep more than ``dense_live`` of the components live take the
    dense path."""
    cdef int cov = model[0]
    cdef const double[:, ::1] means = model[1]
    cdef const double[::1] U = model[2]
    cdef const double[::1] log_const = model[3]
    cdef double[:, ::1] ll_tw = partials[0]
    cdef double[:, ::1] nk = partials[1]
    cdef double[:, ::1] s1 = partials[2]
    cdef double[:, ::1] s2 = partials[3]
    cdef Py_ssize_t block_size = plan[0]
    cdef int stages = plan[1]
    cdef double dense_live = plan[2]
    cdef Py_ssize_t n_samples = X.shape[0], start, block_end
    cdef int D = X.shape[1], K = means.shape[0], n_blocks = ll_tw.shape[0]
    cdef int b, n, n_pairs, k, live, rows = _gram_rows(D)
    cdef Model m = Model(cov, K, D, &means[0, 0], &U[0], &log_const[0])
    cdef Partials out
    cdef Tile tile
    cdef const double* w_ptr = &w[0] if weighted else NULL
    cdef int failed = 0
    cdef int* failed_ptr = &failed  # written through a pointer: shared by the threads
    cdef bint ok
    with nogil, parallel(num_threads=n_threads):
        tile = _tile_buffers(K, D, stages)
        ok = tile.memory != NULL
        if not ok:
            failed_ptr[0] = 1
        else:
            _set_shift(&tile, &means[0, 0], K, D)
        for b in prange(n_blocks, schedule="static"):
            if not ok:
                continue
            for k in range(K):
                tile.count[k] = 0
            out = Partials(&nk[b, 0], &s1[b, 0], &s2[b, 0])
            block_end = min((b + 1) * block_size, n_samples)
            start = b * block_size
            while start < block_end:
                n = <int> min(TILE, block_end - start)
                _load_tile(X, start, n, tile.xt)
                _log_prob_tile(&m, &tile, n)
                live = _live_components(tile.a, n, K, tile.top, tile.best, tile.floor_, tile.n_kept)
                if live > dense_live * n * K:
                    _responsibilities_dense(tile.a, n, K, tile.top, tile.floor_, tile.n_kept, tile.total, tile.pair_r)
                    _add_log_likelihood(tile.top, tile.total, n, w_ptr, start, weighted, tile.wt, &ll_tw[b, 0])
                    _moments_tile(&m, &tile, n, out)
                else:
                    n_pairs = _responsibilities_sparse(&tile, n, K)
                    _add_log_likelihood(tile.top, tile.total, n, w_ptr, start, weighted, tile.wt, &ll_tw[b, 0])
                    _stage_tile(&m, &tile, n, n_pairs, out)
                start = start + TILE
            for k in range(K):
                if tile.count[k] > 0:
                    _moments_dense(tile.stage_d + k * rows * TILE, tile.shift + k * rows, tile.stage_w + k * TILE,
                                   tile.count[k], cov, k, D, tile.rd, tile.gram, out)
        free(tile.memory)
    if failed:
        raise MemoryError(f"fastgmm: cannot allocate the statistics buffers of a thread (K={K}, D={D})")


def weighted_log_prob_rows(
    const floating[:, :] X, int cov, const double[:, ::1] means, const double[::1] U,
    const double[::1] log_const, double[:, ::1] out, int n_threads,
):
    """out[n, k] = log(pi_k) + log N(x_n | mu_k, Sigma_k)."""
    cdef Py_ssize_t n_samples = X.shape[0]
    cdef int D = X.shape[1], K = means.shape[0]
    cdef int t, n, p, k
    cdef int n_tiles = <int> ((n_samples + TILE - 1) // TILE)
    cdef Model m = Model(cov, K, D, &means[0, 0], &U[0], &log_const[0])
    cdef Tile tile
    cdef int failed = 0
    cdef int* failed_ptr = &failed
    cdef bint ok
    with nogil, parallel(num_threads=n_threads):
        tile = _log_prob_buffers(K, D)
        ok = tile.xt != NULL and tile.y != NULL and tile.a != NULL
        if not ok:
            failed_ptr[0] = 1
        for t in prange(n_tiles, schedule="static"):
            if not ok:
                continue
            n = <int> min(TILE, n_samples - t * TILE)
            _load_tile(X, t * TILE, n, tile.xt)
            _log_prob_tile(&m, &tile, n)
            for p in range(n):
                for k in range(K):
                    out[t * TILE + p, k] = tile.a[k * TILE + p]
        free(tile.xt); free(tile.y); free(tile.a)
    if failed:
        raise MemoryError(f"fastgmm: cannot allocate the log-probability buffers of a thread (K={K}, D={D})")


# ------------------------------------------------------------------------------------------------------- k-means


def candidate_potentials_blocks(
    const floating[:, :] X, const double[::1] w, bint weighted, const double[:, ::1] candidates,
    const double[::1] closest, Py_ssize_t block_size, double[:, ::1] partial, int n_threads,
):
    """partial[b, c] = sum over block b of w_n min(closest_n, |x_n - candidate_c|^2)."""
    cdef Py_ssize_t n_samples = X.shape[0], row
    cdef int D = X.shape[1], C = candidates.shape[0], b, c, i
    cdef double d, t, wn
    with nogil:
        for b in prange(partial.shape[0], schedule="static", num_threads=n_threads):
            for row in range(b * block_size, min((b + 1) * block_size, n_samples)):
                wn = w[row] if weighted else 1.0
                for c in range(C):
                    d = 0.0
                    for i in range(D):
                        t = X[row, i] - candidates[c, i]
                        d = d + t * t
                    partial[b, c] += wn * min(d, closest[row])


def update_closest_rows(const floating[:, :] X, const double[::1] center, double[::1] closest, int n_threads):
    """closest = min(closest, |x - center|^2)."""
    cdef Py_ssize_t row
    cdef int D = X.shape[1], i
    cdef double d, t
    with nogil:
        for row in prange(X.shape[0], schedule="static", num_threads=n_threads):
            d = 0.0
            for i in range(D):
                t = X[row, i] - center[i]
                d = d + t * t
            if d < closest[row]:
                closest[row] = d


def lloyd_step_blocks(
    const floating[:, :] X, const double[::1] w, bint weighted, const double[:, ::1] centers, int[::1] labels,
    Py_ssize_t block_size, double[:, :, ::1] sums, double[:, ::1] weights, int n_threads,
):
    """Nearest centre of each row (first on ties) into ``labels``; per-block cluster sums and weights."""
    cdef Py_ssize_t n_samples = X.shape[0], row
    cdef int D = X.shape[1], C = centers.shape[0], b, c, i, nearest
    cdef double d, t, best_d, wn
    with nogil:
        for b in prange(sums.shape[0], schedule="static", num_threads=n_threads):
            for row in range(b * block_size, min((b + 1) * block_size, n_samples)):
                nearest = 0
                best_d = INFINITY
                for c in range(C):
                    d = 0.0
                    for i in range(D):
                        t = X[row, i] - centers[c, i]
                        d = d + t * t
                    if c == 0 or d < best_d:
                        best_d = d
                        nearest = c
                labels[row] = nearest
                wn = w[row] if weighted else 1.0
                weights[b, nearest] += wn
                for i in range(D):
                    sums[b, nearest, i] += wn * X[row, i]


def label_statistics_blocks(
    const floating[:, :] X, const double[::1] w, bint weighted, const int[::1] labels,
    const double[:, ::1] shift, int cov, Py_ssize_t block_size, tuple partials, int n_threads,
):
    """Per-block ``partials`` ``(nk, s1, s2)`` of hard assignments (label -1: none), s2 laid out as in
    ``_moments_dense``."""
    cdef double[:, ::1] nk = partials[0]
    cdef double[:, ::1] s1 = partials[1]
    cdef double[:, ::1] s2 = partials[2]
    cdef Py_ssize_t n_samples = X.shape[0], row
    cdef int D = X.shape[1], b, k, i, j, off
    cdef double wn
    cdef double *d
    cdef int failed = 0
    cdef int* failed_ptr = &failed
    with nogil, parallel(num_threads=n_threads):
        d = <double*> malloc(sizeof(double) * D)
        if d == NULL:
            failed_ptr[0] = 1
        for b in prange(nk.shape[0], schedule="static"):
            if d == NULL:
                continue
            for row in range(b * block_size, min((b + 1) * block_size, n_samples)):
                k = labels[row]
                wn = w[row] if weighted else 1.0
                if k < 0 or wn == 0.0:
                    continue
                nk[b, k] += wn
                for i in range(D):
                    d[i] = X[row, i] - shift[k, i]
                    s1[b, k * D + i] += wn * d[i]
                if cov == FULL or cov == TIED:
                    off = 0 if cov == TIED else k * D * D
                    for i in range(D):
                        for j in range(i, D):
                            s2[b, off + i * D + j] += wn * d[i] * d[j]
                else:
                    for i in range(D):
                        s2[b, k * D + i] += wn * d[i] * d[i]
        free(d)
    if failed:
        raise MemoryError(f"fastgmm: cannot allocate a buffer of {D} features")
