/* lengths.c - a layer over a window whose batch rows have lengths of their
 * own: frnn_layer_forward_lengths / frnn_layer_backward_lengths (fastrnn.h).
 *
 * The semantics are PyTorch's packed sequences (pack_padded_sequence with
 * enforce_sorted=False): row b runs steps 0 .. lengths[b]-1; its outputs
 * past its length are 0 and its final state is the one after its last valid
 * step. The cost follows the valid steps, not T x B:
 *
 *   - the rows are ordered by length, longest first, once (a stable
 *     counting sort, so equal lengths keep their order, as torch's);
 *   - active[t] = the rows with length > t, nonincreasing, so step t runs
 *     on the first active[t] rows of that order;
 *   - the valid (t, row) entries are packed step by step, as torch's
 *     PackedSequence is: step t's rows are one contiguous block, and its
 *     h_{t-1} is the first active[t] rows of step t-1's block (a row that
 *     ended keeps its state in the sorted state arrays);
 *   - between two lengths the active count is constant, and a run of such
 *     steps (a segment) is, packed, exactly a time-major [steps, rows, .]
 *     array. So each segment runs through the cell's own forward and
 *     backward loops (cells/cell.h) unchanged, with the same per-step
 *     threading and one job boundary per step; there are at most as many
 *     segments as distinct lengths.
 *
 * The caller's arrays stay padded [T, B, .]: inputs are gathered into packed
 * scratch and results scattered back, zeros past each row's length (the
 * workspace too, so it is the plain path's at every valid entry). The parameter
 * gradients are formed once over all packed rows. Lengths all equal to T are
 * the plain entry points' work; the Python layer calls those for them (they
 * give bitwise the same results). Compiled once per dtype.
 */
#include <stdlib.h>
#include <string.h>
#include "layer/layer.h"

/* The order and packing of a batch by length. */
typedef struct {
    frnn_int *order;  /* [B] row indices by length, longest first (stable) */
    frnn_int *offset; /* [T + 1] packed row where step t starts; offset[T] = rows */
    frnn_int *length; /* [B] lengths in that order, nonincreasing */
    frnn_int steps;   /* the longest length: steps with at least one row */
    frnn_int rows;    /* packed rows: the sum of the lengths */
    void *block;      /* the one allocation behind the arrays */
} frnn_schedule;

static frnn_int active_rows(const frnn_schedule *s, frnn_int t) {
    return s->offset[t + 1] - s->offset[t];
}

/* FRNN_OK, FRNN_ERR_UNSUPPORTED for a length outside [0, T], FRNN_ERR_NOMEM.
 * T and B are checked sizes (frnn_check_layer), so B + 2T + 2 fits. */
static int frnn_make_schedule(frnn_int T, frnn_int B, const frnn_int *lengths,
                              frnn_schedule *s) {
    for (frnn_int b = 0; b < B; b++)
        if (lengths[b] < 0 || lengths[b] > T) return FRNN_ERR_UNSUPPORTED;
    size_t bytes;
    if (frnn_size_bytes(frnn_size_add(frnn_size_mul(2, B), frnn_size_mul(2, T + 2)),
                        sizeof(frnn_int), &bytes))
        return FRNN_ERR_TOO_LARGE;
    frnn_int *block = frnn_alloc(bytes);
    if (!block) return FRNN_ERR_NOMEM;
    s->block = block;
    s->order = block;
    s->length = s->order + B;
    s->offset = s->length + B;
    frnn_int *first = s->offset + (T + 1); /* [T + 1]: where length L's rows start in order */
    /* count rows per length, then place them longest first, each length's
     * rows in their original order */
    memset(first, 0, sizeof(frnn_int) * (size_t)(T + 1));
    for (frnn_int b = 0; b < B; b++) first[lengths[b]]++;
    frnn_int at = 0;
    for (frnn_int L = T; L >= 0; L--) {
        const frnn_int count = first[L];
        first[L] = at;
        at += count;
    }
    for (frnn_int b = 0; b < B; b++) {
        const frnn_int i = first[lengths[b]]++;
        s->order[i] = b;
        s->length[i] = lengths[b];
    }
    /* active[t] = rows with length > t, read off the sorted lengths */
    s->offset[0] = 0;
    frnn_int active = B;
    for (frnn_int t = 0; t < T; t++) {
        while (active > 0 && s->length[active - 1] <= t) active--;
        s->offset[t + 1] = s->offset[t] + active;
    }
    s->steps = B > 0 ? s->length[0] : 0;
    s->rows = s->offset[T];
    return FRNN_OK;
}

