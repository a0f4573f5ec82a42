/* sdxl.c — SDXL's text conditioning (see sdxl.h). */
#include "pipeline/sdxl.h"

#include <string.h>

#include "pipeline/prompt.h"

void sdc_sdxl_text_free(sdc_sdxl_text *t) {
    if (!t) return;
    sdc_clip_free(t->te1);
    sdc_clip_free(t->te2);
    memset(t, 0, sizeof *t);
}

int sdc_sdxl_text_load(sdc_sdxl_text *t, const sdc_store *st, int heads1, int act1, int heads2,
                       int act2, sdc_lora_set *lora, sdc_err *e) {
    memset(t, 0, sizeof *t);
    if (sdc_store_count_prefix(st, "conditioner.embedders.0.model."))
        return sdc_errf(e, "SDXL refiner checkpoint (one OpenCLIP text encoder at "
                           "conditioner.embedders.0, aesthetic-score conditioning): not supported; "
                           "use an SDXL base model");
    sdc_clip_params p1 = {.n_heads = heads1, .act = act1 >= 0 ? act1 : SDC_ACT_QUICK_GELU, .low_mem = 1,
                          .prefix = SDC_SDXL_TE1, .lora = lora};
    sdc_clip_params p2 = {.n_heads = heads2, .act = act2 >= 0 ? act2 : SDC_ACT_GELU, .low_mem = 1,
                          .prefix = SDC_SDXL_TE2, .projection = 1, .lora = lora};
    if (!(t->te1 = sdc_clip_load(st, &p1, e)) || !(t->te2 = sdc_clip_load(st, &p2, e))) {
        sdc_sdxl_text_free(t);
        return -1;
    }
    if (sdc_clip_is_openclip(t->te1) || !sdc_clip_is_openclip(t->te2)) {
        sdc_sdxl_text_free(t);
        return sdc_errf(e, "SDXL text encoders: expected CLIP (transformers names) at %s and OpenCLIP at %s",
                        SDC_SDXL_TE1, SDC_SDXL_TE2);
    }
    if (sdc_clip_positions(t->te1) < 77 || sdc_clip_positions(t->te2) < 77) {
        sdc_sdxl_text_free(t);
        return sdc_errf(e, "SDXL text encoders: fewer than 77 positions");
    }
    t->C1 = sdc_clip_width(t->te1);
    t->C2 = sdc_clip_width(t->te2);
    t->P = sdc_clip_proj_dim(t->te2);
    return 0;
}

int sdc_sdxl_encode(sdc_sdxl_text *t, sdc_arena *a, const int32_t *ids1, const int32_t *ids2,
                    const double *weights, int nw, int clip_skip, float *ctx, float *pooled, sdc_err *e) {
    const int L = 77, C = t->C1 + t->C2, skip = clip_skip > 2 ? clip_skip : 2;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *h1 = sdc_arena_f32(a, (size_t)L * t->C1), *h2 = sdc_arena_f32(a, (size_t)L * t->C2);
    if (!h1 || !h2) { sdc_arena_reset(a, m); return sdc_errf(e, "out of memory for the text encoders"); }
    int rc = 0;
    for (int k = 0; k < nw && !rc; k++) {
        sdc_clip_encode_opts o1 = {.clip_skip = skip, .no_final_norm = 1};
        sdc_clip_encode_opts o2 = {.clip_skip = skip, .no_final_norm = 1, .pooled = k ? NULL : pooled};
        rc = sdc_clip_encode_ex(t->te1, a, ids1 + (size_t)k * L, L, &o1, h1, e) ||
             sdc_clip_encode_ex(t->te2, a, ids2 + (size_t)k * L, L, &o2, h2, e) ? -1 : 0;
        if (!rc && weights) {
            sdc_prompt_emphasis(h1, weights + (size_t)k * L, L, t->C1);
            sdc_prompt_emphasis(h2, weights + (size_t)k * L, L, t->C2);
        }
        float *c = ctx + (size_t)k * L * C;
        for (int i = 0; !rc && i < L; i++) {
            memcpy(c + (size_t)i * C, h1 + (size_t)i * t->C1, sizeof(float) * (size_t)t->C1);
            memcpy(c + (size_t)i * C + t->C1, h2 + (size_t)i * t->C2, sizeof(float) * (size_t)t->C2);
        }
    }
    sdc_arena_reset(a, m);
    return rc;
}

void sdc_sdxl_time_ids(float ids[6], int size_w, int size_h, int crop_x, int crop_y, int out_w,
                       int out_h) {
    ids[0] = (float)size_h; ids[1] = (float)size_w;
    ids[2] = (float)crop_y; ids[3] = (float)crop_x;
    ids[4] = (float)out_h;  ids[5] = (float)out_w;
}
