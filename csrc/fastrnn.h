/* fastrnn.h - the C interface of fastrnn's compiled core.
 *
 * Plain C11, no Python. Every function exists twice, for float (_f32) and
 * double (_f64); the argument lists below are written once with `real`.
 * Shapes (row-major, C-contiguous):
 *   T = time steps, B = batch, In = input size, H = hidden size,
 *   G = gates (1 Elman, 4 LSTM i,f,g,o, 3 GRU r,z,n), GH = G*H.
 * Weights follow PyTorch: weight_ih [GH, In], weight_hh [GH, H], biases [GH].
 * Biases are never NULL (pass zeros for a bias-free layer).
 *
 * Each cell has:
 *   *_forward  - a whole window: the input projection for all T steps is
 *                hoisted into one GEMM (in bounded chunks of time), then the
 *                recurrence runs one small GEMM + fused gate math per step;
 *   *_backward - full BPTT over the window, given the workspace saved by
 *                forward; parameter gradients are two GEMMs after the loop;
 *   *_step     - one time step for streaming (no workspace).
 *
 * Return value: FRNN_OK (0) on success; FRNN_ERR_NOMEM if scratch
 * allocation failed; FRNN_ERR_UNSUPPORTED if a size is < 1 (or, for the
 * trainer, the configuration is invalid); FRNN_ERR_TOO_LARGE if the arrays
 * these sizes describe, or the call's working memory, have more elements
 * or bytes than this machine can address (checked before anything is read
 * or written). Outputs are unspecified after NOMEM and untouched after
 * UNSUPPORTED / TOO_LARGE. What C cannot check - that each array really has
 * the shape the sizes say, C-contiguous, one dtype - the caller (the Cython
 * layer, fastrnn._core) checks before every call.
 *
 * This header deliberately has no multi-layer or bidirectional entry points:
 * those are compositions the Python layer can build from these.
 */
#ifndef FASTRNN_H
#define FASTRNN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t frnn_int;

enum {
    FRNN_OK = 0,
    FRNN_ERR_NOMEM = 1,
    FRNN_ERR_UNSUPPORTED = 2, /* a size < 1, or a configuration the call cannot run */
    FRNN_ERR_TOO_LARGE = 3,   /* a size product overflows what memory could hold */
    FRNN_ERR_NONFINITE = 4    /* frnn_train: a window's loss or gradient is inf / NaN */
};

typedef enum {
    FRNN_ACT_TANH = 0,
    FRNN_ACT_RELU = 1,
    FRNN_ACT_SIGMOID = 2
} frnn_activation;

/* Workspace widths per batch row and time step (see docs/ARCHITECTURE.md):
 * Elman saves nothing (output + h0 suffice), LSTM saves i,f,g,o,c, GRU saves
 * r,z,n and W_hn h + b_hn. */
#define FRNN_LSTM_WS(H) (5 * (H))
#define FRNN_GRU_WS(H) (4 * (H))

/* ---- threads (threads.c) ---------------------------------------------- */

/* The number of threads the kernels may use, >= 1 (n <= 0 means 1). A call
 * uses them only where a step has enough work to pay for the hand-off
 * (docs/ARCHITECTURE.md, "Threads"); results do not depend on the count.
 * Workers block rather than spin when idle. Not to be called while a kernel
 * runs in another thread. */
void frnn_set_num_threads(int n);
int frnn_get_num_threads(void);
/* The work threshold: a job of fewer flops runs on one thread. flops < 0
 * restores the default; 0 threads every job, even while the pool is
 * backing off from a contended machine (for tests of the threaded path at
 * small sizes). Same caveat as frnn_set_num_threads. */
void frnn_set_thread_min_flops(double flops);

/* Whole-window calls keep their scratch memory (tens of MB for a large
 * layer) per calling thread for the next call instead of paying fresh pages
 * each time; a thread's block is freed when it exits. This frees the
 * calling thread's block now. */
void frnn_release_scratch(void);

/* ---- GEMM dispatch (dispatch.c) -------------------------------------- */

