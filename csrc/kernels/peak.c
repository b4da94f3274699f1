/* peak.c - the FMA peak loop: the yardstick `fastrnn bench` holds the GEMM
 * against (one core's floating-point ceiling for the active ISA).
 *
 * Compiled once per (dtype, ISA) like gemm.c (isa.h), so it runs the vector
 * width and the multiply-add instructions the same table's GEMM runs, and
 * FASTRNN_ISA chooses it as it chooses every other kernel. PEAK_CHAINS
 * independent accumulator vectors each take one multiply-add per round:
 * enough chains to keep every FMA pipe busy through the FMA latency (Zen 3
 * and Skylake: 2 pipes x 4 cycles = 8 in flight; AVX-512 gets more chains
 * for its longer-latency parts and its 32 registers). The chains and the
 * two constant operands stay in registers (AVX2: 12 + 2 of the 16 ymm), so
 * the loop has no loads or stores: the FMA units alone bound it.
 *
 * The baseline table (SSE2) has no FMA instruction: there the same source
 * is a multiply and an add per lane, still counted as 2 floating-point
 * operations, which is that ISA's ceiling for the same arithmetic.
 *
 * Not a benchmark by itself: the caller times it (fastrnn.bench.timing).
 */
#include <string.h>
#include "kernels/isa.h"
#include "kernels/tile.h"

#if defined(__AVX512F__) || defined(FRNN_EMULATE_AVX512)
#define PEAK_CHAINS 24
#else
#define PEAK_CHAINS 12
#endif

/* `rounds` rounds of acc[c] = acc[c] * a + b for every chain c; returns the
 * floating-point operations done, 2 * lanes * PEAK_CHAINS * rounds (0 for
 * rounds <= 0), and stores the sum of the final accumulators in *sink, so
 * that the compiler must keep the work. a = 1/2, b = 1: every chain tends
 * to 2, so no value is ever subnormal, infinite or NaN (which could slow a
 * unit down); no chain starts at 2 either (GCC folds a chain that starts at
 * its fixed point out of the loop: with acc[c] = c, one of 12 was gone). */
double ISA_FN(frnn_fma_peak)(frnn_int rounds, real *sink) {
    vreal acc[PEAK_CHAINS];
    for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = VZERO + ((real)c + (real)0.25);
    const vreal a = VZERO + (real)0.5, b = VZERO + (real)1;
    for (frnn_int r = 0; r < rounds; r++)
        for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = acc[c] * a + b; /* contracted: one FMA */
    real total = 0;
    for (int c = 0; c < PEAK_CHAINS; c++) {
        real lanes[VL];
        memcpy(lanes, &acc[c], sizeof lanes);
        for (frnn_int l = 0; l < VL; l++) total += lanes[l];
    }
    *sink = total;
    return rounds > 0 ? 2.0 * (double)VL * PEAK_CHAINS * (double)rounds : 0.0;
}
