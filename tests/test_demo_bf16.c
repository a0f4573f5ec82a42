/* test_demo_bf16.c — the demo model (assets/toy-sd1) still draws the README's three prompts in
 * bf16 (sdc_model_params.precision): seeds 42-50 at 64x64 with the model's defaults, as the
 * README's contact sheets are made, in f32 and in bf16. Each picture's background (the border's
 * mean colour) and shape (the mean of the tenth of the inner pixels farthest from the background)
 * are named by the nearest colour of the demo's palette; in f32 they must be the prompt's colours for most seeds (the model's own
 * quality: README of assets/toy-sd1), and in bf16 every picture must get the same two names as
 * its f32 twin. The PSNR of bf16 against f32 is printed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdc.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

#define S 64
#define SEEDS 9

static const struct { const char *name; float rgb[3]; } PALETTE[] = {
    {"red", {0.85f, 0.1f, 0.1f}},   {"orange", {0.95f, 0.55f, 0.1f}}, {"yellow", {0.95f, 0.9f, 0.1f}},
    {"green", {0.1f, 0.6f, 0.15f}}, {"blue", {0.1f, 0.2f, 0.85f}},    {"purple", {0.5f, 0.1f, 0.6f}},
    {"white", {0.95f, 0.95f, 0.95f}}, {"black", {0.05f, 0.05f, 0.05f}}};
#define NPAL ((int)(sizeof PALETTE / sizeof *PALETTE))

static int nearest(const double m[3]) {
    int best = 0;
    double bd = 1e9;
    for (int k = 0; k < NPAL; k++) {
        double d = 0;
        for (int c = 0; c < 3; c++) d += (m[c] - PALETTE[k].rgb[c]) * (m[c] - PALETTE[k].rgb[c]);
        if (d < bd) { bd = d; best = k; }
    }
    return best;
}

/* names[0]: the palette colour nearest to the border's mean (the background); names[1]: nearest
 * to the mean of the tenth of the inner pixels farthest from that mean (the shape, however small). */
static void name_picture(const uint8_t *rgb, int names[2]) {
    double bg[3] = {0, 0, 0}, d[S * S];
    int n = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            if (x < 6 || y < 6 || x >= S - 6 || y >= S - 6) {
                for (int c = 0; c < 3; c++) bg[c] += rgb[(y * S + x) * 3 + c] / 255.0;
                n++;
            }
    for (int c = 0; c < 3; c++) bg[c] /= n;
    names[0] = nearest(bg);
    for (int i = 0; i < S * S; i++) {
        d[i] = 0;
        for (int c = 0; c < 3; c++) d[i] += (rgb[i * 3 + c] / 255.0 - bg[c]) * (rgb[i * 3 + c] / 255.0 - bg[c]);
    }
    double sorted[S * S];
    int m = 0;
    for (int y = 8; y < S - 8; y++)
        for (int x = 8; x < S - 8; x++) sorted[m++] = d[y * S + x];
    for (int i = 0; i < m / 10; i++)          /* partial selection: the m/10 largest first */
        for (int j = i + 1; j < m; j++)
            if (sorted[j] > sorted[i]) { double t = sorted[i]; sorted[i] = sorted[j]; sorted[j] = t; }
    const double cut = sorted[m / 10 - 1];
    double sh[3] = {0, 0, 0};
    int k = 0;
    for (int y = 8; y < S - 8; y++)
        for (int x = 8; x < S - 8; x++)
            if (d[y * S + x] >= cut) {
                for (int c = 0; c < 3; c++) sh[c] += rgb[(y * S + x) * 3 + c] / 255.0;
                k++;
            }
    for (int c = 0; c < 3; c++) sh[c] /= k;
    names[1] = nearest(sh);
}

static int palette_index(const char *name) {
    for (int k = 0; k < NPAL; k++) if (!strcmp(PALETTE[k].name, name)) return k;
    return -1;
}

int main(void) {
    static const struct { const char *prompt, *shape, *bg; } P[] = {
        {"a red circle on a blue background", "red", "blue"},
        {"a yellow star on a black background", "yellow", "black"},
        {"a large orange square on a green background", "orange", "green"}};
    sdc_model *m[2] = {NULL, NULL};
    for (int p = 0; p < 2; p++) {
        sdc_model_params mp = sdc_model_default_params();
        mp.model_path = "assets/toy-sd1/toy-sd1.safetensors";
        mp.threads = 2;
        mp.precision = p ? SDC_PRECISION_BF16 : SDC_PRECISION_F32;
        sdc_err e = {{0}};
        m[p] = sdc_model_open(&mp, &e);
        CHECK(m[p], "open (%s): %s", sdc_precision_name(mp.precision), e.msg);
    }
    if (!m[0] || !m[1]) return 1;
    printf("bf16 kernels: %s\n", sdc_bf16_kernels());
    static uint8_t img[2][S * S * 3];
    for (int i = 0; i < 3; i++) {
        int right = 0;
        double se = 0;
        for (int s = 0; s < SEEDS; s++) {
            int names[2][2];
            for (int p = 0; p < 2; p++) {
                sdc_gen_params gp = sdc_gen_default_params();
                int w, h, steps;
                float cfg;
                sdc_model_defaults(m[p], &w, &h, &steps, &cfg);
                gp.prompt = P[i].prompt;
                gp.width = gp.height = S;
                if (steps > 0) gp.steps = steps;
                gp.cfg_scale = cfg > 0 ? cfg : 7.0f;
                gp.seed = 42 + (uint64_t)s;
                sdc_err e = {{0}};
                CHECK(sdc_generate(m[p], &gp, img[p], &e) == 0, "%s seed %d: %s", P[i].prompt, 42 + s, e.msg);
                name_picture(img[p], names[p]);
            }
            for (int k = 0; k < S * S * 3; k++) se += ((double)img[0][k] - img[1][k]) * ((double)img[0][k] - img[1][k]);
            right += names[0][0] == palette_index(P[i].bg) && names[0][1] == palette_index(P[i].shape);
            printf("  %-44s seed %d  f32: %s on %s   bf16: %s on %s\n", P[i].prompt, 42 + s, PALETTE[names[0][1]].name,
                   PALETTE[names[0][0]].name, PALETTE[names[1][1]].name, PALETTE[names[1][0]].name);
            CHECK(names[0][0] == names[1][0] && names[0][1] == names[1][1], "%s seed %d: bf16 draws other colours",
                  P[i].prompt, 42 + s);
        }
        const double mse = se / (SEEDS * S * S * 3);
        printf("%s: f32 draws the prompt's colours for %d of %d seeds; bf16 vs f32 PSNR %.1f dB\n", P[i].prompt, right,
               SEEDS, mse > 0 ? 10 * log10(255.0 * 255.0 / mse) : INFINITY);
        CHECK(right >= SEEDS - 2, "%s: f32 right for only %d of %d seeds", P[i].prompt, right, SEEDS);
    }
    sdc_model_close(m[0]);
    sdc_model_close(m[1]);
    if (fails) { printf("%d check(s) failed\n", fails); return 1; }
    printf("ok\n");
    return 0;
}
