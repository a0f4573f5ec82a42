/* bench_lora.c — what a LoRA costs at load and per step: the LoRA file read and mapped onto the
 * model (sdc_lora_set_add), then the text encoder and UNet bound with and without it (the merge
 * runs inside the binding: default mode merges into the f32 copies once, low-mem adds the deltas
 * each time a weight is widened), alternately, R times; the medians, the f32 factors the set
 * holds (the only memory a LoRA adds), the peak RSS, one text-encoder window with and without
 * (the encoder reads its weights per layer: the deltas are added each time), and the merge's
 * arithmetic alone (every delta into a zeroed weight). With --step: one guided UNet call (batch 2,
 * 64x64 latents) with and without the LoRA, alternately (low-mem: the per-call cost of adding
 * the deltas). Never pass/fail; the machine may be shared.
 * Usage: bench_lora MODEL LORA [--low-mem] [--step] [-r R] [-t T] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kernels/kernels.h"
#include "models/clip.h"
#include "models/unet.h"
#include "models/weight.h"
#include "pipeline/modelcfg.h"
#include "runtime/lora.h"
#include "runtime/store.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {   /* this process's CPU time: what a shared machine does not inflate */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: bench_lora MODEL LORA [--low-mem] [--step] [-r R] [-t T]\n"); return 2; }
    int low = 0, step = 0, R = 3, threads = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--low-mem")) low = 1;
        else if (!strcmp(argv[i], "--step")) step = 1;
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) R = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
    }
    if (R < 1 || R > 64) R = 3;
    sdc_kernels_set_threads(threads);
    sdc_err e = {{0}};
    sdc_store *st = sdc_store_new();
    if (sdc_store_open(st, argv[1], NULL, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    sdc_model_config cfg;
    if (sdc_model_config_resolve(&cfg, st, NULL, -1, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }

    double t0 = now_s();
    sdc_lora_set *set = sdc_lora_set_new();
    if (sdc_lora_set_add(set, st, argv[2], 0.8f, NULL, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    double t_read = now_s() - t0;
    printf("model %s\nLoRA %s: %zu modules, read + mapped + factors widened in %.3f s; f32 factors "
           "held: %.1f MiB\nmode: %s, %d threads\n", argv[1], argv[2], sdc_lora_set_count(set), t_read,
           sdc_lora_set_bytes(set) / 1048576.0, low ? "low-mem" : "default", threads);

    /* the merge's arithmetic alone: every module's delta added into a zero weight */
    {
        double m0 = now_s(), c0 = cpu_s(), flops = 0;
        for (size_t i = 0; i < sdc_lora_set_count(set); i++) {
            sdc_lora_mod one = *sdc_lora_set_at(set, i);
            one.next = NULL;
            float *w = calloc((size_t)one.rows * (size_t)one.cols, sizeof(float));
            if (w && sdc_weight_add_deltas(w, &one, (size_t)one.row0, (size_t)one.rows, (size_t)one.cols) == 0)
                flops += 2.0 * (double)one.rows * (double)one.cols * one.rank;
            free(w);
        }
        double dt = now_s() - m0, dc = cpu_s() - c0;
        printf("merge arithmetic CPU time: %.3f s\n", dc);
        printf("merge arithmetic alone (all modules, up@down added, incl. zeroing the buffers): %.3f s, %.1f GFLOP\n",
               dt, flops * 1e-9);
    }
    double tc[2][64], tu[2][64], ts[2][64], te[2][64], cu[2][64], cs[2][64], ce[2][64];
    int C = 0, ok = 1;
    for (int r = 0; r < R && ok; r++)
        for (int with = 0; with < 2 && ok; with++) {
            sdc_lora_set *s = with ? set : NULL;
            sdc_clip_params cp = {.n_heads = cfg.text_heads, .act = cfg.text_act, .low_mem = 1, .lora = s};
            sdc_unet_params up = {.num_heads = cfg.unet_heads, .head_dim = cfg.unet_head_dim, .low_mem = low, .lora = s};
            double a = now_s();
            sdc_clip *c = sdc_clip_load(st, &cp, &e);
            double b = now_s(), bc = cpu_s();
            sdc_unet *u = c ? sdc_unet_load(st, &up, &e) : NULL;
            double d = now_s();
            cu[with][r] = cpu_s() - bc;
            if (!u) { fprintf(stderr, "%s\n", e.msg); ok = 0; sdc_clip_free(c); break; }
            if (with && sdc_lora_check_used(set, &e)) { fprintf(stderr, "%s\n", e.msg); ok = 0; }
            sdc_store_release_pages(st);
            tc[with][r] = b - a;
            tu[with][r] = d - b;
            ts[with][r] = 0;
            C = sdc_clip_width(c);
            {   /* one text-encoder window (its deltas are added per layer as it is widened) */
                int32_t ids[77];
                for (int i = 0; i < 77; i++) ids[i] = i ? 320 + i : 49406;
                float *z = malloc(sizeof(float) * 77 * (size_t)C);
                sdc_arena ar;
                sdc_arena_init(&ar, (size_t)16 << 20);
                double e0 = now_s(), ec = cpu_s();
                if (sdc_clip_encode(c, &ar, ids, 77, 0, z, &e)) { fprintf(stderr, "%s\n", e.msg); ok = 0; }
                te[with][r] = now_s() - e0;
                ce[with][r] = cpu_s() - ec;
                sdc_arena_free(&ar);
                free(z);
            }
            if (step) {   /* one guided call: batch 2, 64x64 latents (512x512 pixels), 2 windows */
                const int N = 2, H = 64, W = 64, Cin = sdc_unet_get_info(u)->in_channels;
                size_t nx = (size_t)N * Cin * H * W;
                float *x = malloc(nx * 4), *out = malloc(nx * 4), *ctx = calloc((size_t)N * 77 * C, 4), t2[2] = {500, 500};
                for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
                sdc_arena ar;
                sdc_arena_init(&ar, (size_t)64 << 20);
                sdc_cond cond = {.ctx = ctx, .ctx_len = 77};
                double s0 = now_s(), sc = cpu_s();
                if (sdc_unet_forward(u, &ar, out, x, t2, &cond, N, H, W, &e)) { fprintf(stderr, "%s\n", e.msg); ok = 0; }
                ts[with][r] = now_s() - s0;
                cs[with][r] = cpu_s() - sc;
                sdc_arena_free(&ar);
                free(x); free(out); free(ctx);
            }
            sdc_unet_free(u);
            sdc_clip_free(c);
            printf("run %d %-12s text encoder %.3f s, UNet %.3f s, one text window %.3f s%s", r + 1,
                   with ? "with LoRA:" : "without:", tc[with][r], tu[with][r], te[with][r], step ? "" : "\n");
            if (step) printf(", one UNet call %.3f s\n", ts[with][r]);
            fflush(stdout);
        }
    if (ok) {
        double mc0 = median(tc[0], R), mc1 = median(tc[1], R), mu0 = median(tu[0], R), mu1 = median(tu[1], R);
        printf("median of %d: text encoder bind %.3f -> %.3f s (+%.3f), UNet bind %.3f -> %.3f s (+%.3f)\n", R,
               mc0, mc1, mc1 - mc0, mu0, mu1, mu1 - mu0);
        double ku0 = median(cu[0], R), ku1 = median(cu[1], R), ke0 = median(ce[0], R), ke1 = median(ce[1], R);
        printf("  CPU time (all threads): UNet bind %.3f -> %.3f s (+%.3f), one text window %.3f -> %.3f s (+%.3f)\n",
               ku0, ku1, ku1 - ku0, ke0, ke1, ke1 - ke0);
        double e0 = median(te[0], R), e1 = median(te[1], R);
        printf("median of %d: one text-encoder window %.3f -> %.3f s (+%.3f)\n", R, e0, e1, e1 - e0);
        if (step) {
            double s0 = median(ts[0], R), s1 = median(ts[1], R);
            printf("median of %d: one UNet call %.3f -> %.3f s (+%.3f)\n", R, s0, s1, s1 - s0);
            double k0 = median(cs[0], R), k1 = median(cs[1], R);
            printf("  CPU time (all threads): one UNet call %.3f -> %.3f s (+%.3f)\n", k0, k1, k1 - k0);
        }
        printf("LoRA load + merge: %.3f s (read/map) + %.3f s (merge in binding); extra memory: %.1f MiB of factors;"
               " peak RSS %.0f MiB\n", t_read, (mc1 - mc0) + (mu1 - mu0), sdc_lora_set_bytes(set) / 1048576.0, peak_mib());
    }
    sdc_lora_set_free(set);
    sdc_store_close(st);
    return ok ? 0 : 1;
}
