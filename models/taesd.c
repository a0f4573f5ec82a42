/* taesd.c — TAESD (diffusers' AutoencoderTiny: DecoderTiny / EncoderTiny) bound from the tensor
 * store and run as kernel calls, one image at a time. Stride-1 3x3 convs run as Winograd
 * F(2x2,3x3) on weights packed at load (kernels/winograd.c), the encoder's stride-2 convs and a
 * Block's 1x1 skip through k_conv2d. See taesd.h for the layouts and the scale. */
#include "models/taesd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

/* The published TAESD has 19 decoder and 15 encoder layers; 64 leaves room for deeper variants
 * and bounds the table. */
#define TAESD_MAX_LAYERS 64
/* TAESD is 64 channels wide; the bound keeps C·H·W far from overflow. */
#define TAESD_MAX_CHANNELS 4096
/* Image sides: 8192 pixels is 16x SD's native size (as the VAE's bound). */
#define TAESD_MAX_SIDE 8192

/* ---------------------------------------------------------------------------------------------
 * Weights */

typedef struct taesd_conv {          /* nn.Conv2d(cin, cout, k, padding=k/2, stride) */
    int cin, cout, k, stride;
    float *U;                        /* 3x3 stride 1: Winograd-packed (k_wino_pack), else NULL */
    float *w;                        /* otherwise: (cout, cin, k, k) */
    float *b;                        /* (cout), or NULL: no bias */
} taesd_conv;

typedef enum { TL_CONV, TL_BLOCK, TL_RELU, TL_UP } taesd_kind;

typedef struct taesd_layer {
    taesd_kind kind;
    taesd_conv conv[3];              /* TL_CONV: conv[0]; TL_BLOCK: .conv.0, .conv.2, .conv.4 */
    taesd_conv skip;                 /* TL_BLOCK: .skip (cout, cin, 1, 1), no bias; cout 0: identity */
} taesd_layer;

typedef struct taesd_net {           /* DecoderTiny.layers / EncoderTiny.layers */
    int n;                           /* layers; 0: this half is not in the file */
    taesd_layer L[TAESD_MAX_LAYERS];
    int cin, cout;                   /* channels in (E or 3) and out (3 or E) */
    int steps;                       /* resampling steps (up in the decoder, down in the encoder) */
} taesd_net;

struct sdc_taesd {
    taesd_net dec, enc;
    sdc_taesd_tap tap;
    void *tap_user;
};

typedef struct taesd_binder {
    const sdc_store *st;
    const char *pre;                 /* "decoder.layers.", "encoder.layers." or "" (standalone) */
    int offset;                      /* file index = diffusers index + offset (1: standalone decoder) */
    int decoder;
    const char *what;                /* "decoder" / "encoder", for messages */
    sdc_err *e;
} taesd_binder;

static void conv_free(taesd_conv *c) {
    free(c->U);
    free(c->w);
    free(c->b);
}

static void net_free(taesd_net *n) {
    for (int i = 0; i < n->n; i++) {
        for (int j = 0; j < 3; j++) conv_free(&n->L[i].conv[j]);
        conv_free(&n->L[i].skip);
    }
}

void sdc_taesd_free(sdc_taesd *t) {
    if (!t) return;
    net_free(&t->dec);
    net_free(&t->enc);
    free(t);
}

static const sdc_tensor *get_t(const taesd_binder *b, int idx, const char *suffix) {
    return sdc_store_getf(b->st, "%s%d%s", b->pre, idx + b->offset, suffix);
}

/* t as a new f32 array, checked to be a float tensor of ndim dims whose sizes equal want[] (a
 * want < 0 accepts any size in 1 .. TAESD_MAX_CHANNELS and receives it). NULL with e set. */
static float *read_t(const taesd_binder *b, const sdc_tensor *t, int ndim, int64_t *want) {
    int ok = t->ndim == ndim && sdc_dtype_is_float(t->dtype);
    for (int i = 0; ok && i < ndim; i++)
        ok = want[i] < 0 ? t->shape[i] > 0 && t->shape[i] <= TAESD_MAX_CHANNELS : t->shape[i] == want[i];
    if (!ok) {
        char exp[96] = "";
        for (int i = 0; i < ndim; i++) {
            size_t l = strlen(exp);
            if (want[i] < 0) snprintf(exp + l, sizeof exp - l, "%s?", i ? "," : "");
            else snprintf(exp + l, sizeof exp - l, "%s%lld", i ? "," : "", (long long)want[i]);
        }
        sdc_errf(b->e, "taesd: tensor %s is %s with %d dims, the %s expects a float [%s]", t->name,
                 sdc_dtype_name(t->dtype), t->ndim, b->what, exp);
        return NULL;
    }
    for (int i = 0; i < ndim; i++) want[i] = t->shape[i];
    float *f = malloc((size_t)t->numel * sizeof *f);
    if (!f) { sdc_errf(b->e, "taesd: out of memory binding %s", t->name); return NULL; }
    if (sdc_tensor_to_f32(t, f, b->e)) {
        free(f);
        sdc_err_prefix(b->e, "taesd: %s", t->name);
        return NULL;
    }
    return f;
}

