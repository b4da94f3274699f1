/* activations.h - internal: the scalar forms of the vectorisable activations.
 *
 * Included by the per-ISA translation units that evaluate sigmoid / tanh /
 * exp elementwise (activations.c: over arrays; gates.c: fused into the
 * cells' gate math), so that every caller gets the same formulas and,
 * inlined into a plain loop, the compiler vectorises them for the ISA of
 * the unit. The method and its accuracy are described in activations.c.
 */
#ifndef FRNN_ACTIVATIONS_H
#define FRNN_ACTIVATIONS_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "runtime/real.h"

#ifdef FRNN_F64
typedef uint64_t rbits; /* unsigned: the exponent is built with shifts that wrap */
#define SHIFT_MAGIC 6755399441055744.0 /* 1.5 * 2^52: adding it rounds to an integer */
#define MANT_BITS 52
#define EXP_BIAS 1023
#define LN2_HI 6.93147180369123816490e-01 /* trailing zeros: n * LN2_HI is exact */
#define LN2_LO 1.90821492927058770002e-10
#define LOG2E 1.44269504088896338700e+00
#define EXP_ARG_ZERO (-746.0)  /* exp(x) < 2^-1075, half the least subnormal, below */
#define TANH_ARG_MAX 40.0      /* tanh(x) rounds to 1 beyond 19.1 */
#define EXPM1_DEGREE 14
#define R_COPYSIGN copysign
#else
typedef uint32_t rbits;
#define SHIFT_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define MANT_BITS 23
#define EXP_BIAS 127
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-06f
#define LOG2E 1.44269502163f
#define EXP_ARG_ZERO (-104.0f) /* expf(x) < 2^-150, half the least subnormal, below */
#define TANH_ARG_MAX 20.0f     /* tanhf(x) rounds to 1 beyond 9.01 */
#define EXPM1_DEGREE 8
#define R_COPYSIGN copysignf
#endif
/* exp of a non-positive argument needs 2^n for n down to EXP_ARG_ZERO / ln2,
 * below the normal exponents: it is built as 2^(n + EXP_SHIFT), a normal
 * number, times 2^-EXP_SHIFT, which is 2^n exactly wherever 2^n is normal
 * or subnormal (so the normal range is bit for bit the unshifted formula)
 * and 0 only below 2^-149 / 2^-1074, where the result is under one unit of
 * the least subnormal anyway. The product is off the critical path (it
 * runs beside the polynomial), and exp = 2^n + 2^n expm1(r) then rounds
 * once, in one fused multiply-add, into the subnormal range. */
#define EXP_SHIFT 64
/* 2^-EXP_SHIFT, exact in float and double; spelt as a quotient of exact
 * decimal literals rather than the hex float 0x1p-64, which not every C
 * compiler reads */
#define EXP_UNSHIFT (1.0 / 18446744073709551616.0)

/* 1/(k+1)!, k = 0..13: expm1(r) = r * sum_k r^k / (k+1)! */
static const double inv_factorial_shifted[14] = {
    1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0,
    1.0 / 87178291200.0};

/* x = n ln2 + r: returns 2^(n + shift) and sets *p = expm1(r). The caller
 * keeps n + shift within the normal exponents (1 - EXP_BIAS .. EXP_BIAS):
 * shift = EXP_SHIFT for EXP_ARG_ZERO <= x <= 0, shift = 0 for
 * 0 <= x <= TANH_ARG_MAX. */
static inline real frnn_reduce(real x, int shift, real *p_out) {
    const real shifted = x * (real)LOG2E + (real)SHIFT_MAGIC;
    const real n = shifted - (real)SHIFT_MAGIC; /* round(x / ln2) */
    const real r = (x - n * (real)LN2_HI) - n * (real)LN2_LO;
    /* expm1(r) by Horner; the last term is r^DEGREE / DEGREE! */
    real p = (real)inv_factorial_shifted[EXPM1_DEGREE - 1];
    for (int k = EXPM1_DEGREE - 2; k >= 0; k--) p = p * r + (real)inv_factorial_shifted[k];
    *p_out = r * p;
    /* 2^(n + shift) from its exponent bits: the low bits of `shifted` hold
     * n (two's complement below the leading 1.5); adding the bias and
     * shifting them into the exponent field drops everything above, in
     * unsigned arithmetic, where that wrap-around is defined. */
    rbits bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (rbits)((bits + (rbits)(EXP_BIAS + shift)) << MANT_BITS);
    real scale;
    memcpy(&scale, &bits, sizeof scale);
    return scale;
}

/* exp(x) for x <= 0 (or NaN, which propagates): 2^n (1 + expm1(r)), falling
 * through the subnormals to 0 (see EXP_SHIFT). */
static inline real frnn_exp_nonpositive1(real x) {
    x = x < (real)EXP_ARG_ZERO ? (real)EXP_ARG_ZERO : x; /* the result is 0 from here on */
    real p;
    const real scale = frnn_reduce(x, EXP_SHIFT, &p) * (real)EXP_UNSHIFT; /* 2^n */
    return scale + scale * p;
}

/* expm1(x) = (2^n - 1) + 2^n expm1(r) for 0 <= x <= TANH_ARG_MAX: exact
 * 2^n - 1, so no cancellation */
static inline real frnn_expm1_reduced(real x) {
    real p;
    const real scale = frnn_reduce(x, 0, &p);
    return (scale - (real)1) + scale * p;
}

/* sigmoid(v) = 1 / (1 + e) for v >= 0, e / (1 + e) for v < 0, e = exp(-|v|);
 * for v below about -87 (float) / -708 (double) that is e itself, subnormal,
 * and 0 once it is below half the least subnormal. */
static inline real frnn_sigmoid1(real v) {
    const real m = v < 0 ? v : -v; /* -|v|, NaN stays NaN */
    const real e = frnn_exp_nonpositive1(m);
    const real s = (real)1 / ((real)1 + e);
    return v < 0 ? e * s : s;
}

/* tanh(v) = sign(v) u / (u + 2), u = expm1(2|v|) */
static inline real frnn_tanh1(real v) {
    real a = v < 0 ? -v : v;
    a = a > (real)TANH_ARG_MAX / 2 ? (real)TANH_ARG_MAX / 2 : a;
    const real u = frnn_expm1_reduced(a + a);
    const real t = u / (u + (real)2);
    return R_COPYSIGN(t, v); /* odd, and tanh(-0) = -0 */
}

#endif
