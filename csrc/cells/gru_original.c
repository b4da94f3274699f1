/* gru_original.c - the original GRU of Cho et al. 2014 (Keras reset_after=False,
 * oneDNN's default GRU), PyTorch's weight layout and gate order r, z, n:
 * forward, BPTT, step.
 *
 * T = time, B = batch, In = input, H = hidden, GH = 3H.
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + W_hn (r h) + b_hn)     <- reset applied before W_hn
 *   h_t = (1 - z) n + z h_{t-1}
 * Because r multiplies h before the product, W_hn's product cannot be formed
 * with W_hr's and W_hz's: a time step is two jobs (r, z and r h, then n and
 * h_t), and a backward iteration two as well (below). The recurrent product
 * of the n block reads r h, not h_{t-1}, so its weight gradient is
 * sum_t dn^T (r h): this cell's ops supply it (recurrent_input_grads) after
 * the shared products have formed the r and z blocks from h_{t-1}.
 * Workspace per (t, b): [r z n rh], 4H values, rh = r h_{t-1}.
 * Gate math is here, not in the per-ISA table: it runs through the table's
 * vectorised sigmoid / tanh over row segments (deliberately not a fused
 * kernel yet; the torch-form GRU's is kernels/gates.c's).
 * The whole-window forward/backward around these loops is layer.c's.
 */
#include <stdlib.h>
#include <string.h>
#include "cells/cell.h"
#include "runtime/memory.h"

/* One forward step, cut into blocks of hidden units: phase 0 forms r, z and
 * r h for the block (from all of h_{t-1}), phase 1 the block's n and h_t
 * (from all of r h, hence the job boundary between them). */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_int B, H, block, gate_size;
    const real *xp, *w_hh_p, *b_hh, *h_prev; /* xp: [B, 3H] this step's */
    real *hp, *h, *w;                        /* hp: [B, 3H] scratch; w: [B, 4H] ws or scratch */
} FN(grub_step_job);

static void FN(grub_gates_block)(void *arg, frnn_int task) {
    const FN(grub_step_job) *j = arg;
    const frnn_int B = j->B, H = j->H, GH = 3 * H;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    for (int g = 0; g < 2; g++) /* r, z: h_{t-1} W_hr^T, h_{t-1} W_hz^T */
        j->k->gemm_nn_packed(B, cols, H, j->h_prev, H, j->w_hh_p + g * j->gate_size + j0 * H, 0,
                             j->hp + g * H + j0, GH);
    for (frnn_int b = 0; b < B; b++) {
        const real *xr = j->xp + b * GH + j0, *xz = xr + H;
        const real *hr = j->hp + b * GH + j0, *hz = hr + H;
        const real *br = j->b_hh + j0, *bz = br + H, *hprev = j->h_prev + b * H + j0;
        real *wr = j->w + b * 4 * H + j0, *wz = wr + H, *wrh = wr + 3 * H;
        for (frnn_int u = 0; u < cols; u++) {
            wr[u] = xr[u] + (hr[u] + br[u]);
            wz[u] = xz[u] + (hz[u] + bz[u]);
        }
        j->k->sigmoid(cols, wr, wr);
        j->k->sigmoid(cols, wz, wz);
        for (frnn_int u = 0; u < cols; u++) wrh[u] = wr[u] * hprev[u];
    }
}

static void FN(grub_output_block)(void *arg, frnn_int task) {
    const FN(grub_step_job) *j = arg;
    const frnn_int B = j->B, H = j->H, GH = 3 * H;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    /* n: (r h) W_hn^T, the r h block of every row (stride 4H) */
    j->k->gemm_nn_packed(B, cols, H, j->w + 3 * H, 4 * H, j->w_hh_p + 2 * j->gate_size + j0 * H,
                         0, j->hp + 2 * H + j0, GH);
    for (frnn_int b = 0; b < B; b++) {
        const real *xn = j->xp + b * GH + 2 * H + j0, *hn = j->hp + b * GH + 2 * H + j0;
        const real *bn = j->b_hh + 2 * H + j0, *hprev = j->h_prev + b * H + j0;
        real *wz = j->w + b * 4 * H + H + j0, *wn = wz + H, *hb = j->h + b * H + j0;
        for (frnn_int u = 0; u < cols; u++) wn[u] = xn[u] + (hn[u] + bn[u]);
        j->k->tanh(cols, wn, wn);
        for (frnn_int u = 0; u < cols; u++) hb[u] = ((real)1 - wz[u]) * wn[u] + wz[u] * hprev[u];
    }
}

