/* leaky.c - the leaky-integrator (leaky tanh) cell: forward, BPTT, step.
 *
 * T = time, B = batch, In = input, H = hidden; one gate, so GH = H; the
 * leak rate a = desc.leak_rate in (0, 1] (checked by leaky_check):
 *   u_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
 *   h_t = (1 - a) h_{t-1} + a u_t
 * a = 1 is the Elman tanh cell (cells/rnn.c) exactly: (1 - a) h_{t-1} is
 * then 0 h_{t-1} and a u_t is u_t.
 * Workspace per (t, b): [u], H values. The backward needs tanh's output u_t
 * (tanh' = 1 - u^2), which h_t is not when a < 1; recovering it as
 * (h_t - (1 - a) h_{t-1}) / a would divide by a small a, so it is saved.
 * Backward, with dh the whole delta into h_t (d_out[t] plus what step t+1
 * passed back):
 *   G_t = a dh (1 - u_t^2)                (Gx = Gh: the pre-activation's)
 *   dh_{t-1} = (1 - a) dh + G_t W_hh
 * The (1 - a) dh part is left in dh by the step's math, and the next
 * iteration's recurrent product accumulates G_t W_hh onto it. Backward
 * therefore reads ws[t] only (no h_t, no h_{t-1}). The gate math is simple
 * and stays here, through the table's tanh (rnn_forward_math); the
 * whole-window forward/backward around these loops is layer.c's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cells/cell.h"
#include "runtime/memory.h"

/* FRNN_OK if desc's leak rate is a finite number in (0, 1]; the rate is a
 * double whatever the dtype, so this check does not depend on it. */
static int FN(leaky_check)(const frnn_cell_desc *desc) {
    const double a = desc->leak_rate;
    return isfinite(a) && a > 0.0 && a <= 1.0 ? FRNN_OK : FRNN_ERR_UNSUPPORTED;
}

/* One step on one block of hidden units (the scheme of rnn.c and lstm.c:
 * the recurrent product accumulates onto the consumed projection). */
typedef struct {
    const FN(frnn_kernel_table) *k;
    real a, keep; /* the leak rate and 1 - a */
    frnn_int B, H, block;
    const real *w_hh_p, *b_hh, *h_prev;
    real *xp, *u, *h; /* u: ws[t] (training) or h itself (inference) */
} FN(leaky_step_job);

static void FN(leaky_step_block)(void *arg, frnn_int task) {
    const FN(leaky_step_job) *j = arg;
    const frnn_int B = j->B, H = j->H;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    j->k->gemm_nn_packed(B, cols, H, j->h_prev, H, j->w_hh_p + j0 * H, 1, j->xp + j0, H);
    j->k->rnn_forward_math(FRNN_ACT_TANH, B, H, j0, cols, j->xp, j->b_hh, j->u);
    for (frnn_int b = 0; b < B; b++) {
        const frnn_int at = b * H + j0;
        const real *hp = j->h_prev + at, *ub = j->u + at;
        real *hb = j->h + at;
        for (frnn_int v = 0; v < cols; v++) hb[v] = j->keep * hp[v] + j->a * ub[v];
    }
}

static void FN(leaky_steps)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                            frnn_int steps, frnn_int B, real *xp, const real *w_hh_p,
                            const real *b_hh, const real *h_prev0, real *c, real *out, real *ws,
                            real *scratch) {
    (void)c, (void)scratch; /* no cell state, no scratch */
    const frnn_int H = cell->H;
    const real a = (real)cell->desc.leak_rate;
    const frnn_step_split split = frnn_split_step(B, H, H, k->nr);
    FN(leaky_step_job) job = {k, a, (real)1 - a, B, H, split.block, w_hh_p, b_hh, NULL,
                              NULL, NULL, NULL};
    for (frnn_int s = 0; s < steps; s++) {
        job.xp = xp + s * B * H;
        job.h_prev = s == 0 ? h_prev0 : out + (s - 1) * B * H;
        job.h = out + s * B * H;
        job.u = ws ? ws + s * B * H : job.h;
        frnn_parallel_for(split.tasks, split.threads, FN(leaky_step_block), &job);
    }
}

