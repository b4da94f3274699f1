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
 * Return value: 0 on success, FRNN_ERR_NOMEM if scratch allocation failed
 * (outputs are then unspecified). Nothing else can fail: the caller (the
 * Cython layer) has validated shapes, dtypes and contiguity.
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

enum { FRNN_OK = 0, FRNN_ERR_NOMEM = 1 };

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

#ifdef __cplusplus
}
#endif
#endif
