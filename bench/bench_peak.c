/* bench_peak.c — the denominators: this machine's FMA-loop peak (per core and all cores, at the
 * widest vector the compiler targets) and OpenBLAS sgemm GFLOP/s at the GEMM shapes SD 1.5's UNet
 * runs at 512x512 (64x64 latents), on one thread and on all. Prints a table; never pass/fail.
 * Usage: bench_peak [--quick] [--runs N] */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_common.h"
#include "kernels/kernels.h"

typedef struct { const char *what; int M, N, K; } gemm_shape;

/* C[M,N] = A[M,K] B[K,N]: the UNet's convs as GEMM (Cout, H*W, Cin*9), its linears (tokens,
 * out, in), attention's scores and ·v per head (4096 queries, head width 40). */
static const gemm_shape shapes[] = {
    {"conv 320->320 3x3 @64x64", 320, 4096, 2880},
    {"conv 640->640 3x3 @32x32", 640, 1024, 5760},
    {"conv 1280->1280 3x3 @16x16", 1280, 256, 11520},
    {"conv 1280->1280 3x3 @8x8", 1280, 64, 11520},
    {"linear 4096x320 -> 320 (attn q/k/v/out)", 4096, 320, 320},
    {"linear 4096x320 -> 2560 (GEGLU proj)", 4096, 2560, 320},
    {"linear 4096x1280 -> 320 (ff out)", 4096, 320, 1280},
    {"linear 1024x640 -> 5120 (GEGLU proj)", 1024, 5120, 640},
    {"attn q·kT 4096x4096 d40", 4096, 4096, 40},
    {"attn p·v 4096x40 k4096", 4096, 40, 4096},
};

static double gemm_gflops(const gemm_shape *s, int threads, int runs) {
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4);
    for (size_t i = 0; i < na; i++) A[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < nb; i++) B[i] = (float)(i % 5) * 0.01f;
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->M, s->N, s->K, 1.0f, A, s->K, B, s->N, 0.0f, C, s->N);
    double t[32];
    for (int r = 0; r < runs; r++) {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->M, s->N, s->K, 1.0f, A, s->K, B, s->N, 0.0f, C, s->N);
        t[r] = bench_now() - t0;
    }
    free(A); free(B); free(C);
    return 2.0 * s->M * s->N * (double)s->K / bench_median(t, runs) * 1e-9;
}

int main(int argc, char **argv) {
    int quick = 0, runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else { fprintf(stderr, "usage: bench_peak [--quick] [--runs N]\n"); return 2; }
    }
    if (runs < 1) runs = 1;
    if (runs > 32) runs = 32;
    if (quick && runs > 3) runs = 3;
    int nthr = omp_get_num_procs();
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && atoi(env) > 0) nthr = atoi(env);
    const char *core = sdc_kernels_blas_core();   /* also makes OpenBLAS use this CPU's kernels */
    long iters = quick ? 20000000L : 50000000L;
    double p1 = bench_fma_peak(1, iters, runs), pn = bench_fma_peak(nthr, iters, runs);
    printf("# bench_peak: FMA loop (%s, %d chains) and OpenBLAS sgemm (core %s); median of %d runs\n", BENCH_VNAME,
           BENCH_CHAINS, core, runs);
    if (sdc_kernels_blas_note()) printf("# note: %s\n", sdc_kernels_blas_note());
    printf("| what | 1 thread GFLOP/s | %d threads GFLOP/s |\n|---|---:|---:|\n", nthr);
    printf("| FMA loop peak | %.1f | %.1f |\n", p1, pn);
    int ns = (int)(sizeof shapes / sizeof shapes[0]);
    for (int i = 0; i < ns; i++) {
        if (quick && i != 0 && i != 2 && i != 5 && i != 8) continue;
        double g1 = gemm_gflops(&shapes[i], 1, runs), gn = gemm_gflops(&shapes[i], nthr, runs);
        printf("| sgemm %s (M=%d N=%d K=%d) | %.1f (%.0f%%) | %.1f (%.0f%%) |\n", shapes[i].what, shapes[i].M,
               shapes[i].N, shapes[i].K, g1, 100 * g1 / p1, gn, 100 * gn / pn);
    }
    printf("PEAK_GFLOPS_1T %.1f\nPEAK_GFLOPS_ALL %.1f\n", p1, pn);
    return 0;
}
