/* main.c — `sdc`: dispatches a subcommand (see cli.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "sdc.h"

typedef struct { const char *name; int (*fn)(int, char **); const char *help; } command;

static void usage(FILE *f, const command *cmds, int n) {
    fprintf(f, "usage: sdc COMMAND [options]   (sdc COMMAND --help for its options)\n\ncommands:\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].help);
}

int main(int argc, char **argv) {
    const command cmds[] = {
        {"generate", sdc_cmd_generate, "text (or image) to image: write a PNG"},
        {"inspect", sdc_cmd_inspect, "show what a checkpoint holds; exit 3 if its pickle is dangerous"},
        {"convert", sdc_cmd_convert, "rewrite a checkpoint as .safetensors (optionally another dtype)"},
        {"tokenize", sdc_cmd_tokenize, "show the CLIP token ids of a prompt"},
        {"compare", sdc_cmd_compare, "compare two checkpoints tensor by tensor (and their images)"},
        {"serve", sdc_cmd_serve, "AUTOMATIC1111's HTTP API (and OpenAI's images endpoint)"},
        {"bench-load", sdc_cmd_bench_load, "measure load time, throughput and memory per file"},
    };
    int n = (int)(sizeof cmds / sizeof cmds[0]);
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout, cmds, n);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("sdc %s\nbf16 kernels: %s (CPU avx512_bf16: %s)\n", sdc_version(), sdc_bf16_kernels(),
               sdc_cpu_has_bf16() ? "yes" : "no");
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name) != 0) continue;
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "sdc: unknown command '%s' (try sdc --help)\n", argv[1]);
    return 2;
}
