/* torch_optim.c - torch.optim's SGD, Adagrad, RMSprop and Adam / AdamW
 * updates, elementwise over one flat parameter array (fastrnn.optim's C
 * path; the public entry points are layer/optimizers.c).
 *
 * What this is: each kernel is one pass over p, g and the optimizer's state
 * buffers doing, per element, exactly the IEEE operations of torch's
 * single-tensor (foreach=False) path, in its order, in the working dtype:
 * every scalar is the caller's already rounded coefficient (kernels.h,
 * frnn_torch_*_coef), so the float64 / float32 results are bitwise those of
 * fastrnn.optim's NumPy path (which is written op for op after torch).
 * What it is not: the sequence trainer's optimizers (optim.c), whose
 * formulas are min-char-rnn's, not torch's (Adagrad's eps inside the
 * square root, no weight decay or dampening).
 *
 * Why the per-ISA table and not plain C compiled once: these are the
 * project's elementwise-loop pattern (optim.c, activations.c). A
 * 4M-element Adam step is a stream over 4-5 arrays with a divide and a
 * square root per element; the AVX2 / AVX-512 copies turn those into vector
 * vdivps / vsqrtps, which are correctly rounded like their scalar forms, so
 * vectorising changes the speed and not one bit of the result.
 *
 * Bitwise equality needs no contraction: the ISA flags include -mfma and
 * the build uses -std=gnu11, where GCC's default is -ffp-contract=fast
 * (a * b + c fused into one rounding, as torch's CPU kernels do and NumPy
 * never does). CMakeLists.txt compiles this file (and optimizers.c) with
 * -ffp-contract=off for that reason; do not drop it.
 *
 * restrict: the arrays of one call never overlap (fastrnn.h's rule; the
 * Cython layer checks it), which lets the compiler vectorise without
 * run-time overlap checks on five pointers.
 */
#include <math.h>
#include "kernels/isa.h"

#ifdef FRNN_F64
#define R_SQRT sqrt
#else
#define R_SQRT sqrtf
#endif

/* torch.lerp(x, end, w) for a scalar weight in [0, 1]: x + w * (end - x)
 * when w < 0.5, else end - (end - x) * (1 - w) (torch's two-sided form,
 * exact at both ends); w_complement = 1 - w rounded in the working dtype,
 * as torch computes it. */
static inline real torch_lerp(real x, real end, real w, real w_complement) {
    const real diff = end - x;
    return w < (real)0.5 ? x + w * diff : end - diff * w_complement;
}

/* torch.maximum / numpy.maximum: NaN if either is NaN (a NaN in `a` is
 * returned as is; then a >= b and a == a are false only for a NaN b). */
static inline real nan_maximum(real a, real b) { return (a >= b || a != a) ? a : b; }

void ISA_FN(frnn_torch_sgd)(frnn_int n, real *restrict p, const real *restrict g,
                            real *restrict buf, const FN(frnn_torch_sgd_coef) *c) {
    const real wd = c->weight_decay, mu = c->momentum, damp = c->dampening_complement;
    const real lr = c->lr;
    const int has_wd = c->has_weight_decay, has_mu = c->has_momentum;
    const int first = c->first_step, nesterov = c->nesterov;
    for (frnn_int i = 0; i < n; i++) {
        real d = g[i];
        if (has_wd) d = p[i] * wd + d;  /* grad.add(param, alpha=wd) */
        if (has_mu) {
            /* first step: buf = clone(grad); then buf.mul_(mu).add_(grad, alpha=1 - dampening) */
            const real b = first ? d : buf[i] * mu + damp * d;
            buf[i] = b;
            d = nesterov ? d + mu * b : b;
        }
        p[i] = p[i] - lr * d;  /* param.add_(grad, alpha=-lr) */
    }
}

void ISA_FN(frnn_torch_adagrad)(frnn_int n, real *restrict p, const real *restrict g,
                                real *restrict sum, const FN(frnn_torch_adagrad_coef) *c) {
    const real wd = c->weight_decay, neg_clr = c->neg_clr, eps = c->eps;
    const int has_wd = c->has_weight_decay;
    for (frnn_int i = 0; i < n; i++) {
        real d = g[i];
        if (has_wd) d = p[i] * wd + d;
        const real s = sum[i] + d * d;  /* state_sum.addcmul_(grad, grad, value=1) */
        sum[i] = s;
        const real std = R_SQRT(s) + eps;
        p[i] = p[i] + (d * neg_clr) / std;  /* param.addcdiv_(grad, std, value=-clr) */
    }
}

/* GCC unswitches the SGD and Adagrad loops by itself; the RMSprop and Adam
 * bodies are too large for its limits, and a loop that still tests a flag
 * does not vectorise (a store to a buffer that may be NULL cannot be made
 * unconditional). So each is one inlined body with constant flags, and a
 * switch calls it once per combination: every combination gets its own
 * straight-line, vectorised loop. */
#if defined(__GNUC__) || defined(__clang__)
#define FRNN_SPECIALISE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FRNN_SPECIALISE static __forceinline
#else
#define FRNN_SPECIALISE static inline
#endif

