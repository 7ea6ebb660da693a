/* harness-probe: native TCP probe for the harness.
 *   harness-probe client [--script FILE]
 *   harness-probe server --mode MODE --listen ADDR:PORT [--backlog N]
 *   harness-probe watch [--interval-ms N] [--port P] [--no-stdin]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include "src/client.h"
#include "src/server.h"
#include "src/watch.h"

#define PROBE_VERSION 1

static int usage(FILE *f)
{
    fputs("usage:\n"
          "  harness-probe client [--script FILE]          step script (JSON) on stdin or FILE; JSON result on stdout\n"
          "  harness-probe server --mode MODE --listen ADDR:PORT [--backlog N]\n"
          "        MODE: echo | no-accept | no-close | sink | close-on-accept | close-unread\n"
          "  harness-probe watch [--interval-ms N] [--port P] [--no-stdin]\n"
          "  harness-probe --version\n"
          "exit codes: 0 ran (network errors are data), 1 internal failure, 2 bad usage/input\n", f);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "client")) return client_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "server")) return server_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "watch")) return watch_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "--version")) { printf("{\"probe\":\"harness-probe\",\"version\":%d}\n", PROBE_VERSION); return 0; }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "harness-probe: unknown mode '%s'\n", cmd);
    return usage(stderr);
}
