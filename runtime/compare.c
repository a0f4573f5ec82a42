/* compare.c — tensor-by-tensor and image comparison of two models (compare.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/compare.h"

/* Values are widened a slice at a time so that comparing a 150 MB embedding needs two 8 MB
 * buffers, not two copies of it: 1 Mi elements per slice. */
#define CMP_CHUNK ((int64_t)1 << 20)

const char *sdc_cmp_kind_name(sdc_cmp_kind k) {
    static const char *names[SDC_CMP_KIND_COUNT] = {
        "identical", "equal values", "within tolerance", "different", "shape differs",
        "only in A", "only in B"};
    return (unsigned)k < SDC_CMP_KIND_COUNT ? names[k] : "?";
}

/* Reads elements [off, off+n) of t as f64 into dst. tmp holds n floats. 0 or -1 with e set. */
static int read_f64(const sdc_tensor *t, int64_t off, int64_t n, double *dst, float *tmp,
                    sdc_err *e) {
    const unsigned char *p = (const unsigned char *)t->data + (size_t)off * sdc_dtype_size(t->dtype);
    switch (t->dtype) {
    case SDC_F64: memcpy(dst, p, (size_t)n * 8); return 0;
#define INT_CASE(DT, CT)                                                        \
    case DT:                                                                    \
        for (int64_t i = 0; i < n; i++) {                                       \
            CT v; memcpy(&v, p + (size_t)i * sizeof v, sizeof v); dst[i] = (double)v; \
        }                                                                       \
        return 0;
    INT_CASE(SDC_I64, int64_t)
    INT_CASE(SDC_I32, int32_t)
    INT_CASE(SDC_I16, int16_t)
    INT_CASE(SDC_I8, int8_t)
    INT_CASE(SDC_U8, uint8_t)
#undef INT_CASE
    case SDC_BOOL:
        for (int64_t i = 0; i < n; i++) dst[i] = p[i] != 0;
        return 0;
    default: {
        /* A 1-D view of the slice, converted by the store's own f32 path. */
        sdc_tensor s = *t;
        s.data = p;
        s.ndim = 1;
        s.shape[0] = n;
        s.numel = n;
        s.nbytes = (size_t)n * sdc_dtype_size(t->dtype);
        s.offset = t->offset + (uint64_t)off * sdc_dtype_size(t->dtype);
        if (sdc_tensor_to_f32(&s, tmp, e)) return -1;
        for (int64_t i = 0; i < n; i++) dst[i] = tmp[i];
        return 0;
    }
    }
}

static int same_shape(const sdc_tensor *a, const sdc_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

typedef struct cmp_buf {
    double *a, *b;
    float *tmp;
} cmp_buf;

/* Fills the value fields and kind of one common tensor with equal shapes. */
static int compare_values(sdc_cmp_entry *c, const sdc_cmp_opts *o, cmp_buf *buf, sdc_err *e) {
    const sdc_tensor *a = c->a, *b = c->b;
    c->at = -1;
    if (a->dtype == b->dtype && a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes)) {
        c->kind = SDC_CMP_IDENTICAL;
        return 0;
    }
    for (int64_t off = 0; off < a->numel; off += CMP_CHUNK) {
        int64_t n = a->numel - off < CMP_CHUNK ? a->numel - off : CMP_CHUNK;
        if (read_f64(a, off, n, buf->a, buf->tmp, e) || read_f64(b, off, n, buf->b, buf->tmp, e))
            return sdc_err_prefix(e, "tensor '%s'", c->name);
        for (int64_t i = 0; i < n; i++) {
            double x = buf->a[i], y = buf->b[i];
            if (x == y || (isnan(x) && isnan(y))) continue;
            c->n_diff++;
            double d = fabs(x - y), m = fmax(fabs(x), fabs(y));
            if (isnan(d)) d = INFINITY;  /* a NaN against a number */
            double rel = m > 0 ? d / m : INFINITY;
            if (isnan(rel)) rel = INFINITY;
            if (!(d <= o->atol + o->rtol * m)) c->n_out++;
            if (d > c->max_abs || c->at < 0) {
                c->max_abs = d;
                c->at = off + i;
                c->a_at = x;
                c->b_at = y;
            }
            if (rel > c->max_rel) c->max_rel = rel;
        }
    }
    c->kind = c->n_diff == 0 ? SDC_CMP_EQUAL : c->n_out == 0 ? SDC_CMP_WITHIN_TOL : SDC_CMP_DIFFERENT;
    return 0;
}

static int append(sdc_cmp_result *r, size_t *cap, sdc_cmp_entry c, sdc_err *e) {
    if (r->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256, bytes;
        if (sdc_mul_overflow(nc, sizeof *r->e, &bytes)) return sdc_errf(e, "compare: too many tensors");
        sdc_cmp_entry *p = realloc(r->e, bytes);
        if (!p) return sdc_errf(e, "compare: out of memory");
        r->e = p;
        *cap = nc;
    }
    r->e[r->n++] = c;
    r->count[c.kind]++;
    return 0;
}

static int selected(const sdc_cmp_opts *o, const char *name) {
    if (o->n_only <= 0) return 1;
    for (int i = 0; i < o->n_only; i++)
        if (!strncmp(name, o->only[i], strlen(o->only[i]))) return 1;
    return 0;
}

