/* prompts.c — `sdc generate --prompts FILE.jsonl`: a prompt file split over shards, resumable. */
#include "cli/prompts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/a1111.h"
#include "cli/genreq.h"
#include "cli/hashcache.h"
#include "pipeline/image.h"

#define PROMPTS_MAX_LINE  (1L << 20)      /* bytes in one line: a prompt is at most 64 KiB */
#define PROMPTS_MAX_LINES 100000000L      /* 8 digits of file names at most */

int sdc_parse_shard(const char *s, int *k, int *n) {
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (errno || end == s || *end != '/') return -1;
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (errno || end == p || *end || b < 1 || b > 1000000 || a < 0 || a >= b) return -1;
    *k = (int)a;
    *n = (int)b;
    return 0;
}

typedef struct job { long line; genreq r; char *key; } job;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Reads and checks every line; keeps this shard's lines whose output is missing. */
static int read_jobs(const prompts_opts *o, job **out, long *n_out, long *n_total, long *n_done) {
    FILE *f = fopen(o->file, "rb");
    if (!f) { fprintf(stderr, "sdc: %s: cannot open: %s\n", o->file, strerror(errno)); return -1; }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    long line = 0, nj = 0, capj = 0;
    job *jobs = NULL;
    int rc = 0;
    *n_total = *n_done = 0;
    while (!rc && (len = getline(&buf, &cap, f)) >= 0) {
        line++;
        if (line > PROMPTS_MAX_LINES) { fprintf(stderr, "sdc: %s: more than %ld lines\n", o->file, PROMPTS_MAX_LINES); rc = -1; break; }
        if (len > PROMPTS_MAX_LINE) { fprintf(stderr, "sdc: %s:%ld: line longer than %ld bytes\n", o->file, line, PROMPTS_MAX_LINE); rc = -1; break; }
        size_t n = (size_t)len;
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) n--;
        size_t s0 = 0;
        while (s0 < n && (buf[s0] == ' ' || buf[s0] == '\t')) s0++;
        if (s0 == n) continue;   /* blank: no image, but it keeps its number */
        if (memchr(buf + s0, 0, n - s0) || !genreq_json_depth_ok(buf + s0, n - s0, 32)) {
            fprintf(stderr, "sdc: %s:%ld: not a JSON object (NUL byte or nested too deep)\n", o->file, line);
            rc = -1;
            break;
        }
        cJSON *obj = cJSON_ParseWithLength(buf + s0, n - s0);
        if (!obj) { fprintf(stderr, "sdc: %s:%ld: not valid JSON\n", o->file, line); rc = -1; break; }
        job j = {.line = line};
        const char *field = NULL;
        sdc_err e = {{0}};
        int bad = genreq_parse(obj, GENREQ_LINE, &o->base, &j.r, &field, &e);
        cJSON_Delete(obj);
        if (!bad && !(j.key = genreq_lora_key(j.r.gp.prompt, &e))) bad = 1;
        if (bad) {
            fprintf(stderr, "sdc: %s:%ld: %s\n", o->file, line, e.msg);
            genreq_free(&j.r);
            rc = -1;
            break;
        }
        (*n_total)++;
        char path[4096];
        snprintf(path, sizeof path, "%s/%06ld.png", o->dir, line);
        struct stat st;
        int mine = (line - 1) % o->shard_n == o->shard_k;
        if (mine && stat(path, &st) == 0) {
            if (!S_ISREG(st.st_mode)) { fprintf(stderr, "sdc: %s: exists and is not a regular file\n", path); rc = -1; }
            (*n_done)++;
            mine = 0;
        }
        if (!mine) { genreq_free(&j.r); free(j.key); continue; }
        if (j.r.seed < 0) j.r.seed = o->seed >= 0 ? o->seed + line - 1 : -1;
        if (nj == capj) {
            capj = capj ? capj * 2 : 64;
            job *nw = realloc(jobs, sizeof *jobs * (size_t)capj);
            if (!nw) { fprintf(stderr, "sdc: out of memory\n"); genreq_free(&j.r); free(j.key); rc = -1; break; }
            jobs = nw;
        }
        jobs[nj++] = j;
    }
    if (!rc && ferror(f)) { fprintf(stderr, "sdc: %s: read error\n", o->file); rc = -1; }
    free(buf);
    fclose(f);
    if (rc) {
        for (long i = 0; i < nj; i++) { genreq_free(&jobs[i].r); free(jobs[i].key); }
        free(jobs);
        return -1;
    }
    *out = jobs;
    *n_out = nj;
    return 0;
}

