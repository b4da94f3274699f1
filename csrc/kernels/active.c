/* active.c - which kernel table is in use, per dtype, and the test window
 * onto its activation kernels and its FMA peak loop (kernels_export.h).
 *
 * Compiled once per dtype. frnn_select_isa (runtime/dispatch.c) decides;
 * this only holds the choice. Not thread-safe by design (fastrnn.h: select
 * before any kernel runs).
 */
#include <string.h>
#include "kernels/kernels.h"
#include "kernels_export.h"

static const FN(frnn_kernel_table) *active = &FRNN_CAT(FN(frnn_kernels), baseline);

const FN(frnn_kernel_table) *FN(frnn_active)(void) { return active; }

int FN(frnn_use_isa)(const char *isa) {
    if (strcmp(isa, "baseline") == 0) {
        active = &FRNN_CAT(FN(frnn_kernels), baseline);
        return 1;
    }
#if defined(FRNN_HAVE_X86_ISAS)
    if (strcmp(isa, "avx2") == 0) {
        active = &FRNN_CAT(FN(frnn_kernels), avx2);
        return 1;
    }
    if (strcmp(isa, "avx512") == 0) {
        active = &FRNN_CAT(FN(frnn_kernels), avx512);
        return 1;
    }
#endif
    return 0;
}

void FN(frnn_activation)(int which, frnn_int n, const real *x, real *y) {
    if (which == 0)
        active->sigmoid(n, x, y);
    else if (which == 1)
        active->tanh(n, x, y);
    else
        active->exp_nonpositive(n, x, y);
}

double FN(frnn_fma_peak)(frnn_int rounds, real *sink) { return active->fma_peak(rounds, sink); }
