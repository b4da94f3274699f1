/* layer.c - a whole recurrent layer over a window, for any cell.
 *
 * The public *_forward / *_backward entry points of fastrnn.h, written once:
 * pack the weights, hoist the input projection (in bounded chunks of time),
 * run the cell's time loop, and after the backward loop form dx and the
 * parameter gradients from the gate gradients of every step at once. The
 * per-step math lives in rnn.c / lstm.c / gru.c behind frnn_cell_steps and
 * frnn_cell_gate_grads, which train.c uses too. Compiled once per dtype.
 */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

/* Defined once (the f32 copy): sizes do not depend on the dtype. */
#ifndef FRNN_F64
frnn_int frnn_cell_scratch(const frnn_cell *cell, frnn_int B) {
    switch (cell->kind) {
    case FRNN_KIND_GRU: /* hp, gates */
        return frnn_size_mul(B, frnn_size_add(cell->GH, cell->W));
    default: return 0;
    }
}

int frnn_check_layer(const frnn_cell *cell, frnn_int T, frnn_int B, frnn_int In) {
    const frnn_int H = cell->H, GH = cell->GH, W = cell->W;
    if (T < 1 || B < 1 || In < 1 || H < 1) return FRNN_ERR_UNSUPPORTED;
    /* One bound for all of them: the rows of every [T, B, .] array side by
     * side (GH twice: GRU's separate Gh), and the weights side by side with
     * room for panel padding (every ISA's nr is below 64); in the larger
     * element type. A size that fails this is within a small factor of the
     * address space, which no allocation could have reached anyway. */
    const frnn_int width = frnn_size_add(frnn_size_add(In, H), frnn_size_add(frnn_size_mul(2, GH), W));
    const frnn_int rows_elems = frnn_size_mul3(T, B, width);
    const frnn_int weight_elems = frnn_size_mul(frnn_size_add(GH, 64), frnn_size_add(In, H));
    size_t bytes;
    if (frnn_size_bytes(rows_elems, sizeof(double), &bytes) ||
        frnn_size_bytes(weight_elems, sizeof(double), &bytes))
        return FRNN_ERR_TOO_LARGE;
    return FRNN_OK;
}
#endif

frnn_int FN(frnn_recurrent_packed_size)(const frnn_cell *cell, const FN(frnn_kernel_table) *k) {
    return frnn_size_mul(cell->GH / cell->H, FN(frnn_packed_elems)(k, cell->H, cell->H));
}

int FN(frnn_recurrent_pack_items)(const frnn_cell *cell, const FN(frnn_kernel_table) *k,
                                  const real *w_hh, real *dst, FN(frnn_pack_item) *items) {
    const frnn_int H = cell->H, gate_size = k->packed_size(H, H);
    const int gates = (int)(cell->GH / H);
    for (int g = 0; g < gates; g++) /* gate g's rows of W_hh, transposed */
        items[g] = FN(frnn_transposed_item)(H, H, w_hh + g * H * H, dst + g * gate_size);
    return gates;
}

void FN(frnn_pack_recurrent)(const frnn_cell *cell, const FN(frnn_kernel_table) *k,
                             const real *w_hh, real *dst) {
    FN(frnn_pack_item) items[4];
    FN(frnn_pack_items)(k, FN(frnn_recurrent_pack_items)(cell, k, w_hh, dst, items), items);
}

void FN(frnn_cell_steps)(const frnn_cell *cell, const FN(frnn_kernel_table) *k, frnn_int steps,
                         frnn_int B, real *xp, const real *w_hh_p, const real *b_hh,
                         const real *h_prev0, real *c, real *out, real *ws, real *scratch) {
    switch (cell->kind) {
    case FRNN_KIND_LSTM:
        FN(frnn_lstm_steps)(k, steps, B, cell->H, xp, w_hh_p, b_hh, h_prev0, c, out, ws);
        break;
    case FRNN_KIND_GRU:
        FN(frnn_gru_steps)(k, steps, B, cell->H, xp, w_hh_p, b_hh, h_prev0, out, ws, scratch,
                           scratch + B * cell->GH);
        break;
    default:
        FN(frnn_rnn_steps)(k, cell->act, steps, B, cell->H, xp, w_hh_p, b_hh, h_prev0, out);
    }
}

