/* bench_unet.c — UNet load and forward time on a real-size file: load (f16 → f32 once, or with
 * --low-mem the f16 views kept and widened per layer), then one forward per latent size at the
 * given batch, with wall and CPU time (the machine may be shared), the arena's peak, the
 * process's RSS now and its peak RSS. --release-pages drops the file's pages after the load
 * (sdc_store_release_pages, as the pipeline does). Prints a table; never pass/fail.
 * Usage: bench_unet MODEL [--heads N | --head-dim D] [--batch B] [--sizes 64,32] [--runs R] [-t T]
 *                         [--low-mem] [--release-pages] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "models/unet.h"
#include "runtime/store.h"

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double bench_cpu(void) {   /* CPU time of the whole process, all threads */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double rss_mib(void) {     /* resident now (/proc/self/statm), MiB; -1 if unreadable */
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
        fclose(f);
    }
    return res < 0 ? -1 : res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;   /* Linux: KiB */
}

static float lcg_normalish(unsigned *s) {   /* sum of 4 uniforms, centred: cheap, deterministic */
    float a = 0;
    for (int i = 0; i < 4; i++) { *s = *s * 1664525u + 1013904223u; a += (float)(*s >> 8) / 16777216.0f; }
    return (a - 2.0f) * 1.7f;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [--heads N | --head-dim D] [--batch B] [--sizes 64,32] [--runs R] [-t T] "
                "[--low-mem] [--release-pages]\n", argv[0]);
        return 2;
    }
    sdc_unet_params p = {.num_heads = 8};
    int batch = 2, runs = 1, threads = 0, ctx_len = 77, release = 0;
    char sizes[128] = "64,32";
    for (int i = 2; i < argc; i += 2) {
        if (!strcmp(argv[i], "--low-mem")) { p.low_mem = 1; i--; continue; }
        if (!strcmp(argv[i], "--release-pages")) { release = 1; i--; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "option %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--heads")) { p.num_heads = atoi(argv[i + 1]); p.head_dim = 0; }
        else if (!strcmp(argv[i], "--head-dim")) { p.head_dim = atoi(argv[i + 1]); p.num_heads = 0; }
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--sizes")) snprintf(sizes, sizeof sizes, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (batch < 1 || runs < 1) { fprintf(stderr, "bad --batch/--runs\n"); return 2; }
    sdc_kernels_set_threads(threads);
    sdc_err e = {{0}};
    sdc_store *st = sdc_store_new();
    double t0 = bench_now();
    if (sdc_store_open(st, argv[1], NULL, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    double t1 = bench_now(), c1 = bench_cpu();
    sdc_unet *u = sdc_unet_load(st, &p, &e);
    if (!u) { fprintf(stderr, "%s\n", e.msg); return 2; }
    double t2 = bench_now(), c2 = bench_cpu();
    double rss_load = rss_mib();
    if (release) sdc_store_release_pages(st);
    const sdc_unet_info *in = sdc_unet_get_info(u);
    printf("model %s\nthreads %d  batch %d  heads %d  head_dim %d  mode %s%s\n", argv[1],
           sdc_kernels_get_threads(), batch, p.num_heads, p.head_dim, p.low_mem ? "low-mem" : "default",
           release ? " + release-pages" : "");
    printf("unet: mc %d levels %d res %d ctx %d depth %d linear_proj %d temb %d\n", in->model_channels,
           in->n_levels, in->num_res_blocks, in->context_dim, in->transformer_depth, in->linear_proj,
           in->time_embed_dim);
    printf("store open %.3f s, unet load %.3f s (cpu %.3f s), f32 weights %.0f MiB\n", t1 - t0, t2 - t1,
           c2 - c1, in->weight_bytes / 1048576.0);
    printf("RSS after load %.0f MiB%s, peak RSS after load %.0f MiB\n", rss_load,
           release ? "" : " (no release)", peak_rss_mib());
    if (release) printf("RSS after sdc_store_release_pages %.0f MiB\n", rss_mib());
    printf("%-8s %-6s %-12s %-12s %-12s %-14s %-12s %-10s\n", "latent", "batch", "forward s", "cpu s", "s/image",
           "arena peak MiB", "peak RSS MiB", "out std");
    sdc_arena a;
    sdc_arena_init(&a, 0);
    unsigned seed = 42;
    for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
        int s = atoi(tok);
        if (s <= 0) continue;
        size_t nx = (size_t)batch * in->in_channels * s * s, nc = (size_t)batch * ctx_len * in->context_dim;
        float *x = malloc(nx * 4), *y = malloc((size_t)batch * in->out_channels * s * s * 4);
        float *ctx = malloc((nc ? nc : 1) * 4), *t = malloc((size_t)batch * 4);
        for (size_t i = 0; i < nx; i++) x[i] = lcg_normalish(&seed);
        for (size_t i = 0; i < nc; i++) ctx[i] = lcg_normalish(&seed);
        for (int b = 0; b < batch; b++) t[b] = 500.0f;
        double best = 1e30, best_cpu = 0;
        a.peak = 0;
        for (int r = 0; r < runs; r++) {
            double f0 = bench_now(), fc = bench_cpu();
            if (sdc_unet_forward(u, &a, y, x, t, &(sdc_cond){.ctx = ctx, .ctx_len = ctx_len}, batch, s, s, &e)) {
                fprintf(stderr, "%s\n", e.msg);
                return 2;
            }
            double dt = bench_now() - f0;
            if (dt < best) { best = dt; best_cpu = bench_cpu() - fc; }
        }
        double sum = 0, sq = 0;
        size_t ny = (size_t)batch * in->out_channels * s * s;
        for (size_t i = 0; i < ny; i++) { sum += y[i]; sq += (double)y[i] * y[i]; }
        double sd = sqrt(fmax(0, sq / ny - (sum / ny) * (sum / ny)));
        printf("%3dx%-4d %-6d %-12.3f %-12.3f %-12.3f %-14.1f %-12.0f %-10.4f\n", s, s, batch, best, best_cpu,
               best / batch, a.peak / 1048576.0, peak_rss_mib(), sd);
        free(x); free(y); free(ctx); free(t);
    }
    printf("peak RSS %.0f MiB\n", peak_rss_mib());
    sdc_arena_free(&a);
    sdc_unet_free(u);
    sdc_store_close(st);
    return 0;
}
