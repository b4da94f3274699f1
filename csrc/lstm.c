/* lstm.c - LSTM cell, PyTorch gate order i, f, g, o: forward, BPTT, step.
 *
 * T = time, B = batch, In = input, H = hidden, GH = 4H.
 *   [i f g o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
 *   i, f, o = sigmoid(.), g = tanh(.)
 *   c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
 * Workspace per (t, b): [i f g o c_t], 5H values (FRNN_LSTM_WS); tanh(c_t)
 * is recomputed in backward rather than stored. Compiled once per dtype; the
 * whole-window forward/backward around these loops is layer.c's.
 */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

/* The gate math for one step. gates: [B, 4H] holding everything but b_hh,
 * turned in place into the activated i, f, g, o; c: [B, H] updated in place;
 * h: [B, H] written; ws_t: [B, 5H] or NULL. */
static void FN(lstm_gates)(const FN(frnn_kernel_table) *k, frnn_int B, frnn_int H,
                           real *gates, const real *b_hh, real *c, real *h, real *ws_t) {
    for (frnn_int b = 0; b < B; b++) {
        real *row = gates + b * 4 * H;
        real *cb = c + b * H, *hb = h + b * H;
        for (frnn_int j = 0; j < 4 * H; j++) row[j] += b_hh[j];
        k->sigmoid(2 * H, row, row);             /* i, f */
        k->tanh(H, row + 2 * H, row + 2 * H);    /* g */
        k->sigmoid(H, row + 3 * H, row + 3 * H); /* o */
        const real *i = row, *f = row + H, *g = row + 2 * H, *o = row + 3 * H;
        for (frnn_int j = 0; j < H; j++) cb[j] = f[j] * cb[j] + i[j] * g[j];
        k->tanh(H, cb, hb);
        for (frnn_int j = 0; j < H; j++) hb[j] *= o[j];
        if (ws_t) {
            memcpy(ws_t + b * 5 * H, row, sizeof(real) * (size_t)(4 * H));
            memcpy(ws_t + b * 5 * H + 4 * H, cb, sizeof(real) * (size_t)H);
        }
    }
}

void FN(frnn_lstm_steps)(const FN(frnn_kernel_table) *k, frnn_int steps, frnn_int B,
                         frnn_int H, const real *xp, const real *w_hh_p, const real *b_hh,
                         const real *h_prev0, real *c, real *out, real *ws, real *gates) {
    const frnn_int GH = 4 * H;
    for (frnn_int s = 0; s < steps; s++) {
        const real *h_prev = s == 0 ? h_prev0 : out + (s - 1) * B * H;
        memcpy(gates, xp + s * B * GH, sizeof(real) * (size_t)(B * GH));
        k->gemm_nn_packed(B, GH, H, h_prev, H, w_hh_p, 1, gates, GH);
        FN(lstm_gates)(k, B, H, gates, b_hh, c, out + s * B * H, ws ? ws + s * B * 5 * H : NULL);
    }
}

void FN(frnn_lstm_gate_grads)(const FN(frnn_kernel_table) *k, frnn_int T, frnn_int B,
                              frnn_int H, const real *w_hh_p, const real *c0, const real *ws,
                              const real *d_out, real *dh_next, real *dc, real *G,
                              real *tanh_c) {
    const frnn_int GH = 4 * H;
    for (frnn_int t = T - 1; t >= 0; t--) {
        for (frnn_int b = 0; b < B; b++) {
            const real *w = ws + (t * B + b) * 5 * H;
            const real *c_prev = t == 0 ? c0 + b * H : ws + ((t - 1) * B + b) * 5 * H + 4 * H;
            const real *dy = d_out + (t * B + b) * H;
            real *g = G + (t * B + b) * GH;
            k->tanh(H, w + 4 * H, tanh_c);
            for (frnn_int j = 0; j < H; j++) {
                const real i = w[j], f = w[H + j], gg = w[2 * H + j], o = w[3 * H + j];
                const real tc = tanh_c[j];
                const real dh = dy[j] + dh_next[b * H + j];
                const real dcj = dc[b * H + j] + dh * o * ((real)1 - tc * tc);
                g[j] = dcj * gg * (i * ((real)1 - i));
                g[H + j] = dcj * c_prev[j] * (f * ((real)1 - f));
                g[2 * H + j] = dcj * i * ((real)1 - gg * gg);
                g[3 * H + j] = dh * tc * (o * ((real)1 - o));
                dc[b * H + j] = dcj * f;
            }
        }
        k->gemm_nn_packed(B, H, GH, G + t * B * GH, GH, w_hh_p, 0, dh_next, H);
    }
}

int FN(frnn_lstm_step)(frnn_int B, frnn_int In, frnn_int H, const real *x, const real *w_ih,
                       const real *w_hh, const real *b_ih, const real *b_hh, const real *h,
                       const real *c, real *h_out, real *c_out) {
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int GH = 4 * H;
    real *scratch = frnn_alloc(sizeof(real) * (size_t)(B * GH + 2 * B * H));
    if (!scratch) return FRNN_ERR_NOMEM;
    real *gates = scratch;          /* [B, 4H] */
    real *c_new = gates + B * GH;   /* [B, H] */
    real *h_new = c_new + B * H;    /* [B, H] */
    for (frnn_int b = 0; b < B; b++) memcpy(gates + b * GH, b_ih, sizeof(real) * (size_t)GH);
    k->gemm_nt(B, GH, In, x, In, w_ih, In, 1, gates, GH);
    k->gemm_nt(B, GH, H, h, H, w_hh, H, 1, gates, GH);
    memcpy(c_new, c, sizeof(real) * (size_t)(B * H));
    FN(lstm_gates)(k, B, H, gates, b_hh, c_new, h_new, NULL);
    /* Old state fully consumed: the outputs may alias it. */
    memcpy(h_out, h_new, sizeof(real) * (size_t)(B * H));
    memcpy(c_out, c_new, sizeof(real) * (size_t)(B * H));
    free(scratch);
    return FRNN_OK;
}
