/* gemm.c - the dense matrix products the cells are built from.
 *
 * Compiled once per (dtype, ISA) (isa.h); table.c puts the exported
 * functions into the ISA's kernel table.
 *
 * nn and tn share one register-tiled micro-kernel: a tile of MR rows x NR
 * columns of C stays in registers while k runs, reading
 *   - A through (row, column) strides, so A and its transpose use one code;
 *   - B from a packed panel: NR consecutive columns of B stored k-major and
 *     contiguous, so the inner loop streams memory the prefetcher can see
 *     (B rows a few KB apart defeated it: 15-20 GFLOP/s before packing).
 * Weights that every time step multiplies (W_hh^T forward, W_hh backward)
 * are packed once per call with pack_b and used through gemm_nn_packed,
 * whose first row tile of each panel prefetches the next panel into L2 (the
 * weights stream from L3 or memory every step). The one-off products (nn:
 * dx = G W_ih; tn: the weight gradients G^T x, G^T h, with K = T*B) are
 * blocked for the caches as BLIS does (gemm_strided): B packed per KC x NC
 * block, A per MC x KC block into row tiles (pack_a), so that a tile reads
 * both operands as contiguous streams. On the large LSTM (avx2, one core)
 * that took the weight-gradient products from 20-55 to 75-80 GFLOP/s (of a
 * 94-98 FMA peak; the unpacked A^T of a tile spanned 256 rows 16 KB apart)
 * and dx from 45-55 to 65-75. Every tile also prefetches its rows of C.
 * Column tails are zero-padded in the panel and stored through a bounce
 * buffer, so every tile runs the same vector code; a tail of at most one
 * vector gets a one-vector panel (PANEL_WIDTH), which matters at the small
 * sizes recurrent layers have (H = 100 in f32 on AVX-512: 112 columns of
 * work instead of 128; the batch-1 step is bandwidth-bound on the panel).
 *
 * The tile shape per ISA is tile.h's. nt (frnn_layer_step, B = 1
 * GEMV-like) is a dot product per element with FRNN_LANES
 * explicit partial sums. No reassociation beyond what the source spells
 * out: results are deterministic per ISA; FMA contraction makes avx2/avx512
 * differ from baseline in the last bits. Not a BLAS: no alpha/beta, and
 * sized for recurrent layers (GH x H with H in the hundreds or thousands).
 */
#include <stdlib.h>
#include <string.h>
#include "kernels/isa.h"
#include "kernels/tile.h"

#define FRNN_LANES 8
/* Software prefetches (no-ops where the compiler has none): a line to be
 * read, into L2; a line to be written, into L1. */
#if defined(__GNUC__)
#define FRNN_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#define FRNN_PREFETCH_WRITE(p) __builtin_prefetch((p), 1, 3)
#else
#define FRNN_PREFETCH_L2(p) ((void)(p))
#define FRNN_PREFETCH_WRITE(p) ((void)(p))
#endif
/* Cache blocking of gemm_strided (dx: 4096 x 4096 x 1024 and the weight
 * gradients 4096 x 1024 x 4096 for the large LSTM):
 *   KC: the k-block. A KC x NR panel (16 KB with AVX2's 16 float32
 *       columns) stays in L1 while every row tile of a row block runs over
 *       it. Also the k-block of the unblocked path, which computes the same
 *       bits.
 *   MC: the row block of A packed into row tiles (pack_a), MC x KC (120 KB
 *       in float32, 240 KB in float64), kept in L2 while every panel runs
 *       over it. A multiple of every ISA's MR (6, 8, 4), so row blocks put
 *       every row in the same tile as the whole product does.
 *   NC: the column block of B packed at once, KC x NC (1 MB in float32),
 *       in L3; a multiple of every NR, so it holds whole panels. */
#define KC 256
#define MC 120
#define NC 1024
/* SPREAD_PREFETCH_BYTES: above this size of packed B, frnn_gemm_nn_packed
 * has all full row tiles of a panel share the prefetch of the next panel
 * (each every tiles-th row) instead of the first tile alone. Such weights
 * (the large LSTM's and GRU's W_hh^T, 16 and 12 MB in float32, streamed
 * once a step beside W_ih^T) come from memory, and one tile asking for a
 * line every k outruns the misses a core keeps in flight. Measured (avx2,
 * interleaved runs of the product alone, 64 x 4096 x 1024 and 64 x 3072 x
 * 1024): 5-11% faster; at 4 MB (the medium LSTM's, the large Elman's),
 * which stays in L3, no better and up to 10% slower, hence the bound. */
