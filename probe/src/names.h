#ifndef HP_NAMES_H
#define HP_NAMES_H
#include <stdint.h>
#include <stddef.h>

/* Symbolic errno name ("ETIMEDOUT"), or NULL if not in the table. */
const char *errno_name(int e);
/* Like errno_name, but unknown values become "E<num>" written into buf. */
const char *errno_name_buf(int e, char *buf, size_t len);
/* Reverse lookup, -1 if unknown (used by tests). */
int errno_from_name(const char *name);

/* Kernel TCP state name without the TCP_ prefix ("SYN_SENT"), NULL if unknown. */
const char *tcp_state_name(int state);
/* Unknown values become "STATE<num>" in buf. */
const char *tcp_state_name_buf(int state, char *buf, size_t len);

/* epoll event bit names, in bit order; returns number of names written to out. */
size_t epoll_event_names(uint32_t ev, const char **out, size_t max);
#endif
