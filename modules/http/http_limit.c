/* modules/http/http_limit.c - limit_req and limit_conn at run time: each
 * zone's table of keys in memory every worker shares (chained hash, least
 * recently used list, one spin lock held for a few dozen instructions),
 * nginx's leaky bucket, delayed requests parked on a timer, the answer
 * when refused, and the zones' counters. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "http_limit.h"
#include "http_proxy.h"

/* ---- the shared table ------------------------------------------------------ */

typedef struct http_limit_node {
    uint64_t hash;         /* of the key's value (seeded: no client can aim at another's) */
    int64_t excess;        /* limit_req: milli-requests above the rate */
    uint64_t last_ms;      /* when excess was last taken */
    uint32_t conns;        /* limit_conn: requests in progress */
    uint32_t chain;        /* next node of its bucket (index + 1; 0 ends) */
    uint32_t newer, older; /* least recently used list (index + 1; 0: none) */
} http_limit_node;

enum {
    HTTP_LC_REQ_PASSED = 0,
    HTTP_LC_REQ_DELAYED,
    HTTP_LC_REQ_REFUSED,
    HTTP_LC_REQ_DRY_RUN,
    HTTP_LC_CONN_PASSED,
    HTTP_LC_CONN_REFUSED,
    HTTP_LC_CONN_DRY_RUN,
    HTTP_LC_EVICTED,
    HTTP_LC_COUNT
};

#define HTTP_LIMIT_USERS 64 /* workers a zone tracks, to notice one that died */

struct http_limit_shm {
    uint32_t lock;           /* the pid holding it, 0 when free */
    uint32_t used;           /* nodes handed out (they are reused, never freed) */
    uint32_t newest, oldest; /* the list's ends (index + 1) */
    uint32_t nkeys, mask;    /* nodes; buckets - 1 */
    uint64_t seed;
    uint64_t count[HTTP_LC_COUNT];    /* every worker's, changed under the lock */
    uint32_t users[HTTP_LIMIT_USERS]; /* pids of the workers that joined */
    uint32_t bucket[];                /* then the nodes */
};

static uint32_t http_limit_buckets(int64_t nkeys)
{
    uint32_t n = 64;
    while (n < (uint64_t)nkeys && n < (1u << 24))
        n <<= 1;
    return n;
}

size_t http_limit_shm_size(int64_t nkeys)
{
    return sizeof(http_limit_shm) + http_limit_buckets(nkeys) * sizeof(uint32_t) +
           (size_t)nkeys * sizeof(http_limit_node);
}

static http_limit_node *http_limit_nodes(http_limit_shm *m)
{
    return (http_limit_node *)(void *)(m->bucket + m->mask + 1);
}

void http_limit_shm_init(http_limit_shm *m, int64_t nkeys)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* a seed no client can guess in advance */
    m->seed = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull) ^ (uint64_t)ts.tv_sec ^
              ((uint64_t)getpid() << 32);
    m->nkeys = (uint32_t)nkeys;
    m->mask = http_limit_buckets(nkeys) - 1;
}

/* The table as new (keys forgotten, counters kept): what a lock taken from
 * a worker that died holding it may have left half changed. */
static void http_limit_shm_reset(http_limit_shm *m)
{
    memset(m->bucket, 0, (m->mask + 1) * sizeof(uint32_t));
    memset(http_limit_nodes(m), 0, m->nkeys * sizeof(http_limit_node));
    m->used = m->newest = m->oldest = 0;
}

/* This worker's pid, read once (getpid is a system call). */
static uint32_t http_limit_pid;