/* The end of the segment that starts at step t0: the first later step with
 * fewer rows (or the last step). */
static frnn_int segment_end(const frnn_schedule *s, frnn_int t0) {
    const frnn_int rows = active_rows(s, t0);
    frnn_int t1 = t0 + 1;
    while (t1 < s->steps && active_rows(s, t1) == rows) t1++;
    return t1;
}

/* packed[offset[t] - offset[t0] + i] = padded[t, order[i]] for the valid
 * entries of steps t0 .. t1-1; rows of C values. */
static void FN(gather_steps)(const frnn_schedule *s, frnn_int t0, frnn_int t1, frnn_int B,
                             frnn_int C, const real *padded, real *packed) {
    const size_t row = sizeof(real) * (size_t)C;
    real *dst = packed;
    for (frnn_int t = t0; t < t1; t++)
        for (frnn_int i = 0, n = active_rows(s, t); i < n; i++, dst += C)
            memcpy(dst, padded + (t * B + s->order[i]) * C, row);
}

/* padded[t, b] = the packed entry, or 0 past row b's length: every entry of
 * padded [T, B, C] is written. */
static void FN(scatter_steps)(const frnn_schedule *s, frnn_int T, frnn_int B, frnn_int C,
                              const real *packed, real *padded) {
    const size_t row = sizeof(real) * (size_t)C;
    memset(padded, 0, row * (size_t)(T * B));
    const real *src = packed;
    for (frnn_int t = 0; t < s->steps; t++)
        for (frnn_int i = 0, n = active_rows(s, t); i < n; i++, src += C)
            memcpy(padded + (t * B + s->order[i]) * C, src, row);
}

/* dst[i] = src[order[i]] (to_sorted) or dst[order[i]] = src[i], rows of C. */
static void FN(permute_rows)(const frnn_schedule *s, frnn_int B, frnn_int C, const real *src,
                             real *dst, int to_sorted) {
    const size_t row = sizeof(real) * (size_t)C;
    for (frnn_int i = 0; i < B; i++) {
        const frnn_int b = s->order[i];
        if (to_sorted)
            memcpy(dst + i * C, src + b * C, row);
        else
            memcpy(dst + b * C, src + i * C, row);
    }
}

