/* `harness-probe nursery [--child-ehash N] -- PROGRAM [ARG...]`: runs PROGRAM in a network
 * namespace of its own whose net.ipv4.tcp_child_ehash_entries is N, so the namespaces PROGRAM
 * creates (`ip -batch -` with `netns add` lines) get a TCP hash of their own instead of sharing
 * the host's global one (Linux >= 6.1; net/ipv4/sysctl_net_ipv4.c, inet_pernet_hashinfo_alloc).
 *
 * One process where the harness used four (ip netns add, sysctl in it, ip netns add from it, ip
 * netns del): unshare(CLONE_NEWNET), write the sysctl (a /proc/sys/net file opened now belongs to
 * the new namespace), then exec PROGRAM. The nursery has no name and no mount: it disappears with
 * the process, so nothing is left to journal or to collect even after a SIGKILL.
 *
 * Exit: PROGRAM's own status; 1 if the namespace cannot be made or PROGRAM cannot be run; 2 on bad
 * usage. A kernel without the sysctl (< 6.1) is said on stderr and PROGRAM still runs (its
 * namespaces then share the global hash). */
#define _GNU_SOURCE
#include "nursery.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int usage_nursery(void)
{
    fputs("usage: harness-probe nursery [--child-ehash N] -- PROGRAM [ARG...]\n"
          "  runs PROGRAM in a new network namespace whose tcp_child_ehash_entries is N (0: unset)\n", stderr);
    return 2;
}

int nursery_main(int argc, char **argv)
{
    long long ehash = 0;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--child-ehash") && i + 1 < argc) {
            if (parse_int_range(argv[++i], 0, 1 << 24, &ehash) < 0) {
                fputs("harness-probe nursery: --child-ehash needs a number in 0..16777216\n", stderr);
                return 2;
            }
        } else {
            fprintf(stderr, "harness-probe nursery: unknown argument '%s'\n", argv[i]);
            return usage_nursery();
        }
    }
    if (i + 1 >= argc) return usage_nursery();
    char **prog = argv + i + 1;
    if (unshare(CLONE_NEWNET) < 0) {
        fprintf(stderr, "harness-probe nursery: unshare(CLONE_NEWNET): %s\n", strerror(errno));
        return 1;
    }
    if (ehash > 0) {
        int fd = open("/proc/sys/net/ipv4/tcp_child_ehash_entries", O_WRONLY | O_CLOEXEC);
        char v[32];
        int n = snprintf(v, sizeof v, "%lld\n", ehash);
        if (fd < 0 || write(fd, v, (size_t)n) != n)
            fprintf(stderr, "harness-probe nursery: no per-namespace TCP hash (tcp_child_ehash_entries: %s): the namespaces share the global one\n", strerror(errno));
        if (fd >= 0) close(fd);
    }
    execvp(prog[0], prog);
    fprintf(stderr, "harness-probe nursery: %s: %s\n", prog[0], strerror(errno));
    return 1;
}
