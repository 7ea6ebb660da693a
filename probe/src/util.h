#ifndef HP_UTIL_H
#define HP_UTIL_H
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Absolute CLOCK_MONOTONIC in microseconds. */
int64_t mono_us(void);
/* "a.b.c.d:port" for AF_INET, "[v6]:port" for AF_INET6 (v4-mapped shown as IPv4). */
void format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);
/* Parse "A.B.C.D:PORT" (numeric only). Returns 0 on success. */
int parse_ipv4_port(const char *s, struct sockaddr_in *out);
/* Parse a decimal integer in [min,max]; whole string must be consumed. */
int parse_int_range(const char *s, long long min, long long max, long long *out);
#endif
