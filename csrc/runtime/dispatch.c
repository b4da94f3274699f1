/* dispatch.c - picks the kernel table once (GEMM, activations, gate math,
 * optimizers), by CPU feature, for both dtypes.
 *
 * "Reference first, then override": every table starts as the portable
 * baseline; an ISA-specific table replaces it only if this build compiled it
 * and the running CPU (and OS) support it. The FASTRNN_ISA environment
 * variable is read by the Python layer and passed in as `request`, so tests
 * can force the baseline path.
 *
 * The x86 tables (avx2, avx512) are built only by GCC and Clang on x86
 * (FRNN_HAVE_X86_ISAS, CMakeLists.txt), which also provide
 * __builtin_cpu_supports to detect them; any other compiler (MSVC) builds
 * the baseline table alone, so there is nothing to detect. Compiled once.
 */
#include <string.h>
#include "fastrnn.h"

int frnn_use_isa_f32(const char *isa);
int frnn_use_isa_f64(const char *isa);

static const char *active_isa = "baseline";

static int cpu_has(const char *isa) {
    if (strcmp(isa, "baseline") == 0) return 1;
#if defined(FRNN_HAVE_X86_ISAS) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (strcmp(isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#if defined(FRNN_EMULATE_AVX512)
    /* a test build: the avx512 table is AVX2 code (CMakeLists.txt) */
    if (strcmp(isa, "avx512") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    if (strcmp(isa, "avx512") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
#endif
#endif
    return 0;
}

/* The names we hand out are these literals, never the caller's string. */
static const char *const known_isas[] = {"avx512", "avx2", "baseline"};

static int use(const char *isa) {
    for (size_t i = 0; i < sizeof known_isas / sizeof known_isas[0]; i++) {
        if (strcmp(isa, known_isas[i]) != 0) continue;
        if (!cpu_has(isa) || !frnn_use_isa_f32(isa) || !frnn_use_isa_f64(isa)) return 0;
        active_isa = known_isas[i];
        return 1;
    }
    return 0;
}

const char *frnn_select_isa(const char *request) {
    use("baseline");
    if (request != NULL && request[0] != '\0' && strcmp(request, "auto") != 0) {
        use(request);  /* unknown or unsupported: stays baseline */
        return active_isa;
    }
    /* known_isas is best first; baseline always succeeds. */
    for (size_t i = 0; i < sizeof known_isas / sizeof known_isas[0]; i++)
        if (use(known_isas[i])) break;
    return active_isa;
}

const char *frnn_active_isa(void) { return active_isa; }
