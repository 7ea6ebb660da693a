/* `harness-probe client`: runs a step script over non-blocking sockets + one epoll; a step marked
 * "blocking" makes its syscall the way a blocking client does (O_NONBLOCK cleared for it, the
 * step's time limit through SO_SNDTIMEO/SO_RCVTIMEO). */
#define _GNU_SOURCE
#include "client.h"
#include "json.h"
#include "names.h"
#include "script.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IOBUF 65536

struct result {
    int ok;
    int err;              /* 0 = null */
    const char *call;     /* syscall that failed, NULL if none */
    int64_t start_us, end_us;
    int timed_out;
    long long bytes;
    int eof;
    uint32_t events;
    char local[64], remote[64];
    int has_tcp;
    struct tcp_info ti;
    /* calibrate: wake-up lateness of the sleeps, µs */
    long long late_n, late_med_us, late_p90_us, late_max_us;
};

static int epfd = -1;
static int fds[MAX_SOCKS];
static struct sockaddr_in dsts[MAX_SOCKS]; /* last connect target per socket */
static volatile sig_atomic_t stop_sig;   /* SIGTERM/SIGINT seen: stop and report */

static void on_stop(int sig) { stop_sig = sig; }
/* Where barrier steps read the harness's go-ahead: stdin, when the script came from --script. */
static FILE *barrier_input;
static char iobuf[IOBUF];
static char wbuf[IOBUF];

static void set_err(struct result *r, const char *call, int e)
{
    r->ok = 0;
    r->err = e;
    r->call = call;
}

static int ensure_socket(int s, struct result *r)
{
    if (fds[s] >= 0) return 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { int saved_errno = errno; set_err(r, "socket", saved_errno); return -1; }
    struct epoll_event ev = { .events = EPOLLET, .data.u32 = (uint32_t)s };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int saved_errno = errno;
        close(fd);
        set_err(r, "epoll_ctl", saved_errno);
        return -1;
    }
    fds[s] = fd;
    return 0;
}

static int need_socket(int s, struct result *r)
{
    if (fds[s] >= 0) return 0;
    set_err(r, NULL, EBADF);
    return -1;
}

/* Wait until socket s reports one of `mask` or the deadline passes.
 * Returns 1 (event, bits in *events), 0 (timeout), -1 (epoll failure, errno kept). */
static int wait_for(int s, uint32_t mask, int64_t deadline_us, uint32_t *events)
{
    /* Edge-triggered registration; EPOLL_CTL_MOD re-evaluates the current
     * readiness, so a condition that is already true is reported at once. */
    struct epoll_event ev = { .events = mask | EPOLLET, .data.u32 = (uint32_t)s };
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fds[s], &ev) < 0) return -1;
    int found = 0;
    for (;;) {
        int64_t rem = deadline_us - mono_us();
        if (rem < 0) rem = 0;
        struct timespec ts = { .tv_sec = rem / 1000000, .tv_nsec = (rem % 1000000) * 1000 };
        struct epoll_event evs[64];
        int n = epoll_pwait2(epfd, evs, 64, &ts, NULL);
        if (n < 0) {
            if (errno == EINTR && !stop_sig) continue;
            return -1;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == (uint32_t)s && (evs[i].events & (mask | EPOLLERR | EPOLLHUP))) {
                *events = evs[i].events;
                found = 1;
            }
        }
        if (found) break;
        if (n == 0 && mono_us() >= deadline_us) break;
        if (rem == 0 && n < 64) break;
    }
    ev.events = EPOLLET;
    epoll_ctl(epfd, EPOLL_CTL_MOD, fds[s], &ev);
    return found;
}

/* A blocking step: O_NONBLOCK off for its syscall (back on after), its time limit as the socket's
 * SO_SNDTIMEO/SO_RCVTIMEO, which the kernel's sock_sndtimeo()/sock_rcvtimeo() sleep on. */
