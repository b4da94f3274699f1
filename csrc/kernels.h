/* kernels.h - internal: the per-ISA kernel table and helpers the cells share.
 *
 * GEMM (gemm.c) and activation (activations.c) kernels are compiled once per
 * dtype and per ISA (baseline portable C; AVX2+FMA on x86-64). One table per
 * dtype is active, chosen "reference first, then override" by CPU feature
 * (dispatch.c). Cells call through FN(frnn_active)() so they never know
 * which ISA runs.
 *
 * All matrices are row-major with explicit leading dimensions. `accumulate`
 * selects C += ... (1) or C = ... (0).
 */
#ifndef FRNN_KERNELS_H
#define FRNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "fastrnn.h"
#include "real.h"
#include "threads.h"

/* ---- checked size arithmetic ----------------------------------------- */
/* Every element count an entry point forms before it allocates (or before
 * it indexes a caller's array with it) goes through these, so that a size
 * no machine could hold is reported (FRNN_ERR_TOO_LARGE) instead of
 * wrapping around into a small allocation that the kernels then overrun.
 * A negative operand or an overflow gives FRNN_SIZE_INVALID, and every
 * helper passes FRNN_SIZE_INVALID through, so a whole size expression is
 * checked once, at its end. After an entry point has checked its largest
 * products this way, the index arithmetic inside the kernels (always a
 * part of one of those products) cannot overflow either. */
#define FRNN_SIZE_INVALID ((frnn_int)-1)

#if defined(__has_builtin)
#if __has_builtin(__builtin_mul_overflow) && __has_builtin(__builtin_add_overflow)
#define FRNN_HAVE_OVERFLOW_BUILTINS 1
#endif
#elif defined(__GNUC__) && __GNUC__ >= 5
#define FRNN_HAVE_OVERFLOW_BUILTINS 1
#endif

/* a * b for a, b >= 0 */
static inline frnn_int frnn_size_mul(frnn_int a, frnn_int b) {
    if (a < 0 || b < 0) return FRNN_SIZE_INVALID;
#ifdef FRNN_HAVE_OVERFLOW_BUILTINS
    frnn_int product;
    return __builtin_mul_overflow(a, b, &product) ? FRNN_SIZE_INVALID : product;
#else
    return a != 0 && b > INT64_MAX / a ? FRNN_SIZE_INVALID : a * b;
#endif
}

/* a + b for a, b >= 0 */
static inline frnn_int frnn_size_add(frnn_int a, frnn_int b) {
    if (a < 0 || b < 0) return FRNN_SIZE_INVALID;
#ifdef FRNN_HAVE_OVERFLOW_BUILTINS
    frnn_int sum;
    return __builtin_add_overflow(a, b, &sum) ? FRNN_SIZE_INVALID : sum;
#else
    return b > INT64_MAX - a ? FRNN_SIZE_INVALID : a + b;
#endif
}

static inline frnn_int frnn_size_mul3(frnn_int a, frnn_int b, frnn_int c) {
    return frnn_size_mul(frnn_size_mul(a, b), c);
}

/* n elements of elem_size bytes as a byte count that malloc can be asked
 * for and that pointer differences within the block can express (both
 * size_t and ptrdiff_t); returns 0 and sets *bytes, or nonzero if n is
 * FRNN_SIZE_INVALID or the bytes do not fit. */
static inline int frnn_size_bytes(frnn_int n, size_t elem_size, size_t *bytes) {
    const uintmax_t limit = (uintmax_t)PTRDIFF_MAX < (uintmax_t)SIZE_MAX ? (uintmax_t)PTRDIFF_MAX
                                                                          : (uintmax_t)SIZE_MAX;
    if (n < 0 || elem_size == 0 || (uintmax_t)n > limit / elem_size) return 1;
    *bytes = (size_t)n * elem_size;
    return 0;
}

