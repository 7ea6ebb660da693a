/* Unit tests for the pure parts of harness-probe: JSON parser, errno/state
 * tables, step-script validator, the server's mode table, the delayer's release schedule. Prints "N passed, N failed"; exit 1 on
 * failure. */
#define _GNU_SOURCE
#include "delay.h"
#include "json.h"
#include "names.h"
#include "script.h"
#include "server.h"
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>

static int passed, failed;

#define CHECK(cond, ...) do { \
    if (cond) passed++; \
    else { failed++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

static jvalue *parse_ok(const char *s)
{
    jvalue *v = NULL;
    char err[256];
    int r = json_parse(s, strlen(s), &v, err, sizeof err);
    CHECK(r == 0 && v, "expected valid JSON: %s (%s)", s, err);
    return v;
}

static void parse_bad(const char *s, const char *needle)
{
    jvalue *v = NULL;
    char err[256] = "";
    int r = json_parse(s, strlen(s), &v, err, sizeof err);
    CHECK(r < 0 && !v, "expected malformed JSON to be rejected: %s", s);
    if (r < 0 && needle) CHECK(strstr(err, needle) != NULL, "error for %s should mention '%s', got: %s", s, needle, err);
    if (v) json_free(v);
}

static void test_json(void)
{
    jvalue *v = parse_ok(" {\"a\": [1, -2, true, false, null, \"x\\n\\u00e9\\ud83d\\ude00\"], \"b\": {}} ");
    if (v) {
        CHECK(v->type == JV_OBJECT && v->u.obj.n == 2, "object with 2 members");
        const jvalue *a = json_get(v, "a");
        CHECK(a && a->type == JV_ARRAY && a->u.arr.n == 6, "array of 6");
        if (a && a->u.arr.n == 6) {
            CHECK(a->u.arr.items[0]->type == JV_INT && a->u.arr.items[0]->u.i == 1, "int 1");
            CHECK(a->u.arr.items[1]->u.i == -2, "int -2");
            CHECK(a->u.arr.items[2]->type == JV_BOOL && a->u.arr.items[2]->u.b == 1, "true");
            CHECK(a->u.arr.items[3]->type == JV_BOOL && a->u.arr.items[3]->u.b == 0, "false");
            CHECK(a->u.arr.items[4]->type == JV_NULL, "null");
            CHECK(a->u.arr.items[5]->type == JV_STRING &&
                  strcmp(a->u.arr.items[5]->u.str.s, "x\n\xc3\xa9\xf0\x9f\x98\x80") == 0, "escapes + surrogate pair");
        }
        CHECK(json_get(v, "b") && json_get(v, "b")->type == JV_OBJECT, "nested empty object");
        CHECK(json_get(v, "zz") == NULL, "absent key");
        json_free(v);
    }
    v = parse_ok("9223372036854775807");
    if (v) { CHECK(v->u.i == 9223372036854775807LL, "max int64"); json_free(v); }
    v = parse_ok("-9223372036854775808");
    if (v) { CHECK(v->u.i == (-9223372036854775807LL - 1), "min int64"); json_free(v); }
    v = parse_ok("[]");
    if (v) { CHECK(v->type == JV_ARRAY && v->u.arr.n == 0, "empty array"); json_free(v); }
    v = parse_ok("\"\xc3\xa9\"");
    if (v) json_free(v);

    parse_bad("", "unexpected end");
    parse_bad("   ", "unexpected end");
    parse_bad("{", "unterminated");
    parse_bad("{\"a\":1,}", "trailing comma");
    parse_bad("[1,]", "trailing comma");
    parse_bad("[1 2]", "expected ','");
    parse_bad("{\"a\" 1}", "expected ':'");
    parse_bad("{a:1}", "expected string key");
    parse_bad("{\"a\":1,\"a\":2}", "duplicate key");
    parse_bad("1.5", "only integers");
    parse_bad("1e3", "only integers");
    parse_bad("01", "leading zeros");
    parse_bad("-", "invalid number");
    parse_bad("99999999999999999999", "out of range");
    parse_bad("tru", "unexpected character");
    parse_bad("truex", "unexpected character");
    parse_bad("nul", NULL);
    parse_bad("\"abc", "unterminated string");
    parse_bad("\"a\tb\"", "control character");
    parse_bad("\"\\x\"", "invalid escape");
    parse_bad("\"\\u12\"", NULL);
    parse_bad("\"\\ud83d\"", "surrogate");
    parse_bad("\"\\ude00\"", "surrogate");
    parse_bad("\"\\u0000\"", "not allowed");
    parse_bad("\"\xff\"", "UTF-8");
    parse_bad("\"\xc0\xaf\"", "UTF-8");
    parse_bad("{} {}", "trailing data");
    parse_bad("[1] x", "trailing data");
    parse_bad("'a'", "unexpected character");
    parse_bad("NaN", NULL);
    {
        char deep[200];
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        jvalue *d = NULL;
        char err[256];
        CHECK(json_parse(deep, 200, &d, err, sizeof err) < 0 && strstr(err, "nesting"), "depth limit: %s", err);
    }
    {
        /* error position is reported */
        jvalue *d = NULL;
        char err[256];
        json_parse("{\n  \"a\": x}", 11, &d, err, sizeof err);
        CHECK(strstr(err, "line 2 column 8") != NULL, "line/column in error: %s", err);
    }
}

static void test_names(void)
{
    CHECK(!strcmp(errno_name(ETIMEDOUT), "ETIMEDOUT"), "ETIMEDOUT");
    CHECK(!strcmp(errno_name(ECONNREFUSED), "ECONNREFUSED"), "ECONNREFUSED");
    CHECK(!strcmp(errno_name(EWOULDBLOCK), "EAGAIN"), "EWOULDBLOCK reported as EAGAIN");
    CHECK(!strcmp(errno_name(ENOTSUP), "EOPNOTSUPP"), "ENOTSUP reported as EOPNOTSUPP");
    const char *required[] = { "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET", "EPIPE", "EHOSTUNREACH",
        "ENETUNREACH", "EADDRNOTAVAIL", "EADDRINUSE", "EAGAIN", "EINPROGRESS", "EALREADY", "ENOTCONN",
        "EISCONN", "EACCES", "EPERM", "ENOBUFS", "ECONNABORTED", "EPROTO", "EINVAL", "EBADF", "EINTR",
        "EMFILE", "ENFILE", "ENOMEM", "ENOPROTOOPT", "EOPNOTSUPP", "ENETDOWN", "EHOSTDOWN", "ENETRESET" };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        int n = errno_from_name(required[i]);
        CHECK(n > 0 && errno_name(n) && !strcmp(errno_name(n), required[i]), "errno table has %s", required[i]);
    }
    CHECK(errno_name(0) == NULL, "0 has no name");
    char b[32];
    CHECK(!strcmp(errno_name_buf(4095, b, sizeof b), "E4095"), "unknown errno -> E<num>");
    CHECK(!strcmp(errno_name_buf(EPIPE, b, sizeof b), "EPIPE"), "errno_name_buf known");
    /* every errno 1..133 that strerror knows should be named */
    for (int e = 1; e <= 133; e++) {
        if (e == 41 || e == 58) continue; /* unused numbers on Linux */
        CHECK(errno_name(e) != NULL, "errno %d has a name", e);
    }

    const char *states[] = { NULL, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
        "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV" };
    for (int s = 1; s <= 12; s++)
        CHECK(tcp_state_name(s) && !strcmp(tcp_state_name(s), states[s]), "state %d = %s", s, states[s]);
    CHECK(tcp_state_name(0) == NULL, "state 0 unknown");
    CHECK(tcp_state_name(99) == NULL, "state 99 unknown");
    CHECK(!strcmp(tcp_state_name_buf(99, b, sizeof b), "STATE99"), "unknown state -> STATE<n>");

    const char *names[16];
    size_t n = epoll_event_names(EPOLLOUT | EPOLLERR | EPOLLHUP, names, 16);
    CHECK(n == 3 && !strcmp(names[0], "EPOLLOUT") && !strcmp(names[1], "EPOLLERR") && !strcmp(names[2], "EPOLLHUP"),
          "epoll names");
    CHECK(epoll_event_names(0, names, 16) == 0, "no events -> empty");
    n = epoll_event_names(EPOLLIN | EPOLLRDHUP, names, 16);
    CHECK(n == 2 && !strcmp(names[1], "EPOLLRDHUP"), "EPOLLRDHUP");
}

