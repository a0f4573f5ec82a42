/* test_lora_loader.c — kohya LoRA files read, mapped and merged as the reference does.
 *
 * tests/data/tiny-sd1-lora.{safetensors,ckpt} (the same tensors) on tiny-sd1 with multiplier 0.8:
 *  - every one of the 210 modules maps to the weight refs/sd1_lora_merge's key_map names (made
 *    with diffusers' own conversion tables);
 *  - the merged weight and the delta of the 8 modules stored there, to 1e-6 (fixtures README),
 *    through the load-time merge, the low-mem widening and a row range (Winograd blocks): the
 *    three give the same bits;
 *  - the text encoder and the UNet bind every module (nothing left unused), default and low-mem;
 *  - a fused q|k|v read a few rows at a time across the views' seams (the streamed Linear's
 *    panels), with the LoRA on every view or one: the same bits as the whole and the merged copy;
 *  - two LoRAs add up; multiplier 0 changes nothing;
 *  - malformed LoRAs give one clear line and leave the set as it was: truncated file, rank of up
 *    and down disagreeing, a delta that does not fit its weight, a module that matches no weight,
 *    LoHa, a module without its up factor, a hostile pickle. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "models/clip.h"
#include "models/unet.h"
#include "models/weight.h"
#include "runtime/lora.h"
#include "test_util.h"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

#define MODEL "tests/data/tiny-sd1.safetensors"
#define REF   "tests/data/refs/sd1_lora_merge.safetensors"

static sdc_store *open_store(const char *path) {
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    if (sdc_store_open(s, path, NULL, &e)) { printf("cannot open %s: %s\n", path, e.msg); exit(1); }
    return s;
}

/* Key map and merge of one LoRA file against the reference. */
static void check_file(const sdc_store *model, const sdc_store *ref, const char *lora_path) {
    sdc_lora_set *set = sdc_lora_set_new();
    sdc_err e = {{0}};
    int rc = sdc_lora_set_add(set, model, lora_path, 0.8f, NULL, &e);
    CHECK(rc == 0, "%s: %s", lora_path, e.msg);
    if (rc) { sdc_lora_set_free(set); return; }
    CHECK(sdc_lora_set_count(set) == 210, "%s: %zu modules, expected 210", lora_path, sdc_lora_set_count(set));

    cJSON *km = cJSON_Parse(sdc_store_meta(ref, "key_map"));
    CHECK(km && cJSON_GetArraySize(km) == 210, "key_map: not 210 entries");
    int mapped = 0;
    for (size_t i = 0; i < sdc_lora_set_count(set); i++) {
        const sdc_lora_mod *m = sdc_lora_set_at(set, i);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(km, m->name);
        CHECK(cJSON_IsString(want) && !strcmp(want->valuestring, m->target),
              "%s -> %s, reference says %s", m->name, m->target, cJSON_IsString(want) ? want->valuestring : "(absent)");
        CHECK(m->rank == 4 && fabsf(m->scale - 0.4f) < 1e-7f, "%s: rank %d scale %g", m->name, m->rank, m->scale);
        mapped += cJSON_IsString(want) && !strcmp(want->valuestring, m->target);
    }
    CHECK(mapped == 210, "%s: %d of 210 modules mapped as the reference", lora_path, mapped);
    cJSON_Delete(km);

    int nmod = 0;
    for (size_t i = 0; i < sdc_store_count(ref); i++) {
        const char *rn = sdc_store_at(ref, i)->name;
        if (strncmp(rn, "merged.", 7)) continue;
        const char *key = rn + 7;
        char dn[600];
        snprintf(dn, sizeof dn, "delta.%s", key);
        const sdc_tensor *t = sdc_store_get(model, key);
        CHECK(t != NULL, "model has no %s", key);
        if (!t) continue;
        size_t n = (size_t)t->numel;
        float *merged = tu_tensor_f32(ref, rn, NULL), *delta = tu_tensor_f32(ref, dn, NULL);
        float *orig = tu_tensor_f32(model, key, NULL);
        float *got = malloc(n * sizeof *got), *low = NULL, *rows = malloc(n * sizeof *rows);
        const sdc_lora_mod *d = sdc_lora_find(set, key);
        CHECK(d != NULL, "no delta for %s", key);
        CHECK(sdc_weight_load_f32(got, t, d, &e) == 0, "%s: %s", key, e.msg);
        double dm = tu_max_abs_diff(got, merged, n, NULL);
        CHECK(dm <= 1e-6, "%s: merged weight differs by %g (tolerance 1e-6)", key, dm);
        for (size_t j = 0; j < n; j++) got[j] -= orig[j];
        double dd = tu_max_abs_diff(got, delta, n, NULL);
        CHECK(dd <= 1e-6, "%s: delta differs by %g (tolerance 1e-6)", key, dd);
        /* low-mem: the view widened with its deltas; and the rows 5.. in two pieces */
        sdc_weight w;
        sdc_weight_set_views_lora(&w, model, &t, 1, set);
        sdc_arena a;
        sdc_arena_init(&a, 1 << 20);
        low = (float *)sdc_weight_f32(&w, &a);
        sdc_weight_load_f32(got, t, d, &e);
        CHECK(low && !memcmp(low, got, n * sizeof *got), "%s: low-mem widening differs from the load-time merge", key);
        size_t R = (size_t)t->shape[0], cols = n / R;
        CHECK(sdc_weight_widen_rows(rows, t, d, 0, 5) == 0 &&
              sdc_weight_widen_rows(rows + 5 * cols, t, d, 5, R - 5) == 0 &&
              !memcmp(rows, got, n * sizeof *got), "%s: row ranges differ from the whole", key);
        sdc_arena_free(&a);
        free(merged); free(delta); free(orig); free(got); free(rows);
        nmod++;
    }
    CHECK(nmod == 8, "reference holds %d merged modules, expected 8", nmod);

    /* both models bind every module, default and low-mem */
    for (int lowmem = 0; lowmem < 2; lowmem++) {
        sdc_lora_set *s2 = sdc_lora_set_new();
        sdc_lora_set_add(s2, model, lora_path, 0.8f, NULL, &e);
        sdc_clip_params cp = {.n_heads = 4, .act = -1, .low_mem = lowmem, .lora = s2};
        sdc_unet_params up = {.num_heads = 8, .low_mem = lowmem, .lora = s2};
        sdc_clip *c = sdc_clip_load(model, &cp, &e);
        CHECK(c, "clip with LoRA: %s", e.msg);
        CHECK(sdc_lora_check_used(s2, &e) != 0 && strstr(e.msg, "lora_unet_"),
              "before the UNet is bound its modules are unused: '%s'", e.msg);
        sdc_unet *u = sdc_unet_load(model, &up, &e);
        CHECK(u, "unet with LoRA: %s", e.msg);
        CHECK(sdc_lora_check_used(s2, &e) == 0, "low_mem %d: %s", lowmem, e.msg);
        sdc_unet_free(u);
        sdc_clip_free(c);
        sdc_lora_set_free(s2);
    }
    sdc_lora_set_free(set);
}

