/* Step-script model and validator for `harness-probe client`. */
#ifndef HP_SCRIPT_H
#define HP_SCRIPT_H
#include <netinet/in.h>
#include <stddef.h>
#include "json.h"

#define MAX_SOCKS 8192  /* a server that listens with backlog 4096 (somaxconn) needs 4098 connections to overflow */
#define DEFAULT_TIMEOUT_MS 30000
#define MAX_STEPS 100000

enum op { OP_SOCKET, OP_SETSOCKOPT, OP_CONNECT, OP_WRITE, OP_READ, OP_WAIT,
          OP_SHUTDOWN, OP_CLOSE, OP_SLEEP, OP_TCPINFO, OP_BARRIER, OP_LISTEN, OP_CALIBRATE };

#define MAX_CALIBRATE_SAMPLES 10000

enum sockopt_id { SOPT_SYNCNT, SOPT_USER_TIMEOUT, SOPT_KEEPALIVE, SOPT_KEEPIDLE,
                  SOPT_KEEPINTVL, SOPT_KEEPCNT, SOPT_LINGER, SOPT_NODELAY,
                  SOPT_RCVBUF, SOPT_SNDBUF, SOPT_CORK, SOPT_REUSEADDR, SOPT_REUSEPORT };

struct step {
    enum op op;
    int sock;                 /* 0..255; -1 for sleep */
    long long timeout_ms;     /* connect/write/read/wait */
    long long bytes;          /* write (this or data), read (optional) */
    int has_bytes;
    enum sockopt_id opt;      /* setsockopt */
    int value;
    int onoff;                /* LINGER only, default 1 */
    int how;                  /* SHUT_RD/SHUT_WR/SHUT_RDWR */
    long long ms;             /* sleep */
    char *data;               /* write: these bytes instead of `bytes` of 'x' (data_len of them) */
    size_t data_len;
    int backlog;              /* listen */
    struct sockaddr_in dst;   /* connect: effective host/port; listen: the address bound */
    int bind_port;            /* connect: -1 = none */
    char *label;              /* optional, echoed back */
    char *name;               /* barrier: the trigger the harness fires */
    int blocking;             /* connect/write/read/close: a blocking syscall (SO_SNDTIMEO/SO_RCVTIMEO = timeoutMs) */
    int samples;              /* calibrate: how many sleeps */
    long long sleep_us;       /* calibrate: each sleep */
};

struct script {
    struct step *steps;
    size_t n;
};

const char *op_name(enum op op);
const char *sockopt_name(enum sockopt_id o);

/* Validate a parsed document. Returns 0 on success; -1 with message in err. */
int script_from_json(const jvalue *doc, struct script *out, char *err, size_t errlen);
/* Parse + validate text. */
int script_parse(const char *text, size_t len, struct script *out, char *err, size_t errlen);
void script_free(struct script *s);
#endif
