/* test_safetensors_malformed.c — every corruption class of LOADER-SAFETY.md 1-7 and 19 for
 * safetensors: each committed fixture in tests/data/malformed/ (expected.tsv: file, exit, message
 * fragment) is refused with its one-line message and leaves the store unchanged; valid
 * controls load (class 7: unaligned data is read by copy, values checked); truncation of a
 * valid file at every byte (small file) and at every section boundary (tiny-sd1-fp16) is refused;
 * directories and a diffusers-like folder are refused with their own message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/store.h"
#include "runtime/store_internal.h"
#include "tests/test_util.h"

static int fails, checked;
#define CHECK(c, ...) do { checked++; if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

/* Each row of expected.tsv against a store that already holds a good file. */
static void fixtures(void) {
    FILE *f = fopen("tests/data/malformed/expected.tsv", "r");
    CHECK(f, "tests/data/malformed/expected.tsv missing");
    if (!f) return;
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(!sdc_store_open(s, "tests/data/malformed/ok_small.safetensors", NULL, &e), "%s", e.msg);
    const sdc_tensor *a = sdc_store_get(s, "a");
    char line[1024];
    int rows = 0, refused = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\r\n")] = 0;
        char *path = strtok(line, "\t"), *code = strtok(NULL, "\t"), *frag = strtok(NULL, "\t");
        if (!path || !code) continue;
        rows++;
        memset(&e, 0, sizeof e);
        sdc_store *fresh = sdc_store_new();
        int rc = sdc_store_open(fresh, path, NULL, &e);
        if (atoi(code) == 0) {
            CHECK(rc == 0, "%s should load: %s", path, e.msg);
        } else {
            refused++;
            CHECK(rc < 0, "%s should be refused", path);
            CHECK(frag && strstr(e.msg, frag), "%s: message '%s' lacks '%s'", path, e.msg, frag ? frag : "");
            CHECK(!strncmp(e.msg, path, strlen(path)) && !strchr(e.msg, '\n'), "%s: not one line FILE: ...: %s",
                  path, e.msg);
            printf("refused %-56s %s\n", path, e.msg + strlen(path) + 2);
            /* the same open against a non-empty store changes nothing */
            CHECK(sdc_store_open(s, path, NULL, &e) < 0, "%s refused only once", path);
            CHECK(sdc_store_count(s) == 1 && sdc_store_nfiles(s) == 1 && sdc_store_get(s, "a") == a &&
                  sdc_store_meta_count(s) == 1, "%s: store changed by a failed open", path);
        }
        sdc_store_close(fresh);
    }
    fclose(f);
    sdc_store_close(s);
    printf("%d fixtures, %d refused\n", rows, refused);
    CHECK(rows >= 40 && refused >= 36, "too few fixtures: %d", rows);
}

/* Class 7: the data section starts at an odd offset; the view is unaligned and reads right. */
static void unaligned(void) {
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(!sdc_store_open(s, "tests/data/malformed/ok_unaligned_c7.safetensors", NULL, &e), "%s", e.msg);
    const sdc_tensor *t = sdc_store_get(s, "a");
    CHECK(t && t->dtype == SDC_F32 && t->numel == 2, "tensor a");
    if (t) {
        CHECK(((uintptr_t)t->data & 3) != 0, "fixture should be unaligned (offset %llu)", (unsigned long long)t->offset);
        float v[2] = {0, 0};
        CHECK(!sdc_tensor_to_f32(t, v, &e), "%s", e.msg);
        CHECK(v[0] == 1.5f && v[1] == -2.0f, "values %g %g", v[0], v[1]);
        printf("class 7: unaligned F32 at file offset %llu read by copy: %g %g\n", (unsigned long long)t->offset,
               v[0], v[1]);
    }
    sdc_store_close(s);
    s = sdc_store_new();
    CHECK(!sdc_store_open(s, "tests/data/malformed/ok_empty_tensor.safetensors", NULL, &e), "%s", e.msg);
    t = sdc_store_get(s, "e");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && t->ndim == 2, "empty tensor");
    sdc_store_close(s);
}

