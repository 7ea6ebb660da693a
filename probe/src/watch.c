/* `harness-probe watch`: polls the TCP socket table via NETLINK_SOCK_DIAG and prints one NDJSON
 * line per change.
 *
 * One process can watch several network namespaces (`--netns PATH`, repeated): it enters each in
 * turn (setns), creates that namespace's sock_diag socket and opens its /proc/net/snmp and
 * /proc/net/netstat there, then goes back to the namespace it started in. A netlink socket
 * belongs to the namespace it was created in, and a /proc/net file to the namespace it was opened
 * in (the seq_file holds that net: re-reading it from offset 0 later shows the same namespace,
 * wherever the process is by then; probe/test/watch-netns.sh checks both). So one timerfd wake-up
 * serves every namespace of a run, and the counters need no process living in each namespace:
 * a stdin line `counters` prints them.
 *
 * A connection can open and close between two polls (a request over loopback-fast veth takes
 * under a millisecond). So each namespace also has a socket in the sock_diag destroy groups
 * (SKNLGRP_INET_TCP_DESTROY, net/core/sock_diag.c sock_diag_broadcast_destroy): the kernel sends
 * every full TCP socket of that namespace as it is freed. A destroyed socket the table knows is
 * polled for at once (its GONE, or the TIME_WAIT that replaced it, comes without waiting for the
 * tick); one the table never saw is reported as seen only then: state CLOSE, then GONE. */
#define _GNU_SOURCE
#include "watch.h"
#include "json.h"
#include "names.h"
#include "util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define NBUCKETS 4096       /* per namespace; the sweep walks the entry list, not the buckets */
#define MAX_NS 64

struct key {
    uint8_t l[16], r[16];   /* IPv4 stored as v4-mapped IPv6 */
    uint16_t lp, rp;        /* host order */
};

struct entry {
    struct key k;
    struct entry *next;             /* bucket chain */
    struct entry *all_next, **all_pp; /* every entry of the namespace, for the sweep */
    uint32_t gen;
    int state;              /* reported state (NEW_SYN_RECV folded into SYN_RECV) */
    uint32_t rq, wq, retrans;
    char local[64], remote[64];
};

/* One watched namespace. */
struct ns {
    const char *path;       /* NULL: the namespace the process started in */
    int port;               /* -1: every port; -2: not given (take the default) */
    int family;             /* 4: IPv4 only; 0: both; -1: not given */
    int nl;                 /* its NETLINK_SOCK_DIAG socket */
    int destroy;            /* its socket in the destroy groups (-1: the kernel refused) */
    int snmp, netstat;      /* its /proc/net files (-1 if they could not be opened) */
    struct entry *buckets[NBUCKETS];
    struct entry *all;
    /* The last GRAVES tuples reported GONE: a socket leaves the table (unhashed, in CLOSE) while
     * its owner may still hold it, and is freed later; that free is not a new connection. */
    struct key *graves;
    unsigned ngraves;
    int64_t destroyed_poll_us; /* when a free last made it poll at once (DESTROY_HOLDOFF_US) */
};

#define GRAVES 1024
/* A freed socket makes its namespace poll at once, but at most once per this many µs: the frees
 * of a burst (512 connections closing at a run's end) are read together and answered by one poll
 * each millisecond, not by a dump per wake-up. A dump of a namespace that shares the host's TCP
 * hash (a Docker container's) walks the whole hash; hundreds in a row are the suspected cause of
 * other container runs' kernels running late in CI (a SYN-ACK 13 ms, a delayed packet 130 ms):
 * suspected, not yet measured. */
#define DESTROY_HOLDOFF_US 1000

static struct ns *nss[MAX_NS];
static int nns;
static int tagged;          /* --netns given: lines carry "ns":i */
static uint32_t gen;
static uint32_t seq;
static size_t out_lines;

static uint32_t hash_key(const struct key *k)
{
    const uint8_t *p = (const uint8_t *)k;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof *k; i++) { h ^= p[i]; h *= 16777619u; }
    return h % NBUCKETS;
}

