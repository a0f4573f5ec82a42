/* modelcfg.h — the one place that decides a model's family and hyper-parameters: the family from
 * the tensors (pipeline/detect.h), and what the tensors cannot tell — attention heads of the UNet
 * and the text encoder, the text activation, the prediction type, the VAE's latent scale and
 * shift — resolved in this order:
 *   1. --config FILE (JSON of the form of the fixtures' *.config.json),
 *   2. the file's __metadata__ (`tiny_sd_config` JSON, or diffusers-style `unet_config`/
 *      `text_config`, `unet_num_heads`/`text_num_heads`/`text_hidden_act`/`prediction_type`),
 *   3. SD's conventions (SD 1.x UNet 8 heads, SD 2.x and SDXL head width 64, CLIP text head
 *      width 64, SD 1.x and SDXL ε, SD 2.x v, VAE scale 0.18215 — SDXL 0.13025 — and shift 0;
 *      SDXL's defaults 1024x1024, euler with leading spacing, cfg 5 — its scheduler config).
 * A turbo model (SD-Turbo, SDXL-Turbo: the metadata's title, name, model or description says
 * "turbo") gets the defaults those models are made for: 512x512, 1 step, no guidance (cfg 0:
 * one UNet call a step), euler_a with trailing spacing, ε-prediction.
 * Each field records where it came from, so `inspect` and `generate` can say so. */
#ifndef SDC_MODELCFG_H
#define SDC_MODELCFG_H

#include "pipeline/detect.h"
#include "runtime/err.h"
#include "runtime/store.h"

typedef struct sdc_model_config {
    sdc_family family;          /* from the tensors (sdc_detect) */
    const char *family_name;    /* "SD 1.x", "SD 2.x", "SDXL", ... (static) */
    int openclip;               /* text encoder in OpenCLIP layout (SD 2.x) */
    int unet_heads;             /* > 0: fixed head count */
    int unet_head_dim;          /* > 0: fixed head width (when unet_heads <= 0) */
    int text_heads;             /* <= 0: width / 64 */
    int text_act;               /* sdc_text_act: 0 quick_gelu, 1 gelu */
    int text2_heads, text2_act; /* SDXL's second tower (OpenCLIP bigG): <= 0 / < 0: convention */
    int prediction;             /* sdc_prediction: 0 eps, 1 v */
    float vae_scale, vae_shift; /* latents = (VAE mean - shift) * scale; decode undoes it */
    char unet_src[96], text_src[96], pred_src[96], vae_src[96];
    /* recommended defaults the file carries (0 = none): default_size WxH, steps, cfg */
    int def_width, def_height, def_steps;
    float def_cfg;
    int def_sampler;            /* sdc_sample_method the model is made for; -1: none */
    int def_spacing;            /* sdc_spacing its scheduler config uses; -1: the sampler's own */
    int turbo;                  /* the metadata says turbo (SD-Turbo / SDXL-Turbo) */
    char defaults_src[96];      /* where the defaults above came from ("" when none) */
} sdc_model_config;

/* Resolves the config for st. config_path may be NULL. prediction_override: -1 none, 0 eps, 1 v.
 * Returns 0, or -1 with e set (unreadable or malformed --config / metadata JSON). */
int sdc_model_config_resolve(sdc_model_config *c, const sdc_store *st, const char *config_path,
                             int prediction_override, sdc_err *e);

/* The recommended settings the defaults above make, as one line for `inspect` and `--help`
 * ("1024x1024, 20 steps, cfg 5, euler, leading spacing (SDXL convention)"); "" when the model
 * carries none. */
void sdc_model_config_recommended(const sdc_model_config *c, char *buf, size_t cap);

#endif
