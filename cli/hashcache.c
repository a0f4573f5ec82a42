/* hashcache.c — the model-hash cache of hashcache.h: look up, hash on a miss, rewrite. */
#include "cli/hashcache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/sha256.h"

#define CACHE_SUBDIR "sdc"
#define CACHE_FILE   "model-hashes.tsv"
#define CACHE_HEADER "# sdc model hashes: sha256\tsize\tmtime_ns\tinode\tpath\n"
/* Longest line sdc writes: 64 hex digits, three 20-digit numbers, 4 tabs, a path, a newline. */
#define CACHE_MAX_LINE (64 + 3 * 20 + 4 + PATH_MAX + 1)
/* A cache file bigger than sdc can write is not ours to parse: it is ignored (and replaced). */
#define CACHE_MAX_BYTES ((size_t)(SDC_HASHCACHE_MAX_ENTRIES + 1) * CACHE_MAX_LINE)

/* What identifies one version of a file: its absolute path, size, mtime and inode. */
typedef struct hc_key { const char *path; unsigned long long size, ino; long long mtime_ns; } hc_key;
typedef struct hc_entry { hc_key k; char hex[65]; } hc_entry;
/* The parsed cache file: text owns the bytes every entry's path points into. */
typedef struct hc_cache { char *text; hc_entry *e; size_t n; } hc_cache;

static void key_of(const struct stat *st, const char *abs, hc_key *k) {
    k->path = abs;
    k->size = (unsigned long long)st->st_size;
    k->ino = (unsigned long long)st->st_ino;
    k->mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int key_eq(const hc_key *a, const hc_key *b) {
    return a->size == b->size && a->ino == b->ino && a->mtime_ns == b->mtime_ns && !strcmp(a->path, b->path);
}

/* The cache directory (malloc'd) from the environment, or NULL when there is none to use. */
static char *cache_dir(void) {
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *d = NULL;
    if (x && x[0] == '/') { if (asprintf(&d, "%s/" CACHE_SUBDIR, x) < 0) d = NULL; }
    else if (home && home[0] == '/') { if (asprintf(&d, "%s/.cache/" CACHE_SUBDIR, home) < 0) d = NULL; }
    return d;
}

/* mkdir -p dir (new directories 0700, as XDG asks). Returns 0 when dir is a directory after. */
static int make_dirs(char *dir) {
    for (char *s = dir + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        int bad = mkdir(dir, 0700) && errno != EEXIST;
        *s = c;
        if (bad) return -1;
        if (!c) break;
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* Parses one line (NUL-terminated, no newline) into e; 0, or -1 when it is not an entry. */
static int parse_line(char *line, hc_entry *e) {
    char *f[5], *s = line;
    for (int i = 0; i < 4; i++) {   /* four tab-ended fields, then the path (which may hold tabs) */
        f[i] = s;
        if (!(s = strchr(s, '\t'))) return -1;
        *s++ = 0;
    }
    f[4] = s;
    if (strlen(f[0]) != 64 || strspn(f[0], "0123456789abcdef") != 64 || f[4][0] != '/') return -1;
    char *end;
    errno = 0;
    e->k.size = strtoull(f[1], &end, 10);
    if (*end || !f[1][0] || f[1][0] == '-') return -1;
    e->k.mtime_ns = strtoll(f[2], &end, 10);
    if (*end || !f[2][0]) return -1;
    e->k.ino = strtoull(f[3], &end, 10);
    if (*end || !f[3][0] || f[3][0] == '-' || errno) return -1;
    memcpy(e->hex, f[0], 65);
    e->k.path = f[4];
    return 0;
}

/* Reads the entries of the cache file at file into c (empty when there is none or it cannot be
 * read: a broken cache is a cold one). Malformed lines are skipped. */
static void cache_load(const char *file, hc_cache *c) {
    memset(c, 0, sizeof *c);
    FILE *f = fopen(file, "rb");
    if (!f) return;
    char *t = malloc(CACHE_MAX_BYTES + 1);
    size_t len = t ? fread(t, 1, CACHE_MAX_BYTES + 1, f) : 0;
    int bad = !t || ferror(f) || len > CACHE_MAX_BYTES;
    fclose(f);
    size_t cap = len / 64 + 1;   /* an entry line is longer than 64 bytes */
    hc_entry *e = bad ? NULL : malloc(cap * sizeof *e);
    if (!e) { free(t); return; }
    t[len] = 0;
    size_t n = 0;
    for (char *line = t; line < t + len;) {
        char *nl = memchr(line, '\n', (size_t)(t + len - line));
        if (!nl) break;   /* a last line without its newline was cut short: ignore it */
        *nl = 0;
        if (strlen(line) == (size_t)(nl - line) && line[0] != '#' && n < cap && parse_line(line, &e[n]) == 0) n++;
        line = nl + 1;
    }
    c->text = t;
    c->e = e;
    c->n = n;
}

static void cache_free(hc_cache *c) { free(c->text); free(c->e); }

/* Rewrites the cache file at file (in dir) as c's entries without those for k's path, then
 * (k, hex): the newest SDC_HASHCACHE_MAX_ENTRIES, through a temp file and rename. Failures are
 * silent: the cache is only a cache. */
static void cache_store(const char *dir, const char *file, const hc_cache *c, const hc_key *k, const char *hex) {
    char *tmp = NULL;
    if (asprintf(&tmp, "%s/." CACHE_FILE ".XXXXXX", dir) < 0) return;
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) { if (fd >= 0) { close(fd); unlink(tmp); } free(tmp); return; }
    size_t keep = 0, skip;   /* entries of other paths kept, the oldest `skip` of them dropped */
    for (size_t i = 0; i < c->n; i++) keep += strcmp(c->e[i].k.path, k->path) != 0;
    skip = keep >= SDC_HASHCACHE_MAX_ENTRIES ? keep - (SDC_HASHCACHE_MAX_ENTRIES - 1) : 0;
    fputs(CACHE_HEADER, f);
    for (size_t i = 0; i < c->n; i++) {
        const hc_entry *e = &c->e[i];
        if (!strcmp(e->k.path, k->path) || (skip && skip--)) continue;
        fprintf(f, "%s\t%llu\t%lld\t%llu\t%s\n", e->hex, e->k.size, e->k.mtime_ns, e->k.ino, e->k.path);
    }
    fprintf(f, "%s\t%llu\t%lld\t%llu\t%s\n", hex, k->size, k->mtime_ns, k->ino, k->path);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, file)) unlink(tmp);
    free(tmp);
}