#define SPREAD_PREFETCH_BYTES ((size_t)8 << 20)

/* The width of the panel holding `cols` <= NR columns: NR, except that an
 * edge of at most one vector gets a one-vector panel, so that N = 100 costs
 * 112 columns of work and bandwidth instead of 128 (f32, AVX-512). */
#define PANEL_WIDTH(cols) ((cols) <= VL ? VL : NR)

static ALWAYS_INLINE vreal ISA_FN(vload)(const real *p) {
    vreal v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}

/* In-register transposes for pack_b's transposed views: VL rows of VL
 * elements, transposed by log2(VL) rounds of zipping row i with row
 * i + VL/2 (after the last round v[i][j] is the old v[j][i]). Element
 * moves only, so a panel holds the same values either way. Needs
 * __builtin_shufflevector (Clang, GCC >= 12) and a lane count the
 * preprocessor knows; elsewhere pack_b copies element by element. */
#if defined(VBYTES) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12))
#if defined(FRNN_F64)
#define LANES (VBYTES / 8)
#else
#define LANES (VBYTES / 4)
#endif
#if LANES == 2
#define ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 2)
#define ZIP_HI(a, b) __builtin_shufflevector(a, b, 1, 3)
#elif LANES == 4
#define ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 4, 1, 5)
#define ZIP_HI(a, b) __builtin_shufflevector(a, b, 2, 6, 3, 7)
#elif LANES == 8
#define ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define ZIP_HI(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#elif LANES == 16
#define ZIP_LO(a, b) \
    __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ZIP_HI(a, b) \
    __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#endif
#endif
#if defined(ZIP_LO)
#define FRNN_VECTOR_TRANSPOSE 1
/* one round; the rounds are spelled out so that the compiler keeps every
 * row in a register (a loop over rounds went through the stack) */
#define ZIP_ROUND(dst, src)                                           \
    for (int i = 0; i < LANES / 2; i++) {                             \
        dst[2 * i] = ZIP_LO(src[i], src[i + LANES / 2]);              \
        dst[2 * i + 1] = ZIP_HI(src[i], src[i + LANES / 2]);          \
    }
static ALWAYS_INLINE void ISA_FN(transpose)(vreal v[LANES]) {
    vreal t[LANES];
#if LANES >= 2
    ZIP_ROUND(t, v)
#endif
#if LANES >= 4
    ZIP_ROUND(v, t)
#endif
#if LANES >= 8
    ZIP_ROUND(t, v)
#endif
#if LANES >= 16
    ZIP_ROUND(v, t)
#endif
#if LANES == 2 || LANES == 8 /* an odd number of rounds: the result is in t */
    for (int i = 0; i < LANES; i++) v[i] = t[i];
#endif
}
#endif

/* Bp = B[K, N] (B[k, n] = B[k*rs + n*cs]) as ceil(N/NR) panels of [K][NR],
 * the last one of PANEL_WIDTH and zero-padded. */
