/* zg_notify.h - the service manager's readiness protocol (sd_notify(3)):
 * datagrams to $NOTIFY_SOCKET telling systemd when zerg is ready, reloading,
 * stopping, and which process is the master after a binary upgrade. */
#ifndef ZG_NOTIFY_H
#define ZG_NOTIFY_H

/* Send "KEY=value\n..." lines to $NOTIFY_SOCKET. A no-op without the
 * variable; a failure is logged once and otherwise ignored (serving matters
 * more than telling). Returns 0 when sent or not asked for, -1 on failure. */
int zg_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "RELOADING=1" must carry MONOTONIC_USEC (systemd's Type=notify-reload):
 * these send it, and READY=1 with STATUS and MAINPID. */
int zg_notify_ready(int nworkers);
int zg_notify_reloading(void);

#endif
