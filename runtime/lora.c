/* lora.c — LoRA files: their tensors grouped into modules, each module mapped onto the model
 * weight it changes, its factors copied as f32. See lora.h. */
#include "runtime/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_CAP 512     /* module and weight names; longer ones are refused */

/* ─────────────────────────── a LoRA file's modules ─────────────────────────── */

enum { PART_DOWN, PART_UP, PART_ALPHA };
enum { FMT_KOHYA, FMT_DIFFUSERS, FMT_PEFT };

/* Tensor-name endings of the formats sdc merges: which factor, which format. */
static const struct { const char *suffix; int part, fmt; } SUFFIXES[] = {
    {".lora_down.weight", PART_DOWN, FMT_KOHYA},   {".lora_up.weight", PART_UP, FMT_KOHYA},
    {".lora_A.weight", PART_DOWN, FMT_PEFT},       {".lora_B.weight", PART_UP, FMT_PEFT},
    {".lora.down.weight", PART_DOWN, FMT_DIFFUSERS}, {".lora.up.weight", PART_UP, FMT_DIFFUSERS},
    {".lora_linear_layer.down.weight", PART_DOWN, FMT_DIFFUSERS},
    {".lora_linear_layer.up.weight", PART_UP, FMT_DIFFUSERS},
    {"_lora.down.weight", PART_DOWN, FMT_DIFFUSERS}, {"_lora.up.weight", PART_UP, FMT_DIFFUSERS},
    {".alpha", PART_ALPHA, -1},
};

/* Pieces of tensor names that mark network kinds sdc does not merge, and what they are. */
static const struct { const char *piece, *what; } REFUSED[] = {
    {".hada_", "LoHa (LyCORIS Hadamard product)"},   {".lokr_", "LoKr (LyCORIS Kronecker product)"},
    {".on_input", "(IA)^3 (LyCORIS)"},                {".oft_", "OFT (orthogonal finetuning)"},
    {".boft_", "BOFT (orthogonal finetuning)"},       {".dora_scale", "DoRA (weight-decomposed LoRA)"},
    {".lora_mid.", "LoCon with a CP-decomposed mid weight (lora_mid)"},
    {".a1.weight", "GLoRA"}, {".b1.weight", "GLoRA"},
    {".diff", "a full-weight difference (LyCORIS 'full')"},
    {".w_norm", "a norm-layer LyCORIS module"}, {".b_norm", "a norm-layer LyCORIS module"},
};

typedef struct raw_mod {
    char name[NAME_CAP];         /* module name as in the file (suffix removed) */
    int  comp;                   /* 'u' UNet, '1' text encoder (1), '2' second text encoder */
    char path[NAME_CAP];         /* module path in underscore form, without the component */
    int  fmt;
    const sdc_tensor *part[3];   /* down, up, alpha (NULL when absent) */
} raw_mod;

static int mod_cmp(const void *a, const void *b) {
    return strcmp(((const raw_mod *)a)->name, ((const raw_mod *)b)->name);
}

/* The component and underscore path of a module name, or 0 when the name is no LoRA module
 * path sdc knows. */
static int split_module(const char *name, int *comp, char *path, size_t cap) {
    static const struct { const char *pre; int comp, dotted; } PRE[] = {
        {"lora_unet_", 'u', 0}, {"lora_te1_", '1', 0}, {"lora_te2_", '2', 0}, {"lora_te_", '1', 0},
        {"unet.", 'u', 1}, {"text_encoder.", '1', 1}, {"text_encoder_2.", '2', 1}};
    for (size_t k = 0; k < sizeof PRE / sizeof *PRE; k++) {
        size_t l = strlen(PRE[k].pre);
        if (strncmp(name, PRE[k].pre, l)) continue;
        const char *s = name + l;
        if (strlen(s) >= cap || !*s) return 0;
        size_t o = 0;
        for (; *s; s++) {
            /* diffusers attention processors: "attn1.processor.to_q" is "attn1.to_q",
             * "processor.to_out" is "to_out.0" */
            if (PRE[k].dotted && !strncmp(s, ".processor.", 11)) { s += 10; continue; }
            path[o++] = *s == '.' ? '_' : *s;
        }
        path[o] = 0;
        if (PRE[k].dotted && o >= 7 && !strcmp(path + o - 7, "_to_out") && o + 2 < cap)
            strcpy(path + o, "_0");
        *comp = PRE[k].comp;
        return 1;
    }
    return 0;
}

