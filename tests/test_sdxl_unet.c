/* test_sdxl_unet.c — the SDXL UNet (tiny-sdxl: per-level transformer depth —/2/3 and 3 in the
 * middle, linear proj_in/out, head size 8 from the config, label_emb) against refs/sdxl_unet
 * (diffusers 0.25.1 UNet2DConditionModel, addition_embed_type "text_time"): every case in the
 * ref's metadata (8x8 and 8x12 latents, t 999/500/250.75/1, unusual time ids, the CFG batch with
 * zero negative conditioning), the dbg_* intermediates (add_time_proj = the six size embeddings
 * of sdc_unet_sdxl_vector, add_embedding = label_emb's output); the low-mem UNet and the .ckpt
 * give the same bits; errors for a missing y, a y given to an SD 1.x UNet, a mis-shaped
 * label_emb. Tolerance (fixtures README): max abs error <= max(1e-4, 2e-5 * max|ref|). */
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

#define REF "tests/data/refs/sdxl_unet.safetensors"
#define CONFIG "tests/data/tiny-sdxl.config.json"

static double tol_for(double mx) { return fmax(1e-4, 2e-5 * mx); }

static float *get(const sdc_store *s, const char *name, const sdc_tensor **t) {
    if (t) *t = sdc_store_get(s, name);
    return tu_tensor_f32(s, name, NULL);
}

typedef struct dbg_ctx { const sdc_store *ref; const char *case_name; int seen; } dbg_ctx;

static void cmp_dbg(dbg_ctx *d, const char *name, const float *data, size_t n) {
    char key[256];
    snprintf(key, sizeof key, "dbg_%s.%s", d->case_name, name);
    const sdc_tensor *t;
    float *ref = get(d->ref, key, &t);
    if (!ref) { printf("     (no ref %s)\n", key); return; }
    CHECK((size_t)t->numel == n, "%s: %zu values, ref has %lld", key, n, (long long)t->numel);
    if ((size_t)t->numel == n) {
        double mx, err = tu_max_abs_diff(data, ref, n, &mx);
        printf("     %-52s max|ref| %8.4f  max abs err %.3g\n", key, mx, err);
        CHECK(err <= tol_for(mx), "%s: max abs err %.3g > tol %.3g", key, err, tol_for(mx));
        d->seen++;
    }
    free(ref);
}

static void on_debug(void *user, const char *name, const float *data, int N, int C, int H, int W) {
    cmp_dbg(user, name, data, (size_t)N * C * H * W);
}

static int head_dim(void) {
    char *buf = tu_slurp(CONFIG, NULL);
    cJSON *j = cJSON_Parse(buf ? buf : "");
    const cJSON *h = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "unet"), "num_head_channels");
    int hd = cJSON_IsNumber(h) ? h->valueint : -1;
    cJSON_Delete(j);
    free(buf);
    return hd;
}

#define MAX_KEPT 16
static struct { char name[96]; float *y; size_t n; } kept[MAX_KEPT];
static int nkept;
static double worst;

