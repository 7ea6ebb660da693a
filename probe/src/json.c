#define _GNU_SOURCE
#include "json.h"
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p, *start, *end;
    char *err;
    size_t errlen;
    int failed;
} parser;

static void perr(parser *ps, const char *fmt, ...)
{
    if (ps->failed) return;
    ps->failed = 1;
    /* line/column of the error position */
    size_t line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') { line++; col = 1; } else col++;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "JSON parse error at line %zu column %zu (offset %zu): %s",
             line, col, (size_t)(ps->p - ps->start), msg);
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static jvalue *newv(parser *ps, jtype t)
{
    jvalue *v = calloc(1, sizeof *v);
    if (!v) { perr(ps, "out of memory"); return NULL; }
    v->type = t;
    return v;
}

void json_free(jvalue *v)
{
    if (!v) return;
    switch (v->type) {
    case JV_STRING: free(v->u.str.s); break;
    case JV_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++) json_free(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case JV_OBJECT:
        for (size_t i = 0; i < v->u.obj.n; i++) { free(v->u.obj.keys[i]); json_free(v->u.obj.vals[i]); }
        free(v->u.obj.keys);
        free(v->u.obj.vals);
        break;
    default: break;
    }
    free(v);
}

typedef struct { char *s; size_t n, cap; } sbuf;

static int sb_put(sbuf *b, const char *src, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 32;
        while (nc < b->n + n + 1) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) return -1;
        b->s = ns; b->cap = nc;
    }
    memcpy(b->s + b->n, src, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser *ps, unsigned *out)
{
    if (ps->end - ps->p < 4) { perr(ps, "truncated \\u escape"); return -1; }
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0) { perr(ps, "invalid hex digit in \\u escape"); return -1; }
        v = v * 16 + (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return 0;
}

/* Length of a valid UTF-8 sequence starting at p, or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) { n = 2; min = 0x80; c &= 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; min = 0x800; c &= 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; min = 0x10000; c &= 0x07; }
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    return n;
}

static char *parse_string_raw(parser *ps, size_t *lenout)
{
    /* at opening quote */
    ps->p++;
    sbuf b = {0};
    if (sb_put(&b, "", 0) < 0) { perr(ps, "out of memory"); return NULL; }
    for (;;) {
        if (ps->p >= ps->end) { perr(ps, "unterminated string"); goto fail; }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') { ps->p++; break; }
        if (c < 0x20) { perr(ps, "unescaped control character 0x%02x in string", c); goto fail; }
        if (c == '\\') {
            ps->p++;
            if (ps->p >= ps->end) { perr(ps, "unterminated escape"); goto fail; }
            char e = *ps->p++;
            char out[4];
            size_t on = 1;
            switch (e) {
            case '"': out[0] = '"'; break;
            case '\\': out[0] = '\\'; break;
            case '/': out[0] = '/'; break;
            case 'b': out[0] = '\b'; break;
            case 'f': out[0] = '\f'; break;
            case 'n': out[0] = '\n'; break;
            case 'r': out[0] = '\r'; break;
            case 't': out[0] = '\t'; break;
            case 'u': {
                unsigned cp;
                if (read_hex4(ps, &cp) < 0) goto fail;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                        perr(ps, "unpaired UTF-16 high surrogate"); goto fail;
                    }
                    ps->p += 2;
                    if (read_hex4(ps, &lo) < 0) goto fail;
                    if (lo < 0xDC00 || lo > 0xDFFF) { perr(ps, "invalid UTF-16 low surrogate"); goto fail; }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    perr(ps, "unpaired UTF-16 low surrogate"); goto fail;
                }
                if (cp == 0) { perr(ps, "\\u0000 is not allowed in strings"); goto fail; }
                if (cp < 0x80) { out[0] = (char)cp; on = 1; }
                else if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); on = 2; }
                else if (cp < 0x10000) {
                    out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    out[2] = (char)(0x80 | (cp & 0x3F)); on = 3;
                } else {
                    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); on = 4;
                }
                break;
            }
            default:
                ps->p--;
                perr(ps, "invalid escape '\\%c'", e);
                goto fail;
            }
            if (sb_put(&b, out, on) < 0) { perr(ps, "out of memory"); goto fail; }
            continue;
        }
        size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
        if (n == 0) { perr(ps, "invalid UTF-8 in string"); goto fail; }
        if (sb_put(&b, ps->p, n) < 0) { perr(ps, "out of memory"); goto fail; }
        ps->p += n;
    }
    *lenout = b.n;
    return b.s;
