/* test_models_bf16.c — the UNet in bf16 (sdc_unet_params.bf16) on the tiny SD 1.x (conv
 * proj_in/out) and SD 2.x (linear proj_in/out) fixtures, on every bf16 path this machine has
 * (plain C always, AVX512-BF16 when the CPU has it): the output's relative L2 error against the
 * f32 forward (our truth for bf16: the fixtures' f64 reference is printed beside it) within the
 * budget BUDGET below; both paths give the same bits here; the weights it reads (made at load
 * plus the views read as stored) are fewer bytes than f32's (f32 mode streams its Linears and
 * most 3x3 convs from the file's views instead of converting them, so the gap is no longer 2x);
 * bf16 with low-mem is refused with a message. The VAE decoder in bf16
 * (sdc_vae_params.bf16) on the tiny SD 1.x VAE within the same budget of its f32 decode.
 *
 * The budget: a bf16 operand carries 8 significant bits, so rounding it is a relative error of
 * at most 2^-9 (~1.1e-3 RMS); a GEMM sums such products, so one bf16 layer's output is off by
 * ~1-3e-3 relative (test_bf16: 1.5-2.5e-3). A UNet forward chains ~10-50 such layers, but the
 * residual stream (f32) carries most of the signal past each one, so errors add up roughly as
 * the square root of the layer count: a few 1e-3 to ~1e-2. BUDGET = 2e-2 relative L2 is ten
 * times one layer's error: wide enough for real models' deeper chains, tight enough that a
 * wrong layout, a dropped pair or a lost bias (errors of order 1) cannot pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kernels/arena.h"
#include "kernels/kernels.h"
#include "models/unet.h"
#include "models/vae.h"
#include "runtime/store.h"
#include "tests/test_util.h"

#define BUDGET 2e-2

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); den += (double)b[i] * b[i]; }
    return isnan(num) ? INFINITY : sqrt(num / (den > 0 ? den : 1));
}

static int read_heads(const char *path, sdc_unet_params *p) {
    char *buf = tu_slurp(path, NULL);
    cJSON *j = buf ? cJSON_Parse(buf) : NULL;
    cJSON *u = cJSON_GetObjectItem(j, "unet");
    cJSON *nh = cJSON_GetObjectItem(u, "num_heads"), *hc = cJSON_GetObjectItem(u, "num_head_channels");
    int ok = cJSON_IsNumber(nh) && cJSON_IsNumber(hc);
    if (ok) { p->num_heads = nh->valueint; p->head_dim = hc->valueint; }
    cJSON_Delete(j);
    free(buf);
    return ok ? 0 : -1;
}

/* One forward of case (latent name, batch, t) on u; returns the output (malloc'd) or NULL. */
static float *forward(sdc_unet *u, const sdc_store *rs, const char *latn, int B, float tt, size_t *n_out) {
    const sdc_tensor *lt = sdc_store_get(rs, latn), *ct = sdc_store_get(rs, "context_cond");
    size_t nl = 0, nc = 0;
    float *lat = tu_tensor_f32(rs, latn, &nl), *cc = tu_tensor_f32(rs, "context_cond", &nc);
    float *cu = tu_tensor_f32(rs, "context_uncond", NULL);
    if (!lt || !ct || !lat || !cc || !cu) { free(lat); free(cc); free(cu); return NULL; }
    const int h = (int)lt->shape[2], w = (int)lt->shape[3], Lc = (int)ct->shape[1];
    float *x = malloc(nl * B * 4), *ctx = malloc(nc * B * 4), *t = malloc(B * 4), *y = malloc(nl * B * 4);
    for (int b = 0; b < B; b++) {
        memcpy(x + b * nl, lat, nl * 4);
        memcpy(ctx + b * nc, B == 2 && b == 0 ? cu : cc, nc * 4);
        t[b] = tt;
    }
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    sdc_err e = {{0}};
    sdc_cond cond = {.ctx = ctx, .ctx_len = Lc};
    int rc = sdc_unet_forward(u, &a, y, x, t, &cond, B, h, w, &e);
    CHECK(rc == 0, "forward %s: %s", latn, e.msg);
    sdc_arena_free(&a);
    free(lat); free(cc); free(cu); free(x); free(ctx); free(t);
    if (rc) { free(y); return NULL; }
    *n_out = nl * B;
    return y;
}

