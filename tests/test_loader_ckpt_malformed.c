/* test_loader_ckpt_malformed.c — LOADER-SAFETY classes 8-18 through sdc_store_open: every
 * fixture of tests/data/malformed/expected_ckpt.tsv (scripts/make_malformed_ckpt.py) refused with
 * its message and the store left unchanged, hostile pickles refused by default but reported in
 * inspect mode, the valid controls read exactly, and every truncation and single-byte corruption
 * of a small ckpt (zip and legacy) handled without a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/store_internal.h"
#include "tests/test_util.h"

static int bad = 0;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                                             printf(__VA_ARGS__); printf("\n"); bad++; } } while (0)

/* Each row: the default open refuses (2, 3) or loads (0); inspect reports dangerous ones. */
static void check_table(void) {
    FILE *f = fopen("tests/data/malformed/expected_ckpt.tsv", "r");
    CHECK(f, "expected_ckpt.tsv missing");
    if (!f) return;
    char line[1024];
    int rows = 0, refused = 0, hostile = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = 0;
        char *file = strtok(line, "\t"), *code = strtok(NULL, "\t"), *frag = strtok(NULL, "\t");
        if (!file || !code) continue;
        if (!frag) frag = "";
        rows++;
        int want = atoi(code);
        sdc_store *s = sdc_store_new();
        sdc_err e = {{0}};
        int rc = sdc_store_open(s, file, NULL, &e);
        if (want == 0) {
            CHECK(rc == 0, "%s should load: %s", file, e.msg);
        } else {
            CHECK(rc == -1 && !strncmp(e.msg, file, strlen(file)) && strstr(e.msg, frag) &&
                  sdc_store_count(s) == 0 && sdc_store_nfiles(s) == 0,
                  "%s: rc %d, message '%s' (want '%s')", file, rc, e.msg, frag);
            refused++;
        }
        if (want == 3) {   /* refused as dangerous by default; inspect reports instead */
            CHECK(strstr(e.msg, "would run") && strstr(e.msg, "sdc ran nothing"), "%s: %s", file, e.msg);
            sdc_store *t = sdc_store_new();
            sdc_load_opts o = {0};
            o.inspect = 1;
            rc = sdc_store_open(t, file, &o, &e);
            int found = 0;
            for (size_t i = 0; rc == 0 && i < sdc_store_nglobals(t); i++)
                found |= sdc_store_global_at(t, i)->dangerous && !strcmp(sdc_store_global_at(t, i)->name, frag);
            CHECK(rc == 0 && found, "%s: inspect should report %s (rc %d: %s)", file, frag, rc, e.msg);
            sdc_store_close(t);
            hostile++;
        }
        sdc_store_close(s);
    }
    fclose(f);
    printf("expected_ckpt.tsv: %d files, %d refused, %d hostile reported by inspect\n", rows, refused,
           hostile);
    CHECK(rows >= 60, "too few rows (%d)", rows);
}

/* The tiny model of the generator: w f32 [2,3], b f16 [3], n i64 scalar. */
static void check_tiny(const char *file) {
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(sdc_store_open(s, file, NULL, &e) == 0, "%s: %s", file, e.msg);
    const sdc_tensor *w = sdc_store_get(s, "w"), *b = sdc_store_get(s, "b"), *n = sdc_store_get(s, "n");
    const float wv[6] = {1.0f, -2.0f, 0.5f, 3.25f, -0.125f, 8.0f};
    const uint16_t bv[3] = {0x3e00, 0xb400, 0x4000};   /* 1.5, -0.25, 2.0 as f16 */
    CHECK(w && w->dtype == SDC_F32 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 &&
          !memcmp(w->data, wv, sizeof wv), "%s: w", file);
    CHECK(b && b->dtype == SDC_F16 && b->ndim == 1 && b->shape[0] == 3 && !memcmp(b->data, bv, sizeof bv),
          "%s: b", file);
    int64_t nv = 0;
    if (n) memcpy(&nv, n->data, 8);
    CHECK(n && n->dtype == SDC_I64 && n->ndim == 0 && nv == 123456789, "%s: n", file);
    CHECK(sdc_store_count(s) == 3 && sdc_store_nglobals(s) == 0, "%s: count %zu", file, sdc_store_count(s));
    float f[6];
    CHECK(w && sdc_tensor_to_f32(w, f, &e) == 0 && f[3] == 3.25f, "%s: to_f32", file);
    sdc_store_close(s);
}

