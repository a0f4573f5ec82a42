/* a1111.c — AUTOMATIC1111's sampler/scheduler names and the PNG "parameters" text. */
#include "cli/a1111.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


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