/* A fused q|k|v weight (three 32-row views) read a few rows at a time (sdc_weight_rows, as the
 * streamed Linear reads its panels), over windows that cross the views' seams, with the LoRA on
 * every view and on k only: the same bits as the whole weight widened (sdc_weight_f32) and as
 * the f32 copy with the deltas merged at load (the default mode's); a window past the end fails. */
static void check_fused_rows(const sdc_store *model) {
    static const char *const names[3] = {"to_q", "to_k", "to_v"};
    sdc_lora_set *set = sdc_lora_set_new();
    sdc_err e = {{0}};
    CHECK(sdc_lora_set_add(set, model, "tests/data/tiny-sd1-lora.safetensors", 0.8f, NULL, &e) == 0, "%s", e.msg);
    const sdc_tensor *t[3];
    char name[256];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.%s.weight",
                 names[i]);
        t[i] = sdc_store_get(model, name);
        CHECK(t[i] != NULL, "%s: missing", name);
        if (!t[i]) { sdc_lora_set_free(set); return; }
    }
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    for (int only_k = 0; only_k < 2; only_k++) {
        sdc_weight w;
        sdc_weight_set_views_lora(&w, model, t, 3, set);
        CHECK(w.delta[0] && w.delta[1] && w.delta[2], "the LoRA changes q, k and v");
        if (only_k) w.delta[0] = w.delta[2] = NULL;
        const size_t R = w.n / w.cols;
        CHECK(w.cols == 32 && R == 96, "fused weight %zu x %zu, expected 96 x 32", R, w.cols);
        const float *whole = sdc_weight_f32(&w, &a);
        float *merged = malloc(w.n * sizeof(float)), *rows = malloc(w.n * sizeof(float));
        for (int i = 0; i < 3; i++)   /* the default mode's copy: each view converted, its deltas merged */
            CHECK(sdc_weight_load_f32(merged + (size_t)i * 32 * 32, t[i], w.delta[i], &e) == 0, "%s", e.msg);
        static const size_t step[3] = {7, 13, 96};   /* windows: 29..35 crosses q|k, 63..69 k|v */
        for (int k = 0; k < 3; k++) {
            int ok = 1;
            for (size_t r0 = 0; r0 < R && ok; r0 += step[k]) {
                size_t nr = R - r0 < step[k] ? R - r0 : step[k];
                ok = sdc_weight_rows(&w, rows + r0 * w.cols, r0, nr) == 0;
            }
            CHECK(ok && whole && !memcmp(rows, whole, w.n * sizeof(float)) && !memcmp(rows, merged, w.n * sizeof(float)),
                  "LoRA on %s: rows read %zu at a time differ from the whole weight", only_k ? "k" : "q, k, v", step[k]);
        }
        CHECK(sdc_weight_rows(&w, rows, 90, 7) != 0, "rows 90..96 of 96: not refused");
        free(merged); free(rows);
    }
    sdc_arena_free(&a);
    sdc_lora_set_free(set);
}

