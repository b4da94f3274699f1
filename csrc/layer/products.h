/* products.h - internal: the threaded products around the cells' time
 * loops (products.c): the input projection hoisted out of the loop, the
 * packing of weights into the kernel table's panels, and the parameter
 * gradients formed after the backward loop.
 *
 * Each takes the kernel table to multiply with, so that weights packed by
 * one table are only ever multiplied by it. Not here: anything that depends
 * on the cell (cells/cell.h, layer/layer.h).
 */
#ifndef FRNN_PRODUCTS_H
#define FRNN_PRODUCTS_H

#include "kernels/kernels.h"
#include "runtime/threads.h"

/* y[N] = column sums of a[M, N]. */
void FN(frnn_column_sums)(frnn_int M, frnn_int N, const real *a, real *y);

/* xp[rows, GH] = x[rows, In] W_ih^T + b_ih, with W_ih^T packed by
 * frnn_pack_transposed with the same table k: the input projection hoisted
 * out of the time loop. */
void FN(frnn_project_inputs)(const FN(frnn_kernel_table) *k, frnn_int rows, frnn_int In,
                             frnn_int GH, const real *x, const real *w_ih_packed, const real *b_ih,
                             real *xp);

/* Several packings (k->pack_b arguments) done as one threaded job over
 * ranges of whole panels; at most FRNN_MAX_PACK_ITEMS. The same bytes as
 * calling pack_b on each. */
#define FRNN_MAX_PACK_ITEMS 8
typedef struct {
    frnn_int K, N;
    const real *B;
    frnn_int rs, cs;
    real *Bp;
} FN(frnn_pack_item);
void FN(frnn_pack_items)(const FN(frnn_kernel_table) *k, int n, const FN(frnn_pack_item) *items);

/* The packing of W^T for W [rows, cols] (the forward's right-hand sides)
 * or of W itself (backward's) into k's panel layout, as an item; dst must
 * hold packed_size elements. frnn_pack_transposed / frnn_pack do one. */
static inline FN(frnn_pack_item) FN(frnn_transposed_item)(frnn_int rows, frnn_int cols,
                                                          const real *w, real *dst) {
    return (FN(frnn_pack_item)){cols, rows, w, 1, cols, dst};
}
static inline FN(frnn_pack_item) FN(frnn_natural_item)(frnn_int rows, frnn_int cols,
                                                       const real *w, real *dst) {
    return (FN(frnn_pack_item)){rows, cols, w, cols, 1, dst};
}
static inline void FN(frnn_pack_transposed)(const FN(frnn_kernel_table) *k, frnn_int rows,
                                            frnn_int cols, const real *w, real *dst) {
    const FN(frnn_pack_item) item = FN(frnn_transposed_item)(rows, cols, w, dst);
    FN(frnn_pack_items)(k, 1, &item);
}
static inline void FN(frnn_pack)(const FN(frnn_kernel_table) *k, frnn_int rows,
                                 frnn_int cols, const real *w, real *dst) {
    const FN(frnn_pack_item) item = FN(frnn_natural_item)(rows, cols, w, dst);
    FN(frnn_pack_items)(k, 1, &item);
}

/* Everything backward computes after its time loop, from the gate
 * gradients of all T steps at once (Gx: [T, B, GH] w.r.t. x W_ih^T + b_ih,
 * Gh: the same w.r.t. h W_hh^T + b_hh; the same array unless the cell has
 * separate_hidden_grad):
 *   dx = Gx W_ih,  dw_ih = Gx^T x,  dw_hh = sum_t Gh[t]^T h_{t-1}
 *   (h_{-1} = h0, h_t = out[t]),  db_ih = colsum(Gx),  db_hh = colsum(Gh). */
void FN(frnn_parameter_grads)(const FN(frnn_kernel_table) *k, frnn_int T, frnn_int B,
                              frnn_int In, frnn_int H, frnn_int GH, const real *Gx,
                              const real *Gh, const real *x, const real *w_ih, const real *h0,
                              const real *out, real *dx, real *dw_ih, real *dw_hh, real *db_ih,
                              real *db_hh);

/* Time steps per chunk of the hoisted input projection: bounds the scratch
 * for x W_ih^T to about FRNN_PROJ_CHUNK_ELEMS elements whatever T is. */
#define FRNN_PROJ_CHUNK_ELEMS ((frnn_int)1 << 18)
static inline frnn_int frnn_chunk_steps(frnn_int T, frnn_int B, frnn_int GH) {
    frnn_int steps = FRNN_PROJ_CHUNK_ELEMS / (B * GH);
    if (steps < 1) steps = 1;
    return steps < T ? steps : T;
}

#endif
