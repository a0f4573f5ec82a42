/* sdc.h — the public C API of sdc: open a Stable Diffusion checkpoint, generate images into
 * a buffer, close. The `sdc` command line tool is a thin layer over this header.
 *
 * ABOUT
 *   One model context (sdc_model) owns the tensor store (the mmap'd checkpoint, plus an optional
 *   separate VAE file), the bound f32 weights of the text encoder, UNet and VAE, and the
 *   activation arena. It is not thread-safe: one generation at a time per context; sdc uses
 *   OpenMP threads inside a generation (params.threads).
 *
 * USAGE
 *   sdc_model_params mp = sdc_model_default_params();
 *   mp.model_path = "v1-5-pruned-emaonly.safetensors";
 *   sdc_err err;
 *   sdc_model *m = sdc_model_open(&mp, &err);          // NULL on error, err.msg says why
 *   sdc_gen_params gp = sdc_gen_default_params();
 *   gp.prompt = "a lighthouse at dawn"; gp.seed = 42;
 *   uint8_t *rgb = malloc((size_t)gp.width * gp.height * 3);
 *   if (sdc_generate(m, &gp, rgb, &err) != 0) puts(err.msg);
 *   sdc_model_close(m);
 *
 * Returns: functions returning int give 0 on success and -1 on error, with one line in err. */
#ifndef SDC_H
#define SDC_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/err.h"

typedef struct sdc_model sdc_model;

typedef struct sdc_model_params {
    const char *model_path;        /* .safetensors / .ckpt (either format, decided by bytes) */
    const char *vae_path;          /* optional separate VAE file (NULL: the checkpoint's) */
    const char *config_path;       /* optional JSON config (form of the fixtures' *.config.json) */
    int strict;                    /* refuse unknown pickle globals */
    int allow_unsafe_pickle;       /* load weights even when the pickle names dangerous globals */
    int prediction;                /* -1 auto (config, metadata, SD convention), 0 eps, 1 v */
    int threads;                   /* <= 0: all cores */
    int low_mem;                   /* keep the UNet's weights as stored (f16) and widen them per
                                      layer just in time; VAE decoded in tiles. (The text encoder
                                      and VAE read theirs per layer in every mode.) Same pixels as
                                      the default mode except for the tiled decode; ~4.3 GB less
                                      memory on SD 1.5 */
} sdc_model_params;

sdc_model_params sdc_model_default_params(void);
sdc_model       *sdc_model_open(const sdc_model_params *p, sdc_err *err);
void             sdc_model_close(sdc_model *m);            /* NULL is fine */

/* What was detected and where each hyper-parameter came from (for inspect / stderr). */
typedef struct sdc_model_info {
    const char *family;            /* "SD 1.x", "SD 2.x", ... */
    int unet_heads, unet_head_dim; /* one of them > 0 */
    int text_heads;
    const char *text_act;          /* "quick_gelu" / "gelu" */
    const char *prediction;        /* "epsilon" / "v_prediction" */
    const char *config_source;     /* "--config FILE", "metadata tiny_sd_config", ... */
    int context_dim, latent_channels;
} sdc_model_info;
const sdc_model_info *sdc_model_get_info(const sdc_model *m);

/* Recommended defaults the model file carries in its metadata (0 when it says nothing). */
void sdc_model_defaults(const sdc_model *m, int *width, int *height, int *steps, float *cfg);

typedef void (*sdc_step_cb)(void *user, int step, int steps);

typedef struct sdc_gen_params {
    const char *prompt;
    const char *negative_prompt;   /* "" by default */
    int width, height;             /* multiples of 8; default 512x512 (64x64 for tiny models: see cli) */
    int steps;                     /* default 20 */
    float cfg_scale;               /* default 7.5; <= 1 disables guidance (one UNet call/step) */
    uint64_t seed;                 /* torch.manual_seed(seed) */
    int sample_method;             /* sdc_sample_method (pipeline/sampler.h), default euler_a */
    int schedule;                  /* sdc_schedule, default discrete */
    int spacing;                   /* sdc_spacing, default -1 = the sampler's diffusers default */
    int clip_skip;                 /* <= 1: none (SD 2.x: penultimate, as SD 2.x does) */
    int prompt_mode;               /* 0 chunk (A1111 75-token windows), 1 truncate (diffusers) */
    const uint8_t *init_rgb;       /* img2img: width*height*3 RGB (NULL: txt2img) */
    float strength;                /* img2img strength (0,1], default 0.75 */
    int vae_tiling;                /* decode in overlapping 32x32-latent tiles (less memory) */
    sdc_step_cb on_step; void *on_step_user;
} sdc_gen_params;

sdc_gen_params sdc_gen_default_params(void);

/* Generates one image. rgb (width*height*3 bytes, round(clamp(x)*255)) and/or image
 * (width*height*3 floats in [0,1], the pipeline's output_type="np") may be NULL.
 * latents (4*(h/8)*(w/8) floats, final latents before the VAE) may be NULL. */
int sdc_generate_ex(sdc_model *m, const sdc_gen_params *p, uint8_t *rgb, float *image,
                    float *latents, sdc_err *err);
int sdc_generate(sdc_model *m, const sdc_gen_params *p, uint8_t *rgb, sdc_err *err);

#endif
