/* test_prompt_tokenize.c — AUTOMATIC1111 prompt weighting against refs/sd1_weighted_text (made by
 * A1111's own parser, chunker and "Original" emphasis around tiny-sd1's text encoder):
 *  - the parsed runs of all 12 prompts: texts and float64 weights exactly;
 *  - every chunk's 77 ids, its weights (f64 exactly, f32 as multiplied exactly), the chunk count
 *    and A1111's token count;
 *  - each chunk encoded alone (z_unweighted) and the weighted, mean-restored conditioning (cond)
 *    within 1e-4 (the fixtures README's component tolerance);
 * and the parts the fixture does not cover: <lora:NAME:W> tags, BREAK word boundaries, weights
 * that are no numbers, truncate mode. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "models/clip.h"
#include "pipeline/prompt.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

#define REF "tests/data/refs/sd1_weighted_text.safetensors"
#define TOL 1e-4

static void check_case(const sdc_store *ref, const cJSON *cs, const char *prompt, int i, sdc_clip *clip) {
    /* 1. parse */
    sdc_prompt_run *runs = NULL;
    size_t nr = 0;
    sdc_err e = {{0}};
    CHECK(sdc_prompt_parse(prompt, &runs, &nr, &e) == 0, "p%d parse: %s", i, e.msg);
    const cJSON *parsed = cJSON_GetObjectItem(cs, "parsed");
    CHECK((size_t)cJSON_GetArraySize(parsed) == nr, "p%d: %zu runs, A1111 %d", i, nr, cJSON_GetArraySize(parsed));
    for (size_t k = 0; k < nr && k < (size_t)cJSON_GetArraySize(parsed); k++) {
        const cJSON *r = cJSON_GetArrayItem(parsed, (int)k);
        const char *t = cJSON_GetArrayItem(r, 0)->valuestring;
        double w = cJSON_GetArrayItem(r, 1)->valuedouble;
        CHECK(!strcmp(t, runs[k].text) && w == runs[k].weight, "p%d run %zu: ('%s', %.17g), A1111 ('%s', %.17g)",
              i, k, runs[k].text, runs[k].weight, t, w);
    }
    sdc_prompt_runs_free(runs, nr);

    /* 2. chunks */
    sdc_prompt_chunks ch;
    CHECK(sdc_prompt_chunk(prompt, SDC_PROMPT_CHUNKED, SDC_TOK_EOS, NULL, &ch, &e) == 0, "p%d chunk: %s", i, e.msg);
    int want_chunks = cJSON_GetObjectItem(cs, "chunks")->valueint;
    CHECK(ch.n == want_chunks, "p%d: %d chunks, A1111 %d", i, ch.n, want_chunks);
    CHECK(ch.token_count == cJSON_GetObjectItem(cs, "token_count")->valueint, "p%d: token count %d, A1111 %d",
          i, ch.token_count, cJSON_GetObjectItem(cs, "token_count")->valueint);
    char nm[64];
    snprintf(nm, sizeof nm, "p%d.input_ids", i);
    const sdc_tensor *ids_t = sdc_store_get(ref, nm);
    size_t n77 = (size_t)want_chunks * 77;
    float *ids = tu_tensor_f32(ref, nm, NULL);
    snprintf(nm, sizeof nm, "p%d.weights", i);
    float *w32 = tu_tensor_f32(ref, nm, NULL);
    snprintf(nm, sizeof nm, "p%d.weights_f64", i);
    const sdc_tensor *w64t = sdc_store_get(ref, nm);
    CHECK(ids_t && ids && w32 && w64t && w64t->dtype == SDC_F64, "p%d: reference tensors", i);
    if (ch.n == want_chunks && ids && w32 && w64t) {
        int id_ok = 1, w_ok = 1;
        for (size_t j = 0; j < n77; j++) {
            double w64;
            memcpy(&w64, (const char *)w64t->data + j * 8, 8);
            id_ok &= ch.ids[j] == (int32_t)ids[j];
            w_ok &= ch.weights[j] == w64 && (float)ch.weights[j] == w32[j];
        }
        CHECK(id_ok, "p%d: ids differ from A1111's", i);
        CHECK(w_ok, "p%d: weights differ from A1111's", i);
    }

    /* 3. conditioning */
    const int C = sdc_clip_width(clip);
    snprintf(nm, sizeof nm, "p%d.z_unweighted", i);
    float *zref = tu_tensor_f32(ref, nm, NULL);
    snprintf(nm, sizeof nm, "p%d.cond", i);
    float *cref = tu_tensor_f32(ref, nm, NULL);
    float *z = malloc((size_t)ch.n * 77 * C * sizeof *z);
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    for (int k = 0; k < ch.n; k++) {
        float *zk = z + (size_t)k * 77 * C;
        CHECK(sdc_clip_encode(clip, &a, ch.ids + k * 77, 77, 0, zk, &e) == 0, "encode: %s", e.msg);
    }
    if (zref && ch.n == want_chunks) {
        double d = tu_max_abs_diff(z, zref, (size_t)ch.n * 77 * C, NULL);
        CHECK(d <= TOL, "p%d: z_unweighted differs by %g", i, d);
    }
    for (int k = 0; k < ch.n; k++) sdc_prompt_emphasis(z + (size_t)k * 77 * C, ch.weights + k * 77, 77, C);
    if (cref && ch.n == want_chunks) {
        double d = tu_max_abs_diff(z, cref, (size_t)ch.n * 77 * C, NULL);
        CHECK(d <= TOL, "p%d: cond differs by %g", i, d);
        printf("p%d: %d chunk(s), %d tokens, cond max diff %.2e: %s\n", i, ch.n, ch.token_count, d, prompt);
    }
    sdc_arena_free(&a);
    free(z); free(zref); free(cref); free(ids); free(w32);
    sdc_prompt_chunks_free(&ch);
}

