/* unet.c — the SD UNet (ldm.modules.diffusionmodules.openaimodel.UNetModel), f32, NCHW.
 *
 * Owns: the UNet's conv weights (and LoRA-changed Linears') converted once to f32 at load, the
 * Winograd convs' as their packed transforms (bump-allocated in big anonymous mappings, sdc_unet.chunks, on huge pages),
 * and the block graph read from the tensor names and shapes. Does not own: the store, whose
 * views stay the weights of every Linear (streamed a panel of rows at a time by each call,
 * k_linear_stream) and of most Winograd convs (k_conv3x3_wino_stream, see load_conv); in low-mem
 * mode, sdc_unet_params.low_mem, every conv's too, widened per layer into arena scratch or
 * streamed, their pages dropped after each use (see models/weight.h); nor any activation (they
 * come from the caller's arena; only the skip tensors live across blocks).
 *
 * Layouts: the original model.diffusion_model.* names, or a diffusers UNet2DConditionModel
 * (down_blocks.i.resnets.j, ...: each name mapped to its ldm name once at load, see
 * build_diffusers_table), so one graph serves both.
 *
 * The graph is discovered, never assumed: input_blocks.N is conv_in (N = 0), a ResBlock with an
 * optional SpatialTransformer, or a Downsample; output_blocks.N a ResBlock on cat(h, skip) with
 * an optional SpatialTransformer and an optional Upsample; middle_block a chain of ResBlocks and
 * SpatialTransformers. Widths, levels, transformer depth, context width, conv vs linear
 * projection and the time embedding width come from the shapes; every shape is checked against
 * the channel count flowing through the graph, so a truncated or mismatched file is refused at
 * load with the tensor's name. Head counts come from the caller (sdc_unet_params). */
#include "models/unet.h"

#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels/kernels.h"
#include "models/weight.h"
#include "runtime/names.h"
#include "runtime/sha256.h"   /* sdc_diffusers_to_original: the one diffusers → ldm name table */

/* ldm's GroupNorm32 (ResBlocks, out.0): 32 groups, eps 1e-5. The SpatialTransformer's own
 * input norm is ldm's Normalize(): 32 groups, eps 1e-6 (diffusers Transformer2DModel too). */
#define UNET_GROUPS      32
#define UNET_GN_EPS      1e-5f
#define UNET_ST_GN_EPS   1e-6f
#define UNET_LN_EPS      1e-5f
/* Sinusoidal embedding of the timestep: ldm timestep_embedding(t, model_channels),
 * cos first, max_period 10000 (= diffusers flip_sin_to_cos=True, freq_shift=0). */
#define UNET_MAX_PERIOD  10000.0f

/* Named limits, each far above any SD UNet, so that a hostile file cannot make us walk or
 * allocate absurd structures before the shape checks catch it. */
#define UNET_MAX_BLOCKS  64       /* input/output blocks: SD 1.x/2.x have 12, SDXL 9 */
#define UNET_MAX_DEPTH   64       /* transformer blocks per SpatialTransformer: SDXL has 10 */
#define UNET_MAX_WIDTH   (1 << 20) /* any one dimension: SD's widest is the GEGLU 2x5120 */
#define UNET_MAX_LEVELS  8        /* sdc_unet_info.channel_mult has 8 slots */
/* FF rows per chunk: the GEGLU hidden state [rows, 2F] is the largest temporary of a
 * transformer block (84 MB at 64x64 batch 2 in SD 1.5); chunking keeps it ~10 MB. */
#define UNET_FF_ROWS     1024

/* ───────────────────────────── weights ───────────────────────────── */

/* Conv and linear matrices are sdc_weights: a conv's an f32 copy, or low-mem views widened per
 * use (read through wf32); a Linear's the store's views in both modes (an f32 copy when a LoRA
 * changes it, default mode), streamed a panel of rows at a time by every call (lin); biases and
 * norms are always f32 copies (small). */
/* A Winograd conv (wino: 3x3 stride 1, both widths >= UNET_WINO_MIN_C) runs as F(2x2,3x3) on
 * its packed transform U (kernels.h): in default mode at level 0 and the level just above the
 * deepest U is made at load and replaces the f32 copy (w is then empty: U is 16/9 of its size);
 * at the other levels (load_conv), and in low-mem mode, w stays the views and the conv streams them
 * (k_conv3x3_wino_stream), packing a cache-sized group of output channels at a time. Both run
 * the same arithmetic, so give the same bits. */
typedef struct conv_w {
    sdc_weight w;        /* [cout, cin, k, k]; empty when U or Ub holds it */
    float *b;            /* [cout] */
    int    cout, cin, k;
    int    wino;         /* runs as Winograd F(2x2,3x3): from U (or Ub), else streamed from w
                            (k_conv3x3_wino_stream: see load_conv, and low-mem mode) */
    float *U;            /* default mode, wino at level 0 and just above the deepest (or LoRA-changed):
                            k_wino_pack(w) made at load [k_wino_packed_floats(cout, cin)] */
    uint32_t *Ub;        /* bf16 mode, wino: k_wino_bf16_pack(U) [k_wino_bf16_words(cout, cin)]
                            instead of U */
} conv_w;
/* w [out,in], b [out] or NULL; bf16 mode: wb = k_linear_bf16_pack(w) instead of w (not for the
 * time embedding, which stays f32) */
typedef struct lin_w  { sdc_weight w; float *b; int out, in; uint32_t *wb; } lin_w;
typedef struct norm_w { float *g, *b; int c; } norm_w;              /* g, b [c] */

/* ldm ResBlock: in_layers (GroupNorm, SiLU, conv3x3), emb_layers (SiLU, Linear),
 * out_layers (GroupNorm, SiLU, Dropout, conv3x3), skip_connection (1x1 conv iff cin != cout). */
typedef struct res_block {
    int    cin, cout;
    norm_w in_norm;      /* in_layers.0:  [cin] */
    conv_w in_conv;      /* in_layers.2:  [cout, cin, 3, 3] + [cout] */
    lin_w  emb;          /* emb_layers.1: [cout, temb] + [cout] */
    norm_w out_norm;     /* out_layers.0: [cout] */
    conv_w out_conv;     /* out_layers.3: [cout, cout, 3, 3] + [cout] */
    int    has_skip;
    conv_w skip;         /* skip_connection: [cout, cin, 1, 1] + [cout] */
} res_block;

/* ldm CrossAttention: to_q/to_k/to_v without bias, to_out.0 with bias. Self-attention fuses
 * q|k|v into one [3*inner, qdim] GEMM; cross-attention fuses k|v on the context. */
typedef struct cross_attn {
    int    is_self, inner, qdim, kvdim, heads, head_dim;
    sdc_weight wq;       /* self: [3*inner, qdim] = to_q|to_k|to_v; cross: to_q [inner, qdim] */
    sdc_weight wkv;      /* cross only: [2*inner, kvdim] = to_k|to_v */
    uint32_t  *wqb, *wkvb;  /* bf16 mode: wq, wkv packed by k_linear_bf16_pack instead */
    lin_w  out;          /* to_out.0: [qdim, inner] + [qdim] */
} cross_attn;

/* ldm BasicTransformerBlock: x += attn1(norm1 x); x += attn2(norm2 x, ctx); x += ff(norm3 x). */
typedef struct tf_block {
    norm_w     norm1, norm2, norm3;   /* LayerNorm [C] */
    cross_attn attn1, attn2;
    lin_w      ff_in;                 /* ff.net.0.proj: [2F, C] + [2F] (GEGLU: value | gate) */
    lin_w      ff_out;                /* ff.net.2:      [C, F] + [C] */
    int        ff_inner;              /* F */
} tf_block;

/* ldm SpatialTransformer: GroupNorm, proj_in (1x1 conv [inner,C,1,1] or Linear [inner,C]),
 * depth x BasicTransformerBlock on [N, HW, inner], proj_out back to C, + residual. A 1x1 conv
 * and a Linear are the same per-pixel map, so both run as a Linear on NHWC rows. */
typedef struct spatial_tf {
    int       c, inner, depth, linear;
    norm_w    norm;       /* [C], eps 1e-6 */
    lin_w     proj_in;    /* [inner, C] + [inner] */
    lin_w     proj_out;   /* [C, inner] + [C] */
    tf_block *blocks;     /* [depth] */
} spatial_tf;

enum { BLK_CONV_IN, BLK_RES, BLK_DOWN };

/* One input_blocks.N / middle_block.N / output_blocks.N entry. */
typedef struct unet_block {
    int         kind;          /* input blocks: BLK_*; output and middle blocks: BLK_RES */
    int         cin, cout;     /* channels in (for output blocks: after the concat) and out */
    int         level;         /* resolution level (0 = full) of the block's input */
    res_block   res;
    spatial_tf *attn;          /* NULL when the block has no SpatialTransformer */
    conv_w      conv;          /* conv_in [mc,in,3,3] / Downsample op [C,C,3,3] stride 2 */
    int         has_up;
    conv_w      up;            /* Upsample conv: [C, C, 3, 3] after nearest 2x */
} unet_block;

struct sdc_unet {
    sdc_unet_info info;
    lin_w   time1;             /* time_embed.0: [temb, mc] + [temb] */
    lin_w   time2;             /* time_embed.2: [temb, temb] + [temb] */
    lin_w   label1, label2;    /* SDXL label_emb.0.0 [temb, adm] / .0.2 [temb, temb]; when adm > 0 */
    unet_block *in;  int n_in;   /* input_blocks */
    unet_block *mid; int n_mid;  /* middle_block: ResBlocks (attn NULL) and transformers */
    unet_block *out; int n_out;  /* output_blocks */
    norm_w  out_norm;          /* out.0: [C] */
    conv_w  out_conv;          /* out.2: [out_ch, C, 3, 3] + [out_ch] */
    int     n_down;            /* number of Downsamples (each gives ceil(n/2)) */
    int     max_c;             /* widest activation row (for the int size checks) */
    struct wchunk { char *p; size_t size, used; } *chunks;   /* the f32 weights */
    size_t  n_chunks, cap_chunks;
    size_t  weight_bytes;
    int     low_mem;           /* 1: conv/linear weights are the store's views (sdc_weight) */
    int     bf16;              /* 1: Winograd convs and Linears (not the time embedding) in bf16 */
    const sdc_weight **views;  /* low-mem: every big weight bound as views, in binding order */
    size_t  n_views, cap_views;
    struct bind_job *bind;     /* a conversion running in the background, or NULL */
    int     bind_failed;       /* it failed: bind_err says why, and no forward runs */
    char    bind_err[sizeof(((sdc_err *)0)->msg)];
    double  bind_done;         /* CLOCK_MONOTONIC second it finished; 0: none ran in the background */
    sdc_unet_debug_fn dbg; void *dbg_user;
};

/* ───────────────────────────── loading ───────────────────────────── */

/* A diffusers-layout tensor under its ldm name (see build_diffusers_table). */
typedef struct alias { char *ldm; const sdc_tensor *t; } alias;

/* One pending f16/bf16/f32 → f32 conversion: done for all weights at once, in parallel,
 * after the whole graph has been checked (convert_all). */
typedef struct conv_job {
    const sdc_tensor *t;
    float            *dst;        /* f32 values of t; or, when pack: k_wino_pack of them */
    int               pack, cout, cin;   /* pack: JOB_* */
    const sdc_lora_mod *delta;    /* LoRA deltas merged into t's values first, or NULL */
    const sdc_tensor *more[2];    /* JOB_LIN_BF16: the parts after t, stacked by rows (q|k|v) */
    const sdc_lora_mod *more_delta[2];
    int               nmore;
} conv_job;
enum { JOB_F32, JOB_WINO, JOB_WINO_BF16, JOB_LIN_BF16 };   /* f32 copy, U, Ub, a bf16 Linear [cout, cin] */

