/* a1111.c — AUTOMATIC1111's sampler/scheduler names and the PNG "parameters" text. */
#include "cli/a1111.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "runtime/sha256.h"


static const char *const a1111_names[] = {"Euler", "Euler a", "Heun", "DDIM", "PLMS", "DPM++ 2M", "LCM"};
#define N_NAMES ((int)(sizeof a1111_names / sizeof *a1111_names))

const char *sdc_a1111_sampler_name(int m) { return (m >= 0 && m < N_NAMES) ? a1111_names[m] : "?"; }

int sdc_a1111_sampler_from_name(const char *name, int *schedule) {
    if (!name) return -1;
    size_t n = strlen(name);
    int karras = 0;
    if (n > 7 && !strcasecmp(name + n - 7, " Karras")) { karras = 1; n -= 7; }
    for (int m = 0; m < N_NAMES; m++) {
        if (strlen(a1111_names[m]) == n && !strncasecmp(name, a1111_names[m], n)) {
            if (karras && schedule) *schedule = SDC_SCHEDULER_KARRAS;
            return m;
        }
    }
    if (karras) return -1;
    int m = sdc_sampler_from_name(name);
    if (m >= 0) return m;
    if (!strcasecmp(name, "PNDM")) return SDC_SAMPLER_PNDM;
    return -1;
}

int sdc_a1111_schedule_from_name(const char *name) {
    if (!name) return -1;
    if (!strcasecmp(name, "Automatic") || !strcasecmp(name, "discrete") || !strcasecmp(name, "Uniform"))
        return SDC_SCHEDULER_DISCRETE;
    if (!strcasecmp(name, "Karras")) return SDC_SCHEDULER_KARRAS;
    return -1;
}

const char *sdc_a1111_schedule_name(int s) { return s == SDC_SCHEDULER_KARRAS ? "Karras" : "Automatic"; }

void sdc_a1111_model_name(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *ext = strrchr(base, '.');
    int blen = ext && ext != base ? (int)(ext - base) : (int)strlen(base);
    snprintf(out, cap, "%.*s", blen, base);
}

