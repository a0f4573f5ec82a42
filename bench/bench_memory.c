/* bench_memory.c — the memory of a whole generation, stage by stage, default vs --low-mem: the
 * pipeline's steps on one f16 file (store, text encoder, UNet, VAE bound; the file's pages
 * released as the pipeline does; two prompt windows encoded; S guided UNet steps at batch 2;
 * the VAE decode, whole or tiled), printing after each stage the RSS now, the peak RSS so far
 * (getrusage ru_maxrss: the number the targets are about), the arena's size, and wall
 * and CPU time (the machine may be shared). The peak of a 20-step run is reached in its first
 * step (every step allocates the same), so --steps 1 measures it. Never pass/fail.
 * Usage: bench_memory MODEL [--low-mem] [--size 512] [--steps 1] [--vae-tile T] [-t T] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "models/clip.h"
#include "models/unet.h"
#include "models/vae.h"
#include "pipeline/modelcfg.h"
#include "runtime/store.h"

static double now_s(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double rss_mib(void) {          /* resident now, MiB */
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
        fclose(f);
    }
    return res < 0 ? -1 : res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static double peak_mib(void) {         /* ru_maxrss: KiB on Linux */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static double t_wall, t_cpu;
static void stage(const char *what, const sdc_arena *a) {
    double w = now_s(CLOCK_MONOTONIC), c = now_s(CLOCK_PROCESS_CPUTIME_ID);
    size_t blocks = 0;
    for (const sdc_arena_block *b = a->head; b; b = b->next) blocks += b->size;
    printf("%-34s %9.2f %9.2f %10.0f %10.0f %10.0f\n", what, w - t_wall, c - t_cpu, rss_mib(),
           peak_mib(), blocks / 1048576.0);
    fflush(stdout);
    t_wall = w;
    t_cpu = c;
}

static void fill(float *x, size_t n, unsigned s) {   /* deterministic, roughly unit scale */
    for (size_t i = 0; i < n; i++) { s = s * 1664525u + 1013904223u; x[i] = ((s >> 8) / 16777216.0f - 0.5f) * 3.4f; }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [--low-mem] [--size 512] [--steps 1] [--vae-tile T] [-t T]\n", argv[0]);
        return 2;
    }
    int low = 0, size = 512, steps = 1, tile = 0, threads = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--low-mem")) { low = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "option %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--size")) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vae-tile")) tile = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t")) threads = atoi(argv[++i]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (size < 64 || size % 64 || steps < 0 || tile < 0) { fprintf(stderr, "bad --size/--steps/--vae-tile\n"); return 2; }
    sdc_kernels_set_threads(threads);
    sdc_err e = {{0}};
    sdc_arena a;
    sdc_arena_init(&a, 0);
    t_wall = now_s(CLOCK_MONOTONIC);
    t_cpu = now_s(CLOCK_PROCESS_CPUTIME_ID);
    printf("model %s\nmode %s, %dx%d, %d guided step(s) at batch 2, VAE %s, %d threads\n", argv[1],
           low ? "low-mem" : "default", size, size, steps, tile ? "tiled" : "whole", sdc_kernels_get_threads());
    if (tile) printf("VAE tiles of %d latents, overlap %d\n", tile, tile / 4);
    printf("%-34s %9s %9s %10s %10s %10s\n", "after", "wall s", "cpu s", "RSS MiB", "peak MiB", "arena MiB");

    sdc_store *st = sdc_store_new();
    sdc_model_config cfg;
    if (!st || sdc_store_open(st, argv[1], NULL, &e) || sdc_model_config_resolve(&cfg, st, NULL, -1, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    stage("store open", &a);
    sdc_clip_params cp = {.n_heads = cfg.text_heads, .act = cfg.text_act, .low_mem = low};
    sdc_clip *clip = sdc_clip_load(st, &cp, &e);
    if (!clip) { fprintf(stderr, "%s\n", e.msg); return 2; }
    stage("text encoder bound", &a);
    sdc_unet_params up = {.num_heads = cfg.unet_heads, .head_dim = cfg.unet_head_dim, .low_mem = low};
    sdc_unet *unet = sdc_unet_load(st, &up, &e);
    if (!unet) { fprintf(stderr, "%s\n", e.msg); return 2; }
    stage("UNet bound", &a);
    sdc_vae_params vp = {.low_mem = low};
    sdc_vae *vae = sdc_vae_load_ex(st, &vp, &e);
    if (!vae) { fprintf(stderr, "%s\n", e.msg); return 2; }
    stage("VAE bound", &a);
    sdc_store_release_pages(st);
    stage("sdc_store_release_pages", &a);

    const sdc_unet_info *ui = sdc_unet_get_info(unet);
    const int C = sdc_clip_width(clip), L = sdc_clip_positions(clip), f = sdc_vae_downscale(vae);
    const int h = size / f, w = size / f, E = ui->in_channels;
    int32_t ids[2][4096];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < L; i++) ids[k][i] = i == 0 ? 49406 : (k == 0 || i > 9) ? 49407 : 320 + 37 * i;
    float *ctx = malloc((size_t)2 * L * C * sizeof *ctx);
    for (int k = 0; k < 2 && ctx; k++)
        if (sdc_clip_encode(clip, &a, ids[k], L, 0, ctx + (size_t)k * L * C, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    stage("text encoded (2 windows)", &a);

    size_t nl = (size_t)E * h * w;
    float *x2 = malloc(2 * nl * sizeof *x2), *out2 = malloc(2 * nl * sizeof *out2), t2[2] = {999, 999};
    float *img = malloc((size_t)3 * size * size * sizeof *img);
    if (!ctx || !x2 || !out2 || !img) { fprintf(stderr, "out of memory\n"); return 2; }
    fill(x2, nl, 42);
    memcpy(x2 + nl, x2, nl * sizeof *x2);
    for (int s = 0; s < steps; s++) {
        if (sdc_unet_forward(unet, &a, out2, x2, t2, &(sdc_cond){.ctx = ctx, .ctx_len = L}, 2, h, w, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
        char what[64];
        snprintf(what, sizeof what, "UNet step %d (batch 2, %dx%d)", s + 1, h, w);
        stage(what, &a);
    }
    for (size_t i = 0; i < nl; i++) x2[i] *= 0.18215f;   /* roughly the scale of real latents */
    int rc = tile ? sdc_vae_decode_tiled(vae, &a, img, x2, 1, h, w, tile, tile / 4, &e)
                  : sdc_vae_decode(vae, &a, img, x2, 1, h, w, &e);
    if (rc) { fprintf(stderr, "%s\n", e.msg); return 2; }
    stage(tile ? "VAE decode (tiled)" : "VAE decode", &a);
    printf("peak RSS of the run: %.0f MiB (%.2f GB)\n", peak_mib(), peak_mib() * 1048576.0 / 1e9);
    free(ctx); free(x2); free(out2); free(img);
    sdc_arena_free(&a);
    sdc_vae_free(vae);
    sdc_unet_free(unet);
    sdc_clip_free(clip);
    sdc_store_close(st);
    return 0;
}