typedef struct loader {
    const sdc_store *st;
    conv_job        *jobs;
    size_t           njobs, capjobs;
    const char      *prefix;   /* original layout: "model.diffusion_model."; diffusers: a label
                                  for messages only (names are then looked up in tab) */
    alias           *tab;      /* diffusers layout: sorted by ldm name; NULL otherwise */
    size_t           ntab;
    sdc_unet        *u;
    sdc_err         *e;
    int              failed;
    int              level;       /* resolution level of the block being loaded (0 = full) */
    int              deepest;     /* the deepest level (= the number of Downsamples) */
    sdc_lora_set    *lora;        /* LoRA deltas to merge as weights are bound, or NULL */
} loader;

static int alias_cmp(const void *a, const void *b) {
    return strcmp(((const alias *)a)->ldm, ((const alias *)b)->ldm);
}

static const sdc_tensor *lookup(loader *L, const char *ldm_name) {
    if (!L->tab) return sdc_store_get(L->st, ldm_name);
    alias key = {(char *)ldm_name, NULL};
    const alias *a = bsearch(&key, L->tab, L->ntab, sizeof *L->tab, alias_cmp);
    return a ? a->t : NULL;
}

/* Number of tensors whose (ldm) name starts with prefix + pre. */
static size_t count_prefix(loader *L, const char *pre) {
    char full[512];
    if (!L->tab) {
        snprintf(full, sizeof full, "%s%s", L->prefix, pre);
        return sdc_store_count_prefix(L->st, full);
    }
    size_t lo = 0, hi = L->ntab, n = strlen(pre), c = 0;
    while (lo < hi) {   /* first entry >= pre */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(L->tab[mid].ldm, pre) < 0) lo = mid + 1; else hi = mid;
    }
    while (lo + c < L->ntab && !strncmp(L->tab[lo + c].ldm, pre, n)) c++;
    return c;
}

/* The tensor named prefix + printf(fmt), or NULL. name receives prefix + the ldm name. */
static const sdc_tensor *vfind(loader *L, const char *fmt, va_list ap, char *name, size_t cap) {
    int n = snprintf(name, cap, "%s", L->prefix);
    if (n < 0 || (size_t)n >= cap) return NULL;
    vsnprintf(name + n, cap - (size_t)n, fmt, ap);
    return lookup(L, L->tab ? name + n : name);
}

