#define _GNU_SOURCE
#include "script.h"
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *const opnames[] = {
    [OP_SOCKET] = "socket", [OP_SETSOCKOPT] = "setsockopt", [OP_CONNECT] = "connect",
    [OP_WRITE] = "write", [OP_READ] = "read", [OP_WAIT] = "wait", [OP_SHUTDOWN] = "shutdown",
    [OP_CLOSE] = "close", [OP_SLEEP] = "sleep", [OP_TCPINFO] = "tcpinfo", [OP_BARRIER] = "barrier",
    [OP_LISTEN] = "listen",
    [OP_CALIBRATE] = "calibrate",
};
static const char *const optnames[] = {
    [SOPT_SYNCNT] = "SYNCNT", [SOPT_USER_TIMEOUT] = "USER_TIMEOUT", [SOPT_KEEPALIVE] = "KEEPALIVE",
    [SOPT_KEEPIDLE] = "KEEPIDLE", [SOPT_KEEPINTVL] = "KEEPINTVL", [SOPT_KEEPCNT] = "KEEPCNT",
    [SOPT_LINGER] = "LINGER", [SOPT_NODELAY] = "NODELAY", [SOPT_RCVBUF] = "RCVBUF",
    [SOPT_SNDBUF] = "SNDBUF", [SOPT_CORK] = "CORK", [SOPT_REUSEADDR] = "REUSEADDR",
    [SOPT_REUSEPORT] = "REUSEPORT",
};
/* Allowed keys per op (besides "op" and "label"). */
static const char *const allowed[][6] = {
    [OP_SOCKET] = { "sock" },
    [OP_SETSOCKOPT] = { "sock", "opt", "value", "onoff" },
    [OP_CONNECT] = { "sock", "timeoutMs", "host", "port", "bindPort", "blocking" },
    [OP_WRITE] = { "sock", "bytes", "data", "timeoutMs", "blocking" },
    [OP_READ] = { "sock", "bytes", "timeoutMs", "blocking" },
    [OP_WAIT] = { "sock", "timeoutMs" },
    [OP_SHUTDOWN] = { "sock", "how" },
    [OP_CLOSE] = { "sock", "blocking" },
    [OP_SLEEP] = { "ms" },
    [OP_TCPINFO] = { "sock" },
    [OP_BARRIER] = { "name" },
    [OP_LISTEN] = { "sock", "host", "port", "backlog" },
    [OP_CALIBRATE] = { "samples", "sleepUs" },
};

const char *op_name(enum op op) { return opnames[op]; }
const char *sockopt_name(enum sockopt_id o) { return optnames[o]; }

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Fetch an optional integer member within [min,max]. Returns 1 if present,
 * 0 if absent, -1 on error. */
static int get_int(const jvalue *o, const char *key, long long min, long long max, long long *out,
                   const char *ctx, char *err, size_t errlen)
{
    const jvalue *v = json_get(o, key);
    if (!v) return 0;
    if (v->type != JV_INT)
        return fail(err, errlen, "%s: \"%s\" must be an integer, got %s", ctx, key, json_type_name(v->type));
    if (v->u.i < min || v->u.i > max)
        return fail(err, errlen, "%s: \"%s\" = %lld out of range [%lld, %lld]", ctx, key, v->u.i, min, max);
    *out = v->u.i;
    return 1;
}

static int get_host(const jvalue *o, struct in_addr *addr, const char *ctx, char *err, size_t errlen)
{
    const jvalue *v = json_get(o, "host");
    if (!v) return 0;
    if (v->type != JV_STRING)
        return fail(err, errlen, "%s: \"host\" must be a string, got %s", ctx, json_type_name(v->type));
    if (inet_pton(AF_INET, v->u.str.s, addr) != 1)
        return fail(err, errlen, "%s: \"host\" \"%s\" is not a numeric IPv4 address", ctx, v->u.str.s);
    return 1;
}

