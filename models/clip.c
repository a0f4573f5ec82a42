/* clip.c — the SD text encoders: transformers CLIPTextModel (SD 1.x) and open_clip's text
 * Transformer (SD 2.x), bound from the tensor store and run as plain kernel calls. The layers'
 * matrices stay the store's views: each Linear streams its weight a cache-sized panel of rows at
 * a time (sdc_weight_linear), so binding them costs nothing at load. The token table and the
 * vectors are f32 copies; in low-mem mode (sdc_clip_params.low_mem) the token table stays a view
 * too, widened one row per id, and the matrices' pages leave the RSS after each layer
 * (models/weight.h); the output bits are the same.
 *
 * Both towers are the same pre-LN transformer; they differ in names (q/k/v_proj vs a fused
 * in_proj), activation (quick-GELU vs erf GELU) and which layer feeds the final layer norm.
 * The loader fuses SD 1.x's q/k/v into one [3C,C] projection so one graph serves both. */
#include "models/clip.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "models/weight.h"

/* A text tower deeper than this is not a CLIP we know (ViT-bigG/14 has 32 layers); the limit
 * only bounds the layer table and the name scan. */
#define CLIP_MAX_LAYERS 256
/* Ids per window: CLIP's context is 77; a position table larger than this is not a CLIP. */
#define CLIP_MAX_POSITIONS 4096
/* Widths: ViT-bigG/14's text tower is 1280 wide with an MLP of 5120; these bounds keep every
 * size product (3C*C, n*F) far from overflow. */
#define CLIP_MAX_WIDTH 65536
#define CLIP_MAX_MLP (4 * CLIP_MAX_WIDTH)
#define CLIP_LN_EPS 1e-5f

/* ---------------------------------------------------------------------------------------------
 * Weights */

typedef struct clip_layer {          /* CLIPEncoderLayer / ResidualAttentionBlock */
    float *ln1_g, *ln1_b;            /* (C) layer_norm1 / ln_1 */
    sdc_weight qkv_w; float *qkv_b;  /* (3C, C), (3C): q, k, v stacked (in_proj_weight) */
    sdc_weight out_w; float *out_b;  /* (C, C), (C): self_attn.out_proj / attn.out_proj */
    float *ln2_g, *ln2_b;            /* (C) layer_norm2 / ln_2 */
    sdc_weight fc1_w; float *fc1_b;  /* (F, C), (F): mlp.fc1 / mlp.c_fc */
    sdc_weight fc2_w; float *fc2_b;  /* (C, F), (C): mlp.fc2 / mlp.c_proj */
} clip_layer;

struct sdc_clip {
    int openclip;                    /* 1: cond_stage_model.model.* (SD 2.x) */
    int V, P, C, F, L, H;            /* vocab, positions, width, MLP width, layers, heads */
    int act;                         /* sdc_text_act */
    float *tok_emb;                  /* (V, C) token_embedding.weight; NULL in low-mem mode: */
    const sdc_tensor *tok_view;      /*   then rows are widened from the store's view per id */
    float *pos_emb;                  /* (P, C) position_embedding.weight / positional_embedding */
    clip_layer *layers;              /* (L) */
    float *lnf_g, *lnf_b;            /* (C) final_layer_norm / ln_final */
    float *proj;                     /* (C, Pj) OpenCLIP text_projection (pooled @ proj), or NULL */
    int Pj;                          /* its columns; 0 without one */
    sdc_clip_tap tap;                /* optional: sees hidden_states.i */
    void *tap_user;
    float **owned;                   /* every malloc'd weight, freed by sdc_clip_free */
    size_t n_owned, cap_owned;
    size_t weight_bytes;             /* bytes of all owned weights */
    int low_mem;                     /* 1: matrices (sdc_weight) and token table are views */
    sdc_lora_set *lora;              /* while loading: LoRA deltas to merge, or NULL */
    const sdc_store *st;             /* the store they live in (low-mem), else NULL */
};