static void fmt_addr(const uint8_t a[16], uint16_t port, char *buf, size_t len)
{
    char s[INET6_ADDRSTRLEN];
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(a, mapped, 12) == 0) {
        inet_ntop(AF_INET, a + 12, s, sizeof s);
        snprintf(buf, len, "%s:%u", s, port);
    } else {
        inet_ntop(AF_INET6, a, s, sizeof s);
        snprintf(buf, len, "[%s]:%u", s, port);
    }
}

static void emit(int64_t t, int i, const struct entry *e, const char *state)
{
    printf("{\"tUs\":%lld,", (long long)t);
    if (tagged) printf("\"ns\":%d,", i);
    printf("\"local\":\"%s\",\"remote\":\"%s\",\"state\":\"%s\",\"rq\":%u,\"wq\":%u,\"retrans\":%u}\n",
           e->local, e->remote, state, e->rq, e->wq, e->retrans);
    out_lines++;
}

static void unlink_entry(struct ns *n, struct entry *e)
{
    struct entry **pp = &n->buckets[hash_key(&e->k)];
    while (*pp != e) pp = &(*pp)->next;
    *pp = e->next;
    *e->all_pp = e->all_next;
    if (e->all_next) e->all_next->all_pp = e->all_pp;
    free(e);
}

/* The 4-tuple of a message; 0 if namespace n does not watch its port. */
static int key_of(const struct ns *n, int family, const struct inet_diag_msg *m, struct key *k)
{
    memset(k, 0, sizeof *k);
    if (family == AF_INET) {
        k->l[10] = k->l[11] = 0xff;
        k->r[10] = k->r[11] = 0xff;
        memcpy(k->l + 12, m->id.idiag_src, 4);
        memcpy(k->r + 12, m->id.idiag_dst, 4);
    } else {
        memcpy(k->l, m->id.idiag_src, 16);
        memcpy(k->r, m->id.idiag_dst, 16);
    }
    k->lp = ntohs(m->id.idiag_sport);
    k->rp = ntohs(m->id.idiag_dport);
    return n->port < 0 || k->lp == n->port || k->rp == n->port;
}

static struct entry *lookup(const struct ns *n, const struct key *k)
{
    struct entry *e;
    for (e = n->buckets[hash_key(k)]; e; e = e->next)
        if (memcmp(&e->k, k, sizeof *k) == 0) break;
    return e;
}

static void on_sock(int64_t t, int i, int family, const struct inet_diag_msg *m)
{
    struct ns *n = nss[i];
    struct key k;
    if (!key_of(n, family, m, &k)) return;
    int state = m->idiag_state == 12 /* TCP_NEW_SYN_RECV */ ? 3 /* TCP_SYN_RECV */ : m->idiag_state;
    uint32_t h = hash_key(&k);
    struct entry *e = lookup(n, &k);
    int changed = 0;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) { fputs("harness-probe watch: out of memory\n", stderr); exit(1); }
        e->k = k;
        fmt_addr(k.l, k.lp, e->local, sizeof e->local);
        fmt_addr(k.r, k.rp, e->remote, sizeof e->remote);
        e->next = n->buckets[h];
        n->buckets[h] = e;
        e->all_next = n->all;
        if (n->all) n->all->all_pp = &e->all_next;
        e->all_pp = &n->all;
        n->all = e;
        changed = 1;
    } else if (e->gen == gen) {
        return; /* same 4-tuple twice in one dump (e.g. TIME_WAIT + new socket): keep the first */
    } else {
        if (e->state != state || e->retrans != m->idiag_retrans) changed = 1;
        if (state == 10 /* LISTEN */ && (e->rq != m->idiag_rqueue || e->wq != m->idiag_wqueue)) changed = 1;
    }
    e->gen = gen;
    e->state = state;
    e->rq = m->idiag_rqueue;
    e->wq = m->idiag_wqueue;
    e->retrans = m->idiag_retrans;
    if (changed) {
        char sb[32];
        emit(t, i, e, tcp_state_name_buf(state, sb, sizeof sb));
    }
}

