/* harness-probe: native TCP probe for the harness.
 *   harness-probe client [--script FILE]
 *   harness-probe server --mode MODE --listen ADDR:PORT [--backlog N] [--reuseaddr 0|1] [--reuseport 0|1] | --list-modes
 *   harness-probe watch [--interval-ms N] [--port P] [--no-stdin] [--netns PATH]...
 *   harness-probe delay --queue N --delay-us D [--jitter-us J] [--seed S]
 *   harness-probe nursery [--child-ehash N] -- PROGRAM [ARG...]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "src/client.h"
#include "src/delay.h"
#include "src/nursery.h"
#include "src/server.h"
#include "src/watch.h"

#define PROBE_VERSION 1

static int usage(FILE *f)
{
    fputs("usage:\n"
          "  harness-probe client [--script FILE]          step script (JSON) on stdin or FILE; JSON result on stdout\n"
          "  harness-probe server --mode MODE --listen ADDR:PORT [--backlog N] [--reuseaddr 0|1] [--reuseport 0|1]\n"
          "        MODE: ", f);
    server_mode_names(f, " | ");
    fputs("\n"
          "  harness-probe server --list-modes             the modes as one JSON array of {name, summary}\n"
          "  harness-probe watch [--interval-ms N] [--port P] [--no-stdin] [--netns PATH [--port P] [--family 4|all]]...\n"
          "  harness-probe delay --queue N --delay-us D [--jitter-us J] [--seed S]   NFQUEUE delayer\n"
          "  harness-probe nursery [--child-ehash N] -- PROGRAM [ARG...]   PROGRAM in a new network namespace (its children get their own TCP hash)\n"
          "  harness-probe --version\n"
          "exit codes: 0 ran (network errors are data), 1 internal failure, 2 bad usage/input\n", f);
    return 2;
}

/* With HARNESS_DIE_WITH_PARENT=1 (set by the harness), the probe dies with the process that
 * started it: a harness killed with SIGKILL then leaves no server or 5 ms watcher running in
 * its namespaces until `harness gc` deletes them. */
static void die_with_parent(void)
{
    const char *v = getenv("HARNESS_DIE_WITH_PARENT");
    if (!v || strcmp(v, "1")) return;
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() != parent) _exit(1); /* parent already gone */
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    die_with_parent();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "client")) return client_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "server")) return server_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "watch")) return watch_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "delay")) return delay_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "nursery")) return nursery_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "--version")) { printf("{\"probe\":\"harness-probe\",\"version\":%d}\n", PROBE_VERSION); return 0; }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "harness-probe: unknown mode '%s'\n", cmd);
    return usage(stderr);
}
