/* lora_names.c — LoRA module paths (kohya's underscore form of diffusers paths) → the original
 * (ldm) UNet layout, in underscore form. The same block arithmetic as names.c's dotted table
 * (convert_diffusers_to_original_stable_diffusion.py), done on underscore paths because kohya
 * joins every path segment with '_' and segment names hold '_' themselves: the caller matches
 * the results against the model's own names with '.' made '_'. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/lora.h"
#include "runtime/names.h"

/* A ResBlock's inside: diffusers → ldm. Returns the ldm name of the head of rest or NULL. */
static const char *res_part(const char *rest, const char **tail) {
    static const char *const tab[][2] = {
        {"conv1", "in_layers_2"}, {"conv2", "out_layers_3"}, {"time_emb_proj", "emb_layers_1"},
        {"conv_shortcut", "skip_connection"}, {"norm1", "in_layers_0"}, {"norm2", "out_layers_0"}};
    for (size_t k = 0; k < sizeof tab / sizeof *tab; k++) {
        size_t l = strlen(tab[k][0]);
        if (!strncmp(rest, tab[k][0], l) && (rest[l] == 0 || rest[l] == '_')) {
            *tail = rest + l;
            return tab[k][1];
        }
    }
    return NULL;
}

static int add(char out[][512], int *n, int max, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int add(char out[][512], int *n, int max, const char *fmt, ...) {
    if (*n >= max) return 0;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out[*n], 512, fmt, ap);
    va_end(ap);
    if (w > 0 && w < 512) (*n)++;
    return 0;
}

int sdc_lora_unet_candidates(const char *p, int R, char out[][512], int max) {
    static const char *const top[][2] = {
        {"conv_in", "input_blocks_0_0"}, {"conv_out", "out_2"}, {"conv_norm_out", "out_0"},
        {"time_embedding_linear_1", "time_embed_0"}, {"time_embedding_linear_2", "time_embed_2"},
        {"add_embedding_linear_1", "label_emb_0_0"}, {"add_embedding_linear_2", "label_emb_0_2"}};
    int n = 0, i, j;
    const char *rest, *tail, *r;
    add(out, &n, max, "%s", p);   /* already original (SDXL kohya files), or nothing matches */
    if (R < 1 || R >= DIFF_MAX_BLOCKS) return n;
    for (size_t k = 0; k < sizeof top / sizeof *top; k++)
        if (!strcmp(p, top[k][0])) { add(out, &n, max, "%s", top[k][1]); return n; }
    if (sdc_name_idx2(p, "down_blocks_%d_attentions_%d_%n", &i, &j, &rest))
        add(out, &n, max, "input_blocks_%d_1_%s", 1 + i * (R + 1) + j, rest);
    else if (sdc_name_idx2(p, "down_blocks_%d_resnets_%d_%n", &i, &j, &rest) && (r = res_part(rest, &tail)))
        add(out, &n, max, "input_blocks_%d_0_%s%s", 1 + i * (R + 1) + j, r, tail);
    else if (sdc_name_idx1(p, "down_blocks_%d_downsamplers_0_conv%n", &i, &rest) && !*rest)
        add(out, &n, max, "input_blocks_%d_0_op", (i + 1) * (R + 1));
    else if (sdc_name_idx1(p, "mid_block_attentions_%d_%n", &j, &rest))
        add(out, &n, max, "middle_block_%d_%s", 2 * j + 1, rest);
    else if (sdc_name_idx1(p, "mid_block_resnets_%d_%n", &j, &rest) && (r = res_part(rest, &tail)))
        add(out, &n, max, "middle_block_%d_%s%s", 2 * j, r, tail);
    else if (sdc_name_idx2(p, "up_blocks_%d_attentions_%d_%n", &i, &j, &rest))
        add(out, &n, max, "output_blocks_%d_1_%s", i * (R + 1) + j, rest);
    else if (sdc_name_idx2(p, "up_blocks_%d_resnets_%d_%n", &i, &j, &rest) && (r = res_part(rest, &tail)))
        add(out, &n, max, "output_blocks_%d_0_%s%s", i * (R + 1) + j, r, tail);
    else if (sdc_name_idx1(p, "up_blocks_%d_upsamplers_0_conv%n", &i, &rest) && !*rest) {
        /* the Upsample is the block's 3rd module after a SpatialTransformer, else its 2nd */
        add(out, &n, max, "output_blocks_%d_2_conv", i * (R + 1) + R);
        add(out, &n, max, "output_blocks_%d_1_conv", i * (R + 1) + R);
    }
    return n;
}
