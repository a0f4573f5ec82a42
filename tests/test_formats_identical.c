/* test_formats_identical.c — the same weights give the same image whatever file they came in:
 * tiny-sd1 as f32 safetensors, f32 zip ckpt, f16 safetensors, f16 zip ckpt and legacy ckpt
 * (all hold identical, f16-exact values) must give bit-identical latents and pixels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdc.h"

static const char *FILES[] = {
    "tests/data/tiny-sd1-fp16.safetensors", "tests/data/tiny-sd1-fp16.ckpt",
    "tests/data/tiny-sd1-legacy.ckpt", "tests/data/tiny-sd1.safetensors", "tests/data/tiny-sd1.ckpt",
};

int main(void) {
    enum { W = 64, H = 64, NL = 4 * (W / 8) * (H / 8), NP = W * H * 3 };
    static float lat0[NL], lat[NL];
    static uint8_t rgb0[NP], rgb[NP];
    int fails = 0;
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
        sdc_model_params mp = sdc_model_default_params();
        mp.model_path = FILES[i];
        mp.config_path = "tests/data/tiny-sd1.config.json";   /* a .ckpt has no metadata */
        mp.threads = 2;
        sdc_err e = {{0}};
        sdc_model *m = sdc_model_open(&mp, &e);
        if (!m) { printf("FAIL %s: %s\n", FILES[i], e.msg); fails++; continue; }
        sdc_gen_params gp = sdc_gen_default_params();
        gp.prompt = "a lighthouse at dawn";
        gp.width = W; gp.height = H; gp.steps = 3; gp.seed = 7;
        if (sdc_generate_ex(m, &gp, i ? rgb : rgb0, NULL, i ? lat : lat0, &e)) {
            printf("FAIL %s: %s\n", FILES[i], e.msg);
            fails++;
        } else if (i) {
            int same = !memcmp(lat, lat0, sizeof lat) && !memcmp(rgb, rgb0, sizeof rgb);
            printf("%s %s vs %s: %s\n", same ? "ok  " : "FAIL", FILES[i], FILES[0],
                   same ? "bit-identical latents and pixels" : "DIFFERENT");
            fails += !same;
        }
        sdc_model_close(m);
    }
    return fails != 0;
}
