/* `harness-probe watch`: polls the TCP socket table via NETLINK_SOCK_DIAG and
 * prints one NDJSON line per change. */
#define _GNU_SOURCE
#include "watch.h"
#include "names.h"
#include "util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define NBUCKETS 16384

struct key {
    uint8_t l[16], r[16];   /* IPv4 stored as v4-mapped IPv6 */
    uint16_t lp, rp;        /* host order */
};

struct entry {
    struct key k;
    struct entry *next;
    uint32_t gen;
    int state;              /* reported state (NEW_SYN_RECV folded into SYN_RECV) */
    uint32_t rq, wq, retrans;
    char local[64], remote[64];
};

static struct entry *buckets[NBUCKETS];
static uint32_t gen;
static int port_filter = -1;
static int nl = -1;
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

static void emit(int64_t t, const struct entry *e, const char *state)
{
    printf("{\"tUs\":%lld,\"local\":\"%s\",\"remote\":\"%s\",\"state\":\"%s\",\"rq\":%u,\"wq\":%u,\"retrans\":%u}\n",
           (long long)t, e->local, e->remote, state, e->rq, e->wq, e->retrans);
    out_lines++;
}

static void on_sock(int64_t t, int family, const struct inet_diag_msg *m)
{
    struct key k;
    memset(&k, 0, sizeof k);
    if (family == AF_INET) {
        k.l[10] = k.l[11] = 0xff;
        k.r[10] = k.r[11] = 0xff;
        memcpy(k.l + 12, m->id.idiag_src, 4);
        memcpy(k.r + 12, m->id.idiag_dst, 4);
    } else {
        memcpy(k.l, m->id.idiag_src, 16);
        memcpy(k.r, m->id.idiag_dst, 16);
    }
    k.lp = ntohs(m->id.idiag_sport);
    k.rp = ntohs(m->id.idiag_dport);
    if (port_filter >= 0 && k.lp != port_filter && k.rp != port_filter) return;
    int state = m->idiag_state == 12 /* TCP_NEW_SYN_RECV */ ? 3 /* TCP_SYN_RECV */ : m->idiag_state;
    uint32_t h = hash_key(&k);
    struct entry *e;
    for (e = buckets[h]; e; e = e->next)
        if (memcmp(&e->k, &k, sizeof k) == 0) break;
    int changed = 0;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) { fputs("harness-probe watch: out of memory\n", stderr); exit(1); }
        e->k = k;
        fmt_addr(k.l, k.lp, e->local, sizeof e->local);
        fmt_addr(k.r, k.rp, e->remote, sizeof e->remote);
        e->next = buckets[h];
        buckets[h] = e;
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
        emit(t, e, tcp_state_name_buf(state, sb, sizeof sb));
    }
}

static char rbuf[1 << 17];

/* Dump one family. Returns 0 ok, 1 if the dump was interrupted/inconsistent, -1 on error. */
static int dump_family(int64_t t, int family, int with_listeners)
{
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
        t = mono_us();
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
            on_sock(t, family, NLMSG_DATA(h));
        }
    }
}

static int listen_every = 10; /* polls between two listener dumps */
static int want_v6 = 1;
static unsigned long long polls;

static int poll_once(void)
{
    gen++;
    int64_t t = mono_us();
    int with_listeners = (polls++ % (unsigned)listen_every) == 0;
    int r4 = dump_family(t, AF_INET, with_listeners);
    int r6 = r4 < 0 || !want_v6 ? r4 : dump_family(t, AF_INET6, with_listeners);
    t = mono_us(); /* a socket missing from the dumps was gone by their end */
    if (r4 < 0 || r6 < 0) {
        /* incomplete view: do not report anything as GONE this round */
        fprintf(stderr, "harness-probe watch: sock_diag dump failed: %s\n", strerror(errno));
        /* drain anything left of the failed dump */
        while (recv(nl, rbuf, sizeof rbuf, MSG_DONTWAIT) > 0) {}
        for (size_t b = 0; b < NBUCKETS; b++)
            for (struct entry *e = buckets[b]; e; e = e->next) e->gen = gen;
        return -1;
    }
    if (r4 == 1 || r6 == 1) {
        for (size_t b = 0; b < NBUCKETS; b++)
            for (struct entry *e = buckets[b]; e; e = e->next) e->gen = gen;
        return 0;
    }
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct entry **pp = &buckets[b];
        while (*pp) {
            struct entry *e = *pp;
            if (e->gen != gen && !with_listeners && e->state == 10 /* LISTEN: not dumped this round */)
                e->gen = gen;
            if (e->gen != gen) {
                emit(t, e, "GONE");
                *pp = e->next;
                free(e);
            } else {
                pp = &e->next;
            }
        }
    }
    return 0;
}

