/* cmd_compare.c — `sdc compare A B`: are two checkpoints the same model? Tensor by tensor
 * (names, shapes, dtypes, values across dtypes) and, with a prompt, image by image.
 * Exit 0 same (identical, equal values, or within --tol/--rtol), 1 different, 2 error. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "include/sdc.h"
#include "cli/cli.h"
#include "cli/compare.h"
#include "pipeline/image.h"
#include "runtime/outpath.h"
#include "runtime/store.h"

/* Lines per list in the text report unless --all: enough to name what differs without
 * drowning a terminal in the 1100 names of a dtype conversion. */
#define LIST_MAX 20
#define IMG_MAX_SIDE 4096   /* a side-by-side of 3x this width stays a sane PNG */
#define ONLY_MAX 16         /* --only prefixes: the three SD components and then some */

typedef struct cmp_args {
    const char *a, *b, *image_out, *config, *vae;
    int json, all, allow_unsafe, strict, no_map;
    sdc_cmp_opts tol;
    const char *only[ONLY_MAX];
    int pixel_tol;
    /* output level */
    const char *prompt, *negative;
    long long seed;
    int steps, width, height, method, schedule, threads, clip_skip;
    double cfg;
} cmp_args;

static void usage(FILE *f) {
    fprintf(f,
        "usage: sdc compare A B [options]\n"
        "  Compares two checkpoints (any format: .safetensors, .ckpt zip or legacy, or a diffusers\n"
        "  folder) tensor by tensor: names only in A / only in B, shape and dtype differences, and\n"
        "  for common tensors bit-identical or max abs / max rel difference of the values (across\n"
        "  dtypes). diffusers-layout names (UNet, VAE, SD 1.x text encoder) are matched under their\n"
        "  original-layout names.\n"
        "  With -p it also generates one image with each (same parameters) and compares them.\n"
        "  Exit status: 0 same (identical, equal values, or within tolerance), 1 different, 2 error.\n"
        "options:\n"
        "  --json             machine-readable report on stdout\n"
        "  --tol T            absolute tolerance: |a-b| <= T + R*max(|a|,|b|) counts as equal (0)\n"
        "  --rtol R           relative tolerance R (0)\n"
        "  --only PREFIX      compare only tensors whose names start with PREFIX (repeatable),\n"
        "                     e.g. --only model.diffusion_model. for the UNet alone\n"
        "  --no-map           match names exactly (no diffusers -> original renaming)\n"
        "  --all              list every differing tensor (default: the first %d of each list)\n"
        "  --allow-unsafe-pickle, --strict   as for generate/inspect\n"
        "output level (needs -p):\n"
        "  -p, --prompt TEXT  -n, --negative-prompt TEXT  -s, --seed S  --steps N\n"
        "  -W, --width W  -H, --height H  --cfg-scale C  --sampling-method M  --schedule karras\n"
        "  --clip-skip N  -t, --threads N  --config FILE  --vae FILE\n"
        "  --pixel-tol P      images count as the same when max abs pixel difference <= P (0)\n"
        "  --image OUT.png    write A | B | difference heat map side by side\n"
        "Two images (PNG, JPEG) instead of checkpoints: compares their pixels (same size; exit 0\n"
        "when max abs pixel difference <= --pixel-tol; --json, --image as above).\n",
        LIST_MAX);
}

/* Parses a number in [lo, hi]; returns 0 or prints one line and returns -1. */
static int parse_ll(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "sdc: compare: %s: '%s' is not a whole number in [%lld, %lld]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_dbl(const char *opt, const char *s, double lo, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo) || isinf(v)) {
        fprintf(stderr, "sdc: compare: %s: '%s' is not a number >= %g\n", opt, s, lo);
        return -1;
    }
    *out = v;
    return 0;
}

static int is_image_file(const char *path);

