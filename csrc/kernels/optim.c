/* optim.c - the elementwise work of a training step over the flat parameter
 * vector: clipping, the finiteness check of a window's gradient, and the
 * optimizers' updates.
 *
 * These loops touch every parameter once per window (tens of thousands of
 * elements for a min-char-rnn sized model, every 25 characters), so they are
 * compiled per dtype and ISA like gemm.c and dispatched through the same
 * table; as plain C in the baseline build they were a quarter of the
 * trainer's time. The formulas are docs/TRAINING.md's; sqrt is the IEEE
 * square root in the working precision. sum_squares accumulates in double
 * with FRNN_LANES explicit partial sums (fixed order, so deterministic).
 */
#include <math.h>
#include "kernels/isa.h"

#define FRNN_LANES 8

#ifdef FRNN_F64
#define R_SQRT sqrt
#else
#define R_SQRT sqrtf
#endif

/* g clipped to [-c, c] in place; returns whether every g[i] was finite
 * before (all_finite's test below, in the same pass: the trainer checks a
 * window gradient and clips it at once). */
int ISA_FN(frnn_clip_value)(frnn_int n, real *g, real c) {
    enum { SUMS = 4 * FRNN_LANES };
    real lane[SUMS] = {0};
    frnn_int i = 0;
    for (; i + SUMS <= n; i += SUMS)
        for (int l = 0; l < SUMS; l++) {
            const real v = g[i + l];
            lane[l] += v * 0;
            g[i + l] = v > c ? c : (v < -c ? -c : v);
        }
    real sum = 0;
    for (; i < n; i++) {
        const real v = g[i];
        sum += v * 0;
        g[i] = v > c ? c : (v < -c ? -c : v);
    }
    for (int l = 0; l < SUMS; l++) sum += lane[l];
    return sum == 0;
}

double ISA_FN(frnn_sum_squares)(frnn_int n, const real *g) {
    double lane[FRNN_LANES] = {0};
    frnn_int i = 0;
    for (; i + FRNN_LANES <= n; i += FRNN_LANES)
        for (int l = 0; l < FRNN_LANES; l++) lane[l] += (double)g[i + l] * (double)g[i + l];
    double tail = 0;
    for (; i < n; i++) tail += (double)g[i] * (double)g[i];
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7])) +
           tail;
}

/* g * 0 is +-0 for a finite g and NaN for an infinite or NaN one (IEEE;
 * only -ffinite-math-only / -ffast-math, never used here, would let the
 * compiler fold it to 0), and a sum of such terms is NaN exactly when one
 * of them is, whatever the order: so FRNN_LANES partial sums, which
 * vectorise, and one comparison at the end instead of a branch per element.
 * -fno-trapping-math means the invalid operations raise no trap. */
int ISA_FN(frnn_all_finite)(frnn_int n, const real *g) {
    /* four times the lanes: with one vector of sums the loop ran at the
     * add latency (a 6.4 MB gradient took 260 us, a quarter of the memory
     * bandwidth) */
    enum { SUMS = 4 * FRNN_LANES };
    real lane[SUMS] = {0};
    frnn_int i = 0;
    for (; i + SUMS <= n; i += SUMS)
        for (int l = 0; l < SUMS; l++) lane[l] += g[i + l] * 0;
    real sum = 0;
    for (; i < n; i++) sum += g[i] * 0;
    for (int l = 0; l < SUMS; l++) sum += lane[l];
    return sum == 0;
}

void ISA_FN(frnn_scale)(frnn_int n, real *g, real a) {
    for (frnn_int i = 0; i < n; i++) g[i] *= a;
}

void ISA_FN(frnn_sgd)(frnn_int n, real *p, const real *g, real *m, real lr, real mu,
                      int nesterov) {
    if (mu == 0) {
        for (frnn_int i = 0; i < n; i++) p[i] -= lr * g[i];
    } else if (nesterov) {
        for (frnn_int i = 0; i < n; i++) {
            m[i] = mu * m[i] + g[i];
            p[i] -= lr * (g[i] + mu * m[i]);
        }
    } else {
        for (frnn_int i = 0; i < n; i++) {
            m[i] = mu * m[i] + g[i];
            p[i] -= lr * m[i];
        }
    }
}

void ISA_FN(frnn_adagrad)(frnn_int n, real *p, const real *g, real *m, real lr, real eps) {
    for (frnn_int i = 0; i < n; i++) {
        m[i] += g[i] * g[i];
        p[i] -= lr * g[i] / R_SQRT(m[i] + eps);
    }
}

void ISA_FN(frnn_rmsprop)(frnn_int n, real *p, const real *g, real *v, real lr, real alpha,
                          real eps) {
    for (frnn_int i = 0; i < n; i++) {
        v[i] = alpha * v[i] + (1 - alpha) * g[i] * g[i];
        p[i] -= lr * g[i] / (R_SQRT(v[i]) + eps);
    }
}

/* c1 = 1 - beta1^step, c2 = 1 - beta2^step (bias corrections) */
void ISA_FN(frnn_adam)(frnn_int n, real *p, const real *g, real *m, real *v, real lr, real b1,
                       real b2, real c1, real c2, real eps) {
    for (frnn_int i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= lr * (m[i] / c1) / (R_SQRT(v[i] / c2) + eps);
    }
}