static void ISA_FN(pack_b)(frnn_int K, frnn_int N, const real *B, frnn_int rs, frnn_int cs,
                           real *Bp) {
    for (frnn_int j0 = 0; j0 < N; j0 += NR) {
        const frnn_int cols = N - j0 < NR ? N - j0 : NR, pw = PANEL_WIDTH(cols);
        real *panel = Bp + j0 * K;
        if (cols == NR && cs == 1) {
            /* whole rows of a row-major B: vector copies of a constant size
             * (a memcpy call per 128-byte row cost more than the copy) */
            for (frnn_int k = 0; k < K; k++)
                for (int v = 0; v < NV; v++) {
                    const vreal row = ISA_FN(vload)(B + k * rs + j0 + v * VL);
                    memcpy(panel + k * NR + v * VL, &row, sizeof row);
                }
        } else if (rs == 1) {
            /* a transposed view (W^T of a row-major W): a blocked transpose,
             * reading KB-long runs of W's rows while the KB x NR slice of
             * the panel being written stays in L1; edge columns zero-padded.
             * Whole VL x VL blocks go through registers (the element-wise
             * copy ran at 1.3 cycles an element: a 100 x 100 W^T took 4.3
             * us, a third of a min-char-rnn window's packing) */
            enum { KB = 64 };
            if (cols < pw) memset(panel, 0, sizeof(real) * (size_t)(K * pw)); /* the padding */
            for (frnn_int k0 = 0; k0 < K; k0 += KB) {
                const frnn_int k1 = K - k0 < KB ? K : k0 + KB;
                frnn_int j = 0;
#if FRNN_VECTOR_TRANSPOSE
                for (; j + VL <= cols; j += VL) {
                    const real *src = B + (j0 + j) * cs;
                    frnn_int k = k0;
                    for (; k + VL <= k1; k += VL) {
                        vreal v[LANES];
#pragma GCC unroll 16
                        for (int i = 0; i < LANES; i++) v[i] = ISA_FN(vload)(src + i * cs + k);
                        ISA_FN(transpose)(v);
#pragma GCC unroll 16
                        for (int i = 0; i < LANES; i++)
                            memcpy(panel + (k + i) * pw + j, &v[i], sizeof v[i]);
                    }
                    for (; k < k1; k++)
                        for (int i = 0; i < LANES; i++) panel[k * pw + j + i] = src[i * cs + k];
                }
#endif
                for (; j < cols; j++) {
                    const real *src = B + (j0 + j) * cs;
                    for (frnn_int k = k0; k < k1; k++) panel[k * pw + j] = src[k];
                }
            }
        } else { /* the right edge of a row-major B, or general strides: zero-padded
                  * (element stores: a zeroed row and a memcpy of its variable
                  * width compiled to rep movs, 30% of a 100 x 100 pack) */
            for (frnn_int k = 0; k < K; k++) {
                real *row = panel + k * pw;
                frnn_int j = 0;
                for (; j < cols; j++) row[j] = B[k * rs + (j0 + j) * cs];
                for (; j < pw; j++) row[j] = 0;
            }
        }
    }
}

frnn_int ISA_FN(frnn_packed_size)(frnn_int K, frnn_int N) {
    const frnn_int edge = N % NR;
    return (N / NR * NR + (edge ? PANEL_WIDTH(edge) : 0)) * K;
}

/* Ap = op(A)[mc, kc] (op(A)[i, k] = A[i*rs + k*cs]) as ceil(mc / MR) row
 * tiles of [kc][MR]: for each k, the MR values a tile broadcasts side by
 * side, so a tile reads one contiguous stream. Unpacked, a tile's A came
 * from MR rows 4 KB apart (forward) or from kc rows 16 KB apart (the
 * weight gradients' A^T): the same L1 set for all of them, a cache line
 * and often a page per k. A last tile of fewer than MR rows leaves the
 * rest of its [kc][MR] unwritten, and nothing reads it. */
static void ISA_FN(pack_a)(frnn_int mc, frnn_int kc, const real *A, frnn_int rs, frnn_int cs,
                           real *Ap) {
    if (rs == 1) {
        /* A^T of a row-major matrix: one k's mc rows are adjacent, so read
         * each once, whole (tile by tile, the kc source rows of a tile were
         * 16 KB apart: one L1 set, refetched for every tile) */
        for (frnn_int k = 0; k < kc; k++) {
            const real *src = A + k * cs;
            real *dst = Ap + k * MR;
            frnn_int i0 = 0;
            /* whole tiles as copies of a constant size, which compile to a
             * vector move or two (a copy of `rows` elements compiled to a
             * loop of 8-byte moves at 4-5 cycles an element) */
            for (; i0 + MR <= mc; i0 += MR) memcpy(dst + i0 * kc, src + i0, sizeof(real) * MR);
            for (frnn_int r = 0; i0 + r < mc; r++) dst[i0 * kc + r] = src[i0 + r];
        }
        return;
    }
    for (frnn_int i0 = 0; i0 < mc; i0 += MR) {
        const frnn_int rows = mc - i0 < MR ? mc - i0 : MR;
        const real *src = A + i0 * rs;
        real *dst = Ap + i0 * kc;
        for (frnn_int r = 0; r < rows; r++)
            for (frnn_int k = 0; k < kc; k++) dst[k * MR + r] = src[r * rs + k * cs];
    }
}

