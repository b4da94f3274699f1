/* real.h - the dtype "template" shared by every kernel translation unit.
 *
 * Each kernel .c file is written once against `real` and compiled twice by
 * CMake: with FRNN_F64 defined (double, names ending _f64) and without it
 * (float, names ending _f32). FN(name) appends the suffix so both copies link
 * into one library. This is not a general-purpose generic-programming layer:
 * it holds the dtype, the name suffix and the one scalar helper the cells use.
 */
#ifndef FRNN_REAL_H
#define FRNN_REAL_H

#define FRNN_CAT_(a, b) a##_##b
#define FRNN_CAT(a, b) FRNN_CAT_(a, b)

#ifdef FRNN_F64
typedef double real;
#define FRNN_DTYPE f64
#else
typedef float real;
#define FRNN_DTYPE f32
#endif

#define FN(name) FRNN_CAT(name, FRNN_DTYPE)

/* C99's restrict, which MSVC spells __restrict outside its C11 mode. */
#if defined(_MSC_VER) && !defined(__clang__) && !defined(restrict) && \
    (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 199901L)
#define restrict __restrict
#endif

/* sigmoid and tanh are array kernels in activations.c, vectorised per ISA. */
/* NaN < 0 is false, so NaN propagates as it does through torch.relu. */
static inline real r_relu(real v) { return v < 0 ? (real)0 : v; }

#endif
