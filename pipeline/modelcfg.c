/* modelcfg.c — resolves the family, heads, text activation, prediction type and VAE scale
 * (see modelcfg.h). */
#include "pipeline/modelcfg.h"

#include "pipeline/sampler.h"   /* the sampler and spacing enums of the defaults */

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX_BYTES (1 << 20)   /* a model config is a few KB; 1 MB is far beyond any */
/* Counts and widths a config or metadata may give (heads, head width, channels, image side,
 * steps): far above any real model, small enough that products of two stay in an int. Values
 * outside [1, CFG_MAX_INT] are read as not given, like the zero and negative ones. */
#define CFG_MAX_INT 65536
/* A guidance scale above this is no setting anyone uses; the metadata default is ignored. */
#define CFG_MAX_SCALE 100.0

static char *slurp(const char *path, sdc_err *e) {
    struct stat st;   /* a FIFO or device would block the read */
    if (stat(path, &st) != 0) { sdc_errf(e, "%s: cannot open config: %s", path, strerror(errno)); return NULL; }
    if (!S_ISREG(st.st_mode)) { sdc_errf(e, "%s: config is not a regular file", path); return NULL; }
    FILE *f = fopen(path, "rb");
    if (!f) { sdc_errf(e, "%s: cannot open config", path); return NULL; }
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf) { sdc_errf(e, "%s: out of memory", path); return NULL; }
    if (n > CONFIG_MAX_BYTES) { free(buf); sdc_errf(e, "%s: config larger than 1 MB", path); return NULL; }
    buf[n] = 0;
    return buf;
}

/* A JSON number in [1, CFG_MAX_INT] as an int (truncated), else 0 (never a cast out of range). */
static int json_pos(const cJSON *v) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= CFG_MAX_INT)) return 0;
    return (int)v->valuedouble;
}

/* Sets *out to o[key] when that is a number in [1, CFG_MAX_INT]; returns 1 then, else 0. */
static int json_int(const cJSON *o, const char *key, int *out) {
    int v = json_pos(cJSON_GetObjectItemCaseSensitive(o, key));
    if (v <= 0) return 0;
    *out = v;
    return 1;
}

/* A metadata string that is a whole number in [1, CFG_MAX_INT], else 0. */
static int meta_pos(const char *s) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || errno || v < 1 || v > CFG_MAX_INT) return 0;
    return (int)v;
}

static int act_from_name(const char *s) {
    return (s && strstr(s, "quick")) ? 0 : 1;
}

static void set_pred_from(sdc_model_config *c, const char *s, const char *src) {
    if (!s) return;
    if (!strcmp(s, "v_prediction") || !strcmp(s, "v")) c->prediction = 1;
    else if (!strcmp(s, "epsilon") || !strcmp(s, "eps")) c->prediction = 0;
    else return;
    snprintf(c->pred_src, sizeof c->pred_src, "%s", src);
}

/* The VAE's latent scale (a JSON number in (0, 100]) and shift (finite; absent: 0). */
static void set_vae_scale(sdc_model_config *c, const cJSON *scale, const cJSON *shift, const char *src) {
    if (!cJSON_IsNumber(scale) || !(scale->valuedouble > 0 && scale->valuedouble <= 100)) return;
    c->vae_scale = (float)scale->valuedouble;
    c->vae_shift = cJSON_IsNumber(shift) && isfinite(shift->valuedouble) ? (float)shift->valuedouble : 0;
    snprintf(c->vae_src, sizeof c->vae_src, "%s", src);
}

/* The fixtures' config form: {kind, prediction_type, unet:{num_heads, num_head_channels},
 * text:{heads, activation}}. Fields absent leave c unchanged. */
static void apply_fixture_config(sdc_model_config *c, const cJSON *j, const char *src) {
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "unet");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
    int h = 0, hd = 0;
    if (u && ((json_int(u, "num_heads", &h) && h > 0) | (json_int(u, "num_head_channels", &hd) && hd > 0))) {
        c->unet_heads = h > 0 ? h : -1;
        c->unet_head_dim = h > 0 ? -1 : hd;
        snprintf(c->unet_src, sizeof c->unet_src, "%s", src);
    }
    if (t && json_int(t, "heads", &h) && h > 0) {
        c->text_heads = h;
        snprintf(c->text_src, sizeof c->text_src, "%s", src);
    }
    const cJSON *act = t ? cJSON_GetObjectItemCaseSensitive(t, "activation") : NULL;
    if (cJSON_IsString(act)) c->text_act = act_from_name(act->valuestring);
    const cJSON *t2 = cJSON_GetObjectItemCaseSensitive(j, "text_2");   /* SDXL's second tower */
    if (t2 && json_int(t2, "heads", &h) && h > 0) c->text2_heads = h;
    act = t2 ? cJSON_GetObjectItemCaseSensitive(t2, "activation") : NULL;
    if (cJSON_IsString(act)) c->text2_act = act_from_name(act->valuestring);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prediction_type");
    if (cJSON_IsString(p)) set_pred_from(c, p->valuestring, src);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "vae");
    if (v) set_vae_scale(c, cJSON_GetObjectItemCaseSensitive(v, "scale_factor"),
                         cJSON_GetObjectItemCaseSensitive(v, "shift_factor"), src);
}