static int parse_args(int argc, char **argv, cmp_args *a) {
    memset(a, 0, sizeof *a);
    a->seed = 42;
    a->steps = -1;
    a->width = a->height = -1;
    a->method = -1;
    a->schedule = -1;
    a->cfg = NAN;
    a->clip_skip = -1;
    const char *pos[2];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        long long v;
#define NEED_VAL()                                                                   \
    do {                                                                             \
        if (i + 1 >= argc) {                                                         \
            fprintf(stderr, "sdc: compare: %s needs a value\n", s);                  \
            return -1;                                                               \
        }                                                                            \
    } while (0)
        if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--all")) a->all = 1;
        else if (!strcmp(s, "--no-map")) a->no_map = 1;
        else if (!strcmp(s, "--allow-unsafe-pickle")) a->allow_unsafe = 1;
        else if (!strcmp(s, "--strict")) a->strict = 1;
        else if (!strcmp(s, "--tol")) { NEED_VAL(); if (parse_dbl(s, argv[++i], 0, &a->tol.atol)) return -1; }
        else if (!strcmp(s, "--rtol")) { NEED_VAL(); if (parse_dbl(s, argv[++i], 0, &a->tol.rtol)) return -1; }
        else if (!strcmp(s, "--pixel-tol")) { NEED_VAL(); if (parse_ll(s, argv[++i], 0, 255, &v)) return -1; a->pixel_tol = (int)v; }
        else if (!strcmp(s, "--only")) {
            NEED_VAL();
            if (a->tol.n_only == ONLY_MAX) { fprintf(stderr, "sdc: compare: at most %d --only prefixes\n", ONLY_MAX); return -1; }
            a->only[a->tol.n_only++] = argv[++i];
        } else if (!strcmp(s, "--image")) { NEED_VAL(); a->image_out = argv[++i]; }
        else if (!strcmp(s, "-p") || !strcmp(s, "--prompt")) { NEED_VAL(); a->prompt = argv[++i]; }
        else if (!strcmp(s, "-n") || !strcmp(s, "--negative-prompt")) { NEED_VAL(); a->negative = argv[++i]; }
        else if (!strcmp(s, "-s") || !strcmp(s, "--seed")) { NEED_VAL(); if (parse_ll(s, argv[++i], 0, (long long)1 << 62, &a->seed)) return -1; }
        else if (!strcmp(s, "--steps")) { NEED_VAL(); if (parse_ll(s, argv[++i], 1, 1000, &v)) return -1; a->steps = (int)v; }
        else if (!strcmp(s, "-W") || !strcmp(s, "--width")) { NEED_VAL(); if (parse_ll(s, argv[++i], 8, IMG_MAX_SIDE, &v)) return -1; a->width = (int)v; }
        else if (!strcmp(s, "-H") || !strcmp(s, "--height")) { NEED_VAL(); if (parse_ll(s, argv[++i], 8, IMG_MAX_SIDE, &v)) return -1; a->height = (int)v; }
        else if (!strcmp(s, "--cfg-scale")) { NEED_VAL(); if (parse_dbl(s, argv[++i], 0, &a->cfg)) return -1; }
        else if (!strcmp(s, "--clip-skip")) { NEED_VAL(); if (parse_ll(s, argv[++i], 0, 12, &v)) return -1; a->clip_skip = (int)v; }
        else if (!strcmp(s, "-t") || !strcmp(s, "--threads")) { NEED_VAL(); if (parse_ll(s, argv[++i], 1, 4096, &v)) return -1; a->threads = (int)v; }
        else if (!strcmp(s, "--config")) { NEED_VAL(); a->config = argv[++i]; }
        else if (!strcmp(s, "--vae")) { NEED_VAL(); a->vae = argv[++i]; }
        else if (!strcmp(s, "--sampling-method")) {
            NEED_VAL();
            a->method = sdc_sampler_from_name(argv[++i]);
            if (a->method < 0) { fprintf(stderr, "sdc: compare: unknown sampling method '%s'\n", argv[i]); return -1; }
        } else if (!strcmp(s, "--schedule")) {
            NEED_VAL();
            const char *m = argv[++i];
            if ((a->schedule = sdc_scheduler_from_name(m)) < 0) { fprintf(stderr, "sdc: compare: unknown schedule '%s' (discrete, karras)\n", m); return -1; }
        } else if (!strcmp(s, "-h") || !strcmp(s, "--help")) { usage(stdout); return 1; }
        else if (s[0] == '-' && s[1]) { fprintf(stderr, "sdc: compare: unknown option '%s' (try sdc compare --help)\n", s); return -1; }
        else if (npos < 2) pos[npos++] = s;
        else { fprintf(stderr, "sdc: compare: one more file than A and B: '%s'\n", s); return -1; }
#undef NEED_VAL
    }
    if (npos != 2) {
        fprintf(stderr, "sdc: compare: needs two files, A and B (try sdc compare --help)\n");
        return -1;
    }
    a->tol.only = a->only;
    a->tol.map_diffusers = !a->no_map;
    a->a = pos[0];
    a->b = pos[1];
    if ((a->width > 0 && a->width % 8) || (a->height > 0 && a->height % 8)) {
        fprintf(stderr, "sdc: compare: %s %d is not a multiple of 8\n", a->width % 8 ? "width" : "height",
                a->width % 8 ? a->width : a->height);
        return -1;
    }
    if (a->image_out && !a->prompt && !(is_image_file(a->a) && is_image_file(a->b))) {
        fprintf(stderr, "sdc: compare: --image needs a prompt (-p) to generate the images\n");
        return -1;
    }
    sdc_err oe = {{0}};   /* before any work: only a regular file is replaced */
    if (a->image_out && sdc_output_check(a->image_out, 1, &oe)) {
        fprintf(stderr, "sdc: compare: --image %s\n", oe.msg);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- tensor level */

static sdc_store *open_store(const char *path, const cmp_args *a) {
    sdc_err e = {{0}};
    sdc_load_opts o = {.strict = a->strict, .allow_unsafe_pickle = a->allow_unsafe};
    sdc_store *s = sdc_store_new();
    if (!s) { fprintf(stderr, "sdc: %s: out of memory\n", path); return NULL; }
    if (sdc_cmp_open(s, path, &o, &e)) {
        fprintf(stderr, "sdc: %s\n", e.msg);
        sdc_store_close(s);
        return NULL;
    }
    return s;
}

static void shape_str(const sdc_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Flat index → "[i,j,k]" in t's shape. */
static void index_str(const sdc_tensor *t, int64_t flat, char *buf, size_t n) {
    int64_t idx[SDC_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? flat % t->shape[d] : 0;
        flat = t->shape[d] ? flat / t->shape[d] : 0;
    }
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)idx[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static uint64_t params_of(const sdc_store *s) {
    uint64_t n = 0;
    for (size_t i = 0; i < sdc_store_count(s); i++) n += (uint64_t)sdc_store_at(s, i)->numel;
    return n;
}

static uint64_t bytes_of(const sdc_store *s) {
    uint64_t n = 0;
    for (size_t i = 0; i < sdc_store_nfiles(s); i++) n += sdc_store_file_at(s, i)->size;
    return n;
}

/* "safetensors", or "diffusers folder: 3 files (safetensors)" */
static void format_of(const sdc_store *s, char *buf, size_t n) {
    size_t nf = sdc_store_nfiles(s);
    if (nf == 1) snprintf(buf, n, "%s", sdc_format_name(sdc_store_file_at(s, 0)->format));
    else snprintf(buf, n, "diffusers folder: %zu files, %s", nf, sdc_format_name(sdc_store_file_at(s, 0)->format));
}

static void print_file(const char *label, const char *path, const sdc_store *s, size_t mapped) {
    char fmt[128];
    format_of(s, fmt, sizeof fmt);
    printf("%s: %s  (%s, %zu tensors, %.2f M params, %.1f MB", label, path, fmt, sdc_store_count(s),
           params_of(s) / 1e6, bytes_of(s) / 1e6);
    if (mapped) printf("; %zu diffusers names matched under their original-layout names", mapped);
    printf(")\n");
}

static int by_max_abs_desc(const void *x, const void *y) {
    const sdc_cmp_entry *a = *(const sdc_cmp_entry *const *)x, *b = *(const sdc_cmp_entry *const *)y;
    return a->max_abs < b->max_abs ? 1 : a->max_abs > b->max_abs ? -1 : 0;
}

/* " (stored as X in B)" when a side's stored name is not the matched one. */
static void print_stored_as(const sdc_cmp_entry *c) {
    if (c->name_a && strcmp(c->name_a, c->name)) printf("  (A: %s)", c->name_a);
    if (c->name_b && strcmp(c->name_b, c->name)) printf("  (B: %s)", c->name_b);
}

/* Prints the names of entries of one kind (up to LIST_MAX unless all). */
static void print_list(const sdc_cmp_result *r, sdc_cmp_kind k, const char *title, int all) {
    if (!r->count[k]) return;
    printf("%s (%zu):\n", title, r->count[k]);
    size_t shown = 0;
    for (size_t i = 0; i < r->n; i++) {
        const sdc_cmp_entry *c = &r->e[i];
        if (c->kind != k) continue;
        if (!all && shown == LIST_MAX) { printf("  ... %zu more (--all lists them)\n", r->count[k] - shown); break; }
        shown++;
        const sdc_tensor *t = c->a ? c->a : c->b;
        char sh[160], sh2[160];
        shape_str(t, sh, sizeof sh);
        if (k == SDC_CMP_SHAPE) {
            shape_str(c->b, sh2, sizeof sh2);
            printf("  %s  %s %s vs %s %s", c->name, sdc_dtype_name(c->a->dtype), sh,
                   sdc_dtype_name(c->b->dtype), sh2);
        } else {
            printf("  %s  %s %s", c->name, sdc_dtype_name(t->dtype), sh);
        }
        print_stored_as(c);
        printf("\n");
    }
}

/* The value differences, largest max abs first. */
static int print_value_diffs(const sdc_cmp_result *r, int all) {
    size_t n = r->count[SDC_CMP_WITHIN_TOL] + r->count[SDC_CMP_DIFFERENT];
    if (!n) return 0;
    const sdc_cmp_entry **v = malloc(n * sizeof *v);
    if (!v) { fprintf(stderr, "sdc: compare: out of memory\n"); return -1; }
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i].kind == SDC_CMP_WITHIN_TOL || r->e[i].kind == SDC_CMP_DIFFERENT) v[k++] = &r->e[i];
    qsort(v, n, sizeof *v, by_max_abs_desc);
    printf("values differ (%zu tensors; %zu outside the tolerance), largest first:\n", n,
           r->count[SDC_CMP_DIFFERENT]);
    for (size_t i = 0; i < n; i++) {
        if (!all && i == LIST_MAX) { printf("  ... %zu more (--all lists them)\n", n - i); break; }
        const sdc_cmp_entry *c = v[i];
        char at[160];
        index_str(c->a, c->at, at, sizeof at);
        printf("  %s  %s/%s  max abs %.6g  max rel %.6g  %lld of %lld elements differ  "
               "(at %s: %.9g vs %.9g)%s",
               c->name, sdc_dtype_name(c->a->dtype), sdc_dtype_name(c->b->dtype), c->max_abs,
               c->max_rel, (long long)c->n_diff, (long long)c->a->numel, at, c->a_at, c->b_at,
               c->kind == SDC_CMP_WITHIN_TOL ? "  within tolerance" : "");
        print_stored_as(c);
        printf("\n");
    }
    free(v);
    return 0;
}

/* Dtype pairs of the common tensors whose dtypes differ: "F32 vs F16: 1100". */
static void dtype_pairs(const sdc_cmp_result *r, char *buf, size_t n) {
    size_t cnt[SDC_DTYPE_COUNT][SDC_DTYPE_COUNT] = {{0}}, k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < r->n; i++) {
        const sdc_cmp_entry *c = &r->e[i];
        if (c->a && c->b && c->a->dtype != c->b->dtype) cnt[c->a->dtype][c->b->dtype]++;
    }
    for (int x = 0; x < SDC_DTYPE_COUNT; x++)
        for (int y = 0; y < SDC_DTYPE_COUNT; y++)
            if (cnt[x][y] && k < n)
                k += (size_t)snprintf(buf + k, n - k, "%s%zu tensors %s in A, %s in B", k ? "; " : "",
                                      cnt[x][y], sdc_dtype_name((sdc_dtype)x), sdc_dtype_name((sdc_dtype)y));
}