/* scratch: hp [B, 3H], then gates [B, 4H], used when ws is NULL */
static void FN(grub_steps)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                           frnn_int steps, frnn_int B, real *xp, const real *w_hh_p,
                           const real *b_hh, const real *h_prev0, real *c, real *out, real *ws,
                           real *scratch) {
    (void)c;
    const frnn_int H = cell->H, GH = 3 * H;
    real *hp = scratch, *gates = scratch + B * GH;
    const frnn_step_split split = frnn_split_step(B, GH, H, k->nr);
    FN(grub_step_job) job = {k, B, H, split.block, k->packed_size(H, H), NULL, w_hh_p, b_hh, NULL,
                             hp, NULL, NULL};
    for (frnn_int s = 0; s < steps; s++) {
        job.xp = xp + s * B * GH;
        job.h_prev = s == 0 ? h_prev0 : out + (s - 1) * B * H;
        job.h = out + s * B * H;
        job.w = ws ? ws + s * B * 4 * H : gates;
        frnn_parallel_for(split.tasks, split.threads, FN(grub_gates_block), &job);
        frnn_parallel_for(split.tasks, split.threads, FN(grub_output_block), &job);
    }
}

/* The backward iteration for step t, in two jobs over blocks of hidden
 * units. With d = d_out[t] + dh (the whole delta into h_t):
 *   dn = d (1 - z)(1 - n^2), dz = d (h_{t-1} - n) z (1 - z),
 *   drh = dn W_hn (the delta into r h), dr = drh h_{t-1} r (1 - r),
 *   dh_{t-1} = d z + drh r + [dr dz] [W_hr; W_hz].
 * Phase 0 (block): close step t+1, dh += Gh[t+1] W_hh (Gh[t+1] = [dr dz 0],
 * so only W_hr, W_hz contribute) and copy Gh[t+1]'s r, z blocks into
 * Gx[t+1]; then dn, dz of step t: Gx[t] = [0 0 dn], Gh[t] = [. dz 0], dh = d.
 * Phase 1 (block): drh = Gx[t] W_hh (the zero blocks make it dn W_hn), held
 * in Gh[t]'s r block until dr replaces it; dh = d z + drh r.
 * Each phase reads all units only of arrays no task of the same phase
 * writes, so the result does not depend on the split. At the end
 * Gx[t] = [dr dz dn] (w.r.t. the whole pre-activations) and Gh[t] = [dr dz
 * 0] (w.r.t. the products with h_{t-1}: the n block's product reads r h). */
typedef struct {
    const FN(frnn_kernel_table) *k;
    frnn_int T, B, H, block, t;
    const real *w_hh_p, *h0, *out, *ws, *d_out;
    real *dh, *Gx, *Gh;
} FN(grub_grad_job);

static void FN(grub_grad_close)(void *arg, frnn_int task) {
    const FN(grub_grad_job) *j = arg;
    const frnn_int B = j->B, H = j->H, GH = 3 * H, t = j->t;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    if (t + 1 < j->T) {
        const real *gh1 = j->Gh + (t + 1) * B * GH;
        real *gx1 = j->Gx + (t + 1) * B * GH;
        j->k->gemm_nn_packed(B, cols, GH, gh1, GH, j->w_hh_p + j0 * GH, 1, j->dh + j0, H);
        for (frnn_int b = 0; b < B; b++) {
            memcpy(gx1 + b * GH + j0, gh1 + b * GH + j0, sizeof(real) * (size_t)cols);
            memcpy(gx1 + b * GH + H + j0, gh1 + b * GH + H + j0, sizeof(real) * (size_t)cols);
        }
    }
    if (t < 0) return;
    const real *h_prev = t == 0 ? j->h0 : j->out + (t - 1) * B * H;
    for (frnn_int b = 0; b < B; b++) {
        const real *w = j->ws + (t * B + b) * 4 * H + j0, *wz = w + H, *wn = w + 2 * H;
        const real *dy = j->d_out + (t * B + b) * H + j0, *hp = h_prev + b * H + j0;
        real *dhb = j->dh + b * H + j0;
        real *gx = j->Gx + (t * B + b) * GH + j0, *gh = j->Gh + (t * B + b) * GH + j0;
        for (frnn_int u = 0; u < cols; u++) {
            const real z = wz[u], n = wn[u];
            const real d = dy[u] + dhb[u];
            gx[u] = 0, gx[H + u] = 0;
            gx[2 * H + u] = d * ((real)1 - z) * ((real)1 - n * n);
            gh[H + u] = d * (hp[u] - n) * (z * ((real)1 - z));
            gh[2 * H + u] = 0;
            dhb[u] = d;
        }
    }
}

static void FN(grub_grad_reset)(void *arg, frnn_int task) {
    const FN(grub_grad_job) *j = arg;
    const frnn_int B = j->B, H = j->H, GH = 3 * H, t = j->t;
    frnn_int j0;
    const frnn_int cols = frnn_block_units(H, j->block, task, &j0);
    real *gh = j->Gh + t * B * GH;
    j->k->gemm_nn_packed(B, cols, GH, j->Gx + t * B * GH, GH, j->w_hh_p + j0 * GH, 0, gh + j0, GH);
    const real *h_prev = t == 0 ? j->h0 : j->out + (t - 1) * B * H;
    for (frnn_int b = 0; b < B; b++) {
        const real *w = j->ws + (t * B + b) * 4 * H + j0, *wz = w + H;
        const real *hp = h_prev + b * H + j0;
        real *dhb = j->dh + b * H + j0, *ghr = gh + b * GH + j0;
        for (frnn_int u = 0; u < cols; u++) {
            const real r = w[u], drh = ghr[u];
            ghr[u] = drh * hp[u] * (r * ((real)1 - r));
            dhb[u] = dhb[u] * wz[u] + drh * r;
        }
    }
}

