/* gemm.c - the small dense matrix products the cells are built from.
 *
 * Compiled once per (dtype, ISA): CMake defines FRNN_F64 or not, and FRNN_ISA
 * (baseline, or avx2 with -mavx2 -mfma). nn and tn share one register-tiled
 * micro-kernel: a tile of MR rows x NV vectors of C is accumulated in
 * registers over a block of KC steps of k, with A read through (row, column)
 * strides so that A or its transpose use the same code. Vectors are GCC/Clang
 * vector extensions sized to the ISA (16 bytes baseline, 32 with AVX2); other
 * compilers get the scalar loops. nt (used by the single-step entry points)
 * is a dot product per element with FRNN_LANES explicit partial sums.
 *
 * No reassociation beyond what the source spells out, so results are
 * deterministic for a given ISA; FMA contraction makes avx2 differ from
 * baseline in the last bits. Not a BLAS: no alpha/beta, no packing; sizes are
 * recurrent-layer sized (GH x H with H in the hundreds or low thousands).
 */
#include <string.h>
#include "kernels.h"

#ifndef FRNN_ISA
#define FRNN_ISA baseline
#endif
#define ISA_FN(name) FRNN_CAT(FN(name), FRNN_ISA)
#define FRNN_STR_(x) #x
#define FRNN_STR(x) FRNN_STR_(x)

#define FRNN_LANES 8
#define KC 256   /* k-block: keeps the B panel of a tile column in L1/L2 */

/* Tile shape per ISA: MR rows x NV vectors of C in registers, sized so the
 * accumulators plus the B vectors and one broadcast fit the register file
 * (16 ymm for AVX2: 6x2 + 2 + 1; 32 zmm for AVX-512: 8x2 + 2 + 1) and the
 * FMA units, not the load ports, are the limit. */
#if defined(__GNUC__)
#if defined(__AVX512F__)
#define VBYTES 64
#define MR 8
#elif defined(__AVX2__)
#define VBYTES 32
#define MR 6
#else
#define VBYTES 16
#define MR 4
#endif
typedef real vreal __attribute__((vector_size(VBYTES)));
#define VL ((frnn_int)(VBYTES / sizeof(real)))
#define NV 2     /* vectors of C per tile row */

static inline vreal ISA_FN(vload)(const real *p) {
    vreal v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}

/* C[mr, nv*VL] (+)= sum_k a(r, k) B[k, :], a(r, k) = A[r*rs + k*cs]. With
 * mr and nv compile-time constants after inlining, acc lives in registers. */
