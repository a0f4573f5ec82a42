/* names.c — name tables: diffusers-layout tensor names → the original (ldm single-file) layout. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/names.h"


static int put(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return w > 0 && (size_t)w < cap ? 0 : -1;
}

/* Renames the start of rest by a (from, to) table; -1 when no entry matches. */
static int rename_head(char *out, size_t cap, const char *head, const char *rest,
                       const char *const (*tab)[2], size_t n) {
    for (size_t k = 0; k < n; k++) {
        size_t l = strlen(tab[k][0]);
        if (!strncmp(rest, tab[k][0], l)) return put(out, cap, "%s%s%s", head, tab[k][1], rest + l);
    }
    return -1;
}

int sdc_name_idx2(const char *s, const char *fmt, int *i, int *j, const char **rest) {
    int pos = 0;
    if (sscanf(s, fmt, i, j, &pos) != 2 || !pos) return 0;
    if (*i < 0 || *j < 0 || *i >= DIFF_MAX_BLOCKS || *j >= DIFF_MAX_BLOCKS) return 0;
    *rest = s + pos;
    return 1;
}
int sdc_name_idx1(const char *s, const char *fmt, int *i, const char **rest) {
    int pos = 0;
    if (sscanf(s, fmt, i, &pos) != 1 || !pos) return 0;
    if (*i < 0 || *i >= DIFF_MAX_BLOCKS) return 0;
    *rest = s + pos;
    return 1;
}

/* diffusers UNet2DConditionModel → ldm UNetModel (model.diffusion_model.*), the tables of
 * convert_diffusers_to_original_stable_diffusion.py generalised to R resnets per down block. */
static int unet_name(const char *d, int R, int (*up_attn)(void *, int), void *ctx, char *out, size_t cap) {
    static const char *const top[][2] = {
        {"time_embedding.linear_1.", "time_embed.0."}, {"time_embedding.linear_2.", "time_embed.2."},
        {"conv_in.", "input_blocks.0.0."}, {"conv_norm_out.", "out.0."}, {"conv_out.", "out.2."}};
    static const char *const res[][2] = {
        {"norm1.", "in_layers.0."}, {"conv1.", "in_layers.2."}, {"time_emb_proj.", "emb_layers.1."},
        {"norm2.", "out_layers.0."}, {"conv2.", "out_layers.3."}, {"conv_shortcut.", "skip_connection."}};
    const char *P = "model.diffusion_model.", *rest;
    char head[128];
    int i, j;
    if (!rename_head(out, cap, P, d, top, 5)) return 0;
    if (sdc_name_idx2(d, "down_blocks.%d.resnets.%d.%n", &i, &j, &rest)) {
        snprintf(head, sizeof head, "%sinput_blocks.%d.0.", P, 1 + i * (R + 1) + j);
        return rename_head(out, cap, head, rest, res, 6);
    }
    if (sdc_name_idx2(d, "down_blocks.%d.attentions.%d.%n", &i, &j, &rest))
        return put(out, cap, "%sinput_blocks.%d.1.%s", P, 1 + i * (R + 1) + j, rest);
    if (sdc_name_idx1(d, "down_blocks.%d.downsamplers.0.conv.%n", &i, &rest))
        return put(out, cap, "%sinput_blocks.%d.0.op.%s", P, (i + 1) * (R + 1), rest);
    if (sdc_name_idx1(d, "mid_block.resnets.%d.%n", &j, &rest)) {
        snprintf(head, sizeof head, "%smiddle_block.%d.", P, 2 * j);
        return rename_head(out, cap, head, rest, res, 6);
    }
    if (sdc_name_idx1(d, "mid_block.attentions.%d.%n", &j, &rest))
        return put(out, cap, "%smiddle_block.%d.%s", P, 2 * j + 1, rest);
    if (sdc_name_idx2(d, "up_blocks.%d.resnets.%d.%n", &i, &j, &rest)) {
        snprintf(head, sizeof head, "%soutput_blocks.%d.0.", P, i * (R + 1) + j);
        return rename_head(out, cap, head, rest, res, 6);
    }
    if (sdc_name_idx2(d, "up_blocks.%d.attentions.%d.%n", &i, &j, &rest))
        return put(out, cap, "%soutput_blocks.%d.1.%s", P, i * (R + 1) + j, rest);
    if (sdc_name_idx1(d, "up_blocks.%d.upsamplers.0.%n", &i, &rest))
        return put(out, cap, "%soutput_blocks.%d.%d.%s", P, i * (R + 1) + R,
                   up_attn && up_attn(ctx, i) ? 2 : 1, rest);
    return -1;
}

