/* sizes.h - internal: checked size arithmetic for every entry point.
 *
 * Every element count an entry point forms before it allocates (or before
 * it indexes a caller's array with it) goes through these, so that a size
 * no machine could hold is reported (FRNN_ERR_TOO_LARGE) instead of
 * wrapping around into a small allocation that the kernels then overrun.
 * A negative operand or an overflow gives FRNN_SIZE_INVALID, and every
 * helper passes FRNN_SIZE_INVALID through, so a whole size expression is
 * checked once, at its end. After an entry point has checked its largest
 * products this way, the index arithmetic inside the kernels (always a
 * part of one of those products) cannot overflow either.
 *
 * Not dtype-specific and not a general safe-integer library: sizes only.
 */
#ifndef FRNN_SIZES_H
#define FRNN_SIZES_H

#include <stddef.h>
#include <stdint.h>
#include "fastrnn.h"

#define FRNN_SIZE_INVALID ((frnn_int)-1)

/* GCC >= 5 and Clang have checked-arithmetic builtins; everyone else (MSVC)
 * gets the portable division test below, which gives the same answers. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_mul_overflow) && __has_builtin(__builtin_add_overflow)
#define FRNN_HAVE_OVERFLOW_BUILTINS 1
#endif
#elif defined(__GNUC__) && __GNUC__ >= 5
#define FRNN_HAVE_OVERFLOW_BUILTINS 1
#endif

/* a * b for a, b >= 0 */
static inline frnn_int frnn_size_mul(frnn_int a, frnn_int b) {
    if (a < 0 || b < 0) return FRNN_SIZE_INVALID;
#ifdef FRNN_HAVE_OVERFLOW_BUILTINS
    frnn_int product;
    return __builtin_mul_overflow(a, b, &product) ? FRNN_SIZE_INVALID : product;
#else
    return a != 0 && b > INT64_MAX / a ? FRNN_SIZE_INVALID : a * b;
#endif
}

/* a + b for a, b >= 0 */
static inline frnn_int frnn_size_add(frnn_int a, frnn_int b) {
    if (a < 0 || b < 0) return FRNN_SIZE_INVALID;
#ifdef FRNN_HAVE_OVERFLOW_BUILTINS
    frnn_int sum;
    return __builtin_add_overflow(a, b, &sum) ? FRNN_SIZE_INVALID : sum;
#else
    return b > INT64_MAX - a ? FRNN_SIZE_INVALID : a + b;
#endif
}

static inline frnn_int frnn_size_mul3(frnn_int a, frnn_int b, frnn_int c) {
    return frnn_size_mul(frnn_size_mul(a, b), c);
}

/* n elements of elem_size bytes as a byte count that malloc can be asked
 * for and that pointer differences within the block can express (both
 * size_t and ptrdiff_t); returns 0 and sets *bytes, or nonzero if n is
 * FRNN_SIZE_INVALID or the bytes do not fit. */
static inline int frnn_size_bytes(frnn_int n, size_t elem_size, size_t *bytes) {
    const uintmax_t limit = (uintmax_t)PTRDIFF_MAX < (uintmax_t)SIZE_MAX ? (uintmax_t)PTRDIFF_MAX
                                                                          : (uintmax_t)SIZE_MAX;
    if (n < 0 || elem_size == 0 || (uintmax_t)n > limit / elem_size) return 1;
    *bytes = (size_t)n * elem_size;
    return 0;
}

#endif