/* Loads buf[0..n) from an exact-size heap copy, so ASan sees any read past the end. */
static int load_prefix(const uint8_t *buf, size_t n, sdc_err *e) {
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, buf, n);
    sdc_file_index ix;
    memset(&ix, 0, sizeof ix);
    int rc = sdc_load_safetensors("trunc", c, n, &ix, e);
    sdc_index_free(&ix);
    free(c);
    return rc;
}

static void truncation(void) {
    size_t n;
    sdc_err e = {{0}};
    uint8_t *b = tu_slurp("tests/data/malformed/ok_small.safetensors", &n);
    CHECK(b && load_prefix(b, n, &e) == 0, "ok_small whole: %s", e.msg);
    for (size_t k = 0; b && k < n; k++) CHECK(load_prefix(b, k, &e) < 0, "ok_small cut at %zu accepted", k);
    free(b);
    b = tu_slurp("tests/data/tiny-sd1-fp16.safetensors", &n);
    CHECK(b != NULL, "tiny-sd1-fp16");
    if (!b) return;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    size_t cuts[] = {0, 1, 7, 8, 9, 8 + hlen / 2, 8 + hlen - 1, 8 + hlen, 8 + hlen + 1, 8 + hlen + 2,
                     8 + hlen + 4096, n / 2, n - 2, n - 1};
    int ncut = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        int rc = load_prefix(b, cuts[i], &e);
        CHECK(rc < 0, "tiny-sd1-fp16 cut at %zu accepted", cuts[i]);
        ncut++;
    }
    /* every tensor boundary of the data section */
    sdc_store *s = sdc_store_new();
    CHECK(!sdc_store_open(s, "tests/data/tiny-sd1-fp16.safetensors", NULL, &e), "%s", e.msg);
    for (size_t i = 0; i + 1 < sdc_store_count(s); i += 7) {
        const sdc_tensor *t = sdc_store_at(s, i);
        size_t cut = (size_t)t->offset + t->nbytes;
        CHECK(load_prefix(b, cut, &e) < 0, "cut after tensor %zu accepted", i);
        ncut++;
    }
    CHECK(load_prefix(b, n, &e) == 0, "whole: %s", e.msg);
    printf("truncation: ok_small at every byte, tiny-sd1-fp16 at %d section boundaries: all refused (last: %s)\n",
           ncut, e.msg);
    sdc_store_close(s);
    free(b);
}

static void directories(void) {
    sdc_store *s = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(sdc_store_open(s, "tests/data", NULL, &e) < 0 && strstr(e.msg, "is a directory"), "dir: %s", e.msg);
    char dir[] = "/tmp/sdc-diffusers-XXXXXX", sub[64], idx[64];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(sub, sizeof sub, "%s/unet", dir);
    snprintf(idx, sizeof idx, "%s/model_index.json", dir);
    mkdir(sub, 0700);
    FILE *f = fopen(idx, "w");
    if (f) { fputs("{}\n", f); fclose(f); }
    CHECK(sdc_store_open(s, dir, NULL, &e) < 0 && strstr(e.msg, "diffusers folder"), "diffusers: %s", e.msg);
    printf("diffusers folder: %s\n", e.msg);
    remove(idx);
    rmdir(sub);
    rmdir(dir);
    CHECK(sdc_store_open(s, "tests/data/no-such.safetensors", NULL, &e) < 0 && strstr(e.msg, "cannot open"),
          "missing: %s", e.msg);
    CHECK(sdc_store_open(s, "/dev/null", NULL, &e) < 0 && strstr(e.msg, "not a regular file"), "/dev/null: %s", e.msg);
    char fifo[] = "/tmp/sdc-fifo-XXXXXX";
    int fd = mkstemp(fifo);
    if (fd >= 0) { close(fd); unlink(fifo); }
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(sdc_store_open(s, fifo, NULL, &e) < 0 && strstr(e.msg, "not a regular file"), "fifo: %s", e.msg);
    printf("fifo (must not block): %s\n", e.msg);
    unlink(fifo);
    CHECK(sdc_store_count(s) == 0 && sdc_store_nfiles(s) == 0, "store changed");
    sdc_store_close(s);
}

/* Keys written as JSON escapes of control characters: a tensor name with one is refused (names
 * are listed one per line, as for ckpt), and no message, whatever the key, spans two lines. */