static void run_model(const char *model, int keep) {
    printf("== %s vs %s\n", model, REF);
    sdc_err e = {{0}};
    sdc_unet_params p = {.head_dim = head_dim()};
    CHECK(p.head_dim == 8, "config num_head_channels %d", p.head_dim);
    sdc_store *ms = sdc_store_new(), *rs = sdc_store_new();
    CHECK(sdc_store_open(ms, model, NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_store_open(rs, REF, NULL, &e) == 0, "%s", e.msg);
    sdc_unet *u = sdc_unet_load(ms, &p, &e);
    CHECK(u, "load: %s", e.msg);
    sdc_unet_params pl = p;
    pl.low_mem = 1;
    sdc_unet *ul = sdc_unet_load(ms, &pl, &e);
    CHECK(ul, "low-mem load: %s", e.msg);
    const char *cj = sdc_store_meta(rs, "cases");
    cJSON *cases = cJSON_Parse(cj ? cj : "");
    if (!u || !ul || !cJSON_IsArray(cases)) goto out;
    const sdc_unet_info *in = sdc_unet_get_info(u);
    printf("   info: mc %d levels %d mult [%d,%d,%d] ctx %d linear %d temb %d adm %d\n", in->model_channels,
           in->n_levels, in->channel_mult[0], in->channel_mult[1], in->channel_mult[2], in->context_dim,
           in->linear_proj, in->time_embed_dim, in->adm_in_channels);
    CHECK(in->adm_in_channels == 112 && in->context_dim == 96 && in->linear_proj && in->n_levels == 3,
          "unexpected SDXL UNet info");
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    float *ctx1 = get(rs, "context_cond", NULL), *te1 = get(rs, "text_embeds_cond", NULL);
    CHECK(ctx1 && te1, "context_cond / text_embeds_cond missing");
    int ncases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        if (!ctx1 || !te1) break;
        const char *outn = cJSON_GetStringValue(cJSON_GetObjectItem(c, "output"));
        const char *latn = cJSON_GetStringValue(cJSON_GetObjectItem(c, "latent"));
        const char *idsn = cJSON_GetStringValue(cJSON_GetObjectItem(c, "time_ids"));
        const cJSON *ts = cJSON_GetObjectItem(c, "timestep"), *bt = cJSON_GetObjectItem(c, "batch");
        CHECK(outn && latn && idsn && cJSON_IsNumber(ts) && cJSON_IsNumber(bt), "bad case entry");
        if (!outn || !latn || !idsn || !cJSON_IsNumber(ts) || !cJSON_IsNumber(bt)) continue;
        char idkey[96];
        snprintf(idkey, sizeof idkey, "%s", idsn);
        char *sp = strchr(idkey, ' ');   /* "time_ids_… (repeated for both rows)" */
        if (sp) *sp = 0;
        const int B = bt->valueint;
        const sdc_tensor *lt, *ot;
        float *lat = get(rs, latn, &lt), *ref = get(rs, outn, &ot), *ids = get(rs, idkey, NULL);
        CHECK(lat && ref && ids && B >= 1 && B <= 2, "%s: ref tensors missing", outn);
        if (!lat || !ref || !ids || B < 1 || B > 2) { free(lat); free(ref); free(ids); continue; }
        const int h = (int)lt->shape[2], w = (int)lt->shape[3], Lc = 77, Cc = 96;
        const size_t nl = (size_t)lt->numel, nc = (size_t)Lc * Cc, n = nl * B;
        float *x = malloc(n * sizeof *x), *ctx = calloc(nc * B, sizeof *ctx), *y = calloc(112 * B, sizeof *y);
        float *t = malloc(B * sizeof *t), *out = malloc(n * sizeof *out), *outl = malloc(n * sizeof *out);
        float zeros[64] = {0};
        for (int b = 0; b < B; b++) {   /* the CFG batch: cat([zeros, cond]) for context and pooled */
            int cond = b == B - 1;
            memcpy(x + b * nl, lat, nl * sizeof *x);
            if (cond) memcpy(ctx + b * nc, ctx1, nc * sizeof *ctx);
            t[b] = (float)ts->valuedouble;
            CHECK(sdc_unet_sdxl_vector(y + 112 * b, 112, cond ? te1 : zeros, 64, ids, &e) == 0, "%s", e.msg);
        }
        dbg_ctx d = {rs, outn, 0};
        int want_dbg = keep && ncases == 0;
        if (want_dbg) cmp_dbg(&d, "add_time_proj", y + 64, 48);   /* [6, 8]: the six size embeddings */
        sdc_unet_set_debug(u, want_dbg ? on_debug : NULL, &d);
        sdc_cond cd = {.ctx = ctx, .ctx_len = Lc, .y = y};
        int rc = sdc_unet_forward(u, &a, out, x, t, &cd, B, h, w, &e);
        CHECK(rc == 0, "%s: %s", outn, e.msg);
        if (rc == 0 && (size_t)ot->numel == n) {
            double mx, err = tu_max_abs_diff(out, ref, n, &mx);
            char k64[128];
            snprintf(k64, sizeof k64, "%s_f64", outn);
            float *r64 = get(rs, k64, NULL);
            double e64 = r64 ? tu_max_abs_diff(out, r64, n, NULL) : NAN;
            free(r64);
            printf("   %-42s batch %d t %-6g max|ref| %.4f err %.3g (vs f64 %.3g) tol %.3g\n", outn, B, t[0], mx,
                   err, e64, tol_for(mx));
            CHECK(err <= tol_for(mx), "%s: max abs err %.3g > %.3g", outn, err, tol_for(mx));
            if (err > worst) worst = err;
            int rcl = sdc_unet_forward(ul, &a, outl, x, t, &cd, B, h, w, &e);
            CHECK(rcl == 0 && !memcmp(out, outl, n * sizeof *out), "%s: low-mem differs: %s", outn, e.msg);
            for (int i = 0; i < nkept && !keep; i++)
                if (!strcmp(kept[i].name, outn))
                    CHECK(kept[i].n == n && !memcmp(kept[i].y, out, n * sizeof *out), "%s: %s differs from "
                          "the safetensors run", outn, model);
            if (keep && nkept < MAX_KEPT && (kept[nkept].y = malloc(n * sizeof *out))) {
                snprintf(kept[nkept].name, sizeof kept[nkept].name, "%s", outn);
                memcpy(kept[nkept].y, out, n * sizeof *out);
                kept[nkept++].n = n;
            }
        }
        if (want_dbg) CHECK(d.seen >= 12, "%s: only %d intermediates compared", outn, d.seen);
        sdc_unet_set_debug(u, NULL, NULL);
        ncases++;
        free(x); free(ctx); free(y); free(t); free(out); free(outl); free(lat); free(ref); free(ids);
    }
    CHECK(ncases == 7, "%d cases ran", ncases);
    /* No y for an SDXL UNet: refused, not read. */
    {
        float x[4 * 64] = {0}, o[4 * 64], t0 = 1;
        e.msg[0] = 0;
        sdc_cond cd = {.ctx = ctx1, .ctx_len = 77};
        int rc = sdc_unet_forward(u, &a, o, x, &t0, &cd, 1, 8, 8, &e);
        printf("   no vector conditioning -> %s\n", e.msg);
        CHECK(rc != 0 && strstr(e.msg, "label_emb"), "SDXL UNet ran without y");
    }
    free(ctx1); free(te1);
    sdc_arena_free(&a);
out:
    cJSON_Delete(cases);
    sdc_unet_free(u);
    sdc_unet_free(ul);
    sdc_store_close(ms);
    sdc_store_close(rs);
}

