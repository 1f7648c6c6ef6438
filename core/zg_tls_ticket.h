/* zg_tls_ticket.h - the session ticket keys every worker shares: a page of
 * shared memory (a memfd) the master maps before it forks, kept across
 * reloads and handed to the new master of a binary upgrade, so a client
 * resumes on any worker, after a reload and after an upgrade. */
#ifndef ZG_TLS_TICKET_H
#define ZG_TLS_TICKET_H

#include <stdint.h>

struct ssl_ctx_st;

/* The environment variable that hands the key store's descriptor to the
 * new binary of an upgrade. */
#define ZG_TICKET_ENV "ZERG_TLS_TICKET_FD"

/* Master, for a server block's context at every load: tickets on (keys
 * for period_ms, the session_timeout, made now when there are none yet;
 * a new encryption key every period, the previous one still decrypts for
 * one more) or off (no tickets: no resumption). 0, or -1 when the store
 * cannot be mapped or OpenSSL refused. */
int zg_tls_ticket_setup(struct ssl_ctx_st *ctx, int on, uint64_t period_ms);

/* Master, around the fork and execve of a binary upgrade: the store's
 * descriptor survives execve and its number is in the environment
 * (export), then neither again (done). */
void zg_tls_ticket_export(void);
void zg_tls_ticket_export_done(void);

/* For tests: the clock the keys rotate by (ms since the epoch), 0 for the
 * real one. */
void zg_tls_ticket_clock(uint64_t (*now_ms)(void));

#endif