/* diffusers unet config: attention_head_dim is (confusingly) the head COUNT when an int (SD 1.x),
 * a per-level list of head counts for SD 2.x (head width = block_out_channels[i] / heads[i]). */
static void apply_diffusers_unet(sdc_model_config *c, const cJSON *j, const char *src) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attention_head_dim");
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "block_out_channels");
    if (json_pos(a) > 0) {
        c->unet_heads = json_pos(a);
        c->unet_head_dim = -1;
        snprintf(c->unet_src, sizeof c->unet_src, "%s", src);
    } else if (cJSON_IsArray(a) && cJSON_IsArray(ch) && cJSON_GetArraySize(a) > 0 &&
               cJSON_GetArraySize(a) == cJSON_GetArraySize(ch)) {
        int hd = -1, same = 1;
        for (int i = 0; i < cJSON_GetArraySize(a); i++) {
            int heads = json_pos(cJSON_GetArrayItem(a, i));
            int w = json_pos(cJSON_GetArrayItem(ch, i));
            if (heads <= 0 || w <= 0 || w % heads) { same = 0; break; }
            if (hd < 0) hd = w / heads;
            else if (hd != w / heads) same = 0;
        }
        if (same && hd > 0) {
            c->unet_heads = -1;
            c->unet_head_dim = hd;
            snprintf(c->unet_src, sizeof c->unet_src, "%s", src);
        }
    }
}

static void apply_diffusers_text(sdc_model_config *c, const cJSON *j, const char *src) {
    int h;
    if (json_int(j, "num_attention_heads", &h) && h > 0) {
        c->text_heads = h;
        snprintf(c->text_src, sizeof c->text_src, "%s", src);
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    if (cJSON_IsString(act)) c->text_act = act_from_name(act->valuestring);
}

/* Parses a JSON metadata value; NULL (and e set) if it is not a JSON object. */
static cJSON *meta_json(const char *val, const char *key, sdc_err *e) {
    cJSON *j = cJSON_Parse(val);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        sdc_errf(e, "metadata '%s': not a JSON object", key);
    }
    return cJSON_IsObject(j) ? j : NULL;
}

/* Does any of the metadata's names for the model say "turbo" (any case)? */
static int says_turbo(const sdc_store *st) {
    static const char *const keys[] = {"modelspec.title", "modelspec.description", "modelspec.architecture",
                                       "name", "model", "title", "description"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = sdc_store_meta(st, keys[i]);
        if (v && strcasestr(v, "turbo")) return 1;
    }
    return 0;
}

static int apply_metadata(sdc_model_config *c, const sdc_store *st, sdc_err *e) {
    const char *v;
    if (says_turbo(st)) {   /* SD-Turbo / SDXL-Turbo: the settings they are distilled for */
        c->turbo = 1;
        c->def_width = c->def_height = 512;
        c->def_steps = 1;
        c->def_cfg = 0;
        c->def_sampler = SDC_SAMPLE_EULER_A;
        c->def_spacing = SDC_SPACING_TRAILING;
        c->prediction = 0;       /* SD-Turbo has SD 2.1's layout but predicts ε */
        snprintf(c->pred_src, sizeof c->pred_src, "turbo model (metadata)");
        snprintf(c->defaults_src, sizeof c->defaults_src, "turbo model (metadata)");
    }
    if ((v = sdc_store_meta(st, "tiny_sd_config"))) {
        cJSON *j = meta_json(v, "tiny_sd_config", e);
        if (!j) return -1;
        apply_fixture_config(c, j, "metadata tiny_sd_config");
        cJSON_Delete(j);
    }
    if ((v = sdc_store_meta(st, "unet_config"))) {
        cJSON *j = meta_json(v, "unet_config", e);
        if (!j) return -1;
        apply_diffusers_unet(c, j, "metadata unet_config");
        cJSON_Delete(j);
    }
    if ((v = sdc_store_meta(st, "text_config"))) {
        cJSON *j = meta_json(v, "text_config", e);
        if (!j) return -1;
        apply_diffusers_text(c, j, "metadata text_config");
        cJSON_Delete(j);
    }
    if ((v = sdc_store_meta(st, "unet_num_heads")) && meta_pos(v) > 0) {
        c->unet_heads = meta_pos(v);
        c->unet_head_dim = -1;
        snprintf(c->unet_src, sizeof c->unet_src, "metadata unet_num_heads");
    }
    if ((v = sdc_store_meta(st, "text_num_heads")) && meta_pos(v) > 0) {
        c->text_heads = meta_pos(v);
        snprintf(c->text_src, sizeof c->text_src, "metadata text_num_heads");
    }
    if ((v = sdc_store_meta(st, "text_hidden_act"))) c->text_act = act_from_name(v);
    set_pred_from(c, sdc_store_meta(st, "prediction_type"), "metadata prediction_type");
    if ((v = sdc_store_meta(st, "default_size"))) {   /* "WxH" */
        const char *x = strchr(v, 'x');
        int w = meta_pos(v), h = x ? meta_pos(x + 1) : 0;
        if (w > 0 && h > 0) { c->def_width = w; c->def_height = h; }
    }
    if ((v = sdc_store_meta(st, "default_steps")) && meta_pos(v) > 0) c->def_steps = meta_pos(v);
    if ((v = sdc_store_meta(st, "default_cfg"))) {
        double g = atof(v);
        c->def_cfg = isfinite(g) && g > 0 && g <= CFG_MAX_SCALE ? (float)g : 0;
    }
    return 0;
}

