/* `harness-probe server`: the built-in targets. Each mode is one row of MODES below (name,
 * summary, what it does on accept, what it does when a connection is readable) plus its two
 * handlers; nothing else names a mode: the usage text, the --mode check, --list-modes and the
 * harness's TypeScript list (generated from --list-modes at build time) all read the table.
 * One epoll loop; SIGTERM/SIGINT via signalfd.
 *
 * Every accept, read, write and close it makes is reported as one `{"event":"step",…}` line with
 * the client's step fields (op, ok, errno by name, startUs/endUs, bytes, eof, local, remote): the
 * harness's `serverSteps`. A read or write that would block is not a step (it is how the epoll
 * loop waits). */
#define _GNU_SOURCE
#include "server.h"
#include "json.h"
#include "names.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
    int fd;
    char remote[64];
    char local[64];
    char *pend;           /* echo: bytes read but not yet written back */
    size_t pend_off, pend_len;
    int peer_eof;
};

#define TAG_LISTEN  0xFFFFFFF0u
#define TAG_SIGNAL  0xFFFFFFF1u

static struct conn **conns;   /* indexed by fd */
static size_t nconns;
static int epfd;
static char buf[65536];

static void emit(const char *event, const struct conn *c, const char *extra)
{
    printf("{\"event\":\"%s\",\"remote\":\"%s\",\"tUs\":%lld%s%s}\n", event, c->remote,
           (long long)mono_us(), extra ? "," : "", extra ? extra : "");
    fflush(stdout);
}

static void emit_errno(const char *event, const struct conn *c, int e)
{
    char eb[32], x[96];
    snprintf(x, sizeof x, "\"errno\":\"%s\"", errno_name_buf(e, eb, sizeof eb));
    emit(event, c, x);
}

/* One syscall of the server, as a step (see the top of this file). `rc` is its return value, `err`
 * the errno saved right after it. */
static void step(const char *op, const struct conn *c, long long rc, int err, int64_t start_us, int64_t end_us)
{
    char eb[32];
    printf("{\"event\":\"step\",\"op\":\"%s\",\"ok\":%s,", op, rc >= 0 ? "true" : "false");
    if (rc < 0) printf("\"errno\":\"%s\",", errno_name_buf(err, eb, sizeof eb));
    else fputs("\"errno\":null,", stdout);
    printf("\"startUs\":%lld,\"endUs\":%lld,\"bytes\":%lld,\"eof\":%s,\"local\":\"%s\",\"remote\":\"%s\"}\n",
           (long long)start_us, (long long)end_us, rc > 0 && strcmp(op, "accept") ? rc : 0,
           !strcmp(op, "read") && rc == 0 ? "true" : "false", c->local, c->remote);
    fflush(stdout);
}

/* recv() as a step; returns what recv returned, with errno saved in *err. Would-block is not reported. */
static ssize_t recv_step(struct conn *c, int *err)
{
    int64_t t0 = mono_us();
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    *err = errno;
    if (n >= 0 || (*err != EAGAIN && *err != EWOULDBLOCK && *err != EINTR)) step("read", c, n, *err, t0, mono_us());
    return n;
}

/* close() as a step. */
static void close_step(struct conn *c)
{
    int64_t t0 = mono_us();
    int rc = close(c->fd);
    int saved_errno = errno;
    step("close", c, rc, saved_errno, t0, mono_us());
}

static struct conn *conn_new(int fd)
{
    if ((size_t)fd >= nconns) {
        size_t nn = nconns ? nconns : 64;
        while (nn <= (size_t)fd) nn *= 2;
        struct conn **na = realloc(conns, nn * sizeof *na);
        if (!na) return NULL;
        memset(na + nconns, 0, (nn - nconns) * sizeof *na);
        conns = na;
        nconns = nn;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    conns[fd] = c;
    return c;
}

static void conn_close(struct conn *c, const char *why)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close_step(c);
    char x[64];
    snprintf(x, sizeof x, "\"reason\":\"%s\"", why);
    emit("close", c, x);
    conns[c->fd] = NULL;
    free(c->pend);
    free(c);
}

