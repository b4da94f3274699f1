/* rnn.c - Elman RNN cell (tanh, ReLU, sigmoid): forward, BPTT, step.
 *
 * T = time, B = batch, In = input, H = hidden; one gate, so GH = H.
 *   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
 * No workspace: the activation derivatives are functions of the outputs
 * (tanh' = 1 - h^2, relu' = [h > 0], sigmoid' = h (1 - h)), so backward
 * needs only `out` and h0. Compiled once per dtype (see real.h). The whole-
 * window forward/backward around these loops is layer.c's, shared by all
 * cells; this file has the per-step math and the single-step entry point.
 */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

/* h[B, H] = act(h + b_hh), tanh and sigmoid through the vectorised kernels. */
static void FN(activate_rows)(const FN(frnn_kernel_table) *k, frnn_activation act,
                              frnn_int B, frnn_int H, const real *b_hh, real *h) {
    for (frnn_int b = 0; b < B; b++)
        for (frnn_int j = 0; j < H; j++) h[b * H + j] += b_hh[j];
    switch (act) {
    case FRNN_ACT_TANH: k->tanh(B * H, h, h); break;
    case FRNN_ACT_SIGMOID: k->sigmoid(B * H, h, h); break;
    case FRNN_ACT_RELU:
        for (frnn_int i = 0; i < B * H; i++) h[i] = r_relu(h[i]);
        break;
    }
}

/* g[n] = dh[n] * act'(y[n]), dh = d_out + dh_next. */
static void FN(activation_grad)(frnn_activation act, frnn_int n, const real *y,
                                const real *d_out, const real *dh_next, real *g) {
    switch (act) {
    case FRNN_ACT_TANH:
        for (frnn_int i = 0; i < n; i++) g[i] = (d_out[i] + dh_next[i]) * ((real)1 - y[i] * y[i]);
        break;
    case FRNN_ACT_RELU:
        for (frnn_int i = 0; i < n; i++) g[i] = y[i] > 0 ? d_out[i] + dh_next[i] : (real)0;
        break;
    case FRNN_ACT_SIGMOID:
        for (frnn_int i = 0; i < n; i++) g[i] = (d_out[i] + dh_next[i]) * (y[i] * ((real)1 - y[i]));
        break;
    }
}

void FN(frnn_rnn_steps)(const FN(frnn_kernel_table) *k, frnn_activation act, frnn_int steps,
                        frnn_int B, frnn_int H, const real *xp, const real *w_hh_p,
                        const real *b_hh, const real *h_prev0, real *out) {
    for (frnn_int s = 0; s < steps; s++) {
        const real *h_prev = s == 0 ? h_prev0 : out + (s - 1) * B * H;
        real *h = out + s * B * H;
        memcpy(h, xp + s * B * H, sizeof(real) * (size_t)(B * H));
        k->gemm_nn_packed(B, H, H, h_prev, H, w_hh_p, 1, h, H);
        FN(activate_rows)(k, act, B, H, b_hh, h);
    }
}

void FN(frnn_rnn_gate_grads)(const FN(frnn_kernel_table) *k, frnn_activation act, frnn_int T,
                             frnn_int B, frnn_int H, const real *w_hh_p, const real *out,
                             const real *d_out, real *dh, real *G) {
    for (frnn_int t = T - 1; t >= 0; t--) {
        real *g = G + t * B * H;
        FN(activation_grad)(act, B * H, out + t * B * H, d_out + t * B * H, dh, g);
        k->gemm_nn_packed(B, H, H, g, H, w_hh_p, 0, dh, H);
    }
}

int FN(frnn_rnn_step)(frnn_activation act, frnn_int B, frnn_int In, frnn_int H,
                      const real *x, const real *w_ih, const real *w_hh, const real *b_ih,
                      const real *b_hh, const real *h, real *h_out) {
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    real *a = frnn_alloc(sizeof(real) * (size_t)(B * H)); /* [B, H] pre-activation */
    if (!a) return FRNN_ERR_NOMEM;
    for (frnn_int b = 0; b < B; b++) memcpy(a + b * H, b_ih, sizeof(real) * (size_t)H);
    k->gemm_nt(B, H, In, x, In, w_ih, In, 1, a, H);
    k->gemm_nt(B, H, H, h, H, w_hh, H, 1, a, H);
    /* h is fully read above, so h_out may alias it. */
    FN(activate_rows)(k, act, B, H, b_hh, a);
    memcpy(h_out, a, sizeof(real) * (size_t)(B * H));
    free(a);
    return FRNN_OK;
}
