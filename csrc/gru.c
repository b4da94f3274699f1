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
#include "kernels.h"

/* The gate math for one step. xp: [B, 3H] input side incl. b_ih; hp:
 * [B, 3H] hidden side without b_hh; h_prev, h: [B, H] (h may alias h_prev);
 * w: [B, 4H] receives r, z, n, hn (the workspace layout; scratch or ws). */
static void FN(gru_gates)(const FN(frnn_kernel_table) *k, frnn_int B, frnn_int H,
                          const real *xp, const real *hp, const real *b_hh,
                          const real *h_prev, real *h, real *w) {
    for (frnn_int b = 0; b < B; b++) {
        const real *xr = xp + b * 3 * H, *hr = hp + b * 3 * H;
        real *wb = w + b * 4 * H;
        real *r = wb, *z = wb + H, *n = wb + 2 * H, *hn = wb + 3 * H;
        for (frnn_int j = 0; j < 2 * H; j++) wb[j] = xr[j] + (hr[j] + b_hh[j]);
        k->sigmoid(2 * H, wb, wb); /* r, z */
        for (frnn_int j = 0; j < H; j++) {
            hn[j] = hr[2 * H + j] + b_hh[2 * H + j];
            n[j] = xr[2 * H + j] + r[j] * hn[j];
        }
        k->tanh(H, n, n);
        for (frnn_int j = 0; j < H; j++)
            h[b * H + j] = ((real)1 - z[j]) * n[j] + z[j] * h_prev[b * H + j];
    }
}

void FN(frnn_gru_steps)(const FN(frnn_kernel_table) *k, frnn_int steps, frnn_int B,
                        frnn_int H, const real *xp, const real *w_hh_p, const real *b_hh,
                        const real *h_prev0, real *out, real *ws, real *hp, real *gates) {
    const frnn_int GH = 3 * H;
    for (frnn_int s = 0; s < steps; s++) {
        const real *h_prev = s == 0 ? h_prev0 : out + (s - 1) * B * H;
        k->gemm_nn_packed(B, GH, H, h_prev, H, w_hh_p, 0, hp, GH);
        FN(gru_gates)(k, B, H, xp + s * B * GH, hp, b_hh, h_prev, out + s * B * H,
                      ws ? ws + s * B * 4 * H : gates);
    }
}

void FN(frnn_gru_gate_grads)(const FN(frnn_kernel_table) *k, frnn_int T, frnn_int B,
                             frnn_int H, const real *w_hh_p, const real *h0, const real *out,
                             const real *ws, const real *d_out, real *dh_next, real *Gx,
                             real *Gh) {
    const frnn_int GH = 3 * H;
    for (frnn_int t = T - 1; t >= 0; t--) {
        const real *h_prev = t == 0 ? h0 : out + (t - 1) * B * H;
        for (frnn_int b = 0; b < B; b++) {
            const real *w = ws + (t * B + b) * 4 * H;
            const real *dy = d_out + (t * B + b) * H;
            real *gx = Gx + (t * B + b) * GH, *gh = Gh + (t * B + b) * GH;
            for (frnn_int j = 0; j < H; j++) {
                const real r = w[j], z = w[H + j], n = w[2 * H + j], hn = w[3 * H + j];
                const real dh = dy[j] + dh_next[b * H + j];
                const real dn = dh * ((real)1 - z) * ((real)1 - n * n);
                const real dz = dh * (h_prev[b * H + j] - n) * (z * ((real)1 - z));
                const real dr = dn * hn * (r * ((real)1 - r));
                gx[j] = dr;
                gx[H + j] = dz;
                gx[2 * H + j] = dn;
                gh[j] = dr;
                gh[H + j] = dz;
                gh[2 * H + j] = dn * r;
                dh_next[b * H + j] = dh * z; /* the direct z h_{t-1} path */
            }
        }
        k->gemm_nn_packed(B, H, GH, Gh + t * B * GH, GH, w_hh_p, 1, dh_next, H);
    }
}

int FN(frnn_gru_step)(frnn_int B, frnn_int In, frnn_int H, const real *x, const real *w_ih,
                      const real *w_hh, const real *b_ih, const real *b_hh, const real *h,
                      real *h_out) {
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int GH = 3 * H;
    real *scratch = frnn_alloc(sizeof(real) * (size_t)(2 * B * GH + B * H + 4 * B * H));
    if (!scratch) return FRNN_ERR_NOMEM;
    real *xp = scratch;         /* [B, 3H] */
    real *hp = xp + B * GH;     /* [B, 3H] */
    real *h_new = hp + B * GH;  /* [B, H] */
    real *gates = h_new + B * H; /* [B, 4H] */
    for (frnn_int b = 0; b < B; b++) memcpy(xp + b * GH, b_ih, sizeof(real) * (size_t)GH);
    k->gemm_nt(B, GH, In, x, In, w_ih, In, 1, xp, GH);
    k->gemm_nt(B, GH, H, h, H, w_hh, H, 0, hp, GH);
    FN(gru_gates)(k, B, H, xp, hp, b_hh, h, h_new, gates);
    memcpy(h_out, h_new, sizeof(real) * (size_t)(B * H));
    free(scratch);
    return FRNN_OK;
}