void FN(frnn_cell_gate_grads)(const frnn_cell *cell, const FN(frnn_kernel_table) *k,
                              frnn_int T, frnn_int B, const real *w_hh_p, const real *h0,
                              const real *c0, const real *out, const real *ws,
                              const real *d_out, real *dh, real *dc, real *Gx, real *Gh) {
    switch (cell->kind) {
    case FRNN_KIND_LSTM:
        FN(frnn_lstm_gate_grads)(k, T, B, cell->H, w_hh_p, c0, ws, d_out, dh, dc, Gx);
        break;
    case FRNN_KIND_GRU:
        FN(frnn_gru_gate_grads)(k, T, B, cell->H, w_hh_p, h0, out, ws, d_out, dh, Gx, Gh);
        break;
    default:
        FN(frnn_rnn_gate_grads)(k, cell->act, T, B, cell->H, w_hh_p, out, d_out, dh, Gx);
    }
}

static int FN(layer_forward)(const frnn_cell *cell, frnn_int T, frnn_int B, frnn_int In,
                             const real *x, const real *w_ih, const real *w_hh, const real *b_ih,
                             const real *b_hh, const real *h0, const real *c0, real *out,
                             real *hn, real *cn, real *ws) {
    const int valid = frnn_check_layer(cell, T, B, In);
    if (valid != FRNN_OK) return valid;
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int H = cell->H, GH = cell->GH;
    const frnn_int chunk = frnn_chunk_steps(T, B, GH);
    const frnn_int ih_size = FN(frnn_packed_elems)(k, In, GH);
    const frnn_int hh_size = FN(frnn_recurrent_packed_size)(cell, k);
    const frnn_int elems = frnn_size_add(
        frnn_size_add(ih_size, hh_size),
        frnn_size_add(frnn_size_mul3(chunk, B, GH),
                      frnn_size_add(frnn_size_mul(B, H), frnn_cell_scratch(cell, B))));
    size_t bytes;
    if (frnn_size_bytes(elems, sizeof(real), &bytes)) return FRNN_ERR_TOO_LARGE;
    real *scratch = frnn_scratch_acquire(bytes);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *w_ih_p = scratch;            /* W_ih^T packed */
    real *w_hh_p = w_ih_p + ih_size;   /* W_hh^T packed */
    real *xp = w_hh_p + hh_size;       /* [chunk, B, GH] */
    real *c = xp + chunk * B * GH;     /* [B, H] running cell state (LSTM) */
    real *cell_scratch = c + B * H;
    FN(frnn_pack_item) packs[5] = {FN(frnn_transposed_item)(GH, In, w_ih, w_ih_p)}; /* + W_hh^T */
    FN(frnn_pack_items)(k, 1 + FN(frnn_recurrent_pack_items)(cell, k, w_hh, w_hh_p, packs + 1),
                        packs);
    if (c0) memcpy(c, c0, sizeof(real) * (size_t)(B * H));

    for (frnn_int t0 = 0; t0 < T; t0 += chunk) {
        const frnn_int steps = T - t0 < chunk ? T - t0 : chunk;
        FN(frnn_project_inputs)(k, steps * B, In, GH, x + t0 * B * In, w_ih_p, b_ih, xp);
        FN(frnn_cell_steps)(cell, k, steps, B, xp, w_hh_p, b_hh,
                            t0 == 0 ? h0 : out + (t0 - 1) * B * H, c, out + t0 * B * H,
                            ws ? ws + t0 * B * cell->W : NULL, cell_scratch);
    }
    memcpy(hn, out + (T - 1) * B * H, sizeof(real) * (size_t)(B * H));
    if (cn) memcpy(cn, c, sizeof(real) * (size_t)(B * H));
    frnn_scratch_release(scratch);
    return FRNN_OK;
}

static int FN(layer_backward)(const frnn_cell *cell, frnn_int T, frnn_int B, frnn_int In,
                              const real *x, const real *w_ih, const real *w_hh,
                              const real *h0, const real *c0, const real *out, const real *ws,
                              const real *d_out, const real *d_hn, const real *d_cn, real *dx,
                              real *dw_ih, real *dw_hh, real *db_ih, real *db_hh, real *dh0,
                              real *dc0) {
    const int valid = frnn_check_layer(cell, T, B, In);
    if (valid != FRNN_OK) return valid;
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int H = cell->H, GH = cell->GH;
    const frnn_int hh_size = FN(frnn_packed_elems)(k, GH, H);
    const int two = cell->kind == FRNN_KIND_GRU; /* separate Gh */
    const frnn_int elems = frnn_size_add(frnn_size_mul(1 + two, frnn_size_mul3(T, B, GH)), hh_size);
    size_t bytes;
    if (frnn_size_bytes(elems, sizeof(real), &bytes)) return FRNN_ERR_TOO_LARGE;
    real *scratch = frnn_scratch_acquire(bytes);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *Gx = scratch;                        /* [T, B, GH] */
    real *Gh = two ? Gx + T * B * GH : Gx;     /* [T, B, GH] */
    real *w_hh_p = Gx + (1 + two) * T * B * GH; /* W_hh packed */
    FN(frnn_pack)(k, GH, H, w_hh, w_hh_p);
    /* dh0 / dc0 carry the gradient into the last state and come out as the
     * gradient w.r.t. the initial one. */
    memcpy(dh0, d_hn, sizeof(real) * (size_t)(B * H));
    if (dc0) memcpy(dc0, d_cn, sizeof(real) * (size_t)(B * H));
    FN(frnn_cell_gate_grads)(cell, k, T, B, w_hh_p, h0, c0, out, ws, d_out, dh0, dc0, Gx, Gh);
    FN(frnn_parameter_grads)(k, T, B, In, H, GH, Gx, Gh, x, w_ih, h0, out, dx, dw_ih, dw_hh,
                             db_ih, db_hh);
    frnn_scratch_release(scratch);
    return FRNN_OK;
}

