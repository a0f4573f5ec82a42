/* detect.c — model family from tensor names and shapes (see detect.h). */
#include <string.h>

#include "pipeline/detect.h"

static const char *const family_names[] = {
    [SDC_FAMILY_UNKNOWN] = "unknown", [SDC_FAMILY_SD1] = "SD 1.x", [SDC_FAMILY_SD2] = "SD 2.x",
    [SDC_FAMILY_SDXL] = "SDXL",       [SDC_FAMILY_VAE] = "VAE only", [SDC_FAMILY_LORA] = "LoRA",
    [SDC_FAMILY_SDXL_REFINER] = "SDXL refiner",
};

const char *sdc_family_name(sdc_family f) {
    return (unsigned)f <= SDC_FAMILY_SDXL_REFINER ? family_names[f] : "unknown";
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !memcmp(s + a - b, suf, b);
}

/* LoRA / LyCORIS adapters: kohya ("lora_unet_", "lora_te_", ".lora_up."), PEFT (".lora_A."),
 * LoHa (".hada_w1_a"). */
static int is_lora_name(const char *n) {
    return !strncmp(n, "lora_unet_", 10) || !strncmp(n, "lora_te", 7) || strstr(n, ".lora_up.") ||
           strstr(n, ".lora_down.") || strstr(n, ".lora_A.") || strstr(n, ".lora_B.") ||
           strstr(n, ".hada_w1_a");
}

sdc_family sdc_detect(const sdc_store *s, sdc_detect_info *o) {
    memset(o, 0, sizeof *o);
    size_t n = sdc_store_count(s), lora = 0;
    const sdc_tensor *to_k = NULL, *proj_in = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *nm = sdc_store_at(s, i)->name;
        if (is_lora_name(nm)) lora++;
        if (!to_k && strstr(nm, "attn2.to_k.weight")) to_k = sdc_store_at(s, i);
        if (!proj_in && ends_with(nm, ".proj_in.weight"))
            proj_in = sdc_store_at(s, i);
    }
    if (to_k && to_k->ndim == 2) o->context_dim = to_k->shape[1];
    if (proj_in) o->linear_proj = proj_in->ndim == 2;

    if ((o->unet_tensors = sdc_store_count_prefix(s, "model.diffusion_model.")))
        o->unet_prefix = "model.diffusion_model.";
    const sdc_tensor *in0 = sdc_store_get(s, "model.diffusion_model.input_blocks.0.0.weight");
    if (in0 && in0->ndim >= 1) o->model_channels = in0->shape[0];
    /* a UNet in the diffusers layout (unet/diffusion_pytorch_model.safetensors): bare names */
    int diffusers_unet = 0;
    const sdc_tensor *dconv = sdc_store_get(s, "conv_in.weight");
    if (!o->unet_prefix && dconv && sdc_store_get(s, "time_embedding.linear_1.weight")) {
        diffusers_unet = 1;
        o->unet_prefix = "";
        o->unet_tensors = n;
        if (dconv->ndim >= 1) o->model_channels = dconv->shape[0];
    }
    if ((o->vae_tensors = sdc_store_count_prefix(s, "first_stage_model.")))
        o->vae_prefix = "first_stage_model.";
    else if (sdc_store_get(s, "encoder.conv_in.weight") || sdc_store_get(s, "decoder.conv_in.weight")) {
        o->vae_prefix = "";
        o->vae_tensors = sdc_store_count_prefix(s, "encoder.") + sdc_store_count_prefix(s, "decoder.") +
                         sdc_store_count_prefix(s, "quant_conv.") + sdc_store_count_prefix(s, "post_quant_conv.");
    }
    static const char *const text_prefixes[] = {"cond_stage_model.transformer.", "cond_stage_model.model.",
                                                "conditioner.embedders.", NULL};
    for (int i = 0; text_prefixes[i] && !o->text_prefix; i++)
        if ((o->text_tensors = sdc_store_count_prefix(s, text_prefixes[i]))) o->text_prefix = text_prefixes[i];

    if (lora && lora * 2 >= n) {
        o->family = SDC_FAMILY_LORA;
        o->reason = "lora_up/lora_down (or lora_A/lora_B) adapter tensors";
    } else if (o->unet_prefix && sdc_store_count_prefix(s, "conditioner.embedders.0.model.")) {
        o->family = SDC_FAMILY_SDXL_REFINER;
        o->reason = "UNet with one OpenCLIP text encoder at conditioner.embedders.0 (SDXL refiner: "
                    "aesthetic-score conditioning)";
    } else if (o->unet_prefix && (sdc_store_get(s, "model.diffusion_model.label_emb.0.0.weight") ||
                                  (o->text_prefix && !strcmp(o->text_prefix, "conditioner.embedders.")))) {
        o->family = SDC_FAMILY_SDXL;
        o->reason = "UNet with label_emb (pooled-text/size conditioning) and conditioner.embedders";
    } else if (o->unet_prefix && o->text_prefix && !strcmp(o->text_prefix, "cond_stage_model.transformer.")) {
        o->family = SDC_FAMILY_SD1;
        o->reason = "UNet with a CLIP ViT text encoder (cond_stage_model.transformer.)";
    } else if (o->unet_prefix && o->text_prefix && !strcmp(o->text_prefix, "cond_stage_model.model.")) {
        o->family = SDC_FAMILY_SD2;
        o->reason = "UNet with an OpenCLIP text encoder (cond_stage_model.model.)";
    } else if (diffusers_unet && sdc_store_get(s, "add_embedding.linear_1.weight")) {
        o->family = SDC_FAMILY_SDXL;
        o->reason = "diffusers-layout UNet with add_embedding (SDXL conditioning)";
    } else if (o->unet_prefix) {
        /* no text encoder: the UNet's own shape says which */
        if (o->context_dim == 2048) { o->family = SDC_FAMILY_SDXL; o->reason = "UNet cross-attention width 2048"; }
        else if (o->linear_proj || o->context_dim == 1024) {
            o->family = SDC_FAMILY_SD2;
            o->reason = "UNet with linear proj_in / cross-attention width 1024, no text encoder";
        } else {
            o->family = SDC_FAMILY_SD1;
            o->reason = "UNet with convolutional proj_in, no text encoder";
        }
    } else if (o->vae_prefix) {
        o->family = SDC_FAMILY_VAE;
        o->reason = *o->vae_prefix ? "only first_stage_model. tensors" : "encoder./decoder. autoencoder tensors";
    } else {
        o->family = SDC_FAMILY_UNKNOWN;
        o->reason = "no UNet, VAE, text encoder or LoRA names found";
    }
    o->name = sdc_family_name(o->family);
    return o->family;
}

sdc_family sdc_detect_family(const sdc_store *s) {
    sdc_detect_info info;
    return sdc_detect(s, &info);
}
