/* fastrnn.h - the C interface of fastrnn's compiled core.
 *
 * Plain C11, no Python. Every function that takes arrays exists twice, for
 * float (_f32) and double (_f64); the argument lists below are written once
 * with `real`. Shapes (row-major, C-contiguous):
 *   T = time steps, B = batch, In = input size, H = hidden size,
 *   G = gates of the cell (frnn_cell_shape: 1 Elman, 4 LSTM i,f,g,o,
 *   3 GRU r,z,n), GH = G*H, W = the cell's workspace per unit times H.
 * Weights follow PyTorch: weight_ih [GH, In], weight_hh [GH, H], biases [GH].
 * Biases are never NULL in the layer calls (pass zeros for a bias-free
 * layer).
 *
 * A layer is run by three calls, the same for every cell (the cell is an
 * argument, frnn_cell_desc):
 *   frnn_layer_forward  - a whole window: the input projection for all T
 *                         steps is hoisted into one GEMM (in bounded chunks
 *                         of time), then the recurrence runs one small GEMM +
 *                         fused gate math per step;
 *   frnn_layer_backward - full BPTT over the window, given the workspace
 *                         saved by forward; parameter gradients are two GEMMs
 *                         after the loop;
 *   frnn_layer_step     - one time step for streaming (no workspace).
 *
 * Return value: FRNN_OK (0) on success; FRNN_ERR_NOMEM if scratch
 * allocation failed; FRNN_ERR_UNSUPPORTED if the cell is unknown, a size is
 * < 1, an array the call needs is NULL (or, for the trainer, the
 * configuration is invalid); FRNN_ERR_TOO_LARGE if the arrays these sizes
 * describe, or the call's working memory, have more elements or bytes than
 * this machine can address (checked before anything is read or written).
 * Outputs are unspecified after NOMEM and untouched after UNSUPPORTED /
 * TOO_LARGE. What C cannot check - that each array really has the shape the
 * sizes say, C-contiguous, one dtype, aligned to its element - the caller
 * (the Cython layer, fastrnn._core) checks before every call.
 *
 * Aliasing: unless an argument says otherwise, no output may overlap any
 * other array of the same call (the kernels write outputs while they still
 * read the inputs).
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
    FRNN_ERR_UNSUPPORTED = 2, /* unknown cell, a size < 1, a needed array NULL, a bad config */
    FRNN_ERR_TOO_LARGE = 3,   /* a size product overflows what memory could hold */
    FRNN_ERR_NONFINITE = 4    /* frnn_train: a window's loss or gradient is inf / NaN */
};

/* ---- cells ------------------------------------------------------------ */

/* The recurrent cells (their Python names in fastrnn.cells: rnn_tanh,
 * rnn_relu, rnn_sigmoid, lstm, gru, gru_original, leaky; tests check the codes
 * agree). */
typedef enum {
    FRNN_CELL_RNN_TANH = 0,
    FRNN_CELL_RNN_RELU = 1,
    FRNN_CELL_RNN_SIGMOID = 2,
    FRNN_CELL_LSTM = 3,
    FRNN_CELL_GRU = 4,
    FRNN_CELL_GRU_ORIGINAL = 5, /* Cho et al. 2014: W_hn (r h), Keras reset_after=False */
    FRNN_CELL_LEAKY = 6 /* leaky integrator: h_t = (1 - a) h_{t-1} + a tanh(...) */
} frnn_cell_type;

/* One layer's cell, as every layer call and frnn_stream_create take it.
 *   type:        which cell
 *   hidden_size: H, >= 1
 *   leak_rate:   the leaky cell's a in (0, 1] (a = 1: the Elman tanh cell);
 *                read by that cell only, which refuses (FRNN_ERR_UNSUPPORTED
 *                from every call, NULL from frnn_stream_create) a rate that
 *                is not finite or not in (0, 1]
 * A cell's hyperparameters are fields here, after type and hidden_size, so
 * that the calls themselves never change. */
typedef struct {
    frnn_cell_type type;
    frnn_int hidden_size;
    double leak_rate;
} frnn_cell_desc;

