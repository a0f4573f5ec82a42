/* vae.c — the SD autoencoder (ldm.models.autoencoder.AutoencoderKL): Encoder, Decoder,
 * quant_conv/post_quant_conv, bound from the tensor store as f32 copies and run as kernel calls,
 * one image at a time (activation memory is one image's, whatever N is). Blocks update their
 * activation in place; the 3x3 convs of the blocks and the upsampler run here, a band of rows at
 * a time, as Winograd F(2x2,3x3) (conv3_bands, kernels/winograd.c).
 * In low-mem mode (sdc_vae_params.low_mem) the conv and attention matrices stay the store's
 * views and are widened per layer into arena scratch (models/weight.h); same output bits.
 *
 * Levels, blocks per level, widths, latent channels and the down/upsampling steps come from the
 * weights: a level resamples iff its downsample/upsample conv is stored, a ResnetBlock has a
 * shortcut conv iff nin_shortcut is stored (required when its in/out widths differ). */
#include "models/vae.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "kernels/kernels.h"
#include "models/weight.h"

/* Tensor names are built into fixed buffers far longer than any SD name; a cut name only
 * fails its lookup, with the name in the message. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* SD's VAE has 4 levels (8x downscale) and 2 (encoder) / 3 (decoder) ResnetBlocks a level;
 * 8 levels would be a 256x downscale, far beyond any autoencoder SD uses. */
#define VAE_MAX_LEVELS 8
#define VAE_MAX_BLOCKS 8
/* SD's widest VAE layer has 512 channels; the bound keeps 3C*C and C*H*W far from overflow. */
#define VAE_MAX_CHANNELS 65536
#define VAE_GROUPS 32        /* ldm Normalize(): GroupNorm(num_groups=32, eps=1e-6) */
#define VAE_EPS 1e-6f
/* Image sides: 8192 pixels is 16x SD's native size; the bound keeps every size product small. */
#define VAE_MAX_SIDE 8192

/* ---------------------------------------------------------------------------------------------
 * Weights */

typedef struct vae_resblock {        /* ldm ResnetBlock (temb_channels = 0, no dropout) */
    int cin, cout;
    float *norm1_g, *norm1_b;        /* (cin) */
    sdc_weight conv1_w; float *conv1_b;  /* (cout, cin, 3, 3), (cout) */
    float *norm2_g, *norm2_b;        /* (cout) */
    sdc_weight conv2_w; float *conv2_b;  /* (cout, cout, 3, 3), (cout) */
    sdc_weight nin_w; float *nin_b;  /* (cout, cin, 1, 1), (cout); n = 0: identity shortcut */
} vae_resblock;

typedef struct vae_attn {            /* ldm AttnBlock: single-head self-attention over pixels */
    int c;
    float *norm_g, *norm_b;          /* (C) */
    sdc_weight qkv_w; float *qkv_b;  /* (3C, C), (3C): q, k, v stacked (1x1 convs or linears) */
    sdc_weight proj_w; float *proj_b;  /* (C, C), (C): proj_out */
} vae_attn;

typedef struct vae_mid {             /* Encoder.mid / Decoder.mid */
    vae_resblock block_1;
    vae_attn attn_1;
    vae_resblock block_2;
} vae_mid;

typedef struct vae_level {           /* Encoder.down[i] / Decoder.up[i] */
    int n_blocks;
    vae_resblock block[VAE_MAX_BLOCKS];
    sdc_weight resample_w; float *resample_b; /* (C, C, 3, 3), (C): downsample.conv / upsample.conv;
                                        n = 0: this level keeps its resolution */
} vae_level;

typedef struct vae_encoder {         /* ldm Encoder (double_z) */
    int in_ch, ch, n_levels, z2;     /* 3, conv_in width, levels, 2*z_channels */
    sdc_weight conv_in_w; float *conv_in_b;    /* (ch, in_ch, 3, 3), (ch) */
    vae_level down[VAE_MAX_LEVELS];
    vae_mid mid;
    int c_out;                       /* channels into norm_out */
    float *norm_out_g, *norm_out_b;  /* (c_out) */
    sdc_weight conv_out_w; float *conv_out_b;  /* (z2, c_out, 3, 3), (z2) */
} vae_encoder;

typedef struct vae_decoder {         /* ldm Decoder; up[] runs from up[n_levels-1] to up[0] */
    int z, block_in, n_levels, out_ch;
    sdc_weight conv_in_w; float *conv_in_b;    /* (block_in, z, 3, 3), (block_in) */
    vae_mid mid;
    vae_level up[VAE_MAX_LEVELS];
    int c_out;                       /* channels into norm_out */
    float *norm_out_g, *norm_out_b;  /* (c_out) */
    sdc_weight conv_out_w; float *conv_out_b;  /* (out_ch, c_out, 3, 3), (out_ch) */
} vae_decoder;

struct sdc_vae {
    int E;                           /* embed_dim = latent channels (4) */
    int has_encoder;
    int down_factor;                 /* 2^(number of upsampling levels): 8 */
    int enc_factor;                  /* 2^(number of downsampling levels) */
    sdc_weight quant_w; float *quant_b;        /* (2E, z2, 1, 1), (2E): quant_conv */
    sdc_weight post_quant_w; float *post_quant_b; /* (z, E, 1, 1), (z): post_quant_conv */
    vae_encoder enc;
    vae_decoder dec;
    sdc_vae_tap tap;
    void *tap_user;
    size_t last_peak;                /* arena bytes the last decode/encode used at most */
    float **owned;                   /* every malloc'd weight, freed by sdc_vae_free */
    size_t n_owned, cap_owned;
    int low_mem;                     /* 1: the sdc_weights are the store's views */
    int bf16;                        /* 1: the Winograd convs' GEMMs in bf16 (sdc_vae_params.bf16) */
    float scale, shift;              /* latent space: z = (mean - shift) * scale */
};

typedef struct vae_binder {
    sdc_vae *v;
    const sdc_store *st;
    const char *pre;                 /* "first_stage_model.", "vae." or "" */
    sdc_err *e;
} vae_binder;

static float *own(sdc_vae *v, size_t n) {
    if (v->n_owned == v->cap_owned) {
        size_t nc = v->cap_owned ? 2 * v->cap_owned : 128;
        float **p = realloc(v->owned, nc * sizeof *p);
        if (!p) return NULL;
        v->owned = p;
        v->cap_owned = nc;
    }
    float *w = malloc(n ? n * sizeof(float) : 1);
    if (w) v->owned[v->n_owned++] = w;
    return w;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *s) {
    buf[0] = 0;
    for (int i = 0; i < ndim; i++) {
        size_t l = strlen(buf);
        if (s[i] < 0) snprintf(buf + l, cap - l, "%s?", i ? "," : "");
        else snprintf(buf + l, cap - l, "%s%lld", i ? "," : "", (long long)s[i]);
    }
}

/* Tensor pre+name, checked to be a float [want[0..ndim)]; a want < 0 accepts any size and
 * receives the size found. When alt_ndim > 0 a tensor of that many dims whose leading sizes
 * match is accepted too (a Linear [C,C] where a 1x1 conv [C,C,1,1] is expected). Returns NULL
 * with e set ("vae: NAME: ..."). */
