/* fpenv.c - flush-to-zero / denormals-are-zero around the kernels' calls.
 *
 * Why: a state or gradient that decays geometrically (a contracting
 * recurrence, a vanishing gradient, an optimizer's moment of a parameter
 * that gets no gradient) passes through the subnormal range, and on many
 * x86 cores every multiply or FMA that reads or produces a subnormal takes a
 * microcode assist of ~100 cycles: whole steps then run 10-25x slower
 * (oneDNN's users report it). With FTZ (results below the smallest normal
 * become 0) and DAZ (subnormal inputs read as 0) such values cost nothing.
 *
 * What it is: the save / set / restore of the calling thread's control
 * register (x86: MXCSR bits FTZ 15 and DAZ 6; aarch64: FPCR bit FZ 24,
 * which does both), the process-wide policy (flush, or leave the caller's
 * mode alone) and the control word the thread pool copies onto its workers
 * for each job (threads.c), so that every thread of a call computes in the
 * same mode and results stay bitwise independent of the thread count.
 * Elsewhere (other architectures, compilers without the intrinsics) it does
 * nothing: the kernels then compute with IEEE subnormals.
 *
 * Not here: where the calls are bracketed (fastrnn/_core.pyx brackets every
 * compute call; a C user of fastrnn.h brackets its own calls, or not), the
 * x87 unit (the kernels use SSE / AVX registers only on x86-64).
 */
#include "fastrnn.h"

#include <stdint.h>

#if (defined(__x86_64__) || defined(_M_X64) || \
     ((defined(__i386__) || defined(_M_IX86)) && defined(__SSE2__)))
#include <xmmintrin.h>
#define FRNN_FPENV_X86 1
#define FLUSH_BITS 0x8040u   /* FTZ (bit 15) | DAZ (bit 6) */
#define STATUS_BITS 0x003Fu  /* the sticky exception flags, not control */
static uint64_t read_control(void) { return _mm_getcsr(); }
static void write_control(uint64_t v) { _mm_setcsr((unsigned int)v); }
#elif defined(__aarch64__) && defined(__GNUC__)
#define FRNN_FPENV_ARM64 1
#define FLUSH_BITS ((uint64_t)1 << 24) /* FZ: flushes inputs and results */
#define STATUS_BITS 0u                 /* FPCR holds control only (flags: FPSR) */
static uint64_t read_control(void) {
    uint64_t v;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
    return v;
}
static void write_control(uint64_t v) { __asm__ __volatile__("msr fpcr, %0" : : "r"(v)); }
#else
#define FLUSH_BITS 0u
#define STATUS_BITS 0u
static uint64_t read_control(void) { return 0; }
static void write_control(uint64_t v) { (void)v; }
#endif

/* 1: flush (the default); 0: leave the caller's mode as it is. Set from
 * Python before calls (FASTRNN_SUBNORMALS, fastrnn.set_flush_subnormals),
 * like the thread count: not while a kernel runs. */
static int flush_subnormals = 1;

void frnn_set_flush_subnormals(int flush) { flush_subnormals = flush != 0; }
int frnn_get_flush_subnormals(void) { return flush_subnormals; }
int frnn_fpenv_can_flush(void) { return FLUSH_BITS != 0; }

uint64_t frnn_fpenv_enter(void) {
    const uint64_t saved = read_control();
    if (flush_subnormals && (saved & FLUSH_BITS) != FLUSH_BITS) write_control(saved | FLUSH_BITS);
    return saved;
}

void frnn_fpenv_leave(uint64_t saved) {
    /* The whole saved word, the status flags included: the call leaves the
     * caller's floating-point environment exactly as it found it. */
    if (read_control() != saved) write_control(saved);
}

uint64_t frnn_fpenv_control(void) { return read_control() & ~(uint64_t)STATUS_BITS; }

void frnn_fpenv_adopt(uint64_t control) {
    /* A worker takes the caller's control bits; its own flags are its own. */
    const uint64_t now = read_control();
    if ((now & ~(uint64_t)STATUS_BITS) != control) write_control((now & STATUS_BITS) | control);
}

uint64_t frnn_fpenv_read(void) { return read_control(); }

int frnn_fpenv_write(uint64_t value) {
    const uint64_t free_bits = FLUSH_BITS | STATUS_BITS;
    if ((value & ~free_bits) != (read_control() & ~free_bits)) return -1;
    write_control(value);
    return 0;
}
