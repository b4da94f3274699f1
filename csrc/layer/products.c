/* products.c - the threaded products around the cells' time loops: the
 * hoisted input projection, the packing of weights into panels, and the
 * parameter gradients backward forms after its loop (layer/products.h).
 *
 * Compiled once per dtype; every product goes through a kernel table the
 * caller passes, so a stream's products use the table that packed it. Not
 * here: anything cell-specific (cells/).
 */
#include <stdlib.h>
#include <string.h>
#include "layer/products.h"

void FN(frnn_column_sums)(frnn_int M, frnn_int N, const real *a, real *y) {
    memset(y, 0, (size_t)N * sizeof(real));
    for (frnn_int i = 0; i < M; i++)
        for (frnn_int j = 0; j < N; j++) y[j] += a[i * N + j];
}

/* Blocks of a threaded product. One thread computes each product whole;
 * with more, a product is cut into about two blocks per thread, at
 * boundaries that leave every element's arithmetic unchanged, so results
 * do not depend on the thread count:
 *   - rows at multiples of the table's micro-tile height k->mr (times
 *     ROW_TILES, so that a block is worth a hand-off), so each row lands
 *     in the same kind of tile as uncut;
 *   - columns at multiples of the panel width, so each column lands in the
 *     same panel; a column cut also never repacks an operand twice (a row
 *     cut of a product with an unpacked right-hand side packs it once per
 *     block, which costs about as much as 45 rows of multiply-adds). */
/* Row blocks are whole multiples of ROW_TILES micro-tiles: 24 rows on AVX2
 * (the fixed alignment this replaced), 32 on AVX-512, 16 on baseline. */
enum { ROW_TILES = 4 };
static frnn_int FN(row_align)(const FN(frnn_kernel_table) *k) { return ROW_TILES * k->mr; }

static frnn_int FN(block_size)(frnn_int n, int threads, frnn_int align) {
    if (threads <= 1) return n > 0 ? n : 1;
    frnn_int size = (n + 2 * threads - 1) / (2 * threads);
    size = (size + align - 1) / align * align;
    return size > 0 ? size : align;
}

static frnn_int FN(count_blocks)(frnn_int n, frnn_int size) { return n > 0 ? (n + size - 1) / size : 1; }

/* frnn_pack_items: task t packs panels [first, first + per) of one item. */
typedef struct {
    const FN(frnn_kernel_table) *k;
    const FN(frnn_pack_item) *items;
    int n;
    frnn_int per, first_task[FRNN_MAX_PACK_ITEMS + 1];
} FN(pack_job);

static void FN(pack_panels)(void *arg, frnn_int task) {
    const FN(pack_job) *j = arg;
    int i = 0;
    while (task >= j->first_task[i + 1]) i++;
    const FN(frnn_pack_item) *it = &j->items[i];
    const frnn_int j0 = (task - j->first_task[i]) * j->per * j->k->nr;
    const frnn_int cols = it->N - j0 < j->per * j->k->nr ? it->N - j0 : j->per * j->k->nr;
    /* the panels from column j0 on start at j0 * K in the packed form */
    j->k->pack_b(it->K, cols, it->B + j0 * it->cs, it->rs, it->cs, it->Bp + j0 * it->K);
}

void FN(frnn_pack_items)(const FN(frnn_kernel_table) *k, int n, const FN(frnn_pack_item) *items) {
    const frnn_int nr = k->nr;
    double elements = 0;
    frnn_int panels = 0;
    for (int i = 0; i < n; i++) {
        elements += (double)items[i].K * (double)items[i].N;
        panels += (items[i].N + nr - 1) / nr;
    }
    /* a copy, not arithmetic: weigh an element like a multiply-add */
    const int threads = frnn_threads_for(2.0 * elements, panels);
    FN(pack_job) job = {k, items, n, 0, {0}};
    job.per = threads > 1 ? (panels + 4 * threads - 1) / (4 * threads) : panels;
    if (job.per < 1) job.per = 1;
    for (int i = 0; i < n; i++) {
        const frnn_int item_panels = (items[i].N + nr - 1) / nr;
        job.first_task[i + 1] = job.first_task[i] + (item_panels + job.per - 1) / job.per;
    }
    frnn_parallel_for(job.first_task[n], threads, FN(pack_panels), &job);
}

typedef struct {
    const FN(frnn_kernel_table) *k;
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
    j->k->gemm_nn_packed(n, j->GH, j->In, j->x + r0 * j->In, j->In, j->w_ih_packed, 1, xp, j->GH);
}