/* Appends printf-formatted text to a growing malloc'd string; on failure frees it (→ NULL). */
static char *append(char *s, size_t *len, const char *fmt, ...) {
    if (!s) return NULL;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = k < 0 ? NULL : realloc(s, *len + (size_t)k + 1);
    if (!t) { free(s); return NULL; }
    va_start(ap, fmt);
    vsnprintf(t + *len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    *len += (size_t)k;
    return t;
}

char *sdc_a1111_quote(const char *v) {
    if (!v) v = "";
    if (!strpbrk(v, ",:\n")) return strdup(v);
    size_t len = 0;
    char *s = append(calloc(1, 1), &len, "\"");
    for (const unsigned char *p = (const unsigned char *)v; s && *p; p++) {
        switch (*p) {   /* json.dumps(v, ensure_ascii=False) */
        case '"':  s = append(s, &len, "\\\""); break;
        case '\\': s = append(s, &len, "\\\\"); break;
        case '\n': s = append(s, &len, "\\n"); break;
        case '\r': s = append(s, &len, "\\r"); break;
        case '\t': s = append(s, &len, "\\t"); break;
        case '\b': s = append(s, &len, "\\b"); break;
        case '\f': s = append(s, &len, "\\f"); break;
        default:
            if (*p < 0x20) s = append(s, &len, "\\u%04x", *p);
            else s = append(s, &len, "%c", *p);
        }
    }
    return append(s, &len, "\"");
}

char *sdc_a1111_infotext(const sdc_gen_params *gp, const char *hash, const char *model_name,
                         int flags) {
    size_t len = 0;
    char *s = calloc(1, 1);
    char *model = sdc_a1111_quote(model_name);
    const char *neg = gp->negative_prompt ? gp->negative_prompt : "";
    /* A1111: the "Negative prompt:" line only when there is one; the whole text .strip()ped */
    s = append(s, &len, "%s%s%s\nSteps: %d, Sampler: %s, Schedule type: %s, "
               "CFG scale: %g, Seed: %llu, Size: %dx%d, Model hash: %.10s, Model: %s",
               gp->prompt ? gp->prompt : "", *neg ? "\nNegative prompt: " : "", neg,
               gp->steps, sdc_a1111_sampler_name(gp->sample_method),
               sdc_a1111_schedule_name(gp->schedule), gp->cfg_scale,
               (unsigned long long)gp->seed, gp->width, gp->height, hash ? hash : "", model ? model : "");
    free(model);
    if (!model) { free(s); return NULL; }
    if (gp->clip_skip > 1) s = append(s, &len, ", Clip skip: %d", gp->clip_skip);
    if (gp->size_cond_w > 0 && gp->size_cond_h > 0)   /* SDXL's size conditioning, as it was used */
        s = append(s, &len, ", Size cond: %dx%d, Crop cond: %d,%d", gp->size_cond_w, gp->size_cond_h, gp->crop_x,
                   gp->crop_y);
    if (gp->spacing >= 0) s = append(s, &len, ", Timestep spacing: %s", sdc_timestep_spacing_name(gp->spacing));
    if (flags & SDC_A1111_IMG2IMG) s = append(s, &len, ", Denoising strength: %g", gp->strength);
    if (flags & SDC_A1111_INPAINT_MODEL) s = append(s, &len, ", Conditional mask weight: 1.0");
    if (gp->mask) s = append(s, &len, ", Mask blur: 0");
    s = append(s, &len, ", Version: sdc");
    if (!s) return NULL;
    size_t a = 0;   /* Python's str.strip(): whitespace at both ends */
    while (s[a] && (strchr(" \t\n\r\v\f", s[a]) || (s[a] >= 0x1c && s[a] <= 0x1f))) a++;
    while (len > a && (strchr(" \t\n\r\v\f", s[len - 1]) || (s[len - 1] >= 0x1c && s[len - 1] <= 0x1f))) len--;
    memmove(s, s + a, len - a);
    s[len - a] = 0;
    return s;
}

/* AUTOMATIC1111's short hash of a LoRA file (its "Lora hashes"): the first 12 hex digits of the
 * SHA-256 of a .safetensors file's bytes after its header (the "addnet" hash), or of the whole
 * file otherwise. "" when it cannot be read. */
static void lora_hash(const char *path, char out[13]) {
    out[0] = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    unsigned char h[9];
    uint64_t skip = 0;
    if (read(fd, h, 9) == 9 && h[8] == '{') {
        for (int i = 7; i >= 0; i--) skip = skip << 8 | h[i];
        skip += 8;
    }
    char hex[65];
    if (skip <= (uint64_t)INT64_MAX && lseek(fd, (off_t)skip, SEEK_SET) == (off_t)skip && sdc_sha256_fd(fd, hex) == 0)
        snprintf(out, 13, "%.12s", hex);
    close(fd);
}

/* params with `, Lora hashes: "name: hash, ..."` put before its ", Version: " (AUTOMATIC1111's
 * order); params itself when no LoRA was merged. NULL when out of memory (params freed). */
char *sdc_a1111_with_lora_hashes(char *params, const sdc_model *m) {
    const char *path;
    float w;
    if (!params || !sdc_model_lora(m, 0, &path, &w)) return params;
    size_t cap = 64, len = 0;
    char *list = malloc(cap);
    for (int i = 0; list && sdc_model_lora(m, i, &path, &w); i++) {
        const char *name = sdc_model_lora(m, i, &path, &w);
        char hash[13];
        lora_hash(path, hash);
        size_t need = len + strlen(name) + 20;
        if (need > cap) {
            char *t = realloc(list, cap = 2 * need);
            if (!t) { free(list); list = NULL; break; }
            list = t;
        }
        len += (size_t)snprintf(list + len, cap - len, "%s%s: %s", i ? ", " : "", name, hash);
    }
    char *ver = list ? strstr(params, ", Version: ") : NULL;
    size_t at = ver ? (size_t)(ver - params) : strlen(params);
    char *q = list ? sdc_a1111_quote(list) : NULL;   /* "name: hash, ...", quoted as A1111 does */
    char *o = q ? malloc(strlen(params) + strlen(q) + 32) : NULL;
    if (o) sprintf(o, "%.*s, Lora hashes: %s%s", (int)at, params, q, params + at);
    free(q);
    free(list);
    free(params);
    return o;
}