/* Stop watching but keep the descriptor (no-close mode never closes). */
static void conn_forget(struct conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

static void set_events(struct conn *c, uint32_t ev)
{
    struct epoll_event e = { .events = ev, .data.u32 = (uint32_t)c->fd };
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

/* echo: try to flush pending bytes; returns -1 if the connection was closed. */
static int echo_flush(struct conn *c)
{
    while (c->pend_off < c->pend_len) {
        int64_t t0 = mono_us();
        ssize_t n = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
        int saved_errno = errno;
        if (n >= 0 || (saved_errno != EAGAIN && saved_errno != EWOULDBLOCK && saved_errno != EINTR))
            step("write", c, n, saved_errno, t0, mono_us());
        if (n > 0) { c->pend_off += (size_t)n; continue; }
        if (n < 0 && saved_errno == EINTR) continue;
        if (n < 0 && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
            set_events(c, EPOLLOUT); /* stop reading until the peer drains: backpressure */
            return 0;
        }
        emit_errno("error", c, saved_errno);
        conn_close(c, "error");
        return -1;
    }
    c->pend_off = c->pend_len = 0;
    if (c->peer_eof) { conn_close(c, "eof"); return -1; }
    set_events(c, EPOLLIN | EPOLLRDHUP);
    return 0;
}

/* Closes a connection the server is done with, says so (with `extra` JSON fields), and frees it. */
static void close_conn(struct conn *c, const char *extra)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close_step(c);
    emit("close", c, extra);
    conns[c->fd] = NULL;
    free(c);
}

/* --- the modes: two handlers each, and one row of MODES ------------------------------------- */

/* Watch a new connection for data, EOF and errors: they go to the mode's on_readable. */
static void watch_conn(struct conn *c)
{
    struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)c->fd };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e) < 0) {
        fprintf(stderr, "harness-probe server: epoll_ctl: %s\n", strerror(errno));
    }
}

/* sink: never read, never close, not watched. */
static void keep_unwatched(struct conn *c)
{
    (void)c;
}

static void close_at_once(struct conn *c)
{
    conn_close(c, "close-on-accept");
}

static void echo_readable(struct conn *c, uint32_t ev)
{
    if (ev & EPOLLOUT) { echo_flush(c); return; }
    int saved_errno;
    ssize_t n = recv_step(c, &saved_errno);
    if (n > 0) {
        char *p = realloc(c->pend, (size_t)n);
        if (!p) { conn_close(c, "nomem"); return; }
        c->pend = p;
        memcpy(p, buf, (size_t)n);
        c->pend_off = 0;
        c->pend_len = (size_t)n;
        echo_flush(c);
        return;
    }
    if (n == 0) { emit("eof", c, NULL); c->peer_eof = 1; conn_close(c, "eof"); return; }
    if (saved_errno == EINTR || saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) return;
    emit_errno("error", c, saved_errno);
    conn_close(c, "error");
}

/* no-close: read and discard; after EOF or an error stop watching, but never close. */
static void discard_readable(struct conn *c, uint32_t ev)
{
    (void)ev;
    for (;;) {
        int saved_errno;
        ssize_t n = recv_step(c, &saved_errno);
        if (n > 0) continue;
        if (n == 0) { emit("eof", c, NULL); conn_forget(c); return; }
        if (saved_errno == EINTR) continue;
        if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) return;
        emit_errno("error", c, saved_errno);
        conn_forget(c);
        return;
    }
}

/* close-unread: close without reading; data still in the receive queue makes close() send a RST
 * (__tcp_close() in net/ipv4/tcp.c, counted as TcpExtTCPAbortOnClose). */
static void close_unread_readable(struct conn *c, uint32_t ev)
{
    (void)ev;
    int avail = 0;
    ioctl(c->fd, FIONREAD, &avail);
    char x[48];
    snprintf(x, sizeof x, "\"unread\":%d", avail);
    close_conn(c, x);
}

static void linger0_accept(struct conn *c)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0) {
        fprintf(stderr, "harness-probe server: setsockopt SO_LINGER: %s\n", strerror(errno));
    }
    watch_conn(c);
}

/* linger0: read everything that arrived (so close() has no unread data to abort on), then close:
 * SO_LINGER {1,0} turns the close into tcp_disconnect() → RST (TcpExtTCPAbortOnData). */