int FN(frnn_layer_forward_lengths)(const frnn_cell_desc *desc, frnn_int T, frnn_int B,
                                   frnn_int In, const frnn_int *lengths, const real *x,
                                   const real *w_ih, const real *w_hh, const real *b_ih,
                                   const real *b_hh, const real *h0, const real *c0, real *out,
                                   real *hn, real *cn, real *ws) {
    FN(frnn_cell) one;
    const FN(frnn_cell) *cell = &one;
    const int valid = FN(frnn_layer_cell)(desc, T, B, In, &one);
    if (valid != FRNN_OK) return valid;
    const int state = cell->ops->has_cell_state;
    if (!lengths || !x || !w_ih || !w_hh || !b_ih || !b_hh || !h0 || !out || !hn ||
        (state && (!c0 || !cn)))
        return FRNN_ERR_UNSUPPORTED;
    if (!state) c0 = NULL, cn = NULL; /* ignored (fastrnn.h) */
    if (cell->W == 0) ws = NULL;
    frnn_schedule sched;
    const int scheduled = frnn_make_schedule(T, B, lengths, &sched);
    if (scheduled != FRNN_OK) return scheduled;

    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int H = cell->H, GH = cell->GH, W = cell->W, N = sched.rows;
    /* the projection runs over chunks of at most chunk_rows packed rows */
    const frnn_int chunk_rows = frnn_chunk_steps(T, B, GH) * B;
    const frnn_int ih_size = FN(frnn_packed_elems)(k, In, GH);
    const frnn_int hh_size = FN(frnn_recurrent_packed_size)(cell, k);
    const frnn_int elems = frnn_size_add(
        frnn_size_add(frnn_size_add(ih_size, hh_size),
                      frnn_size_mul(chunk_rows, frnn_size_add(In, GH))),
        frnn_size_add(frnn_size_mul(N, frnn_size_add(H, ws ? W : 0)),
                      frnn_size_add(frnn_size_mul(2 * B, H), FN(frnn_cell_scratch)(cell, B))));
    size_t bytes;
    real *scratch = NULL;
    if (frnn_size_bytes(elems, sizeof(real), &bytes)) {
        free(sched.block);
        return FRNN_ERR_TOO_LARGE;
    }
    scratch = frnn_scratch_acquire(bytes);
    if (!scratch) {
        free(sched.block);
        return FRNN_ERR_NOMEM;
    }
    real *w_ih_p = scratch;                 /* W_ih^T packed */
    real *w_hh_p = w_ih_p + ih_size;        /* W_hh^T packed, per gate */
    real *xg = w_hh_p + hh_size;            /* [chunk_rows, In] gathered inputs */
    real *xp = xg + chunk_rows * In;        /* [chunk_rows, GH] their projection */
    real *out_p = xp + chunk_rows * GH;     /* [N, H] packed outputs */
    real *ws_p = out_p + N * H;             /* [N, W] packed workspace (training) */
    real *h_start = ws_p + (ws ? N * W : 0); /* [B, H] h0, sorted */
    real *c = h_start + B * H;              /* [B, H] running cell state, sorted */
    real *cell_scratch = c + B * H;
    FN(frnn_pack_item) packs[FRNN_MAX_PACK_ITEMS] = {
        FN(frnn_transposed_item)(GH, In, w_ih, w_ih_p)};
    FN(frnn_pack_items)(k, 1 + FN(frnn_recurrent_pack_items)(cell, k, w_hh, w_hh_p, packs + 1),
                        packs);
    FN(permute_rows)(&sched, B, H, h0, h_start, 1);
    if (c0) FN(permute_rows)(&sched, B, H, c0, c, 1);

    /* Chunks of whole steps, up to chunk_rows packed rows each (the packed
     * rows of consecutive steps are contiguous, across segments too): one
     * gather and one projection GEMM per chunk, then the segments inside
     * it. Projecting per segment instead cost a small GEMM per distinct
     * length. */
    for (frnn_int c0 = 0; c0 < sched.steps;) {
        frnn_int c1 = c0 + 1; /* at least one step: its rows <= B <= chunk_rows */
        while (c1 < sched.steps && sched.offset[c1 + 1] - sched.offset[c0] <= chunk_rows) c1++;
        FN(gather_steps)(&sched, c0, c1, B, In, x, xg);
        FN(frnn_project_inputs)(k, sched.offset[c1] - sched.offset[c0], In, GH, xg, w_ih_p, b_ih,
                                xp);
        for (frnn_int t0 = c0; t0 < c1;) {
            frnn_int t1 = segment_end(&sched, t0);
            if (t1 > c1) t1 = c1;
            const frnn_int rows = active_rows(&sched, t0), at = sched.offset[t0];
            /* h_{t0-1} of these rows: the first `rows` rows of step t0-1's block */
            const real *h_prev = t0 == 0 ? h_start : out_p + sched.offset[t0 - 1] * H;
            cell->ops->steps(cell, k, t1 - t0, rows, xp + (at - sched.offset[c0]) * GH, w_hh_p,
                             b_hh, h_prev, c, out_p + at * H, ws ? ws_p + at * W : NULL,
                             cell_scratch);
            t0 = t1;
        }
        c0 = c1;
    }
    FN(scatter_steps)(&sched, T, B, H, out_p, out);
    if (ws) FN(scatter_steps)(&sched, T, B, W, ws_p, ws);
    /* each row's last state: its entry at its last step, or h0 for length 0 */
    for (frnn_int i = 0; i < B; i++) {
        const frnn_int L = sched.length[i], b = sched.order[i];
        memcpy(hn + b * H, L > 0 ? out_p + (sched.offset[L - 1] + i) * H : h0 + b * H,
               sizeof(real) * (size_t)H);
    }
    if (cn) FN(permute_rows)(&sched, B, H, c, cn, 0);
    frnn_scratch_release(scratch);
    free(sched.block);
    return FRNN_OK;
}