typedef struct {
    const char *isa;
    /* Columns per packed panel: column blocks that start at a multiple of
     * nr find whole panels (the per-block time step relies on it). */
    frnn_int nr;
    /* C[M,N] (+)= A[M,K] B[K,N] */
    void (*gemm_nn)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
               const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc);
    /* C[M,N] (+)= A[K,M]^T B[K,N] */
    void (*gemm_tn)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
               const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc);
    /* C[M,N] (+)= A[M,K] B[N,K]^T */
    void (*gemm_nt)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                    const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc);
    /* Elements of the packed form of a [K, N] right-hand side. */
    frnn_int (*packed_size)(frnn_int K, frnn_int N);
    /* Bp = B[K, N] packed, with B[k, n] = B[k*rs + n*cs] (so B may be a
     * transposed view). Pack once, multiply every time step. */
    void (*pack_b)(frnn_int K, frnn_int N, const real *B, frnn_int rs, frnn_int cs, real *Bp);
    /* C[M,N] (+)= A[M,K] Bp */
    void (*gemm_nn_packed)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                           const real *Bp, int accumulate, real *C, frnn_int ldc);
    /* y[n] = sigmoid(x[n]), tanh(x[n]); y may alias x. */
    void (*sigmoid)(frnn_int n, const real *x, real *y);
    void (*tanh)(frnn_int n, const real *x, real *y);
    /* y[n] = exp(x[n]) for x <= 0; y may alias x. */
    void (*exp_nonpositive)(frnn_int n, const real *x, real *y);
    /* The cells' gate math on hidden units [j0, j0 + cols) of all B rows,
     * one fused pass each (gates.c documents the arguments). */
    void (*rnn_forward_math)(frnn_activation act, frnn_int B, frnn_int H, frnn_int j0,
                             frnn_int cols, const real *pre, const real *b_hh, real *h);
    void (*rnn_backward_math)(frnn_activation act, frnn_int B, frnn_int H, frnn_int j0,
                              frnn_int cols, const real *y, const real *d_out, const real *dh,
                              real *g);
    void (*lstm_forward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                              const real *gates, const real *b_hh, real *c, real *h, real *ws);
    void (*lstm_backward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                               const real *ws, const real *c_prev, frnn_int c_prev_stride,
                               const real *d_out, const real *dh, real *dc, real *G);
    void (*gru_forward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols, const real *xp,
                             const real *hp, const real *b_hh, const real *h_prev, real *h,
                             real *w);
    void (*gru_backward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols, const real *ws,
                              const real *h_prev, const real *d_out, real *dh, real *Gx,
                              real *Gh);
    /* Training step over flat vectors (optim.c, docs/TRAINING.md). */
    void (*clip_value)(frnn_int n, real *g, real c);
    double (*sum_squares)(frnn_int n, const real *g);
    /* 1 if every g[i] is finite, 0 if one is inf or NaN. */
    int (*all_finite)(frnn_int n, const real *g);
    void (*scale)(frnn_int n, real *g, real a);
    void (*sgd)(frnn_int n, real *p, const real *g, real *m, real lr, real mu, int nesterov);
    void (*adagrad)(frnn_int n, real *p, const real *g, real *m, real lr, real eps);
    void (*rmsprop)(frnn_int n, real *p, const real *g, real *v, real lr, real alpha, real eps);
    void (*adam)(frnn_int n, real *p, const real *g, real *m, real *v, real lr, real b1,
                 real b2, real c1, real c2, real eps);
} FN(frnn_kernel_table);

/* The table chosen by frnn_select_isa (baseline until then). */
const FN(frnn_kernel_table) *FN(frnn_active)(void);

/* Per-ISA tables defined in gemm.c, named frnn_kernels_<dtype>_<isa>. */
extern const FN(frnn_kernel_table) FRNN_CAT(FN(frnn_kernels), baseline);
#if defined(FRNN_HAVE_AVX2)
extern const FN(frnn_kernel_table) FRNN_CAT(FN(frnn_kernels), avx2);
extern const FN(frnn_kernel_table) FRNN_CAT(FN(frnn_kernels), avx512);
#endif

/* Make the table for `isa` ("baseline", "avx2", "avx512") the active one; returns 0
 * if this build has no such table. Called by frnn_select_isa only. */
int FN(frnn_use_isa)(const char *isa);

/* ---- helpers shared by the cells (common.c) -------------------------- */

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
 * Gh: the same w.r.t. h W_hh^T + b_hh; the same array except for GRU):
 *   dx = Gx W_ih,  dw_ih = Gx^T x,  dw_hh = sum_t Gh[t]^T h_{t-1}
 *   (h_{-1} = h0, h_t = out[t]),  db_ih = colsum(Gx),  db_hh = colsum(Gh). */