static const char *fmt_name(int fmt) {
    return fmt == FMT_KOHYA ? "kohya" : fmt == FMT_PEFT ? "PEFT" : "diffusers";
}

/* Groups st's tensors into modules (sorted by name). Returns 0 with *out (malloc'd) and *n, or
 * -1 with e set: a refused kind, a tensor that is no LoRA part, a module without both factors,
 * a factor of a shape no LoRA has, ranks that disagree. */
static int read_modules(const sdc_store *st, const char *path, raw_mod **out, size_t *n, sdc_err *e) {
    size_t nt = sdc_store_count(st);
    raw_mod *m = calloc(nt ? nt : 1, sizeof *m);
    if (!m) return sdc_errf(e, "%s: out of memory", path);
    size_t nm = 0;
    for (size_t i = 0; i < nt; i++) {
        const sdc_tensor *t = sdc_store_at(st, i);
        for (size_t k = 0; k < sizeof REFUSED / sizeof *REFUSED; k++)
            if (strstr(t->name, REFUSED[k].piece)) {
                free(m);
                return sdc_errf(e, "%s: this is %s, which sdc does not merge (tensor %s); sdc merges "
                                "LoRA and LoCon (lora_down/lora_up/alpha, lora_A/lora_B)", path,
                                REFUSED[k].what, t->name);
            }
        size_t len = strlen(t->name), k = 0;
        for (; k < sizeof SUFFIXES / sizeof *SUFFIXES; k++) {
            size_t sl = strlen(SUFFIXES[k].suffix);
            if (len > sl && !strcmp(t->name + len - sl, SUFFIXES[k].suffix)) break;
        }
        if (k == sizeof SUFFIXES / sizeof *SUFFIXES) {
            free(m);
            return sdc_errf(e, "%s: tensor %s is not part of a LoRA sdc reads (kohya "
                            "lora_down/lora_up/alpha, diffusers or PEFT lora_A/lora_B)", path, t->name);
        }
        size_t ml = len - strlen(SUFFIXES[k].suffix);
        if (ml >= NAME_CAP) { free(m); return sdc_errf(e, "%s: tensor name too long: %.200s...", path, t->name); }
        raw_mod *r = &m[nm++];
        memcpy(r->name, t->name, ml);
        r->name[ml] = 0;
        r->fmt = SUFFIXES[k].fmt;
        r->part[SUFFIXES[k].part] = t;
    }
    /* one entry per tensor so far: sort by module name, then fold the parts together */
    qsort(m, nm, sizeof *m, mod_cmp);
    size_t w = 0;
    for (size_t i = 0; i < nm; i++) {
        if (w && !strcmp(m[w - 1].name, m[i].name)) {
            raw_mod *d = &m[w - 1];
            for (int p = 0; p < 3; p++) {
                if (!m[i].part[p]) continue;
                if (d->part[p]) {
                    sdc_errf(e, "%s: module %s has two %s tensors (%s, %s)", path, d->name,
                             p == PART_DOWN ? "down" : p == PART_UP ? "up" : "alpha",
                             d->part[p]->name, m[i].part[p]->name);
                    free(m);
                    return -1;
                }
                d->part[p] = m[i].part[p];
            }
            if (d->fmt < 0) d->fmt = m[i].fmt;
        } else {
            m[w++] = m[i];
        }
    }
    nm = w;
    if (!nm) { free(m); return sdc_errf(e, "%s: no LoRA modules in this file", path); }
    for (size_t i = 0; i < nm; i++) {
        raw_mod *r = &m[i];
        const sdc_tensor *dn = r->part[PART_DOWN], *up = r->part[PART_UP], *al = r->part[PART_ALPHA];
        const char *bad = NULL;
        if (!dn || !up) bad = !dn && !up ? "has an alpha but no factors" : !dn ? "has no down factor" : "has no up factor";
        else if (!split_module(r->name, &r->comp, r->path, sizeof r->path))
            bad = "is not under lora_unet_, lora_te_, lora_te1_, lora_te2_, unet., text_encoder. or text_encoder_2.";
        else if (!sdc_dtype_is_float(dn->dtype) || !sdc_dtype_is_float(up->dtype))
            bad = "has a factor that is not a float tensor";
        else if ((dn->ndim != 2 && dn->ndim != 4) || (up->ndim != 2 && up->ndim != 4))
            bad = "has a factor that is neither a matrix nor a conv kernel";
        else if (up->ndim == 4 && (up->shape[2] != 1 || up->shape[3] != 1))
            bad = "has an up factor that is not a 1x1 conv";
        else if (dn->shape[0] < 1 || dn->shape[0] > SDC_LORA_MAX_RANK)
            bad = "has a rank out of range (1..4096)";
        else if (up->shape[1] != dn->shape[0]) {
            sdc_errf(e, "%s: module %s: up %s has rank %lld but down %s has rank %lld", path,
                     r->name, up->name, (long long)up->shape[1], dn->name, (long long)dn->shape[0]);
            free(m);
            return -1;
        } else if (up->shape[0] < 1 || dn->numel / dn->shape[0] < 1)
            bad = "has an empty factor";
        else if (al && (al->numel != 1 || !sdc_dtype_is_float(al->dtype)))
            bad = "has an alpha that is not one float";
        if (bad) {
            sdc_errf(e, "%s: module %s %s", path, r->name, bad);
            free(m);
            return -1;
        }
    }
    *out = m;
    *n = nm;
    return 0;
}