/* Conv `idx` + suffix ("" or ".conv.0") from cin channels; cout < 0 reads it. bias: 1 required,
 * 0 absent, -1 optional (taken when stored). 3x3 stride-1 weights are Winograd-packed. */
static int bind_conv(const taesd_binder *b, taesd_conv *c, int idx, const char *suffix, int cin, int cout,
                     int k, int stride, int bias) {
    char n[64];
    snprintf(n, sizeof n, "%s.weight", suffix);
    const sdc_tensor *wt = get_t(b, idx, n);
    if (!wt) return sdc_errf(b->e, "taesd: missing tensor %s%d%s", b->pre, idx + b->offset, n);
    int64_t want[4] = {cout, cin, k, k};
    float *w = read_t(b, wt, 4, want);
    if (!w) return -1;
    *c = (taesd_conv){.cin = cin, .cout = (int)want[0], .k = k, .stride = stride, .w = w};
    snprintf(n, sizeof n, "%s.bias", suffix);
    const sdc_tensor *bt = bias ? get_t(b, idx, n) : NULL;
    if (bias == 1 && !bt) return sdc_errf(b->e, "taesd: missing tensor %s%d%s", b->pre, idx + b->offset, n);
    int64_t wb[1] = {c->cout};
    if (bt && !(c->b = read_t(b, bt, 1, wb))) return -1;
    if (k == 3 && stride == 1) {
        c->U = malloc(k_wino_packed_floats(c->cout, cin) * sizeof(float));
        if (!c->U) return sdc_errf(b->e, "taesd: out of memory binding %s", wt->name);
        k_wino_pack(c->U, c->w, c->cout, cin);
        free(c->w);
        c->w = NULL;
    }
    return 0;
}

/* AutoencoderTinyBlock `idx` from *c channels: conv.0 (c → co), conv.2, conv.4 (co → co), all with
 * bias; .skip (co, c, 1, 1) without bias, required when co != c. */
static int bind_block(const taesd_binder *b, taesd_layer *l, int idx, int *c) {
    l->kind = TL_BLOCK;
    if (bind_conv(b, &l->conv[0], idx, ".conv.0", *c, -1, 3, 1, 1)) return -1;
    const int co = l->conv[0].cout;
    if (bind_conv(b, &l->conv[1], idx, ".conv.2", co, co, 3, 1, 1) ||
        bind_conv(b, &l->conv[2], idx, ".conv.4", co, co, 3, 1, 1))
        return -1;
    if (get_t(b, idx, ".skip.weight")) {
        if (bind_conv(b, &l->skip, idx, ".skip", *c, co, 1, 1, 0)) return -1;
    } else if (co != *c) {
        return sdc_errf(b->e, "taesd: missing tensor %s%d.skip.weight (the block maps %d to %d channels)",
                        b->pre, idx + b->offset, *c, co);
    }
    *c = co;
    return 0;
}

/* The highest diffusers index of a layer with weights under the binder's prefix, or -1. */
static int last_layer(const taesd_binder *b) {
    const size_t pl = strlen(b->pre);
    int hi = -1;
    for (size_t i = 0; i < sdc_store_count(b->st); i++) {
        const char *name = sdc_store_at(b->st, i)->name;
        if (strncmp(name, b->pre, pl) || name[pl] < '0' || name[pl] > '9') continue;
        char *end;
        long v = strtol(name + pl, &end, 10);
        if (*end != '.' || v > 1000) continue;
        if ((int)v - b->offset > hi) hi = (int)v - b->offset;
    }
    return hi;
}

/* Layers 0 .. last of one half. A layer without weights is the decoder's ReLU after its first
 * conv, or its 2x upsample when a conv without bias follows; a conv without bias is the encoder's
 * stride-2 downsample. */