static const sdc_tensor *check_t(vae_binder *b, int ndim, int64_t *want, int alt_ndim,
                                 const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", b->pre, name);
    const sdc_tensor *t = sdc_store_get(b->st, full);
    if (!t) { sdc_errf(b->e, "vae: missing tensor %s", full); return NULL; }
    int nd = (alt_ndim > 0 && t->ndim == alt_ndim) ? alt_ndim : ndim;
    int ok = t->ndim == nd && sdc_dtype_is_float(t->dtype);
    for (int i = 0; ok && i < nd; i++) ok = want[i] < 0 ? t->shape[i] > 0 : t->shape[i] == want[i];
    if (!ok) {
        char got[128], exp[128];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(exp, sizeof exp, ndim, want);
        sdc_errf(b->e, "vae: tensor %s is %s [%s], the graph expects a float [%s]", full,
                 sdc_dtype_name(t->dtype), got, exp);
        return NULL;
    }
    for (int i = 0; i < nd; i++) {
        if (t->shape[i] > VAE_MAX_CHANNELS) {
            sdc_errf(b->e, "vae: tensor %s is too large (sizes at most %d)", full,
                     VAE_MAX_CHANNELS);
            return NULL;
        }
        want[i] = t->shape[i];
    }
    return t;
}

/* t as f32 into w (then t's file pages leave the RSS: nothing reads them again). */
static int convert(vae_binder *b, const sdc_tensor *t, float *w) {
    int rc = sdc_tensor_to_f32(t, w, b->e);
    sdc_store_release_tensor(b->st, t);
    return rc ? sdc_err_prefix(b->e, "vae: %s", t->name) : 0;
}

/* check_t(), then an owned f32 copy. Returns NULL with e set. */
static float *bind_t(vae_binder *b, int ndim, int64_t *want, int alt_ndim, const char *name) {
    const sdc_tensor *t = check_t(b, ndim, want, alt_ndim, name);
    if (!t) return NULL;
    float *w = own(b->v, (size_t)t->numel);
    if (!w) { sdc_errf(b->e, "vae: out of memory binding %s", t->name); return NULL; }
    return convert(b, t, w) ? NULL : w;
}

/* The n checked tensors t stacked by rows as one matrix: an owned f32 copy, or in low-mem mode
 * the views themselves. Returns 0, or -1 with e set. */
static int bind_big(vae_binder *b, sdc_weight *w, const sdc_tensor *const *t, int n) {
    float *f = NULL;
    if (!b->v->low_mem && !(f = own(b->v, sdc_weight_count(t, n))))
        return sdc_errf(b->e, "vae: out of memory binding %s", t[0]->name);
    return sdc_weight_bind(w, f, b->st, t, n, NULL, b->e) ? sdc_err_prefix(b->e, "vae") : 0;
}

/* check_t() + bind_big() of one matrix. */
static int bind_w(vae_binder *b, sdc_weight *w, int ndim, int64_t *want, const char *name) {
    const sdc_tensor *t = check_t(b, ndim, want, 0, name);
    return t ? bind_big(b, w, &t, 1) : -1;
}

#define NAMEF(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static float *bind_vec(vae_binder *b, int64_t n, const char *name) {
    int64_t want[1] = {n};
    return bind_t(b, 1, want, 0, name);
}

/* A conv weight [cout, cin, k, k] into w; cout < 0 reads it (written to *cout_found).
 * Returns 0, or -1 with e set. */
static int bind_conv(vae_binder *b, sdc_weight *w, int64_t cout, int64_t cin, int k,
                     const char *name, int *cout_found) {
    int64_t want[4] = {cout, cin, k, k};
    if (bind_w(b, w, 4, want, name)) return -1;
    if (cout_found) *cout_found = (int)want[0];
    return 0;
}

static int check_groups(vae_binder *b, int c, const char *name) {
    if (c % VAE_GROUPS == 0) return 0;
    return sdc_errf(b->e, "vae: %s%s has %d channels, not divisible into %d groups", b->pre,
                    name, c, VAE_GROUPS);
}

/* ResnetBlock at name (e.g. "decoder.up.1.block.0") taking cin channels; cout from conv1. */
static int bind_resblock(vae_binder *b, vae_resblock *r, int cin, const char *at) {
    char n[400];
    r->cin = cin;
    if (bind_conv(b, &r->conv1_w, -1, cin, 3, NAMEF(n, "%s.conv1.weight", at), &r->cout))
        return -1;
    const int64_t co = r->cout;
    if (!(r->norm1_g = bind_vec(b, cin, NAMEF(n, "%s.norm1.weight", at))) ||
        !(r->norm1_b = bind_vec(b, cin, NAMEF(n, "%s.norm1.bias", at))) ||
        !(r->conv1_b = bind_vec(b, co, NAMEF(n, "%s.conv1.bias", at))) ||
        !(r->norm2_g = bind_vec(b, co, NAMEF(n, "%s.norm2.weight", at))) ||
        !(r->norm2_b = bind_vec(b, co, NAMEF(n, "%s.norm2.bias", at))) ||
        bind_conv(b, &r->conv2_w, co, co, 3, NAMEF(n, "%s.conv2.weight", at), NULL) ||
        !(r->conv2_b = bind_vec(b, co, NAMEF(n, "%s.conv2.bias", at))))
        return -1;
    if (check_groups(b, cin, NAMEF(n, "%s.norm1", at)) ||
        check_groups(b, r->cout, NAMEF(n, "%s.norm2", at)))
        return -1;
    int has_nin = sdc_store_getf(b->st, "%s%s.nin_shortcut.weight", b->pre, at) != NULL;
    if (!has_nin && cin != r->cout)
        return sdc_errf(b->e, "vae: missing tensor %s%s.nin_shortcut.weight (the block maps %d "
                              "to %d channels)", b->pre, at, cin, r->cout);
    if (has_nin &&
        (bind_conv(b, &r->nin_w, co, cin, 1, NAMEF(n, "%s.nin_shortcut.weight", at), NULL) ||
         !(r->nin_b = bind_vec(b, co, NAMEF(n, "%s.nin_shortcut.bias", at)))))
        return -1;
    return 0;
}

/* AttnBlock at name over c channels; q/k/v/proj_out as 1x1 convs or linears. */
static int bind_attn(vae_binder *b, vae_attn *t, int c, const char *at) {
    char n[400];
    t->c = c;
    if (!(t->norm_g = bind_vec(b, c, NAMEF(n, "%s.norm.weight", at))) ||
        !(t->norm_b = bind_vec(b, c, NAMEF(n, "%s.norm.bias", at))) ||
        check_groups(b, c, NAMEF(n, "%s.norm", at)))
        return -1;
    if (!(t->qkv_b = own(b->v, (size_t)3 * c)))
        return sdc_errf(b->e, "vae: out of memory binding %s%s", b->pre, at);
    static const char *const qkv[4] = {"q", "k", "v", "proj_out"};
    const sdc_tensor *w[4];
    for (int j = 0; j < 4; j++) {
        int64_t want[4] = {c, c, 1, 1};
        w[j] = check_t(b, 4, want, 2, NAMEF(n, "%s.%s.weight", at, qkv[j]));
        float *bias = w[j] ? bind_vec(b, c, NAMEF(n, "%s.%s.bias", at, qkv[j])) : NULL;
        if (!bias) return -1;
        if (j == 3) t->proj_b = bias;
        else memcpy(t->qkv_b + (size_t)j * c, bias, (size_t)c * sizeof(float));
    }
    return bind_big(b, &t->qkv_w, w, 3) || bind_big(b, &t->proj_w, w + 3, 1) ? -1 : 0;
}

/* mid.block_1, mid.attn_1, mid.block_2 under at ("encoder.mid"); *c: channels in, then out. */
static int bind_mid(vae_binder *b, vae_mid *m, int *c, const char *at) {
    char n[400];
    if (bind_resblock(b, &m->block_1, *c, NAMEF(n, "%s.block_1", at)) ||
        bind_attn(b, &m->attn_1, m->block_1.cout, NAMEF(n, "%s.attn_1", at)) ||
        bind_resblock(b, &m->block_2, m->block_1.cout, NAMEF(n, "%s.block_2", at)))
        return -1;
    *c = m->block_2.cout;
    return 0;
}

/* Counts levels i = 0, 1, ... while PRE + fmt(i) is stored (at most limit + 1); every level
 * counted has a block 0. */
