/* test_rng.c — sdc_rng against torch 1.13's CPU generator: every case of
 * tests/data/refs/rng_torch_cpu.safetensors (seeds 0, 1, 42, 3000; sizes below, at and above 16;
 * two successive draws), the init_noise of every pipeline fixture (seed 3000 + j / 6000 + j), and
 * the scalar path's cached second normal across calls (golden values printed by torch 1.13 on
 * CPU for the sequence below). Equality is bitwise. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/rng.h"
#include "runtime/store.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); failures++; } } while (0)

/* Loads tensor `name` of store st as floats; NULL (and a failure) when absent. */
static float *load(sdc_store *st, const char *file, const char *name, size_t *n) {
    const sdc_tensor *t = sdc_store_get(st, name);
    if (!t) { CHECK(0, "%s: no tensor %s", file, name); return NULL; }
    float *v = malloc((size_t)t->numel * sizeof *v);
    sdc_err e = {{0}};
    if (!v || sdc_tensor_to_f32(t, v, &e) < 0) { CHECK(0, "%s: %s: %s", file, name, e.msg); free(v); return NULL; }
    *n = (size_t)t->numel;
    return v;
}

/* Number of elements of ref[n] that differ bitwise from r's next draw of n. */
static size_t compare_draw(sdc_rng *r, const float *ref, size_t n) {
    float *got = malloc(n * sizeof *got);
    size_t bad = 0;
    sdc_rng_randn(r, got, n);
    for (size_t i = 0; i < n; i++) bad += memcmp(&got[i], &ref[i], sizeof(float)) != 0;
    free(got);
    return bad;
}

static void test_rng_file(void) {
    const char *path = "tests/data/refs/rng_torch_cpu.safetensors";
    sdc_store *st = sdc_store_new();
    sdc_err e = {{0}};
    if (sdc_store_open(st, path, NULL, &e) < 0) { CHECK(0, "%s", e.msg); sdc_store_close(st); return; }
    cJSON *cases = cJSON_Parse(sdc_store_meta(st, "cases") ? sdc_store_meta(st, "cases") : "");
    CHECK(cJSON_IsArray(cases), "%s: no cases metadata", path);
    int ncases = 0, seeds[16], nseeds = 0;
    size_t nvals = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
        cJSON *seed = cJSON_GetObjectItem(c, "seed");
        if (!name || !cJSON_IsNumber(seed)) continue;
        size_t n = 0;
        float *ref = load(st, path, name, &n);
        if (!ref) continue;
        sdc_rng r;
        sdc_rng_seed(&r, (uint64_t)seed->valuedouble);
        size_t bad = compare_draw(&r, ref, n);
        CHECK(bad == 0, "%s: %zu of %zu values differ", name, bad, n);
        ncases++;
        nvals += n;
        free(ref);
        int sd = (int)seed->valuedouble, seen = 0;
        for (int i = 0; i < nseeds; i++) seen |= seeds[i] == sd;
        if (!seen && nseeds < 16) seeds[nseeds++] = sd;
    }
    /* seed<S>_seq_first / _seq_second: two successive draws from one generator */
    for (int i = 0; i < nseeds; i++) {
        char f[64], s[64];
        snprintf(f, sizeof f, "seed%d_seq_first", seeds[i]);
        snprintf(s, sizeof s, "seed%d_seq_second", seeds[i]);
        size_t n1 = 0, n2 = 0;
        float *a = load(st, path, f, &n1), *b = load(st, path, s, &n2);
        if (a && b) {
            sdc_rng r;
            sdc_rng_seed(&r, (uint64_t)seeds[i]);
            size_t b1 = compare_draw(&r, a, n1), b2 = compare_draw(&r, b, n2);
            CHECK(b1 == 0 && b2 == 0, "%s/%s: %zu + %zu values differ", f, s, b1, b2);
            ncases += 2;
            nvals += n1 + n2;
        }
        free(a);
        free(b);
    }
    CHECK(ncases >= 30, "only %d rng cases found", ncases);
    printf("rng_torch_cpu: %d draws, %zu values, all bit-exact: %s\n", ncases, nvals,
           failures ? "no" : "yes");
    cJSON_Delete(cases);
    sdc_store_close(st);
}

