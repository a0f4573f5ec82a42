/* test_sdxl_malformed.c — SDXL files that must be refused in one clear line, never crash:
 * copies of tiny-sdxl.safetensors with a tensor missing (UNet, text tower 2, VAE), a tensor of
 * the wrong shape (text_projection, label_emb), a refiner-style conditioner, and a label_emb of a
 * width that is not pooled + 6 size embeddings; each through sdc_model_open (the message names
 * the tensor or the problem) and `sdc generate` (exit 2, no output file). Also a copy whose
 * metadata says "turbo": `sdc generate` with no sampler flags then runs SDXL-Turbo's settings
 * (1 step, no guidance, euler_a, trailing spacing) and reproduces refs/sdxl_turbo_64x64_1step. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "pipeline/image.h"
#include "runtime/store.h"
#include "sdc.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

#define SRC "tests/data/tiny-sdxl.safetensors"

typedef void (*edit_fn)(cJSON *hdr);

/* dst = SRC with its JSON header edited by fn (the data section unchanged). 0 on success. */
static int rewrite(const char *dst, edit_fn fn) {
    size_t n = 0;
    unsigned char *b = tu_slurp(SRC, &n);
    if (!b || n < 8) { free(b); return -1; }
    uint64_t hl;
    memcpy(&hl, b, 8);
    char *js = malloc(hl + 1);
    memcpy(js, b + 8, hl);
    js[hl] = 0;
    cJSON *h = cJSON_Parse(js);
    free(js);
    if (!h) { free(b); return -1; }
    fn(h);
    char *out = cJSON_PrintUnformatted(h);
    size_t ol = strlen(out), pad = (8 - ol % 8) % 8;
    FILE *f = fopen(dst, "wb");
    uint64_t nl = ol + pad;
    int rc = f ? 0 : -1;
    if (f) {
        fwrite(&nl, 8, 1, f);
        fwrite(out, 1, ol, f);
        for (size_t i = 0; i < pad; i++) fputc(' ', f);
        fwrite(b + 8 + hl, 1, n - 8 - hl, f);
        rc = fclose(f);
    }
    free(out);
    cJSON_Delete(h);
    free(b);
    return rc;
}

static void rename_key(cJSON *h, const char *from, const char *to) {
    cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(h, from);
    if (t) cJSON_AddItemToObject(h, to, t);
}
static void set_shape(cJSON *h, const char *name, int a, int b) {
    cJSON *t = cJSON_GetObjectItemCaseSensitive(h, name);
    cJSON *s = cJSON_CreateIntArray((int[]){a, b}, 2);
    if (t) cJSON_ReplaceItemInObjectCaseSensitive(t, "shape", s); else cJSON_Delete(s);
}

static void e_unet(cJSON *h) { rename_key(h, "model.diffusion_model.output_blocks.4.1.proj_out.weight", "unused.a"); }
static void e_te2(cJSON *h) { rename_key(h, "conditioner.embedders.1.model.transformer.resblocks.3.mlp.c_fc.weight", "unused.b"); }
static void e_vae(cJSON *h) { rename_key(h, "first_stage_model.decoder.up.1.block.1.conv2.weight", "unused.c"); }
static void e_proj(cJSON *h) { set_shape(h, "conditioner.embedders.1.model.text_projection", 32, 128); }
static void e_label(cJSON *h) { set_shape(h, "model.diffusion_model.label_emb.0.0.weight", 64, 224); }
static void e_refiner(cJSON *h) {   /* the towers moved as a refiner has them: one OpenCLIP at embedders.0 */
    cJSON *it = h->child;
    while (it) {
        cJSON *next = it->next;
        if (!strncmp(it->string, "conditioner.embedders.1.model.", 30)) {
            char nm[512];
            snprintf(nm, sizeof nm, "conditioner.embedders.0.model.%s", it->string + 30);
            rename_key(h, it->string, nm);
        } else if (!strncmp(it->string, "conditioner.embedders.0.transformer.", 36)) {
            char nm[512];   /* out of the way (deleting would leave a gap in the data) */
            snprintf(nm, sizeof nm, "unused.%s", it->string);
            rename_key(h, it->string, nm);
        }
        it = next;
    }
}
static void e_turbo(cJSON *h) {
    cJSON *m = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    cJSON_ReplaceItemInObjectCaseSensitive(m, "model", cJSON_CreateString("tiny SDXL-Turbo (test copy)"));
}

