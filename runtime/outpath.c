/* outpath.c — the output-path check of outpath.h. */
#include "runtime/outpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_name(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISLNK(m)) return "a symbolic link";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int sdc_output_check(const char *path, int may_replace, sdc_err *e) {
    if (!path || !*path) return sdc_errf(e, "output: empty file name");
    size_t n = strlen(path);
    if (path[n - 1] == '/') return sdc_errf(e, "%s: is a folder name: give a file name", path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return sdc_errf(e, "%s: is a directory: give a file name", path);
        if (S_ISLNK(st.st_mode))
            return sdc_errf(e, "%s: is a symbolic link: refusing to replace it (give the file it points "
                            "to, or another name)", path);
        if (!S_ISREG(st.st_mode))
            return sdc_errf(e, "%s: exists and is %s: sdc only writes regular files, refusing to "
                            "replace it", path, kind_name(st.st_mode));
        if (!may_replace) return sdc_errf(e, "%s: already exists", path);
    } else if (errno != ENOENT) {
        return sdc_errf(e, "%s: cannot write: %s", path, strerror(errno));
    }
    /* the folder: the temp file is created there */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return sdc_errf(e, "%s: out of memory", path);
    int rc = 0;
    if (stat(dir, &st) != 0)
        rc = sdc_errf(e, "%s: folder %s: %s", path, dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = sdc_errf(e, "%s: %s is not a folder", path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = sdc_errf(e, "%s: cannot write in folder %s: %s", path, dir, strerror(errno));
    free(dir);
    return rc;
}