/* runs of text as a string "text|w;text|w" for the small cases below */
static void runs_str(const char *prompt, char *out, size_t cap) {
    sdc_prompt_run *r = NULL;
    size_t n = 0;
    sdc_err e = {{0}};
    out[0] = 0;
    if (sdc_prompt_parse(prompt, &r, &n, &e)) { snprintf(out, cap, "error: %s", e.msg); return; }
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s|%g", i ? ";" : "", r[i].text, r[i].weight);
    sdc_prompt_runs_free(r, n);
}

static void check_syntax(void) {
    static const char *const cases[][2] = {
        /* BREAK must be a whole word; brackets and string ends are boundaries; spaces around go */
        {"a BREAKfast", "a BREAKfast|1"},
        {"xBREAK y", "xBREAK y|1"},
        {"a  BREAK  b", "a|1;BREAK|-1;b|1"},
        {"(a)BREAK(b)", "a|1.1;|1;BREAK|-1;|1;b|1.1"},
        {"a BREAK BREAK b", "a|1;BREAK|-1;|1;BREAK|-1;b|1"},
        {"(a BREAK b)", "a|1.1;BREAK|-1.1;b|1.1"},       /* inside brackets it is a word again */
        {"café BREAK b", "café|1;BREAK|-1;b|1"},
        {"éBREAK b", "éBREAK b|1"},                      /* é is a word character (\w) */
        /* brackets, escapes, weights */
        {"a (b:1.5", "a |1;b:1.5|1.1"},                  /* the weight needs its ')' */
        {"a b:1.5)", "a b:1.5)|1"},                      /* a weight with no '(' is text */
        {"x) y] (z)", "x) y] |1;z|1.1"},
        {"back\\slash \\\\ \\(", "backslash \\ (|1"},
        {"(a:-0.5)", "a|-0.5"},
        {"(a:.5) [b", "a|0.5; |1;b|0.909091"},
        {"", "|1"},
    };
    char got[1200];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        runs_str(cases[i][0], got, sizeof got);
        CHECK(!strcmp(got, cases[i][1]), "parse '%s': got '%s', want '%s'", cases[i][0], got, cases[i][1]);
    }
    sdc_prompt_run *r = NULL;
    size_t n;
    sdc_err e = {{0}};
    CHECK(sdc_prompt_parse("a (b:1.2.3) c", &r, &n, &e) == -1 && strstr(e.msg, "'1.2.3'"), "bad weight: %s", e.msg);
    CHECK(sdc_prompt_parse("(b:.)", &r, &n, &e) == -1, "'.' is no weight");

    /* <lora:NAME:W> */
    char *rest = NULL;
    sdc_prompt_lora *l = NULL;
    int nl = 0;
    CHECK(sdc_prompt_take_loras("a cat <lora:tiny-sd1-lora:0.8>, <lora:b> <x", &rest, &l, &nl, &e) == 0, "%s", e.msg);
    CHECK(nl == 2 && !strcmp(l[0].name, "tiny-sd1-lora") && l[0].mult == 0.8f && !strcmp(l[1].name, "b") &&
          l[1].mult == 1.0f && !strcmp(rest, "a cat ,  <x"), "lora tags: %d, rest '%s'", nl, rest);
    free(rest);
    sdc_prompt_loras_free(l, nl);
    CHECK(sdc_prompt_take_loras("<hypernet:x:1>", &rest, &l, &nl, &e) == -1 && strstr(e.msg, "hypernet"), "%s", e.msg);
    CHECK(sdc_prompt_take_loras("<lora:x:abc>", &rest, &l, &nl, &e) == -1 && strstr(e.msg, "not a number"), "%s", e.msg);
    CHECK(sdc_prompt_take_loras("<lora:x:1:0.5>", &rest, &l, &nl, &e) == -1, "two multipliers refused");

    /* truncate mode: the text as it is, one window */
    sdc_prompt_chunks ch;
    char longp[2000] = "";
    for (int i = 0; i < 80; i++) strcat(longp, "(cat) ");
    CHECK(sdc_prompt_chunk(longp, SDC_PROMPT_TRUNCATE, 0, NULL, &ch, &e) == 0, "%s", e.msg);
    CHECK(ch.n == 1 && ch.truncated && ch.ids[0] == SDC_TOK_BOS && ch.ids[76] == SDC_TOK_EOS && ch.weights[5] == 1.0,
          "truncate: %d windows, truncated %d", ch.n, ch.truncated);
    sdc_prompt_chunks_free(&ch);
    CHECK(sdc_prompt_chunk("a (cat)", SDC_PROMPT_TRUNCATE, 0, NULL, &ch, &e) == 0 && !ch.truncated &&
          ch.ids[2] == 263 && ch.ids[4] == 264 && ch.ids[5] == SDC_TOK_EOS && ch.ids[6] == 0, "truncate keeps the brackets as text, pads with 0");
    sdc_prompt_chunks_free(&ch);
}

