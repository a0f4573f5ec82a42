/* test_demo_model.c — the embedded demo model (assets/toy-sd1) reproduces its reference set:
 * diffusers' seeded 20-step runs (DDIM and Euler, CFG 7.5, 64x64, three prompts) from the README.
 * sdc runs each with its defaults for that sampler (the spacing diffusers' SD 1.5 pipeline gives
 * it out of the box) and must give the final latents (atol 2e-3 or rel 5e-5 of max|x|) and the
 * image (atol 1e-3) of the reference — the fixtures README's pipeline tolerances. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/sampler.h"
#include "sdc.h"
#include "tests/test_util.h"

#define DIR "assets/toy-sd1/reference/"

/* Reads a little-endian float32 C-order .npy of exactly n values. */
static float *read_npy(const char *name, size_t n) {
    char path[512];
    snprintf(path, sizeof path, DIR "%s", name);
    FILE *f = fopen(path, "rb");
    unsigned char h[10];
    if (!f || fread(h, 1, 10, f) != 10 || memcmp(h, "\x93NUMPY", 6) || h[6] != 1) { if (f) fclose(f); return NULL; }
    size_t hl = h[8] | (size_t)h[9] << 8;
    char *hdr = calloc(1, hl + 1);
    float *v = malloc(sizeof(float) * n);
    int ok = hdr && v && fread(hdr, 1, hl, f) == hl && strstr(hdr, "'<f4'") &&
             strstr(hdr, "'fortran_order': False") && fread(v, sizeof(float), n, f) == n;
    fclose(f);
    free(hdr);
    if (!ok) { free(v); return NULL; }
    return v;
}

int main(void) {
    char *js = tu_slurp(DIR "reference.json", NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    cJSON *runs = cJSON_GetObjectItem(root, "runs");
    if (!cJSON_IsArray(runs)) { printf("FAIL: cannot read " DIR "reference.json\n"); return 1; }
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = "assets/toy-sd1/toy-sd1.safetensors";
    mp.threads = 2;
    sdc_err e = {{0}};
    sdc_model *m = sdc_model_open(&mp, &e);
    if (!m) { printf("FAIL: %s\n", e.msg); return 1; }
    int fails = 0, count = 0;
    cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const char *name = cJSON_GetObjectItem(r, "name")->valuestring;
        sdc_gen_params gp = sdc_gen_default_params();
        gp.prompt = cJSON_GetObjectItem(r, "prompt")->valuestring;
        gp.negative_prompt = cJSON_GetObjectItem(r, "negative_prompt")->valuestring;
        gp.seed = (uint64_t)cJSON_GetObjectItem(r, "seed")->valuedouble;
        gp.steps = cJSON_GetObjectItem(r, "steps")->valueint;
        gp.cfg_scale = (float)cJSON_GetObjectItem(r, "guidance_scale")->valuedouble;
        gp.width = cJSON_GetObjectItem(r, "width")->valueint;
        gp.height = cJSON_GetObjectItem(r, "height")->valueint;
        gp.sample_method = sdc_sample_method_from_name(cJSON_GetObjectItem(r, "sampler")->valuestring);
        gp.prompt_mode = 1;
        size_t nl = 4 * (size_t)(gp.width / 8) * (gp.height / 8), ni = 3 * (size_t)gp.width * gp.height;
        float *want_l = read_npy(cJSON_GetObjectItem(r, "final_latents_npy")->valuestring, nl);
        float *want_i = read_npy(cJSON_GetObjectItem(r, "image_npy")->valuestring, ni);
        float *lat = malloc(sizeof(float) * nl), *img = malloc(sizeof(float) * ni);
        count++;
        if (!want_l || !want_i || gp.sample_method < 0) {
            printf("FAIL %s: reference unreadable\n", name);
            fails++;
        } else if (sdc_generate_ex(m, &gp, NULL, img, lat, &e)) {
            printf("FAIL %s: %s\n", name, e.msg);
            fails++;
        } else {
            double ml, mi, dl = tu_max_abs_diff(lat, want_l, nl, &ml), di = tu_max_abs_diff(img, want_i, ni, &mi);
            int ok = (dl <= 2e-3 || dl <= 5e-5 * ml) && di <= 1e-3;
            printf("%s %-16s latents max|d| %.3g (max|x| %.3g)  image max|d| %.3g\n", ok ? "ok  " : "FAIL", name, dl, ml, di);
            fails += !ok;
        }
        free(want_l); free(want_i); free(lat); free(img);
    }
    sdc_model_close(m);
    cJSON_Delete(root);
    free(js);
    printf("%d of %d demo reference runs failed\n", fails, count);
    return fails != 0 || count == 0;
}