static int script_ok(const char *s, struct script *sc)
{
    char err[512];
    int r = script_parse(s, strlen(s), sc, err, sizeof err);
    CHECK(r == 0, "expected valid script: %s (%s)", s, err);
    return r;
}

static void script_bad(const char *s, const char *needle)
{
    struct script sc;
    char err[512] = "";
    int r = script_parse(s, strlen(s), &sc, err, sizeof err);
    CHECK(r < 0, "expected script to be rejected: %s", s);
    if (r == 0) script_free(&sc);
    else if (needle) CHECK(strstr(err, needle) != NULL, "error for %s should mention '%s', got: %s", s, needle, err);
}

static void test_script(void)
{
    struct script sc;
    const char *full =
        "{\"host\":\"198.18.0.1\",\"port\":9000,\"steps\":["
        "{\"op\":\"socket\",\"sock\":0},"
        "{\"op\":\"setsockopt\",\"sock\":0,\"opt\":\"SYNCNT\",\"value\":2},"
        "{\"op\":\"setsockopt\",\"opt\":\"LINGER\",\"value\":5,\"onoff\":1},"
        "{\"op\":\"setsockopt\",\"opt\":\"KEEPALIVE\",\"value\":true},"
        "{\"op\":\"connect\",\"sock\":0,\"timeoutMs\":30000},"
        "{\"op\":\"write\",\"sock\":0,\"bytes\":1000,\"timeoutMs\":5000},"
        "{\"op\":\"read\",\"sock\":0,\"bytes\":1000,\"timeoutMs\":5000},"
        "{\"op\":\"read\"},"
        "{\"op\":\"wait\",\"sock\":0,\"timeoutMs\":5000},"
        "{\"op\":\"shutdown\",\"sock\":0,\"how\":\"wr\"},"
        "{\"op\":\"close\",\"sock\":0},"
        "{\"op\":\"sleep\",\"ms\":100},"
        "{\"op\":\"tcpinfo\",\"sock\":255,\"label\":\"snap\"},"
        "{\"op\":\"connect\",\"sock\":7,\"host\":\"10.0.0.9\",\"port\":81,\"bindPort\":40000}"
        "]}";
    if (script_ok(full, &sc) == 0) {
        CHECK(sc.n == 14, "14 steps");
        CHECK(sc.steps[0].op == OP_SOCKET && sc.steps[0].sock == 0, "socket step");
        CHECK(sc.steps[1].op == OP_SETSOCKOPT && sc.steps[1].opt == SOPT_SYNCNT && sc.steps[1].value == 2, "SYNCNT");
        CHECK(sc.steps[2].opt == SOPT_LINGER && sc.steps[2].value == 5 && sc.steps[2].onoff == 1, "LINGER");
        CHECK(sc.steps[3].opt == SOPT_KEEPALIVE && sc.steps[3].value == 1, "bool value");
        CHECK(sc.steps[4].op == OP_CONNECT && sc.steps[4].timeout_ms == 30000 &&
              sc.steps[4].dst.sin_port == htons(9000) && sc.steps[4].dst.sin_addr.s_addr == inet_addr("198.18.0.1") &&
              sc.steps[4].bind_port == -1, "connect uses top-level host/port");
        CHECK(sc.steps[5].op == OP_WRITE && sc.steps[5].bytes == 1000 && sc.steps[5].timeout_ms == 5000, "write");
        CHECK(sc.steps[6].op == OP_READ && sc.steps[6].has_bytes && sc.steps[6].bytes == 1000, "read with bytes");
        CHECK(sc.steps[7].op == OP_READ && !sc.steps[7].has_bytes && sc.steps[7].sock == 0 &&
              sc.steps[7].timeout_ms == DEFAULT_TIMEOUT_MS, "read defaults");
        CHECK(sc.steps[9].how == SHUT_WR, "shutdown wr");
        CHECK(sc.steps[11].op == OP_SLEEP && sc.steps[11].ms == 100 && sc.steps[11].sock == -1, "sleep");
        CHECK(sc.steps[12].sock == 255 && sc.steps[12].label && !strcmp(sc.steps[12].label, "snap"), "label");
        CHECK(sc.steps[13].dst.sin_port == htons(81) && sc.steps[13].dst.sin_addr.s_addr == inet_addr("10.0.0.9") &&
              sc.steps[13].bind_port == 40000 && sc.steps[13].sock == 7, "connect overrides");
        script_free(&sc);
    }
    /* write data (exact bytes, escapes decoded), the new sockopts, listen (bind + listen). */
    const char *more =
        "{\"host\":\"198.18.0.1\",\"port\":9000,\"steps\":["
        "{\"op\":\"write\",\"data\":\"GET / HTTP/1.1\\r\\n\\r\\n\",\"timeoutMs\":10},"
        "{\"op\":\"setsockopt\",\"opt\":\"CORK\",\"value\":1},"
        "{\"op\":\"setsockopt\",\"opt\":\"REUSEADDR\",\"value\":0},"
        "{\"op\":\"setsockopt\",\"opt\":\"REUSEPORT\",\"value\":true},"
        "{\"op\":\"listen\",\"sock\":3},"
        "{\"op\":\"listen\",\"host\":\"198.18.0.1\",\"port\":80,\"backlog\":0},"
        "{\"op\":\"write\",\"data\":\"\"}"
        "]}";
    if (script_ok(more, &sc) == 0) {
        CHECK(sc.steps[0].op == OP_WRITE && sc.steps[0].data_len == 18 && sc.steps[0].bytes == 18 &&
              !memcmp(sc.steps[0].data, "GET / HTTP/1.1\r\n\r\n", 18), "write data: exact bytes");
        CHECK(sc.steps[1].opt == SOPT_CORK && sc.steps[1].value == 1, "CORK");
        CHECK(sc.steps[2].opt == SOPT_REUSEADDR && sc.steps[2].value == 0, "REUSEADDR");
        CHECK(sc.steps[3].opt == SOPT_REUSEPORT && sc.steps[3].value == 1, "REUSEPORT");
        CHECK(sc.steps[4].op == OP_LISTEN && sc.steps[4].sock == 3 && sc.steps[4].backlog == 128 &&
              sc.steps[4].dst.sin_addr.s_addr == htonl(INADDR_ANY) && sc.steps[4].dst.sin_port == htons(9000),
              "listen: wildcard address, the script's port, backlog 128");
        CHECK(sc.steps[5].dst.sin_addr.s_addr == inet_addr("198.18.0.1") && sc.steps[5].dst.sin_port == htons(80) &&
              sc.steps[5].backlog == 0, "listen overrides");
        CHECK(sc.steps[6].data_len == 0 && sc.steps[6].bytes == 0, "empty data");
        script_free(&sc);
    }
    script_bad("{\"steps\":[{\"op\":\"write\",\"bytes\":1,\"data\":\"x\"}]}", "not both");
    script_bad("{\"steps\":[{\"op\":\"write\",\"data\":1}]}", "\"data\" must be a string");
    script_bad("{\"steps\":[{\"op\":\"read\",\"data\":\"x\"}]}", "unknown field \"data\"");
    script_bad("{\"steps\":[{\"op\":\"listen\"}]}", "no \"port\"");
    script_bad("{\"port\":1,\"steps\":[{\"op\":\"listen\",\"backlog\":70000}]}", "out of range");
    script_bad("{\"port\":1,\"steps\":[{\"op\":\"listen\",\"timeoutMs\":1}]}", "unknown field \"timeoutMs\"");
    script_bad("{\"port\":1,\"steps\":[{\"op\":\"listen\",\"host\":\"any\"}]}", "not a numeric IPv4");
    if (script_ok("{\"steps\":[]}", &sc) == 0) { CHECK(sc.n == 0, "empty steps"); script_free(&sc); }
    if (script_ok("{\"steps\":[{\"op\":\"connect\",\"host\":\"127.0.0.1\",\"port\":1}]}", &sc) == 0) script_free(&sc);

    script_bad("[]", "top level must be an object");
    script_bad("{\"host\":\"1.2.3.4\"}", "missing required field \"steps\"");
    script_bad("{\"steps\":{}}", "must be an array");
    script_bad("{\"steps\":[],\"extra\":1}", "unknown top-level field");
    script_bad("{\"host\":\"localhost\",\"port\":1,\"steps\":[]}", "not a numeric IPv4");
    script_bad("{\"host\":\"1.2.3.4\",\"port\":70000,\"steps\":[]}", "out of range");
    script_bad("{\"steps\":[1]}", "must be an object");
    script_bad("{\"steps\":[{}]}", "missing required field \"op\"");
    script_bad("{\"steps\":[{\"op\":\"frobnicate\"}]}", "unknown op \"frobnicate\"");
    script_bad("{\"steps\":[{\"op\":5}]}", "\"op\" must be a string");
    script_bad("{\"steps\":[{\"op\":\"close\",\"sock\":8192}]}", "out of range");
    script_bad("{\"steps\":[{\"op\":\"close\",\"sock\":-1}]}", "out of range");
    script_bad("{\"steps\":[{\"op\":\"close\",\"sock\":\"0\"}]}", "must be an integer");
    script_bad("{\"steps\":[{\"op\":\"close\",\"bytes\":3}]}", "unknown field \"bytes\"");
    script_bad("{\"steps\":[{\"op\":\"sleep\",\"sock\":0,\"ms\":1}]}", "unknown field \"sock\"");
    script_bad("{\"steps\":[{\"op\":\"sleep\"}]}", "missing required field \"ms\"");
    script_bad("{\"steps\":[{\"op\":\"write\"}]}", "missing required field \"bytes\" (or \"data\")");
    script_bad("{\"steps\":[{\"op\":\"write\",\"bytes\":-1}]}", "out of range");
    script_bad("{\"steps\":[{\"op\":\"read\",\"bytes\":0}]}", "out of range");
    script_bad("{\"steps\":[{\"op\":\"shutdown\"}]}", "missing required field \"how\"");
    script_bad("{\"steps\":[{\"op\":\"shutdown\",\"how\":\"both\"}]}", "\"how\" must be");
    script_bad("{\"steps\":[{\"op\":\"setsockopt\",\"value\":1}]}", "missing required field \"opt\"");
    script_bad("{\"steps\":[{\"op\":\"setsockopt\",\"opt\":\"SYNCNT\"}]}", "missing required field \"value\"");
    script_bad("{\"steps\":[{\"op\":\"setsockopt\",\"opt\":\"FOO\",\"value\":1}]}", "unknown opt \"FOO\"");
    script_bad("{\"steps\":[{\"op\":\"setsockopt\",\"opt\":\"NODELAY\",\"value\":1,\"onoff\":1}]}", "only valid with opt LINGER");
    script_bad("{\"steps\":[{\"op\":\"connect\"}]}", "no \"host\"");
    script_bad("{\"host\":\"1.2.3.4\",\"steps\":[{\"op\":\"connect\"}]}", "no \"port\"");
    script_bad("{\"host\":\"1.2.3.4\",\"port\":1,\"steps\":[{\"op\":\"connect\",\"timeoutMs\":-5}]}", "out of range");
    script_bad("{\"host\":\"1.2.3.4\",\"port\":1,\"steps\":[{\"op\":\"connect\",\"bindPort\":65536}]}", "out of range");
    script_bad("{\"steps\":[{\"op\":\"tcpinfo\",\"label\":3}]}", "\"label\" must be a string");
    script_bad("{\"steps\":[{\"op\":\"close\"},{\"op\":\"nope\"}]}", "steps[1]");
    script_bad("{\"steps\":[", "JSON parse error");

    /* blocking steps and the calibration op */
    if (script_ok("{\"host\":\"1.2.3.4\",\"port\":1,\"steps\":[{\"op\":\"connect\",\"blocking\":true},{\"op\":\"read\",\"blocking\":false},"
                  "{\"op\":\"calibrate\"},{\"op\":\"calibrate\",\"samples\":8,\"sleepUs\":500}]}", &sc) == 0) {
        CHECK(sc.steps[0].blocking == 1 && sc.steps[1].blocking == 0, "blocking flag");
        CHECK(sc.steps[2].op == OP_CALIBRATE && sc.steps[2].samples == 64 && sc.steps[2].sleep_us == 1000 && sc.steps[2].sock == -1, "calibrate defaults");
        CHECK(sc.steps[3].samples == 8 && sc.steps[3].sleep_us == 500, "calibrate values");
        script_free(&sc);
    }
    script_bad("{\"steps\":[{\"op\":\"wait\",\"blocking\":true}]}", "unknown field \"blocking\"");
    script_bad("{\"host\":\"1.2.3.4\",\"port\":1,\"steps\":[{\"op\":\"connect\",\"blocking\":1}]}", "must be true or false");
    script_bad("{\"steps\":[{\"op\":\"calibrate\",\"samples\":0}]}", "out of range");
    script_bad("{\"steps\":[{\"op\":\"calibrate\",\"sock\":0}]}", "unknown field \"sock\"");
}