/* The names of the weights in each layout, relative to the tower's prefix. */
typedef struct clip_names {
    const char *tok, *pos, *layer, *ln1, *ln2, *out, *fc1, *fc2, *lnf;
} clip_names;

static const clip_names HF_NAMES = {
    "embeddings.token_embedding.weight", "embeddings.position_embedding.weight",
    "encoder.layers.%d.", "layer_norm1", "layer_norm2", "self_attn.out_proj", "mlp.fc1",
    "mlp.fc2", "final_layer_norm"};
static const clip_names OPENCLIP_NAMES = {
    "token_embedding.weight", "positional_embedding", "transformer.resblocks.%d.", "ln_1",
    "ln_2", "attn.out_proj", "mlp.c_fc", "mlp.c_proj", "ln_final"};

/* Where the towers live: the SD single-file prefixes first, then bare transformers files. */
static const char *const HF_PREFIXES[] = {"cond_stage_model.transformer.text_model.",
                                          "text_encoder.text_model.", "text_model."};
static const char *const OPENCLIP_PREFIXES[] = {"cond_stage_model.model."};

static float *own(sdc_clip *c, size_t n) {
    if (c->n_owned == c->cap_owned) {
        size_t nc = c->cap_owned ? 2 * c->cap_owned : 64;
        float **p = realloc(c->owned, nc * sizeof *p);
        if (!p) return NULL;
        c->owned = p;
        c->cap_owned = nc;
    }
    float *w = n > SIZE_MAX / sizeof(float) ? NULL : malloc(n ? n * sizeof(float) : 1);
    if (w) c->owned[c->n_owned++] = w;
    if (w) c->weight_bytes += n * sizeof(float);
    return w;
}

/* Tensor `name`, checked to be a float [want[0], ..., want[ndim-1]]; a want < 0 accepts any
 * size and receives the size found. Returns NULL with e set ("text encoder: NAME: ..."). */
static const sdc_tensor *check(const sdc_store *st, sdc_err *e, const char *name, int ndim,
                               int64_t *want) {
    const sdc_tensor *t = sdc_store_get(st, name);
    if (!t) { sdc_errf(e, "text encoder: missing tensor %s", name); return NULL; }
    int ok = t->ndim == ndim && sdc_dtype_is_float(t->dtype);
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 ? t->shape[i] > 0 : t->shape[i] == want[i];
    if (!ok) {
        char got[128] = "", exp[128] = "";
        for (int i = 0; i < t->ndim && i < SDC_MAX_DIMS; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++) {
            if (want[i] < 0) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s?", i ? "," : "");
            else snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? "," : "",
                          (long long)want[i]);
        }
        sdc_errf(e, "text encoder: tensor %s is %s [%s], the graph expects a float [%s]", name,
                 sdc_dtype_name(t->dtype), got, exp);
        return NULL;
    }
    for (int i = 0; i < ndim; i++) want[i] = t->shape[i];
    return t;
}

/* dst = t as f32; then t's file pages leave the RSS (nothing reads them again). */
static int convert(const sdc_store *st, const sdc_tensor *t, float *dst, sdc_err *e) {
    int rc = sdc_tensor_to_f32(t, dst, e);
    sdc_store_release_tensor(st, t);
    return rc ? sdc_err_prefix(e, "text encoder: %s", t->name) : 0;
}

/* check(), then an owned f32 copy. Returns NULL with e set. */
static float *bind(sdc_clip *c, const sdc_store *st, sdc_err *e, const char *name, int ndim,
                   int64_t *want) {
    const sdc_tensor *t = check(st, e, name, ndim, want);
    if (!t) return NULL;
    float *w = own(c, (size_t)t->numel);
    if (!w) { sdc_errf(e, "text encoder: out of memory binding %s", name); return NULL; }
    return convert(st, t, w, e) ? NULL : w;
}

/* A matrix made of the n checked tensors t stacked by rows: the views themselves (with their
 * LoRA deltas), kept mapped unless low-mem. Returns 0, or -1 with e set. */
