/* bench_kernels.c — per-kernel speed at SD 1.5's real sizes: conv2d for every distinct shape of
 * the UNet at 64x64 latents (batch 2, as a guided step runs it) and of the VAE decoder at 512x512,
 * attention at each level's self/cross shapes, group norm (+SiLU) and GEGLU. GFLOP/s (direct
 * method FLOPs: conv 2·N·Cout·Ho·Wo·Cin·kh·kw, attention 4·B·H·Lq·Lk·D) and % of the FMA-loop peak
 * on all threads, median of N runs; the memory-bound kernels as GB/s. Prints tables, never fails.
 * Usage: bench_kernels [--quick] [--runs N] [--only conv|attn|norm] [--cpu-time] [--threads N]
 * --cpu-time times by process CPU time (for A/B comparisons on a busy machine; with T threads
 * the rates are then per core-second, compared against the one-thread peak).
 * The UNet/VAE sums weight each shape by how often the graph runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_common.h"
#include "kernels/kernels.h"

typedef struct { int N, Cin, Cout, H, W, k, stride, count; } conv_shape;
#define BENCH_WINO_MIN_C 16   /* the models' rule for Winograd (narrower convs stay direct) */

#define MAX_SHAPES 64
typedef struct { conv_shape s[MAX_SHAPES]; int n; } shape_list;

static void add_conv(shape_list *l, int N, int Cin, int Cout, int H, int k, int stride) {
    for (int i = 0; i < l->n; i++) {
        conv_shape *c = &l->s[i];
        if (c->N == N && c->Cin == Cin && c->Cout == Cout && c->H == H && c->k == k && c->stride == stride) {
            c->count++;
            return;
        }
    }
    if (l->n < MAX_SHAPES) l->s[l->n++] = (conv_shape){N, Cin, Cout, H, H, k, stride, 1};
}

static void add_resblock(shape_list *l, int N, int cin, int cout, int size) {
    add_conv(l, N, cin, cout, size, 3, 1);
    add_conv(l, N, cout, cout, size, 3, 1);
    if (cin != cout) add_conv(l, N, cin, cout, size, 1, 1);
}

/* SD 1.5 UNet: 320 channels x (1,2,4,4), 2 res blocks down, 3 up, transformers (conv proj_in /
 * proj_out) on levels 0-2 and the middle; latent size `lat`, batch N. */
static void unet_convs(shape_list *l, int N, int lat) {
    static const int mult[4] = {1, 2, 4, 4};
    int skips[16], ns = 0, cur = 320, size = lat;
    add_conv(l, N, 4, 320, size, 3, 1);
    skips[ns++] = cur;
    for (int i = 0; i < 4; i++) {
        int out = 320 * mult[i];
        for (int r = 0; r < 2; r++) {
            add_resblock(l, N, cur, out, size);
            if (i < 3) { add_conv(l, N, out, out, size, 1, 1); add_conv(l, N, out, out, size, 1, 1); }
            cur = out;
            skips[ns++] = cur;
        }
        if (i < 3) { add_conv(l, N, cur, cur, size, 3, 2); size /= 2; skips[ns++] = cur; }
    }
    add_resblock(l, N, cur, cur, size);
    add_conv(l, N, cur, cur, size, 1, 1); add_conv(l, N, cur, cur, size, 1, 1);
    add_resblock(l, N, cur, cur, size);
    for (int i = 3; i >= 0; i--) {
        int out = 320 * mult[i];
        for (int r = 0; r < 3; r++) {
            add_resblock(l, N, cur + skips[--ns], out, size);
            if (i < 3) { add_conv(l, N, out, out, size, 1, 1); add_conv(l, N, out, out, size, 1, 1); }
            cur = out;
        }
        if (i > 0) { size *= 2; add_conv(l, N, cur, cur, size, 3, 1); }
    }
    add_conv(l, N, 320, 4, size, 3, 1);
}

