/* `harness-probe delay`: the latency fault's delayer. An iptables rule in a namespace sends the
 * packets it matches to NFQUEUE queue N; this process, started in the same namespace, holds each
 * one for the configured delay (± jitter) and then accepts it, in arrival order.
 *
 * It speaks nfnetlink_queue directly over a netlink socket (kernel headers only): the protocol
 * needed is three messages — bind a queue in "metadata only" mode, receive packet ids, send a
 * batch verdict — so libnetfilter_queue (and its libnfnetlink and libmnl) would add three shared
 * libraries, a package to install, and a static build the probe image could no longer do, for
 * no code saved that matters.
 *
 * Release order is arrival order, so one batch verdict (NFQNL_MSG_VERDICT_BATCH: every queued
 * packet with an id up to N) releases everything that is due in one message: the kernel keeps
 * a queue's packets in a list in arrival order with increasing ids (nfnetlink_queue.c,
 * __enqueue_entry and nfqnl_recv_verdict_batch).
 *
 * stdout: {"event":"delaying",...} once the queue is bound (packets reaching the queue before
 * that would be dropped: the harness installs the rule only after this line); on SIGTERM/SIGINT
 * every held packet is accepted and {"event":"stats",...} is printed. Exit 0; 1 on a netlink
 * failure (message on stderr); 2 on bad usage. */
#define _GNU_SOURCE
#include "delay.h"
#include "util.h"
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The most packets held at once (the kernel's queue limit is set to the same). A TCP flow holds
 * at most a window's worth (tcp_rmem max 6 MB: ~4300 full segments); 65536 leaves room for many. */
#define MAX_HELD 65536

void delay_sched_init(struct delay_sched *s, int64_t delay_us, int64_t jitter_us, uint64_t seed)
{
    s->delay_us = delay_us;
    s->jitter_us = jitter_us;
    s->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    s->last_release_us = INT64_MIN;
}

static uint64_t xorshift64s(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dULL;
}

int64_t delay_sched_next(struct delay_sched *s, int64_t now_us)
{
    int64_t d = s->delay_us;
    if (s->jitter_us > 0) {
        uint64_t span = (uint64_t)(2 * s->jitter_us + 1);
        d += (int64_t)(xorshift64s(&s->rng) % span) - s->jitter_us;
    }
    int64_t at = now_us + d;
    if (at < s->last_release_us) at = s->last_release_us; /* never overtake the packet ahead */
    s->last_release_us = at;
    return at;
}

struct held {
    uint32_t id;
    int64_t release_us;
};

static struct held ring[MAX_HELD];
static size_t head, count;
static int nl = -1;
static uint16_t queue_num;
static uint32_t nl_seq;

/* What the delayer did, for the stats line and the bench. */
static struct {
    uint64_t packets, verdicts, late_us_sum;
    int64_t late_us_max;
    size_t max_held;
} st;

static void put_attr(char *buf, size_t *off, uint16_t type, const void *data, uint16_t len)
{
    struct nlattr *a = (struct nlattr *)(buf + *off);
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + len);
    memcpy(buf + *off + NLA_HDRLEN, data, len);
    *off += NLA_ALIGN(a->nla_len);
}

/* Starts a nfnetlink_queue message of `type` for our queue; returns the offset after the headers. */
static size_t start_msg(char *buf, uint16_t type, uint16_t flags)
{
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    memset(buf, 0, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
    h->nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
    h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
    h->nlmsg_seq = ++nl_seq;
    struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(h);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(queue_num);
    return NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
}

static int send_msg(char *buf, size_t len)
{
    ((struct nlmsghdr *)buf)->nlmsg_len = (uint32_t)len;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    for (;;) {
        ssize_t n = sendto(nl, buf, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
        if (n == (ssize_t)len) return 0;
        if (n < 0 && errno == EINTR) continue;
        return -1;
    }
}

/* Sends a config message and waits for the kernel's acknowledgement. Returns 0, or -errno. */
static int config(const char *what, char *buf, size_t len)
{
    if (send_msg(buf, len) < 0) {
        int saved_errno = errno;
        fprintf(stderr, "harness-probe delay: %s: send: %s\n", what, strerror(saved_errno));
        return -saved_errno;
    }
    uint32_t want = nl_seq;
    char rb[8192];
    for (;;) {
        ssize_t n = recv(nl, rb, sizeof rb, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            int saved_errno = errno;
            fprintf(stderr, "harness-probe delay: %s: recv: %s\n", what, strerror(saved_errno));
            return -saved_errno;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)rb; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != want || h->nlmsg_type != NLMSG_ERROR) continue;
            int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
            if (err) fprintf(stderr, "harness-probe delay: %s: %s\n", what, strerror(-err));
            return err;
        }
    }
}

