/* real.h - the dtype "template" shared by every kernel translation unit.
 *
 * Each kernel .c file is written once against `real` and compiled twice by
 * CMake: with FRNN_F64 defined (double, names ending _f64) and without it
 * (float, names ending _f32). FN(name) appends the suffix so both copies link
 * into one library. This is not a general-purpose generic-programming layer:
 * it holds exactly the scalar math the cells need, in the precision at hand.
 */
#ifndef FRNN_REAL_H
#define FRNN_REAL_H

#include <math.h>

#define FRNN_CAT_(a, b) a##_##b
#define FRNN_CAT(a, b) FRNN_CAT_(a, b)

#ifdef FRNN_F64
typedef double real;
#define FRNN_DTYPE f64
#define r_exp exp
#define r_tanh tanh
#else
typedef float real;
#define FRNN_DTYPE f32
#define r_exp expf
#define r_tanh tanhf
#endif

#define FN(name) FRNN_CAT(name, FRNN_DTYPE)

static inline real r_sigmoid(real v) { return (real)1 / ((real)1 + r_exp(-v)); }
/* NaN < 0 is false, so NaN propagates as it does through torch.relu. */
static inline real r_relu(real v) { return v < 0 ? (real)0 : v; }

#endif