static int bind_big(sdc_clip *c, const sdc_store *st, sdc_err *e, sdc_weight *w,
                    const sdc_tensor *const *t, int n) {
    if (sdc_weight_bind(w, NULL, st, t, n, c->lora, e)) return sdc_err_prefix(e, "text encoder");
    w->keep = !c->low_mem;
    return 0;
}

/* bind() of a vector [n]; bind_big() of one matrix [r, k]; names printf-formatted. */
static float *bind_vec(sdc_clip *c, const sdc_store *st, sdc_err *e, int64_t n,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static float *bind_vec(sdc_clip *c, const sdc_store *st, sdc_err *e, int64_t n,
                       const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t want[1] = {n};
    return bind(c, st, e, name, 1, want);
}
static const sdc_tensor *check_mat(const sdc_store *st, sdc_err *e, int64_t r, int64_t k,
                                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static const sdc_tensor *check_mat(const sdc_store *st, sdc_err *e, int64_t r, int64_t k,
                                   const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t want[2] = {r, k};
    return check(st, e, name, 2, want);
}
static int bind_mat(sdc_clip *c, const sdc_store *st, sdc_err *e, sdc_weight *w, int64_t r,
                    int64_t k, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int bind_mat(sdc_clip *c, const sdc_store *st, sdc_err *e, sdc_weight *w, int64_t r,
                    int64_t k, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t want[2] = {r, k};
    const sdc_tensor *t = check(st, e, name, 2, want);
    return t ? bind_big(c, st, e, w, &t, 1) : -1;
}

/* Binds one layer. SD 1.x's separate q/k/v projections are stacked into qkv (rows q, k, v: the
 * order of open_clip's in_proj_weight). */
static int bind_layer(sdc_clip *c, const sdc_store *st, const char *pre, const clip_names *nm,
                      int l, sdc_err *e) {
    clip_layer *y = &c->layers[l];
    const int64_t C = c->C, F = c->F;
    char lp[512];
    snprintf(lp, sizeof lp, "%s", pre);
    snprintf(lp + strlen(lp), sizeof lp - strlen(lp), nm->layer, l);
    if (!(y->ln1_g = bind_vec(c, st, e, C, "%s%s.weight", lp, nm->ln1)) ||
        !(y->ln1_b = bind_vec(c, st, e, C, "%s%s.bias", lp, nm->ln1)) ||
        !(y->ln2_g = bind_vec(c, st, e, C, "%s%s.weight", lp, nm->ln2)) ||
        !(y->ln2_b = bind_vec(c, st, e, C, "%s%s.bias", lp, nm->ln2)) ||
        bind_mat(c, st, e, &y->out_w, C, C, "%s%s.weight", lp, nm->out) ||
        !(y->out_b = bind_vec(c, st, e, C, "%s%s.bias", lp, nm->out)) ||
        bind_mat(c, st, e, &y->fc1_w, F, C, "%s%s.weight", lp, nm->fc1) ||
        !(y->fc1_b = bind_vec(c, st, e, F, "%s%s.bias", lp, nm->fc1)) ||
        bind_mat(c, st, e, &y->fc2_w, C, F, "%s%s.weight", lp, nm->fc2) ||
        !(y->fc2_b = bind_vec(c, st, e, C, "%s%s.bias", lp, nm->fc2)))
        return -1;
    if (c->openclip) {
        if (bind_mat(c, st, e, &y->qkv_w, 3 * C, C, "%sattn.in_proj_weight", lp) ||
            !(y->qkv_b = bind_vec(c, st, e, 3 * C, "%sattn.in_proj_bias", lp)))
            return -1;
        return 0;
    }
    if (!(y->qkv_b = own(c, (size_t)(3 * C))))
        return sdc_errf(e, "text encoder: out of memory binding layer %d", l);
    static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
    const sdc_tensor *w[3];
    for (int j = 0; j < 3; j++) {
        w[j] = check_mat(st, e, C, C, "%sself_attn.%s.weight", lp, qkv[j]);
        float *b = w[j] ? bind_vec(c, st, e, C, "%sself_attn.%s.bias", lp, qkv[j]) : NULL;
        if (!b) return -1;
        memcpy(y->qkv_b + j * C, b, (size_t)C * sizeof(float));
    }
    return bind_big(c, st, e, &y->qkv_w, w, 3);
}

/* The tower's prefix and layout, or NULL when st holds no text encoder. want: the caller's
 * prefix (either layout under it), or NULL to search the SD 1.x/2.x prefixes. */
static const char *find_tower(const sdc_store *st, const char *want, int *openclip) {
    char name[512];
    if (want) {
        snprintf(name, sizeof name, "%s%s", want, HF_NAMES.tok);
        if (sdc_store_get(st, name)) { *openclip = 0; return want; }
        snprintf(name, sizeof name, "%s%s", want, OPENCLIP_NAMES.tok);
        if (sdc_store_get(st, name)) { *openclip = 1; return want; }
        return NULL;
    }
    for (size_t i = 0; i < sizeof HF_PREFIXES / sizeof *HF_PREFIXES; i++) {
        snprintf(name, sizeof name, "%s%s", HF_PREFIXES[i], HF_NAMES.tok);
        if (sdc_store_get(st, name)) { *openclip = 0; return HF_PREFIXES[i]; }
    }
    for (size_t i = 0; i < sizeof OPENCLIP_PREFIXES / sizeof *OPENCLIP_PREFIXES; i++) {
        snprintf(name, sizeof name, "%s%s", OPENCLIP_PREFIXES[i], OPENCLIP_NAMES.tok);
        if (sdc_store_get(st, name)) { *openclip = 1; return OPENCLIP_PREFIXES[i]; }
    }
    return NULL;
}

sdc_clip *sdc_clip_load(const sdc_store *st, const sdc_clip_params *p, sdc_err *e) {
    int openclip = 0;
    const char *want = p ? p->prefix : NULL;
    const char *pre = st ? find_tower(st, want, &openclip) : NULL;
    if (!pre && want) {
        sdc_errf(e, "text encoder: no tensor %s%s or %s%s", want, HF_NAMES.tok, want, OPENCLIP_NAMES.tok);
        return NULL;
    }
    if (!pre) {
        sdc_errf(e, "text encoder: the model has no text encoder (no tensor "
                    "cond_stage_model.transformer.text_model.%s or cond_stage_model.model.%s)",
                 HF_NAMES.tok, OPENCLIP_NAMES.tok);
        return NULL;
    }
    sdc_clip *c = calloc(1, sizeof *c);
    if (!c) { sdc_errf(e, "text encoder: out of memory"); return NULL; }
    c->openclip = openclip;
    const clip_names *nm = openclip ? &OPENCLIP_NAMES : &HF_NAMES;
    char name[512];

    /* Embeddings: V, C from the token table; P from the position table. */
    c->low_mem = p && p->low_mem;
    c->lora = p ? p->lora : NULL;
    c->st = c->low_mem ? st : NULL;
    int64_t tok[2] = {-1, -1}, pos[2] = {-1, -1};
    snprintf(name, sizeof name, "%s%s", pre, nm->tok);
    if (c->low_mem ? !(c->tok_view = check(st, e, name, 2, tok))
                   : !(c->tok_emb = bind(c, st, e, name, 2, tok)))
        goto fail;
    if (tok[0] > INT32_MAX || tok[1] > CLIP_MAX_WIDTH) {
        sdc_errf(e, "text encoder: %s is too large (width at most %d)", name, CLIP_MAX_WIDTH);
        goto fail;
    }
    c->V = (int)tok[0];
    c->C = (int)tok[1];
    pos[1] = c->C;
    snprintf(name, sizeof name, "%s%s", pre, nm->pos);
    if (!(c->pos_emb = bind(c, st, e, name, 2, pos))) goto fail;
    if (pos[0] > CLIP_MAX_POSITIONS) {
        sdc_errf(e, "text encoder: %s has %lld positions (at most %d)", name,
                 (long long)pos[0], CLIP_MAX_POSITIONS);
        goto fail;
    }
    c->P = (int)pos[0];

    /* Depth: count the layers; MLP width from the first layer's fc1. */
    char lp[512];
    for (c->L = 0; c->L <= CLIP_MAX_LAYERS; c->L++) {
        snprintf(lp, sizeof lp, "%s", pre);
        snprintf(lp + strlen(lp), sizeof lp - strlen(lp), nm->layer, c->L);
        if (!sdc_store_getf(st, "%s%s.weight", lp, nm->ln1)) break;
    }
    if (c->L == 0 || c->L > CLIP_MAX_LAYERS) {
        sdc_errf(e, "text encoder: %d layers under %s (expected 1..%d)", c->L, pre,
                 CLIP_MAX_LAYERS);
        goto fail;
    }
    snprintf(lp, sizeof lp, "%s", pre);
    snprintf(lp + strlen(lp), sizeof lp - strlen(lp), nm->layer, 0);
    const sdc_tensor *fc1 = sdc_store_getf(st, "%s%s.weight", lp, nm->fc1);
    if (!fc1 || fc1->ndim != 2 || fc1->shape[0] <= 0 || fc1->shape[0] > CLIP_MAX_MLP) {
        sdc_errf(e, "text encoder: missing or malformed tensor %s%s.weight", lp, nm->fc1);
        goto fail;
    }
    c->F = (int)fc1->shape[0];

    /* What the weights cannot say: heads and activation. */
    c->H = p && p->n_heads > 0 ? p->n_heads : c->C / 64;
    if (c->H <= 0 || c->C % c->H != 0) {
        if (!(p && p->n_heads > 0))   /* nothing said how many: the convention does not fit */
            sdc_errf(e, "text encoder: width %d: the head count is unknown (the weights cannot tell it, "
                        "and CLIP's head width 64 does not divide %d)", c->C, c->C);
        else
            sdc_errf(e, "text encoder: width %d is not divisible into %d heads", c->C, c->H);
        goto fail;
    }
    c->act = p && p->act >= 0 ? p->act : (openclip ? SDC_ACT_GELU : SDC_ACT_QUICK_GELU);
    if (c->act != SDC_ACT_GELU && c->act != SDC_ACT_QUICK_GELU) {
        sdc_errf(e, "text encoder: unknown activation %d", c->act);
        goto fail;
    }

    if (!(c->layers = calloc((size_t)c->L, sizeof *c->layers))) {
        sdc_errf(e, "text encoder: out of memory");
        goto fail;
    }
    for (int l = 0; l < c->L; l++)
        if (bind_layer(c, st, pre, nm, l, e)) goto fail;
    if (!(c->lnf_g = bind_vec(c, st, e, c->C, "%s%s.weight", pre, nm->lnf)) ||
        !(c->lnf_b = bind_vec(c, st, e, c->C, "%s%s.bias", pre, nm->lnf)))
        goto fail;
    if (p && p->projection) {   /* OpenCLIP stores it [C, P] and applies pooled @ P */
        int64_t pj[2] = {c->C, -1};
        snprintf(name, sizeof name, "%stext_projection", pre);
        if (!c->openclip) {
            sdc_errf(e, "text encoder: %s: a projection is only read from an OpenCLIP tower", name);
            goto fail;
        }
        if (!(c->proj = bind(c, st, e, name, 2, pj))) goto fail;
        if (pj[1] > CLIP_MAX_WIDTH) {
            sdc_errf(e, "text encoder: %s is too wide (%lld columns)", name, (long long)pj[1]);
            goto fail;
        }
        c->Pj = (int)pj[1];
    }
    return c;
fail:
    sdc_clip_free(c);
    return NULL;
}

void sdc_clip_free(sdc_clip *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_owned; i++) free(c->owned[i]);
    free(c->owned);
    free(c->layers);
    free(c);
}

int sdc_clip_width(const sdc_clip *c) { return c->C; }
int sdc_clip_layers(const sdc_clip *c) { return c->L; }
int sdc_clip_is_openclip(const sdc_clip *c) { return c->openclip; }
int sdc_clip_positions(const sdc_clip *c) { return c->P; }
int sdc_clip_proj_dim(const sdc_clip *c) { return c->Pj; }
int sdc_clip_vocab(const sdc_clip *c) { return c->V; }
size_t sdc_clip_weight_bytes(const sdc_clip *c) { return c->weight_bytes; }

void sdc_clip_set_tap(sdc_clip *c, sdc_clip_tap tap, void *user) {
    c->tap = tap;
    c->tap_user = user;
}

/* ---------------------------------------------------------------------------------------------
 * Forward */

/* transformers CLIPTextEmbeddings: x[n,C] = token_embedding[ids] + position_embedding[0..n).
 * Low-mem: each id's row is widened from the store's view into row[C] (arena scratch). */
static void clip_text_embeddings(const sdc_clip *c, float *x, float *row, const int32_t *ids,
                                 const float *const *vecs, int n) {
    const int C = c->C;
    for (int i = 0; i < n; i++) {
        const float *t = vecs && vecs[i] ? vecs[i] : c->tok_emb ? c->tok_emb + (size_t)ids[i] * C : row;
        const float *p = c->pos_emb + (size_t)i * C;
        if (t == row) sdc_weight_widen(row, c->tok_view, (size_t)ids[i] * C, (size_t)C);
        for (int j = 0; j < C; j++) x[(size_t)i * C + j] = t[j] + p[j];
    }
    if (!c->tok_emb) sdc_store_release_tensor(c->st, c->tok_view);
}

/* transformers CLIPEncoderLayer = open_clip ResidualAttentionBlock (pre-LN, causal):
 * x[n,C] += out_proj(attention(ln1(x)));  x[n,C] += fc2(act(fc1(ln2(x)))). */
static int clip_encoder_layer(const sdc_clip *c, const clip_layer *y, sdc_arena *a, float *x, int n,
                         sdc_err *e) {
    const int C = c->C, F = c->F, H = c->H, D = C / H;
    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *h = sdc_arena_f32(a, (size_t)n * C);            /* (n, C) */
    float *qkv = sdc_arena_f32(a, (size_t)n * 3 * C);      /* (n, 3C) = q | k | v per row */
    float *att = sdc_arena_f32(a, (size_t)n * C);          /* (n, C) heads interleaved */
    float *mlp = sdc_arena_f32(a, (size_t)n * F);          /* (n, F) */
    /* the matrices stream from the views (sdc_weight_linear); the residual branches' last
     * Linears add straight into x (bias first, then the products) */
    int ok = h && qkv && att && mlp;
    if (ok) {   /* self-attention block */
        k_layer_norm(h, x, y->ln1_g, y->ln1_b, n, C, CLIP_LN_EPS);                 /* (n, C) */
        ok = sdc_weight_linear(a, qkv, h, &y->qkv_w, y->qkv_b, n, C, 3 * C, 0);    /* (n, 3C) */
    }
    if (ok) {
        k_attention(a, att, qkv, 3 * C, qkv + C, 3 * C, qkv + 2 * C, 3 * C,        /* (n, C) */
                    1, n, n, H, D, 1);
        ok = sdc_weight_linear(a, x, att, &y->out_w, y->out_b, n, C, C, 1);        /* x += (n, C) */
    }
    if (ok) {   /* MLP block */
        k_layer_norm(h, x, y->ln2_g, y->ln2_b, n, C, CLIP_LN_EPS);                 /* (n, C) */
        ok = sdc_weight_linear(a, mlp, h, &y->fc1_w, y->fc1_b, n, C, F, 0);        /* (n, F) */
    }
    if (ok) {
        if (c->act == SDC_ACT_GELU) k_gelu(mlp, (size_t)n * F);
        else k_quick_gelu(mlp, (size_t)n * F);
        ok = sdc_weight_linear(a, x, mlp, &y->fc2_w, y->fc2_b, n, F, C, 1);        /* x += (n, C) */
    }
    sdc_arena_reset(a, m);
    return ok ? 0 : sdc_errf(e, "text encoder: out of memory for activations");
}

/* transformers CLIPTextModel / open_clip text Transformer + ln_final (CLIPTextTransformer's
 * encoder loop stops early for clip skip; the final layer norm applies unless o->no_final_norm):
 * out[n,C] = final_ln(layers[0..stop)(tok_emb[ids] + pos_emb[0..n))). With o->pooled the
 * remaining layers run too: pooled = final_ln(layers[0..L)(...))[eos] @ text_projection. */
int sdc_clip_encode_ex(sdc_clip *c, sdc_arena *a, const int32_t *ids, int n_ids,
                       const sdc_clip_encode_opts *o, float *out, sdc_err *e) {
    const int C = c->C, n = n_ids;
    if (n < 1 || n > c->P)
        return sdc_errf(e, "text encoder: %d ids in a window (1..%d)", n, c->P);
    if (o->pooled && !c->proj)
        return sdc_errf(e, "text encoder: pooled output asked of a tower without text_projection");
    /* clip_skip k: output of layer L-k+1 (1-based). SD 2.x starts at the penultimate layer. */
    int k = o->clip_skip < 1 ? 1 : o->clip_skip;
    if (c->openclip && k < 2) k = 2;
    int stop = c->L - k + 1;
    if (stop < 1)
        return sdc_errf(e, "text encoder: clip skip %d needs more than the model's %d layers",
                        o->clip_skip, c->L);
    int eos = 0;   /* torch.argmax: the first position of the largest id */
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= c->V)
            return sdc_errf(e, "text encoder: token id %d at position %d is outside the "
                               "vocabulary (0..%d)", ids[i], i, c->V - 1);
        if (ids[i] > ids[eos]) eos = i;
    }

    sdc_arena_mark m = sdc_arena_get_mark(a);
    float *x = sdc_arena_f32(a, (size_t)n * C);                        /* (n, C) residual */
    float *lnr = o->pooled ? sdc_arena_f32(a, (size_t)C) : NULL;       /* (C) ln_final at eos */
    sdc_arena_mark mr = sdc_arena_get_mark(a);
    float *row = c->tok_emb ? NULL : sdc_arena_f32(a, (size_t)C);      /* (C) low-mem scratch */
    if (!x || (o->pooled && !lnr) || (!c->tok_emb && !row)) {
        sdc_arena_reset(a, m);
        return sdc_errf(e, "text encoder: out of memory for activations");
    }
    clip_text_embeddings(c, x, row, ids, o->vecs, n);                   /* (n, C) */
    sdc_arena_reset(a, mr);
    if (c->tap) c->tap(c->tap_user, 0, x, n, C);                       /* hidden_states.0 */
    int last = o->pooled ? c->L : stop;
    for (int l = 0; l < last; l++) {
        if (clip_encoder_layer(c, &c->layers[l], a, x, n, e)) { sdc_arena_reset(a, m); return -1; }
        if (c->tap) c->tap(c->tap_user, l + 1, x, n, C);               /* hidden_states.l+1 */
        if (l + 1 != stop) continue;
        if (o->no_final_norm) memcpy(out, x, sizeof(float) * (size_t)n * C);
        else k_layer_norm(out, x, c->lnf_g, c->lnf_b, n, C, CLIP_LN_EPS);   /* (n, C) */
    }
    if (o->pooled) {                                                   /* (Pj) = ln(x[eos]) @ proj */
        k_layer_norm(lnr, x + (size_t)eos * C, c->lnf_g, c->lnf_b, 1, C, CLIP_LN_EPS);
        k_sgemm(0, 0, 1, c->Pj, C, 1.0f, lnr, C, c->proj, c->Pj, 0.0f, o->pooled, c->Pj);
    }
    sdc_arena_reset(a, m);
    return 0;
}

int sdc_clip_encode(sdc_clip *c, sdc_arena *a, const int32_t *ids, int n_ids, int clip_skip,
                    float *out, sdc_err *e) {
    sdc_clip_encode_opts o = {.clip_skip = clip_skip};
    return sdc_clip_encode_ex(c, a, ids, n_ids, &o, out, e);
}