int sdc_model_config_resolve(sdc_model_config *c, const sdc_store *st, const char *config_path,
                             int prediction_override, sdc_err *e) {
    memset(c, 0, sizeof *c);
    c->family = sdc_detect_family(st);
    c->openclip = sdc_store_count_prefix(st, "cond_stage_model.model.") > 0;
    c->family_name = c->family == SDC_FAMILY_UNKNOWN ? (c->openclip ? "SD 2.x" : "SD 1.x")
                                                     : sdc_family_name(c->family);
    /* 3. SD's conventions, overwritten below by anything more specific. */
    const int xl = c->family == SDC_FAMILY_SDXL;
    c->unet_heads = c->openclip || xl ? -1 : 8;
    c->unet_head_dim = c->openclip || xl ? 64 : -1;
    c->text_heads = -1;                       /* width / 64 */
    c->text_act = c->openclip ? 1 : 0;
    c->text2_heads = -1;
    c->text2_act = -1;                        /* OpenCLIP's gelu */
    c->prediction = c->openclip ? 1 : 0;
    c->def_sampler = c->def_spacing = -1;
    snprintf(c->unet_src, sizeof c->unet_src, "%s convention", xl ? "SDXL" : c->openclip ? "SD 2.x" : "SD 1.x");
    snprintf(c->text_src, sizeof c->text_src, "CLIP convention (head width 64)");
    snprintf(c->pred_src, sizeof c->pred_src, "%s convention", xl ? "SDXL" : c->openclip ? "SD 2.x (768-v)" : "SD 1.x");
    if (xl) {   /* sd_xl_base's scheduler config: EulerDiscreteScheduler, leading; pipeline cfg 5 */
        c->def_width = c->def_height = 1024;
        c->def_cfg = 5.0f;
        c->def_sampler = SDC_SAMPLE_EULER;
        c->def_spacing = SDC_SPACING_LEADING;
        snprintf(c->defaults_src, sizeof c->defaults_src, "SDXL convention");
    }
    c->vae_scale = c->family == SDC_FAMILY_SDXL ? 0.13025f : 0.18215f;
    snprintf(c->vae_src, sizeof c->vae_src, "%s convention", c->family_name);
    /* 2. metadata */
    if (apply_metadata(c, st, e)) return -1;
    /* 1. --config */
    if (config_path) {
        char *txt = slurp(config_path, e);
        if (!txt) return -1;
        cJSON *j = cJSON_Parse(txt);
        free(txt);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            return sdc_errf(e, "%s: not a JSON object", config_path);
        }
        char src[96];
        snprintf(src, sizeof src, "--config %s", config_path);
        apply_fixture_config(c, j, src);
        cJSON_Delete(j);
    }
    if (prediction_override == 0 || prediction_override == 1) {
        c->prediction = prediction_override;
        snprintf(c->pred_src, sizeof c->pred_src, "--prediction");
    }
    return 0;
}

void sdc_model_config_recommended(const sdc_model_config *c, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    if (c->def_width > 0 && c->def_height > 0)
        o += (size_t)snprintf(buf + o, cap - o, "%dx%d", c->def_width, c->def_height);
    if (o < cap && c->def_steps > 0)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d step%s%s", o ? ", " : "", c->def_steps, c->def_steps > 1 ? "s" : "",
                              c->turbo ? " (1-4)" : "");
    if (o < cap && (c->def_cfg > 0 || c->turbo))
        o += (size_t)snprintf(buf + o, cap - o, "%scfg %g%s", o ? ", " : "", c->def_cfg,
                              c->def_cfg <= 1 ? " (no guidance: one UNet call a step)" : "");
    if (o < cap && c->def_sampler >= 0)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", sdc_sample_method_name(c->def_sampler));
    if (o < cap && c->def_spacing >= 0)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s spacing", o ? ", " : "", sdc_spacing_name(c->def_spacing));
    if (o && o < cap) snprintf(buf + o, cap - o, " (%s)", c->defaults_src[0] ? c->defaults_src : "metadata");
}
