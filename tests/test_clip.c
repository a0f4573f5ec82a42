/* test_clip.c — the text encoders against the reference (transformers CLIPTextModel on the tiny
 * fixtures): every prompt's last_hidden_state, every hidden_states.i, clip skip 2 (SD 1.x) and
 * the SD 2.x penultimate-layer conditioning; the f16 and f32 safetensors and the zip / legacy
 * .ckpt files (where this build reads ckpt); clear errors
 * for a store without a text encoder, a wrong shape, a bad token id, a clip skip too deep.
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

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

#define ATOL 1e-4
#define RTOL_OF_MAX 2e-5

static int within(double err, double refmax) {
    return err <= ATOL || err <= RTOL_OF_MAX * refmax;
}

/* The whole tensor name as f32 (malloc'd), checking its element count. */
static float *ref_f32(const sdc_store *s, const char *name, int64_t numel) {
    size_t n = 0;
    float *x = tu_tensor_f32(s, name, &n);
    if (x && (int64_t)n != numel) { free(x); return NULL; }
    return x;
}

/* text.heads of a fixtures config JSON; -1 on error. */
static int config_heads(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    const cJSON *h = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "text"), "heads");
    int heads = cJSON_IsNumber(h) ? h->valueint : -1;
    cJSON_Delete(j);
    return heads;
}

/* Collects hidden_states.i during an encode. */
typedef struct taps { float *h[64]; int n, C, count; } taps;
static void on_tap(void *user, int i, const float *x, int n, int C) {
    taps *t = user;
    if (i < 0 || i >= 64) return;
    free(t->h[i]);
    t->h[i] = malloc((size_t)n * C * sizeof(float));
    memcpy(t->h[i], x, (size_t)n * C * sizeof(float));
    t->n = n;
    t->C = C;
    if (i + 1 > t->count) t->count = i + 1;
}

/* One model file against one reference file.
 * sd2: the reference is the (L-1)-layer encoder: last_hidden_state = our default (penultimate),
 * hidden_states.i = ours for i <= L-1, penultimate_final_ln = ours with clip skip 3. */
