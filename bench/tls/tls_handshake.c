/* tls_handshake.c - bench/tls's handshake load: PROCS processes each open
 * TLS 1.3 connections one after another for SECONDS, one HTTP/1.1 request
 * with "Connection: close" on each, either a full handshake every time or
 * resuming the session of the previous connection (its TLS 1.3 ticket,
 * saved after the answer was read, since the ticket comes after the
 * handshake). h2load and wrk never resume, hence this client.
 *
 *   tls_handshake HOST PORT SECONDS PROCS full|resume [PATH] [CIPHERSUITE] [SIGALGS]
 *
 * SIGALGS (OpenSSL's list, e.g. ECDSA+SHA256 or rsa_pss_rsae_sha256) picks
 * the server's certificate where it has several.
 * Prints one line: handshakes=N reused=R errors=E secs=S
 * (reused counts the connections where SSL_session_reused said so). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct counts {
    long handshakes, reused, errors;
} counts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int tcp_connect(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads the answer to its end (the server closes); 0 when it began with a
 * 200 status line. */
static int read_answer(SSL *ssl)
{
    char buf[16384];
    size_t got = 0, n;
    int ok = 0;
    while (SSL_read_ex(ssl, buf, sizeof(buf), &n)) {
        if (!got)
            ok = n >= 12 && !memcmp(buf, "HTTP/1.1 200", 12);
        got += n;
    }
    int e = SSL_get_error(ssl, 0);
    return ok && (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) ? 0 : -1;
}

/* One connection, one request; with sess, *sess is offered for resumption
 * and replaced by the connection's session. 0 or -1. */
static int one_connection(SSL_CTX *ctx, const struct sockaddr_in *sa, const char *req,
                          SSL_SESSION **sess, counts *n)
{
    int fd = tcp_connect(sa);
    if (fd < 0)
        return -1;
    SSL *ssl = SSL_new(ctx);
    int rc = -1;
    if (!ssl || !SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, "localhost"))
        goto out;
    if (sess && *sess && !SSL_set_session(ssl, *sess))
        goto out;
    if (SSL_connect(ssl) != 1)
        goto out;
    size_t w;
    if (!SSL_write_ex(ssl, req, strlen(req), &w) || read_answer(ssl) < 0)
        goto out;
    n->handshakes++;
    n->reused += SSL_session_reused(ssl) == 1;
    if (sess) {
        SSL_SESSION *s = SSL_get1_session(ssl);
        if (s && SSL_SESSION_is_resumable(s)) {
            SSL_SESSION_free(*sess);
            *sess = s;
        } else {
            SSL_SESSION_free(s);
        }
    }
    SSL_shutdown(ssl);
    rc = 0;
out:
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return rc;
}

static SSL_CTX *client_ctx(const char *suite, const char *sigalgs)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(ctx, suite) ||
        (sigalgs && !SSL_CTX_set1_sigalgs_list(ctx, sigalgs)))
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the server's CPU is measured */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    return ctx;
}

static void child(const struct sockaddr_in *sa, double until, int resume, const char *req,
                  const char *const tls[2], int out)
{
    SSL_CTX *ctx = client_ctx(tls[0], tls[1]);
    counts n = {0, 0, 0};
    SSL_SESSION *sess = NULL;
    while (ctx && now_s() < until) {
        if (one_connection(ctx, sa, req, resume ? &sess : NULL, &n) < 0) {
            n.errors++;
            SSL_SESSION_free(sess); /* start over with a full handshake */
            sess = NULL;
        }
    }
    if (!ctx)
        n.errors = -1;
    if (write(out, &n, sizeof(n)) != sizeof(n))
        _exit(1);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr,
                "usage: %s HOST PORT SECONDS PROCS full|resume [PATH] [CIPHERSUITE] "
                "[SIGALGS]\n",
                argv[0]);
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", argv[1]);
        return 2;
    }
    double secs = atof(argv[3]);
    int procs = atoi(argv[4]), resume = !strcmp(argv[5], "resume");
    const char *path = argc > 6 ? argv[6] : "/";
    const char *tls[2] = {argc > 7 ? argv[7] : "TLS_AES_128_GCM_SHA256", argc > 8 ? argv[8] : NULL};
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
             path);
    signal(SIGPIPE, SIG_IGN);
    int fds[2];
    if (procs < 1 || pipe(fds) < 0)
        return 2;
    double t0 = now_s();
    for (int i = 0; i < procs; i++) {
        pid_t p = fork();
        if (p < 0)
            return 1;
        if (p == 0)
            child(&sa, t0 + secs, resume, req, tls, fds[1]);
    }
    close(fds[1]);
    counts sum = {0, 0, 0}, n;
    while (read(fds[0], &n, sizeof(n)) == sizeof(n)) {
        sum.handshakes += n.handshakes;
        sum.reused += n.reused;
        sum.errors += n.errors;
    }
    while (wait(NULL) > 0)
        ;
    printf("handshakes=%ld reused=%ld errors=%ld secs=%.3f\n", sum.handshakes, sum.reused,
           sum.errors, now_s() - t0);
    return sum.handshakes ? 0 : 1;
}