/* The shape of a cell type (cell->hidden_size is not read):
 *   gates:              out: G, the gate blocks of the weights
 *   workspace_per_unit: out: W / H, what a training forward saves per batch
 *                       row, step and hidden unit (0: the outputs suffice)
 *   has_cell_state:     out: 1 if the cell carries c besides h (then c0, cn,
 *                       d_cn, dc0 and the trainer's c are needed), else 0
 * Any output may be NULL. Returns FRNN_OK, or FRNN_ERR_UNSUPPORTED (outputs
 * untouched) if cell is NULL or its type unknown. The workspace layouts are
 * documented in docs/ARCHITECTURE.md. */
int frnn_cell_shape(const frnn_cell_desc *cell, frnn_int *gates, frnn_int *workspace_per_unit,
                    int *has_cell_state);

/* ---- threads (runtime/threads.c) ---------------------------------------------- */

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

/* ---- subnormals (runtime/fpenv.c) ------------------------------------ */

/* The kernels compute in the calling thread's floating-point mode, and the
 * thread pool gives each job's workers the caller's control bits, so every
 * thread of a call computes alike (results stay independent of the thread
 * count). To keep states and gradients that decay below the smallest normal
 * number from slowing a step ~10x (a microcode assist per subnormal operand
 * on many x86 cores), bracket a call with
 *     uint64_t saved = frnn_fpenv_enter();  ...call...  frnn_fpenv_leave(saved);
 * enter sets flush-to-zero and denormals-are-zero (x86 MXCSR FTZ | DAZ,
 * aarch64 FPCR FZ) unless frnn_set_flush_subnormals(0) asked to leave the
 * caller's mode alone; leave restores the whole saved word (status flags
 * included). Under the flush a result below the smallest normal is 0 and a
 * subnormal input reads as 0. fastrnn/_core.pyx brackets every compute call;
 * a C caller brackets its own, or not. A no-op where frnn_fpenv_can_flush()
 * is 0 (not x86 / aarch64). The policy is process-wide: not to be changed
 * while a kernel runs in another thread. */
void frnn_set_flush_subnormals(int flush);
int frnn_get_flush_subnormals(void);
int frnn_fpenv_can_flush(void);
uint64_t frnn_fpenv_enter(void);
void frnn_fpenv_leave(uint64_t saved);
/* The calling thread's control bits (status flags masked out), and setting
 * them on a pool worker (threads.c). */
uint64_t frnn_fpenv_control(void);
void frnn_fpenv_adopt(uint64_t control);
/* Tests: the calling thread's whole control word (x86 MXCSR, aarch64 FPCR;
 * 0 elsewhere), and writing one back; the write refuses (returns -1, writes
 * nothing) a word that differs from the current one outside the flush and
 * status bits, so that a test cannot set a reserved bit or the rounding. */
uint64_t frnn_fpenv_read(void);
int frnn_fpenv_write(uint64_t value);

/* ---- kernel dispatch (runtime/dispatch.c) ---------------------------- */

/* Choose the kernel table (GEMM, activations, gate math, optimizers) once:
 * request is NULL / "" / "auto" (best the CPU supports), "baseline"
 * (portable C), or an ISA name ("avx2", "avx512"; x86-64 builds with GCC or
 * Clang). An ISA the CPU or the build lacks falls back to baseline. Returns
 * the name of the chosen table ("baseline", "avx2" or "avx512").
 * Not thread-safe: call before any kernel runs (the Cython module does it at
 * import). */
const char *frnn_select_isa(const char *request);
const char *frnn_active_isa(void);

/* ---- a layer over a window, and one step (layer/layer.c) ------------- */