static int count_levels(vae_binder *b, const char *fmt_level, int limit) {
    int i = 0;
    while (i <= limit && sdc_store_getf(b->st, fmt_level, b->pre, i)) i++;
    return i;
}

/* The level's ResnetBlocks and its resampling conv; *c: channels in, then out. */
static int bind_level(vae_binder *b, vae_level *lv, int *c, const char *at, const char *resample) {
    char n[400];
    while (lv->n_blocks <= VAE_MAX_BLOCKS &&
           sdc_store_getf(b->st, "%s%s.block.%d.conv1.weight", b->pre, at, lv->n_blocks))
        lv->n_blocks++;
    if (lv->n_blocks > VAE_MAX_BLOCKS)
        return sdc_errf(b->e, "vae: %s%s has more than %d blocks", b->pre, at, VAE_MAX_BLOCKS);
    for (int j = 0; j < lv->n_blocks; j++) {
        if (bind_resblock(b, &lv->block[j], *c, NAMEF(n, "%s.block.%d", at, j))) return -1;
        *c = lv->block[j].cout;
    }
    if (sdc_store_getf(b->st, "%s%s.%s.conv.weight", b->pre, at, resample) &&
        (bind_conv(b, &lv->resample_w, *c, *c, 3, NAMEF(n, "%s.%s.conv.weight", at, resample),
                   NULL) ||
         !(lv->resample_b = bind_vec(b, *c, NAMEF(n, "%s.%s.conv.bias", at, resample)))))
        return -1;
    return 0;
}

static int bind_decoder(vae_binder *b, vae_decoder *d) {
    char n[400];
    int64_t want[4] = {-1, -1, 3, 3};
    if (bind_w(b, &d->conv_in_w, 4, want, "decoder.conv_in.weight")) return -1;
    d->block_in = (int)want[0];
    d->z = (int)want[1];
    if (!(d->conv_in_b = bind_vec(b, d->block_in, "decoder.conv_in.bias"))) return -1;
    int c = d->block_in;
    if (bind_mid(b, &d->mid, &c, "decoder.mid")) return -1;
    d->n_levels = count_levels(b, "%sdecoder.up.%d.block.0.conv1.weight", VAE_MAX_LEVELS);
    if (d->n_levels < 1 || d->n_levels > VAE_MAX_LEVELS)
        return sdc_errf(b->e, "vae: %s: %d decoder levels (1..%d expected)", b->pre,
                        d->n_levels, VAE_MAX_LEVELS);
    for (int i = d->n_levels - 1; i >= 0; i--)   /* ldm runs up[] in reverse */
        if (bind_level(b, &d->up[i], &c, NAMEF(n, "decoder.up.%d", i), "upsample")) return -1;
    d->c_out = c;
    if (!(d->norm_out_g = bind_vec(b, c, "decoder.norm_out.weight")) ||
        !(d->norm_out_b = bind_vec(b, c, "decoder.norm_out.bias")) ||
        check_groups(b, c, "decoder.norm_out") ||
        bind_conv(b, &d->conv_out_w, -1, c, 3, "decoder.conv_out.weight", &d->out_ch) ||
        !(d->conv_out_b = bind_vec(b, d->out_ch, "decoder.conv_out.bias")))
        return -1;
    if (d->out_ch != 3)
        return sdc_errf(b->e, "vae: %sdecoder.conv_out makes %d channels (an RGB image has 3)",
                        b->pre, d->out_ch);
    return 0;
}

static int bind_encoder(vae_binder *b, vae_encoder *en) {
    char n[400];
    int c = 0;
    int64_t want[4] = {-1, 3, 3, 3};
    if (bind_w(b, &en->conv_in_w, 4, want, "encoder.conv_in.weight")) return -1;
    c = en->ch = (int)want[0];
    en->in_ch = 3;
    if (!(en->conv_in_b = bind_vec(b, c, "encoder.conv_in.bias"))) return -1;
    en->n_levels = count_levels(b, "%sencoder.down.%d.block.0.conv1.weight", VAE_MAX_LEVELS);
    if (en->n_levels < 1 || en->n_levels > VAE_MAX_LEVELS)
        return sdc_errf(b->e, "vae: %s: %d encoder levels (1..%d expected)", b->pre,
                        en->n_levels, VAE_MAX_LEVELS);
    for (int i = 0; i < en->n_levels; i++)
        if (bind_level(b, &en->down[i], &c, NAMEF(n, "encoder.down.%d", i), "downsample"))
            return -1;
    if (bind_mid(b, &en->mid, &c, "encoder.mid")) return -1;
    en->c_out = c;
    if (!(en->norm_out_g = bind_vec(b, c, "encoder.norm_out.weight")) ||
        !(en->norm_out_b = bind_vec(b, c, "encoder.norm_out.bias")) ||
        check_groups(b, c, "encoder.norm_out") ||
        bind_conv(b, &en->conv_out_w, -1, c, 3, "encoder.conv_out.weight", &en->z2) ||
        !(en->conv_out_b = bind_vec(b, en->z2, "encoder.conv_out.bias")))
        return -1;
    return 0;
}

/* The prefix of the autoencoder in st: a separate VAE file's bare keys win over a
 * checkpoint's (the user passed it to replace the checkpoint's). */
static const char *find_vae(const sdc_store *st) {
    static const char *const pre[] = {"", "vae.", "first_stage_model."};
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++)
        if (sdc_store_getf(st, "%sdecoder.conv_in.weight", pre[i])) return pre[i];
    return NULL;
}

sdc_vae *sdc_vae_load(const sdc_store *st, sdc_err *e) { return sdc_vae_load_ex(st, NULL, e); }

sdc_vae *sdc_vae_load_ex(const sdc_store *st, const sdc_vae_params *p, sdc_err *e) {
    const char *pre = st ? find_vae(st) : NULL;
    if (!pre) {
        sdc_errf(e, "vae: the model has no autoencoder (no tensor "
                    "first_stage_model.decoder.conv_in.weight or decoder.conv_in.weight)");
        return NULL;
    }
    sdc_vae *v = calloc(1, sizeof *v);
    if (!v) { sdc_errf(e, "vae: out of memory"); return NULL; }
    v->low_mem = p && p->low_mem;
    v->bf16 = p && p->bf16;
    v->scale = p && p->scale > 0 ? p->scale : 0.18215f;
    v->shift = p ? p->shift : 0;
    vae_binder b = {v, st, pre, e};
    if (bind_decoder(&b, &v->dec)) goto fail;
    int64_t pq[4] = {v->dec.z, -1, 1, 1};
    if (bind_w(&b, &v->post_quant_w, 4, pq, "post_quant_conv.weight")) goto fail;
    v->E = (int)pq[1];
    if (!(v->post_quant_b = bind_vec(&b, v->dec.z, "post_quant_conv.bias"))) goto fail;
    v->down_factor = 1;
    for (int i = 0; i < v->dec.n_levels; i++)
        if (v->dec.up[i].resample_w.n) v->down_factor *= 2;

    if (sdc_store_getf(st, "%sencoder.conv_in.weight", pre)) {
        if (bind_encoder(&b, &v->enc)) goto fail;
        int64_t q[4] = {2 * (int64_t)v->E, v->enc.z2, 1, 1};
        if (bind_w(&b, &v->quant_w, 4, q, "quant_conv.weight") ||
            !(v->quant_b = bind_vec(&b, 2 * (int64_t)v->E, "quant_conv.bias")))
            goto fail;
        v->enc_factor = 1;
        for (int i = 0; i < v->enc.n_levels; i++)
            if (v->enc.down[i].resample_w.n) v->enc_factor *= 2;
        v->has_encoder = 1;
    }
    return v;
fail:
    sdc_vae_free(v);
    return NULL;
}