static int set_nonblocking(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

static int set_timeo(int fd, int opt, int64_t deadline_us)
{
    int64_t rem = deadline_us - mono_us();
    if (rem < 1000) rem = 1000; /* 0 would mean "wait for ever" */
    struct timeval tv = { .tv_sec = rem / 1000000, .tv_usec = rem % 1000000 };
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

static int get_so_error(int fd, int *soerr)
{
    socklen_t l = sizeof *soerr;
    *soerr = 0;
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, soerr, &l);
}

static void do_connect(const struct step *st, struct result *r)
{
    int s = st->sock;
    if (ensure_socket(s, r) < 0) return;
    int fd = fds[s];
    if (st->bind_port >= 0) {
        int zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero);
        struct sockaddr_in b = { .sin_family = AF_INET, .sin_port = htons((uint16_t)st->bind_port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY) };
        if (bind(fd, (struct sockaddr *)&b, sizeof b) < 0) {
            int saved_errno = errno;
            set_err(r, "bind", saved_errno);
            return;
        }
    }
    int64_t deadline = r->start_us + st->timeout_ms * 1000;
    dsts[s] = st->dst;
    int rc;
    if (st->blocking) {
        /* inet_stream_connect sleeps until the handshake ends, the socket errors or SO_SNDTIMEO
         * passes (then: EINPROGRESS, the connect goes on in the background). */
        if (set_nonblocking(fd, 0) < 0 || set_timeo(fd, SO_SNDTIMEO, deadline) < 0) {
            int saved_errno = errno;
            set_err(r, "fcntl", saved_errno);
            return;
        }
        rc = connect(fd, (const struct sockaddr *)&st->dst, sizeof st->dst);
        int saved_errno = errno;
        set_nonblocking(fd, 1);
        if (rc == 0) { r->ok = 1; return; }
        if (saved_errno == EINPROGRESS || saved_errno == EALREADY) { r->ok = 0; r->timed_out = 1; return; }
        set_err(r, "connect", saved_errno);
        return;
    }
    do rc = connect(fd, (const struct sockaddr *)&st->dst, sizeof st->dst);
    while (rc < 0 && errno == EINTR);
    int saved_errno = errno;
    if (rc == 0) { r->ok = 1; return; }
    if (saved_errno != EINPROGRESS) { set_err(r, "connect", saved_errno); return; }
    int w = wait_for(s, EPOLLOUT | EPOLLERR | EPOLLHUP, deadline, &r->events);
    if (w < 0) { saved_errno = errno; set_err(r, "epoll_wait", saved_errno); return; }
    if (w == 0) { r->ok = 0; r->timed_out = 1; r->err = 0; return; }
    int soerr;
    if (get_so_error(fd, &soerr) < 0) { saved_errno = errno; set_err(r, "getsockopt", saved_errno); return; }
    if (soerr) set_err(r, "connect", soerr);
    else r->ok = 1;
}