/* Two files add up: the same LoRA twice at 0.4 each = once at 0.8 (to rounding). Multiplier 0:
 * the weight as stored. */
static void check_sum(const sdc_store *model) {
    sdc_err e = {{0}};
    sdc_lora_set *two = sdc_lora_set_new(), *one = sdc_lora_set_new(), *zero = sdc_lora_set_new();
    CHECK(!sdc_lora_set_add(two, model, "tests/data/tiny-sd1-lora.safetensors", 0.4f, NULL, &e) &&
          !sdc_lora_set_add(two, model, "tests/data/tiny-sd1-lora.ckpt", 0.4f, NULL, &e), "%s", e.msg);
    CHECK(!sdc_lora_set_add(one, model, "tests/data/tiny-sd1-lora.safetensors", 0.8f, NULL, &e), "%s", e.msg);
    CHECK(!sdc_lora_set_add(zero, model, "tests/data/tiny-sd1-lora.safetensors", 0.0f, NULL, &e), "%s", e.msg);
    CHECK(sdc_lora_set_count(two) == 420 && sdc_lora_set_files(two) == 2, "two files: %zu modules", sdc_lora_set_count(two));
    const char *key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";
    const sdc_tensor *t = sdc_store_get(model, key);
    size_t n = (size_t)t->numel;
    float *a = malloc(n * 4), *b = malloc(n * 4), *z = malloc(n * 4), *o = tu_tensor_f32(model, key, NULL);
    const sdc_lora_mod *d2 = sdc_lora_find(two, key);
    CHECK(d2 && d2->next && !d2->next->next, "two deltas chained on %s", key);
    sdc_weight_load_f32(a, t, d2, &e);
    sdc_weight_load_f32(b, t, sdc_lora_find(one, key), &e);
    sdc_weight_load_f32(z, t, sdc_lora_find(zero, key), &e);
    double d = tu_max_abs_diff(a, b, n, NULL);
    CHECK(d <= 1e-6, "0.4 + 0.4 vs 0.8: %g", d);
    CHECK(tu_max_abs_diff(a, o, n, NULL) > 1e-2, "the LoRA changes the weight");
    CHECK(!memcmp(z, o, n * 4), "multiplier 0 leaves the weight as stored");
    free(a); free(b); free(z); free(o);
    sdc_lora_set_free(two); sdc_lora_set_free(one); sdc_lora_set_free(zero);
}

/* ── malformed files, written here ── */

typedef struct ftensor { const char *name; int ndim; int64_t shape[4]; } ftensor;

/* A safetensors file of F32 tensors (values i * 0.01) at path. */
static void write_st(const char *path, const ftensor *t, int n) {
    char hdr[16384];
    size_t o = 0, off = 0;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{");
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        char sh[128] = "";
        for (int d = 0; d < t[i].ndim; d++) {
            numel *= (size_t)t[i].shape[d];
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        }
        o += (size_t)snprintf(hdr + o, sizeof hdr - o, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                              i ? "," : "", t[i].name, sh, off, off + numel * 4);
        off += numel * 4;
    }
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "}");
    while (o % 8) hdr[o++] = ' ';
    FILE *f = fopen(path, "wb");
    uint64_t hl = o;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, o, f);
    for (size_t i = 0; i < off / 4; i++) { float v = (float)(i % 100) * 0.01f; fwrite(&v, 4, 1, f); }
    fclose(f);
}