static void FN(grub_gate_grads)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                                frnn_int T, frnn_int B, const real *w_hh_p, const real *h0,
                                const real *c0, const real *out, const real *ws,
                                const real *d_out, real *dh, real *dc, real *Gx, real *Gh) {
    (void)c0, (void)dc;
    const frnn_int H = cell->H, GH = 3 * H;
    const frnn_step_split split = frnn_split_step(B, GH, H, k->nr);
    FN(grub_grad_job) job = {k, T, B, H, split.block, 0, w_hh_p, h0, out, ws, d_out, dh, Gx, Gh};
    for (job.t = T - 1; job.t >= -1; job.t--) {
        frnn_parallel_for(split.tasks, split.threads, FN(grub_grad_close), &job);
        if (job.t >= 0) frnn_parallel_for(split.tasks, split.threads, FN(grub_grad_reset), &job);
    }
}

/* The n block of dW_hh, sum over rows of dn^T (r h), and of db_hh (which,
 * like every block of it, equals db_ih's: Gh's n block is 0 above). */
static void FN(grub_recurrent_input_grads)(const FN(frnn_cell) *cell,
                                           const FN(frnn_kernel_table) *k, frnn_int rows,
                                           const real *Gx, const real *ws, const real *db_ih,
                                           real *dw_hh, real *db_hh) {
    const frnn_int H = cell->H, GH = 3 * H;
    k->gemm_tn(H, H, rows, Gx + 2 * H, GH, ws + 3 * H, 4 * H, 0, dw_hh + 2 * H * H, H);
    if (db_ih && db_hh) memcpy(db_hh + 2 * H, db_ih + 2 * H, sizeof(real) * (size_t)H);
}

static int FN(grub_step)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k, frnn_int B,
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
    real *xp = scratch;          /* [B, 3H] */
    real *hp = xp + B * GH;      /* [B, 3H] */
    real *h_new = hp + B * GH;   /* [B, H] */
    real *gates = h_new + B * H; /* [B, 4H]: r z n rh */
    for (frnn_int b = 0; b < B; b++) memcpy(xp + b * GH, b_ih, sizeof(real) * (size_t)GH);
    k->gemm_nt(B, GH, In, x, In, w_ih, In, 1, xp, GH);
    k->gemm_nt(B, 2 * H, H, h, H, w_hh, H, 0, hp, GH); /* r, z */
    for (frnn_int b = 0; b < B; b++) {
        const real *xr = xp + b * GH, *hr = hp + b * GH, *hb = h + b * H;
        real *wr = gates + b * 4 * H, *wz = wr + H, *wrh = wr + 3 * H;
        for (frnn_int u = 0; u < H; u++) {
            wr[u] = xr[u] + (hr[u] + b_hh[u]);
            wz[u] = xr[H + u] + (hr[H + u] + b_hh[H + u]);
        }
        k->sigmoid(H, wr, wr);
        k->sigmoid(H, wz, wz);
        for (frnn_int u = 0; u < H; u++) wrh[u] = wr[u] * hb[u];
    }
    k->gemm_nt(B, H, H, gates + 3 * H, 4 * H, w_hh + 2 * H * H, H, 0, hp + 2 * H, GH); /* n */
    for (frnn_int b = 0; b < B; b++) {
        const real *xn = xp + b * GH + 2 * H, *hn = hp + b * GH + 2 * H, *hb = h + b * H;
        real *wz = gates + b * 4 * H + H, *wn = wz + H, *out = h_new + b * H;
        for (frnn_int u = 0; u < H; u++) wn[u] = xn[u] + (hn[u] + b_hh[2 * H + u]);
        k->tanh(H, wn, wn);
        for (frnn_int u = 0; u < H; u++) out[u] = ((real)1 - wz[u]) * wn[u] + wz[u] * hb[u];
    }
    memcpy(h_out, h_new, sizeof(real) * (size_t)(B * H));
    free(scratch);
    return FRNN_OK;
}

/* Three gates; the workspace is [r z n rh]; the forward loop's scratch is
 * hp and the gates (3H + 4H per row); backward keeps Gh apart from Gx,
 * reads h_{t-1}, and forms the n block of dW_hh itself. */
const FN(frnn_cell_ops) FN(frnn_gru_original_ops) = {
    FRNN_CELL_GRU_ORIGINAL, 3, 4, 0, 1, 7, 0, FRNN_READS_H_PREV, 0,
    FN(grub_steps), FN(grub_gate_grads), FN(grub_step), FN(grub_recurrent_input_grads), NULL};