static void check_model(const char *model, const char *refpath, const char *config, int sd2) {
    printf("== %s vs %s\n", model, refpath);
    sdc_store *st = sdc_store_new(), *ref = sdc_store_new();
    sdc_err e = {{0}};
    int rc = sdc_store_open(st, model, NULL, &e);
    CHECK(rc == 0, "%s: %s", model, e.msg);
    rc |= sdc_store_open(ref, refpath, NULL, &e);
    CHECK(rc == 0, "%s: %s", refpath, e.msg);
    int heads = config_heads(config);
    CHECK(heads > 0, "%s: no text.heads", config);
    sdc_clip_params p = {.n_heads = heads, .act = -1}, plow = {.n_heads = heads, .act = -1, .low_mem = 1};
    sdc_clip *c = rc ? NULL : sdc_clip_load(st, &p, &e);
    CHECK(c || rc, "load %s: %s", model, e.msg);
    /* the same encoder in low-mem mode: no f32 copy of the matrices or the token table, the
     * same output bits */
    sdc_clip *cl = rc ? NULL : sdc_clip_load(st, &plow, &e);
    CHECK(cl || rc, "low-mem load %s: %s", model, e.msg);
    if (!c || !cl) goto out;
    printf("f32 weights held: default %.1f KiB, low-mem %.1f KiB\n", sdc_clip_weight_bytes(c) / 1024.0,
           sdc_clip_weight_bytes(cl) / 1024.0);
    CHECK(sdc_clip_weight_bytes(cl) * 8 < sdc_clip_weight_bytes(c), "low-mem encoder holds %zu bytes",
          sdc_clip_weight_bytes(cl));
    const int C = sdc_clip_width(c), L = sdc_clip_layers(c);
    CHECK(sdc_clip_is_openclip(c) == sd2, "layout detection");
    CHECK(L == 3 && C == 32 && sdc_clip_positions(c) == 77 && sdc_clip_vocab(c) == 49408,
          "sizes from the weights: L %d C %d", L, C);

    const sdc_tensor *ids_t = sdc_store_get(ref, "input_ids");
    CHECK(ids_t && ids_t->ndim == 2 && ids_t->shape[1] == 77 && ids_t->dtype == SDC_I64,
          "input_ids");
    if (!ids_t) goto out;
    const int N = (int)ids_t->shape[0], T = 77;
    const int64_t numel = (int64_t)N * T * C;
    float *last = ref_f32(ref, "last_hidden_state", numel);
    float *pen = ref_f32(ref, "penultimate_final_ln", numel);
    CHECK(last && pen, "reference tensors");
    const int n_hidden = sd2 ? L : L + 1;    /* hidden_states.0 .. hidden_states.(L or L-1) */
    float *hid[64] = {0};
    for (int i = 0; i < n_hidden; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "hidden_states.%d", i);
        hid[i] = ref_f32(ref, nm, numel);
        CHECK(hid[i], "reference %s", nm);
    }

    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    float *out = malloc((size_t)T * C * sizeof *out), *outl = malloc((size_t)T * C * sizeof *outl);
    int low_same = 1;
    taps tp = {{0}, 0, 0, 0};
    sdc_clip_set_tap(c, on_tap, &tp);
    double worst_last = 0, worst_pen = 0, worst_hid = 0;
    for (int k = 0; k < N && last && pen; k++) {
        int32_t ids[77];
        for (int i = 0; i < T; i++) {
            int64_t v;
            memcpy(&v, (const char *)ids_t->data + ((size_t)k * T + i) * 8, 8);
            ids[i] = (int32_t)v;
        }
        /* default conditioning */
        tp.count = 0;
        rc = sdc_clip_encode(c, &a, ids, T, 0, out, &e);
        CHECK(rc == 0, "encode prompt %d: %s", k, e.msg);
        double rmax, err = tu_max_abs_diff(out, last + (size_t)k * T * C, (size_t)T * C, &rmax);
        printf("prompt %d: last_hidden_state max abs err %.3g (max|ref| %.3g)\n", k, err, rmax);
        CHECK(within(err, rmax), "prompt %d last_hidden_state err %g", k, err);
        if (err > worst_last) worst_last = err;
        CHECK(sdc_clip_encode(cl, &a, ids, T, 0, outl, &e) == 0, "low-mem encode: %s", e.msg);
        low_same &= !memcmp(out, outl, (size_t)T * C * sizeof *out);
        CHECK(tp.count == n_hidden, "prompt %d: %d hidden states tapped, %d expected", k,
              tp.count, n_hidden);
        for (int i = 0; i < n_hidden && i < tp.count; i++) {
            if (!hid[i]) continue;
            double hm, he = tu_max_abs_diff(tp.h[i], hid[i] + (size_t)k * T * C, (size_t)T * C, &hm);
            CHECK(within(he, hm), "prompt %d hidden_states.%d err %g", k, i, he);
            if (he > worst_hid) worst_hid = he;
        }
        /* clip skip: SD 1.x 2 = final LN of the penultimate layer; SD 2.x 3 = one below its
         * default (the reference's (L-1)-layer encoder's penultimate) */
        rc = sdc_clip_encode(c, &a, ids, T, sd2 ? 3 : 2, out, &e);
        CHECK(rc == 0, "encode prompt %d clip skip: %s", k, e.msg);
        err = tu_max_abs_diff(out, pen + (size_t)k * T * C, (size_t)T * C, &rmax);
        CHECK(within(err, rmax), "prompt %d penultimate_final_ln err %g", k, err);
        if (err > worst_pen) worst_pen = err;
        CHECK(sdc_clip_encode(cl, &a, ids, T, sd2 ? 3 : 2, outl, &e) == 0, "low-mem encode: %s", e.msg);
        low_same &= !memcmp(out, outl, (size_t)T * C * sizeof *out);
        if (sd2) {   /* clip skip 1 and 2 both mean the penultimate layer on SD 2.x */
            float *o2 = malloc((size_t)T * C * sizeof *o2);
            sdc_clip_encode(c, &a, ids, T, 2, o2, &e);
            sdc_clip_encode(c, &a, ids, T, 1, out, &e);
            CHECK(tu_max_abs_diff(o2, out, (size_t)T * C, NULL) == 0, "SD 2.x clip skip 1 != 2");
            free(o2);
        }
    }
    printf("max abs err: last_hidden_state %.3g, hidden_states %.3g, %s %.3g\n", worst_last,
           worst_hid, sd2 ? "clip skip 3 (penultimate_final_ln)" : "clip skip 2", worst_pen);
    printf("low-mem mode: every prompt and clip skip bit-identical: %s\n", low_same ? "yes" : "NO");
    CHECK(low_same, "low-mem output differs from the default mode's");

    /* Bad input: ids outside the vocabulary, a skip deeper than the model, bad lengths. */
    int32_t bad[77];
    for (int i = 0; i < 77; i++) bad[i] = 49407;
    bad[5] = 49408;
    e.msg[0] = 0;
    CHECK(sdc_clip_encode(c, &a, bad, 77, 0, out, &e) == -1 && strstr(e.msg, "49408"),
          "id out of range: '%s'", e.msg);
    bad[5] = -1;
    CHECK(sdc_clip_encode(c, &a, bad, 77, 0, out, &e) == -1, "negative id accepted");
    CHECK(sdc_clip_encode(cl, &a, bad, 77, 0, out, &e) == -1, "low-mem: negative id accepted");
    bad[5] = 320;
    CHECK(sdc_clip_encode(c, &a, bad, 77, 4, out, &e) == -1 && strstr(e.msg, "clip skip"),
          "clip skip 4 on 3 layers: '%s'", e.msg);
    CHECK(sdc_clip_encode(c, &a, bad, 78, 0, out, &e) == -1, "78 ids accepted");
    CHECK(sdc_clip_encode(c, &a, bad, 0, 0, out, &e) == -1, "0 ids accepted");
    printf("errors: %s\n", e.msg);
    CHECK(a.in_use == 0, "arena not released: %zu bytes", a.in_use);

    for (int i = 0; i < 64; i++) { free(tp.h[i]); free(hid[i]); }
    free(out);
    free(outl);
    free(last);
    free(pen);
    sdc_arena_free(&a);