static void do_write(const struct step *st, struct result *r)
{
    int s = st->sock;
    if (need_socket(s, r) < 0) return;
    int64_t deadline = r->start_us + st->timeout_ms * 1000;
    long long left = st->bytes;
    if (st->blocking) {
        if (set_nonblocking(fds[s], 0) < 0) { int saved_errno = errno; set_err(r, "fcntl", saved_errno); return; }
        while (left > 0) {
            size_t chunk = left > IOBUF ? IOBUF : (size_t)left;
            set_timeo(fds[s], SO_SNDTIMEO, deadline);
            ssize_t n = send(fds[s], wbuf, chunk, MSG_NOSIGNAL);
            int saved_errno = errno;
            if (n > 0) { r->bytes += n; left -= n; continue; }
            if (n < 0 && saved_errno == EINTR && !stop_sig) continue;
            if (n < 0 && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) { r->ok = 0; r->timed_out = 1; break; }
            set_err(r, "send", n < 0 ? saved_errno : EIO);
            break;
        }
        set_nonblocking(fds[s], 1);
        if (left == 0) r->ok = 1;
        return;
    }
    while (left > 0) {
        size_t chunk = left > IOBUF ? IOBUF : (size_t)left;
        /* `data`: the exact bytes (a request a real server parses); else filler. */
        const char *src = st->data ? st->data + (st->bytes - left) : wbuf;
        ssize_t n = send(fds[s], src, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        int saved_errno = errno;
        if (n > 0) { r->bytes += n; left -= n; continue; }
        if (n < 0 && saved_errno == EINTR) continue;
        if (n < 0 && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
            int w = wait_for(s, EPOLLOUT | EPOLLERR | EPOLLHUP, deadline, &r->events);
            if (w < 0) { saved_errno = errno; set_err(r, "epoll_wait", saved_errno); return; }
            if (w == 0) { r->ok = 0; r->timed_out = 1; return; }
            continue;
        }
        set_err(r, "send", n < 0 ? saved_errno : EIO);
        return;
    }
    r->ok = 1;
}

static void do_read(const struct step *st, struct result *r)
{
    int s = st->sock;
    if (need_socket(s, r) < 0) return;
    int64_t deadline = r->start_us + st->timeout_ms * 1000;
    if (st->blocking) {
        if (set_nonblocking(fds[s], 0) < 0) { int saved_errno = errno; set_err(r, "fcntl", saved_errno); return; }
        for (;;) {
            size_t chunk = IOBUF;
            if (st->has_bytes && st->bytes - r->bytes < (long long)chunk) chunk = (size_t)(st->bytes - r->bytes);
            set_timeo(fds[s], SO_RCVTIMEO, deadline);
            ssize_t n = recv(fds[s], iobuf, chunk, 0);
            int saved_errno = errno;
            if (n > 0) {
                r->bytes += n;
                if (!st->has_bytes || r->bytes >= st->bytes) { r->ok = 1; break; }
                continue;
            }
            if (n == 0) { r->eof = 1; r->ok = 1; break; }
            if (saved_errno == EINTR && !stop_sig) continue;
            if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) { r->ok = 0; r->timed_out = 1; break; }
            set_err(r, "recv", saved_errno);
            break;
        }
        set_nonblocking(fds[s], 1);
        return;
    }
    for (;;) {
        size_t chunk = IOBUF;
        if (st->has_bytes && st->bytes - r->bytes < (long long)chunk) chunk = (size_t)(st->bytes - r->bytes);
        ssize_t n = recv(fds[s], iobuf, chunk, MSG_DONTWAIT);
        int saved_errno = errno;
        if (n > 0) {
            r->bytes += n;
            if (!st->has_bytes || r->bytes >= st->bytes) { r->ok = 1; return; }
            continue;
        }
        if (n == 0) { r->eof = 1; r->ok = 1; return; }
        if (saved_errno == EINTR) continue;
        if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) {
            int w = wait_for(s, EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP, deadline, &r->events);
            if (w < 0) { saved_errno = errno; set_err(r, "epoll_wait", saved_errno); return; }
            if (w == 0) { r->ok = 0; r->timed_out = 1; return; }
            continue;
        }
        set_err(r, "recv", saved_errno);
        return;
    }
}

static void do_wait(const struct step *st, struct result *r)
{
    int s = st->sock;
    if (need_socket(s, r) < 0) return;
    int64_t deadline = r->start_us + st->timeout_ms * 1000;
    int w = wait_for(s, EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP, deadline, &r->events);
    if (w < 0) { int saved_errno = errno; set_err(r, "epoll_wait", saved_errno); return; }
    if (w == 0) { r->ok = 0; r->timed_out = 1; return; }
    int soerr;
    if (get_so_error(fds[s], &soerr) < 0) { int saved_errno = errno; set_err(r, "getsockopt", saved_errno); return; }
    if (soerr) set_err(r, NULL, soerr);
    else r->ok = 1;
}