void sdc_vae_free(sdc_vae *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n_owned; i++) free(v->owned[i]);
    free(v->owned);
    free(v);
}

int sdc_vae_has_encoder(const sdc_vae *v) { return v->has_encoder; }
int sdc_vae_latent_channels(const sdc_vae *v) { return v->E; }
int sdc_vae_downscale(const sdc_vae *v) { return v->down_factor; }

void sdc_vae_set_tap(sdc_vae *v, sdc_vae_tap tap, void *user) {
    v->tap = tap;
    v->tap_user = user;
}

/* ---------------------------------------------------------------------------------------------
 * Forward (one image; activations [C, H, W]) */

static void tap(const sdc_vae *v, const char *name, const float *x, int C, int H, int W) {
    if (v->tap) v->tap(v->tap_user, name, x, C, H, W);
}

/* out[C,H,W] = conv_kxk(in[Cin,H,W]) with zero padding (t, l, b, r), stride s; w read through
 * sdc_weight_f32 (low-mem: widened into scratch, freed here). Returns 0, or -1 (sets e) when the
 * arena cannot hold the widened weight. */
static int conv_pad(sdc_arena *a, float *out, const float *in, const sdc_weight *w, const float *b,
                    int Cin, int H, int W, int Cout, int k, int s, int pt, int pl, int pb, int pr,
                    sdc_err *e) {
    sdc_arena_mark m = sdc_arena_get_mark(a);
    const float *wf = sdc_weight_f32(w, a);                              /* (Cout, Cin, k, k) */
    if (wf) k_conv2d(a, out, in, wf, b, 1, Cin, H, W, Cout, k, k, s, pt, pl, pb, pr);
    sdc_arena_reset(a, m);
    return wf ? 0 : sdc_errf(e, "vae: out of memory for a %dx%dx%dx%d weight", Cout, Cin, k, k);
}

/* out[C,H,W] = conv_kxk(in[Cin,H,W]) "same" padding, stride 1. */
static int conv_same(sdc_arena *a, float *out, const float *in, const sdc_weight *w, const float *b,
                     int Cin, int H, int W, int Cout, int k, sdc_err *e) {
    int p = k / 2;
    return conv_pad(a, out, in, w, b, Cin, H, W, Cout, k, 1, p, p, p, p, e);
}

/* ---- Convolutions on activations made a band of rows at a time ----
 * A ResnetBlock's 3x3 convs read silu(GroupNorm(x)) and the decoder's upsample conv reads
 * upsample2x(x): instead of materialising those whole tensors (a second copy of the largest
 * activation), conv3_bands builds its input one band of rows (plus a halo row each side) at a
 * time into scratch and convolves it there; the output band is stored or added (the residual)
 * into place. GroupNorm statistics and the SiLU as k_group_norm's. */

/* Direct path (narrow convs: conv_out's 3 channels): floats of input band scratch a band may use
 * (32 MiB): at 128 channels x 512 columns that is 126 rows a band, so the per-band cost (weights
 * repacked by k_conv2d) stays ~1% of the conv. */
#define VAE_BAND_FLOATS ((size_t)8 << 20)
/* GroupNorm(VAE_GROUPS) of x[C, HW] as a per-channel affine: norm(x)[c] = x[c]·sc[c] + sh[c]. */
static void gn_affine(float *sc, float *sh, const float *x, const float *g, const float *b, int C,
                      size_t HW) {
    const int cpg = C / VAE_GROUPS;
    const size_t gsz = (size_t)cpg * HW;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int gi = 0; gi < VAE_GROUPS; gi++) {
        const float *xg = x + (size_t)gi * gsz;
        double mean = k_sum(xg, gsz) / (double)gsz;
        double var = k_sum_sq_centred(xg, gsz, (float)mean) / (double)gsz;
        float rstd = (float)(1.0 / sqrt(var + VAE_EPS)), fm = (float)mean;
        for (int c = gi * cpg; c < (gi + 1) * cpg; c++) {
            sc[c] = rstd * g[c];
            sh[c] = b[c] - fm * sc[c];
        }
    }
}


typedef struct vae_src {             /* a conv's input, made a band at a time */
    const float *x;                  /* (C, H, W), or (C, H/2, W/2) when up */
    const float *sc, *sh;            /* (C): silu(x·sc + sh) (GroupNorm + SiLU); NULL: x as is */
    int up;                          /* nearest 2x upsample of x */
} vae_src;

/* band[c][j][1 + x] (row stride Wp, rows per channel `rows`) = the source's row y0 - 1 + j, made
 * as s says; zero outside the image and in columns 0 and W+1 .. Wp-1. */
static void fill_src_band(float *band, const vae_src *s, int Cin, int H, int W, int y0, int rows,
                          int Wp) {
    const int sH = s->up ? H / 2 : H, sW = s->up ? W / 2 : W;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < Cin; c++)
        for (int j = 0; j < rows; j++) {
            float *row = band + ((size_t)c * rows + j) * Wp, *d = row + 1;
            const int iy = y0 - 1 + j;
            row[0] = 0.0f;
            for (int x = W + 1; x < Wp; x++) row[x] = 0.0f;
            if (iy < 0 || iy >= H) { memset(d, 0, (size_t)W * sizeof(float)); continue; }
            const float *src = s->x + ((size_t)c * sH + (s->up ? iy / 2 : iy)) * sW;
            if (s->up) {
                for (int x = 0; x < W; x++) d[x] = src[x / 2];
                src = d;
            }
            if (s->sc) k_affine(d, src, (size_t)W, s->sc[c], s->sh[c], 1);
            else if (src != d) memcpy(d, src, (size_t)W * sizeof(float));
        }
}

/* ---- Winograd F(2x2, 3x3) (kernels/winograd.c): 16 multiplies per 4 outputs instead of 36, so
 * it runs past the direct method's FLOP floor. Used for the wide 3x3 convs (both channel counts
 * >= VAE_WINO_MIN_C); conv_out (3 channels) stays direct. The weights are packed per call (the
 * VAE runs once per image: 2.4 M weights at 512 channels, a few ms). */
#define VAE_WINO_MIN_C 16
/* Floats of input band a Winograd band may use (64 MiB: 64 rows at 512 channels x 514 columns);
 * at most an eighth of the image a band, so the scratch stays well below the activations. */
#define VAE_WINO_FLOATS ((size_t)16 << 20)

static int conv3_wino(sdc_arena *a, float *out, int add, const vae_src *s, int Cin, int H, int W,
                      const float *wf, const float *b, int Cout, int bf16, sdc_err *e) {
    sdc_arena_mark m = sdc_arena_get_mark(a);
    const int Wp = W + 2;                              /* a zero column each side */
    long R = (long)(VAE_WINO_FLOATS / ((size_t)Cin * Wp)) - 2;
    if (R > H / 8) R = H / 8;
    R &= ~1L;                                          /* whole 2x2 tiles a band */
    if (R < 2) R = 2;
    if (R > H) R = H;
    float *U = sdc_arena_f32(a, k_wino_packed_floats(Cout, Cin));
    uint32_t *Ub = bf16 ? sdc_arena_alloc(a, k_wino_bf16_words(Cout, Cin) * 4) : NULL;   /* bf16: U as pairs */
    float *band = sdc_arena_f32(a, (size_t)Cin * (R + 2) * Wp);          /* (Cin, R+2, W+2) */
    if (!U || !band || (bf16 && !Ub)) {
        sdc_arena_reset(a, m);
        return sdc_errf(e, "vae: out of memory for a %dx%dx3x3 conv", Cout, Cin);
    }
    k_wino_pack(U, wf, Cout, Cin);
    if (Ub) k_wino_bf16_pack(Ub, U, Cout, Cin);
    for (int y0 = 0; y0 < H; y0 += (int)R) {
        const int r = H - y0 < R ? H - y0 : (int)R, rows = r + 2;
        fill_src_band(band, s, Cin, H, W, y0, rows, Wp);
        if (Ub ? !k_conv3x3_wino_band_bf16(a, out + (size_t)y0 * W, (size_t)H * W, add, band + 1, Wp,
                                           (size_t)rows * Wp, Ub, b, Cin, r, W, Cout)
               : !k_conv3x3_wino_band(a, out + (size_t)y0 * W, (size_t)H * W, add, band + 1, Wp,
                                      (size_t)rows * Wp, U, b, Cin, r, W, Cout)) {
            sdc_arena_reset(a, m);
            return sdc_errf(e, "vae: out of memory for a %dx%dx3x3 conv", Cout, Cin);
        }
    }
    sdc_arena_reset(a, m);
    return 0;
}

