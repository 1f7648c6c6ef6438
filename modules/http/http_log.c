/* modules/http/http_log.c - the access log: nginx combined/common (or a
 * custom format's) lines, written into the core's buffered log file
 * (api->logfile_*: through io_uring, reopened on SIGUSR1), and the
 * access_log directive. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "http_log.h"

typedef struct http_log {
    struct http_log *next;
    zerg_logfile *lf; /* the core's buffered file (api->logfile_open) */
    size_t cap;       /* its buffer: bounds the length of a line */
    int format;
    const http_tmpl *tmpl; /* HTTP_LOG_CUSTOM */
} http_log;

static http_log *http_logs;

int http_log_open(http_srv *s)
{
    http_log *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    l->format = s->access_log.format;
    l->tmpl = &s->access_log.tmpl;
    l->cap = (size_t)s->access_log.buffer;
    l->lf = http_api->logfile_open(http_W.w, s->access_log.path, l->cap, s->access_log.flush);
    if (!l->lf) {
        http_api->log(ZERG_LOG_ERROR, "access_log %s: %s", s->access_log.path, strerror(errno));
        free(l);
        return -1;
    }
    l->next = http_logs;
    http_logs = l;
    s->log = l;
    return 0;
}

/* Appends s[0..n) escaping '"', '\\' and bytes outside printable ASCII as
 * \xHH, like nginx; at most max source bytes. */
static size_t http_log_esc(char *o, const char *s, size_t n, size_t max)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
            o[k++] = '\\';
            o[k++] = 'x';
            o[k++] = hex[c >> 4];
            o[k++] = hex[c & 15];
        } else {
            o[k++] = (char)c;
        }
    }
    return k;
}

#define HTTP_LOG_FIELD 2048

/* "METHOD target HTTP/x.y" ("-" before a request line was read) */
static size_t http_log_request_line(http_conn *hc, char *o, size_t field)
{
    http_req *r = &hc->req;
    if (!r->url.len) {
        o[0] = '-';
        return 1;
    }
    size_t n = (size_t)sprintf(o, "%s ", llhttp_method_name((llhttp_method_t)r->method));
    n += http_log_esc(o + n, http_hbuf(hc, r->url), r->url.len, field);
    n += (size_t)sprintf(o + n, " HTTP/%u.%u", r->major, r->minor);
    return n;
}

/* A known header's value, escaped, or "-" */
static size_t http_log_header(http_conn *hc, int id, char *o, size_t field)
{
    http_req *r = &hc->req;
    if (r->url.len && r->hcount[id] && r->hv[id].len)
        return http_log_esc(o, http_hbuf(hc, r->hv[id]), r->hv[id].len, field);
    o[0] = '-';
    return 1;
}

/* nginx's combined and common lines */
static size_t http_log_standard(http_conn *hc, const http_log *l, char *o, size_t field,
                                const char *addr)
{
    http_req *r = &hc->req;
    size_t n = (size_t)sprintf(o, "%s - - [%s] \"", addr, http_W.log_time);
    n += http_log_request_line(hc, o + n, field);
    n += (size_t)sprintf(o + n, "\" %d %llu", r->status, (unsigned long long)r->sent);
    if (l->format == HTTP_LOG_COMBINED) {
        const int ids[2] = {HTTP_H_REFERER, HTTP_H_UA};
        for (int i = 0; i < 2; i++) {
            o[n++] = ' ';
            o[n++] = '"';
            n += http_log_header(hc, ids[i], o + n, field);
            o[n++] = '"';
        }
    }
    return n;
}

/* Milliseconds as seconds with three decimals ("0.042"). */
static size_t http_log_secs(char *d, uint64_t ms)
{
    return (size_t)sprintf(d, "%llu.%03llu", (unsigned long long)(ms / 1000),
                           (unsigned long long)(ms % 1000));
}

/* One of the $ssl_ variables: \- on a connection without TLS (or a
 * value it does not have), as nginx's are empty there. */
static size_t http_log_tls(http_conn *hc, int var, char *d, size_t field)
{
    zerg_tls_info ti = {.struct_size = sizeof(ti)};
    if (!ZERG_API_HAS(http_api, conn_tls) || !http_api->conn_tls(hc->c, &ti))
        return (size_t)sprintf(d, "-");
    const char *s = var == HTTP_VAR_SSL_PROTOCOL         ? ti.version
                    : var == HTTP_VAR_SSL_CIPHER         ? ti.cipher
                    : var == HTTP_VAR_SSL_SERVER_NAME    ? ti.server_name
                    : var == HTTP_VAR_SSL_SESSION_REUSED ? (ti.resumed ? "r" : ".")
                    : var == HTTP_VAR_SSL_CLIENT_S_DN    ? ti.client_s_dn
                    : var == HTTP_VAR_SSL_CLIENT_VERIFY  ? ti.client_verify
                                                         : ti.alpn;
    size_t len = var == HTTP_VAR_SSL_ALPN_PROTOCOL ? ti.alpn_len : s ? strlen(s) : 0;
    if (!s || !len)
        return (size_t)sprintf(d, "-");
    return http_log_esc(d, s, len, field);
}

