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

/* Rows per task of a threaded product over M rows: a multiple of 8 rows
 * (whole micro-tiles on every ISA; never a lone row, which the kernel sums
 * in a different order), at least 64 so that the panels each task packs on
 * its own are amortised, and about eight tasks in all. It depends on M
 * alone, not on the thread count, so results do not either. */
static frnn_int FN(rows_per_task)(frnn_int M) {
    frnn_int rows = (M + 7) / 8;
    if (rows < 64) rows = 64;
    return (rows + 7) / 8 * 8;
}

typedef struct {
    frnn_int rows, per_task, In, GH;
    const real *x, *w_ih_packed, *b_ih;
    real *xp;
} FN(projection_job);

static void FN(projection_rows)(void *arg, frnn_int task) {
    const FN(projection_job) *j = arg;
    const frnn_int r0 = task * j->per_task;
    const frnn_int n = j->rows - r0 < j->per_task ? j->rows - r0 : j->per_task;
    real *xp = j->xp + r0 * j->GH;
    for (frnn_int r = 0; r < n; r++) memcpy(xp + r * j->GH, j->b_ih, (size_t)j->GH * sizeof(real));
    FN(frnn_active)()->gemm_nn_packed(n, j->GH, j->In, j->x + r0 * j->In, j->In, j->w_ih_packed, 1,
                                      xp, j->GH);
}

void FN(frnn_project_inputs)(frnn_int rows, frnn_int In, frnn_int GH, const real *x,
                             const real *w_ih_packed, const real *b_ih, real *xp) {
    const int threads = frnn_threads_for(2.0 * (double)rows * (double)In * (double)GH, rows / 64);
    FN(projection_job) job = {rows, FN(rows_per_task)(rows), In, GH, x, w_ih_packed,
                              b_ih, xp};
    frnn_parallel_for((rows + job.per_task - 1) / job.per_task, threads, FN(projection_rows), &job);
}

/* frnn_parameter_grads as one job of two kinds of task: blocks of rows of
 * dx (over T*B) and blocks of rows of dw_ih, dw_hh, db_ih, db_hh (over GH,
 * i.e. columns of the gate gradients). Every output element is computed
 * by exactly the same sequence of operations whatever the split. */
typedef struct {
    frnn_int T, B, In, H, GH, dx_per_task, dw_per_task, dw_tasks;
    const real *Gx, *Gh, *x, *w_ih, *h0, *out;
    real *dx, *dw_ih, *dw_hh, *db_ih, *db_hh;
} FN(grads_job);

/* y[j] = sum_i a[i, j] for j in [0, n) of a [M, lda], rows summed in order. */
static void FN(column_sums_strided)(frnn_int M, frnn_int n, const real *a, frnn_int lda,
                                    real *y) {
    memset(y, 0, (size_t)n * sizeof(real));
    for (frnn_int i = 0; i < M; i++)
        for (frnn_int j = 0; j < n; j++) y[j] += a[i * lda + j];
}

static void FN(grads_block)(void *arg, frnn_int task) {
    const FN(grads_job) *j = arg;
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int TB = j->T * j->B, In = j->In, H = j->H, GH = j->GH;
    /* The weight-gradient blocks (each a K = T*B product for two matrices)
     * are the larger tasks: they come first so that claiming ends on the
     * small dx blocks and the threads finish together. */
    if (task >= j->dw_tasks) {
        const frnn_int r0 = (task - j->dw_tasks) * j->dx_per_task;
        const frnn_int n = TB - r0 < j->dx_per_task ? TB - r0 : j->dx_per_task;
        k->gemm_nn(n, In, GH, j->Gx + r0 * GH, GH, j->w_ih, In, 0, j->dx + r0 * In, In);
        return;
    }
    const frnn_int g0 = task * j->dw_per_task;
    const frnn_int n = GH - g0 < j->dw_per_task ? GH - g0 : j->dw_per_task;
    k->gemm_tn(n, In, TB, j->Gx + g0, GH, j->x, In, 0, j->dw_ih + g0 * In, In);
    /* h0 is not contiguous with out, so step 0 is its own product. */
    k->gemm_tn(n, H, j->B, j->Gh + g0, GH, j->h0, H, 0, j->dw_hh + g0 * H, H);
    if (j->T > 1)
        k->gemm_tn(n, H, (j->T - 1) * j->B, j->Gh + j->B * GH + g0, GH, j->out, H, 1,
                   j->dw_hh + g0 * H, H);
    FN(column_sums_strided)(TB, n, j->Gx + g0, GH, j->db_ih + g0);
    if (j->Gh == j->Gx)
        memcpy(j->db_hh + g0, j->db_ih + g0, sizeof(real) * (size_t)n);
    else
        FN(column_sums_strided)(TB, n, j->Gh + g0, GH, j->db_hh + g0);
}

void FN(frnn_parameter_grads)(frnn_int T, frnn_int B, frnn_int In, frnn_int H, frnn_int GH,
                              const real *Gx, const real *Gh, const real *x,
                              const real *w_ih, const real *h0, const real *out, real *dx,
                              real *dw_ih, real *dw_hh, real *db_ih, real *db_hh) {
    const frnn_int TB = T * B;
    const double flops = 2.0 * (double)TB * (double)GH * (2.0 * (double)In + (double)H);
    const int threads = frnn_threads_for(flops, TB / 64 + GH / 64);
    FN(grads_job) job = {T, B, In, H, GH, FN(rows_per_task)(TB), FN(rows_per_task)(GH), 0,
                         Gx, Gh, x, w_ih, h0, out, dx, dw_ih, dw_hh, db_ih, db_hh};
    job.dw_tasks = (GH + job.dw_per_task - 1) / job.dw_per_task;
    const frnn_int dx_tasks = (TB + job.dx_per_task - 1) / job.dx_per_task;
    frnn_parallel_for(job.dw_tasks + dx_tasks, threads, FN(grads_block), &job);
}

void FN(frnn_activation)(int which, frnn_int n, const real *x, real *y) {
    if (which == 0)
        active->sigmoid(n, x, y);
    else
        active->tanh(n, x, y);
}
