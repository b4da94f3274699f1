/* gemm.c - the small dense matrix products the cells are built from.
 *
 * Compiled once per (dtype, ISA): CMake defines FRNN_F64 or not, and FRNN_ISA
 * (baseline or avx2, the latter with -mavx2 -mfma). The source is plain C
 * written so that the compiler vectorises the inner loops without any
 * reassociation it is not allowed to do: inner loops are axpy's over a
 * contiguous row (nn, tn), and the dot products of nt keep FRNN_LANES
 * explicit partial sums, combined in a fixed order. Results are therefore
 * deterministic for a given ISA; FMA contraction makes avx2 differ from
 * baseline in the last bits.
 *
 * Not a BLAS: no alpha/beta scaling, no packing for huge matrices. Sizes here
 * are recurrent-layer sized (GH x H with H in the hundreds or low thousands).
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

/* C[M,N] (+)= A[M,K] B[K,N]: each C row gets four rank-1 updates per pass so
 * it is loaded and stored once per four B rows. */
static void ISA_FN(gemm_nn)(frnn_int M, frnn_int N, frnn_int K,
                            const real *restrict A, frnn_int lda,
                            const real *restrict B, frnn_int ldb,
                            int accumulate, real *restrict C, frnn_int ldc) {
    for (frnn_int i = 0; i < M; i++) {
        real *restrict c = C + i * ldc;
        const real *a = A + i * lda;
        if (!accumulate) memset(c, 0, (size_t)N * sizeof(real));
        frnn_int k = 0;
        for (; k + 4 <= K; k += 4) {
            const real a0 = a[k], a1 = a[k + 1], a2 = a[k + 2], a3 = a[k + 3];
            const real *restrict b0 = B + k * ldb;
            const real *restrict b1 = b0 + ldb;
            const real *restrict b2 = b1 + ldb;
            const real *restrict b3 = b2 + ldb;
            for (frnn_int j = 0; j < N; j++)
                c[j] = c[j] + a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
        }
        for (; k < K; k++) {
            const real a0 = a[k];
            const real *restrict b0 = B + k * ldb;
            for (frnn_int j = 0; j < N; j++) c[j] = c[j] + a0 * b0[j];
        }
    }
}

/* C[M,N] (+)= A[K,M]^T B[K,N]: the same rank-1 updates, with A read down a
 * column. Used for weight gradients, where K = T*B is the long dimension. */
static void ISA_FN(gemm_tn)(frnn_int M, frnn_int N, frnn_int K,
                            const real *restrict A, frnn_int lda,
                            const real *restrict B, frnn_int ldb,
                            int accumulate, real *restrict C, frnn_int ldc) {
    if (!accumulate)
        for (frnn_int i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(real));
    frnn_int k = 0;
    for (; k + 4 <= K; k += 4) {
        const real *restrict b0 = B + k * ldb;
        const real *restrict b1 = b0 + ldb;
        const real *restrict b2 = b1 + ldb;
        const real *restrict b3 = b2 + ldb;
        for (frnn_int i = 0; i < M; i++) {
            const real a0 = A[k * lda + i], a1 = A[(k + 1) * lda + i];
            const real a2 = A[(k + 2) * lda + i], a3 = A[(k + 3) * lda + i];
            real *restrict c = C + i * ldc;
            for (frnn_int j = 0; j < N; j++)
                c[j] = c[j] + a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
        }
    }
    for (; k < K; k++) {
        const real *restrict b0 = B + k * ldb;
        for (frnn_int i = 0; i < M; i++) {
            const real a0 = A[k * lda + i];
            real *restrict c = C + i * ldc;
            for (frnn_int j = 0; j < N; j++) c[j] = c[j] + a0 * b0[j];
        }
    }
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

const FN(frnn_gemm_table) FRNN_CAT(FN(frnn_gemm), FRNN_ISA) = {
    .isa = FRNN_STR(FRNN_ISA),
    .nn = ISA_FN(gemm_nn),
    .tn = ISA_FN(gemm_tn),
    .nt = ISA_FN(gemm_nt),
};
