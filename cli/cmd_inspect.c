/* cmd_inspect.c — `sdc inspect FILE [--json] [--tensors]`: what a checkpoint holds.
 *
 * Format, tensor and parameter counts per dtype, model family, metadata, and the pickle
 * globals outside the allowlist. Never refuses a hostile pickle (it is the tool to check a
 * download): exits 3 when the file names a dangerous global, 2 when the file is malformed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pipeline/modelcfg.h"
#include "cli/cli.h"
#include "pipeline/detect.h"
#include "runtime/lora.h"
#include "runtime/store.h"

/* Text mode shows this many bytes of a metadata value, then how long it really is. */
#define INSPECT_META_SHOW 100

static void usage(FILE *f) {
    fprintf(f, "usage: sdc inspect FILE [--json] [--tensors] [--config FILE]\n"
               "  shows format, tensor and parameter counts, model family, metadata and the pickle\n"
               "  globals outside the allowlist. Exit 0 ok, 2 malformed file, 3 dangerous pickle.\n"
               "  --json     machine-readable output (metadata values whole)\n"
               "  --tensors  also list every tensor (name, dtype, shape)\n"
               "  --config FILE  the hyper-parameters the tensors cannot tell (a *.config.json)\n");
}

/* Prints s on one line: control bytes escaped, cut after max bytes (0 = whole). */
static void print_value(const char *s, size_t max) {
    size_t len = strlen(s), n = max && len > max ? max : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    if (n < len) printf("... (%zu bytes)", len);
}