/* SD 1.5 VAE decoder: 128 x (1,2,4,4), 3 res blocks per level, latent `lat` -> 8·lat pixels. */
static void vae_convs(shape_list *l, int lat) {
    static const int mult[4] = {1, 2, 4, 4};
    int size = lat, cur = 512;
    add_conv(l, 1, 4, 4, size, 1, 1);   /* post_quant_conv */
    add_conv(l, 1, 4, 512, size, 3, 1);
    add_resblock(l, 1, 512, 512, size);
    add_conv(l, 1, 512, 512, size, 1, 1);   /* mid attention q, k, v, proj as 1x1 convs */
    add_conv(l, 1, 512, 512, size, 1, 1); add_conv(l, 1, 512, 512, size, 1, 1); add_conv(l, 1, 512, 512, size, 1, 1);
    add_resblock(l, 1, 512, 512, size);
    for (int i = 3; i >= 0; i--) {
        int out = 128 * mult[i];
        for (int r = 0; r < 3; r++) { add_resblock(l, 1, cur, out, size); cur = out; }
        if (i > 0) { size *= 2; add_conv(l, 1, cur, cur, size, 3, 1); }
    }
    add_conv(l, 1, 128, 3, size, 3, 1);
}

static double conv_flops(const conv_shape *c) {
    int Ho = (c->H + 2 * (c->k / 2) - c->k) / c->stride + 1;
    return 2.0 * c->N * c->Cout * (double)Ho * Ho * c->Cin * c->k * c->k;
}

static float *filled(size_t n, float v) {
    float *p = malloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "bench_kernels: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = v * (float)((i * 2654435761u >> 7) % 1000) * 1e-3f - v * 0.5f;
    return p;
}

/* Median seconds of one conv over `runs` runs (after one warm-up): k_conv2d, or (wino) the
 * Winograd F(2x2,3x3) kernel on weights packed beforehand (as the models pack them at load). */
static double time_conv(sdc_arena *a, const conv_shape *c, int runs, int wino) {
    int pad = c->k / 2, Ho = (c->H + 2 * pad - c->k) / c->stride + 1;
    float *in = filled((size_t)c->N * c->Cin * c->H * c->W, 1.0f), *w = filled((size_t)c->Cout * c->Cin * c->k * c->k, 0.1f);
    float *b = filled((size_t)c->Cout, 1.0f), *out = filled((size_t)c->N * c->Cout * Ho * Ho, 0.0f);
    float *U = wino ? filled(k_wino_packed_floats(c->Cout, c->Cin), 0.0f) : NULL;
    if (U) k_wino_pack(U, w, c->Cout, c->Cin);
    double t[32];
    for (int r = -1; r < runs; r++) {
        double t0 = bench_now();
        if (U) k_conv3x3_wino(a, out, in, U, b, NULL, c->N, c->Cin, c->H, c->W, c->Cout);
        else k_conv2d(a, out, in, w, b, c->N, c->Cin, c->H, c->W, c->Cout, c->k, c->k, c->stride, pad, pad, pad, pad);
        if (r >= 0) t[r] = bench_now() - t0;
    }
    free(in); free(w); free(b); free(out); free(U);
    return bench_median(t, runs);
}