/* Choose the GEMM and activation kernels once: request is NULL / "" / "auto"
 * (best the CPU supports), "baseline" (portable C), or an ISA name ("avx2",
 * "avx512"). An ISA the CPU
 * lacks falls back to baseline. Returns the name of the chosen table.
 * Not thread-safe: call before any kernel runs (the Cython module does it at
 * import). */
const char *frnn_select_isa(const char *request);
const char *frnn_active_isa(void);

#define FRNN_DECLARE(real, sfx)                                                 \
    /* x: [T, B, In]  h0, c0: [B, H]  out: [T, B, H]  hn, cn: [B, H]            \
     * ws: [T, B, W] or NULL (inference).  c0, cn: LSTM only.                   \
     * hn may not alias out; out must not alias inputs. */                      \
    int frnn_rnn_forward_##sfx(frnn_activation act, frnn_int T, frnn_int B,     \
        frnn_int In, frnn_int H, const real *x, const real *w_ih,               \
        const real *w_hh, const real *b_ih, const real *b_hh, const real *h0,   \
        real *out, real *hn);                                                   \
    /* d_out: [T, B, H]  d_hn: [B, H]  -> dx: [T, B, In]  dw_ih: [GH, In]       \
     * dw_hh: [GH, H]  db_ih, db_hh: [GH]  dh0: [B, H]; all overwritten. */     \
    int frnn_rnn_backward_##sfx(frnn_activation act, frnn_int T, frnn_int B,    \
        frnn_int In, frnn_int H, const real *x, const real *w_ih,               \
        const real *w_hh, const real *h0, const real *out, const real *d_out,   \
        const real *d_hn, real *dx, real *dw_ih, real *dw_hh, real *db_ih,      \
        real *db_hh, real *dh0);                                                \
    /* x: [B, In]  h: [B, H] -> h_out: [B, H]; h_out may alias h. */           \
    int frnn_rnn_step_##sfx(frnn_activation act, frnn_int B, frnn_int In,       \
        frnn_int H, const real *x, const real *w_ih, const real *w_hh,          \
        const real *b_ih, const real *b_hh, const real *h, real *h_out);        \
                                                                                \
    int frnn_lstm_forward_##sfx(frnn_int T, frnn_int B, frnn_int In,            \
        frnn_int H, const real *x, const real *w_ih, const real *w_hh,          \
        const real *b_ih, const real *b_hh, const real *h0, const real *c0,     \
        real *out, real *hn, real *cn, real *ws);                               \
    int frnn_lstm_backward_##sfx(frnn_int T, frnn_int B, frnn_int In,           \
        frnn_int H, const real *x, const real *w_ih, const real *w_hh,          \
        const real *h0, const real *c0, const real *out, const real *ws,        \
        const real *d_out, const real *d_hn, const real *d_cn, real *dx,        \
        real *dw_ih, real *dw_hh, real *db_ih, real *db_hh, real *dh0,          \
        real *dc0);                                                             \
    /* h_out may alias h, c_out may alias c. */                                 \
    int frnn_lstm_step_##sfx(frnn_int B, frnn_int In, frnn_int H,               \
        const real *x, const real *w_ih, const real *w_hh, const real *b_ih,    \
        const real *b_hh, const real *h, const real *c, real *h_out,            \
        real *c_out);                                                           \
                                                                                \
    int frnn_gru_forward_##sfx(frnn_int T, frnn_int B, frnn_int In,             \
        frnn_int H, const real *x, const real *w_ih, const real *w_hh,          \
        const real *b_ih, const real *b_hh, const real *h0, real *out,          \
        real *hn, real *ws);                                                    \
    int frnn_gru_backward_##sfx(frnn_int T, frnn_int B, frnn_int In,            \
        frnn_int H, const real *x, const real *w_ih, const real *w_hh,          \
        const real *h0, const real *out, const real *ws, const real *d_out,     \
        const real *d_hn, real *dx, real *dw_ih, real *dw_hh, real *db_ih,      \
        real *db_hh, real *dh0);                                                \
    int frnn_gru_step_##sfx(frnn_int B, frnn_int In, frnn_int H,                \
        const real *x, const real *w_ih, const real *w_hh, const real *b_ih,    \
        const real *b_hh, const real *h, real *h_out);

