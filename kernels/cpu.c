/* cpu.c — which copy of the vector kernels runs (kernels/isa.h): decided once per process from
 * the CPU's features and the environment variable SDC_CPU ("avx2": the AVX2 kernels even where
 * the CPU has AVX-512; anything else or unset: the best the CPU runs). */
#include "kernels/kernels.h"

#include <stdlib.h>
#include <strings.h>

#include "kernels/kernels_internal.h"

#if defined(SDC_ISA_DISPATCH)
static int avx512_decide(void) {
    const char *e = getenv("SDC_CPU");
    if (e && !strcasecmp(e, "avx2")) return 0;
    __builtin_cpu_init();   /* GCC and clang: the AVX-512 bits count only when the OS saves ZMM state */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
}
#endif

int kint_isa_avx512(void) {
#if defined(SDC_ISA_DISPATCH)
    static int state = -1;   /* -1: not decided yet; every thread decides the same */
    int s = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (s < 0) {
        s = avx512_decide();
        __atomic_store_n(&state, s, __ATOMIC_RELAXED);
    }
    return s;
#else
    return 0;
#endif
}

const char *sdc_kernels_isa(void) {
#if defined(SDC_ISA_DISPATCH)
    return kint_isa_avx512() ? "AVX-512" : "AVX2";
#elif defined(__AVX512F__)
    return "AVX-512 (native)";   /* compiled for one machine's vector unit: SDC_CPU has no effect */
#elif defined(__AVX2__) && defined(__FMA__)
    return "AVX2 (native)";
#else
    return "scalar";
#endif
}