/* out[Cout,H,W] (=, or += when add) conv3x3 "same"(src[Cin,H,W]) + b. out must not overlap the
 * source. Returns 0, or -1 (sets e) when the arena cannot give the scratch. */
static int conv3_bands(sdc_arena *a, float *out, int add, const vae_src *s, int Cin, int H, int W,
                       const sdc_weight *w, const float *b, int Cout, int bf16, sdc_err *e) {
    sdc_arena_mark m = sdc_arena_get_mark(a);
    const float *wf = sdc_weight_f32(w, a);                              /* (Cout, Cin, 3, 3) */
    if (wf && Cin >= VAE_WINO_MIN_C && Cout >= VAE_WINO_MIN_C) {
        int rc = conv3_wino(a, out, add, s, Cin, H, W, wf, b, Cout, bf16, e);
        sdc_arena_reset(a, m);
        return rc;
    }
    const size_t wide = (size_t)(Cin > Cout ? Cin : Cout) * (W + 2);
    size_t R = VAE_BAND_FLOATS / wide > 2 ? VAE_BAND_FLOATS / wide - 2 : 1;
    if (R > (size_t)H) R = (size_t)H;
    float *in = sdc_arena_f32(a, (size_t)Cin * (R + 2) * (W + 2));      /* (Cin, R+2, W+2) */
    float *ob = sdc_arena_f32(a, (size_t)Cout * R * W);                 /* (Cout, R, W) */
    if (!wf || !in || !ob) {
        sdc_arena_reset(a, m);
        return sdc_errf(e, "vae: out of memory for a %dx%dx3x3 conv", Cout, Cin);
    }
    for (int y0 = 0; y0 < H; y0 += (int)R) {
        const int r = H - y0 < (int)R ? H - y0 : (int)R, rows = r + 2;
        fill_src_band(in, s, Cin, H, W, y0, rows, W + 2);
        /* (Cout, r, W): the band is padded already (halo rows, a zero column each side) */
        k_conv2d(a, ob, in, wf, b, 1, Cin, rows, W + 2, Cout, 3, 3, 1, 0, 0, 0, 0);
        const size_t n = (size_t)r * W;
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < Cout; o++) {
            float *d = out + ((size_t)o * H + y0) * W;
            const float *src = ob + (size_t)o * n;
            if (add) for (size_t i = 0; i < n; i++) d[i] += src[i];
            else memcpy(d, src, n * sizeof(float));
        }
    }
    sdc_arena_reset(a, m);
    return 0;
}

/* x[Cout, HW] = w[Cout, Cin] · x[Cin, HW] + b in place (x holds max(Cin, Cout)·HW floats): tiles
 * of pixels, each copied out to scratch before its outputs (the same pixels) are written; the
 * GEMM of a tile runs on all threads. Returns 0, or -1 (sets e) without scratch. */
#define VAE_NIN_TILE 4096
static int conv1x1_inplace(sdc_arena *a, float *x, const sdc_weight *w, const float *b, int Cin,
                           int Cout, size_t HW, sdc_err *e) {
    sdc_arena_mark m = sdc_arena_get_mark(a);
    const float *wf = sdc_weight_f32(w, a);                              /* (Cout, Cin) */
    float *sc = sdc_arena_f32(a, (size_t)Cin * VAE_NIN_TILE);
    if (!wf || !sc) {
        sdc_arena_reset(a, m);
        return sdc_errf(e, "vae: out of memory for a %dx%d 1x1 conv", Cout, Cin);
    }
    for (size_t p0 = 0; p0 < HW; p0 += VAE_NIN_TILE) {
        const int np = (int)(HW - p0 < VAE_NIN_TILE ? HW - p0 : VAE_NIN_TILE);
        const int cm = Cin > Cout ? Cin : Cout;
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < cm; c++) {                                   /* (Cin, np) out */
            if (c < Cin) memcpy(sc + (size_t)c * np, x + (size_t)c * HW + p0, (size_t)np * sizeof(float));
            if (c < Cout) {                                              /* bias in */
                float *d = x + (size_t)c * HW + p0, v = b ? b[c] : 0.0f;
                for (int i = 0; i < np; i++) d[i] = v;
            }
        }
        k_sgemm(0, 0, Cout, np, Cin, 1.0f, wf, Cin, sc, np, 1.0f, x + p0, (int)HW);
    }
    sdc_arena_reset(a, m);
    return 0;
}

/* ldm ResnetBlock in place: x[cout,H,W] = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x)))))).
 * x holds max(cin, cout)·H·W floats; h (cout·H·W floats) is scratch. */
static int ResnetBlock(const vae_resblock *r, sdc_arena *a, float *x, float *h, int H, int W,
                       int bf16, sdc_err *e) {
    const size_t HW = (size_t)H * W;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    const int cmax = r->cin > r->cout ? r->cin : r->cout;
    float *sc = sdc_arena_f32(a, (size_t)cmax), *sh = sdc_arena_f32(a, (size_t)cmax);
    if (!sc || !sh) return sdc_errf(e, "vae: out of memory for activations");
    gn_affine(sc, sh, x, r->norm1_g, r->norm1_b, r->cin, HW);
    vae_src s1 = {x, sc, sh, 0};                                         /* (cout,H,W) */
    int rc = conv3_bands(a, h, 0, &s1, r->cin, H, W, &r->conv1_w, r->conv1_b, r->cout, bf16, e);
    if (!rc && r->nin_w.n)                                               /* (cout,H,W) */
        rc = conv1x1_inplace(a, x, &r->nin_w, r->nin_b, r->cin, r->cout, HW, e);
    if (!rc) {
        gn_affine(sc, sh, h, r->norm2_g, r->norm2_b, r->cout, HW);
        vae_src s2 = {h, sc, sh, 0};                                     /* += (cout,H,W) */
        rc = conv3_bands(a, x, 1, &s2, r->cout, H, W, &r->conv2_w, r->conv2_b, r->cout, bf16, e);
    }
    sdc_arena_reset(a, m);
    return rc ? -1 : 0;
}

/* ldm AttnBlock in place: x[C,HW] += proj_out(softmax(q kᵀ/√C) v), q,k,v = 1x1(norm(x)), one
 * head over the HW pixels. */
