/* test_sdxl_pipeline.c — the 7 SDXL pipelines of the fixtures (diffusers 0.25.1's own
 * StableDiffusionXLPipeline: euler, DPM++ 2M Karras, 96x64, an explicit negative prompt, an
 * explicit empty one, a one-step turbo run, a seeded euler_a) three ways:
 *  - sdc_generate_ex on tiny-sdxl.safetensors: final latents (atol 2e-3 or rel 5e-5 of max|x|)
 *    and image (atol 1e-3) of the reference, the settings from the model's defaults (SDXL:
 *    euler, leading spacing) unless the case names them;
 *  - the same on tiny-sdxl.ckpt (+ --config): bit-identical latents and image;
 *  - `sdc generate` (the CLI's own entry point) with the flags a user types: the PNG's pixels
 *    within 1e-3 + half a step of the reference image, its parameters text recording the size
 *    and crop conditioning.
 * Seeds (fixtures README): init noise torch.randn(generator=manual_seed(11000 + j)); the turbo run
 * draws its ancestral noise (x 0) from the same generator here; the seeded run uses 42 for all. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "pipeline/image.h"
#include "runtime/store.h"
#include "sdc.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

typedef struct xl_case {
    const char *ref;
    int seed;
    int method;            /* -1: the model's default (euler) */
    int schedule, spacing; /* spacing -1: the model's default */
    const char *cli_flags; /* sampler flags for `sdc generate` */
} xl_case;

static const xl_case CASES[] = {
    {"sdxl_pipe_64x64_euler", 11000, -1, SDC_SCHEDULER_DISCRETE, -1, ""},
    {"sdxl_pipe_64x64_dpmpp_2m_karras", 11001, SDC_SAMPLER_DPMPP_2M, SDC_SCHEDULER_KARRAS, -1,
     "--sampling-method dpm++2m --scheduler karras"},
    {"sdxl_pipe_96x64_euler", 11002, -1, SDC_SCHEDULER_DISCRETE, -1, ""},
    {"sdxl_pipe_64x64_euler_negprompt", 11003, -1, SDC_SCHEDULER_DISCRETE, -1, ""},
    {"sdxl_pipe_64x64_euler_negempty", 11004, -1, SDC_SCHEDULER_DISCRETE, -1, ""},
    {"sdxl_turbo_64x64_1step", 11005, SDC_SAMPLER_EULER_A, SDC_SCHEDULER_DISCRETE, SDC_TIMESTEPS_TRAILING,
     "--sampling-method euler_a --timestep-spacing trailing"},
    {"sdxl_seeded_64x64_euler_a_seed42", 42, SDC_SAMPLER_EULER_A, SDC_SCHEDULER_DISCRETE, -1,
     "--sampling-method euler_a"},
};
#define NCASES ((int)(sizeof CASES / sizeof *CASES))

static sdc_model *open_model(const char *path, const char *config) {
    sdc_err e = {{0}};
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = path;
    mp.config_path = config;
    mp.threads = 2;
    sdc_model *m = sdc_model_open(&mp, &e);
    CHECK(m, "%s: %s", path, e.msg);
    return m;
}

/* The reference's settings in gp (prompt, negative when given, size, steps, guidance, seed). */
static void settings(const sdc_store *ref, const xl_case *c, sdc_gen_params *gp) {
    *gp = sdc_gen_default_params();
    const char *given = sdc_store_meta(ref, "negative_prompt_given");
    gp->prompt = sdc_store_meta(ref, "prompt");
    gp->negative_prompt = given && !strcmp(given, "true") ? sdc_store_meta(ref, "negative_prompt") : NULL;
    gp->width = atoi(sdc_store_meta(ref, "width"));
    gp->height = atoi(sdc_store_meta(ref, "height"));
    gp->steps = atoi(sdc_store_meta(ref, "num_inference_steps"));
    gp->cfg_scale = (float)atof(sdc_store_meta(ref, "guidance_scale"));
    gp->seed = (uint64_t)c->seed;
    gp->sample_method = c->method >= 0 ? c->method : SDC_SAMPLER_EULER;
    gp->schedule = c->schedule;
    gp->spacing = c->spacing;
    gp->prompt_mode = 1;   /* diffusers truncates */
}

static double worst_lat_rel, worst_img;

