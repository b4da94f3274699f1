/* optimizers.c - the public entry points of torch.optim's updates over one
 * flat array (fastrnn.h: frnn_sgd_step, frnn_adagrad_step,
 * frnn_rmsprop_step, frnn_adam_step).
 *
 * Each checks its arguments, derives the scalars of the update from the
 * hyperparameters in double exactly as torch's Python code does (the same
 * operations in the same order: Python floats are IEEE doubles, and `**`
 * is the C library's pow), rounds each to the working dtype, and runs the
 * active table's kernel (kernels/torch_optim.c). Compiled once per dtype.
 * Like torch_optim.c it is compiled with -ffp-contract=off (CMakeLists.txt):
 * 1 - lr * weight_decay fused into one rounding would differ from torch's
 * and NumPy's two.
 *
 * What this is not: the sequence trainer's optimizers (train.c over
 * kernels/optim.c), which are min-char-rnn's formulas.
 */
#include <math.h>
#include "kernels/kernels.h"

/* x is a number (not NaN, not infinite) in [low, high]. */
static int in_range(double x, double low, double high) {
    return isfinite(x) && x >= low && x <= high;
}

int FN(frnn_sgd_step)(const frnn_sgd_hyper *h, frnn_int n, real *param, const real *grad,
                      real *momentum_buffer, int first_step) {
    if (h == NULL || n < 0) return FRNN_ERR_UNSUPPORTED;
    if (!in_range(h->lr, 0, INFINITY) || !in_range(h->momentum, 0, INFINITY) ||
        !in_range(h->dampening, 0, 1) || !in_range(h->weight_decay, 0, INFINITY) ||
        (h->nesterov && (h->momentum <= 0 || h->dampening != 0)))
        return FRNN_ERR_UNSUPPORTED;
    const int has_momentum = h->momentum != 0;
    if (n == 0) return FRNN_OK;
    if (param == NULL || grad == NULL || (has_momentum && momentum_buffer == NULL))
        return FRNN_ERR_UNSUPPORTED;
    const FN(frnn_torch_sgd_coef) c = {
        .lr = (real)h->lr,
        .weight_decay = (real)h->weight_decay,
        .momentum = (real)h->momentum,
        .dampening_complement = (real)(1 - h->dampening),
        .has_weight_decay = h->weight_decay != 0,
        .has_momentum = has_momentum,
        .nesterov = h->nesterov != 0,
        .first_step = first_step != 0,
    };
    FN(frnn_active)()->torch_sgd(n, param, grad, has_momentum ? momentum_buffer : NULL, &c);
    return FRNN_OK;
}

int FN(frnn_adagrad_step)(const frnn_adagrad_hyper *h, frnn_int n, int64_t step, real *param,
                          const real *grad, real *sum) {
    if (h == NULL || n < 0 || step < 1) return FRNN_ERR_UNSUPPORTED;
    if (!in_range(h->lr, 0, INFINITY) || !in_range(h->lr_decay, 0, INFINITY) ||
        !in_range(h->weight_decay, 0, INFINITY) || !in_range(h->eps, 0, INFINITY))
        return FRNN_ERR_UNSUPPORTED;
    if (n == 0) return FRNN_OK;
    if (param == NULL || grad == NULL || sum == NULL) return FRNN_ERR_UNSUPPORTED;
    /* torch: clr = lr / (1 + (step - 1) * lr_decay), step a Python number */
    const double clr = h->lr / (1 + (double)(step - 1) * h->lr_decay);
    const FN(frnn_torch_adagrad_coef) c = {
        .neg_clr = (real)(-clr),
        .weight_decay = (real)h->weight_decay,
        .eps = (real)h->eps,
        .has_weight_decay = h->weight_decay != 0,
    };
    FN(frnn_active)()->torch_adagrad(n, param, grad, sum, &c);
    return FRNN_OK;
}