static void control_names(void) {
    static const char *const hdr[] = {
        "{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"\\u001b[2J\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"__metadata__\":{\"k\\ny\":1}}",
    };
    for (size_t i = 0; i < sizeof hdr / sizeof *hdr; i++) {
        size_t hl = strlen(hdr[i]), n = 8 + hl + 4;
        uint8_t *b = calloc(1, n);
        for (int k = 0; k < 8; k++) b[k] = (uint8_t)((uint64_t)hl >> (8 * k));
        memcpy(b + 8, hdr[i], hl);
        sdc_err e = {{0}};
        int rc = load_prefix(b, n, &e);
        int one_line = 1;
        for (const char *c = e.msg; *c; c++) one_line &= (unsigned char)*c >= 0x20 && *c != 0x7f;
        CHECK(rc < 0 && one_line, "control characters in key %zu: rc %d, message '%s'", i, rc, e.msg);
        printf("control characters in a key: %s\n", e.msg);
        free(b);
    }
}


/* A valid file whose header length's low bytes read as a pickle opening (0x80, then a protocol
 * 2..5): the JSON header of a real file padded with spaces (which the format allows) to
 * 0x0280..0x0580 + 64 KiB·k bytes. It is safetensors and loads to the same values. */
static void pickle_like_length(const char *src, const char *name) {
    size_t n = 0;
    uint8_t *b = tu_slurp(src, &n);
    CHECK(b && n >= 8, "%s missing", src);
    if (!b) return;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    char dir[] = "/tmp/sdc_st_padXXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    sdc_store *ref = sdc_store_new();
    sdc_err e = {{0}};
    CHECK(!sdc_store_open(ref, src, NULL, &e), "%s", e.msg);
    const sdc_tensor *rt = sdc_store_get(ref, name);
    CHECK(rt != NULL, "%s: no tensor %s", src, name);
    for (int proto = 2; proto <= 5 && rt; proto++) {
        uint64_t want = 0x80u | (uint64_t)proto << 8;
        while (want < hl) want += 0x10000;
        size_t total = n - 8 - (size_t)hl + (size_t)want + 8;
        uint8_t *o = malloc(total);
        if (!o) break;
        for (int i = 0; i < 8; i++) o[i] = (uint8_t)(want >> (8 * i));
        memcpy(o + 8, b + 8, (size_t)hl);
        memset(o + 8 + hl, ' ', (size_t)(want - hl));
        memcpy(o + 8 + want, b + 8 + hl, n - 8 - (size_t)hl);
        CHECK(o[0] == 0x80 && o[1] == proto, "padding");
        char path[256];
        snprintf(path, sizeof path, "%s/padded%d.safetensors", dir, proto);
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(o, 1, total, f) == total, "write %s", path);
        if (f) fclose(f);
        free(o);
        sdc_store *s = sdc_store_new();
        memset(&e, 0, sizeof e);
        int rc = sdc_store_open(s, path, NULL, &e);
        CHECK(rc == 0, "header length %02x %02x ... (pickle-like) should load as safetensors: %s", (unsigned)(want & 0xff),
              (unsigned)(want >> 8 & 0xff), e.msg);
        const sdc_tensor *t = rc == 0 ? sdc_store_get(s, name) : NULL;
        CHECK(t && sdc_store_file_at(s, 0)->format == SDC_FMT_SAFETENSORS && t->dtype == rt->dtype &&
              t->numel == rt->numel && !memcmp(t->data, rt->data, t->numel * sdc_dtype_size(t->dtype)),
              "%s: padded header %llu bytes: tensor %s differs", src, (unsigned long long)want, name);
        if (rc == 0) printf("header padded to %llu bytes (starts %02x %02x): loads as safetensors\n",
                            (unsigned long long)want, (unsigned)(want & 0xff), (unsigned)(want >> 8 & 0xff));
        sdc_store_close(s);
        unlink(path);
    }
    sdc_store_close(ref);
    rmdir(dir);
    free(b);
}

int main(void) {
    fixtures();
    control_names();
    unaligned();
    truncation();
    directories();
    pickle_like_length("tests/data/malformed/ok_small.safetensors", "a");
    pickle_like_length("tests/data/tiny-sd1-fp16.safetensors",
                       "model.diffusion_model.out.2.weight");
    printf("%d checks, %d failed\n", checked, fails);
    return fails ? 1 : 0;
}
