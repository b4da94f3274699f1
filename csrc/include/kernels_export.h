/* kernels_export.h - a narrow window onto the per-ISA kernels for tests.
 *
 * The cells are the public interface (fastrnn.h); this exposes the active
 * table's activation kernels alone so that tests can measure their accuracy
 * in ulps against libm over a dense grid. which: 0 sigmoid, 1 tanh,
 * 2 exp (for x <= 0: the softmax head's exp_nonpositive).
 */
#ifndef FRNN_KERNELS_EXPORT_H
#define FRNN_KERNELS_EXPORT_H
#include "fastrnn.h"
void frnn_activation_f32(int which, frnn_int n, const float *x, float *y);
void frnn_activation_f64(int which, frnn_int n, const double *x, double *y);
#endif
