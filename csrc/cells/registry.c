/* registry.c - cell type -> cell ops, from the list in registry.h, and the
 * public shape query frnn_cell_shape (fastrnn.h).
 *
 * Compiled once per dtype (the ops hold per-dtype function pointers); the
 * shapes do not depend on the dtype, so frnn_cell_shape is defined once,
 * in the float copy. No cell knowledge here beyond the list.
 */
#include <stddef.h>
#include "cells/cell.h"

#define FRNN_CELL(type, ops) extern const FN(frnn_cell_ops) FN(ops);
#include "cells/registry.h"
#undef FRNN_CELL

static const FN(frnn_cell_ops) *const FN(registry)[] = {
#define FRNN_CELL(type, ops) &FN(ops),
#include "cells/registry.h"
#undef FRNN_CELL
};

const FN(frnn_cell_ops) *FN(frnn_cell_lookup)(int type) {
    for (size_t i = 0; i < sizeof FN(registry) / sizeof FN(registry)[0]; i++)
        if ((int)FN(registry)[i]->type == type) return FN(registry)[i];
    return NULL;
}

int FN(frnn_make_cell)(const frnn_cell_desc *desc, FN(frnn_cell) *cell) {
    const FN(frnn_cell_ops) *ops = desc ? FN(frnn_cell_lookup)((int)desc->type) : NULL;
    if (!ops || desc->hidden_size < 1) return FRNN_ERR_UNSUPPORTED;
    if (ops->check && ops->check(desc) != FRNN_OK) return FRNN_ERR_UNSUPPORTED;
    cell->ops = ops;
    cell->desc = *desc;
    cell->H = desc->hidden_size;
    cell->GH = frnn_size_mul(ops->gates, cell->H);
    cell->W = frnn_size_mul(ops->workspace, cell->H);
    return FRNN_OK;
}

#ifndef FRNN_F64
int frnn_cell_shape(const frnn_cell_desc *cell, frnn_int *gates, frnn_int *workspace_per_unit,
                    int *has_cell_state) {
    const frnn_cell_ops_f32 *ops = cell ? frnn_cell_lookup_f32((int)cell->type) : NULL;
    if (!ops) return FRNN_ERR_UNSUPPORTED;
    if (gates) *gates = ops->gates;
    if (workspace_per_unit) *workspace_per_unit = ops->workspace;
    if (has_cell_state) *has_cell_state = ops->has_cell_state;
    return FRNN_OK;
}
#endif
