/* lstm.c - LSTM cell, PyTorch gate order i, f, g, o: forward, BPTT, step.
 *
 * T = time, B = batch, In = input, H = hidden, GH = 4H.
 *   [i f g o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
 *   i, f, o = sigmoid(.), g = tanh(.)
 *   c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
 * Workspace per (t, b): [i f g o c_t], 5H values (FRNN_LSTM_WS); tanh(c_t)
 * is recomputed in backward rather than stored. Compiled once per dtype.
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

int FN(frnn_lstm_forward)(frnn_int T, frnn_int B, frnn_int In, frnn_int H, const real *x,
                          const real *w_ih, const real *w_hh, const real *b_ih,
                          const real *b_hh, const real *h0, const real *c0, real *out,
                          real *hn, real *cn, real *ws) {
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int GH = 4 * H;
    const frnn_int chunk = frnn_chunk_steps(T, B, GH);
    const frnn_int ih_size = k->packed_size(In, GH), hh_size = k->packed_size(H, GH);
    real *scratch = frnn_alloc(sizeof(real) *
                               (size_t)(ih_size + hh_size + chunk * B * GH + B * GH + B * H));
    if (!scratch) return FRNN_ERR_NOMEM;
    real *w_ih_p = scratch;            /* W_ih^T packed */
    real *w_hh_p = w_ih_p + ih_size;   /* W_hh^T packed */
    real *xp = w_hh_p + hh_size;       /* [chunk, B, 4H] */
    real *gates = xp + chunk * B * GH; /* [B, 4H] */
    real *c = gates + B * GH;          /* [B, H] running cell state */
    FN(frnn_pack_transposed)(k, GH, In, w_ih, w_ih_p);
    FN(frnn_pack_transposed)(k, GH, H, w_hh, w_hh_p);
    memcpy(c, c0, sizeof(real) * (size_t)(B * H));

    for (frnn_int t0 = 0; t0 < T; t0 += chunk) {
        const frnn_int steps = T - t0 < chunk ? T - t0 : chunk;
        FN(frnn_project_inputs)(steps * B, In, GH, x + t0 * B * In, w_ih_p, b_ih, xp);
        for (frnn_int s = 0; s < steps; s++) {
            const frnn_int t = t0 + s;
            const real *h_prev = t == 0 ? h0 : out + (t - 1) * B * H;
            memcpy(gates, xp + s * B * GH, sizeof(real) * (size_t)(B * GH));
            k->gemm_nn_packed(B, GH, H, h_prev, H, w_hh_p, 1, gates, GH);
            FN(lstm_gates)(k, B, H, gates, b_hh, c, out + t * B * H,
                           ws ? ws + t * B * 5 * H : NULL);
        }
    }
    memcpy(hn, out + (T - 1) * B * H, sizeof(real) * (size_t)(B * H));
    memcpy(cn, c, sizeof(real) * (size_t)(B * H));
    free(scratch);
    return FRNN_OK;
}

int FN(frnn_lstm_backward)(frnn_int T, frnn_int B, frnn_int In, frnn_int H, const real *x,
                           const real *w_ih, const real *w_hh, const real *h0,
                           const real *c0, const real *out, const real *ws,
                           const real *d_out, const real *d_hn, const real *d_cn,
                           real *dx, real *dw_ih, real *dw_hh, real *db_ih, real *db_hh,
                           real *dh0, real *dc0) {
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int GH = 4 * H;
    const frnn_int hh_size = k->packed_size(GH, H);
    real *scratch = frnn_alloc(sizeof(real) * (size_t)(T * B * GH + 3 * B * H + hh_size));
    if (!scratch) return FRNN_ERR_NOMEM;
    real *G = scratch;              /* [T, B, 4H] gate pre-activation gradients */
    real *dh_next = G + T * B * GH; /* [B, H] into h_t from step t+1 */
    real *dc = dh_next + B * H;     /* [B, H] into c_t from step t+1 */
    real *tanh_c = dc + B * H;      /* [H] tanh(c_t) of one batch row */
    real *w_hh_p = tanh_c + B * H;  /* W_hh packed */
    FN(frnn_pack)(k, GH, H, w_hh, w_hh_p);
    memcpy(dh_next, d_hn, sizeof(real) * (size_t)(B * H));
    memcpy(dc, d_cn, sizeof(real) * (size_t)(B * H));

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
    memcpy(dh0, dh_next, sizeof(real) * (size_t)(B * H));
    memcpy(dc0, dc, sizeof(real) * (size_t)(B * H));

    FN(frnn_parameter_grads)(T, B, In, H, GH, G, G, x, w_ih, h0, out, dx, dw_ih, dw_hh,
                             db_ih, db_hh);
    free(scratch);
    return FRNN_OK;
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