static int AttnBlock(const vae_attn *t, sdc_arena *a, float *x, int HW, sdc_err *e) {
    const int C = t->c;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *h = sdc_arena_f32(a, (size_t)C * HW);       /* (C, HW), later (HW, C) */
    float *ht = sdc_arena_f32(a, (size_t)C * HW);      /* (HW, C), later (C, HW) */
    float *qkv = sdc_arena_f32(a, (size_t)3 * C * HW); /* (HW, 3C) = q | k | v per pixel */
    const float *qkv_w = sdc_weight_f32(&t->qkv_w, a);  /* (3C, C) */
    const float *proj_w = sdc_weight_f32(&t->proj_w, a); /* (C, C) */
    if (!h || !ht || !qkv || !qkv_w || !proj_w) {
        sdc_arena_reset(a, m);
        return sdc_errf(e, "vae: out of memory for activations");
    }
    k_group_norm(h, x, t->norm_g, t->norm_b, 1, C, HW, VAE_GROUPS, VAE_EPS, 0); /* (C, HW) */
    k_nchw_to_nhwc(ht, h, 1, C, HW);                                           /* (HW, C) */
    k_linear(qkv, ht, qkv_w, t->qkv_b, HW, C, 3 * C);                         /* (HW, 3C) */
    k_attention(a, ht, qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C,        /* (HW, C) */
                1, HW, HW, 1, C, 0);
    k_linear(h, ht, proj_w, t->proj_b, HW, C, C);                             /* (HW, C) */
    k_nhwc_to_nchw(ht, h, 1, C, HW);                                           /* (C, HW) */
    k_add(x, ht, x, (size_t)C * HW);
    sdc_arena_reset(a, m);
    return 0;
}

/* Encoder.mid / Decoder.mid in place on x: block_1, attn_1, block_2; h: ResnetBlock scratch. */
static int Mid(const vae_mid *mid, sdc_arena *a, float *x, float *h, int H, int W, int bf16, sdc_err *e) {
    if (ResnetBlock(&mid->block_1, a, x, h, H, W, bf16, e) ||
        AttnBlock(&mid->attn_1, a, x, H * W, e) ||
        ResnetBlock(&mid->block_2, a, x, h, H, W, bf16, e))
        return -1;
    return 0;
}

/* Largest activation (floats) of a ResnetBlock chain: the ping-pong buffer size. */
static size_t level_max(const vae_level *lv, size_t HW, size_t mx) {
    for (int j = 0; j < lv->n_blocks; j++) {
        size_t c = (size_t)(lv->block[j].cin > lv->block[j].cout ? lv->block[j].cin
                                                                   : lv->block[j].cout);
        if (c * HW > mx) mx = c * HW;
    }
    return mx;
}

/* The decoder's activations live in one region R, per resolution: x (the activation, updated in
 * place by every block) at R, a block's scratch h right after x's largest size there. Upsample
 * writes the 2x conv's output right after x's live channels and moves it down to R. */

/* Floats x and h need at level i of the decoder (the first level run also holds conv_in's and
 * mid's activations): the widest block input/output, and the widest block output, times HW. */
static void dec_stage(const vae_decoder *d, int i, size_t HW, size_t *xs, size_t *hs) {
    const vae_level *lv = &d->up[i];
    size_t cx = 0, ch = 0;
    if (i == d->n_levels - 1) {
        const vae_resblock *mb[2] = {&d->mid.block_1, &d->mid.block_2};
        cx = (size_t)d->block_in;
        for (int k = 0; k < 2; k++) {
            if ((size_t)mb[k]->cin > cx) cx = (size_t)mb[k]->cin;
            if ((size_t)mb[k]->cout > cx) cx = (size_t)mb[k]->cout;
            if ((size_t)mb[k]->cout > ch) ch = (size_t)mb[k]->cout;
        }
    }
    for (int j = 0; j < lv->n_blocks; j++) {
        if ((size_t)lv->block[j].cin > cx) cx = (size_t)lv->block[j].cin;
        if ((size_t)lv->block[j].cout > cx) cx = (size_t)lv->block[j].cout;
        if ((size_t)lv->block[j].cout > ch) ch = (size_t)lv->block[j].cout;
    }
    *xs = cx * HW;
    *hs = ch * HW;
}

/* Floats of the region R for an h x w latent (sizes bounded by VAE_MAX_SIDE and
 * VAE_MAX_CHANNELS: no overflow). */
static size_t decoder_region(const vae_decoder *d, int h, int w) {
    size_t HW = (size_t)h * w, mx = 0;
    for (int i = d->n_levels - 1; i >= 0; i--) {
        size_t xs, hs;
        dec_stage(d, i, HW, &xs, &hs);
        if (xs + hs > mx) mx = xs + hs;
        const vae_level *lv = &d->up[i];
        if (lv->resample_w.n) {                          /* x's c·HW, then the c·4HW output */
            size_t c = (size_t)lv->block[lv->n_blocks - 1].cout;   /* n_blocks >= 1 */
            if (5 * c * HW > mx) mx = 5 * c * HW;
            HW *= 4;
        }
    }
    return mx;
}

/* ldm Decoder: img[3, H, W] = conv_out(silu(norm_out(up[0..L) reversed(mid(conv_in(z)))))) on
 * zq[z, h, w] (after post_quant_conv), in the region R (decoder_region floats). */
static int Decoder(const sdc_vae *v, sdc_arena *a, float *img, float *R, const float *zq, int h,
                   int w, sdc_err *e) {
    const vae_decoder *d = &v->dec;
    float *x = R, *hb;
    int H = h, W = w, c = d->block_in;
    size_t xs, hs;
    dec_stage(d, d->n_levels - 1, (size_t)H * W, &xs, &hs);
    hb = R + xs;
    if (conv_same(a, x, zq, &d->conv_in_w, d->conv_in_b, d->z, H, W, c, 3, e)) /* (block_in,h,w) */
        return -1;
    tap(v, "decoder.conv_in", x, c, H, W);
    if (Mid(&d->mid, a, x, hb, H, W, v->bf16, e)) return -1;                      /* (C, h, w) */
    c = d->mid.block_2.cout;
    tap(v, "decoder.mid_block", x, c, H, W);
    for (int i = d->n_levels - 1; i >= 0; i--) {
        const vae_level *lv = &d->up[i];
        dec_stage(d, i, (size_t)H * W, &xs, &hs);
        hb = R + xs;
        for (int j = 0; j < lv->n_blocks; j++) {                         /* (cout, H, W) */
            if (ResnetBlock(&lv->block[j], a, x, hb, H, W, v->bf16, e)) return -1;
            c = lv->block[j].cout;
        }
        if (lv->resample_w.n) {              /* Upsample: conv3x3(upsample2x(x)), (C, 2H, 2W) */
            float *u = x + (size_t)c * H * W;
            vae_src s = {x, NULL, NULL, 1};
            if (conv3_bands(a, u, 0, &s, c, 2 * H, 2 * W, &lv->resample_w, lv->resample_b, c, v->bf16, e))
                return -1;
            H *= 2;
            W *= 2;
            memmove(x, u, (size_t)c * H * W * sizeof(float));
        }
        char name[48];
        snprintf(name, sizeof name, "decoder.up_blocks.%d", d->n_levels - 1 - i);
        tap(v, name, x, c, H, W);
    }
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *sc = sdc_arena_f32(a, (size_t)c), *sh = sdc_arena_f32(a, (size_t)c);
    if (!sc || !sh) return sdc_errf(e, "vae: out of memory for activations");
    vae_src s = {x, sc, sh, 0};
    if (v->tap) {                        /* the tap sees norm_out's output before the SiLU */
        k_group_norm(x, x, d->norm_out_g, d->norm_out_b, 1, c, H * W, VAE_GROUPS, VAE_EPS, 0);
        tap(v, "decoder.conv_norm_out", x, c, H, W);
        k_silu(x, (size_t)c * H * W);
        s.sc = s.sh = NULL;
    } else {
        gn_affine(sc, sh, x, d->norm_out_g, d->norm_out_b, c, (size_t)H * W);
    }
    int rc = conv3_bands(a, img, 0, &s, c, H, W, &d->conv_out_w, d->conv_out_b, d->out_ch, v->bf16, e);
    sdc_arena_reset(a, m);                                               /* (3, H, W) */
    return rc;
}

/* Arena high-water mark of one call: peak_begin makes a->peak the bytes in use now,
 * peak_end stores the call's own peak in v->last_peak and restores the arena's overall peak. */
