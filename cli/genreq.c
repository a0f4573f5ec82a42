/* genreq.c — a JSON generation request (AUTOMATIC1111 / OpenAI / prompt-file line) checked into
 * sdc_gen_params. */
#include "cli/genreq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/a1111.h"
#include "cli/base64.h"
#include "pipeline/image.h"
#include "pipeline/prompt.h"

#define ERR(fld, ...) (*field = (fld), sdc_errf(e, __VA_ARGS__))

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return (v && !cJSON_IsNull(v)) ? v : NULL;   /* null means "not given", as pydantic reads it */
}

/* String field: absent → *out untouched (0); wrong type or too long → -1. */
static int get_str(const cJSON *o, const char *k, size_t max, const char **out, const char **field, sdc_err *e) {
    const cJSON *v = get(o, k);
    if (!v) return 0;
    if (!cJSON_IsString(v) || !v->valuestring) return ERR(k, "%s: expected a string", k);
    if (strlen(v->valuestring) > max) return ERR(k, "%s: longer than %zu bytes", k, max);
    *out = v->valuestring;
    return 1;
}

/* Integer field in lo..hi: absent → 0, given → 1, else -1. */
static int get_int(const cJSON *o, const char *k, long long lo, long long hi, long long *out,
                   const char **field, sdc_err *e) {
    const cJSON *v = get(o, k);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return ERR(k, "%s: expected an integer", k);
    double d = v->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi)) return ERR(k, "%s: %g out of range %lld..%lld", k, d, lo, hi);
    if (d != floor(d)) return ERR(k, "%s: %g is not an integer", k, d);
    *out = (long long)d;
    return 1;
}

static int get_num(const cJSON *o, const char *k, double lo, double hi, float *out, const char **field, sdc_err *e) {
    const cJSON *v = get(o, k);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return ERR(k, "%s: expected a number", k);
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi)) return ERR(k, "%s: %g out of range %g..%g", k, d, lo, hi);
    *out = (float)d;
    return 1;
}

static int get_bool(const cJSON *o, const char *k, int *out, const char **field, sdc_err *e) {
    const cJSON *v = get(o, k);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return ERR(k, "%s: expected true or false", k);
    *out = cJSON_IsTrue(v);
    return 1;
}

static int dup_str(char **dst, const char *s, sdc_err *e) {
    if (!(*dst = strdup(s ? s : ""))) return sdc_errf(e, "out of memory");
    return 0;
}

/* The size as OpenAI spells it: "WxH". */
static int parse_size(const char *s, int *w, int *h) {
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X')) return -1;
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (end == p || *end || a < 8 || b < 8 || a > 8192 || b > 8192) return -1;
    *w = (int)a; *h = (int)b;
    return 0;
}

/* A base64 image (a data: URL prefix allowed) of a PNG/JPEG/...: RGB, or grey as PIL's
 * convert('L') for a mask. */
static int decode_b64_image(const char *s, const char *key, int grey, uint8_t **px, int *w, int *h,
                            const char **field, sdc_err *e) {
    if (!strncmp(s, "data:", 5)) {
        const char *comma = strchr(s, ',');
        if (!comma) return ERR(key, "%s: a data: URL without ','", key);
        s = comma + 1;
    }
    uint8_t *bytes;
    size_t n;
    if (sdc_base64_decode(s, strlen(s), &bytes, &n)) return ERR(key, "%s: not valid base64", key);
    sdc_err de = {{0}};
    int rc = grey ? sdc_decode_mask(bytes, n, px, w, h, &de) : sdc_decode_image(bytes, n, px, w, h, &de);
    free(bytes);
    if (rc) return ERR(key, "%s: %s", key, de.msg);
    if ((long)*w * *h > GENREQ_MAX_PIXELS) return ERR(key, "%s: %dx%d is more than %ld pixels", key, *w, *h, GENREQ_MAX_PIXELS);
    return 0;
}

/* img2img's mask (inpainting): white = repaint; the size of the init image. AUTOMATIC1111's
 * inpainting_mask_invert swaps; mask_blur is not applied (sdc does not blur masks). */
static int parse_mask(const cJSON *o, genreq *r, const char **field, sdc_err *e) {
    const cJSON *v = get(o, "mask");
    if (!v) return 0;
    if (!cJSON_IsString(v) || !v->valuestring) return ERR("mask", "mask: expected a base64 image");
    int w = 0, h = 0;
    if (decode_b64_image(v->valuestring, "mask", 1, &r->mask, &w, &h, field, e)) return -1;
    if (w != r->gp.width || h != r->gp.height)
        return ERR("mask", "mask: %dx%d but the init image is %dx%d (they must be the same size)", w, h, r->gp.width, r->gp.height);
    long long inv = 0;
    if (get_int(o, "inpainting_mask_invert", 0, 1, &inv, field, e) < 0) return -1;
    if (inv) for (size_t i = 0; i < (size_t)w * h; i++) r->mask[i] = (uint8_t)(255 - r->mask[i]);
    r->gp.mask = r->mask;
    return 0;
}

