/* test_store_release.c — sdc_store_release_pages / sdc_store_release_tensor: the file's pages
 * leave the process's RSS, every view still reads the same bytes afterwards, and memory that
 * is not one of the store's mappings (a tensor made by hand) is never touched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/store.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static double rss_mib(void) {   /* resident now, MiB (/proc/self/statm) */
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
        fclose(f);
    }
    return res < 0 ? -1 : res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* Every float tensor of s as f32, back to back (malloc'd); *n receives the count. */
static float *all_f32(const sdc_store *s, size_t *n) {
    size_t total = 0;
    for (size_t i = 0; i < sdc_store_count(s); i++)
        if (sdc_dtype_is_float(sdc_store_at(s, i)->dtype)) total += (size_t)sdc_store_at(s, i)->numel;
    float *v = malloc(total * sizeof *v + 1), *p = v;
    sdc_err e;
    for (size_t i = 0; v && i < sdc_store_count(s); i++) {
        const sdc_tensor *t = sdc_store_at(s, i);
        if (!sdc_dtype_is_float(t->dtype)) continue;
        if (sdc_tensor_to_f32(t, p, &e)) { free(v); return NULL; }
        p += t->numel;
    }
    *n = total;
    return v;
}

/* A page-aligned buffer outside any mapping of the store (anonymous memory: MADV_DONTNEED
 * would zero it, so a release that strayed here would show). */
static unsigned char foreign[3 * 4096] __attribute__((aligned(4096)));

int main(void) {
    const char *path = "tests/data/tiny-sd1.safetensors";   /* 22 MB of f32 */
    sdc_err e = {{0}};
    sdc_store *s = sdc_store_new();
    CHECK(sdc_store_open(s, path, NULL, &e) == 0, "%s", e.msg);
    size_t n = 0, n2 = 0;
    double r0 = rss_mib();
    float *a = all_f32(s, &n);                 /* touches every page of the file */
    CHECK(a && n > 0, "cannot read %s", path);
    double r1 = rss_mib();
    sdc_store_release_pages(s);
    double r2 = rss_mib();
    double file_mib = sdc_store_file_at(s, 0)->size / 1048576.0;
    printf("file %.1f MiB; RSS %.1f MiB before reading, %.1f after reading every tensor, %.1f after "
           "sdc_store_release_pages (dropped %.1f)\n", file_mib, r0, r1, r2, r1 - r2);
    CHECK(r1 - r2 >= 0.8 * file_mib, "release_pages dropped %.1f MiB of a %.1f MiB file", r1 - r2, file_mib);

    float *b = all_f32(s, &n2);                /* the views read the same bytes again */
    CHECK(b && n2 == n && !memcmp(a, b, n * sizeof *a), "values differ after release_pages");
    printf("every tensor re-read after the release: %s\n", b && n2 == n && !memcmp(a, b, n * sizeof *a) ? "same" : "DIFFERENT");

    /* One tensor: its pages go, and it reads the same again. */
    const sdc_tensor *big = NULL;
    for (size_t i = 0; i < sdc_store_count(s); i++)
        if (!big || sdc_store_at(s, i)->nbytes > big->nbytes) big = sdc_store_at(s, i);
    float *c1 = malloc((size_t)big->numel * sizeof *c1), *c2 = malloc((size_t)big->numel * sizeof *c2);
    CHECK(c1 && c2 && !sdc_tensor_to_f32(big, c1, &e), "%s", e.msg);
    double t1 = rss_mib();
    sdc_store_release_tensor(s, big);
    double t2 = rss_mib();
    CHECK(c1 && c2 && !sdc_tensor_to_f32(big, c2, &e) && !memcmp(c1, c2, (size_t)big->numel * 4),
          "%s reads differently after release_tensor", big->name);
    printf("release_tensor(%s, %.2f MiB): RSS -%.2f MiB, same values after\n", big->name,
           big->nbytes / 1048576.0, t1 - t2);
    CHECK(t1 - t2 >= 0.5 * big->nbytes / 1048576.0, "release_tensor dropped %.2f MiB", t1 - t2);

    /* A tensor that is not the store's: nothing happens (the buffer keeps its bytes). */
    memset(foreign, 0xab, sizeof foreign);
    sdc_tensor fake = *big;
    fake.data = foreign;
    fake.nbytes = sizeof foreign;
    fake.numel = sizeof foreign / 4;
    sdc_store_release_tensor(s, &fake);
    fake.file = 7;
    sdc_store_release_tensor(s, &fake);
    fake.file = -1;
    sdc_store_release_tensor(s, &fake);
    int intact = 1;
    for (size_t i = 0; i < sizeof foreign; i++) intact &= foreign[i] == 0xab;
    printf("a tensor outside the store's mappings: %s\n", intact ? "untouched" : "ZEROED");
    CHECK(intact, "release_tensor touched memory outside the store's mappings");
    /* A view reaching past its mapping's end is refused too. */
    sdc_tensor over = *big;
    over.nbytes = (size_t)sdc_store_file_at(s, 0)->size;
    sdc_store_release_tensor(s, &over);
    CHECK(!sdc_tensor_to_f32(big, c2, &e) && !memcmp(c1, c2, (size_t)big->numel * 4), "over-long view");

    sdc_store_release_pages(NULL);
    sdc_store_release_tensor(NULL, big);
    sdc_store_release_tensor(s, NULL);
    free(a); free(b); free(c1); free(c2);
    sdc_store_close(s);
    printf(fails ? "test_store_release: %d FAILED\n" : "test_store_release: all passed\n", fails);
    return fails ? 1 : 0;
}