/* A safetensors file of one F32 tensor `name` [rows, width] at path. */
static void write_vectors(const char *path, const char *name, const float *v, int rows, int width) {
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]}}",
                     name, rows, width, (size_t)rows * width * 4);
    while (n % 8) hdr[n++] = ' ';
    uint64_t hl = (uint64_t)n;
    FILE *f = fopen(path, "wb");
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, (size_t)n, f);
    fwrite(v, 4, (size_t)rows * width, f);
    fclose(f);
}

/* Conditioning of prompt with db: each chunk encoded (embedding rows in place), emphasis. */
static float *condition(sdc_clip *clip, const char *prompt, const sdc_embd_db *db, int *nchunks) {
    sdc_prompt_chunks ch;
    sdc_err e = {{0}};
    if (sdc_prompt_chunk(prompt, SDC_PROMPT_CHUNKED, SDC_TOK_EOS, db, &ch, &e)) { printf("%s\n", e.msg); return NULL; }
    int C = sdc_clip_width(clip);
    float *z = malloc((size_t)ch.n * 77 * C * sizeof *z);
    sdc_arena a;
    sdc_arena_init(&a, 1 << 20);
    for (int k = 0; k < ch.n; k++) {
        sdc_clip_encode_opts o = {.vecs = ch.rows + k * 77};
        sdc_clip_encode_ex(clip, &a, ch.ids + k * 77, 77, &o, z + (size_t)k * 77 * C, &e);
        sdc_prompt_emphasis(z + (size_t)k * 77 * C, ch.weights + k * 77, 77, C);
    }
    sdc_arena_free(&a);
    *nchunks = ch.n;
    sdc_prompt_chunks_free(&ch);
    return z;
}

/* Textual inversion, tested honestly: an embedding holding the token-embedding rows of "red cat"
 * must give exactly the conditioning of "red cat", wherever it stands (with weights, across a
 * chunk border). */
