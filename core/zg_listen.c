/* zg_listen.c - listening sockets owned by the master (see zg_listen.h). */
#define _GNU_SOURCE
#include "zg_listen.h"
#include "zg_log.h"
#include "zg_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One socket shared by all workers, not one per worker slot: always for a
 * unix socket (SO_REUSEPORT does not spread those). */
static int shared(const zg_config *cfg, const zg_addr *a)
{
    return cfg->listen_shared || a->ss.ss_family == AF_UNIX;
}

static unsigned slots(const zg_config *cfg, const zg_addr *a, int nworkers)
{
    return shared(cfg, a) ? 1 : (unsigned)nworkers;
}

/* Closing a unix socket also removes its file, unless another master uses
 * it: a new binary we started, or the old master that handed it to us. */
static void close_lsock(const zg_listen_set *set, const zg_lsock *ls)
{
    close(ls->fd);
    const char *path = zg_addr_unix_path(&ls->ss);
    if (!path || set->keep_files || (ls->inherited && getppid() == set->parent))
        return;
    if (unlink(path) < 0 && errno != ENOENT)
        zg_log_warn("unlink %s: %s", path, strerror(errno));
}

/* A socket file left by a zerg that did not exit cleanly answers a connect
 * with ECONNREFUSED: remove it. Anything else at the path stays. */
static int remove_stale_socket(const zg_addr *a)
{
    const char *path = zg_addr_unix_path(&a->ss);
    struct stat st;
    if (!path || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
    int refused = rc < 0 && errno == ECONNREFUSED;
    close(fd);
    if (!refused || unlink(path) < 0)
        return -1;
    zg_log_notice("removed the stale socket %s", path);
    return 0;
}

static int set_options(int fd, const zg_addr *a)
{
    int one = 1;
    if (a->ss.ss_family == AF_UNIX)
        return 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        (a->ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0))
        return -1;
    return 0;
}

/* unix_mode: the permission bits of a unix socket's file. */
static int set_mode(const zg_server *srv, const zg_addr *a, char *err, size_t errlen)
{
    const char *path = zg_addr_unix_path(&a->ss);
    if (srv->unix_mode < 0 || !path || chmod(path, (mode_t)srv->unix_mode) == 0)
        return 0;
    snprintf(err, errlen, "chmod %04o %s: %s", (unsigned)srv->unix_mode, path, strerror(errno));
    return -1;
}

static zg_lsock *find(const zg_listen_set *set, const zg_addr *a, unsigned slot)
{
    for (size_t i = 0; i < set->n; i++) {
        zg_lsock *s = &set->socks[i];
        if (s->slot == slot && s->len == a->len && memcmp(&s->ss, &a->ss, a->len) == 0)
            return s;
    }
    return NULL;
}

/* A socket of ours (any slot, inherited ones too) is bound to a already. */
static int held(const zg_listen_set *set, const zg_addr *a)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->socks[i].len == a->len && memcmp(&set->socks[i].ss, &a->ss, a->len) == 0)
            return 1;
    return 0;
}

/* SO_REUSEPORT lets every process of our user bind an address our sockets
 * hold, so a second zerg would share the port and take part of its
 * connections. Before the first socket of an address, bind one without it,
 * which fails with EADDRINUSE while anything listens there. SO_REUSEADDR as
 * on the real sockets: connections left in TIME_WAIT do not count. */
