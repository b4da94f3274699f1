/* kernels_export.h - a narrow window onto the per-ISA kernels for tests.
 *
 * The cells are the public interface (fastrnn.h); this exposes the active
 * table's activation kernels alone so that tests can measure their accuracy
 * in ulps against libm over a dense grid. which: 0 sigmoid, 1 tanh,
 * 2 exp (for x <= 0: the softmax head's exp_nonpositive).
 *
 * Also the active table's FMA peak loop (kernels/peak.c), for fastrnn
 * bench's one-core ceiling: `rounds` rounds of independent multiply-adds;
 * returns the floating-point operations done (2 per multiply-add per
 * lane) and stores a checksum in *sink. The caller times it.
 */
#ifndef FRNN_KERNELS_EXPORT_H
#define FRNN_KERNELS_EXPORT_H
#include "fastrnn.h"
void frnn_activation_f32(int which, frnn_int n, const float *x, float *y);
void frnn_activation_f64(int which, frnn_int n, const double *x, double *y);
double frnn_fma_peak_f32(frnn_int rounds, float *sink);
double frnn_fma_peak_f64(frnn_int rounds, double *sink);
#endif
