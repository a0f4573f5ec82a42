/* test_util.h — the few helpers the C tests share: a whole file in memory, a stored tensor as
 * f32, the largest difference between two float arrays.
 *
 * static inline: every test is its own program, and this header is its only shared code. */
#ifndef SDC_TEST_UTIL_H
#define SDC_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/store.h"

/* The whole file at path, malloc'd, with a NUL after its last byte (so text can be used as a
 * string); *n (may be NULL) receives its size. NULL when it cannot be read whole. */
static inline void *tu_slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    char *b = len >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)len + 1) : NULL;
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    fclose(f);
    if (!b) return NULL;
    b[len] = 0;
    if (n) *n = (size_t)len;
    return b;
}

/* Tensor name of s converted to f32 (malloc'd); *numel (may be NULL) receives its element
 * count. NULL when the tensor is absent or cannot be converted. */
static inline float *tu_tensor_f32(const sdc_store *s, const char *name, size_t *numel) {
    const sdc_tensor *t = sdc_store_get(s, name);
    if (!t) return NULL;
    float *x = malloc(((size_t)t->numel + 1) * sizeof *x);
    sdc_err e = {{0}};
    if (x && sdc_tensor_to_f32(t, x, &e)) { free(x); x = NULL; }
    if (x && numel) *numel = (size_t)t->numel;
    return x;
}

/* max |a[i] - b[i]| over n values; *bmax (may be NULL) receives max |b[i]|. A NaN on either
 * side makes the result INFINITY (it stays: no later element can undo it), so every tolerance
 * check fails on it. */
static inline double tu_max_abs_diff(const float *a, const float *b, size_t n, double *bmax) {
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) m = INFINITY;
        else if (d > m) m = d;
        if (fabs((double)b[i]) > r) r = fabs((double)b[i]);
    }
    if (bmax) *bmax = r;
    return m;
}

#endif
