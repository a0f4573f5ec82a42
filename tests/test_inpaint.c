/* test_inpaint.c — inpainting equal to diffusers 0.25.1's StableDiffusionInpaintPipeline, through
 * the library: for each reference in tests/data/refs/sd1_inpaint* (a 9-channel inpainting UNet at
 * strength 1 with euler and at strength 0.6 with ddim; an ordinary 4-channel UNet with latent
 * blending, ddim), fed the exact image and mask PNGs the pipeline was fed:
 *   - the mask as read, binarised, at latent size (top-left pixel of each 8x8 block) and the
 *     masked image equal the reference bit for bit;
 *   - the latents after every step, the final latents (atol 2e-3 or rel 5e-5 of max|x|) and the
 *     image (atol 1e-3) equal the reference (fixtures README tolerances).
 * Then: every sampler runs with both kinds of model, and with the ordinary one the kept region of
 * the final latents is the init image's latents; an inpainting UNet without a mask paints with an
 * all-white one; a mask without an init image is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/image.h"
#include "pipeline/inpaint.h"
#include "pipeline/sampler.h"
#include "runtime/store.h"
#include "sdc.h"
#include "tests/test_util.h"

typedef struct inpaint_case {
    const char *ref, *model;
    int method, unet_in;
    unsigned seed;
} inpaint_case;

static const inpaint_case CASES[] = {
    {"sd1_inpaint9_64x64_euler", "tiny-sd1-inpaint.safetensors", SDC_SAMPLE_EULER, 9, 3300},
    {"sd1_inpaint9_64x64_ddim_strength0.6", "tiny-sd1-inpaint.safetensors", SDC_SAMPLE_DDIM, 9, 3301},
    {"sd1_inpaint4_64x64_ddim", "tiny-sd1.safetensors", SDC_SAMPLE_DDIM, 4, 3302},
};

enum { MAX_STEPS = 64 };
typedef struct trace { int n, steps; size_t numel; float *lat[MAX_STEPS]; } trace;

static void on_latents(void *u, int step, int steps, const float *x) {
    trace *t = u;
    t->steps = steps;
    if (step < 1 || step > MAX_STEPS || t->lat[step - 1]) return;
    if ((t->lat[step - 1] = malloc(t->numel * sizeof *x))) memcpy(t->lat[step - 1], x, t->numel * sizeof *x);
    t->n = step > t->n ? step : t->n;
}

static void trace_free(trace *t) {
    for (int i = 0; i < MAX_STEPS; i++) { free(t->lat[i]); t->lat[i] = NULL; }
    t->n = t->steps = 0;
}

static int lat_ok(const float *a, const float *b, size_t n, double *d, double *mx) {
    *d = tu_max_abs_diff(a, b, n, mx);
    return *d <= 2e-3 || *d <= 5e-5 * *mx;
}

/* exact: the same floats (−0 == 0) */
static int same_floats(const char *what, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) {
            printf("FAIL %s: element %zu is %.9g, reference %.9g\n", what, i, a[i], b[i]);
            return 0;
        }
    printf("ok   %s: %zu values bit-equal\n", what, n);
    return 1;
}

static sdc_model *open_model(const char *file) {
    char path[512];
    snprintf(path, sizeof path, "tests/data/%s", file);
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = path;
    mp.threads = 2;
    sdc_err e = {{0}};
    sdc_model *m = sdc_model_open(&mp, &e);
    if (!m) printf("FAIL open %s: %s\n", file, e.msg);
    return m;
}

typedef struct inputs { uint8_t *rgb, *mask; int w, h; } inputs;

