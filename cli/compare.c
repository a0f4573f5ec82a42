/* compare.c — tensor-by-tensor and image comparison of two models (compare.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/compare.h"
#include "runtime/names.h"

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
    return 0;
}

static int selected(const sdc_cmp_opts *o, const char *name) {
    if (o->n_only <= 0) return 1;
    for (int i = 0; i < o->n_only; i++)
        if (!strncmp(name, o->only[i], strlen(o->only[i]))) return 1;
    return 0;
}

/* One diffusers component found in one file of a store: its name prefix and its counts. */
typedef struct comp {
    int kind;                    /* 'u', 'v', 't' */
    char prefix[NAME_MAX_LEN];
    int R, levels;
} comp;

typedef struct up_ctx { const sdc_store *st; const char *prefix; } up_ctx;

static int up_has_attn(void *p, int i) {
    const up_ctx *c = p;
    char pre[NAME_MAX_LEN + 64];
    snprintf(pre, sizeof pre, "%sup_blocks.%d.attentions.", c->prefix, i);
    return sdc_store_count_prefix(c->st, pre) > 0;
}

/* The components of file f: a name ending in the component's marker gives its prefix. */
static int find_comps(const sdc_store *st, const sdc_store_file *f, comp *c) {
    static const struct { int kind; const char *marker; } mk[] = {
        {'u', "time_embedding.linear_1.weight"},
        {'v', "decoder.up_blocks.0.resnets.0.conv1.weight"},
        {'t', "text_model.embeddings.token_embedding.weight"}};
    int n = 0;
    for (size_t k = 0; k < 3; k++) {
        for (size_t i = f->first_tensor; i < f->first_tensor + f->n_tensors; i++) {
            const char *nm = sdc_store_at(st, i)->name;
            size_t l = strlen(nm), m = strlen(mk[k].marker);
            if (l < m || strcmp(nm + l - m, mk[k].marker) || (l > m && nm[l - m - 1] != '.')) continue;
            if (l - m >= NAME_MAX_LEN) continue;
            if (mk[k].kind == 't' && l - m >= 29 && !strncmp(nm + l - m - 29, "cond_stage_model.transformer.", 29))
                continue;   /* the original layout already */
            if (mk[k].kind == 'v' && l - m >= 18 && !strncmp(nm + l - m - 18, "first_stage_model.", 18))
                continue;
            comp *x = &c[n++];
            x->kind = mk[k].kind;
            memcpy(x->prefix, nm, l - m);
            x->prefix[l - m] = 0;
            char pre[NAME_MAX_LEN + 64];
            for (x->R = 0; x->R < DIFF_MAX_BLOCKS; x->R++) {
                snprintf(pre, sizeof pre, "%sdown_blocks.0.resnets.%d.", x->prefix, x->R);
                if (!sdc_store_count_prefix(st, pre)) break;
            }
            for (x->levels = 0; x->levels < DIFF_MAX_BLOCKS; x->levels++) {
                snprintf(pre, sizeof pre, "%sdecoder.up_blocks.%d.", x->prefix, x->levels);
                if (!sdc_store_count_prefix(st, pre)) break;
            }
            break;
        }
    }
    return n;
}

static int comp_longer_first(const void *x, const void *y) {
    size_t a = strlen(((const comp *)x)->prefix), b = strlen(((const comp *)y)->prefix);
    return a < b ? 1 : a > b ? -1 : 0;
}

/* ---------------------------------------------------------------- the two sides */

typedef struct key { const char *key; const sdc_tensor *t; } key;

typedef struct side {
    key   *k;      size_t n;       /* selected tensors in store order */
    key   *sorted;                 /* the same, by key */
    size_t mapped;
} side;

static int key_cmp(const void *x, const void *y) {
    return strcmp(((const key *)x)->key, ((const key *)y)->key);
}

static const key *side_find(const side *s, const char *k) {
    key probe = {k, NULL};
    return bsearch(&probe, s->sorted, s->n, sizeof probe, key_cmp);
}

static int own_name(sdc_cmp_result *r, const char *name, const char **out, sdc_err *e) {
    size_t bytes;
    if (sdc_mul_overflow(r->n_own + 1, sizeof *r->own, &bytes)) return sdc_errf(e, "compare: too many names");
    char **p = realloc(r->own, bytes);
    if (!p) return sdc_errf(e, "compare: out of memory");
    r->own = p;
    if (!(r->own[r->n_own] = strdup(name))) return sdc_errf(e, "compare: out of memory");
    *out = r->own[r->n_own++];
    return 0;
}