static int bind_net(const taesd_binder *b, taesd_net *net) {
    const int last = last_layer(b);
    if (last < 0) return 0;
    if (last >= TAESD_MAX_LAYERS)
        return sdc_errf(b->e, "taesd: the %s has %d layers (at most %d)", b->what, last + 1, TAESD_MAX_LAYERS);
    const sdc_tensor *w0 = get_t(b, 0, ".weight");
    if (!w0)
        return sdc_errf(b->e, "taesd: missing tensor %s%d.weight (the %s's first conv)", b->pre, b->offset, b->what);
    int c = w0->ndim == 4 && w0->shape[1] > 0 && w0->shape[1] <= TAESD_MAX_CHANNELS ? (int)w0->shape[1] : 1;
    /* (a bad first shape is reported by bind_conv below) */
    net->cin = c;
    for (int i = 0; i <= last; i++) {
        taesd_layer *l = &net->L[i];
        net->n = i + 1;
        if (get_t(b, i, ".conv.0.weight")) {
            if (bind_block(b, l, i, &c)) return -1;
        } else if (get_t(b, i, ".weight")) {
            const int has_bias = get_t(b, i, ".bias") != NULL;
            const int down = !b->decoder && !has_bias && i > 0;
            if (b->decoder && !has_bias && (i == 0 || net->L[i - 1].kind != TL_UP))
                return sdc_errf(b->e, "taesd: %s%d.weight: a decoder conv without bias must follow an upsample",
                                b->pre, i + b->offset);
            l->kind = TL_CONV;
            if (bind_conv(b, &l->conv[0], i, "", c, -1, 3, down ? 2 : 1, has_bias)) return -1;
            c = l->conv[0].cout;
            net->steps += down;
        } else if (b->decoder && i > 0 && i < last) {
            const sdc_tensor *nx = get_t(b, i + 1, ".weight");
            l->kind = nx && !get_t(b, i + 1, ".bias") ? TL_UP : TL_RELU;
            net->steps += l->kind == TL_UP;
        } else {
            return sdc_errf(b->e, "taesd: the %s has no weights for its layer %s%d", b->what, b->pre, i + b->offset);
        }
    }
    if (net->L[last].kind != TL_CONV)
        return sdc_errf(b->e, "taesd: the %s's last layer %s%d is not a conv", b->what, b->pre, last + b->offset);
    net->cout = c;
    if (net->steps > 10)
        return sdc_errf(b->e, "taesd: the %s resamples %d times (at most 10)", b->what, net->steps);
    return 0;
}

sdc_taesd *sdc_taesd_load(const sdc_store *st, sdc_err *e) {
    sdc_taesd *t = calloc(1, sizeof *t);
    if (!t) { sdc_errf(e, "taesd: out of memory"); return NULL; }
    taesd_binder dec = {st, "decoder.layers.", 0, 1, "decoder", e}, enc = {st, "encoder.layers.", 0, 0, "encoder", e};
    if (!sdc_store_count_prefix(st, "decoder.layers.") && !sdc_store_count_prefix(st, "encoder.layers.")) {
        /* standalone: taesd_decoder (layer 0 the clamp: 1.weight first) or taesd_encoder (0.weight) */
        dec.pre = enc.pre = "";
        dec.offset = 1;
        if (sdc_store_get(st, "0.weight")) dec.pre = NULL;
        else if (sdc_store_get(st, "1.weight")) enc.pre = NULL;
        else {
            sdc_errf(e, "taesd: no TAESD weights (no decoder.layers.* / encoder.layers.* tensors, nor a "
                        "standalone taesd_decoder / taesd_encoder file)");
            goto fail;
        }
    }
    if ((dec.pre && bind_net(&dec, &t->dec)) || (enc.pre && bind_net(&enc, &t->enc))) goto fail;
    if (!t->dec.n && !t->enc.n) {
        sdc_errf(e, "taesd: no TAESD layers found");
        goto fail;
    }
    if (t->dec.n && t->dec.cout != 3)
        { sdc_errf(e, "taesd: the decoder makes %d channels, not 3 (RGB)", t->dec.cout); goto fail; }
    if (t->enc.n && t->enc.cin != 3)
        { sdc_errf(e, "taesd: the encoder takes %d channels, not 3 (RGB)", t->enc.cin); goto fail; }
    if (t->dec.n && t->enc.n && (t->dec.cin != t->enc.cout || t->dec.steps != t->enc.steps)) {
        sdc_errf(e, "taesd: the decoder takes %d latent channels at 1/%d scale, the encoder makes %d at 1/%d",
                 t->dec.cin, 1 << t->dec.steps, t->enc.cout, 1 << t->enc.steps);
        goto fail;
    }
    return t;
fail:
    sdc_taesd_free(t);
    return NULL;
}

