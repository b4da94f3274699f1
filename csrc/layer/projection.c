/* projection.c - the LSTM with a projection of its hidden state (torch.nn.LSTM
 * with proj_size = P > 0): frnn_layer_forward_proj / _backward_proj of
 * fastrnn.h, one layer in one direction over a window.
 *
 * T = time, B = batch, In = input, H = hidden (the cell state's width),
 * P = the projection (h's width), GH = 4H:
 *   [i f g o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh   (W_hh: [4H, P])
 *   c_t = f c_{t-1} + i g,   m_t = o tanh(c_t),   h_t = m_t W_hr^T  (W_hr: [P, H])
 * The gate math is the LSTM's own (the kernel table's lstm_forward_math /
 * lstm_backward_math, which see m_t where the plain LSTM has h_t), and the
 * workspace is the LSTM's [i f g o c_t] (5H): backward recomputes m_t = o
 * tanh(c_t) from it for dW_hr (T B H tanh, against the T B H P multiply-adds
 * of the product it feeds), so the workspace contract is the LSTM's.
 *
 * Backward, t = T-1 .. 0, with D_t = d_out[t] + (G[t+1] W_hh) the whole
 * gradient w.r.t. h_t:  dm_t = D_t W_hr, then the LSTM's gate gradients
 * G[t] from dm_t; after the loop dW_hr = sum_t D_t^T m_t (one GEMM) and the
 * shared parameter gradients (products.c) with P as the recurrent width.
 *
 * Separate entry points rather than a field of frnn_cell_desc: the
 * projection changes the shapes of h, out and W_hh and adds a weight, so
 * every argument list changes; the plain calls keep theirs and cannot be
 * handed a projected layer by mistake. Not here (yet): per-row lengths,
 * the single step, streams and the trainer; the recurrent products run on
 * the calling thread (the plain LSTM's per-block threading is not reused).
 * Compiled once per dtype.
 */
#include <stdlib.h>
#include <string.h>
#include "layer/layer.h"

/* The cell (an LSTM of hidden size H), checked for these sizes including
 * the projection's arrays: out / d_out / D [T, B, P], m [T, B, H], the
 * weights [GH, P], [P, H] and their packed forms. */
static int FN(proj_cell)(const frnn_cell_desc *desc, frnn_int T, frnn_int B, frnn_int In,
                         frnn_int P, FN(frnn_cell) *cell) {
    const int valid = FN(frnn_layer_cell)(desc, T, B, In, cell);
    if (valid != FRNN_OK) return valid;
    if (desc->type != FRNN_CELL_LSTM || P < 1) return FRNN_ERR_UNSUPPORTED;
    const frnn_int H = cell->H, GH = cell->GH, W = cell->W;
    /* As frnn_check_layer: every [T, B, .] array side by side, every weight
     * side by side with room for panel padding, in the larger element type. */
    const frnn_int width = frnn_size_add(frnn_size_add(In, frnn_size_mul(3, P)),
                                         frnn_size_add(frnn_size_mul(2, GH), frnn_size_add(W, H)));
    const frnn_int rows_elems = frnn_size_mul3(T, B, width);
    const frnn_int weight_elems =
        frnn_size_add(frnn_size_mul(frnn_size_add(GH, 64), frnn_size_add(In, P)),
                      frnn_size_mul(2, frnn_size_mul(frnn_size_add(P, 64), frnn_size_add(H, 64))));
    size_t bytes;
    if (frnn_size_bytes(rows_elems, sizeof(double), &bytes) ||
        frnn_size_bytes(weight_elems, sizeof(double), &bytes))
        return FRNN_ERR_TOO_LARGE;
    return FRNN_OK;
}