static int read_inputs(const char *ref, inputs *in) {
    char p[512];
    sdc_err e = {{0}};
    int mw, mh;
    snprintf(p, sizeof p, "tests/data/refs/%s_image.png", ref);
    if (sdc_read_image(p, &in->rgb, &in->w, &in->h, &e)) { printf("FAIL %s\n", e.msg); return -1; }
    snprintf(p, sizeof p, "tests/data/refs/%s_mask.png", ref);
    if (sdc_read_mask(p, &in->mask, &mw, &mh, &e)) { printf("FAIL %s\n", e.msg); return -1; }
    if (mw != in->w || mh != in->h) { printf("FAIL %s: mask %dx%d, image %dx%d\n", ref, mw, mh, in->w, in->h); return -1; }
    return 0;
}

static int run_case(const inpaint_case *c) {
    char path[512];
    snprintf(path, sizeof path, "tests/data/refs/%s.safetensors", c->ref);
    sdc_err e = {{0}};
    sdc_store *ref = sdc_store_new();
    if (sdc_store_open(ref, path, NULL, &e)) { printf("FAIL %s: %s\n", c->ref, e.msg); sdc_store_close(ref); return 1; }
    int fails = 0;
    inputs in = {0};
    trace tr = {0};
    sdc_model *m = NULL;
    float *mask_px = NULL, *mask_lat = NULL, *masked = NULL, *lat = NULL, *img = NULL;
    size_t n_gray = 0, n_mask = 0, n_ml = 0, n_mi = 0, nl = 0, ni = 0;
    float *r_gray = tu_tensor_f32(ref, "mask_gray", &n_gray), *r_mask = tu_tensor_f32(ref, "mask", &n_mask);
    float *r_ml = tu_tensor_f32(ref, "mask_latent", &n_ml), *r_mi = tu_tensor_f32(ref, "masked_image", &n_mi);
    float *r_lat = tu_tensor_f32(ref, "final_latents", &nl), *r_img = tu_tensor_f32(ref, "image", &ni);
    if (!r_gray || !r_mask || !r_ml || !r_mi || !r_lat || !r_img) { printf("FAIL %s: reference tensors missing\n", c->ref); fails++; goto out; }
    if (read_inputs(c->ref, &in)) { fails++; goto out; }
    int W = in.w, H = in.h;
    if (n_mask != (size_t)W * H || n_ml != n_mask / 64 || n_mi != 3 * n_mask) { printf("FAIL %s: sizes\n", c->ref); fails++; goto out; }

    /* The inputs, bit for bit: the grey mask /255, binarised, at latent size; the masked image. */
    mask_px = malloc(sizeof(float) * n_mask);
    mask_lat = malloc(sizeof(float) * n_ml);
    masked = malloc(sizeof(float) * n_mi);
    float *gray = malloc(sizeof(float) * n_gray);
    for (size_t i = 0; gray && i < n_gray; i++) gray[i] = (float)in.mask[i] / 255.0f;
    char what[256];
    snprintf(what, sizeof what, "%s mask_gray (the PNG as read)", c->ref);
    fails += !gray || !same_floats(what, gray, r_gray, n_gray);
    free(gray);
    sdc_inpaint_mask(in.mask, W, H, 8, mask_px, mask_lat);
    sdc_inpaint_masked_image(in.rgb, mask_px, W, H, masked);
    snprintf(what, sizeof what, "%s mask (binarised)", c->ref);
    fails += !same_floats(what, mask_px, r_mask, n_mask);
    snprintf(what, sizeof what, "%s mask_latent", c->ref);
    fails += !same_floats(what, mask_lat, r_ml, n_ml);
    snprintf(what, sizeof what, "%s masked_image", c->ref);
    fails += !same_floats(what, masked, r_mi, n_mi);

    /* The whole pipeline through sdc_generate_ex. */
    if (!(m = open_model(c->model))) { fails++; goto out; }
    int in_ch = sdc_model_get_info(m)->unet_in_channels;
    if (in_ch != c->unet_in) { printf("FAIL %s: UNet in_channels %d, expected %d\n", c->ref, in_ch, c->unet_in); fails++; }
    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = sdc_store_meta(ref, "prompt");
    gp.negative_prompt = sdc_store_meta(ref, "negative_prompt");
    gp.width = W;
    gp.height = H;
    gp.steps = atoi(sdc_store_meta(ref, "num_inference_steps"));
    gp.cfg_scale = (float)atof(sdc_store_meta(ref, "guidance_scale"));
    gp.strength = (float)atof(sdc_store_meta(ref, "strength"));
    gp.seed = c->seed;
    gp.sample_method = c->method;
    gp.spacing = SDC_SPACING_LEADING;
    gp.prompt_mode = 1;
    gp.init_rgb = in.rgb;
    gp.mask = in.mask;
    gp.on_latents = on_latents;
    gp.on_latents_user = &tr;
    tr.numel = nl;
    lat = malloc(sizeof(float) * nl);
    img = malloc(sizeof(float) * ni);
    if (!lat || !img || sdc_generate_ex(m, &gp, NULL, img, lat, &e)) { printf("FAIL %s: %s\n", c->ref, e.msg); fails++; goto out; }
    int calls = atoi(sdc_store_meta(ref, "unet_calls"));
    if (tr.n != calls || tr.steps != calls) { printf("FAIL %s: %d steps traced of %d, expected %d\n", c->ref, tr.n, tr.steps, calls); fails++; }
    for (int i = 0; i < tr.n && i < calls; i++) {
        char name[64];
        snprintf(name, sizeof name, "step%d.latents", i);
        size_t k;
        float *want = tu_tensor_f32(ref, name, &k);
        double d = -1, mx = -1;
        int ok = want && k == nl && lat_ok(tr.lat[i], want, nl, &d, &mx);
        printf("%s %s %s max|d| %.3g (max|x| %.3g)\n", ok ? "ok  " : "FAIL", c->ref, name, want ? d : -1, want ? mx : -1);
        fails += !ok;
        free(want);
    }
    double dl, ml, di, mi;
    int ok = lat_ok(lat, r_lat, nl, &dl, &ml);
    di = tu_max_abs_diff(img, r_img, ni, &mi);
    ok = ok && di <= 1e-3;
    printf("%s %-38s final latents max|d| %.3g (max|x| %.3g, rel %.2g)  image max|d| %.3g\n",
           ok ? "ok  " : "FAIL", c->ref, dl, ml, dl / ml, di);
    fails += !ok;
out:
    trace_free(&tr);
    sdc_model_close(m);
    free(in.rgb); free(in.mask);
    free(mask_px); free(mask_lat); free(masked); free(lat); free(img);
    free(r_gray); free(r_mask); free(r_ml); free(r_mi); free(r_lat); free(r_img);
    sdc_store_close(ref);
    return fails;
}