static void do_setsockopt(const struct step *st, struct result *r)
{
    int s = st->sock;
    if (ensure_socket(s, r) < 0) return;
    int level = IPPROTO_TCP, name = 0, ival = st->value;
    const void *val = &ival;
    socklen_t len = sizeof ival;
    struct linger lg;
    switch (st->opt) {
    case SOPT_SYNCNT: name = TCP_SYNCNT; break;
    case SOPT_USER_TIMEOUT: name = TCP_USER_TIMEOUT; break;
    case SOPT_KEEPALIVE: level = SOL_SOCKET; name = SO_KEEPALIVE; break;
    case SOPT_KEEPIDLE: name = TCP_KEEPIDLE; break;
    case SOPT_KEEPINTVL: name = TCP_KEEPINTVL; break;
    case SOPT_KEEPCNT: name = TCP_KEEPCNT; break;
    case SOPT_NODELAY: name = TCP_NODELAY; break;
    case SOPT_RCVBUF: level = SOL_SOCKET; name = SO_RCVBUF; break;
    case SOPT_SNDBUF: level = SOL_SOCKET; name = SO_SNDBUF; break;
    case SOPT_CORK: name = TCP_CORK; break;
    case SOPT_REUSEADDR: level = SOL_SOCKET; name = SO_REUSEADDR; break;
    case SOPT_REUSEPORT: level = SOL_SOCKET; name = SO_REUSEPORT; break;
    case SOPT_LINGER:
        level = SOL_SOCKET; name = SO_LINGER;
        lg.l_onoff = st->onoff; lg.l_linger = st->value;
        val = &lg; len = sizeof lg;
        break;
    }
    if (setsockopt(fds[s], level, name, val, len) < 0) {
        int saved_errno = errno;
        set_err(r, "setsockopt", saved_errno);
        return;
    }
    r->ok = 1;
}

/* bind() + listen(): a server (re)starting on a port, e.g. run in the target's namespace while
 * that port still has TIME_WAIT connections. `call` says which of the two failed. */
static void do_listen(const struct step *st, struct result *r)
{
    int s = st->sock;
    if (ensure_socket(s, r) < 0) return;
    if (bind(fds[s], (const struct sockaddr *)&st->dst, sizeof st->dst) < 0) {
        int saved_errno = errno;
        set_err(r, "bind", saved_errno);
        return;
    }
    if (listen(fds[s], st->backlog) < 0) {
        int saved_errno = errno;
        set_err(r, "listen", saved_errno);
        return;
    }
    r->ok = 1;
}

static void do_close(const struct step *st, struct result *r)
{
    int s = st->sock;
    if (need_socket(s, r) < 0) return;
    int fd = fds[s];
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    /* Measured on 6.18: close() with SO_LINGER {1,N>0} blocks up to N s even on a non-blocking
     * socket (sk_stream_wait_close ignores O_NONBLOCK; BSD returns EWOULDBLOCK). O_NONBLOCK is
     * cleared anyway, so the step is what a blocking application does on any kernel. */
    struct linger lg = { 0, 0 };
    socklen_t l = sizeof lg;
    if (st->blocking || (getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && lg.l_onoff && lg.l_linger > 0))
        set_nonblocking(fd, 0);
    r->start_us = mono_us(); /* exclude the bookkeeping above */
    int rc = close(fd);
    int saved_errno = errno;
    fds[s] = -1; /* Linux releases the descriptor even when close() fails */
    memset(&dsts[s], 0, sizeof dsts[s]);
    if (rc < 0) set_err(r, "close", saved_errno);
    else r->ok = 1;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* How late this machine wakes the probe: `samples` timed waits of `sleep_us` each, through the
 * same call the script's waits use (epoll_pwait2), and how much each overshot. */
static void do_calibrate(const struct step *st, struct result *r)
{
    long long *late = calloc((size_t)st->samples, sizeof *late);
    if (!late) { set_err(r, "calloc", ENOMEM); return; }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { int saved_errno = errno; free(late); set_err(r, "epoll_create1", saved_errno); return; }
    int n = 0;
    for (; n < st->samples && !stop_sig; n++) {
        struct timespec ts = { .tv_sec = st->sleep_us / 1000000, .tv_nsec = (st->sleep_us % 1000000) * 1000 };
        struct epoll_event ev;
        int64_t t0 = mono_us();
        if (epoll_pwait2(ep, &ev, 1, &ts, NULL) < 0 && errno != EINTR) { int saved_errno = errno; close(ep); free(late); set_err(r, "epoll_pwait2", saved_errno); return; }
        long long over = (long long)(mono_us() - t0) - st->sleep_us;
        late[n] = over < 0 ? 0 : over;
    }
    close(ep);
    if (n > 0) {
        qsort(late, (size_t)n, sizeof *late, cmp_ll);
        r->late_n = n;
        r->late_med_us = late[n / 2];
        r->late_p90_us = late[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
        r->late_max_us = late[n - 1];
    }
    free(late);
    r->ok = n > 0;
}

static void fill_addrs(int s, struct result *r)
{
    int fd = fds[s];
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &l) == 0) format_sockaddr((struct sockaddr *)&ss, r->local, sizeof r->local);
    l = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &l) == 0) format_sockaddr((struct sockaddr *)&ss, r->remote, sizeof r->remote);
    else if (dsts[s].sin_family == AF_INET) /* not (or no longer) connected: the connect target */
        format_sockaddr((struct sockaddr *)&dsts[s], r->remote, sizeof r->remote);
}