/* The one-line verdict. */
static void tensor_summary(const sdc_cmp_result *r, char *buf, size_t n) {
    const size_t *c = r->count;
    if (!sdc_cmp_same(r)) {
        size_t k = (size_t)snprintf(buf, n, "different:");
        const char *sep = " ";
        if (c[SDC_CMP_DIFFERENT] && k < n) {
            k += (size_t)snprintf(buf + k, n - k, "%s%zu tensor%s differ%s in value (max abs %.6g in %s)",
                                  sep, c[SDC_CMP_DIFFERENT], c[SDC_CMP_DIFFERENT] == 1 ? "" : "s",
                                  c[SDC_CMP_DIFFERENT] == 1 ? "s" : "", r->max_abs, r->max_abs_name);
            sep = ", ";
        }
        if (c[SDC_CMP_SHAPE] && k < n) {
            k += (size_t)snprintf(buf + k, n - k, "%s%zu differ in shape", sep, c[SDC_CMP_SHAPE]);
            sep = ", ";
        }
        if (c[SDC_CMP_ONLY_A] && k < n) {
            k += (size_t)snprintf(buf + k, n - k, "%s%zu only in A", sep, c[SDC_CMP_ONLY_A]);
            sep = ", ";
        }
        if (c[SDC_CMP_ONLY_B] && k < n)
            snprintf(buf + k, n - k, "%s%zu only in B", sep, c[SDC_CMP_ONLY_B]);
        return;
    }
    char dt[512];
    dtype_pairs(r, dt, sizeof dt);
    if (c[SDC_CMP_IDENTICAL] == r->n) snprintf(buf, n, "identical");
    else if (c[SDC_CMP_WITHIN_TOL])
        snprintf(buf, n, "within tolerance: %zu tensors differ, max abs %.6g (%s), max rel %.6g%s%s%s",
                 c[SDC_CMP_WITHIN_TOL], r->max_abs, r->max_abs_name, r->max_rel, *dt ? " (dtypes differ: " : "",
                 dt, *dt ? ")" : "");
    else
        snprintf(buf, n, "equal values%s%s%s", *dt ? " (dtypes differ: " : "", dt, *dt ? ")" : "");
}