static void run_case(sdc_model *ms, sdc_model *mc, const xl_case *c) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/refs/%s.safetensors", c->ref);
    sdc_err e = {{0}};
    sdc_store *ref = sdc_store_new();
    CHECK(sdc_store_open(ref, path, NULL, &e) == 0, "%s", e.msg);
    size_t nl = 0, ni = 0;
    float *want_lat = tu_tensor_f32(ref, "final_latents", &nl), *want_img = tu_tensor_f32(ref, "image", &ni);
    CHECK(want_lat && want_img, "%s: refs missing", c->ref);
    if (!want_lat || !want_img) goto out;
    sdc_gen_params gp;
    settings(ref, c, &gp);
    float *lat = malloc(sizeof(float) * nl), *img = malloc(sizeof(float) * ni);
    float *lat2 = malloc(sizeof(float) * nl), *img2 = malloc(sizeof(float) * ni);
    int rc = sdc_generate_ex(ms, &gp, NULL, img, lat, &e);
    CHECK(rc == 0, "%s: %s", c->ref, e.msg);
    if (rc == 0) {
        double ml, mi, dl = tu_max_abs_diff(lat, want_lat, nl, &ml), di = tu_max_abs_diff(img, want_img, ni, &mi);
        int ok = (dl <= 2e-3 || dl <= 5e-5 * ml) && di <= 1e-3;
        printf("%s %-34s latents max|d| %.3g (max|x| %.3g, rel %.2g)  image max|d| %.3g\n", ok ? "ok  " : "FAIL",
               c->ref, dl, ml, dl / ml, di);
        CHECK(ok, "%s: outside the tolerance", c->ref);
        if (dl / ml > worst_lat_rel) worst_lat_rel = dl / ml;
        if (di > worst_img) worst_img = di;
        rc = sdc_generate_ex(mc, &gp, NULL, img2, lat2, &e);
        CHECK(rc == 0 && !memcmp(lat, lat2, sizeof(float) * nl) && !memcmp(img, img2, sizeof(float) * ni),
              "%s: the .ckpt gives other bits (%s)", c->ref, e.msg);
    }
    /* The CLI, as a user types it. */
    char out[128], num[6][32], flags[256], *argv[64];
    snprintf(out, sizeof out, "/tmp/sdc_test_sdxl_pipe_%d.png", (int)getpid());
    snprintf(num[0], 32, "%d", gp.width);
    snprintf(num[1], 32, "%d", gp.height);
    snprintf(num[2], 32, "%d", gp.steps);
    snprintf(num[3], 32, "%g", gp.cfg_scale);
    snprintf(num[4], 32, "%d", c->seed);
    snprintf(flags, sizeof flags, "%s", c->cli_flags);
    int argc = 0;
    const char *fixed[] = {"generate", "-m", "tests/data/tiny-sdxl.safetensors", "-p", gp.prompt, "-W", num[0],
                           "-H", num[1], "--steps", num[2], "--cfg-scale", num[3], "-s", num[4], "-t", "2",
                           "--prompt-mode", "truncate", "-q", "-o", out};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) argv[argc++] = (char *)fixed[i];
    if (gp.negative_prompt) { argv[argc++] = "-n"; argv[argc++] = (char *)gp.negative_prompt; }
    for (char *tok = strtok(flags, " "); tok && argc < 63; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    rc = sdc_cmd_generate(argc, argv);
    CHECK(rc == 0, "%s: sdc generate exit %d", c->ref, rc);
    uint8_t *png = NULL;
    int w = 0, h = 0;
    if (rc == 0 && sdc_read_image(out, &png, &w, &h, &e) == 0) {
        CHECK(w == gp.width && h == gp.height, "%s: PNG %dx%d", c->ref, w, h);
        double d = 0;
        for (size_t i = 0; w == gp.width && h == gp.height && i < ni; i++) {
            double x = fabs(png[i] / 255.0 - want_img[i]);
            if (x > d) d = x;
        }
        CHECK(d <= 1e-3 + 0.5 / 255, "%s: PNG pixels differ by %.4g", c->ref, d);
        size_t n = 0;
        char *bytes = tu_slurp(out, &n), want[64];
        snprintf(want, sizeof want, "Size cond: %dx%d, Crop cond: 0,0", gp.width, gp.height);
        int found = 0;
        for (size_t i = 0; bytes && i + strlen(want) <= n && !found; i++) found = !memcmp(bytes + i, want, strlen(want));
        CHECK(found, "%s: the PNG does not record '%s'", c->ref, want);
        printf("     sdc generate %s: PNG within %.4g of the reference image, records '%s'\n", c->cli_flags, d, want);
        free(bytes);
        free(png);
    } else {
        CHECK(0, "%s: cannot read the PNG: %s", c->ref, e.msg);
    }
    remove(out);
    free(lat); free(img); free(lat2); free(img2);
out:
    free(want_lat); free(want_img);
    sdc_store_close(ref);
}

int main(void) {
    sdc_model *ms = open_model("tests/data/tiny-sdxl.safetensors", NULL);
    sdc_model *mc = open_model("tests/data/tiny-sdxl.ckpt", "tests/data/tiny-sdxl.config.json");
    if (ms && mc) {
        const sdc_model_info *mi = sdc_model_get_info(ms);
        printf("model: %s, vector conditioning %d, default sampler %s, spacing %s, VAE scale %g\n", mi->family,
               mi->vector_cond, sdc_sampler_name(mi->default_sampler), sdc_timestep_spacing_name(mi->default_spacing),
               mi->vae_scale);
        CHECK(mi->vector_cond && mi->default_sampler == SDC_SAMPLER_EULER && mi->default_spacing == SDC_TIMESTEPS_LEADING,
              "SDXL defaults");
        for (int i = 0; i < NCASES; i++) run_case(ms, mc, &CASES[i]);
        printf("worst: final latents rel %.2g, image %.3g\n", worst_lat_rel, worst_img);
    }
    sdc_model_close(ms);
    sdc_model_close(mc);
    printf(fails ? "test_sdxl_pipeline: %d FAILED\n" : "test_sdxl_pipeline: all passed\n", fails);
    return fails ? 1 : 0;
}