fail:
    free(b.s);
    return NULL;
}

static int match_lit(parser *ps, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0) return 0;
    /* literal must not run into identifier characters: "truex" */
    const char *q = ps->p + n;
    if (q < ps->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_'))
        return 0;
    ps->p += n;
    return 1;
}

static jvalue *parse_value(parser *ps, int depth);

static jvalue *parse_number(parser *ps)
{
    const char *s = ps->p;
    int neg = 0;
    if (*ps->p == '-') { neg = 1; ps->p++; }
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') { perr(ps, "invalid number"); return NULL; }
    if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9') {
        perr(ps, "leading zeros are not allowed"); return NULL;
    }
    unsigned long long acc = 0;
    unsigned long long lim = neg ? (unsigned long long)LLONG_MAX + 1ULL : (unsigned long long)LLONG_MAX;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        unsigned d = (unsigned)(*ps->p - '0');
        if (acc > (lim - d) / 10) { ps->p = s; perr(ps, "integer out of range"); return NULL; }
        acc = acc * 10 + d;
        ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')) {
        perr(ps, "only integers are supported (no fractions or exponents)"); return NULL;
    }
    jvalue *v = newv(ps, JV_INT);
    if (!v) return NULL;
    if (neg) v->u.i = (acc == (unsigned long long)LLONG_MAX + 1ULL) ? LLONG_MIN : -(long long)acc;
    else v->u.i = (long long)acc;
    return v;
}

static jvalue *parse_array(parser *ps, int depth)
{
    ps->p++; /* [ */
    jvalue *v = newv(ps, JV_ARRAY);
    if (!v) return NULL;
    size_t cap = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') { ps->p++; return v; }
    for (;;) {
        skip_ws(ps);
        jvalue *item = parse_value(ps, depth + 1);
        if (!item) goto fail;
        if (v->u.arr.n == cap) {
            cap = cap ? cap * 2 : 8;
            jvalue **ni = realloc(v->u.arr.items, cap * sizeof *ni);
            if (!ni) { json_free(item); perr(ps, "out of memory"); goto fail; }
            v->u.arr.items = ni;
        }
        v->u.arr.items[v->u.arr.n++] = item;
        skip_ws(ps);
        if (ps->p >= ps->end) { perr(ps, "unterminated array"); goto fail; }
        if (*ps->p == ',') { ps->p++; skip_ws(ps); if (ps->p < ps->end && *ps->p == ']') { perr(ps, "trailing comma in array"); goto fail; } continue; }
        if (*ps->p == ']') { ps->p++; return v; }
        perr(ps, "expected ',' or ']' in array");
        goto fail;
    }
fail:
    json_free(v);
    return NULL;
}