static char rbuf[1 << 17];

/* Dump one family of namespace i. Returns 0 ok, 1 if the dump was interrupted/inconsistent, -1 on error. */
static int dump_family(int i, int family, int with_listeners)
{
    int nl = nss[i]->nl;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    req.nlh.nlmsg_len = sizeof req;
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = ++seq;
    req.r.sdiag_family = (uint8_t)family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    /* Every state, including TIME_WAIT and NEW_SYN_RECV request socks. Listeners only on some
     * polls: the kernel walks the (global, 16k-bucket) listening hash for them, which costs far
     * more than the per-namespace established hash. */
    req.r.idiag_states = with_listeners ? ~0U : ~(1U << 10 /* TCP_LISTEN */);
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
    if (sendto(nl, &req, sizeof req, 0, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
    int inconsistent = 0;
    for (;;) {
        ssize_t n = recv(nl, rbuf, sizeof rbuf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        /* Stamp what this batch shows with the time it arrived: the kernel read those sockets
         * before recv() returned, so a sample is never earlier than the state it reports (a
         * stamp taken before the dump could precede a transition the dump then saw). */
        int64_t t = mono_us();
        if (n == 0) return -1;
        for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq) continue;
            if (h->nlmsg_flags & NLM_F_DUMP_INTR) inconsistent = 1;
            if (h->nlmsg_type == NLMSG_DONE) return inconsistent;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *er = NLMSG_DATA(h);
                errno = -er->error;
                return -1;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
            on_sock(t, i, family, NLMSG_DATA(h));
        }
    }
}

static int listen_every = 10; /* polls between two listener dumps */
static unsigned long long polls;

static void keep_all(struct ns *n)
{
    for (struct entry *e = n->all; e; e = e->all_next) e->gen = gen;
}

/* One poll of namespace i (gen already advanced). Returns 0, or -1 if its dump failed. */
static int poll_ns(int i, int with_listeners)
{
    struct ns *n = nss[i];
    int r4 = dump_family(i, AF_INET, with_listeners);
    int r6 = r4 < 0 || n->family == 4 ? r4 : dump_family(i, AF_INET6, with_listeners);
    int64_t t = mono_us(); /* a socket missing from the dumps was gone by their end */
    if (r4 < 0 || r6 < 0) {
        /* incomplete view: do not report anything as GONE this round */
        int saved = errno;
        fprintf(stderr, "harness-probe watch: sock_diag dump failed%s%s: %s\n",
                n->path ? " in " : "", n->path ? n->path : "", strerror(saved));
        /* drain anything left of the failed dump */
        while (recv(n->nl, rbuf, sizeof rbuf, MSG_DONTWAIT) > 0) {}
        keep_all(n);
        errno = saved;
        return -1;
    }
    if (r4 == 1 || r6 == 1) {
        keep_all(n);
        return 0;
    }
    for (struct entry *e = n->all, *next; e; e = next) {
        next = e->all_next;
        if (e->gen != gen && !with_listeners && e->state == 10 /* LISTEN: not dumped this round */)
            e->gen = gen;
        if (e->gen != gen) {
            emit(t, i, e, "GONE");
            if (n->graves) n->graves[n->ngraves++ % GRAVES] = e->k;
            unlink_entry(n, e);
        }
    }
    return 0;
}

/* Takes k out of namespace n's graves; 1 if it was there. */
static int exhume(struct ns *n, const struct key *k)
{
    unsigned count = n->ngraves < GRAVES ? n->ngraves : GRAVES;
    for (unsigned j = 0; j < count; j++)
        if (memcmp(&n->graves[j], k, sizeof *k) == 0) {
            memset(&n->graves[j], 0, sizeof *k);
            return 1;
        }
    return 0;
}

/* Namespace i's destroy socket is readable: sockets of it were freed. */
static void on_destroyed(int i)
{
    struct ns *n = nss[i];
    static struct { struct key k; uint32_t retrans; } unseen[256];
    int nun = 0, known = 0, lost = 0;
    for (;;) {
        ssize_t r = recv(n->destroy, rbuf, sizeof rbuf, MSG_DONTWAIT);
        if (r < 0 && errno == ENOBUFS) { lost = 1; continue; } /* the queue overflowed; it goes on */
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, (size_t)r); h = NLMSG_NEXT(h, r)) {
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            struct key k;
            if ((m->idiag_family == AF_INET6 && n->family == 4) || !key_of(n, m->idiag_family, m, &k)) continue;
            /* A listener, or a socket tcp_disconnect() cleared (SO_LINGER {1,0}): no connection. */
            if (k.rp == 0) continue;
            if (lookup(n, &k)) known = 1;
            else if (!exhume(n, &k) && nun < (int)(sizeof unseen / sizeof unseen[0])) {
                unseen[nun].k = k;
                unseen[nun].retrans = m->idiag_retrans;
                nun++;
            }
        }
    }
    if (lost) fprintf(stderr, "harness-probe watch: destroy notifications lost%s%s (ENOBUFS)\n", n->path ? " in " : "", n->path ? n->path : "");
    if (!known && !nun) return;
    /* Poll the namespace now: a known socket's GONE (or the TIME_WAIT that took its place) is
     * seen at once, and an unseen one whose tuple a TIME_WAIT holds is reported by the dump. */
    gen++;
    poll_ns(i, 0);
    n->destroyed_poll_us = mono_us();
    /* Stamped after that poll's lines (the stream stays in time order): later than the free,
     * never earlier, like every stamp of the watcher. */
    for (int j = 0; j < nun; j++) {
        if (lookup(n, &unseen[j].k)) continue;
        int64_t t = mono_us();
        struct entry e;
        memset(&e, 0, sizeof e);
        e.k = unseen[j].k;
        e.retrans = unseen[j].retrans;
        fmt_addr(e.k.l, e.k.lp, e.local, sizeof e.local);
        fmt_addr(e.k.r, e.k.rp, e.remote, sizeof e.remote);
        /* Opened and closed between two polls: seen only as it was freed. */
        emit(t, i, &e, "CLOSE");
        emit(t, i, &e, "GONE");
    }
}