static void shape_str(const sdc_tensor *t, char *buf, size_t cap) {
    size_t at = 0;
    at += (size_t)snprintf(buf + at, cap - at, "[");
    for (int d = 0; d < t->ndim && at < cap; d++)
        at += (size_t)snprintf(buf + at, cap - at, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

/* What the tensors cannot tell and where it came from (--config, metadata, SD convention). */
static void config_line(const sdc_model_config *c, char *buf, size_t cap, int which) {
    if (which == 0) {
        if (c->unet_heads > 0) snprintf(buf, cap, "%d heads (%s)", c->unet_heads, c->unet_src);
        else snprintf(buf, cap, "head width %d (%s)", c->unet_head_dim, c->unet_src);
    } else if (which == 1) {
        if (c->text_heads > 0) snprintf(buf, cap, "%d heads, %s (%s)", c->text_heads, c->text_act ? "gelu" : "quick_gelu", c->text_src);
        else snprintf(buf, cap, "head width 64, %s (%s)", c->text_act ? "gelu" : "quick_gelu", c->text_src);
    } else {
        snprintf(buf, cap, "%s (%s)", c->prediction ? "v_prediction" : "epsilon", c->pred_src);
    }
}

/* A textual-inversion embedding's vectors (emb_params, string_to_param.*, clip_l), or NULL. */
static const sdc_tensor *embedding_tensor(const sdc_store *s) {
    const sdc_tensor *t = sdc_store_get(s, "emb_params");
    if (!t) t = sdc_store_get(s, "clip_l");
    for (size_t i = 0; !t && i < sdc_store_count(s); i++)
        if (!strncmp(sdc_store_at(s, i)->name, "string_to_param.", 16)) t = sdc_store_at(s, i);
    return t && (t->ndim == 1 || t->ndim == 2) ? t : NULL;
}

/* A LoRA file: what it is (format, ranks, alpha, modules, the family it fits), or why sdc does
 * not merge it. Returns 1 when s is a LoRA file. */
static int lora_info(const sdc_store *s, sdc_lora_info *li, sdc_err *e) {
    if (!sdc_lora_detect(s)) return 0;
    if (sdc_lora_describe(s, li, e)) li->n_modules = -1;
    return 1;
}

static void lora_json(cJSON *o, const sdc_lora_info *li, const sdc_err *e) {
    cJSON *l = cJSON_AddObjectToObject(o, "lora");
    if (li->n_modules < 0) { cJSON_AddStringToObject(l, "refused", e->msg); return; }
    cJSON_AddStringToObject(l, "format", li->format);
    cJSON_AddNumberToObject(l, "modules", li->n_modules);
    cJSON_AddNumberToObject(l, "unet_modules", li->n_unet);
    cJSON_AddNumberToObject(l, "text_encoder_modules", li->n_te1);
    cJSON_AddNumberToObject(l, "text_encoder_2_modules", li->n_te2);
    cJSON_AddNumberToObject(l, "linear", li->n_linear);
    cJSON_AddNumberToObject(l, "conv1x1", li->n_conv1x1);
    cJSON_AddNumberToObject(l, "conv3x3", li->n_conv3x3);
    cJSON_AddNumberToObject(l, "rank_min", li->rank_min);
    cJSON_AddNumberToObject(l, "rank_max", li->rank_max);
    if (li->has_alpha) {
        cJSON_AddNumberToObject(l, "alpha_min", li->alpha_min);
        cJSON_AddNumberToObject(l, "alpha_max", li->alpha_max);
    }
    cJSON_AddNumberToObject(l, "context_dim", li->context_dim);
    cJSON_AddStringToObject(l, "family", li->family);
}

static void lora_text(const sdc_lora_info *li, const sdc_err *e) {
    if (li->n_modules < 0) { printf("lora:        sdc does not merge it: %s\n", e->msg); return; }
    printf("lora:        %s, %d modules (UNet %d, text encoder %d%s%.0d), ", li->format, li->n_modules,
           li->n_unet, li->n_te1, li->n_te2 ? ", text encoder 2 " : "", li->n_te2);
    if (li->rank_min == li->rank_max) printf("rank %d, ", li->rank_min);
    else printf("rank %d..%d, ", li->rank_min, li->rank_max);
    if (!li->has_alpha) printf("no alpha (= rank)\n");
    else if (li->alpha_min == li->alpha_max) printf("alpha %g\n", li->alpha_min);
    else printf("alpha %g..%g\n", li->alpha_min, li->alpha_max);
    printf("  layers:    %d linear, %d 1x1 conv, %d 3x3 conv\n", li->n_linear, li->n_conv1x1, li->n_conv3x3);
    printf("  fits:      %s\n", li->family);
}

static int print_json(const sdc_store *s, const sdc_detect_info *di, const int64_t *params,
                      const size_t *counts, int tensors, const sdc_model_config *cfg) {
    const sdc_store_file *f = sdc_store_file_at(s, 0);
    cJSON *o = cJSON_CreateObject();
    sdc_lora_info li;
    sdc_err le = {{0}};
    if (lora_info(s, &li, &le)) lora_json(o, &li, &le);
    cJSON_AddStringToObject(o, "file", f->path);
    cJSON_AddStringToObject(o, "format", sdc_format_name(f->format));
    cJSON_AddNumberToObject(o, "bytes", (double)f->size);
    cJSON_AddNumberToObject(o, "tensors", (double)sdc_store_count(s));
    cJSON *pd = cJSON_AddObjectToObject(o, "parameters");
    int64_t total = 0;
    for (int d = 0; d < SDC_DTYPE_COUNT; d++) {
        if (!counts[d]) continue;
        cJSON *x = cJSON_AddObjectToObject(pd, sdc_dtype_name((sdc_dtype)d));
        cJSON_AddNumberToObject(x, "tensors", (double)counts[d]);
        cJSON_AddNumberToObject(x, "parameters", (double)params[d]);
        total += params[d];
    }
    cJSON_AddNumberToObject(o, "parameters_total", (double)total);
    cJSON *fam = cJSON_AddObjectToObject(o, "family");
    cJSON_AddStringToObject(fam, "name", di->name);
    cJSON_AddStringToObject(fam, "reason", di->reason);
    if (di->unet_prefix) cJSON_AddStringToObject(fam, "unet_prefix", di->unet_prefix);
    if (di->vae_prefix) cJSON_AddStringToObject(fam, "vae_prefix", di->vae_prefix);
    if (di->text_prefix) cJSON_AddStringToObject(fam, "text_prefix", di->text_prefix);
    if (di->model_channels) cJSON_AddNumberToObject(fam, "model_channels", (double)di->model_channels);
    if (di->context_dim) cJSON_AddNumberToObject(fam, "context_dim", (double)di->context_dim);
    if (cfg) {
        char b[3][256];
        for (int k = 0; k < 3; k++) config_line(cfg, b[k], sizeof b[k], k);
        cJSON *c = cJSON_AddObjectToObject(o, "config");
        cJSON_AddStringToObject(c, "unet_attention", b[0]);
        cJSON_AddStringToObject(c, "text_encoder", b[1]);
        cJSON_AddStringToObject(c, "prediction", b[2]);
        cJSON_AddNumberToObject(c, "vae_scale", cfg->vae_scale);
        char r[256];
        sdc_model_config_recommended(cfg, r, sizeof r);
        if (r[0]) cJSON_AddStringToObject(c, "recommended", r);
        if (cfg->turbo) cJSON_AddTrueToObject(c, "turbo");
    }
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    for (size_t i = 0; i < sdc_store_meta_count(s); i++) {
        const char *k, *v;
        sdc_store_meta_at(s, i, &k, &v);
        cJSON_AddStringToObject(meta, k, v);
    }
    cJSON *gl = cJSON_AddArrayToObject(o, "pickle_globals");
    int dangerous = 0;
    for (size_t i = 0; i < sdc_store_nglobals(s); i++) {
        const sdc_pickle_global *g = sdc_store_global_at(s, i);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", g->name);
        cJSON_AddBoolToObject(x, "dangerous", g->dangerous);
        cJSON_AddItemToArray(gl, x);
        dangerous |= g->dangerous;
    }
    cJSON_AddBoolToObject(o, "dangerous", dangerous);
    if (tensors) {
        cJSON *ta = cJSON_AddArrayToObject(o, "tensor_list");
        for (size_t i = 0; i < sdc_store_count(s); i++) {
            const sdc_tensor *t = sdc_store_at(s, i);
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "name", t->name);
            cJSON_AddStringToObject(x, "dtype", sdc_dtype_name(t->dtype));
            cJSON *sh = cJSON_AddArrayToObject(x, "shape");
            for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
            cJSON_AddNumberToObject(x, "offset", (double)t->offset);
            cJSON_AddItemToArray(ta, x);
        }
    }
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt) { fprintf(stderr, "sdc: inspect: out of memory printing JSON\n"); return 2; }
    puts(txt);
    free(txt);
    return 0;
}