static const sdc_tensor *find(loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const sdc_tensor *find(loader *L, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    const sdc_tensor *t = vfind(L, fmt, ap, name, sizeof name);
    va_end(ap);
    return t;
}

static int fail(loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(loader *L, const char *fmt, ...) {
    if (L->failed) return -1;
    char msg[sizeof L->e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    L->failed = 1;
    return sdc_errf(L->e, "unet: %s", msg);
}

/* A fresh f32 weight buffer of n floats (64-byte aligned), or NULL. Weights are bump-allocated
 * in anonymous mappings of WEIGHT_CHUNK bytes (or one tensor's size when larger), advised for
 * transparent huge pages: gigabytes fault in as 2 MB pages instead of hundreds of thousands of
 * 4 KB ones, and the GEMMs miss the TLB less. SDC_HUGEPAGES=0 advises 4 KB pages instead: for
 * a VM that hands its free memory back to the host (virtio-balloon free page reporting), where
 * a 2 MB page not recently freed is faulted in from the host 4 KB at a time. Measured on such a
 * 2-core Zen 5 VM, SD 1.5 (3.1 GB bound): first UNet call 534 ms on huge pages vs 1259 ms on
 * 4 KB ones with the host's memory warm (runs back to back), but a 4.0 s vs 1.3-2.4 s bind
 * after 10 s idle; the same 512x512 step time on either (3.43 vs 3.38 s, 7 interleaved rounds).
 * The unused tail of a chunk is never touched, so costs no memory. */
#define WEIGHT_CHUNK ((size_t)256 << 20)

/* The page size advised for the weights: 2 MB (MADV_HUGEPAGE) unless SDC_HUGEPAGES=0. */
static int weights_on_huge_pages(void) {
    const char *v = getenv("SDC_HUGEPAGES");
    return !(v && !strcmp(v, "0"));
}
static float *track(loader *L, size_t n) {
    sdc_unet *u = L->u;
    size_t bytes;
    if (sdc_mul_overflow(n ? n : 1, sizeof(float), &bytes) || sdc_add_overflow(bytes, 63, &bytes))
        return NULL;
    bytes &= ~(size_t)63;
    struct wchunk *c = u->n_chunks ? &u->chunks[u->n_chunks - 1] : NULL;
    if (!c || c->size - c->used < bytes) {
        if (u->n_chunks == u->cap_chunks) {
            size_t cap = u->cap_chunks ? 2 * u->cap_chunks : 16;
            struct wchunk *p = realloc(u->chunks, cap * sizeof *p);
            if (!p) return NULL;
            u->chunks = p;
            u->cap_chunks = cap;
        }
        size_t size = bytes > WEIGHT_CHUNK ? bytes : WEIGHT_CHUNK;
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
        madvise(m, size, weights_on_huge_pages() ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);   /* advice: failure is harmless */
#endif
        c = &u->chunks[u->n_chunks++];
        *c = (struct wchunk){m, size, 0};
    }
    float *f = (float *)(c->p + c->used);
    c->used += bytes;
    u->weight_bytes += bytes;
    return f;
}

static void shape_str(char *s, size_t cap, int nd, const int64_t *d) {
    size_t o = 0;
    o += (size_t)snprintf(s + o, cap - o, "[");
    for (int i = 0; i < nd && o < cap; i++)
        o += (size_t)snprintf(s + o, cap - o, i ? ",%lld" : "%lld", (long long)d[i]);
    if (o < cap) snprintf(s + o, cap - o, "]");
}

/* The tensor prefix + printf(fmt), checked to be a float tensor of exactly shape
 * [d0..d(nd-1)]; NULL with L failed otherwise. After a failure every call is a no-op returning
 * NULL, so a block loads all its weights and checks L->failed once. */
static const sdc_tensor *vview(loader *L, int nd, const int64_t want[4], const char *fmt, va_list ap) {
    if (L->failed) return NULL;
    char name[512];
    const sdc_tensor *t = vfind(L, fmt, ap, name, sizeof name);
    if (!t) { fail(L, "%s: missing", name); return NULL; }
    int ok = t->ndim == nd && sdc_dtype_is_float(t->dtype);
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[128], exp[128];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(exp, sizeof exp, nd, want);
        fail(L, "%s%s%s: %s %s, expected float %s", name, L->tab ? " = " : "", L->tab ? t->name : "",
             sdc_dtype_name(t->dtype), got, exp);
        return NULL;
    }
    return t;
}

static const sdc_tensor *view(loader *L, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                              const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static const sdc_tensor *view(loader *L, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                              const char *fmt, ...) {
    int64_t want[4] = {d0, d1, d2, d3};
    va_list ap;
    va_start(ap, fmt);
    const sdc_tensor *t = vview(L, nd, want, fmt, ap);
    va_end(ap);
    return t;
}

/* Queues t's conversion to f32 into dst (done by convert_all). Returns 0, or -1 with L failed. */
static int queue(loader *L, const sdc_tensor *t, float *dst) {
    if (L->njobs == L->capjobs) {
        size_t cap = L->capjobs ? 2 * L->capjobs : 1024;
        conv_job *j = realloc(L->jobs, cap * sizeof *j);
        if (!j) return fail(L, "%s: out of memory", t->name);
        L->jobs = j;
        L->capjobs = cap;
    }
    L->jobs[L->njobs++] = (conv_job){.t = t, .dst = dst};
    return 0;
}

/* A small weight (norm, bias): prefix + printf(fmt), checked as view() does, converted to f32
 * into a fresh tracked buffer. Returns the buffer, or NULL with L failed. */
static float *weight(loader *L, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                     const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static float *weight(loader *L, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                     const char *fmt, ...) {
    int64_t want[4] = {d0, d1, d2, d3};
    va_list ap;
    va_start(ap, fmt);
    const sdc_tensor *t = vview(L, nd, want, fmt, ap);
    va_end(ap);
    if (!t) return NULL;
    float *dst = track(L, (size_t)t->numel);
    if (!dst) { fail(L, "%s: out of memory", t->name); return NULL; }
    return queue(L, t, dst) ? NULL : dst;
}

/* w becomes the n checked views t (with their LoRA deltas), listed for the layout digest. */
static void bind_views(loader *L, sdc_weight *w, const sdc_tensor *const *t, int n) {
    if (L->failed) return;
    sdc_unet *u = L->u;
    if (u->n_views == u->cap_views) {
        size_t cap = u->cap_views ? 2 * u->cap_views : 256;
        const sdc_weight **v = realloc(u->views, cap * sizeof *v);
        if (!v) { fail(L, "%s: out of memory", t[0]->name); return; }
        u->views = v;
        u->cap_views = cap;
    }
    u->views[u->n_views++] = w;
    sdc_weight_bind(w, NULL, L->st, t, n, L->lora, NULL);   /* views: cannot fail */
    for (int i = 0; i < n; i++) u->info.view_bytes += t[i]->nbytes;
}

/* A weight as an f32 copy converted at load (LoRA deltas merged), or in low-mem mode the views
 * themselves: a conv's that is not streamed (the checked view t; NULL only when L failed: convs
 * widen their weight whole per call, so keeping the views in the default mode would send every
 * widened weight through memory once more per call), or a LoRA-changed Linear's (lin_views). */
static void big_weight(loader *L, sdc_weight *w, const sdc_tensor *const *t, int n) {
    if (L->failed) return;
    if (L->u->low_mem) { bind_views(L, w, t, n); return; }
    /* sdc_weight_bind's copy, spread over the threads: each view's sdc_weight_load_f32 queued */
    size_t total = sdc_weight_count(t, n);
    float *f = track(L, total);
    if (!f) { fail(L, "%s: out of memory", t[0]->name); return; }
    *w = (sdc_weight){.f = f, .n = total, .cols = sdc_weight_row_floats(t[0])};
    for (int i = 0; i < n; i++) {
        if (queue(L, t[i], f)) return;
        L->jobs[L->njobs - 1].delta = sdc_weight_deltas(L->lora, t[i]);
        f += t[i]->numel;
    }
}

/* Dimension i of prefix + printf(fmt), checked to exist and be a sane positive int; 0 with L
 * failed otherwise. */
static int dim(loader *L, int i, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int dim(loader *L, int i, const char *what, const char *fmt, ...) {
    if (L->failed) return 0;
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    const sdc_tensor *t = vfind(L, fmt, ap, name, sizeof name);
    va_end(ap);
    if (!t) { fail(L, "%s: missing", name); return 0; }
    if (i >= t->ndim || t->shape[i] <= 0 || t->shape[i] > UNET_MAX_WIDTH) {
        fail(L, "%s: bad %s (dimension %d of a %d-D tensor)", name, what, i, t->ndim);
        return 0;
    }
    return (int)t->shape[i];
}

/* b = base + suffix (names are far shorter than the buffers; a too-long one becomes "",
 * which then fails the lookup with a clear message). */
static void sub(char *b, size_t cap, const char *base, const char *suffix) {
    int n = snprintf(b, cap, "%s%s", base, suffix);
    if (n < 0 || (size_t)n >= cap) b[0] = 0;
}

static void load_norm(loader *L, norm_w *n, int c, const char *base) {
    if (!L->failed && c % UNET_GROUPS)
        fail(L, "%s%s: %d channels do not split into %d groups", L->prefix, base, c, UNET_GROUPS);
    n->c = c;
    n->g = weight(L, 1, c, 0, 0, 0, "%s.weight", base);
    n->b = weight(L, 1, c, 0, 0, 0, "%s.bias", base);
}

static void load_lnorm(loader *L, norm_w *n, int c, const char *base) {
    n->c = c;
    n->g = weight(L, 1, c, 0, 0, 0, "%s.weight", base);
    n->b = weight(L, 1, c, 0, 0, 0, "%s.bias", base);
}

/* Widths below this stay direct: the transforms would cost more than the products save (and
 * conv_in / out.2 have 4 channels). */
#define UNET_WINO_MIN_C 16

/* A conv at `base`; stride1: it runs with stride 1 at resolution level L->level. 3x3 stride-1
 * convs run as Winograd (see conv_w), from a packed transform (16/9 the weight's size) made at
 * load, or streamed: packed a cache-sized group of output channels at a time from the file's
 * view by every call (k_conv3x3_wino_stream; no copy at all), once per super-chunk of input tiles.
 * Streamed: the deepest level (8x8 at 512x512: half of SD 1.5's 3x3 weights, a tenth of their
 * work; 1.6 GB less than packing, a step within -1%..+4% of packed) and the levels between the
 * first and the one above the deepest (32x32 at 512x512 in SD 1.5: 0.37 GB less and a quarter
 * less time to bind; each conv as fast as packed, 0.98-1.01x, 2 threads, Zen 5). Packed: level 0
 * (64x64: the most tiles, so the weight would be packed again for every super-chunk: its convs
 * ran 1.12-1.39x slower streamed) and the level just above the deepest (16x16), where streaming
 * cost 2-3% of every step (6-round A/B, 1.9% on the median) for 1 GB less. In bf16 mode only the
 * deepest level streams (in f32): the others keep their bf16 packing, whose products run faster. */
static int conv_streams(const loader *L) {
    return L->level >= L->deepest || (!L->u->bf16 && L->level >= 1 && L->level <= L->deepest - 2);
}

static void load_conv(loader *L, conv_w *c, int cout, int cin, int k, int stride1, const char *base) {
    c->cout = cout; c->cin = cin; c->k = k;
    c->wino = stride1 && k == 3 && cin >= UNET_WINO_MIN_C && cout >= UNET_WINO_MIN_C;
    const sdc_tensor *w = view(L, 4, cout, cin, k, k, "%s.weight", base);
    /* those Winograd convs stream their weight, in f32 also in bf16 mode (unless a LoRA changes
     * it, which is merged once into a packed copy instead) */
    const int stream = c->wino && conv_streams(L) && !L->u->low_mem && !L->failed && !sdc_weight_deltas(L->lora, w);
    if (stream) {
        bind_views(L, &c->w, &w, 1);
    } else if (c->wino && L->u->bf16 && !L->failed) {        /* Ub made from w by convert_all */
        c->Ub = (uint32_t *)track(L, k_wino_bf16_words(cout, cin));
        if (!c->Ub) fail(L, "%s: out of memory", w->name);
        else if (!queue(L, w, (float *)c->Ub))
            L->jobs[L->njobs - 1] = (conv_job){.t = w, .dst = (float *)c->Ub, .pack = JOB_WINO_BF16, .cout = cout,
                                               .cin = cin, .delta = sdc_weight_deltas(L->lora, w)};
    } else if (c->wino && !L->u->low_mem && !L->failed) {   /* U made from w by convert_all */
        c->U = track(L, k_wino_packed_floats(cout, cin));
        if (!c->U) fail(L, "%s: out of memory", w->name);
        else if (!queue(L, w, c->U))
            L->jobs[L->njobs - 1] = (conv_job){.t = w, .dst = c->U, .pack = JOB_WINO, .cout = cout, .cin = cin,
                                               .delta = sdc_weight_deltas(L->lora, w)};
    } else {
        big_weight(L, &c->w, &w, 1);
    }
    c->b = weight(L, 1, cout, 0, 0, 0, "%s.bias", base);
}

/* A Linear's f32 matrix: the n checked views t themselves, stacked by rows, in both modes. Every
 * call streams them (sdc_weight_linear: a panel of rows widened into cache-sized scratch right
 * before its products), so nothing is converted at load and no f32 copy is ever whole in memory
 * (1.1 GB less on SD 1.5 than the f32 copies, and their conversion at load); the default mode
 * keeps their pages mapped (keep), low-mem drops them after each call. A Linear a LoRA changes
 * gets its deltas merged once into an f32 copy in the default mode (big_weight: no per-call cost,
 * as A1111 and ComfyUI merge), in low-mem mode added to each panel as it is widened. */
static void lin_views(loader *L, sdc_weight *w, const sdc_tensor *const *t, int n) {
    for (int i = 0; i < n && !L->u->low_mem && !L->failed; i++)
        if (sdc_weight_deltas(L->lora, t[i])) { big_weight(L, w, t, n); return; }
    bind_views(L, w, t, n);
    w->keep = !L->u->low_mem;
}

/* A Linear's matrix [rows, K] from the n checked views t stacked by rows: in bf16 mode packed
 * (k_linear_bf16_pack, LoRA deltas merged first) into *wb by convert_all, else lin_views(). */
static void lin_weight(loader *L, sdc_weight *w, uint32_t **wb, const sdc_tensor *const *t, int n, int rows, int K) {
    if (L->failed) return;
    if (!L->u->bf16) { lin_views(L, w, t, n); return; }
    *wb = (uint32_t *)track(L, k_linear_bf16_words(rows, K));
    if (!*wb) { fail(L, "%s: out of memory", t[0]->name); return; }
    if (queue(L, t[0], (float *)*wb)) return;
    conv_job *j = &L->jobs[L->njobs - 1];
    *j = (conv_job){.t = t[0], .dst = (float *)*wb, .pack = JOB_LIN_BF16, .cout = rows, .cin = K,
                    .delta = sdc_weight_deltas(L->lora, t[0]), .nmore = n - 1};
    for (int i = 1; i < n; i++) {
        j->more[i - 1] = t[i];
        j->more_delta[i - 1] = sdc_weight_deltas(L->lora, t[i]);
    }
}

/* lowp: bf16 in bf16 mode (every Linear but the time embedding's) */
static void load_lin(loader *L, lin_w *l, int out, int in, int bias, int lowp, const char *base) {
    l->out = out; l->in = in;
    const sdc_tensor *w = view(L, 2, out, in, 0, 0, "%s.weight", base);
    if (lowp) lin_weight(L, &l->w, &l->wb, &w, 1, out, in);
    else lin_views(L, &l->w, &w, 1);
    l->b = bias ? weight(L, 1, out, 0, 0, 0, "%s.bias", base) : NULL;
}

/* ldm ResBlock at `base` (e.g. "input_blocks.4.0"), cin → cout read from its conv. */
static void load_res(loader *L, res_block *r, int cin, int temb, const char *base) {
    char b[256];
    int cout = dim(L, 0, "output channels", "%s.in_layers.2.weight", base);
    r->cin = cin; r->cout = cout;
    sub(b, sizeof b, base, ".in_layers.0");  load_norm(L, &r->in_norm, cin, b);
    sub(b, sizeof b, base, ".in_layers.2");  load_conv(L, &r->in_conv, cout, cin, 3, 1, b);
    sub(b, sizeof b, base, ".emb_layers.1"); load_lin(L, &r->emb, cout, temb, 1, 0, b);
    sub(b, sizeof b, base, ".out_layers.0"); load_norm(L, &r->out_norm, cout, b);
    sub(b, sizeof b, base, ".out_layers.3"); load_conv(L, &r->out_conv, cout, cout, 3, 1, b);
    r->has_skip = cin != cout;
    if (!r->has_skip && find(L, "%s.skip_connection.weight", base))
        fail(L, "%s%s.skip_connection.weight: present but channels do not change (%d)", L->prefix,
             base, cin);
    if (r->has_skip) {
        sub(b, sizeof b, base, ".skip_connection");
        load_conv(L, &r->skip, cout, cin, 1, 1, b);
    }
    if (L->u->max_c < cout) L->u->max_c = cout;
    if (L->u->max_c < cin) L->u->max_c = cin;
}

static int heads_for(loader *L, const sdc_unet_params *p, int inner, const char *base,
                     int *heads, int *hd) {
    if (p->num_heads > 0) {
        *heads = p->num_heads;
    } else if (p->head_dim > 0) {
        if (inner % p->head_dim) return fail(L, "%s%s: width %d is not a multiple of head width %d",
                                             L->prefix, base, inner, p->head_dim);
        *heads = inner / p->head_dim;
    } else {
        return fail(L, "attention heads not given (num_heads and head_dim both <= 0)");
    }
    if (inner % *heads) return fail(L, "%s%s: width %d does not split into %d heads", L->prefix,
                                    base, inner, *heads);
    *hd = inner / *heads;
    return 0;
}

/* ldm CrossAttention at base (".attn1" self, ".attn2" cross on the context). */
static void load_attn(loader *L, const sdc_unet_params *p, cross_attn *a, int qdim, int inner,
                      int is_self, const char *base) {
    char b[256];
    a->is_self = is_self; a->qdim = qdim; a->inner = inner;
    a->kvdim = is_self ? qdim : dim(L, 1, "context width", "%s.to_k.weight", base);
    if (L->failed) return;
    if (heads_for(L, p, inner, base, &a->heads, &a->head_dim)) return;
    const sdc_tensor *q = view(L, 2, inner, qdim, 0, 0, "%s.to_q.weight", base);
    const sdc_tensor *kv[2] = {view(L, 2, inner, a->kvdim, 0, 0, "%s.to_k.weight", base),
                               view(L, 2, inner, a->kvdim, 0, 0, "%s.to_v.weight", base)};
    if (is_self) {
        const sdc_tensor *qkv[3] = {q, kv[0], kv[1]};
        lin_weight(L, &a->wq, &a->wqb, qkv, 3, 3 * inner, qdim);     /* [3*inner, qdim] */
    } else {
        lin_weight(L, &a->wq, &a->wqb, &q, 1, inner, qdim);          /* [inner, qdim] */
        lin_weight(L, &a->wkv, &a->wkvb, kv, 2, 2 * inner, a->kvdim); /* [2*inner, kvdim] */
    }
    sub(b, sizeof b, base, ".to_out.0");
    load_lin(L, &a->out, qdim, inner, 1, 1, b);
}

static void load_tf_block(loader *L, const sdc_unet_params *p, tf_block *t, int c,
                          const char *base) {
    char b[256];
    sub(b, sizeof b, base, ".norm1"); load_lnorm(L, &t->norm1, c, b);
    sub(b, sizeof b, base, ".attn1"); load_attn(L, p, &t->attn1, c, c, 1, b);
    sub(b, sizeof b, base, ".norm2"); load_lnorm(L, &t->norm2, c, b);
    sub(b, sizeof b, base, ".attn2"); load_attn(L, p, &t->attn2, c, c, 0, b);
    sub(b, sizeof b, base, ".norm3"); load_lnorm(L, &t->norm3, c, b);
    int f2 = dim(L, 0, "GEGLU width", "%s.ff.net.0.proj.weight", base);
    if (!L->failed && f2 % 2) fail(L, "%s%s.ff.net.0.proj.weight: GEGLU width %d is odd", L->prefix, base, f2);
    t->ff_inner = f2 / 2;
    sub(b, sizeof b, base, ".ff.net.0.proj"); load_lin(L, &t->ff_in, f2, c, 1, 1, b);
    sub(b, sizeof b, base, ".ff.net.2");      load_lin(L, &t->ff_out, c, f2 / 2, 1, 1, b);
}

/* ldm SpatialTransformer at base (e.g. "input_blocks.1.1") on c channels. */
static spatial_tf *load_st(loader *L, const sdc_unet_params *p, int c, const char *base) {
    spatial_tf *s = calloc(1, sizeof *s);
    if (!s) { fail(L, "out of memory"); return NULL; }
    char b[256];
    s->c = c;
    sub(b, sizeof b, base, ".norm"); load_norm(L, &s->norm, c, b);
    const sdc_tensor *pin = find(L, "%s.proj_in.weight", base);
    s->inner = dim(L, 0, "proj_in width", "%s.proj_in.weight", base);
    if (L->failed) return s;
    s->linear = pin->ndim == 2;
    int64_t in_ = s->inner, c_ = c;
    /* proj_in/out: Linear [inner, C] (SD 2.x) or 1x1 conv [inner, C, 1, 1] (SD 1.x). */
    int nd = s->linear ? 2 : 4;
    s->proj_in.out = s->inner;  s->proj_in.in = c;
    s->proj_out.out = c;        s->proj_out.in = s->inner;
    const sdc_tensor *pw = view(L, nd, in_, c_, 1, 1, "%s.proj_in.weight", base);
    lin_weight(L, &s->proj_in.w, &s->proj_in.wb, &pw, 1, s->inner, c);
    s->proj_in.b  = weight(L, 1, in_, 0, 0, 0, "%s.proj_in.bias", base);
    pw = view(L, nd, c_, in_, 1, 1, "%s.proj_out.weight", base);
    lin_weight(L, &s->proj_out.w, &s->proj_out.wb, &pw, 1, c, s->inner);
    s->proj_out.b = weight(L, 1, c_, 0, 0, 0, "%s.proj_out.bias", base);
    if (L->failed) return s;
    while (s->depth < UNET_MAX_DEPTH && find(L, "%s.transformer_blocks.%d.norm1.weight", base, s->depth))
        s->depth++;
    if (s->depth == 0) { fail(L, "%s%s.transformer_blocks.0.norm1.weight: missing", L->prefix, base); return s; }
    if (!(s->blocks = calloc((size_t)s->depth, sizeof *s->blocks))) { fail(L, "out of memory"); return s; }
    for (int d = 0; d < s->depth && !L->failed; d++) {
        snprintf(b, sizeof b, "%s.transformer_blocks.%d", base, d);
        load_tf_block(L, p, &s->blocks[d], s->inner, b);
    }
    if (L->u->max_c < s->inner) L->u->max_c = s->inner;
    for (int d = 0; d < s->depth && !L->failed; d++)
        if (L->u->max_c < s->blocks[d].ff_inner * 2) L->u->max_c = s->blocks[d].ff_inner * 2;
    return s;
}

static void free_st(spatial_tf *s) {
    if (!s) return;
    free(s->blocks);
    free(s);
}

/* Does a SpatialTransformer live at base? (its GroupNorm is the tell) */
static int has_st(loader *L, const char *fmt, int i, int j) {
    return find(L, fmt, i, j) != NULL;
}

static int count_blocks(loader *L, const char *what) {
    int n = 0;
    char pre[256];
    for (; n <= UNET_MAX_BLOCKS; n++) {
        snprintf(pre, sizeof pre, "%s.%d.", what, n);
        if (count_prefix(L, pre) == 0) break;
    }
    return n;
}

static void load_input_blocks(loader *L, const sdc_unet_params *p, int *ch_out, int *skip_ch) {
    sdc_unet *u = L->u;
    char b[256];
    int ch = u->info.model_channels, level = 0;
    for (int i = 0; i < u->n_in && !L->failed; i++) {
        unet_block *k = &u->in[i];
        k->level = level;
        k->cin = ch;
        if (i == 0) {   /* conv_in: [mc, in_ch, 3, 3] */
            k->kind = BLK_CONV_IN;
            k->cin = u->info.in_channels;
            L->level = 0;
            load_conv(L, &k->conv, ch, u->info.in_channels, 3, 1, "input_blocks.0.0");
        } else if (find(L, "input_blocks.%d.0.op.weight", i)) {   /* Downsample: stride 2 pad 1 */
            k->kind = BLK_DOWN;
            snprintf(b, sizeof b, "input_blocks.%d.0.op", i);
            load_conv(L, &k->conv, ch, ch, 3, 0, b);
            level++;
            u->n_down++;
        } else {
            k->kind = BLK_RES;
            L->level = level;
            snprintf(b, sizeof b, "input_blocks.%d.0", i);
            load_res(L, &k->res, ch, u->info.time_embed_dim, b);
            ch = k->res.cout;
            if (has_st(L, "input_blocks.%d.%d.norm.weight", i, 1)) {
                snprintf(b, sizeof b, "input_blocks.%d.1", i);
                k->attn = load_st(L, p, ch, b);
            }
        }
        k->cout = ch;
        skip_ch[i] = ch;
    }
    *ch_out = ch;
}

static void load_middle(loader *L, const sdc_unet_params *p, int *ch) {
    sdc_unet *u = L->u;
    char b[256];
    for (int i = 0; i < u->n_mid && !L->failed; i++) {
        unet_block *k = &u->mid[i];
        k->kind = BLK_RES;
        k->level = u->n_down;
        L->level = u->n_down;
        k->cin = *ch;
        snprintf(b, sizeof b, "middle_block.%d", i);
        if (find(L, "middle_block.%d.in_layers.0.weight", i)) {
            load_res(L, &k->res, *ch, u->info.time_embed_dim, b);
            *ch = k->res.cout;
        } else if (find(L, "middle_block.%d.norm.weight", i)) {
            k->attn = load_st(L, p, *ch, b);
            k->cin = -1;    /* marks a transformer-only middle entry */
        } else {
            fail(L, "%smiddle_block.%d: neither a ResBlock nor a SpatialTransformer", L->prefix, i);
        }
        k->cout = *ch;
    }
}

static void load_output_blocks(loader *L, const sdc_unet_params *p, int ch, const int *skip_ch) {
    sdc_unet *u = L->u;
    char b[256];
    int level = u->n_down, sp = u->n_in;
    for (int i = 0; i < u->n_out && !L->failed; i++) {
        unet_block *k = &u->out[i];
        int sc = skip_ch[--sp];
        k->kind = BLK_RES;
        k->level = level;
        L->level = level;
        k->cin = ch + sc;   /* ResBlock on cat(h, skip) */
        snprintf(b, sizeof b, "output_blocks.%d.0", i);
        load_res(L, &k->res, ch + sc, u->info.time_embed_dim, b);
        ch = k->res.cout;
        int j = 1;
        if (has_st(L, "output_blocks.%d.%d.norm.weight", i, 1)) {
            snprintf(b, sizeof b, "output_blocks.%d.1", i);
            k->attn = load_st(L, p, ch, b);
            j = 2;
        }
        if (find(L, "output_blocks.%d.%d.conv.weight", i, j)) {   /* Upsample: nearest 2x, conv */
            if (level == 0) { fail(L, "%soutput_blocks.%d: Upsample above the top level", L->prefix, i); return; }
            k->has_up = 1;
            snprintf(b, sizeof b, "output_blocks.%d.%d.conv", i, j);
            L->level = level - 1;                                 /* it runs at 2x */
            load_conv(L, &k->up, ch, ch, 3, 1, b);
            level--;
        }
        k->cout = ch;
    }
    if (!L->failed && level != 0)
        fail(L, "%soutput_blocks: %d Downsamples but %d Upsamples", L->prefix, u->n_down,
             u->n_down - level);
}

/* Fills info.channel_mult / num_res_blocks / transformer depth / context from the blocks. */
static void fill_info(loader *L) {
    sdc_unet *u = L->u;
    sdc_unet_info *in = &u->info;
    in->n_levels = u->n_down + 1;
    if (in->n_levels > UNET_MAX_LEVELS) {
        fail(L, "%sinput_blocks: %d levels, at most %d supported", L->prefix, in->n_levels, UNET_MAX_LEVELS);
        return;
    }
    for (int i = 1; i < u->n_in; i++) {
        const unet_block *k = &u->in[i];
        if (k->kind != BLK_RES) continue;
        in->channel_mult[k->level] = k->cout / in->model_channels;
        if (k->level == 0) in->num_res_blocks++;
        if (k->attn && !in->transformer_depth) {
            in->transformer_depth = k->attn->depth;
            in->linear_proj = k->attn->linear;
            in->context_dim = k->attn->blocks[0].attn2.kvdim;
        }
    }
    for (int i = 0; i < u->n_mid && !in->transformer_depth; i++)
        if (u->mid[i].attn) {
            in->transformer_depth = u->mid[i].attn->depth;
            in->linear_proj = u->mid[i].attn->linear;
            in->context_dim = u->mid[i].attn->blocks[0].attn2.kvdim;
        }
    /* Every cross-attention must read the same context width. */
    unet_block *lists[3] = {u->in, u->mid, u->out};
    int counts[3] = {u->n_in, u->n_mid, u->n_out};
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < counts[l]; i++) {
            spatial_tf *s = lists[l][i].attn;
            for (int d = 0; s && d < s->depth; d++)
                if (s->blocks[d].attn2.kvdim != in->context_dim) {
                    fail(L, "cross-attention context widths differ (%d vs %d)",
                         s->blocks[d].attn2.kvdim, in->context_dim);
                    return;
                }
        }
}

static int load_all(loader *L, const sdc_unet_params *p) {
    sdc_unet *u = L->u;
    const sdc_tensor *ci = find(L, "input_blocks.0.0.weight");
    if (!ci) return fail(L, "%sinput_blocks.0.0.weight: missing (not an SD UNet: neither %s* nor a "
                         "diffusers UNet with time_embedding.linear_1.weight)", L->prefix, L->prefix);
    if (ci->ndim != 4) return fail(L, "%sinput_blocks.0.0.weight: not a conv weight", L->prefix);
    u->info.model_channels = dim(L, 0, "model channels", "input_blocks.0.0.weight");
    u->info.in_channels = dim(L, 1, "input channels", "input_blocks.0.0.weight");
    u->info.time_embed_dim = dim(L, 0, "time embedding width", "time_embed.0.weight");
    if (L->failed) return -1;
    if (u->info.model_channels % 2)
        return fail(L, "%sinput_blocks.0.0.weight: odd model channels %d (sinusoidal embedding)", L->prefix,
                    u->info.model_channels);
    load_lin(L, &u->time1, u->info.time_embed_dim, u->info.model_channels, 1, 0, "time_embed.0");
    load_lin(L, &u->time2, u->info.time_embed_dim, u->info.time_embed_dim, 1, 0, "time_embed.2");
    if (find(L, "label_emb.0.0.weight")) {   /* SDXL: Linear(adm, temb), SiLU, Linear(temb, temb) */
        u->info.adm_in_channels = dim(L, 1, "vector conditioning width", "label_emb.0.0.weight");
        load_lin(L, &u->label1, u->info.time_embed_dim, u->info.adm_in_channels, 1, 0, "label_emb.0.0");
        load_lin(L, &u->label2, u->info.time_embed_dim, u->info.time_embed_dim, 1, 0, "label_emb.0.2");
    } else if (count_prefix(L, "label_emb.")) {
        return fail(L, "%slabel_emb: not SDXL's label_emb.0.0/.0.2 (class-conditioned UNets are not "
                    "supported)", L->prefix);
    }

    u->n_in = count_blocks(L, "input_blocks");
    u->n_mid = count_blocks(L, "middle_block");
    u->n_out = count_blocks(L, "output_blocks");
    if (u->n_in > UNET_MAX_BLOCKS || u->n_out > UNET_MAX_BLOCKS || u->n_mid > UNET_MAX_BLOCKS)
        return fail(L, "more than %d blocks", UNET_MAX_BLOCKS);
    if (u->n_out != u->n_in)
        return fail(L, "%d input_blocks but %d output_blocks", u->n_in, u->n_out);
    if (!(u->in = calloc((size_t)u->n_in, sizeof *u->in)) ||
        !(u->mid = calloc((size_t)u->n_mid + 1, sizeof *u->mid)) ||
        !(u->out = calloc((size_t)u->n_out, sizeof *u->out)))
        return fail(L, "out of memory");
    int skip_ch[UNET_MAX_BLOCKS + 1], ch = 0;
    for (int i = 1; i < u->n_in; i++) L->deepest += find(L, "input_blocks.%d.0.op.weight", i) != NULL;
    load_input_blocks(L, p, &ch, skip_ch);
    load_middle(L, p, &ch);
    load_output_blocks(L, p, ch, skip_ch);
    if (L->failed) return -1;
    ch = u->out[u->n_out - 1].cout;
    load_norm(L, &u->out_norm, ch, "out.0");
    u->info.out_channels = dim(L, 0, "output channels", "out.2.weight");
    L->level = 0;
    load_conv(L, &u->out_conv, u->info.out_channels, ch, 3, 1, "out.2");
    if (L->failed) return -1;
    if (u->max_c < u->info.in_channels) u->max_c = u->info.in_channels;
    fill_info(L);
    return L->failed ? -1 : 0;
}

/* ── the diffusers layout: each tensor renamed to its ldm name once, at load ──
 *
 * diffusers UNet2DConditionModel → ldm UNetModel as diffusers'
 * scripts/convert_diffusers_to_original_stable_diffusion.py maps them, for any number of levels
 * (R = resnets per down block, read from down_blocks.0): down_blocks.i.resnets.j →
 * input_blocks.(1 + i(R+1) + j).0, up_blocks.i.upsamplers.0 → output_blocks.(i(R+1) + R).(2 if
 * the block has attentions, else 1), ... The table is sdc's one: sdc_diffusers_to_original
 * (runtime/names.h), which `sdc compare` also uses to match the two layouts. */

typedef struct up_ctx { const sdc_store *st; const char *dpre; } up_ctx;

/* Whether diffusers up block i has attentions (its upsampler then sits in slot 2). */
static int up_has_attn(void *p, int i) {
    const up_ctx *c = p;
    char pre[320];
    snprintf(pre, sizeof pre, "%sup_blocks.%d.attentions.", c->dpre, i);
    return sdc_store_count_prefix(c->st, pre) > 0;
}

/* Maps one diffusers UNet name (without its prefix dpre) to its ldm name (without
 * "model.diffusion_model."). Returns 0, or -1 when the name is not a UNet weight the table knows
 * (it is then ignored, like unknown extra keys). */
static int diffusers_to_ldm(loader *L, const char *dpre, const char *d, int R, char *out, size_t cap) {
    static const char P[] = "model.diffusion_model.";
    char full[512 + sizeof P];
    up_ctx c = {L->st, dpre};
    if (sdc_diffusers_to_original('u', d, R, 0, up_has_attn, &c, full, sizeof full) ||
        strncmp(full, P, sizeof P - 1))
        return -1;
    int w = snprintf(out, cap, "%s", full + sizeof P - 1);
    return w >= 0 && (size_t)w < cap ? 0 : -1;
}

static void free_table(loader *L) {
    for (size_t i = 0; i < L->ntab; i++) free(L->tab[i].ldm);
    free(L->tab);
    L->tab = NULL;
    L->ntab = 0;
}

/* Finds a diffusers UNet in the store (the prefix before "time_embedding.linear_1.weight":
 * "" for unet/diffusion_pytorch_model.safetensors opened alone) and builds the ldm-name table.
 * Returns 1 when built, 0 when there is no diffusers UNet, -1 on error. */
static int build_diffusers_table(loader *L) {
    static const char key[] = "time_embedding.linear_1.weight";
    const char *dpre = NULL;
    size_t dlen = 0, n = sdc_store_count(L->st);
    for (size_t i = 0; i < n && !dpre; i++) {
        const char *nm = sdc_store_at(L->st, i)->name;
        size_t l = strlen(nm), k = sizeof key - 1;
        if (l >= k && !strcmp(nm + l - k, key) && (l == k || nm[l - k - 1] == '.')) { dpre = nm; dlen = l - k; }
    }
    if (!dpre) return 0;
    char pfx[256], pre[300];
    if (dlen >= sizeof pfx) return fail(L, "%s: name too long", dpre);
    memcpy(pfx, dpre, dlen);
    pfx[dlen] = 0;
    int R = 0;   /* resnets per down block */
    for (; R < UNET_MAX_BLOCKS; R++) {
        snprintf(pre, sizeof pre, "%sdown_blocks.0.resnets.%d.", pfx, R);
        if (!sdc_store_count_prefix(L->st, pre)) break;
    }
    if (!(L->tab = calloc(n ? n : 1, sizeof *L->tab))) return fail(L, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor *t = sdc_store_at(L->st, i);
        char ldm[512];
        if (strncmp(t->name, pfx, dlen) || sdc_store_get(L->st, t->name) != t ||   /* shadowed by a later file */
            diffusers_to_ldm(L, pfx, t->name + dlen, R, ldm, sizeof ldm))
            continue;
        if (!(L->tab[L->ntab].ldm = strdup(ldm))) return fail(L, "out of memory");
        L->tab[L->ntab++].t = t;
    }
    qsort(L->tab, L->ntab, sizeof *L->tab, alias_cmp);
    return 1;
}

/* Output channels ob·12 .. ob·12+11 of the 3x3 weight t [cout, cin, 3, 3] (any float dtype) with
 * its LoRA deltas d (NULL: none) packed into U (k_wino_pack's layout), widened through wb
 * [12, cin, 3, 3] scratch. Returns 0, or -1 when t is not float or out of memory. Used at load
 * (default mode) and per call (low-mem): the same bits. */
static int pack_block_from(float *U, float *wb, const sdc_tensor *t, const sdc_lora_mod *d, int cout,
                           int cin, int ob) {
    const size_t o0 = (size_t)ob * K_WINO_BLOCK;
    const size_t n = (size_t)cout - o0 < K_WINO_BLOCK ? (size_t)cout - o0 : K_WINO_BLOCK;
    if (sdc_weight_widen_rows(wb, t, d, o0, n)) return -1;
    k_wino_pack_block(U, wb, cout, cin, ob);
    return 0;
}

/* A Winograd conv's job: j->dst = k_wino_pack(t as f32), a block at a time through the thread's
 * scratch wb [12, cin, 3, 3] (no f32 copy of the whole weight). Returns 0, or -1 (no memory, or t
 * is not float). */
static int pack_job(const conv_job *j, float *wb, float *U) {
    const int nob = (j->cout + K_WINO_BLOCK - 1) / K_WINO_BLOCK;
    int rc = wb ? 0 : -1;
    for (int ob = 0; ob < nob && !rc; ob++) rc = pack_block_from(U, wb, j->t, j->delta, j->cout, j->cin, ob);
    return rc;
}

/* bf16 jobs: the f32 values (LoRA merged) in a scratch copy (U, or the parts back to back), then
 * packed as bf16 into j->dst. Returns 0, or -1 (no memory, or a part is not float). */
static int bf16_job(const conv_job *j, float *wb) {
    const int wino = j->pack == JOB_WINO_BF16;
    float *f = malloc((wino ? k_wino_packed_floats(j->cout, j->cin) : (size_t)j->cout * j->cin) * sizeof *f);
    int rc = f ? 0 : -1;
    if (!rc && wino) {
        rc = pack_job(j, wb, f);
        if (!rc) k_wino_bf16_pack((uint32_t *)j->dst, f, j->cout, j->cin);
    } else if (!rc) {
        sdc_err ce;
        float *d = f;
        for (int i = 0; i <= j->nmore && !rc; i++) {
            const sdc_tensor *t = i ? j->more[i - 1] : j->t;
            rc = sdc_weight_load_f32(d, t, i ? j->more_delta[i - 1] : j->delta, &ce);
            d += t->numel;
        }
        if (!rc) k_linear_bf16_pack((uint32_t *)j->dst, f, j->cout, j->cin);
    }
    free(f);
    return rc;
}

/* Jobs in file order (file, then byte offset): the threads then read the mapping front to back,
 * and the pages behind the slowest thread can be handed back in big windows. */
static int job_cmp(const void *a, const void *b) {
    const sdc_tensor *x = ((const conv_job *)a)->t, *y = ((const conv_job *)b)->t;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The file pages behind the bind are dropped from the RSS in windows of this many bytes (a few
 * dozen madvise calls for SD 1.5, not one per tensor), so the load's peak stays the weights plus
 * about a window per thread, not the weights plus the file. */
#define RELEASE_WINDOW ((uint64_t)64 << 20)

/* Runs every pending conversion, spread over the OpenMP threads in file order (dynamic: each
 * thread takes the next tensor). done[] marks finished jobs; under a lock the first unfinished job
 * is found, and every byte of its file before it (read by finished jobs only) is released once a
 * window's worth has gathered. */
static int convert_all(loader *L) {
    const long n = (long)L->njobs;
    if (n == 0) return 0;
    qsort(L->jobs, L->njobs, sizeof *L->jobs, job_cmp);
    int cin_max = 0;
    for (long i = 0; i < n; i++)
        if ((L->jobs[i].pack == JOB_WINO || L->jobs[i].pack == JOB_WINO_BF16) && L->jobs[i].cin > cin_max)
            cin_max = L->jobs[i].cin;
    unsigned char *done = calloc((size_t)n, 1);
    if (!done) return fail(L, "out of memory");
    long bad = -1, first_open = 0;   /* first_open: every job before it has finished */
    int rel_file = L->jobs[0].t->file;
    uint64_t rel_off = L->jobs[0].t->offset, rel_end = 0;   /* released up to rel_off; read up to rel_end */
    #pragma omp parallel
    {
        float *wb = cin_max ? malloc(K_WINO_BLOCK * (size_t)cin_max * 9 * sizeof(float)) : NULL;
        #pragma omp for schedule(dynamic, 1)
        for (long i = 0; i < n; i++) {
            sdc_err ce;
            const conv_job *j = &L->jobs[i];
            int rc = j->pack == JOB_WINO ? pack_job(j, wb, j->dst)
                   : j->pack ? bf16_job(j, wb) : sdc_weight_load_f32(j->dst, j->t, j->delta, &ce);
            #pragma omp critical(sdc_unet_convert)
            {
                if (rc != 0 && (bad < 0 || i < bad)) bad = i;
                done[i] = 1;
                while (first_open < n && done[first_open]) {
                    const sdc_tensor *t = L->jobs[first_open].t;
                    if (t->file != rel_file) {   /* a file ends: hand back the rest of it */
                        sdc_store_release_span(L->st, rel_file, rel_off, rel_end);
                        rel_file = t->file;
                        rel_off = t->offset;
                        rel_end = 0;
                    }
                    if (t->offset + t->nbytes > rel_end) rel_end = t->offset + t->nbytes;
                    first_open++;
                }
                uint64_t upto = first_open < n && L->jobs[first_open].t->file == rel_file
                                    ? L->jobs[first_open].t->offset : rel_end;
                if (upto > rel_off + RELEASE_WINDOW) {
                    sdc_store_release_span(L->st, rel_file, rel_off, upto);
                    rel_off = upto;
                }
            }
        }
        free(wb);
    }
    sdc_store_release_span(L->st, rel_file, rel_off, rel_end);
    free(done);
    if (bad >= 0) {
        sdc_err ce = {{0}};
        const conv_job *j = &L->jobs[bad];
        if (j->pack) snprintf(ce.msg, sizeof ce.msg, "out of memory");   /* view() checked the dtype */
        else if (sdc_tensor_to_f32(j->t, j->dst, &ce) == 0) snprintf(ce.msg, sizeof ce.msg, "out of memory");
        return fail(L, "%s: %s", j->t->name, ce.msg);
    }
    return 0;
}

/* A conversion left running by params.background: the loader (its jobs, store and LoRA set) and
 * the thread converting them with its own team of `threads` OpenMP threads. */
typedef struct bind_job {
    loader    L;
    sdc_err   e;
    int       threads, rc;
    pthread_t thread;
} bind_job;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *bind_main(void *arg) {
    bind_job *b = arg;
    omp_set_num_threads(b->threads);   /* a new thread starts from the defaults: the caller's count */
    b->rc = convert_all(&b->L);
    b->L.u->bind_done = mono_s();
    return NULL;
}

int sdc_unet_wait(sdc_unet *u, double *t_done, sdc_err *e) {
    if (!u) return sdc_errf(e, "unet: no model");
    if (u->bind) {
        bind_job *b = u->bind;
        pthread_join(b->thread, NULL);
        if (b->rc) {
            u->bind_failed = 1;
            snprintf(u->bind_err, sizeof u->bind_err, "%s", b->e.msg);
        }
        free(b->L.jobs);
        free(b);
        u->bind = NULL;
    }
    if (t_done) *t_done = u->bind_done;
    if (u->bind_failed) return sdc_errf(e, "%s", u->bind_err);
    return 0;
}

sdc_unet *sdc_unet_load(const sdc_store *st, const sdc_unet_params *p, sdc_err *e) {
    sdc_unet *u = calloc(1, sizeof *u);
    if (!u) { sdc_errf(e, "unet: out of memory"); return NULL; }
    loader L = {st, NULL, 0, 0, "model.diffusion_model.", NULL, 0, u, e, 0, 0, 0, NULL};
    if (!p) { fail(&L, "no parameters"); sdc_unet_free(u); return NULL; }
    L.lora = p->lora;
    u->low_mem = p->low_mem != 0;
    u->bf16 = p->bf16 != 0;
    if (u->bf16 && u->low_mem) {
        fail(&L, "bf16 and low-mem cannot be combined (low-mem keeps the file's weights, bf16 packs them)");
        sdc_unet_free(u);
        return NULL;
    }
    /* The original layout wins when present; else a diffusers UNet, renamed to ldm names. */
    if (!sdc_store_get(st, "model.diffusion_model.input_blocks.0.0.weight")) {
        int rc = build_diffusers_table(&L);
        if (rc < 0) { free_table(&L); sdc_unet_free(u); return NULL; }
        if (rc > 0) L.prefix = "[diffusers UNet, ldm name] ";
    }
    int rc = load_all(&L, p);
    u->info.weight_bytes = u->weight_bytes;
    free_table(&L);   /* the names are resolved: the jobs hold the store's tensors */
    if (rc == 0 && p->background && L.njobs) {
        bind_job *b = calloc(1, sizeof *b);
        if (b) {
            b->L = L;
            b->L.e = &b->e;
            b->threads = omp_get_max_threads();
            if (pthread_create(&b->thread, NULL, bind_main, b) == 0) {
                u->bind = b;
                return u;
            }
            free(b);
        }
        /* no thread: convert here */
    }
    if (rc == 0) rc = convert_all(&L);
    free(L.jobs);
    if (rc != 0) { sdc_unet_free(u); return NULL; }
    return u;
}

void sdc_unet_free(sdc_unet *u) {
    if (!u) return;
    sdc_unet_wait(u, NULL, NULL);   /* a background conversion writes into the chunks */
    for (size_t i = 0; i < u->n_chunks; i++) munmap(u->chunks[i].p, u->chunks[i].size);
    free(u->chunks);
    free(u->views);
    for (int i = 0; u->in && i < u->n_in; i++) free_st(u->in[i].attn);
    for (int i = 0; u->mid && i < u->n_mid; i++) free_st(u->mid[i].attn);
    for (int i = 0; u->out && i < u->n_out; i++) free_st(u->out[i].attn);
    free(u->in);
    free(u->mid);
    free(u->out);
    free(u);
}

const sdc_unet_info *sdc_unet_get_info(const sdc_unet *u) { return u ? &u->info : NULL; }

void sdc_unet_layout_digest(sdc_unet *u, uint8_t out[32]) {
    sdc_unet_wait(u, NULL, NULL);
    sdc_sha256 h;
    sdc_sha256_init(&h);
    uint8_t mode = (uint8_t)u->low_mem;
    sdc_sha256_update(&h, &mode, 1);
    for (size_t i = 0; i < u->n_chunks; i++) {          /* the bound f32 and packed weights */
        uint64_t used = u->chunks[i].used;
        sdc_sha256_update(&h, &used, sizeof used);
        sdc_sha256_update(&h, u->chunks[i].p, u->chunks[i].used);
    }
    for (size_t i = 0; i < u->n_views; i++) {           /* the views as stored, and their LoRA deltas */
        const sdc_weight *w = u->views[i];
        for (int k = 0; k < w->nsrc; k++) {
            const sdc_tensor *t = w->src[k];
            uint64_t d[2] = {(uint64_t)t->dtype, (uint64_t)t->nbytes};
            sdc_sha256_update(&h, t->name, strlen(t->name) + 1);
            sdc_sha256_update(&h, d, sizeof d);
            sdc_sha256_update(&h, t->data, t->nbytes);
            for (const sdc_lora_mod *m = w->delta[k]; m; m = m->next) {
                int64_t g[4] = {m->row0, m->rows, m->cols, m->rank};
                sdc_sha256_update(&h, g, sizeof g);
                sdc_sha256_update(&h, &m->scale, sizeof m->scale);
                sdc_sha256_update(&h, m->up, (size_t)(m->rows * m->rank) * sizeof(float));
                sdc_sha256_update(&h, m->down, (size_t)(m->rank * m->cols) * sizeof(float));
            }
        }
    }
    sdc_sha256_final(&h, out);
}

void sdc_unet_set_debug(sdc_unet *u, sdc_unet_debug_fn fn, void *user) {
    if (!u) return;
    u->dbg = fn;
    u->dbg_user = user;
}

/* ───────────────────────────── forward ───────────────────────────── */

/* Everything one forward needs besides the block's weights. */
typedef struct fwd {
    sdc_unet    *u;
    sdc_arena   *a;
    const float *emb;      /* [N, temb]: SiLU(time_embed(t)) — emb_layers.0 is the SiLU */
    const float *ctx;      /* [N, Lc, context_dim] */
    const float *y;        /* [N, adm]: SDXL's vector conditioning, or NULL */
    int          N, Lc;
    int          oom;
} fwd;

static float *talloc(fwd *f, size_t n) {
    float *p = sdc_arena_f32(f->a, n);
    if (!p) f->oom = 1;
    return p;
}

static void debug(fwd *f, const char *name, const float *x, int C, int H, int W) {
    if (f->u->dbg && !f->oom) f->u->dbg(f->u->dbg_user, name, x, f->N, C, H, W);
}

/* The f32 values of a conv/linear matrix: the load-time copy, or (low-mem) the store's views
 * widened into arena scratch, freed by the caller's next sdc_arena_reset. NULL sets f->oom. */
static const float *wf32(fwd *f, const sdc_weight *w) {
    const float *p = sdc_weight_f32(w, f->a);
    if (!p) f->oom = 1;
    return p;
}

/* k_rows_fn for a streamed Winograd conv (ctx: its conv_w): output channels r0 .. r0+nr-1
 * of its weight as f32 [nr, cin, 3, 3], LoRA deltas added (low-mem), from the store's view. */
static int wino_rows(void *ctx, float *dst, int r0, int nr) {
    const conv_w *c = ctx;
    return sdc_weight_widen_rows(dst, c->w.src[0], c->w.delta[0], (size_t)r0, (size_t)nr);
}

/* out[N, cout, Ho, Wo] = conv(in) + b (+ res [N, cout, Ho, Wo] when not NULL; may equal out:
 * a residual added as the outputs are written, for Winograd convs). */
static void conv_res(fwd *f, float *out, const float *in, const conv_w *c, int H, int W, int stride,
                     const float *res) {
    if (f->oom) return;
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    int pad = c->k / 2;
    if (c->Ub) {
        if (!k_conv3x3_wino_bf16(f->a, out, in, c->Ub, c->b, res, f->N, c->cin, H, W, c->cout)) f->oom = 1;
    } else if (c->wino) {
        int ok = c->U ? k_conv3x3_wino(f->a, out, in, c->U, c->b, res, f->N, c->cin, H, W, c->cout)
                      : k_conv3x3_wino_stream(f->a, out, in, wino_rows, (void *)c, c->b, res, f->N, c->cin, H, W,
                                              c->cout);
        if (!c->U && f->u->low_mem) sdc_store_release_tensor(c->w.st, c->w.src[0]);   /* low-mem: its pages leave the RSS */
        if (!ok) f->oom = 1;
    } else {
        const int Ho = (H + 2 * pad - c->k) / stride + 1, Wo = (W + 2 * pad - c->k) / stride + 1;
        const size_t n = (size_t)f->N * c->cout * Ho * Wo;
        const float *w = wf32(f, &c->w);                                  /* [cout, cin, k, k] */
        float *o = res == out ? talloc(f, n) : out;                       /* res in out: conv aside */
        if (w && o) k_conv2d(f->a, o, in, w, c->b, f->N, c->cin, H, W, c->cout, c->k, c->k, stride,
                             pad, pad, pad, pad);
        if (w && o && res) k_add(out, o, res, n);
    }
    sdc_arena_reset(f->a, m);
}

static void conv(fwd *f, float *out, const float *in, const conv_w *c, int H, int W, int stride) {
    conv_res(f, out, in, c, H, W, stride, NULL);
}

/* out[M, l->out] = in[M, l->in] · wᵀ + b (torch.nn.Linear). */
/* out[M, N] (+)= in[M, K] · W + b in bf16 (W packed, K = in's width); sets f->oom when the arena
 * cannot give the scratch. */
static void linear_bf16(fwd *f, float *out, const float *in, const uint32_t *wb, const float *b, int M, int K, int N,
                        int acc) {
    if (!f->oom && !k_linear_bf16(f->a, out, in, wb, b, M, K, N, acc)) f->oom = 1;
}

/* out[M, N] (+)= in[M, K] · wᵀ + b with w [N, K] (sdc_weight_linear: streamed a panel of rows at
 * a time from the views or the f32 copy); sets f->oom when the arena cannot give the scratch. */
static void lin(fwd *f, float *out, const float *in, const sdc_weight *w, const float *b, int M, int K, int N,
                int acc) {
    if (!f->oom && !sdc_weight_linear(f->a, out, in, w, b, M, K, N, acc)) f->oom = 1;
}

static void linear(fwd *f, float *out, const float *in, const lin_w *l, int M) {
    if (l->wb) linear_bf16(f, out, in, l->wb, l->b, M, l->in, l->out, 0);
    else lin(f, out, in, &l->w, l->b, M, l->in, l->out, 0);
}

/* out[M, l->out] += in[M, l->in] · wᵀ + b: a residual branch's last Linear added straight into the
 * residual stream (bias added first, then the products), instead of a separate output buffer and
 * a k_add pass over both. */
static void linear_acc(fwd *f, float *out, const float *in, const lin_w *l, int M) {
    if (l->wb) linear_bf16(f, out, in, l->wb, l->b, M, l->in, l->out, 1);
    else lin(f, out, in, &l->w, l->b, M, l->in, l->out, 1);
}

/* ldm ResBlock: out[N,cout,H,W] = skip(x) + out_layers(in_layers(x) + emb_layers(emb)).
 * x: [N, cin, H, W]; out must not alias x. */
static void res_block_fwd(fwd *f, const res_block *r, float *out, const float *x, int H, int W) {
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    int N = f->N, HW = H * W;
    size_t nin = (size_t)N * r->cin * HW, nout = (size_t)N * r->cout * HW;   /* [N, cin|cout, H, W] */
    float *h = talloc(f, nin), *h2 = talloc(f, nout), *eo = talloc(f, (size_t)N * r->cout);
    if (f->oom) goto done;
    k_group_norm(h, x, r->in_norm.g, r->in_norm.b, N, r->cin, HW, UNET_GROUPS, UNET_GN_EPS, 1);
    conv(f, h2, h, &r->in_conv, H, W, 1);                                 /* [N, cout, H, W] */
    linear(f, eo, f->emb, &r->emb, N);                                    /* [N, cout] */
    k_add_channel_bias(h2, eo, N, r->cout, HW);
    k_group_norm(h2, h2, r->out_norm.g, r->out_norm.b, N, r->cout, HW, UNET_GROUPS, UNET_GN_EPS, 1);
    if (r->has_skip) {                                                    /* out = skip(x) + ... */
        conv(f, out, x, &r->skip, H, W, 1);                               /* [N, cout, H, W] */
        conv_res(f, out, h2, &r->out_conv, H, W, 1, out);
    } else {                                                              /* out = x + ... */
        conv_res(f, out, h2, &r->out_conv, H, W, 1, x);
    }
done:
    sdc_arena_reset(f->a, m);
}

/* ldm CrossAttention, added to the residual: out[N*Lq, qdim] += to_out(softmax(q kᵀ/√d) v), q from
 * x [N, Lq, qdim], k and v from x (self) or from the context [N, Lc, kvdim]. */
static void cross_attn_fwd(fwd *f, const cross_attn *at, float *out, const float *x, int Lq) {
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    int N = f->N, M = N * Lq, in = at->inner;
    const float *q, *k, *v;
    int ldq, ldkv, Lk;
    float *o = talloc(f, (size_t)M * in);                                 /* [N, Lq, inner] */
    if (at->is_self) {
        float *qkv = talloc(f, (size_t)M * 3 * in);                       /* [N, Lq, 3*inner] */
        if (f->oom) goto done;
        if (at->wqb) linear_bf16(f, qkv, x, at->wqb, NULL, M, at->qdim, 3 * in, 0);
        else lin(f, qkv, x, &at->wq, NULL, M, at->qdim, 3 * in, 0);  /* wq: [3*inner, qdim] */
        q = qkv; k = qkv + in; v = qkv + 2 * in;
        ldq = ldkv = 3 * in;
        Lk = Lq;
    } else {
        float *qb = talloc(f, (size_t)M * in);                            /* [N, Lq, inner] */
        float *kv = talloc(f, (size_t)N * f->Lc * 2 * in);                /* [N, Lc, 2*inner] */
        if (f->oom) goto done;
        if (at->wqb) {
            linear_bf16(f, qb, x, at->wqb, NULL, M, at->qdim, in, 0);
            linear_bf16(f, kv, f->ctx, at->wkvb, NULL, N * f->Lc, at->kvdim, 2 * in, 0);
        } else {
            lin(f, qb, x, &at->wq, NULL, M, at->qdim, in, 0);                 /* [inner, qdim] */
            lin(f, kv, f->ctx, &at->wkv, NULL, N * f->Lc, at->kvdim, 2 * in, 0);  /* [2*inner, kvdim] */
        }
        q = qb; k = kv; v = kv + in;
        ldq = in; ldkv = 2 * in;
        Lk = f->Lc;
    }
    if (f->oom) goto done;
    k_attention(f->a, o, q, ldq, k, ldkv, v, ldkv, N, Lq, Lk, at->heads, at->head_dim, 0);
    linear_acc(f, out, o, &at->out, M);                                   /* [N, Lq, qdim] */
done:
    sdc_arena_reset(f->a, m);
}

/* GEGLU feed-forward, chunked over rows, added to the residual: out[M, C] += net.2(value * gelu(gate)). */
static void feed_forward_fwd(fwd *f, const tf_block *t, float *out, const float *x, int M) {
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    int F = t->ff_inner, C = t->ff_out.out, rows = M < UNET_FF_ROWS ? M : UNET_FF_ROWS;
    float *p = talloc(f, (size_t)rows * 2 * F);                            /* [rows, 2F] */
    float *g = talloc(f, (size_t)rows * F);                                /* [rows, F] */
    if (f->oom) goto done;
    for (int r0 = 0; r0 < M; r0 += rows) {
        int n = M - r0 < rows ? M - r0 : rows;
        linear(f, p, x + (size_t)r0 * C, &t->ff_in, n);                   /* [n, 2F] */
        if (f->oom) goto done;
        k_geglu(g, p, n, F);
        linear_acc(f, out + (size_t)r0 * C, g, &t->ff_out, n);            /* += [n, C] */
    }
done:
    sdc_arena_reset(f->a, m);
}

/* ldm BasicTransformerBlock on x [N, L, C], in place. */
static void tf_block_fwd(fwd *f, const tf_block *t, float *x, int L) {
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    int M = f->N * L, C = t->norm1.c;
    size_t n = (size_t)M * C;
    float *h = talloc(f, n);                                               /* [N, L, C] */
    if (f->oom) goto done;
    k_layer_norm(h, x, t->norm1.g, t->norm1.b, M, C, UNET_LN_EPS);
    cross_attn_fwd(f, &t->attn1, x, h, L);                                 /* x += attn1(norm1 x) */
    k_layer_norm(h, x, t->norm2.g, t->norm2.b, M, C, UNET_LN_EPS);
    cross_attn_fwd(f, &t->attn2, x, h, L);                                 /* x += attn2(norm2 x, ctx) */
    k_layer_norm(h, x, t->norm3.g, t->norm3.b, M, C, UNET_LN_EPS);
    feed_forward_fwd(f, t, x, h, M);                                       /* x += ff(norm3 x) */
done:
    sdc_arena_reset(f->a, m);
}

/* ldm SpatialTransformer: out[N,C,H,W] = x + proj_out(blocks(proj_in(norm(x)))). */
static void spatial_tf_fwd(fwd *f, const spatial_tf *s, float *out, const float *x, int H, int W) {
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    int N = f->N, L = H * W, M = N * L, C = s->c;
    size_t n = (size_t)M * C;
    float *hn = talloc(f, n), *t = talloc(f, n);
    float *hs = talloc(f, (size_t)M * s->inner);                           /* [N, L, inner] */
    if (f->oom) goto done;
    k_group_norm(hn, x, s->norm.g, s->norm.b, N, C, L, UNET_GROUPS, UNET_ST_GN_EPS, 0);
    k_nchw_to_nhwc(t, hn, N, C, L);                                        /* [N, L, C] */
    linear(f, hs, t, &s->proj_in, M);                                      /* [N, L, inner] */
    for (int d = 0; d < s->depth; d++) tf_block_fwd(f, &s->blocks[d], hs, L);
    linear(f, t, hs, &s->proj_out, M);                                     /* [N, L, C] */
    k_nhwc_to_nchw(out, t, N, C, L);                                       /* [N, C, H, W] */
    k_add(out, out, x, n);
done:
    sdc_arena_reset(f->a, m);
}

/* ldm Downsample (use_conv): out[N,C,ceil(H/2),ceil(W/2)] = conv3x3 stride 2 pad 1. */
static void downsample_fwd(fwd *f, const conv_w *c, float *out, const float *x, int H, int W) {
    conv(f, out, x, c, H, W, 2);
}

/* ldm Upsample (use_conv): out[N,C,Ho,Wo] = conv3x3(nearest(x) to Ho x Wo). Ho x Wo is the size
 * of the skip connection the result is concatenated with (diffusers' upsample_size): 2H x 2W when
 * the latent side is a multiple of 2^downsamples, one less where a downsampler rounded up. */
static void upsample_fwd(fwd *f, const conv_w *c, float *out, const float *x, int H, int W, int Ho, int Wo) {
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    float *up = talloc(f, (size_t)f->N * c->cin * Ho * Wo);               /* [N, C, Ho, Wo] */
    if (!f->oom) {
        k_upsample_nearest(up, x, f->N, c->cin, H, W, Ho, Wo);
        conv(f, out, up, c, Ho, Wo, 1);
    }
    sdc_arena_reset(f->a, m);
}

/* One input block into out (which becomes a skip). x: [N, cin, H, W]; H, W updated. */
static void input_block_fwd(fwd *f, const unet_block *k, float *out, const float *x, int *H, int *W) {
    if (k->kind == BLK_CONV_IN) { conv(f, out, x, &k->conv, *H, *W, 1); return; }
    if (k->kind == BLK_DOWN) {
        downsample_fwd(f, &k->conv, out, x, *H, *W);
        *H = (*H + 1) / 2;
        *W = (*W + 1) / 2;
        return;
    }
    if (!k->attn) { res_block_fwd(f, &k->res, out, x, *H, *W); return; }
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    float *r = talloc(f, (size_t)f->N * k->cout * *H * *W);
    if (!f->oom) {
        res_block_fwd(f, &k->res, r, x, *H, *W);
        spatial_tf_fwd(f, k->attn, out, r, *H, *W);
    }
    sdc_arena_reset(f->a, m);
}

/* One output block: out = [Upsample](ST?(ResBlock(cat(h, skip)))). H, W updated (to upH x upW
 * when the block upsamples). */
static void output_block_fwd(fwd *f, const unet_block *k, float *out, const float *h, int ch,
                             const float *skip, int *H, int *W, int upH, int upW) {
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    int N = f->N, HW = *H * *W;
    size_t n = (size_t)N * k->cout * HW;
    float *cat = talloc(f, (size_t)N * k->cin * HW);                      /* [N, ch+skip, H, W] */
    float *r = (k->attn || k->has_up) ? talloc(f, n) : out;
    float *s = (k->attn && k->has_up) ? talloc(f, n) : out;
    if (f->oom) goto done;
    k_concat_channels(cat, h, ch, skip, k->cin - ch, N, HW);
    res_block_fwd(f, &k->res, r, cat, *H, *W);                            /* [N, cout, H, W] */
    if (k->attn) spatial_tf_fwd(f, k->attn, s, r, *H, *W); else s = r;
    if (k->has_up) {
        upsample_fwd(f, &k->up, out, s, *H, *W, upH, upW);                /* [N, cout, upH, upW] */
        *H = upH;
        *W = upW;
    }
done:
    sdc_arena_reset(f->a, m);
}

static void mid_block_fwd(fwd *f, const unet_block *k, float *out, const float *x, int H, int W) {
    if (k->cin < 0) spatial_tf_fwd(f, k->attn, out, x, H, W);
    else res_block_fwd(f, &k->res, out, x, H, W);
}

/* Time embedding: emb[N, temb] = SiLU(time_embed.2(SiLU(time_embed.0(sinusoid(t))))). */
static float *time_embed_fwd(fwd *f, const float *t) {
    sdc_unet *u = f->u;
    int N = f->N, mc = u->info.model_channels, te = u->info.time_embed_dim;
    float *emb = talloc(f, (size_t)N * te);                               /* stays for the forward */
    sdc_arena_mark m = sdc_arena_get_mark(f->a);
    float *tp = talloc(f, (size_t)N * mc), *h = talloc(f, (size_t)N * te);
    if (f->oom) return NULL;
    k_timestep_embedding(tp, t, N, mc, 1, 0.0f, UNET_MAX_PERIOD);          /* [N, mc] cos | sin */
    debug(f, "time_proj", tp, mc, 1, 1);
    linear(f, h, tp, &u->time1, N);                                        /* [N, temb] */
    k_silu(h, (size_t)N * te);
    linear(f, emb, h, &u->time2, N);                                       /* [N, temb] */
    debug(f, "time_embedding", emb, te, 1, 1);
    if (u->info.adm_in_channels) {                                         /* SDXL: + label_emb(y) */
        float *l = talloc(f, (size_t)N * te);
        if (f->oom) return NULL;
        linear(f, h, f->y, &u->label1, N);                                 /* [N, temb] */
        k_silu(h, (size_t)N * te);
        linear(f, l, h, &u->label2, N);                                    /* [N, temb] */
        debug(f, "add_embedding", l, te, 1, 1);
        k_add(emb, emb, l, (size_t)N * te);
    }
    k_silu(emb, (size_t)N * te);                                           /* emb_layers.0 */
    sdc_arena_reset(f->a, m);
    return emb;
}

/* The spatial size of every input block's output (the skips): each downsampler gives
 * ceil(n/2) (3x3, stride 2, padding 1). sh, sw: n_in entries. */
static void skip_sizes(const sdc_unet *u, int h, int w, int *sh, int *sw) {
    for (int i = 0; i < u->n_in; i++) {
        if (u->in[i].kind == BLK_DOWN) { h = (h + 1) / 2; w = (w + 1) / 2; }
        sh[i] = h;
        sw[i] = w;
    }
}

/* The size output block i ends at: an upsampler takes the size of the skip the next output
 * block concatenates (diffusers' upsample_size), so every level matches its skip exactly. */
static void out_size(const sdc_unet *u, int i, const int *sh, const int *sw, int *H, int *W) {
    int j = u->n_in - 1 - (u->out[i].has_up ? i + 1 : i);
    if (j < 0) j = 0;
    *H = sh[j];
    *W = sw[j];
}

/* The largest output of any middle or output block, in floats (the ping-pong buffers). */
static size_t pingpong_size(const sdc_unet *u, int N, const int *sh, const int *sw) {
    size_t mx = 0;
    int H = u->n_in ? sh[u->n_in - 1] : 0, W = u->n_in ? sw[u->n_in - 1] : 0;
    for (int i = 0; i < u->n_mid; i++) {
        size_t n = (size_t)N * u->mid[i].cout * H * W;
        if (n > mx) mx = n;
    }
    for (int i = 0; i < u->n_out; i++) {
        out_size(u, i, sh, sw, &H, &W);
        size_t n = (size_t)N * u->out[i].cout * H * W;
        if (n > mx) mx = n;
    }
    return mx;
}

static int check_sizes(const sdc_unet *u, int N, int h, int w, int ctx_len, sdc_err *e) {
    if (N <= 0 || h <= 0 || w <= 0)
        return sdc_errf(e, "unet: bad input size: batch %d, latent %dx%d", N, h, w);
    if (u->info.transformer_depth && ctx_len <= 0)
        return sdc_errf(e, "unet: context length %d: must be positive", ctx_len);
    /* Kernels take int sizes: the widest row count x width must fit an int. */
    size_t rows = (size_t)N * (size_t)h * (size_t)w, cap = (size_t)INT_MAX / (size_t)u->max_c;
    if (rows > cap / 4 || (size_t)N * (size_t)(ctx_len > 0 ? ctx_len : 1) > cap)
        return sdc_errf(e, "unet: batch %d at %dx%d (context %d) is too large", N, h, w, ctx_len);
    return 0;
}

/* The channel-concat input: x2[N, Cin, h, w] = cat(x[N, Cin - Cc], concat[N, Cc]) per image. */
static const float *concat_input(fwd *f, const float *x, const sdc_cond *c, int h, int w) {
    if (!c->concat) return x;
    size_t hw = (size_t)h * w, cx = (size_t)(f->u->info.in_channels - c->concat_ch) * hw,
           cc = (size_t)c->concat_ch * hw;
    float *x2 = talloc(f, (size_t)f->N * (cx + cc));
    if (!x2) return NULL;
    for (int n = 0; n < f->N; n++) {
        memcpy(x2 + n * (cx + cc), x + n * cx, cx * sizeof *x);
        memcpy(x2 + n * (cx + cc) + cx, c->concat + n * cc, cc * sizeof *x);
    }
    return x2;
}

static int check_cond(const sdc_unet *u, const sdc_cond *c, sdc_err *e) {
    if (c->concat && (c->concat_ch <= 0 || c->concat_ch >= u->info.in_channels))
        return sdc_errf(e, "unet: %d concatenated channels: this UNet takes %d input channels in all",
                        c->concat_ch, u->info.in_channels);
    if (c->y && !u->info.adm_in_channels)
        return sdc_errf(e, "unet: a vector conditioning (y) was given, but this UNet has no label_emb");
    if (!c->y && u->info.adm_in_channels)
        return sdc_errf(e, "unet: this UNet (SDXL) needs the vector conditioning y (label_emb, %d values)",
                        u->info.adm_in_channels);
    return 0;
}

int sdc_unet_sdxl_vector(float *y, int adm, const float *pooled, int n_pooled,
                         const float time_ids[6], sdc_err *e) {
    int d = (adm - n_pooled) / 6;
    if (n_pooled < 0 || d <= 0 || d % 2 || 6 * d != adm - n_pooled)
        return sdc_errf(e, "unet: vector conditioning of %d values does not hold %d pooled ones and six "
                        "even-width size embeddings", adm, n_pooled);
    memcpy(y, pooled, sizeof(float) * (size_t)n_pooled);
    for (int i = 0; i < 6; i++)   /* [cos(v·f_k), sin(v·f_k)], f_k = exp(-ln(10000)·k/(d/2)) */
        k_timestep_embedding(y + n_pooled + (size_t)i * d, &time_ids[i], 1, d, 1, 0.0f, UNET_MAX_PERIOD);
    return 0;
}

int sdc_unet_forward(sdc_unet *u, sdc_arena *a, float *out, const float *x, const float *t,
                     const sdc_cond *c, int N, int h, int w, sdc_err *e) {
    if (!u || !a || !out || !x || !t || !c || (!c->ctx && u->info.transformer_depth))
        return sdc_errf(e, "unet: forward: missing argument");
    if (check_sizes(u, N, h, w, c->ctx_len, e) || check_cond(u, c, e)) return -1;
    if (sdc_unet_wait(u, NULL, e)) return -1;   /* the weights bound in the background */
    sdc_arena_mark m0 = sdc_arena_get_mark(a);
    fwd f = {u, a, NULL, c->ctx, c->y, N, c->ctx_len, 0};
    char name[64];
    int H = h, W = w, lvl = 0;

    f.emb = time_embed_fwd(&f, t);                                        /* [N, temb] */
    int *sh = (int *)sdc_arena_alloc(a, (size_t)(u->n_in + 1) * 2 * sizeof *sh), *sw = sh ? sh + u->n_in + 1 : NULL;
    if (!sh) f.oom = 1;
    else skip_sizes(u, h, w, sh, sw);
    size_t pp = sh ? pingpong_size(u, N, sh, sw) : 0;
    float *buf[2] = {talloc(&f, pp), talloc(&f, pp)};
    float **skip = (float **)sdc_arena_alloc(a, (size_t)u->n_in * sizeof *skip);
    if (!skip) f.oom = 1;

    /* input_blocks: every output stays alive as a skip for the output blocks. */
    const float *cur = concat_input(&f, x, c, h, w);                      /* [N, in_ch, h, w] */
    if (!cur) f.oom = 1;
    for (int i = 0; i < u->n_in && !f.oom; i++) {
        const unet_block *k = &u->in[i];
        int Ho = k->kind == BLK_DOWN ? (H + 1) / 2 : H, Wo = k->kind == BLK_DOWN ? (W + 1) / 2 : W;
        if (!(skip[i] = talloc(&f, (size_t)N * k->cout * Ho * Wo))) break;
        input_block_fwd(&f, k, skip[i], cur, &H, &W);                     /* [N, cout, H, W] */
        cur = skip[i];
        if (i == 0) debug(&f, "conv_in", cur, k->cout, H, W);
        if (i > 0 && (i + 1 == u->n_in || u->in[i + 1].level != k->level)) {
            snprintf(name, sizeof name, "down_blocks.%d", lvl++);
            debug(&f, name, cur, k->cout, H, W);
        }
    }
    /* middle_block: ResBlock, SpatialTransformer, ResBlock, ping-ponging between buf[0/1]. */
    int p = 0, ch = u->n_in ? u->in[u->n_in - 1].cout : 0;
    for (int i = 0; i < u->n_mid && !f.oom; i++) {
        mid_block_fwd(&f, &u->mid[i], buf[p], cur, H, W);
        cur = buf[p];
        p ^= 1;
        ch = u->mid[i].cout;
    }
    debug(&f, "mid_block", cur, ch, H, W);
    /* output_blocks: pop the skips in reverse. */
    lvl = 0;
    for (int i = 0; i < u->n_out && !f.oom; i++) {
        const unet_block *k = &u->out[i];
        int upH, upW;
        out_size(u, i, sh, sw, &upH, &upW);
        output_block_fwd(&f, k, buf[p], cur, ch, skip[u->n_in - 1 - i], &H, &W, upH, upW);
        cur = buf[p];
        p ^= 1;
        ch = k->cout;
        if (k->has_up || i + 1 == u->n_out) {
            snprintf(name, sizeof name, "up_blocks.%d", lvl++);
            debug(&f, name, cur, ch, H, W);
        }
    }
    /* out: GroupNorm, SiLU, conv3x3 → [N, out_ch, h, w]. */
    if (!f.oom) {
        float *hn = talloc(&f, (size_t)N * ch * H * W);
        if (hn) {
            k_group_norm(hn, cur, u->out_norm.g, u->out_norm.b, N, ch, H * W, UNET_GROUPS, UNET_GN_EPS, 0);
            debug(&f, "conv_norm_out", hn, ch, H, W);
            k_silu(hn, (size_t)N * ch * H * W);
            conv(&f, out, hn, &u->out_conv, H, W, 1);
        }
    }
    sdc_arena_reset(a, m0);
    if (f.oom) return sdc_errf(e, "unet: out of memory for activations (batch %d, %dx%d)", N, h, w);
    return 0;
}
