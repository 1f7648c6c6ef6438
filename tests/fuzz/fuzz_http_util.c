/* tests/fuzz/fuzz_http_util.c - fuzz target for the http module's parsers of
 * request fields: path normalisation (what keeps requests inside root), byte
 * ranges, dates, entity tags, transfer codings, Host, Accept-Encoding and the
 * head scanner. The first input byte picks the parser; each checks its
 * contract (results in bounds, round trips) besides memory safety. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

#define CHECK(cond) TEST_CHECK(cond, "%s", #cond)

/* A normalised path: starts with '/', and has no empty, "." or ".." segment
 * (a trailing '/' aside). */
static void check_normal(const char *p, size_t n)
{
    CHECK(n >= 1 && p[0] == '/' && p[n] == 0);
    for (size_t s = 1; s <= n; s++) {
        size_t e = s;
        while (e < n && p[e] != '/')
            e++;
        size_t len = e - s;
        CHECK(len > 0 || e == n);
        CHECK(!(len == 1 && p[s] == '.'));
        CHECK(!(len == 2 && p[s] == '.' && p[s + 1] == '.'));
        s = e;
    }
}

static void fuzz_path(const char *in, size_t n)
{
    size_t cap = n + 2, olen = 0, olen2 = 0;
    char *out = malloc(cap), *again = malloc(cap), *enc = malloc(3 * n + 1);
    CHECK(out && again && enc);
    int r = http_path_normalize(in, n, out, cap, &olen);
    CHECK(r == 0 || r == 400 || r == 403 || r == 404);
    if (r == 0) {
        CHECK(olen < cap);
        if (!memchr(in, 0, n))
            check_normal(out, olen);
        /* normalising is idempotent where no '%' is left to decode */
        if (!memchr(out, '%', olen)) {
            CHECK(http_path_normalize(out, olen, again, cap, &olen2) == 0);
            CHECK(olen2 == olen && memcmp(out, again, olen) == 0);
        }
    }
    /* an encoded path decodes back to the same normal form */
    if (n && in[0] == '/' && !memchr(in, '%', n) && !memchr(in, 0, n) && !memchr(in, '\\', n)) {
        size_t elen = http_url_encode(in, n, enc, 3 * n + 1);
        CHECK(elen <= 3 * n);
        char *out2 = malloc(elen + 2);
        CHECK(out2);
        int r2 = http_path_normalize(enc, elen, out2, elen + 2, &olen2);
        CHECK(r2 == r);
        if (r == 0)
            CHECK(olen2 == olen && memcmp(out, out2, olen) == 0);
        free(out2);
    }
    free(out);
    free(again);
    free(enc);
}

static void fuzz_range(const char *in, size_t n)
{
    uint64_t size = 0, start = 0, end = 0;
    if (n < 8)
        return;
    memcpy(&size, in, 8);
    size &= 0xffffffffffULL; /* files up to a terabyte */
    int r = http_parse_range(in + 8, n - 8, size, &start, &end);
    CHECK(r >= -1 && r <= 1);
    if (r == 1)
        CHECK(start <= end && end < size);
}

static void fuzz_date(const char *in, size_t n)
{
    time_t t = http_parse_date(in, n);
    if (t == -1)
        return;
    char s[30], again[30];
    http_fmt_date(t, s);
    if (t >= 0 && t < 253402300800) { /* years 1970..9999 print in 29 bytes */
        CHECK(http_parse_date(s, 29) == t);
        http_fmt_date(http_parse_date(s, 29), again);
        CHECK(memcmp(s, again, 29) == 0);
    }
}

static void fuzz_fields(const char *in, size_t n)
{
    /* the etag is the input up to the first NUL, the list the rest */
    const char *nul = memchr(in, 0, n);
    size_t elen = nul ? (size_t)(nul - in) : n;
    const char *list = nul ? nul + 1 : in;
    size_t llen = nul ? n - elen - 1 : n;
    int m = http_etag_match(list, llen, in, elen);
    CHECK(m == 0 || m == 1);
    int chunked = 0;
    int te = http_te_check(in, n, &chunked);
    CHECK(te == 0 || te == 400 || te == 501);
    CHECK(chunked == 0 || chunked == 1);
    int h = http_host_valid(in, n);
    CHECK(h == 0 || h == 1);
    int g = http_accepts_gzip(in, n);
    CHECK(g == 0 || g == 1);
}

static void fuzz_scan(const uint8_t *in, size_t n)
{
    if (n < 3)
        return;
    http_limits lim = {
        .max_line = 1 + in[0] * 4u, .max_head = 1 + in[1] * 16u, .max_headers = 1 + in[2] % 64u};
    in += 3;
    n -= 3;
    http_scan s = {0};
    size_t off = 0;
    /* in pieces of 1..16 bytes, as reads deliver them */
    while (off < n && !s.done) {
        size_t piece = 1 + (in[off] & 15);
        if (piece > n - off)
            piece = n - off;
        size_t used = 0;
        int r = http_scan_head(&s, in + off, piece, &used, &lim);
        CHECK(r == 0 || r == 400 || r == 414 || r == 431);
        if (r)
            return;
        if (s.done) {
            CHECK(used >= 1 && used <= piece);
            CHECK(s.total <= lim.max_head);
        } else {
            off += piece;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0:
        fuzz_path(in, n);
        break;
    case 1:
        fuzz_range(in, n);
        break;
    case 2:
        fuzz_date(in, n);
        break;
    case 3:
        fuzz_fields(in, n);
        break;
    default:
        fuzz_scan(data + 1, n);
        break;
    }
    return 0;
}
