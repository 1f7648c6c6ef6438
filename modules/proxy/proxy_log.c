/* proxy_log.c - the proxy's access log: one line per client session, written
 * when it closes, into the core's buffered log file (api->logfile_*):
 *   CLIENT [START] NAME SERVER CONNECT_MS/TOTAL_MS BYTES_IN BYTES_OUT END */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "proxy.h"

#define PROXY_LOG_LINE 512

static const char *const proxy_end_names[] = {
    [PROXY_END_NONE] = "-",
    [PROXY_END_CLIENT] = "client",
    [PROXY_END_SERVER] = "server",
    [PROXY_END_ERROR] = "error",
    [PROXY_END_TIMEOUT] = "timeout",
    [PROXY_END_NO_SERVER] = "no_server",
    [PROXY_END_REJECTED] = "rejected",
};

/* access_log: PATH, or { path: PATH, buffer: SIZE, flush: DURATION } */
static const zerg_directive access_log_directives[] = {
    {"path", ZERG_CONF_STR, offsetof(proxy_conf, access_log), NULL, 0, 0},
    {"buffer", ZERG_CONF_SIZE, offsetof(proxy_conf, log_buffer), NULL, 4096, 16 << 20},
    {"flush", ZERG_CONF_MSEC, offsetof(proxy_conf, log_flush), NULL, 1, 3600000},
    ZERG_DIRECTIVE_END,
};

int proxy_parse_access_log(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const zerg_api *a = proxy_api;
    proxy_conf *cf = (proxy_conf *)((char *)field - offsetof(proxy_conf, access_log));
    const char *path = a->node_scalar(cx, n);
    if (a->node_kind(cx, n) == ZERG_NODE_MAP) {
        if (a->conf_apply(cx, n, access_log_directives, cf) < 0)
            return -1;
        path = cf->access_log;
    }
    if (!path || !*path)
        return a->conf_error(cx, n, "access_log: expected a path, or { path, buffer, flush }");
    cf->access_log = a->conf_path(cx, path);
    return cf->access_log ? 0 : a->conf_error(cx, n, "access_log: out of memory");
}

int proxy_log_open(proxy_worker_state *ws)
{
    const zerg_api *a = proxy_api;
    proxy_conf *cf = ws->conf;
    if (!cf->access_log)
        return 0;
    if (!ZERG_API_HAS(a, logfile_commit)) {
        a->log(ZERG_LOG_ERROR, "proxy %s: access_log needs a newer zerg core", cf->name);
        return -1;
    }
    ws->log = a->logfile_open(ws->w, cf->access_log, cf->log_buffer, cf->log_flush);
    if (!ws->log) {
        a->log(ZERG_LOG_ERROR, "proxy %s: access_log %s: %s", cf->name, cf->access_log,
               strerror(errno));
        return -1;
    }
    ws->log_sec = -1;
    return 0;
}

/* "1.2.3.4:5", "[::1]:5", "unix" */
static void peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "-";
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(v4->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, len, "%s", sa && sa->sa_family == AF_UNIX ? "unix" : "-");
    }
}

void proxy_log_session(zerg_conn *c, proxy_ctx *x)
{
    const zerg_api *a = proxy_api;
    proxy_conf *cf = x->conf;
    proxy_worker_state *ws = cf ? cf->ws : NULL;
    if (!ws || !ws->log)
        return;
    char *o = a->logfile_reserve(ws->log, PROXY_LOG_LINE);
    if (!o)
        return;                        /* dropped: the core counts it */
    if (x->open_unix != ws->log_sec) { /* nginx's $time_local, once a second */
        time_t t = (time_t)x->open_unix;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(ws->log_time, sizeof(ws->log_time), "%d/%b/%Y:%H:%M:%S %z", &tm);
        ws->log_sec = x->open_unix;
    }
    char client[64], connect[24];
    socklen_t len = 0;
    peer_text(a->conn_peer(c, &len), client, sizeof(client));
    const char *server = a->upstream_server(cf->up, x->last_srv, NULL, NULL);
    if (!server)
        server = "-";
    if (x->connect_ms >= 0)
        snprintf(connect, sizeof(connect), "%lld", (long long)x->connect_ms);
    else
        snprintf(connect, sizeof(connect), "-1");
    int n = snprintf(
        o, PROXY_LOG_LINE, "%s [%s] %s %.200s %s/%llu %llu %llu %s\n", client, ws->log_time,
        cf->name, server, connect, (unsigned long long)(proxy_now() - x->open_ms),
        (unsigned long long)x->rx, (unsigned long long)x->tx,
        proxy_end_names[x->end < sizeof(proxy_end_names) / sizeof(*proxy_end_names) ? x->end : 0]);
    if (n > 0)
        a->logfile_commit(ws->log, (size_t)n < PROXY_LOG_LINE ? (size_t)n : PROXY_LOG_LINE - 1);
}
