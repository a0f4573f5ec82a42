/* demo.c — where the demo model is (demo.h). The install puts it at <prefix>/share/sdc/toy-sd1
 * and the binary at <prefix>/bin, so a copied install tree finds it without the source. */
#include "cli/demo.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SDC_DEMO_REL
#define SDC_DEMO_REL "../share/sdc/toy-sd1"   /* from the binary's folder (CMake passes its own) */
#endif
#define DEMO_FILE "toy-sd1.safetensors"

/* path (resolved) if the file there is readable */
static const char *readable(char *path, size_t cap, const char *dir) {
    char tmp[PATH_MAX + 64];
    if (snprintf(tmp, sizeof tmp, "%s/%s", dir, DEMO_FILE) >= (int)sizeof tmp || access(tmp, R_OK)) return NULL;
    char *r = realpath(tmp, NULL);
    snprintf(path, cap, "%s", r ? r : tmp);
    free(r);
    return path;
}

const char *cli_demo_model(void) {
    static char path[PATH_MAX + 64];
    char exe[PATH_MAX], dir[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(dir, sizeof dir, "%s/%s", exe, SDC_DEMO_REL);
            if (readable(path, sizeof path, dir)) return path;
        }
    }
#ifdef SDC_SOURCE_DIR
    if (readable(path, sizeof path, SDC_SOURCE_DIR "/assets/toy-sd1")) return path;
#endif
    if (readable(path, sizeof path, "assets/toy-sd1")) return path;
    return NULL;
}