static void print_text(const sdc_store *s, const sdc_detect_info *di, const int64_t *params,
                       const size_t *counts, int tensors, const sdc_model_config *cfg) {
    const sdc_store_file *f = sdc_store_file_at(s, 0);
    printf("file:        %s\n", f->path);
    printf("format:      %s\n", sdc_format_name(f->format));
    printf("size:        %llu bytes\n", (unsigned long long)f->size);
    printf("tensors:     %zu\n", sdc_store_count(s));
    int64_t total = 0;
    for (int d = 0; d < SDC_DTYPE_COUNT; d++) total += params[d];
    printf("parameters:  %lld\n", (long long)total);
    for (int d = 0; d < SDC_DTYPE_COUNT; d++)
        if (counts[d])
            printf("  %-8s %12lld in %zu tensors\n", sdc_dtype_name((sdc_dtype)d), (long long)params[d], counts[d]);
    sdc_lora_info li;
    sdc_err le = {{0}};
    const sdc_tensor *emb = embedding_tensor(s);
    if (lora_info(s, &li, &le)) lora_text(&li, &le);
    else if (emb && !di->unet_prefix && !di->text_prefix)
        printf("embedding:   textual inversion (%s): %lld vector%s of width %lld; --embd-dir uses it for "
               "the word of its file name\n", emb->name, emb->ndim == 2 ? (long long)emb->shape[0] : 1LL,
               emb->ndim == 2 && emb->shape[0] == 1 ? "" : "s", (long long)emb->shape[emb->ndim - 1]);
    else printf("family:      %s (%s)\n", di->name, di->reason);
    if (di->unet_prefix)
        printf("  unet:      %s (%zu tensors, model_channels %lld, context_dim %lld)\n",
               *di->unet_prefix ? di->unet_prefix : "diffusers names",
               di->unet_tensors, (long long)di->model_channels, (long long)di->context_dim);
    if (di->vae_prefix) printf("  vae:       %s (%zu tensors)\n", *di->vae_prefix ? di->vae_prefix : "bare names", di->vae_tensors);
    if (di->text_prefix) printf("  text:      %s (%zu tensors)\n", di->text_prefix, di->text_tensors);
    if (cfg) {
        char b[256];
        config_line(cfg, b, sizeof b, 0);
        printf("config:      unet attention: %s\n", b);
        config_line(cfg, b, sizeof b, 1);
        printf("             text encoder: %s\n", b);
        config_line(cfg, b, sizeof b, 2);
        printf("             prediction: %s\n", b);
        printf("             vae scale: %g, shift %g (%s)\n", cfg->vae_scale, cfg->vae_shift, cfg->vae_src);
        sdc_model_config_recommended(cfg, b, sizeof b);
        if (b[0]) printf("             recommended: %s%s\n", cfg->turbo ? "turbo model: " : "", b);
        if (cfg->family == SDC_FAMILY_SDXL)
            printf("             SDXL: two text encoders, vector conditioning (--size-cond W,H, --crop-cond X,Y)\n");
        if (cfg->family == SDC_FAMILY_SDXL_REFINER)
            printf("             SDXL refiner: sdc generate does not run refiners (aesthetic-score conditioning)\n");
    }
    printf("metadata:    %zu keys\n", sdc_store_meta_count(s));
    for (size_t i = 0; i < sdc_store_meta_count(s); i++) {
        const char *k, *v;
        sdc_store_meta_at(s, i, &k, &v);
        printf("  ");
        print_value(k, INSPECT_META_SHOW);
        printf(" = ");
        print_value(v, INSPECT_META_SHOW);
        printf("\n");
    }
    size_t ng = sdc_store_nglobals(s);
    if (f->format == SDC_FMT_CKPT_ZIP || f->format == SDC_FMT_CKPT_LEGACY || ng) {
        if (!ng) printf("pickle globals: all on the allowlist\n");
        else printf("pickle globals outside the allowlist (never called; inert placeholders): %zu\n", ng);
        for (size_t i = 0; i < ng; i++) {
            const sdc_pickle_global *g = sdc_store_global_at(s, i);
            printf("  %s%s\n", g->name, g->dangerous ? "   DANGEROUS" : "");
        }
    }
    if (tensors) {
        printf("tensor list:\n");
        for (size_t i = 0; i < sdc_store_count(s); i++) {
            const sdc_tensor *t = sdc_store_at(s, i);
            char sh[256];
            shape_str(t, sh, sizeof sh);
            printf("  %-8s %-24s %s\n", sdc_dtype_name(t->dtype), sh, t->name);
        }
    }
}

