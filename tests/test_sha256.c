/* test_sha256.c — SHA-256 and the model-hash cache: the FIPS 180-4 / NIST example digests on the
 * portable and the SHA-NI block functions, the two equal on every length 0..300 and on
 * split updates, a file's digest equal to what coreutils' sha256sum prints, and the cache of
 * hashcache.h (an entry written, used without reading the file, invalidated by a new mtime,
 * malformed lines ignored, its size bounded, and no cache at all still giving the hash). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/hashcache.h"
#include "runtime/sha256.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); failures++; } } while (0)

/* Hex digest of data[n] with block function impl, fed in pieces of `step` bytes (0: at once). */
static void digest(sdc_sha256_impl impl, const void *data, size_t n, size_t step, char hex[65]) {
    sdc_sha256 s;
    uint8_t d[32];
    sdc_sha256_init_impl(&s, impl);
    if (!step) step = n ? n : 1;
    for (size_t i = 0; i < n; i += step) sdc_sha256_update(&s, (const uint8_t *)data + i, n - i < step ? n - i : step);
    sdc_sha256_final(&s, d);
    sdc_sha256_hex(d, hex);
}

/* The example digests of FIPS 180-4 (NIST CSRC "SHA256.pdf", "SHA2_Additional") per path. */
static void test_known_answers(sdc_sha256_impl impl, const char *name) {
    static const struct { const char *msg, *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        digest(impl, v[i].msg, strlen(v[i].msg), 0, hex);
        CHECK(!strcmp(hex, v[i].hex), "%s: sha256(\"%.20s...\") = %s, want %s", name, v[i].msg, hex, v[i].hex);
    }
    size_t n = 1000000;   /* one million 'a', at once and in 1000-byte updates */
    char *a = malloc(n);
    if (!a) { CHECK(0, "out of memory"); return; }
    memset(a, 'a', n);
    for (size_t step = 0; step <= 1000; step += 1000) {
        digest(impl, a, n, step, hex);
        CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
              "%s: sha256(10^6 x 'a'), updates of %zu = %s", name, step, hex);
    }
    free(a);
}

/* Portable and SHA-NI agree on every length 0..300 (all the padding cases, 1-4 blocks) and on
 * a 10000-byte message fed in uneven pieces that leave partial blocks between updates. */
static void test_paths_agree(void) {
    uint8_t m[10000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof m; i++) { x = x * 1103515245u + 12345u; m[i] = (uint8_t)(x >> 16); }
    char a[65], b[65];
    int bad = 0;
    for (size_t n = 0; n <= 300; n++) {
        digest(SDC_SHA256_PORTABLE, m, n, 0, a);
        digest(SDC_SHA256_SHANI, m, n, 0, b);
        if (strcmp(a, b)) { CHECK(0, "length %zu: portable %s, SHA-NI %s", n, a, b); if (++bad > 5) break; }
    }
    digest(SDC_SHA256_PORTABLE, m, sizeof m, 0, a);
    static const size_t steps[] = {1, 7, 63, 65, 127, 1000};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        digest(SDC_SHA256_SHANI, m, sizeof m, steps[i], b);
        CHECK(!strcmp(a, b), "10000 bytes in updates of %zu: SHA-NI %s, portable at once %s", steps[i], b, a);
        digest(SDC_SHA256_PORTABLE, m, sizeof m, steps[i], b);
        CHECK(!strcmp(a, b), "10000 bytes in updates of %zu: portable %s, at once %s", steps[i], b, a);
    }
}

/* The hex digest coreutils' sha256sum prints for path into hex; 0, or -1 without sha256sum. */
static int sha256sum(const char *path, char hex[65]) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "sha256sum '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int ok = fscanf(p, "%64s", hex) == 1 && strlen(hex) == 64;
    return pclose(p) == 0 && ok ? 0 : -1;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
}

/* Lines of the file at path that start with prefix (-1 when it cannot be read). */
static int count_lines(const char *path, const char *prefix) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) n += !strncmp(line, prefix, strlen(prefix));
    fclose(f);
    return n;
}

/* A digest no file in these tests has. */
#define FAKE "00000000000000000000000000000000000000000000000000000000000000ff"

static const char *FILE_UNDER_TEST = "tests/data/tiny-sd1-fp16.safetensors";