static void linger0_readable(struct conn *c, uint32_t ev)
{
    (void)ev;
    long long got = 0;
    for (;;) {
        int saved_errno;
        ssize_t n = recv_step(c, &saved_errno);
        if (n > 0) { got += n; continue; }
        if (n < 0 && saved_errno == EINTR) continue;
        if (n < 0 && saved_errno != EAGAIN && saved_errno != EWOULDBLOCK) { emit_errno("error", c, saved_errno); break; }
        if (n == 0) emit("eof", c, NULL);
        break;
    }
    char x[48];
    snprintf(x, sizeof x, "\"read\":%lld", got);
    close_conn(c, x);
}

/* request-reply: an HTTP-like request/response server. It reads until a request is complete (its
 * blank line, CRLF CRLF) and only then writes one reply — so while a request is incomplete it has
 * nothing to send, and its kernel may delay the ACK (what Nagle on the client waits for). A
 * request whose first line says HTTP/1.0 gets its reply and then the server closes first: the
 * TIME_WAIT lands on the server's port. */
#define REQUEST_MAX 65536
static const char REPLY_KEEP[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
static const char REPLY_CLOSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/* Answers every complete request in c->pend; returns -1 if the connection was closed. */
static int reply_complete_requests(struct conn *c)
{
    for (;;) {
        char *end = memmem(c->pend, c->pend_len, "\r\n\r\n", 4);
        if (!end) return 0;
        size_t reqlen = (size_t)(end + 4 - c->pend);
        char *eol = memmem(c->pend, reqlen, "\r\n", 2);
        int close_after = eol && memmem(c->pend, (size_t)(eol - c->pend), "HTTP/1.0", 8) != NULL;
        memmove(c->pend, c->pend + reqlen, c->pend_len - reqlen);
        c->pend_len -= reqlen;
        const char *reply = close_after ? REPLY_CLOSE : REPLY_KEEP;
        size_t len = strlen(reply);
        /* A reply this small always fits an empty send buffer: one send, one segment. */
        ssize_t n = send(c->fd, reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        int saved_errno = errno;
        if (n != (ssize_t)len) {
            emit_errno("error", c, n < 0 ? saved_errno : EAGAIN);
            conn_close(c, "error");
            return -1;
        }
        if (close_after) { conn_close(c, "replied"); return -1; }
    }
}

static void request_reply_readable(struct conn *c, uint32_t ev)
{
    (void)ev;
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        int saved_errno = errno;
        if (n == 0) { emit("eof", c, NULL); conn_close(c, "eof"); return; }
        if (n < 0) {
            if (saved_errno == EINTR) continue;
            if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) return;
            emit_errno("error", c, saved_errno);
            conn_close(c, "error");
            return;
        }
        if (c->pend_len + (size_t)n > REQUEST_MAX) { conn_close(c, "request-too-long"); return; }
        char *p = realloc(c->pend, c->pend_len + (size_t)n);
        if (!p) { conn_close(c, "nomem"); return; }
        c->pend = p;
        memcpy(p + c->pend_len, buf, (size_t)n);
        c->pend_len += (size_t)n;
        if (reply_complete_requests(c) < 0) return;
    }
}

/* The built-in targets. A new mode is one row here plus its handlers. on_accept NULL: the
 * listener is never watched, so connections wait in the accept queue; on_readable NULL: the mode
 * never watches a connection. --list-modes prints name and summary. */
static const struct server_mode MODES[] = {
    { "echo", "writes back every byte it reads; closes after the peer's FIN",
      watch_conn, echo_readable },
    { "no-accept", "listens with the given backlog and never accepts: connections wait in the accept queue",
      NULL, NULL },
    { "no-close", "accepts, reads and discards, never closes, even after the peer's FIN or a RST (CLOSE_WAIT)",
      watch_conn, discard_readable },
    { "sink", "accepts, never reads, never closes",
      keep_unwatched, NULL },
    { "close-on-accept", "closes each connection as soon as it is accepted",
      close_at_once, NULL },
    { "close-unread", "closes without reading once data or EOF arrives: a RST if data was unread",
      watch_conn, close_unread_readable },
    { "linger0", "SO_LINGER {1,0}; once data or EOF arrives, reads everything, then closes: a RST with nothing unread",
      linger0_accept, linger0_readable },
    { "request-reply", "HTTP-like: replies once a request is complete (CRLF CRLF), never before; closes first after an HTTP/1.0 request",
      watch_conn, request_reply_readable },
};
#define NMODES (sizeof MODES / sizeof MODES[0])

