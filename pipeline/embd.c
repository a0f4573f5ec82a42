/* embd.c — textual-inversion embeddings from a directory (stable-diffusion.cpp's --embd-dir):
 * each file's stem is a word the prompt may hold, its vectors replace that word's tokens
 * (pipeline/prompt.c). Files go through the tensor store like any model file. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/prompt.h"
#include "runtime/store.h"
#include "tokenizer/tokenizer.h"

#define EMBD_MAX_FILES 4096   /* far more embeddings than anyone keeps in one folder */

static const char *const EXTS[] = {".pt", ".safetensors", ".bin", ".ckpt"};

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const sdc_embedding *)a)->name, ((const sdc_embedding *)b)->name);
}

void sdc_embd_db_free(sdc_embd_db *db) {
    for (size_t i = 0; db && i < db->n; i++) {
        free(db->e[i].name);
        free(db->e[i].ids);
        free(db->e[i].vec);
    }
    if (db) { free(db->e); db->e = NULL; db->n = 0; }
}

/* The embedding's vectors in st: emb_params (safetensors), string_to_param.* (A1111 .pt),
 * clip_l / clip_g (SDXL), or the only tensor; the first that is `width` wide. NULL if none. */
static const sdc_tensor *pick(const sdc_store *st, int width) {
    const sdc_tensor *c[5] = {sdc_store_get(st, "emb_params"), NULL, sdc_store_get(st, "clip_l"),
                              sdc_store_get(st, "clip_g"), NULL};
    for (size_t i = 0; i < sdc_store_count(st); i++)
        if (!strncmp(sdc_store_at(st, i)->name, "string_to_param.", 16)) { c[1] = sdc_store_at(st, i); break; }
    if (sdc_store_count(st) == 1) c[4] = sdc_store_at(st, 0);
    for (int i = 0; i < 5; i++) {
        const sdc_tensor *t = c[i];
        if (t && sdc_dtype_is_float(t->dtype) && (t->ndim == 1 || t->ndim == 2) &&
            t->shape[t->ndim - 1] == width && t->numel > 0)
            return t;
    }
    return NULL;
}

int sdc_embd_db_load_dir(sdc_embd_db *db, const char *dir, int width, const sdc_load_opts *opts,
                         sdc_err *e) {
    memset(db, 0, sizeof *db);
    DIR *d = opendir(dir);
    if (!d) return sdc_errf(e, "%s: cannot open the embedding directory", dir);
    struct dirent *de;
    size_t cap = 0;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        size_t len = strlen(de->d_name), k = 0, el = 0;
        for (; k < sizeof EXTS / sizeof *EXTS; k++) {
            el = strlen(EXTS[k]);
            if (len > el && !strcmp(de->d_name + len - el, EXTS[k])) break;
        }
        if (k == sizeof EXTS / sizeof *EXTS || de->d_name[0] == '.') continue;
        if (db->n == EMBD_MAX_FILES) { rc = sdc_errf(e, "%s: more than %d embeddings", dir, EMBD_MAX_FILES); break; }
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path) continue;
        sdc_store *st = sdc_store_new();
        if (!st || sdc_store_open(st, path, opts, e)) { sdc_store_close(st); rc = -1; break; }
        const sdc_tensor *t = pick(st, width);
        if (!t) { sdc_store_close(st); continue; }   /* for an other text encoder width */
        int rows = t->ndim == 2 ? (int)t->shape[0] : 1;
        if (t->ndim == 2 && t->shape[0] > SDC_PROMPT_CHUNK) {
            rc = sdc_errf(e, "%s: %lld vectors, more than a chunk's %d", path, (long long)t->shape[0],
                          SDC_PROMPT_CHUNK);
            sdc_store_close(st);
            break;
        }
        if (db->n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            sdc_embedding *p = realloc(db->e, nc * sizeof *p);
            if (!p) { rc = sdc_errf(e, "out of memory"); sdc_store_close(st); break; }
            db->e = p;
            cap = nc;
        }
        sdc_embedding *x = &db->e[db->n];
        memset(x, 0, sizeof *x);
        x->name = strndup(de->d_name, len - el);
        x->vec = malloc((size_t)t->numel * sizeof(float));
        x->rows = rows;
        x->width = width;
        if (!x->name || !x->vec) rc = sdc_errf(e, "out of memory");
        else if (sdc_tensor_to_f32(t, x->vec, e)) rc = sdc_err_prefix(e, "%s", path);
        else if (sdc_tokenize(x->name, &x->ids, &x->n_ids, e)) rc = sdc_err_prefix(e, "%s", path);
        sdc_store_close(st);
        db->n++;
        if (!rc && x->n_ids == 0) {   /* a name without tokens cannot occur in a prompt */
            free(x->name); free(x->ids); free(x->vec);
            db->n--;
        }
    }
    closedir(d);
    if (rc) { sdc_embd_db_free(db); return -1; }
    if (db->n) qsort(db->e, db->n, sizeof *db->e, name_cmp);
    return 0;
}