#define FRNN_DECLARE(real, sfx)                                                 \
    /* forward:                                                                 \
     *   cell:  the cell and H                                                  \
     *   T, B, In: time steps, batch rows, input size, each >= 1                \
     *   x:     [T, B, In] input sequence, time-major                           \
     *   w_ih:  [GH, In] input weights;  w_hh: [GH, H] recurrent weights        \
     *   b_ih, b_hh: [GH] biases (zeros for none)                               \
     *   h0:    [B, H] initial hidden state                                     \
     *   c0:    [B, H] initial cell state; cells without one: ignored, NULL     \
     *   out:   [T, B, H] out: h_1 .. h_T                                       \
     *   hn:    [B, H] out: h_T (a copy of out[T-1]; may not alias out)         \
     *   cn:    [B, H] out: c_T; cells without a cell state: ignored, NULL      \
     *   ws:    [T, B, W] out: the workspace backward needs (training), or      \
     *          NULL (inference); ignored where W = 0 */                        \
    int frnn_layer_forward_##sfx(const frnn_cell_desc *cell, frnn_int T,        \
        frnn_int B, frnn_int In, const real *x, const real *w_ih,               \
        const real *w_hh, const real *b_ih, const real *b_hh, const real *h0,   \
        const real *c0, real *out, real *hn, real *cn, real *ws);               \
    /* backward (BPTT over the window forward ran; the biases' effect is in     \
     * out and ws, so they are not arguments):                                  \
     *   cell, T, B, In, x, w_ih, w_hh, h0, c0: as given to forward             \
     *   out:   [T, B, H] forward's output;  ws: [T, B, W] forward's            \
     *          workspace (NULL allowed only where W = 0)                       \
     *   d_out: [T, B, H] gradient of the loss w.r.t. out                       \
     *   d_hn:  [B, H] w.r.t. hn;  d_cn: [B, H] w.r.t. cn (cells with a cell    \
     *          state; else ignored, NULL)                                      \
     *   dx:    [T, B, In] out;  dw_ih: [GH, In] out;  dw_hh: [GH, H] out       \
     *   db_ih, db_hh: [GH] out;  dh0: [B, H] out                               \
     *   dc0:   [B, H] out (cells with a cell state; else ignored, NULL)        \
     * Every output is overwritten. */                                          \
    int frnn_layer_backward_##sfx(const frnn_cell_desc *cell, frnn_int T,       \
        frnn_int B, frnn_int In, const real *x, const real *w_ih,               \
        const real *w_hh, const real *h0, const real *c0, const real *out,      \
        const real *ws, const real *d_out, const real *d_hn, const real *d_cn,  \
        real *dx, real *dw_ih, real *dw_hh, real *db_ih, real *db_hh,           \
        real *dh0, real *dc0);                                                  \
    /* forward_lengths / backward_lengths (layer/lengths.c): the same, with     \
     * each batch row running its own number of steps, as PyTorch's            \
     * pack_padded_sequence(..., enforce_sorted=False):                        \
     *   lengths: [B] steps of each row, each in [0, T], any order              \
     * Row b runs steps 0 .. lengths[b]-1: out[t, b] = 0 (and ws[t, b] = 0)     \
     * for t >= lengths[b]; hn / cn[b] = its state after its last valid step   \
     * (h0 / c0[b] for a length of 0). backward ignores d_out past a row's      \
     * length, lets d_hn / d_cn enter at its last valid step (so a row of      \
     * length 0 has dh0 = d_hn, dc0 = d_cn) and writes dx = 0 past it. The      \
     * work is that of the valid steps (rows ordered by length once, step t    \
     * run on the rows still active). A length outside [0, T] is               \
     * FRNN_ERR_UNSUPPORTED. With every length T, prefer the plain calls: the  \
     * results are the same and they skip the gathers. */                      \
    int frnn_layer_forward_lengths_##sfx(const frnn_cell_desc *cell,           \
        frnn_int T, frnn_int B, frnn_int In, const frnn_int *lengths,           \
        const real *x, const real *w_ih, const real *w_hh, const real *b_ih,    \
        const real *b_hh, const real *h0, const real *c0, real *out, real *hn,  \
        real *cn, real *ws);                                                    \
    int frnn_layer_backward_lengths_##sfx(const frnn_cell_desc *cell,          \
        frnn_int T, frnn_int B, frnn_int In, const frnn_int *lengths,           \
        const real *x, const real *w_ih, const real *w_hh, const real *h0,      \
        const real *c0, const real *out, const real *ws, const real *d_out,     \
        const real *d_hn, const real *d_cn, real *dx, real *dw_ih,              \
        real *dw_hh, real *db_ih, real *db_hh, real *dh0, real *dc0);           \
    /* step (one time step from unpacked weights; allocates a little scratch   \
     * per call - a stream, below, does not):                                   \
     *   cell, B, In, w_ih, w_hh, b_ih, b_hh: as for forward                    \
     *   x:     [B, In] this step's input                                       \
     *   h, c:  [B, H] the state before the step (c: cells with a cell state;   \
     *          else ignored, NULL)                                             \
     *   h_out, c_out: [B, H] out: the state after it; h_out may be h itself    \
     *          and c_out c itself (the whole old state is read first), but     \
     *          may not overlap them otherwise */                               \
    int frnn_layer_step_##sfx(const frnn_cell_desc *cell, frnn_int B,           \
        frnn_int In, const real *x, const real *w_ih, const real *w_hh,         \
        const real *b_ih, const real *b_hh, const real *h, const real *c,       \
        real *h_out, real *c_out);                                                  \
    /* forward_proj / backward_proj (layer/projection.c): an LSTM whose         \
     * hidden state is projected, torch.nn.LSTM(proj_size = P):                \
     *   m_t = o tanh(c_t),  h_t = m_t W_hr^T                                   \
     * cell must be FRNN_CELL_LSTM (else FRNN_ERR_UNSUPPORTED), P >= 1; the     \
     * arguments are forward's / backward's with these shapes:                 \
     *   w_hh: [4H, P];  w_hr: [P, H];  dw_hh: [4H, P];  dw_hr: [P, H] out      \
     *   h0, hn, d_hn, dh0: [B, P];  out, d_out: [T, B, P]                      \
     *   c0, cn, d_cn, dc0: [B, H] (never NULL);  ws: [T, B, 5H], the LSTM's    \
     *   workspace (forward: NULL for inference; backward: required) */        \
    int frnn_layer_forward_proj_##sfx(const frnn_cell_desc *cell, frnn_int T,   \
        frnn_int B, frnn_int In, frnn_int P, const real *x, const real *w_ih,   \
        const real *w_hh, const real *w_hr, const real *b_ih,                   \
        const real *b_hh, const real *h0, const real *c0, real *out, real *hn,  \
        real *cn, real *ws);                                                    \
    int frnn_layer_backward_proj_##sfx(const frnn_cell_desc *cell,             \
        frnn_int T, frnn_int B, frnn_int In, frnn_int P, const real *x,         \
        const real *w_ih, const real *w_hh, const real *w_hr, const real *h0,  \
        const real *c0, const real *out, const real *ws, const real *d_out,     \
        const real *d_hn, const real *d_cn, real *dx, real *dw_ih,              \
        real *dw_hh, real *dw_hr, real *db_ih, real *db_hh, real *dh0,          \
        real *dc0);