static int read_alpha(const raw_mod *r, double *alpha) {
    *alpha = (double)r->part[PART_DOWN]->shape[0];
    if (!r->part[PART_ALPHA]) return 0;
    float a;
    sdc_err e;
    if (sdc_tensor_to_f32(r->part[PART_ALPHA], &a, &e) || !isfinite(a)) return -1;
    *alpha = a;
    return 0;
}

/* ─────────────────────────── the model's weights by underscore path ─────────────────────────── */

typedef struct wentry {
    char   path[NAME_CAP];       /* underscore form without the component prefix */
    int    comp;
    const sdc_tensor *t;
    int64_t row0, rows;
} wentry;

typedef struct windex { wentry *e; size_t n, cap; int R; } windex;

static int went_cmp(const void *a, const void *b) {
    const wentry *x = a, *y = b;
    return x->comp != y->comp ? x->comp - y->comp : strcmp(x->path, y->path);
}

static int widx_add(windex *w, int comp, const char *path, size_t len, const sdc_tensor *t,
                    int64_t row0, int64_t rows) {
    if (len >= NAME_CAP) return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 1024;
        wentry *p = realloc(w->e, cap * sizeof *p);
        if (!p) return -1;
        w->e = p;
        w->cap = cap;
    }
    wentry *x = &w->e[w->n++];
    for (size_t i = 0; i < len; i++) x->path[i] = path[i] == '.' ? '_' : path[i];
    x->path[len] = 0;
    x->comp = comp;
    x->t = t;
    x->row0 = row0;
    x->rows = rows;
    return 0;
}

/* Text encoders in the OpenCLIP layout fuse q|k|v into attn.in_proj_weight [3C, C] and name
 * the rest differently: entries under transformers' names, so one LoRA path serves both. */
