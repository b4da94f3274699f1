/* kernels.h - internal: the per-ISA kernel table, the one door to the
 * kernels.
 *
 * GEMM (gemm.c), activation (activations.c), gate-math (gates.c) and
 * optimizer (optim.c: the trainer's; torch_optim.c: torch.optim's) kernels
 * are compiled once per dtype and per ISA (baseline portable C; AVX2+FMA
 * and AVX-512 on x86-64) and collected into one table per (dtype, ISA)
 * (table.c). One table per dtype is active,
 * chosen "reference first, then override" by CPU feature (dispatch.c).
 * Everything above the kernels calls through a table (FN(frnn_active)(),
 * or the one a stream kept) so it never knows which ISA runs.
 *
 * All matrices are row-major with explicit leading dimensions. `accumulate`
 * selects C += ... (1) or C = ... (0). Not here: the cells (cells/cell.h)
 * and the threaded products built on these (layer/products.h).
 */
#ifndef FRNN_KERNELS_H
#define FRNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "fastrnn.h"
#include "runtime/real.h"
#include "runtime/sizes.h"

/* The Elman cells' nonlinearity, as the gate kernels take it. */
typedef enum {
    FRNN_ACT_TANH = 0,
    FRNN_ACT_RELU = 1,
    FRNN_ACT_SIGMOID = 2
} frnn_activation;

/* torch.optim's updates (torch_optim.c): each kernel's scalars, already in
 * the working dtype. layer/optimizers.c derives them once per call from the
 * hyperparameters in double, as torch does, and rounds each to `real` as
 * torch rounds a Python float combined with a tensor; the has_* flags say
 * whether an optional term applies, decided on the double hyperparameter
 * (torch tests `weight_decay != 0`, not its rounding). */
typedef struct {
    real lr;                   /* lr */
    real weight_decay;         /* weight_decay (used when has_weight_decay) */
    real momentum;             /* momentum (used when has_momentum) */
    real dampening_complement; /* 1 - dampening */
    int has_weight_decay;      /* weight_decay != 0 */
    int has_momentum;          /* momentum != 0: buf is read and written */
    int nesterov;              /* Nesterov momentum */
    int first_step;            /* buf does not exist yet: buf = the (decayed) gradient */
} FN(frnn_torch_sgd_coef);

typedef struct {
    real neg_clr;         /* -lr / (1 + (step - 1) * lr_decay) */
    real weight_decay;    /* weight_decay (used when has_weight_decay) */
    real eps;             /* eps, added to sqrt(sum) */
    int has_weight_decay; /* weight_decay != 0 */
} FN(frnn_torch_adagrad_coef);

typedef struct {
    real lr, neg_lr;      /* lr and -lr */
    real alpha;           /* alpha */
    real one_minus_alpha; /* 1 - alpha */
    real eps;             /* eps */
    real weight_decay;    /* weight_decay (used when has_weight_decay) */
    real momentum;        /* momentum (used when has_momentum) */
    int has_weight_decay; /* weight_decay != 0 */
    int has_momentum;     /* momentum > 0: buf is read and written */
    int centered;         /* grad_avg is read and written */
} FN(frnn_torch_rmsprop_coef);

typedef struct {
    real one_minus_beta1;       /* 1 - beta1, the lerp weight of exp_avg */
    real beta2;                 /* beta2 */
    real one_minus_beta2;       /* 1 - beta2 */
    real neg_step_size;         /* -lr / (1 - beta1^step) */
    real bias_correction2_sqrt; /* (1 - beta2^step)^0.5 */
    real eps;                   /* eps */
    real weight_decay;          /* Adam's L2 weight_decay (has_weight_decay, not decoupled) */
    real decay_factor;          /* AdamW's 1 - lr * weight_decay (has_weight_decay, decoupled) */
    int has_weight_decay;       /* weight_decay != 0 */
    int decoupled;              /* AdamW (decay p) rather than Adam (decay the gradient) */
    int amsgrad;                /* max_exp_avg_sq is read and written */
} FN(frnn_torch_adam_coef);