/* diffusers AutoencoderKL → ldm AutoencoderKL (first_stage_model.*): down.i.block.j,
 * up.(levels-1-i), mid.block_(j+1), mid.attn_1 with q/k/v/proj_out (old and new diffusers
 * attention names), norm_out, nin_shortcut. */
static int vae_name(const char *d, int levels, char *out, size_t cap) {
    static const char *const res[][2] = {
        {"norm1.", "norm1."}, {"conv1.", "conv1."}, {"norm2.", "norm2."}, {"conv2.", "conv2."},
        {"conv_shortcut.", "nin_shortcut."}};
    static const char *const attn[][2] = {
        {"group_norm.", "norm."}, {"query.", "q."}, {"to_q.", "q."}, {"key.", "k."}, {"to_k.", "k."},
        {"value.", "v."}, {"to_v.", "v."}, {"proj_attn.", "proj_out."}, {"to_out.0.", "proj_out."}};
    static const char *const same[] = {"encoder.conv_in.", "encoder.conv_out.", "decoder.conv_in.",
                                       "decoder.conv_out.", "quant_conv.", "post_quant_conv."};
    const char *P = "first_stage_model.", *rest;
    char head[128];
    int i, j;
    for (size_t k = 0; k < sizeof same / sizeof *same; k++)
        if (!strncmp(d, same[k], strlen(same[k]))) return put(out, cap, "%s%s", P, d);
    for (int enc = 0; enc < 2; enc++) {
        const char *part = enc ? "encoder" : "decoder";
        size_t pl = strlen(part);
        if (strncmp(d, part, pl) || d[pl] != '.') continue;
        const char *s = d + pl + 1;
        if (!strncmp(s, "conv_norm_out.", 14)) return put(out, cap, "%s%s.norm_out.%s", P, part, s + 14);
        if (sdc_name_idx1(s, "mid_block.resnets.%d.%n", &j, &rest)) {
            snprintf(head, sizeof head, "%s%s.mid.block_%d.", P, part, j + 1);
            return rename_head(out, cap, head, rest, res, 5);
        }
        if (!strncmp(s, "mid_block.attentions.0.", 23)) {
            snprintf(head, sizeof head, "%s%s.mid.attn_1.", P, part);
            return rename_head(out, cap, head, s + 23, attn, 9);
        }
        if (enc && sdc_name_idx2(s, "down_blocks.%d.resnets.%d.%n", &i, &j, &rest)) {
            snprintf(head, sizeof head, "%sencoder.down.%d.block.%d.", P, i, j);
            return rename_head(out, cap, head, rest, res, 5);
        }
        if (enc && sdc_name_idx1(s, "down_blocks.%d.downsamplers.0.%n", &i, &rest))
            return put(out, cap, "%sencoder.down.%d.downsample.%s", P, i, rest);
        if (!enc && sdc_name_idx2(s, "up_blocks.%d.resnets.%d.%n", &i, &j, &rest) && i < levels) {
            snprintf(head, sizeof head, "%sdecoder.up.%d.block.%d.", P, levels - 1 - i, j);
            return rename_head(out, cap, head, rest, res, 5);
        }
        if (!enc && sdc_name_idx1(s, "up_blocks.%d.upsamplers.0.%n", &i, &rest) && i < levels)
            return put(out, cap, "%sdecoder.up.%d.upsample.%s", P, levels - 1 - i, rest);
    }
    return -1;
}

int sdc_diffusers_to_original(int component, const char *name, int R, int levels,
                              int (*up_attn)(void *ctx, int i), void *ctx, char *out, size_t cap) {
    switch (component) {
    case 'u': return unet_name(name, R, up_attn, ctx, out, cap);
    case 'v': return vae_name(name, levels, out, cap);
    case 't':   /* CLIPTextModel: SD 1.x keeps transformers' names under cond_stage_model.transformer. */
        if (strncmp(name, "text_model.", 11)) return -1;
        return put(out, cap, "cond_stage_model.transformer.%s", name);
    default: return -1;
    }
}