/* The server's MODES table: what the harness (and --list-modes) rely on. */
static void test_server_modes(void)
{
    size_t n = 0;
    const struct server_mode *m = server_modes(&n);
    CHECK(m && n > 0, "the table has rows");
    for (size_t i = 0; i < n; i++) {
        const char *name = m[i].name;
        int kebab = name && name[0] >= 'a' && name[0] <= 'z';
        for (const char *p = name; kebab && *p; p++) kebab = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-';
        CHECK(kebab, "mode %zu name '%s' is lowercase kebab-case (it is a CLI word and a TypeScript literal)", i, name ? name : "(null)");
        CHECK(m[i].summary && m[i].summary[0], "mode %s has a summary", name);
        CHECK(m[i].on_accept || !m[i].on_readable, "mode %s: a mode that never accepts has no connection to read", name);
        CHECK(server_mode_find(name) == &m[i], "server_mode_find(%s) finds its own row (names are unique)", name);
    }
    /* The modes the faults and suites start by name. */
    const char *used[] = { "echo", "no-accept", "no-close", "sink", "close-on-accept", "close-unread", "linger0", "request-reply" };
    for (size_t i = 0; i < sizeof used / sizeof used[0]; i++) CHECK(server_mode_find(used[i]) != NULL, "mode %s exists", used[i]);
    CHECK(server_mode_find("no-accept")->on_accept == NULL, "no-accept never accepts");
    CHECK(server_mode_find("sink")->on_readable == NULL, "sink never reads");
    CHECK(server_mode_find("ech") == NULL && server_mode_find("") == NULL && server_mode_find("ECHO") == NULL,
          "lookup is exact");

    /* --list-modes: one line, a JSON array the probe's own strict parser accepts, in table order. */
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    CHECK(f != NULL, "open_memstream");
    if (!f) return;
    server_list_modes(f);
    fclose(f);
    CHECK(outlen > 0 && out[outlen - 1] == '\n' && memchr(out, '\n', outlen) == out + outlen - 1, "one line: %s", out);
    jvalue *v = NULL;
    char err[256] = "";
    CHECK(json_parse(out, outlen, &v, err, sizeof err) == 0, "--list-modes is JSON: %s", err);
    if (v) {
        CHECK(v->type == JV_ARRAY && v->u.arr.n == n, "an array with one entry per row");
        for (size_t i = 0; v->type == JV_ARRAY && i < v->u.arr.n && i < n; i++) {
            const jvalue *e = v->u.arr.items[i], *jn = json_get(e, "name"), *js = json_get(e, "summary");
            CHECK(e->type == JV_OBJECT && e->u.obj.n == 2, "entry %zu has exactly name and summary", i);
            CHECK(jn && jn->type == JV_STRING && !strcmp(jn->u.str.s, m[i].name), "entry %zu is %s", i, m[i].name);
            CHECK(js && js->type == JV_STRING && !strcmp(js->u.str.s, m[i].summary), "entry %zu summary round-trips", i);
        }
        json_free(v);
    }
    free(out);

    out = NULL;
    f = open_memstream(&out, &outlen);
    if (f) {
        server_mode_names(f, "|");
        fclose(f);
        CHECK(!strncmp(out, m[0].name, strlen(m[0].name)) && (n == 1 || out[strlen(m[0].name)] == '|'),
              "names in table order, joined by the separator: %s", out);
        size_t bars = 0;
        for (char *p = out; *p; p++) bars += *p == '|';
        CHECK(bars == n - 1, "n-1 separators: %s", out);
        free(out);
    }
}