/* One backward iteration on one block: first the product G_{t+1} W_hh
 * accumulated onto dh (which holds (1 - a) dh_{t+1} for these units), then
 * step t's math. */
typedef struct {
    const FN(frnn_kernel_table) *k;
    real a, keep;
    frnn_int T, B, H, block, t;
    const real *w_hh_p, *ws, *d_out;
    real *dh, *G;
} FN(leaky_grad_job);

static void FN(leaky_grad_block)(void *arg, frnn_int task) {
    const FN(leaky_grad_job) *j = arg;
    const frnn_int B = j->B, H = j->H, t = j->t;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    if (t + 1 < j->T)
        j->k->gemm_nn_packed(B, cols, H, j->G + (t + 1) * B * H, H, j->w_hh_p + j0 * H, 1,
                             j->dh + j0, H);
    if (t < 0) return;
    for (frnn_int b = 0; b < B; b++) {
        const frnn_int at = b * H + j0, st = t * B * H + at;
        const real *ub = j->ws + st, *db = j->d_out + st;
        real *hb = j->dh + at, *gb = j->G + st;
        for (frnn_int v = 0; v < cols; v++) {
            const real total = db[v] + hb[v];
            gb[v] = j->a * total * ((real)1 - ub[v] * ub[v]);
            hb[v] = j->keep * total;
        }
    }
}

/* Gx and Gh are equal: G is written to Gx, Gh is not read. */
static void FN(leaky_gate_grads)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                                 frnn_int T, frnn_int B, const real *w_hh_p, const real *h0,
                                 const real *c0, const real *out, const real *ws,
                                 const real *d_out, real *dh, real *dc, real *G, real *Gh) {
    (void)h0, (void)c0, (void)out, (void)dc, (void)Gh;
    const frnn_int H = cell->H;
    const real a = (real)cell->desc.leak_rate;
    const frnn_step_split split = frnn_split_step(B, H, H, k->nr);
    FN(leaky_grad_job) job = {k, a, (real)1 - a, T, B, H, split.block, 0, w_hh_p, ws, d_out,
                              dh, G};
    for (job.t = T - 1; job.t >= -1; job.t--)
        frnn_parallel_for(split.tasks, split.threads, FN(leaky_grad_block), &job);
}

static int FN(leaky_step)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k, frnn_int B,
                          frnn_int In, const real *x, const real *w_ih, const real *w_hh,
                          const real *b_ih, const real *b_hh, const real *h, const real *c,
                          real *h_out, real *c_out) {
    (void)c, (void)c_out;
    const frnn_int H = cell->H;
    const real a = (real)cell->desc.leak_rate, keep = (real)1 - a;
    size_t bytes;
    if (frnn_size_bytes(frnn_size_mul(B, H), sizeof(real), &bytes)) return FRNN_ERR_TOO_LARGE;
    real *u = frnn_alloc(bytes); /* [B, H] pre-activation, then u */
    if (!u) return FRNN_ERR_NOMEM;
    for (frnn_int b = 0; b < B; b++) memcpy(u + b * H, b_ih, sizeof(real) * (size_t)H);
    k->gemm_nt(B, H, In, x, In, w_ih, In, 1, u, H);
    k->gemm_nt(B, H, H, h, H, w_hh, H, 1, u, H);
    k->rnn_forward_math(FRNN_ACT_TANH, B, H, 0, H, u, b_hh, u);
    /* element i of h is read just before element i of h_out is written, so
     * h_out may alias h */
    for (frnn_int i = 0; i < B * H; i++) h_out[i] = keep * h[i] + a * u[i];
    free(u);
    return FRNN_OK;
}

/* One gate, a workspace of one block (u), no scratch; backward reads ws[t]
 * only. */
const FN(frnn_cell_ops) FN(frnn_leaky_ops) = {
    FRNN_CELL_LEAKY, 1, 1, 0, 0, 0, 0, 0, 0, FN(leaky_steps), FN(leaky_gate_grads),
    FN(leaky_step), NULL, FN(leaky_check)};
