/* test_pipeline_taesd.c — the pipeline with a TAESD decoder (sdc_model_params.taesd_path) equal to
 * diffusers' StableDiffusionPipeline(vae=AutoencoderTiny) (refs/sd1_pipe_64x64_euler_taesd: the
 * TAESD gets the final latents unchanged): final latents (atol 2e-3 or rel 5e-5 of max|x|) and
 * image (atol 1e-3), tolerances from the fixtures README. Live previews: called every N steps and
 * after the last, the last one the final picture's bytes; refused without a TAESD or with N < 1;
 * a TAESD encoder-only file is refused for decoding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/store.h"
#include "sdc.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

typedef struct seen { int n, steps[16]; uint8_t *last; size_t bytes; } seen;

static void on_preview(void *u, int step, int steps, const uint8_t *rgb, int w, int h) {
    seen *s = u;
    if (s->n < 16) s->steps[s->n] = step;
    s->n++;
    CHECK(steps == 5 && w == 64 && h == 64, "preview %d/%d %dx%d", step, steps, w, h);
    if (s->last && s->bytes == (size_t)w * h * 3) memcpy(s->last, rgb, s->bytes);
}

int main(void) {
    sdc_err e = {{0}};
    sdc_store *ref = sdc_store_new();
    CHECK(sdc_store_open(ref, "tests/data/refs/sd1_pipe_64x64_euler_taesd.safetensors", NULL, &e) == 0, "%s", e.msg);
    size_t nl = 0, ni = 0, nd = 0;
    float *want_lat = tu_tensor_f32(ref, "final_latents", &nl), *want_img = tu_tensor_f32(ref, "image", &ni);
    float *dec_in = tu_tensor_f32(ref, "taesd_decoder_input", &nd);
    CHECK(want_lat && want_img && dec_in && nl == 4 * 8 * 8 && ni == 64 * 64 * 3, "reference tensors");
    if (!want_lat || !want_img || !dec_in) return 1;
    CHECK(nd == nl && !memcmp(dec_in, want_lat, nl * 4), "the reference's TAESD input is its final latents");

    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = "tests/data/tiny-sd1.safetensors";
    mp.taesd_path = "tests/data/taesd-random.safetensors";
    mp.threads = 2;
    sdc_model *m = sdc_model_open(&mp, &e);
    CHECK(m, "open: %s", e.msg);
    if (!m) return 1;
    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = sdc_store_meta(ref, "prompt");
    gp.negative_prompt = sdc_store_meta(ref, "negative_prompt");
    gp.width = gp.height = 64;
    gp.steps = 5;
    gp.cfg_scale = 7.5f;
    gp.seed = 3200;
    gp.sample_method = SDC_SAMPLER_EULER;
    gp.spacing = SDC_TIMESTEPS_LEADING;
    gp.prompt_mode = 1;                     /* diffusers truncates */
    float lat[256], img[64 * 64 * 3];
    uint8_t rgb[64 * 64 * 3], last[64 * 64 * 3];
    seen s = {0, {0}, last, sizeof last};
    gp.on_preview = on_preview;
    gp.on_preview_user = &s;
    gp.preview_every = 2;
    int rc = sdc_generate_ex(m, &gp, rgb, img, lat, &e);
    CHECK(rc == 0, "generate: %s", e.msg);
    if (rc == 0) {
        double ml, mi, dl = tu_max_abs_diff(lat, want_lat, nl, &ml), di = tu_max_abs_diff(img, want_img, ni, &mi);
        printf("final latents max abs err %.3g (max|ref| %.3g), image max abs err %.3g\n", dl, ml, di);
        CHECK(dl <= 2e-3 || dl <= 5e-5 * ml, "final latents err %g", dl);
        CHECK(di <= 1e-3, "image err %g", di);
        CHECK(s.n == 3 && s.steps[0] == 2 && s.steps[1] == 4 && s.steps[2] == 5, "previews at %d steps (%d %d %d)",
              s.n, s.steps[0], s.steps[1], s.steps[2]);
        CHECK(!memcmp(last, rgb, sizeof rgb), "the last preview is not the final picture");
    }
    gp.preview_every = 0;
    CHECK(sdc_generate_ex(m, &gp, rgb, NULL, NULL, &e) == -1 && strstr(e.msg, "at least 1"), "every 0: %s", e.msg);
    sdc_model_close(m);

    /* previews need a TAESD */
    mp.taesd_path = NULL;
    m = sdc_model_open(&mp, &e);
    CHECK(m, "open: %s", e.msg);
    gp.preview_every = 1;
    CHECK(m && sdc_generate_ex(m, &gp, rgb, NULL, NULL, &e) == -1 && strstr(e.msg, "TAESD"), "no TAESD: %s", e.msg);
    sdc_model_close(m);
    /* a file that is no TAESD */
    mp.taesd_path = "tests/data/tiny-sd1-fp16.safetensors";
    m = sdc_model_open(&mp, &e);
    CHECK(!m && strstr(e.msg, "no TAESD weights"), "a checkpoint as --taesd: %s", m ? "opened" : e.msg);
    sdc_model_close(m);

    free(want_lat); free(want_img); free(dec_in);
    sdc_store_close(ref);
    if (fails) { printf("%d check(s) failed\n", fails); return 1; }
    printf("ok\n");
    return 0;
}