static int parse_step(const jvalue *o, size_t idx, struct step *st, int have_host, struct in_addr host,
                      int have_port, int port, char *err, size_t errlen)
{
    char ctx[48];
    snprintf(ctx, sizeof ctx, "steps[%zu]", idx);
    if (o->type != JV_OBJECT)
        return fail(err, errlen, "%s: must be an object, got %s", ctx, json_type_name(o->type));
    const jvalue *opv = json_get(o, "op");
    if (!opv) return fail(err, errlen, "%s: missing required field \"op\"", ctx);
    if (opv->type != JV_STRING) return fail(err, errlen, "%s: \"op\" must be a string", ctx);
    int op = -1;
    for (size_t i = 0; i < sizeof opnames / sizeof opnames[0]; i++)
        if (strcmp(opv->u.str.s, opnames[i]) == 0) op = (int)i;
    if (op < 0)
        return fail(err, errlen, "%s: unknown op \"%s\" (expected socket, setsockopt, connect, listen, write, read, wait, shutdown, close, sleep, tcpinfo, barrier, calibrate)",
                    ctx, opv->u.str.s);
    snprintf(ctx, sizeof ctx, "steps[%zu] (%s)", idx, opnames[op]);
    memset(st, 0, sizeof *st);
    st->op = (enum op)op;
    st->sock = -1;
    st->bind_port = -1;
    st->timeout_ms = DEFAULT_TIMEOUT_MS;

    /* unknown keys */
    for (size_t k = 0; k < o->u.obj.n; k++) {
        const char *key = o->u.obj.keys[k];
        if (!strcmp(key, "op") || !strcmp(key, "label")) continue;
        int ok = 0;
        for (size_t a = 0; a < 6 && allowed[op][a]; a++)
            if (!strcmp(key, allowed[op][a])) ok = 1;
        if (!ok) return fail(err, errlen, "%s: unknown field \"%s\"", ctx, key);
    }
    const jvalue *lab = json_get(o, "label");
    if (lab) {
        if (lab->type != JV_STRING) return fail(err, errlen, "%s: \"label\" must be a string", ctx);
        st->label = strdup(lab->u.str.s);
        if (!st->label) return fail(err, errlen, "out of memory");
    }

    long long v;
    int r;
    if (op == OP_SLEEP || op == OP_BARRIER || op == OP_CALIBRATE) st->sock = -1;
    if (op != OP_SLEEP && op != OP_BARRIER && op != OP_CALIBRATE) {
        st->sock = 0;
        r = get_int(o, "sock", 0, MAX_SOCKS - 1, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) st->sock = (int)v;
    }
    if (op == OP_CONNECT || op == OP_WRITE || op == OP_READ || op == OP_WAIT) {
        r = get_int(o, "timeoutMs", 0, 86400000LL, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) st->timeout_ms = v;
    }
    const jvalue *bv = json_get(o, "blocking");
    if (bv) {
        if (bv->type != JV_BOOL) return fail(err, errlen, "%s: \"blocking\" must be true or false", ctx);
        st->blocking = bv->u.b;
    }
    switch (op) {
    case OP_CALIBRATE:
        st->samples = 64;
        st->sleep_us = 1000;
        r = get_int(o, "samples", 1, MAX_CALIBRATE_SAMPLES, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) st->samples = (int)v;
        r = get_int(o, "sleepUs", 1, 1000000, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) st->sleep_us = v;
        break;
    case OP_SETSOCKOPT: {
        const jvalue *ov = json_get(o, "opt");
        if (!ov) return fail(err, errlen, "%s: missing required field \"opt\"", ctx);
        if (ov->type != JV_STRING) return fail(err, errlen, "%s: \"opt\" must be a string", ctx);
        int found = -1;
        for (size_t i = 0; i < sizeof optnames / sizeof optnames[0]; i++)
            if (!strcmp(ov->u.str.s, optnames[i])) found = (int)i;
        if (found < 0)
            return fail(err, errlen, "%s: unknown opt \"%s\" (expected SYNCNT, USER_TIMEOUT, KEEPALIVE, KEEPIDLE, KEEPINTVL, KEEPCNT, LINGER, NODELAY, RCVBUF, SNDBUF, CORK, REUSEADDR, REUSEPORT)",
                        ctx, ov->u.str.s);
        st->opt = (enum sockopt_id)found;
        const jvalue *vv = json_get(o, "value");
        if (!vv) return fail(err, errlen, "%s: missing required field \"value\"", ctx);
        if (vv->type == JV_BOOL) st->value = vv->u.b;
        else {
            r = get_int(o, "value", INT_MIN, INT_MAX, &v, ctx, err, errlen);
            if (r < 0) return -1;
            st->value = (int)v;
        }
        st->onoff = 1;
        const jvalue *on = json_get(o, "onoff");
        if (on) {
            if (st->opt != SOPT_LINGER) return fail(err, errlen, "%s: \"onoff\" is only valid with opt LINGER", ctx);
            if (on->type == JV_BOOL) st->onoff = on->u.b;
            else {
                r = get_int(o, "onoff", 0, 1, &v, ctx, err, errlen);
                if (r < 0) return -1;
                st->onoff = (int)v;
            }
        }
        break;
    }
    case OP_CONNECT: {
        struct in_addr a = host;
        int ha = have_host, pa = have_port;
        long long p = port;
        r = get_host(o, &a, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) ha = 1;
        r = get_int(o, "port", 1, 65535, &p, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) pa = 1;
        if (!ha) return fail(err, errlen, "%s: no \"host\" (neither in the step nor at top level)", ctx);
        if (!pa) return fail(err, errlen, "%s: no \"port\" (neither in the step nor at top level)", ctx);
        st->dst.sin_family = AF_INET;
        st->dst.sin_addr = a;
        st->dst.sin_port = htons((uint16_t)p);
        r = get_int(o, "bindPort", 0, 65535, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) st->bind_port = (int)v;
        break;
    }
    case OP_WRITE: {
        /* Either `bytes` of filler or the exact `data` (a request a real server parses). */
        const jvalue *dv = json_get(o, "data");
        r = get_int(o, "bytes", 0, LLONG_MAX / 2, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (r && dv) return fail(err, errlen, "%s: give \"bytes\" or \"data\", not both", ctx);
        if (dv) {
            if (dv->type != JV_STRING) return fail(err, errlen, "%s: \"data\" must be a string", ctx);
            st->data = malloc(dv->u.str.len ? dv->u.str.len : 1);
            if (!st->data) return fail(err, errlen, "out of memory");
            memcpy(st->data, dv->u.str.s, dv->u.str.len);
            st->data_len = dv->u.str.len;
            st->bytes = (long long)dv->u.str.len;
        } else if (!r) {
            return fail(err, errlen, "%s: missing required field \"bytes\" (or \"data\")", ctx);
        } else {
            st->bytes = v;
        }
        st->has_bytes = 1;
        break;
    }
    case OP_LISTEN: {
        /* bind() + listen(): by default on the wildcard address and the script's port. */
        struct in_addr a = { .s_addr = htonl(INADDR_ANY) };
        long long p = port;
        r = get_host(o, &a, ctx, err, errlen);
        if (r < 0) return -1;
        r = get_int(o, "port", 1, 65535, &p, ctx, err, errlen);
        if (r < 0) return -1;
        if (!r && !have_port) return fail(err, errlen, "%s: no \"port\" (neither in the step nor at top level)", ctx);
        st->dst.sin_family = AF_INET;
        st->dst.sin_addr = a;
        st->dst.sin_port = htons((uint16_t)p);
        st->backlog = 128;
        r = get_int(o, "backlog", 0, 65535, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) st->backlog = (int)v;
        break;
    }
    case OP_READ:
        r = get_int(o, "bytes", 1, LLONG_MAX / 2, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (r) { st->bytes = v; st->has_bytes = 1; }
        break;
    case OP_SHUTDOWN: {
        const jvalue *hv = json_get(o, "how");
        if (!hv) return fail(err, errlen, "%s: missing required field \"how\"", ctx);
        if (hv->type != JV_STRING) return fail(err, errlen, "%s: \"how\" must be a string", ctx);
        if (!strcmp(hv->u.str.s, "rd")) st->how = SHUT_RD;
        else if (!strcmp(hv->u.str.s, "wr")) st->how = SHUT_WR;
        else if (!strcmp(hv->u.str.s, "rdwr")) st->how = SHUT_RDWR;
        else return fail(err, errlen, "%s: \"how\" must be \"rd\", \"wr\" or \"rdwr\", got \"%s\"", ctx, hv->u.str.s);
        break;
    }
    case OP_BARRIER: {
        const jvalue *nv = json_get(o, "name");
        if (!nv) return fail(err, errlen, "%s: missing required field \"name\"", ctx);
        if (nv->type != JV_STRING || !nv->u.str.s[0]) return fail(err, errlen, "%s: \"name\" must be a non-empty string", ctx);
        st->name = strdup(nv->u.str.s);
        if (!st->name) return fail(err, errlen, "out of memory");
        break;
    }
    case OP_SLEEP:
        r = get_int(o, "ms", 0, 86400000LL, &v, ctx, err, errlen);
        if (r < 0) return -1;
        if (!r) return fail(err, errlen, "%s: missing required field \"ms\"", ctx);
        st->ms = v;
        break;
    default:
        break;
    }
    return 0;
}

int script_from_json(const jvalue *doc, struct script *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!doc || doc->type != JV_OBJECT)
        return fail(err, errlen, "script: top level must be an object");
    for (size_t k = 0; k < doc->u.obj.n; k++) {
        const char *key = doc->u.obj.keys[k];
        if (strcmp(key, "host") && strcmp(key, "port") && strcmp(key, "steps"))
            return fail(err, errlen, "script: unknown top-level field \"%s\" (expected host, port, steps)", key);
    }
    struct in_addr host = { 0 };
    int have_host = get_host(doc, &host, "script", err, errlen);
    if (have_host < 0) return -1;
    long long port = 0;
    int have_port = get_int(doc, "port", 1, 65535, &port, "script", err, errlen);
    if (have_port < 0) return -1;
    const jvalue *steps = json_get(doc, "steps");
    if (!steps) return fail(err, errlen, "script: missing required field \"steps\"");
    if (steps->type != JV_ARRAY)
        return fail(err, errlen, "script: \"steps\" must be an array, got %s", json_type_name(steps->type));
    if (steps->u.arr.n > MAX_STEPS) return fail(err, errlen, "script: too many steps (max %d)", MAX_STEPS);
    out->steps = calloc(steps->u.arr.n ? steps->u.arr.n : 1, sizeof *out->steps);
    if (!out->steps) return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < steps->u.arr.n; i++) {
        if (parse_step(steps->u.arr.items[i], i, &out->steps[i], have_host, host, have_port, (int)port,
                       err, errlen) < 0) {
            free(out->steps[i].label);
            free(out->steps[i].name);
            free(out->steps[i].data);
            script_free(out);
            return -1;
        }
        out->n = i + 1;
    }
    return 0;
}

int script_parse(const char *text, size_t len, struct script *out, char *err, size_t errlen)
{
    jvalue *doc;
    memset(out, 0, sizeof *out);
    if (json_parse(text, len, &doc, err, errlen) < 0) return -1;
    int r = script_from_json(doc, out, err, errlen);
    json_free(doc);
    return r;
}

void script_free(struct script *s)
{
    if (!s->steps) return;
    for (size_t i = 0; i < s->n; i++) { free(s->steps[i].label); free(s->steps[i].name); free(s->steps[i].data); }
    free(s->steps);
    s->steps = NULL;
    s->n = 0;
}
