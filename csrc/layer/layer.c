/* layer.c - a whole recurrent layer over a window, for any cell: the
 * public frnn_layer_forward / _backward / _step of fastrnn.h.
 *
 * Written once for every cell: pack the weights, hoist the input projection
 * (in bounded chunks of time), run the cell's forward loop (its ops'
 * steps), and after the backward loop (its gate_grads) form dx and the
 * parameter gradients from the gate gradients of every step at once. The
 * per-step math lives in cells/ behind FN(frnn_cell_ops), which train.c and
 * stream.c use too; nothing here knows which cell runs. Compiled once per
 * dtype.
 */
#include <stdlib.h>
#include <string.h>
#include "layer/layer.h"

int FN(frnn_check_layer)(const FN(frnn_cell) *cell, frnn_int T, frnn_int B, frnn_int In) {
    const frnn_int H = cell->H, GH = cell->GH, W = cell->W;
    if (T < 1 || B < 1 || In < 1 || H < 1 || cell->ops->gates > FRNN_MAX_GATES)
        return FRNN_ERR_UNSUPPORTED;
    /* One bound for all of them: the rows of every [T, B, .] array side by
     * side (GH twice: a separate Gh), and the weights side by side with
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

frnn_int FN(frnn_recurrent_packed_size)(const FN(frnn_cell) *cell,
                                        const FN(frnn_kernel_table) *k) {
    return frnn_size_mul(cell->ops->gates, FN(frnn_packed_elems)(k, cell->H, cell->H));
}

int FN(frnn_recurrent_pack_items)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                                  const real *w_hh, real *dst, FN(frnn_pack_item) *items) {
    const frnn_int H = cell->H, gate_size = k->packed_size(H, H);
    const int gates = cell->ops->gates;
    for (int g = 0; g < gates; g++) /* gate g's rows of W_hh, transposed */
        items[g] = FN(frnn_transposed_item)(H, H, w_hh + g * H * H, dst + g * gate_size);
    return gates;
}

void FN(frnn_pack_recurrent)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                             const real *w_hh, real *dst) {
    FN(frnn_pack_item) items[FRNN_MAX_GATES];
    FN(frnn_pack_items)(k, FN(frnn_recurrent_pack_items)(cell, k, w_hh, dst, items), items);
}

int FN(frnn_layer_forward)(const frnn_cell_desc *desc, frnn_int T, frnn_int B, frnn_int In,
                           const real *x, const real *w_ih, const real *w_hh, const real *b_ih,
                           const real *b_hh, const real *h0, const real *c0, real *out,
                           real *hn, real *cn, real *ws) {
    FN(frnn_cell) one;
    const FN(frnn_cell) *cell = &one;
    const int valid = FN(frnn_layer_cell)(desc, T, B, In, &one);
    if (valid != FRNN_OK) return valid;
    const int state = cell->ops->has_cell_state;
    if (!x || !w_ih || !w_hh || !b_ih || !b_hh || !h0 || !out || !hn || (state && (!c0 || !cn)))
        return FRNN_ERR_UNSUPPORTED;
    if (!state) c0 = NULL, cn = NULL; /* ignored (fastrnn.h) */
    if (cell->W == 0) ws = NULL;
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int H = cell->H, GH = cell->GH;
    const frnn_int chunk = frnn_chunk_steps(T, B, GH);
    const frnn_int ih_size = FN(frnn_packed_elems)(k, In, GH);
    const frnn_int hh_size = FN(frnn_recurrent_packed_size)(cell, k);
    const frnn_int elems = frnn_size_add(
        frnn_size_add(ih_size, hh_size),
        frnn_size_add(frnn_size_mul3(chunk, B, GH),
                      frnn_size_add(frnn_size_mul(B, H), FN(frnn_cell_scratch)(cell, B))));
    size_t bytes;
    if (frnn_size_bytes(elems, sizeof(real), &bytes)) return FRNN_ERR_TOO_LARGE;
    real *scratch = frnn_scratch_acquire(bytes);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *w_ih_p = scratch;            /* W_ih^T packed */
    real *w_hh_p = w_ih_p + ih_size;   /* W_hh^T packed */
    real *xp = w_hh_p + hh_size;       /* [chunk, B, GH] */
    real *c = xp + chunk * B * GH;     /* [B, H] running cell state (if the cell has one) */
    real *cell_scratch = c + B * H;
    /* W_ih^T and every gate's block of W_hh^T, packed as one job */
    FN(frnn_pack_item) packs[FRNN_MAX_PACK_ITEMS] = {
        FN(frnn_transposed_item)(GH, In, w_ih, w_ih_p)};
    FN(frnn_pack_items)(k, 1 + FN(frnn_recurrent_pack_items)(cell, k, w_hh, w_hh_p, packs + 1),
                        packs);
    if (c0) memcpy(c, c0, sizeof(real) * (size_t)(B * H));

    for (frnn_int t0 = 0; t0 < T; t0 += chunk) {
        const frnn_int steps = T - t0 < chunk ? T - t0 : chunk;
        FN(frnn_project_inputs)(k, steps * B, In, GH, x + t0 * B * In, w_ih_p, b_ih, xp);
        cell->ops->steps(cell, k, steps, B, xp, w_hh_p, b_hh,
                         t0 == 0 ? h0 : out + (t0 - 1) * B * H, c, out + t0 * B * H,
                         ws ? ws + t0 * B * cell->W : NULL, cell_scratch);
    }
    memcpy(hn, out + (T - 1) * B * H, sizeof(real) * (size_t)(B * H));
    if (cn) memcpy(cn, c, sizeof(real) * (size_t)(B * H));
    frnn_scratch_release(scratch);
    return FRNN_OK;
}