int sdc_compare_stores(const sdc_store *a, const sdc_store *b, const sdc_cmp_opts *opts,
                       sdc_cmp_result *r, sdc_err *e) {
    static const sdc_cmp_opts exact = {0, 0, NULL, 0};
    const sdc_cmp_opts *o = opts ? opts : &exact;
    memset(r, 0, sizeof *r);
    size_t cap = 0;
    cmp_buf buf = {malloc(CMP_CHUNK * sizeof(double)), malloc(CMP_CHUNK * sizeof(double)),
                   malloc(CMP_CHUNK * sizeof(float))};
    int rc = -1;
    if (!buf.a || !buf.b || !buf.tmp) { sdc_errf(e, "compare: out of memory"); goto done; }

    for (size_t i = 0; i < sdc_store_count(a); i++) {
        sdc_cmp_entry c = {0};
        c.a = sdc_store_at(a, i);
        c.name = c.a->name;
        if (!selected(o, c.name)) { r->n_skipped++; continue; }
        c.b = sdc_store_get(b, c.name);
        c.at = -1;
        if (!c.b) {
            c.kind = SDC_CMP_ONLY_A;
        } else {
            if (c.a->dtype != c.b->dtype) r->n_dtype_diff++;
            if (!same_shape(c.a, c.b)) {
                c.kind = SDC_CMP_SHAPE;
            } else {
                if (compare_values(&c, o, &buf, e)) goto done;
                r->elems_compared += (uint64_t)c.a->numel;
                if (c.n_diff && (c.max_abs > r->max_abs || !r->max_abs_name)) {
                    r->max_abs = c.max_abs;
                    r->max_abs_name = c.name;
                }
                if (c.n_diff && (c.max_rel > r->max_rel || !r->max_rel_name)) {
                    r->max_rel = c.max_rel;
                    r->max_rel_name = c.name;
                }
            }
        }
        if (append(r, &cap, c, e)) goto done;
    }
    for (size_t i = 0; i < sdc_store_count(b); i++) {
        const sdc_tensor *t = sdc_store_at(b, i);
        if (!selected(o, t->name)) { r->n_skipped++; continue; }
        if (sdc_store_get(a, t->name)) continue;
        sdc_cmp_entry c = {.name = t->name, .b = t, .kind = SDC_CMP_ONLY_B, .at = -1};
        if (append(r, &cap, c, e)) goto done;
    }
    rc = 0;
done:
    free(buf.a);
    free(buf.b);
    free(buf.tmp);
    return rc;
}

void sdc_cmp_result_free(sdc_cmp_result *r) {
    if (!r) return;
    free(r->e);
    memset(r, 0, sizeof *r);
}

int sdc_cmp_same(const sdc_cmp_result *r) {
    return r->count[SDC_CMP_DIFFERENT] == 0 && r->count[SDC_CMP_SHAPE] == 0 &&
           r->count[SDC_CMP_ONLY_A] == 0 && r->count[SDC_CMP_ONLY_B] == 0;
}

sdc_img_diff sdc_image_diff(const uint8_t *a, const uint8_t *b, int w, int h) {
    sdc_img_diff d = {0};
    double se = 0;
    size_t npix = (size_t)w * (size_t)h;
    for (size_t p = 0; p < npix; p++) {
        int differs = 0;
        for (int c = 0; c < 3; c++) {
            int x = abs((int)a[p * 3 + c] - (int)b[p * 3 + c]);
            if (x > d.max_abs) d.max_abs = x;
            se += (double)x * x;
            differs |= x != 0;
        }
        d.n_diff += differs;
    }
    d.mse = npix ? se / (3.0 * (double)npix) : 0;
    d.psnr = d.mse > 0 ? 10.0 * log10(255.0 * 255.0 / d.mse) : INFINITY;
    return d;
}

/* black → red → yellow → white over v in 0..255 (the "hot" ramp). */
static void hot(int v, uint8_t *rgb) {
    int x = v * 3;                                  /* 0..765 */
    rgb[0] = (uint8_t)(x > 255 ? 255 : x);
    rgb[1] = (uint8_t)(x < 255 ? 0 : x > 510 ? 255 : x - 255);
    rgb[2] = (uint8_t)(x < 510 ? 0 : x - 510);
}

double sdc_image_side_by_side(const uint8_t *a, const uint8_t *b, int w, int h, uint8_t *out) {
    int maxd = sdc_image_diff(a, b, w, h).max_abs;
    double gain = maxd ? 255.0 / maxd : 0;
    size_t row = (size_t)w * 3, orow = row * 3;
    for (int y = 0; y < h; y++) {
        const uint8_t *pa = a + (size_t)y * row, *pb = b + (size_t)y * row;
        uint8_t *o = out + (size_t)y * orow;
        memcpy(o, pa, row);
        memcpy(o + row, pb, row);
        for (int x = 0; x < w; x++) {
            int d = 0;
            for (int c = 0; c < 3; c++) {
                int v = abs((int)pa[x * 3 + c] - (int)pb[x * 3 + c]);
                if (v > d) d = v;
            }
            int v = (int)lround(d * gain);
            hot(v > 255 ? 255 : v, o + 2 * row + (size_t)x * 3);
        }
    }
    return gain;
}