static void bench_convs(sdc_arena *a, const char *title, shape_list *l, int runs, double peak, int quick) {
    printf("\n## conv2d: %s (wino: Winograd F(2x2,3x3) on the same shape, for 3x3 stride-1 convs with >= %d "
           "channels; its GFLOP/s counts direct-method FLOPs, so > 100%% of peak means faster than the direct floor)\n"
           "| N | Cin | Cout | HxW | k | stride | count | ms | GFLOP/s | %% peak | wino ms | wino GFLOP/s | wino %% peak |\n"
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", title, BENCH_WINO_MIN_C);
    double tot_t = 0.0, tot_f = 0.0, best_t = 0.0;
    for (int i = 0; i < l->n; i++) {
        conv_shape *c = &l->s[i];
        double s = time_conv(a, c, runs, 0), f = conv_flops(c), sw = 0.0;
        int wino = c->k == 3 && c->stride == 1 && c->Cin >= BENCH_WINO_MIN_C && c->Cout >= BENCH_WINO_MIN_C;
        if (wino) sw = time_conv(a, c, runs, 1);
        tot_t += s * c->count;
        tot_f += f * c->count;
        best_t += (wino && sw < s ? sw : s) * c->count;
        printf("| %d | %d | %d | %dx%d | %d | %d | %d | %.2f | %.1f | %.0f%% |", c->N, c->Cin, c->Cout, c->H, c->W,
               c->k, c->stride, c->count, s * 1e3, f / s * 1e-9, 100.0 * f / s * 1e-9 / peak);
        if (wino) printf(" %.2f | %.1f | %.0f%% |\n", sw * 1e3, f / sw * 1e-9, 100.0 * f / sw * 1e-9 / peak);
        else printf(" | | |\n");
        fflush(stdout);
    }
    printf("%s: all convs of the graph %s %.1f GFLOP in %.3f s: %.1f GFLOP/s, %.0f%% of peak; "
           "the faster of direct/wino per shape: %.3f s, %.0f%% of peak\n", title,
           quick ? "(quick subset)" : "", tot_f * 1e-9, tot_t, tot_f / tot_t * 1e-9, 100.0 * tot_f / tot_t * 1e-9 / peak,
           best_t, 100.0 * tot_f / best_t * 1e-9 / peak);
}

typedef struct { const char *what; int B, Lq, Lk, H, D, count; } att_shape;

static void bench_attention(sdc_arena *a, int runs, double peak, int quick) {
    static const att_shape shapes[] = {
        {"UNet self 64x64", 2, 4096, 4096, 8, 40, 5},   {"UNet cross 64x64", 2, 4096, 77, 8, 40, 5},
        {"UNet self 32x32", 2, 1024, 1024, 8, 80, 5},   {"UNet cross 32x32", 2, 1024, 77, 8, 80, 5},
        {"UNet self 16x16", 2, 256, 256, 8, 160, 5},    {"UNet cross 16x16", 2, 256, 77, 8, 160, 5},
        {"UNet self 8x8 (mid)", 2, 64, 64, 8, 160, 1},  {"UNet cross 8x8 (mid)", 2, 64, 77, 8, 160, 1},
        {"VAE mid 64x64", 1, 4096, 4096, 1, 512, 1},    {"CLIP causal", 2, 77, 77, 12, 64, 12},
    };
    printf("\n## attention (count = uses per UNet forward / VAE decode / text encode)\n"
           "| shape | B | Lq | Lk | heads | D | count | ms | GFLOP/s | %% peak |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double tot_t = 0.0, tot_f = 0.0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const att_shape *s = &shapes[i];
        if (quick && i != 0 && i != 1) continue;
        int HD = s->H * s->D;
        float *q = filled((size_t)s->B * s->Lq * HD, 1.0f), *k = filled((size_t)s->B * s->Lk * HD, 1.0f);
        float *v = filled((size_t)s->B * s->Lk * HD, 1.0f), *o = filled((size_t)s->B * s->Lq * HD, 0.0f);
        double t[32];
        int causal = !strncmp(s->what, "CLIP", 4);
        for (int r = -1; r < runs; r++) {
            double t0 = bench_now();
            k_attention(a, o, q, HD, k, HD, v, HD, s->B, s->Lq, s->Lk, s->H, s->D, causal);
            if (r >= 0) t[r] = bench_now() - t0;
        }
        double sec = bench_median(t, runs), f = 4.0 * s->B * s->H * (double)s->Lq * s->Lk * s->D;
        if (!strncmp(s->what, "UNet", 4)) { tot_t += sec * s->count; tot_f += f * s->count; }
        printf("| %s | %d | %d | %d | %d | %d | %d | %.2f | %.1f | %.0f%% |\n", s->what, s->B, s->Lq, s->Lk, s->H,
               s->D, s->count, sec * 1e3, f / sec * 1e-9, 100.0 * f / sec * 1e-9 / peak);
        fflush(stdout);
        free(q); free(k); free(v); free(o);
    }
    if (tot_t > 0)
        printf("UNet attention%s: %.1f GFLOP in %.3f s: %.1f GFLOP/s, %.0f%% of peak\n", quick ? " (quick subset)" : "",
               tot_f * 1e-9, tot_t, tot_f / tot_t * 1e-9, 100.0 * tot_f / tot_t * 1e-9 / peak);
}

static void bench_norms(int runs, int quick) {
    static const struct { const char *what; int N, C, HW; } gn[] = {
        {"UNet 320 @64x64", 2, 320, 4096}, {"UNet 640 @32x32", 2, 640, 1024}, {"UNet 1280 @16x16", 2, 1280, 256},
        {"VAE 512 @128x128", 1, 512, 16384}, {"VAE 256 @256x256", 1, 256, 65536}, {"VAE 128 @512x512", 1, 128, 262144},
    };
    static const struct { const char *what; int M, F; } gg[] = {
        {"UNet 64x64 (B=2)", 8192, 1280}, {"UNet 32x32 (B=2)", 2048, 2560}, {"UNet 16x16 (B=2)", 512, 5120},
    };
    printf("\n## group norm (32 groups) + SiLU, GEGLU (memory-bound: GB/s of bytes read + written)\n"
           "| kernel | shape | ms | GB/s |\n|---|---|---:|---:|\n");
    for (size_t i = 0; i < sizeof gn / sizeof gn[0]; i++) {
        if (quick && i != 0 && i != 5) continue;
        size_t n = (size_t)gn[i].N * gn[i].C * gn[i].HW;
        float *x = filled(n, 2.0f), *g = filled((size_t)gn[i].C, 1.0f), *b = filled((size_t)gn[i].C, 1.0f);
        double t[32];
        for (int r = -1; r < runs; r++) {
            double t0 = bench_now();
            k_group_norm(x, x, g, b, gn[i].N, gn[i].C, gn[i].HW, 32, 1e-5f, 1);
            if (r >= 0) t[r] = bench_now() - t0;
        }
        double s = bench_median(t, runs);
        printf("| group_norm+silu | %s | %.2f | %.1f |\n", gn[i].what, s * 1e3, 8.0 * n / s * 1e-9);
        fflush(stdout);
        free(x); free(g); free(b);
    }
    for (size_t i = 0; i < sizeof gg / sizeof gg[0]; i++) {
        if (quick && i != 0) continue;
        size_t n = (size_t)gg[i].M * gg[i].F;
        float *in = filled(2 * n, 3.0f), *out = filled(n, 0.0f);
        double t[32];
        for (int r = -1; r < runs; r++) {
            double t0 = bench_now();
            k_geglu(out, in, gg[i].M, gg[i].F);
            if (r >= 0) t[r] = bench_now() - t0;
        }
        double s = bench_median(t, runs);
        printf("| geglu | %s M=%d F=%d | %.2f | %.1f |\n", gg[i].what, gg[i].M, gg[i].F, s * 1e3, 12.0 * n / s * 1e-9);
        fflush(stdout);
        free(in); free(out);
    }
}

int main(int argc, char **argv) {
    int quick = 0, runs = 5;
    const char *only = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--cpu-time")) bench_use_cpu_time = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else { fprintf(stderr, "usage: bench_kernels [--quick] [--runs N] [--only conv|attn|norm] [--cpu-time] [--threads N]\n"); return 2; }
    }
    if (quick && runs > 3) runs = 3;
    if (runs < 1) runs = 1;
    if (runs > 32) runs = 32;
    sdc_kernels_set_threads(threads);
    int nthr = sdc_kernels_get_threads();
    double peak = bench_use_cpu_time ? bench_fma_peak(1, 20000000L, 3) : bench_fma_peak(nthr, 20000000L, 3);
    printf("# bench_kernels: %d threads, OpenBLAS core %s, FMA-loop peak %.1f GFLOP/s (%s), median of %d runs%s%s\n",
           nthr, sdc_kernels_blas_core(), peak, BENCH_VNAME, runs, quick ? ", quick subset" : "",
           bench_use_cpu_time ? ", CPU time (rates per core-second)" : "");
    if (sdc_kernels_blas_note()) printf("# note: %s\n", sdc_kernels_blas_note());
    sdc_arena a;
    sdc_arena_init(&a, (size_t)64 << 20);
    if (!only || !strcmp(only, "conv")) {
        shape_list unet = {0}, vae = {0};
        unet_convs(&unet, 2, 64);
        vae_convs(&vae, 64);
        if (quick) {   /* the biggest UNet shapes and one VAE shape at full resolution */
            shape_list q1 = {0}, q2 = {0};
            for (int i = 0; i < unet.n; i++)
                if ((unet.s[i].Cin == 320 && unet.s[i].Cout == 320 && unet.s[i].H == 64) ||
                    (unet.s[i].Cin == 1280 && unet.s[i].Cout == 1280 && unet.s[i].H == 16))
                    q1.s[q1.n++] = unet.s[i];
            for (int i = 0; i < vae.n; i++)
                if (vae.s[i].Cin == 128 && vae.s[i].Cout == 128 && vae.s[i].H == 512) q2.s[q2.n++] = vae.s[i];
            unet = q1;
            vae = q2;
        }
        bench_convs(&a, "UNet 64x64 latent, batch 2", &unet, runs, peak, quick);
        bench_convs(&a, "VAE decoder 512x512", &vae, runs, peak, quick);
    }
    if (!only || !strcmp(only, "attn")) bench_attention(&a, runs, peak, quick);
    if (!only || !strcmp(only, "norm")) bench_norms(runs, quick);
    printf("\narena scratch peak: %.1f MiB\n", a.peak / 1048576.0);
    sdc_arena_free(&a);
    return 0;
}