int FN(frnn_layer_backward)(const frnn_cell_desc *desc, frnn_int T, frnn_int B, frnn_int In,
                            const real *x, const real *w_ih, const real *w_hh, const real *h0,
                            const real *c0, const real *out, const real *ws, const real *d_out,
                            const real *d_hn, const real *d_cn, real *dx, real *dw_ih,
                            real *dw_hh, real *db_ih, real *db_hh, real *dh0, real *dc0) {
    FN(frnn_cell) one;
    const FN(frnn_cell) *cell = &one;
    const int valid = FN(frnn_layer_cell)(desc, T, B, In, &one);
    if (valid != FRNN_OK) return valid;
    const int state = cell->ops->has_cell_state;
    if (!x || !w_ih || !w_hh || !h0 || !out || (cell->W > 0 && !ws) || !d_out || !d_hn || !dx ||
        !dw_ih || !dw_hh || !db_ih || !db_hh || !dh0 || (state && (!c0 || !d_cn || !dc0)))
        return FRNN_ERR_UNSUPPORTED;
    if (!state) c0 = NULL, d_cn = NULL, dc0 = NULL; /* ignored (fastrnn.h) */
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int H = cell->H, GH = cell->GH;
    const frnn_int hh_size = FN(frnn_packed_elems)(k, GH, H);
    const int two = cell->ops->separate_hidden_grad; /* a separate Gh */
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
    cell->ops->gate_grads(cell, k, T, B, w_hh_p, h0, c0, out, ws, d_out, dh0, dc0, Gx, Gh);
    FN(frnn_parameter_grads)(k, T, B, In, H, GH, Gx, Gh, x, w_ih, h0, out, dx, dw_ih, dw_hh,
                             db_ih, db_hh);
    if (cell->ops->recurrent_input_grads)
        cell->ops->recurrent_input_grads(cell, k, T * B, Gx, ws, db_ih, dw_hh, db_hh);
    frnn_scratch_release(scratch);
    return FRNN_OK;
}

int FN(frnn_layer_step)(const frnn_cell_desc *desc, frnn_int B, frnn_int In, const real *x,
                        const real *w_ih, const real *w_hh, const real *b_ih, const real *b_hh,
                        const real *h, const real *c, real *h_out, real *c_out) {
    FN(frnn_cell) cell;
    const int valid = FN(frnn_layer_cell)(desc, 1, B, In, &cell);
    if (valid != FRNN_OK) return valid;
    const int state = cell.ops->has_cell_state;
    if (!x || !w_ih || !w_hh || !b_ih || !b_hh || !h || !h_out || (state && (!c || !c_out)))
        return FRNN_ERR_UNSUPPORTED;
    if (!state) c = NULL, c_out = NULL; /* ignored (fastrnn.h) */
    return cell.ops->step(&cell, FN(frnn_active)(), B, In, x, w_ih, w_hh, b_ih, b_hh, h, c, h_out,
                          c_out);
}