/* Every namespace, one after the other, on one wake-up. Returns -1 if any dump failed. */
static int poll_once(void)
{
    gen++;
    int with_listeners = (polls++ % (unsigned)listen_every) == 0;
    int rc = 0, err = 0;
    for (int i = 0; i < nns; i++)
        if (poll_ns(i, with_listeners) < 0) { rc = -1; err = errno; }
    errno = err;
    return rc;
}

/* Whole file from offset 0 into buf (NUL-terminated); -1 on error. A seq_file regenerates its
 * text on a read from 0, so each call is a fresh sample of the namespace the file belongs to. */
static ssize_t read_whole(int fd, char *buf, size_t len)
{
    if (lseek(fd, 0, SEEK_SET) < 0) return -1;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    buf[got] = 0;
    return (ssize_t)got;
}

/* One line per namespace: its /proc/net/snmp and /proc/net/netstat as read now (text, parsed by
 * the caller: the field set is the kernel's, not ours). */
static void print_counters(void)
{
    static char snmp[1 << 16], netstat[1 << 16];
    for (int i = 0; i < nns; i++) {
        struct ns *n = nss[i];
        int64_t t = mono_us();
        if (n->snmp < 0 || n->netstat < 0 || read_whole(n->snmp, snmp, sizeof snmp) < 0 || read_whole(n->netstat, netstat, sizeof netstat) < 0) {
            printf("{\"event\":\"counters\",\"ns\":%d,\"tUs\":%lld,\"error\":", i, (long long)t);
            json_put_string(stdout, strerror(n->snmp < 0 || n->netstat < 0 ? ENOENT : errno));
            fputs("}\n", stdout);
            continue;
        }
        printf("{\"event\":\"counters\",\"ns\":%d,\"tUs\":%lld,\"snmp\":", i, (long long)t);
        json_put_string(stdout, snmp);
        fputs(",\"netstat\":", stdout);
        json_put_string(stdout, netstat);
        fputs("}\n", stdout);
    }
    fflush(stdout);
}

