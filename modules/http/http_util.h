/* modules/http/http_util.h - pure helpers (http_util.c) that the unit tests
 * exercise without sockets: the head scanner, paths and targets, dates,
 * ranges, entity tags, MIME types, encodings and reason phrases. */
#ifndef ZERG_HTTP_UTIL_H
#define ZERG_HTTP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

/* Incremental validator of a request's head (request line + header fields),
 * run over the raw bytes before llhttp sees them: bare CR/LF, obs-fold, NUL
 * and control bytes, and the size limits. */
typedef struct http_scan {
    uint32_t line_len; /* bytes of the current line so far */
    uint32_t total;    /* bytes of the head so far */
    uint32_t nlines;   /* complete lines (request line included) */
    uint32_t line1;    /* length of the request line, once complete */
    uint8_t cr;        /* last byte was CR */
    uint8_t done;      /* the empty line ending the head was seen */
} http_scan;

typedef struct http_limits {
    size_t max_line;    /* request line: 414 above */
    size_t max_head;    /* whole head: 431 above */
    size_t max_headers; /* header lines: 431 above */
} http_limits;

/* Scans p[0..n): returns 0 (more to come, or s->done with *used bytes of
 * head in this chunk) or the HTTP status to refuse with (400/414/431). */
int http_scan_head(http_scan *s, const uint8_t *p, size_t n, size_t *used, const http_limits *l);

/* 1 for the bytes a token (a method, a field name) may hold: RFC 9110 5.6.2
 * tchar. */
extern const uint8_t http_tchar[256];
/* Whether s[0..n) holds only tchar (an empty span too). */
int http_all_tchar(const char *s, size_t n);

/* Percent-decodes and normalises an origin-form path (query removed) into
 * out (cap >= len + 2). Returns 0, or 400 (bad encoding, %00, not starting
 * with '/'), 404 (encoded '/'), 403 ('..' above the root). */
int http_path_normalize(const char *in, size_t len, char *out, size_t cap, size_t *outlen);

/* Where the path of a request target starts: 0 for origin-form, after the
 * authority for absolute-form (len when it has no path). */
size_t http_target_path_start(const char *url, size_t len);
/* The path part of a request target (absolute-form reduced to its path,
 * query and fragment cut). */
void http_target_path(const char *url, size_t len, const char **path, size_t *plen);

/* Case-insensitive ASCII compare of n bytes. */
int http_strncaseeq(const char *a, const char *b, size_t n);

/* "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes + NUL into out[30]). */
void http_fmt_date(time_t t, char out[30]);
/* IMF-fixdate, RFC 850 or asctime; -1 when invalid. */
time_t http_parse_date(const char *s, size_t n);

/* Single byte range against a representation of size bytes: 1 with
 * [*start, *end] (inclusive), 0 to ignore the header (invalid, several
 * ranges), -1 when unsatisfiable (416). */
int http_parse_range(const char *v, size_t n, uint64_t size, uint64_t *start, uint64_t *end);

/* If-None-Match list against an entity tag (weak comparison, "*" matches). */
int http_etag_match(const char *list, size_t n, const char *etag, size_t elen);
/* "\"<mtime hex>-<size hex>\"" like nginx; returns its length. */
size_t http_fmt_etag(char *out, size_t cap, time_t mtime, uint64_t size);

typedef struct http_mime {
    const char *ext;
    const char *type;
} http_mime;
/* The type for path's extension: the extra table first, then the built-in
 * one; NULL when none matches. */
const char *http_mime_lookup(const char *path, size_t len, const http_mime *extra, size_t nextra);

/* A Host field value: uri-host [ ":" port ] (RFC 9112 3.2), empty allowed. */
int http_host_valid(const char *v, size_t n);

/* Percent-encodes s[0..n) for a URL path (unreserved bytes and '/' kept)
 * into out (cap >= 3n + 1); returns the length. */
size_t http_url_encode(const char *s, size_t n, char *out, size_t cap);
/* An IPv4 or IPv6 socket address as text ("[...]" around IPv6 when
 * bracket_v6, as in a URL); 0 and nothing written when sa is neither. */
size_t http_addr_text(const struct sockaddr *sa, char *buf, size_t cap, int bracket_v6);
/* Whether an Accept-Encoding value lets gzip in (gzip or *, q not 0, and
 * no gzip;q=0). */
int http_accepts_gzip(const char *v, size_t n);

/* The reason phrase of a status code ("Unknown" when none). */
const char *http_reason(int status);
/* Whether an answer with status carries its location's add_header (nginx's
 * list: 200, 201, 204, 206, 301, 302, 303, 304, 307, 308). */
int http_adds_headers(int status);
/* A location's expires as "Expires: ...\r\nCache-Control: ...\r\n" for an
 * answer at unix time now; returns the length (0: off). out holds 96. */
size_t http_fmt_expires(int mode, uint64_t sec, int64_t now, char out[96]);

/* Checks one Transfer-Encoding field value (a list of codings), with
 * *chunked telling whether "chunked" came already (updated): 0 when fine,
 * 400 when a coding follows chunked, 501 for an unknown coding or chunked
 * with parameters. Known codings other than chunked are accepted: request
 * bodies are framed by chunked and never decoded by this module. */
int http_te_check(const char *v, size_t n, int *chunked);

/* A growing byte buffer; failed: memory ran out, and what comes after is
 * dropped. */
typedef struct http_sbuf {
    char *p;
    size_t n, cap;
    int failed;
} http_sbuf;
/* Room for n more bytes at the end (NULL once memory ran out). */
char *http_sb_room(http_sbuf *b, size_t n);
void http_sb_put(http_sbuf *b, const void *s, size_t n);
/* Appends n bytes to the growable buffer *buf (*len of *cap used): 0, or -1
 * when memory ran out (the buffer stays as it was). */
int http_buf_append(char **buf, uint32_t *len, uint32_t *cap, const char *s, size_t n);

#endif
