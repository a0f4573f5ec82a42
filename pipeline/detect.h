/* detect.h — which model family a store holds, read from tensor names and shapes only.
 *
 * Owns: nothing (reads the store). Decides SD 1.x / SD 2.x / SDXL / VAE-only / LoRA / unknown,
 * and says where the UNet, VAE and text encoder live (their name prefixes) and what decided it.
 * No width is hard-coded: the tiny test models and real SD 1.5 are told apart from nothing. */
#ifndef SDC_DETECT_H
#define SDC_DETECT_H

#include <stdint.h>

#include "runtime/store.h"

/* Appended only; values are stable. */
typedef enum sdc_family {
    SDC_FAMILY_UNKNOWN, SDC_FAMILY_SD1, SDC_FAMILY_SD2, SDC_FAMILY_SDXL, SDC_FAMILY_VAE,
    SDC_FAMILY_LORA, SDC_FAMILY_SDXL_REFINER
} sdc_family;

typedef struct sdc_detect_info {
    sdc_family  family;
    const char *name;            /* "SD 1.x", "SD 2.x", "SDXL", "VAE only", "LoRA", "SDXL refiner",
                                    "unknown" */
    const char *reason;          /* static text: what decided it */
    const char *unet_prefix;     /* "model.diffusion_model.", "" (a diffusers-layout UNet file),
                                    or NULL when absent */
    const char *vae_prefix;      /* "first_stage_model." or "" (a bare VAE file) or NULL */
    const char *text_prefix;     /* "cond_stage_model.transformer.", "cond_stage_model.model.",
                                    "conditioner.embedders." or NULL */
    size_t      unet_tensors, vae_tensors, text_tensors;
    int64_t     model_channels;  /* UNet input_blocks.0.0.weight dim 0; 0 when absent */
    int64_t     context_dim;     /* first attn2.to_k.weight dim 1; 0 when absent */
    int         linear_proj;     /* 1 when the UNet's proj_in is a linear layer (SD 2.x style) */
} sdc_detect_info;

/* Fills *out from the store (every field; absent parts are NULL/0). Returns out->family. */
sdc_family  sdc_detect(const sdc_store *s, sdc_detect_info *out);
sdc_family  sdc_detect_family(const sdc_store *s);
const char *sdc_family_name(sdc_family f);

#endif