static void http_limit_lock(http_limit_shm *m)
{
    uint32_t self = http_limit_pid ? http_limit_pid : (uint32_t)getpid();
    for (unsigned spins = 1;; spins++) {
        uint32_t holder = 0;
        if (__atomic_compare_exchange_n(&m->lock, &holder, self, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        if (spins % 1024 == 0) {
            /* a long wait: the holder was preempted, or died holding it */
            if (kill((pid_t)holder, 0) < 0 && errno == ESRCH &&
                __atomic_compare_exchange_n(&m->lock, &holder, self, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                http_limit_shm_reset(m);
                return;
            }
            sched_yield();
        }
    }
}

static void http_limit_unlock(http_limit_shm *m)
{
    __atomic_store_n(&m->lock, 0, __ATOMIC_RELEASE);
}

static uint64_t http_limit_hash(const http_limit_shm *m, const char *s, size_t n)
{
    uint64_t h = m->seed ^ 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    h ^= h >> 33; /* murmur's finish: the low bits pick the bucket */
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

/* Takes node i (index + 1) off the list. */
static void http_limit_unlist(http_limit_shm *m, http_limit_node *nodes, uint32_t i)
{
    http_limit_node *n = &nodes[i - 1];
    if (n->newer)
        nodes[n->newer - 1].older = n->older;
    else
        m->newest = n->older;
    if (n->older)
        nodes[n->older - 1].newer = n->newer;
    else
        m->oldest = n->newer;
    n->newer = n->older = 0;
}

static void http_limit_list_front(http_limit_shm *m, http_limit_node *nodes, uint32_t i)
{
    http_limit_node *n = &nodes[i - 1];
    n->older = m->newest;
    n->newer = 0;
    if (m->newest)
        nodes[m->newest - 1].newer = i;
    m->newest = i;
    if (!m->oldest)
        m->oldest = i;
}

static uint32_t http_limit_find(http_limit_shm *m, http_limit_node *nodes, uint64_t hash)
{
    uint32_t i = m->bucket[hash & m->mask];
    for (uint32_t hops = 0; i && i <= m->nkeys && hops < m->nkeys; hops++) {
        if (nodes[i - 1].hash == hash)
            return i;
        i = nodes[i - 1].chain;
    }
    return 0;
}

static void http_limit_unchain(http_limit_shm *m, http_limit_node *nodes, uint32_t i)
{
    uint32_t *link = &m->bucket[nodes[i - 1].hash & m->mask];
    for (uint32_t hops = 0; *link && hops < m->nkeys; hops++) {
        if (*link == i) {
            *link = nodes[i - 1].chain;
            return;
        }
        link = &nodes[*link - 1].chain;
    }
}

/* A node for a new key: a fresh one while any is left, else the least
 * recently used that holds no request in progress. 0: none (every node the
 * search looks at holds one). */
static uint32_t http_limit_take(http_limit_shm *m, http_limit_node *nodes)
{
    if (m->used < m->nkeys)
        return ++m->used;
    uint32_t i = m->oldest;
    for (int tries = 0; i && tries < 32; tries++, i = nodes[i - 1].newer) {
        if (nodes[i - 1].conns)
            continue;
        http_limit_unchain(m, nodes, i);
        http_limit_unlist(m, nodes, i);
        m->count[HTTP_LC_EVICTED]++;
        return i;
    }
    return 0;
}

/* The node of hash, made when new and moved to the front of the list; NULL
 * when the table has no room. Under the lock. */
static http_limit_node *http_limit_node_get(http_limit_shm *m, uint64_t hash, uint64_t now)
{
    http_limit_node *nodes = http_limit_nodes(m);
    uint32_t i = http_limit_find(m, nodes, hash);
    if (i) {
        http_limit_unlist(m, nodes, i);
    } else {
        i = http_limit_take(m, nodes);
        if (!i)
            return NULL;
        uint32_t *head = &m->bucket[hash & m->mask];
        nodes[i - 1] = (http_limit_node){.hash = hash, .excess = -1000, .last_ms = now};
        nodes[i - 1].chain = *head;
        *head = i;
    }
    http_limit_list_front(m, nodes, i);
    return &nodes[i - 1];
}

/* ---- a request's rules ----------------------------------------------------- */

/* What the head decided, kept until the request ends: only requests that
 * hold a limit_conn slot, wait, or were refused have one (from a per-worker
 * list: no allocation once the worker has seen its peak). */
typedef struct http_limit_hold {
    zerg_timer timer;
    http_conn *hc;
    struct http_limit_hold *next_free;
    int status;           /* refused with this (0: not refused) */
    uint32_t retry_after; /* seconds (limit_req) */
    uint8_t waiting;
    uint8_t nconn;
    struct {
        http_limit_shm *shm;
        uint64_t hash;
    } conn[HTTP_LIMIT_RULES];
} http_limit_hold;

static http_limit_hold *http_limit_free;

static http_limit_hold *http_limit_hold_of(http_conn *hc)
{
    http_limit_hold *h = hc->limit;
    if (h)
        return h;
    h = http_limit_free;
    if (h)
        http_limit_free = h->next_free;
    else if (!(h = malloc(sizeof(*h))))
        return NULL;
    memset(h, 0, sizeof(*h));
    h->hc = hc;
    hc->limit = h;
    return h;
}

/* Up to cap - 1 bytes of s for a log line: quotes, backslashes and bytes
 * outside printable ASCII (a client's) become '?'. */
static const char *http_limit_printable(char *o, size_t cap, const char *s, size_t n)
{
    n = n < cap ? n : cap - 1;
    for (size_t i = 0; i < n; i++)
        o[i] = s[i] == '"' || s[i] == '\\' || s[i] < 0x20 || s[i] >= 0x7f ? '?' : s[i];
    o[n] = 0;
    return o;
}

/* Refusals are logged once a second per zone and worker, with a count of
 * the quiet ones. */
static void http_limit_log(http_conn *hc, http_limit_zone *z, const char *what, int dry_run)
{
    int64_t now = http_api->unix_time(http_W.w);
    if (now == z->log_sec) {
        z->log_quiet++;
        return;
    }
    char key[HTTP_LIMIT_KEY_MAX], k[129], u[257];
    size_t klen = http_limit_key(hc, z, key, 1); /* as text, for people */
    http_api->log(ZERG_LOG_WARN,
                  "http: limiting %s%s by zone \"%s\", key \"%s\", request \"%s\" "
                  "(%llu more since the last line)",
                  what, dry_run ? ", dry run," : "", z->name,
                  http_limit_printable(k, sizeof(k), key, klen),
                  http_limit_printable(u, sizeof(u), http_hbuf(hc, hc->req.url), hc->req.url.len),
                  (unsigned long long)z->log_quiet);
    z->log_sec = now;
    z->log_quiet = 0;
}

/* The rule's key for the request (into key) and its node, with the zone
 * locked; NULL with the zone locked when the table has no room, NULL with
 * *klen 0 (nothing locked) when the key is empty. */
static http_limit_node *http_limit_enter(http_conn *hc, const http_limit_rule *r, uint64_t now,
                                         char *key, size_t *klen, uint64_t *hash)
{
    http_limit_shm *m = r->zone->shm;
    *klen = http_limit_key(hc, r->zone, key, 0);
    if (!*klen)
        return NULL; /* an empty key is not limited (nginx's) */
    *hash = http_limit_hash(m, key, *klen);
    http_limit_lock(m);
    return http_limit_node_get(m, *hash, now);
}

/* nginx's leaky bucket for one rule: -1 refused (*retry: seconds), else the
 * milliseconds to wait (0: now). Excess is in milli-requests. */
static int64_t http_limit_req_rule(http_conn *hc, const http_limit_rule *r, uint64_t now,
                                   uint32_t *retry)
{
    http_limit_zone *z = r->zone;
    http_limit_shm *m = z->shm;
    char key[HTTP_LIMIT_KEY_MAX];
    size_t klen;
    uint64_t hash;
    http_limit_node *n = http_limit_enter(hc, r, now, key, &klen, &hash);
    if (!klen)
        return 0;
    int64_t wait = 0, burst = r->burst * 1000, excess = burst + 1;
    if (n) {
        uint64_t ms = now > n->last_ms ? now - n->last_ms : 0;
        /* what drained since; a key idle for months must not overflow */
        uint64_t drained = ms < UINT64_MAX / z->rate ? z->rate * ms / 1000 : UINT64_MAX;
        int64_t full = n->excess + 1000; /* 0 .. burst + 1000 */
        excess = drained >= (uint64_t)full ? 0 : full - (int64_t)drained;
    }
    if (excess > burst) {
        m->count[r->dry_run ? HTTP_LC_REQ_DRY_RUN : HTTP_LC_REQ_REFUSED]++;
        http_limit_unlock(m);
        uint64_t ms = (uint64_t)(excess - burst) * 1000 / z->rate;
        *retry = (uint32_t)((ms + 999) / 1000);
        http_limit_log(hc, z, "requests", r->dry_run);
        return r->dry_run ? 0 : -1;
    }
    n->excess = excess;
    n->last_ms = now;
    int64_t free_excess = r->nodelay ? burst : r->delay > 0 ? r->delay * 1000 : 0;
    if (excess > free_excess)
        wait = (excess - free_excess) * 1000 / (int64_t)z->rate;
    m->count[wait ? HTTP_LC_REQ_DELAYED : HTTP_LC_REQ_PASSED]++;
    http_limit_unlock(m);
    return wait;
}

/* limit_conn for one rule: 1 a slot taken (its hash in *hash), 0 passed
 * without one, -1 refused. */
static int http_limit_conn_rule(http_conn *hc, const http_limit_rule *r, uint64_t now,
                                uint64_t *hash)
{
    http_limit_zone *z = r->zone;
    http_limit_shm *m = z->shm;
    char key[HTTP_LIMIT_KEY_MAX];
    size_t klen;
    http_limit_node *n = http_limit_enter(hc, r, now, key, &klen, hash);
    if (!klen)
        return 0;
    if (!n || n->conns >= (uint64_t)r->max) {
        m->count[r->dry_run ? HTTP_LC_CONN_DRY_RUN : HTTP_LC_CONN_REFUSED]++;
        http_limit_unlock(m);
        http_limit_log(hc, z, "connections", r->dry_run);
        return r->dry_run ? 0 : -1;
    }
    n->conns++;
    m->count[HTTP_LC_CONN_PASSED]++;
    http_limit_unlock(m);
    return 1;
}

static void http_limit_conn_release(http_limit_hold *h)
{
    for (uint8_t i = 0; i < h->nconn; i++) {
        http_limit_shm *m = h->conn[i].shm;
        http_limit_lock(m);
        http_limit_node *nodes = http_limit_nodes(m);
        uint32_t k = http_limit_find(m, nodes, h->conn[i].hash);
        if (k && nodes[k - 1].conns)
            nodes[k - 1].conns--;
        http_limit_unlock(m);
    }
    h->nconn = 0;
}

static int http_limit_refuse(http_conn *hc, int status, uint32_t retry)
{
    http_limit_hold *h = http_limit_hold_of(hc);
    if (h) {
        h->status = status;
        h->retry_after = retry;
    }
    return h ? HTTP_LIMIT_REFUSE : HTTP_LIMIT_PASS;
}

static void http_limit_wake(zerg_timer *t);

/* The request waits: the parser stays paused after the head (the body and
 * what follows wait in the core) until the timer wakes it. */
static int http_limit_park(http_conn *hc, uint64_t ms)
{
    http_limit_hold *h = http_limit_hold_of(hc);
    if (!h)
        return HTTP_LIMIT_PASS;
    h->waiting = 1;
    h->timer.fn = http_limit_wake;
    h->timer.data = h;
    hc->phase = HTTP_PH_BUSY;
    if (!hc->h2) /* an HTTP/2 stream's connection keeps its own timer */
        http_api->conn_timeout(hc->c, 0);
    http_api->timer_set(http_W.w, &h->timer, ms);
    return HTTP_LIMIT_WAIT;
}

int http_limit_head(http_conn *hc)
{
    const char *path;
    size_t plen;
    int st;
    const http_location *l = http_route(hc, &path, &plen, &st);
    if (!l || !l->limit)
        return HTTP_LIMIT_PASS;
    const http_limit_loc *ll = l->limit;
    uint64_t now = http_api->now_ms(http_W.w);
    int64_t wait = 0;
    for (size_t i = 0; i < ll->nreq; i++) {
        uint32_t retry = 1;
        int64_t w = http_limit_req_rule(hc, &ll->req[i], now, &retry);
        if (w < 0)
            return http_limit_refuse(hc, (int)ll->req[i].status, retry);
        wait = w > wait ? w : wait;
    }
    for (size_t i = 0; i < ll->nconn; i++) {
        uint64_t hash = 0;
        int got = http_limit_conn_rule(hc, &ll->conn[i], now, &hash);
        http_limit_hold *h = got > 0 ? http_limit_hold_of(hc) : hc->limit;
        if (got > 0 && h) {
            h->conn[h->nconn].shm = ll->conn[i].zone->shm;
            h->conn[h->nconn++].hash = hash;
        } else if (got > 0) { /* no memory for the hold: the slot goes back */
            http_limit_hold tmp = {.nconn = 1, .conn = {{ll->conn[i].zone->shm, hash}}};
            http_limit_conn_release(&tmp);
        }
        if (got < 0) {
            if (h)
                http_limit_conn_release(h);
            return http_limit_refuse(hc, (int)ll->conn[i].status, 0);
        }
    }
    return wait > 0 ? http_limit_park(hc, (uint64_t)wait) : HTTP_LIMIT_PASS;
}

int http_limit_dispatch(http_conn *hc)
{
    http_limit_hold *h = hc->limit;
    if (!h)
        return 0;
    if (h->waiting)
        return 1; /* the timer dispatches it */
    if (!h->status)
        return 0;
    http_send_error(hc, h->status, 0);
    return 1;
}

/* The wait is over: the request goes on where the head left it. */
static void http_limit_wake(zerg_timer *t)
{
    http_limit_hold *h = t->data;
    http_conn *hc = h->hc;
    h->waiting = 0;
    if (hc->h2) { /* an HTTP/2 stream's request is whole already */
        http_dispatch(hc);
        return;
    }
    hc->phase = HTTP_PH_BODY;
    if (hc->srv->has_proxy)
        http_proxy_begin(hc);
    static const char none[1];
    llhttp_errno_t e = llhttp_execute(&hc->rq->parser, none, 0);
    if (e == HPE_PAUSED) { /* complete: no body */
        llhttp_resume(&hc->rq->parser);
        hc->phase = HTTP_PH_BUSY; /* so that its end resumes reading */
        http_dispatch(hc);
        return;
    }
    if (e != HPE_OK) {
        http_send_error(hc, 400, 1);
        return;
    }
    http_api->conn_timeout(hc->c, hc->srv->client_body_timeout);
    if (hc->paused) { /* the body waits in the core */
        hc->paused = 0;
        http_api->resume_read(hc->c);
    }
}

void http_limit_done(http_conn *hc)
{
    http_limit_hold *h = hc->limit;
    if (!h)
        return;
    if (h->waiting)
        http_api->timer_cancel(http_W.w, &h->timer);
    http_limit_conn_release(h);
    hc->limit = NULL;
    h->next_free = http_limit_free;
    http_limit_free = h;
}

size_t http_limit_retry_after(const http_conn *hc, int status, char *buf, size_t cap)
{
    const http_limit_hold *h = hc->limit;
    if (!h || h->status != status || !h->retry_after)
        return 0;
    int n = snprintf(buf, cap, "Retry-After: %u\r\n", h->retry_after);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ---- the zones in this worker ---------------------------------------------- */

static http_limit_zone **http_limit_zones; /* declared by the blocks, in server_init order */
static size_t http_limit_nzones;

/* A worker joins a zone. One of the zone's workers gone means it died (a
 * zone lives as long as its configuration's workers): the limit_conn slots
 * it held can never go back, so every key's count starts again at 0. Those
 * the live workers hold then go back to 0 and stay there: for as long as
 * they are in progress, a key may have more than max. */
static void http_limit_join(http_limit_zone *z)
{
    http_limit_shm *m = z->shm;
    int dead = 0;
    uint32_t *mine = NULL;
    http_limit_lock(m);
    for (int i = 0; i < HTTP_LIMIT_USERS; i++) {
        uint32_t pid = m->users[i];
        if (pid && pid != http_limit_pid && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            dead = 1;
            m->users[i] = pid = 0;
        }
        if (!pid && !mine)
            mine = &m->users[i];
    }
    if (mine) /* beyond HTTP_LIMIT_USERS workers, the later ones go untracked */
        *mine = http_limit_pid;
    http_limit_node *nodes = http_limit_nodes(m);
    for (uint32_t i = 0; dead && i < m->used; i++)
        nodes[i].conns = 0;
    http_limit_unlock(m);
    if (dead)
        http_api->log(ZERG_LOG_WARN,
                      "http: limit zone \"%s\": a worker died; limit_conn counts start again",
                      z->name);
}

int http_limit_server_init(http_srv *s)
{
    http_limit_pid = (uint32_t)getpid();
    if (!s->limit || !s->limit->nzones)
        return 0;
    for (size_t i = 0; i < s->limit->nzones; i++)
        http_limit_join(&s->limit->zones[i]);
    http_limit_zone **more = realloc(http_limit_zones, (http_limit_nzones + s->limit->nzones) *
                                                           sizeof(*http_limit_zones));
    if (!more)
        return -1;
    http_limit_zones = more;
    for (size_t i = 0; i < s->limit->nzones; i++)
        http_limit_zones[http_limit_nzones++] = &s->limit->zones[i];
    return 0;
}

void http_limit_worker_exit(void)
{
    while (http_limit_free) {
        http_limit_hold *h = http_limit_free;
        http_limit_free = h->next_free;
        free(h);
    }
    free(http_limit_zones);
    http_limit_zones = NULL;
    http_limit_nzones = 0;
}

void http_limit_metrics(zerg_text *out)
{
    static const struct {
        const char *limit, *result;
    } rows[HTTP_LC_EVICTED] = {
        {"req", "passed"},           {"req", "delayed"}, {"req", "refused"},
        {"req", "dry_run_refused"},  {"conn", "passed"}, {"conn", "refused"},
        {"conn", "dry_run_refused"},
    };
    if (!http_limit_nzones)
        return;
    const zerg_api *a = http_api;
    a->text_printf(out, "# HELP zerg_http_limit_requests_total Requests limit_req and limit_conn "
                        "looked at, by zone and result (all workers).\n"
                        "# TYPE zerg_http_limit_requests_total counter\n");
    for (size_t z = 0; z < http_limit_nzones; z++)
        for (int k = 0; k < HTTP_LC_EVICTED; k++)
            a->text_printf(out,
                           "zerg_http_limit_requests_total{zone=\"%s\",limit=\"%s\",result=\"%s\"} "
                           "%llu\n",
                           http_limit_zones[z]->name, rows[k].limit, rows[k].result,
                           (unsigned long long)__atomic_load_n(&http_limit_zones[z]->shm->count[k],
                                                               __ATOMIC_RELAXED));
    a->text_printf(out, "# HELP zerg_http_limit_evictions_total Keys a limit zone forgot to make "
                        "room for a new one (all workers).\n"
                        "# TYPE zerg_http_limit_evictions_total counter\n");
    for (size_t z = 0; z < http_limit_nzones; z++)
        a->text_printf(out, "zerg_http_limit_evictions_total{zone=\"%s\"} %llu\n",
                       http_limit_zones[z]->name,
                       (unsigned long long)__atomic_load_n(
                           &http_limit_zones[z]->shm->count[HTTP_LC_EVICTED], __ATOMIC_RELAXED));
}