static void run_step(const struct step *st, struct result *r)
{
    memset(r, 0, sizeof *r);
    r->start_us = mono_us();
    int s = st->sock;
    switch (st->op) {
    case OP_SOCKET:
        if (fds[s] >= 0) set_err(r, "socket", EEXIST);
        else if (ensure_socket(s, r) == 0) r->ok = 1;
        break;
    case OP_SETSOCKOPT: do_setsockopt(st, r); break;
    case OP_CONNECT: do_connect(st, r); break;
    case OP_LISTEN: do_listen(st, r); break;
    case OP_WRITE: do_write(st, r); break;
    case OP_READ: do_read(st, r); break;
    case OP_WAIT: do_wait(st, r); break;
    case OP_SHUTDOWN:
        if (need_socket(s, r) < 0) break;
        if (shutdown(fds[s], st->how) < 0) { int saved_errno = errno; set_err(r, "shutdown", saved_errno); }
        else r->ok = 1;
        break;
    case OP_CLOSE:
        if (fds[s] >= 0) fill_addrs(s, r); /* which connection was closed */
        do_close(st, r);
        break;
    case OP_SLEEP: {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long ns = ts.tv_nsec + (st->ms % 1000) * 1000000LL;
        ts.tv_sec += st->ms / 1000 + ns / 1000000000LL;
        ts.tv_nsec = ns % 1000000000LL;
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR && !stop_sig) {}
        if (rc) set_err(r, "clock_nanosleep", rc);
        else r->ok = 1;
        break;
    }
    case OP_TCPINFO:
        if (need_socket(s, r) == 0) r->ok = 1;
        break;
    case OP_CALIBRATE: do_calibrate(st, r); break;
    case OP_BARRIER: {
        /* Tell the harness where we are (stderr, one JSON line), then wait for its line on stdin:
         * it fires the named trigger (a crash, a rule) in between. */
        fputs("{\"event\":\"barrier\",\"name\":", stderr);
        json_put_string(stderr, st->name);
        fprintf(stderr, ",\"tUs\":%lld}\n", (long long)r->start_us);
        fflush(stderr);
        char line[64];
        if (!barrier_input) set_err(r, "barrier", EBADF); /* script came on stdin: nobody can answer */
        else if (fgets(line, sizeof line, barrier_input)) r->ok = 1;
        else set_err(r, "barrier", EPIPE);
        break;
    }
    }
    r->end_us = mono_us();
    if (st->op != OP_SLEEP && st->op != OP_CLOSE && st->op != OP_BARRIER && st->op != OP_CALIBRATE && fds[s] >= 0) {
        fill_addrs(s, r);
        socklen_t l = sizeof r->ti;
        memset(&r->ti, 0, sizeof r->ti);
        if (getsockopt(fds[s], IPPROTO_TCP, TCP_INFO, &r->ti, &l) == 0) r->has_tcp = 1;
    }
}

