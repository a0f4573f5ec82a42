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

char *sdc_a1111_infotext(const sdc_gen_params *gp, const char *hash, const char *model_name,
                         int flags) {
    size_t len = 0;
    char *s = calloc(1, 1);
    s = append(s, &len, "%s\nNegative prompt: %s\nSteps: %d, Sampler: %s, Schedule type: %s, "
               "CFG scale: %g, Seed: %llu, Size: %dx%d, Model hash: %.10s, Model: %s",
               gp->prompt ? gp->prompt : "", gp->negative_prompt ? gp->negative_prompt : "",
               gp->steps, sdc_a1111_sampler_name(gp->sample_method),
               sdc_a1111_schedule_name(gp->schedule), gp->cfg_scale,
               (unsigned long long)gp->seed, gp->width, gp->height, hash ? hash : "", model_name);
    if (gp->clip_skip > 1) s = append(s, &len, ", Clip skip: %d", gp->clip_skip);
    if (flags & SDC_A1111_IMG2IMG) s = append(s, &len, ", Denoising strength: %g", gp->strength);
    if (flags & SDC_A1111_INPAINT_MODEL) s = append(s, &len, ", Conditional mask weight: 1.0");
    if (gp->mask) s = append(s, &len, ", Mask blur: 0");
    return append(s, &len, ", Version: sdc");
}