/* A complete stdin line: a request. */
static void on_command(const char *line)
{
    if (!strcmp(line, "counters")) print_counters();
    else if (*line) fprintf(stderr, "harness-probe watch: unknown stdin command '%s' (known: counters)\n", line);
}

/* Creates namespace n's socket and opens its counters, in the namespace the process is in now. */
static int open_here(struct ns *n)
{
    n->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (n->nl < 0) return -1;
    int rcv = 1 << 20;
    setsockopt(n->nl, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    /* The destroy groups need CAP_NET_ADMIN in the namespace; without them, polls only. */
    n->destroy = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1U << (SKNLGRP_INET_TCP_DESTROY - 1) };
    if (n->family != 4) sa.nl_groups |= 1U << (SKNLGRP_INET6_TCP_DESTROY - 1);
    if (n->destroy >= 0) {
        setsockopt(n->destroy, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        if (bind(n->destroy, (struct sockaddr *)&sa, sizeof sa) < 0) { close(n->destroy); n->destroy = -1; }
    }
    if (n->destroy >= 0 && !(n->graves = calloc(GRAVES, sizeof *n->graves))) { close(n->destroy); n->destroy = -1; }
    /* /proc/self/net follows the calling thread's namespace at open time (since Linux 4.18). */
    n->snmp = open("/proc/self/net/snmp", O_RDONLY | O_CLOEXEC);
    n->netstat = open("/proc/self/net/netstat", O_RDONLY | O_CLOEXEC);
    return 0;
}

/* Enters each --netns in turn to open what belongs to it, then returns to the namespace the
 * process started in. Returns 0, 2 for a path that is not a network namespace, 1 otherwise. */
static int open_namespaces(void)
{
    int home = -1;
    if (tagged) {
        home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (home < 0) { fprintf(stderr, "harness-probe watch: /proc/self/ns/net: %s\n", strerror(errno)); return 1; }
    }
    int rc = 0;
    for (int i = 0; i < nns && rc == 0; i++) {
        struct ns *n = nss[i];
        if (n->path) {
            int fd = open(n->path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                fprintf(stderr, "harness-probe watch: --netns %s: %s\n", n->path, strerror(errno));
                rc = 2;
                break;
            }
            if (setns(fd, CLONE_NEWNET) < 0) {
                int e = errno;
                fprintf(stderr, "harness-probe watch: --netns %s: %s\n", n->path,
                        e == EINVAL ? "not a network namespace" : strerror(e));
                rc = e == EINVAL ? 2 : 1;
                close(fd);
                break;
            }
            close(fd);
        }
        if (open_here(n) < 0) {
            fprintf(stderr, "harness-probe watch: sock_diag socket%s%s: %s\n", n->path ? " in " : "", n->path ? n->path : "", strerror(errno));
            rc = 1;
        }
    }
    if (home >= 0) {
        if (setns(home, CLONE_NEWNET) < 0) {
            fprintf(stderr, "harness-probe watch: back to its own namespace: %s\n", strerror(errno));
            rc = 1;
        }
        close(home);
    }
    return rc;
}

static int usage(void)
{
    fputs("usage: harness-probe watch [--interval-ms N] [--listen-every N] [--family 4|all] [--port P] [--no-stdin] [--once]\n"
          "                           [--netns PATH [--port P] [--family 4|all]]...\n"
          "  --netns PATH: watch that network namespace (repeat for several; one process polls them all\n"
          "                every interval); --port/--family after a --netns apply to it, before any to all.\n"
          "                Without --netns: the namespace it runs in. With it, lines carry \"ns\":i (order given)\n"
          "  --listen-every N: dump LISTEN sockets every Nth poll (default 10): their hash is global and costly\n"
          "  --once: print the sockets as they are now (listeners included) and exit\n"
          "  --family 4: skip the IPv6 dump (namespaces whose server listens on IPv4 only)\n"
          "  stdin line 'counters': one line per namespace with its /proc/net/snmp and netstat text\n"
          "  exits on SIGTERM/SIGINT or when stdin reaches EOF (unless --no-stdin), after one last poll\n", stderr);
    return 2;
}

static struct ns *new_ns(const char *path)
{
    struct ns *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->path = path;
    n->port = -2;
    n->family = -1;
    n->nl = n->destroy = n->snmp = n->netstat = -1;
    return n;
}

int watch_main(int argc, char **argv)
{
    long long interval = 5, port = -1, lev = 10;
    int fam = 0;
    int use_stdin = 1, once = 0;
    struct ns *cur = NULL; /* the --netns that --port/--family apply to; NULL: the defaults */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        long long *dst = NULL, min = 0, max = 0, portv = -1;
        const char *flag = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        if (!strcmp(a, "--no-stdin")) { use_stdin = 0; continue; }
        if (!strcmp(a, "--once")) { once = 1; continue; }
        if (!strcmp(a, "--netns") || !strncmp(a, "--netns=", 8)) {
            const char *p = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            if (!p || !*p) { fputs("harness-probe watch: --netns needs a path (e.g. /run/netns/NAME or /proc/PID/ns/net)\n", stderr); return usage(); }
            if (nns == MAX_NS) { fprintf(stderr, "harness-probe watch: at most %d --netns\n", MAX_NS); return usage(); }
            if (!(cur = nss[nns++] = new_ns(p))) { fputs("harness-probe watch: out of memory\n", stderr); return 1; }
            tagged = 1;
            continue;
        }
        if (!strcmp(a, "--family=4") || (!strcmp(a, "--family") && i + 1 < argc && !strcmp(argv[i + 1], "4"))) {
            if (a[8] == 0) i++;
            if (cur) cur->family = 4; else fam = 4;
            continue;
        }
        if (!strcmp(a, "--family=all") || (!strcmp(a, "--family") && i + 1 < argc && !strcmp(argv[i + 1], "all"))) {
            if (a[8] == 0) i++;
            if (cur) cur->family = 0; else fam = 0;
            continue;
        }
        if (!strncmp(a, "--interval-ms", 13)) { flag = "--interval-ms"; dst = &interval; min = 1; max = 600000; }
        else if (!strncmp(a, "--port", 6)) { flag = "--port"; dst = cur ? &portv : &port; min = 0; max = 65535; }
        else if (!strncmp(a, "--listen-every", 14)) { flag = "--listen-every"; dst = &lev; min = 1; max = 100000; }
        if (!flag) { fprintf(stderr, "harness-probe watch: unknown argument '%s'\n", a); return usage(); }
        size_t fl = strlen(flag);
        if (a[fl] == '=') val = a + fl + 1;
        else if (a[fl] == 0) {
            if (i + 1 >= argc) { fprintf(stderr, "harness-probe watch: %s needs a value\n", flag); return usage(); }
            val = argv[++i];
        } else { fprintf(stderr, "harness-probe watch: unknown argument '%s'\n", a); return usage(); }
        if (parse_int_range(val, min, max, dst) < 0) {
            fprintf(stderr, "harness-probe watch: %s: '%s' is not an integer in [%lld, %lld]\n", flag, val, min, max);
            return usage();
        }
        if (dst == &portv) cur->port = (int)portv;
    }
    if (!tagged && !(nss[nns++] = new_ns(NULL))) { fputs("harness-probe watch: out of memory\n", stderr); return 1; }
    for (int i = 0; i < nns; i++) {
        if (nss[i]->port == -2) nss[i]->port = (int)port;
        if (nss[i]->family < 0) nss[i]->family = fam;
    }
    listen_every = (int)lev;

    signal(SIGPIPE, SIG_IGN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (sfd < 0 || tfd < 0) { fprintf(stderr, "harness-probe watch: setup: %s\n", strerror(errno)); return 1; }
    int orc = open_namespaces();
    if (orc) return orc;
    struct itimerspec its = {
        .it_interval = { interval / 1000, (interval % 1000) * 1000000 },
        .it_value = { interval / 1000, (interval % 1000) * 1000000 },
    };
    timerfd_settime(tfd, 0, &its, NULL);

    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    printf("{\"event\":\"watching\",\"pid\":%d,\"tUs\":%lld,\"intervalMs\":%lld,\"port\":",
           (int)getpid(), (long long)mono_us(), interval);
    if (port >= 0) printf("%lld", port); else fputs("null", stdout);
    if (tagged) {
        fputs(",\"netns\":[", stdout);
        for (int i = 0; i < nns; i++) {
            printf("%s{\"ns\":%d,\"path\":", i ? "," : "", i);
            json_put_string(stdout, nss[i]->path);
            printf(",\"port\":");
            if (nss[i]->port >= 0) printf("%d", nss[i]->port); else fputs("null", stdout);
            printf(",\"family\":\"%s\"}", nss[i]->family == 4 ? "4" : "all");
        }
        fputs("]", stdout);
    }
    fputs("}\n", stdout);
    if (poll_once() < 0 && errno == EPROTONOSUPPORT) return 1;
    fflush(stdout);
    if (once) return ferror(stdout) ? 1 : 0; /* the first poll dumps everything, listeners included */

    /* The timer, signals, stdin, then each namespace's destroy socket. */
    struct pollfd pfd[3 + MAX_NS] = {
        { .fd = tfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN },
        { .fd = use_stdin ? 0 : -1, .events = POLLIN },
    };
    for (int i = 0; i < nns; i++) pfd[3 + i] = (struct pollfd){ .fd = nss[i]->destroy, .events = POLLIN };
    char line[256];
    size_t ll = 0;
    int failures = 0;
    for (;;) {
        /* A namespace that polled for a free less than DESTROY_HOLDOFF_US ago is not listened to
         * until then: what is freed meanwhile waits in its socket and is read in one go. */
        int64_t now = mono_us(), wait_us = -1;
        for (int i = 0; i < nns; i++) {
            int64_t left = nss[i]->destroyed_poll_us + DESTROY_HOLDOFF_US - now;
            pfd[3 + i].fd = left > 0 ? -1 : nss[i]->destroy;
            if (left > 0 && nss[i]->destroy >= 0 && (wait_us < 0 || left < wait_us)) wait_us = left;
        }
        struct timespec ts = { .tv_sec = wait_us / 1000000, .tv_nsec = (wait_us % 1000000) * 1000 };
        int n = ppoll(pfd, (nfds_t)(3 + nns), wait_us < 0 ? NULL : &ts, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "harness-probe watch: poll: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < nns; i++)
            if (pfd[3 + i].revents & POLLIN) on_destroyed(i);
        if (out_lines && !(pfd[0].revents & POLLIN)) {
            fflush(stdout);
            out_lines = 0;
            if (ferror(stdout)) return 1;
        }
        /* Stopping: one last dump first, so what changed since the last tick is still reported. */
        if (pfd[1].revents) { poll_once(); fflush(stdout); return 0; }
        /* The timer first: a counters request that arrives on the same wake-up is answered after
         * the states of that poll, so its lines follow every event sampled before it. */
        if (pfd[0].revents & POLLIN) {
            uint64_t exp;
            if (read(tfd, &exp, sizeof exp) > 0) {
                if (poll_once() < 0) {
                    if (++failures > 100) { fputs("harness-probe watch: giving up after 100 failed dumps\n", stderr); return 1; }
                } else failures = 0;
                if (out_lines) {
                    fflush(stdout);
                    out_lines = 0;
                    if (ferror(stdout)) return 1; /* reader went away */
                }
            }
        }
        if (pfd[2].revents) {
            char b[4096];
            ssize_t r = read(0, b, sizeof b);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) { poll_once(); fflush(stdout); return 0; }
            for (ssize_t j = 0; j < r; j++) {
                if (b[j] == '\n') {
                    line[ll] = 0;
                    on_command(line);
                    ll = 0;
                } else if (ll + 1 < sizeof line) {
                    line[ll++] = b[j];
                }
            }
            if (ferror(stdout)) return 1;
        }
    }
}
