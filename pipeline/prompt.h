/* prompt.h — prompts as people write them: AUTOMATIC1111's emphasis syntax, BREAK, its 75-token
 * chunks, <lora:NAME:W> tags, and textual-inversion words.
 *
 * Owns: the parsed runs, the chunks (ids, weights, embedding rows) it returns; all malloc'd,
 * freed by the matching _free. Does not own: the embedding vectors (the sdc_embd_db's).
 * Mirrors, step by step, AUTOMATIC1111's modules/prompt_parser.py parse_prompt_attention,
 * modules/sd_hijack_clip.py tokenize_line (comma_padding_backtrack 20) and the "Original"
 * emphasis of modules/sd_emphasis.py; extra-network tags as modules/extra_networks.py finds
 * them (`<TYPE:ARGS>`). The fixtures README ("AUTOMATIC1111 prompt weighting") has the algorithm. */
#ifndef SDC_PROMPT_H
#define SDC_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/err.h"
#include "runtime/store.h"

/* One run of text with one weight. A chunk break is the run {"BREAK", -1} (A1111 marks it so:
 * inside brackets its weight is multiplied and it becomes the word "BREAK" again). */
typedef struct sdc_prompt_run {
    char  *text;
    double weight;
} sdc_prompt_run;

/* parse_prompt_attention(text): the (text, weight) runs, equal neighbours merged; an empty prompt
 * gives one run {"", 1}. Returns 0 with *runs (malloc'd, sdc_prompt_runs_free) and *n, or -1
 * with e set: out of memory, or a weight that is no number (`(a:1.2.3)`; A1111 stops with a
 * ValueError there). */
int  sdc_prompt_parse(const char *text, sdc_prompt_run **runs, size_t *n, sdc_err *e);
void sdc_prompt_runs_free(sdc_prompt_run *runs, size_t n);

/* ── extra networks: <lora:NAME:W> ── */

typedef struct sdc_prompt_lora {
    char *name;                  /* as written: looked up as NAME.safetensors / .ckpt / .pt */
    float mult;                  /* W; 1 when the tag has none */
} sdc_prompt_lora;

/* Removes every <lora:NAME> / <lora:NAME:W> tag from text (A1111: `<(\w+):([^>]+)>`, arguments
 * split at ':'). *rest receives the text without them, *loras the tags in order (both malloc'd;
 * sdc_prompt_loras_free). Returns 0, or -1 with e set: a W that is no number, a tag with more
 * arguments, or an extra network of another type (`<hypernet:...>`), which sdc does not run. */
int  sdc_prompt_take_loras(const char *text, char **rest, sdc_prompt_lora **loras, int *n, sdc_err *e);
void sdc_prompt_loras_free(sdc_prompt_lora *l, int n);

/* ── textual inversion ── */

/* An embedding: a name (the file's stem) and its vectors, which replace the name's tokens. */
typedef struct sdc_embedding {
    char    *name;
    int32_t *ids;                /* the name's BPE ids (what a prompt must contain) */
    size_t   n_ids;
    int      rows, width;        /* vectors [rows, width] */
    float   *vec;
} sdc_embedding;

typedef struct sdc_embd_db {
    sdc_embedding *e;            /* sorted by name */
    size_t n;
} sdc_embd_db;

/* Every embedding file in dir (*.pt with string_to_param, *.safetensors with emb_params, SDXL's
 * clip_l / clip_g, or a file of one tensor; *.bin, *.ckpt too) whose vectors are `width` wide
 * (others are for another text encoder and are left out), read through the tensor store with
 * opts (NULL: defaults). Returns 0 (db filled; sdc_embd_db_free), or -1 with e set: the folder
 * cannot be read, a file is malformed or refused, an embedding has more than 75 vectors. */
int  sdc_embd_db_load_dir(sdc_embd_db *db, const char *dir, int width, const sdc_load_opts *opts,
                          sdc_err *e);
void sdc_embd_db_free(sdc_embd_db *db);

/* ── chunks ── */

#define SDC_PROMPT_CHUNK 75       /* tokens per chunk (77 with BOS and EOS) */
#define SDC_PROMPT_MAX_CHUNKS 32  /* 32 × 75 tokens: far beyond any prompt a person writes */

typedef struct sdc_prompt_chunks {
    int      n;                  /* chunks (>= 1) */
    int32_t *ids;                /* [n, 77]: BOS, tokens, EOS, padding */
    double  *weights;            /* [n, 77]: each token's emphasis (1 at BOS, EOS, padding) */
    const float **rows;          /* [n, 77]: a textual-inversion vector [width] that replaces the
                                    token embedding there (the id is then 0), or NULL */
    int      token_count;        /* A1111's count: 75 per closed chunk + the last one's tokens */
    int      truncated;          /* truncate mode: tokens were cut after 75 */
} sdc_prompt_chunks;

enum { SDC_PROMPT_CHUNKED = 0, SDC_PROMPT_TRUNCATE = 1 };

/* The chunks of text. mode SDC_PROMPT_CHUNKED: A1111's (emphasis, BREAK, comma backtrack);
 * SDC_PROMPT_TRUNCATE: diffusers' (the text as it is, one window, the first 75 tokens; weights
 * all 1). Padding after EOS is pad_id (49407 SD 1.x, 0 SD 2.x). db (may be NULL) supplies the
 * embeddings whose names the text holds. Returns 0, or -1 with e set (parse errors, more than
 * SDC_PROMPT_MAX_CHUNKS chunks, out of memory). */
int  sdc_prompt_chunk(const char *text, int mode, int32_t pad_id, const sdc_embd_db *db,
                      sdc_prompt_chunks *out, sdc_err *e);
void sdc_prompt_chunks_free(sdc_prompt_chunks *c);

/* The "Original" emphasis on one encoded chunk z [77, C]: m0 = mean(z); z *= w[:, None];
 * z *= m0 / mean(z). All-1 weights leave z as it is. (SDXL: A1111 applies it to each tower's
 * chunk on its own, before the two are put side by side; the weights are the same for both.) */
void sdc_prompt_emphasis(float *z, const double *w, int n_tokens, int C);

#endif
