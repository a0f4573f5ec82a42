/* test_png_text_malformed.c — the PNG "parameters" text as AUTOMATIC1111 (PIL's
 * PngInfo.add_text, infotext_utils.quote, processing.create_infotext) writes and reads it:
 *  - Latin-1 text goes into tEXt as Latin-1 bytes ("café" is 63 61 66 e9, which A1111 reads back
 *    as café — UTF-8 bytes in tEXt read as "cafÃ©"); anything beyond Latin-1 into iTXt as UTF-8;
 *  - sdc_png_read_text reads tEXt (Latin-1), iTXt plain and zlib-compressed, and survives bad
 *    chunks (cut short, no separators, bad zlib) without reading past them (runs under ASan);
 *  - the infotext: no "Negative prompt:" line when it is empty, values with , : or newlines
 *    quoted as json.dumps(ensure_ascii=False), stripped, no length limit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/a1111.h"
#include "pipeline/image.h"
#include "tests/test_util.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                           printf(__VA_ARGS__); printf("\n"); } } while (0)

static char dir[] = "/tmp/sdc_test_pngtextXXXXXX";

/* The data of the first chunk of type `type` in a PNG file (malloc'd), or NULL. */
static uint8_t *chunk_data(const char *path, const char *type, size_t *n) {
    size_t fn = 0;
    uint8_t *f = tu_slurp(path, &fn), *out = NULL;
    for (size_t p = 8; f && p + 12 <= fn;) {
        size_t len = (size_t)f[p] << 24 | (size_t)f[p + 1] << 16 | (size_t)f[p + 2] << 8 | f[p + 3];
        if (p + 12 + len > fn) break;
        if (!memcmp(f + p + 4, type, 4)) {
            out = malloc(len + 1);
            memcpy(out, f + p + 8, len);
            out[len] = 0;
            *n = len;
            break;
        }
        p += 12 + len;
    }
    free(f);
    return out;
}

static void roundtrip(const char *name, const char *text, const char *want_type, const uint8_t *want, size_t want_n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    uint8_t rgb[8 * 8 * 3] = {0};
    sdc_err e = {{0}};
    CHECK(!sdc_write_png(path, rgb, 8, 8, "parameters", text, &e), "%s: %s", name, e.msg);
    size_t n = 0;
    uint8_t *d = chunk_data(path, want_type, &n);
    const char *other = !strcmp(want_type, "tEXt") ? "iTXt" : "tEXt";
    size_t on = 0;
    uint8_t *od = chunk_data(path, other, &on);
    CHECK(d && n == want_n && !memcmp(d, want, n), "%s: the %s chunk is not the expected bytes", name, want_type);
    CHECK(!od, "%s: a %s chunk too", name, other);
    char *back = sdc_png_read_text(path, "parameters");
    CHECK(back && !strcmp(back, text), "%s: read back '%s'", name, back ? back : "(null)");
    printf("%s %-12s -> %s, %zu data bytes, reads back %s\n", d && back && !strcmp(back, text) ? "ok  " : "FAIL",
           name, want_type, n, back && !strcmp(back, text) ? "equal" : "DIFFERENT");
    free(d); free(od); free(back);
    unlink(path);
}

static void chunks(void) {
    roundtrip("ascii", "a cat", "tEXt", (const uint8_t *)"parameters\0a cat", 16);
    /* é = U+00E9: one Latin-1 byte, as PIL's value.encode("latin-1") */
    roundtrip("latin1", "caf\xc3\xa9 \xc2\xbd", "tEXt", (const uint8_t *)"parameters\0caf\xe9 \xbd", 17);
    /* 猫 = U+732B: iTXt, flag 0, method 0, empty language and translated keyword, UTF-8 */
    roundtrip("cjk", "\xe7\x8c\xab caf\xc3\xa9", "iTXt",
              (const uint8_t *)"parameters\0\0\0\0\0\xe7\x8c\xab caf\xc3\xa9", 24);
    roundtrip("emoji", "\xf0\x9f\x90\x88", "iTXt", (const uint8_t *)"parameters\0\0\0\0\0\xf0\x9f\x90\x88", 19);
    /* a long text: no limit */
    size_t L = 100000;
    char *big = malloc(L + 1);
    for (size_t i = 0; i < L; i++) big[i] = "abc, de:f\n"[i % 10];
    big[L] = 0;
    char path[256];
    snprintf(path, sizeof path, "%s/big.png", dir);
    uint8_t rgb[8 * 8 * 3] = {0};
    sdc_err e = {{0}};
    CHECK(!sdc_write_png(path, rgb, 8, 8, "parameters", big, &e), "big: %s", e.msg);
    char *back = sdc_png_read_text(path, "parameters");
    CHECK(back && !strcmp(back, big), "a 100 KB text does not read back");
    free(back);
    free(big);
    unlink(path);
}

