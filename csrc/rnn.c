/* rnn.c - Elman RNN cell (tanh, ReLU, sigmoid): forward, BPTT, step.
 *
 * T = time, B = batch, In = input, H = hidden; one gate, so GH = H.
 *   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
 * No workspace: the activation derivatives are functions of the outputs
 * (tanh' = 1 - h^2, relu' = [h > 0], sigmoid' = h (1 - h)), so backward
 * needs only `out` and h0. Compiled once per dtype (see real.h).
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

int FN(frnn_rnn_forward)(frnn_activation act, frnn_int T, frnn_int B, frnn_int In,
                         frnn_int H, const real *x, const real *w_ih, const real *w_hh,
                         const real *b_ih, const real *b_hh, const real *h0, real *out,
                         real *hn) {
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int chunk = frnn_chunk_steps(T, B, H);
    const frnn_int ih_size = k->packed_size(In, H), hh_size = k->packed_size(H, H);
    real *scratch = frnn_alloc(sizeof(real) * (size_t)(ih_size + hh_size + chunk * B * H));
    if (!scratch) return FRNN_ERR_NOMEM;
    real *w_ih_p = scratch;          /* W_ih^T packed */
    real *w_hh_p = w_ih_p + ih_size; /* W_hh^T packed */
    real *xp = w_hh_p + hh_size;     /* [chunk, B, H] */
    FN(frnn_pack_transposed)(k, H, In, w_ih, w_ih_p);
    FN(frnn_pack_transposed)(k, H, H, w_hh, w_hh_p);

    for (frnn_int t0 = 0; t0 < T; t0 += chunk) {
        const frnn_int steps = T - t0 < chunk ? T - t0 : chunk;
        FN(frnn_project_inputs)(steps * B, In, H, x + t0 * B * In, w_ih_p, b_ih, xp);
        for (frnn_int s = 0; s < steps; s++) {
            const frnn_int t = t0 + s;
            const real *h_prev = t == 0 ? h0 : out + (t - 1) * B * H;
            real *h = out + t * B * H;
            memcpy(h, xp + s * B * H, sizeof(real) * (size_t)(B * H));
            k->gemm_nn_packed(B, H, H, h_prev, H, w_hh_p, 1, h, H);
            FN(activate_rows)(k, act, B, H, b_hh, h);
        }
    }
    memcpy(hn, out + (T - 1) * B * H, sizeof(real) * (size_t)(B * H));
    free(scratch);
    return FRNN_OK;
}

int FN(frnn_rnn_backward)(frnn_activation act, frnn_int T, frnn_int B, frnn_int In,
                          frnn_int H, const real *x, const real *w_ih, const real *w_hh,
                          const real *h0, const real *out, const real *d_out,
                          const real *d_hn, real *dx, real *dw_ih, real *dw_hh,
                          real *db_ih, real *db_hh, real *dh0) {
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int hh_size = k->packed_size(H, H);
    real *scratch = frnn_alloc(sizeof(real) * (size_t)(T * B * H + B * H + hh_size));
    if (!scratch) return FRNN_ERR_NOMEM;
    real *G = scratch;               /* [T, B, H] pre-activation gradients */
    real *dh_next = G + T * B * H;   /* [B, H] gradient flowing into h_t from t+1 */
    real *w_hh_p = dh_next + B * H;  /* W_hh packed */
    FN(frnn_pack)(k, H, H, w_hh, w_hh_p);
    memcpy(dh_next, d_hn, sizeof(real) * (size_t)(B * H));

    for (frnn_int t = T - 1; t >= 0; t--) {
        real *g = G + t * B * H;
        FN(activation_grad)(act, B * H, out + t * B * H, d_out + t * B * H, dh_next, g);
        k->gemm_nn_packed(B, H, H, g, H, w_hh_p, 0, dh_next, H);
    }
    memcpy(dh0, dh_next, sizeof(real) * (size_t)(B * H));

    FN(frnn_parameter_grads)(T, B, In, H, H, G, G, x, w_ih, h0, out, dx, dw_ih, dw_hh,
                             db_ih, db_hh);
    free(scratch);
    return FRNN_OK;
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