int FN(frnn_layer_backward_lengths)(const frnn_cell_desc *desc, frnn_int T, frnn_int B,
                                    frnn_int In, const frnn_int *lengths, const real *x,
                                    const real *w_ih, const real *w_hh, const real *h0,
                                    const real *c0, const real *out, const real *ws,
                                    const real *d_out, const real *d_hn, const real *d_cn,
                                    real *dx, real *dw_ih, real *dw_hh, real *db_ih,
                                    real *db_hh, real *dh0, real *dc0) {
    FN(frnn_cell) one;
    const FN(frnn_cell) *cell = &one;
    const int valid = FN(frnn_layer_cell)(desc, T, B, In, &one);
    if (valid != FRNN_OK) return valid;
    const int state = cell->ops->has_cell_state;
    if (!lengths || !x || !w_ih || !w_hh || !h0 || !out || (cell->W > 0 && !ws) || !d_out ||
        !d_hn || !dx || !dw_ih || !dw_hh || !db_ih || !db_hh || !dh0 ||
        (state && (!c0 || !d_cn || !dc0)))
        return FRNN_ERR_UNSUPPORTED;
    if (!state) c0 = NULL, d_cn = NULL, dc0 = NULL; /* ignored (fastrnn.h) */
    frnn_schedule sched;
    const int scheduled = frnn_make_schedule(T, B, lengths, &sched);
    if (scheduled != FRNN_OK) return scheduled;

    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int H = cell->H, GH = cell->GH, W = cell->W, N = sched.rows;
    const int two = cell->ops->separate_hidden_grad; /* a separate Gh */
    const frnn_int hh_size = FN(frnn_packed_elems)(k, GH, H);
    /* packed: out, d_out, h_{t-1} [N, H]; ws [N, W]; x, dx [N, In]; Gx (Gh) [N, GH];
     * sorted: h0, c_{t0-1} of a segment, dh, dc [B, H] */
    const frnn_int per_row = frnn_size_add(frnn_size_add(frnn_size_mul(3, H), W),
                                           frnn_size_add(frnn_size_mul(2, In),
                                                         frnn_size_mul(1 + two, GH)));
    const frnn_int elems = frnn_size_add(frnn_size_add(hh_size, frnn_size_mul(N, per_row)),
                                         frnn_size_mul(4 * B, H));
    size_t bytes;
    if (frnn_size_bytes(elems, sizeof(real), &bytes)) {
        free(sched.block);
        return FRNN_ERR_TOO_LARGE;
    }
    real *scratch = frnn_scratch_acquire(bytes);
    if (!scratch) {
        free(sched.block);
        return FRNN_ERR_NOMEM;
    }
    real *w_hh_p = scratch;             /* W_hh packed */
    real *out_p = w_hh_p + hh_size;     /* [N, H] */
    real *d_out_p = out_p + N * H;      /* [N, H] */
    real *h_prev_p = d_out_p + N * H;   /* [N, H] h_{t-1} of every packed entry */
    real *ws_p = h_prev_p + N * H;      /* [N, W] */
    real *x_p = ws_p + N * W;           /* [N, In] */
    real *dx_p = x_p + N * In;          /* [N, In] */
    real *Gx = dx_p + N * In;           /* [N, GH] */
    real *Gh = two ? Gx + N * GH : Gx;  /* [N, GH] */
    real *h_start = Gx + (1 + two) * N * GH; /* [B, H] h0 sorted */
    real *c_start = h_start + B * H;    /* [B, H] c0 sorted, then a segment's c_{t0-1} */
    real *dh = c_start + B * H;         /* [B, H] dL/dh, sorted */
    real *dc = dh + B * H;              /* [B, H] dL/dc, sorted */
    FN(frnn_pack)(k, GH, H, w_hh, w_hh_p);
    FN(gather_steps)(&sched, 0, sched.steps, B, H, out, out_p);
    FN(gather_steps)(&sched, 0, sched.steps, B, H, d_out, d_out_p);
    if (W > 0) FN(gather_steps)(&sched, 0, sched.steps, B, W, ws, ws_p);
    FN(permute_rows)(&sched, B, H, h0, h_start, 1);
    /* d_hn enters each row at its last valid step; a row of length 0 is
     * never touched, so its d_hn (d_cn) comes out as dh0 (dc0). */
    FN(permute_rows)(&sched, B, H, d_hn, dh, 1);
    if (state) FN(permute_rows)(&sched, B, H, d_cn, dc, 1);
    const frnn_int c_at = cell->ops->cell_state_offset * H;

    /* segments from the last to the first; each leaves dh (dc) = the
     * gradient w.r.t. the state before it for its rows */
    for (frnn_int t1 = sched.steps; t1 > 0;) {
        frnn_int t0 = t1 - 1;
        const frnn_int rows = active_rows(&sched, t0);
        while (t0 > 0 && active_rows(&sched, t0 - 1) == rows) t0--;
        const frnn_int at = sched.offset[t0];
        const real *h_prev = t0 == 0 ? h_start : out_p + sched.offset[t0 - 1] * H;
        const real *c_prev = NULL;
        if (state) { /* c_{t0-1} as the contiguous [rows, H] the cell reads at its start */
            if (t0 == 0) {
                FN(permute_rows)(&sched, B, H, c0, c_start, 1);
            } else {
                const real *src = ws_p + sched.offset[t0 - 1] * W + c_at;
                for (frnn_int i = 0; i < rows; i++)
                    memcpy(c_start + i * H, src + i * W, sizeof(real) * (size_t)H);
            }
            c_prev = c_start;
        }
        cell->ops->gate_grads(cell, k, t1 - t0, rows, w_hh_p, h_prev, c_prev, out_p + at * H,
                              W > 0 ? ws_p + at * W : NULL, d_out_p + at * H, dh, dc,
                              Gx + at * GH, Gh + at * GH);
        t1 = t0;
    }
    FN(permute_rows)(&sched, B, H, dh, dh0, 0);
    if (state) FN(permute_rows)(&sched, B, H, dc, dc0, 0);

    if (N == 0) { /* every row has length 0: nothing reaches the parameters or x */
        memset(dx, 0, sizeof(real) * (size_t)(T * B * In));
        memset(dw_ih, 0, sizeof(real) * (size_t)(GH * In));
        memset(dw_hh, 0, sizeof(real) * (size_t)(GH * H));
        memset(db_ih, 0, sizeof(real) * (size_t)GH);
        memset(db_hh, 0, sizeof(real) * (size_t)GH);
    } else {
        /* h_{t-1} of every packed entry: h0 for step 0, else the same row's
         * entry one step back (the first rows of the previous block) */
        memcpy(h_prev_p, h_start, sizeof(real) * (size_t)(active_rows(&sched, 0) * H));
        for (frnn_int t = 1; t < sched.steps; t++)
            memcpy(h_prev_p + sched.offset[t] * H, out_p + sched.offset[t - 1] * H,
                   sizeof(real) * (size_t)(active_rows(&sched, t) * H));
        FN(gather_steps)(&sched, 0, sched.steps, B, In, x, x_p);
        /* one "step" of N rows: the products over all packed entries at once */
        FN(frnn_parameter_grads)(k, 1, N, In, H, GH, Gx, Gh, x_p, w_ih, h_prev_p, out_p, dx_p,
                                 dw_ih, dw_hh, db_ih, db_hh);
        if (cell->ops->recurrent_input_grads)
            cell->ops->recurrent_input_grads(cell, k, N, Gx, ws_p, db_ih, dw_hh, db_hh);
        FN(scatter_steps)(&sched, T, B, In, dx_p, dx);
    }
    frnn_scratch_release(scratch);
    free(sched.block);
    return FRNN_OK;
}