/* C[mr, cols] (+)= sum_k A[r*rs + k*cs] panel[k, :], cols <= nv * VL, the
 * panel nv vectors wide. With mr and nv compile-time constants after
 * inlining, acc lives in registers. */
static ALWAYS_INLINE void ISA_FN(tile)(const int mr, const int nv, frnn_int K,
                                       const real *restrict A,
                                       frnn_int rs, frnn_int cs, const real *restrict panel,
                                       int accumulate, real *restrict C, frnn_int ldc,
                                       frnn_int cols, const int prefetching,
                                       const real *next, frnn_int pf_phase,
                                       frnn_int pf_stride) {
    const frnn_int pw = nv * VL; /* the panel's row stride */
    /* this tile's C, first and last column, written (and read) once k is
     * done: C may be several MB and the large products make K / KC trips
     * over it */
    for (int r = 0; r < mr; r++) {
        FRNN_PREFETCH_WRITE(C + r * ldc);
        FRNN_PREFETCH_WRITE(C + r * ldc + cols - 1);
    }
    vreal acc[MR][NV];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = VZERO;
    frnn_int k = 0;
    if (mr == 1) {
        /* A single row (batch 1: the recurrent matrix-vector product) has
         * only NV accumulators, too few to hide the FMA latency: keep four
         * independent groups over k mod 4 and combine them at the end. */
        vreal part[4][NV];
        for (int u = 0; u < 4; u++)
            for (int v = 0; v < NV; v++) part[u][v] = VZERO;
        for (; k + 4 <= K; k += 4)
            for (int u = 0; u < 4; u++) {
                const real a = A[(k + u) * cs];
                for (int v = 0; v < nv; v++)
                    part[u][v] += a * ISA_FN(vload)(panel + (k + u) * pw + v * VL);
            }
        for (int v = 0; v < nv; v++)
            acc[0][v] = (part[0][v] + part[1][v]) + (part[2][v] + part[3][v]);
    }
    frnn_int countdown = 1;
    for (; k < K; k++) {
        vreal b[NV];
        /* rows of the next panel into L2, one line per 64 bytes: row k
         * (prefetching 1), or row k + pf_phase at every pf_stride-th k
         * (prefetching 2: the panel's tiles share the rows). Mode 1 is mode
         * 2 with phase 0 and stride 1 without the countdown, kept apart so
         * that products below SPREAD_PREFETCH_BYTES run the loop they were
         * measured with. */
        if (prefetching == 1)
            for (frnn_int byte = 0; byte < pw * (frnn_int)sizeof(real); byte += 64)
                FRNN_PREFETCH_L2((const char *)(next + k * pw) + byte);
        if (prefetching == 2 && --countdown == 0) {
            countdown = pf_stride;
            if (k + pf_phase < K)
                for (frnn_int byte = 0; byte < pw * (frnn_int)sizeof(real); byte += 64)
                    FRNN_PREFETCH_L2((const char *)(next + (k + pf_phase) * pw) + byte);
        }
        for (int v = 0; v < nv; v++) b[v] = ISA_FN(vload)(panel + k * pw + v * VL);
        for (int r = 0; r < mr; r++) {
            const real a = A[r * rs + k * cs];
            for (int v = 0; v < nv; v++) acc[r][v] += a * b[v];
        }
    }
    for (int r = 0; r < mr; r++) {
        real *c = C + r * ldc;
        if (cols == pw) {
            for (int v = 0; v < nv; v++) {
                vreal out = acc[r][v];
                if (accumulate) out += ISA_FN(vload)(c + v * VL);
                memcpy(c + v * VL, &out, sizeof out);
            }
        } else { /* right edge: bounce through a full-width row */
            real row[NR];
            memcpy(row, acc[r], sizeof(real) * (size_t)pw);
            for (frnn_int j = 0; j < cols; j++) c[j] = accumulate ? c[j] + row[j] : row[j];
        }
    }
}

/* C[M, cols] (+)= op(A)[M, K] panel[K, nv * VL]: all row tiles of one panel;
 * tile_step: how far A's next row tile starts (MR * rs, or MR * K for A
 * packed by pack_a, with rs = 1 and cs = MR). next: the panel the caller
 * multiplies after this one (K x the same width), or NULL. It is
 * prefetched by the first row tile while the others run from cache, or,
 * with spread, by all full row tiles, each taking every tiles-th row, so
 * that misses to memory come at a rate the core can keep in flight (see
 * SPREAD_PREFETCH_BYTES). */
