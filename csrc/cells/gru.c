/* gru.c - GRU cell as PyTorch defines it, gate order r, z, n: forward, BPTT,
 * step.
 *
 * T = time, B = batch, In = input, H = hidden, GH = 3H.
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r (W_hn h + b_hn))     <- reset applied after W_hn
 *   h_t = (1 - z) n + z h_{t-1}
 * Because r multiplies W_hn h + b_hn, the gradients w.r.t. the input-side and
 * the hidden-side pre-activations differ in the n block (Gx vs Gh).
 * Workspace per (t, b): [r z n hn], 4H values, hn = W_hn h_{t-1} + b_hn.
 * The whole-window forward/backward around these loops is layer.c's.
 */
#include <stdlib.h>
#include <string.h>
#include "cells/cell.h"
#include "runtime/memory.h"

/* One step on one block of hidden units (see lstm.c: the same scheme). */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_int B, H, block, gate_size;
    const real *xp, *w_hh_p, *b_hh, *h_prev; /* xp: [B, 3H] this step's */
    real *hp, *h, *w;                        /* hp: [B, 3H] scratch; w: [B, 4H] ws or scratch */
} FN(gru_step_job);

static void FN(gru_step_block)(void *arg, frnn_int task) {
    const FN(gru_step_job) *j = arg;
    const frnn_int B = j->B, H = j->H, GH = 3 * H;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    if (cols == H && H % j->k->nr == 0) /* the gates' panels are one [H, 3H] packing */
        j->k->gemm_nn_packed(B, GH, H, j->h_prev, H, j->w_hh_p, 0, j->hp, GH);
    else
        for (int g = 0; g < 3; g++)
            j->k->gemm_nn_packed(B, cols, H, j->h_prev, H, j->w_hh_p + g * j->gate_size + j0 * H,
                                 0, j->hp + g * H + j0, GH);
    j->k->gru_forward_math(B, H, j0, cols, j->xp, j->hp, j->b_hh, j->h_prev, j->h, j->w);
}

/* scratch: hp [B, 3H], then gates [B, 4H], used when ws is NULL */
static void FN(gru_steps)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                          frnn_int steps, frnn_int B, real *xp, const real *w_hh_p,
                          const real *b_hh, const real *h_prev0, real *c, real *out, real *ws,
                          real *scratch) {
    (void)c;
    const frnn_int H = cell->H;
    real *hp = scratch, *gates = scratch + B * cell->GH;
    const frnn_int GH = 3 * H;
    const frnn_step_split split = frnn_split_step(B, GH, H, k->nr);
    FN(gru_step_job) job = {k, B, H, split.block, k->packed_size(H, H), NULL, w_hh_p, b_hh, NULL,
                            hp, NULL, NULL};
    for (frnn_int s = 0; s < steps; s++) {
        job.xp = xp + s * B * GH;
        job.h_prev = s == 0 ? h_prev0 : out + (s - 1) * B * H;
        job.h = out + s * B * H;
        job.w = ws ? ws + s * B * 4 * H : gates;
        frnn_parallel_for(split.tasks, split.threads, FN(gru_step_block), &job);
    }
}

/* One backward iteration on one block (see lstm.c): dh += Gh[t+1] W_hh for
 * the block's columns, then the gate gradients of step t. */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_int T, B, H, block, t;
    const real *w_hh_p, *h0, *out, *ws, *d_out;
    real *dh_next, *Gx, *Gh;
} FN(gru_grad_job);

static void FN(gru_grad_block)(void *arg, frnn_int task) {
    const FN(gru_grad_job) *j = arg;
    const frnn_int B = j->B, H = j->H, GH = 3 * H, t = j->t;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    if (t + 1 < j->T)
        j->k->gemm_nn_packed(B, cols, GH, j->Gh + (t + 1) * B * GH, GH, j->w_hh_p + j0 * GH, 1,
                             j->dh_next + j0, H);
    if (t < 0) return;
    const real *h_prev = t == 0 ? j->h0 : j->out + (t - 1) * B * H;
    j->k->gru_backward_math(B, H, j0, cols, j->ws + t * B * 4 * H, h_prev, j->d_out + t * B * H,
                            j->dh_next, j->Gx + t * B * GH, j->Gh + t * B * GH);
}

static void FN(gru_gate_grads)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                               frnn_int T, frnn_int B, const real *w_hh_p, const real *h0,
                               const real *c0, const real *out, const real *ws,
                               const real *d_out, real *dh_next, real *dc, real *Gx, real *Gh) {
    (void)c0, (void)dc;
    const frnn_int H = cell->H;
    const frnn_int GH = 3 * H;
    const frnn_step_split split = frnn_split_step(B, GH, H, k->nr);
    FN(gru_grad_job) job = {k, T, B, H, split.block, 0, w_hh_p, h0, out, ws, d_out, dh_next, Gx,
                            Gh};
    for (job.t = T - 1; job.t >= -1; job.t--)
        frnn_parallel_for(split.tasks, split.threads, FN(gru_grad_block), &job);
}

static int FN(gru_step)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k, frnn_int B,
                        frnn_int In, const real *x, const real *w_ih, const real *w_hh,
                        const real *b_ih, const real *b_hh, const real *h, const real *c,
                        real *h_out, real *c_out) {
    (void)c, (void)c_out;
    const frnn_int H = cell->H, GH = cell->GH;
    size_t bytes; /* xp, hp [B, 3H], h_new [B, H], gates [B, 4H] */
    if (frnn_size_bytes(frnn_size_mul(B, frnn_size_add(2 * GH, 5 * H)), sizeof(real), &bytes))
        return FRNN_ERR_TOO_LARGE;
    real *scratch = frnn_alloc(bytes);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *xp = scratch;         /* [B, 3H] */
    real *hp = xp + B * GH;     /* [B, 3H] */
    real *h_new = hp + B * GH;  /* [B, H] */
    real *gates = h_new + B * H; /* [B, 4H] */
    for (frnn_int b = 0; b < B; b++) memcpy(xp + b * GH, b_ih, sizeof(real) * (size_t)GH);
    k->gemm_nt(B, GH, In, x, In, w_ih, In, 1, xp, GH);
    k->gemm_nt(B, GH, H, h, H, w_hh, H, 0, hp, GH);
    k->gru_forward_math(B, H, 0, H, xp, hp, b_hh, h, h_new, gates);
    memcpy(h_out, h_new, sizeof(real) * (size_t)(B * H));
    free(scratch);
    return FRNN_OK;
}

/* Three gates; the workspace is [r z n hn]; the forward loop's scratch is
 * hp and the gates (3H + 4H per row); backward keeps Gh apart from Gx (the
 * n block) and reads h_{t-1}. */
const FN(frnn_cell_ops) FN(frnn_gru_ops) = {
    FRNN_CELL_GRU, 3, 4, 0, 1, 7, 0, FRNN_READS_H_PREV, 0,
    FN(gru_steps), FN(gru_gate_grads), FN(gru_step), NULL, NULL};