static void test_file_and_cache(void) {
    char want[65], got[65], tmp[] = "/tmp/sdc-test-sha256-XXXXXX";
    if (sha256sum(FILE_UNDER_TEST, want)) { CHECK(0, "sha256sum %s did not run", FILE_UNDER_TEST); return; }
    CHECK(sdc_sha256_file(FILE_UNDER_TEST, got) == 0 && !strcmp(got, want), "sdc_sha256_file %s = %s, sha256sum %s",
          FILE_UNDER_TEST, got, want);
    CHECK(sdc_sha256_file("tests/data/no-such-file", got) == -1 && errno == ENOENT, "a missing file is -1/ENOENT");
    CHECK(sdc_model_hash("tests/data/no-such-file", got) == -1, "sdc_model_hash of a missing file is -1");
    CHECK(sdc_model_hash("tests/data", got) == -1, "sdc_model_hash of a directory is -1");
    if (!mkdtemp(tmp)) { CHECK(0, "mkdtemp"); return; }

    /* A copy of the file we may touch; the cache under tmp/cache. */
    char model[256], cache[256], tsv[300], cmd[1024];
    snprintf(model, sizeof model, "%s/model.safetensors", tmp);
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    snprintf(tsv, sizeof tsv, "%s/sdc/model-hashes.tsv", cache);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", FILE_UNDER_TEST, model);
    CHECK(system(cmd) == 0, "%s", cmd);
    setenv("XDG_CACHE_HOME", cache, 1);

    /* A miss: the right hash, and the cache file appears holding one entry for this path. */
    CHECK(sdc_model_hash(model, got) == 0 && !strcmp(got, want), "cold: %s, want %s", got, want);
    CHECK(count_lines(tsv, want) == 1, "the cache %s holds one entry for the model", tsv);
    char line[8192] = "";
    FILE *f = fopen(tsv, "r");
    while (f && fgets(line, sizeof line, f) && strncmp(line, want, 64)) {}
    if (f) fclose(f);
    CHECK(strstr(line, model) && line[strlen(line) - 1] == '\n', "the entry names the absolute path: %s", line);
    CHECK(sdc_model_hash(model, got) == 0 && !strcmp(got, want), "warm: %s, want %s", got, want);

    /* A hit does not read the file: an entry planted with this file's key but another digest
     * is what comes back. */
    struct stat st;
    CHECK(stat(model, &st) == 0, "stat %s", model);
    char planted[8192];
    snprintf(planted, sizeof planted,
             "# a comment\nnot an entry\n%s\t12\tx\t3\t%s\n%.63s\t%lld\t%lld\t%llu\t%s\n%s\t%lld\t%lld\t%llu\t%s\n"
             "%s\t%lld\t%lld\t%llu\t%s",   /* a last line without a newline: cut short, ignored */
             FAKE, model, FAKE, (long long)st.st_size, (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
             (unsigned long long)st.st_ino, model,
             FAKE, (long long)st.st_size, (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
             (unsigned long long)st.st_ino, model,
             want, (long long)st.st_size, (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
             (unsigned long long)st.st_ino, model);
    write_file(tsv, planted);
    CHECK(sdc_model_hash(model, got) == 0 && !strcmp(got, FAKE), "a cache hit returns the stored digest: %s", got);

    /* A new mtime (same bytes, same size) invalidates it: hashed again, the entry replaced. */
    struct timespec ts[2] = {{0, UTIME_OMIT}, {st.st_mtim.tv_sec + 10, 123456789}};
    CHECK(utimensat(AT_FDCWD, model, ts, 0) == 0, "utimensat");
    CHECK(sdc_model_hash(model, got) == 0 && !strcmp(got, want), "after a new mtime: %s, want %s", got, want);
    CHECK(count_lines(tsv, want) == 1 && count_lines(tsv, FAKE) == 0 && count_lines(tsv, "not an entry") == 0,
          "the rewritten cache holds the one new entry and no malformed line");

    /* Bounded: 300 other entries before a miss leave the newest SDC_HASHCACHE_MAX_ENTRIES. */
    f = fopen(tsv, "w");
    for (int i = 0; f && i < 300; i++) fprintf(f, "%s\t%d\t1\t%d\t/nowhere/model-%d.safetensors\n", FAKE, i, i, i);
    if (f) fclose(f);
    CHECK(utimensat(AT_FDCWD, model, (struct timespec[2]){{0, UTIME_OMIT}, {st.st_mtim.tv_sec + 20, 0}}, 0) == 0, "utimensat");
    CHECK(sdc_model_hash(model, got) == 0 && !strcmp(got, want), "with a full cache: %s", got);
    CHECK(count_lines(tsv, FAKE) + count_lines(tsv, want) == SDC_HASHCACHE_MAX_ENTRIES && count_lines(tsv, want) == 1 &&
              count_lines(tsv, FAKE "\t299\t") == 1 && count_lines(tsv, FAKE "\t0\t") == 0,
          "the cache keeps the newest %d entries, the new one among them", SDC_HASHCACHE_MAX_ENTRIES);
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s/sdc' | grep -v '^model-hashes.tsv$')\"", cache);
    CHECK(system(cmd) == 0, "no temp file is left beside the cache");

    /* No usable cache: the hash all the same. XDG_CACHE_HOME under a regular file (mkdir fails
     * even for root), then neither XDG_CACHE_HOME nor HOME. */
    char under_file[300];
    snprintf(under_file, sizeof under_file, "%s/cache", model);
    setenv("XDG_CACHE_HOME", under_file, 1);
    CHECK(sdc_model_hash(model, got) == 0 && !strcmp(got, want), "unwritable cache dir: %s, want %s", got, want);
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    CHECK(sdc_model_hash(model, got) == 0 && !strcmp(got, want), "no cache location: %s, want %s", got, want);
    if (home) { setenv("HOME", home, 1); free(home); }

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "%s", cmd);
}

int main(void) {
    test_known_answers(SDC_SHA256_PORTABLE, "portable");
    test_known_answers(SDC_SHA256_AUTO, "auto");
    if (sdc_sha256_have_shani()) {
        test_known_answers(SDC_SHA256_SHANI, "SHA-NI");
        test_paths_agree();
    } else {
        sdc_sha256 s;
        CHECK(sdc_sha256_init_impl(&s, SDC_SHA256_SHANI) == -1, "SHA-NI asked for on a CPU without it is -1");
        printf("test_sha256: this CPU has no SHA-NI: its path is not tested here\n");
    }
    test_file_and_cache();
    if (failures) { printf("test_sha256: %d failure(s)\n", failures); return 1; }
    printf("test_sha256: ok\n");
    return 0;
}