int sdc_model_hash(const char *path, char hex[65]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st, st2;
    char *abs = NULL, *dir = NULL, *file = NULL;
    hc_cache c = {0};
    hc_key k;
    /* Only a regular file with a storable absolute path is cached. */
    int use = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (abs = realpath(path, NULL)) &&
              !strchr(abs, '\n') && strlen(abs) < PATH_MAX && (dir = cache_dir()) &&
              asprintf(&file, "%s/" CACHE_FILE, dir) >= 0;
    if (!use) file = NULL;   /* asprintf leaves it undefined on failure */
    if (use) {
        key_of(&st, abs, &k);
        cache_load(file, &c);
        for (size_t i = c.n; i-- > 0;) {   /* the newest matching entry */
            if (!key_eq(&c.e[i].k, &k)) continue;
            memcpy(hex, c.e[i].hex, 65);
            cache_free(&c); free(file); free(dir); free(abs); close(fd);
            return 0;
        }
    }
    int rc = sdc_sha256_fd(fd, hex), e = errno;
    /* Remember it only when the file did not change while it was read. */
    if (rc == 0 && use && fstat(fd, &st2) == 0 && st2.st_size == st.st_size &&
        st2.st_mtim.tv_sec == st.st_mtim.tv_sec && st2.st_mtim.tv_nsec == st.st_mtim.tv_nsec && make_dirs(dir) == 0)
        cache_store(dir, file, &c, &k, hex);
    cache_free(&c); free(file); free(dir); free(abs);
    close(fd);
    errno = e;
    return rc;
}