static void check_controls(void) {
    check_tiny("tests/data/malformed/ok_tiny.ckpt");
    check_tiny("tests/data/malformed/ok_tiny_plain_eocd.ckpt");
    check_tiny("tests/data/malformed/ok_tiny_zip64_extra.ckpt");
    check_tiny("tests/data/malformed/ok_tiny_legacy.ckpt");
    check_tiny("tests/data/malformed/ok_tiny_prefix.ckpt");
    check_tiny("tests/data/malformed/ok_tiny_torch2_layout.ckpt");
    check_tiny("tests/data/malformed/c13_dup_expansion.ckpt");
    /* top-level weights; two views of one storage at offsets 0 and 3; a Parameter */
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(sdc_store_open(s, "tests/data/malformed/ok_shared_storage.ckpt", NULL, &e) == 0, "%s", e.msg);
    const sdc_tensor *a = sdc_store_get(s, "first"), *b = sdc_store_get(s, "second");
    CHECK(a && b && (const char *)b->data - (const char *)a->data == 12 && b->offset == a->offset + 12 &&
          b->numel == 3, "shared storage views");
    float v;
    if (b) memcpy(&v, b->data, 4);
    CHECK(b && v == 3.25f, "second view starts at element 3");
    sdc_store_close(s);
    /* an unknown global: a recorded placeholder, refused only with --strict */
    s = sdc_store_new();
    CHECK(sdc_store_open(s, "tests/data/malformed/ok_lightning.ckpt", NULL, &e) == 0, "%s", e.msg);
    CHECK(sdc_store_count(s) == 3 && sdc_store_nglobals(s) == 1 && !sdc_store_global_at(s, 0)->dangerous,
          "lightning placeholder recorded");
    sdc_store_close(s);
    s = sdc_store_new();
    sdc_load_opts strict = {0};
    strict.strict = 1;
    CHECK(sdc_store_open(s, "tests/data/malformed/ok_lightning.ckpt", &strict, &e) == -1 &&
          strstr(e.msg, "ModelCheckpoint is not on sdc's allowlist (--strict refuses it)"),
          "strict refuses: %s", e.msg);
    printf("  strict: %s\n", e.msg);
    sdc_store_close(s);
    /* --allow-unsafe-pickle: the weights of a hostile file load, the global is recorded */
    s = sdc_store_new();
    sdc_load_opts unsafe = {0};
    unsafe.allow_unsafe_pickle = 1;
    CHECK(sdc_store_open(s, "tests/data/malformed/c9_os_system.ckpt", &unsafe, &e) == 0 &&
          sdc_store_count(s) == 3 && sdc_store_nglobals(s) == 1 && sdc_store_global_at(s, 0)->dangerous,
          "allow-unsafe loads the weights: %s", e.msg);
    sdc_store_close(s);
    s = sdc_store_new();
    CHECK(sdc_store_open(s, "tests/data/malformed/c9_os_system.ckpt", NULL, &e) == -1, "default refuses");
    printf("  default: %s\n", e.msg);
    sdc_store_close(s);
}

typedef int (*loader)(const char *, const uint8_t *, size_t, const sdc_load_opts *, sdc_file_index *,
                      sdc_err *);

/* Every prefix must be refused; every single-byte change must be handled (refused or read). */
static void check_mutations(const char *file, loader load) {
    size_t n;
    uint8_t *full = tu_slurp(file, &n);
    CHECK(full, "%s missing", file);
    if (!full) return;
    int cut_ok = 0, flips_refused = 0, flips_loaded = 0;
    for (size_t len = 0; len < n; len++) {
        uint8_t *b = malloc(len ? len : 1);     /* exact size: ASan sees any over-read */
        memcpy(b, full, len);
        sdc_file_index ix;
        memset(&ix, 0, sizeof ix);
        sdc_err e = {{0}};
        int rc = load(file, b, len, NULL, &ix, &e);
        if (rc == -1 && e.msg[0]) cut_ok++;
        else if (bad++ < 20) printf("FAIL %s cut at %zu: rc %d '%s'\n", file, len, rc, e.msg);
        sdc_index_free(&ix);
        free(b);
    }
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++) {
        memcpy(b, full, n);
        b[i] ^= (uint8_t)(0x55 + i);
        sdc_file_index ix;
        memset(&ix, 0, sizeof ix);
        sdc_err e = {{0}};
        int rc = load(file, b, n, NULL, &ix, &e);
        if (rc == 0) flips_loaded++;
        else if (e.msg[0]) flips_refused++;
        else if (bad++ < 20) printf("FAIL %s flip at %zu: no message\n", file, i);
        sdc_index_free(&ix);
    }
    free(b);
    free(full);
    printf("%s: %d/%zu truncations refused; %zu byte flips: %d refused, %d still loadable\n", file,
           cut_ok, n, n, flips_refused, flips_loaded);
    CHECK((size_t)cut_ok == n, "every truncation refused");
}

int main(void) {
    check_table();
    check_controls();
    check_mutations("tests/data/malformed/ok_tiny.ckpt", sdc_load_ckpt_zip);
    check_mutations("tests/data/malformed/ok_tiny_legacy.ckpt", sdc_load_ckpt_legacy);
    printf(bad ? "FAIL (%d)\n" : "PASS\n", bad);
    return bad ? 1 : 0;
}
