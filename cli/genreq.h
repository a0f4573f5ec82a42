/* genreq.h — one generation request as a JSON object, the way AUTOMATIC1111's API, OpenAI's
 * images endpoint and sdc's prompt files (--prompts, one object per line) spell it, checked field
 * by field into sdc_gen_params. Used by `sdc serve` and `sdc generate --prompts`.
 *
 * Checks are the CLI's: types exact (a number where a number is due, integers integral), numbers
 * in the CLI's ranges, sizes multiples of 8, names from the known lists. Unknown fields are
 * ignored (AUTOMATIC1111's clients send many we have no use for). */
#ifndef SDC_CLI_GENREQ_H
#define SDC_CLI_GENREQ_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "sdc.h"

/* Named limits. */
#define GENREQ_MAX_IMAGES   16                  /* batch_size × n_iter (or OpenAI's n) per request */
#define GENREQ_MAX_PIXELS   (2048L * 2048L)     /* width × height: a larger image needs > 10 GB */
#define GENREQ_MAX_PROMPT   (64 * 1024)         /* bytes; the encoder refuses long ones anyway */
#define GENREQ_MAX_SEED     9007199254740991LL  /* 2^53 − 1: every JSON number up to it is exact */

typedef enum { GENREQ_TXT2IMG, GENREQ_IMG2IMG, GENREQ_OPENAI, GENREQ_LINE } genreq_kind;

typedef struct genreq {
    sdc_gen_params gp;        /* prompt/negative_prompt point into the copies below */
    char *prompt, *negative;  /* owned */
    long long seed;           /* -1: random (the caller picks one) */
    int n_images;             /* batch_size × n_iter; image i gets seed + i */
    int have_w, have_h, have_steps, have_cfg;   /* given, else the model's defaults apply */
    char *model;              /* sd_model_checkpoint / OpenAI model asked for (NULL: current) */
    uint8_t *init_rgb;        /* img2img: the decoded init image (owned), gp.init_rgb points here */
    uint8_t *mask;            /* img2img with a mask (inpainting): grey bytes (owned), gp.mask */
    int openai_b64;           /* OpenAI: response_format b64_json (the only one served) */
} genreq;

/* Parses obj into r (zeroed first; base supplies the defaults of fields absent). On error returns
 * -1 with one line in e and *field (may be NULL) naming the JSON field at fault, or NULL when no
 * single field is. r is always safe to genreq_free. */
int genreq_parse(const cJSON *obj, genreq_kind kind, const sdc_gen_params *base, genreq *r,
                 const char **field, sdc_err *e);

/* Fills what the request left open from the model's recommendations (then 512x512, 20 steps,
 * cfg 7) and checks the final size. 0 or -1 with e. */
int genreq_apply_defaults(genreq *r, const sdc_model *m, sdc_err *e);

void genreq_free(genreq *r);

/* The <lora:NAME:W> tags of a prompt as one string ("NAME:W\n..." in order; "" when none): a
 * model context opened with lora_prompt serves exactly the prompts with the same key. malloc'd;
 * NULL with e when a tag is malformed or out of memory. */
char *genreq_lora_key(const char *prompt, sdc_err *e);

/* 1 when the JSON text buf[0..n) nests arrays/objects no deeper than max_depth (strings and
 * escapes skipped; the text itself is not validated: cJSON does that). */
int genreq_json_depth_ok(const char *buf, size_t n, int max_depth);

#endif