static uint32_t crc32(const uint8_t *p, size_t n) {
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* A PNG whose first chunk after IHDR is the given one (type + data), read with sdc_png_read_text. */
static char *read_with_chunk(const char *type, const uint8_t *data, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/crafted.png", dir);
    uint8_t rgb[4 * 4 * 3] = {0};
    sdc_err e = {{0}};
    if (sdc_write_png(path, rgb, 4, 4, NULL, NULL, &e)) return NULL;
    size_t fn = 0;
    uint8_t *f = tu_slurp(path, &fn);
    FILE *o = fopen(path, "wb");
    uint8_t *c = malloc(n + 12);
    c[0] = (uint8_t)(n >> 24); c[1] = (uint8_t)(n >> 16); c[2] = (uint8_t)(n >> 8); c[3] = (uint8_t)n;
    memcpy(c + 4, type, 4);
    memcpy(c + 8, data, n);
    uint32_t crc = crc32(c + 4, n + 4);
    c[n + 8] = (uint8_t)(crc >> 24); c[n + 9] = (uint8_t)(crc >> 16); c[n + 10] = (uint8_t)(crc >> 8); c[n + 11] = (uint8_t)crc;
    fwrite(f, 1, 33, o);
    fwrite(c, 1, n + 12, o);
    fwrite(f + 33, 1, fn - 33, o);
    fclose(o);
    free(c);
    free(f);
    char *t = sdc_png_read_text(path, "parameters");
    unlink(path);
    return t;
}

static void crafted(void) {
    /* compressed iTXt (PIL's zip=True): zlib header 78 01, one stored block, Adler-32 */
    const char *msg = "\xe7\x8c\xab";
    uint8_t d[64];
    size_t k = 0;
    memcpy(d, "parameters\0\1\0\0\0", 15);
    k = 15;
    uint8_t z[] = {0x78, 0x01, 0x01, 3, 0, 0xfc, 0xff, 0xe7, 0x8c, 0xab, 0, 0, 0, 0};
    uint32_t a = 1, b = 0;
    for (int i = 0; i < 3; i++) { a = (a + (uint8_t)msg[i]) % 65521; b = (b + a) % 65521; }
    uint32_t ad = b << 16 | a;
    z[10] = (uint8_t)(ad >> 24); z[11] = (uint8_t)(ad >> 16); z[12] = (uint8_t)(ad >> 8); z[13] = (uint8_t)ad;
    memcpy(d + k, z, sizeof z);
    k += sizeof z;
    char *t = read_with_chunk("iTXt", d, k);
    CHECK(t && !strcmp(t, msg), "compressed iTXt: '%s'", t ? t : "(null)");
    printf("compressed iTXt reads back: %s\n", t && !strcmp(t, msg) ? "yes" : "NO");
    free(t);
    /* bad chunks: nothing read, nothing past the chunk touched (ASan) */
    struct { const char *name, *type; const char *data; size_t n; } bad[] = {
        {"iTXt without the flag bytes", "iTXt", "parameters\0", 11},
        {"iTXt without the language's NUL", "iTXt", "parameters\0\0\0en", 15},
        {"iTXt without the translated key's NUL", "iTXt", "parameters\0\0\0\0tk", 16},
        {"compressed iTXt, bad zlib", "iTXt", "parameters\0\1\0\0\0\x78\x01\x07", 18},
        {"compressed iTXt, unknown method", "iTXt", "parameters\0\1\7\0\0xyz", 18},
        {"tEXt without a NUL", "tEXt", "parameters", 10},
        {"another key", "tEXt", "Comment\0x", 9},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t = read_with_chunk(bad[i].type, (const uint8_t *)bad[i].data, bad[i].n);
        CHECK(!t, "%s: read as '%s'", bad[i].name, t);
        free(t);
    }
    /* an empty iTXt value is an empty string */
    t = read_with_chunk("iTXt", (const uint8_t *)"parameters\0\0\0\0\0", 15);
    CHECK(t && !*t, "empty iTXt");
    free(t);
}

static void infotext(void) {
    sdc_gen_params gp = sdc_gen_default_params();
    gp.prompt = "a cat"; gp.negative_prompt = ""; gp.steps = 4; gp.seed = 42; gp.width = 64; gp.height = 64;
    gp.cfg_scale = 7; gp.sample_method = SDC_SAMPLER_EULER_A;
    char *t = sdc_a1111_infotext(&gp, "0123456789abcdef", "tiny", 0);
    CHECK(t && !strcmp(t, "a cat\nSteps: 4, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 42, "
                          "Size: 64x64, Model hash: 0123456789, Model: tiny, Version: sdc"),
          "empty negative: %s", t);
    free(t);
    gp.negative_prompt = "dog";
    t = sdc_a1111_infotext(&gp, "", "my, model: v2", 0);
    CHECK(t && strstr(t, "a cat\nNegative prompt: dog\nSteps: 4,") && strstr(t, ", Model: \"my, model: v2\", Version: sdc"),
          "quoted model name: %s", t);
    free(t);
    gp.prompt = "";
    gp.negative_prompt = "";
    t = sdc_a1111_infotext(&gp, "", "tiny", 0);
    CHECK(t && !strncmp(t, "Steps: 4,", 9), "empty prompt: stripped text starts '%.12s'", t);
    free(t);
    struct { const char *in, *out; } q[] = {
        {"plain", "plain"},
        {"caf\xc3\xa9 x", "caf\xc3\xa9 x"},
        {"a,b", "\"a,b\""},
        {"a:b", "\"a:b\""},
        {"a\nb", "\"a\\nb\""},
        {"say \"hi\", \\o/", "\"say \\\"hi\\\", \\\\o/\""},
        {"tab\there: \x01", "\"tab\\there: \\u0001\""},
        {"\xe7\x8c\xab: 1", "\"\xe7\x8c\xab: 1\""},
        {"no quote \"needed\"", "no quote \"needed\""},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        char *r = sdc_a1111_quote(q[i].in);
        CHECK(r && !strcmp(r, q[i].out), "quote(%s) = %s, want %s", q[i].in, r, q[i].out);
        free(r);
    }
}

int main(void) {
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    chunks();
    crafted();
    infotext();
    rmdir(dir);
    printf(fails ? "test_png_text_malformed: %d FAILED\n" : "test_png_text_malformed: all passed\n", fails);
    return fails ? 1 : 0;
}