FRNN_DECLARE(float, f32)
FRNN_DECLARE(double, f64)
#undef FRNN_DECLARE

/* ---- training over a sequence (layer/train.c; docs/TRAINING.md) ------ */

typedef enum {
    FRNN_HEAD_SOFTMAX_CE = 0,
    FRNN_HEAD_SIGMOID_BCE = 1,
    FRNN_HEAD_MSE = 2,
    FRNN_HEAD_SIGMOID_MSE = 3 /* 0.5 (y - sigmoid(z))^2: a sigmoid output, squared error */
} frnn_head;
typedef enum { FRNN_CLIP_NONE = 0, FRNN_CLIP_VALUE = 1, FRNN_CLIP_NORM = 2 } frnn_clip;
typedef enum {
    FRNN_OPT_NONE = 0, /* gradients only: grad = sum of clipped window gradients */
    FRNN_OPT_SGD = 1,
    FRNN_OPT_ADAGRAD = 2,
    FRNN_OPT_RMSPROP = 3,
    FRNN_OPT_ADAM = 4
} frnn_optimizer;

/* A trainer's configuration: the layer (cell, sizes), the head and loss,
 * the truncation, clipping and optimizer. */
typedef struct {
    frnn_cell_type cell;      /* the layer's cell (hidden size: H) */
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
    int no_bias_hh;           /* with has_bias: bias_ih alone, no bias_hh in theta (one
                                 recurrent bias, as Keras / min-char-rnn); 0: both */
    double leak_rate;         /* the leaky cell's a (frnn_cell_desc); other cells: unread */
} frnn_train_config;

