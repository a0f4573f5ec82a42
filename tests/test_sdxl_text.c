/* test_sdxl_text.c — SDXL's two text encoders (tiny-sdxl: CLIP ViT-L style under
 * conditioner.embedders.0.transformer.text_model.*, OpenCLIP bigG style under
 * conditioner.embedders.1.model.*) against refs/sdxl_text_encoders (diffusers 0.25.1
 * StableDiffusionXLPipeline.encode_prompt) for all 11 prompts: both tokenizers' ids (tokenizer 2
 * pads with 0), every hidden_states.i of both towers, the penultimate layers without the final
 * LayerNorm, the 96-wide context, the pooled and projected text_embeds; the .ckpt twin gives the
 * same bits; errors for a missing projection and a mis-shaped one.
 * Tolerance (fixtures README): atol 1e-4, or 2e-5 of max|ref|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kernels/kernels.h"
#include "models/clip.h"
#include "runtime/store.h"
#include "tests/test_util.h"
#include "tokenizer/tokenizer.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

#define MODEL "tests/data/tiny-sdxl.safetensors"
#define CKPT "tests/data/tiny-sdxl.ckpt"
#define CONFIG "tests/data/tiny-sdxl.config.json"
#define REF "tests/data/refs/sdxl_text_encoders.safetensors"
#define TE1 "conditioner.embedders.0.transformer.text_model."
#define TE2 "conditioner.embedders.1.model."

static double tol(double mx) { return fmax(1e-4, 2e-5 * mx); }

/* text / text_2 heads and activation from the fixture config. */
static void config_text(const char *key, sdc_clip_params *p) {
    char *buf = tu_slurp(CONFIG, NULL);
    cJSON *j = cJSON_Parse(buf ? buf : "");
    const cJSON *t = cJSON_GetObjectItem(j, key);
    const cJSON *h = cJSON_GetObjectItem(t, "heads"), *a = cJSON_GetObjectItem(t, "activation");
    p->n_heads = cJSON_IsNumber(h) ? h->valueint : -1;
    p->act = cJSON_IsString(a) ? (strstr(a->valuestring, "quick") ? SDC_ACT_QUICK_GELU : SDC_ACT_GELU) : -1;
    cJSON_Delete(j);
    free(buf);
}

typedef struct taps { float *h[16]; int C; } taps;
static void on_tap(void *user, int i, const float *x, int n, int C) {
    taps *t = user;
    if (i < 0 || i >= 16) return;
    free(t->h[i]);
    t->h[i] = malloc((size_t)n * C * sizeof(float));
    if (t->h[i]) memcpy(t->h[i], x, (size_t)n * C * sizeof(float));
    t->C = C;
}

/* Compares x[n] to ref rows [row*n .. ) of tensor name; prints and checks. Returns the error. */
static double cmp(const sdc_store *rs, const char *name, int row, const float *x, size_t n, int quiet) {
    size_t numel = 0;
    float *r = tu_tensor_f32(rs, name, &numel);
    CHECK(r && numel >= (size_t)(row + 1) * n, "%s: ref missing or too small", name);
    if (!r || numel < (size_t)(row + 1) * n) { free(r); return INFINITY; }
    double mx = 0, err = tu_max_abs_diff(x, r + (size_t)row * n, n, &mx);
    if (!quiet || err > tol(mx))
        printf("   prompt %2d %-22s max|ref| %7.3f  max abs err %.3g\n", row, name, mx, err);
    CHECK(err <= tol(mx), "%s row %d: err %.3g > %.3g", name, row, err, tol(mx));
    free(r);
    return err;
}

static double worst[8];