/* Every sampler with both kinds of model; the ordinary one keeps the init image's latents
 * (seed 3302 draws them first, as in the reference) wherever the latent mask is 0. */
static int every_sampler(void) {
    int fails = 0;
    inputs in = {0};
    sdc_store *ref = sdc_store_new();
    sdc_err e = {{0}};
    sdc_model *m4 = NULL, *m9 = NULL;
    float *il = NULL, *ml = NULL;
    size_t n = 0, nml = 0;
    if (read_inputs("sd1_inpaint4_64x64_ddim", &in) ||
        sdc_store_open(ref, "tests/data/refs/sd1_inpaint4_64x64_ddim.safetensors", NULL, &e) ||
        !(il = tu_tensor_f32(ref, "image_latents", &n)) || !(ml = tu_tensor_f32(ref, "mask_latent", &nml)) ||
        !(m4 = open_model("tiny-sd1.safetensors")) || !(m9 = open_model("tiny-sd1-inpaint.safetensors"))) {
        printf("FAIL every sampler: setup %s\n", e.msg);
        fails++;
        goto out;
    }
    float *lat = malloc(sizeof(float) * n);
    for (int s = 0; lat && s < SDC_SAMPLER_COUNT; s++) {
        for (int k = 0; k < 2; k++) {
            sdc_gen_params gp = sdc_gen_default_params();
            gp.prompt = "a small wooden house in a forest";
            gp.width = in.w; gp.height = in.h; gp.steps = 4; gp.seed = 3302; gp.strength = 1.0f;
            gp.sample_method = s;
            gp.init_rgb = in.rgb;
            gp.mask = in.mask;
            if (sdc_generate_ex(k ? m9 : m4, &gp, NULL, NULL, lat, &e)) {
                printf("FAIL %s, %d-channel UNet: %s\n", sdc_sampler_name(s), k ? 9 : 4, e.msg);
                fails++;
                continue;
            }
            double kept = 0, painted = 0;
            int finite = 1;
            for (size_t i = 0; i < n; i++) {
                finite &= isfinite(lat[i]);
                double d = fabs((double)lat[i] - il[i]);
                if (ml[i % nml] == 0.0f) kept = d > kept ? d : kept;
                else painted = d > painted ? d : painted;
            }
            /* 4 channels: the last blend puts the clean latents back; painted ones moved away */
            int ok = finite && (k || (kept <= 1e-4 && painted > 0.1));
            printf("%s %-8s %d-channel UNet: kept region max|x - image latents| %.3g, painted %.3g\n",
                   ok ? "ok  " : "FAIL", sdc_sampler_name(s), k ? 9 : 4, kept, painted);
            fails += !ok;
        }
    }
    free(lat);
out:
    sdc_model_close(m4);
    sdc_model_close(m9);
    free(in.rgb); free(in.mask); free(il); free(ml);
    sdc_store_close(ref);
    return fails;
}