static ALWAYS_INLINE void ISA_FN(panel_rows)(const int nv, frnn_int M, frnn_int K,
                                             const real *A, frnn_int rs, frnn_int cs,
                                             frnn_int tile_step, const real *panel,
                                             int accumulate, real *C, frnn_int ldc,
                                             frnn_int cols, const real *next, int spread) {
    frnn_int i = 0;
    const real *a = A;
    if (next != NULL && spread) {
        const frnn_int tiles = M / MR;
        for (frnn_int t = 0; t < tiles; t++, i += MR, a += tile_step)
            ISA_FN(tile)(MR, nv, K, a, rs, cs, panel, accumulate, C + i * ldc, ldc, cols, 2,
                         next, t, tiles);
    } else if (next != NULL && M >= MR) {
        ISA_FN(tile)(MR, nv, K, a, rs, cs, panel, accumulate, C, ldc, cols, 1, next, 0, 1);
        i += MR, a += tile_step;
    }
    for (; i + MR <= M; i += MR, a += tile_step)
        ISA_FN(tile)(MR, nv, K, a, rs, cs, panel, accumulate, C + i * ldc, ldc, cols, 0, NULL,
                     0, 1);
    /* The bottom edge: a constant row count per case, so each edge tile is
     * specialised and keeps its accumulators in registers. */
#define EDGE(rows)                                                                     \
    case rows:                                                                         \
        ISA_FN(tile)(rows < MR ? rows : 1, nv, K, a, rs, cs, panel, accumulate,        \
                     C + i * ldc, ldc, cols, 0, NULL, 0, 1);                           \
        break;
    switch (M - i) {
        EDGE(7) EDGE(6) EDGE(5) EDGE(4) EDGE(3) EDGE(2) EDGE(1)
    default: break;
    }
#undef EDGE
}

/* The same for a panel of PANEL_WIDTH(cols): full panels and one-vector edges
 * each get their own specialised copy. */
static void ISA_FN(panel_product)(frnn_int M, frnn_int K, const real *A, frnn_int rs,
                                  frnn_int cs, const real *panel, int accumulate, real *C,
                                  frnn_int ldc, frnn_int cols, const real *next, int spread) {
    if (PANEL_WIDTH(cols) == NR)
        ISA_FN(panel_rows)(NV, M, K, A, rs, cs, MR * rs, panel, accumulate, C, ldc, cols,
                           next, spread);
    else
        ISA_FN(panel_rows)(1, M, K, A, rs, cs, MR * rs, panel, accumulate, C, ldc, cols, NULL,
                           0);
}

/* The same with A packed by pack_a: the strides are constants, so a tile
 * addresses its broadcasts by immediate offsets. The arithmetic is
 * panel_product's, operation for operation: packing moves A, nothing else,
 * so a product gives the same bits packed or not. */
static void ISA_FN(packed_panel_product)(frnn_int M, frnn_int K, const real *Ap,
                                         const real *panel, int accumulate, real *C,
                                         frnn_int ldc, frnn_int cols) {
    if (PANEL_WIDTH(cols) == NR)
        ISA_FN(panel_rows)(NV, M, K, Ap, 1, MR, MR * K, panel, accumulate, C, ldc, cols, NULL,
                           0);
    else
        ISA_FN(panel_rows)(1, M, K, Ap, 1, MR, MR * K, panel, accumulate, C, ldc, cols, NULL,
                           0);
}


static void ISA_FN(zero_or_keep)(frnn_int M, frnn_int N, int accumulate, real *C, frnn_int ldc) {
    if (!accumulate)
        for (frnn_int i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(real));
}

/* C[M,N] (+)= A[M,K] Bp, Bp from pack_b(K, N, ...): whole panels, A as it
 * is, the next panel prefetched by the first row tile of this one (it paid
 * 4-30% on the large LSTM's steps, 64 x 1024 x 4096 forward and 64 x 4096
 * x 1024 backward, avx2; measured in one process against the same code
 * without it), or by all of them above SPREAD_PREFETCH_BYTES. Blocking k
 * by KC and columns by NC gained nothing there, and packing A's rows as
 * gemm_strided does ran 5-15% slower (one step's A is 64 rows, packed
 * again for every KC-block, and C then makes K / KC trips through L3):
 * what limits these at 80-85% of the FMA peak is the weights, 16 MB per
 * product, streamed from L3 or memory on every step. */
