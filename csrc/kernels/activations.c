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
 * most 3 ulp in either dtype where the result is a normal number. Where it
 * is subnormal (exp, and sigmoid, below about -87 in float / -708 in
 * double), 2^n is built with its exponent shifted up and scaled back down
 * exactly (activations.h, EXP_SHIFT) and the result rounds once into the
 * subnormals, so it falls through them to 0 like the true value,
 * monotonically, within one unit of their spacing. tanh's argument is
 * clamped where the result has saturated. NaN propagates.
 */
#include "kernels/activations.h"
#include "kernels/isa.h"


/* exp(x) for x <= 0 (the softmax's shifted logits), subnormal and then 0
 * far left like the true value. */
void ISA_FN(frnn_exp_nonpositive)(frnn_int n, const real *x, real *y) {
    for (frnn_int i = 0; i < n; i++) y[i] = frnn_exp_nonpositive1(x[i]);
}

void ISA_FN(frnn_sigmoid)(frnn_int n, const real *x, real *y) {
    for (frnn_int i = 0; i < n; i++) y[i] = frnn_sigmoid1(x[i]);
}

void ISA_FN(frnn_tanh)(frnn_int n, const real *x, real *y) {
    for (frnn_int i = 0; i < n; i++) y[i] = frnn_tanh1(x[i]);
}
