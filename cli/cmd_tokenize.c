/* cmd_tokenize.c — `sdc tokenize [-m MODEL] -p TEXT [--json]`: the CLIP token ids of a prompt.
 *
 * Prints every BPE id with its vocabulary string, says when the prompt is longer than one
 * window (75 ids), and the 77-id input of the text encoder's first window: SD 1.x layout
 * (padding with EOS 49407) unless -m names a model whose text encoder is SD 2.x's OpenCLIP
 * tower (tensors under cond_stage_model.model.), which pads with 0.
 * --json prints one object: input_ids (77), tokens (all ids), token_strings, n_tokens,
 * truncated, windows (the chunk count generate uses), pad_id, text_encoder, and chunks: each
 * AUTOMATIC1111 chunk's 77 ids and weights (emphasis `(x:1.3)`, BREAK; <lora:...> tags
 * taken out first and listed under loras). input_ids / tokens are the text as diffusers reads
 * it (truncate mode: brackets are words there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "pipeline/prompt.h"
#include "runtime/store.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: sdc tokenize [-m MODEL] -p TEXT [--json]\n"
               "  shows the CLIP token ids of TEXT and the 77 ids of the text encoder's first window.\n"
               "  -m MODEL  checkpoint whose text encoder decides the padding: SD 1.x pads with\n"
               "            49407 (the default without -m), SD 2.x (OpenCLIP) with 0\n"
               "  -p TEXT   the prompt (UTF-8)\n"
               "  --json    one JSON object: input_ids, tokens, token_strings, n_tokens, truncated,\n"
               "            windows, pad_id, text_encoder, chunks (each AUTOMATIC1111 chunk's\n"
               "            ids and weights), loras (the <lora:NAME:W> tags)\n");
}

/* Which text encoder the model holds: 1 SD 1.x CLIP, 2 SD 2.x OpenCLIP; -1 with a message. */
static int model_text_encoder(const char *path) {
    sdc_err e = {{0}};
    sdc_store *s = sdc_store_new();
    if (!s) { fprintf(stderr, "sdc: out of memory\n"); return -1; }
    if (sdc_store_open(s, path, NULL, &e) < 0) {
        fprintf(stderr, "sdc: %s\n", e.msg);
        sdc_store_close(s);
        return -1;
    }
    int kind = sdc_store_count_prefix(s, "cond_stage_model.model.") ? 2
             : sdc_store_count_prefix(s, "cond_stage_model.transformer.") ? 1 : 0;
    sdc_store_close(s);
    if (!kind)
        fprintf(stderr, "sdc: %s: no SD 1.x/2.x text encoder (no tensors under "
                        "cond_stage_model.transformer. or cond_stage_model.model.)\n", path);
    return kind ? kind : -1;
}

static int print_json(const int32_t *ids, size_t n, const int32_t *win, int truncated,
                      int n_windows, int32_t pad, int kind, size_t bad_bytes,
                      const sdc_prompt_chunks *ch, const sdc_prompt_lora *l, int nl) {
    cJSON *o = cJSON_CreateObject();
    cJSON *cs = cJSON_AddArrayToObject(o, "chunks"), *ls = cJSON_AddArrayToObject(o, "loras");
    for (int k = 0; cs && k < ch->n; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON *ci = cJSON_AddArrayToObject(c, "ids"), *cw = cJSON_AddArrayToObject(c, "weights");
        for (int i = 0; ci && cw && i < SDC_TOK_CTX; i++) {
            cJSON_AddItemToArray(ci, cJSON_CreateNumber(ch->ids[k * SDC_TOK_CTX + i]));
            cJSON_AddItemToArray(cw, cJSON_CreateNumber(ch->weights[k * SDC_TOK_CTX + i]));
        }
        cJSON_AddItemToArray(cs, c);
    }
    for (int i = 0; ls && i < nl; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", l[i].name);
        cJSON_AddNumberToObject(x, "multiplier", l[i].mult);
        cJSON_AddItemToArray(ls, x);
    }
    cJSON *in = cJSON_AddArrayToObject(o, "input_ids");
    cJSON *tk = cJSON_AddArrayToObject(o, "tokens");
    cJSON *ts = cJSON_AddArrayToObject(o, "token_strings");
    if (!o || !in || !tk || !ts) { cJSON_Delete(o); fprintf(stderr, "sdc: out of memory\n"); return 2; }
    for (int i = 0; i < SDC_TOK_CTX; i++) cJSON_AddItemToArray(in, cJSON_CreateNumber(win[i]));
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(tk, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(ts, cJSON_CreateString(sdc_token_str(ids[i])));
    }
    cJSON_AddNumberToObject(o, "n_tokens", (double)n);
    cJSON_AddBoolToObject(o, "truncated", truncated);
    cJSON_AddNumberToObject(o, "windows", n_windows);
    cJSON_AddNumberToObject(o, "pad_id", pad);
    cJSON_AddStringToObject(o, "text_encoder", kind == 2 ? "SD 2.x (OpenCLIP)" : "SD 1.x (CLIP)");
    cJSON_AddNumberToObject(o, "invalid_utf8_bytes", (double)bad_bytes);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) { fprintf(stderr, "sdc: out of memory\n"); return 2; }
    puts(txt);
    free(txt);
    return 0;
}