/* ---------------------------------------------------------------- output level */

typedef struct img_out {
    uint8_t *a, *b;              /* w*h*3 each */
    int w, h;
    sdc_img_diff d;
    double max_abs_f;            /* max |a-b| of the float images in [0,1] */
    double gain;
    char params[512];
} img_out;

/* Opens path as a model, generates one image, closes it. With *gp unresolved (first model), the
 * parameters are resolved there (options, else the model's recommended defaults, else sdc's) and
 * kept in *gp, so that the second model gets exactly the same. */
static int generate_one(const char *path, const cmp_args *a, sdc_gen_params *gp, int resolve,
                        uint8_t **rgb, float **img) {
    sdc_err e = {{0}};
    sdc_model_params mp = sdc_model_default_params();
    mp.model_path = path;
    mp.vae_path = a->vae;
    mp.config_path = a->config;
    mp.strict = a->strict;
    mp.allow_unsafe_pickle = a->allow_unsafe;
    if (a->threads > 0) mp.threads = a->threads;
    sdc_model *m = sdc_model_open(&mp, &e);
    if (!m) { fprintf(stderr, "sdc: %s\n", e.msg); return -1; }
    if (resolve) {
        int dw = 0, dh = 0, dsteps = 0;
        float dcfg = 0;
        sdc_model_defaults(m, &dw, &dh, &dsteps, &dcfg);
        *gp = sdc_gen_default_params();
        gp->prompt = a->prompt;
        if (a->negative) gp->negative_prompt = a->negative;
        gp->seed = (uint64_t)a->seed;
        gp->steps = a->steps > 0 ? a->steps : dsteps > 0 ? dsteps : gp->steps;
        gp->width = a->width > 0 ? a->width : dw > 0 ? dw : gp->width;
        gp->height = a->height > 0 ? a->height : dh > 0 ? dh : gp->height;
        gp->cfg_scale = !isnan(a->cfg) ? (float)a->cfg : dcfg > 0 ? dcfg : gp->cfg_scale;
        if (a->method >= 0) gp->sample_method = a->method;
        if (a->schedule >= 0) gp->schedule = a->schedule;
        if (a->clip_skip >= 0) gp->clip_skip = a->clip_skip;
    }
    if (gp->width % 8 || gp->height % 8 || gp->width <= 0 || gp->height <= 0 || gp->width > IMG_MAX_SIDE ||
        gp->height > IMG_MAX_SIDE) {
        fprintf(stderr, "sdc: compare: image size %dx%d: width and height must be multiples of 8 up to %d\n",
                gp->width, gp->height, IMG_MAX_SIDE);
        sdc_model_close(m);
        return -1;
    }
    size_t n = (size_t)gp->width * (size_t)gp->height * 3;
    *rgb = malloc(n);
    *img = malloc(n * sizeof(float));
    if (!*rgb || !*img) {
        fprintf(stderr, "sdc: compare: out of memory for a %dx%d image\n", gp->width, gp->height);
        sdc_model_close(m);
        return -1;
    }
    int rc = sdc_generate_ex(m, gp, *rgb, *img, NULL, &e);
    if (rc) fprintf(stderr, "sdc: %s: %s\n", path, e.msg);
    sdc_model_close(m);
    return rc;
}