int sdc_generate_prompts(const prompts_opts *o) {
    struct stat st;
    if (stat(o->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sdc: %s: not a folder (with --prompts, -o names the output folder)\n", o->dir);
        return 2;
    }
    job *jobs = NULL;
    long nj = 0, total = 0, done = 0;
    if (read_jobs(o, &jobs, &nj, &total, &done)) return 2;
    if (!o->quiet)
        fprintf(stderr, "sdc: %s: %ld prompts; shard %d/%d: %ld to generate, %ld already written\n",
                o->file, total, o->shard_k, o->shard_n, nj, done);
    int rc = 0;
    sdc_model *m = NULL;
    char *loaded = NULL;
    char hash[65] = "", model_name[256];
    if (sdc_model_hash(o->mp.model_path, hash)) hash[0] = 0;
    sdc_a1111_model_name(o->mp.model_path, model_name, sizeof model_name);
    uint8_t *rgb = NULL;
    for (long i = 0; rc == 0 && i < nj; i++) {
        job *j = &jobs[i];
        sdc_err e = {{0}};
        if (!m || strcmp(loaded, j->key)) {   /* another set of LoRA tags: the model with those */
            sdc_model_close(m);
            sdc_model_params mp = o->mp;
            mp.lora_prompt = j->key[0] ? j->r.gp.prompt : NULL;
            if (!(m = sdc_model_open(&mp, &e))) { fprintf(stderr, "sdc: %s:%ld: %s\n", o->file, j->line, e.msg); rc = 2; break; }
            loaded = j->key;
        }
        genreq *r = &j->r;
        r->have_w |= o->have_w; r->have_h |= o->have_h;
        r->have_steps |= o->have_steps; r->have_cfg |= o->have_cfg;
        if (genreq_apply_defaults(r, m, &e)) { fprintf(stderr, "sdc: %s:%ld: %s\n", o->file, j->line, e.msg); rc = 2; break; }
        if (r->seed < 0) r->seed = (long long)(time(NULL) & 0x7fffffff);
        r->gp.seed = (uint64_t)r->seed;
        free(rgb);
        if (!(rgb = malloc((size_t)r->gp.width * r->gp.height * 3))) { fprintf(stderr, "sdc: out of memory\n"); rc = 2; break; }
        double t0 = now_s();
        if (sdc_generate(m, &r->gp, rgb, &e)) { fprintf(stderr, "sdc: %s:%ld: %s\n", o->file, j->line, e.msg); rc = 2; break; }
        char *params = sdc_a1111_with_lora_hashes(sdc_a1111_infotext(&r->gp, hash, model_name, 0), m);
        char path[4096];
        snprintf(path, sizeof path, "%s/%06ld.png", o->dir, j->line);
        if (!params) { fprintf(stderr, "sdc: out of memory\n"); rc = 2; break; }
        if (sdc_write_png(path, rgb, r->gp.width, r->gp.height, "parameters", params, &e)) {
            fprintf(stderr, "sdc: %s\n", e.msg);
            rc = 2;
        } else if (!o->quiet) {
            fprintf(stderr, "sdc: wrote %s (line %ld, seed %llu, %.1f s) [%ld/%ld]\n", path, j->line,
                    (unsigned long long)r->gp.seed, now_s() - t0, i + 1, nj);
        }
        free(params);
    }
    free(rgb);
    sdc_model_close(m);
    for (long i = 0; i < nj; i++) { genreq_free(&jobs[i].r); free(jobs[i].key); }
    free(jobs);
    return rc;
}
