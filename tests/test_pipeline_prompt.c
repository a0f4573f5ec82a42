/* test_pipeline_prompt.c — prompts as people write them, through the whole pipeline:
 *  - refs/sd1_pipe_64x64_euler_weighted: AUTOMATIC1111-weighted prompt and negative prompt
 *    (chunk mode) give the reference's final latents (atol 2e-3 or rel 5e-5) and image (1e-3);
 *  - refs/sd1_pipe_64x64_euler_lora0.8: tiny-sd1-lora at 0.8 on UNet and text encoder, the same
 *    tolerances, as params.loras, as a <lora:tiny-sd1-lora:0.8> tag found in the LoRA folder,
 *    from the .ckpt (the same bits), in low-mem mode (the same bits), and through `sdc generate`
 *    with the tag in the prompt (its PNG within one level of the reference's PNG);
 *  - a prompt whose tags are not those merged at open is refused. */
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

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

#define MODEL "tests/data/tiny-sd1-fp16.safetensors"

typedef struct run { float *lat, *img; size_t nl, ni; } run;

/* One generation of ref's parameters with mp; lat/img malloc'd. 0 or -1 (printed). */
static int generate(const sdc_store *ref, sdc_model_params mp, const char *prompt, int mode, unsigned seed,
                    run *r) {
    sdc_err e = {{0}};
    r->nl = (size_t)sdc_store_get(ref, "final_latents")->numel;
    r->ni = (size_t)sdc_store_get(ref, "image")->numel;
    r->lat = malloc(r->nl * sizeof(float));
    r->img = malloc(r->ni * sizeof(float));
    mp.model_path = MODEL;
    mp.threads = 2;
    sdc_model *m = sdc_model_open(&mp, &e);
    if (!m) { printf("open: %s\n", e.msg); return -1; }
    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = prompt ? prompt : sdc_store_meta(ref, "prompt");
    gp.negative_prompt = sdc_store_meta(ref, "negative_prompt");
    gp.width = atoi(sdc_store_meta(ref, "width"));
    gp.height = atoi(sdc_store_meta(ref, "height"));
    gp.steps = atoi(sdc_store_meta(ref, "num_inference_steps"));
    gp.cfg_scale = (float)atof(sdc_store_meta(ref, "guidance_scale"));
    gp.seed = seed;
    gp.sample_method = SDC_SAMPLER_EULER;
    gp.spacing = SDC_TIMESTEPS_LEADING;
    gp.prompt_mode = mode;
    int rc = sdc_generate_ex(m, &gp, NULL, r->img, r->lat, &e);
    if (rc) printf("generate: %s\n", e.msg);
    sdc_model_close(m);
    return rc;
}

static void against_ref(const sdc_store *ref, const run *r, const char *what) {
    float *lat = tu_tensor_f32(ref, "final_latents", NULL), *img = tu_tensor_f32(ref, "image", NULL);
    double ml, dl = tu_max_abs_diff(r->lat, lat, r->nl, &ml), di = tu_max_abs_diff(r->img, img, r->ni, NULL);
    int ok = (dl <= 2e-3 || dl <= 5e-5 * ml) && di <= 1e-3;
    printf("%s %-40s latents max|d| %.3g (max|x| %.3g)  image max|d| %.3g\n", ok ? "ok  " : "FAIL", what, dl, ml, di);
    CHECK(ok, "%s differs from the reference", what);
    free(lat);
    free(img);
}

static void free_run(run *r) { free(r->lat); free(r->img); }

static sdc_store *open_ref(const char *name) {
    char p[256];
    snprintf(p, sizeof p, "tests/data/refs/%s.safetensors", name);
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    if (sdc_store_open(s, p, NULL, &e)) { printf("%s\n", e.msg); exit(1); }
    return s;
}

