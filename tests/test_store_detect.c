/* test_store_detect.c — model family from names and shapes (pipeline/detect.h): the fixtures
 * (tiny SD 1.x / 2.x, f32/f16, ckpt, diffusers-layout UNet) and synthetic name sets for the
 * families the fixtures lack (SDXL, VAE-only, LoRA, UNet-only by cross-attention width). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/detect.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static sdc_family family_of(const char *path, sdc_detect_info *di) {
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    sdc_family f = (sdc_family)-1;
    if (sdc_store_open(s, path, NULL, &e)) printf("FAIL open %s: %s\n", path, e.msg), fails++;
    else f = sdc_detect(s, di);
    sdc_store_close(s);
    return f;
}

/* A safetensors file of F16 tensors: names[i] with shape dims[i] (up to 4 dims, 0-terminated). */
static void write_names(const char *path, int n, const char *const *names, const int (*dims)[4]) {
    char hdr[8192];
    size_t at = 0, off = 0;
    at += (size_t)snprintf(hdr + at, sizeof hdr - at, "{");
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        char shape[64] = "";
        size_t sa = 0;
        for (int d = 0; d < 4 && dims[i][d]; d++) {
            numel *= (size_t)dims[i][d];
            sa += (size_t)snprintf(shape + sa, sizeof shape - sa, d ? ",%d" : "%d", dims[i][d]);
        }
        at += (size_t)snprintf(hdr + at, sizeof hdr - at, "%s\"%s\":{\"dtype\":\"F16\",\"shape\":[%s],"
                               "\"data_offsets\":[%zu,%zu]}", i ? "," : "", names[i], shape, off, off + 2 * numel);
        off += 2 * numel;
    }
    at += (size_t)snprintf(hdr + at, sizeof hdr - at, "}");
    FILE *f = fopen(path, "wb");
    uint64_t hl = at;
    fwrite(&hl, 8, 1, f);                      /* little-endian host (x86-64 / aarch64) */
    fwrite(hdr, 1, at, f);
    char *z = calloc(1, off + 1);
    fwrite(z, 1, off, f);
    free(z);
    fclose(f);
}

static void synthetic(const char *label, int n, const char *const *names, const int (*dims)[4], sdc_family want,
                      int64_t ctx) {
    char path[] = "/tmp/sdc-detect-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_names(path, n, names, dims);
    sdc_detect_info di;
    sdc_family f = family_of(path, &di);
    printf("%-34s -> %-8s (%s)\n", label, sdc_family_name(f), di.reason);
    CHECK(f == want, "%s: got %s, want %s", label, sdc_family_name(f), sdc_family_name(want));
    CHECK(!ctx || di.context_dim == ctx, "%s: context_dim %lld", label, (long long)di.context_dim);
    unlink(path);
}

int main(void) {
    static const struct { const char *path; sdc_family want; } fx[] = {
        {"tests/data/tiny-sd1.safetensors", SDC_FAMILY_SD1},      {"tests/data/tiny-sd1-fp16.safetensors", SDC_FAMILY_SD1},
        {"tests/data/tiny-sd1.ckpt", SDC_FAMILY_SD1},             {"tests/data/tiny-sd1-legacy.ckpt", SDC_FAMILY_SD1},
        {"tests/data/tiny-sd2-fp16.safetensors", SDC_FAMILY_SD2},
        {"tests/data/tiny-sd1-unet-diffusers-fp16.safetensors", SDC_FAMILY_SD1},
        {"tests/data/malformed/ok_small.safetensors", SDC_FAMILY_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        sdc_detect_info di;
        sdc_family f = family_of(fx[i].path, &di);
        printf("%-52s -> %-8s unet %s vae %s text %s ch %lld ctx %lld\n", fx[i].path, sdc_family_name(f),
               di.unet_prefix ? di.unet_prefix : "-", di.vae_prefix ? di.vae_prefix : "-",
               di.text_prefix ? di.text_prefix : "-", (long long)di.model_channels, (long long)di.context_dim);
        CHECK(f == fx[i].want, "%s: %s", fx[i].path, sdc_family_name(f));
        if (fx[i].want == SDC_FAMILY_SD1 || fx[i].want == SDC_FAMILY_SD2)
            CHECK(di.model_channels == 32 && di.context_dim == 32, "%s: widths from the weights", fx[i].path);
        if (fx[i].want == SDC_FAMILY_SD2) CHECK(di.linear_proj == 1, "sd2 linear proj_in");
    }
    const char *xl[] = {"model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.label_emb.0.0.weight",
                        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"};
    const int xld[][4] = {{8, 4, 3, 3}, {16, 8}, {8}};
    synthetic("SDXL (label_emb, conditioner)", 3, xl, xld, SDC_FAMILY_SDXL, 0);
    const char *vae[] = {"encoder.conv_in.weight", "decoder.conv_out.weight", "quant_conv.weight"};
    const int vaed[][4] = {{8, 3, 3, 3}, {3, 8, 3, 3}, {8, 8, 1, 1}};
    synthetic("bare VAE (encoder./decoder.)", 3, vae, vaed, SDC_FAMILY_VAE, 0);
    const char *fsm[] = {"first_stage_model.encoder.conv_in.weight", "first_stage_model.decoder.conv_out.weight"};
    synthetic("VAE under first_stage_model.", 2, fsm, vaed, SDC_FAMILY_VAE, 0);
    const char *lora[] = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
                          "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight",
                          "lora_unet_down_blocks_0_attentions_0_proj_in.alpha"};
    const int lorad[][4] = {{4, 8}, {8, 4}, {1}};
    synthetic("kohya LoRA", 3, lora, lorad, SDC_FAMILY_LORA, 0);
    const char *u2[] = {"model.diffusion_model.input_blocks.0.0.weight",
                        "model.diffusion_model.input_blocks.1.1.proj_in.weight",
                        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"};
    const int u2d[][4] = {{8, 4, 3, 3}, {8, 8}, {8, 1024}};
    synthetic("UNet only, linear proj_in, ctx 1024", 3, u2, u2d, SDC_FAMILY_SD2, 1024);
    const int u1d[][4] = {{8, 4, 3, 3}, {8, 8, 1, 1}, {8, 768}};
    synthetic("UNet only, conv proj_in, ctx 768", 3, u2, u1d, SDC_FAMILY_SD1, 768);
    const int uxd[][4] = {{8, 4, 3, 3}, {8, 8}, {8, 2048}};
    synthetic("UNet only, ctx 2048", 3, u2, uxd, SDC_FAMILY_SDXL, 2048);
    return fails ? 1 : 0;
}
