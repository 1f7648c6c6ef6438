/* tests/unit/test_http.c - Criterion tests of the http module's pure helpers:
 * head scanning, path safety, target parsing, dates, ranges, entity tags,
 * MIME lookup, transfer codings, location matching and allow/deny. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_access.h"
#include "test_addr.h"

static const http_limits lim = {.max_line = 100, .max_head = 400, .max_headers = 5};

static int scan(const char *s, size_t *used, http_scan *st)
{
    memset(st, 0, sizeof(*st));
    return http_scan_head(st, (const uint8_t *)s, strlen(s), used, &lim);
}

Test(scan, good_head)
{
    http_scan s;
    size_t used;
    const char *r = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    cr_assert_eq(scan(r, &used, &s), 0);
    cr_assert(s.done);
    cr_assert_eq(used, strlen(r) - 4);
}

Test(scan, incremental)
{
    http_scan s;
    memset(&s, 0, sizeof(s));
    const char *r = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t used;
    for (size_t i = 0; i < strlen(r); i++) {
        cr_assert_eq(http_scan_head(&s, (const uint8_t *)r + i, 1, &used, &lim), 0);
        if (i + 1 < strlen(r))
            cr_assert(!s.done);
    }
    cr_assert(s.done);
}

Test(scan, leading_empty_lines_ok)
{
    http_scan s;
    size_t used;
    cr_assert_eq(scan("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &used, &s), 0);
    cr_assert(s.done);
}

Test(scan, request_line_length)
{
    http_scan s;
    size_t used;
    cr_assert_eq(scan("\r\nGET /ab HTTP/1.1\r\nHost: a\r\n\r\n", &used, &s), 0);
    cr_assert_eq(s.line1, 16); /* "GET /ab HTTP/1.1" */
}

Test(misc, token_chars)
{
    cr_assert(http_all_tchar("!#$%&'*+-.^_`|~09azAZ", 21));
    cr_assert(http_all_tchar("", 0));
    static const char *const bad[] = {"a b", "a\tb", "a:", "a@", "(", "\"", "/", "a\x80", "\x7f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert(!http_all_tchar(bad[i], strlen(bad[i])), "%s", bad[i]);
}

Test(scan, refusals)
{
    http_scan s;
    size_t used;
    cr_assert_eq(scan("GET / HTTP/1.1\nHost: a\r\n\r\n", &used, &s), 400, "bare LF");
    cr_assert_eq(scan("GET / HTTP/1.1\r\nHost: a\n\n", &used, &s), 400, "bare LF");
    cr_assert_eq(scan("GET / HTTP/1.1\rHost: a\r\n\r\n", &used, &s), 400, "bare CR");
    cr_assert_eq(scan("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", &used, &s), 400, "obs-fold");
    cr_assert_eq(scan("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", &used, &s), 400, "obs-fold tab");
    cr_assert_eq(scan("GET / HTTP/1.1\r\n Host: a\r\n\r\n", &used, &s), 400, "leading ws");
    cr_assert_eq(scan("GET / HTTP/1.1\r\nX: a\001b\r\n\r\n", &used, &s), 400, "control");
    cr_assert_eq(scan("GET / HTTP/1.1\r\nX: a\177\r\n\r\n", &used, &s), 400, "DEL");
    const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    memset(&s, 0, sizeof(s));
    cr_assert_eq(http_scan_head(&s, (const uint8_t *)nul, sizeof(nul) - 1, &used, &lim), 400);
    cr_assert_eq(scan("GET / HTTP/1.1\r\nX: a\tb\r\n\r\n", &used, &s), 0, "tab is fine");
}

Test(scan, limits)
{
    http_scan s;
    size_t used;
    char big[1024];
    snprintf(big, sizeof(big), "GET /%0150d HTTP/1.1\r\n\r\n", 0);
    cr_assert_eq(scan(big, &used, &s), 414);
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX: %0450d\r\n\r\n", 0);
    cr_assert_eq(scan(big, &used, &s), 431);
    cr_assert_eq(
        scan("GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\nf: 1\r\n\r\n", &used, &s),
        431, "too many fields");
}

static int norm(const char *in, char *out)
{
    size_t n;
    int r = http_path_normalize(in, strlen(in), out, 512, &n);
    if (r == 0)
        cr_assert_eq(strlen(out), n);
    return r;
}

Test(path, normalize_ok)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/", "/"},
        {"/a/b", "/a/b"},
        {"/a//b/./c/", "/a/b/c/"},
        {"/a/b/../c", "/a/c"},
        {"/a/b/..", "/a/"},
        {"/a/.", "/a/"},
        {"/%41%62c", "/Abc"},
        {"/a%20b", "/a b"},
        {"/a/%2e%2E/b", "/b"},
        {"/..a/b..", "/..a/b.."},
    };
    char o[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(norm(cases[i].in, o), 0, "%s", cases[i].in);
        cr_assert_str_eq(o, cases[i].want, "%s", cases[i].in);
    }
}

Test(path, traversal_refused)
{
    char o[512];
    const char *bad[] = {
        "/..",
        "/../",
        "/../etc/passwd",
        "/a/../../etc/passwd",
        "/%2e%2e/etc",
        "/%2E%2E/etc",
        "/.%2e/etc",
        "/%2e./etc",
        "/a/./../../x",
        "//../etc",
        "/./../etc",
        "/a/b/../../../etc",
        "/%2e%2e",
        "/x/%2e%2e/%2e%2e/y",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(norm(bad[i], o), 403, "%s", bad[i]);
    const char *enc[] = {"/..%2fetc", "/..%2Fetc", "/a%2f..%2f..%2fetc", "/..%5cetc", "/%5c..%5c"};
    for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++)
        cr_assert_eq(norm(enc[i], o), 404, "%s", enc[i]);
    const char *inv[] = {"/%", "/%2", "/%zz", "/a%00b", "relative", "/%c0%ae", "/a%0ab"};
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(norm(inv[i], o), 400, "%s", inv[i]);
    /* %c0%ae is an overlong '.', decoded as two bytes: a plain file name;
     * encoded control bytes other than NUL are plain bytes of a name */
    cr_assert_eq(norm(inv[5], o), 0);
    cr_assert_eq(norm(inv[6], o), 0);
    cr_assert_str_eq(o, "/a\nb");
}

Test(path, target)
{
    const char *p;
    size_t n;
    http_target_path("/a/b?x=1", 8, &p, &n);
    cr_assert_eq(n, 4);
    cr_assert(!memcmp(p, "/a/b", 4));
    http_target_path("http://h:80/x?y", 15, &p, &n);
    cr_assert_eq(n, 2);
    cr_assert(!memcmp(p, "/x", 2));
    http_target_path("https://h", 9, &p, &n);
    cr_assert_eq(n, 1);
    http_target_path("/a#f", 4, &p, &n);
    cr_assert_eq(n, 2);
}

Test(date, roundtrip)
{
    char d[30];
    http_fmt_date(784111777, d);
    cr_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_assert_eq(http_parse_date(d, 29), 784111777);
    cr_assert_eq(http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", 30), 784111777);
    cr_assert_eq(http_parse_date("Sun Nov  6 08:49:37 1994", 24), 784111777);
    cr_assert_eq(http_parse_date("garbage garbage garbage!", 24), -1);
    cr_assert_eq(http_parse_date("Sun, 06 Nov 1994 08:49:37 XYZ", 29), -1);
    cr_assert_eq(http_parse_date("Sun, 32 Nov 1994 08:49:37 GMT", 29), -1);
}

Test(range, parse)
{
    /* rc 1: one satisfiable range [start, end]; -1: unsatisfiable; 0: ignored */
    static const struct {
        const char *h;
        uint64_t size;
        int rc;
        uint64_t start, end;
    } cases[] = {
        {"bytes=0-9", 100, 1, 0, 9},       {"bytes=90-", 100, 1, 90, 99},
        {"bytes=-10", 100, 1, 90, 99},     {"bytes=-1000", 100, 1, 0, 99},
        {"bytes=50-1000", 100, 1, 50, 99}, {"bytes=100-", 100, -1, 0, 0},
        {"bytes=-0", 100, -1, 0, 0},       {"bytes=0-1,5-6", 100, 0, 0, 0},
        {"bytes=9-1", 100, 0, 0, 0},       {"items=0-1", 100, 0, 0, 0},
        {"bytes=a-b", 100, 0, 0, 0},       {"bytes=0-0", 0, -1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t s, e;
        const char *h = cases[i].h;
        cr_assert_eq(http_parse_range(h, strlen(h), cases[i].size, &s, &e), cases[i].rc, "%s", h);
        if (cases[i].rc == 1)
            cr_assert(s == cases[i].start && e == cases[i].end, "%s: %llu-%llu", h,
                      (unsigned long long)s, (unsigned long long)e);
    }
}

Test(etag, match)
{
    char et[64];
    size_t n = http_fmt_etag(et, sizeof(et), 0x5f5e100, 0x1234);
    cr_assert_str_eq(et, "\"5f5e100-1234\"");
    cr_assert(http_etag_match("\"5f5e100-1234\"", 14, et, n));
    cr_assert(http_etag_match("W/\"5f5e100-1234\"", 16, et, n));
    cr_assert(http_etag_match("\"x\", \"5f5e100-1234\"", 19, et, n));
    cr_assert(http_etag_match("*", 1, et, n));
    cr_assert(!http_etag_match("\"x\"", 3, et, n));
    cr_assert(!http_etag_match("", 0, et, n));
}

Test(mime, lookup)
{
    http_mime extra[] = {{"foo", "application/x-foo"}, {"html", "text/x-override"}};
    cr_assert_str_eq(http_mime_lookup("/a/index.html", 13, NULL, 0), "text/html");
    cr_assert_str_eq(http_mime_lookup("/a.CSS", 6, NULL, 0), "text/css");
    cr_assert_str_eq(http_mime_lookup("/x.foo", 6, extra, 2), "application/x-foo");
    cr_assert_str_eq(http_mime_lookup("/x.html", 7, extra, 2), "text/x-override");
    cr_assert_null(http_mime_lookup("/noext", 6, NULL, 0));
    cr_assert_null(http_mime_lookup("/a.d/noext", 10, NULL, 0));
    cr_assert_null(http_mime_lookup("/x.", 3, NULL, 0));
}

Test(misc, host)
{
    const char *ok[] = {"example.com", "a.b:8080",    "",      "[::1]",
                        "[::1]:80",    "127.0.0.1:1", "x_y-z~"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_assert(http_host_valid(ok[i], strlen(ok[i])), "%s", ok[i]);
    const char *bad[] = {"a b",  "a/b",     "a?b",  "a@b",  "a:b",
                         "[::1", "a:80:80", "a\"b", "a\\b", "a#b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert(!http_host_valid(bad[i], strlen(bad[i])), "%s", bad[i]);
}

Test(misc, buf_append)
{
    char *b = NULL;
    uint32_t len = 0, cap = 0;
    cr_assert_eq(http_buf_append(&b, &len, &cap, "", 0), 0);
    cr_assert_null(b, "nothing to append: nothing allocated");
    for (int i = 0; i < 300; i++)
        cr_assert_eq(http_buf_append(&b, &len, &cap, "abcd", 4), 0);
    cr_assert_eq(len, 1200);
    cr_assert_geq(cap, 1200);
    cr_assert(!memcmp(b + 1196, "abcd", 4));
    free(b);
}

Test(misc, url_encode)
{
    char o[64];
    cr_assert_eq(http_url_encode("/a b/%&\r\n", 9, o, sizeof(o)), 19);
    cr_assert_str_eq(o, "/a%20b/%25%26%0D%0A");
    http_url_encode("x-y_z.~", 7, o, sizeof(o));
    cr_assert_str_eq(o, "x-y_z.~");
}

Test(misc, te_reason)
{
    /* chunked_before: a chunked coding seen in an earlier field */
    static const struct {
        const char *te;
        int chunked_before, rc, chunked;
    } cases[] = {
        {" Chunked ", 0, 0, 1},
        {"xchunked", 0, 501, 0},
        {"gzip, chunked", 0, 0, 1},
        {" gzip , deflate , \tidentity\t, compress\t, chunked", 0, 0, 1},
        {"chunked, gzip", 0, 400, 0},
        {"chunked", 1, 400, 1},
        {"br, chunked", 0, 501, 0},
        {"chunked;a=b", 0, 501, 0},
        {"gzip", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int ch = cases[i].chunked_before;
        cr_assert_eq(http_te_check(cases[i].te, strlen(cases[i].te), &ch), cases[i].rc, "%s",
                     cases[i].te);
        if (cases[i].rc == 0)
            cr_assert_eq(ch, cases[i].chunked, "%s", cases[i].te);
    }
    cr_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
    cr_assert_str_eq(http_reason(999), "Unknown");
}

Test(location, match)
{
    http_location locs[4];
    memset(locs, 0, sizeof(locs));
    const char *paths[] = {"/", "=/health", "/static/", "/static/img/"};
    for (int i = 0; i < 4; i++) {
        locs[i].path = (char *)paths[i];
        locs[i].exact = paths[i][0] == '=';
        locs[i].match = paths[i] + locs[i].exact;
        locs[i].match_len = strlen(locs[i].match);
    }
    http_srv s;
    memset(&s, 0, sizeof(s));
    s.locs = locs;
    s.nlocs = 4;
    cr_assert_eq(http_find_location(&s, "/health", 7), &locs[1]);
    cr_assert_eq(http_find_location(&s, "/health/x", 9), &locs[0]);
    cr_assert_eq(http_find_location(&s, "/static/a", 9), &locs[2]);
    cr_assert_eq(http_find_location(&s, "/static/img/a", 13), &locs[3]);
    cr_assert_eq(http_find_location(&s, "/x", 2), &locs[0]);
    s.nlocs = 2;
    cr_assert_eq(http_find_location(&s, "/static/a", 9), &locs[0]);
    s.locs = &locs[1];
    s.nlocs = 1;
    cr_assert_null(http_find_location(&s, "/x", 2));
}

Test(misc, accepts_gzip)
{
    const char *yes[] = {
        "gzip",    "GZIP",         "deflate, gzip;q=0.5",  "*",       "*;q=0.1", " gzip ;q=1",
        "br,gzip", "gzip;q=1.000", "gzip;level=1;q=0.001", "x, *;q=1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        cr_assert(http_accepts_gzip(yes[i], strlen(yes[i])), "%s", yes[i]);
    const char *no[] = {"",         "br",         "gzip;q=0",       "gzip;q=0.000", "*;q=0",
                        "gzipx",    "x-gzip",     "*, gzip;q=0",    "gzip;q=2",     "gzip;q=0.0001",
                        "identity", "gzip;q=abc", "deflate;q=1, br"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_assert(!http_accepts_gzip(no[i], strlen(no[i])), "%s", no[i]);
}

static http_cidr_list cidrs(const char **v, size_t n)
{
    http_cidr_list l = {.items = calloc(n ? n : 1, sizeof(http_cidr)), .n = n};
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(http_cidr_parse(v[i], &l.items[i]), 0, "%s", v[i]);
    return l;
}

static int allows(const http_location *l, const char *ip)
{
    struct sockaddr_storage ss = test_addr(ip, 0);
    return http_access_allows(l, (struct sockaddr *)&ss);
}

Test(access, parse)
{
    const char *ok[] = {"all", "127.0.0.1", "10.0.0.0/8", "0.0.0.0/0",
                        "::1", "fe80::/10", "::/0",       "192.168.1.128/25"};
    http_cidr c;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_assert_eq(http_cidr_parse(ok[i], &c), 0, "%s", ok[i]);
    const char *bad[] = {"",           "any",         "10.0.0.1/8", "10.0.0.0/33",
                         "10.0.0.0/",  "10.0.0.0/-1", "10.0.0/8",   "::1/129",
                         "fe80::1/10", "1.2.3.4/8x",  "localhost",  "[::1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(http_cidr_parse(bad[i], &c), -1, "%s", bad[i]);
}

Test(access, unix_socket_clients)
{
    http_location l;
    memset(&l, 0, sizeof(l));
    struct sockaddr_un un = {.sun_family = AF_UNIX}; /* a client has no path */
    const char *allow[] = {"127.0.0.1", "unix:"};
    l.allow = cidrs(allow, 2);
    cr_assert(http_access_allows(&l, (struct sockaddr *)&un));
    cr_assert(allows(&l, "127.0.0.1"));
    cr_assert(!allows(&l, "127.0.0.2"));
    free(l.allow.items);
    const char *only_ip[] = {"0.0.0.0/0", "::/0"};
    l.allow = cidrs(only_ip, 2);
    cr_assert(!http_access_allows(&l, (struct sockaddr *)&un), "no IP entry matches unix:");
    free(l.allow.items);
    l.allow.n = 0;
    const char *deny[] = {"unix:"};
    l.deny = cidrs(deny, 1);
    cr_assert(!http_access_allows(&l, (struct sockaddr *)&un));
    cr_assert(allows(&l, "10.0.0.1"));
    free(l.deny.items);
    char text[16];
    cr_assert_eq(http_addr_text((struct sockaddr *)&un, text, sizeof(text), 0), 5);
    cr_assert_str_eq(text, "unix:");
}

Test(access, allow_and_deny)
{
    http_location l;
    memset(&l, 0, sizeof(l));
    cr_assert(allows(&l, "192.0.2.1")); /* no lists: everyone */
    const char *allow[] = {"10.0.0.0/8", "192.168.1.128/25", "::1"};
    l.allow = cidrs(allow, 3);
    cr_assert(allows(&l, "10.1.2.3"));
    cr_assert(allows(&l, "192.168.1.200"));
    cr_assert(!allows(&l, "192.168.1.127"));
    cr_assert(!allows(&l, "11.0.0.1"));
    cr_assert(allows(&l, "::1"));
    cr_assert(!allows(&l, "::2"));
    cr_assert(allows(&l, "::ffff:10.9.9.9")); /* v4 client on a v6 listener */
    cr_assert(!allows(&l, "::ffff:11.9.9.9"));
    const char *deny[] = {"10.0.0.7"};
    l.deny = cidrs(deny, 1); /* deny wins over allow */
    cr_assert(!allows(&l, "10.0.0.7"));
    cr_assert(allows(&l, "10.0.0.8"));
    cr_assert(!http_access_allows(&l, NULL)); /* no IP address: not in any allow list */
    free(l.allow.items);
    l.allow.n = 0;
    const char *all[] = {"all"};
    free(l.deny.items);
    l.deny = cidrs(all, 1);
    cr_assert(!allows(&l, "127.0.0.1"));
    cr_assert(!allows(&l, "::1"));
    free(l.deny.items);
}
