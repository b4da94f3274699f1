/* activations.c - vectorisable exp-based activations: sigmoid and tanh over
 * arrays.
 *
 * libm's scalar tanhf/expf calls were most of the forward time (profiled:
 * 40% in expm1f/tanhf alone), and a loop that calls libm cannot be
 * vectorised. These are branch-free loops of plain arithmetic, so the
 * compiler vectorises them in each ISA's translation unit (compiled per dtype
 * and ISA like gemm.c, and dispatched through the same table).
 *
 * Accuracy, not speed, sets the design: expm1 is computed by Cody-Waite range
 * reduction (x = n ln2 + r, |r| <= ln2/2, ln2 split in two so n ln2 is exact)
 * and a Taylor polynomial whose truncation error is below a quarter ulp
 * (degree 8 in float, 14 in double); 2^n is built in the exponent bits. Then
 *   tanh(x)    = sign(x) u / (u + 2),  u = expm1(2|x|)   (no cancellation
 *                near 0, unlike 1 - 2/(e^2x + 1))
 *   sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, e = exp(-|x|)
 * Measured against libm over a dense grid in tests/test_activations.py: at
 * most 3 ulp in either dtype. Arguments are clamped where the result has saturated (tanh)
 * or where exp would leave the normal range (sigmoid: below 1e-37 in float
 * the result is reported as ~1e-38 rather than the subnormal truth). NaN
 * propagates.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernels.h"

#ifndef FRNN_ISA
#define FRNN_ISA baseline
#endif
#define ISA_FN(name) FRNN_CAT(FN(name), FRNN_ISA)

#ifdef FRNN_F64
typedef int64_t rbits;
#define SHIFT_MAGIC 6755399441055744.0 /* 1.5 * 2^52: adding it rounds to an integer */
#define MANT_BITS 52
#define EXP_BIAS 1023
#define LN2_HI 6.93147180369123816490e-01 /* trailing zeros: n * LN2_HI is exact */
#define LN2_LO 1.90821492927058770002e-10
#define LOG2E 1.44269504088896338700e+00
#define EXP_ARG_MIN (-708.0)   /* 2^n stays a normal number */
#define TANH_ARG_MAX 40.0      /* tanh(x) rounds to 1 beyond 19.1 */
#define EXPM1_DEGREE 14
#define R_COPYSIGN copysign
#else
typedef int32_t rbits;
#define SHIFT_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define MANT_BITS 23
#define EXP_BIAS 127
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-06f
#define LOG2E 1.44269502163f
#define EXP_ARG_MIN (-87.0f)
#define TANH_ARG_MAX 20.0f     /* tanhf(x) rounds to 1 beyond 9.01 */
#define EXPM1_DEGREE 8
#define R_COPYSIGN copysignf
#endif

/* 1/(k+1)!, k = 0..13: expm1(r) = r * sum_k r^k / (k+1)! */
static const double inv_factorial_shifted[14] = {
    1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0,
    1.0 / 87178291200.0};

/* x = n ln2 + r: returns 2^n and sets *p = expm1(r), for
 * EXP_ARG_MIN <= x <= TANH_ARG_MAX (callers clamp). */
static inline real ISA_FN(reduce)(real x, real *p_out) {
    const real shifted = x * (real)LOG2E + (real)SHIFT_MAGIC;
    const real n = shifted - (real)SHIFT_MAGIC; /* round(x / ln2) */
    const real r = (x - n * (real)LN2_HI) - n * (real)LN2_LO;
    /* expm1(r) by Horner; the last term is r^DEGREE / DEGREE! */
    real p = (real)inv_factorial_shifted[EXPM1_DEGREE - 1];
    for (int k = EXPM1_DEGREE - 2; k >= 0; k--) p = p * r + (real)inv_factorial_shifted[k];
    *p_out = r * p;
    /* 2^n from its exponent bits: the low bits of `shifted` hold n. */
    rbits bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (rbits)((bits + EXP_BIAS) << MANT_BITS);
    real scale;
    memcpy(&scale, &bits, sizeof scale);
    return scale;
}

/* exp(x) = 2^n (1 + expm1(r)) */
static inline real ISA_FN(exp_reduced)(real x) {
    real p;
    const real scale = ISA_FN(reduce)(x, &p);
    return scale + scale * p;
}

/* expm1(x) = (2^n - 1) + 2^n expm1(r): exact 2^n - 1, so no cancellation */
static inline real ISA_FN(expm1_reduced)(real x) {
    real p;
    const real scale = ISA_FN(reduce)(x, &p);
    return (scale - (real)1) + scale * p;
}

/* exp(x) for x <= 0 (the softmax's shifted logits); below EXP_ARG_MIN the
 * result is that of EXP_ARG_MIN (~1e-38 / 1e-308) instead of a subnormal. */
void ISA_FN(frnn_exp_nonpositive)(frnn_int n, const real *x, real *y) {
    for (frnn_int i = 0; i < n; i++) {
        real v = x[i];
        v = v < (real)EXP_ARG_MIN ? (real)EXP_ARG_MIN : v;
        y[i] = ISA_FN(exp_reduced)(v);
    }
}

void ISA_FN(frnn_sigmoid)(frnn_int n, const real *x, real *y) {
    for (frnn_int i = 0; i < n; i++) {
        const real v = x[i];
        real m = v < 0 ? v : -v; /* -|v|, NaN stays NaN */
        m = m < (real)EXP_ARG_MIN ? (real)EXP_ARG_MIN : m;
        const real e = ISA_FN(exp_reduced)(m);
        const real s = (real)1 / ((real)1 + e);
        y[i] = v < 0 ? e * s : s;
    }
}

void ISA_FN(frnn_tanh)(frnn_int n, const real *x, real *y) {
    for (frnn_int i = 0; i < n; i++) {
        const real v = x[i];
        real a = v < 0 ? -v : v;
        a = a > (real)TANH_ARG_MAX / 2 ? (real)TANH_ARG_MAX / 2 : a;
        const real u = ISA_FN(expm1_reduced)(a + a);
        const real t = u / (u + (real)2);
        y[i] = R_COPYSIGN(t, v); /* odd, and tanh(-0) = -0 */
    }
}