static int add_openclip(windex *w, int comp, const char *rest, const sdc_tensor *t) {
    int l = -1, pos = 0;
    char tail[64];
    if (sscanf(rest, "transformer.resblocks.%d.%n", &l, &pos) != 1 || !pos || l < 0 || l > 999) return 0;
    snprintf(tail, sizeof tail, "%s", rest + pos);
    char p[96];
    if (!strcmp(tail, "attn.in_proj_weight") && t->ndim == 2 && t->shape[0] % 3 == 0) {
        static const char *const qkv[3] = {"q", "k", "v"};
        int64_t C = t->shape[0] / 3;
        for (int j = 0; j < 3; j++) {
            int n = snprintf(p, sizeof p, "text_model_encoder_layers_%d_self_attn_%s_proj", l, qkv[j]);
            if (widx_add(w, comp, p, (size_t)n, t, j * C, C)) return -1;
        }
        return 0;
    }
    static const char *const map[][2] = {{"attn.out_proj.weight", "self_attn_out_proj"},
                                         {"mlp.c_fc.weight", "mlp_fc1"}, {"mlp.c_proj.weight", "mlp_fc2"}};
    for (int k = 0; k < 3; k++)
        if (!strcmp(tail, map[k][0])) {
            int n = snprintf(p, sizeof p, "text_model_encoder_layers_%d_%s", l, map[k][1]);
            return widx_add(w, comp, p, (size_t)n, t, 0, t->ndim ? t->shape[0] : 1);
        }
    return 0;
}

/* Every weight of the model a LoRA can name, sorted for lookup; R counted from the UNet. */
static int build_index(windex *w, const sdc_store *model) {
    static const struct { const char *pre; int comp, openclip; } PRE[] = {
        {"model.diffusion_model.", 'u', 0},
        {"cond_stage_model.transformer.", '1', 0}, {"cond_stage_model.model.", '1', 1},
        {"conditioner.embedders.0.transformer.", '1', 0}, {"conditioner.embedders.1.model.", '2', 1}};
    size_t n = sdc_store_count(model);
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor *t = sdc_store_at(model, i);
        if (sdc_store_get(model, t->name) != t || t->ndim < 1) continue;   /* shadowed */
        for (size_t k = 0; k < sizeof PRE / sizeof *PRE; k++) {
            size_t pl = strlen(PRE[k].pre), len = strlen(t->name);
            if (strncmp(t->name, PRE[k].pre, pl)) continue;
            const char *rest = t->name + pl;
            if (PRE[k].openclip) { if (add_openclip(w, PRE[k].comp, rest, t)) return -1; }
            if (len - pl > 7 && !strcmp(t->name + len - 7, ".weight") &&
                widx_add(w, PRE[k].comp, rest, len - pl - 7, t, 0, t->shape[0]))
                return -1;
            break;
        }
    }
    qsort(w->e, w->n, sizeof *w->e, went_cmp);
    /* ResBlocks per level: input_blocks.1 .. R, then the Downsample input_blocks.(R+1).0.op */
    w->R = 0;
    for (int b = 1; b < 64 && !w->R; b++)
        if (sdc_store_getf(model, "model.diffusion_model.input_blocks.%d.0.op.weight", b)) w->R = b - 1;
    return 0;
}

static const wentry *widx_find(const windex *w, int comp, const char *path) {
    wentry key;
    key.comp = comp;
    if (strlen(path) >= sizeof key.path) return NULL;
    memcpy(key.path, path, strlen(path) + 1);
    return bsearch(&key, w->e, w->n, sizeof *w->e, went_cmp);
}

static const wentry *map_module(const windex *w, const raw_mod *r) {
    if (r->comp != 'u') return widx_find(w, r->comp, r->path);
    char cand[3][512];
    int nc = sdc_lora_unet_candidates(r->path, w->R, cand, 3);
    for (int i = 0; i < nc; i++) {
        const wentry *x = widx_find(w, 'u', cand[i]);
        if (x) return x;
    }
    return NULL;
}

/* The cross-attention context width a LoRA's UNet modules read (attn2 to_k down [r, ctx]), 0. */
static int lora_context_dim(const raw_mod *m, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (m[i].comp == 'u' && strstr(m[i].path, "attn2_to_k") && m[i].part[PART_DOWN]->ndim == 2)
            return (int)m[i].part[PART_DOWN]->shape[1];
    return 0;
}

static const char *family_of_context(int ctx) {
    return ctx == 768 ? "SD 1.x" : ctx == 1024 ? "SD 2.x" : ctx == 2048 ? "SDXL" : NULL;
}