/* README "Seeds": SD1 pipelines S = 3000 + j in this order, SD2 6000 + j. */
static void test_pipeline_noise(void) {
    static const struct { const char *file; int seed; } P[] = {
        {"sd1_pipe_64x64_ddim", 3000}, {"sd1_pipe_64x64_pndm", 3001},
        {"sd1_pipe_64x64_euler", 3002}, {"sd1_pipe_64x64_euler_linspace", 3003},
        {"sd1_pipe_64x64_dpmpp_2m", 3004}, {"sd1_pipe_64x64_dpmpp_2m_karras", 3005},
        {"sd1_pipe_128x128_ddim", 3006}, {"sd1_pipe_128x128_euler", 3007},
        {"sd1_pipe_128x128_dpmpp_2m_karras", 3008},
        {"sd2_pipe_64x64_ddim_v", 6000}, {"sd2_pipe_64x64_euler_v", 6001},
    };
    for (size_t k = 0; k < sizeof P / sizeof P[0]; k++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/refs/%s.safetensors", P[k].file);
        sdc_store *st = sdc_store_new();
        sdc_err e = {{0}};
        if (sdc_store_open(st, path, NULL, &e) < 0) { CHECK(0, "%s", e.msg); sdc_store_close(st); continue; }
        size_t n = 0;
        float *ref = load(st, path, "init_noise", &n);
        if (ref) {
            sdc_rng r;
            sdc_rng_seed(&r, (uint64_t)P[k].seed);
            size_t bad = compare_draw(&r, ref, n);
            CHECK(bad == 0, "%s init_noise (seed %d): %zu of %zu differ", P[k].file, P[k].seed, bad, n);
            printf("%-34s seed %d: init_noise %zu values %s\n", P[k].file, P[k].seed, n,
                   bad ? "DIFFER" : "bit-exact");
        }
        free(ref);
        sdc_store_close(st);
    }
}

/* The scalar path (n < 16) caches the second Box-Muller value across calls; the vector path
 * neither uses nor clears it. torch 1.13 (CPU): g = torch.Generator().manual_seed(7), then
 * randn(3), randn(5), randn(20), randn(1), randn(2) in that order. */
static void test_scalar_cache(void) {
    static const float want[] = {
        -0.146795094f, 0.786141276f, 0.94682163f,
        -1.114344f, 1.69079018f, -0.894827902f, -0.355625033f, 1.23238575f,
        -1.58266461f, -0.324566633f, 1.92636812f, -0.330011725f, 0.95710218f, -0.661867559f,
        -0.828452051f, -0.605680287f, -0.135436893f, 0.747118235f, 0.611815751f, 1.86778355f,
        -0.261586726f, -0.25013262f, 0.501121461f, 0.2600362f, -1.6370213f, 0.157711908f,
        0.395740926f, -1.36773968f,
        1.81497276f,
        -0.602848291f, 1.61481476f,
    };
    static const size_t sizes[] = {3, 5, 20, 1, 2};
    sdc_rng r;
    sdc_rng_seed(&r, 7);
    size_t off = 0, bad = 0;
    for (size_t k = 0; k < 5; k++) {
        bad += compare_draw(&r, want + off, sizes[k]);
        off += sizes[k];
    }
    CHECK(bad == 0, "seed 7 scalar/vector sequence: %zu of %zu differ", bad, off);
    /* seeds above 32 bits: PyTorch seeds mt19937 with the low 32 bits (2^40 + 5, randn(17)) */
    static const float big[] = {1.84232986f, 1.22202528f, -0.336449355f, -0.965060174f,
        -0.129662678f, -0.601765633f, 0.144998565f, -0.149827167f, 2.61457705f, 0.779233754f,
        -0.0583394617f, -2.03049517f, 1.48293233f, 0.494038075f, 0.249218777f, 1.74703145f,
        0.744776964f};
    sdc_rng_seed(&r, (UINT64_C(1) << 40) + 5);
    size_t bad2 = compare_draw(&r, big, 17);
    CHECK(bad2 == 0, "seed 2^40+5 randn(17): %zu differ", bad2);
    /* manual_seed drops the cached value */
    sdc_rng_seed(&r, 7);
    float a[3], b[3];
    sdc_rng_randn(&r, a, 3);
    sdc_rng_seed(&r, 7);
    sdc_rng_randn(&r, b, 3);
    CHECK(!memcmp(a, b, sizeof a), "reseeding does not restart the stream");
    printf("scalar-path cache and 64-bit seeds: %s\n", bad + bad2 ? "DIFFER" : "bit-exact");
}

int main(void) {
    test_rng_file();
    test_pipeline_noise();
    test_scalar_cache();
    if (failures) { printf("test_rng: %d failure(s)\n", failures); return 1; }
    printf("test_rng: ok\n");
    return 0;
}
