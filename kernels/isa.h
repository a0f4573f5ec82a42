/* isa.h — the kernels' instruction-set variants (internal to kernels/; the first include of the
 * files with vector code: activ.c, norm.c, attention.c, conv.c, winograd.c).
 *
 * A portable build (the default on x86-64) compiles every file for AVX2+FMA+F16C, the baseline
 * it needs to run, and defines SDC_ISA_DISPATCH. The files with vector code are compiled a second
 * time with AVX-512 (F, CD, BW, DQ, VL) and SDC_ISA_AVX512 defined: that copy's entry points are
 * named KISA_NAME(f) = f_avx512. Each entry point of the baseline starts with KISA_VOID / KISA_RET,
 * which hand the call to its _avx512 copy when kint_isa_avx512() says the CPU has AVX-512 and the
 * environment variable SDC_CPU is not "avx2". Code that does not depend on the vector width sits
 * between #if !KISA_VARIANT ... #endif and is compiled once (in the baseline).
 * -DSDC_NATIVE=ON (-march=native) and non-x86 builds compile each file once, for the build
 * machine: no variants, no dispatch (KISA_NAME(f) = f, KISA_VOID/RET do nothing).
 * A new vector entry point: define it as KISA_NAME(name) and start it with KISA_VOID/KISA_RET; a
 * function that calls across files inside the variant gets a #define below. */
#ifndef SDC_KERNELS_ISA_H
#define SDC_KERNELS_ISA_H

#if defined(SDC_ISA_AVX512)
#define KISA_VARIANT 1
#define KISA_NAME(f) f##_avx512
/* called from another variant file: the variant's own copy */
#define kint_softmax_row kint_softmax_row_avx512
#else
#define KISA_VARIANT 0
#define KISA_NAME(f) f
#endif

#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"

#if defined(SDC_ISA_DISPATCH) && !defined(SDC_ISA_AVX512)
/* void f(args): `KISA_VOID(f, args...);` first; value-returning f: `KISA_RET(f, args...);` */
#define KISA_VOID(f, ...)                                                                       \
    do {                                                                                        \
        extern __typeof__(f) f##_avx512;                                                        \
        if (kint_isa_avx512()) { f##_avx512(__VA_ARGS__); return; }                             \
    } while (0)
#define KISA_RET(f, ...)                                                                        \
    do {                                                                                        \
        extern __typeof__(f) f##_avx512;                                                        \
        if (kint_isa_avx512()) return f##_avx512(__VA_ARGS__);                                  \
    } while (0)
#else
#define KISA_VOID(f, ...) ((void)0)
#define KISA_RET(f, ...) ((void)0)
#endif

#endif