/* img2img's init_images[0]. */
static int parse_init(const cJSON *o, genreq *r, const char **field, sdc_err *e) {
    const cJSON *arr = get(o, "init_images");
    if (!arr) return ERR("init_images", "init_images: required for img2img");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1) return ERR("init_images", "init_images: expected a list of base64 images");
    const cJSON *v = cJSON_GetArrayItem(arr, 0);
    if (!cJSON_IsString(v) || !v->valuestring) return ERR("init_images", "init_images: expected base64 strings");
    int w = 0, h = 0;
    if (decode_b64_image(v->valuestring, "init_images", 0, &r->init_rgb, &w, &h, field, e)) return -1;
    if ((r->have_w && w != r->gp.width) || (r->have_h && h != r->gp.height))
        return ERR("init_images", "init_images: image is %dx%d but width/height ask for %dx%d (resize it first)",
                   w, h, r->gp.width, r->gp.height);
    r->gp.width = w; r->gp.height = h; r->have_w = r->have_h = 1;
    r->gp.init_rgb = r->init_rgb;
    return 0;
}

/* The fields AUTOMATIC1111's txt2img and img2img share (and prompt-file lines use). */
static int parse_a1111(const cJSON *o, genreq_kind kind, genreq *r, const char **field, sdc_err *e) {
    long long v;
    int k;
    if ((k = get_int(o, "steps", 1, 1000, &v, field, e)) < 0) return -1;
    if (k) { r->gp.steps = (int)v; r->have_steps = 1; }
    if ((k = get_num(o, "cfg_scale", 0, 100, &r->gp.cfg_scale, field, e)) < 0) return -1;
    if (k) r->have_cfg = 1;
    if ((k = get_int(o, "width", 8, 8192, &v, field, e)) < 0) return -1;
    if (k) { r->gp.width = (int)v; r->have_w = 1; }
    if ((k = get_int(o, "height", 8, 8192, &v, field, e)) < 0) return -1;
    if (k) { r->gp.height = (int)v; r->have_h = 1; }
    if (get_int(o, "seed", -1, GENREQ_MAX_SEED, &r->seed, field, e) < 0) return -1;
    const char *s = NULL;
    const char *skey = kind == GENREQ_LINE && get(o, "sampler") ? "sampler" : "sampler_name";
    if ((k = get_str(o, skey, 64, &s, field, e)) < 0) return -1;
    if (!k && kind != GENREQ_LINE && (k = get_str(o, skey = "sampler_index", 64, &s, field, e)) < 0) return -1;
    if (k && (r->gp.sample_method = sdc_a1111_sampler_from_name(s, &r->gp.schedule)) < 0)
        return ERR(skey, "Sampler not found: '%.64s'", s);
    if ((k = get_str(o, "scheduler", 64, &s, field, e)) < 0) return -1;
    if (k && (r->gp.schedule = sdc_a1111_schedule_from_name(s)) < 0)
        return ERR("scheduler", "Scheduler not found: '%.64s' (Automatic, Karras)", s);
    if ((k = get_int(o, "clip_skip", 0, 64, &v, field, e)) < 0) return -1;   /* sdc prompt files */
    if (k) r->gp.clip_skip = (int)v;
    long long bs = 1, ni = 1;
    if (kind != GENREQ_LINE) {
        if (get_int(o, "batch_size", 1, GENREQ_MAX_IMAGES, &bs, field, e) < 0) return -1;
        if (get_int(o, "n_iter", 1, GENREQ_MAX_IMAGES, &ni, field, e) < 0) return -1;
        if (bs * ni > GENREQ_MAX_IMAGES)
            return ERR("n_iter", "batch_size x n_iter: %lld images, at most %d per request", bs * ni, GENREQ_MAX_IMAGES);
    }
    r->n_images = (int)(bs * ni);
    int flag = 0;
    if (get_bool(o, "enable_hr", &flag, field, e) < 0) return -1;
    if (flag) return ERR("enable_hr", "enable_hr: hires fix is not supported");
    if (get_bool(o, "restore_faces", &flag, field, e) < 0) return -1;
    if (flag) return ERR("restore_faces", "restore_faces: face restoration is not supported");
    const cJSON *ov = get(o, "override_settings");
    if (ov) {
        if (!cJSON_IsObject(ov)) return ERR("override_settings", "override_settings: expected an object");
        if ((k = get_str(ov, "sd_model_checkpoint", 1024, &s, field, e)) < 0) return -1;
        if (k && dup_str(&r->model, s, e)) return -1;
        if ((k = get_int(ov, "CLIP_stop_at_last_layers", 1, 12, &v, field, e)) < 0) return -1;
        if (k) r->gp.clip_skip = (int)v;
    }
    if ((k = get_str(o, "sd_model_checkpoint", 1024, &s, field, e)) < 0) return -1;   /* prompt files */
    if (k && !r->model && dup_str(&r->model, s, e)) return -1;
    if (kind == GENREQ_IMG2IMG) {
        r->gp.strength = 0.75f;
        if (get_num(o, "denoising_strength", 0, 1, &r->gp.strength, field, e) < 0) return -1;
        if (!(r->gp.strength > 0)) return ERR("denoising_strength", "denoising_strength: must be in (0, 1]");
        if (parse_init(o, r, field, e)) return -1;
        if (parse_mask(o, r, field, e)) return -1;
    }
    return 0;
}

