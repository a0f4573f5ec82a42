/* test_tokenizer.c — the CLIP tokenizer against tests/data/tokenizer_cases.json (transformers'
 * slow CLIPTokenizer with ftfy): every case's BPE ids, SD 1.x and SD 2.x 77-id windows and
 * truncation flag must be equal. Then invalid UTF-8 (never a crash; each bad byte reads as
 * U+FFFD), the prompt size limit, AUTOMATIC1111 chunking, and the time of a long prompt. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"
#include "tests/test_util.h"

/* the library's prompt limit (SDC_TOK_MAX_BYTES in tokenizer.c): 64 KiB is accepted */
#define SDC_TOK_MAX_BYTES_TEST (64 * 1024)

static int g_fail;

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
#define CHECK(cond, ...) do { if (!(cond)) { g_fail++; printf("FAIL: " __VA_ARGS__); printf("\n"); } } while (0)

static int ids_equal_json(const int32_t *ids, size_t n, const cJSON *arr) {
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) return 0;
    size_t i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) if (!cJSON_IsNumber(x) || x->valueint != ids[i++]) return 0;
    return 1;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    printf("  %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %d(%s)", ids[i], sdc_token_str(ids[i]));
    printf("%s\n", n > 40 ? " ..." : "");
}

static int test_cases(void) {
    char *js = tu_slurp("tests/data/tokenizer_cases.json", NULL);
    if (!js) { printf("FAIL: cannot read tests/data/tokenizer_cases.json\n"); return 1; }
    cJSON *root = cJSON_Parse(js);
    free(js);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    if (!cJSON_IsArray(cases) || cJSON_GetArraySize(cases) == 0) {
        printf("FAIL: no cases\n");
        cJSON_Delete(root);
        return 1;
    }
    int n_ok = 0, n_all = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        n_all++;
        const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItem(c, "prompt"));
        int32_t *ids = NULL;
        size_t n = 0;
        sdc_err e = {{0}};
        if (!prompt || sdc_tokenize(prompt, &ids, &n, &e) < 0) {
            CHECK(0, "case %d: tokenize failed: %s", n_all, e.msg);
            continue;
        }
        int32_t w1[SDC_TOK_CTX], w2[SDC_TOK_CTX];
        int tr1 = sdc_tokens_window(w1, ids, n, SDC_TOK_EOS);
        int tr2 = sdc_tokens_window(w2, ids, n, 0);
        int ok_tokens = ids_equal_json(ids, n, cJSON_GetObjectItem(c, "tokens"));
        int ok_sd1 = ids_equal_json(w1, SDC_TOK_CTX, cJSON_GetObjectItem(c, "input_ids"));
        int ok_sd2 = ids_equal_json(w2, SDC_TOK_CTX, cJSON_GetObjectItem(c, "input_ids_sd2"));
        int ok_tr = tr1 == tr2 && tr1 == cJSON_IsTrue(cJSON_GetObjectItem(c, "truncated"));
        /* token strings too: the embedded vocabulary must be the reference's */
        int ok_str = 1;
        const cJSON *ts = cJSON_GetObjectItem(c, "token_strings"), *s;
        size_t i = 0;
        cJSON_ArrayForEach(s, ts) {
            const char *mine = i < n ? sdc_token_str(ids[i]) : NULL;
            if (!mine || strcmp(mine, cJSON_GetStringValue(s)) != 0) ok_str = 0;
            i++;
        }
        if (n > SDC_TOK_CTX - 2) {                 /* time the fixture's long prompt */
            double best = 1e30;
            for (int r = 0; r < 200; r++) {
                int32_t *x = NULL;
                size_t nx = 0;
                double t0 = now_us();
                sdc_tokenize(prompt, &x, &nx, &e);
                double dt = now_us() - t0;
                if (dt < best) best = dt;
                free(x);
            }
            printf("fixture long prompt (%zu bytes, %zu tokens): %.1f us (best of 200)\n",
                   strlen(prompt), n, best);
        }
        if (ok_tokens && ok_sd1 && ok_sd2 && ok_tr && ok_str) {
            n_ok++;
        } else {
            CHECK(0, "case %d %s: tokens %d sd1 %d sd2 %d truncated %d strings %d", n_all, prompt,
                  ok_tokens, ok_sd1, ok_sd2, ok_tr, ok_str);
            print_ids("got", ids, n);
        }
        free(ids);
    }
    printf("fixture cases: %d/%d equal (tokens, input_ids, input_ids_sd2, truncated, strings)\n",
           n_ok, n_all);
    cJSON_Delete(root);
    return n_ok == n_all ? 0 : 1;
}

