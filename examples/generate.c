/* generate.c — the smallest program on the installed library: one image from a prompt.
 *
 *   cc generate.c $(pkg-config --cflags --libs sdc) -o generate
 *   ./generate MODEL.safetensors "a red circle on a blue background" out.ppm [SEED]
 *
 * (where the install prefix is not a system path: PKG_CONFIG_PATH=PREFIX/lib/pkgconfig to build,
 * LD_LIBRARY_PATH=PREFIX/lib to run, or `pkg-config --static --libs sdc` for a static link.)
 * Only include/sdc.h is used. The size, steps and guidance are the model file's own defaults
 * where it states them (the demo model does), else the library's. The image is written as
 * binary PPM (P6), which needs no image library. Exit status 0, or 1 with the error on stderr. */
#include <stdio.h>
#include <stdlib.h>

#include <sdc.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL PROMPT OUT.ppm [SEED]\n(sdc %s)\n", argv[0], sdc_version());
        return 1;
    }
    sdc_err err = {{0}};
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = argv[1];
    sdc_model *m = sdc_model_open(&mp, &err);
    if (!m) { fprintf(stderr, "generate: %s\n", err.msg); return 1; }

    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = argv[2];
    gp.seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 42;
    int w = 0, h = 0, steps = 0;
    float cfg = 0.0f;
    sdc_model_defaults(m, &w, &h, &steps, &cfg);   /* 0: the file says nothing */
    if (w > 0 && h > 0) { gp.width = w; gp.height = h; }
    if (steps > 0) gp.steps = steps;
    if (cfg > 0.0f) gp.cfg_scale = cfg;

    const sdc_model_info *info = sdc_model_get_info(m);
    fprintf(stderr, "generate: %s model, %dx%d, %d steps, sampler %s, seed %llu\n", info->family, gp.width,
            gp.height, gp.steps, sdc_sampler_name(gp.sample_method), (unsigned long long)gp.seed);
    uint8_t *rgb = malloc((size_t)gp.width * gp.height * 3);
    int rc = 1;
    if (!rgb) fprintf(stderr, "generate: out of memory\n");
    else if (sdc_generate(m, &gp, rgb, &err)) fprintf(stderr, "generate: %s\n", err.msg);
    else {
        FILE *f = fopen(argv[3], "wb");
        if (f && fprintf(f, "P6\n%d %d\n255\n", gp.width, gp.height) > 0 &&
            fwrite(rgb, 3, (size_t)gp.width * gp.height, f) == (size_t)gp.width * gp.height && fclose(f) == 0) {
            fprintf(stderr, "generate: wrote %s\n", argv[3]);
            rc = 0;
        } else {
            fprintf(stderr, "generate: %s: cannot write\n", argv[3]);
            if (f) fclose(f);
        }
    }
    free(rgb);
    sdc_model_close(m);
    return rc;
}