static void run(const char *path, float *keep_ctx, float *keep_pooled, int compare_to_keep) {
    printf("== %s\n", path);
    sdc_err e = {{0}};
    sdc_store *ms = sdc_store_new(), *rs = sdc_store_new();
    CHECK(sdc_store_open(ms, path, NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_store_open(rs, REF, NULL, &e) == 0, "%s", e.msg);
    sdc_clip_params p1 = {0}, p2 = {0};
    config_text("text", &p1);
    config_text("text_2", &p2);
    p1.prefix = TE1;
    p2.prefix = TE2;
    p2.projection = 1;
    sdc_clip *c1 = sdc_clip_load(ms, &p1, &e);
    CHECK(c1, "te1: %s", e.msg);
    sdc_clip *c2 = sdc_clip_load(ms, &p2, &e);
    CHECK(c2, "te2: %s", e.msg);
    p2.low_mem = 1;
    sdc_clip *c2l = sdc_clip_load(ms, &p2, &e);
    CHECK(c2l, "te2 low-mem: %s", e.msg);
    const char *pj = sdc_store_meta(rs, "prompts");
    cJSON *prompts = cJSON_Parse(pj ? pj : "");
    CHECK(cJSON_IsArray(prompts) && cJSON_GetArraySize(prompts) == 11, "prompts metadata");
    if (!c1 || !c2 || !c2l || !cJSON_IsArray(prompts)) goto out;
    CHECK(!sdc_clip_is_openclip(c1) && sdc_clip_is_openclip(c2), "tower layouts");
    CHECK(sdc_clip_width(c1) == 32 && sdc_clip_width(c2) == 64 && sdc_clip_proj_dim(c2) == 64 &&
          sdc_clip_proj_dim(c1) == 0, "widths %d %d proj %d", sdc_clip_width(c1), sdc_clip_width(c2),
          sdc_clip_proj_dim(c2));
    const int L = SDC_TOK_CTX, C1 = 32, C2 = 64, CC = C1 + C2;
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    size_t nid = 0;
    float *ids_ref = tu_tensor_f32(rs, "input_ids", &nid), *ids2_ref = tu_tensor_f32(rs, "input_ids_2", NULL);
    float *eos_ref = tu_tensor_f32(rs, "eos_index", NULL);
    CHECK(ids_ref && ids2_ref && eos_ref && nid == 11 * 77, "ids refs");
    for (int k = 0; k < cJSON_GetArraySize(prompts) && ids_ref && ids2_ref && eos_ref; k++) {
        const char *txt = cJSON_GetArrayItem(prompts, k)->valuestring;
        int32_t *tok = NULL, w1[SDC_TOK_CTX], w2[SDC_TOK_CTX];
        size_t nt = 0;
        CHECK(sdc_tokenize(txt, &tok, &nt, &e) == 0, "tokenize: %s", e.msg);
        sdc_tokens_window(w1, tok, nt, SDC_TOK_EOS);
        sdc_tokens_window(w2, tok, nt, 0);
        free(tok);
        int same1 = 1, same2 = 1;
        for (int i = 0; i < L; i++) {
            same1 &= w1[i] == (int32_t)ids_ref[k * L + i];
            same2 &= w2[i] == (int32_t)ids2_ref[k * L + i];
        }
        CHECK(same1 && same2, "prompt %d: ids differ (tokenizer 1 %d, tokenizer 2 %d)", k, same1, same2);
        float ctx[77 * 96], h1[77 * 32], h2[77 * 64], pooled[64], pooled_l[64], h2l[77 * 64];
        taps t1 = {{0}, 0}, t2 = {{0}, 0};
        sdc_clip_set_tap(c1, on_tap, &t1);
        sdc_clip_set_tap(c2, on_tap, &t2);
        sdc_clip_encode_opts o1 = {.clip_skip = 2, .no_final_norm = 1};
        sdc_clip_encode_opts o2 = {.clip_skip = 2, .no_final_norm = 1, .pooled = pooled};
        int rc = sdc_clip_encode_ex(c1, &a, w1, L, &o1, h1, &e);
        CHECK(rc == 0, "te1 encode: %s", e.msg);
        rc |= sdc_clip_encode_ex(c2, &a, w2, L, &o2, h2, &e);
        CHECK(rc == 0, "te2 encode: %s", e.msg);
        sdc_clip_encode_opts o2l = o2;
        o2l.pooled = pooled_l;
        CHECK(sdc_clip_encode_ex(c2l, &a, w2, L, &o2l, h2l, &e) == 0, "te2 low-mem: %s", e.msg);
        CHECK(!memcmp(h2, h2l, sizeof h2) && !memcmp(pooled, pooled_l, sizeof pooled),
              "prompt %d: low-mem tower 2 differs", k);
        if (rc) continue;
        char nm[64];
        for (int i = 0; i <= 3; i++) {
            snprintf(nm, sizeof nm, "te1.hidden_states.%d", i);
            if (t1.h[i]) cmp(rs, nm, k, t1.h[i], (size_t)L * C1, 1);
        }
        for (int i = 0; i <= 4; i++) {
            snprintf(nm, sizeof nm, "te2.hidden_states.%d", i);
            if (t2.h[i]) cmp(rs, nm, k, t2.h[i], (size_t)L * C2, 1);
        }
        CHECK(t1.h[2] && !t1.h[3] && t2.h[4], "prompt %d: tower 1 ran past its penultimate layer, "
              "or tower 2 did not run its last one", k);
        for (int i = 0; i < 16; i++) { free(t1.h[i]); free(t2.h[i]); }
        for (int i = 0; i < L; i++) {
            memcpy(ctx + i * CC, h1 + i * C1, sizeof(float) * C1);
            memcpy(ctx + i * CC + C1, h2 + i * C2, sizeof(float) * C2);
        }
        double er[4] = {cmp(rs, "te1.penultimate", k, h1, (size_t)L * C1, k != 0),
                        cmp(rs, "te2.penultimate", k, h2, (size_t)L * C2, k != 0),
                        cmp(rs, "context", k, ctx, (size_t)L * CC, k != 0),
                        cmp(rs, "text_embeds", k, pooled, 64, k != 0)};
        for (int i = 0; i < 4; i++) if (er[i] > worst[i]) worst[i] = er[i];
        if (keep_ctx && !compare_to_keep) {
            memcpy(keep_ctx + (size_t)k * L * CC, ctx, sizeof ctx);
            memcpy(keep_pooled + (size_t)k * 64, pooled, sizeof pooled);
        } else if (keep_ctx) {
            CHECK(!memcmp(keep_ctx + (size_t)k * L * CC, ctx, sizeof ctx) &&
                  !memcmp(keep_pooled + (size_t)k * 64, pooled, sizeof pooled),
                  "prompt %d: %s differs from the safetensors run", k, path);
        }
        int eos = 0;
        for (int i = 1; i < L; i++) if (w2[i] > w2[eos]) eos = i;
        CHECK(eos == (int)eos_ref[k], "prompt %d: eos %d, ref %d", k, eos, (int)eos_ref[k]);
    }
    printf("   worst over 11 prompts: te1.penultimate %.3g, te2.penultimate %.3g, context %.3g, "
           "text_embeds %.3g\n", worst[0], worst[1], worst[2], worst[3]);
    /* Tower 1 has no projection: asking for a pooled vector is an error, not a crash. */
    float junk[77 * 32], pooled[64];
    sdc_clip_encode_opts bad = {.clip_skip = 2, .pooled = pooled};
    e.msg[0] = 0;
    CHECK(sdc_clip_encode_ex(c1, &a, (int32_t[77]){SDC_TOK_BOS, SDC_TOK_EOS}, 77, &bad, junk, &e) != 0 &&
          strstr(e.msg, "text_projection"), "pooled from tower 1: %s", e.msg);
    free(ids_ref); free(ids2_ref); free(eos_ref);
    sdc_arena_free(&a);
out:
    cJSON_Delete(prompts);
    sdc_clip_free(c1);
    sdc_clip_free(c2);
    sdc_clip_free(c2l);
    sdc_store_close(ms);
    sdc_store_close(rs);
}

/* A file whose bigG tower lacks text_projection, then one where it has the wrong shape. */
static void projection_errors(void) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/sdc_test_sdxl_text_%d.safetensors", (int)getpid());
    for (int k = 0; k < 2; k++) {
        /* token table [49408, 8], positions [77, 8], one layer, ln_final, maybe a [4, 8] projection */
        const char *hdr_fmt = k == 0 ? "" : ",\"" TE2 "text_projection\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[%zu,%zu]}";
        static const char *const names[] = {
            "token_embedding.weight", "positional_embedding", "transformer.resblocks.0.ln_1.weight",
            "transformer.resblocks.0.ln_1.bias", "transformer.resblocks.0.ln_2.weight",
            "transformer.resblocks.0.ln_2.bias", "transformer.resblocks.0.attn.out_proj.weight",
            "transformer.resblocks.0.attn.out_proj.bias", "transformer.resblocks.0.mlp.c_fc.weight",
            "transformer.resblocks.0.mlp.c_fc.bias", "transformer.resblocks.0.mlp.c_proj.weight",
            "transformer.resblocks.0.mlp.c_proj.bias", "transformer.resblocks.0.attn.in_proj_weight",
            "transformer.resblocks.0.attn.in_proj_bias", "ln_final.weight", "ln_final.bias"};
        static const int dims[][2] = {{49408, 8}, {77, 8}, {8, 0}, {8, 0}, {8, 0}, {8, 0}, {8, 8}, {8, 0},
                                      {32, 8}, {32, 0}, {8, 32}, {8, 0}, {24, 8}, {24, 0}, {8, 0}, {8, 0}};
        char hdr[8192];
        size_t o = 0, off = 0;
        o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{");
        for (int i = 0; i < 16; i++) {
            size_t numel = (size_t)dims[i][0] * (dims[i][1] ? (size_t)dims[i][1] : 1);
            if (dims[i][1])
                o += (size_t)snprintf(hdr + o, sizeof hdr - o, "%s\"%s%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],"
                                      "\"data_offsets\":[%zu,%zu]}", i ? "," : "", TE2, names[i], dims[i][0],
                                      dims[i][1], off, off + 4 * numel);
            else
                o += (size_t)snprintf(hdr + o, sizeof hdr - o, "%s\"%s%s\":{\"dtype\":\"F32\",\"shape\":[%d],"
                                      "\"data_offsets\":[%zu,%zu]}", i ? "," : "", TE2, names[i], dims[i][0],
                                      off, off + 4 * numel);
            off += 4 * numel;
        }
        if (k) { o += (size_t)snprintf(hdr + o, sizeof hdr - o, hdr_fmt, off, off + 4 * 32); off += 4 * 32; }
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
        sdc_err e = {{0}};
        sdc_store *s = sdc_store_new();
        CHECK(sdc_store_open(s, path, NULL, &e) == 0, "%s", e.msg);
        sdc_clip_params p = {.n_heads = 2, .act = -1, .prefix = TE2, .projection = 1};
        sdc_clip *c = sdc_clip_load(s, &p, &e);
        printf("== %s -> %s\n", k ? "text_projection [4,8]" : "no text_projection", e.msg);
        CHECK(!c && strstr(e.msg, "text_projection"), "bad projection accepted or unclear: %s", e.msg);
        p.projection = 0;   /* without the projection asked for, the tower loads */
        sdc_clip *c0 = sdc_clip_load(s, &p, &e);
        CHECK(c0, "tower without projection: %s", e.msg);
        sdc_clip_free(c);
        sdc_clip_free(c0);
        sdc_store_close(s);
    }
    remove(path);
}

int main(void) {
    sdc_kernels_set_threads(1);
    static float ctx[11 * 77 * 96], pooled[11 * 64];
    run(MODEL, ctx, pooled, 0);
    run(CKPT, ctx, pooled, 1);
    projection_errors();
    printf(fails ? "test_sdxl_text: %d FAILED\n" : "test_sdxl_text: all passed\n", fails);
    return fails ? 1 : 0;
}