static const struct server_mode *mode;

const struct server_mode *server_modes(size_t *n)
{
    *n = NMODES;
    return MODES;
}

const struct server_mode *server_mode_find(const char *name)
{
    for (size_t k = 0; k < NMODES; k++)
        if (!strcmp(name, MODES[k].name)) return &MODES[k];
    return NULL;
}

void server_mode_names(FILE *f, const char *sep)
{
    for (size_t k = 0; k < NMODES; k++) fprintf(f, "%s%s", k ? sep : "", MODES[k].name);
}

void server_list_modes(FILE *f)
{
    fputc('[', f);
    for (size_t k = 0; k < NMODES; k++) {
        fputs(k ? ",{\"name\":" : "{\"name\":", f);
        json_put_string(f, MODES[k].name);
        fputs(",\"summary\":", f);
        json_put_string(f, MODES[k].summary);
        fputc('}', f);
    }
    fputs("]\n", f);
}

static void on_accept(int lfd)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t l = sizeof ss;
        int64_t t0 = mono_us();
        int fd = accept4(lfd, (struct sockaddr *)&ss, &l, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int64_t t1 = mono_us();
        if (fd < 0) {
            int saved_errno = errno;
            if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) return;
            if (saved_errno == EINTR || saved_errno == ECONNABORTED || saved_errno == EPROTO) continue;
            char eb[32];
            fprintf(stderr, "harness-probe server: accept: %s\n", errno_name_buf(saved_errno, eb, sizeof eb));
            return;
        }
        struct conn *c = conn_new(fd);
        if (!c) { close(fd); fputs("harness-probe server: out of memory\n", stderr); return; }
        format_sockaddr((struct sockaddr *)&ss, c->remote, sizeof c->remote);
        char x[96];
        struct sockaddr_storage ls;
        socklen_t ll = sizeof ls;
        if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0) format_sockaddr((struct sockaddr *)&ls, c->local, sizeof c->local);
        step("accept", c, fd, 0, t0, t1);
        snprintf(x, sizeof x, "\"local\":\"%s\"", c->local);
        emit("accept", c, x);
        mode->on_accept(c);
    }
}

static void on_conn_event(struct conn *c, uint32_t ev)
{
    if (mode->on_readable) mode->on_readable(c, ev);
    else conn_forget(c); /* an on_accept that watches without a handler: stop, rather than spin */
}

static int usage(void)
{
    fputs("usage: harness-probe server --mode MODE --listen ADDR:PORT [--backlog N] [--reuseaddr 0|1] [--reuseport 0|1]\n"
          "       harness-probe server --list-modes     the modes as one JSON array of {name, summary}\n"
          "  MODE: ", stderr);
    server_mode_names(stderr, " | ");
    fputs("\n  ADDR must be a numeric IPv4 address; PORT 0 picks a free port (reported in the listening line)\n", stderr);
    return 2;
}