/* ─────────────────────────── the set ─────────────────────────── */

struct sdc_lora_set {
    sdc_lora_mod **mods;         /* in the order added */
    size_t n, cap;
    sdc_lora_mod **sorted;       /* by target, then order added */
    char **files;
    size_t nfiles;
    size_t bytes;
};

sdc_lora_set *sdc_lora_set_new(void) { return calloc(1, sizeof(sdc_lora_set)); }

static void mod_free(sdc_lora_mod *m) {
    if (!m) return;
    free((void *)m->name);
    free((void *)m->target);
    free((void *)m->up);
    free((void *)m->down);
    free(m);
}

void sdc_lora_set_free(sdc_lora_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) mod_free(s->mods[i]);
    for (size_t i = 0; i < s->nfiles; i++) free(s->files[i]);
    free(s->mods);
    free(s->sorted);
    free(s->files);
    free(s);
}

/* sorted[] by target, ties in the order added; ->next chains each target's deltas. */
static int reindex(sdc_lora_set *s) {
    sdc_lora_mod **p = realloc(s->sorted, (s->n ? s->n : 1) * sizeof *p);
    if (!p) return -1;
    s->sorted = p;
    /* a stable sort: insertion sort by target keeps the order added (n is a few thousand) */
    for (size_t i = 0; i < s->n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(p[j - 1]->target, s->mods[i]->target) > 0) { p[j] = p[j - 1]; j--; }
        p[j] = s->mods[i];
    }
    for (size_t i = 0; i < s->n; i++)
        p[i]->next = i + 1 < s->n && !strcmp(p[i]->target, p[i + 1]->target) ? p[i + 1] : NULL;
    return 0;
}

static char *dupstr(const char *s) {
    size_t l = strlen(s) + 1;
    char *d = malloc(l);
    if (d) memcpy(d, s, l);
    return d;
}

