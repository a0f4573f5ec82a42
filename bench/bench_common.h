/* bench_common.h — timing, medians and the FMA-loop peak shared by the bench programs
 * (static functions: each bench is one translation unit). */
#ifndef SDC_BENCH_COMMON_H
#define SDC_BENCH_COMMON_H

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>

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

/* 12 independent FMA chains of one vector each: enough to cover 2 FMA ports x 4-cycle latency. */
#if defined(__AVX512F__)
typedef __m512 bench_vec;
#define BENCH_VLANES 16
#define BENCH_VSET1 _mm512_set1_ps
#define BENCH_VFMA _mm512_fmadd_ps
#define BENCH_VADD _mm512_add_ps
#define BENCH_VNAME "AVX-512"
static float bench_vred(__m512 v) { return _mm512_reduce_add_ps(v); }
#else
typedef __m256 bench_vec;
#define BENCH_VLANES 8
#define BENCH_VSET1 _mm256_set1_ps
#define BENCH_VFMA _mm256_fmadd_ps
#define BENCH_VADD _mm256_add_ps
#define BENCH_VNAME "AVX2"
static float bench_vred(__m256 v) { float t[8]; _mm256_storeu_ps(t, v); float s = 0; for (int i = 0; i < 8; i++) s += t[i]; return s; }
#endif
#define BENCH_CHAINS 12

static float bench_fma_loop(long iters, float seed) {
    bench_vec acc[BENCH_CHAINS], m = BENCH_VSET1(0.999999f), c = BENCH_VSET1(seed * 1e-7f);
    for (int i = 0; i < BENCH_CHAINS; i++) acc[i] = BENCH_VSET1(seed + (float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < BENCH_CHAINS; i++) acc[i] = BENCH_VFMA(acc[i], m, c);
    bench_vec s = acc[0];
    for (int i = 1; i < BENCH_CHAINS; i++) s = BENCH_VADD(s, acc[i]);
    return bench_vred(s);
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
