/* bench_bf16.c — the bf16 kernels against f32 at SD 1.5's UNet shapes (batch 2, 512x512): Linear
 * (M x K x N: tokens x in x out) through k_linear (OpenBLAS sgemm) and k_linear_bf16, Winograd
 * 3x3 convs through k_conv3x3_wino and k_conv3x3_wino_bf16; GFLOP/s by the direct count (2MKN;
 * convs 2·Cout·Cin·9·H·W·N), median of the runs. Prints a table, never pass/fail.
 * Usage: bench_bf16 [--runs N] [-t T] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_common.h"
#include "kernels/kernels.h"

#define MAX_RUNS 15

static float frand(unsigned *s) { *s = *s * 1664525u + 1013904223u; return (float)(*s >> 8) / 16777216.0f - 0.5f; }

static void lin(sdc_arena *a, int M, int K, int N, int runs) {
    unsigned s = 1;
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), *o = malloc(sizeof(float) * M * N);
    uint32_t *Wp = malloc(4 * k_linear_bf16_words(N, K));
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = frand(&s);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = frand(&s);
    k_linear_bf16_pack(Wp, w, N, K);
    double t32[MAX_RUNS], t16[MAX_RUNS];
    for (int r = 0; r < runs; r++) {   /* alternately, so that a busy machine hits both alike */
        double t0 = bench_now();
        k_linear(o, x, w, NULL, M, K, N);
        t32[r] = bench_now() - t0;
        t0 = bench_now();
        k_linear_bf16(a, o, x, Wp, NULL, M, K, N, 0);
        t16[r] = bench_now() - t0;
    }
    const double gf = 2.0 * M * K * N * 1e-9, a32 = bench_median(t32, runs), a16 = bench_median(t16, runs);
    printf("linear %5d x %5d x %5d        %8.1f %8.1f   %5.2fx\n", M, K, N, gf / a32, gf / a16, a32 / a16);
    free(x); free(w); free(o); free(Wp);
}

static void wino(sdc_arena *a, int N, int C, int H, int runs) {
    unsigned s = 2;
    const size_t ni = (size_t)N * C * H * H;
    float *x = malloc(ni * 4), *w = malloc((size_t)C * C * 9 * 4), *o = malloc(ni * 4);
    float *U = malloc(k_wino_packed_floats(C, C) * 4);
    uint32_t *Ub = malloc(k_wino_bf16_words(C, C) * 4);
    for (size_t i = 0; i < ni; i++) x[i] = frand(&s);
    for (size_t i = 0; i < (size_t)C * C * 9; i++) w[i] = frand(&s);
    k_wino_pack(U, w, C, C);
    k_wino_bf16_pack(Ub, U, C, C);
    double t32[MAX_RUNS], t16[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        double t0 = bench_now();
        k_conv3x3_wino(a, o, x, U, NULL, NULL, N, C, H, H, C);
        t32[r] = bench_now() - t0;
        t0 = bench_now();
        k_conv3x3_wino_bf16(a, o, x, Ub, NULL, NULL, N, C, H, H, C);
        t16[r] = bench_now() - t0;
    }
    const double gf = 2.0 * C * C * 9 * H * H * N * 1e-9, a32 = bench_median(t32, runs), a16 = bench_median(t16, runs);
    printf("wino 3x3 b%d %4d ch %3dx%-3d        %8.1f %8.1f   %5.2fx\n", N, C, H, H, gf / a32, gf / a16, a32 / a16);
    free(x); free(w); free(o); free(U); free(Ub);
}

int main(int argc, char **argv) {
    int runs = 5, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--runs N] [-t T]\n", argv[0]); return 2; }
    }
    if (runs < 1 || runs > MAX_RUNS) runs = 5;
    (void)bench_fma_peak;   /* bench_common.h's peak loop: not used here */
    sdc_kernels_set_threads(threads);
    sdc_arena a;
    sdc_arena_init(&a, 0);
    printf("bench_bf16: %d threads, median of %d runs; bf16 path %s; OpenBLAS core %s\n", sdc_kernels_get_threads(),
           runs, k_bf16_path_name(), sdc_kernels_blas_core());
    printf("%-36s %8s %8s   %6s\n", "shape (direct-count GFLOP/s)", "f32", "bf16", "speedup");
    static const int L[][3] = {{8192, 320, 960}, {8192, 320, 320}, {8192, 320, 2560}, {8192, 1280, 320},
                               {4096, 1280, 1280}, {2048, 640, 1920}, {2048, 5120, 1280}, {154, 768, 640}};
    for (size_t i = 0; i < sizeof L / sizeof *L; i++) lin(&a, L[i][0], L[i][1], L[i][2], runs);
    static const int W[][3] = {{2, 320, 64}, {2, 640, 32}, {2, 1280, 16}};
    for (size_t i = 0; i < sizeof W / sizeof *W; i++) wino(&a, W[i][0], W[i][1], W[i][2], runs);
    sdc_arena_free(&a);
    return 0;
}
