/* cell.h - internal: what a recurrent cell is to the rest of the core.
 *
 * A cell is a table of operations (FN(frnn_cell_ops)) that one file in
 * cells/ defines and cells/registry.h lists: its shape (gates, workspace,
 * cell state), its forward time loop over a chunk of steps, its backward
 * time loop, and its single step. Everything that runs a layer - the whole-
 * window entry points (layer/layer.c), the trainer (layer/train.c) and the
 * stream (layer/stream.c) - goes through these, never through a switch on
 * the cell's kind, so adding a cell is a new file here plus a line in
 * registry.h (and its enum value in fastrnn.h).
 *
 * The gate math itself stays with the cell: either in its file, or, where
 * it should be vectorised per ISA, in the kernel table (kernels/gates.c).
 * Not here: the time-major layer around the loops (layer/layer.h).
 *
 * Shapes: B = batch, H = hidden, GH = gates * H, W = workspace * H; a
 * "[B, kH]" array has rows of k blocks of H units.
 */
#ifndef FRNN_CELL_H
#define FRNN_CELL_H

#include "kernels/kernels.h"
#include "runtime/threads.h"

typedef struct FN(frnn_cell) FN(frnn_cell);

/* What a cell's backward time loop reads besides ws[t] and the incoming
 * gradients, for step t: the per-output depth of the trainer (train.c)
 * runs that loop over one step with the rows of many steps stacked, and
 * gathers exactly these for each. */
enum {
    FRNN_READS_OUTPUT = 1, /* out[t], i.e. h_t */
    FRNN_READS_H_PREV = 2, /* h_{t-1}: out[t-1], or h0 at t = 0 */
    FRNN_READS_C_PREV = 4  /* c_{t-1}: the cell-state block of ws[t-1], or c0 at t = 0 */
};

/* The forward over `steps` steps from the state h_prev0 [B, H] (and c
 * [B, H], updated in place, for a cell with a cell state): xp [steps, B,
 * GH] is the input projection including b_ih, consumed (a cell may
 * accumulate onto it); w_hh_p is W_hh^T packed by frnn_pack_recurrent;
 * out [steps, B, H], which must not alias h_prev0; ws [steps, B, W] or
 * NULL (inference); scratch: frnn_cell_scratch(cell, B) elements. */
typedef void (*FN(frnn_cell_steps_fn))(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                                       frnn_int steps, frnn_int B, real *xp, const real *w_hh_p,
                                       const real *b_hh, const real *h_prev0, real *c, real *out,
                                       real *ws, real *scratch);
/* The backward time loop over T steps, t = T-1 .. 0: given h0, c0 [B, H],
 * the saved out [T, B, H] and ws [T, B, W], d_out [T, B, H], and the
 * gradient flowing into the last state in dh (and dc) [B, H], writes the
 * gate gradients Gx (w.r.t. x W_ih^T + b_ih) and Gh (w.r.t. h W_hh^T +
 * b_hh) [T, B, GH] and leaves dh (dc) = the gradient w.r.t. the initial
 * state. Gh may be Gx's buffer unless separate_hidden_grad. w_hh_p is W_hh
 * itself packed (frnn_pack). */
typedef void (*FN(frnn_cell_gate_grads_fn))(const FN(frnn_cell) *cell,
                                            const FN(frnn_kernel_table) *k, frnn_int T,
                                            frnn_int B, const real *w_hh_p, const real *h0,
                                            const real *c0, const real *out, const real *ws,
                                            const real *d_out, real *dh, real *dc, real *Gx,
                                            real *Gh);
/* One step from unpacked weights (frnn_layer_step, fastrnn.h): x [B, In],
 * h, c [B, H] -> h_out, c_out [B, H], which may alias h, c. Sizes checked
 * by the caller; returns FRNN_OK, FRNN_ERR_NOMEM or FRNN_ERR_TOO_LARGE. */
typedef int (*FN(frnn_cell_step_fn))(const FN(frnn_cell) *cell, const FN(frnn_kernel_table) *k,
                                     frnn_int B, frnn_int In, const real *x, const real *w_ih,
                                     const real *w_hh, const real *b_ih, const real *b_hh,
                                     const real *h, const real *c, real *h_out, real *c_out);

/* Optional (NULL for a cell whose recurrent products all read h_{t-1}):
 * after the shared products have formed dW_hh = sum_t Gh[t]^T h_{t-1} and
 * db_hh = column sums of Gh over `rows` rows of Gx / Gh [rows, GH] and ws
 * [rows, W], overwrite the blocks of dw_hh [GH, H] (and db_hh [GH], when
 * db_ih / db_hh are not NULL) whose product reads something else (the
 * original GRU: W_hn multiplies r h_{t-1}, kept in its workspace). */