void FN(frnn_parameter_grads)(const FN(frnn_kernel_table) *k, frnn_int T, frnn_int B,
                              frnn_int In, frnn_int H, frnn_int GH, const real *Gx,
                              const real *Gh, const real *x, const real *w_ih, const real *h0, const real *out, real *dx,
                              real *dw_ih, real *dw_hh, real *db_ih, real *db_hh);

/* ---- the per-cell time loops (rnn.c, lstm.c, gru.c) ------------------ */
/* *_steps: the forward over `steps` steps from the state h_prev0 [B, H]
 *   (and c [B, H], updated in place, for LSTM); xp [steps, B, GH] is the
 *   input projection including b_ih; w_hh_p is W_hh^T packed
 *   (frnn_pack_transposed); out [steps, B, H]; ws [steps, B, W] or NULL.
 * *_gate_grads: the backward time loop over T steps, t = T-1 .. 0: given
 *   the saved out/ws and d_out [T, B, H], and the gradient flowing into the
 *   last state in dh (and dc), writes the gate gradients G (Gx, Gh for GRU)
 *   [T, B, GH] and leaves dh (dc) = the gradient w.r.t. the initial state;
 *   w_hh_p is W_hh itself packed (frnn_pack). */
/* xp is consumed by the Elman and LSTM steps: the recurrent products
 * accumulate onto it in place. */
void FN(frnn_rnn_steps)(const FN(frnn_kernel_table) *k, frnn_activation act, frnn_int steps,
                        frnn_int B, frnn_int H, real *xp, const real *w_hh_p,
                        const real *b_hh, const real *h_prev0, real *out);
void FN(frnn_rnn_gate_grads)(const FN(frnn_kernel_table) *k, frnn_activation act, frnn_int T,
                             frnn_int B, frnn_int H, const real *w_hh_p, const real *out,
                             const real *d_out, real *dh, real *G);
void FN(frnn_lstm_steps)(const FN(frnn_kernel_table) *k, frnn_int steps, frnn_int B,
                         frnn_int H, real *xp, const real *w_hh_p, const real *b_hh,
                         const real *h_prev0, real *c, real *out, real *ws);
void FN(frnn_lstm_gate_grads)(const FN(frnn_kernel_table) *k, frnn_int T, frnn_int B,
                              frnn_int H, const real *w_hh_p, const real *c0, const real *ws,
                              const real *d_out, real *dh_next, real *dc, real *G);
/* hp: scratch [B, 3H]; gates: scratch [B, 4H] used when ws is NULL */
void FN(frnn_gru_steps)(const FN(frnn_kernel_table) *k, frnn_int steps, frnn_int B,
                        frnn_int H, const real *xp, const real *w_hh_p, const real *b_hh,
                        const real *h_prev0, real *out, real *ws, real *hp, real *gates);
void FN(frnn_gru_gate_grads)(const FN(frnn_kernel_table) *k, frnn_int T, frnn_int B,
                             frnn_int H, const real *w_hh_p, const real *h0, const real *out,
                             const real *ws, const real *d_out, real *dh_next, real *Gx,
                             real *Gh);

/* ---- any cell through one interface (layer.c) ------------------------- */
typedef enum { FRNN_KIND_RNN, FRNN_KIND_LSTM, FRNN_KIND_GRU } frnn_kind;
typedef struct {
    frnn_kind kind;
    frnn_activation act; /* Elman only */
    frnn_int H, GH, W;   /* hidden, gates * hidden, workspace width */
} frnn_cell;

/* GH and W are FRNN_SIZE_INVALID if they overflow; frnn_check_layer
 * rejects such a cell before anything uses it. */