FRNN_DECLARE(float, f32)
FRNN_DECLARE(double, f64)
#undef FRNN_DECLARE

/* ---- training over a sequence (train.c; semantics: docs/TRAINING.md) -- */

typedef enum {
    FRNN_CELL_RNN_TANH = 0,
    FRNN_CELL_RNN_RELU = 1,
    FRNN_CELL_RNN_SIGMOID = 2,
    FRNN_CELL_LSTM = 3,
    FRNN_CELL_GRU = 4
} frnn_cell_type;
typedef enum { FRNN_HEAD_SOFTMAX_CE = 0, FRNN_HEAD_SIGMOID_BCE = 1, FRNN_HEAD_MSE = 2 } frnn_head;
typedef enum { FRNN_CLIP_NONE = 0, FRNN_CLIP_VALUE = 1, FRNN_CLIP_NORM = 2 } frnn_clip;
typedef enum {
    FRNN_OPT_NONE = 0, /* gradients only: grad = sum of clipped window gradients */
    FRNN_OPT_SGD = 1,
    FRNN_OPT_ADAGRAD = 2,
    FRNN_OPT_RMSPROP = 3,
    FRNN_OPT_ADAM = 4
} frnn_optimizer;

typedef struct {
    frnn_cell_type cell;
    frnn_int T, B, In, H, O;  /* In = vocabulary size for index input */
    int has_bias;             /* bias_ih and bias_hh in theta */
    int has_head_bias;        /* bias_y in theta */
    int index_input;          /* idx [T, B] instead of x [T, B, In] */
    int many_to_one;          /* loss at t = T-1 only */
    int reduce_mean;          /* else sum */
    frnn_head head;
    frnn_int k1, k2;          /* TBPTT(k1, k2), 1 <= k1 <= k2 (beyond T: T) */
    frnn_int depth;           /* >= 0: per-output depth instead of TBPTT (beyond T - 1:
                                 T - 1); -1: TBPTT */
    frnn_clip clip;
    double clip_value;
    frnn_optimizer opt;
    double lr, momentum, alpha, beta1, beta2, eps;
    int nesterov;
} frnn_train_config;

/* Train over one sequence window by window (docs/TRAINING.md).
 *   theta: [P] flat parameters (weight_ih, weight_hh, [bias_ih, bias_hh],
 *          weight_hy, [bias_y]), updated in place
 *   grad:  [P] out: the last window's clipped gradient (FRNN_OPT_NONE: the
 *          sum over windows)
 *   m, v:  [P] optimizer state (unused entries may be NULL: SGD uses m,
 *          Adagrad m, RMSprop v, Adam both); *step counts updates
 *   x:     [T, B, In] (dense) or NULL;  idx: [T, B] (index input) or NULL
 *   target_idx: [T, B] or [B] (softmax_ce); target: [T, B, O] or [B, O]
 *   h, c:  [B, H] initial state in, final state out (c: LSTM only)
 *   losses: [ceil(T / k1)] the reduced loss of every window ([1] by depth)
 *   stopped_window: out (may be NULL): -1, or the window that stopped the
 *          run (FRNN_ERR_NONFINITE)
 * depth >= T - 1 is run as T - 1 and k1, k2 >= T as T (the same gradients).
 * A window whose reduced loss or unclipped gradient has an inf or NaN stops
 * the run before its clip and update: its loss is written to losses[n],
 * theta, m, v, *step are as the previous window left them, grad is the last
 * applied window's clipped gradient (zeros if none; FRNN_OPT_NONE: the sum
 * over the previous windows), h and c are as passed in, *stopped_window = n,
 * and the result is FRNN_ERR_NONFINITE.
 * Returns FRNN_OK, FRNN_ERR_NONFINITE, FRNN_ERR_NOMEM, FRNN_ERR_TOO_LARGE,
 * or FRNN_ERR_UNSUPPORTED (a size < 1, depth < -1, TBPTT without
 * 1 <= k1 <= k2, an unknown enum, a needed array NULL, an index in idx /
 * target_idx outside [0, In) / [0, O), or with an optimizer *step < 0 or
 * *step + the number of windows > INT64_MAX; nothing is read or written). */