/* A format with $variables; each at most 4 * field + 64 bytes */
static size_t http_log_custom(http_conn *hc, const http_tmpl *t, char *o, size_t field,
                              const char *addr)
{
    http_req *r = &hc->req;
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        const http_tmpl_part *p = &t->parts[i];
        char *d = o + n;
        switch (p->var) {
        case HTTP_VAR_TEXT:
            memcpy(d, p->text, p->len);
            n += p->len;
            break;
        case HTTP_VAR_REMOTE_ADDR:
            n += (size_t)sprintf(d, "%s", addr);
            break;
        case HTTP_VAR_REMOTE_USER:
            d[0] = '-';
            n++;
            break;
        case HTTP_VAR_TIME_LOCAL:
            n += (size_t)sprintf(d, "%s", http_W.log_time);
            break;
        case HTTP_VAR_TIME_ISO8601:
            n += (size_t)sprintf(d, "%s", http_W.log_iso);
            break;
        case HTTP_VAR_MSEC: {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            n += (size_t)sprintf(d, "%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
            break;
        }
        case HTTP_VAR_REQUEST:
            n += http_log_request_line(hc, d, field);
            break;
        case HTTP_VAR_REQUEST_METHOD:
            n += (size_t)sprintf(d, "%s",
                                 r->url.len ? llhttp_method_name((llhttp_method_t)r->method) : "-");
            break;
        case HTTP_VAR_REQUEST_URI:
            if (r->url.len)
                n += http_log_esc(d, http_hbuf(hc, r->url), r->url.len, field);
            else
                d[0] = '-', n++;
            break;
        case HTTP_VAR_SERVER_PROTOCOL:
            n += r->url.len ? (size_t)sprintf(d, "HTTP/%u.%u", r->major, r->minor)
                            : (size_t)sprintf(d, "-");
            break;
        case HTTP_VAR_STATUS:
            n += (size_t)sprintf(d, "%d", r->status);
            break;
        case HTTP_VAR_BODY_BYTES_SENT:
            n += (size_t)sprintf(d, "%llu", (unsigned long long)r->sent);
            break;
        case HTTP_VAR_HTTP_REFERER:
            n += http_log_header(hc, HTTP_H_REFERER, d, field);
            break;
        case HTTP_VAR_HTTP_USER_AGENT:
            n += http_log_header(hc, HTTP_H_UA, d, field);
            break;
        case HTTP_VAR_HOST: {
            char host[256];
            size_t hl = r->url.len ? http_request_host(hc, host, sizeof(host)) : 0;
            if (hl == 0 || hl >= sizeof(host))
                d[0] = '-', n++;
            else
                n += http_log_esc(d, host, hl, field);
            break;
        }
        case HTTP_VAR_REQUEST_TIME: {
            uint64_t now = http_api->now_ms(http_W.w);
            n += http_log_secs(d, now > r->start_ms ? now - r->start_ms : 0);
            break;
        }
        case HTTP_VAR_UPSTREAM_ADDR:
            n += r->up_addr ? http_log_esc(d, r->up_addr, strlen(r->up_addr), field)
                            : (size_t)sprintf(d, "-");
            break;
        case HTTP_VAR_UPSTREAM_STATUS:
            n += r->up_addr ? (size_t)sprintf(d, "%d", r->up_status) : (size_t)sprintf(d, "-");
            break;
        case HTTP_VAR_UPSTREAM_RESPONSE_TIME:
            n += r->up_addr ? http_log_secs(d, r->up_ms) : (size_t)sprintf(d, "-");
            break;
        case HTTP_VAR_SSL_PROTOCOL:
        case HTTP_VAR_SSL_CIPHER:
        case HTTP_VAR_SSL_SERVER_NAME:
        case HTTP_VAR_SSL_SESSION_REUSED:
        case HTTP_VAR_SSL_ALPN_PROTOCOL:
        case HTTP_VAR_SSL_CLIENT_S_DN:
        case HTTP_VAR_SSL_CLIENT_VERIFY:
            n += http_log_tls(hc, p->var, d, field);
            break;
        default:
            break;
        }
    }
    return n;
}

