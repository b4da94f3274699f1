/* isa.h - internal: every per-ISA kernel's prototype, written once.
 *
 * gemm.c, peak.c, activations.c, gates.c, optim.c and torch_optim.c are compiled once per (dtype,
 * ISA): CMake defines FRNN_F64 or not (real.h) and FRNN_ISA (baseline;
 * avx2 with -mavx2 -mfma; avx512 adding -mavx512f/dq/vl). ISA_FN(name)
 * gives each copy its own symbol, name_<dtype>_<isa>, so all of them link
 * into one library; table.c, compiled the same way, collects one copy's
 * functions into that (dtype, ISA)'s kernel table (kernels.h), and only
 * the table is seen outside these translation units.
 *
 * The arguments are documented where each function is defined. Not for
 * inclusion outside csrc/kernels/.
 */
#ifndef FRNN_ISA_H
#define FRNN_ISA_H

#include "kernels/kernels.h"

#ifndef FRNN_ISA
#define FRNN_ISA baseline
#endif
#define ISA_FN(name) FRNN_CAT(FN(name), FRNN_ISA)

/* gemm.c */
void ISA_FN(frnn_gemm_nn)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                          const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc);
void ISA_FN(frnn_gemm_tn)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                          const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc);
void ISA_FN(frnn_gemm_nt)(frnn_int M, frnn_int N, frnn_int K, const real *A, frnn_int lda,
                          const real *B, frnn_int ldb, int accumulate, real *C, frnn_int ldc);
frnn_int ISA_FN(frnn_packed_size)(frnn_int K, frnn_int N);
void ISA_FN(frnn_pack_b)(frnn_int K, frnn_int N, const real *B, frnn_int rs, frnn_int cs,
                         real *Bp);
void ISA_FN(frnn_gemm_nn_packed)(frnn_int M, frnn_int N, frnn_int K, const real *A,
                                 frnn_int lda, const real *Bp, int accumulate, real *C,
                                 frnn_int ldc);

/* peak.c */
double ISA_FN(frnn_fma_peak)(frnn_int rounds, real *sink);

/* activations.c */
void ISA_FN(frnn_sigmoid)(frnn_int n, const real *x, real *y);
void ISA_FN(frnn_tanh)(frnn_int n, const real *x, real *y);
void ISA_FN(frnn_exp_nonpositive)(frnn_int n, const real *x, real *y);

/* gates.c */
void ISA_FN(frnn_rnn_forward_math)(frnn_activation act, frnn_int B, frnn_int H, frnn_int j0,
                                   frnn_int cols, const real *pre, const real *b_hh, real *h);
void ISA_FN(frnn_rnn_backward_math)(frnn_activation act, frnn_int B, frnn_int H, frnn_int j0,
                                    frnn_int cols, const real *y, const real *d_out,
                                    const real *dh, real *g);
void ISA_FN(frnn_lstm_forward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                                    const real *gates, const real *b_hh, real *c, real *h,
                                    real *ws);
void ISA_FN(frnn_lstm_backward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                                     const real *ws, const real *c_prev, frnn_int c_prev_stride,
                                     const real *d_out, const real *dh, real *dc, real *G);
void ISA_FN(frnn_gru_forward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                                   const real *xp, const real *hp, const real *b_hh,
                                   const real *h_prev, real *h, real *w);
void ISA_FN(frnn_gru_backward_math)(frnn_int B, frnn_int H, frnn_int j0, frnn_int cols,
                                    const real *ws, const real *h_prev, const real *d_out,
                                    real *dh, real *Gx, real *Gh);

/* optim.c */
int ISA_FN(frnn_clip_value)(frnn_int n, real *g, real c);
double ISA_FN(frnn_sum_squares)(frnn_int n, const real *g);
int ISA_FN(frnn_all_finite)(frnn_int n, const real *g);
void ISA_FN(frnn_scale)(frnn_int n, real *g, real a);
void ISA_FN(frnn_sgd)(frnn_int n, real *p, const real *g, real *m, real lr, real mu, int nesterov);
void ISA_FN(frnn_adagrad)(frnn_int n, real *p, const real *g, real *m, real lr, real eps);
void ISA_FN(frnn_rmsprop)(frnn_int n, real *p, const real *g, real *v, real lr, real alpha,
                          real eps);
void ISA_FN(frnn_adam)(frnn_int n, real *p, const real *g, real *m, real *v, real lr, real b1,
                       real b2, real c1, real c2, real eps);

/* torch_optim.c (arguments: the table's fields in kernels.h) */
void ISA_FN(frnn_torch_sgd)(frnn_int n, real *restrict p, const real *restrict g,
                            real *restrict buf, const FN(frnn_torch_sgd_coef) *c);
void ISA_FN(frnn_torch_adagrad)(frnn_int n, real *restrict p, const real *restrict g,
                                real *restrict sum, const FN(frnn_torch_adagrad_coef) *c);
void ISA_FN(frnn_torch_rmsprop)(frnn_int n, real *restrict p, const real *restrict g,
                                real *restrict square_avg, real *restrict buf,
                                real *restrict grad_avg, const FN(frnn_torch_rmsprop_coef) *c);
void ISA_FN(frnn_torch_adam)(frnn_int n, real *restrict p, const real *restrict g,
                             real *restrict exp_avg, real *restrict exp_avg_sq,
                             real *restrict max_exp_avg_sq, const FN(frnn_torch_adam_coef) *c);

#endif
