/* weight.c — big model weights as f32: the load-time copy, or the store's views widened just in
 * time (low-mem mode). See weight.h. */
#include "models/weight.h"

#include <stdint.h>
#include <string.h>

void sdc_weight_set_views(sdc_weight *w, const sdc_store *st, const sdc_tensor *const *t, int n) {
    memset(w, 0, sizeof *w);
    w->st = st;
    for (int i = 0; i < n && i < SDC_WEIGHT_MAX_PARTS; i++) {
        w->src[w->nsrc++] = t[i];
        w->n += (size_t)t[i]->numel;
    }
}

int sdc_weight_widen(float *dst, const sdc_tensor *t, size_t first, size_t count) {
    if (!t || !sdc_dtype_is_float(t->dtype) || t->numel < 0 || first > (size_t)t->numel ||
        count > (size_t)t->numel - first)
        return -1;
    size_t es = sdc_dtype_size(t->dtype);
    sdc_tensor s = *t;                    /* the range as a tensor of its own, for the store */
    s.data = (const uint8_t *)t->data + first * es;
    s.ndim = 1;
    s.shape[0] = (int64_t)count;
    s.numel = (int64_t)count;
    s.nbytes = count * es;
    sdc_err e;
    return sdc_tensor_to_f32(&s, dst, &e);
}

const float *sdc_weight_f32(const sdc_weight *w, sdc_arena *a) {
    if (w->f) return w->f;
    float *d = sdc_arena_f32(a, w->n ? w->n : 1);
    if (!d) return NULL;
    size_t o = 0;
    for (int i = 0; i < w->nsrc; i++) {
        /* cannot fail: the model checked each view's dtype at load, and the range is the whole */
        sdc_weight_widen(d + o, w->src[i], 0, (size_t)w->src[i]->numel);
        sdc_store_release_tensor(w->st, w->src[i]);
        o += (size_t)w->src[i]->numel;
    }
    return d;
}