static void print_result(FILE *f, size_t i, const struct step *st, const struct result *r)
{
    char eb[32], sb[32];
    fprintf(f, "{\"i\":%zu,\"op\":\"%s\",", i, op_name(st->op));
    if (st->op == OP_SLEEP || st->op == OP_BARRIER || st->op == OP_CALIBRATE) fputs("\"sock\":null,", f);
    else fprintf(f, "\"sock\":%d,", st->sock);
    if (st->label) { fputs("\"label\":", f); json_put_string(f, st->label); putc(',', f); }
    if (st->blocking) fputs("\"blocking\":true,", f);
    if (st->op == OP_CALIBRATE)
        fprintf(f, "\"late\":{\"samples\":%lld,\"sleepUs\":%lld,\"medianUs\":%lld,\"p90Us\":%lld,\"maxUs\":%lld},",
                r->late_n, st->sleep_us, r->late_med_us, r->late_p90_us, r->late_max_us);
    fprintf(f, "\"ok\":%s,", r->ok ? "true" : "false");
    if (r->err) fprintf(f, "\"errno\":\"%s\",\"errnoNum\":%d,", errno_name_buf(r->err, eb, sizeof eb), r->err);
    else fputs("\"errno\":null,\"errnoNum\":null,", f);
    fputs("\"call\":", f);
    json_put_string(f, r->err ? r->call : NULL);
    fprintf(f, ",\"startUs\":%lld,\"endUs\":%lld,\"durationUs\":%lld,\"timedOut\":%s,\"bytes\":%lld,\"eof\":%s,\"events\":[",
            (long long)r->start_us, (long long)r->end_us, (long long)(r->end_us - r->start_us),
            r->timed_out ? "true" : "false", r->bytes, r->eof ? "true" : "false");
    const char *names[16];
    size_t n = epoll_event_names(r->events, names, 16);
    for (size_t k = 0; k < n; k++) fprintf(f, "%s\"%s\"", k ? "," : "", names[k]);
    fputs("],\"local\":", f);
    json_put_string(f, r->local[0] ? r->local : NULL);
    fputs(",\"remote\":", f);
    json_put_string(f, r->remote[0] ? r->remote : NULL);
    fputs(",\"tcp\":", f);
    if (!r->has_tcp) fputs("null", f);
    else {
        const struct tcp_info *t = &r->ti;
        fprintf(f, "{\"state\":\"%s\",\"caState\":%u,\"retransmits\":%u,\"totalRetrans\":%u,\"retrans\":%u,"
                   "\"backoff\":%u,\"rtoUs\":%u,\"rttUs\":%u,\"rttvarUs\":%u,\"unacked\":%u,\"lost\":%u,"
                   "\"probes\":%u,\"sndCwnd\":%u,\"lastDataSentMs\":%u,\"lastDataRecvMs\":%u,\"lastAckRecvMs\":%u,"
                   "\"bytesAcked\":%llu,\"bytesReceived\":%llu,\"notsentBytes\":%u,\"sndWnd\":%u}",
                tcp_state_name_buf(t->tcpi_state, sb, sizeof sb), t->tcpi_ca_state, t->tcpi_retransmits,
                t->tcpi_total_retrans, t->tcpi_retrans, t->tcpi_backoff, t->tcpi_rto, t->tcpi_rtt,
                t->tcpi_rttvar, t->tcpi_unacked, t->tcpi_lost, t->tcpi_probes, t->tcpi_snd_cwnd,
                t->tcpi_last_data_sent, t->tcpi_last_data_recv, t->tcpi_last_ack_recv,
                (unsigned long long)t->tcpi_bytes_acked, (unsigned long long)t->tcpi_bytes_received,
                t->tcpi_notsent_bytes, t->tcpi_snd_wnd);
    }
    putc('}', f);
}

static int read_all(FILE *in, char **out, size_t *outlen)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf) return -1;
    for (;;) {
        if (n == cap) {
            if (cap >= (64u << 20)) { free(buf); errno = EFBIG; return -1; }
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); return -1; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, in);
        n += r;
        if (r == 0) {
            if (ferror(in)) { free(buf); return -1; }
            break;
        }
    }
    *out = buf;
    *outlen = n;
    return 0;
}