/* An inpainting UNet without a mask paints with an all-white one (the init image is then not
 * looked at at strength 1); a mask without an init image is refused before any work. */
static int no_mask(void) {
    int fails = 0;
    sdc_model *m = open_model("tiny-sd1-inpaint.safetensors");
    inputs in = {0};
    if (!m || read_inputs("sd1_inpaint9_64x64_euler", &in)) return 1;
    size_t np = (size_t)in.w * in.h * 3;
    uint8_t *a = malloc(np), *b = malloc(np), *c = malloc(np), *white = malloc(np / 3);
    sdc_err e = {{0}};
    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = "a photo of a cat";
    gp.width = in.w; gp.height = in.h; gp.steps = 3; gp.seed = 7; gp.sample_method = SDC_SAMPLER_EULER;
    memset(white, 255, np / 3);
    int rc = sdc_generate(m, &gp, a, &e);                          /* txt2img */
    gp.init_rgb = in.rgb; gp.strength = 1.0f;
    rc |= sdc_generate(m, &gp, b, &e);                             /* img2img, no mask */
    gp.mask = white;
    rc |= sdc_generate(m, &gp, c, &e);                             /* all-white mask */
    int ok = !rc && !memcmp(a, b, np) && !memcmp(a, c, np);
    printf("%s inpainting UNet without a mask = with an all-white one (txt2img, img2img, white mask) %s\n",
           ok ? "ok  " : "FAIL", rc ? e.msg : "");
    fails += !ok;
    gp.init_rgb = NULL;
    e.msg[0] = 0;
    ok = sdc_generate(m, &gp, a, &e) != 0 && strstr(e.msg, "mask") && !strchr(e.msg, '\n');
    printf("%s mask without an init image refused: %s\n", ok ? "ok  " : "FAIL", e.msg);
    fails += !ok;
    free(a); free(b); free(c); free(white);
    free(in.rgb); free(in.mask);
    sdc_model_close(m);
    return fails;
}

int main(void) {
    int fails = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) fails += run_case(&CASES[i]);
    fails += every_sampler();
    fails += no_mask();
    printf("%d failures\n", fails);
    return fails != 0;
}
