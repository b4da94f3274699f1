/* tile.h - internal: the GEMM micro-kernel's tile shape for the ISA being
 * compiled (gemm.c uses it; table.c publishes MR and NR in the kernel
 * table, so that thread splits can cut on tile and panel boundaries).
 *
 * Tile shape per ISA: MR x NV vectors of accumulators, sized so they plus
 * the NV B vectors and one broadcast fit the register file (16 ymm for
 * AVX2: 6x2 + 2 + 1; 32 zmm for AVX-512: 8x2 + 2 + 1) and the FMA units,
 * not the load ports, are the limit.
 *
 * Vectors are GCC/Clang vector extensions sized to the ISA; other compilers
 * (MSVC) get VL = 1 and the same loops in scalar form, with the same tile
 * height for the baseline table.
 */
#ifndef FRNN_TILE_H
#define FRNN_TILE_H

#include "runtime/real.h"

#if defined(__GNUC__)
/* FRNN_EMULATE_AVX512 (a test build, CMakeLists.txt): the avx512 table's
 * shapes on AVX2 instructions, each 64-byte vector done in two halves. */
#if defined(__AVX512F__) || defined(FRNN_EMULATE_AVX512)
#define VBYTES 64
#define MR 8
#elif defined(__AVX2__)
#define VBYTES 32
#define MR 6
#else
#define VBYTES 16
#define MR 4
#endif
typedef real vreal __attribute__((vector_size(VBYTES)));
#define VL ((frnn_int)(VBYTES / sizeof(real)))
#define VZERO ((vreal){0})
#define NV 2
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
typedef real vreal;
#define VL ((frnn_int)1)
#define VZERO ((real)0)
#define MR 4
#define NV 8
#if defined(_MSC_VER)
#define ALWAYS_INLINE __forceinline
#else
#define ALWAYS_INLINE inline
#endif
#endif
#define NR (NV * VL) /* columns per tile and per packed panel */

#endif
