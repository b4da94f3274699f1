/* layer.h - internal: a cell as a layer, for the entry points that run one
 * (layer.c, train.c, stream.c): the size checks every entry point makes
 * first, and the packing of W_hh^T that the cells' forward loops read.
 *
 * Compiled into each of those files once per dtype. Not here: the cells
 * (cells/cell.h) and the products (layer/products.h), both included.
 */
#ifndef FRNN_LAYER_H
#define FRNN_LAYER_H

#include "cells/cell.h"
#include "layer/products.h"
#include "runtime/memory.h"

/* The sizes every entry point validates first (layer.c): FRNN_ERR_UNSUPPORTED
 * if T, B, In or H is < 1; FRNN_ERR_TOO_LARGE if one of the arrays the call
 * indexes - x [T, B, In], out / d_out [T, B, H], ws [T, B, W], the gate
 * gradients [T, B, GH], w_ih [GH, In], w_hh [GH, H], packed forms - would
 * have more elements than frnn_int or bytes than memory can address. After
 * it, every product of these sizes that the kernels form fits. */
int FN(frnn_check_layer)(const FN(frnn_cell) *cell, frnn_int T, frnn_int B, frnn_int In);

/* *cell for desc, checked for a layer of these sizes: frnn_make_cell, then
 * frnn_check_layer (what every entry point does first). */
static inline int FN(frnn_layer_cell)(const frnn_cell_desc *desc, frnn_int T, frnn_int B,
                                      frnn_int In, FN(frnn_cell) *cell) {
    const int valid = FN(frnn_make_cell)(desc, cell);
    return valid == FRNN_OK ? FN(frnn_check_layer)(cell, T, B, In) : valid;
}

/* W_hh^T packed the way the cells' forward loops read it (their recurrent
 * right-hand side): each gate's [H, H] block packed on its own, so a block
 * of hidden units finds the columns of all its gates in whole panels.
 * dst must hold frnn_recurrent_packed_size elements. frnn_recurrent_pack_items
 * describes that packing as items for frnn_pack_items (returns how many,
 * one per gate, at most FRNN_MAX_GATES), so a caller can fold it into a
 * job with other packings. */
#define FRNN_MAX_GATES (FRNN_MAX_PACK_ITEMS - 1) /* one item is left for W_ih^T */
frnn_int FN(frnn_recurrent_packed_size)(const FN(frnn_cell) *cell,
                                        const FN(frnn_kernel_table) *k);
int FN(frnn_recurrent_pack_items)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                                  const real *w_hh, real *dst, FN(frnn_pack_item) *items);
void FN(frnn_pack_recurrent)(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                             const real *w_hh, real *dst);

#endif