static void check_embeddings(sdc_clip *clip, const sdc_store *model) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/sdc-embd-XXXXXX", tmp);
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    const sdc_tensor *tok = sdc_store_get(model, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight");
    float *table = tu_tensor_f32(model, tok->name, NULL);
    int C = (int)tok->shape[1];
    float v[2 * 64], wide[64 * 2] = {0};
    memcpy(v, table + 736 * C, C * 4);        /* red</w> */
    memcpy(v + C, table + 2368 * C, C * 4);   /* cat</w> */
    snprintf(p, sizeof p, "%s/kitty.safetensors", dir);
    write_vectors(p, "emb_params", v, 2, C);
    snprintf(p, sizeof p, "%s/widething.safetensors", dir);   /* another encoder's width: left out */
    write_vectors(p, "emb_params", wide, 2, 2 * C);
    snprintf(p, sizeof p, "%s/notes.txt", dir);                /* not an embedding file: ignored */
    FILE *f = fopen(p, "w"); fputs("x", f); fclose(f);

    sdc_embd_db db;
    sdc_err e = {{0}};
    CHECK(sdc_embd_db_load_dir(&db, dir, C, NULL, &e) == 0, "embd dir: %s", e.msg);
    CHECK(db.n == 1 && !strcmp(db.e[0].name, "kitty") && db.e[0].rows == 2, "%zu embeddings", db.n);
    static const char *const pairs[][2] = {
        {"a kitty on a mat", "a red cat on a mat"},
        {"(kitty:1.3), [Kitty] BREAK kitty", "(red cat:1.3), [red cat] BREAK red cat"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        int n1 = 0, n2 = 0;
        float *a = condition(clip, pairs[i][0], &db, &n1), *b = condition(clip, pairs[i][1], NULL, &n2);
        CHECK(a && b && n1 == n2 && !memcmp(a, b, (size_t)n1 * 77 * C * 4),
              "'%s' is not exactly the conditioning of '%s'", pairs[i][0], pairs[i][1]);
        free(a); free(b);
    }
    /* across the chunk border: 74 words then the 2-vector embedding moves whole to chunk 2 */
    char longp[1200] = "", longq[1200] = "";
    for (int i = 0; i < 74; i++) { strcat(longp, "dog "); strcat(longq, "dog "); }
    strcat(longp, "kitty");
    sdc_prompt_chunks ch;
    CHECK(sdc_prompt_chunk(longp, SDC_PROMPT_CHUNKED, SDC_TOK_EOS, &db, &ch, &e) == 0 && ch.n == 2 &&
          ch.ids[75] == SDC_TOK_EOS && ch.rows[77 + 1] == db.e[0].vec && ch.rows[77 + 2] == db.e[0].vec + C &&
          ch.ids[77 + 3] == SDC_TOK_EOS, "an embedding that does not fit goes whole to the next chunk");
    sdc_prompt_chunks_free(&ch);
    sdc_embd_db_free(&db);
    /* AUTOMATIC1111's .pt (string_to_param, torch zip; scripts/make_embedding_pt.py): the same */
    CHECK(sdc_embd_db_load_dir(&db, "tests/data/embeddings", C, NULL, &e) == 0, "embeddings: %s", e.msg);
    CHECK(db.n == 1 && !strcmp(db.e[0].name, "kittypt") && db.e[0].rows == 2, "kittypt.pt: %zu", db.n);
    {
        int n1 = 0, n2 = 0;
        float *a = condition(clip, "a (kittypt:0.9) on a mat", &db, &n1), *b = condition(clip, "a (red cat:0.9) on a mat", NULL, &n2);
        CHECK(a && b && n1 == n2 && !memcmp(a, b, (size_t)n1 * 77 * C * 4), "kittypt.pt is not exactly 'red cat'");
        free(a); free(b);
    }
    sdc_embd_db_free(&db);
    free(table);
    snprintf(p, sizeof p, "rm -rf '%s'", dir);
    CHECK(system(p) == 0, "cleanup");
}

int main(void) {
    sdc_store *ref = sdc_store_new(), *model = sdc_store_new();
    sdc_err e = {{0}};
    if (sdc_store_open(ref, REF, NULL, &e) || sdc_store_open(model, "tests/data/tiny-sd1.safetensors", NULL, &e)) {
        printf("%s\n", e.msg);
        return 1;
    }
    sdc_clip_params cp = {.n_heads = 4, .act = -1};
    sdc_clip *clip = sdc_clip_load(model, &cp, &e);
    if (!clip) { printf("%s\n", e.msg); return 1; }
    cJSON *prompts = cJSON_Parse(sdc_store_meta(ref, "prompts")), *cases = cJSON_Parse(sdc_store_meta(ref, "cases"));
    CHECK(cJSON_GetArraySize(prompts) == 12 && cJSON_GetArraySize(cases) == 12, "12 prompts");
    for (int i = 0; i < cJSON_GetArraySize(prompts); i++)
        check_case(ref, cJSON_GetArrayItem(cases, i), cJSON_GetArrayItem(prompts, i)->valuestring, i, clip);
    check_syntax();
    check_embeddings(clip, model);
    cJSON_Delete(prompts);
    cJSON_Delete(cases);
    sdc_clip_free(clip);
    sdc_store_close(model);
    sdc_store_close(ref);
    if (failures) { printf("%d failure(s)\n", failures); return 1; }
    printf("all prompt checks passed\n");
    return 0;
}
