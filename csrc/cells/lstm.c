/* lstm.c - LSTM cell, PyTorch gate order i, f, g, o: forward, BPTT, step.
 *
 * T = time, B = batch, In = input, H = hidden, GH = 4H.
 *   [i f g o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
 *   i, f, o = sigmoid(.), g = tanh(.)
 *   c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
 * Workspace per (t, b): [i f g o c_t], 5H values; tanh(c_t) is recomputed
 * in backward rather than stored. Compiled once per dtype; the whole-window
 * forward/backward around these loops is layer.c's.
 */
#include <stdlib.h>
#include <string.h>
#include "cells/cell.h"
#include "runtime/memory.h"

/* One step's work on one block of hidden units: what a task of the
 * threaded step does (threads.h). Units [j0, j0 + cols) of all four gates
 * depend only on h_{t-1} and the same units of c, so blocks are independent
 * and the gate math runs right after the block's products, while they are
 * still in cache. */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_int B, H, block, gate_size; /* gate_size: one gate's packed W_hh^T */
    const real *w_hh_p, *b_hh, *h_prev;
    real *xp, *c, *h, *ws; /* xp: [B, 4H] this step's, consumed; ws: [B, 5H] or NULL */
} FN(lstm_step_job);

static void FN(lstm_step_block)(void *arg, frnn_int task) {
    const FN(lstm_step_job) *j = arg;
    const FN(frnn_kernel_table) *k = j->k;
    const frnn_int B = j->B, H = j->H, GH = 4 * H;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    /* The products accumulate onto the input projection in place: it is
     * this step's and needed nowhere else, and a copy of it per step cost
     * as much as the gate math at large sizes. */
    if (cols == H && H % k->nr == 0) /* the gates' panels are one [H, 4H] packing */
        k->gemm_nn_packed(B, GH, H, j->h_prev, H, j->w_hh_p, 1, j->xp, GH);
    else
        for (int g = 0; g < 4; g++)
            k->gemm_nn_packed(B, cols, H, j->h_prev, H, j->w_hh_p + g * j->gate_size + j0 * H, 1,
                              j->xp + g * H + j0, GH);
    k->lstm_forward_math(B, H, j0, cols, j->xp, j->b_hh, j->c, j->h, j->ws);
}

static void FN(lstm_steps)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                           frnn_int steps, frnn_int B, real *xp, const real *w_hh_p,
                           const real *b_hh, const real *h_prev0, real *c, real *out, real *ws,
                           real *scratch) {
    (void)scratch;
    const frnn_int H = cell->H;
    const frnn_int GH = 4 * H;
    const frnn_step_split split = frnn_split_step(B, GH, H, k->nr);
    FN(lstm_step_job) job = {k, B, H, split.block, k->packed_size(H, H), w_hh_p, b_hh, NULL,
                             NULL, c, NULL, NULL};
    for (frnn_int s = 0; s < steps; s++) {
        job.xp = xp + s * B * GH;
        job.h_prev = s == 0 ? h_prev0 : out + (s - 1) * B * H;
        job.h = out + s * B * H;
        job.ws = ws ? ws + s * B * 5 * H : NULL;
        frnn_parallel_for(split.tasks, split.threads, FN(lstm_step_block), &job);
    }
}

/* One backward iteration on one block of hidden units: first the block's
 * columns of dh = G[t+1] W_hh (the product that closes step t+1, which
 * needs every unit's gate gradients, hence a job boundary before it), then
 * the gate gradients of step t for the block (t = -1: the product only). */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_int T, B, H, block, t;
    const real *w_hh_p, *c0, *ws, *d_out;
    real *dh_next, *dc, *G;
} FN(lstm_grad_job);

static void FN(lstm_grad_block)(void *arg, frnn_int task) {
    const FN(lstm_grad_job) *j = arg;
    const FN(frnn_kernel_table) *k = j->k;
    const frnn_int B = j->B, H = j->H, GH = 4 * H, t = j->t;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    if (t + 1 < j->T)
        k->gemm_nn_packed(B, cols, GH, j->G + (t + 1) * B * GH, GH, j->w_hh_p + j0 * GH, 0,
                          j->dh_next + j0, H);
    if (t < 0) return;
    const real *c_prev = t == 0 ? j->c0 : j->ws + (t - 1) * B * 5 * H + 4 * H;
    k->lstm_backward_math(B, H, j0, cols, j->ws + t * B * 5 * H, c_prev, t == 0 ? H : 5 * H,
                          j->d_out + t * B * H, j->dh_next, j->dc, j->G + t * B * GH);
}

/* Gx and Gh are equal for LSTM: G is written to Gx, Gh is not read. */
static void FN(lstm_gate_grads)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                                frnn_int T, frnn_int B, const real *w_hh_p, const real *h0,
                                const real *c0, const real *out, const real *ws,
                                const real *d_out, real *dh_next, real *dc, real *G, real *Gh) {
    (void)h0, (void)out, (void)Gh;
    const frnn_int H = cell->H;
    const frnn_int GH = 4 * H;
    const frnn_step_split split = frnn_split_step(B, GH, H, k->nr);
    FN(lstm_grad_job) job = {k, T, B, H, split.block, 0, w_hh_p, c0, ws, d_out, dh_next, dc, G};
    for (job.t = T - 1; job.t >= -1; job.t--)
        frnn_parallel_for(split.tasks, split.threads, FN(lstm_grad_block), &job);
}

static int FN(lstm_step)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                         frnn_int B, frnn_int In, const real *x, const real *w_ih,
                         const real *w_hh, const real *b_ih, const real *b_hh, const real *h,
                         const real *c, real *h_out, real *c_out) {
    const frnn_int H = cell->H, GH = cell->GH;
    size_t bytes; /* gates [B, 4H], c_new, h_new [B, H] */
    if (frnn_size_bytes(frnn_size_mul(B, frnn_size_add(GH, 2 * H)), sizeof(real), &bytes))
        return FRNN_ERR_TOO_LARGE;
    real *scratch = frnn_alloc(bytes);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *gates = scratch;          /* [B, 4H] */
    real *c_new = gates + B * GH;   /* [B, H] */
    real *h_new = c_new + B * H;    /* [B, H] */
    for (frnn_int b = 0; b < B; b++) memcpy(gates + b * GH, b_ih, sizeof(real) * (size_t)GH);
    k->gemm_nt(B, GH, In, x, In, w_ih, In, 1, gates, GH);
    k->gemm_nt(B, GH, H, h, H, w_hh, H, 1, gates, GH);
    memcpy(c_new, c, sizeof(real) * (size_t)(B * H));
    k->lstm_forward_math(B, H, 0, H, gates, b_hh, c_new, h_new, NULL);
    /* Old state fully consumed: the outputs may alias it. */
    memcpy(h_out, h_new, sizeof(real) * (size_t)(B * H));
    memcpy(c_out, c_new, sizeof(real) * (size_t)(B * H));
    free(scratch);
    return FRNN_OK;
}

/* Four gates; the workspace is [i f g o c_t] with c_t at 4H; backward reads
 * c_{t-1} (the workspace of t-1, or c0). */
const FN(frnn_cell_ops) FN(frnn_lstm_ops) = {
    FRNN_CELL_LSTM, 4, 5, 1, 0, 0, 4, FRNN_READS_C_PREV, 0,
    FN(lstm_steps), FN(lstm_gate_grads), FN(lstm_step), NULL, NULL};
