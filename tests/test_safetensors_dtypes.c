/* test_safetensors_dtypes.c — sdc_tensor_to_f32 for every dtype against references computed here
 * independently (ldexp formulas): all 65536 F16 and BF16 patterns, all 256 F8 E4M3 / E5M2
 * patterns, F64 rounding, integers and bool by value; each from an aligned file and from one
 * whose data section sits at an odd offset (unaligned views, read by copy). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/store.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

typedef struct { const char *name, *dtype; int64_t n; size_t esize; } spec;
static const spec specs[] = {
    {"f16_all", "F16", 65536, 2}, {"bf16_all", "BF16", 65536, 2}, {"e4m3_all", "F8_E4M3", 256, 1},
    {"e5m2_all", "F8_E5M2", 256, 1}, {"f16_tail", "F16", 7, 2}, {"f64", "F64", 5, 8}, {"f32", "F32", 3, 4},
    {"i64", "I64", 3, 8}, {"i32", "I32", 2, 4}, {"i16", "I16", 2, 2}, {"i8", "I8", 2, 1}, {"u8", "U8", 2, 1},
    {"bool", "BOOL", 3, 1},
};
#define NSPEC (int)(sizeof specs / sizeof specs[0])

static const double f64v[5] = {1.5, -1e300, 1e-40, 3.141592653589793, -0.0};
static const float f32v[3] = {0.1f, -INFINITY, 65504.0f};
static const int64_t i64v[3] = {-3, (int64_t)1 << 40, 0};
static const int32_t i32v[2] = {-2147483647, 7};
static const int16_t i16v[2] = {-32768, 32767};
static const int8_t i8v[2] = {-128, 127};
static const uint8_t u8v[2] = {0, 255};
static const uint8_t boolv[3] = {0, 1, 2};

static void fill(int k, uint8_t *p) {
    const spec *s = &specs[k];
    for (int64_t i = 0; i < s->n; i++) {
        if (!strcmp(s->name, "f16_all") || !strcmp(s->name, "bf16_all")) { uint16_t v = (uint16_t)i; memcpy(p + 2 * i, &v, 2); }
        else if (!strcmp(s->name, "f16_tail")) { uint16_t v = (uint16_t)(0x3c00 + 977 * i); memcpy(p + 2 * i, &v, 2); }
        else if (s->esize == 1 && s->n == 256) p[i] = (uint8_t)i;
    }
    if (!strcmp(s->name, "f64")) memcpy(p, f64v, sizeof f64v);
    if (!strcmp(s->name, "f32")) memcpy(p, f32v, sizeof f32v);
    if (!strcmp(s->name, "i64")) memcpy(p, i64v, sizeof i64v);
    if (!strcmp(s->name, "i32")) memcpy(p, i32v, sizeof i32v);
    if (!strcmp(s->name, "i16")) memcpy(p, i16v, sizeof i16v);
    if (!strcmp(s->name, "i8")) memcpy(p, i8v, sizeof i8v);
    if (!strcmp(s->name, "u8")) memcpy(p, u8v, sizeof u8v);
    if (!strcmp(s->name, "bool")) memcpy(p, boolv, sizeof boolv);
}

/* Reference value of element i of spec k, from its raw bytes. */
static double ref(int k, const uint8_t *p, int64_t i) {
    const char *d = specs[k].dtype;
    if (!strcmp(d, "F16")) {
        uint16_t h; memcpy(&h, p + 2 * i, 2);
        int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
        return s ? -v : v;
    }
    if (!strcmp(d, "BF16")) {
        uint16_t h; memcpy(&h, p + 2 * i, 2);
        int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
        double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(128 + m, e - 134);
        return s ? -v : v;
    }
    if (!strcmp(d, "F8_E4M3")) {   /* fn variant: no inf, S.1111.111 = NaN, max 448 */
        int b = p[i], s = b >> 7, e = (b >> 3) & 15, m = b & 7;
        double v = e == 0 ? ldexp(m, -9) : (e == 15 && m == 7) ? NAN : ldexp(8 + m, e - 10);
        return s ? -v : v;
    }
    if (!strcmp(d, "F8_E5M2")) {
        int b = p[i], s = b >> 7, e = (b >> 2) & 31, m = b & 3;
        double v = e == 0 ? ldexp(m, -16) : e == 31 ? (m ? NAN : INFINITY) : ldexp(4 + m, e - 17);
        return s ? -v : v;
    }
    if (!strcmp(d, "F64")) return (float)f64v[i];
    if (!strcmp(d, "F32")) return f32v[i];
    if (!strcmp(d, "I64")) return (float)i64v[i];
    if (!strcmp(d, "I32")) return (float)i32v[i];
    if (!strcmp(d, "I16")) return i16v[i];
    if (!strcmp(d, "I8")) return i8v[i];
    if (!strcmp(d, "U8")) return u8v[i];
    return boolv[i] ? 1.0 : 0.0;
}

