/* zg_verdict.c - the verdict files: the master writes each one whole (a
 * temporary file renamed over it), so a reader sees the line before or the
 * line after, never half of one. A sequence number per kind lets `zerg -s`
 * tell the verdict on its own request from an older one. */
#define _GNU_SOURCE
#include "zg_verdict.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const suffix[] = {
    [ZG_VERDICT_RELOAD] = ".reload", [ZG_VERDICT_UPGRADE] = ".upgrade"};

static struct {
    char path[2][4200];
    unsigned long long seq[2];
    int upgrade_pending; /* a new binary that owes its verdict */
} V;

int zg_verdict_path(const char *pid_path, zg_verdict_kind kind, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s%s", pid_path, suffix[kind]);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int zg_verdict_read(const char *path, zg_verdict *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[sizeof(out->text) + 64];
    int n = 0, ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    memset(out, 0, sizeof(*out));
    if (!ok || sscanf(line, "%ld %llu %7s %n", &out->pid, &out->seq, out->state, &n) != 3 || !n)
        return -1;
    snprintf(out->text, sizeof(out->text), "%s", line + n);
    out->text[strcspn(out->text, "\n")] = '\0';
    return 0;
}

/* One line, whole or not at all; a line break in text would end it early. */
static void write_file(const char *path, unsigned long long seq, const char *state,
                       const char *text)
{
    char tmp[4300];
    if (!path[0] ||
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return; /* the pid file's folder went away: nobody can ask anyway */
    fprintf(f, "%d %llu %s ", (int)getpid(), seq, state);
    for (const char *p = text; *p; p++)
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
    fputc('\n', f);
    if (fclose(f) != 0 || rename(tmp, path) < 0)
        unlink(tmp);
}

static void vwrite(zg_verdict_kind kind, const char *state, const char *fmt, va_list ap)
{
    char text[2048];
    vsnprintf(text, sizeof(text), fmt, ap);
    write_file(V.path[kind], V.seq[kind], state, text);
}

/* "SEQ PATH" from the old master; 0, or -1 when absent or garbled. */
static int upgrade_from_env(unsigned long long *seq, char *path, size_t len)
{
    const char *v = getenv(ZG_VERDICT_ENV);
    int n = 0;
    if (!v || sscanf(v, "%llu %n", seq, &n) != 1 || !n || !v[n])
        return -1;
    return snprintf(path, len, "%s", v + n) < (int)len ? 0 : -1;
}

void zg_verdict_init(const char *pid_path)
{
    for (int k = 0; k < 2; k++) {
        zg_verdict v;
        V.path[k][0] = '\0';
        if (pid_path && zg_verdict_path(pid_path, k, V.path[k], sizeof(V.path[k])) < 0)
            V.path[k][0] = '\0';
        V.seq[k] = V.path[k][0] && zg_verdict_read(V.path[k], &v) == 0 ? v.seq : 0;
    }
    if (upgrade_from_env(&V.seq[ZG_VERDICT_UPGRADE], V.path[ZG_VERDICT_UPGRADE],
                         sizeof(V.path[ZG_VERDICT_UPGRADE])) == 0)
        V.upgrade_pending = 1;
    unsetenv(ZG_VERDICT_ENV); /* not for our workers, nor a later new binary */
}

void zg_verdict_begin(zg_verdict_kind kind)
{
    V.seq[kind]++;
    write_file(V.path[kind], V.seq[kind], "busy", "");
}

void zg_verdict_end(zg_verdict_kind kind, int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite(kind, ok ? "ok" : "failed", fmt, ap);
    va_end(ap);
}

void zg_verdict_started(int ok, const char *fmt, ...)
{
    va_list ap;
    if (V.upgrade_pending) {
        va_start(ap, fmt);
        vwrite(ZG_VERDICT_UPGRADE, ok ? "ok" : "failed", fmt, ap);
        va_end(ap);
        V.upgrade_pending = 0;
    } else if (ok) { /* same sequence number: it answers nobody's request */
        va_start(ap, fmt);
        vwrite(ZG_VERDICT_UPGRADE, "ok", fmt, ap);
        va_end(ap);
    }
    if (ok) {
        va_start(ap, fmt);
        vwrite(ZG_VERDICT_RELOAD, "ok", fmt, ap);
        va_end(ap);
    }
}

int zg_verdict_export_upgrade(void)
{
    char v[4300];
    const char *path = V.path[ZG_VERDICT_UPGRADE];
    if (!path[0])
        return 0;
    snprintf(v, sizeof(v), "%llu %s", V.seq[ZG_VERDICT_UPGRADE], path);
    return setenv(ZG_VERDICT_ENV, v, 1);
}

void zg_verdict_upgrade_exited(const char *how)
{
    zg_verdict v;
    const char *path = V.path[ZG_VERDICT_UPGRADE];
    if (!path[0] || zg_verdict_read(path, &v) < 0 || v.seq != V.seq[ZG_VERDICT_UPGRADE] ||
        strcmp(v.state, "busy") != 0)
        return; /* it gave its verdict, or another request came since */
    write_file(path, v.seq, "failed", how);
}

/* Ours, or left by a master (a failed new binary) that is gone. */
void zg_verdict_remove(void)
{
    for (int k = 0; k < 2; k++) {
        zg_verdict v;
        if (V.path[k][0] && zg_verdict_read(V.path[k], &v) == 0 &&
            (v.pid == (long)getpid() || (kill((pid_t)v.pid, 0) < 0 && errno == ESRCH)))
            unlink(V.path[k]);
    }
}

void zg_verdict_upgrade_failed_early(const char *err)
{
    unsigned long long seq;
    char path[4200];
    char text[2300];
    snprintf(text, sizeof(text), "binary upgrade failed: %s", err);
    if (upgrade_from_env(&seq, path, sizeof(path)) == 0)
        write_file(path, seq, "failed", text);
    unsetenv(ZG_VERDICT_ENV);
}