static int usage_client(void)
{
    fputs("usage: harness-probe client [--script FILE | --script-fd N]   (script JSON on stdin by default)\n", stderr);
    return 2;
}

int client_main(int argc, char **argv)
{
    const char *path = NULL;
    int script_fd = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--script")) {
            if (i + 1 >= argc) { fputs("harness-probe client: --script needs a FILE argument\n", stderr); return 2; }
            path = argv[++i];
        } else if (!strncmp(argv[i], "--script=", 9)) {
            path = argv[i] + 9;
        } else if (!strcmp(argv[i], "--script-fd")) {
            /* The harness passes the script on an inherited descriptor (a socketpair from Node,
             * which /dev/fd/N cannot open): no temporary file to leave behind. */
            char *end = NULL;
            long fd = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (fd < 3 || !end || *end) { fputs("harness-probe client: --script-fd needs a descriptor number >= 3\n", stderr); return 2; }
            script_fd = (int)fd;
            i++;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage_client();
            return 0;
        } else {
            fprintf(stderr, "harness-probe client: unknown argument '%s'\n", argv[i]);
            return usage_client();
        }
    }
    FILE *in = stdin;
    if (path) {
        in = fopen(path, "rb");
        if (!in) { fprintf(stderr, "harness-probe client: --script %s: %s\n", path, strerror(errno)); return 2; }
    } else if (script_fd >= 0) {
        in = fdopen(script_fd, "rb");
        if (!in) { fprintf(stderr, "harness-probe client: --script-fd %d: %s\n", script_fd, strerror(errno)); return 2; }
    }
    char *text;
    size_t len;
    if (read_all(in, &text, &len) < 0) {
        fprintf(stderr, "harness-probe client: reading script: %s\n", strerror(errno));
        return 2;
    }
    if (path || script_fd >= 0) { fclose(in); barrier_input = stdin; }
    struct script sc;
    char err[512];
    if (script_parse(text, len, &sc, err, sizeof err) < 0) {
        fprintf(stderr, "harness-probe client: invalid script: %s\n", err);
        free(text);
        return 2;
    }
    free(text);

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART: blocking waits return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    memset(wbuf, 'x', sizeof wbuf);
    /* Filling a large accept queue takes thousands of sockets: as many descriptors as the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max && rl.rlim_cur < MAX_SOCKS + 64) {
        rl.rlim_cur = rl.rlim_max < MAX_SOCKS + 64 ? rl.rlim_max : MAX_SOCKS + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (int i = 0; i < MAX_SOCKS; i++) fds[i] = -1;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) { fprintf(stderr, "harness-probe client: epoll_create1: %s\n", strerror(errno)); return 1; }
    struct result *res = calloc(sc.n ? sc.n : 1, sizeof *res);
    if (!res) { fputs("harness-probe client: out of memory\n", stderr); return 1; }

    size_t ran = 0;
    while (ran < sc.n && !stop_sig) {
        run_step(&sc.steps[ran], &res[ran]);
        ran++;
    }

    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    fputs("{\"probe\":\"harness-probe\",\"version\":1,\"mode\":\"client\",\"clock\":\"CLOCK_MONOTONIC\",\"steps\":[", stdout);
    for (size_t i = 0; i < ran; i++) {
        if (i) putc(',', stdout);
        print_result(stdout, i, &sc.steps[i], &res[i]);
    }
    /* interrupted: SIGTERM/SIGINT stopped the script; only the steps run so far are listed
     * (the step that was interrupted reports errno EINTR). */
    fprintf(stdout, "],\"interrupted\":%s,\"stepsTotal\":%zu}\n", stop_sig ? "true" : "false", sc.n);
    int rc = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) rc = 1;
    for (int i = 0; i < MAX_SOCKS; i++) if (fds[i] >= 0) close(fds[i]);
    close(epfd);
    free(res);
    script_free(&sc);
    return rc;
}