static int output_level(const cmp_args *a, img_out *o) {
    float *fa = NULL, *fb = NULL;
    int rc = -1;
    sdc_gen_params gp;
    if (generate_one(a->a, a, &gp, 1, &o->a, &fa)) goto done;
    if (generate_one(a->b, a, &gp, 0, &o->b, &fb)) goto done;
    o->w = gp.width;
    o->h = gp.height;
    snprintf(o->params, sizeof o->params, "prompt \"%s\", negative \"%s\", %dx%d, %d steps, cfg %g, %s%s, seed %llu",
             gp.prompt, gp.negative_prompt ? gp.negative_prompt : "", gp.width, gp.height, gp.steps,
             gp.cfg_scale, sdc_sampler_name(gp.sample_method),
             gp.schedule == SDC_SCHEDULER_KARRAS ? " karras" : "", (unsigned long long)gp.seed);
    o->d = sdc_image_diff(o->a, o->b, o->w, o->h);
    size_t n = (size_t)o->w * o->h * 3;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)fa[i] - fb[i]);
        if (d > o->max_abs_f || isnan(d)) o->max_abs_f = isnan(d) ? INFINITY : d;
    }
    if (a->image_out) {
        uint8_t *sbs = malloc(n * 3);
        if (!sbs) { fprintf(stderr, "sdc: compare: out of memory\n"); goto done; }
        o->gain = sdc_image_side_by_side(o->a, o->b, o->w, o->h, sbs);
        char text[2048];
        snprintf(text, sizeof text, "sdc compare: left A = %s, middle B = %s, right |A-B| x %.3g "
                 "(heat map, white = max abs %d); %s", a->a, a->b, o->gain, o->d.max_abs, o->params);
        sdc_err e = {{0}};
        int w = sdc_write_png(a->image_out, sbs, o->w * 3, o->h, "parameters", text, &e);
        free(sbs);
        if (w) { fprintf(stderr, "sdc: %s\n", e.msg); goto done; }
    }
    rc = 0;