static int probe_exclusive(const zg_addr *a, char *err, size_t errlen)
{
    int one = 1;
    if (a->ss.ss_family == AF_UNIX)
        return 0; /* bind() itself refuses a path in use */
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (a->ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
        snprintf(err, errlen, "socket() for %s: %s", a->text, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = bind(fd, (const struct sockaddr *)&a->ss, a->len);
    if (rc < 0)
        snprintf(err, errlen, "bind() to %s: %s%s", a->text, strerror(errno),
                 errno == EADDRINUSE ? " (another process listens there)" : "");
    close(fd);
    return rc;
}

static int open_socket(const zg_addr *a, int backlog, char *err, size_t errlen)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket() for %s: %s", a->text, strerror(errno));
        return -1;
    }
    if (set_options(fd, a) < 0) {
        snprintf(err, errlen, "setsockopt() for %s: %s", a->text, strerror(errno));
        close(fd);
        return -1;
    }
    int rc = bind(fd, (const struct sockaddr *)&a->ss, a->len);
    if (rc < 0 && errno == EADDRINUSE) {
        if (remove_stale_socket(a) == 0)
            rc = bind(fd, (const struct sockaddr *)&a->ss, a->len);
        else
            errno = EADDRINUSE; /* the reason to report, whatever the check met */
    }
    if (rc < 0) {
        snprintf(err, errlen, "bind() to %s: %s", a->text, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) < 0) {
        snprintf(err, errlen, "listen() on %s: %s", a->text, strerror(errno));
        close_lsock(&(zg_listen_set){0}, &(zg_lsock){.ss = a->ss, .len = a->len, .fd = fd});
        return -1;
    }
    return fd;
}

int zg_listen_open(zg_listen_set *set, const zg_config *cfg, int nworkers, char *err, size_t errlen)
{
    size_t first_new = set->n;
    for (size_t s = 0; s < cfg->nservers; s++) {
        const zg_server *srv = &cfg->servers[s];
        for (size_t a = 0; a < srv->naddrs; a++) {
            if (!held(set, &srv->addrs[a]) && probe_exclusive(&srv->addrs[a], err, errlen) < 0)
                goto fail;
            for (unsigned slot = 0; slot < slots(cfg, &srv->addrs[a], nworkers); slot++) {
                zg_lsock *ls = find(set, &srv->addrs[a], slot);
                if (ls) { /* a reload may change these */
                    listen(ls->fd, (int)srv->backlog);
                    if (set_mode(srv, &srv->addrs[a], err, errlen) < 0)
                        goto fail;
                    continue;
                }
                int fd = open_socket(&srv->addrs[a], (int)srv->backlog, err, errlen);
                if (fd < 0)
                    goto fail;
                if (set_mode(srv, &srv->addrs[a], err, errlen) < 0) {
                    close_lsock(&(zg_listen_set){0}, &(zg_lsock){.ss = srv->addrs[a].ss, .fd = fd});
                    goto fail;
                }
                if (set->n == set->cap) {
                    size_t cap = set->cap ? set->cap * 2 : 16;
                    zg_lsock *p = realloc(set->socks, cap * sizeof(*p));
                    if (!p) {
                        close(fd);
                        snprintf(err, errlen, "out of memory");
                        goto fail;
                    }
                    set->socks = p;
                    set->cap = cap;
                }
                zg_lsock *n = &set->socks[set->n++];
                memset(n, 0, sizeof(*n));
                n->ss = srv->addrs[a].ss;
                n->len = srv->addrs[a].len;
                n->slot = slot;
                n->fd = fd;
            }
        }
    }
    return 0;
fail: /* the sockets this call made are nobody else's */
    while (set->n > first_new)
        close_lsock(&(zg_listen_set){0}, &set->socks[--set->n]);
    return -1;
}

int zg_listen_fd(const zg_listen_set *set, const zg_addr *addr, unsigned slot)
{
    zg_lsock *s = find(set, addr, slot);
    return s ? s->fd : -1;
}

void zg_listen_prune(zg_listen_set *set, const zg_config *cfg, int nworkers)
{
    for (size_t i = 0; i < set->n; i++)
        set->socks[i].mark = 0;
    for (size_t s = 0; s < cfg->nservers; s++)
        for (size_t a = 0; a < cfg->servers[s].naddrs; a++)
            for (unsigned slot = 0; slot < slots(cfg, &cfg->servers[s].addrs[a], nworkers);
                 slot++) {
                zg_lsock *ls = find(set, &cfg->servers[s].addrs[a], slot);
                if (ls)
                    ls->mark = 1;
            }
    size_t keep = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (set->socks[i].mark)
            set->socks[keep++] = set->socks[i];
        else
            close_lsock(set, &set->socks[i]);
    }
    set->n = keep;
}