int server_main(int argc, char **argv)
{
    const char *mode_s = NULL, *listen_s = NULL, *backlog_s = NULL, *reuseaddr_s = NULL, *reuseport_s = NULL;
    int list_modes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], **dst = NULL;
        const char *val = NULL;
        const char *flags[] = { "--mode", "--listen", "--backlog", "--reuseaddr", "--reuseport" };
        const char **dsts[] = { &mode_s, &listen_s, &backlog_s, &reuseaddr_s, &reuseport_s };
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        if (!strcmp(a, "--list-modes")) { list_modes = 1; continue; }
        for (int k = 0; k < 5; k++) {
            size_t fl = strlen(flags[k]);
            if (!strcmp(a, flags[k])) {
                if (i + 1 >= argc) { fprintf(stderr, "harness-probe server: %s needs a value\n", a); return usage(); }
                dst = dsts[k]; val = argv[++i];
            } else if (!strncmp(a, flags[k], fl) && a[fl] == '=') {
                dst = dsts[k]; val = a + fl + 1;
            }
        }
        if (!dst) { fprintf(stderr, "harness-probe server: unknown argument '%s'\n", a); return usage(); }
        *dst = val;
    }
    if (list_modes) {
        if (mode_s || listen_s || backlog_s || reuseaddr_s || reuseport_s) { fputs("harness-probe server: --list-modes takes no other flag\n", stderr); return usage(); }
        server_list_modes(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (!mode_s) { fputs("harness-probe server: --mode is required\n", stderr); return usage(); }
    mode = server_mode_find(mode_s);
    if (!mode) {
        fprintf(stderr, "harness-probe server: --mode: unknown mode '%s' (known: ", mode_s);
        server_mode_names(stderr, ", ");
        fputs(")\n", stderr);
        return usage();
    }
    if (!listen_s) { fputs("harness-probe server: --listen is required\n", stderr); return usage(); }
    struct sockaddr_in addr;
    if (parse_ipv4_port(listen_s, &addr) < 0) {
        fprintf(stderr, "harness-probe server: --listen: '%s' is not numeric IPv4 ADDR:PORT\n", listen_s);
        return usage();
    }
    long long backlog = 128;
    if (backlog_s && parse_int_range(backlog_s, 0, 65535, &backlog) < 0) {
        fprintf(stderr, "harness-probe server: --backlog: '%s' is not an integer in [0, 65535]\n", backlog_s);
        return usage();
    }

    /* SO_REUSEADDR on by default (what most servers do); both are inherited by every accepted
     * connection, and by its TIME_WAIT: what a later bind() on the port is checked against. */
    long long reuseaddr = 1, reuseport = 0;
    if (reuseaddr_s && parse_int_range(reuseaddr_s, 0, 1, &reuseaddr) < 0) {
        fprintf(stderr, "harness-probe server: --reuseaddr: '%s' is not 0 or 1\n", reuseaddr_s);
        return usage();
    }
    if (reuseport_s && parse_int_range(reuseport_s, 0, 1, &reuseport) < 0) {
        fprintf(stderr, "harness-probe server: --reuseport: '%s' is not 0 or 1\n", reuseport_s);
        return usage();
    }

    signal(SIGPIPE, SIG_IGN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || epfd < 0) { fprintf(stderr, "harness-probe server: %s\n", strerror(errno)); return 1; }
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = TAG_SIGNAL };
    epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &e);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) { fprintf(stderr, "harness-probe server: socket: %s\n", strerror(errno)); return 1; }
    int ra = (int)reuseaddr, rp = (int)reuseport;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &ra, sizeof ra) < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &rp, sizeof rp) < 0) {
        fprintf(stderr, "harness-probe server: setsockopt: %s\n", strerror(errno));
        return 1;
    }
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        char eb[32];
        int saved_errno = errno;
        fprintf(stderr, "harness-probe server: --listen %s: bind: %s (%s)\n", listen_s,
                errno_name_buf(saved_errno, eb, sizeof eb), strerror(saved_errno));
        return 1;
    }
    if (listen(lfd, (int)backlog) < 0) {
        fprintf(stderr, "harness-probe server: listen: %s\n", strerror(errno));
        return 1;
    }
    struct sockaddr_in bound;
    socklen_t bl = sizeof bound;
    getsockname(lfd, (struct sockaddr *)&bound, &bl);
    char hostb[64], full[64];
    format_sockaddr((struct sockaddr *)&bound, full, sizeof full);
    snprintf(hostb, sizeof hostb, "%s", full);
    *strrchr(hostb, ':') = 0;
    if (mode->on_accept) {
        e.events = EPOLLIN;
        e.data.u32 = TAG_LISTEN;
        epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &e);
    }
    printf("{\"event\":\"listening\",\"addr\":\"%s\",\"port\":%u,\"backlog\":%lld,\"mode\":\"%s\",\"reuseaddr\":%s,\"reuseport\":%s,\"pid\":%d,\"tUs\":%lld}\n",
           hostb, ntohs(bound.sin_port), backlog, mode->name, ra ? "true" : "false", rp ? "true" : "false",
           (int)getpid(), (long long)mono_us());
    fflush(stdout);

    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(epfd, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "harness-probe server: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            uint32_t tag = evs[i].data.u32;
            if (tag == TAG_SIGNAL) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    fflush(stdout);
                    return 0;
                }
                continue;
            }
            if (tag == TAG_LISTEN) { on_accept(lfd); continue; }
            if (tag < nconns && conns[tag]) on_conn_event(conns[tag], evs[i].events);
        }
    }
}
