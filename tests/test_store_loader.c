/* test_store_loader.c — the tensor store over the committed fixtures: every model file loads;
 * tiny-sd1 f32 and f16 agree (names, shapes, values after f32 conversion); lookup, later
 * file wins, prefix counts, rollback of a failed open, metadata. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "runtime/store.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Every .safetensors / .ckpt under dir loads. */
static void load_all(const char *dir) {
    DIR *d = opendir(dir);
    CHECK(d, "cannot open %s", dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ends_with(de->d_name, ".safetensors") && !ends_with(de->d_name, ".ckpt")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        sdc_store *s = sdc_store_new();
        sdc_err e = {{0}};
        int rc = sdc_store_open(s, p, NULL, &e);
        CHECK(rc == 0, "%s: %s", p, e.msg);
        if (!rc) {
            const sdc_store_file *f = sdc_store_file_at(s, 0);
            printf("ok   %-48s %-14s %5zu tensors\n", p, sdc_format_name(f->format), sdc_store_count(s));
            CHECK(sdc_store_count(s) > 0, "%s: no tensors", p);
        }
        sdc_store_close(s);
    }
    closedir(d);
}

/* f32 → f16, round to nearest even (what torch's .half() does), written independently here. */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);        /* rounds to inf */
    if (ax < 0x38800000u) {                                           /* f16 subnormal */
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint32_t)nearbyintf(a * 16777216.0f));
    }
    ax += 0xc8000000u + 0xfffu + ((ax >> 13) & 1);
    return (uint16_t)(sign | (ax >> 13));
}

static void f32_vs_f16(void) {
    sdc_store *a = sdc_store_new(), *b = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(!sdc_store_open(a, "tests/data/tiny-sd1.safetensors", NULL, &e), "%s", e.msg);
    CHECK(!sdc_store_open(b, "tests/data/tiny-sd1-fp16.safetensors", NULL, &e), "%s", e.msg);
    CHECK(sdc_store_count(a) == sdc_store_count(b) && sdc_store_count(a) > 900, "counts %zu %zu",
          sdc_store_count(a), sdc_store_count(b));
    size_t nf16 = 0, nother = 0, compared = 0, rounded = 0;
    double maxdiff = 0;
    for (size_t i = 0; i < sdc_store_count(a) && i < sdc_store_count(b); i++) {
        const sdc_tensor *x = sdc_store_at(a, i), *y = sdc_store_at(b, i);
        CHECK(!strcmp(x->name, y->name), "name %zu: %s vs %s", i, x->name, y->name);
        CHECK(sdc_store_get(b, x->name) == y, "lookup %s", x->name);
        CHECK(x->ndim == y->ndim && x->numel == y->numel, "shape %s", x->name);
        for (int d = 0; d < x->ndim; d++) CHECK(x->shape[d] == y->shape[d], "dim %d of %s", d, x->name);
        if (y->dtype == SDC_F16) nf16++; else nother++;
        if (x->numel != y->numel) continue;
        float *fx = malloc((size_t)x->numel * 4 + 4), *fy = malloc((size_t)y->numel * 4 + 4);
        CHECK(!sdc_tensor_to_f32(x, fx, &e), "%s", e.msg);
        CHECK(!sdc_tensor_to_f32(y, fy, &e), "%s", e.msg);
        /* the weights are f16-exact: equal values; the schedule buffers (betas, alphas_cumprod, ...)
           are not: the f16 file holds their round-to-nearest-even */
        int weight = !strncmp(x->name, "model.", 6) || !strncmp(x->name, "first_stage_model.", 18) ||
                     !strncmp(x->name, "cond_stage_model.", 17);
        for (int64_t k = 0; k < x->numel; k++) {
            double dd = fabs((double)fx[k] - fy[k]);
            if (weight && dd > maxdiff) maxdiff = dd;
            if (y->dtype == SDC_F16) {
                uint16_t h;
                memcpy(&h, (const char *)y->data + 2 * k, 2);
                if (f32_to_f16(fx[k]) != h) { rounded++; }
            } else if (dd != 0) {
                rounded++;
            }
        }
        compared += (size_t)x->numel;
        free(fx);
        free(fy);
    }
    printf("tiny-sd1 f32 vs f16: %zu values compared, %zu f16 tensors, %zu others, max abs diff of weights %g, "
           "%zu values not equal to f16(f32 value)\n", compared, nf16, nother, maxdiff, rounded);
    CHECK(maxdiff == 0, "f16 file's weights differ from the f32 file's after conversion: %g", maxdiff);
    CHECK(rounded == 0, "%zu values of the f16 file are not the f16 rounding of the f32 file's", rounded);
    CHECK(nf16 > 900, "expected the fp16 file to hold f16 tensors");
    /* metadata */
    CHECK(sdc_store_meta(a, "format") && !strcmp(sdc_store_meta(a, "format"), "pt"), "metadata format");
    CHECK(sdc_store_meta_count(a) >= 3, "metadata count %zu", sdc_store_meta_count(a));
    CHECK(sdc_store_nglobals(a) == 0, "globals");
    /* lookups */
    const char *pre = "model.diffusion_model.";
    CHECK(sdc_store_getf(a, "%sinput_blocks.%d.0.weight", pre, 0) != NULL, "getf");
    CHECK(sdc_store_get(a, "no.such.tensor") == NULL, "absent");
    size_t np = sdc_store_count_prefix(a, pre), nv = sdc_store_count_prefix(a, "first_stage_model.");
    printf("prefix counts: unet %zu, vae %zu\n", np, nv);
    CHECK(np > 100 && nv > 50 && np + nv < sdc_store_count(a), "prefix counts");
    sdc_store_close(a);
    sdc_store_close(b);
}