static void print_text(const int32_t *ids, size_t n, const int32_t *win, int n_windows,
                       int32_t pad, int kind, const sdc_prompt_chunks *ch, const sdc_prompt_lora *l, int nl) {
    printf("tokens: %zu\n", n);
    if (n > SDC_TOK_CTX - 2)
        printf("longer than one window: %zu tokens > %d; truncate mode keeps the first %d, "
               "chunk mode uses %d windows\n", n, SDC_TOK_CTX - 2, SDC_TOK_CTX - 2, n_windows);
    for (size_t i = 0; i < n; i++)
        printf("%5zu %6d  %s\n", i, ids[i], sdc_token_str(ids[i]));
    printf("input_ids (%s, padding %d):", kind == 2 ? "SD 2.x" : "SD 1.x", pad);
    for (int i = 0; i < SDC_TOK_CTX; i++) printf(" %d", win[i]);
    printf("\n");
    for (int i = 0; i < nl; i++) printf("lora: %s, multiplier %g\n", l[i].name, l[i].mult);
    for (int k = 0; k < ch->n; k++) {   /* AUTOMATIC1111's chunks: the weighted tokens */
        printf("chunk %d (AUTOMATIC1111 emphasis):", k);
        for (int i = 1; i < SDC_TOK_CTX && ch->ids[k * SDC_TOK_CTX + i] != SDC_TOK_EOS; i++) {
            double w = ch->weights[k * SDC_TOK_CTX + i];
            const char *t = sdc_token_str(ch->ids[k * SDC_TOK_CTX + i]);
            if (w != 1.0) printf(" (%s:%.4g)", t, w);
            else printf(" %s", t);
        }
        printf("\n");
    }
}

int sdc_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        int is_m = !strcmp(a, "-m") || !strcmp(a, "--model");
        int is_p = !strcmp(a, "-p") || !strcmp(a, "--prompt");
        if (is_m || is_p) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sdc: tokenize: %s needs a value\n", a);
                return 2;
            }
            if (is_m) model = argv[++i];
            else prompt = argv[++i];
            continue;
        }
        fprintf(stderr, "sdc: tokenize: unknown option '%s' (try sdc tokenize --help)\n", a);
        return 2;
    }
    if (!prompt) {
        fprintf(stderr, "sdc: tokenize: no prompt: give -p TEXT\n");
        return 2;
    }
    int kind = 1;
    if (model && (kind = model_text_encoder(model)) < 0) return 2;
    int32_t pad = kind == 2 ? 0 : SDC_TOK_EOS;

    size_t bad = sdc_tok_utf8_invalid(prompt);
    if (bad)
        fprintf(stderr, "sdc: tokenize: note: %zu byte%s of the prompt %s not valid UTF-8, read as "
                        "U+FFFD (as the reference reads such bytes)\n", bad, bad == 1 ? "" : "s",
                bad == 1 ? "is" : "are");
    int32_t *ids = NULL;
    size_t n = 0;
    sdc_err e = {{0}};
    if (sdc_tokenize(prompt, &ids, &n, &e) < 0) {
        fprintf(stderr, "sdc: %s\n", e.msg);
        return 2;
    }
    char *rest = NULL;
    sdc_prompt_lora *l = NULL;
    int nl = 0;
    sdc_prompt_chunks ch;
    memset(&ch, 0, sizeof ch);
    if (sdc_prompt_take_loras(prompt, &rest, &l, &nl, &e) ||
        sdc_prompt_chunk(rest, SDC_PROMPT_CHUNKED, pad, NULL, &ch, &e)) {
        free(ids);
        free(rest);
        sdc_prompt_loras_free(l, nl);
        fprintf(stderr, "sdc: %s\n", e.msg);
        return 2;
    }
    int32_t win[SDC_TOK_CTX];
    int truncated = sdc_tokens_window(win, ids, n, pad);
    int rc = 0;
    if (json) rc = print_json(ids, n, win, truncated, ch.n, pad, kind, bad, &ch, l, nl);
    else print_text(ids, n, win, ch.n, pad, kind, &ch, l, nl);
    sdc_prompt_chunks_free(&ch);
    sdc_prompt_loras_free(l, nl);
    free(rest);
    free(ids);
    return rc;
}
