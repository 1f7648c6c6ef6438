/* zg_tls_ticket.c - the session ticket keys (see zg_tls_ticket.h): a ring
 * of keys in a memfd every process of the master's family maps, each key
 * current for one period (the session_timeout) and decrypting for one more,
 * made by whichever process needs it first; OpenSSL's ticket callback. */
#define _GNU_SOURCE
#include "zg_tls_ticket.h"
#include "zg_log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TICKET_MAGIC   0x7a67746bu /* "zgtk" */
#define TICKET_VERSION 1u
#define TICKET_KEYS    16 /* two per distinct session_timeout: current, previous */
#define SPINS          1000

typedef struct ticket_key {
    uint64_t period; /* seconds it is current; 0: the slot is free */
    uint64_t epoch;  /* it is current while time / period == epoch */
    uint8_t name[16], aes[32], hmac[32];
} ticket_key;

/* The shared page. Writers take lock (their pid) and make seq odd while
 * they write a key; readers copy the keys and retry when seq moved. */
typedef struct ticket_store {
    uint32_t magic, version;
    uint32_t seq;
    int32_t lock;
    ticket_key keys[TICKET_KEYS];
} ticket_store;

static ticket_store *S;
static int S_fd = -1;
static uint64_t (*clock_fn)(void);

void zg_tls_ticket_clock(uint64_t (*now_s)(void))
{
    clock_fn = now_s;
}

static uint64_t now_s(void)
{
    if (clock_fn)
        return clock_fn();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the same in every process, across upgrades */
    return (uint64_t)ts.tv_sec;
}

/* ---- the shared page ---- */

