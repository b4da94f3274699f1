/* gates.c - the cells' elementwise gate math, one fused pass per block.
 *
 * Compiled once per dtype and ISA, like gemm.c and activations.c, and
 * reached through the kernel table: the cell files (cells/rnn.c, lstm.c,
 * gru.c) are compiled for the baseline ISA only, and their elementwise loops used
 * to run there at SSE2 width while sigmoid / tanh were separate array calls
 * per gate and row (profiled: 15% of a medium GRU forward, 10% of a small
 * LSTM training step). Here each function makes one pass over the block
 * with the activations inlined (activations.h), which the compiler
 * vectorises at the unit's width.
 *
 * Every function works on hidden units [j0, j0 + cols) of all B rows - the
 * block a task of the threaded time step owns (lstm.c) - and computes each
 * element by the same formulas as the NumPy reference; only the rounding of
 * contracted multiply-adds differs between ISAs. Shapes: B = batch,
 * H = hidden; a "[B, kH]" array has rows of k gate blocks of H units.
 */
#include "kernels/activations.h"
#include "kernels/isa.h"


/* Elman forward: h = act(pre + b_hh); pre: [B, H] holding x W_ih^T + b_ih +
 * h_prev W_hh^T; h: [B, H], may be pre itself. */
void ISA_FN(frnn_rnn_forward_math)(frnn_activation act, frnn_int B, frnn_int H, frnn_int j0,
                                   frnn_int cols, const real *pre, const real *restrict b_hh,
                                   real *h) {
    const real *bh = b_hh + j0;
    for (frnn_int b = 0; b < B; b++) {
        const real *pb = pre + b * H + j0;
        real *hb = h + b * H + j0;
        switch (act) {
        case FRNN_ACT_TANH:
            for (frnn_int u = 0; u < cols; u++) hb[u] = frnn_tanh1(pb[u] + bh[u]);
            break;
        case FRNN_ACT_SIGMOID:
            for (frnn_int u = 0; u < cols; u++) hb[u] = frnn_sigmoid1(pb[u] + bh[u]);
            break;
        case FRNN_ACT_RELU:
            for (frnn_int u = 0; u < cols; u++) hb[u] = r_relu(pb[u] + bh[u]);
            break;
        }
    }
}

/* Elman backward: g = (d_out + dh) act'(y), the derivative from the output
 * y (tanh' = 1 - y^2, relu' = [y > 0], sigmoid' = y (1 - y)).
 * y, d_out, dh, g: [B, H]. */
void ISA_FN(frnn_rnn_backward_math)(frnn_activation act, frnn_int B, frnn_int H, frnn_int j0,
                                    frnn_int cols, const real *restrict y,
                                    const real *restrict d_out, const real *restrict dh,
                                    real *restrict g) {
    for (frnn_int b = 0; b < B; b++) {
        const frnn_int at = b * H + j0;
        const real *yb = y + at, *db = d_out + at, *hb = dh + at;
        real *gb = g + at;
        switch (act) {
        case FRNN_ACT_TANH:
            for (frnn_int u = 0; u < cols; u++) gb[u] = (db[u] + hb[u]) * ((real)1 - yb[u] * yb[u]);
            break;
        case FRNN_ACT_RELU:
            for (frnn_int u = 0; u < cols; u++) gb[u] = yb[u] > 0 ? db[u] + hb[u] : (real)0;
            break;
        case FRNN_ACT_SIGMOID:
            for (frnn_int u = 0; u < cols; u++) gb[u] = (db[u] + hb[u]) * (yb[u] * ((real)1 - yb[u]));
            break;
        }
    }
}

/* LSTM forward. gates: [B, 4H] pre-activations without b_hh (i, f, g, o);
 * c: [B, H] updated in place; h: [B, H] written; ws: [B, 5H] receives the
 * activated i, f, g, o and the new c, or NULL (inference). */
void ISA_FN(frnn_lstm_forward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                                    const real *restrict gates, const real *restrict b_hh,
                                    real *restrict c, real *restrict h, real *restrict ws) {
    const real *bi = b_hh + j0, *bf = bi + H, *bg = bi + 2 * H, *bo = bi + 3 * H;
    for (frnn_int b = 0; b < B; b++) {
        const real *gi = gates + b * 4 * H + j0, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        real *cb = c + b * H + j0, *hb = h + b * H + j0;
        /* Two copies of one loop: with the stores to ws made conditional
         * inside it, GCC 12 no longer vectorises it. */
        if (ws) {
            real *wi = ws + b * 5 * H + j0, *wf = wi + H, *wg = wi + 2 * H, *wo = wi + 3 * H,
                 *wc = wi + 4 * H;
            for (frnn_int u = 0; u < cols; u++) {
                const real i = frnn_sigmoid1(gi[u] + bi[u]), f = frnn_sigmoid1(gf[u] + bf[u]);
                const real g = frnn_tanh1(gg[u] + bg[u]), o = frnn_sigmoid1(go[u] + bo[u]);
                const real cn = f * cb[u] + i * g;
                cb[u] = cn;
                hb[u] = frnn_tanh1(cn) * o;
                wi[u] = i, wf[u] = f, wg[u] = g, wo[u] = o, wc[u] = cn;
            }
        } else {
            for (frnn_int u = 0; u < cols; u++) {
                const real i = frnn_sigmoid1(gi[u] + bi[u]), f = frnn_sigmoid1(gf[u] + bf[u]);
                const real g = frnn_tanh1(gg[u] + bg[u]), o = frnn_sigmoid1(go[u] + bo[u]);
                const real cn = f * cb[u] + i * g;
                cb[u] = cn;
                hb[u] = frnn_tanh1(cn) * o;
            }
        }
    }
}