/* ---- the public entry points (fastrnn.h) ------------------------------ */

int FN(frnn_rnn_forward)(frnn_activation act, frnn_int T, frnn_int B, frnn_int In, frnn_int H,
                         const real *x, const real *w_ih, const real *w_hh, const real *b_ih,
                         const real *b_hh, const real *h0, real *out, real *hn) {
    const frnn_cell cell = frnn_make_cell(FRNN_KIND_RNN, act, H);
    return FN(layer_forward)(&cell, T, B, In, x, w_ih, w_hh, b_ih, b_hh, h0, NULL, out, hn,
                             NULL, NULL);
}

int FN(frnn_rnn_backward)(frnn_activation act, frnn_int T, frnn_int B, frnn_int In,
                          frnn_int H, const real *x, const real *w_ih, const real *w_hh,
                          const real *h0, const real *out, const real *d_out,
                          const real *d_hn, real *dx, real *dw_ih, real *dw_hh,
                          real *db_ih, real *db_hh, real *dh0) {
    const frnn_cell cell = frnn_make_cell(FRNN_KIND_RNN, act, H);
    return FN(layer_backward)(&cell, T, B, In, x, w_ih, w_hh, h0, NULL, out, NULL, d_out, d_hn,
                              NULL, dx, dw_ih, dw_hh, db_ih, db_hh, dh0, NULL);
}

int FN(frnn_lstm_forward)(frnn_int T, frnn_int B, frnn_int In, frnn_int H, const real *x,
                          const real *w_ih, const real *w_hh, const real *b_ih,
                          const real *b_hh, const real *h0, const real *c0, real *out,
                          real *hn, real *cn, real *ws) {
    const frnn_cell cell = frnn_make_cell(FRNN_KIND_LSTM, FRNN_ACT_TANH, H);
    return FN(layer_forward)(&cell, T, B, In, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn,
                             ws);
}

int FN(frnn_lstm_backward)(frnn_int T, frnn_int B, frnn_int In, frnn_int H, const real *x,
                           const real *w_ih, const real *w_hh, const real *h0,
                           const real *c0, const real *out, const real *ws,
                           const real *d_out, const real *d_hn, const real *d_cn,
                           real *dx, real *dw_ih, real *dw_hh, real *db_ih, real *db_hh,
                           real *dh0, real *dc0) {
    const frnn_cell cell = frnn_make_cell(FRNN_KIND_LSTM, FRNN_ACT_TANH, H);
    return FN(layer_backward)(&cell, T, B, In, x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn,
                              d_cn, dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0);
}

int FN(frnn_gru_forward)(frnn_int T, frnn_int B, frnn_int In, frnn_int H, const real *x,
                         const real *w_ih, const real *w_hh, const real *b_ih,
                         const real *b_hh, const real *h0, real *out, real *hn, real *ws) {
    const frnn_cell cell = frnn_make_cell(FRNN_KIND_GRU, FRNN_ACT_TANH, H);
    return FN(layer_forward)(&cell, T, B, In, x, w_ih, w_hh, b_ih, b_hh, h0, NULL, out, hn,
                             NULL, ws);
}

int FN(frnn_gru_backward)(frnn_int T, frnn_int B, frnn_int In, frnn_int H, const real *x,
                          const real *w_ih, const real *w_hh, const real *h0,
                          const real *out, const real *ws, const real *d_out,
                          const real *d_hn, real *dx, real *dw_ih, real *dw_hh,
                          real *db_ih, real *db_hh, real *dh0) {
    const frnn_cell cell = frnn_make_cell(FRNN_KIND_GRU, FRNN_ACT_TANH, H);
    return FN(layer_backward)(&cell, T, B, In, x, w_ih, w_hh, h0, NULL, out, ws, d_out, d_hn,
                              NULL, dx, dw_ih, dw_hh, db_ih, db_hh, dh0, NULL);
}
