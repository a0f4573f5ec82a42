/* names.h — name tables of the bottom layer: a tensor's name in one published layout → its name
 * in the original (ldm / SGM single-file) layout the models bind. Used by the UNet binder (a
 * diffusers-layout UNet file), `sdc compare` (matching two layouts) and, later, LoRA key maps.
 * Owns nothing: pure functions of strings. */
#ifndef SDC_NAMES_H
#define SDC_NAMES_H

#include <stddef.h>

/* Bounds the block indices a diffusers name may carry: far more levels and resnets than any
 * UNet or VAE has, small enough that index arithmetic cannot overflow. */
#define DIFF_MAX_BLOCKS 64
#define NAME_MAX_LEN 512   /* longest tensor name a table writes (with its prefix) */

/* The original-layout name of a diffusers-layout name (without any file prefix) of component
 * 'u' (UNet2DConditionModel), 'v' (AutoencoderKL) or 't' (CLIPTextModel), into out. R is the
 * number of resnets per down block (UNet: counted from down_blocks.0), levels the number of
 * VAE decoder up blocks; up_attn(i) says whether UNet up block i has attentions. Returns 0, or -1
 * when the name is not one the tables know (or does not fit in cap). */
int sdc_diffusers_to_original(int component, const char *name, int R, int levels,
                              int (*up_attn)(void *ctx, int i), void *ctx, char *out, size_t cap);

/* "down_blocks.%d.resnets.%d.%n"-style prefixes (any separator: the kohya tables use '_'): 1 with
 * the indices (each in [0, DIFF_MAX_BLOCKS)) and *rest where the rest of s starts, else 0. fmt
 * must end in %n after its %d conversions. */
int sdc_name_idx2(const char *s, const char *fmt, int *i, int *j, const char **rest);
int sdc_name_idx1(const char *s, const char *fmt, int *i, const char **rest);

#endif