int FN(frnn_layer_forward_proj)(const frnn_cell_desc *desc, frnn_int T, frnn_int B, frnn_int In,
                                frnn_int P, const real *x, const real *w_ih, const real *w_hh,
                                const real *w_hr, const real *b_ih, const real *b_hh,
                                const real *h0, const real *c0, real *out, real *hn, real *cn,
                                real *ws) {
    FN(frnn_cell) cell;
    const int valid = FN(proj_cell)(desc, T, B, In, P, &cell);
    if (valid != FRNN_OK) return valid;
    if (!x || !w_ih || !w_hh || !w_hr || !b_ih || !b_hh || !h0 || !c0 || !out || !hn || !cn)
        return FRNN_ERR_UNSUPPORTED;
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int H = cell.H, GH = cell.GH, W = cell.W;
    const frnn_int chunk = frnn_chunk_steps(T, B, GH);
    const frnn_int ih_size = FN(frnn_packed_elems)(k, In, GH);
    const frnn_int hh_size = FN(frnn_packed_elems)(k, P, GH); /* W_hh^T [P, GH] */
    const frnn_int hr_size = FN(frnn_packed_elems)(k, H, P);  /* W_hr^T [H, P] */
    const frnn_int elems = frnn_size_add(
        frnn_size_add(frnn_size_add(ih_size, hh_size), hr_size),
        frnn_size_add(frnn_size_mul3(chunk, B, GH), frnn_size_mul(2, frnn_size_mul(B, H))));
    size_t bytes;
    if (frnn_size_bytes(elems, sizeof(real), &bytes)) return FRNN_ERR_TOO_LARGE;
    real *scratch = frnn_scratch_acquire(bytes);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *w_ih_p = scratch;          /* W_ih^T packed */
    real *w_hh_p = w_ih_p + ih_size; /* W_hh^T packed */
    real *w_hr_p = w_hh_p + hh_size; /* W_hr^T packed */
    real *xp = w_hr_p + hr_size;     /* [chunk, B, GH] */
    real *c = xp + chunk * B * GH;   /* [B, H] running cell state */
    real *m = c + B * H;             /* [B, H] o tanh(c_t), before the projection */
    const FN(frnn_pack_item) packs[3] = {FN(frnn_transposed_item)(GH, In, w_ih, w_ih_p),
                                         FN(frnn_transposed_item)(GH, P, w_hh, w_hh_p),
                                         FN(frnn_transposed_item)(P, H, w_hr, w_hr_p)};
    FN(frnn_pack_items)(k, 3, packs);
    memcpy(c, c0, sizeof(real) * (size_t)(B * H));
    for (frnn_int t0 = 0; t0 < T; t0 += chunk) {
        const frnn_int steps = T - t0 < chunk ? T - t0 : chunk;
        FN(frnn_project_inputs)(k, steps * B, In, GH, x + t0 * B * In, w_ih_p, b_ih, xp);
        for (frnn_int s = 0; s < steps; s++) {
            const frnn_int t = t0 + s;
            real *gates = xp + s * B * GH; /* this step's, consumed */
            k->gemm_nn_packed(B, GH, P, t == 0 ? h0 : out + (t - 1) * B * P, P, w_hh_p, 1, gates,
                              GH);
            k->lstm_forward_math(B, H, 0, H, gates, b_hh, c, m, ws ? ws + t * B * W : NULL);
            k->gemm_nn_packed(B, P, H, m, H, w_hr_p, 0, out + t * B * P, P);
        }
    }
    memcpy(hn, out + (T - 1) * B * P, sizeof(real) * (size_t)(B * P));
    memcpy(cn, c, sizeof(real) * (size_t)(B * H));
    frnn_scratch_release(scratch);
    return FRNN_OK;
}