/* The keys of one store: its names, renamed to the original layout under map_diffusers. */
static int side_build(side *s, const sdc_store *st, const sdc_cmp_opts *o, const char *label,
                      sdc_cmp_result *r, sdc_err *e) {
    size_t n = sdc_store_count(st);
    memset(s, 0, sizeof *s);
    if (!(s->k = calloc(n ? n : 1, sizeof *s->k)) || !(s->sorted = calloc(n ? n : 1, sizeof *s->sorted)))
        return sdc_errf(e, "compare: out of memory");
    for (size_t f = 0; f < sdc_store_nfiles(st); f++) {
        const sdc_store_file *file = sdc_store_file_at(st, f);
        comp c[3];
        int nc = o->map_diffusers ? find_comps(st, file, c) : 0;
        qsort(c, (size_t)nc, sizeof *c, comp_longer_first);
        for (size_t i = file->first_tensor; i < file->first_tensor + file->n_tensors; i++) {
            const sdc_tensor *t = sdc_store_at(st, i);
            if (sdc_store_get(st, t->name) != t) continue;   /* shadowed by a later file */
            const char *k = t->name;
            /* the longest matching prefix first (c is sorted so); the first table that knows it wins */
            for (int x = 0; x < nc; x++) {
                size_t pl = strlen(c[x].prefix);
                char buf[NAME_MAX_LEN + 128];
                up_ctx u = {st, c[x].prefix};
                if (strncmp(t->name, c[x].prefix, pl) ||
                    sdc_diffusers_to_original(c[x].kind, t->name + pl, c[x].R, c[x].levels, up_has_attn, &u,
                                              buf, sizeof buf))
                    continue;
                if (own_name(r, buf, &k, e)) return -1;
                s->mapped++;
                break;
            }
            if (!selected(o, k)) { r->n_skipped++; continue; }
            s->k[s->n].key = k;
            s->k[s->n++].t = t;
        }
    }
    memcpy(s->sorted, s->k, s->n * sizeof *s->k);
    qsort(s->sorted, s->n, sizeof *s->sorted, key_cmp);
    for (size_t i = 1; i < s->n; i++)
        if (!strcmp(s->sorted[i].key, s->sorted[i - 1].key))
            return sdc_errf(e, "%s: two tensors under one name after renaming to the original layout: "
                            "'%s' and '%s' are both '%s'", label, s->sorted[i - 1].t->name,
                            s->sorted[i].t->name, s->sorted[i].key);
    return 0;
}

static void side_free(side *s) {
    free(s->k);
    free(s->sorted);
}

/* Shapes equal, or (loose) equal once the size-1 dims are dropped. Returns 1 equal, 2 loose. */
static int shapes_match(const sdc_tensor *a, const sdc_tensor *b, int loose) {
    if (same_shape(a, b)) return 1;
    if (!loose || a->numel != b->numel) return 0;
    int i = 0, j = 0;
    for (;;) {
        while (i < a->ndim && a->shape[i] == 1) i++;
        while (j < b->ndim && b->shape[j] == 1) j++;
        if (i == a->ndim || j == b->ndim) return i == a->ndim && j == b->ndim ? 2 : 0;
        if (a->shape[i++] != b->shape[j++]) return 0;
    }
}