/* The cached local time strings, refreshed once a second. */
static void http_log_clock(void)
{
    int64_t now = http_api->unix_time(http_W.w);
    if (now == http_W.log_sec)
        return;
    time_t t = (time_t)now;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(http_W.log_time, sizeof(http_W.log_time), "%d/%b/%Y:%H:%M:%S %z", &tm);
    char z[8];
    strftime(z, sizeof(z), "%z", &tm); /* +hhmm: ISO 8601 wants +hh:mm */
    size_t k = strftime(http_W.log_iso, sizeof(http_W.log_iso), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(http_W.log_iso + k, sizeof(http_W.log_iso) - k, "%.3s:%.2s", z, z + 3);
    http_W.log_sec = now;
}

void http_log_request(http_conn *hc)
{
    http_log *l = hc->srv->log;
    const http_tmpl *t = l->format == HTTP_LOG_CUSTOM ? l->tmpl : NULL;
    /* worst case: every field escaped (x4 when every byte is escaped); the
     * standard lines have three, a format as many as its variables */
    size_t nfields = t ? t->n : 3, text = t ? t->text_len : 0;
    size_t field = ((l->cap / 2 - 256 - text) / nfields - 64) / 4;
    if (field > HTTP_LOG_FIELD)
        field = HTTP_LOG_FIELD;
    size_t need = text + nfields * (4 * field + 64) + 256;
    char *o = http_api->logfile_reserve(l->lf, need);
    if (!o)
        return; /* dropped: the core counts it */
    http_log_clock();
    char addr[64];
    socklen_t alen = 0;
    if (!http_addr_text(http_api->conn_peer(hc->c, &alen), addr, sizeof(addr), 0))
        strcpy(addr, "-");
    size_t n =
        t ? http_log_custom(hc, t, o, field, addr) : http_log_standard(hc, l, o, field, addr);
    o[n++] = '\n';
    http_api->logfile_commit(l->lf, n);
}

/* Worker exit: the core writes out and closes the files after this. */
void http_log_free_all(void)
{
    while (http_logs) {
        http_log *next = http_logs->next;
        free(http_logs);
        http_logs = next;
    }
}

/* ---- the access_log directive ---- */

static const zerg_directive http_log_directives[] = {
    {"path", ZERG_CONF_STR, offsetof(http_access_log_conf, path), NULL, 0, 0},
    {"format", ZERG_CONF_STR, offsetof(http_access_log_conf, format_name), NULL, 0, 0},
    {"buffer", ZERG_CONF_SIZE, offsetof(http_access_log_conf, buffer), NULL, 4096, 16 << 20},
    {"flush", ZERG_CONF_MSEC, offsetof(http_access_log_conf, flush), NULL, 10, 3600000},
    ZERG_DIRECTIVE_END,
};

static int http_parse_access_log(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_access_log_conf *a = field;
    const char *v = http_api->node_scalar(cx, node);
    if (v) {
        if (http_conf_is_off(v)) {
            a->path = NULL;
            return 0;
        }
        a->path = http_api->conf_strdup(cx, v);
    } else if (http_api->node_kind(cx, node) == ZERG_NODE_MAP) {
        if (http_api->conf_apply(cx, node, http_log_directives, a))
            return -1;
        if (!a->path)
            return http_api->conf_error(cx, node, "access_log: path is required");
    } else {
        return http_api->conf_error(cx, node, "access_log: expected off, a path or a mapping");
    }
    if (a->format_name) {
        if (!strcmp(a->format_name, "combined"))
            a->format = HTTP_LOG_COMBINED;
        else if (!strcmp(a->format_name, "common"))
            a->format = HTTP_LOG_COMMON;
        else if (strchr(a->format_name, '$'))
            a->format = HTTP_LOG_CUSTOM;
        else
            return http_api->conf_error(
                cx, node,
                "access_log: format must be combined, common or a string with $variables");
    }
    if (a->format == HTTP_LOG_CUSTOM) {
        if (http_tmpl_parse(cx, node, a->format_name, &a->tmpl, HTTP_TMPL_LOG,
                            "access_log format") < 0)
            return -1;
        /* room in the buffer for a line whose every field is long */
        if (a->tmpl.text_len + (a->tmpl.n + 1) * 256 > a->buffer / 2)
            return http_api->conf_error(cx, node, "access_log: format too long for its buffer");
    }
    return 0;
}

const zerg_directive http_log_server_directives[] = {
    {"access_log", ZERG_CONF_CUSTOM, offsetof(http_srv, access_log), http_parse_access_log, 0, 0},
    ZERG_DIRECTIVE_END,
};