static const struct { const char *name; edit_fn fn; const char *want; } BAD[] = {
    {"UNet tensor missing", e_unet, "output_blocks.4.1.proj_out.weight: missing"},
    {"text tower 2 tensor missing", e_te2, "resblocks.3.mlp.c_fc.weight"},
    {"VAE tensor missing", e_vae, "decoder.up.1.block.1.conv2.weight"},
    {"text_projection [32,128]", e_proj, "text_projection"},
    {"label_emb.0.0 [64,224]", e_label, "label_emb.0.0.weight"},
    {"refiner conditioner", e_refiner, "refiner"},
};

int main(void) {
    char path[128], png[128];
    snprintf(path, sizeof path, "/tmp/sdc_test_sdxl_bad_%d.safetensors", (int)getpid());
    snprintf(png, sizeof png, "/tmp/sdc_test_sdxl_bad_%d.png", (int)getpid());
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        CHECK(rewrite(path, BAD[i].fn) == 0, "cannot write %s", path);
        sdc_err e = {{0}};
        sdc_model_params mp = sdc_model_default_params();
        mp.model_path = path;
        mp.threads = 1;
        sdc_model *m = sdc_model_open(&mp, &e);
        printf("== %-28s -> %s\n", BAD[i].name, e.msg);
        CHECK(!m && strstr(e.msg, BAD[i].want) && !strchr(e.msg, '\n'), "%s: opened, or unclear: %s", BAD[i].name, e.msg);
        sdc_model_close(m);
        char *argv[] = {"generate", "-m", path, "-p", "a cat", "-W", "64", "-H", "64", "--steps", "1", "-q", "-o", png, NULL};
        remove(png);
        int rc = sdc_cmd_generate(14, argv);
        CHECK(rc == 2 && access(png, F_OK) != 0, "%s: sdc generate exit %d (want 2, no PNG)", BAD[i].name, rc);
    }
    /* A turbo copy: no sampler, steps, cfg or spacing flags: the turbo defaults. */
    CHECK(rewrite(path, e_turbo) == 0, "cannot write %s", path);
    char *argv[] = {"generate", "-m", path, "-p", "a photo of a cat", "-W", "64", "-H", "64", "-s", "11005",
                    "--prompt-mode", "truncate", "-t", "2", "-q", "-o", png, NULL};
    int rc = sdc_cmd_generate(18, argv);
    CHECK(rc == 0, "turbo copy: exit %d", rc);
    sdc_err e = {{0}};
    sdc_store *ref = sdc_store_new();
    CHECK(sdc_store_open(ref, "tests/data/refs/sdxl_turbo_64x64_1step.safetensors", NULL, &e) == 0, "%s", e.msg);
    size_t ni = 0;
    float *want = tu_tensor_f32(ref, "image", &ni);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    if (rc == 0 && want && sdc_read_image(png, &rgb, &w, &h, &e) == 0 && w == 64 && h == 64 && ni == 64 * 64 * 3) {
        double d = 0;
        for (size_t i = 0; i < ni; i++) d = fmax(d, fabs(rgb[i] / 255.0 - want[i]));
        size_t n = 0;
        char *bytes = tu_slurp(png, &n);
        const char *key = "Steps: 1, Sampler: Euler a, Schedule type: Automatic, CFG scale: 0,";
        int found = 0;
        for (size_t i = 0; bytes && i + strlen(key) <= n && !found; i++) found = !memcmp(bytes + i, key, strlen(key));
        printf("== turbo metadata: defaults give the turbo reference within %.4g; PNG records '%s': %s\n", d, key,
               found ? "yes" : "NO");
        CHECK(d <= 1e-3 + 0.5 / 255 && found, "turbo defaults: image differs by %.4g or settings not recorded", d);
        free(bytes);
    } else {
        CHECK(0, "turbo copy: no image (%s)", e.msg);
    }
    free(rgb);
    free(want);
    sdc_store_close(ref);
    remove(png);
    remove(path);
    printf(fails ? "test_sdxl_malformed: %d FAILED\n" : "test_sdxl_malformed: all passed\n", fails);
    return fails ? 1 : 0;
}
