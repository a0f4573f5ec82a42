/* bench_graphs.c — whole graphs on a full-size SD 1.5-layout file: the text encoder (one
 * 77-token window), the UNet forward at batch 2 on 32x32 and 64x64 latents, the VAE decode at
 * 512x512 (tiled and untiled), the TAESD decoder at 512x512 (--taesd FILE, default the test
 * file tests/data/taesd-random.safetensors, relative to the source tree where benches run: the published TAESD's shapes; timed even without the
 * big file) and, with --full, one 512x512 20-step euler_a generation through
 * include/sdc.h. On an SDXL file (scripts/make_fullsize_sdxl.py) the graphs are SDXL's at its
 * sizes: both text encoders on one window, the UNet (with its vector conditioning) at batch 2 on
 * 64x64 and 128x128 latents (512 and 1024 px), the VAE decode at 1024x1024, and --full a
 * 1024x1024 generation (--steps, default 20). Each graph runs in a forked child (so one graph's memory never counts in
 * another's peak RSS); prints seconds (median of the runs), effective GFLOP/s, % of this
 * machine's FMA-loop peak, peak RSS and the arena's peak. Prints a table; never pass/fail.
 *
 * FLOPs are counted by the direct method, walking the model's tensor shapes in the store:
 * conv 2·Cout·Cin·kh·kw·Ho·Wo, linear 2·M·K·N, attention 2·2·B·heads·Lq·Lk·D (= 4·B·Lq·Lk·C);
 * norms, activations, softmax and adds are not counted. Effective GFLOP/s = that count / time,
 * so a Winograd or other sub-direct algorithm can exceed the direct floor.
 *
 * Usage: bench_graphs [MODEL] [--runs N] [--quick] [--full] [--steps N] [--scaling] [-t T]
 *                     [--only text,unet,vae,taesd,scaling] [--tile T --overlap O] [--peak GFLOPS]
 *                     [--taesd FILE]
 * --quick: one run a graph (default 3); --full adds the generation (minutes); --scaling adds the
 * 64x64 UNet forward at 1 thread and at T (default all) threads, run alternately, and their
 * ratio (the thread-scaling line); --peak takes the
 * denominator from elsewhere (bench_peak's FMA line) instead of this program's FMA loop.
 * MODEL defaults to /work/big/sd15-f16.safetensors; when it is missing the program says so in
 * one line and exits 0 (the bench set runs on machines without the big file). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "kernels/kernels.h"
#include "models/clip.h"
#include "models/unet.h"
#include "models/taesd.h"
#include "models/vae.h"
#include "pipeline/modelcfg.h"
#include "pipeline/sdxl.h"
#include "runtime/store.h"
#include "sdc.h"


#define DEFAULT_MODEL "/work/big/sd15-f16.safetensors"
#define MAX_RUNS 32     /* medians of more runs than this add nothing but time */
#define CTX_LEN 77      /* one CLIP window */
#define UNET_MAX_BLOCKS 64  /* SD's UNet has 12 input and 12 output blocks */

/* ---------------------------------------------------------------------------------------------
 * FLOP accounting from the store's shapes */

typedef struct flops { double conv, linear, attn; } flops;

static double flops_total(flops f) { return f.conv + f.linear + f.attn; }

static void add_conv(flops *f, const sdc_tensor *t, double B, double HoWo) {
    f->conv += 2.0 * B * t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3] * HoWo;
}

