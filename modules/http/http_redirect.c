/* modules/http/http_redirect.c - the return directive, and return answers
 * whose location has variables (return: { status: 301, location:
 * "https://$host$request_uri" }), expanded per request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_out.h"
#include "http_redirect.h"

/* $host without a host in the request: the first plain server_name, else
 * the address the client reached. */
size_t http_default_host(http_conn *hc, char *buf, size_t cap)
{
    const zerg_str_list *names = &hc->srv->server_name;
    for (size_t i = 0; i < names->n; i++) {
        const char *nm = names->items[i];
        if (*nm && !strchr(nm, '*') && nm[0] != '.' && strlen(nm) < cap)
            return (size_t)snprintf(buf, cap, "%s", nm);
    }
    socklen_t alen;
    return http_addr_text(http_api->conn_local(hc->c, &alen), buf, cap, 1);
}

/* nginx's $request_uri: the target as sent from its path on (an
 * absolute-form target loses scheme and authority), without a fragment. */
void http_request_uri(http_conn *hc, const char **p, size_t *len)
{
    const char *url = http_hbuf(hc, hc->req.url);
    size_t ul = hc->req.url.len, i = http_target_path_start(url, ul);
    if (i == ul) {
        *p = "/";
        *len = 1;
        return;
    }
    size_t j = i;
    while (j < ul && url[j] != '#')
        j++;
    *p = url + i;
    *len = j - i;
}

const char *http_scheme(http_conn *hc)
{
    zerg_tls_info info = {.struct_size = sizeof(info)};
    if (ZERG_API_HAS(http_api, conn_tls) && http_api->conn_tls(hc->c, &info))
        return "https";
    return "http";
}

void http_send_redirect(http_conn *hc, const http_location *l, const char *path, size_t plen)
{
    char host[300];
    size_t hl = http_request_host(hc, host, sizeof(host));
    if (hl == 0 || hl >= sizeof(host))
        hl = http_default_host(hc, host, sizeof(host));
    const char *ru;
    size_t rul;
    http_request_uri(hc, &ru, &rul);
    size_t cap = 16 + l->ret_location.text_len + l->ret_head_len;
    for (size_t i = 0; i < l->ret_location.n; i++) {
        int v = l->ret_location.parts[i].var;
        cap += v == HTTP_VAR_HOST ? hl : v == HTTP_VAR_REQUEST_URI ? rul : 3 * plen + 8;
    }
    char stack[4096];
    char *o = cap <= sizeof(stack) ? stack : malloc(cap);
    if (!o) {
        http_conn_abort(hc);
        return;
    }
    size_t n = 10;
    memcpy(o, "Location: ", 10);
    for (size_t i = 0; i < l->ret_location.n; i++) {
        const http_tmpl_part *pt = &l->ret_location.parts[i];
        switch (pt->var) {
        case HTTP_VAR_TEXT:
            memcpy(o + n, pt->text, pt->len);
            n += pt->len;
            break;
        case HTTP_VAR_SCHEME: {
            const char *scheme = http_scheme(hc);
            memcpy(o + n, scheme, strlen(scheme));
            n += strlen(scheme);
            break;
        }
        case HTTP_VAR_HOST:
            memcpy(o + n, host, hl);
            n += hl;
            break;
        case HTTP_VAR_REQUEST_URI:
            memcpy(o + n, ru, rul);
            n += rul;
            break;
        case HTTP_VAR_URI: /* decoded: encode again for the header */
            n += http_url_encode(path, plen, o + n, cap - n);
            break;
        }
    }
    memcpy(o + n, "\r\n", 2);
    n += 2;
    /* then the fixed part, less its final CRLF: write_head adds it */
    memcpy(o + n, l->ret_head, l->ret_head_len - 2);
    n += l->ret_head_len - 2;
    size_t body = hc->req.head ? 0 : l->ret_body_len;
    hc->req.sent = body;
    if (http_write_head(hc, (int)l->ret->status, o, n, -1) == 0 && body)
        http_out_write(hc, l->ret->body, body);
    if (o != stack)
        free(o);
}

/* ---- the return directive ---- */

static int http_parse_headers(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    return http_parse_header_list(cx, node, field, "headers");
}

static const zerg_directive http_return_directives[] = {
    {"status", ZERG_CONF_INT, offsetof(http_return, status), NULL, 100, 599},
    {"body", ZERG_CONF_STR, offsetof(http_return, body), NULL, 0, 0},
    {"headers", ZERG_CONF_CUSTOM, offsetof(http_return, headers), http_parse_headers, 0, 0},
    {"location", ZERG_CONF_STR, offsetof(http_return, location), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};

static int http_parse_return(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_return **rp = field;
    http_return *r = http_api->conf_alloc(cx, sizeof(*r));
    if (!r)
        return -1; /* conf_alloc reported it */
    r->status = 200;
    if (http_api->node_kind(cx, node) == ZERG_NODE_SCALAR) {
        if (http_api->conf_int(cx, node, 100, 599, &r->status))
            return -1;
    } else if (http_api->node_kind(cx, node) == ZERG_NODE_MAP) {
        if (http_api->conf_apply(cx, node, http_return_directives, r))
            return -1;
    } else {
        return http_api->conf_error(cx, node, "return: expected a status or a mapping");
    }
    if (r->location && http_check_header(cx, node, "Location", r->location))
        return -1;
    *rp = r;
    return 0;
}

const zerg_directive http_redirect_location_directives[] = {
    {"return", ZERG_CONF_CUSTOM, offsetof(http_location, ret), http_parse_return, 0, 0},
    ZERG_DIRECTIVE_END,
};
