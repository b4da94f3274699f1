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
 * are packed once per call with pack_b and used through gemm_nn_packed; a
 * one-off product packs each KC x NR panel on the fly into a stack buffer.
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
#include <string.h>
#include "kernels/isa.h"
#include "kernels/tile.h"

#define FRNN_LANES 8
#define KC 256 /* k-block of the on-the-fly packing: one panel stays in L1 */

/* The width of the panel holding `cols` <= NR columns: NR, except that an
 * edge of at most one vector gets a one-vector panel, so that N = 100 costs
 * 112 columns of work and bandwidth instead of 128 (f32, AVX-512). */
#define PANEL_WIDTH(cols) ((cols) <= VL ? VL : NR)

static ALWAYS_INLINE vreal ISA_FN(vload)(const real *p) {
    vreal v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}

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
             * the panel being written stays in L1; edge columns zero-padded */
            enum { KB = 64 };
            if (cols < pw) memset(panel, 0, sizeof(real) * (size_t)(K * pw)); /* the padding */
            for (frnn_int k0 = 0; k0 < K; k0 += KB) {
                const frnn_int k1 = K - k0 < KB ? K : k0 + KB;
                for (frnn_int j = 0; j < cols; j++) {
                    const real *src = B + (j0 + j) * cs;
                    for (frnn_int k = k0; k < k1; k++) panel[k * pw + j] = src[k];
                }
            }
        } else { /* the right edge of a row-major B, or general strides: zero-padded */
            for (frnn_int k = 0; k < K; k++) {
                real row[NR] = {0};
                for (frnn_int j = 0; j < cols; j++) row[j] = B[k * rs + (j0 + j) * cs];
                memcpy(panel + k * pw, row, sizeof(real) * (size_t)pw);
            }
        }
    }
}

frnn_int ISA_FN(frnn_packed_size)(frnn_int K, frnn_int N) {
    const frnn_int edge = N % NR;
    return (N / NR * NR + (edge ? PANEL_WIDTH(edge) : 0)) * K;
}

/* C[mr, cols] (+)= sum_k A[r*rs + k*cs] panel[k, :], cols <= nv * VL, the
 * panel nv vectors wide. With mr and nv compile-time constants after
 * inlining, acc lives in registers. */
static ALWAYS_INLINE void ISA_FN(tile)(const int mr, const int nv, frnn_int K,
                                       const real *restrict A,
                                       frnn_int rs, frnn_int cs, const real *restrict panel,
                                       int accumulate, real *restrict C, frnn_int ldc,
                                       frnn_int cols) {
    const frnn_int pw = nv * VL; /* the panel's row stride */
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
    for (; k < K; k++) {
        vreal b[NV];
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

/* C[M, cols] (+)= op(A)[M, K] panel[K, nv * VL]: all row tiles of one panel. */
static ALWAYS_INLINE void ISA_FN(panel_rows)(const int nv, frnn_int M, frnn_int K,
                                             const real *A, frnn_int rs, frnn_int cs,
                                             const real *panel, int accumulate, real *C,
                                             frnn_int ldc, frnn_int cols) {
    frnn_int i = 0;
    for (; i + MR <= M; i += MR)
        ISA_FN(tile)(MR, nv, K, A + i * rs, rs, cs, panel, accumulate, C + i * ldc, ldc, cols);
    /* The bottom edge: a constant row count per case, so each edge tile is
     * specialised and keeps its accumulators in registers. */
#define EDGE(rows)                                                                     \
    case rows:                                                                         \
        ISA_FN(tile)(rows < MR ? rows : 1, nv, K, A + i * rs, rs, cs, panel,           \
                     accumulate, C + i * ldc, ldc, cols);                              \
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
                                  frnn_int ldc, frnn_int cols) {
    if (PANEL_WIDTH(cols) == NR)
        ISA_FN(panel_rows)(NV, M, K, A, rs, cs, panel, accumulate, C, ldc, cols);
    else
        ISA_FN(panel_rows)(1, M, K, A, rs, cs, panel, accumulate, C, ldc, cols);
}

static void ISA_FN(zero_or_keep)(frnn_int M, frnn_int N, int accumulate, real *C, frnn_int ldc) {
    if (!accumulate)
        for (frnn_int i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(real));
}

/* C[M,N] (+)= A[M,K] Bp, Bp from pack_b(K, N, ...). */
void ISA_FN(frnn_gemm_nn_packed)(frnn_int M, frnn_int N, frnn_int K, const real *A,
                                   frnn_int lda, const real *Bp, int accumulate, real *C,
                                   frnn_int ldc) {
    if (K == 0) {
        ISA_FN(zero_or_keep)(M, N, accumulate, C, ldc);
        return;
    }
    for (frnn_int j0 = 0; j0 < N; j0 += NR)
        ISA_FN(panel_product)(M, K, A, lda, 1, Bp + j0 * K, accumulate, C + j0, ldc,
                              N - j0 < NR ? N - j0 : NR);
}

/* C[M,N] (+)= op(A)[M,K] B[K,N], op(A)[i, k] = A[i*rs + k*cs]: each KC x NR
 * panel of B is packed on the stack and reused by every row tile. */
static void ISA_FN(gemm_strided)(frnn_int M, frnn_int N, frnn_int K, const real *A,
                                 frnn_int rs, frnn_int cs, const real *B, frnn_int ldb,
                                 int accumulate, real *C, frnn_int ldc) {
    if (K == 0) {
        ISA_FN(zero_or_keep)(M, N, accumulate, C, ldc);
        return;
    }
    real panel[KC * NR];
    for (frnn_int k0 = 0; k0 < K; k0 += KC) {
        const frnn_int kc = K - k0 < KC ? K - k0 : KC;
        for (frnn_int j0 = 0; j0 < N; j0 += NR) {
            const frnn_int cols = N - j0 < NR ? N - j0 : NR;
            ISA_FN(pack_b)(kc, cols, B + k0 * ldb + j0, ldb, 1, panel);
            ISA_FN(panel_product)(M, kc, A + k0 * cs, rs, cs, panel, accumulate || k0 > 0,
                                  C + j0, ldc, cols);
        }
    }
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