done:
    free(fa);
    free(fb);
    return rc;
}

/* ---------------------------------------------------------------- two images */

/* PNG or JPEG by its first bytes (checkpoints never start so). */
static int is_image_file(const char *path) {
    unsigned char b[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    return (n == 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) || (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF);
}

/* `sdc compare A.png B.png`: pixel by pixel. 0 same (within --pixel-tol), 1 different, 2 error. */
static int compare_images(const cmp_args *a) {
    uint8_t *pa = NULL, *pb = NULL, *sbs = NULL;
    int wa, ha, wb, hb, status = 2;
    sdc_err e = {{0}};
    if (sdc_read_image(a->a, &pa, &wa, &ha, &e) || sdc_read_image(a->b, &pb, &wb, &hb, &e)) {
        fprintf(stderr, "sdc: %s\n", e.msg);
        goto done;
    }
    if (wa != wb || ha != hb) {
        fprintf(stderr, "sdc: compare: %s is %dx%d but %s is %dx%d: different sizes\n", a->a, wa, ha, a->b, wb, hb);
        goto done;
    }
    sdc_img_diff d = sdc_image_diff(pa, pb, wa, ha);
    const char *verdict = d.max_abs == 0 ? "bit-identical" : d.max_abs <= a->pixel_tol ? "within --pixel-tol" : "differ";
    if (a->image_out && wa <= IMG_MAX_SIDE) {
        if (!(sbs = malloc((size_t)wa * ha * 9))) { fprintf(stderr, "sdc: compare: out of memory\n"); goto done; }
        double gain = sdc_image_side_by_side(pa, pb, wa, ha, sbs);
        char text[1024];
        snprintf(text, sizeof text, "sdc compare: left A = %s, middle B = %s, right |A-B| x %.3g (heat map, white = max abs %d)",
                 a->a, a->b, gain, d.max_abs);
        if (sdc_write_png(a->image_out, sbs, wa * 3, ha, "parameters", text, &e)) { fprintf(stderr, "sdc: %s\n", e.msg); goto done; }
    }
    if (a->json) {
        printf("{\"width\": %d, \"height\": %d, \"bit_identical\": %s, \"max_abs_pixel\": %d, \"pixels_differ\": %lld, "
               "\"psnr_db\": %s%.4f%s, \"summary\": \"images %s\", \"same\": %s}\n", wa, ha, d.max_abs ? "false" : "true",
               d.max_abs, (long long)d.n_diff, isinf(d.psnr) ? "\"" : "", isinf(d.psnr) ? INFINITY : d.psnr,
               isinf(d.psnr) ? "\"" : "", verdict, d.max_abs <= a->pixel_tol ? "true" : "false");
    } else {
        if (d.max_abs == 0)
            printf("images: bit-identical (%dx%d)\n", wa, ha);
        else
            printf("images: max abs pixel difference %d of 255, %lld of %lld pixels differ, PSNR %.2f dB\n",
                   d.max_abs, (long long)d.n_diff, (long long)wa * ha, d.psnr);
        printf("summary: images %s\n", verdict);
    }
    status = d.max_abs <= a->pixel_tol ? 0 : 1;
done:
    free(pa); free(pb); free(sbs);
    return status;
}

/* ---------------------------------------------------------------- reports */

static cJSON *file_json(const char *path, const sdc_store *s, size_t mapped) {
    char fmt[128];
    format_of(s, fmt, sizeof fmt);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "format", fmt);
    cJSON_AddNumberToObject(o, "files", (double)sdc_store_nfiles(s));
    cJSON_AddNumberToObject(o, "tensors", (double)sdc_store_count(s));
    cJSON_AddNumberToObject(o, "params", (double)params_of(s));
    cJSON_AddNumberToObject(o, "bytes", (double)bytes_of(s));
    cJSON_AddNumberToObject(o, "diffusers_names_mapped", (double)mapped);
    return o;
}

static cJSON *shape_json(const sdc_tensor *t) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < t->ndim; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)t->shape[i]));
    return a;
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddStringToObject(o, k, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
}