int FN(frnn_rmsprop_step)(const frnn_rmsprop_hyper *h, frnn_int n, real *param,
                          const real *grad, real *square_avg, real *momentum_buffer,
                          real *grad_avg) {
    if (h == NULL || n < 0) return FRNN_ERR_UNSUPPORTED;
    if (!in_range(h->lr, 0, INFINITY) || !in_range(h->alpha, 0, 1) ||
        !in_range(h->eps, 0, INFINITY) || !in_range(h->weight_decay, 0, INFINITY) ||
        !in_range(h->momentum, 0, INFINITY))
        return FRNN_ERR_UNSUPPORTED;
    const int has_momentum = h->momentum > 0, centered = h->centered != 0;
    if (n == 0) return FRNN_OK;
    if (param == NULL || grad == NULL || square_avg == NULL ||
        (has_momentum && momentum_buffer == NULL) || (centered && grad_avg == NULL))
        return FRNN_ERR_UNSUPPORTED;
    const FN(frnn_torch_rmsprop_coef) c = {
        .lr = (real)h->lr,
        .neg_lr = (real)(-h->lr),
        .alpha = (real)h->alpha,
        .one_minus_alpha = (real)(1 - h->alpha),
        .eps = (real)h->eps,
        .weight_decay = (real)h->weight_decay,
        .momentum = (real)h->momentum,
        .has_weight_decay = h->weight_decay != 0,
        .has_momentum = has_momentum,
        .centered = centered,
    };
    FN(frnn_active)()->torch_rmsprop(n, param, grad, square_avg,
                                     has_momentum ? momentum_buffer : NULL,
                                     centered ? grad_avg : NULL, &c);
    return FRNN_OK;
}

int FN(frnn_adam_step)(const frnn_adam_hyper *h, frnn_int n, int64_t step, real *param,
                       const real *grad, real *exp_avg, real *exp_avg_sq,
                       real *max_exp_avg_sq) {
    if (h == NULL || n < 0 || step < 1) return FRNN_ERR_UNSUPPORTED;
    if (!in_range(h->lr, 0, INFINITY) || !in_range(h->beta1, 0, 1) || h->beta1 == 1 ||
        !in_range(h->beta2, 0, 1) || h->beta2 == 1 || !in_range(h->eps, 0, INFINITY) ||
        !in_range(h->weight_decay, 0, INFINITY))
        return FRNN_ERR_UNSUPPORTED;
    const int amsgrad = h->amsgrad != 0;
    if (n == 0) return FRNN_OK;
    if (param == NULL || grad == NULL || exp_avg == NULL || exp_avg_sq == NULL ||
        (amsgrad && max_exp_avg_sq == NULL))
        return FRNN_ERR_UNSUPPORTED;
    /* torch (_single_tensor_adam, not capturable): step is a float tensor
     * read with .item(); bias_correction1 = 1 - beta1 ** step, likewise 2;
     * step_size = lr / bias_correction1; bias_correction2_sqrt =
     * bias_correction2 ** 0.5 (pow, not sqrt: Python's ** calls it). */
    const double t = (double)step;
    const double bias_correction1 = 1 - pow(h->beta1, t);
    const double bias_correction2 = 1 - pow(h->beta2, t);
    const double step_size = h->lr / bias_correction1;
    const double bias_correction2_sqrt = pow(bias_correction2, 0.5);
    const FN(frnn_torch_adam_coef) c = {
        .one_minus_beta1 = (real)(1 - h->beta1),
        .beta2 = (real)h->beta2,
        .one_minus_beta2 = (real)(1 - h->beta2),
        .neg_step_size = (real)(-step_size),
        .bias_correction2_sqrt = (real)bias_correction2_sqrt,
        .eps = (real)h->eps,
        .weight_decay = (real)h->weight_decay,
        .decay_factor = (real)(1 - h->lr * h->weight_decay),
        .has_weight_decay = h->weight_decay != 0,
        .decoupled = h->decoupled_weight_decay != 0,
        .amsgrad = amsgrad,
    };
    FN(frnn_active)()->torch_adam(n, param, grad, exp_avg, exp_avg_sq,
                                  amsgrad ? max_exp_avg_sq : NULL, &c);
    return FRNN_OK;
}