out:
    sdc_clip_free(c);
    sdc_clip_free(cl);
    sdc_store_close(st);
    sdc_store_close(ref);
}

/* Writes a safetensors file of zero F32 tensors: names[i] with shapes[i] (ndim <= 2). */
static int write_st(const char *path, int n, const char *const *names, const int64_t (*shapes)[2],
                    const int *ndims) {
    char hdr[8192] = "{";
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        char shp[64] = "";
        for (int d = 0; d < ndims[i]; d++) {
            numel *= shapes[i][d];
            snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s%lld", d ? "," : "",
                     (long long)shapes[i][d]);
        }
        snprintf(hdr + strlen(hdr), sizeof hdr - strlen(hdr),
                 "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                 i ? "," : "", names[i], shp, off, off + (size_t)numel * 4);
        off += (size_t)numel * 4;
    }
    strcat(hdr, "}");
    while (strlen(hdr) % 8) strcat(hdr, " ");
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (size_t i = 0; i < off; i++) fputc(0, f);
    return fclose(f);
}

static void check_errors(void) {
    sdc_err e = {{0}};
    sdc_clip_params p = {.n_heads = 4, .act = -1};
    /* A store with no text encoder (the UNet reference file). */
    sdc_store *st = sdc_store_new();
    CHECK(sdc_store_open(st, "tests/data/refs/sd1_unet.safetensors", NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_clip_load(st, &p, &e) == NULL && strstr(e.msg, "no text encoder"),
          "no text encoder: '%s'", e.msg);
    printf("no text encoder: %s\n", e.msg);
    sdc_store_close(st);
    CHECK(sdc_clip_load(NULL, &p, &e) == NULL, "NULL store");

    /* Wrong shapes: a position table narrower than the token table; then a missing layer
     * tensor. */
    char path[] = "/tmp/sdc_test_clip_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    const char *pre = "cond_stage_model.transformer.text_model.";
    char n0[128], n1[128], n2[128];
    snprintf(n0, sizeof n0, "%sembeddings.token_embedding.weight", pre);
    snprintf(n1, sizeof n1, "%sembeddings.position_embedding.weight", pre);
    snprintf(n2, sizeof n2, "%sencoder.layers.0.layer_norm1.weight", pre);
    const char *names[3] = {n0, n1, n2};
    int64_t shapes[3][2] = {{10, 8}, {77, 4}, {8, 0}};
    int ndims[3] = {2, 2, 1};
    CHECK(write_st(path, 3, names, (const int64_t(*)[2])shapes, ndims) == 0, "write");
    st = sdc_store_new();
    CHECK(sdc_store_open(st, path, NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_clip_load(st, &p, &e) == NULL && strstr(e.msg, "position_embedding") &&
          strstr(e.msg, "[?,8]"), "narrow position table: '%s'", e.msg);
    printf("wrong shape: %s\n", e.msg);
    sdc_store_close(st);
    shapes[1][1] = 8;
    CHECK(write_st(path, 3, names, (const int64_t(*)[2])shapes, ndims) == 0, "write");
    st = sdc_store_new();
    CHECK(sdc_store_open(st, path, NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_clip_load(st, &p, &e) == NULL && strstr(e.msg, "missing"),
          "missing layer tensors: '%s'", e.msg);
    printf("missing tensor: %s\n", e.msg);
    sdc_store_close(st);
    unlink(path);
}

int main(void) {
    sdc_kernels_set_threads(2);
    check_model("tests/data/tiny-sd1-fp16.safetensors", "tests/data/refs/sd1_text_encoder.safetensors",
                "tests/data/tiny-sd1.config.json", 0);
    check_model("tests/data/tiny-sd1.safetensors", "tests/data/refs/sd1_text_encoder.safetensors",
                "tests/data/tiny-sd1.config.json", 0);
    check_model("tests/data/tiny-sd1.ckpt", "tests/data/refs/sd1_text_encoder.safetensors",
                "tests/data/tiny-sd1.config.json", 0);
    check_model("tests/data/tiny-sd1-legacy.ckpt", "tests/data/refs/sd1_text_encoder.safetensors",
                "tests/data/tiny-sd1.config.json", 0);
    check_model("tests/data/tiny-sd2-fp16.safetensors", "tests/data/refs/sd2_text_encoder.safetensors",
                "tests/data/tiny-sd2.config.json", 1);
    check_errors();
    printf(fails ? "test_clip: %d FAILED\n" : "test_clip: ok\n", fails);
    return fails ? 1 : 0;
}
