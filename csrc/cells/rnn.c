/* rnn.c - Elman RNN cell (tanh, ReLU, sigmoid): forward, BPTT, step.
 *
 * T = time, B = batch, In = input, H = hidden; one gate, so GH = H.
 *   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
 * No workspace: the activation derivatives are functions of the outputs
 * (tanh' = 1 - h^2, relu' = [h > 0], sigmoid' = h (1 - h)), so backward
 * needs only `out` and h0. Compiled once per dtype (see real.h). The whole-
 * window forward/backward around these loops is layer.c's, shared by all
 * cells; this file has the time loops and the single step of the three
 * Elman cells, which differ only in the activation (their ops' variant).
 */
#include <stdlib.h>
#include <string.h>
#include "cells/cell.h"
#include "runtime/memory.h"

/* One step on one block of hidden units (see lstm.c: the same scheme, the
 * products accumulating onto the consumed projection in place). */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_activation act;
    frnn_int B, H, block;
    const real *w_hh_p, *b_hh, *h_prev;
    real *xp, *h;
} FN(rnn_step_job);

static void FN(rnn_step_block)(void *arg, frnn_int task) {
    const FN(rnn_step_job) *j = arg;
    const frnn_int B = j->B, H = j->H;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    j->k->gemm_nn_packed(B, cols, H, j->h_prev, H, j->w_hh_p + j0 * H, 1, j->xp + j0, H);
    j->k->rnn_forward_math(j->act, B, H, j0, cols, j->xp, j->b_hh, j->h);
}

static void FN(rnn_steps)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                          frnn_int steps, frnn_int B, real *xp, const real *w_hh_p,
                          const real *b_hh, const real *h_prev0, real *c, real *out, real *ws,
                          real *scratch) {
    (void)c, (void)ws, (void)scratch; /* no cell state, no workspace, no scratch */
    const frnn_int H = cell->H;
    const frnn_activation act = (frnn_activation)cell->ops->variant;
    const frnn_step_split split = frnn_split_step(B, H, H, k->nr);
    FN(rnn_step_job) job = {k, act, B, H, split.block, w_hh_p, b_hh, NULL, NULL, NULL};
    for (frnn_int s = 0; s < steps; s++) {
        job.xp = xp + s * B * H;
        job.h_prev = s == 0 ? h_prev0 : out + (s - 1) * B * H;
        job.h = out + s * B * H;
        frnn_parallel_for(split.tasks, split.threads, FN(rnn_step_block), &job);
    }
}

/* One backward iteration on one block (see lstm.c). */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_activation act;
    frnn_int T, B, H, block, t;
    const real *w_hh_p, *out, *d_out;
    real *dh, *G;
} FN(rnn_grad_job);

static void FN(rnn_grad_block)(void *arg, frnn_int task) {
    const FN(rnn_grad_job) *j = arg;
    const frnn_int B = j->B, H = j->H, t = j->t;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    if (t + 1 < j->T)
        j->k->gemm_nn_packed(B, cols, H, j->G + (t + 1) * B * H, H, j->w_hh_p + j0 * H, 0,
                             j->dh + j0, H);
    if (t < 0) return;
    const frnn_int at = t * B * H;
    j->k->rnn_backward_math(j->act, B, H, j0, cols, j->out + at, j->d_out + at, j->dh, j->G + at);
}

/* Gx and Gh are equal for Elman: G is written to Gx, Gh is not read. */
static void FN(rnn_gate_grads)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                               frnn_int T, frnn_int B, const real *w_hh_p, const real *h0,
                               const real *c0, const real *out, const real *ws,
                               const real *d_out, real *dh, real *dc, real *G, real *Gh) {
    (void)h0, (void)c0, (void)ws, (void)dc, (void)Gh;
    const frnn_int H = cell->H;
    const frnn_activation act = (frnn_activation)cell->ops->variant;
    const frnn_step_split split = frnn_split_step(B, H, H, k->nr);
    FN(rnn_grad_job) job = {k, act, T, B, H, split.block, 0, w_hh_p, out, d_out, dh, G};
    for (job.t = T - 1; job.t >= -1; job.t--)
        frnn_parallel_for(split.tasks, split.threads, FN(rnn_grad_block), &job);
}

static int FN(rnn_step)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k, frnn_int B,
                        frnn_int In, const real *x, const real *w_ih, const real *w_hh,
                        const real *b_ih, const real *b_hh, const real *h, const real *c,
                        real *h_out, real *c_out) {
    (void)c, (void)c_out;
    const frnn_int H = cell->H;
    const frnn_activation act = (frnn_activation)cell->ops->variant;
    size_t bytes;
    if (frnn_size_bytes(frnn_size_mul(B, H), sizeof(real), &bytes)) return FRNN_ERR_TOO_LARGE;
    real *a = frnn_alloc(bytes); /* [B, H] pre-activation */
    if (!a) return FRNN_ERR_NOMEM;
    for (frnn_int b = 0; b < B; b++) memcpy(a + b * H, b_ih, sizeof(real) * (size_t)H);
    k->gemm_nt(B, H, In, x, In, w_ih, In, 1, a, H);
    k->gemm_nt(B, H, H, h, H, w_hh, H, 1, a, H);
    /* h is fully read above, so h_out may alias it. */
    k->rnn_forward_math(act, B, H, 0, H, a, b_hh, a);
    memcpy(h_out, a, sizeof(real) * (size_t)(B * H));
    free(a);
    return FRNN_OK;
}

/* One gate, no workspace, no scratch; backward reads h_t (the activation's
 * derivative is a function of it). */
#define FRNN_ELMAN_OPS(type, act)                                                          \
    {type, 1, 0, 0, 0, 0, 0, FRNN_READS_OUTPUT, act, FN(rnn_steps), FN(rnn_gate_grads),  \
     FN(rnn_step), NULL, NULL}
const FN(frnn_cell_ops) FN(frnn_rnn_tanh_ops) = FRNN_ELMAN_OPS(FRNN_CELL_RNN_TANH, FRNN_ACT_TANH);
const FN(frnn_cell_ops) FN(frnn_rnn_relu_ops) = FRNN_ELMAN_OPS(FRNN_CELL_RNN_RELU, FRNN_ACT_RELU);
const FN(frnn_cell_ops) FN(frnn_rnn_sigmoid_ops) =
    FRNN_ELMAN_OPS(FRNN_CELL_RNN_SIGMOID, FRNN_ACT_SIGMOID);
