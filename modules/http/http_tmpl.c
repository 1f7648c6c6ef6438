/* modules/http/http_tmpl.c - strings with $variables (return's location,
 * access_log formats) split at load into text and variable parts; which
 * variables each use offers. */
#include <stdio.h>
#include <string.h>

#include "http.h"

static const struct {
    const char *name;
    int var;
    int uses; /* enum http_tmpl_use bits */
} http_vars[] = {
    {"scheme", HTTP_VAR_SCHEME, HTTP_TMPL_REDIRECT | HTTP_TMPL_PROXY},
    {"host", HTTP_VAR_HOST, HTTP_TMPL_REDIRECT | HTTP_TMPL_LOG | HTTP_TMPL_PROXY},
    {"request_uri", HTTP_VAR_REQUEST_URI, HTTP_TMPL_REDIRECT | HTTP_TMPL_LOG | HTTP_TMPL_PROXY},
    {"uri", HTTP_VAR_URI, HTTP_TMPL_REDIRECT},
    {"remote_addr", HTTP_VAR_REMOTE_ADDR, HTTP_TMPL_LOG | HTTP_TMPL_PROXY},
    {"remote_user", HTTP_VAR_REMOTE_USER, HTTP_TMPL_LOG},
    {"time_local", HTTP_VAR_TIME_LOCAL, HTTP_TMPL_LOG},
    {"time_iso8601", HTTP_VAR_TIME_ISO8601, HTTP_TMPL_LOG},
    {"msec", HTTP_VAR_MSEC, HTTP_TMPL_LOG},
    {"request", HTTP_VAR_REQUEST, HTTP_TMPL_LOG},
    {"request_method", HTTP_VAR_REQUEST_METHOD, HTTP_TMPL_LOG},
    {"server_protocol", HTTP_VAR_SERVER_PROTOCOL, HTTP_TMPL_LOG},
    {"status", HTTP_VAR_STATUS, HTTP_TMPL_LOG},
    {"body_bytes_sent", HTTP_VAR_BODY_BYTES_SENT, HTTP_TMPL_LOG},
    {"http_referer", HTTP_VAR_HTTP_REFERER, HTTP_TMPL_LOG},
    {"http_user_agent", HTTP_VAR_HTTP_USER_AGENT, HTTP_TMPL_LOG},
    {"request_time", HTTP_VAR_REQUEST_TIME, HTTP_TMPL_LOG},
    {"upstream_addr", HTTP_VAR_UPSTREAM_ADDR, HTTP_TMPL_LOG},
    {"upstream_status", HTTP_VAR_UPSTREAM_STATUS, HTTP_TMPL_LOG},
    {"upstream_response_time", HTTP_VAR_UPSTREAM_RESPONSE_TIME, HTTP_TMPL_LOG},
    {"proxy_host", HTTP_VAR_PROXY_HOST, HTTP_TMPL_PROXY},
    {"proxy_add_x_forwarded_for", HTTP_VAR_PROXY_ADD_X_FORWARDED_FOR, HTTP_TMPL_PROXY},
    {"ssl_protocol", HTTP_VAR_SSL_PROTOCOL, HTTP_TMPL_LOG},
    {"ssl_cipher", HTTP_VAR_SSL_CIPHER, HTTP_TMPL_LOG},
    {"ssl_server_name", HTTP_VAR_SSL_SERVER_NAME, HTTP_TMPL_LOG},
    {"ssl_session_reused", HTTP_VAR_SSL_SESSION_REUSED, HTTP_TMPL_LOG},
    {"ssl_alpn_protocol", HTTP_VAR_SSL_ALPN_PROTOCOL, HTTP_TMPL_LOG},
    {"ssl_client_s_dn", HTTP_VAR_SSL_CLIENT_S_DN, HTTP_TMPL_LOG},
    {"ssl_client_verify", HTTP_VAR_SSL_CLIENT_VERIFY, HTTP_TMPL_LOG},
};

#define HTTP_NVARS (sizeof(http_vars) / sizeof(http_vars[0]))

static int http_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int http_tmpl_parse(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *s, http_tmpl *t,
                    int use, const char *what)
{
    size_t len = strlen(s), cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += s[i] == '$' ? 2 : 0;
    t->parts = http_api->conf_alloc(cx, cap * sizeof(http_tmpl_part));
    if (!t->parts)
        return -1; /* out of memory, reported */
    t->n = 0;
    t->text_len = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] != '$') { /* text up to the next variable */
            size_t j = i;
            while (j < len && s[j] != '$')
                j++;
            t->parts[t->n++] = (http_tmpl_part){.var = HTTP_VAR_TEXT, .text = s + i, .len = j - i};
            t->text_len += j - i;
            i = j;
            continue;
        }
        int braced = i + 1 < len && s[i + 1] == '{';
        size_t b = i + 1 + (size_t)braced, e = b;
        while (e < len && http_name_char(s[e]))
            e++;
        int var = 0;
        for (size_t k = 0; k < HTTP_NVARS && e > b; k++)
            if ((http_vars[k].uses & use) && strlen(http_vars[k].name) == e - b &&
                !memcmp(http_vars[k].name, s + b, e - b))
                var = http_vars[k].var;
        if (!var || (braced && (e >= len || s[e] != '}'))) {
            char known[768];
            size_t kn = 0;
            for (size_t k = 0; k < HTTP_NVARS; k++)
                if (http_vars[k].uses & use)
                    kn += (size_t)snprintf(known + kn, sizeof(known) - kn, "%s$%s", kn ? ", " : "",
                                           http_vars[k].name);
            return http_api->conf_error(cx, n, "%s: unknown variable at \"%.20s\" (known: %s)",
                                        what, s + i, known);
        }
        t->parts[t->n++] = (http_tmpl_part){.var = var};
        i = e + (size_t)braced;
    }
    return 0;
}