int FN(frnn_layer_backward_proj)(const frnn_cell_desc *desc, frnn_int T, frnn_int B,
                                 frnn_int In, frnn_int P, const real *x, const real *w_ih,
                                 const real *w_hh, const real *w_hr, const real *h0,
                                 const real *c0, const real *out, const real *ws,
                                 const real *d_out, const real *d_hn, const real *d_cn, real *dx,
                                 real *dw_ih, real *dw_hh, real *dw_hr, real *db_ih, real *db_hh,
                                 real *dh0, real *dc0) {
    FN(frnn_cell) cell;
    const int valid = FN(proj_cell)(desc, T, B, In, P, &cell);
    if (valid != FRNN_OK) return valid;
    if (!x || !w_ih || !w_hh || !w_hr || !h0 || !c0 || !out || !ws || !d_out || !d_hn || !d_cn ||
        !dx || !dw_ih || !dw_hh || !dw_hr || !db_ih || !db_hh || !dh0 || !dc0)
        return FRNN_ERR_UNSUPPORTED;
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int H = cell.H, GH = cell.GH, W = cell.W;
    const frnn_int hh_size = FN(frnn_packed_elems)(k, GH, P); /* W_hh [GH, P] */
    const frnn_int hr_size = FN(frnn_packed_elems)(k, P, H);  /* W_hr [P, H] */
    const frnn_int elems = frnn_size_add(
        frnn_size_add(hh_size, hr_size),
        frnn_size_add(frnn_size_mul3(T, B, frnn_size_add(GH, frnn_size_add(P, H))),
                      frnn_size_mul(2, frnn_size_mul(B, H))));
    size_t bytes;
    if (frnn_size_bytes(elems, sizeof(real), &bytes)) return FRNN_ERR_TOO_LARGE;
    real *scratch = frnn_scratch_acquire(bytes);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *w_hh_p = scratch;          /* W_hh packed */
    real *w_hr_p = w_hh_p + hh_size; /* W_hr packed */
    real *G = w_hr_p + hr_size;      /* [T, B, GH] gate gradients */
    real *D = G + T * B * GH;        /* [T, B, P] the gradient w.r.t. h_t */
    real *M = D + T * B * P;         /* [T, B, H] m_t, recomputed */
    real *dm = M + T * B * H;        /* [B, H] this step's gradient w.r.t. m_t */
    real *zeros = dm + B * H;        /* [B, H] the gate math's "dh": all of it is in dm */
    const FN(frnn_pack_item) packs[2] = {FN(frnn_natural_item)(GH, P, w_hh, w_hh_p),
                                         FN(frnn_natural_item)(P, H, w_hr, w_hr_p)};
    FN(frnn_pack_items)(k, 2, packs);
    memset(zeros, 0, sizeof(real) * (size_t)(B * H));
    /* dh0 carries the gradient w.r.t. h_t from later steps, dc0 w.r.t. c_t;
     * both end as the gradients w.r.t. the initial state. */
    memcpy(dh0, d_hn, sizeof(real) * (size_t)(B * P));
    memcpy(dc0, d_cn, sizeof(real) * (size_t)(B * H));
    for (frnn_int t = T - 1; t >= 0; t--) {
        real *Dt = D + t * B * P, *Gt = G + t * B * GH;
        const real *dy = d_out + t * B * P;
        for (frnn_int e = 0; e < B * P; e++) Dt[e] = dy[e] + dh0[e];
        k->gemm_nn_packed(B, H, P, Dt, P, w_hr_p, 0, dm, H);
        const real *c_prev = t == 0 ? c0 : ws + (t - 1) * B * W + 4 * H;
        k->lstm_backward_math(B, H, 0, H, ws + t * B * W, c_prev, t == 0 ? H : W, dm, zeros,
                              dc0, Gt);
        k->gemm_nn_packed(B, P, GH, Gt, GH, w_hh_p, 0, dh0, P);
    }
    for (frnn_int r = 0; r < T * B; r++) { /* m = o tanh(c) from ws's o and c_t */
        const real *wr = ws + r * W;
        real *mr = M + r * H;
        k->tanh(H, wr + 4 * H, mr);
        for (frnn_int u = 0; u < H; u++) mr[u] *= wr[3 * H + u];
    }
    k->gemm_tn(P, H, T * B, D, P, M, H, 0, dw_hr, H); /* dW_hr = D^T M */
    FN(frnn_parameter_grads)(k, T, B, In, P, GH, G, G, x, w_ih, h0, out, dx, dw_ih, dw_hh, db_ih,
                             db_hh);
    frnn_scratch_release(scratch);
    return FRNN_OK;
}