/* The delayer's schedule: each packet held delay ± jitter from its arrival, never released
 * before the packet ahead of it (arrival order kept), deterministic for a seed. */
static void test_delay_sched(void)
{
    struct delay_sched s;
    delay_sched_init(&s, 100000, 0, 1);
    CHECK(delay_sched_next(&s, 1000) == 101000, "no jitter: arrival + delay");
    CHECK(delay_sched_next(&s, 1500) == 101500, "no jitter: each packet its own delay");

    struct delay_sched a, b;
    delay_sched_init(&a, 50000, 20000, 42);
    delay_sched_init(&b, 50000, 20000, 42);
    int64_t prev = INT64_MIN, lo = INT64_MAX, hi = INT64_MIN;
    int ordered = 1, within = 1, same = 1, clamped = 0;
    for (int i = 0; i < 10000; i++) {
        int64_t now = (int64_t)i * 100; /* a packet every 100 µs: the jitter would reorder them */
        int64_t at = delay_sched_next(&a, now);
        same &= at == delay_sched_next(&b, now);
        ordered &= at >= prev;
        int64_t held = at - now;
        /* Held less than delay - jitter never; more than delay + jitter only to keep the order. */
        within &= held >= 30000 && (held <= 70000 || at == prev);
        clamped += at == prev;
        prev = at;
    }
    CHECK(ordered, "releases never reorder arrivals");
    CHECK(within, "each hold in [delay - jitter, delay + jitter], or clamped to the packet ahead");
    CHECK(same, "the same seed gives the same schedule");
    CHECK(clamped > 0, "with packets closer than the jitter, some wait for the one ahead");
    /* Packets further apart than twice the jitter are never clamped: the holds span the range. */
    delay_sched_init(&a, 50000, 20000, 7);
    for (int i = 0; i < 10000; i++) {
        int64_t now = (int64_t)i * 100000, held = delay_sched_next(&a, now) - now;
        if (held < lo) lo = held;
        if (held > hi) hi = held;
    }
    CHECK(lo >= 30000 && lo < 30500 && hi <= 70000 && hi > 69500, "the jitter spans its range: held %lld..%lld us", (long long)lo, (long long)hi);
}

int main(void)
{
    test_json();
    test_names();
    test_script();
    test_server_modes();
    test_delay_sched();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