int sdc_taesd_has_decoder(const sdc_taesd *t) { return t->dec.n > 0; }
int sdc_taesd_has_encoder(const sdc_taesd *t) { return t->enc.n > 0; }
int sdc_taesd_latent_channels(const sdc_taesd *t) { return t->dec.n ? t->dec.cin : t->enc.cout; }
int sdc_taesd_downscale(const sdc_taesd *t) { return 1 << (t->dec.n ? t->dec.steps : t->enc.steps); }
void sdc_taesd_set_tap(sdc_taesd *t, sdc_taesd_tap tap, void *user) { t->tap = tap; t->tap_user = user; }

/* ---------------------------------------------------------------------------------------------
 * Forward */

/* The largest activation (floats) the net makes from a C x H x W input. */
static size_t net_max_floats(const taesd_net *net, int H, int W) {
    size_t m = (size_t)net->cin * H * W;
    int C = net->cin;
    for (int i = 0; i < net->n; i++) {
        const taesd_layer *l = &net->L[i];
        if (l->kind == TL_UP) { H *= 2; W *= 2; }
        if (l->kind == TL_CONV && l->conv[0].stride == 2) { H = (H - 1) / 2 + 1; W = (W - 1) / 2 + 1; }
        if (l->kind == TL_CONV || l->kind == TL_BLOCK) C = l->conv[0].cout;
        if ((size_t)C * H * W > m) m = (size_t)C * H * W;
    }
    return m;
}

static double conv_flops(const taesd_conv *c, int Ho, int Wo) {
    return c->cout ? 2.0 * c->cout * c->cin * c->k * c->k * Ho * Wo : 0.0;
}

double sdc_taesd_decode_flops(const sdc_taesd *t, int h, int w) {
    double f = 0;
    for (int i = 0; i < t->dec.n; i++) {
        const taesd_layer *l = &t->dec.L[i];
        if (l->kind == TL_UP) { h *= 2; w *= 2; }
        if (l->kind == TL_CONV) f += conv_flops(&l->conv[0], h, w);
        if (l->kind == TL_BLOCK)
            for (int j = 0; j < 3; j++) f += conv_flops(&l->conv[j], h, w) + (j ? 0 : conv_flops(&l->skip, h, w));
    }
    return f;
}

/* out[cout,H',W'] = c(in[cin,H,W]) (+ res, stride 1 only; res may equal out, out != in). 0, or
 * -1 when the arena cannot give the scratch. */
static int run_conv(sdc_arena *a, float *out, const float *in, const taesd_conv *c, const float *res, int H, int W) {
    if (c->U) return k_conv3x3_wino(a, out, in, c->U, c->b, res, 1, c->cin, H, W, c->cout) ? 0 : -1;
    const int p = c->k / 2;
    k_conv2d(a, out, in, c->w, c->b, 1, c->cin, H, W, c->cout, c->k, c->k, c->stride, p, p, p, p);
    return 0;
}

/* x (C x H x W, one image) through every layer of net; x, t1, t2 hold net_max_floats each. On
 * return *out is the buffer holding the result (one of the three) and C, H, W its shape. */
static int run_net(sdc_taesd *t, const taesd_net *net, const char *name, sdc_arena *a, float *x, float *t1,
                   float *t2, float **out, int *C, int *H, int *W) {
    char tn[48];
    for (int i = 0; i < net->n; i++) {
        const taesd_layer *l = &net->L[i];
        const size_t n = (size_t)*C * *H * *W;
        float *s;
        switch (l->kind) {
        case TL_RELU:
            k_relu(x, n);
            break;
        case TL_UP:                  /* nn.Upsample(scale_factor=2), nearest */
            k_upsample2x(t1, x, 1, *C, *H, *W);
            *H *= 2; *W *= 2;
            s = x; x = t1; t1 = s;
            break;
        case TL_CONV:
            if (run_conv(a, t1, x, &l->conv[0], NULL, *H, *W)) return -1;
            if (l->conv[0].stride == 2) { *H = (*H - 1) / 2 + 1; *W = (*W - 1) / 2 + 1; }
            *C = l->conv[0].cout;
            s = x; x = t1; t1 = s;
            break;
        case TL_BLOCK: {             /* relu(conv.4(relu(conv.2(relu(conv.0(x))))) + skip(x)) */
            const int co = l->conv[0].cout;
            if (run_conv(a, t1, x, &l->conv[0], NULL, *H, *W)) return -1;
            k_relu(t1, (size_t)co * *H * *W);
            if (run_conv(a, t2, t1, &l->conv[1], NULL, *H, *W)) return -1;
            k_relu(t2, (size_t)co * *H * *W);
            const float *res = x;
            if (l->skip.cout) { run_conv(a, t1, x, &l->skip, NULL, *H, *W); res = t1; }
            if (run_conv(a, t1, t2, &l->conv[2], res, *H, *W)) return -1;
            k_relu(t1, (size_t)co * *H * *W);
            *C = co;
            s = x; x = t1; t1 = s;
            break;
        }
        }
        if (t->tap) {
            snprintf(tn, sizeof tn, "%s.layers.%d", name, i);
            t->tap(t->tap_user, tn, x, *C, *H, *W);
        }
    }
    *out = x;
    return 0;
}