static ticket_store *map_fd(int fd)
{
    void *p = mmap(NULL, sizeof(ticket_store), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* The store the master of a binary upgrade handed over, if any. */
static int inherit(void)
{
    const char *env = getenv(ZG_TICKET_ENV);
    if (!env)
        return -1;
    char *end;
    long fd = strtol(env, &end, 10);
    struct stat st;
    unsetenv(ZG_TICKET_ENV);
    if (*end || fd < 0 || fd > INT32_MAX || fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (size_t)st.st_size < sizeof(ticket_store) || !(S = map_fd((int)fd))) {
        zg_log_warn("%s=%s: not the ticket keys of the master upgraded from: new keys made",
                    ZG_TICKET_ENV, env);
        return -1;
    }
    if (S->magic != TICKET_MAGIC || S->version != TICKET_VERSION) {
        zg_log_warn("%s: ticket keys of another zerg version: new keys made", ZG_TICKET_ENV);
        munmap(S, sizeof(ticket_store));
        S = NULL;
        return -1;
    }
    S_fd = (int)fd;
    if (fcntl(S_fd, F_SETFD, FD_CLOEXEC) < 0)
        zg_log_warn("ticket keys: fcntl: %s", strerror(errno));
    return 0;
}

/* Mapped once, in the master at its first TLS block: a memfd, so that a
 * binary upgrade can hand it on (an anonymous mapping where there is none). */
static ticket_store *store(void)
{
    if (S || inherit() == 0)
        return S;
    int fd = memfd_create("zerg-tls-tickets", MFD_CLOEXEC);
    if (fd >= 0 && ftruncate(fd, sizeof(ticket_store)) == 0 && (S = map_fd(fd))) {
        S_fd = fd;
    } else {
        if (fd >= 0)
            close(fd);
        void *p = mmap(NULL, sizeof(ticket_store), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        S = p;
    }
    S->magic = TICKET_MAGIC;
    S->version = TICKET_VERSION;
    return S;
}

/* The keys as they are now: a consistent copy, or -1 when a writer holds
 * seq odd for too long (it died: lock() repairs that). */
static int read_keys(ticket_key *out)
{
    for (int i = 0; i < SPINS * 10; i++) {
        uint32_t seq = __atomic_load_n(&S->seq, __ATOMIC_ACQUIRE);
        if (seq & 1) {
            sched_yield();
            continue;
        }
        memcpy(out, S->keys, sizeof(S->keys));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&S->seq, __ATOMIC_ACQUIRE) == seq)
            return 0;
    }
    return -1;
}

/* The writers' lock: held for a memcpy, so spinning is fine; taken over
 * from a holder that died in it. */
static void lock(void)
{
    int32_t self = (int32_t)getpid();
    for (int spins = 0;; spins++) {
        int32_t free_ = 0;
        if (__atomic_compare_exchange_n(&S->lock, &free_, self, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        if (spins % SPINS == SPINS - 1 && free_ > 0 && kill(free_, 0) < 0 && errno == ESRCH &&
            __atomic_compare_exchange_n(&S->lock, &free_, self, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            if (S->seq & 1) /* it died writing: that key is garbage, and unused */
                __atomic_store_n(&S->seq, S->seq + 1, __ATOMIC_RELEASE);
            return;
        }
        sched_yield();
    }
}

static void unlock(void)
{
    __atomic_store_n(&S->lock, 0, __ATOMIC_RELEASE);
}

static int find(const ticket_key *keys, uint64_t period, uint64_t epoch)
{
    for (int i = 0; i < TICKET_KEYS; i++)
        if (keys[i].period == period && keys[i].epoch == epoch)
            return i;
    return -1;
}

/* Where a new key goes: a free slot, else the key that stops decrypting
 * first (it is past its lifetime, or the oldest). */
static int victim(const ticket_key *keys)
{
    int best = 0;
    uint64_t best_end = UINT64_MAX;
    for (int i = 0; i < TICKET_KEYS; i++) {
        if (!keys[i].period)
            return i;
        uint64_t end = (keys[i].epoch + 2) * keys[i].period;
        if (end < best_end)
            best = i, best_end = end;
    }
    return best;
}

/* The key current now for period, made (and placed in the store) when
 * nobody made it yet. -1 when RAND_bytes failed. */
static int current_key(uint64_t period, ticket_key *out)
{
    ticket_key keys[TICKET_KEYS];
    uint64_t epoch = now_s() / period;
    int i = read_keys(keys) == 0 ? find(keys, period, epoch) : -1;
    if (i >= 0) {
        *out = keys[i];
        return 0;
    }
    ticket_key k = {.period = period, .epoch = epoch};
    if (RAND_bytes(k.name, sizeof(k.name)) != 1 || RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
        RAND_bytes(k.hmac, sizeof(k.hmac)) != 1)
        return -1;
    lock();
    memcpy(keys, S->keys, sizeof(keys)); /* the writers' lock is ours */
    if ((i = find(keys, period, epoch)) >= 0) {
        k = keys[i]; /* another process was first */
    } else {
        i = victim(keys);
        __atomic_store_n(&S->seq, S->seq + 1, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        S->keys[i] = k;
        __atomic_store_n(&S->seq, S->seq + 1, __ATOMIC_RELEASE);
    }
    unlock();
    *out = k;
    return 0;
}

/* The key named name that may still decrypt: current for its period, or
 * the one before. 1 current, 2 previous (the ticket is renewed), 0 none. */
static int key_named(const unsigned char *name, ticket_key *out)
{
    ticket_key keys[TICKET_KEYS];
    if (read_keys(keys) < 0)
        return 0;
    for (int i = 0; i < TICKET_KEYS; i++) {
        if (!keys[i].period || memcmp(keys[i].name, name, sizeof(keys[i].name)))
            continue;
        uint64_t epoch = now_s() / keys[i].period;
        if (keys[i].epoch + 1 < epoch || keys[i].epoch > epoch)
            return 0; /* past its lifetime (or from a clock gone backwards) */
        *out = keys[i];
        return keys[i].epoch == epoch ? 1 : 2;
    }
    return 0;
}

/* ---- OpenSSL's ticket callback ---- */

static int set_hmac(EVP_MAC_CTX *hctx, ticket_key *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* AES-256-CBC fetched once per process. EVP_aes_256_cbc() is a legacy
 * handle that EVP_CipherInit_ex resolves to the provider's implementation
 * by a fetch at every call (name lookups under locks): twice per resumed
 * handshake, once per ticket sealed. OpenSSL's own ticket code fetches
 * it per ticket too. */
static const EVP_CIPHER *ticket_cipher(void)
{
    static EVP_CIPHER *fetched;
    if (!fetched && !(fetched = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)))
        return EVP_aes_256_cbc(); /* and the fetch at each call */
    return fetched;
}

/* enc: seal a new ticket with the current key (1, or -1 on failure: no
 * ticket). Else open one: 1, 2 to renew it (an older key), 0 when no key
 * of ours opens it (a full handshake). */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    ticket_key k;
    const EVP_CIPHER *cipher = ticket_cipher();
    if (enc) {
        uint64_t period = (uint64_t)SSL_CTX_get_timeout(SSL_get_SSL_CTX(s));
        if (current_key(period ? period : 1, &k) < 0 ||
            RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1)
            return -1;
        memcpy(key_name, k.name, sizeof(k.name));
        if (EVP_EncryptInit_ex(cctx, cipher, NULL, k.aes, iv) != 1 || set_hmac(hctx, &k) < 0)
            return -1;
        return 1;
    }
    int r = key_named(key_name, &k);
    if (r == 0)
        return 0;
    if (set_hmac(hctx, &k) < 0 || EVP_DecryptInit_ex(cctx, cipher, NULL, k.aes, iv) != 1)
        return -1;
    /* 2 (renew) makes OpenSSL send new tickets on the resumed connection.
     * A TLS 1.3 client uses a ticket once (RFC 8446 C.4), so without new
     * ones every other connection would be a full handshake. */
    return SSL_version(s) >= TLS1_3_VERSION ? 2 : r;
}

int zg_tls_ticket_setup(SSL_CTX *ctx, int on, uint64_t period_ms)
{
    uint64_t period = (period_ms + 999) / 1000;
    if (SSL_CTX_set_timeout(ctx, (long)period) < 0)
        return -1;
    if (!on) { /* nothing to resume by: the session cache is off too */
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        return SSL_CTX_set_num_tickets(ctx, 0) == 1 ? 0 : -1;
    }
    /* a session id context, so a block that verifies client certificates
     * resumes too (OpenSSL refuses an empty one then); a server block's
     * context replaces it with its settings' digest (zg_tls_conf_finish) */
    static const unsigned char sid_ctx[] = "zerg";
    ticket_key k;
    if (!store() || current_key(period, &k) < 0 || /* the master makes the first */
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1)
        return -1;
    OPENSSL_cleanse(&k, sizeof(k));
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) == 1 ? 0 : -1;
}

/* ---- the binary upgrade ---- */

void zg_tls_ticket_export(void)
{
    char num[16];
    if (S_fd < 0)
        return;
    snprintf(num, sizeof(num), "%d", S_fd);
    if (fcntl(S_fd, F_SETFD, 0) < 0 || setenv(ZG_TICKET_ENV, num, 1) < 0)
        zg_log_warn("binary upgrade: cannot hand over the TLS ticket keys (%s): clients of the "
                    "new binary resume only with its own",
                    strerror(errno));
}

void zg_tls_ticket_export_done(void)
{
    if (S_fd < 0)
        return;
    unsetenv(ZG_TICKET_ENV);
    if (fcntl(S_fd, F_SETFD, FD_CLOEXEC) < 0)
        zg_log_warn("ticket keys: fcntl: %s", strerror(errno));
}
