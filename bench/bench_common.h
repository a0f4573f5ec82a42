/* bench_common.h — timing, medians and the FMA-loop peak shared by the bench programs
 * (static functions: each bench is one translation unit). */
#ifndef SDC_BENCH_COMMON_H
#define SDC_BENCH_COMMON_H

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

/* Wall clock by default; with bench_use_cpu_time set, the CPU time of the whole process (all
 * threads): on a machine shared with other jobs this still measures our own work. */
static int bench_use_cpu_time;

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(bench_use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench_cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double bench_median(double *v, int n) { qsort(v, (size_t)n, sizeof *v, bench_cmp_d); return v[n / 2]; }

/* 12 independent FMA chains of one vector each: enough to cover 2 FMA ports x 4-cycle latency.
 * The vectors are as wide as the kernels this process runs (sdc_kernels_isa(): a portable build
 * picks AVX-512 at run time, SDC_CPU=avx2 keeps AVX2), so "% of peak" compares like with like. */
#define BENCH_CHAINS 12
#define BENCH_FMA_LOOP(name, attr, vec, set1, fma, add, lanes)                                  \
    attr static float name(long iters, float seed) {                                            \
        vec acc[BENCH_CHAINS], m = set1(0.999999f), c = set1(seed * 1e-7f);                      \
        for (int i = 0; i < BENCH_CHAINS; i++) acc[i] = set1(seed + (float)i);                  \
        for (long it = 0; it < iters; it++)                                                     \
            for (int i = 0; i < BENCH_CHAINS; i++) acc[i] = fma(acc[i], m, c);                  \
        vec s = acc[0];                                                                         \
        for (int i = 1; i < BENCH_CHAINS; i++) s = add(s, acc[i]);                              \
        float t[lanes], r = 0.0f;                                                               \
        memcpy(t, &s, sizeof t);                                                                \
        for (int i = 0; i < lanes; i++) r += t[i];                                              \
        return r;                                                                               \
    }
BENCH_FMA_LOOP(bench_fma_loop8, __attribute__((target("avx2,fma"))), __m256, _mm256_set1_ps,
               _mm256_fmadd_ps, _mm256_add_ps, 8)
BENCH_FMA_LOOP(bench_fma_loop16, __attribute__((target("avx512f"))), __m512, _mm512_set1_ps,
               _mm512_fmadd_ps, _mm512_add_ps, 16)

static int bench_vlanes(void) { return strncmp(sdc_kernels_isa(), "AVX-512", 7) ? 8 : 16; }
#define BENCH_VLANES bench_vlanes()
#define BENCH_VNAME (BENCH_VLANES == 16 ? "AVX-512" : "AVX2")
static float bench_fma_loop(long iters, float seed) {
    return BENCH_VLANES == 16 ? bench_fma_loop16(iters, seed) : bench_fma_loop8(iters, seed);
}

/* GFLOP/s of the FMA loop on `threads` threads (each its own loop), median of runs (<= 32). */
static double bench_fma_peak(int threads, long iters, int runs) {
    double t[32];
    volatile float sink = 0.0f;
    if (runs > 32) runs = 32;
    for (int r = 0; r < runs; r++) {
        double t0 = bench_now();
        #pragma omp parallel num_threads(threads)
        {
            float v = bench_fma_loop(iters, (float)omp_get_thread_num());
            #pragma omp atomic
            sink += v;
        }
        t[r] = bench_now() - t0;
    }
    (void)sink;
    return 2.0 * BENCH_VLANES * BENCH_CHAINS * (double)iters * threads / bench_median(t, runs) * 1e-9;
}

#endif
