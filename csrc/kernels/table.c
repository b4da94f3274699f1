/* table.c - one (dtype, ISA)'s kernel table: the functions gemm.c,
 * peak.c, activations.c, gates.c, optim.c and torch_optim.c compiled for it,
 * collected under the name frnn_kernels_<dtype>_<isa> (kernels.h), which is
 * all that the rest of the core sees of them.
 *
 * Compiled once per (dtype, ISA) like those files (isa.h). Nothing else
 * here: adding a kernel is a field in kernels.h, a prototype in isa.h, its
 * definition, and one line below.
 */
#include "kernels/isa.h"
#include "kernels/tile.h"

#define FRNN_STR_(x) #x
#define FRNN_STR(x) FRNN_STR_(x)

const FN(frnn_kernel_table) FRNN_CAT(FN(frnn_kernels), FRNN_ISA) = {
    .isa = FRNN_STR(FRNN_ISA),
    .mr = MR,
    .nr = NR,
    .gemm_nn = ISA_FN(frnn_gemm_nn),
    .gemm_tn = ISA_FN(frnn_gemm_tn),
    .gemm_nt = ISA_FN(frnn_gemm_nt),
    .packed_size = ISA_FN(frnn_packed_size),
    .pack_b = ISA_FN(frnn_pack_b),
    .gemm_nn_packed = ISA_FN(frnn_gemm_nn_packed),
    .fma_peak = ISA_FN(frnn_fma_peak),
    .sigmoid = ISA_FN(frnn_sigmoid),
    .tanh = ISA_FN(frnn_tanh),
    .exp_nonpositive = ISA_FN(frnn_exp_nonpositive),
    .rnn_forward_math = ISA_FN(frnn_rnn_forward_math),
    .rnn_backward_math = ISA_FN(frnn_rnn_backward_math),
    .lstm_forward_math = ISA_FN(frnn_lstm_forward_math),
    .lstm_backward_math = ISA_FN(frnn_lstm_backward_math),
    .gru_forward_math = ISA_FN(frnn_gru_forward_math),
    .gru_backward_math = ISA_FN(frnn_gru_backward_math),
    .clip_value = ISA_FN(frnn_clip_value),
    .sum_squares = ISA_FN(frnn_sum_squares),
    .all_finite = ISA_FN(frnn_all_finite),
    .scale = ISA_FN(frnn_scale),
    .sgd = ISA_FN(frnn_sgd),
    .adagrad = ISA_FN(frnn_adagrad),
    .rmsprop = ISA_FN(frnn_rmsprop),
    .adam = ISA_FN(frnn_adam),
    .torch_sgd = ISA_FN(frnn_torch_sgd),
    .torch_adagrad = ISA_FN(frnn_torch_adagrad),
    .torch_rmsprop = ISA_FN(frnn_torch_rmsprop),
    .torch_adam = ISA_FN(frnn_torch_adam),
};