int sdc_cmd_inspect(int argc, char **argv) {
    const char *path = NULL, *config = NULL;
    int json = 0, tensors = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--tensors")) tensors = 1;
        else if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) { fprintf(stderr, "sdc: inspect: --config needs a value (a config JSON file)\n"); return 2; }
            config = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sdc: inspect: unknown option '%s' (try sdc inspect --help)\n", argv[i]);
            return 2;
        } else if (path) {
            fprintf(stderr, "sdc: inspect: one FILE at a time ('%s' and '%s')\n", path, argv[i]);
            return 2;
        } else path = argv[i];
    }
    if (!path) { fprintf(stderr, "sdc: inspect: no FILE given (try sdc inspect --help)\n"); return 2; }
    sdc_store *s = sdc_store_new();
    if (!s) { fprintf(stderr, "sdc: %s: out of memory\n", path); return 2; }
    sdc_load_opts opts = {0};
    opts.inspect = 1;
    sdc_err e = {{0}};
    if (sdc_store_open(s, path, &opts, &e)) {
        fprintf(stderr, "sdc: %s\n", e.msg);
        sdc_store_close(s);
        return 2;
    }
    int64_t params[SDC_DTYPE_COUNT] = {0};
    size_t counts[SDC_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < sdc_store_count(s); i++) {
        const sdc_tensor *t = sdc_store_at(s, i);
        params[t->dtype] += t->numel;
        counts[t->dtype]++;
    }
    sdc_detect_info di;
    sdc_detect(s, &di);
    /* For a model with a UNet: the hyper-parameters the tensors cannot tell, and their source. */
    sdc_model_config cfg, *cfgp = NULL;
    if (di.unet_prefix) {
        if (sdc_model_config_resolve(&cfg, s, config, -1, &e)) {
            fprintf(stderr, "sdc: %s\n", e.msg);
            sdc_store_close(s);
            return 2;
        }
        cfgp = &cfg;
    }
    int rc = 0;
    if (json) rc = print_json(s, &di, params, counts, tensors, cfgp);
    else print_text(s, &di, params, counts, tensors, cfgp);
    fflush(stdout);
    if (!rc) {
        size_t nd = 0;
        char names[512] = "";
        for (size_t i = 0; i < sdc_store_nglobals(s); i++) {
            const sdc_pickle_global *g = sdc_store_global_at(s, i);
            if (!g->dangerous) continue;
            size_t at = strlen(names);
            snprintf(names + at, sizeof names - at, "%s%s", nd ? ", " : "", g->name);
            nd++;
        }
        if (nd) {
            fprintf(stderr, "sdc: %s: dangerous pickle: this file would run %s when loaded by PyTorch; "
                            "sdc ran nothing\n", path, names);
            rc = 3;
        }
    }
    sdc_store_close(s);
    return rc;
}