/* Two files in one store: lookup gives the later file's tensor; iteration covers both;
 * a failed open changes nothing. */
static void two_files(void) {
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(!sdc_store_open(s, "tests/data/tiny-sd1.safetensors", NULL, &e), "%s", e.msg);
    size_t n1 = sdc_store_count(s);
    const sdc_tensor *t0 = sdc_store_at(s, 0);
    const sdc_tensor *t1 = sdc_store_get(s, "model.diffusion_model.out.2.weight");
    CHECK(t1 && t1->dtype == SDC_F32 && t1->file == 0, "first file tensor");
    /* failed opens: the store stays as it was */
    CHECK(sdc_store_open(s, "tests/data", NULL, &e) < 0 && strstr(e.msg, "directory"), "dir: %s", e.msg);
    CHECK(sdc_store_open(s, "tests/data/no-such-file", NULL, &e) < 0, "missing");
    CHECK(sdc_store_open(s, "tests/data/manifest.json", NULL, &e) < 0, "json file");
    printf("not a model: %s\n", e.msg);
    CHECK(sdc_store_count(s) == n1 && sdc_store_nfiles(s) == 1, "rollback");
    CHECK(sdc_store_get(s, "model.diffusion_model.out.2.weight") == t1, "rollback lookup");
    CHECK(!sdc_store_open(s, "tests/data/tiny-sd1-fp16.safetensors", NULL, &e), "%s", e.msg);
    const sdc_tensor *t2 = sdc_store_get(s, "model.diffusion_model.out.2.weight");
    CHECK(t2 && t2->dtype == SDC_F16 && t2->file == 1, "later file wins");
    CHECK(sdc_store_count(s) == 2 * n1, "iteration covers both files");
    CHECK(sdc_store_meta_count(s) == 3, "metadata keys counted once over two files: %zu", sdc_store_meta_count(s));
    CHECK(!sdc_store_open(s, "tests/data/refs/sd1_unet.safetensors", NULL, &e), "%s", e.msg);
    CHECK(sdc_store_meta_count(s) > 3 && sdc_store_meta(s, "format") && sdc_store_meta(s, "generator") &&
          !strcmp(sdc_store_meta(s, "generator"), "make_fixtures.py"), "metadata of a third file added");
    CHECK(sdc_store_at(s, 0) == t0 && sdc_store_get(s, t0->name) != t0, "old pointers stay valid");
    CHECK(sdc_store_count_prefix(s, "model.diffusion_model.") < n1, "prefix view counts names once");
    const sdc_store_file *f = sdc_store_file_at(s, 1);
    CHECK(f && f->first_tensor == n1 && f->n_tensors == n1, "file ranges");
    sdc_store_close(s);
}

int main(void) {
    load_all("tests/data");
    load_all("tests/data/refs");
    f32_vs_f16();
    two_files();
    if (fails) { printf("%d checks failed\n", fails); return 1; }
    printf("all store checks passed\n");
    return 0;
}
