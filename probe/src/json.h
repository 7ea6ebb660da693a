/* Small strict JSON parser (objects, arrays, strings, integers, booleans, null)
 * and output helpers. */
#ifndef HP_JSON_H
#define HP_JSON_H
#include <stddef.h>
#include <stdio.h>

typedef enum { JV_NULL, JV_BOOL, JV_INT, JV_STRING, JV_ARRAY, JV_OBJECT } jtype;

typedef struct jvalue jvalue;
struct jvalue {
    jtype type;
    union {
        int b;
        long long i;
        struct { char *s; size_t len; } str;
        struct { jvalue **items; size_t n; } arr;
        struct { char **keys; jvalue **vals; size_t n; } obj;
    } u;
};

#define JSON_MAX_DEPTH 64

/* Parses exactly one JSON document (surrounding whitespace allowed).
 * Returns 0 and sets *out on success; -1 and writes a message to err. */
int json_parse(const char *text, size_t len, jvalue **out, char *err, size_t errlen);
void json_free(jvalue *v);
/* Object member lookup (NULL if absent or v is not an object). */
const jvalue *json_get(const jvalue *v, const char *key);
const char *json_type_name(jtype t);

/* Output helpers. */
void json_put_string(FILE *f, const char *s);
#endif