/* A y given to an SD 1.x UNet; a vector width that does not split into 6 embeddings; a
 * label_emb.0.2 of the wrong shape (synthetic file). */
static void errors(void) {
    sdc_err e = {{0}};
    sdc_store *s = sdc_store_new();
    CHECK(sdc_store_open(s, "tests/data/tiny-sd1-fp16.safetensors", NULL, &e) == 0, "%s", e.msg);
    sdc_unet_params p = {.num_heads = 8};
    sdc_unet *u = sdc_unet_load(s, &p, &e);
    CHECK(u && sdc_unet_get_info(u)->adm_in_channels == 0, "sd1 UNet: %s", e.msg);
    if (u) {
        sdc_arena a;
        sdc_arena_init(&a, 1 << 20);
        float x[4 * 64] = {0}, o[4 * 64], t0 = 1, y[16] = {0};
        static float ctx[77 * 32];
        e.msg[0] = 0;
        sdc_cond cd = {.ctx = ctx, .ctx_len = 77, .y = y};
        CHECK(sdc_unet_forward(u, &a, o, x, &t0, &cd, 1, 8, 8, &e) != 0 && strstr(e.msg, "no label_emb"),
              "y given to an SD 1.x UNet: %s", e.msg);
        sdc_arena_free(&a);
    }
    sdc_unet_free(u);
    sdc_store_close(s);
    float y[200], pooled[64] = {0}, ids[6] = {64, 64, 0, 0, 64, 64};
    e.msg[0] = 0;
    CHECK(sdc_unet_sdxl_vector(y, 115, pooled, 64, ids, &e) != 0 && e.msg[0], "adm 115 accepted");
    CHECK(sdc_unet_sdxl_vector(y, 112, pooled, 64, ids, &e) == 0, "adm 112: %s", e.msg);

    /* conv_in, time_embed.0/.2, label_emb.0.0 and a label_emb.0.2 [128, 64]. */
    static const char *const names[] = {
        "input_blocks.0.0.weight", "input_blocks.0.0.bias", "time_embed.0.weight", "time_embed.0.bias",
        "time_embed.2.weight", "time_embed.2.bias", "label_emb.0.0.weight", "label_emb.0.0.bias",
        "label_emb.0.2.weight", "label_emb.0.2.bias"};
    static const int dims[][4] = {{32, 4, 3, 3}, {32}, {128, 32}, {128}, {128, 128}, {128},
                                  {128, 112}, {128}, {128, 64}, {128}};
    char path[128], hdr[4096];
    snprintf(path, sizeof path, "/tmp/sdc_test_sdxl_unet_%d.safetensors", (int)getpid());
    size_t o = 0, off = 0;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{");
    for (int i = 0; i < 10; i++) {
        size_t numel = 1;
        o += (size_t)snprintf(hdr + o, sizeof hdr - o, "%s\"model.diffusion_model.%s\":{\"dtype\":\"F32\",\"shape\":[",
                              i ? "," : "", names[i]);
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
    CHECK(f, "cannot write %s", path);
    if (!f) return;
    uint64_t len = o;
    fwrite(&len, 8, 1, f);
    fwrite(hdr, 1, o, f);
    for (size_t i = 0; i < off; i++) fputc(0, f);
    fclose(f);
    s = sdc_store_new();
    CHECK(sdc_store_open(s, path, NULL, &e) == 0, "%s", e.msg);
    sdc_unet_params px = {.head_dim = 8};
    e.msg[0] = 0;
    u = sdc_unet_load(s, &px, &e);
    printf("== label_emb.0.2 [128,64] -> %s\n", e.msg);
    CHECK(!u && strstr(e.msg, "label_emb.0.2.weight: F32 [128,64]"), "bad label_emb accepted or unclear");
    sdc_unet_free(u);
    sdc_store_close(s);
    remove(path);
}

int main(void) {
    sdc_kernels_set_threads(1);
    run_model("tests/data/tiny-sdxl.safetensors", 1);
    run_model("tests/data/tiny-sdxl.ckpt", 0);   /* same threads: the same bits */
    printf("worst UNet error over the cases: %.3g\n", worst);
    for (int i = 0; i < nkept; i++) free(kept[i].y);
    errors();
    printf(fails ? "test_sdxl_unet: %d FAILED\n" : "test_sdxl_unet: all passed\n", fails);
    return fails ? 1 : 0;
}