typedef void (*FN(frnn_cell_recurrent_input_grads_fn))(const FN(frnn_cell) *cell,
                                                       const FN(frnn_kernel_table) *k,
                                                       frnn_int rows, const real *Gx,
                                                       const real *ws, const real *db_ih,
                                                       real *dw_hh, real *db_hh);

/* Optional (NULL for a cell without hyperparameters): FRNN_OK if desc's
 * hyperparameter fields are valid for the cell, else FRNN_ERR_UNSUPPORTED
 * (the leaky cell: a leak rate that is not a finite number in (0, 1]). */
typedef int (*FN(frnn_cell_check_fn))(const frnn_cell_desc *desc);

typedef struct {
    frnn_cell_type type;      /* its code in fastrnn.h */
    int gates;                /* G: blocks of H rows in W_ih, W_hh, the biases */
    int workspace;            /* W / H: what a training forward saves per row and step */
    int has_cell_state;       /* carries c besides h (c0, cn, d_cn, dc0 exist) */
    int separate_hidden_grad; /* Gh differs from Gx: backward keeps both */
    int scratch;              /* the forward loop's scratch per batch row, / H */
    int cell_state_offset;    /* has_cell_state: where c_t sits in a ws row, / H */
    int backward_reads;       /* FRNN_READS_* */
    int variant;              /* a constant for cells sharing a file (Elman: frnn_activation) */
    FN(frnn_cell_steps_fn) steps;
    FN(frnn_cell_gate_grads_fn) gate_grads;
    FN(frnn_cell_step_fn) step;
    FN(frnn_cell_recurrent_input_grads_fn) recurrent_input_grads; /* NULL: none needed */
    FN(frnn_cell_check_fn) check; /* NULL: no hyperparameters to check */
} FN(frnn_cell_ops);

/* A cell of a given size, as every entry point holds it. */
struct FN(frnn_cell) {
    const FN(frnn_cell_ops) *ops;
    frnn_cell_desc desc; /* the caller's, hyperparameters included */
    frnn_int H, GH, W;   /* hidden, gates * hidden, workspace width */
};

/* The registered ops of `type` (cells/registry.h), NULL if none. */
const FN(frnn_cell_ops) *FN(frnn_cell_lookup)(int type);

/* *cell for desc: FRNN_ERR_UNSUPPORTED if desc is NULL or its type unknown
 * (or hidden_size < 1, checked again by frnn_check_layer, or the cell's
 * check refuses its hyperparameters); GH and W are
 * FRNN_SIZE_INVALID if they overflow, which frnn_check_layer rejects
 * before anything uses them. */
int FN(frnn_make_cell)(const frnn_cell_desc *desc, FN(frnn_cell) *cell);

/* Elements of scratch the forward loop needs (FRNN_SIZE_INVALID on overflow). */
static inline frnn_int FN(frnn_cell_scratch)(const FN(frnn_cell) *cell, frnn_int B) {
    return frnn_size_mul(B, frnn_size_mul(cell->ops->scratch, cell->H));
}

/* ---- how the cells' time steps are threaded ------------------------- */

/* How a time step (or backward iteration) of B x GH outputs, each a dot
 * product over H, is cut into tasks over blocks of hidden units: whole
 * panels, about eight tasks per thread (claimed dynamically, so a slow
 * thread takes fewer); all of H on one thread below the work threshold. */
typedef struct {
    int threads;
    frnn_int block, tasks; /* hidden units per task (a multiple of nr, or H); how many */
} frnn_step_split;

static inline frnn_step_split frnn_split_step(frnn_int B, frnn_int GH, frnn_int H, frnn_int nr) {
    const frnn_int panels = (H + nr - 1) / nr;
    frnn_step_split s = {frnn_threads_for(2.0 * (double)(B * GH) * (double)H, panels), H, 1};
    if (s.threads > 1) {
        const frnn_int tasks = 8 * (frnn_int)s.threads < panels ? 8 * (frnn_int)s.threads : panels;
        s.block = (panels + tasks - 1) / tasks * nr;
        s.tasks = (H + s.block - 1) / s.block;
    }
    return s;
}

/* The hidden units of a step's task: [*j0, *j0 + the result). */
static inline frnn_int frnn_block_units(frnn_int H, frnn_int block, frnn_int task, frnn_int *j0) {
    *j0 = task * block;
    return H - *j0 < block ? H - *j0 : block;
}

#endif