static int bind_queue(void)
{
    char buf[256];
    size_t off = start_msg(buf, NFQNL_MSG_CONFIG, NLM_F_ACK);
    struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET) };
    put_attr(buf, &off, NFQA_CFG_CMD, &cmd, sizeof cmd);
    int rc = config("bind queue", buf, off);
    if (rc) return rc;
    /* Metadata only: the delayer needs each packet's id, not its bytes. GSO packets are queued
     * whole (NFQA_CFG_F_GSO), not segmented first: one hold per skb, as the stack sends it. */
    off = start_msg(buf, NFQNL_MSG_CONFIG, NLM_F_ACK);
    struct nfqnl_msg_config_params params = { .copy_range = 0, .copy_mode = NFQNL_COPY_META };
    put_attr(buf, &off, NFQA_CFG_PARAMS, &params, sizeof params);
    uint32_t maxlen = htonl(MAX_HELD);
    put_attr(buf, &off, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen);
    uint32_t flags = htonl(NFQA_CFG_F_GSO), mask = htonl(NFQA_CFG_F_GSO);
    put_attr(buf, &off, NFQA_CFG_FLAGS, &flags, sizeof flags);
    put_attr(buf, &off, NFQA_CFG_MASK, &mask, sizeof mask);
    return config("configure queue", buf, off);
}

/* Accepts every held packet with an id up to `id` (they are exactly the ones released). */
static int verdict_upto(uint32_t id)
{
    char buf[128];
    size_t off = start_msg(buf, NFQNL_MSG_VERDICT_BATCH, 0);
    struct nfqnl_msg_verdict_hdr v = { .verdict = htonl(NF_ACCEPT), .id = htonl(id) };
    put_attr(buf, &off, NFQA_VERDICT_HDR, &v, sizeof v);
    if (send_msg(buf, off) < 0) {
        int saved_errno = errno;
        fprintf(stderr, "harness-probe delay: verdict: %s\n", strerror(saved_errno));
        return -1;
    }
    st.verdicts++;
    return 0;
}

/* Releases every held packet due at `now` (all of them with `all`). */
static int release_due(int64_t now, int all)
{
    uint32_t last = 0;
    int any = 0;
    while (count && (all || ring[head].release_us <= now)) {
        int64_t late = now - ring[head].release_us;
        if (late > 0 && !all) {
            st.late_us_sum += (uint64_t)late;
            if (late > st.late_us_max) st.late_us_max = late;
        }
        last = ring[head].id;
        head = (head + 1) % MAX_HELD;
        count--;
        any = 1;
    }
    return any ? verdict_upto(last) : 0;
}

static struct delay_sched sched;
static char rbuf[1 << 18];

/* Takes every queued packet the socket has. Returns 0, or -1 on a fatal error. */
static int receive(void)
{
    for (;;) {
        ssize_t n = recv(nl, rbuf, sizeof rbuf, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            if (errno == EINTR) continue;
            int saved_errno = errno;
            fprintf(stderr, "harness-probe delay: recv: %s\n", strerror(saved_errno));
            return -1;
        }
        int64_t now = mono_us();
        for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
                if (err) { fprintf(stderr, "harness-probe delay: kernel: %s\n", strerror(-err)); return -1; }
                continue;
            }
            if (h->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) continue;
            size_t hdr = NLMSG_ALIGN(sizeof(struct nfgenmsg));
            struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(h) + hdr);
            int len = (int)(h->nlmsg_len - NLMSG_HDRLEN - hdr);
            int found = 0;
            uint32_t id = 0;
            while (len >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len) {
                if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
                    struct nfqnl_msg_packet_hdr ph;
                    memcpy(&ph, (char *)a + NLA_HDRLEN, sizeof ph);
                    id = ntohl(ph.packet_id);
                    found = 1;
                    break;
                }
                len -= NLA_ALIGN(a->nla_len);
                a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
            }
            if (!found) continue;
            if (count == MAX_HELD) { fputs("harness-probe delay: more than 65536 packets held\n", stderr); return -1; }
            ring[(head + count) % MAX_HELD] = (struct held){ id, delay_sched_next(&sched, now) };
            count++;
            st.packets++;
            if (count > st.max_held) st.max_held = count;
        }
    }
}