/* The tensor half of the JSON report (built while the stores are open). */
static cJSON *tensors_json(const cmp_args *a, const sdc_store *sa, const sdc_store *sb,
                           const sdc_cmp_result *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "a", file_json(a->a, sa, r->n_mapped_a));
    cJSON_AddItemToObject(root, "b", file_json(a->b, sb, r->n_mapped_b));
    cJSON *cnt = cJSON_AddObjectToObject(root, "counts");
    static const char *keys[SDC_CMP_KIND_COUNT] = {"identical", "equal_values", "within_tolerance",
                                                   "different", "shape_differs", "only_in_a", "only_in_b"};
    for (int k = 0; k < SDC_CMP_KIND_COUNT; k++) cJSON_AddNumberToObject(cnt, keys[k], (double)r->count[k]);
    cJSON_AddNumberToObject(cnt, "dtype_differs", (double)r->n_dtype_diff);
    cJSON_AddNumberToObject(cnt, "skipped_by_only", (double)r->n_skipped);
    cJSON_AddNumberToObject(root, "atol", a->tol.atol);
    cJSON_AddNumberToObject(root, "rtol", a->tol.rtol);
    add_num(root, "max_abs", r->max_abs);
    if (r->max_abs_name) cJSON_AddStringToObject(root, "max_abs_tensor", r->max_abs_name);
    add_num(root, "max_rel", r->max_rel);
    if (r->max_rel_name) cJSON_AddStringToObject(root, "max_rel_tensor", r->max_rel_name);
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");  /* every tensor that is not identical */
    for (size_t i = 0; i < r->n; i++) {
        const sdc_cmp_entry *c = &r->e[i];
        if (c->kind == SDC_CMP_IDENTICAL) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", c->name);
        cJSON_AddStringToObject(o, "kind", sdc_cmp_kind_name(c->kind));
        if (c->name_a && strcmp(c->name_a, c->name)) cJSON_AddStringToObject(o, "name_in_a", c->name_a);
        if (c->name_b && strcmp(c->name_b, c->name)) cJSON_AddStringToObject(o, "name_in_b", c->name_b);
        if (c->reshaped) cJSON_AddBoolToObject(o, "reshaped", 1);
        if (c->a) {
            cJSON_AddStringToObject(o, "dtype_a", sdc_dtype_name(c->a->dtype));
            cJSON_AddItemToObject(o, "shape_a", shape_json(c->a));
        }
        if (c->b) {
            cJSON_AddStringToObject(o, "dtype_b", sdc_dtype_name(c->b->dtype));
            cJSON_AddItemToObject(o, "shape_b", shape_json(c->b));
        }
        if (c->kind <= SDC_CMP_DIFFERENT) {
            add_num(o, "max_abs", c->max_abs);
            add_num(o, "max_rel", c->max_rel);
            cJSON_AddNumberToObject(o, "n_diff", (double)c->n_diff);
            cJSON_AddNumberToObject(o, "n_out_of_tol", (double)c->n_out);
            cJSON_AddNumberToObject(o, "numel", (double)c->a->numel);
            if (c->at >= 0) {
                cJSON_AddNumberToObject(o, "at", (double)c->at);
                add_num(o, "a_at", c->a_at);
                add_num(o, "b_at", c->b_at);
            }
        }
        cJSON_AddItemToArray(list, o);
    }
    return root;
}

/* Adds the image half and the verdict, prints, frees root. */
static int print_json(cJSON *root, const cmp_args *a, const char *summary, const img_out *img, int same) {
    if (img) {
        cJSON *o = cJSON_AddObjectToObject(root, "image");
        cJSON_AddStringToObject(o, "params", img->params);
        cJSON_AddNumberToObject(o, "width", img->w);
        cJSON_AddNumberToObject(o, "height", img->h);
        cJSON_AddBoolToObject(o, "bit_identical", img->d.max_abs == 0);
        cJSON_AddNumberToObject(o, "max_abs_pixel", img->d.max_abs);
        add_num(o, "max_abs_float", img->max_abs_f);
        cJSON_AddNumberToObject(o, "pixels_differ", (double)img->d.n_diff);
        add_num(o, "psnr_db", img->d.psnr);
        if (a->image_out) cJSON_AddStringToObject(o, "side_by_side", a->image_out);
    }
    cJSON_AddStringToObject(root, "summary", summary);
    cJSON_AddBoolToObject(root, "same", same);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) { fprintf(stderr, "sdc: compare: out of memory\n"); return -1; }
    puts(s);
    free(s);
    return 0;
}