int sdc_lora_set_add(sdc_lora_set *s, const sdc_store *model, const char *path, float mult,
                     const sdc_load_opts *opts, sdc_err *e) {
    if (!s || !model || !path) return sdc_errf(e, "LoRA: nothing to add");
    if (!isfinite(mult)) return sdc_errf(e, "%s: LoRA multiplier is not a number", path);
    sdc_store *st = sdc_store_new();
    if (!st) return sdc_errf(e, "%s: out of memory", path);
    raw_mod *m = NULL;
    size_t nm = 0, added = 0, n0 = s->n;
    windex w = {0};
    char **files = NULL;
    int rc = -1;
    if (sdc_store_open(st, path, opts, e)) goto done;
    if (read_modules(st, path, &m, &nm, e)) goto done;
    if (build_index(&w, model)) { sdc_errf(e, "%s: out of memory", path); goto done; }
    /* for the messages: a LoRA made for an other family says so */
    char hint[200] = "";
    {
        int lc = lora_context_dim(m, nm), mc = 0;
        for (size_t i = 0; i < w.n && !mc; i++)
            if (w.e[i].comp == 'u' && strstr(w.e[i].path, "attn2_to_k") && w.e[i].t->ndim == 2)
                mc = (int)w.e[i].t->shape[1];
        const char *lf = family_of_context(lc), *mf = family_of_context(mc);
        if (lc && mc && lc != mc)
            snprintf(hint, sizeof hint, ": the LoRA is for a model with a %d-wide text context (%s), "
                     "this model's is %d (%s)", lc, lf ? lf : "unknown family", mc, mf ? mf : "unknown family");
    }
    if (s->n + nm > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + nm) cap *= 2;
        sdc_lora_mod **p = realloc(s->mods, cap * sizeof *p);
        if (!p) { sdc_errf(e, "%s: out of memory", path); goto done; }
        s->mods = p;
        s->cap = cap;
    }
    for (size_t i = 0; i < nm; i++) {
        const raw_mod *r = &m[i];
        const wentry *x = map_module(&w, r);
        if (!x) {
            sdc_errf(e, "%s: LoRA module %s matches no weight of this model%s", path, r->name, hint);
            goto done;
        }
        const sdc_tensor *dn = r->part[PART_DOWN], *up = r->part[PART_UP];
        int64_t rank = dn->shape[0], cols = dn->numel / rank, rows = up->shape[0];
        int64_t trows = x->t->shape[0], tcols = x->t->numel / (trows ? trows : 1);
        if (rows != x->rows || cols != tcols) {
            char ts[96] = "";
            for (int d = 0; d < x->t->ndim; d++)
                snprintf(ts + strlen(ts), sizeof ts - strlen(ts), "%s%lld", d ? "," : "", (long long)x->t->shape[d]);
            sdc_errf(e, "%s: LoRA module %s: its delta [%lld, %lld] does not fit weight %s [%s] "
                     "(rows x columns %lld x %lld)%s", path, r->name, (long long)rows, (long long)cols,
                     x->t->name, ts, (long long)x->rows, (long long)tcols, hint);
            goto done;
        }
        double alpha;
        if (read_alpha(r, &alpha)) { sdc_errf(e, "%s: module %s: alpha is not a finite number", path, r->name); goto done; }
        sdc_lora_mod *o = calloc(1, sizeof *o);
        if (!o) { sdc_errf(e, "%s: out of memory", path); goto done; }
        s->mods[s->n + added++] = o;
        float *fu = malloc((size_t)up->numel * sizeof(float));
        float *fd = malloc((size_t)dn->numel * sizeof(float));
        o->up = fu;
        o->down = fd;
        o->name = dupstr(r->name);
        o->target = dupstr(x->t->name);
        if (!fu || !fd || !o->name || !o->target) { sdc_errf(e, "%s: out of memory", path); goto done; }
        if (sdc_tensor_to_f32(up, fu, e) || sdc_tensor_to_f32(dn, fd, e)) { sdc_err_prefix(e, "%s", path); goto done; }
        o->row0 = x->row0;
        o->rows = rows;
        o->cols = cols;
        o->rank = (int)rank;
        o->scale = (float)((double)mult * alpha / (double)rank);
    }
    if (!(files = realloc(s->files, (s->nfiles + 1) * sizeof *files))) { sdc_errf(e, "%s: out of memory", path); goto done; }
    s->files = files;
    if (!(s->files[s->nfiles] = dupstr(path))) { sdc_errf(e, "%s: out of memory", path); goto done; }
    s->n += added;
    if (reindex(s)) {
        s->n -= added;
        free(s->files[s->nfiles]);
        sdc_errf(e, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = n0; i < s->n; i++) {
        s->mods[i]->file = s->files[s->nfiles];
        s->bytes += (size_t)(s->mods[i]->rows + s->mods[i]->cols) * (size_t)s->mods[i]->rank * sizeof(float);
    }
    s->nfiles++;
    added = 0;
    rc = 0;
done:
    for (size_t i = 0; i < added; i++) mod_free(s->mods[n0 + i]);
    if (rc) reindex(s);   /* the set as it was (re-chained over the old modules) */
    free(w.e);
    free(m);
    sdc_store_close(st);
    return rc;
}

const sdc_lora_mod *sdc_lora_find(sdc_lora_set *s, const char *target) {
    if (!s || !s->n || !target) return NULL;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {   /* the first with target >= the one asked */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->sorted[mid]->target, target) < 0) lo = mid + 1; else hi = mid;
    }
    if (lo == s->n || strcmp(s->sorted[lo]->target, target)) return NULL;
    for (size_t i = lo; i < s->n && !strcmp(s->sorted[i]->target, target); i++) s->sorted[i]->used = 1;
    return s->sorted[lo];
}

int sdc_lora_check_used(const sdc_lora_set *s, sdc_err *e) {
    for (size_t i = 0; s && i < s->n; i++)
        if (!s->mods[i]->used)
            return sdc_errf(e, "%s: LoRA module %s changes %s, a weight sdc's models do not read",
                            s->mods[i]->file, s->mods[i]->name, s->mods[i]->target);
    return 0;
}