static int usage(void)
{
    fputs("usage: harness-probe watch [--interval-ms N] [--listen-every N] [--family 4|all] [--port P] [--no-stdin] [--once]\n"
          "  --listen-every N: dump LISTEN sockets every Nth poll (default 10): their hash is global and costly\n"
          "  --once: print the sockets as they are now (listeners included) and exit\n"
          "  --family 4: skip the IPv6 dump (namespaces whose server listens on IPv4 only)\n"
          "  exits on SIGTERM/SIGINT or when stdin reaches EOF (unless --no-stdin)\n", stderr);
    return 2;
}

int watch_main(int argc, char **argv)
{
    long long interval = 5, port = -1, lev = 10, fam = 0;
    int use_stdin = 1, once = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        long long *dst = NULL, min = 0, max = 0;
        const char *flag = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        if (!strcmp(a, "--no-stdin")) { use_stdin = 0; continue; }
        if (!strcmp(a, "--once")) { once = 1; continue; }
        if (!strncmp(a, "--interval-ms", 13)) { flag = "--interval-ms"; dst = &interval; min = 1; max = 600000; }
        else if (!strncmp(a, "--port", 6)) { flag = "--port"; dst = &port; min = 0; max = 65535; }
        else if (!strncmp(a, "--listen-every", 14)) { flag = "--listen-every"; dst = &lev; min = 1; max = 100000; }
        else if (!strcmp(a, "--family=4") || (!strcmp(a, "--family") && i + 1 < argc && !strcmp(argv[i + 1], "4"))) {
            fam = 4; if (a[8] == 0) i++; continue;
        } else if (!strcmp(a, "--family=all") || (!strcmp(a, "--family") && i + 1 < argc && !strcmp(argv[i + 1], "all"))) {
            fam = 0; if (a[8] == 0) i++; continue;
        }
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
    }
    port_filter = (int)port;
    listen_every = (int)lev;
    want_v6 = fam != 4;

    signal(SIGPIPE, SIG_IGN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (sfd < 0 || tfd < 0 || nl < 0) { fprintf(stderr, "harness-probe watch: setup: %s\n", strerror(errno)); return 1; }
    int rcv = 1 << 20;
    setsockopt(nl, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct itimerspec its = {
        .it_interval = { interval / 1000, (interval % 1000) * 1000000 },
        .it_value = { interval / 1000, (interval % 1000) * 1000000 },
    };
    timerfd_settime(tfd, 0, &its, NULL);

    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    printf("{\"event\":\"watching\",\"pid\":%d,\"tUs\":%lld,\"intervalMs\":%lld,\"port\":",
           (int)getpid(), (long long)mono_us(), interval);
    if (port >= 0) printf("%lld}\n", port); else fputs("null}\n", stdout);
    if (poll_once() < 0 && errno == EPROTONOSUPPORT) return 1;
    fflush(stdout);
    if (once) return ferror(stdout) ? 1 : 0; /* the first poll dumps everything, listeners included */

    struct pollfd pfd[3] = {
        { .fd = tfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN },
        { .fd = use_stdin ? 0 : -1, .events = POLLIN },
    };
    int failures = 0;
    for (;;) {
        int n = poll(pfd, 3, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "harness-probe watch: poll: %s\n", strerror(errno));
            return 1;
        }
        if (pfd[1].revents) { fflush(stdout); return 0; }
        if (pfd[2].revents) {
            char b[4096];
            ssize_t r = read(0, b, sizeof b);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) { fflush(stdout); return 0; }
        }
        if (pfd[0].revents & POLLIN) {
            uint64_t exp;
            if (read(tfd, &exp, sizeof exp) < 0) continue;
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
}