typedef struct vae_peak { size_t saved, base; } vae_peak;

static vae_peak peak_begin(sdc_arena *a) {
    vae_peak p = {a->peak, a->in_use};
    a->peak = a->in_use;
    return p;
}

static int peak_end(sdc_vae *v, sdc_arena *a, vae_peak p, int rc) {
    v->last_peak = a->peak - p.base;
    if (p.saved > a->peak) a->peak = p.saved;
    return rc;
}

size_t sdc_vae_last_peak(const sdc_vae *v) { return v->last_peak; }

static int decode(sdc_vae *v, sdc_arena *a, float *img, const float *z, int N, int h, int w,
                  sdc_err *e) {
    const int f = v->down_factor;
    if (N < 1 || h < 1 || w < 1 || h > VAE_MAX_SIDE / f || w > VAE_MAX_SIDE / f)
        return sdc_errf(e, "vae: cannot decode %d latents of %dx%d (sides 1..%d)", N, h, w,
                        VAE_MAX_SIDE / f);
    const int E = v->E, Z = v->dec.z, H = h * f, W = w * f;
    const size_t hw = (size_t)h * w;
    for (int n = 0; n < N; n++) {
        sdc_arena_mark m = sdc_arena_get_mark(a);
        float *R = sdc_arena_f32(a, decoder_region(&v->dec, h, w));
        float *zs = sdc_arena_f32(a, (size_t)E * hw), *zq = sdc_arena_f32(a, (size_t)Z * hw);
        if (!R || !zs || !zq) {
            sdc_arena_reset(a, m);
            return sdc_errf(e, "vae: out of memory for a %dx%d decode", H, W);
        }
        const float *zn = z + (size_t)n * E * hw;
        for (size_t i = 0; i < (size_t)E * hw; i++) zs[i] = zn[i] / v->scale;  /* (E,h,w) */
        if (v->shift)
            for (size_t i = 0; i < (size_t)E * hw; i++) zs[i] += v->shift;
        /* (z,h,w) */
        int rc = conv_same(a, zq, zs, &v->post_quant_w, v->post_quant_b, E, h, w, Z, 1, e);
        if (!rc) tap(v, "post_quant_conv", zq, Z, h, w);
        if (!rc) rc = Decoder(v, a, img + (size_t)n * 3 * H * W, R, zq, h, w, e);
        sdc_arena_reset(a, m);
        if (rc) return -1;
    }
    return 0;
}

int sdc_vae_decode(sdc_vae *v, sdc_arena *a, float *img, const float *z, int N, int h, int w,
                   sdc_err *e) {
    vae_peak p = peak_begin(a);
    return peak_end(v, a, p, decode(v, a, img, z, N, h, w, e));
}

/* ---------------------------------------------------------------------------------------------
 * Tiled decode: overlapping latent tiles decoded one at a time, blended with linear ramps.
 *
 * Along each axis of n latents, k tiles of t latents (t = tile_side(n, tile, ov)) start at
 * p_i = floor(i·(n-t)/(k-1)), k = ceil((n-ov)/(t-ov)): neighbours overlap by >= ov latents and
 * the last tile ends at n. A tile's 1-D weight at its pixel j (of L = t·f) is 1, falling
 * linearly to (0.5/O) over the O = ov·f pixels at each side that has a neighbour:
 * min(1, (j+0.5)/O, (L-j-0.5)/O). A tile's 2-D weight is wy·wx, and the weights of the tiles
 * covering a pixel sum to Sy[y]·Sx[x] (the grid is separable), so
 *   img[c,y,x] = Σ_tiles wy·wx·tile[c,y-Y0,x-X0] / (Sy[y]·Sx[x]).
 * GroupNorm statistics are per tile, so the result is close to, not equal to, the untiled
 * decode; a tile that covers the whole latent gives exactly sdc_vae_decode. */

static int tiles_along(int n, int t, int ov) {
    return n <= t ? 1 : (n - ov + (t - ov) - 1) / (t - ov);
}

static int tile_start(int i, int k, int n, int t) {
    return k == 1 ? 0 : (int)((int64_t)i * (n - t) / (k - 1));
}

/* 1-D weight of pixel j of tile i (of k), L pixels long, ramps of O pixels. */
static float tile_ramp(int i, int k, int j, int L, int O) {
    float wgt = 1.0f;
    if (O <= 0) return wgt;
    if (i > 0 && j < O) wgt = (j + 0.5f) / O;
    if (i < k - 1 && L - 1 - j < O) {
        float r = (L - j - 0.5f) / O;
        if (r < wgt) wgt = r;
    }
    return wgt;
}

/* S[P] = Σ over the k tiles (t latents, f pixels each) of their 1-D weights at each pixel. */
static void ramp_sums(float *S, int n, int t, int k, int f, int O) {
    for (int g = 0; g < n * f; g++) S[g] = 0.0f;
    for (int i = 0; i < k; i++) {
        int p = tile_start(i, k, n, t) * f;
        for (int j = 0; j < t * f; j++) S[p + j] += tile_ramp(i, k, j, t * f, O);
    }
}

/* wt[L] = normalised 1-D weights of tile i: ramp / S at each of its pixels. */
static void tile_weights(float *wt, const float *S, int i, int k, int n, int t, int f, int O) {
    int p = tile_start(i, k, n, t) * f;
    for (int j = 0; j < t * f; j++) wt[j] = tile_ramp(i, k, j, t * f, O) / S[p + j];
}

/* One image: img[3,H,W] from z[E,h,w], tiles of th x tw latents (ky x kx of them). */
static int decode_tiles(sdc_vae *v, sdc_arena *a, float *img, const float *z, int h, int w,
                        int th, int tw, int ov, sdc_err *e) {
    const int f = v->down_factor, E = v->E, H = h * f, W = w * f, O = ov * f;
    const int ky = tiles_along(h, th, ov), kx = tiles_along(w, tw, ov);
    const int TH = th * f, TW = tw * f;
    float *Sy = sdc_arena_f32(a, (size_t)H), *Sx = sdc_arena_f32(a, (size_t)W);
    float *wy = sdc_arena_f32(a, (size_t)TH), *wx = sdc_arena_f32(a, (size_t)TW);
    float *zt = sdc_arena_f32(a, (size_t)E * th * tw);            /* (E, th, tw) */
    float *it = sdc_arena_f32(a, (size_t)3 * TH * TW);            /* (3, TH, TW) */
    if (!Sy || !Sx || !wy || !wx || !zt || !it)
        return sdc_errf(e, "vae: out of memory for a tiled %dx%d decode", W, H);
    ramp_sums(Sy, h, th, ky, f, O);
    ramp_sums(Sx, w, tw, kx, f, O);
    memset(img, 0, (size_t)3 * H * W * sizeof(float));
    for (int ty = 0; ty < ky; ty++) {
        const int y0 = tile_start(ty, ky, h, th);
        tile_weights(wy, Sy, ty, ky, h, th, f, O);
        for (int tx = 0; tx < kx; tx++) {
            const int x0 = tile_start(tx, kx, w, tw);
            tile_weights(wx, Sx, tx, kx, w, tw, f, O);
            for (int c = 0; c < E; c++)                            /* crop (E, th, tw) */
                for (int y = 0; y < th; y++)
                    memcpy(zt + ((size_t)c * th + y) * tw, z + ((size_t)c * h + y0 + y) * w + x0,
                           (size_t)tw * sizeof(float));
            if (decode(v, a, it, zt, 1, th, tw, e)) return -1;     /* (3, TH, TW) */
            for (int c = 0; c < 3; c++)                            /* blend into (3, H, W) */
                for (int y = 0; y < TH; y++) {
                    float *o = img + ((size_t)c * H + (size_t)y0 * f + y) * W + (size_t)x0 * f;
                    const float *s = it + ((size_t)c * TH + y) * TW;
                    for (int x = 0; x < TW; x++) o[x] += wy[y] * wx[x] * s[x];
                }
        }
    }
    return 0;
}