/* A weight of out x in applied to M rows: a Linear [out,in] or a 1x1 conv [out,in,1,1]. */
static void add_linear(flops *f, const sdc_tensor *t, double M) {
    f->linear += 2.0 * M * t->shape[0] * t->shape[1];
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static int is_weight(const sdc_tensor *t) {
    return sdc_dtype_is_float(t->dtype) && (t->ndim == 2 || t->ndim == 4);
}

/* ldm UNetModel under model.diffusion_model.: batch B, latent h x w, ctx_len context tokens.
 * Each block's resolution follows the stored downsamplers (input_blocks.i.0.op) and upsamplers
 * (output_blocks.i.j.conv). Returns -1 when the file has no UNet in that layout. */
static int unet_flops(const sdc_store *st, int B, int h, int w, int L, flops *f) {
    static const char *pre = "model.diffusion_model.";
    int in_hw[UNET_MAX_BLOCKS], in_op[UNET_MAX_BLOCKS], out_hw[UNET_MAX_BLOCKS];
    int op_hw[UNET_MAX_BLOCKS];   /* a downsampler's output size (3x3, stride 2, pad 1) */
    int out_up[UNET_MAX_BLOCKS], n_in = 0, n_out = 0;
    if (!sdc_store_getf(st, "%sinput_blocks.0.0.weight", pre)) return -1;
    for (; n_in < UNET_MAX_BLOCKS; n_in++) {
        char p[128];
        snprintf(p, sizeof p, "%sinput_blocks.%d.", pre, n_in);
        if (!sdc_store_count_prefix(st, p)) break;
        in_hw[n_in] = h * w;
        in_op[n_in] = sdc_store_getf(st, "%sinput_blocks.%d.0.op.weight", pre, n_in) != NULL;
        if (in_op[n_in]) { h = (h + 1) / 2; w = (w + 1) / 2; }
        op_hw[n_in] = h * w;
    }
    const int mid_hw = h * w;
    for (; n_out < UNET_MAX_BLOCKS; n_out++) {
        char p[128];
        snprintf(p, sizeof p, "%soutput_blocks.%d.", pre, n_out);
        if (!sdc_store_count_prefix(st, p)) break;
        out_hw[n_out] = h * w;
        out_up[n_out] = 0;
        for (int j = 1; j <= 3; j++)
            if (sdc_store_getf(st, "%soutput_blocks.%d.%d.conv.weight", pre, n_out, j))
                out_up[n_out] = j;
        if (out_up[n_out]) { h *= 2; w *= 2; }
    }
    const int full_hw = h * w;
    memset(f, 0, sizeof *f);
    const size_t np = strlen(pre);
    for (size_t i = 0; i < sdc_store_count(st); i++) {
        const sdc_tensor *t = sdc_store_at(st, i);
        if (strncmp(t->name, pre, np) || !is_weight(t)) continue;
        const char *r = t->name + np;
        int blk = -1, sub = -1, hw = full_hw, conv_hw;
        if (!strncmp(r, "input_blocks.", 13) && sscanf(r + 13, "%d.%d", &blk, &sub) == 2 &&
            blk >= 0 && blk < n_in) {
            hw = in_hw[blk];
            conv_hw = in_op[blk] && ends_with(r, ".op.weight") ? op_hw[blk] : hw;
        } else if (!strncmp(r, "output_blocks.", 14) && sscanf(r + 14, "%d.%d", &blk, &sub) == 2 &&
                   blk >= 0 && blk < n_out) {
            hw = out_hw[blk];
            conv_hw = out_up[blk] == sub && ends_with(r, ".conv.weight") ? hw * 4 : hw;
        } else if (!strncmp(r, "middle_block.", 13)) {
            hw = conv_hw = mid_hw;
        } else {
            conv_hw = hw;   /* conv_in is input_blocks.0; out.2 runs at full size */
        }
        if (!strncmp(r, "time_embed.", 11) || !strncmp(r, "label_emb.", 10) || strstr(r, ".emb_layers.")) {
            add_linear(f, t, B);                                   /* one row per image */
        } else if (t->ndim == 4 && (t->shape[2] > 1 || t->shape[3] > 1)) {
            add_conv(f, t, B, conv_hw);
        } else if (strstr(r, ".attn2.to_k.") || strstr(r, ".attn2.to_v.")) {
            add_linear(f, t, (double)B * L);                      /* on the context */
        } else {
            add_linear(f, t, (double)B * hw);                     /* per pixel */
        }
        if (ends_with(r, ".attn1.to_q.weight"))
            f->attn += 4.0 * B * hw * (double)hw * t->shape[0];
        else if (ends_with(r, ".attn2.to_q.weight"))
            f->attn += 4.0 * B * hw * (double)L * t->shape[0];
    }
    return 0;
}

/* ldm Decoder (+ post_quant_conv) for one image from an h x w latent. Level i of up[] runs at
 * the size left by the upsamplers of the levels above it (up[] runs in reverse). */
static int vae_flops(const sdc_store *st, int h, int w, flops *f) {
    static const char *const pres[] = {"", "vae.", "first_stage_model."};
    const char *pre = NULL;
    for (size_t i = 0; i < 3 && !pre; i++)
        if (sdc_store_getf(st, "%sdecoder.conv_in.weight", pres[i])) pre = pres[i];
    if (!pre) return -1;
    int L = 0, lvl_hw[16];
    while (L < 16 && sdc_store_getf(st, "%sdecoder.up.%d.block.0.conv1.weight", pre, L)) L++;
    int hw = h * w;
    for (int i = L - 1; i >= 0; i--) {
        lvl_hw[i] = hw;
        if (sdc_store_getf(st, "%sdecoder.up.%d.upsample.conv.weight", pre, i)) hw *= 4;
    }
    const int lat_hw = h * w, full_hw = hw;
    memset(f, 0, sizeof *f);
    const size_t np = strlen(pre);
    for (size_t i = 0; i < sdc_store_count(st); i++) {
        const sdc_tensor *t = sdc_store_at(st, i);
        if (strncmp(t->name, pre, np) || !is_weight(t)) continue;
        const char *r = t->name + np;
        int lv;
        if (!strcmp(r, "post_quant_conv.weight") || !strncmp(r, "decoder.conv_in.", 16) ||
            !strncmp(r, "decoder.mid.", 12))
            hw = lat_hw;
        else if (sscanf(r, "decoder.up.%d.", &lv) == 1 && lv >= 0 && lv < L)
            hw = strstr(r, ".upsample.conv.") ? lvl_hw[lv] * 4 : lvl_hw[lv];
        else if (!strncmp(r, "decoder.", 8))
            hw = full_hw;
        else
            continue;                                   /* encoder, quant_conv */
        if (t->ndim == 4 && (t->shape[2] > 1 || t->shape[3] > 1)) add_conv(f, t, 1, hw);
        else add_linear(f, t, hw);
        if (ends_with(r, "decoder.mid.attn_1.q.weight"))
            f->attn += 4.0 * hw * (double)hw * t->shape[0];
    }
    return 0;
}

/* The text encoder's layers on one window of L tokens (SD 1.x CLIP or SD 2.x OpenCLIP; every
 * layer counted — SD 2.x skips its last one). */
static int clip_flops(const sdc_store *st, int L, flops *f) {
    static const char *const pres[] = {"cond_stage_model.transformer.text_model.encoder.layers.",
                                       "cond_stage_model.model.transformer.resblocks.",
                                       SDC_SDXL_TE1 "encoder.layers.", SDC_SDXL_TE2 "transformer.resblocks."};
    memset(f, 0, sizeof *f);
    int found = 0;
    for (size_t i = 0; i < sdc_store_count(st); i++) {
        const sdc_tensor *t = sdc_store_at(st, i);
        if (!is_weight(t) || t->ndim != 2) continue;
        for (int p = 0; p < 4; p++) {
            if (strncmp(t->name, pres[p], strlen(pres[p]))) continue;
            found = 1;
            add_linear(f, t, L);
            if (ends_with(t->name, ".self_attn.q_proj.weight"))
                f->attn += 4.0 * L * L * (double)t->shape[0];
            else if (ends_with(t->name, ".attn.in_proj_weight"))
                f->attn += 4.0 * L * L * (double)t->shape[1];
        }
    }
    return found ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------
 * Forked runs */

typedef struct result {
    int ok;
    double load_s, med_s, min_s;
    double rss_mib, arena_mib;
    double gflop;           /* counted by the child (TAESD: from its layers' shapes), else 0 */
    char msg[256];
} result;

typedef struct opts {
    const char *model;
    const char *taesd;      /* --taesd FILE: the TAESD decoder timed next to the VAE */
    int runs, threads, full, tile, overlap, scaling;
    int sdxl;               /* the file is SDXL (label_emb): SDXL's graphs and sizes */
    int side;               /* latent side of the larger UNet run and the VAE decode: 64 or 128 */
    int steps;              /* --full: sampling steps */
    int do_text, do_unet, do_vae, do_taesd;
    double peak;            /* --peak GFLOP/s (e.g. from bench_peak); 0: the FMA loop here */
} opts;

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

/* Runs fn(o, arg, res, n_res) in a child; the child fills up to n_res results. */
typedef void (*child_fn)(const opts *o, int arg, result *res, int n_res);

static void run_forked(const opts *o, child_fn fn, int arg, result *res, int n_res) {
    memset(res, 0, sizeof *res * n_res);
    int fd[2];
    if (pipe(fd)) { snprintf(res->msg, sizeof res->msg, "pipe: %s", strerror(errno)); return; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { snprintf(res->msg, sizeof res->msg, "fork: %s", strerror(errno)); return; }
    if (pid == 0) {
        close(fd[0]);
        sdc_kernels_set_threads(o->threads);
        fn(o, arg, res, n_res);
        ssize_t wr = write(fd[1], res, sizeof *res * n_res);
        _exit(wr == (ssize_t)(sizeof *res * n_res) ? 0 : 1);
    }
    close(fd[1]);
    size_t got = 0, want = sizeof *res * n_res;
    while (got < want) {
        ssize_t r = read(fd[0], (char *)res + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (got < want) {
        memset(res, 0, want);
        if (WIFSIGNALED(status))
            snprintf(res->msg, sizeof res->msg, "the run died (signal %d)", WTERMSIG(status));
        else
            snprintf(res->msg, sizeof res->msg, "the run ended without a result (exit %d)",
                     WEXITSTATUS(status));
    }
}

static int open_store(const opts *o, sdc_store **st, sdc_model_config *cfg, result *r) {
    sdc_err e = {{0}};
    *st = sdc_store_new();
    if (!*st || sdc_store_open(*st, o->model, NULL, &e) ||
        sdc_model_config_resolve(cfg, *st, NULL, -1, &e)) {
        snprintf(r->msg, sizeof r->msg, "%s", e.msg[0] ? e.msg : "out of memory");
        return -1;
    }
    return 0;
}

/* Median and minimum of n timings. */
static void summarise(result *r, double *t, int n) {
    r->min_s = t[0];
    for (int i = 1; i < n; i++) if (t[i] < r->min_s) r->min_s = t[i];
    r->med_s = bench_median(t, n);
    r->ok = 1;
}

/* A UNet forward's buffers at batch B, s x s latents: x [B, in_ch, s, s] and the context
 * [B, 77, context_dim] drawn from *seed, y [B, out_ch, s, s]. Returns 0, or -1 (r->msg set). */
static int unet_inputs(const sdc_unet_info *in, int B, int s, unsigned *seed, float **x, float **ctx,
                       float **y, result *r) {
    size_t nx = (size_t)B * in->in_channels * s * s, nc = (size_t)B * CTX_LEN * in->context_dim;
    *x = malloc(nx * sizeof **x);
    *ctx = malloc(nc * sizeof **ctx);
    *y = malloc((size_t)B * in->out_channels * s * s * sizeof **y);
    if (!*x || !*ctx || !*y) { snprintf(r->msg, sizeof r->msg, "out of memory"); return -1; }
    for (size_t i = 0; i < nx; i++) (*x)[i] = lcg_normalish(seed);
    for (size_t i = 0; i < nc; i++) (*ctx)[i] = lcg_normalish(seed);
    return 0;
}

/* SDXL's vector conditioning [B, adm] (a random pooled vector and 1024x1024 time ids), or NULL
 * for a UNet without label_emb. Sets r->msg and returns -1 on failure. */
static int unet_vector(const sdc_unet_info *in, int B, unsigned *seed, float **vec, result *r) {
    *vec = NULL;
    if (!in->adm_in_channels) return 0;
    const int adm = in->adm_in_channels, pooled = adm - 6 * 256;   /* SDXL: 1280 + 6 x 256 */
    float *p = malloc((size_t)adm * sizeof *p), ids[6] = {1024, 1024, 0, 0, 1024, 1024};
    *vec = malloc((size_t)B * adm * sizeof **vec);
    sdc_err e = {{0}};
    if (!p || !*vec || pooled <= 0) { snprintf(r->msg, sizeof r->msg, "out of memory or adm %d", adm); return -1; }
    for (int i = 0; i < pooled; i++) p[i] = lcg_normalish(seed);
    for (int b = 0; b < B; b++)
        if (sdc_unet_sdxl_vector(*vec + (size_t)b * adm, adm, p, pooled, ids, &e)) {
            snprintf(r->msg, sizeof r->msg, "%s", e.msg);
            return -1;
        }
    free(p);
    return 0;
}

/* --scaling: the 64x64 UNet forward (batch 2) at 1 thread and at o->threads threads, alternately
 * (run i at 1 thread, then run i at N), so that a slow spell of a shared machine hits both
 * counts alike; res[0]: 1 thread, res[1]: N threads. */
static void child_unet_scaling(const opts *o, int arg, result *res, int n_res) {
    (void)arg; (void)n_res;
    sdc_store *st;
    sdc_model_config cfg;
    sdc_err e = {{0}};
    if (open_store(o, &st, &cfg, res)) return;
    sdc_unet_params p = {.num_heads = cfg.unet_heads, .head_dim = cfg.unet_head_dim};
    sdc_unet *u = sdc_unet_load(st, &p, &e);
    if (!u) { snprintf(res->msg, sizeof res->msg, "%s", e.msg); return; }
    const int B = 2, s = 64, nthr = sdc_kernels_get_threads();
    unsigned seed = 42;
    float *x, *ctx, *y, *vec, tt[2] = {500, 500};
    if (unet_inputs(sdc_unet_get_info(u), B, s, &seed, &x, &ctx, &y, res) ||
        unet_vector(sdc_unet_get_info(u), B, &seed, &vec, res)) return;
    sdc_arena a;
    sdc_arena_init(&a, 0);
    double t[2][MAX_RUNS];
    for (int i = -1; i < o->runs; i++)                       /* run -1: warm-up at both counts */
        for (int k = 0; k < 2; k++) {
            sdc_kernels_set_threads(k ? nthr : 1);
            double t0 = bench_now();
            if (sdc_unet_forward(u, &a, y, x, tt, &(sdc_cond){.ctx = ctx, .ctx_len = CTX_LEN, .y = vec}, B, s, s, &e)) {
                snprintf(res->msg, sizeof res->msg, "%s", e.msg);
                return;
            }
            if (i >= 0) t[k][i] = bench_now() - t0;
        }
    for (int k = 0; k < 2; k++) {
        summarise(&res[k], t[k], o->runs);
        res[k].arena_mib = a.peak / 1048576.0;
        res[k].rss_mib = peak_rss_mib();
    }
}

static void child_text(const opts *o, int arg, result *r, int n_res) {
    (void)arg; (void)n_res;
    sdc_store *st;
    sdc_model_config cfg;
    sdc_err e = {{0}};
    if (open_store(o, &st, &cfg, r)) return;
    double t0 = bench_now();
    sdc_clip_params p = {.n_heads = cfg.text_heads, .act = cfg.text_act};
    sdc_sdxl_text xl = {0};
    sdc_clip *c = o->sdxl ? NULL : sdc_clip_load(st, &p, &e);
    if (o->sdxl ? sdc_sdxl_text_load(&xl, st, 0, -1, 0, -1, NULL, &e) != 0 : !c) {
        snprintf(r->msg, sizeof r->msg, "%s", e.msg);
        return;
    }
    r->load_s = bench_now() - t0;
    int32_t ids[CTX_LEN], ids2[CTX_LEN];   /* BOS, 12 words, EOS, padding: the compute is the same for any */
    ids[0] = ids2[0] = 49406;
    for (int i = 1; i < CTX_LEN; i++) ids[i] = ids2[i] = i < 13 ? 320 + 37 * i : 49407;
    for (int i = 14; i < CTX_LEN; i++) ids2[i] = 0;
    float *out = malloc((size_t)CTX_LEN * (o->sdxl ? xl.C1 + xl.C2 : sdc_clip_width(c)) * sizeof *out);
    float *pooled = malloc(((size_t)xl.P + 1) * sizeof *pooled);
    sdc_arena a;
    sdc_arena_init(&a, 0);
    double t[MAX_RUNS];
    for (int i = -1; i < o->runs; i++) {   /* i = -1: an untimed warm-up (it is short) */
        t0 = bench_now();
        if (!out || !pooled || (o->sdxl ? sdc_sdxl_encode(&xl, &a, ids, ids2, NULL, 1, 0, out, pooled, &e)
                                        : sdc_clip_encode(c, &a, ids, CTX_LEN, 0, out, &e))) {
            snprintf(r->msg, sizeof r->msg, "%s", out ? e.msg : "out of memory");
            return;
        }
        if (i >= 0) t[i] = bench_now() - t0;
    }
    summarise(r, t, o->runs);
    r->arena_mib = a.peak / 1048576.0;
    r->rss_mib = peak_rss_mib();
}

/* res[0]: 32x32, res[1]: 64x64 (in that order, so res[0]'s RSS is its own). */
static void child_unet(const opts *o, int arg, result *res, int n_res) {   /* arg 1: bf16 */
    sdc_store *st;
    sdc_model_config cfg;
    sdc_err e = {{0}};
    if (open_store(o, &st, &cfg, res)) return;
    double t0 = bench_now();
    sdc_unet_params p = {.num_heads = cfg.unet_heads, .head_dim = cfg.unet_head_dim, .bf16 = arg};
    sdc_unet *u = sdc_unet_load(st, &p, &e);
    if (!u) { snprintf(res->msg, sizeof res->msg, "%s", e.msg); return; }
    const double load = bench_now() - t0;
    const sdc_unet_info *in = sdc_unet_get_info(u);
    const int B = 2;
    unsigned seed = 42;
    for (int k = 0; k < n_res; k++) {
        result *r = &res[k];
        const int s = k == 0 ? o->side / 2 : o->side;
        float *x, *ctx, *y, *vec, tt[2] = {500, 500};
        if (unet_inputs(in, B, s, &seed, &x, &ctx, &y, r) || unet_vector(in, B, &seed, &vec, r)) return;
        sdc_arena a;
        sdc_arena_init(&a, 0);
        double t[MAX_RUNS];
        for (int i = 0; i < o->runs; i++) {
            t0 = bench_now();
            if (sdc_unet_forward(u, &a, y, x, tt, &(sdc_cond){.ctx = ctx, .ctx_len = CTX_LEN, .y = vec}, B, s, s, &e)) {
                snprintf(r->msg, sizeof r->msg, "%s", e.msg);
                return;
            }
            t[i] = bench_now() - t0;
        }
        summarise(r, t, o->runs);
        r->load_s = load;
        r->arena_mib = a.peak / 1048576.0;
        r->rss_mib = peak_rss_mib();
        sdc_arena_free(&a);
        free(x); free(y); free(ctx); free(vec);
    }
}

/* res[0]: tiled, res[1]: untiled (in that order, so the tiled run's RSS is its own). */
static void child_vae(const opts *o, int arg, result *res, int n_res) {   /* arg 1: bf16 */
    sdc_store *st;
    sdc_model_config cfg;
    sdc_err e = {{0}};
    if (open_store(o, &st, &cfg, res)) return;
    double t0 = bench_now();
    sdc_vae_params vp = {.scale = cfg.vae_scale, .shift = cfg.vae_shift, .bf16 = arg};
    sdc_vae *v = sdc_vae_load_ex(st, &vp, &e);
    if (!v) { snprintf(res->msg, sizeof res->msg, "%s", e.msg); return; }
    const double load = bench_now() - t0;
    const int h = o->side, E = sdc_vae_latent_channels(v), f = sdc_vae_downscale(v);
    float *z = malloc((size_t)E * h * h * sizeof *z);
    float *img = malloc((size_t)3 * h * f * h * f * sizeof *img);
    if (!z || !img) { snprintf(res->msg, sizeof res->msg, "out of memory"); return; }
    unsigned seed = 7;
    for (int i = 0; i < E * h * h; i++) z[i] = 0.8f * lcg_normalish(&seed);
    for (int k = 0; k < n_res; k++) {
        result *r = &res[k];
        sdc_arena a;
        sdc_arena_init(&a, 0);
        double t[MAX_RUNS];
        for (int i = 0; i < o->runs; i++) {
            t0 = bench_now();
            int rc = k == 0 ? sdc_vae_decode_tiled(v, &a, img, z, 1, h, h, o->tile, o->overlap, &e)
                            : sdc_vae_decode(v, &a, img, z, 1, h, h, &e);
            if (rc) { snprintf(r->msg, sizeof r->msg, "%s", e.msg); return; }
            t[i] = bench_now() - t0;
        }
        summarise(r, t, o->runs);
        r->load_s = load;
        r->arena_mib = a.peak / 1048576.0;
        r->rss_mib = peak_rss_mib();
        sdc_arena_free(&a);
    }
}

/* The TAESD decoder on 64x64 latents (512x512); r->gflop: its direct-method count. */
static void child_taesd(const opts *o, int arg, result *r, int n_res) {
    (void)arg; (void)n_res;
    sdc_err e = {{0}};
    sdc_store *st = sdc_store_new();
    double t0 = bench_now();
    sdc_taesd *td = st && !sdc_store_open(st, o->taesd, NULL, &e) ? sdc_taesd_load(st, &e) : NULL;
    if (!td) { snprintf(r->msg, sizeof r->msg, "%s", e.msg); return; }
    r->load_s = bench_now() - t0;
    const int h = 64, E = sdc_taesd_latent_channels(td), f = sdc_taesd_downscale(td);
    float *z = malloc((size_t)E * h * h * sizeof *z), *img = malloc((size_t)3 * h * f * h * f * sizeof *img);
    if (!z || !img) { snprintf(r->msg, sizeof r->msg, "out of memory"); return; }
    unsigned seed = 7;
    for (int i = 0; i < E * h * h; i++) z[i] = 3.0f * lcg_normalish(&seed);
    sdc_arena a;
    sdc_arena_init(&a, 0);
    if (sdc_taesd_decode(td, &a, img, z, 1, h, h, &e)) { snprintf(r->msg, sizeof r->msg, "%s", e.msg); return; }
    double t[MAX_RUNS];
    for (int i = 0; i < o->runs; i++) {
        t0 = bench_now();
        if (sdc_taesd_decode(td, &a, img, z, 1, h, h, &e)) { snprintf(r->msg, sizeof r->msg, "%s", e.msg); return; }
        t[i] = bench_now() - t0;
    }
    summarise(r, t, o->runs);
    r->gflop = sdc_taesd_decode_flops(td, h, h) * 1e-9;
    r->arena_mib = a.peak / 1048576.0;
    r->rss_mib = peak_rss_mib();
    sdc_arena_free(&a);
}

static void child_generate(const opts *o, int arg, result *r, int n_res) {
    (void)arg; (void)n_res;
    sdc_err e = {{0}};
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = o->model;
    mp.threads = o->threads;
    double t0 = bench_now();
    sdc_model *m = sdc_model_open(&mp, &e);
    if (!m) { snprintf(r->msg, sizeof r->msg, "%s", e.msg); return; }
    r->load_s = bench_now() - t0;
    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = "a lighthouse on a cliff at dawn, oil painting";
    gp.width = gp.height = 8 * o->side;
    gp.steps = o->steps;
    gp.cfg_scale = 7.5f;
    gp.seed = 42;
    uint8_t *rgb = malloc((size_t)gp.width * gp.height * 3);
    t0 = bench_now();
    if (!rgb || sdc_generate(m, &gp, rgb, &e)) {
        snprintf(r->msg, sizeof r->msg, "%s", rgb ? e.msg : "out of memory");
        return;
    }
    double t = bench_now() - t0;
    summarise(r, &t, 1);
    r->rss_mib = peak_rss_mib();
    r->arena_mib = -1;
}

/* The FMA-loop peak: the best of PEAK_TRIES short runs (a busy machine only ever lowers a run,
 * so the best is the closest to the machine's own peak). med_s: all threads, min_s: one. */
#define PEAK_TRIES 9
static void child_peak(const opts *o, int arg, result *r, int n_res) {
    (void)o; (void)arg; (void)n_res;
    int th = sdc_kernels_get_threads();
    bench_fma_peak(th, 2000000, 1);                    /* wake the cores */
    for (int i = 0; i < PEAK_TRIES; i++) {
        double all = bench_fma_peak(th, 4000000, 1), one = bench_fma_peak(1, 4000000, 1);
        if (all > r->med_s) r->med_s = all;
        if (one > r->min_s) r->min_s = one;
    }
    r->load_s = th;
    r->ok = 1;
}

/* ---------------------------------------------------------------------------------------------
 * Table */

static void row(const char *name, flops f, const result *r, double peak) {
    const double gf = flops_total(f) * 1e-9;
    if (!r->ok) { printf("%-34s %9.1f  failed: %s\n", name, gf, r->msg); return; }
    const double rate = gf > 0 ? gf / r->med_s : 0;
    char arena[32];
    if (r->arena_mib >= 0) snprintf(arena, sizeof arena, "%10.0f", r->arena_mib);
    else snprintf(arena, sizeof arena, "%10s", "-");
    printf("%-34s %9.1f %8.2f %9.3f %9.3f %9.1f %7.1f%% %9.0f %s\n", name, gf, r->load_s,
           r->med_s, r->min_s, rate, peak > 0 ? 100.0 * rate / peak : 0, r->rss_mib, arena);
}

static void split(const char *name, flops f) {
    printf("  %-32s conv %.1f + linear %.1f + attention %.1f GFLOP\n", name, f.conv * 1e-9,
           f.linear * 1e-9, f.attn * 1e-9);
}

/* The TAESD decode row (its file published at full size: the random-weight test file is one). */
static void taesd_row(const opts *o, double peak) {
    result r;
    run_forked(o, child_taesd, 0, &r, 1);
    flops f = {.conv = r.gflop * 1e9};
    char name[64];
    snprintf(name, sizeof name, "taesd decode 512x512");
    if (peak <= 0)
        printf("%-34s %9s %8s %9s %9s %9s %8s %9s %10s\n", "graph", "GFLOP", "load s", "median s", "min s",
               "GFLOP/s", "% peak", "RSS MiB", "arena MiB");
    row(name, f, &r, peak);
    if (!r.ok) return;
    printf("  (%s)\n", o->taesd);
}

/* amx_bf16 in /proc/cpuinfo's flags (reported only: sdc has no AMX kernel). */
static int cpu_has_amx(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    int yes = 0;
    while (f && !yes && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) { yes = strstr(line, " amx_bf16") != NULL; break; }
    if (f) fclose(f);
    return yes;
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s [MODEL] [--runs N] [--quick] [--full] [--scaling] [-t T] [--only text,unet,vae,taesd,scaling]"
                    " [--tile T --overlap O] [--peak GFLOPS] [--steps N] [--taesd FILE]\n", argv0);
    return 2;
}

int main(int argc, char **argv) {
    opts o = {.model = DEFAULT_MODEL, .taesd = "tests/data/taesd-random.safetensors", .runs = 3,
              .tile = 32, .overlap = 8, .do_text = 1, .do_unet = 1, .do_vae = 1, .do_taesd = 1, .side = 64, .steps = 20};
    int quick = 0, runs_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--full")) o.full = 1;
        else if (!strcmp(a, "--scaling")) o.scaling = 1;
        else if (!strcmp(a, "--runs") && i + 1 < argc) { o.runs = atoi(argv[++i]); runs_set = 1; }
        else if (!strcmp(a, "--steps") && i + 1 < argc) o.steps = atoi(argv[++i]);
        else if (!strcmp(a, "-t") && i + 1 < argc) o.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--tile") && i + 1 < argc) o.tile = atoi(argv[++i]);
        else if (!strcmp(a, "--overlap") && i + 1 < argc) o.overlap = atoi(argv[++i]);
        else if (!strcmp(a, "--peak") && i + 1 < argc) o.peak = atof(argv[++i]);
        else if (!strcmp(a, "--taesd") && i + 1 < argc) o.taesd = argv[++i];
        else if (!strcmp(a, "--only") && i + 1 < argc) {
            const char *w = argv[++i];
            o.do_text = strstr(w, "text") != NULL;
            o.do_unet = strstr(w, "unet") != NULL;
            o.do_vae = strstr(w, "vae") != NULL;
            o.do_taesd = strstr(w, "vae") != NULL || strstr(w, "taesd") != NULL;
            if (strstr(w, "scaling")) o.scaling = 1;
        } else if (a[0] != '-') o.model = a;
        else return usage(argv[0]);
    }
    if (quick && !runs_set) o.runs = 1;
    if (o.runs < 1 || o.runs > MAX_RUNS || o.tile < 1 || o.overlap < 0 || o.overlap >= o.tile ||
        o.steps < 1 || o.steps > 1000) {
        fprintf(stderr, "%s: need 1 <= --runs <= %d and 0 <= --overlap < --tile\n", argv[0],
                MAX_RUNS);
        return 2;
    }
    struct stat sb;
    if (stat(o.model, &sb) != 0) {
        printf("bench_graphs: %s not found (%s); skipped (write it with scripts/make_fullsize.py)\n",
               o.model, strerror(errno));
        if (o.do_taesd) taesd_row(&o, 0);   /* TAESD needs no big file */
        return 0;
    }

    /* FLOPs from the shapes (the parent only reads the header: no weights are touched). */
    sdc_store *st = sdc_store_new();
    sdc_err e = {{0}};
    if (!st || sdc_store_open(st, o.model, NULL, &e)) {
        fprintf(stderr, "bench_graphs: %s\n", e.msg[0] ? e.msg : "out of memory");
        return 2;
    }
    /* SDXL (label_emb): its own graphs at 1024x1024 (latent side 128) and 512x512. */
    o.sdxl = sdc_store_get(st, "model.diffusion_model.label_emb.0.0.weight") != NULL;
    o.side = o.sdxl ? 128 : 64;
    const int S = o.side, hs = S / 2;
    flops ft = {0}, fu32 = {0}, fu64 = {0}, fv = {0}, fvt = {0};
    int has_t = clip_flops(st, CTX_LEN, &ft) == 0;
    int has_u = unet_flops(st, 2, hs, hs, CTX_LEN, &fu32) == 0 &&
                unet_flops(st, 2, S, S, CTX_LEN, &fu64) == 0;
    int has_v = vae_flops(st, S, S, &fv) == 0;
    if (has_v) {   /* the tiles' own work: overlapping tiles redo the overlap */
        int k = 1, ts = S;       /* as models/vae.c tiles S latents: k tiles of ts */
        if (S > o.tile) {
            k = (S - o.overlap + (o.tile - o.overlap) - 1) / (o.tile - o.overlap);
            ts = (S + (k - 1) * o.overlap + k - 1) / k;
            k = (S - o.overlap + (ts - o.overlap) - 1) / (ts - o.overlap);
        }
        vae_flops(st, ts, ts, &fvt);
        fvt.conv *= k * k; fvt.linear *= k * k; fvt.attn *= k * k;
    }
    sdc_store_close(st);

    result pk;
    run_forked(&o, child_peak, 0, &pk, 1);
    /* The denominator: the N-thread loop, or N x the 1-thread loop when that is more (on a
     * busy machine N threads rarely get N cores at once). */
    const int nth = (int)pk.load_s;
    const double peak = o.peak > 0 ? o.peak
                      : !pk.ok ? 0 : pk.med_s > nth * pk.min_s ? pk.med_s : nth * pk.min_s;
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) { if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1; fclose(la); }

    printf("bench_graphs: %s\n", o.model);
    printf("threads %d, %d run%s a graph (median; min shown too), load average %.2f at start%s\n",
           (int)pk.load_s, o.runs, o.runs > 1 ? "s" : "", load[0],
           load[0] > 0.5 * pk.load_s + 0.5 ? " (a busy machine: times are noisy)" : "");
    printf("peak: FMA loop %s, best of %d short runs: %d threads %.1f GFLOP/s, 1 thread %.1f\n",
           BENCH_VNAME, PEAK_TRIES, nth, pk.med_s, pk.min_s);
    printf("CPU: avx512_bf16 %s, amx_bf16 %s; bf16 rows run on: %s (no AMX kernel in sdc)\n",
           k_bf16_hw() ? "yes" : "no", cpu_has_amx() ? "yes" : "no", k_bf16_path_name());
    printf("OpenBLAS core %s%s%s\n", sdc_kernels_blas_core(), sdc_kernels_blas_note() ? ": note: " : "",
           sdc_kernels_blas_note() ? sdc_kernels_blas_note() : "");
    printf("peak used for %% peak: %.1f GFLOP/s (%s)\n", peak,
           o.peak > 0 ? "--peak" : "max of the N-thread loop and N x the 1-thread loop");
    printf("FLOPs: direct method from the tensor shapes: conv 2*Cout*Cin*kh*kw*Ho*Wo, linear "
           "2*M*K*N, attention 2*2*B*heads*Lq*Lk*D; norms/activations/softmax not counted\n");
    printf("%-34s %9s %8s %9s %9s %9s %8s %9s %10s\n", "graph", "GFLOP", "load s", "median s",
           "min s", "GFLOP/s", "% peak", "RSS MiB", "arena MiB");

    char nm[2][64];
    snprintf(nm[0], sizeof nm[0], "unet forward b2 %dx%d (%d px)", hs, hs, 8 * hs);
    snprintf(nm[1], sizeof nm[1], "unet forward b2 %dx%d (%d px)", S, S, 8 * S);
    if (o.do_text) {
        result r;
        if (!has_t) printf("text encoder: no text encoder in the file\n");
        else { run_forked(&o, child_text, 0, &r, 1); row("text encoder (1x77 tokens)", ft, &r, peak); }
    }
    if (o.do_unet) {
        result r[2];
        if (!has_u) printf("unet: no model.diffusion_model.* UNet in the file\n");
        else {
            result b[2];
            run_forked(&o, child_unet, 0, r, 2);
            if (!r[0].ok && !r[1].ok && r[0].msg[0]) r[1] = r[0];
            row(nm[0], fu32, &r[0], peak);
            row(nm[1], fu64, &r[1], peak);
            run_forked(&o, child_unet, 1, b, 2);
            if (!b[0].ok && !b[1].ok && b[0].msg[0]) b[1] = b[0];
            char bn[2][72];
            snprintf(bn[0], sizeof bn[0], "  bf16: %s", nm[0]);
            snprintf(bn[1], sizeof bn[1], "  bf16: %s", nm[1]);
            row(bn[0], fu32, &b[0], peak);
            row(bn[1], fu64, &b[1], peak);
            if (r[1].ok && b[1].ok)
                printf("  bf16 / f32, UNet guided step: smaller %.2fx, larger %.2fx faster (medians)\n",
                       r[0].med_s / b[0].med_s, r[1].med_s / b[1].med_s);
        }
    }
    if (o.do_vae) {
        result r[2];
        if (!has_v) printf("vae: no autoencoder in the file\n");
        else {
            char name[64];
            run_forked(&o, child_vae, 0, r, 2);
            if (!r[0].ok && !r[1].ok && r[0].msg[0]) r[1] = r[0];
            snprintf(name, sizeof name, "vae decode %dx%d tiled %d/%d", 8 * S, 8 * S, o.tile, o.overlap);
            row(name, fv, &r[0], peak);
            snprintf(name, sizeof name, "vae decode %dx%d", 8 * S, 8 * S);
            row(name, fv, &r[1], peak);
            result b[2];
            run_forked(&o, child_vae, 1, b, 2);
            if (!b[0].ok && !b[1].ok && b[0].msg[0]) b[1] = b[0];
            snprintf(name, sizeof name, "  bf16: vae decode %dx%d", 8 * S, 8 * S);
            row(name, fv, &b[1], peak);
            if (r[1].ok && b[1].ok)
                printf("  bf16 / f32, VAE decode: %.2fx faster (medians)\n", r[1].med_s / b[1].med_s);
        }
    }
    if (o.do_taesd) taesd_row(&o, peak);
    if (o.scaling && has_u) {
        result r[2];
        char name[64];
        run_forked(&o, child_unet_scaling, 0, r, 2);
        if (!r[0].ok && r[0].msg[0]) r[1] = r[0];
        row("unet b2 64x64, 1 thread (alternating)", fu64, &r[0], peak / nth);
        snprintf(name, sizeof name, "unet b2 64x64, %d threads (alternating)", nth);
        row(name, fu64, &r[1], peak);
        if (r[0].ok && r[1].ok)
            printf("thread scaling, UNet step 64x64: %d threads %.2fx one thread (medians; mins %.2fx); "
                   "%% peak of the 1-thread row is of one core's peak\n", nth, r[0].med_s / r[1].med_s,
                   r[0].min_s / r[1].min_s);
    }
    flops fg = {0};
    if (o.full) {
        result r;
        run_forked(&o, child_generate, 0, &r, 1);
        /* guided steps (UNet batch 2), two text windows (prompt and negative), one decode. */
        fg.conv = o.steps * fu64.conv + fv.conv;
        fg.linear = o.steps * fu64.linear + 2 * ft.linear + fv.linear;
        fg.attn = o.steps * fu64.attn + 2 * ft.attn + fv.attn;
        char gname[64];
        snprintf(gname, sizeof gname, "generate %dx%d %d steps cfg7.5", 8 * S, 8 * S, o.steps);
        row(gname, fg, &r, peak);
    }
    printf("FLOP split:\n");
    if (has_t) split("text encoder", ft);
    if (has_u) { split(nm[0], fu32); split(nm[1], fu64); }
    if (has_v) {
        split("vae decode (untiled)", fv);
        printf("  %-32s %.1f GFLOP done by the tiles (overlaps decoded twice); GFLOP/s above is "
               "on the untiled count\n", "vae decode tiled", flops_total(fvt) * 1e-9);
    }
    if (o.full) split("generate", fg);
    printf("load s: store open + weights to f32; RSS: the graph's own forked process (store "
           "mapping, weights, activations); arena: activation peak\n");
    return 0;
}
