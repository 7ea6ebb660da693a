#define _GNU_SOURCE
#include "names.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

struct errent { int num; const char *name; };

/* Aliases (EWOULDBLOCK=EAGAIN, ENOTSUP=EOPNOTSUPP, EDEADLOCK=EDEADLK) are
 * deliberately absent: the first, canonical name is reported. */
#define E(x) { x, #x }
static const struct errent errtab[] = {
    E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG), E(ENOEXEC),
    E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(ENOTBLK), E(EBUSY),
    E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE),
    E(ENOTTY), E(ETXTBSY), E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK), E(EPIPE),
    E(EDOM), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK), E(ENOSYS), E(ENOTEMPTY),
    E(ELOOP), E(ENOMSG), E(EIDRM), E(ENOSTR), E(ENODATA), E(ETIME), E(ENOSR), E(ENOLINK),
    E(EPROTO), E(EBADMSG), E(EOVERFLOW), E(EILSEQ), E(ERESTART), E(EUSERS),
    E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE), E(ENOPROTOOPT),
    E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT), E(EOPNOTSUPP), E(EPFNOSUPPORT), E(EAFNOSUPPORT),
    E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN), E(ENETUNREACH), E(ENETRESET),
    E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ESHUTDOWN),
    E(ETOOMANYREFS), E(ETIMEDOUT), E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH),
    E(EALREADY), E(EINPROGRESS), E(ESTALE), E(EDQUOT), E(ECANCELED), E(EOWNERDEAD),
    E(ENOTRECOVERABLE), E(ERFKILL), E(EHWPOISON), E(ENONET), E(ECOMM), E(EREMOTEIO),
    E(ENOKEY), E(EKEYEXPIRED), E(EKEYREVOKED), E(EKEYREJECTED), E(EMEDIUMTYPE), E(ENOMEDIUM),
    E(ECHRNG), E(EL2NSYNC), E(EL3HLT), E(EL3RST), E(ELNRNG), E(EUNATCH), E(ENOCSI), E(EL2HLT),
    E(EBADE), E(EBADR), E(EXFULL), E(ENOANO), E(EBADRQC), E(EBADSLT), E(EBFONT), E(ENOPKG),
    E(EREMOTE), E(EADV), E(ESRMNT), E(EMULTIHOP), E(EDOTDOT), E(ENOTUNIQ), E(EBADFD), E(EREMCHG),
    E(ELIBACC), E(ELIBBAD), E(ELIBSCN), E(ELIBMAX), E(ELIBEXEC), E(ESTRPIPE), E(EUCLEAN),
    E(ENOTNAM), E(ENAVAIL), E(EISNAM),
};
#undef E

const char *errno_name(int e)
{
    for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
        if (errtab[i].num == e) return errtab[i].name;
    return NULL;
}

const char *errno_name_buf(int e, char *buf, size_t len)
{
    const char *n = errno_name(e);
    if (n) return n;
    snprintf(buf, len, "E%d", e);
    return buf;
}

int errno_from_name(const char *name)
{
    if (strcmp(name, "EWOULDBLOCK") == 0) return EWOULDBLOCK;
    if (strcmp(name, "ENOTSUP") == 0) return ENOTSUP;
    for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
        if (strcmp(errtab[i].name, name) == 0) return errtab[i].num;
    return -1;
}

/* include/net/tcp_states.h */
static const char *const statetab[] = {
    [1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1",
    [5] = "FIN_WAIT2", [6] = "TIME_WAIT", [7] = "CLOSE", [8] = "CLOSE_WAIT",
    [9] = "LAST_ACK", [10] = "LISTEN", [11] = "CLOSING", [12] = "NEW_SYN_RECV",
    [13] = "BOUND_INACTIVE",
};

const char *tcp_state_name(int state)
{
    if (state <= 0 || (size_t)state >= sizeof statetab / sizeof statetab[0]) return NULL;
    return statetab[state];
}

const char *tcp_state_name_buf(int state, char *buf, size_t len)
{
    const char *n = tcp_state_name(state);
    if (n) return n;
    snprintf(buf, len, "STATE%d", state);
    return buf;
}

size_t epoll_event_names(uint32_t ev, const char **out, size_t max)
{
    static const struct { uint32_t bit; const char *name; } bits[] = {
        { EPOLLIN, "EPOLLIN" }, { EPOLLPRI, "EPOLLPRI" }, { EPOLLOUT, "EPOLLOUT" },
        { EPOLLERR, "EPOLLERR" }, { EPOLLHUP, "EPOLLHUP" }, { EPOLLRDNORM, "EPOLLRDNORM" },
        { EPOLLRDBAND, "EPOLLRDBAND" }, { EPOLLWRNORM, "EPOLLWRNORM" },
        { EPOLLWRBAND, "EPOLLWRBAND" }, { EPOLLMSG, "EPOLLMSG" }, { EPOLLRDHUP, "EPOLLRDHUP" },
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0] && n < max; i++)
        if (ev & bits[i].bit) out[n++] = bits[i].name;
    return n;
}