size_t sdc_lora_set_count(const sdc_lora_set *s) { return s ? s->n : 0; }
const sdc_lora_mod *sdc_lora_set_at(const sdc_lora_set *s, size_t i) {
    return s && i < s->n ? s->mods[i] : NULL;
}
size_t sdc_lora_set_bytes(const sdc_lora_set *s) { return s ? s->bytes : 0; }
size_t sdc_lora_set_files(const sdc_lora_set *s) { return s ? s->nfiles : 0; }

/* ─────────────────────────── describing a file ─────────────────────────── */

int sdc_lora_detect(const sdc_store *st) {
    size_t n = sdc_store_count(st);
    if (!n || sdc_store_count_prefix(st, "model.diffusion_model.")) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *nm = sdc_store_at(st, i)->name;
        if (!strncmp(nm, "lora_unet_", 10) || !strncmp(nm, "lora_te", 7) || strstr(nm, ".lora_A.") ||
            strstr(nm, ".lora_down.") || strstr(nm, ".lora.down.") || strstr(nm, ".hada_") ||
            strstr(nm, ".lokr_") || strstr(nm, "_lora.down."))
            return 1;
    }
    return 0;
}

int sdc_lora_describe(const sdc_store *st, sdc_lora_info *info, sdc_err *e) {
    memset(info, 0, sizeof *info);
    raw_mod *m = NULL;
    size_t nm = 0;
    const char *path = sdc_store_nfiles(st) ? sdc_store_file_at(st, 0)->path : "LoRA";
    if (read_modules(st, path, &m, &nm, e)) return -1;
    int fmt = m[0].fmt, conv = 0;
    info->n_modules = (int)nm;
    info->rank_min = SDC_LORA_MAX_RANK + 1;
    for (size_t i = 0; i < nm; i++) {
        const sdc_tensor *dn = m[i].part[PART_DOWN];
        int r = (int)dn->shape[0];
        if (r < info->rank_min) info->rank_min = r;
        if (r > info->rank_max) info->rank_max = r;
        if (m[i].comp == 'u') info->n_unet++;
        else if (m[i].comp == '1') info->n_te1++;
        else info->n_te2++;
        if (dn->ndim == 4 && (dn->shape[2] > 1 || dn->shape[3] > 1)) { info->n_conv3x3++; conv = 1; }
        else if (dn->ndim == 4) info->n_conv1x1++;
        else info->n_linear++;
        double a;
        if (read_alpha(&m[i], &a)) {
            sdc_errf(e, "%s: module %s: alpha is not a finite number", path, m[i].name);
            free(m);
            return -1;
        }
        if (m[i].part[PART_ALPHA]) {
            if (!info->has_alpha || a < info->alpha_min) info->alpha_min = a;
            if (!info->has_alpha || a > info->alpha_max) info->alpha_max = a;
            info->has_alpha = 1;
        }
        if (m[i].comp == '1' && strstr(m[i].path, "layers_0_self_attn_q_proj") && dn->ndim == 2)
            info->te_width = (int)dn->shape[1];
    }
    snprintf(info->format, sizeof info->format, "%s %s", fmt_name(fmt),
             fmt == FMT_KOHYA && conv ? "LoCon" : "LoRA");
    info->context_dim = lora_context_dim(m, nm);
    const char *base = sdc_store_meta(st, "ss_base_model_version");
    const char *fam = info->n_te2 ? "SDXL" : family_of_context(info->context_dim);
    if (base && fam)
        snprintf(info->family, sizeof info->family, "%s (text context %d; ss_base_model_version %.40s)",
                 fam, info->context_dim, base);
    else if (fam)
        snprintf(info->family, sizeof info->family, "%s (text context %d)", fam, info->context_dim);
    else if (base)
        snprintf(info->family, sizeof info->family, "%.40s (ss_base_model_version); a %d-wide text context "
                 "(SD 1.x: 768, SD 2.x: 1024, SDXL: 2048)", base, info->context_dim);
    else
        snprintf(info->family, sizeof info->family, "a model with a %d-wide text context (SD 1.x: 768, "
                 "SD 2.x: 1024, SDXL: 2048)", info->context_dim);
    free(m);
    return 0;
}
