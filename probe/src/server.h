#ifndef HP_SERVER_H
#define HP_SERVER_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct conn;

/* One built-in target: a row of the MODES table in server.c. */
struct server_mode {
    const char *name;
    /* One line on what a client observes; --list-modes prints it. */
    const char *summary;
    /* A connection was just accepted: watch it, close it, or keep it. NULL: the mode never
     * accepts (the listener is not watched; connections wait in the accept queue). */
    void (*on_accept)(struct conn *c);
    /* Events on a connection that on_accept watched. NULL: the mode never watches one. */
    void (*on_readable)(struct conn *c, uint32_t events);
};

int server_main(int argc, char **argv);
/* The table, in order; *n gets its length. */
const struct server_mode *server_modes(size_t *n);
/* The row named `name`, or NULL. */
const struct server_mode *server_mode_find(const char *name);
/* The names, separated by `sep` (usage text, error messages). */
void server_mode_names(FILE *f, const char *sep);
/* `--list-modes`: one line, a JSON array of {"name","summary"} in table order. */
void server_list_modes(FILE *f);
#endif