void zg_listen_close_all(zg_listen_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        close_lsock(set, &set->socks[i]);
    free(set->socks);
    memset(set, 0, sizeof(*set));
}

/* ---- binary upgrade ---- */

int zg_listen_export(const zg_listen_set *set, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < set->n; i++) {
        int n = snprintf(buf + used, len - used, "%s%d:%u", i ? ";" : "", set->socks[i].fd,
                         set->socks[i].slot);
        if (n < 0 || (size_t)n >= len - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

int zg_listen_keep_on_exec(const zg_listen_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        int fl = fcntl(set->socks[i].fd, F_GETFD);
        if (fl < 0 || fcntl(set->socks[i].fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
            return -1;
    }
    return 0;
}

/* One "fd:slot" entry: a listening stream socket, not adopted already. */
static int adopt(zg_listen_set *set, long fd, unsigned long slot)
{
    zg_lsock ls = {.fd = (int)fd, .slot = (unsigned)slot, .inherited = 1};
    int type = 0, listening = 0;
    socklen_t olen = sizeof(type);
    if (getsockopt(ls.fd, SOL_SOCKET, SO_TYPE, &type, &olen) < 0 || type != SOCK_STREAM)
        return -1;
    olen = sizeof(listening);
    if (getsockopt(ls.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) < 0 || !listening)
        return -1;
    ls.len = sizeof(ls.ss);
    if (getsockname(ls.fd, (struct sockaddr *)&ls.ss, &ls.len) < 0)
        return -1;
    for (size_t i = 0; i < set->n; i++)
        if (set->socks[i].fd == ls.fd)
            return -1;
    zg_addr a = {.ss = ls.ss, .len = ls.len};
    if (find(set, &a, ls.slot))
        return -1;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        zg_lsock *p = realloc(set->socks, cap * sizeof(*p));
        if (!p)
            return -1;
        set->socks = p;
        set->cap = cap;
    }
    fcntl(ls.fd, F_SETFD, FD_CLOEXEC);
    set->socks[set->n++] = ls;
    return 0;
}

int zg_listen_inherit(zg_listen_set *set, const char *spec)
{
    int adopted = 0;
    set->parent = getppid();
    while (spec && *spec) {
        char *end;
        errno = 0;
        long fd = strtol(spec, &end, 10);
        unsigned long slot = 0;
        int ok = !errno && end != spec && *end == ':' && fd > STDERR_FILENO && fd < INT_MAX;
        if (ok) {
            const char *s = end + 1;
            slot = strtoul(s, &end, 10);
            ok = end != s && (*end == ';' || !*end) && slot < 4096;
        }
        const char *next = strchr(spec, ';');
        if (ok && adopt(set, fd, slot) == 0) {
            adopted++;
        } else {
            int n = next ? (int)(next - spec) : (int)strlen(spec);
            zg_log_warn("%s: ignoring \"%.*s\": not a listening socket handed over", ZG_LISTEN_ENV,
                        n > 64 ? 64 : n, spec);
        }
        spec = next ? next + 1 : NULL;
    }
    return adopted;
}

int *zg_listen_worker_fds(const zg_listen_set *set, const zg_config *cfg, unsigned slot)
{
    size_t total = 0;
    for (size_t s = 0; s < cfg->nservers; s++)
        total += cfg->servers[s].naddrs;
    int *fds = calloc(total + 1, sizeof(int));
    if (!fds)
        return NULL;
    size_t k = 0;
    for (size_t s = 0; s < cfg->nservers; s++)
        for (size_t a = 0; a < cfg->servers[s].naddrs; a++)
            fds[k++] = zg_listen_fd(set, &cfg->servers[s].addrs[a],
                                    shared(cfg, &cfg->servers[s].addrs[a]) ? 0 : slot);
    fds[k] = -1;
    return fds;
}

void zg_listen_close_others(const zg_listen_set *set, const int *keep)
{
    for (size_t i = 0; i < set->n; i++) {
        int fd = set->socks[i].fd, kept = 0;
        for (const int *k = keep; *k != -1 && !kept; k++)
            kept = *k == fd;
        if (!kept)
            close(fd); /* the descriptor only: the socket is the master's */
    }
}