int sdc_cmd_compare(int argc, char **argv) {
    cmp_args a;
    int pr = parse_args(argc, argv, &a);
    if (pr) return pr > 0 ? 0 : 2;
    int status = 2;
    sdc_store *sa = NULL, *sb = NULL;
    sdc_cmp_result r = {0};
    img_out img = {0};
    sdc_err e = {{0}};
    cJSON *root = NULL;
    if (is_image_file(a.a) && is_image_file(a.b)) return compare_images(&a);
    if (!(sa = open_store(a.a, &a)) || !(sb = open_store(a.b, &a))) goto done;
    if (sdc_compare_stores(sa, sb, &a.tol, &r, &e)) { fprintf(stderr, "sdc: compare: %s\n", e.msg); goto done; }
    char tsum[1024], summary[1536];
    tensor_summary(&r, tsum, sizeof tsum);
    int same = sdc_cmp_same(&r);

    /* The tensor report first, then the stores go: the models opened to generate map the files
     * again, and two full-size mappings plus two sets of f32 weights need not be held at once. */
    if (a.json) {
        if (!(root = tensors_json(&a, sa, sb, &r))) { fprintf(stderr, "sdc: compare: out of memory\n"); goto done; }
    } else {
        print_file("A", a.a, sa, r.n_mapped_a);
        print_file("B", a.b, sb, r.n_mapped_b);
        const size_t *c = r.count;
        size_t common = r.n - c[SDC_CMP_ONLY_A] - c[SDC_CMP_ONLY_B];
        printf("tensors: %zu in both, %zu only in A, %zu only in B", common, c[SDC_CMP_ONLY_A],
               c[SDC_CMP_ONLY_B]);
        if (a.tol.n_only) printf(" (%zu left out by --only)", r.n_skipped);
        printf("\n");
        printf("  %zu identical, %zu equal values, %zu within tolerance, %zu different, %zu shape differs"
               " (%llu values compared)\n", c[SDC_CMP_IDENTICAL], c[SDC_CMP_EQUAL], c[SDC_CMP_WITHIN_TOL],
               c[SDC_CMP_DIFFERENT], c[SDC_CMP_SHAPE], (unsigned long long)r.elems_compared);
        if (r.n_dtype_diff) {
            char dt[512];
            dtype_pairs(&r, dt, sizeof dt);
            printf("dtype differs (%zu): %s\n", r.n_dtype_diff, dt);
        }
        print_list(&r, SDC_CMP_ONLY_A, "only in A", a.all);
        print_list(&r, SDC_CMP_ONLY_B, "only in B", a.all);
        print_list(&r, SDC_CMP_SHAPE, "shape differs", a.all);
        if (print_value_diffs(&r, a.all)) goto done;
        if (r.max_abs_name)
            printf("max abs difference %.6g (%s), max rel difference %.6g (%s)\n", r.max_abs,
                   r.max_abs_name, r.max_rel, r.max_rel_name);
        fflush(stdout);
    }
    sdc_cmp_result_free(&r);
    sdc_store_close(sa);
    sdc_store_close(sb);
    sa = sb = NULL;

    int have_img = 0;
    if (a.prompt) {
        if (output_level(&a, &img)) goto done;
        have_img = 1;
        if (img.d.max_abs > a.pixel_tol) same = 0;
    }
    if (have_img)
        snprintf(summary, sizeof summary, "tensors %s; images %s", tsum,
                 img.d.max_abs == 0 ? "bit-identical"
                 : img.d.max_abs <= a.pixel_tol ? "within --pixel-tol" : "differ");
    else
        snprintf(summary, sizeof summary, "%s", tsum);

    if (a.json) {
        int rc = print_json(root, &a, summary, have_img ? &img : NULL, same);
        root = NULL;
        if (rc) goto done;
    } else {
        if (have_img) {
            printf("images (%s):\n", img.params);
            if (img.d.max_abs == 0)
                printf("  bit-identical (%dx%d)\n", img.w, img.h);
            else
                printf("  max abs pixel difference %d of 255, %lld of %lld pixels differ, PSNR %.2f dB, "
                       "max abs difference of the float images %.6g\n", img.d.max_abs,
                       (long long)img.d.n_diff, (long long)img.w * img.h, img.d.psnr, img.max_abs_f);
            if (a.image_out)
                printf("  wrote %s (A | B | |A-B| heat map x %.3g)\n", a.image_out, img.gain);
        }
        printf("summary: %s\n", summary);
    }
    status = same ? 0 : 1;
done:
    cJSON_Delete(root);
    free(img.a);
    free(img.b);
    sdc_cmp_result_free(&r);
    sdc_store_close(sa);
    sdc_store_close(sb);
    return status;
}