/* Train over one sequence window by window (docs/TRAINING.md).
 *   cfg:   the configuration above
 *   theta: [P] flat parameters (weight_ih [GH, In], weight_hh [GH, H],
 *          [bias_ih [GH]], [bias_hh [GH]] (not with no_bias_hh),
 *          weight_hy [O, H], [bias_y [O]]),
 *          updated in place
 *   grad:  [P] out: the last window's clipped gradient (FRNN_OPT_NONE: the
 *          sum over windows)
 *   m, v:  [P] optimizer state, updated in place (unused ones may be NULL:
 *          SGD with momentum uses m, Adagrad m, RMSprop v, Adam both)
 *   step:  [1] the optimizer's update count, in and out (+1 per window)
 *   x:     [T, B, In] dense input, or NULL (index input)
 *   idx:   [T, B] index input (each in [0, In)), or NULL (dense input)
 *   target_idx: [T, B] or, many-to-one, [B] class targets in [0, O)
 *          (softmax_ce; else NULL)
 *   target: [T, B, O] or, many-to-one, [B, O] (sigmoid_bce, mse, sigmoid_mse;
 *          else NULL)
 *   resets: [T, B] or NULL: nonzero where the state entering step t of row b
 *          is reset to zero (h and c: a new document) and no gradient flows
 *          through it into earlier steps; the carried and the initial state
 *          are reset as well. NULL or all zero: no resets (the same results,
 *          bitwise, as without)
 *   h:     [B, H] initial hidden state in, final state out
 *   c:     [B, H] the same for the cell state (cells with one; else
 *          ignored, NULL)
 *   losses: [ceil(T / k1)] out: the reduced loss of every window ([1] by
 *          depth)
 *   stopped_window: [1] out (may be NULL): -1, or the window that stopped
 *          the run (FRNN_ERR_NONFINITE)
 * Outputs (theta, grad, m, v, step, h, c, losses, stopped_window) may not
 * overlap each other or the inputs.
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
                   const int64_t *target_idx, const float *target, const uint8_t *resets,
                   float *h, float *c, double *losses, int64_t *stopped_window);
int frnn_train_f64(const frnn_train_config *cfg, double *theta, double *grad, double *m,
                   double *v, int64_t *step, const double *x, const int64_t *idx,
                   const int64_t *target_idx, const double *target, const uint8_t *resets,
                   double *h, double *c, double *losses, int64_t *stopped_window);

/* Gradients only (cfg->opt must be FRNN_OPT_NONE), with each parameter and
 * each gradient in an array of its own instead of the flat theta / grad:
 * the caller's weight arrays are read where they are, and the gradients
 * written into the caller's arrays, with no flat copy either way (the
 * drop-ins of fastrnn.dropin pass the user's arrays).
 *   w_ih [GH, In], w_hh [GH, H], b_ih [GH], b_hh [GH], w_hy [O, H], b_y [O]:
 *          the parameters, read only (the biases the configuration has:
 *          b_ih with has_bias, b_hh with has_bias and not no_bias_hh, b_y
 *          with has_head_bias; absent ones are not read and may be NULL)
 *   g_*:   the same shapes, out: the sum over windows of the clipped window
 *          gradients (the grad of frnn_train with FRNN_OPT_NONE, bit for bit)
 *   x, idx, target_idx, target, resets, h, c, losses, stopped_window: as
 *          frnn_train's.
 * The g_* and the other outputs may not overlap each other or the inputs;
 * the parameters may overlap each other. Results, errors and the stop at a
 * window that is not finite are frnn_train's (FRNN_ERR_UNSUPPORTED also for
 * an optimizer or a NULL parameter the configuration needs). */