int main(void) {
    sdc_model_params mp = sdc_model_default_params();

    /* AUTOMATIC1111 weighting */
    sdc_store *wref = open_ref("sd1_pipe_64x64_euler_weighted");
    run w;
    if (!generate(wref, mp, NULL, 0, 3102, &w)) against_ref(wref, &w, "weighted prompt (chunk mode)");
    else CHECK(0, "weighted pipeline");
    free_run(&w);
    sdc_store_close(wref);

    /* LoRA: as a file, as a tag, from the .ckpt, in low-mem mode */
    sdc_store *lref = open_ref("sd1_pipe_64x64_euler_lora0.8");
    sdc_lora l = {"tests/data/tiny-sd1-lora.safetensors", 0.8f};
    mp.loras = &l;
    mp.n_loras = 1;
    run a, b, c, d;
    memset(&b, 0, sizeof b); memset(&c, 0, sizeof c); memset(&d, 0, sizeof d);
    int ra = generate(lref, mp, NULL, 1, 3103, &a);
    CHECK(!ra, "LoRA file pipeline");
    if (!ra) against_ref(lref, &a, "--lora tiny-sd1-lora.safetensors:0.8");
    l.path = "tests/data/tiny-sd1-lora.ckpt";
    if (!ra && !generate(lref, mp, NULL, 1, 3103, &c))
        CHECK(!memcmp(a.img, c.img, a.ni * 4) && !memcmp(a.lat, c.lat, a.nl * 4), ".ckpt LoRA: not the same bits");
    l.path = "tests/data/tiny-sd1-lora.safetensors";
    mp.low_mem = 1;
    if (!ra && !generate(lref, mp, NULL, 1, 3103, &d))
        CHECK(!memcmp(a.img, d.img, a.ni * 4) && !memcmp(a.lat, d.lat, a.nl * 4), "low-mem LoRA: not the same bits");
    mp.low_mem = 0;
    mp.loras = NULL;
    mp.n_loras = 0;
    const char *tagged = "a photo of a cat <lora:tiny-sd1-lora:0.8>";
    mp.lora_prompt = tagged;
    mp.lora_model_dir = "tests/data";
    if (!ra && !generate(lref, mp, tagged, 1, 3103, &b))
        CHECK(!memcmp(a.img, b.img, a.ni * 4), "<lora:...> tag: not the same bits as the file");
    else CHECK(0, "tagged pipeline");

    /* a prompt whose tags were not merged at open is refused */
    sdc_err e = {{0}};
    mp.model_path = MODEL;
    sdc_model *m = sdc_model_open(&mp, &e);
    CHECK(m != NULL, "open: %s", e.msg);
    sdc_gen_params gp = sdc_gen_default_params();
    gp.width = gp.height = 64;
    gp.steps = 1;
    gp.prompt = "a photo of a cat <lora:tiny-sd1-lora:0.5>";
    CHECK(m && sdc_generate(m, &gp, NULL, &e) == -1 && strstr(e.msg, "merged when the model was opened"),
          "a different tag: '%s'", e.msg);
    sdc_model_close(m);

    /* through `sdc generate`: the PNG of the tagged prompt against the reference's PNG */
    char out[256];
    snprintf(out, sizeof out, "%s/sdc-lora-%d.png", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    char *argv[] = {"generate", "-m", MODEL, "-p", (char *)tagged, "-n", "", "--lora-model-dir", "tests/data",
                    "--sampling-method", "euler", "--timestep-spacing", "leading", "--steps", "5",
                    "--cfg-scale", "7.5", "-W", "64", "-H", "64", "-s", "3103", "--prompt-mode", "truncate",
                    "-t", "2", "-q", "-o", out, NULL};
    int rc = sdc_cmd_generate((int)(sizeof argv / sizeof *argv) - 1, argv);
    CHECK(rc == 0, "sdc generate with <lora:tiny-sd1-lora:0.8>: exit %d", rc);
    uint8_t *png = NULL, *want = NULL;
    int pw, ph, ww, wh;
    if (!rc && !sdc_read_image(out, &png, &pw, &ph, &e) &&
        !sdc_read_image("tests/data/refs/sd1_pipe_64x64_euler_lora0.8.png", &want, &ww, &wh, &e)) {
        int maxd = 0;
        for (int i = 0; pw == ww && ph == wh && i < pw * ph * 3; i++) {
            int dd = abs((int)png[i] - (int)want[i]);
            if (dd > maxd) maxd = dd;
        }
        printf("%s sdc generate <lora:tiny-sd1-lora:0.8> PNG vs reference PNG: max %d level(s)\n",
               maxd <= 1 ? "ok  " : "FAIL", maxd);
        CHECK(pw == ww && ph == wh && maxd <= 1, "PNG differs from the reference by %d levels", maxd);
        size_t n = 0;
        char *bytes = tu_slurp(out, &n);
        int found = 0;
        for (size_t i = 0; bytes && i + 40 < n && !found; i++)
            found = !memcmp(bytes + i, "<lora:tiny-sd1-lora:0.8>", 24);
        char *lh = NULL;
        for (size_t i = 0; bytes && i + 16 < n && !lh; i++)
            if (!memcmp(bytes + i, "Lora hashes: \"tiny-sd1-lora: ", 29)) lh = bytes + i;
        CHECK(found && lh, "PNG parameters keep the tag and carry Lora hashes");
        free(bytes);
    } else {
        CHECK(0, "reading the PNGs: %s", e.msg);
    }
    free(png);
    free(want);
    remove(out);

    free_run(&a); free_run(&b); free_run(&c); free_run(&d);
    sdc_store_close(lref);
    if (failures) { printf("%d failure(s)\n", failures); return 1; }
    printf("all prompt pipelines passed\n");
    return 0;
}