/* Writes a safetensors file whose data section starts at 8 + hlen, hlen ≡ misalign (mod 8). */
static int write_file(const char *path, int misalign) {
    char hdr[8192];
    size_t at = 0, off = 0;
    at += (size_t)snprintf(hdr + at, sizeof hdr - at, "{");
    for (int k = 0; k < NSPEC; k++) {
        size_t nb = (size_t)specs[k].n * specs[k].esize;
        at += (size_t)snprintf(hdr + at, sizeof hdr - at, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],"
                               "\"data_offsets\":[%zu,%zu]}", k ? "," : "", specs[k].name, specs[k].dtype,
                               (long long)specs[k].n, off, off + nb);
        off += nb;
    }
    at += (size_t)snprintf(hdr + at, sizeof hdr - at, "}");
    while (at % 8 != (size_t)misalign) hdr[at++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint64_t hl = at;
    uint8_t l8[8];
    for (int i = 0; i < 8; i++) l8[i] = (uint8_t)(hl >> (8 * i));
    fwrite(l8, 1, 8, f);
    fwrite(hdr, 1, at, f);
    for (int k = 0; k < NSPEC; k++) {
        size_t nb = (size_t)specs[k].n * specs[k].esize;
        uint8_t *p = calloc(1, nb);
        fill(k, p);
        fwrite(p, 1, nb, f);
        free(p);
    }
    return fclose(f);
}

static void check_file(int misalign) {
    char path[] = "/tmp/sdc-dtypes-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    CHECK(!write_file(path, misalign), "write %s", path);
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(!sdc_store_open(s, path, NULL, &e), "%s", e.msg);
    int64_t compared = 0, bad = 0;
    for (int k = 0; k < NSPEC; k++) {
        const sdc_tensor *t = sdc_store_get(s, specs[k].name);
        CHECK(t && t->numel == specs[k].n && !strcmp(sdc_dtype_name(t->dtype), specs[k].dtype), "%s", specs[k].name);
        if (!t) continue;
        float *v = malloc((size_t)t->numel * sizeof *v);
        CHECK(!sdc_tensor_to_f32(t, v, &e), "%s: %s", specs[k].name, e.msg);
        for (int64_t i = 0; i < t->numel; i++) {
            double r = ref(k, t->data, i);
            int ok = isnan(r) ? isnan(v[i]) : (v[i] == (float)r && !signbit(v[i]) == !signbit(r));
            if (!ok && bad++ < 10) printf("  %s[%lld]: got %.9g want %.9g\n", specs[k].name, (long long)i, v[i], r);
            compared++;
        }
        /* F16 in views of at most 7 elements: every pattern through the scalar path too */
        if (!strcmp(specs[k].dtype, "F16")) {
            for (int64_t i = 0; i < t->numel; i += 7) {
                sdc_tensor part = *t;
                part.numel = part.shape[0] = t->numel - i < 7 ? t->numel - i : 7;
                part.data = (const uint8_t *)t->data + 2 * i;
                CHECK(!sdc_tensor_to_f32(&part, v + i, &e), "%s", e.msg);
            }
            for (int64_t i = 0; i < t->numel; i++) {
                double r = ref(k, t->data, i);
                int ok = isnan(r) ? isnan(v[i]) : (v[i] == (float)r && !signbit(v[i]) == !signbit(r));
                if (!ok && bad++ < 10) printf("  scalar %s[%lld]: got %.9g want %.9g\n", specs[k].name, (long long)i, v[i], r);
                compared++;
            }
        }
        free(v);
    }
    CHECK(bad == 0, "%lld of %lld values wrong (misalign %d)", (long long)bad, (long long)compared, misalign);
    printf("misalign %d: %lld values over %d dtypes compared, %lld wrong\n", misalign, (long long)compared, NSPEC,
           (long long)bad);
    sdc_store_close(s);
    unlink(path);
}

int main(void) {
    check_file(0);
    check_file(3);
    /* the dtype table */
    CHECK(sdc_dtype_from_name("F8_E4M3") == SDC_F8_E4M3 && sdc_dtype_from_name("f32") == -1, "names");
    CHECK(sdc_dtype_size(SDC_BF16) == 2 && sdc_dtype_size(SDC_F64) == 8 && sdc_dtype_size(SDC_BOOL) == 1, "sizes");
    CHECK(sdc_dtype_is_float(SDC_F8_E5M2) && !sdc_dtype_is_float(SDC_I64) && !sdc_dtype_is_float(SDC_BOOL), "float");
    return fails ? 1 : 0;
}