static void print_stats(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long cpu_us = (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    printf("{\"event\":\"stats\",\"queue\":%u,\"packets\":%llu,\"verdicts\":%llu,\"maxHeld\":%zu,"
           "\"lateUsMax\":%lld,\"lateUsMean\":%.1f,\"cpuUs\":%lld}\n",
           queue_num, (unsigned long long)st.packets, (unsigned long long)st.verdicts, st.max_held,
           (long long)st.late_us_max, st.packets ? (double)st.late_us_sum / (double)st.packets : 0.0, cpu_us);
    fflush(stdout);
}

static int usage_delay(void)
{
    fputs("usage: harness-probe delay --queue N --delay-us D [--jitter-us J] [--seed S] [--check]\n"
          "  holds each packet NFQUEUE queue N receives for D µs (± J, uniform), releases in arrival order\n"
          "  --check: bind the queue, then exit 0 (proves nfnetlink_queue works here)\n", stderr);
    return 2;
}

int delay_main(int argc, char **argv)
{
    long long q = -1, delay = -1, jitter = 0, seed = 0;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check")) { check = 1; continue; }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long *dst = NULL, lo = 0, hi = 0;
        if (!strcmp(a, "--queue")) { dst = &q; hi = 65535; }
        else if (!strcmp(a, "--delay-us")) { dst = &delay; hi = 3600LL * 1000000; }
        else if (!strcmp(a, "--jitter-us")) { dst = &jitter; hi = 3600LL * 1000000; }
        else if (!strcmp(a, "--seed")) { dst = &seed; hi = INT64_MAX; }
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage_delay(); return 0; }
        else { fprintf(stderr, "harness-probe delay: unknown argument '%s'\n", a); return usage_delay(); }
        if (parse_int_range(v, lo, hi, dst) < 0) { fprintf(stderr, "harness-probe delay: %s needs a number in %lld..%lld\n", a, lo, hi); return 2; }
        i++;
    }
    if (q < 0 || delay < 0) { fputs("harness-probe delay: --queue and --delay-us are required\n", stderr); return usage_delay(); }
    if (jitter > delay) { fputs("harness-probe delay: --jitter-us must not exceed --delay-us (a packet cannot leave before it came)\n", stderr); return 2; }
    queue_num = (uint16_t)q;
    delay_sched_init(&sched, delay, jitter, seed ? (uint64_t)seed : (uint64_t)mono_us());

    /* Wake-ups on time: the default 50 µs timer slack would add to every hold. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (sfd < 0 || nl < 0) { fprintf(stderr, "harness-probe delay: socket: %s\n", strerror(errno)); return 1; }
    /* A burst must never overrun the socket: the kernel would drop the packets it could not queue to us. */
    int rcv = 16 << 20, one = 1;
    if (setsockopt(nl, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0) setsockopt(nl, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    setsockopt(nl, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    struct sockaddr_nl local = { .nl_family = AF_NETLINK };
    if (bind(nl, (struct sockaddr *)&local, sizeof local) < 0) { fprintf(stderr, "harness-probe delay: bind: %s\n", strerror(errno)); return 1; }
    if (bind_queue() < 0) return 1;
    if (check) { close(nl); return 0; } /* --check: the queue could be bound (harness doctor, prepare) */
    printf("{\"event\":\"delaying\",\"queue\":%u,\"delayUs\":%lld,\"jitterUs\":%lld,\"pid\":%d}\n", queue_num, delay, jitter, (int)getpid());
    fflush(stdout);

    for (;;) {
        int64_t now = mono_us();
        if (release_due(now, 0) < 0) return 1;
        struct timespec ts, *tsp = NULL;
        if (count) {
            int64_t wait = ring[head].release_us - now;
            if (wait < 0) wait = 0;
            ts.tv_sec = wait / 1000000;
            ts.tv_nsec = (wait % 1000000) * 1000;
            tsp = &ts;
        }
        struct pollfd pf[2] = { { .fd = nl, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
        int n = ppoll(pf, 2, tsp, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "harness-probe delay: ppoll: %s\n", strerror(errno));
            return 1;
        }
        if (pf[0].revents & POLLIN && receive() < 0) return 1;
        if (pf[1].revents & POLLIN) break;
    }
    /* Stopped: let every held packet go before the queue disappears with this socket (the
     * kernel drops whatever is still queued to a closed one). */
    int rc = release_due(mono_us(), 1) < 0 ? 1 : 0;
    print_stats();
    close(nl);
    return rc;
}
