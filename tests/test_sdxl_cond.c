/* test_sdxl_cond.c — pipeline/sdxl: SDXL's text conditioning of a prompt as the pipeline refs
 * record it (refs/sdxl_pipe_*: prompt_embeds, pooled_prompt_embeds, negative_prompt_embeds of
 * an explicit negative and of an explicit "", add_time_ids of the 96x64 run), both tokenizers'
 * windows made here as the pipeline makes them; a refiner's conditioner is refused in one line.
 * Tolerance (fixtures README): atol 1e-4, or 2e-5 of max|ref|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "pipeline/sdxl.h"
#include "runtime/store.h"
#include "tests/test_util.h"
#include "tokenizer/tokenizer.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static double tol(double mx) { return fmax(1e-4, 2e-5 * mx); }

static void check_against(const char *ref, const char *name, const float *x, size_t n) {
    sdc_err e = {{0}};
    sdc_store *rs = sdc_store_new();
    CHECK(sdc_store_open(rs, ref, NULL, &e) == 0, "%s", e.msg);
    size_t numel = 0;
    float *r = tu_tensor_f32(rs, name, &numel);
    CHECK(r && numel == n, "%s %s: missing or %zu values", ref, name, numel);
    if (r && numel == n) {
        double mx, err = tu_max_abs_diff(x, r, n, &mx);
        printf("   %-48s %-30s max|ref| %6.3f err %.3g\n", ref + 16, name, mx, err);
        CHECK(err <= tol(mx), "%s %s: err %.3g", ref, name, err);
    }
    free(r);
    sdc_store_close(rs);
}

static int encode(sdc_sdxl_text *t, sdc_arena *a, const char *text, float *ctx, float *pooled) {
    sdc_err e = {{0}};
    int32_t *ids = NULL, w1[77], w2[77];
    size_t n = 0;
    if (sdc_tokenize(text, &ids, &n, &e)) return -1;
    sdc_tokens_window(w1, ids, n, SDC_TOK_EOS);
    sdc_tokens_window(w2, ids, n, 0);
    free(ids);
    int rc = sdc_sdxl_encode(t, a, w1, w2, NULL, 1, 0, ctx, pooled, &e);
    CHECK(rc == 0, "encode: %s", e.msg);
    return rc;
}

int main(void) {
    sdc_kernels_set_threads(1);
    sdc_err e = {{0}};
    sdc_store *st = sdc_store_new();
    CHECK(sdc_store_open(st, "tests/data/tiny-sdxl.safetensors", NULL, &e) == 0, "%s", e.msg);
    sdc_sdxl_text t;
    int rc = sdc_sdxl_text_load(&t, st, 4, -1, 4, -1, NULL, &e);   /* heads: tiny-sdxl.config.json */
    CHECK(rc == 0, "load: %s", e.msg);
    if (rc == 0) {
        CHECK(t.C1 == 32 && t.C2 == 64 && t.P == 64, "widths %d %d %d", t.C1, t.C2, t.P);
        sdc_arena a;
        sdc_arena_init(&a, 1 << 20);
        static float ctx[77 * 96];
        float pooled[64];
        if (!encode(&t, &a, "a photo of a cat", ctx, pooled)) {
            check_against("tests/data/refs/sdxl_pipe_64x64_euler.safetensors", "prompt_embeds", ctx, 77 * 96);
            check_against("tests/data/refs/sdxl_pipe_64x64_euler.safetensors", "pooled_prompt_embeds", pooled, 64);
        }
        if (!encode(&t, &a, "blurry, low quality", ctx, pooled)) {
            check_against("tests/data/refs/sdxl_pipe_64x64_euler_negprompt.safetensors", "negative_prompt_embeds",
                          ctx, 77 * 96);
            check_against("tests/data/refs/sdxl_pipe_64x64_euler_negprompt.safetensors",
                          "negative_pooled_prompt_embeds", pooled, 64);
        }
        if (!encode(&t, &a, "", ctx, pooled)) {
            check_against("tests/data/refs/sdxl_pipe_64x64_euler_negempty.safetensors", "negative_prompt_embeds",
                          ctx, 77 * 96);
            check_against("tests/data/refs/sdxl_pipe_64x64_euler_negempty.safetensors",
                          "negative_pooled_prompt_embeds", pooled, 64);
        }
        float ids[12];
        sdc_sdxl_time_ids(ids, 96, 64, 0, 0, 96, 64);
        memcpy(ids + 6, ids, sizeof(float) * 6);
        check_against("tests/data/refs/sdxl_pipe_96x64_euler.safetensors", "add_time_ids", ids, 12);
        sdc_sdxl_time_ids(ids, 768, 1024, 32, 16, 1024, 1024);   /* the UNet ref's unusual ids */
        check_against("tests/data/refs/sdxl_unet.safetensors", "time_ids_1024_768_16_32_1024_1024", ids, 6);
        sdc_arena_free(&a);
        sdc_sdxl_text_free(&t);
    }
    sdc_store_close(st);

    /* A refiner's conditioner: one OpenCLIP tower at conditioner.embedders.0. */
    char path[128];
    snprintf(path, sizeof path, "/tmp/sdc_test_sdxl_cond_%d.safetensors", (int)getpid());
    const char hdr[] = "{\"conditioner.embedders.0.model.ln_final.weight\":{\"dtype\":\"F32\",\"shape\":[4],"
                       "\"data_offsets\":[0,16]}}    ";
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot write %s", path);
    if (f) {
        uint64_t len = sizeof hdr - 1;
        fwrite(&len, 8, 1, f);
        fwrite(hdr, 1, sizeof hdr - 1, f);
        for (int i = 0; i < 16; i++) fputc(0, f);
        fclose(f);
        st = sdc_store_new();
        CHECK(sdc_store_open(st, path, NULL, &e) == 0, "%s", e.msg);
        e.msg[0] = 0;
        CHECK(sdc_sdxl_text_load(&t, st, 0, -1, 0, -1, NULL, &e) != 0 && strstr(e.msg, "refiner"), "refiner: %s", e.msg);
        printf("== refiner conditioner -> %s\n", e.msg);
        sdc_store_close(st);
        remove(path);
    }
    printf(fails ? "test_sdxl_cond: %d FAILED\n" : "test_sdxl_cond: all passed\n", fails);
    return fails ? 1 : 0;
}
