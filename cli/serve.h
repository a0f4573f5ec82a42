/* serve.h — the engine behind `sdc serve`: the models offered, one loaded model context, a
 * bounded FIFO queue of generation jobs and the one worker thread that runs them, progress and
 * interrupt. The HTTP side (cmd_serve.c) turns requests into genreqs, submits them and waits.
 *
 * Ownership: a job is shared by the waiting request and the worker; each side releases it once
 * (serve_release), and the last release frees it. A job still queued when its client leaves is
 * dropped from the queue (serve_abandon); a running one is interrupted. */
#ifndef SDC_CLI_SERVE_H
#define SDC_CLI_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/genreq.h"
#include "sdc.h"

typedef struct serve_model {
    char *name;          /* the file name without extension: what clients ask for */
    char *path;          /* never built from a request: only from the command line or the scan */
    char *config;        /* NAME.config.json beside it, or --config; NULL if none */
    char hash[65];       /* sha256 hex, "" until computed (on first load) */
} serve_model;

typedef struct serve_opts {
    const char *model_path, *config_path;   /* -m, --config */
    const char *models_dir;                 /* --models-dir: every .safetensors / .ckpt in it */
    const char *lora_dir, *embd_dir;        /* listed (loading them is another change) */
    int threads, low_mem, max_queue;
} serve_opts;

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

typedef struct serve_job {
    genreq req;                 /* the request (owned) */
    int model;                  /* index into the model list */
    int state;                  /* JOB_*; read under the engine's lock */
    /* results, written by the worker before state = JOB_DONE */
    int n_done;                 /* images finished (fewer than asked when interrupted) */
    uint8_t **png; size_t *png_len; char **infotext; uint64_t *seeds;
    int interrupted;
    int status;                 /* 0 ok, else the HTTP status of the failure (422, 500) */
    char error[1024];
    char job_timestamp[16];     /* YYYYmmddHHMMSS, as AUTOMATIC1111's info carries it */
    int refs;
    struct serve_job *next;
} serve_job;

typedef struct serve serve;

/* The model's sha256 hex into out ("" while not yet computed: it is, when first loaded). */
void serve_model_hash(serve *s, int i, char out[65]);

/* Scans the models, loads the first (-m, or the first file of --models-dir by name) and starts
 * the worker. NULL with e on error. */
serve *serve_open(const serve_opts *o, sdc_err *e);
/* Shutting down in two steps: serve_shutdown interrupts the running job and ends every queued one
 * (status 503), so that waiting requests return; then, once no request waits any more,
 * serve_close stops the worker and frees everything. NULL is fine for both. */
void   serve_shutdown(serve *s);
void   serve_close(serve *s);

int                serve_model_count(const serve *s);
const serve_model *serve_model_at(const serve *s, int i);
int                serve_find_model(const serve *s, const char *name);   /* name, title or file name; -1 */
int                serve_current_model(serve *s);  /* what sd_model_checkpoint says now */
void               serve_set_model(serve *s, int i);
int                serve_clip_skip(serve *s);
void               serve_set_clip_skip(serve *s, int clip_skip);
const serve_opts  *serve_options(const serve *s);

/* Queues r (moved into the job: r is zeroed) for model index `model` (-1: the current one).
 * Returns the job (refs: the caller's and the worker's), or NULL when the queue is full or out of
 * memory, with *retry_after the seconds a client should wait (0 when out of memory). */
serve_job *serve_submit(serve *s, genreq *r, int model, int *retry_after);

/* Waits for j to finish. gone(user) is asked every 100 ms; when it says the client left, a queued
 * job leaves the queue and a running one is interrupted: returns -1 then, else 0. */
int  serve_wait(serve *s, serve_job *j, int (*gone)(void *), void *user);
void serve_release(serve *s, serve_job *j);

void serve_interrupt(serve *s);   /* the running job stops at its next step */

/* AUTOMATIC1111's /sdapi/v1/progress object. */
cJSON *serve_progress_json(serve *s);

#endif