typedef struct {
    const char *isa;
    /* Rows of the GEMM micro-tile (tile.h): a row block of a product that
     * starts at a multiple of mr is cut into the same tiles as the whole
     * product, so thread splits cut rows there (and results do not depend
     * on the thread count). */
    frnn_int mr;
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
    /* The FMA peak loop (peak.c): `rounds` rounds of independent multiply-adds
     * on this ISA's vectors; returns the floating-point operations done and
     * stores a checksum in *sink. Timed by fastrnn bench, used by nothing else. */
    double (*fma_peak)(frnn_int rounds, real *sink);
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
    /* g clipped to [-c, c] in place; returns all_finite of g as it was */
    int (*clip_value)(frnn_int n, real *g, real c);
    double (*sum_squares)(frnn_int n, const real *g);
    /* 1 if every g[i] is finite, 0 if one is inf or NaN. */
    int (*all_finite)(frnn_int n, const real *g);
    void (*scale)(frnn_int n, real *g, real a);
    void (*sgd)(frnn_int n, real *p, const real *g, real *m, real lr, real mu, int nesterov);
    void (*adagrad)(frnn_int n, real *p, const real *g, real *m, real lr, real eps);
    void (*rmsprop)(frnn_int n, real *p, const real *g, real *v, real lr, real alpha, real eps);
    void (*adam)(frnn_int n, real *p, const real *g, real *m, real *v, real lr, real b1,
                 real b2, real c1, real c2, real eps);
    /* torch.optim's updates over one flat array of n >= 0 elements, in
     * place (torch_optim.c; the scalars: the coefficient structs above).
     * No two arrays of a call may overlap; a buffer whose flag is off (SGD
     * buf without momentum, RMSprop buf / grad_avg, Adam max_exp_avg_sq) is
     * not touched and may be NULL.
     *   p:   [n] the parameter, updated
     *   g:   [n] its gradient, read only
     *   buf, sum, square_avg, grad_avg, exp_avg, exp_avg_sq,
     *   max_exp_avg_sq: [n] the optimizer's state of that name, updated */
    void (*torch_sgd)(frnn_int n, real *p, const real *g, real *buf,
                      const FN(frnn_torch_sgd_coef) *c);
    void (*torch_adagrad)(frnn_int n, real *p, const real *g, real *sum,
                          const FN(frnn_torch_adagrad_coef) *c);
    void (*torch_rmsprop)(frnn_int n, real *p, const real *g, real *square_avg, real *buf,
                          real *grad_avg, const FN(frnn_torch_rmsprop_coef) *c);
    void (*torch_adam)(frnn_int n, real *p, const real *g, real *exp_avg, real *exp_avg_sq,
                       real *max_exp_avg_sq, const FN(frnn_torch_adam_coef) *c);
} FN(frnn_kernel_table);

/* The table chosen by frnn_select_isa (baseline until then). */
const FN(frnn_kernel_table) *FN(frnn_active)(void);

/* Per-ISA tables defined in table.c, named frnn_kernels_<dtype>_<isa>. */
extern const FN(frnn_kernel_table) FRNN_CAT(FN(frnn_kernels), baseline);
#if defined(FRNN_HAVE_X86_ISAS)
extern const FN(frnn_kernel_table) FRNN_CAT(FN(frnn_kernels), avx2);
extern const FN(frnn_kernel_table) FRNN_CAT(FN(frnn_kernels), avx512);
#endif

/* Make the table for `isa` ("baseline", "avx2", "avx512") the active one; returns 0
 * if this build has no such table. Called by frnn_select_isa only. */
int FN(frnn_use_isa)(const char *isa);

/* Elements of k->packed_size(K, N), checked: the packed form is N rounded
 * up to whole panels, times K, so K * (N + nr) bounds it; FRNN_SIZE_INVALID
 * if that bound overflows (or K, N are). */
static inline frnn_int FN(frnn_packed_elems)(const FN(frnn_kernel_table) *k, frnn_int K,
                                             frnn_int N) {
    if (frnn_size_mul(K, frnn_size_add(N, k->nr)) == FRNN_SIZE_INVALID) return FRNN_SIZE_INVALID;
    return k->packed_size(K, N);
}

#endif
