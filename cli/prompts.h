/* prompts.h — `sdc generate --prompts FILE.jsonl -o DIR [--shard K/N]`: one JSON object per line
 * ({"prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height", "sampler",
 * "scheduler", "clip_skip"}; <lora:NAME:W> tags in the prompt), line L (1-based) written to
 * DIR/L.png (six digits) by shard (L-1) mod N. An existing output is skipped, so a killed job
 * rerun completes the set; every line is checked before the model loads. */
#ifndef SDC_CLI_PROMPTS_H
#define SDC_CLI_PROMPTS_H

#include "sdc.h"

typedef struct prompts_opts {
    const char *file, *dir;
    int shard_k, shard_n;                        /* this run writes lines with (L-1) mod N == K */
    sdc_model_params mp;                         /* the CLI's model flags */
    sdc_gen_params base;                         /* the CLI's flags: defaults of every line */
    int have_w, have_h, have_steps, have_cfg;    /* given on the command line */
    long long seed;                              /* -s: a line without "seed" gets seed + L - 1 */
    int quiet;
} prompts_opts;

/* Parses "K/N" (0 <= K < N <= 1e6). 0 or -1. */
int sdc_parse_shard(const char *s, int *k, int *n);

/* Runs the file; returns the CLI's exit status (0, or 2 with one line on stderr). */
int sdc_generate_prompts(const prompts_opts *o);

#endif