int frnn_train_f32(const frnn_train_config *cfg, float *theta, float *grad, float *m,
                   float *v, int64_t *step, const float *x, const int64_t *idx,
                   const int64_t *target_idx, const float *target, float *h, float *c,
                   double *losses, int64_t *stopped_window);
int frnn_train_f64(const frnn_train_config *cfg, double *theta, double *grad, double *m,
                   double *v, int64_t *step, const double *x, const int64_t *idx,
                   const int64_t *target_idx, const double *target, double *h, double *c,
                   double *losses, int64_t *stopped_window);

/* ---- streaming: one step at a time with prepared weights (stream.c) --- */

/* A stream holds one layer's weights prepared for single steps: W_ih^T and
 * W_hh^T packed once, copies of the biases, and all the scratch a step needs,
 * in one allocation. A step allocates nothing. The stream copies what it
 * needs at creation: the caller's weight arrays may be freed or changed
 * afterwards (and changes are not seen). The state (h, c) is the caller's
 * and is passed to every step.
 *
 * The packed layouts belong to the kernel table that was active (see
 * frnn_select_isa) when the stream was created; the stream keeps using that
 * table for every step, so selecting another ISA later does not affect an
 * existing stream (results stay correct; new streams use the new table).
 *
 * A stream is not thread-safe: one step at a time per stream (it owns
 * scratch). Different streams may step concurrently from different threads.
 *
 * Shapes as above, with G and GH = G*H from cell_type. */
typedef struct frnn_stream_f32 frnn_stream_f32;
typedef struct frnn_stream_f64 frnn_stream_f64;

/* Create a stream.
 *   cell_type: a frnn_cell_type (FRNN_CELL_RNN_TANH / _RELU / _SIGMOID,
 *              FRNN_CELL_LSTM, FRNN_CELL_GRU)
 *   B:         batch rows stepped together, >= 1
 *   In:        input size, >= 1
 *   H:         hidden size, >= 1
 *   w_ih:      [GH, In] input weights (PyTorch layout), copied (packed)
 *   w_hh:      [GH, H] recurrent weights (PyTorch layout), copied (packed)
 *   b_ih:      [GH] input bias, copied; NULL means zeros
 *   b_hh:      [GH] recurrent bias, copied; NULL means zeros
 * Returns the stream, or NULL if allocation failed, cell_type is unknown,
 * a size is < 1 or > 2^24, or w_ih / w_hh is NULL. */
frnn_stream_f32 *frnn_stream_create_f32(int cell_type, frnn_int B, frnn_int In, frnn_int H,
                                        const float *w_ih, const float *w_hh,
                                        const float *b_ih, const float *b_hh);
frnn_stream_f64 *frnn_stream_create_f64(int cell_type, frnn_int B, frnn_int In, frnn_int H,
                                        const double *w_ih, const double *w_hh,
                                        const double *b_ih, const double *b_hh);

/* Advance the state by one time step, in place.
 *   s: a stream from frnn_stream_create_*
 *   x: [B, In] the input of this step; may not overlap h or c
 *   h: [B, H] hidden state: h_{t-1} in, h_t out
 *   c: [B, H] cell state: c_{t-1} in, c_t out (LSTM); ignored, may be NULL,
 *      for the other cells
 * Returns FRNN_OK, or FRNN_ERR_UNSUPPORTED (nothing done) if s, x or h is
 * NULL or c is NULL for an LSTM. */
int frnn_stream_step_f32(frnn_stream_f32 *s, const float *x, float *h, float *c);
int frnn_stream_step_f64(frnn_stream_f64 *s, const double *x, double *h, double *c);

/* Free a stream and everything it holds; s may be NULL. */
void frnn_stream_destroy_f32(frnn_stream_f32 *s);
void frnn_stream_destroy_f64(frnn_stream_f64 *s);

#ifdef __cplusplus
}
#endif
#endif