static inline frnn_cell frnn_make_cell(frnn_kind kind, frnn_activation act, frnn_int H) {
    frnn_cell c = {kind, act, H, H, 0};
    if (kind == FRNN_KIND_LSTM) { c.GH = frnn_size_mul(4, H); c.W = frnn_size_mul(5, H); }
    if (kind == FRNN_KIND_GRU) { c.GH = frnn_size_mul(3, H); c.W = frnn_size_mul(4, H); }
    return c;
}
/* The sizes every entry point validates first (layer.c): FRNN_ERR_UNSUPPORTED
 * if T, B, In or H is < 1; FRNN_ERR_TOO_LARGE if one of the arrays the call
 * indexes - x [T, B, In], out / d_out [T, B, H], ws [T, B, W], the gate
 * gradients [T, B, GH], w_ih [GH, In], w_hh [GH, H], packed forms - would
 * have more elements than frnn_int or bytes than memory can address. After
 * it, every product of these sizes that the kernels form fits. */
int frnn_check_layer(const frnn_cell *cell, frnn_int T, frnn_int B, frnn_int In);
/* W_hh^T packed the way frnn_cell_steps reads it (the forward's recurrent
 * right-hand side): each gate's [H, H] block packed on its own, so a block
 * of hidden units finds the columns of all its gates in whole panels.
 * dst must hold frnn_recurrent_packed_size elements. frnn_recurrent_pack_items
 * describes that packing as items for frnn_pack_items (returns how many,
 * at most 4), so a caller can fold it into a job with other packings. */
frnn_int FN(frnn_recurrent_packed_size)(const frnn_cell *cell, const FN(frnn_kernel_table) *k);
int FN(frnn_recurrent_pack_items)(const frnn_cell *cell, const FN(frnn_kernel_table) *k,
                                  const real *w_hh, real *dst, FN(frnn_pack_item) *items);
void FN(frnn_pack_recurrent)(const frnn_cell *cell, const FN(frnn_kernel_table) *k,
                             const real *w_hh, real *dst);
/* Elements of scratch frnn_cell_steps needs (FRNN_SIZE_INVALID on overflow). */
frnn_int frnn_cell_scratch(const frnn_cell *cell, frnn_int B);
/* The forward over `steps` steps (see *_steps above), with w_hh_p from
 * frnn_pack_recurrent. out must not alias h_prev0. xp is consumed (Elman
 * and LSTM overwrite it); callers project the inputs afresh for every call. */
void FN(frnn_cell_steps)(const frnn_cell *cell, const FN(frnn_kernel_table) *k, frnn_int steps,
                         frnn_int B, real *xp, const real *w_hh_p, const real *b_hh,
                         const real *h_prev0, real *c, real *out, real *ws, real *scratch);
/* Gh may be Gx's buffer for Elman and LSTM (they are equal); GRU needs both. */
void FN(frnn_cell_gate_grads)(const frnn_cell *cell, const FN(frnn_kernel_table) *k,
                              frnn_int T, frnn_int B, const real *w_hh_p, const real *h0,
                              const real *c0, const real *out, const real *ws,
                              const real *d_out, real *dh, real *dc, real *Gx, real *Gh);

/* Elements of k->packed_size(K, N), checked: the packed form is N rounded
 * up to whole panels, times K, so K * (N + nr) bounds it; FRNN_SIZE_INVALID
 * if that bound overflows (or K, N are). */
static inline frnn_int FN(frnn_packed_elems)(const FN(frnn_kernel_table) *k, frnn_int K,
                                             frnn_int N) {
    if (frnn_size_mul(K, frnn_size_add(N, k->nr)) == FRNN_SIZE_INVALID) return FRNN_SIZE_INVALID;
    return k->packed_size(K, N);
}

/* Scratch: one allocation for all buffers of a call, freed with free(). */
void *frnn_alloc(size_t bytes);
/* The same for the large scratch of a whole-window call, from the calling
 * thread's cached block (scratch.c); give it back with frnn_scratch_release. */
void *frnn_scratch_acquire(size_t bytes);
void frnn_scratch_release(void *p);

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

/* Time steps per chunk of the hoisted input projection: bounds the scratch
 * for x W_ih^T to about FRNN_PROJ_CHUNK_ELEMS elements whatever T is. */
#define FRNN_PROJ_CHUNK_ELEMS ((frnn_int)1 << 18)
static inline frnn_int frnn_chunk_steps(frnn_int T, frnn_int B, frnn_int GH) {
    frnn_int steps = FRNN_PROJ_CHUNK_ELEMS / (B * GH);
    if (steps < 1) steps = 1;
    return steps < T ? steps : T;
}

#endif