int frnn_train_grads_f32(const frnn_train_config *cfg, const float *w_ih, const float *w_hh,
                         const float *b_ih, const float *b_hh, const float *w_hy,
                         const float *b_y, float *g_w_ih, float *g_w_hh, float *g_b_ih,
                         float *g_b_hh, float *g_w_hy, float *g_b_y, const float *x,
                         const int64_t *idx, const int64_t *target_idx, const float *target,
                         const uint8_t *resets, float *h, float *c, double *losses,
                         int64_t *stopped_window);
int frnn_train_grads_f64(const frnn_train_config *cfg, const double *w_ih, const double *w_hh,
                         const double *b_ih, const double *b_hh, const double *w_hy,
                         const double *b_y, double *g_w_ih, double *g_w_hh, double *g_b_ih,
                         double *g_b_hh, double *g_w_hy, double *g_b_y, const double *x,
                         const int64_t *idx, const int64_t *target_idx, const double *target,
                         const uint8_t *resets, double *h, double *c, double *losses,
                         int64_t *stopped_window);

/* ---- torch.optim's updates over a flat array (layer/optimizers.c) ---- */

/* One optimizer step of torch.optim's SGD, Adagrad, RMSprop, Adam / AdamW
 * for one parameter, elementwise, in place: the formulas, order of
 * operations and rounding of torch 2.13's single-tensor (foreach=False)
 * path in the arrays' dtype (derived scalars such as Adam's
 * lr / (1 - beta1^step) are computed in double, as torch computes them,
 * then rounded), so the results are fastrnn.optim's NumPy path's bit for
 * bit. fastrnn.optim documents the formulas. The hyperparameters are
 * torch's, by name; a ParamsLike grouping, maximize, foreach, fused and
 * capturable are not here.
 *
 * Arrays: n elements each (n >= 0; n = 0 does nothing), C order, one dtype
 * per call, none overlapping another (fastrnn.h's rule). A state buffer the
 * hyperparameters do not use is not touched and may be NULL.
 *   param: [n] the parameter, updated in place
 *   grad:  [n] its gradient, read only (weight decay is applied to a copy
 *          of each element, never written back)
 *   step:  the parameter's update count including this update, >= 1
 *          (torch's state['step'] after its increment)
 * Returns FRNN_OK, or FRNN_ERR_UNSUPPORTED (nothing written) if h is NULL,
 * n < 0, step < 1, an array the hyperparameters need is NULL, or a
 * hyperparameter is outside torch's range (below). The kernels run on the
 * calling thread: a step is one pass over memory, which one core saturates
 * nearly as well as several. */
typedef struct {
    double lr;           /* >= 0 */
    double momentum;     /* >= 0; 0: no momentum buffer */
    double dampening;    /* in [0, 1] */
    double weight_decay; /* >= 0, L2: grad + weight_decay * param */
    int nesterov;        /* needs momentum > 0 and dampening = 0 */
} frnn_sgd_hyper;

typedef struct {
    double lr;           /* >= 0 */
    double lr_decay;     /* >= 0 */
    double weight_decay; /* >= 0 */
    double eps;          /* >= 0 */
} frnn_adagrad_hyper;

typedef struct {
    double lr;           /* >= 0 */
    double alpha;        /* in [0, 1] */
    double eps;          /* >= 0 */
    double weight_decay; /* >= 0 */
    double momentum;     /* >= 0; 0: no momentum buffer */
    int centered;        /* keep grad_avg, divide by the centred second moment */
} frnn_rmsprop_hyper;

typedef struct {
    double lr;                  /* >= 0 */
    double beta1, beta2;        /* each in [0, 1) */
    double eps;                 /* >= 0 */
    double weight_decay;        /* >= 0 */
    int amsgrad;                /* keep max_exp_avg_sq */
    int decoupled_weight_decay; /* 1: AdamW (param * (1 - lr * weight_decay)); 0: Adam (L2) */
} frnn_adam_hyper;