static void expect_refused(const sdc_store *model, const char *path, const char *want) {
    sdc_lora_set *s = sdc_lora_set_new();
    sdc_err e = {{0}};
    CHECK(!sdc_lora_set_add(s, model, "tests/data/tiny-sd1-lora.safetensors", 1.0f, NULL, &e), "%s", e.msg);
    size_t before = sdc_lora_set_count(s);
    int rc = sdc_lora_set_add(s, model, path, 1.0f, NULL, &e);
    CHECK(rc == -1, "%s: accepted", path);
    CHECK(strstr(e.msg, want) != NULL, "%s: message '%s' does not say '%s'", path, e.msg, want);
    CHECK(!strchr(e.msg, '\n'), "%s: message is more than one line", path);
    CHECK(sdc_lora_set_count(s) == before && sdc_lora_set_files(s) == 1, "%s: the set changed", path);
    /* the set still works */
    const char *key = "model.diffusion_model.input_blocks.1.1.proj_in.weight";
    const sdc_lora_mod *d = sdc_lora_find(s, key);
    CHECK(d && !d->next, "%s: the set's chain on %s is broken", path, key);
    printf("ok: %s refused: %s\n", path, e.msg);
    sdc_lora_set_free(s);
}

static void check_malformed(const sdc_store *model) {
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char p[512];
    const char *Q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
    char dn[200], upn[200], al[200];
    snprintf(dn, sizeof dn, "%s.lora_down.weight", Q);
    snprintf(upn, sizeof upn, "%s.lora_up.weight", Q);
    snprintf(al, sizeof al, "%s.alpha", Q);

    snprintf(p, sizeof p, "%s/sdc-lora-rank-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{dn, 2, {4, 32}}, {upn, 2, {32, 3}}, {al, 0, {0}}}, 3);
    expect_refused(model, p, "rank 3 but down");
    remove(p);

    snprintf(p, sizeof p, "%s/sdc-lora-shape-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{dn, 2, {4, 32}}, {upn, 2, {33, 4}}}, 2);
    expect_refused(model, p, "does not fit") ;
    remove(p);

    snprintf(p, sizeof p, "%s/sdc-lora-cols-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{dn, 2, {4, 768}}, {upn, 2, {32, 4}}}, 2);
    expect_refused(model, p, "[32, 768]");
    remove(p);

    snprintf(p, sizeof p, "%s/sdc-lora-nomatch-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{"lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight", 2, {4, 32}},
                            {"lora_unet_down_blocks_9_attentions_0_proj_in.lora_up.weight", 2, {32, 4}}}, 2);
    expect_refused(model, p, "lora_unet_down_blocks_9_attentions_0_proj_in matches no weight");
    remove(p);

    snprintf(p, sizeof p, "%s/sdc-lora-sdxl-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight", 2, {4, 2048}},
                            {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight", 2, {640, 4}}}, 2);
    expect_refused(model, p, "2048-wide text context (SDXL)");
    remove(p);

    snprintf(p, sizeof p, "%s/sdc-lora-loha-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{"lora_unet_x.hada_w1_a", 2, {4, 32}}, {"lora_unet_x.hada_w1_b", 2, {4, 32}}}, 2);
    expect_refused(model, p, "LoHa");
    remove(p);

    snprintf(p, sizeof p, "%s/sdc-lora-noup-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{dn, 2, {4, 32}}, {al, 0, {0}}}, 2);
    expect_refused(model, p, "has no up factor");
    remove(p);

    snprintf(p, sizeof p, "%s/sdc-lora-other-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{dn, 2, {4, 32}}, {upn, 2, {32, 4}}, {"something_else.weight", 1, {3}}}, 3);
    expect_refused(model, p, "something_else.weight is not part of a LoRA");
    remove(p);

    /* truncated: the real file cut in the middle of its data */
    size_t n = 0;
    char *b = tu_slurp("tests/data/tiny-sd1-lora.safetensors", &n);
    snprintf(p, sizeof p, "%s/sdc-lora-trunc-%d.safetensors", dir, (int)getpid());
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, n / 2, f);
    fclose(f);
    free(b);
    expect_refused(model, p, p);
    remove(p);

    expect_refused(model, "tests/data/hostile/evil-posix-system.ckpt", "posix.system");
    expect_refused(model, "tests/data/no-such-lora.safetensors", "no-such-lora");
}

/* SD 2.x: an OpenCLIP text encoder fuses q|k|v into in_proj_weight [3C, C]: a kohya k_proj delta
 * lands on rows C..2C of it, fc1 on mlp.c_fc; the UNet's linear proj_in takes a 2-D delta. The
 * merged weight against the formula computed here (double). */
static void check_openclip(void) {
    sdc_store *model = open_store("tests/data/tiny-sd2-fp16.safetensors");
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char p[512];
    snprintf(p, sizeof p, "%s/sdc-lora-sd2-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{"lora_te_text_model_encoder_layers_1_self_attn_k_proj.lora_down.weight", 2, {2, 32}},
                            {"lora_te_text_model_encoder_layers_1_self_attn_k_proj.lora_up.weight", 2, {32, 2}},
                            {"lora_te_text_model_encoder_layers_1_mlp_fc1.lora_down.weight", 2, {2, 32}},
                            {"lora_te_text_model_encoder_layers_1_mlp_fc1.lora_up.weight", 2, {128, 2}},
                            {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", 2, {2, 32}},
                            {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", 2, {32, 2}}}, 6);
    sdc_lora_set *s = sdc_lora_set_new();
    sdc_err e = {{0}};
    CHECK(sdc_lora_set_add(s, model, p, 0.5f, NULL, &e) == 0, "SD 2.x LoRA: %s", e.msg);
    remove(p);
    static const struct { const char *mod, *target; int row0; } want[] = {
        {"lora_te_text_model_encoder_layers_1_self_attn_k_proj", "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight", 32},
        {"lora_te_text_model_encoder_layers_1_mlp_fc1", "cond_stage_model.model.transformer.resblocks.1.mlp.c_fc.weight", 0},
        {"lora_unet_down_blocks_0_attentions_0_proj_in", "model.diffusion_model.input_blocks.1.1.proj_in.weight", 0}};
    for (size_t i = 0; i < sdc_lora_set_count(s); i++) {
        const sdc_lora_mod *m = sdc_lora_set_at(s, i);
        for (int k = 0; k < 3; k++) {
            if (strcmp(m->name, want[k].mod)) continue;
            CHECK(!strcmp(m->target, want[k].target) && m->row0 == want[k].row0, "%s -> %s row %lld", m->name,
                  m->target, (long long)m->row0);
            const sdc_tensor *t = sdc_store_get(model, m->target);
            size_t n = (size_t)t->numel, cols = (size_t)m->cols;
            float *got = malloc(n * 4), *orig = tu_tensor_f32(model, m->target, NULL);
            CHECK(sdc_weight_load_f32(got, t, sdc_lora_find(s, m->target), &e) == 0, "%s", e.msg);
            double worst = 0;
            for (size_t r = 0; r < (size_t)t->shape[0]; r++)
                for (size_t c = 0; c < cols; c++) {
                    double w = orig[r * cols + c];
                    if (r >= (size_t)m->row0 && r < (size_t)(m->row0 + m->rows))
                        for (int q = 0; q < m->rank; q++)
                            w += 0.5 * (double)m->up[(r - (size_t)m->row0) * (size_t)m->rank + (size_t)q] *
                                 (double)m->down[(size_t)q * cols + c];
                    double d = fabs(w - got[r * cols + c]);
                    if (d > worst) worst = d;
                }
            CHECK(worst <= 1e-6, "%s: merged weight off by %g", m->name, worst);
            free(got);
            free(orig);
        }
    }
    CHECK(sdc_lora_set_count(s) == 3, "3 modules");
    sdc_lora_set_free(s);
    sdc_store_close(model);
}

/* LoCon: a 3x3 conv delta (a ResBlock's conv1 at the top level, which the UNet runs as Winograd
 * on weights packed at load, or per call in low-mem mode) is merged before the packing: both
 * modes give the same bits, and not those of the model without it. */
static float *unet_out(const sdc_store *model, sdc_lora_set *s, int low, int *n_out) {
    sdc_err e = {{0}};
    sdc_unet_params up = {.num_heads = 8, .low_mem = low, .lora = s};
    sdc_unet *u = sdc_unet_load(model, &up, &e);
    if (!u) { printf("unet: %s\n", e.msg); return NULL; }
    const int N = 1, C = 4, H = 8, W = 8;
    float x[4 * 8 * 8], t = 500, ctx[77 * 32];
    for (int i = 0; i < C * H * W; i++) x[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
    for (int i = 0; i < 77 * 32; i++) ctx[i] = (float)((i * 13) % 11) / 10.0f - 0.5f;
    float *out = malloc(sizeof(float) * C * H * W);
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    sdc_cond c = {.ctx = ctx, .ctx_len = 77};
    if (sdc_unet_forward(u, &a, out, x, &t, &c, N, H, W, &e)) { printf("forward: %s\n", e.msg); free(out); out = NULL; }
    sdc_arena_free(&a);
    sdc_unet_free(u);
    *n_out = C * H * W;
    return out;
}

static void check_locon(const sdc_store *model) {
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char p[512];
    snprintf(p, sizeof p, "%s/sdc-locon-%d.safetensors", dir, (int)getpid());
    write_st(p, (ftensor[]){{"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight", 4, {2, 32, 3, 3}},
                            {"lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight", 4, {32, 2, 1, 1}}}, 2);
    sdc_lora_set *s = sdc_lora_set_new();
    sdc_err e = {{0}};
    CHECK(sdc_lora_set_add(s, model, p, 1.0f, NULL, &e) == 0, "LoCon: %s", e.msg);
    remove(p);
    const sdc_lora_mod *m = sdc_lora_set_at(s, 0);
    CHECK(m && !strcmp(m->target, "model.diffusion_model.input_blocks.1.0.in_layers.2.weight") && m->cols == 32 * 9,
          "LoCon conv1 -> %s", m ? m->target : "?");
    int n0 = 0, n1 = 0, n2 = 0;
    float *plain = unet_out(model, NULL, 0, &n0), *def = unet_out(model, s, 0, &n1), *low = unet_out(model, s, 1, &n2);
    CHECK(plain && def && low, "UNet forwards");
    if (plain && def && low) {
        CHECK(!memcmp(def, low, (size_t)n1 * 4), "LoCon: default (packed at load) and low-mem (packed per call) differ");
        CHECK(tu_max_abs_diff(def, plain, (size_t)n1, NULL) > 1e-3, "LoCon: the conv delta changed nothing");
    }
    CHECK(sdc_lora_check_used(s, &e) == 0, "%s", e.msg);
    free(plain); free(def); free(low);
    sdc_lora_set_free(s);
}

int main(void) {
    sdc_store *model = open_store(MODEL), *ref = open_store(REF);
    check_file(model, ref, "tests/data/tiny-sd1-lora.safetensors");
    check_file(model, ref, "tests/data/tiny-sd1-lora.ckpt");
    check_sum(model);
    check_malformed(model);
    check_openclip();
    check_locon(model);
    check_fused_rows(model);

    sdc_store *ls = open_store("tests/data/tiny-sd1-lora.safetensors");
    sdc_lora_info info;
    sdc_err e = {{0}};
    CHECK(sdc_lora_detect(ls) == 1 && sdc_lora_detect(model) == 0, "detect");
    CHECK(sdc_lora_describe(ls, &info, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(info.format, "kohya LoRA") && info.n_modules == 210 && info.n_unet == 192 &&
          info.n_te1 == 18 && info.rank_min == 4 && info.rank_max == 4 && info.has_alpha &&
          info.alpha_min == 2.0 && info.n_conv1x1 == 32 && info.context_dim == 32,
          "describe: %s %d modules (%d unet, %d te) rank %d..%d alpha %g 1x1 %d ctx %d", info.format,
          info.n_modules, info.n_unet, info.n_te1, info.rank_min, info.rank_max, info.alpha_min,
          info.n_conv1x1, info.context_dim);
    CHECK(strstr(info.family, "sd_v1") != NULL, "family: %s", info.family);
    sdc_store_close(ls);

    sdc_store_close(model);
    sdc_store_close(ref);
    if (failures) { printf("%d failure(s)\n", failures); return 1; }
    printf("all LoRA checks passed\n");
    return 0;
}