/* The side of the tiles along n latents: the smallest t <= tile that still needs no more
 * tiles than tile itself would, with neighbours overlapping by >= ov (less work and memory than
 * tile: 64 latents in tiles of 32, overlap 8, become 3 tiles of 27). Needs 0 <= ov < tile. */
static int tile_side(int n, int tile, int ov) {
    if (n <= tile) return n;
    const int k = tiles_along(n, tile, ov);          /* k·(tile-ov) >= n-ov, so t <= tile */
    return (n + (k - 1) * ov + k - 1) / k;
}

static int decode_tiled(sdc_vae *v, sdc_arena *a, float *img, const float *z, int N, int h,
                        int w, int tile, int ov, sdc_err *e) {
    const int f = v->down_factor;
    if (N < 1 || h < 1 || w < 1 || h > VAE_MAX_SIDE / f || w > VAE_MAX_SIDE / f)
        return sdc_errf(e, "vae: cannot decode %d latents of %dx%d (sides 1..%d)", N, h, w,
                        VAE_MAX_SIDE / f);
    if (tile < 1 || ov < 0 || ov >= tile)
        return sdc_errf(e, "vae: bad decode tiling: tile %d, overlap %d (need tile >= 1 and "
                           "0 <= overlap < tile)", tile, ov);
    if (tile >= h && tile >= w) return decode(v, a, img, z, N, h, w, e);
    const int th = tile_side(h, tile, ov), tw = tile_side(w, tile, ov);
    const size_t in = (size_t)v->E * h * w, out = (size_t)3 * h * f * w * f;
    for (int n = 0; n < N; n++) {
        sdc_arena_mark m = sdc_arena_get_mark(a);
        int rc = decode_tiles(v, a, img + n * out, z + n * in, h, w, th, tw, ov, e);
        sdc_arena_reset(a, m);
        if (rc) return -1;
    }
    return 0;
}

int sdc_vae_decode_tiled(sdc_vae *v, sdc_arena *a, float *img, const float *z, int N, int h,
                         int w, int tile, int overlap, sdc_err *e) {
    vae_peak p = peak_begin(a);
    return peak_end(v, a, p, decode_tiled(v, a, img, z, N, h, w, tile, overlap, e));
}

/* ldm Encoder: moments[z2, H/f, W/f] = conv_out(silu(norm_out(mid(down[0..L)(conv_in(img)))))).
 * A and B are ping-pong buffers of the encoder's largest activation. */
static int Encoder(const sdc_vae *v, sdc_arena *a, float *out, const float *img, float *A,
                   float *B, int H, int W, sdc_err *e) {
    const vae_encoder *en = &v->enc;
    float *x = A, *y = B, *t;
    int c = en->ch;
    /* (ch, H, W) */
    if (conv_same(a, x, img, &en->conv_in_w, en->conv_in_b, en->in_ch, H, W, c, 3, e)) return -1;
    tap(v, "encoder.conv_in", x, c, H, W);
    for (int i = 0; i < en->n_levels; i++) {
        const vae_level *lv = &en->down[i];
        for (int j = 0; j < lv->n_blocks; j++) {                          /* (cout, H, W) */
            if (ResnetBlock(&lv->block[j], a, x, y, H, W, v->bf16, e)) return -1;
            c = lv->block[j].cout;
        }
        if (lv->resample_w.n) {            /* Downsample: pad (0,1,0,1), 3x3 stride 2 */
            if (conv_pad(a, y, x, &lv->resample_w, lv->resample_b, c, H, W, c, 3, 2, 0, 0, 1, 1, e))
                return -1;
            H /= 2;
            W /= 2;
            t = x; x = y; y = t;
        }
        char name[48];
        snprintf(name, sizeof name, "encoder.down_blocks.%d", i);
        tap(v, name, x, c, H, W);
    }
    if (Mid(&en->mid, a, x, y, H, W, v->bf16, e)) return -1;
    c = en->mid.block_2.cout;
    tap(v, "encoder.mid_block", x, c, H, W);
    k_group_norm(x, x, en->norm_out_g, en->norm_out_b, 1, c, H * W, VAE_GROUPS, VAE_EPS, 1);
    if (conv_same(a, out, x, &en->conv_out_w, en->conv_out_b, c, H, W, en->z2, 3, e)) /* (z2,h,w) */
        return -1;
    tap(v, "encoder.conv_out", out, en->z2, H, W);
    return 0;
}

static size_t encoder_max(const vae_encoder *en, int H, int W) {
    size_t HW = (size_t)H * W, mx = 0;
    for (int i = 0; i < en->n_levels; i++) {
        mx = level_max(&en->down[i], HW, mx);
        if (en->down[i].resample_w.n) HW /= 4;
    }
    const vae_mid *m = &en->mid;
    size_t c = (size_t)(m->block_1.cout > m->block_2.cout ? m->block_1.cout : m->block_2.cout);
    if ((size_t)m->block_1.cin > c) c = (size_t)m->block_1.cin;
    if (c * HW > mx) mx = c * HW;
    return mx;
}

static int encode(sdc_vae *v, sdc_arena *a, float *mean, float *logvar, const float *img,
                  int N, int H, int W, sdc_err *e) {
    if (!v->has_encoder) return sdc_errf(e, "vae: this autoencoder has no encoder weights");
    const int f = v->enc_factor;
    if (N < 1 || H < f || W < f || H > VAE_MAX_SIDE || W > VAE_MAX_SIDE || H % f || W % f)
        return sdc_errf(e, "vae: cannot encode %d images of %dx%d (sides must be multiples of "
                           "%d, at most %d)", N, W, H, f, VAE_MAX_SIDE);
    const int E = v->E, h = H / f, w = W / f;
    const size_t hw = (size_t)h * w, mx = encoder_max(&v->enc, H, W);
    for (int n = 0; n < N; n++) {
        sdc_arena_mark m = sdc_arena_get_mark(a);
        float *A = sdc_arena_f32(a, mx), *B = sdc_arena_f32(a, mx);  /* ping-pong */
        float *mom = sdc_arena_f32(a, (size_t)v->enc.z2 * hw);         /* (z2, h, w) */
        float *q = sdc_arena_f32(a, (size_t)2 * E * hw);               /* (2E, h, w) */
        if (!A || !B || !mom || !q) {
            sdc_arena_reset(a, m);
            return sdc_errf(e, "vae: out of memory for a %dx%d encode", W, H);
        }
        if (Encoder(v, a, mom, img + (size_t)n * 3 * H * W, A, B, H, W, e)) {
            sdc_arena_reset(a, m);
            return -1;
        }
        if (conv_same(a, q, mom, &v->quant_w, v->quant_b, v->enc.z2, h, w, 2 * E, 1, e)) {
            sdc_arena_reset(a, m);
            return -1;
        }
        tap(v, "quant_conv", q, 2 * E, h, w);
        memcpy(mean + (size_t)n * E * hw, q, (size_t)E * hw * sizeof(float));
        if (logvar)
            for (size_t i = 0; i < (size_t)E * hw; i++) {
                float lv = q[(size_t)E * hw + i];
                logvar[(size_t)n * E * hw + i] = lv < -30.f ? -30.f : lv > 20.f ? 20.f : lv;
            }
        sdc_arena_reset(a, m);
    }
    return 0;
}

int sdc_vae_encode(sdc_vae *v, sdc_arena *a, float *mean, float *logvar, const float *img,
                   int N, int H, int W, sdc_err *e) {
    vae_peak p = peak_begin(a);
    return peak_end(v, a, p, encode(v, a, mean, logvar, img, N, H, W, e));
}
