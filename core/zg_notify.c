/* zg_notify.c - sd_notify(3) without libsystemd: one AF_UNIX datagram per
 * state change, to the socket systemd names in $NOTIFY_SOCKET. */
#define _GNU_SOURCE
#include "zg_notify.h"
#include "zg_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* $NOTIFY_SOCKET: a path, or "@name" for the abstract namespace. */
static int notify_addr(struct sockaddr_un *un, socklen_t *len)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof(un->sun_path))
        return -1;
    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n);
    if (path[0] == '@')
        un->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    return 1;
}

int zg_notify(const char *fmt, ...)
{
    static int warned;
    struct sockaddr_un un;
    socklen_t len;
    int have = notify_addr(&un, &len);
    if (have == 0)
        return 0;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int fd = -1, err = EINVAL; /* have < 0: a malformed $NOTIFY_SOCKET */
    if (have > 0) {
        if (n <= 0 || (size_t)n >= sizeof(msg))
            err = EMSGSIZE;
        else if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
                 sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&un, len) != n)
            err = errno;
        else
            err = 0;
    }
    if (fd >= 0)
        close(fd);
    if (err && !warned++)
        zg_log_warn("cannot notify the service manager at NOTIFY_SOCKET=%s: %s",
                    getenv("NOTIFY_SOCKET"), strerror(err));
    return err ? -1 : 0;
}

int zg_notify_ready(int nworkers)
{
    return zg_notify("READY=1\nMAINPID=%d\nSTATUS=%d workers serving\n", (int)getpid(), nworkers);
}

int zg_notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec =
        (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
    return zg_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading\n", usec);
}