void ISA_FN(frnn_gemm_nn_packed)(frnn_int M, frnn_int N, frnn_int K, const real *A,
                                   frnn_int lda, const real *Bp, int accumulate, real *C,
                                   frnn_int ldc) {
    if (K == 0) {
        ISA_FN(zero_or_keep)(M, N, accumulate, C, ldc);
        return;
    }
    const int spread = (size_t)K * (size_t)N * sizeof(real) > SPREAD_PREFETCH_BYTES;
    for (frnn_int j0 = 0; j0 < N; j0 += NR)
        ISA_FN(panel_product)(M, K, A, lda, 1, Bp + j0 * K, accumulate, C + j0, ldc,
                              N - j0 < NR ? N - j0 : NR,
                              N - j0 >= 2 * NR ? Bp + (j0 + NR) * K : NULL, spread);
}

/* C[M,N] (+)= op(A)[M,K] B[K,N], op(A)[i, k] = A[i*rs + k*cs], one KC x NR
 * panel of B packed on the stack at a time and run over every row of A. */
static void ISA_FN(gemm_strided_unblocked)(frnn_int M, frnn_int N, frnn_int K, const real *A,
                                           frnn_int rs, frnn_int cs, const real *B,
                                           frnn_int ldb, int accumulate, real *C,
                                           frnn_int ldc) {
    real panel[KC * NR];
    for (frnn_int k0 = 0; k0 < K; k0 += KC) {
        const frnn_int kc = K - k0 < KC ? K - k0 : KC;
        for (frnn_int j0 = 0; j0 < N; j0 += NR) {
            const frnn_int cols = N - j0 < NR ? N - j0 : NR;
            ISA_FN(pack_b)(kc, cols, B + k0 * ldb + j0, ldb, 1, panel);
            ISA_FN(panel_product)(M, kc, A + k0 * cs, rs, cs, panel, accumulate || k0 > 0,
                                  C + j0, ldc, cols, NULL, 0);
        }
    }
}

/* The same product blocked for the caches, as BLIS does: for each NC-wide
 * block of columns and KC-block of k, B's KC x NC block is packed once
 * (Bb), then for each MC-block of rows A's MC x KC block is packed (Ap)
 * and every KC x NR panel of Bb runs over it. Each element sees the same
 * k-blocks and the same tile code as in gemm_strided_unblocked, so both
 * give the same bits; that one runs when packing A would not pay (fewer
 * rows than a tile, or fewer than PACK_MIN_COLS columns to reuse a packed
 * block over: measured, a 2048 x 128 x 3200 weight gradient ran 1.2-1.8x
 * faster packed, a 512 x 64 x 2048 one 1.4x slower) or a buffer cannot be
 * had. */
#define PACK_MIN_COLS 128
static void ISA_FN(gemm_strided)(frnn_int M, frnn_int N, frnn_int K, const real *A,
                                 frnn_int rs, frnn_int cs, const real *B, frnn_int ldb,
                                 int accumulate, real *C, frnn_int ldc) {
    if (K == 0) {
        ISA_FN(zero_or_keep)(M, N, accumulate, C, ldc);
        return;
    }
    /* sizes bounded by the constants: MC x KC, and KC x (NC + NR) for the
     * packed width of at most NC columns; nothing to overflow */
    const frnn_int widest = N < NC ? N : NC;
    const int worth_packing = M >= MR && N >= PACK_MIN_COLS;
    real *Ap = worth_packing ? malloc(sizeof(real) * (size_t)(MC * KC)) : NULL;
    real *Bb = Ap ? malloc(sizeof(real) * (size_t)(KC * (widest + NR))) : NULL;
    if (!Bb) {
        free(Ap);
        ISA_FN(gemm_strided_unblocked)(M, N, K, A, rs, cs, B, ldb, accumulate, C, ldc);
        return;
    }
    for (frnn_int jc = 0; jc < N; jc += NC) {
        const frnn_int nc = N - jc < NC ? N - jc : NC;
        for (frnn_int k0 = 0; k0 < K; k0 += KC) {
            const frnn_int kc = K - k0 < KC ? K - k0 : KC;
            const int acc = accumulate || k0 > 0;
            ISA_FN(pack_b)(kc, nc, B + k0 * ldb + jc, ldb, 1, Bb);
            for (frnn_int i0 = 0; i0 < M; i0 += MC) {
                const frnn_int mc = M - i0 < MC ? M - i0 : MC;
                ISA_FN(pack_a)(mc, kc, A + i0 * rs + k0 * cs, rs, cs, Ap);
                for (frnn_int j0 = 0; j0 < nc; j0 += NR)
                    ISA_FN(packed_panel_product)(mc, kc, Ap, Bb + j0 * kc, acc,
                                                 C + i0 * ldc + jc + j0, ldc,
                                                 nc - j0 < NR ? nc - j0 : NR);
            }
        }
    }
    free(Bb);
    free(Ap);
}

