/* zg_verdict.h - the outcome of the latest reload and binary upgrade, one
 * small file each beside the pid file, written by the master and waited on
 * by `zerg -s reload|upgrade`. */
#ifndef ZG_VERDICT_H
#define ZG_VERDICT_H

#include <stddef.h>

typedef enum { ZG_VERDICT_RELOAD, ZG_VERDICT_UPGRADE } zg_verdict_kind;

/* The old master tells the new binary of an upgrade which verdict is its to
 * give: "SEQ PATH". */
#define ZG_VERDICT_ENV "ZERG_UPGRADE_VERDICT"

/* One file's line: "PID SEQ STATE TEXT". SEQ counts the requests the master
 * took; STATE is busy while it works on one, then ok or failed. */
typedef struct zg_verdict {
    long pid;
    unsigned long long seq;
    char state[8];
    char text[2048];
} zg_verdict;

/* ---- the master ---- */

/* Where the files go (NULL: nowhere) and the sequence numbers to continue.
 * A new binary of an upgrade also takes ZG_VERDICT_ENV from its environment. */
void zg_verdict_init(const char *pid_path);
/* The master took a request of this kind: its sequence number, state busy. */
void zg_verdict_begin(zg_verdict_kind kind);
/* The request ended: ok, or failed with the error line as text. */
void zg_verdict_end(zg_verdict_kind kind, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The master is serving (ok) or could not start: a new binary of an upgrade
 * gives its verdict; any master says it is there. */
void zg_verdict_started(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Before starting a new binary: export its verdict's sequence number and file. */
int zg_verdict_export_upgrade(void);
/* The new binary exited: if it never gave its verdict, fail the upgrade. */
void zg_verdict_upgrade_exited(const char *how);
/* The master exits: remove the files that name it. */
void zg_verdict_remove(void);
/* A new binary whose configuration does not load: fail the upgrade it was
 * started for, if any (its master never runs). */
void zg_verdict_upgrade_failed_early(const char *err);

/* ---- `zerg -s` ---- */

/* The file of kind beside pid_path into buf; -1 if it does not fit. */
int zg_verdict_path(const char *pid_path, zg_verdict_kind kind, char *buf, size_t len);
/* Read one file: 0, or -1 when it is missing or garbled. */
int zg_verdict_read(const char *path, zg_verdict *out);

#endif