int sdc_compare_stores(const sdc_store *a, const sdc_store *b, const sdc_cmp_opts *opts,
                       sdc_cmp_result *r, sdc_err *e) {
    static const sdc_cmp_opts exact = {0, 0, NULL, 0, 0};
    const sdc_cmp_opts *o = opts ? opts : &exact;
    memset(r, 0, sizeof *r);
    size_t cap = 0;
    side sa, sb;
    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    int rc = -1;
    if (side_build(&sa, a, o, "A", r, e) || side_build(&sb, b, o, "B", r, e)) goto done;
    r->n_mapped_a = sa.mapped;
    r->n_mapped_b = sb.mapped;

    /* 1. match names and shapes */
    for (size_t i = 0; i < sa.n; i++) {
        sdc_cmp_entry c = {0};
        c.a = sa.k[i].t;
        c.name = sa.k[i].key;
        c.name_a = c.a->name;
        const key *kb = side_find(&sb, c.name);
        c.at = -1;
        c.kind = SDC_CMP_ONLY_A;
        if (kb) {
            c.b = kb->t;
            c.name_b = c.b->name;
            if (c.a->dtype != c.b->dtype) r->n_dtype_diff++;
            int sm = shapes_match(c.a, c.b, o->map_diffusers && (sa.mapped || sb.mapped));
            c.kind = sm ? SDC_CMP_IDENTICAL : SDC_CMP_SHAPE;   /* values: step 2 */
            c.reshaped = sm == 2;
        }
        if (append(r, &cap, c, e)) goto done;
    }
    size_t na = r->n;
    for (size_t i = 0; i < sb.n; i++) {
        if (side_find(&sa, sb.k[i].key)) continue;
        sdc_cmp_entry c = {.name = sb.k[i].key, .name_b = sb.k[i].t->name, .b = sb.k[i].t,
                           .kind = SDC_CMP_ONLY_B, .at = -1};
        if (append(r, &cap, c, e)) goto done;
    }

    /* 2. the values, tensors spread over the OpenMP threads (each with its own slice buffers);
     *    on failure the error of the first failing tensor in A's order is reported */
    long bad = -1;
    sdc_err bad_e = {{0}};
    #pragma omp parallel
    {
        cmp_buf buf = {malloc(CMP_CHUNK * sizeof(double)), malloc(CMP_CHUNK * sizeof(double)),
                       malloc(CMP_CHUNK * sizeof(float))};
        int ok = buf.a && buf.b && buf.tmp;
        #pragma omp for schedule(dynamic, 1)
        for (long i = 0; i < (long)na; i++) {
            sdc_cmp_entry *c = &r->e[i];
            if (!c->b || c->kind == SDC_CMP_SHAPE) continue;
            sdc_err te = {{0}};
            int f = ok ? compare_values(c, o, &buf, &te) : sdc_errf(&te, "compare: out of memory");
            if (f) {
                #pragma omp critical(sdc_compare_err)
                if (bad < 0 || i < bad) { bad = i; bad_e = te; }
            }
        }
        free(buf.a);
        free(buf.b);
        free(buf.tmp);
    }
    if (bad >= 0) {
        if (e) *e = bad_e;
        goto done;
    }

    /* 3. counts and the largest differences, in A's order (the same answer for any thread count) */
    for (size_t i = 0; i < r->n; i++) {
        sdc_cmp_entry *c = &r->e[i];
        if (c->b && c->a && c->kind != SDC_CMP_SHAPE) {
            if (c->reshaped && c->kind == SDC_CMP_IDENTICAL) c->kind = SDC_CMP_EQUAL;
            r->elems_compared += (uint64_t)c->a->numel;
            if (c->n_diff && (c->max_abs > r->max_abs || !r->max_abs_name)) {
                r->max_abs = c->max_abs;
                r->max_abs_name = c->name;
            }
            if (c->n_diff && (c->max_rel > r->max_rel || !r->max_rel_name)) {
                r->max_rel = c->max_rel;
                r->max_rel_name = c->name;
            }
        }
        r->count[c->kind]++;
    }
    rc = 0;
done:
    side_free(&sa);
    side_free(&sb);
    return rc;
}

/* The files of a diffusers folder, per component: the first that exists is opened. */
static const char *const diffusers_files[][3] = {
    {"unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
     "unet/diffusion_pytorch_model.bin"},
    {"vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
     "vae/diffusion_pytorch_model.bin"},
    {"text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors",
     "text_encoder/pytorch_model.bin"}};

int sdc_cmp_open(sdc_store *s, const char *path, const sdc_load_opts *opts, sdc_err *e) {
    struct stat st;
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) return sdc_store_open(s, path, opts, e);
    int opened = 0;
    for (size_t c = 0; c < 3; c++)
        for (size_t k = 0; k < 3; k++) {
            char p[4096];
            int w = snprintf(p, sizeof p, "%s/%s", path, diffusers_files[c][k]);
            if (w < 0 || (size_t)w >= sizeof p)
                return sdc_errf(e, "%s: path too long", path);
            if (stat(p, &st) || !S_ISREG(st.st_mode)) continue;
            if (sdc_store_open(s, p, opts, e)) return -1;
            opened++;
            break;
        }
    if (!opened)
        return sdc_errf(e, "%s: a directory, but not a diffusers folder: no unet/, vae/ or text_encoder/ "
                        "weights (diffusion_pytorch_model.safetensors, model.safetensors)", path);
    return 0;
}

void sdc_cmp_result_free(sdc_cmp_result *r) {
    if (!r) return;
    free(r->e);
    for (size_t i = 0; i < r->n_own; i++) free(r->own[i]);
    free(r->own);
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
