/* common.c - per-dtype plumbing the cells share: the active kernel table and
 * the small helpers every cell uses. Compiled once per dtype. */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "kernels_export.h"

static const FN(frnn_kernel_table) *active = &FRNN_CAT(FN(frnn_kernels), baseline);

const FN(frnn_kernel_table) *FN(frnn_active)(void) { return active; }

int FN(frnn_use_isa)(const char *isa) {
    if (strcmp(isa, "baseline") == 0) {
        active = &FRNN_CAT(FN(frnn_kernels), baseline);
        return 1;
    }
#if defined(FRNN_HAVE_AVX2)
    if (strcmp(isa, "avx2") == 0) {
        active = &FRNN_CAT(FN(frnn_kernels), avx2);
        return 1;
    }
    if (strcmp(isa, "avx512") == 0) {
        active = &FRNN_CAT(FN(frnn_kernels), avx512);
        return 1;
    }
#endif
    return 0;
}

void FN(frnn_column_sums)(frnn_int M, frnn_int N, const real *a, real *y) {
    memset(y, 0, (size_t)N * sizeof(real));
    for (frnn_int i = 0; i < M; i++)
        for (frnn_int j = 0; j < N; j++) y[j] += a[i * N + j];
}

void FN(frnn_project_inputs)(frnn_int rows, frnn_int In, frnn_int GH, const real *x,
                             const real *w_ih_packed, const real *b_ih, real *xp) {
    for (frnn_int r = 0; r < rows; r++) memcpy(xp + r * GH, b_ih, (size_t)GH * sizeof(real));
    FN(frnn_active)()->gemm_nn_packed(rows, GH, In, x, In, w_ih_packed, 1, xp, GH);
}

void FN(frnn_parameter_grads)(frnn_int T, frnn_int B, frnn_int In, frnn_int H, frnn_int GH,
                              const real *Gx, const real *Gh, const real *x,
                              const real *w_ih, const real *h0, const real *out, real *dx,
                              real *dw_ih, real *dw_hh, real *db_ih, real *db_hh) {
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    k->gemm_nn(T * B, In, GH, Gx, GH, w_ih, In, 0, dx, In);
    k->gemm_tn(GH, In, T * B, Gx, GH, x, In, 0, dw_ih, In);
    /* h0 is not contiguous with out, so step 0 is its own product. */
    k->gemm_tn(GH, H, B, Gh, GH, h0, H, 0, dw_hh, H);
    if (T > 1) k->gemm_tn(GH, H, (T - 1) * B, Gh + B * GH, GH, out, H, 1, dw_hh, H);
    FN(frnn_column_sums)(T * B, GH, Gx, db_ih);
    if (Gh == Gx)
        memcpy(db_hh, db_ih, sizeof(real) * (size_t)GH);
    else
        FN(frnn_column_sums)(T * B, GH, Gh, db_hh);
}

void FN(frnn_activation)(int which, frnn_int n, const real *x, real *y) {
    if (which == 0)
        active->sigmoid(n, x, y);
    else
        active->tanh(n, x, y);
}