static int tok_equal(const char *a, const char *b) {
    int32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    sdc_err e = {{0}};
    int ok = sdc_tokenize(a, &x, &nx, &e) == 0 && sdc_tokenize(b, &y, &ny, &e) == 0 && nx == ny &&
             (nx == 0 || memcmp(x, y, nx * sizeof *x) == 0);
    free(x);
    free(y);
    return ok;
}

/* Invalid UTF-8: never a crash, each byte outside a valid sequence reads as U+FFFD. */
static void test_invalid_utf8(void) {
    static const struct { const char *bad, *as_fffd; size_t n_bad; } cases[] = {
        {"a\xff" "b", "a\xef\xbf\xbd" "b", 1},
        {"\xc3", "\xef\xbf\xbd", 1},                                  /* truncated 2-byte */
        {"x\xe2\x82 y", "x\xef\xbf\xbd\xef\xbf\xbd y", 2},            /* truncated 3-byte */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", 2},                  /* overlong '/' */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3},  /* encoded surrogate */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 4}, /* > U+10FFFF */
        {"cat \x80\x80 dog", "cat \xef\xbf\xbd\xef\xbf\xbd dog", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(sdc_tok_utf8_invalid(cases[i].bad) == cases[i].n_bad, "invalid utf-8 case %zu: count %zu",
              i, sdc_tok_utf8_invalid(cases[i].bad));
        CHECK(tok_equal(cases[i].bad, cases[i].as_fffd), "invalid utf-8 case %zu: not read as U+FFFD", i);
    }
    CHECK(sdc_tok_utf8_invalid("caf\xc3\xa9 \xf0\x9f\x90\xb1") == 0, "valid utf-8 counted as invalid");
    printf("invalid UTF-8: %zu cases read as U+FFFD per bad byte\n", sizeof cases / sizeof cases[0]);
}

/* ftfy behaviour the fixture cases touch only partly (each expectation follows from ftfy 6.1.1's
 * code: fix_and_explain repeats until stable; unescape_html is off once a line holds '<'). */
static void test_cleanup_rules(void) {
    CHECK(tok_equal("&amp;lt;b&amp;gt;", "<b>"), "nested entities are unescaped until stable");
    CHECK(tok_equal("<b> &amp;", "<b> &amp;"), "'<' disables unescaping");
    CHECK(!tok_equal("<b> &amp;", "<b> &"), "'<' disables unescaping (2)");
    CHECK(tok_equal("x\n<b>\n&amp;", "x <b> &amp;"), "unescaping stays off after a line with '<'");
    CHECK(tok_equal("&amp;\n<b>", "& <b>"), "lines before the first '<' are unescaped");
    CHECK(tok_equal("<|endoftext|> &amp;", "<|endoftext|> &"), "special tokens split before ftfy");
    CHECK(tok_equal("&#65;&#x42;", "ab"), "numeric character references");
    CHECK(!tok_equal("&#59;", ";"), "a reference decoding to ';' stays as written");
    CHECK(tok_equal("e\xcc\x81", "\xc3\xa9"), "NFC composes e + U+0301");
    CHECK(tok_equal("\x1b[31mred\x1b[0m", "red"), "terminal escapes removed");
    CHECK(tok_equal("a\xc2\x96" "b", "a\xe2\x80\x93" "b"), "C1 control U+0096 as windows-1252 en dash");
    CHECK(tok_equal("\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3", "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82"),
          "final sigma: ΣΟΦΟΣ lowers to σοφος");
    CHECK(tok_equal("\xc4\xb0", "i\xcc\x87"), "U+0130 lowers to i + U+0307");
    CHECK(tok_equal("<|STARTOFTEXT|>", "<|startoftext|>"), "lower-cased special token is special");
    printf("clean-up rules checked\n");
}

static void test_limits(void) {
    size_t big = 70 * 1024;
    char *s = malloc(big + 1);
    memset(s, 'a', big);
    s[big] = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    sdc_err e = {{0}};
    CHECK(sdc_tokenize(s, &ids, &n, &e) < 0 && e.msg[0], "a 70 KiB prompt must be refused");
    printf("70 KiB prompt: %s\n", e.msg);
    free(ids);
    free(s);
    /* ftfy undoes one level of nested escaping per pass; 62 levels settle within the 64-pass
     * limit ("&" + 62 x "amp;" + "lt;" is "<"), 63 do not and are refused with a message */
    char nest[512] = "&";
    for (int i = 0; i < 62; i++) strcat(nest, "amp;");
    strcat(nest, "lt;");
    CHECK(tok_equal(nest, "<"), "62 nested entities");
    memmove(nest + 5, nest + 1, strlen(nest));
    memcpy(nest + 1, "amp;", 4);
    CHECK(sdc_tokenize(nest, &ids, &n, &e) < 0 && strstr(e.msg, "clean-up passes"),
          "63 nested entities must be refused");
    printf("63 nested entities: %s\n", e.msg);
    /* one 64 KiB word: BPE stays fast (heap merges) */
    s = malloc(SDC_TOK_MAX_BYTES_TEST + 1);
    for (size_t i = 0; i < SDC_TOK_MAX_BYTES_TEST; i++) s[i] = (char)('a' + (i * 7 + i / 13) % 26);
    s[SDC_TOK_MAX_BYTES_TEST] = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(sdc_tokenize(s, &ids, &n, &e) == 0 && n > 1000, "64 KiB word: %s", e.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("64 KiB single word: %zu tokens in %.1f ms\n", n,
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    free(ids);
    free(s);
    CHECK(sdc_token_str(-1) == NULL && sdc_token_str(SDC_TOK_VOCAB) == NULL, "token_str range");
    CHECK(!strcmp(sdc_token_str(SDC_TOK_BOS), "<|startoftext|>"), "BOS string");
}

/* AUTOMATIC1111 tokenize_line on plain ids (comma = ",</w>" = 267 in the CLIP vocabulary) */
static void test_chunks(void) {
    int32_t ids[200], *w = NULL;
    int nw = 0;
    for (int i = 0; i < 200; i++) ids[i] = 320;          /* "a</w>" */
    /* empty prompt: one window BOS EOS pad... */
    CHECK(sdc_tokens_chunks(&w, &nw, ids, 0, SDC_TOK_EOS) == 0 && nw == 1 && w[0] == SDC_TOK_BOS &&
          w[1] == SDC_TOK_EOS && w[76] == SDC_TOK_EOS, "empty prompt chunks");
    free(w);
    CHECK(sdc_tokens_chunks(&w, &nw, ids, 75, 0) == 0 && nw == 1 && w[75] == 320 && w[76] == SDC_TOK_EOS,
          "75 ids: one window");
    free(w);
    CHECK(sdc_tokens_chunks(&w, &nw, ids, 76, 0) == 0 && nw == 2 && w[77 + 1] == 320 &&
          w[77 + 2] == SDC_TOK_EOS && w[77 + 3] == 0, "76 ids: two windows, SD 2.x padding 0");
    free(w);
    /* a comma at index 60: when the window fills, ids 61..74 move to the next window */
    ids[60] = 267;
    CHECK(sdc_tokens_chunks(&w, &nw, ids, 80, SDC_TOK_EOS) == 0 && nw == 2, "comma backtrack count");
    if (nw == 2) {
        CHECK(w[61] == 267 && w[62] == SDC_TOK_EOS, "window 1 ends after the comma");
        CHECK(w[77] == SDC_TOK_BOS && w[77 + 19] == 320 && w[77 + 20] == SDC_TOK_EOS,
              "window 2 holds the 14 moved ids + 5 more (19)");
    }
    free(w);
    /* a comma further back than 20 ids: no backtracking */
    ids[60] = 320;
    ids[50] = 267;
    CHECK(sdc_tokens_chunks(&w, &nw, ids, 80, SDC_TOK_EOS) == 0 && nw == 2 && w[76] == SDC_TOK_EOS &&
          w[75] == 320 && w[77 + 5] == 320 && w[77 + 6] == SDC_TOK_EOS, "no backtrack past 20");
    free(w);
    printf("chunking checked\n");
}

static void test_speed(void) {
    const char *base = "a breathtaking ultra detailed matte painting of an ancient floating city "
                       "above the clouds at golden hour, intricate gothic towers, waterfalls, "
                       "(masterpiece:1.2), best quality, 8k, café crème, 東京タワー, 🐱 ";
    char buf[8192] = "";
    for (int i = 0; i < 10; i++) strcat(buf, base);
    int32_t *ids = NULL;
    size_t n = 0;
    sdc_err e = {{0}};
    sdc_tokenize("warm up", &ids, &n, &e);              /* builds the tables once */
    free(ids);
    double best = 1e30;
    for (int r = 0; r < 50; r++) {
        double t0 = now_us();
        if (sdc_tokenize(buf, &ids, &n, &e) < 0) { CHECK(0, "long prompt: %s", e.msg); return; }
        double dt = now_us() - t0;
        if (dt < best) best = dt;
        if (r + 1 < 50) free(ids);
    }
    printf("long prompt: %zu bytes -> %zu tokens in %.1f us (best of 50)\n", strlen(buf), n, best);
    free(ids);
}

int main(void) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    (void)sdc_token_str(0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("table build: %.2f ms\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    if (test_cases()) g_fail++;
    test_invalid_utf8();
    test_cleanup_rules();
    test_limits();
    test_chunks();
    test_speed();
    printf(g_fail ? "test_tokenizer: %d FAILED\n" : "test_tokenizer: all passed\n", g_fail);
    return g_fail ? 1 : 0;
}