typedef struct ucase { const char *out, *lat; int B; float t; } ucase;

static void run(const char *tag, const char *model, const char *config, const char *refpath, const ucase *cases,
                int ncases) {
    printf("== %s: %s\n", tag, model);
    sdc_err e = {{0}};
    sdc_unet_params p = {0};
    CHECK(read_heads(config, &p) == 0, "%s: heads", config);
    sdc_store *ms = sdc_store_new(), *rs = sdc_store_new();
    CHECK(sdc_store_open(ms, model, NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_store_open(rs, refpath, NULL, &e) == 0, "%s", e.msg);
    sdc_unet *u32 = sdc_unet_load(ms, &p, &e);
    CHECK(u32, "f32 load: %s", e.msg);
    sdc_unet_params pb = p;
    pb.bf16 = 1;
    sdc_unet *u16 = sdc_unet_load(ms, &pb, &e);
    CHECK(u16, "bf16 load: %s", e.msg);
    if (!u32 || !u16) goto out;
    /* the weights it made plus the views it reads as stored (the f32 Linears stream from them) */
    const sdc_unet_info *i32 = sdc_unet_get_info(u32), *i16 = sdc_unet_get_info(u16);
    const size_t w32 = i32->weight_bytes + i32->view_bytes, w16 = i16->weight_bytes + i16->view_bytes;
    printf("   weights read: f32 %.1f KiB, bf16 %.1f KiB\n", w32 / 1024.0, w16 / 1024.0);
    CHECK(w16 < w32, "bf16 UNet reads %zu bytes of weights (f32 %zu)", w16, w32);
    for (int c = 0; c < ncases; c++) {
        size_t n = 0, nr = 0, n2 = 0;
        char f64[96];
        snprintf(f64, sizeof f64, "%s_f64", cases[c].out);
        float *ref = tu_tensor_f32(rs, f64, &nr);
        float *y32 = forward(u32, rs, cases[c].lat, cases[c].B, cases[c].t, &n);
        float *keep = NULL;
        static const char *const paths[2] = {"plain", "avx512_bf16"};
        for (int k = 0; k < 2; k++) {
            if (k_bf16_select(paths[k])) { printf("   (%s: not on this CPU)\n", paths[k]); continue; }
            float *y16 = forward(u16, rs, cases[c].lat, cases[c].B, cases[c].t, &n2);
            if (y32 && y16 && ref && n == n2 && nr == n) {
                const double err = rel_l2(y16, y32, n);
                printf("   %-26s %-12s rel L2 vs f32 %.2e (f32 vs f64 ref %.2e, bf16 vs f64 ref %.2e)\n", cases[c].out,
                       paths[k], err, rel_l2(y32, ref, n), rel_l2(y16, ref, n));
                CHECK(err <= BUDGET, "%s %s: bf16 rel L2 %g > budget %g", cases[c].out, paths[k], err, BUDGET);
                CHECK(err > 1e-5, "%s %s: bf16 output equals f32 (%g): bf16 not in use?", cases[c].out, paths[k], err);
                if (keep) CHECK(!memcmp(keep, y16, n * 4), "%s: the two bf16 paths differ", cases[c].out);
            } else {
                CHECK(0, "%s: forward failed or sizes differ", cases[c].out);
            }
            if (!keep) keep = y16; else free(y16);
        }
        free(keep); free(y32); free(ref);
    }
    /* bf16 with low-mem is refused, with a message */
    pb.low_mem = 1;
    sdc_unet *bad = sdc_unet_load(ms, &pb, &e);
    CHECK(!bad && strstr(e.msg, "bf16 and low-mem"), "bf16 + low_mem: %s", bad ? "loaded" : e.msg);
    sdc_unet_free(bad);
out:
    sdc_unet_free(u32);
    sdc_unet_free(u16);
    sdc_store_close(ms);
    sdc_store_close(rs);
}

/* The tiny VAE's decode of the reference latents, bf16 against f32, on each path. */
static void vae(void) {
    printf("== vae: tests/data/tiny-sd1.safetensors\n");
    sdc_err e = {{0}};
    sdc_store *ms = sdc_store_new(), *rs = sdc_store_new();
    CHECK(sdc_store_open(ms, "tests/data/tiny-sd1.safetensors", NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_store_open(rs, "tests/data/refs/sd1_vae.safetensors", NULL, &e) == 0, "%s", e.msg);
    sdc_vae_params p32 = {0}, p16 = {.bf16 = 1};
    sdc_vae *v32 = sdc_vae_load_ex(ms, &p32, &e), *v16 = v32 ? sdc_vae_load_ex(ms, &p16, &e) : NULL;
    CHECK(v32 && v16, "vae load: %s", e.msg);
    size_t nz = 0;
    float *z = tu_tensor_f32(rs, "dec_latent_x16x16", &nz);
    CHECK(z && nz == 4 * 16 * 16, "dec_latent_x16x16");
    if (v32 && v16 && z) {
        const size_t ni = 3 * 128 * 128;
        float *a32 = malloc(ni * 4), *a16 = malloc(ni * 4), *keep = NULL;
        sdc_arena a;
        sdc_arena_init(&a, 1 << 20);
        CHECK(sdc_vae_decode(v32, &a, a32, z, 1, 16, 16, &e) == 0, "%s", e.msg);
        static const char *const paths[2] = {"plain", "avx512_bf16"};
        for (int k = 0; k < 2; k++) {
            if (k_bf16_select(paths[k])) continue;
            CHECK(sdc_vae_decode(v16, &a, a16, z, 1, 16, 16, &e) == 0, "%s", e.msg);
            const double err = rel_l2(a16, a32, ni);
            printf("   decode 16x16 latents      %-12s rel L2 vs f32 %.2e\n", paths[k], err);
            CHECK(err <= BUDGET && err > 1e-5, "vae %s: bf16 rel L2 %g (budget %g)", paths[k], err, BUDGET);
            if (keep) CHECK(!memcmp(keep, a16, ni * 4), "vae: the two bf16 paths differ");
            else { keep = malloc(ni * 4); memcpy(keep, a16, ni * 4); }
        }
        sdc_arena_free(&a);
        free(a32); free(a16); free(keep);
    }
    free(z);
    sdc_vae_free(v32);
    sdc_vae_free(v16);
    sdc_store_close(ms);
    sdc_store_close(rs);
}

int main(void) {
    sdc_kernels_set_threads(2);
    printf("bf16 path chosen at start: %s\n", k_bf16_path_name());
    static const ucase sd1[] = {{"out_x16x16_t500_cfgbatch", "latent_x16x16", 2, 500}, {"out_x8x8_t999", "latent_x8x8", 1, 999},
                                {"out_x8x8_t1", "latent_x8x8", 1, 1}};
    static const ucase sd2[] = {{"out_x8x8_t500_cfgbatch", "latent_x8x8", 2, 500}, {"out_x8x8_t999", "latent_x8x8", 1, 999}};
    run("sd1", "tests/data/tiny-sd1.safetensors", "tests/data/tiny-sd1.config.json", "tests/data/refs/sd1_unet.safetensors",
        sd1, 3);
    run("sd2", "tests/data/tiny-sd2-fp16.safetensors", "tests/data/tiny-sd2.config.json",
        "tests/data/refs/sd2_unet.safetensors", sd2, 2);
    vae();
    if (fails) { printf("%d check(s) failed\n", fails); return 1; }
    printf("ok\n");
    return 0;
}
