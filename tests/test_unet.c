/* test_unet.c — the UNet against the diffusers reference (tests/data/refs/sd{1,2}_unet):
 * every case in the ref file's metadata `cases` (8x8 / 16x16 latents, integer and fractional
 * timesteps, batch-2 CFG), the dbg_* intermediates of the debug case, and the load/forward
 * errors (missing tensors, heads that do not divide, an empty batch or latent). Latents whose
 * sides are not multiples of 2^downsamples (refs/sd1_unet_9x17: 9x17 and 17x9, every block's
 * output compared) check the ceil(n/2) downsamplers and the upsamplers sized to their skips.
 * Every case also runs on a low-mem UNet (sdc_unet_params.low_mem: f16 views widened per
 * layer), whose output must be the default mode's, bit for bit, and which must hold no f32
 * copy of the conv/linear weights; the legacy ckpt (unaligned views) runs in both modes too.
 * Tolerance (fixtures README): max abs error <= max(1e-4, 2e-5 * max|ref|). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kernels/arena.h"
#include "kernels/kernels.h"
#include "models/unet.h"
#include "runtime/store.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

/* A whole ref tensor as f32 (malloc'd), or NULL. */
static float *get_f32(const sdc_store *s, const char *name, const sdc_tensor **tout) {
    const sdc_tensor *t = sdc_store_get(s, name);
    if (tout) *tout = t;
    if (!t) return NULL;
    float *p = malloc((size_t)t->numel * sizeof *p + 1);
    sdc_err e;
    if (p && sdc_tensor_to_f32(t, p, &e) != 0) { free(p); p = NULL; }
    return p;
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

static double max_err(const float *a, const float *b, size_t n) {
    return tu_max_abs_diff(a, b, n, NULL);   /* NaN gives INFINITY */
}

static double tol_for(double mx) { return fmax(1e-4, 2e-5 * mx); }

/* Debug hook: compares each intermediate with ref "dbg_<case>.<name>". */
typedef struct dbg_ctx { const sdc_store *ref; const char *case_name; int seen; } dbg_ctx;

static void on_debug(void *user, const char *name, const float *data, int N, int C, int H, int W) {
    dbg_ctx *d = user;
    char key[256];
    snprintf(key, sizeof key, "dbg_%s.%s", d->case_name, name);
    const sdc_tensor *t;
    float *ref = get_f32(d->ref, key, &t);
    if (!ref) { printf("     (no ref %s)\n", key); return; }
    size_t n = (size_t)N * C * H * W;
    CHECK((size_t)t->numel == n, "%s: %zu values, ref has %lld", key, n, (long long)t->numel);
    if ((size_t)t->numel == n) {
        double err = max_err(data, ref, n), mx = max_abs(ref, n);
        printf("     %-34s [%d,%d,%d,%d] max|ref| %8.4f  max abs err %.3g\n", key, N, C, H, W, mx, err);
        CHECK(err <= tol_for(mx), "%s: max abs err %.3g > tol %.3g", key, err, tol_for(mx));
        d->seen++;
    }
    free(ref);
}

/* Heads from tests/data/tiny-sdX.config.json: unet.num_heads / unet.num_head_channels. */
static int read_heads(const char *path, sdc_unet_params *p) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    cJSON *u = cJSON_GetObjectItem(j, "unet");
    cJSON *nh = cJSON_GetObjectItem(u, "num_heads"), *hc = cJSON_GetObjectItem(u, "num_head_channels");
    int ok = cJSON_IsNumber(nh) && cJSON_IsNumber(hc);
    if (ok) { p->num_heads = nh->valueint; p->head_dim = hc->valueint; }
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

/* Outputs of the run marked `keep`, to check that other files with the same weights (f32 vs
 * f16 storage, diffusers vs original names) give the very same bits. */
#define MAX_KEPT 32
static struct { char name[64]; float *y; size_t n; } kept[MAX_KEPT];
static int nkept;

static void keep_or_compare(int keep, const char *tag, const char *name, const float *y, size_t n) {
    if (keep < 0) return;
    if (keep) {
        if (nkept < MAX_KEPT && (kept[nkept].y = malloc(n * sizeof *y))) {
            snprintf(kept[nkept].name, sizeof kept[nkept].name, "%s", name);
            memcpy(kept[nkept].y, y, n * sizeof *y);
            kept[nkept++].n = n;
        }
        return;
    }
    for (int i = 0; i < nkept; i++)
        if (!strcmp(kept[i].name, name)) {
            int same = kept[i].n == n && !memcmp(kept[i].y, y, n * sizeof *y);
            printf("   %-26s bit-identical to the sd1 fp16 run: %s\n", name, same ? "yes" : "NO");
            CHECK(same, "%s %s: differs from the original-layout fp16 run", tag, name);
        }
}

/* Runs every case of ref file `refpath` through the UNet of `model`; keep 1: remember outputs
 * (sd1 fp16), 0: compare them bitwise to the remembered ones of the same case, -1: neither. */
static void run_model(const char *tag, const char *model, const char *config, const char *refpath,
                      const char *dbg_case, int keep) {
    printf("== %s: %s vs %s\n", tag, model, refpath);
    sdc_err e = {{0}};
    sdc_unet_params p = {.num_heads = 0};
    CHECK(read_heads(config, &p) == 0, "%s: cannot read unet heads", config);
    sdc_store *ms = sdc_store_new(), *rs = sdc_store_new();
    CHECK(sdc_store_open(ms, model, NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_store_open(rs, refpath, NULL, &e) == 0, "%s", e.msg);
    sdc_unet *u = sdc_unet_load(ms, &p, &e);
    CHECK(u, "load: %s", e.msg);
    sdc_unet_params plow = p;
    plow.low_mem = 1;
    sdc_unet *ul = sdc_unet_load(ms, &plow, &e);                 /* the same weights, low-mem */
    CHECK(ul, "low-mem load: %s", e.msg);
    {   /* converted on a thread of its own while this one goes on: the same bytes, bound */
        sdc_unet_params pbg = p;
        pbg.background = 1;
        sdc_unet *ub = sdc_unet_load(ms, &pbg, &e);
        CHECK(ub, "background load: %s", e.msg);
        if (u && ub) {
            uint8_t d0[32], d1[32];
            double done = -1;
            CHECK(sdc_unet_wait(ub, &done, &e) == 0 && done > 0, "background bind: %s (done at %g)", e.msg, done);
            sdc_unet_layout_digest(u, d0);
            sdc_unet_layout_digest(ub, d1);
            CHECK(!memcmp(d0, d1, 32), "%s: the background bind holds other bytes than the foreground one", tag);
            printf("   background bind: the same %zu bytes of weights\n", sdc_unet_get_info(ub)->weight_bytes);
        }
        sdc_unet_free(ub);
    }
    if (u && ul) {
        size_t wd = sdc_unet_get_info(u)->weight_bytes, wl = sdc_unet_get_info(ul)->weight_bytes;
        printf("   f32 weights held: default %.1f KiB, low-mem %.1f KiB\n", wd / 1024.0, wl / 1024.0);
        CHECK(wl * 8 < wd, "low-mem UNet holds %zu bytes of f32 weights (default %zu)", wl, wd);
    }
    const char *cases_json = sdc_store_meta(rs, "cases");
    CHECK(cases_json, "%s: no cases metadata", refpath);
    if (!u || !ul || !cases_json) goto out;
    const sdc_unet_info *in = sdc_unet_get_info(u);
    printf("   info: in %d out %d mc %d levels %d res %d mult [", in->in_channels, in->out_channels,
           in->model_channels, in->n_levels, in->num_res_blocks);
    for (int i = 0; i < in->n_levels; i++) printf(i ? ",%d" : "%d", in->channel_mult[i]);
    printf("] ctx %d depth %d linear %d temb %d (heads %d, head dim %d)\n", in->context_dim,
           in->transformer_depth, in->linear_proj, in->time_embed_dim, p.num_heads, p.head_dim);

    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    cJSON *cases = cJSON_Parse(cases_json);
    int ncases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *outn = cJSON_GetStringValue(cJSON_GetObjectItem(c, "output"));
        const char *latn = cJSON_GetStringValue(cJSON_GetObjectItem(c, "latent"));
        const char *ehs = cJSON_GetStringValue(cJSON_GetObjectItem(c, "encoder_hidden_states"));
        cJSON *ts = cJSON_GetObjectItem(c, "timestep"), *bt = cJSON_GetObjectItem(c, "batch");
        CHECK(outn && latn && ehs && cJSON_IsNumber(ts) && cJSON_IsNumber(bt), "bad case entry");
        if (!outn || !latn || !ehs || !cJSON_IsNumber(ts) || !cJSON_IsNumber(bt)) continue;
        int B = bt->valueint;
        const sdc_tensor *lt, *ot, *ct;
        float *lat = get_f32(rs, latn, &lt), *ref = get_f32(rs, outn, &ot);
        float *cc = get_f32(rs, "context_cond", &ct), *cu = get_f32(rs, "context_uncond", NULL);
        CHECK(lat && ref && cc && cu, "%s: ref tensors missing", outn);
        if (lat && ref && cc && cu && lt->ndim == 4 && ct->ndim == 3) {
            int C = (int)lt->shape[1], h = (int)lt->shape[2], w = (int)lt->shape[3];
            int Lc = (int)ct->shape[1], Cc = (int)ct->shape[2];
            size_t nl = (size_t)lt->numel, nc = (size_t)ct->numel;
            float *x = malloc(nl * B * sizeof *x), *ctx = malloc(nc * B * sizeof *ctx);
            float *t = malloc(B * sizeof *t), *y = malloc(nl * B * sizeof *y);
            int is_cat = strstr(ehs, "cat(") != NULL;
            CHECK(is_cat == (B == 2), "%s: unexpected batch/context combination", outn);
            for (int b = 0; b < B; b++) {
                memcpy(x + b * nl, lat, nl * sizeof *x);
                /* cat([context_uncond, context_cond]): negative first */
                memcpy(ctx + b * nc, (is_cat && b == 0) ? cu : cc, nc * sizeof *ctx);
                t[b] = (float)ts->valuedouble;
            }
            dbg_ctx d = {rs, outn, 0};
            int want_dbg = dbg_case && !strcmp(dbg_case, outn);
            sdc_unet_set_debug(u, want_dbg ? on_debug : NULL, &d);
            printf("   %-26s batch %d latent %dx%d t %-7g ctx [%d,%d]\n", outn, B, h, w, t[0], Lc, Cc);
            int rc = sdc_unet_forward(u, &a, y, x, t, &(sdc_cond){.ctx = ctx, .ctx_len = Lc}, B, h, w, &e);
            CHECK(rc == 0, "%s: forward: %s", outn, e.msg);
            CHECK((size_t)ot->numel == nl * B, "%s: ref size", outn);
            if (rc == 0 && (size_t)ot->numel == nl * B) {
                size_t n = nl * B;
                double err = max_err(y, ref, n), mx = max_abs(ref, n);
                char n64[256];
                snprintf(n64, sizeof n64, "%s_f64", outn);
                float *r64 = get_f32(rs, n64, NULL);
                double err64 = r64 ? max_err(y, r64, n) : NAN;
                free(r64);
                printf("   %-26s max|ref| %.4f  max abs err %.3g (vs f64 %.3g)  tol %.3g  %s\n", outn, mx,
                       err, err64, tol_for(mx), err <= tol_for(mx) ? "ok" : "FAIL");
                CHECK(err <= tol_for(mx), "%s: max abs err %.3g > %.3g", outn, err, tol_for(mx));
                keep_or_compare(keep, tag, outn, y, n);
                (void)C;
                /* low-mem mode: the same floats through the same kernels, so the same bits */
                float *yl = malloc(n * sizeof *yl);
                size_t peak0 = a.peak;
                int rcl = yl ? sdc_unet_forward(ul, &a, yl, x, t, &(sdc_cond){.ctx = ctx, .ctx_len = Lc}, B, h, w, &e) : -1;
                CHECK(rcl == 0, "%s: low-mem forward: %s", outn, e.msg);
                if (rcl == 0) {
                    int same = !memcmp(y, yl, n * sizeof *y);
                    printf("   %-26s low-mem: bit-identical %s (arena peak %.1f KiB)\n", outn,
                           same ? "yes" : "NO", a.peak / 1024.0);
                    CHECK(same, "%s: low-mem output differs (max diff %.3g)", outn, max_err(y, yl, n));
                }
                a.peak = peak0 > a.peak ? peak0 : a.peak;
                free(yl);
            }
            if (want_dbg) CHECK(d.seen >= 10, "%s: only %d intermediates compared", outn, d.seen);
            /* The conditioning struct's concat input: x's last C-1 channels handed over as the
             * concatenated ones (as inpainting hands over mask + masked-image latents) give the
             * same bits as the whole x. */
            if (rc == 0 && C > 1) {
                size_t hw = (size_t)h * w;
                float *x1 = malloc(hw * B * sizeof *x1), *xc = malloc(hw * (C - 1) * B * sizeof *xc);
                float *yc = malloc(nl * B * sizeof *yc);
                for (int b = 0; b < B; b++) {
                    memcpy(x1 + b * hw, x + b * nl, hw * sizeof *x1);
                    memcpy(xc + b * hw * (C - 1), x + b * nl + hw, hw * (C - 1) * sizeof *xc);
                }
                sdc_cond cc2 = {.ctx = ctx, .ctx_len = Lc, .concat = xc, .concat_ch = C - 1};
                int rcc = sdc_unet_forward(u, &a, yc, x1, t, &cc2, B, h, w, &e);
                CHECK(rcc == 0 && !memcmp(y, yc, nl * B * sizeof *y), "%s: concat input differs: %s", outn, e.msg);
                sdc_cond cy = {.ctx = ctx, .ctx_len = Lc, .y = t};
                CHECK(sdc_unet_forward(u, &a, yc, x, t, &cy, B, h, w, &e) != 0 && strstr(e.msg, "label_emb"),
                      "%s: a y for a UNet without label_emb accepted", outn);
                free(x1); free(xc); free(yc);
            }
            free(x); free(ctx); free(t); free(y);
            ncases++;
        }
        free(lat); free(ref); free(cc); free(cu);
    }
    CHECK(ncases >= 2, "%s: only %d cases ran", refpath, ncases);
    printf("   %d cases, arena peak %.1f KiB\n", ncases, a.peak / 1024.0);
    sdc_unet_set_debug(u, NULL, NULL);

    /* Bad input: no batch, an empty latent. */
    {
        int side = 1 << (in->n_levels - 1);
        float x[4 * 3 * 3 * 16], y[sizeof x / sizeof *x], t0 = 1, ctx[77 * 64] = {0};
        e.msg[0] = 0;
        CHECK(sdc_unet_forward(u, &a, y, x, &t0, &(sdc_cond){.ctx = ctx, .ctx_len = 1}, 1, 0, side, &e) != 0, "latent height 0 accepted");
        e.msg[0] = 0;
        CHECK(sdc_unet_forward(u, &a, y, x, &t0, &(sdc_cond){.ctx = ctx, .ctx_len = 1}, 0, side, side, &e) != 0, "batch 0 accepted");
    }
    cJSON_Delete(cases);
    sdc_arena_free(&a);
out:
    sdc_unet_free(u);
    sdc_unet_free(ul);
    sdc_store_close(ms);
    sdc_store_close(rs);
}

/* Load errors: a store without a UNet, and heads that do not divide the widths. */
static void load_errors(void) {
    sdc_err e = {{0}};
    sdc_store *rs = sdc_store_new();
    CHECK(sdc_store_open(rs, "tests/data/refs/sd1_unet.safetensors", NULL, &e) == 0, "%s", e.msg);
    sdc_unet_params p = {.num_heads = 8};
    sdc_unet *u = sdc_unet_load(rs, &p, &e);
    printf("== no UNet in the file -> %s\n", e.msg);
    CHECK(!u && strstr(e.msg, "input_blocks.0.0.weight"), "a file without a UNet loaded");
    sdc_unet_free(u);
    sdc_store_close(rs);

    sdc_store *ms = sdc_store_new();
    CHECK(sdc_store_open(ms, "tests/data/tiny-sd1-fp16.safetensors", NULL, &e) == 0, "%s", e.msg);
    sdc_unet_params bad = {.num_heads = 3};
    e.msg[0] = 0;
    u = sdc_unet_load(ms, &bad, &e);
    printf("== 3 heads on width 32 -> %s\n", e.msg);
    CHECK(!u && strstr(e.msg, "heads"), "3 heads accepted");
    sdc_unet_free(u);
    sdc_unet_params none = {.num_heads = 0};
    e.msg[0] = 0;
    u = sdc_unet_load(ms, &none, &e);
    CHECK(!u && e.msg[0], "no heads accepted");
    sdc_unet_free(u);
    sdc_store_close(ms);
}

/* Writes a safetensors file of zero-filled F32 tensors: names[i] with shapes dims[i][0..3]
 * (0 = no such dim). Returns 0 on success. */
static int write_st(const char *path, int n, const char *const *names, const int dims[][4]) {
    char hdr[4096];
    size_t o = 0, off = 0;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{");
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        o += (size_t)snprintf(hdr + o, sizeof hdr - o, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", i ? "," : "",
                              names[i]);
        for (int d = 0; d < 4 && dims[i][d]; d++) {
            o += (size_t)snprintf(hdr + o, sizeof hdr - o, d ? ",%d" : "%d", dims[i][d]);
            numel *= (size_t)dims[i][d];
        }
        o += (size_t)snprintf(hdr + o, sizeof hdr - o, "],\"data_offsets\":[%zu,%zu]}", off, off + 4 * numel);
        off += 4 * numel;
    }
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "}");
    while (o % 8) hdr[o++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t len = o;
    fwrite(&len, 8, 1, f);
    fwrite(hdr, 1, o, f);
    for (size_t i = 0; i < off; i++) fputc(0, f);
    return fclose(f);
}

/* A UNet file whose time_embed.0 has the wrong width, then one where time_embed.2 is absent:
 * each refused with the tensor's name. */
static void shape_errors(void) {
    static const char *const names[] = {
        "model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.input_blocks.0.0.bias",
        "model.diffusion_model.time_embed.0.weight", "model.diffusion_model.time_embed.0.bias",
    };
    static const int bad[][4] = {{32, 4, 3, 3}, {32}, {128, 16}, {128}};
    static const int good[][4] = {{32, 4, 3, 3}, {32}, {128, 32}, {128}};
    char path[128];
    snprintf(path, sizeof path, "/tmp/sdc_test_unet_bad_%d.safetensors", (int)getpid());
    sdc_unet_params p = {.num_heads = 8};
    for (int k = 0; k < 2; k++) {
        sdc_err e = {{0}};
        CHECK(write_st(path, 4, names, k ? good : bad) == 0, "cannot write %s", path);
        sdc_store *s = sdc_store_new();
        int rc = sdc_store_open(s, path, NULL, &e);
        CHECK(rc == 0, "%s: %s", path, e.msg);
        sdc_unet *u = rc ? NULL : sdc_unet_load(s, &p, &e);
        printf("== %s -> %s\n", k ? "time_embed.2 absent" : "time_embed.0 [128,16]", e.msg);
        CHECK(!u && strstr(e.msg, k ? "time_embed.2.weight: missing" : "time_embed.0.weight: F32 [128,16]"),
              "bad UNet file accepted or unclear error");
        sdc_unet_free(u);
        sdc_store_close(s);
    }
    remove(path);
}

int main(void) {
    /* One thread for most runs: the tiny model's many small kernels gain nothing from threads, and
     * a loaded 2-core machine makes OpenMP barriers slow. The SD 2.x run uses 2 threads so the
     * threaded kernel paths are checked against the reference too. */
    sdc_kernels_set_threads(1);
    run_model("sd1 fp16", "tests/data/tiny-sd1-fp16.safetensors", "tests/data/tiny-sd1.config.json",
              "tests/data/refs/sd1_unet.safetensors", "out_x8x8_t999", 1);
    run_model("sd1 fp32", "tests/data/tiny-sd1.safetensors", "tests/data/tiny-sd1.config.json",
              "tests/data/refs/sd1_unet.safetensors", NULL, 0);
    /* The same weights in a legacy ckpt: views at unaligned offsets (read in low-mem mode). */
    run_model("sd1 legacy ckpt", "tests/data/tiny-sd1-legacy.ckpt", "tests/data/tiny-sd1.config.json",
              "tests/data/refs/sd1_unet.safetensors", NULL, 0);
    /* The same UNet under diffusers names (scripts/make_diffusers_unet.py). */
    run_model("sd1 diffusers layout", "tests/data/tiny-sd1-unet-diffusers-fp16.safetensors",
              "tests/data/tiny-sd1.config.json", "tests/data/refs/sd1_unet.safetensors", "out_x8x8_t999", 0);
    /* Any latent size: 9x17 → 5x9 → 3x5 → 2x3 and back up to each skip's size. */
    run_model("sd1 9x17/17x9", "tests/data/tiny-sd1-fp16.safetensors", "tests/data/tiny-sd1.config.json",
              "tests/data/refs/sd1_unet_9x17.safetensors", "out_x9x17_t999", -1);
    sdc_kernels_set_threads(2);
    printf("(threads: %d)\n", sdc_kernels_get_threads());
    run_model("sd1 9x17/17x9, 2 threads", "tests/data/tiny-sd1-fp16.safetensors", "tests/data/tiny-sd1.config.json",
              "tests/data/refs/sd1_unet_9x17.safetensors", NULL, -1);
    run_model("sd2 fp16", "tests/data/tiny-sd2-fp16.safetensors", "tests/data/tiny-sd2.config.json",
              "tests/data/refs/sd2_unet.safetensors", "out_x8x8_t999", -1);
    for (int i = 0; i < nkept; i++) free(kept[i].y);
    load_errors();
    shape_errors();
    printf(fails ? "test_unet: %d FAILED\n" : "test_unet: all passed\n", fails);
    return fails ? 1 : 0;
}