static inline __attribute__((always_inline)) void ISA_FN(tile)(
    const int mr, const int nv, frnn_int K, const real *restrict A, frnn_int rs,
    frnn_int cs, const real *restrict B, frnn_int ldb, int accumulate,
    real *restrict C, frnn_int ldc) {
    vreal acc[MR][NV];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = (vreal){0};
    for (frnn_int k = 0; k < K; k++) {
        vreal b[NV];
        for (int v = 0; v < nv; v++) b[v] = ISA_FN(vload)(B + k * ldb + v * VL);
        for (int r = 0; r < mr; r++) {
            const real a = A[r * rs + k * cs];
            for (int v = 0; v < nv; v++) acc[r][v] += a * b[v];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            real *c = C + r * ldc + v * VL;
            vreal out = acc[r][v];
            if (accumulate) out += ISA_FN(vload)(c);
            memcpy(c, &out, sizeof out);
        }
}

/* One row-tile of MR (or fewer, at the bottom edge) rows across all of N. */
static inline __attribute__((always_inline)) void ISA_FN(row_tiles)(
    const int mr, frnn_int N, frnn_int K, const real *A, frnn_int rs, frnn_int cs,
    const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc) {
    frnn_int j = 0;
    for (; j + NV * VL <= N; j += NV * VL)
        ISA_FN(tile)(mr, NV, K, A, rs, cs, B + j, ldb, accumulate, C + j, ldc);
    for (; j + VL <= N; j += VL)
        ISA_FN(tile)(mr, 1, K, A, rs, cs, B + j, ldb, accumulate, C + j, ldc);
    for (; j < N; j++) /* fewer than VL columns left */
        for (int r = 0; r < mr; r++) {
            real sum = 0;
            for (frnn_int k = 0; k < K; k++) sum += A[r * rs + k * cs] * B[k * ldb + j];
            C[r * ldc + j] = accumulate ? C[r * ldc + j] + sum : sum;
        }
}
#endif

/* C[M,N] (+)= op(A) B with op(A)[i, k] = A[i*rs + k*cs], K blocked by KC. */
static void ISA_FN(gemm_strided)(frnn_int M, frnn_int N, frnn_int K, const real *A,
                                 frnn_int rs, frnn_int cs, const real *B, frnn_int ldb,
                                 int accumulate, real *C, frnn_int ldc) {
    if (K == 0) {
        if (!accumulate)
            for (frnn_int i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(real));
        return;
    }
    for (frnn_int k0 = 0; k0 < K; k0 += KC) {
        const frnn_int kc = K - k0 < KC ? K - k0 : KC;
        const int acc = accumulate || k0 > 0;
        const real *Ak = A + k0 * cs, *Bk = B + k0 * ldb;
#if defined(__GNUC__)
        frnn_int i = 0;
        for (; i + MR <= M; i += MR)
            ISA_FN(row_tiles)(MR, N, kc, Ak + i * rs, rs, cs, Bk, ldb, acc, C + i * ldc, ldc);
        /* The bottom edge: a constant row count per case so that each edge
         * tile is specialised and keeps its accumulators in registers. */
#define EDGE(rows)                                                                       \
    case rows:                                                                           \
        ISA_FN(row_tiles)(rows < MR ? rows : 1, N, kc, Ak + i * rs, rs, cs, Bk, ldb, acc, \
                          C + i * ldc, ldc);                                             \
        break;
        switch (M - i) {
            EDGE(7) EDGE(6) EDGE(5) EDGE(4) EDGE(3) EDGE(2) EDGE(1)
        default: break;
        }
#undef EDGE
#else
        for (frnn_int i = 0; i < M; i++)
            for (frnn_int j = 0; j < N; j++) {
                real sum = 0;
                for (frnn_int k = 0; k < kc; k++) sum += Ak[i * rs + k * cs] * Bk[k * ldb + j];
                C[i * ldc + j] = acc ? C[i * ldc + j] + sum : sum;
            }
#endif
    }
}

/* C[M,N] (+)= A[M,K] B[K,N] */
static void ISA_FN(gemm_nn)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                            const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc) {
    ISA_FN(gemm_strided)(M, N, K, A, lda, 1, B, ldb, accumulate, C, ldc);
}

/* C[M,N] (+)= A[K,M]^T B[K,N]: weight gradients, K = T*B the long dimension. */
static void ISA_FN(gemm_tn)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                            const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc) {
    ISA_FN(gemm_strided)(M, N, K, A, 1, lda, B, ldb, accumulate, C, ldc);
}

/* dot(a, b) over K with FRNN_LANES independent partial sums: the explicit
 * lanes are what lets the compiler use vector registers without
 * -ffast-math, and the fixed combination order keeps it deterministic. */
static inline real ISA_FN(dot)(frnn_int K, const real *restrict a, const real *restrict b) {
    real lane[FRNN_LANES] = {0};
    frnn_int k = 0;
    for (; k + FRNN_LANES <= K; k += FRNN_LANES)
        for (int l = 0; l < FRNN_LANES; l++) lane[l] = lane[l] + a[k + l] * b[k + l];
    real tail = 0;
    for (; k < K; k++) tail = tail + a[k] * b[k];
    real sum = ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
               ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    return sum + tail;
}

/* C[M,N] (+)= A[M,K] B[N,K]^T: one dot product per element. Used by the
 * single-step entry points, which cannot amortise a transpose of W. */
static void ISA_FN(gemm_nt)(frnn_int M, frnn_int N, frnn_int K,
                            const real *restrict A, frnn_int lda,
                            const real *restrict B, frnn_int ldb,
                            int accumulate, real *restrict C, frnn_int ldc) {
    for (frnn_int i = 0; i < M; i++)
        for (frnn_int j = 0; j < N; j++) {
            const real d = ISA_FN(dot)(K, A + i * lda, B + j * ldb);
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + d : d;
        }
}

/* This ISA's row of the kernel table (activations.c supplies the rest). */
void ISA_FN(frnn_sigmoid)(frnn_int n, const real *x, real *y);
void ISA_FN(frnn_tanh)(frnn_int n, const real *x, real *y);

const FN(frnn_kernel_table) FRNN_CAT(FN(frnn_kernels), FRNN_ISA) = {
    .isa = FRNN_STR(FRNN_ISA),
    .gemm_nn = ISA_FN(gemm_nn),
    .gemm_tn = ISA_FN(gemm_tn),
    .gemm_nt = ISA_FN(gemm_nt),
    .sigmoid = ISA_FN(frnn_sigmoid),
    .tanh = ISA_FN(frnn_tanh),
};