static jvalue *parse_object(parser *ps, int depth)
{
    ps->p++; /* { */
    jvalue *v = newv(ps, JV_OBJECT);
    if (!v) return NULL;
    size_t cap = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') { ps->p++; return v; }
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end) { perr(ps, "unterminated object"); goto fail; }
        if (*ps->p != '"') {
            if (*ps->p == '}') perr(ps, "trailing comma in object");
            else perr(ps, "expected string key in object");
            goto fail;
        }
        const char *keypos = ps->p;
        size_t klen;
        char *key = parse_string_raw(ps, &klen);
        if (!key) goto fail;
        for (size_t i = 0; i < v->u.obj.n; i++) {
            if (strcmp(v->u.obj.keys[i], key) == 0) {
                ps->p = keypos;
                perr(ps, "duplicate key \"%s\"", key);
                free(key);
                goto fail;
            }
        }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') { free(key); perr(ps, "expected ':' after object key"); goto fail; }
        ps->p++;
        skip_ws(ps);
        jvalue *val = parse_value(ps, depth + 1);
        if (!val) { free(key); goto fail; }
        if (v->u.obj.n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nk = realloc(v->u.obj.keys, cap * sizeof *nk);
            if (nk) v->u.obj.keys = nk;
            jvalue **nv = realloc(v->u.obj.vals, cap * sizeof *nv);
            if (nv) v->u.obj.vals = nv;
            if (!nk || !nv) { free(key); json_free(val); perr(ps, "out of memory"); goto fail; }
        }
        v->u.obj.keys[v->u.obj.n] = key;
        v->u.obj.vals[v->u.obj.n] = val;
        v->u.obj.n++;
        skip_ws(ps);
        if (ps->p >= ps->end) { perr(ps, "unterminated object"); goto fail; }
        if (*ps->p == ',') { ps->p++; continue; }
        if (*ps->p == '}') { ps->p++; return v; }
        perr(ps, "expected ',' or '}' in object");
        goto fail;
    }
fail:
    json_free(v);
    return NULL;
}

static jvalue *parse_value(parser *ps, int depth)
{
    if (depth > JSON_MAX_DEPTH) { perr(ps, "nesting deeper than %d", JSON_MAX_DEPTH); return NULL; }
    skip_ws(ps);
    if (ps->p >= ps->end) { perr(ps, "unexpected end of input, expected a value"); return NULL; }
    char c = *ps->p;
    if (c == '{') return parse_object(ps, depth);
    if (c == '[') return parse_array(ps, depth);
    if (c == '"') {
        size_t len;
        char *s = parse_string_raw(ps, &len);
        if (!s) return NULL;
        jvalue *v = newv(ps, JV_STRING);
        if (!v) { free(s); return NULL; }
        v->u.str.s = s;
        v->u.str.len = len;
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
    if (match_lit(ps, "true")) { jvalue *v = newv(ps, JV_BOOL); if (v) v->u.b = 1; return v; }
    if (match_lit(ps, "false")) { jvalue *v = newv(ps, JV_BOOL); if (v) v->u.b = 0; return v; }
    if (match_lit(ps, "null")) return newv(ps, JV_NULL);
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) perr(ps, "unexpected character '%c'", c);
    else perr(ps, "unexpected byte 0x%02x", (unsigned char)c);
    return NULL;
}

int json_parse(const char *text, size_t len, jvalue **out, char *err, size_t errlen)
{
    parser ps = { text, text, text + len, err, errlen, 0 };
    if (errlen) err[0] = 0;
    *out = NULL;
    /* tolerate a UTF-8 BOM? No: strict. */
    jvalue *v = parse_value(&ps, 0);
    if (!v) return -1;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        perr(&ps, "trailing data after JSON document");
        json_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

const jvalue *json_get(const jvalue *v, const char *key)
{
    if (!v || v->type != JV_OBJECT) return NULL;
    for (size_t i = 0; i < v->u.obj.n; i++)
        if (strcmp(v->u.obj.keys[i], key) == 0) return v->u.obj.vals[i];
    return NULL;
}

const char *json_type_name(jtype t)
{
    switch (t) {
    case JV_NULL: return "null";
    case JV_BOOL: return "boolean";
    case JV_INT: return "integer";
    case JV_STRING: return "string";
    case JV_ARRAY: return "array";
    case JV_OBJECT: return "object";
    }
    return "?";
}

void json_put_string(FILE *f, const char *s)
{
    if (!s) { fputs("null", f); return; }
    putc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else putc(*p, f);
        }
    }
    putc('"', f);
}