static int parse_openai(const cJSON *o, genreq *r, const char **field, sdc_err *e) {
    const char *s = NULL;
    long long n = 1;
    int k;
    if (get_int(o, "n", 1, GENREQ_MAX_IMAGES, &n, field, e) < 0) return -1;
    r->n_images = (int)n;
    if ((k = get_str(o, "size", 32, &s, field, e)) < 0) return -1;
    if (k) {
        if (parse_size(s, &r->gp.width, &r->gp.height)) return ERR("size", "size: expected WIDTHxHEIGHT, e.g. 512x512");
        r->have_w = r->have_h = 1;
    }
    r->openai_b64 = 1;
    if ((k = get_str(o, "response_format", 32, &s, field, e)) < 0) return -1;
    if (k && strcmp(s, "b64_json")) return ERR("response_format", "response_format: only b64_json is served (no image URLs)");
    if (get_int(o, "seed", -1, GENREQ_MAX_SEED, &r->seed, field, e) < 0) return -1;   /* an extension */
    return 0;
}

int genreq_parse(const cJSON *o, genreq_kind kind, const sdc_gen_params *base, genreq *r,
                 const char **field, sdc_err *e) {
    memset(r, 0, sizeof *r);
    *field = NULL;
    r->gp = *base;
    r->gp.init_rgb = NULL;
    r->gp.mask = NULL;
    r->seed = -1;
    r->n_images = 1;
    if (!cJSON_IsObject(o)) return sdc_errf(e, "expected a JSON object");
    const char *p = NULL, *np = NULL;
    int k = get_str(o, "prompt", GENREQ_MAX_PROMPT, &p, field, e);
    if (k < 0) return -1;
    if (!k && (kind == GENREQ_OPENAI || kind == GENREQ_LINE)) return ERR("prompt", "prompt: required");
    if (get_str(o, "negative_prompt", GENREQ_MAX_PROMPT, &np, field, e) < 0) return -1;
    if (dup_str(&r->prompt, p, e) || dup_str(&r->negative, np ? np : base->negative_prompt, e)) return -1;
    r->gp.prompt = r->prompt;
    r->gp.negative_prompt = r->negative;
    return kind == GENREQ_OPENAI ? parse_openai(o, r, field, e) : parse_a1111(o, kind, r, field, e);
}

int genreq_apply_defaults(genreq *r, const sdc_model *m, sdc_err *e) {
    int dw = 0, dh = 0, ds = 0;
    float dc = 0;
    if (m) sdc_model_defaults(m, &dw, &dh, &ds, &dc);
    if (!r->have_w) r->gp.width = dw > 0 ? dw : 512;
    if (!r->have_h) r->gp.height = dh > 0 ? dh : 512;
    if (!r->have_steps && ds > 0) r->gp.steps = ds;
    if (!r->have_cfg && dc > 0) r->gp.cfg_scale = dc;
    if (r->gp.width % 8 || r->gp.height % 8)
        return sdc_errf(e, "size %dx%d: width and height must be multiples of 8", r->gp.width, r->gp.height);
    if ((long)r->gp.width * r->gp.height > GENREQ_MAX_PIXELS)
        return sdc_errf(e, "size %dx%d: more than %ld pixels", r->gp.width, r->gp.height, GENREQ_MAX_PIXELS);
    return 0;
}

void genreq_free(genreq *r) {
    if (!r) return;
    free(r->prompt);
    free(r->negative);
    free(r->model);
    free(r->init_rgb);
    free(r->mask);
    memset(r, 0, sizeof *r);
}

int genreq_json_depth_ok(const char *buf, size_t n, int max_depth) {
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) return 0;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 1;
}

char *genreq_lora_key(const char *prompt, sdc_err *e) {
    char *rest = NULL;
    sdc_prompt_lora *tags = NULL;
    int n = 0;
    if (sdc_prompt_take_loras(prompt ? prompt : "", &rest, &tags, &n, e)) return NULL;
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(tags[i].name) + 32;
    char *key = malloc(len), *o = key;
    if (key) {
        *o = 0;
        for (int i = 0; i < n; i++) o += sprintf(o, "%s:%.9g\n", tags[i].name, tags[i].mult);
    } else {
        sdc_errf(e, "out of memory");
    }
    free(rest);
    sdc_prompt_loras_free(tags, n);
    return key;
}
