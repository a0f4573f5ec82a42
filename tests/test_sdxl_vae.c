/* test_sdxl_vae.c — SDXL's autoencoder (tiny-sdxl: first_stage_model.*) with the latent scale the
 * model config resolves for the file (0.13025, SDXL's) against refs/sdxl_vae (diffusers 0.25.1
 * AutoencoderKL): dec_out = decode(latent / 0.13025) for 8x8 and 8x12 latents, the decoder's
 * intermediates, the encoder's mean / logvar and the scaled mean; the .ckpt gives the same bits.
 * Tolerance (fixtures README): atol 1e-4, or 2e-5 of max|ref|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "models/vae.h"
#include "pipeline/modelcfg.h"
#include "runtime/store.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static double tol(double mx) { return fmax(1e-4, 2e-5 * mx); }
static double worst;

static void cmp(const sdc_store *rs, const char *name, const float *x, size_t n) {
    size_t numel = 0;
    float *r = tu_tensor_f32(rs, name, &numel);
    CHECK(r && numel == n, "%s: missing or %zu values (want %zu)", name, numel, n);
    if (r && numel == n) {
        double mx, err = tu_max_abs_diff(x, r, n, &mx);
        printf("   %-40s max|ref| %7.3f  max abs err %.3g\n", name, mx, err);
        CHECK(err <= tol(mx), "%s: err %.3g > %.3g", name, err, tol(mx));
        if (err > worst) worst = err;
    }
    free(r);
}

typedef struct tapctx { const sdc_store *rs; int n; } tapctx;
static void on_tap(void *user, const char *name, const float *x, int C, int H, int W) {
    tapctx *t = user;
    char key[128];
    snprintf(key, sizeof key, "dbg_dec_x8x8.%s", name);
    if (!sdc_store_get(t->rs, key)) return;
    cmp(t->rs, key, x, (size_t)C * H * W);
    t->n++;
}

static float *out_keep[2];

static void run(const char *model, int keep) {
    printf("== %s\n", model);
    sdc_err e = {{0}};
    sdc_store *ms = sdc_store_new(), *rs = sdc_store_new();
    CHECK(sdc_store_open(ms, model, NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_store_open(rs, "tests/data/refs/sdxl_vae.safetensors", NULL, &e) == 0, "%s", e.msg);
    sdc_model_config cfg;
    CHECK(sdc_model_config_resolve(&cfg, ms, NULL, -1, &e) == 0, "config: %s", e.msg);
    printf("   family %s, VAE scale %g (%s)\n", cfg.family_name, cfg.vae_scale, cfg.vae_src);
    CHECK(cfg.family == SDC_FAMILY_SDXL && cfg.vae_scale == 0.13025f, "family %d scale %g", cfg.family,
          cfg.vae_scale);
    sdc_vae_params vp = {.low_mem = 1, .scale = cfg.vae_scale, .shift = cfg.vae_shift};
    sdc_vae *v = sdc_vae_load_ex(ms, &vp, &e);
    CHECK(v, "vae: %s", e.msg);
    if (!v) goto out;
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    static const char *const sizes[2] = {"x8x8", "x8x12"};
    for (int k = 0; k < 2; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "dec_latent_%s", sizes[k]);
        const sdc_tensor *lt = sdc_store_get(rs, nm);
        float *z = tu_tensor_f32(rs, nm, NULL);
        CHECK(lt && z, "%s missing", nm);
        if (!lt || !z) continue;
        int h = (int)lt->shape[2], w = (int)lt->shape[3];
        size_t n = (size_t)3 * 64 * h * w;
        float *img = malloc(n * sizeof *img);
        tapctx t = {rs, 0};
        sdc_vae_set_tap(v, k == 0 ? on_tap : NULL, &t);
        CHECK(sdc_vae_decode(v, &a, img, z, 1, h, w, &e) == 0, "decode: %s", e.msg);
        snprintf(nm, sizeof nm, "dec_out_%s", sizes[k]);
        cmp(rs, nm, img, n);
        if (k == 0) CHECK(t.n >= 7, "only %d decoder intermediates compared", t.n);
        if (keep) out_keep[k] = img;
        else {
            CHECK(out_keep[k] && !memcmp(out_keep[k], img, n * sizeof *img), "%s: differs from the safetensors run",
                  nm);
            free(img);
        }
        free(z);
    }
    sdc_vae_set_tap(v, NULL, NULL);
    /* encoder: mean and logvar of the 64x64 image; latents = mean * scale */
    float *im = tu_tensor_f32(rs, "enc_image_x64x64", NULL), mean[4 * 64], logvar[4 * 64];
    CHECK(im, "enc_image missing");
    if (im && sdc_vae_encode(v, &a, mean, logvar, im, 1, 64, 64, &e) == 0) {
        cmp(rs, "enc_mean_x64x64", mean, 256);
        cmp(rs, "enc_logvar_x64x64", logvar, 256);
        for (int i = 0; i < 256; i++) mean[i] = (mean[i] - cfg.vae_shift) * cfg.vae_scale;
        cmp(rs, "enc_mean_scaled_x64x64", mean, 256);
    } else {
        CHECK(0, "encode: %s", e.msg);
    }
    free(im);
    sdc_arena_free(&a);
out:
    sdc_vae_free(v);
    sdc_store_close(ms);
    sdc_store_close(rs);
}

int main(void) {
    sdc_kernels_set_threads(1);
    run("tests/data/tiny-sdxl.safetensors", 1);
    run("tests/data/tiny-sdxl.ckpt", 0);
    printf("worst VAE error: %.3g\n", worst);
    free(out_keep[0]);
    free(out_keep[1]);
    printf(fails ? "test_sdxl_vae: %d FAILED\n" : "test_sdxl_vae: all passed\n", fails);
    return fails ? 1 : 0;
}