void FN(frnn_project_inputs)(const FN(frnn_kernel_table) *k, frnn_int rows, frnn_int In,
                             frnn_int GH, const real *x, const real *w_ih_packed, const real *b_ih,
                             real *xp) {
    const int threads = frnn_threads_for(2.0 * (double)rows * (double)In * (double)GH,
                                         rows / FN(row_align)(k));
    FN(projection_job) job = {k, rows, FN(block_size)(rows, threads, FN(row_align)(k)), In, GH, x,
                              w_ih_packed, b_ih, xp};
    frnn_parallel_for(FN(count_blocks)(rows, job.per_task), threads, FN(projection_rows), &job);
}

/* frnn_parameter_grads as one job whose tasks are, in claiming order (the
 * largest first, so the threads finish together): column blocks of dw_hh,
 * column blocks of dw_ih, row blocks of dx, and the bias gradients. */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_int T, B, In, H, GH;
    frnn_int hh_cols, hh_tasks, ih_cols, ih_tasks, dx_rows, dx_tasks;
    const real *Gx, *Gh, *x, *w_ih, *h0, *out;
    real *dx, *dw_ih, *dw_hh, *db_ih, *db_hh;
} FN(grads_job);

static void FN(grads_block)(void *arg, frnn_int task) {
    const FN(grads_job) *j = arg;
    const FN(frnn_kernel_table) *k = j->k;
    const frnn_int TB = j->T * j->B, In = j->In, H = j->H, GH = j->GH;
    if (task < j->hh_tasks) { /* dw_hh[:, c0:c0+n] = sum_t Gh[t]^T h_{t-1}[:, c0:c0+n] */
        const frnn_int c0 = task * j->hh_cols, n = H - c0 < j->hh_cols ? H - c0 : j->hh_cols;
        /* h0 is not contiguous with out, so step 0 is its own product. */
        k->gemm_tn(GH, n, j->B, j->Gh, GH, j->h0 + c0, H, 0, j->dw_hh + c0, H);
        if (j->T > 1)
            k->gemm_tn(GH, n, (j->T - 1) * j->B, j->Gh + j->B * GH, GH, j->out + c0, H, 1,
                       j->dw_hh + c0, H);
        return;
    }
    task -= j->hh_tasks;
    if (task < j->ih_tasks) { /* dw_ih[:, c0:c0+n] = Gx^T x[:, c0:c0+n] */
        const frnn_int c0 = task * j->ih_cols, n = In - c0 < j->ih_cols ? In - c0 : j->ih_cols;
        k->gemm_tn(GH, n, TB, j->Gx, GH, j->x + c0, In, 0, j->dw_ih + c0, In);
        return;
    }
    task -= j->ih_tasks;
    if (task < j->dx_tasks) { /* dx[r0:r0+n] = Gx[r0:r0+n] W_ih */
        const frnn_int r0 = task * j->dx_rows, n = TB - r0 < j->dx_rows ? TB - r0 : j->dx_rows;
        k->gemm_nn(n, In, GH, j->Gx + r0 * GH, GH, j->w_ih, In, 0, j->dx + r0 * In, In);
        return;
    }
    FN(frnn_column_sums)(TB, GH, j->Gx, j->db_ih);
    if (j->Gh == j->Gx)
        memcpy(j->db_hh, j->db_ih, sizeof(real) * (size_t)GH);
    else
        FN(frnn_column_sums)(TB, GH, j->Gh, j->db_hh);
}

void FN(frnn_parameter_grads)(const FN(frnn_kernel_table) *k, frnn_int T, frnn_int B,
                              frnn_int In, frnn_int H, frnn_int GH,
                              const real *Gx, const real *Gh, const real *x,
                              const real *w_ih, const real *h0, const real *out, real *dx,
                              real *dw_ih, real *dw_hh, real *db_ih, real *db_hh) {
    const frnn_int TB = T * B, nr = k->nr;
    const double flops = 2.0 * (double)TB * (double)GH * (2.0 * (double)In + (double)H);
    const int threads = frnn_threads_for(flops, 4);
    FN(grads_job) job = {k, T, B, In, H, GH, 0, 0, 0, 0, 0, 0, Gx, Gh, x, w_ih, h0, out,
                         dx, dw_ih, dw_hh, db_ih, db_hh};
    job.hh_cols = FN(block_size)(H, threads, nr);
    job.hh_tasks = FN(count_blocks)(H, job.hh_cols);
    job.ih_cols = FN(block_size)(In, threads, nr);
    job.ih_tasks = FN(count_blocks)(In, job.ih_cols);
    job.dx_rows = FN(block_size)(TB, threads, FN(row_align)(k));
    job.dx_tasks = FN(count_blocks)(TB, job.dx_rows);
    frnn_parallel_for(job.hh_tasks + job.ih_tasks + job.dx_tasks + 1, threads, FN(grads_block),
                      &job);
}
