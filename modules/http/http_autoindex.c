/* modules/http/http_autoindex.c - directory listings for locations with
 * `autoindex: true` (a sorted HTML list, dot files hidden, names escaped). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "http_out.h"
#include "http_autoindex.h"

#define HTTP_AUTOINDEX_MAX 10000

static int http_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void http_sb_html(http_sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            http_sb_put(b, "&amp;", 5);
            break;
        case '<':
            http_sb_put(b, "&lt;", 4);
            break;
        case '>':
            http_sb_put(b, "&gt;", 4);
            break;
        case '"':
            http_sb_put(b, "&quot;", 6);
            break;
        default:
            http_sb_put(b, s + i, 1);
            break;
        }
    }
}

static void http_sb_url(http_sbuf *b, const char *s, size_t n)
{
    char tmp[1024];
    while (n) {
        size_t k = n > 256 ? 256 : n;
        size_t o = http_url_encode(s, k, tmp, sizeof(tmp));
        http_sb_put(b, tmp, o);
        s += k;
        n -= k;
    }
}

int http_autoindex(http_conn *hc, int dfd, const char *path, size_t plen)
{
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        http_send_error(hc, 403, 0);
        return 2;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < HTTP_AUTOINDEX_MAX) {
        if (e->d_name[0] == '.')
            continue;
        size_t l = strlen(e->d_name);
        int isdir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            struct stat st;
            isdir = fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof(char *));
            if (!nn)
                break;
            names = nn;
        }
        char *s = malloc(l + 2);
        if (!s)
            break;
        memcpy(s, e->d_name, l);
        s[l] = isdir ? '/' : 0;
        s[l + 1] = 0;
        names[n++] = s;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(char *), http_name_cmp);
    http_sbuf b = {0};
    http_sb_put(&b, "<html>\r\n<head><title>Index of ", 31);
    http_sb_html(&b, path, plen);
    http_sb_put(&b, "</title></head>\r\n<body>\r\n<h1>Index of ", 38);
    http_sb_html(&b, path, plen);
    http_sb_put(&b, "</h1><hr><pre><a href=\"../\">../</a>\r\n", 37);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        http_sb_put(&b, "<a href=\"", 9);
        http_sb_url(&b, names[i], l);
        http_sb_put(&b, "\">", 2);
        http_sb_html(&b, names[i], l);
        http_sb_put(&b, "</a>\r\n", 6);
        free(names[i]);
    }
    free(names);
    http_sb_put(&b, "</pre><hr></body>\r\n</html>\r\n", 29);
    if (b.failed) {
        free(b.p);
        http_send_error(hc, 500, 0);
        return 2;
    }
    static const char ct[] = "Content-Type: text/html\r\n";
    if (http_write_head(hc, 200, ct, sizeof(ct) - 1, (int64_t)b.n) == 0 && !hc->req.head)
        http_out_write(hc, b.p, b.n);
    hc->req.sent = hc->req.head ? 0 : b.n;
    free(b.p);
    return 0;
}

const zerg_directive http_autoindex_location_directives[] = {
    {"autoindex", ZERG_CONF_BOOL, offsetof(http_location, autoindex), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};
