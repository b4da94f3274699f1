/* dispatch.c - picks the GEMM kernels once, by CPU feature, for both dtypes.
 *
 * "Reference first, then override": every table starts as the portable
 * baseline; an ISA-specific table replaces it only if this build compiled it
 * and the running CPU (and OS) support it. The FASTRNN_ISA environment
 * variable is read by the Python layer and passed in as `request`, so tests
 * can force the baseline path.
 */
#include <stdlib.h>
#include <string.h>
#include "fastrnn.h"

int frnn_use_isa_f32(const char *isa);
int frnn_use_isa_f64(const char *isa);

static const char *active_isa = "baseline";

static int cpu_has(const char *isa) {
    if (strcmp(isa, "baseline") == 0) return 1;
#if defined(FRNN_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    if (strcmp(isa, "avx2") == 0) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
#endif
    return 0;
}

static int use(const char *isa) {
    if (!cpu_has(isa) || !frnn_use_isa_f32(isa) || !frnn_use_isa_f64(isa)) return 0;
    active_isa = isa;
    return 1;
}

const char *frnn_select_isa(const char *request) {
    /* Best first; baseline always succeeds. */
    static const char *const preference[] = {"avx2", "baseline"};
    use("baseline");
    if (request != NULL && request[0] != '\0' && strcmp(request, "auto") != 0) {
        use(request);  /* unknown or unsupported: stays baseline */
        return active_isa;
    }
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (use(preference[i])) break;
    return active_isa;
}

const char *frnn_active_isa(void) { return active_isa; }

void *frnn_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }
