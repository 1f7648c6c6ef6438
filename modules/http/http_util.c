/* modules/http/http_util.c - pure helpers of the http module (no api calls):
 * head scanning, paths, Host and transfer codings, dates, ranges, entity tags,
 * MIME types, reason phrases and a growable buffer. Unit-tested directly. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"

/* Byte classes for the head scanner: 0 ordinary, 1 CR, 2 LF, 3 refused. */
static const uint8_t http_head_class[256] = {
    [0] = 3,  [1] = 3,  [2] = 3,  [3] = 3,  [4] = 3,  [5] = 3,  [6] = 3,  [7] = 3,
    [8] = 3,  [10] = 2, [11] = 3, [12] = 3, [13] = 1, [14] = 3, [15] = 3, [16] = 3,
    [17] = 3, [18] = 3, [19] = 3, [20] = 3, [21] = 3, [22] = 3, [23] = 3, [24] = 3,
    [25] = 3, [26] = 3, [27] = 3, [28] = 3, [29] = 3, [30] = 3, [31] = 3, [127] = 3,
};

int http_scan_head(http_scan *s, const uint8_t *p, size_t n, size_t *used, const http_limits *l)
{
    size_t i = 0;
    while (i < n) {
        if (!s->cr) {
            /* the ordinary bytes of the current line, in one run */
            size_t j = i;
            if (s->line_len == 0 && s->nlines > 0 && (p[j] == ' ' || p[j] == '\t'))
                return 400; /* obs-fold, or whitespace before the first field */
            while (j < n && http_head_class[p[j]] == 0)
                j++;
            size_t run = j - i;
            if (s->total + run > l->max_head)
                return s->nlines == 0 ? 414 : 431;
            s->total += (uint32_t)run;
            s->line_len += (uint32_t)run;
            if (s->nlines == 0 && s->line_len > l->max_line)
                return 414;
            i = j;
            if (i >= n)
                break;
            uint8_t cl = http_head_class[p[i]];
            if (cl != 1)
                return 400; /* bare LF, NUL, control byte */
            s->cr = 1;
            if (++s->total > l->max_head)
                return s->nlines == 0 ? 414 : 431;
            i++;
            continue;
        }
        /* after CR: LF must follow */
        if (p[i] != '\n')
            return 400; /* bare CR */
        if (++s->total > l->max_head)
            return s->nlines == 0 ? 414 : 431;
        s->cr = 0;
        i++;
        if (s->line_len == 0) {
            if (s->nlines == 0)
                continue; /* empty line(s) before the request line */
            s->done = 1;
            *used = i;
            return 0;
        }
        if (s->nlines++ == 0)
            s->line1 = s->line_len;
        if (s->nlines - 1 > l->max_headers)
            return 431;
        s->line_len = 0;
    }
    *used = n;
    return 0;
}

/* RFC 9110 5.6.2 tchar. */
const uint8_t http_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int http_all_tchar(const char *at, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!http_tchar[(uint8_t)at[i]])
            return 0;
    return 1;
}

static int http_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t http_target_path_start(const char *url, size_t len)
{
    if (len > 7 && (http_strncaseeq(url, "http://", 7) || http_strncaseeq(url, "https://", 8))) {
        size_t a = url[4] == ':' ? 7 : 8; /* the authority */
        const char *sl = memchr(url + a, '/', len - a);
        return sl ? (size_t)(sl - url) : len;
    }
    return 0;
}

void http_target_path(const char *url, size_t len, const char **path, size_t *plen)
{
    size_t i = http_target_path_start(url, len);
    if (i == len) {
        *path = "/";
        *plen = 1;
        return;
    }
    size_t j = i;
    while (j < len && url[j] != '?' && url[j] != '#')
        j++;
    *path = url + i;
    *plen = j - i;
}

int http_path_normalize(const char *in, size_t len, char *out, size_t cap, size_t *outlen)
{
    size_t o = 0;
    if (len == 0 || in[0] != '/' || cap < len + 2)
        return 400;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return 400;
            int h = http_hexval(in[i + 1]), lo = http_hexval(in[i + 2]);
            if (h < 0 || lo < 0)
                return 400;
            c = h * 16 + lo;
            i += 2;
            if (c == '/' || c == '\\')
                return 404; /* encoded slash */
            if (c == 0)
                return 400;
        }
        out[o++] = (char)c; /* raw control bytes were refused by the parser */
    }
    out[o] = 0;
    /* segment normalisation in place: "//", "/./", "/../" */
    size_t r = 0, wr = 0;
    char *p = out;
    while (r < o) {
        /* p[r] == '/' here */
        size_t s = r + 1;
        size_t e = s;
        while (e < o && p[e] != '/')
            e++;
        size_t sl = e - s;
        if (sl == 0 || (sl == 1 && p[s] == '.')) {
            /* skip; keep a trailing slash */
            if (e >= o) {
                p[wr++] = '/';
            }
        } else if (sl == 2 && p[s] == '.' && p[s + 1] == '.') {
            if (wr == 0)
                return 403; /* above the root */
            while (wr > 0 && p[wr - 1] != '/')
                wr--;
            if (wr > 0)
                wr--; /* drop the slash too */
            if (e >= o)
                p[wr++] = '/';
        } else {
            p[wr++] = '/';
            memmove(p + wr, p + s, sl);
            wr += sl;
        }
        r = e;
    }
    if (wr == 0)
        p[wr++] = '/';
    /* a directory path ends with '/': "/a/" stays, "/a/." became "/a/" */
    p[wr] = 0;
    *outlen = wr;
    return 0;
}

int http_strncaseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
    }
    return 1;
}

static const char http_wday[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char http_mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void http_fmt_date(time_t t, char out[30])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[96];
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", http_wday[tm.tm_wday % 7],
             tm.tm_mday, http_mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    memcpy(out, tmp, 29);
    out[29] = 0;
}

static int http_month(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, http_mon[i], 3) == 0)
            return i;
    return -1;
}

static int http_num(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

time_t http_parse_date(const char *s, size_t n)
{
    char buf[64];
    struct tm tm;
    int d, y, hh, mm, ss, mon;
    const char *p;
    if (n >= sizeof(buf) || n < 24)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    memset(&tm, 0, sizeof(tm));
    if (n == 29 && buf[3] == ',' && memcmp(buf + 25, " GMT", 4) == 0) {
        /* Sun, 06 Nov 1994 08:49:37 GMT */
        p = buf + 5;
        if (http_num(p, 2, &d) || p[2] != ' ' || (mon = http_month(p + 3)) < 0 || p[6] != ' ' ||
            http_num(p + 7, 4, &y) || p[11] != ' ')
            return -1;
        p += 12;
    } else if (n == 24 && buf[3] == ' ') {
        /* Sun Nov  6 08:49:37 1994 */
        if ((mon = http_month(buf + 4)) < 0 || buf[7] != ' ')
            return -1;
        if (buf[8] == ' ') {
            if (http_num(buf + 9, 1, &d))
                return -1;
        } else if (http_num(buf + 8, 2, &d)) {
            return -1;
        }
        if (buf[10] != ' ' || http_num(buf + 20, 4, &y))
            return -1;
        p = buf + 11;
    } else {
        /* Sunday, 06-Nov-94 08:49:37 GMT */
        const char *c = memchr(buf, ',', n);
        if (!c || (size_t)(c - buf) + 24 != n || c[1] != ' ')
            return -1;
        p = c + 2;
        if (http_num(p, 2, &d) || p[2] != '-' || (mon = http_month(p + 3)) < 0 || p[6] != '-' ||
            http_num(p + 7, 2, &y) || p[9] != ' ' || memcmp(p + 18, " GMT", 4) != 0)
            return -1;
        y += y < 70 ? 2000 : 1900;
        p += 10;
    }
    if (http_num(p, 2, &hh) || p[2] != ':' || http_num(p + 3, 2, &mm) || p[5] != ':' ||
        http_num(p + 6, 2, &ss))
        return -1;
    if (d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    return timegm(&tm);
}

static int http_parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int http_parse_range(const char *v, size_t n, uint64_t size, uint64_t *start, uint64_t *end)
{
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n < 7 || !http_strncaseeq(v, "bytes=", 6))
        return 0;
    v += 6;
    n -= 6;
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (memchr(v, ',', n))
        return 0; /* several ranges: served whole */
    const char *dash = memchr(v, '-', n);
    if (!dash)
        return 0;
    size_t a = (size_t)(dash - v), b = n - a - 1;
    uint64_t x, y;
    if (a == 0) {
        /* suffix: -N */
        if (http_parse_u64(dash + 1, b, &y))
            return 0;
        if (y == 0 || size == 0)
            return -1;
        if (y > size)
            y = size;
        *start = size - y;
        *end = size - 1;
        return 1;
    }
    if (http_parse_u64(v, a, &x))
        return 0;
    if (b == 0) {
        y = UINT64_MAX;
    } else {
        if (http_parse_u64(dash + 1, b, &y))
            return 0;
        if (y < x)
            return 0; /* invalid: ignored */
    }
    if (x >= size)
        return -1;
    if (y >= size)
        y = size - 1;
    *start = x;
    *end = y;
    return 1;
}

int http_etag_match(const char *list, size_t n, const char *etag, size_t elen)
{
    const char *e = etag;
    if (elen > 2 && e[0] == 'W' && e[1] == '/') {
        e += 2;
        elen -= 2;
    }
    size_t i = 0;
    while (i < n) {
        while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        if (i >= n)
            break;
        if (list[i] == '*')
            return 1;
        size_t s = i;
        if (n - i > 2 && list[i] == 'W' && list[i + 1] == '/')
            s = i += 2;
        if (i < n && list[i] == '"') {
            i++;
            while (i < n && list[i] != '"')
                i++;
            if (i < n)
                i++;
        } else {
            while (i < n && list[i] != ',')
                i++;
        }
        size_t tl = i - s;
        while (tl && (list[s + tl - 1] == ' ' || list[s + tl - 1] == '\t'))
            tl--;
        if (tl == elen && memcmp(list + s, e, elen) == 0)
            return 1;
    }
    return 0;
}

size_t http_fmt_etag(char *out, size_t cap, time_t mtime, uint64_t size)
{
    int r =
        snprintf(out, cap, "\"%llx-%llx\"", (unsigned long long)mtime, (unsigned long long)size);
    return r < 0 ? 0 : (size_t)r;
}

static const http_mime http_mime_builtin[] = {
    {"html", "text/html"},
    {"htm", "text/html"},
    {"shtml", "text/html"},
    {"css", "text/css"},
    {"xml", "text/xml"},
    {"txt", "text/plain"},
    {"csv", "text/csv"},
    {"md", "text/markdown"},
    {"js", "application/javascript"},
    {"mjs", "application/javascript"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"bin", "application/octet-stream"},
    {"gif", "image/gif"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"png", "image/png"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
};

const char *http_mime_lookup(const char *path, size_t len, const http_mime *extra, size_t nextra)
{
    size_t i = len;
    while (i > 0 && path[i - 1] != '.' && path[i - 1] != '/')
        i--;
    if (i == 0 || path[i - 1] != '.')
        return NULL;
    const char *ext = path + i;
    size_t el = len - i;
    if (el == 0)
        return NULL;
    for (size_t k = 0; k < nextra; k++)
        if (strlen(extra[k].ext) == el && http_strncaseeq(extra[k].ext, ext, el))
            return extra[k].type;
    for (size_t k = 0; k < sizeof(http_mime_builtin) / sizeof(http_mime_builtin[0]); k++)
        if (strlen(http_mime_builtin[k].ext) == el &&
            http_strncaseeq(http_mime_builtin[k].ext, ext, el))
            return http_mime_builtin[k].type;
    return NULL;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

int http_te_check(const char *v, size_t n, int *chunked)
{
    static const char *const known[] = {"gzip",     "x-gzip",     "deflate",
                                        "compress", "x-compress", "identity"};
    size_t i = 0;
    while (i < n) {
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        i++; /* past the comma */
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (s == e)
            continue; /* empty list element */
        size_t t = s;
        while (t < e && v[t] != ';' && v[t] != ' ' && v[t] != '\t')
            t++;
        int has_params = t < e;
        if (*chunked)
            return 400; /* chunked must be the final coding */
        if (t - s == 7 && http_strncaseeq(v + s, "chunked", 7)) {
            if (has_params)
                return 501;
            *chunked = 1;
            continue;
        }
        int ok = 0;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            if (strlen(known[k]) == t - s && http_strncaseeq(v + s, known[k], t - s))
                ok = 1;
        if (!ok)
            return 501;
    }
    return 0;
}

size_t http_url_encode(const char *s, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 <= cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
    return o;
}

/* The bytes of a Host (RFC 3986 3.2.2), one lookup each: a reg-name's
 * (unreserved, pct-encoded's '%', sub-delims) and an IP-literal's. */
#define HOST_REG 1
#define HOST_LIT 2
static const uint8_t http_host_bytes[256] = {
    ['0' ... '9'] = HOST_REG | HOST_LIT,
    ['a' ... 'z'] = HOST_REG | HOST_LIT,
    ['A' ... 'Z'] = HOST_REG | HOST_LIT,
    ['.'] = HOST_REG | HOST_LIT,
    ['-'] = HOST_REG | HOST_LIT,
    ['_'] = HOST_REG | HOST_LIT,
    ['~'] = HOST_REG | HOST_LIT,
    ['%'] = HOST_REG | HOST_LIT,
    [':'] = HOST_LIT,
    ['!'] = HOST_REG,
    ['$'] = HOST_REG,
    ['&'] = HOST_REG,
    ['\''] = HOST_REG,
    ['('] = HOST_REG,
    [')'] = HOST_REG,
    ['*'] = HOST_REG,
    ['+'] = HOST_REG,
    [','] = HOST_REG,
    [';'] = HOST_REG,
    ['='] = HOST_REG,
};

int http_host_valid(const char *v, size_t n)
{
    const unsigned char *u = (const unsigned char *)v;
    size_t i = 0;
    if (n && u[0] == '[') {
        /* IP-literal: hex digits, ':', '.', and a zone or IPvFuture tail */
        for (i = 1; i < n && (http_host_bytes[u[i]] & HOST_LIT); i++)
            ;
        if (i >= n || u[i] != ']')
            return 0;
        i++;
    } else {
        while (i < n && (http_host_bytes[u[i]] & HOST_REG))
            i++;
    }
    if (i == n)
        return 1;
    if (u[i] != ':')
        return 0; /* a byte neither part of the host nor the port's colon */
    for (i++; i < n && (unsigned)(u[i] - '0') < 10u; i++)
        ;
    return i == n;
}

/* An RFC 9110 qvalue above zero: 0.001..0.999 or 1 (invalid: no). */
static int http_qvalue_positive(const char *s, size_t n)
{
    if (n == 0 || (s[0] != '0' && s[0] != '1') || (n > 1 && (s[1] != '.' || n > 5)))
        return 0;
    int any = s[0] == '1';
    for (size_t i = 2; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || (s[0] == '1' && s[i] != '0'))
            return 0;
        any |= s[i] != '0';
    }
    return any;
}

int http_accepts_gzip(const char *v, size_t n)
{
    int gzip = -1, star = -1; /* -1: not named; else whether its q is above 0 */
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t t = i;
        while (i < n && v[i] != ',' && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
            i++;
        size_t tl = i - t;
        int q = 1;
        while (i < n && v[i] != ',') { /* parameters: only q matters */
            if (v[i++] != ';')
                continue;
            while (i < n && (v[i] == ' ' || v[i] == '\t'))
                i++;
            if (i + 1 < n && (v[i] == 'q' || v[i] == 'Q') && v[i + 1] == '=') {
                size_t qs = i + 2;
                i = qs;
                while (i < n && v[i] != ',' && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
                    i++;
                q = http_qvalue_positive(v + qs, i - qs);
            }
        }
        if (tl == 4 && http_strncaseeq(v + t, "gzip", 4))
            gzip = q;
        else if (tl == 1 && v[t] == '*')
            star = q;
    }
    return gzip >= 0 ? gzip : star > 0;
}

size_t http_addr_text(const struct sockaddr *sa, char *buf, size_t cap, int bracket_v6)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa && sa->sa_family == AF_INET &&
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
                  sizeof(ip)))
        return (size_t)snprintf(buf, cap, "%s", ip);
    if (sa && sa->sa_family == AF_INET6 &&
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip,
                  sizeof(ip)))
        return (size_t)snprintf(buf, cap, bracket_v6 ? "[%s]" : "%s", ip);
    if (sa && sa->sa_family == AF_UNIX) /* nginx's $remote_addr of a unix client */
        return (size_t)snprintf(buf, cap, "unix:");
    return 0;
}

int http_buf_append(char **buf, uint32_t *len, uint32_t *cap, const char *s, size_t n)
{
    if (n == 0)
        return 0; /* llhttp may report an empty span: *buf may still be NULL */
    size_t need = (size_t)*len + n;
    if (need > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < need)
            c *= 2;
        char *nb = realloc(*buf, c);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = (uint32_t)c;
    }
    memcpy(*buf + *len, s, n);
    *len += (uint32_t)n;
    return 0;
}

char *http_sb_room(http_sbuf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return NULL;
        }
        b->p = np;
        b->cap = cap;
    }
    return b->p + b->n;
}

void http_sb_put(http_sbuf *b, const void *s, size_t n)
{
    char *o = http_sb_room(b, n);
    if (o && n) {
        memcpy(o, s, n);
        b->n += n;
    }
}
