/* proxy_stats.c - per-upstream-server statistics from shared memory: JSON
 * formatting, and the optional stats_file that worker 0 rewrites every
 * stats_interval (atomically, through a rename) for status pages and tests. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static const char *state_name(const proxy_shm_srv *s, uint64_t now)
{
    if (LOAD(&s->hc_down))
        return "down";
    uint64_t d = LOAD(&s->down_until);
    if (d && now < d)
        return "failed";
    return "up";
}

size_t proxy_stats_format(const proxy_conf *cf, char *buf, size_t cap)
{
    const proxy_shm *sh = cf->shm;
    uint64_t now = proxy_now();
    size_t off = 0;
    int n;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        n = snprintf(buf + (off < cap ? off : cap), off < cap ? cap - off : 0, __VA_ARGS__);       \
        if (n > 0)                                                                                 \
            off += (size_t)n;                                                                      \
    } while (0)
    EMIT("{\"clients\":%llu,\"clients_total\":%llu,\"rejected\":%llu,\"no_server\":%llu,"
         "\"servers\":[",
         (unsigned long long)LOAD(&sh->clients), (unsigned long long)LOAD(&sh->clients_total),
         (unsigned long long)LOAD(&sh->rejected), (unsigned long long)LOAD(&sh->no_server));
    for (size_t i = 0; i < cf->up.nservers; i++) {
        const proxy_shm_srv *s = &sh->srv[i];
        const proxy_server *c = &cf->up.servers[i];
        EMIT("%s{\"address\":\"%s\",\"backup\":%s,\"weight\":%lld,\"state\":\"%s\","
             "\"active\":%llu,\"connects\":%llu,\"failures\":%llu,\"bytes_in\":%llu,"
             "\"bytes_out\":%llu,\"health_checks\":%llu,\"health_failed\":%llu}",
             i ? "," : "", c->addr.text ? c->addr.text : "", c->backup ? "true" : "false",
             (long long)c->weight, state_name(s, now), (unsigned long long)LOAD(&s->active),
             (unsigned long long)LOAD(&s->connects), (unsigned long long)LOAD(&s->failures),
             (unsigned long long)LOAD(&s->bytes_in), (unsigned long long)LOAD(&s->bytes_out),
             (unsigned long long)LOAD(&s->hc_checks), (unsigned long long)LOAD(&s->hc_failed));
    }
    EMIT("]}\n");
#undef EMIT
    return off;
}

static void stats_write(proxy_worker_state *ws)
{
    proxy_conf *cf = ws->conf;
    size_t cap = 256 + cf->up.nservers * 512;
    char *buf = malloc(cap);
    if (!buf)
        return;
    size_t len = proxy_stats_format(cf, buf, cap);
    if (len >= cap)
        len = cap - 1;
    size_t plen = strlen(cf->stats_file) + 8;
    char *tmp = malloc(plen);
    if (tmp) {
        snprintf(tmp, plen, "%s.tmp", cf->stats_file);
        /* a few hundred bytes to a local file: cheaper than a ring round trip */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, buf, len);
            close(fd);
            if (w == (ssize_t)len && rename(tmp, cf->stats_file) != 0)
                unlink(tmp);
        }
        free(tmp);
    }
    free(buf);
}

static void stats_fire(zerg_timer *t)
{
    proxy_worker_state *ws = t->data;
    stats_write(ws);
    proxy_api->timer_set(ws->w, &ws->stats_timer, ws->conf->stats_interval);
}

void proxy_stats_start(proxy_worker_state *ws)
{
    if (!ws->conf->stats_file)
        return;
    ws->stats_timer.fn = stats_fire;
    ws->stats_timer.data = ws;
    proxy_api->timer_set(ws->w, &ws->stats_timer, 1);
}

void proxy_stats_stop(proxy_worker_state *ws)
{
    if (!ws->conf->stats_file)
        return;
    proxy_api->timer_cancel(ws->w, &ws->stats_timer);
    stats_write(ws);
}