/* Three activation buffers of m floats from a (NULL with e set when it cannot grow). */
static float *buffers(sdc_arena *a, size_t m, sdc_err *e) {
    float *x = sdc_arena_f32(a, 3 * m);
    if (!x) sdc_errf(e, "taesd: out of memory (%zu MB of activations)", 3 * m * sizeof(float) >> 20);
    return x;
}

int sdc_taesd_decode(sdc_taesd *t, sdc_arena *a, float *img, const float *z, int N, int h, int w, sdc_err *e) {
    const taesd_net *net = &t->dec;
    if (!net->n) return sdc_errf(e, "taesd: the file has no decoder");
    const int f = 1 << net->steps;
    if (N <= 0 || h <= 0 || w <= 0 || (long)h * f > TAESD_MAX_SIDE || (long)w * f > TAESD_MAX_SIDE)
        return sdc_errf(e, "taesd: cannot decode %d latents of %dx%d (images up to %d pixels a side)", N, h, w,
                        TAESD_MAX_SIDE);
    const int E = net->cin;
    const size_t m = net_max_floats(net, h, w), nz = (size_t)E * h * w, ni = (size_t)3 * h * f * w * f;
    sdc_arena_mark mk = sdc_arena_get_mark(a);
    float *x = buffers(a, m, e);
    int rc = x ? 0 : -1;
    for (int n = 0; n < N && !rc; n++) {
        const float *zn = z + n * nz;
        for (size_t i = 0; i < nz; i++) x[i] = tanhf(zn[i] / 3.0f) * 3.0f;   /* DecoderTiny's clamp */
        if (t->tap) t->tap(t->tap_user, "decoder.layers_input", x, E, h, w);
        float *o;
        int C = E, H = h, W = w;
        rc = run_net(t, net, "decoder", a, x, x + m, x + 2 * m, &o, &C, &H, &W);
        if (rc) { sdc_errf(e, "taesd: out of memory (conv scratch)"); break; }
        float *d = img + n * ni;
        for (size_t i = 0; i < ni; i++) d[i] = o[i] * 2.0f - 1.0f;          /* [0,1] -> [-1,1] */
    }
    sdc_arena_reset(a, mk);
    return rc;
}

int sdc_taesd_encode(sdc_taesd *t, sdc_arena *a, float *lat, const float *img, int N, int H, int W, sdc_err *e) {
    const taesd_net *net = &t->enc;
    if (!net->n) return sdc_errf(e, "taesd: the file has no encoder");
    const int f = 1 << net->steps;
    if (N <= 0 || H <= 0 || W <= 0 || H % f || W % f || H > TAESD_MAX_SIDE || W > TAESD_MAX_SIDE)
        return sdc_errf(e, "taesd: cannot encode %d images of %dx%d (sides multiples of %d, at most %d)", N, H, W,
                        f, TAESD_MAX_SIDE);
    const size_t m = net_max_floats(net, H, W), ni = (size_t)3 * H * W, nl = (size_t)net->cout * (H / f) * (W / f);
    sdc_arena_mark mk = sdc_arena_get_mark(a);
    float *x = buffers(a, m, e);
    int rc = x ? 0 : -1;
    for (int n = 0; n < N && !rc; n++) {
        const float *in = img + n * ni;
        for (size_t i = 0; i < ni; i++) x[i] = (in[i] + 1.0f) / 2.0f;         /* [-1,1] -> [0,1] */
        float *o;
        int C = 3, Ho = H, Wo = W;
        rc = run_net(t, net, "encoder", a, x, x + m, x + 2 * m, &o, &C, &Ho, &Wo);
        if (rc) { sdc_errf(e, "taesd: out of memory (conv scratch)"); break; }
        memcpy(lat + n * nl, o, nl * sizeof(float));
    }
    sdc_arena_reset(a, mk);
    return rc;
}