/* LSTM backward for one step. ws: [B, 5H] this step's i, f, g, o, c;
 * c_prev: row b at c_prev + b * c_prev_stride (c0 or the previous step's
 * workspace); d_out: [B, H]; dh, dc: [B, H] the gradient w.r.t. h_t and
 * c_t from later steps, dc updated to the gradient w.r.t. c_{t-1};
 * G: [B, 4H] receives the gradients w.r.t. the pre-activations. */
void ISA_FN(frnn_lstm_backward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                                     const real *restrict ws, const real *restrict c_prev,
                                     frnn_int c_prev_stride, const real *restrict d_out,
                                     const real *restrict dh, real *restrict dc,
                                     real *restrict G) {
    for (frnn_int b = 0; b < B; b++) {
        const real *wi = ws + b * 5 * H + j0, *wf = wi + H, *wg = wi + 2 * H, *wo = wi + 3 * H,
                   *wc = wi + 4 * H;
        const real *cp = c_prev + b * c_prev_stride + j0;
        const real *dy = d_out + b * H + j0, *dhb = dh + b * H + j0;
        real *dcb = dc + b * H + j0;
        real *gi = G + b * 4 * H + j0, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        for (frnn_int u = 0; u < cols; u++) {
            const real i = wi[u], f = wf[u], g = wg[u], o = wo[u];
            const real tc = frnn_tanh1(wc[u]);
            const real d = dy[u] + dhb[u];
            const real dcj = dcb[u] + d * o * ((real)1 - tc * tc);
            gi[u] = dcj * g * (i * ((real)1 - i));
            gf[u] = dcj * cp[u] * (f * ((real)1 - f));
            gg[u] = dcj * i * ((real)1 - g * g);
            go[u] = d * tc * (o * ((real)1 - o));
            dcb[u] = dcj * f;
        }
    }
}

/* GRU forward. xp: [B, 3H] input side incl. b_ih; hp: [B, 3H] hidden side
 * without b_hh; h_prev, h: [B, H] (h may alias h_prev); w: [B, 4H] receives
 * r, z, n and hn = W_hn h_prev + b_hn (the workspace layout). */
void ISA_FN(frnn_gru_forward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                                   const real *restrict xp, const real *restrict hp,
                                   const real *restrict b_hh, const real *h_prev, real *h,
                                   real *restrict w) {
    const real *br = b_hh + j0, *bz = br + H, *bn = br + 2 * H;
    for (frnn_int b = 0; b < B; b++) {
        const real *xr = xp + b * 3 * H + j0, *xz = xr + H, *xn = xr + 2 * H;
        const real *hr = hp + b * 3 * H + j0, *hz = hr + H, *hnp = hr + 2 * H;
        const real *hprev = h_prev + b * H + j0;
        real *hb = h + b * H + j0;
        real *wr = w + b * 4 * H + j0, *wz = wr + H, *wn = wr + 2 * H, *whn = wr + 3 * H;
        for (frnn_int u = 0; u < cols; u++) {
            const real r = frnn_sigmoid1(xr[u] + (hr[u] + br[u]));
            const real z = frnn_sigmoid1(xz[u] + (hz[u] + bz[u]));
            const real hn = hnp[u] + bn[u];
            const real n = frnn_tanh1(xn[u] + r * hn);
            const real hp_u = hprev[u];
            wr[u] = r, wz[u] = z, wn[u] = n, whn[u] = hn;
            hb[u] = ((real)1 - z) * n + z * hp_u;
        }
    }
}

/* GRU backward for one step. ws: [B, 4H] this step's r, z, n, hn; h_prev,
 * d_out: [B, H]; dh: [B, H] the gradient w.r.t. h_t from later steps, turned
 * into the direct part z dh of the gradient w.r.t. h_{t-1}; Gx, Gh: [B, 3H]
 * the gradients w.r.t. the input-side and hidden-side pre-activations. */
void ISA_FN(frnn_gru_backward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                                    const real *restrict ws, const real *restrict h_prev,
                                    const real *restrict d_out, real *restrict dh,
                                    real *restrict Gx, real *restrict Gh) {
    for (frnn_int b = 0; b < B; b++) {
        const real *wr = ws + b * 4 * H + j0, *wz = wr + H, *wn = wr + 2 * H, *whn = wr + 3 * H;
        const real *dy = d_out + b * H + j0, *hp = h_prev + b * H + j0;
        real *dhb = dh + b * H + j0;
        real *gxr = Gx + b * 3 * H + j0, *gxz = gxr + H, *gxn = gxr + 2 * H;
        real *ghr = Gh + b * 3 * H + j0, *ghz = ghr + H, *ghn = ghr + 2 * H;
        for (frnn_int u = 0; u < cols; u++) {
            const real r = wr[u], z = wz[u], n = wn[u], hn = whn[u];
            const real d = dy[u] + dhb[u];
            const real dn = d * ((real)1 - z) * ((real)1 - n * n);
            const real dz = d * (hp[u] - n) * (z * ((real)1 - z));
            const real dr = dn * hn * (r * ((real)1 - r));
            gxr[u] = dr, gxz[u] = dz, gxn[u] = dn;
            ghr[u] = dr, ghz[u] = dz, ghn[u] = dn * r;
            dhb[u] = d * z; /* the direct z h_{t-1} path */
        }
    }
}