FRNN_SPECIALISE void rmsprop_loop(frnn_int n, real *restrict p, const real *restrict g,
                                  real *restrict square_avg, real *restrict buf,
                                  real *restrict grad_avg, const FN(frnn_torch_rmsprop_coef) *c,
                                  const int has_wd, const int centered, const int has_mu) {
    const real wd = c->weight_decay, alpha = c->alpha, w = c->one_minus_alpha;
    const real w_complement = (real)1 - w;
    const real eps = c->eps, mu = c->momentum, lr = c->lr, neg_lr = c->neg_lr;
    for (frnn_int i = 0; i < n; i++) {
        real d = g[i];
        if (has_wd) d = p[i] * wd + d;
        /* square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha) */
        const real sa = square_avg[i] * alpha + (d * w) * d;
        square_avg[i] = sa;
        real avg;
        if (centered) {
            const real a = torch_lerp(grad_avg[i], d, w, w_complement);
            grad_avg[i] = a;
            avg = R_SQRT(sa - a * a);  /* square_avg.addcmul(grad_avg, grad_avg, value=-1) */
        } else {
            avg = R_SQRT(sa);
        }
        avg = avg + eps;
        if (has_mu) {
            const real b = buf[i] * mu + d / avg;  /* buf.mul_(momentum).addcdiv_(grad, avg) */
            buf[i] = b;
            p[i] = p[i] - b * lr;  /* param.add_(buf, alpha=-lr) */
        } else {
            p[i] = p[i] + (d * neg_lr) / avg;  /* param.addcdiv_(grad, avg, value=-lr) */
        }
    }
}

void ISA_FN(frnn_torch_rmsprop)(frnn_int n, real *restrict p, const real *restrict g,
                                real *restrict square_avg, real *restrict buf,
                                real *restrict grad_avg, const FN(frnn_torch_rmsprop_coef) *c) {
    switch ((c->has_weight_decay != 0) * 4 + (c->centered != 0) * 2 + (c->has_momentum != 0)) {
    case 0: rmsprop_loop(n, p, g, square_avg, buf, grad_avg, c, 0, 0, 0); break;
    case 1: rmsprop_loop(n, p, g, square_avg, buf, grad_avg, c, 0, 0, 1); break;
    case 2: rmsprop_loop(n, p, g, square_avg, buf, grad_avg, c, 0, 1, 0); break;
    case 3: rmsprop_loop(n, p, g, square_avg, buf, grad_avg, c, 0, 1, 1); break;
    case 4: rmsprop_loop(n, p, g, square_avg, buf, grad_avg, c, 1, 0, 0); break;
    case 5: rmsprop_loop(n, p, g, square_avg, buf, grad_avg, c, 1, 0, 1); break;
    case 6: rmsprop_loop(n, p, g, square_avg, buf, grad_avg, c, 1, 1, 0); break;
    default: rmsprop_loop(n, p, g, square_avg, buf, grad_avg, c, 1, 1, 1); break;
    }
}

/* weight_decay: 0 none, 1 Adam's L2 on the gradient, 2 AdamW's decoupled */
FRNN_SPECIALISE void adam_loop(frnn_int n, real *restrict p, const real *restrict g,
                               real *restrict exp_avg, real *restrict exp_avg_sq,
                               real *restrict max_exp_avg_sq, const FN(frnn_torch_adam_coef) *c,
                               const int weight_decay, const int amsgrad) {
    const real wd = c->weight_decay, decay = c->decay_factor;
    const real w1 = c->one_minus_beta1, w1_complement = (real)1 - w1;
    const real beta2 = c->beta2, w2 = c->one_minus_beta2;
    const real bc2_sqrt = c->bias_correction2_sqrt, eps = c->eps;
    const real neg_step = c->neg_step_size;
    for (frnn_int i = 0; i < n; i++) {
        real q = p[i], d = g[i];
        if (weight_decay == 2) q = q * decay;  /* AdamW: param.mul_(1 - lr * weight_decay) */
        if (weight_decay == 1) d = q * wd + d; /* Adam: grad.add(param, alpha=weight_decay) */
        const real m = torch_lerp(exp_avg[i], d, w1, w1_complement);  /* exp_avg.lerp_ */
        exp_avg[i] = m;
        /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */
        const real v = exp_avg_sq[i] * beta2 + (d * w2) * d;
        exp_avg_sq[i] = v;
        real u = v;
        if (amsgrad) {
            u = nan_maximum(max_exp_avg_sq[i], v);  /* torch.maximum(..., out=max_exp_avg_sq) */
            max_exp_avg_sq[i] = u;
        }
        const real denom = R_SQRT(u) / bc2_sqrt + eps;
        p[i] = q + (m * neg_step) / denom;  /* param.addcdiv_(exp_avg, denom, value=-step_size) */
    }
}

void ISA_FN(frnn_torch_adam)(frnn_int n, real *restrict p, const real *restrict g,
                             real *restrict exp_avg, real *restrict exp_avg_sq,
                             real *restrict max_exp_avg_sq, const FN(frnn_torch_adam_coef) *c) {
    const int weight_decay = !c->has_weight_decay ? 0 : c->decoupled ? 2 : 1;
    switch (weight_decay * 2 + (c->amsgrad != 0)) {
    case 0: adam_loop(n, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, c, 0, 0); break;
    case 1: adam_loop(n, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, c, 0, 1); break;
    case 2: adam_loop(n, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, c, 1, 0); break;
    case 3: adam_loop(n, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, c, 1, 1); break;
    case 4: adam_loop(n, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, c, 2, 0); break;
    default: adam_loop(n, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, c, 2, 1); break;
    }
}
