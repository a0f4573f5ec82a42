/* test_img2img.c — img2img on the demo model does what a user expects: a low strength keeps
 * the picture (colours stay where they were), strength 1 with another prompt repaints it, and
 * the same seed gives the same bytes. (No diffusers reference exists for img2img; the noising
 * schedule itself is checked against diffusers' formulas in test_sampler.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/sampler.h"
#include "sdc.h"

enum { W = 64, H = 64, NP = W * H * 3 };

static double mean_abs(const uint8_t *a, const uint8_t *b) {
    double s = 0;
    for (int i = 0; i < NP; i++) s += fabs((double)a[i] - b[i]);
    return s / NP;
}

int main(void) {
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = "assets/toy-sd1/toy-sd1.safetensors";
    mp.threads = 2;
    sdc_err e = {{0}};
    sdc_model *m = sdc_model_open(&mp, &e);
    if (!m) { printf("FAIL: %s\n", e.msg); return 1; }
    static uint8_t init[NP], low[NP], low2[NP], full[NP];
    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = "a red circle on a blue background";
    gp.width = W; gp.height = H; gp.steps = 20; gp.cfg_scale = 5; gp.seed = 42;
    gp.sample_method = SDC_SAMPLE_DDIM;
    int fails = 0;
    if (sdc_generate(m, &gp, init, &e)) { printf("FAIL txt2img: %s\n", e.msg); return 1; }

    gp.init_rgb = init;
    gp.seed = 1234;
    gp.strength = 0.3f;
    if (sdc_generate(m, &gp, low, &e) || sdc_generate(m, &gp, low2, &e)) { printf("FAIL img2img: %s\n", e.msg); return 1; }
    gp.prompt = "a yellow star on a black background";
    gp.strength = 1.0f;
    if (sdc_generate(m, &gp, full, &e)) { printf("FAIL img2img: %s\n", e.msg); return 1; }

    double d_low = mean_abs(low, init), d_full = mean_abs(full, init);
    printf("mean |pixel diff| to the init image: strength 0.3 same prompt %.1f, strength 1 other prompt %.1f\n", d_low, d_full);
    if (memcmp(low, low2, NP)) { printf("FAIL: same seed gave different img2img bytes\n"); fails++; }
    if (!(d_low < 12)) { printf("FAIL: strength 0.3 changed the picture too much\n"); fails++; }
    if (!(d_full > 3 * d_low && d_full > 30)) { printf("FAIL: strength 1 with another prompt did not repaint\n"); fails++; }

    gp.strength = 0;
    if (sdc_generate(m, &gp, full, &e) == 0) { printf("FAIL: strength 0 accepted\n"); fails++; }
    else printf("ok   strength 0 refused: %s\n", e.msg);
    sdc_model_close(m);
    return fails != 0;
}