/* C[M,N] (+)= A[M,K] B[K,N] */
void ISA_FN(frnn_gemm_nn)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                            const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc) {
    ISA_FN(gemm_strided)(M, N, K, A, lda, 1, B, ldb, accumulate, C, ldc);
}

/* C[M,N] (+)= A[K,M]^T B[K,N]: weight gradients, K = T*B the long dimension. */
void ISA_FN(frnn_gemm_tn)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                            const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc) {
    ISA_FN(gemm_strided)(M, N, K, A, 1, lda, B, ldb, accumulate, C, ldc);
}

/* dot(a, b) over K with FRNN_LANES independent partial sums: the explicit
 * lanes are what lets the compiler use vector registers without
 * -ffast-math, and the fixed combination order keeps it deterministic.
 * The lanes are one vector of FRNN_LANES elements: written as an array of
 * scalars, GCC 12's AVX-512 build vectorised them two iterations per zmm
 * with a permute per step and ran 4x slower than the AVX2 build (a GRU
 * step with H = 128: 46 us against 12; now 12). Lane l sums a[k] b[k] for
 * k = l (mod FRNN_LANES), in order, either way. */
#if defined(__GNUC__) && defined(__AVX2__) /* SSE2 lowers the 8-wide vector worse */
#define FRNN_DOT_VECTOR 1
typedef real lanes_vec __attribute__((vector_size(FRNN_LANES * sizeof(real))));
#endif
static inline real ISA_FN(dot)(frnn_int K, const real *restrict a, const real *restrict b) {
    real lane[FRNN_LANES] = {0};
    frnn_int k = 0;
#if FRNN_DOT_VECTOR
    lanes_vec acc = {0};
    for (; k + FRNN_LANES <= K; k += FRNN_LANES) {
        lanes_vec x, y;
        memcpy(&x, a + k, sizeof x);
        memcpy(&y, b + k, sizeof y);
        acc = acc + x * y;
    }
    memcpy(lane, &acc, sizeof lane);
#else
    for (; k + FRNN_LANES <= K; k += FRNN_LANES)
        for (int l = 0; l < FRNN_LANES; l++) lane[l] = lane[l] + a[k + l] * b[k + l];
#endif
    real tail = 0;
    for (; k < K; k++) tail = tail + a[k] * b[k];
    real sum = ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
               ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    return sum + tail;
}

/* C[M,N] (+)= A[M,K] B[N,K]^T: one dot product per element. Used by the
 * single-step entry points, which cannot amortise a transpose of W. */
void ISA_FN(frnn_gemm_nt)(frnn_int M, frnn_int N, frnn_int K,
                            const real *restrict A, frnn_int lda,
                            const real *restrict B, frnn_int ldb,
                            int accumulate, real *restrict C, frnn_int ldc) {
    for (frnn_int i = 0; i < M; i++)
        for (frnn_int j = 0; j < N; j++) {
            const real d = ISA_FN(dot)(K, A + i * lda, B + j * ldb);
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + d : d;
        }
}

/* Bp = B[K, N] packed (see pack_b): the table's entry; gemm_strided calls
 * pack_b itself, so that it stays inlinable there. */
void ISA_FN(frnn_pack_b)(frnn_int K, frnn_int N, const real *B, frnn_int rs, frnn_int cs,
                         real *Bp) {
    ISA_FN(pack_b)(K, N, B, rs, cs, Bp);
}