#define FRNN_DECLARE_OPTIM(real, sfx)                                           \
    /* SGD:                                                                     \
     *   momentum_buffer: [n] torch's state['momentum_buffer'], updated (used   \
     *          when momentum != 0)                                             \
     *   first_step: 1 if the buffer has no value yet (torch creates it from    \
     *          the gradient): it is then written, not read */                  \
    int frnn_sgd_step_##sfx(const frnn_sgd_hyper *h, frnn_int n, real *param,    \
        const real *grad, real *momentum_buffer, int first_step);               \
    /* Adagrad:                                                                 \
     *   sum:   [n] torch's state['sum'], updated (starts at                    \
     *          initial_accumulator_value) */                                   \
    int frnn_adagrad_step_##sfx(const frnn_adagrad_hyper *h, frnn_int n,        \
        int64_t step, real *param, const real *grad, real *sum);                \
    /* RMSprop (torch's state of the same names, each updated):                 \
     *   square_avg: [n] always;  momentum_buffer: [n] when momentum > 0;       \
     *   grad_avg: [n] when centered */                                         \
    int frnn_rmsprop_step_##sfx(const frnn_rmsprop_hyper *h, frnn_int n,        \
        real *param, const real *grad, real *square_avg, real *momentum_buffer, \
        real *grad_avg);                                                        \
    /* Adam / AdamW (torch's state of the same names, each updated):            \
     *   exp_avg, exp_avg_sq: [n] always;  max_exp_avg_sq: [n] when amsgrad */  \
    int frnn_adam_step_##sfx(const frnn_adam_hyper *h, frnn_int n, int64_t step, \
        real *param, const real *grad, real *exp_avg, real *exp_avg_sq,         \
        real *max_exp_avg_sq);

FRNN_DECLARE_OPTIM(float, f32)
FRNN_DECLARE_OPTIM(double, f64)
#undef FRNN_DECLARE_OPTIM

/* ---- streaming: one step at a time with prepared weights (layer/stream.c) */

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
 * Shapes as above, with G and GH = G*H from the cell. */
typedef struct frnn_stream_f32 frnn_stream_f32;
typedef struct frnn_stream_f64 frnn_stream_f64;

/* Create a stream.
 *   cell: the cell and H (hidden_size), copied (the desc need not outlive
 *         the call)
 *   B:    batch rows stepped together, >= 1
 *   In:   input size, >= 1
 *   w_ih: [GH, In] input weights (PyTorch layout), copied (packed)
 *   w_hh: [GH, H] recurrent weights (PyTorch layout), copied (packed)
 *   b_ih: [GH] input bias, copied; NULL means zeros
 *   b_hh: [GH] recurrent bias, copied; NULL means zeros
 * Returns the stream, or NULL if allocation failed, cell is NULL or its
 * type unknown, a size is < 1 or > 2^24, or w_ih / w_hh is NULL. */
frnn_stream_f32 *frnn_stream_create_f32(const frnn_cell_desc *cell, frnn_int B, frnn_int In,
                                        const float *w_ih, const float *w_hh,
                                        const float *b_ih, const float *b_hh);
frnn_stream_f64 *frnn_stream_create_f64(const frnn_cell_desc *cell, frnn_int B, frnn_int In,
                                        const double *w_ih, const double *w_hh,
                                        const double *b_ih, const double *b_hh);

/* Advance the state by one time step, in place.
 *   s: a stream from frnn_stream_create_*
 *   x: [B, In] the input of this step; may not overlap h or c
 *   h: [B, H] hidden state: h_{t-1} in, h_t out (in place)
 *   c: [B, H] cell state: c_{t-1} in, c_t out, in place (cells with a cell
 *      state); ignored, may be NULL, for the other cells; may not overlap h
 * Returns FRNN_OK, or FRNN_ERR_UNSUPPORTED (nothing done) if s, x or h is
 * NULL, or c is NULL for a cell with a cell state. */
int frnn_stream_step_f32(frnn_stream_f32 *s, const float *x, float *h, float *c);
int frnn_stream_step_f64(frnn_stream_f64 *s, const double *x, double *h, double *c);

/* Free a stream and everything it holds; s may be NULL.
 *   s: a stream from frnn_stream_create_*, or NULL */
void frnn_stream_destroy_f32(frnn_stream_f32 *s);
void frnn_stream_destroy_f64(frnn_stream_f64 *s);

#ifdef __cplusplus
}
#endif
#endif
