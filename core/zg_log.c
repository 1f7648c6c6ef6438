/* zg_log.c - the error log: timestamped lines written with one write(2) each,
 * so lines from the master and every worker never interleave. */
#define _GNU_SOURCE
#include "zg_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int zg_log_level = ZERG_LOG_INFO;
static int log_fd = STDERR_FILENO;
static char log_path[4096] = "stderr";
static char log_role[32] = "master";

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

int zg_log_level_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int zg_log_open(const char *path, int level)
{
    int fd = STDERR_FILENO;
    if (strcmp(path, "stderr") != 0) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
    }
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    snprintf(log_path, sizeof(log_path), "%s", path);
    zg_log_level = level;
    return 0;
}

void zg_log_reopen(void)
{
    if (strcmp(log_path, "stderr") == 0)
        return;
    if (zg_log_open(log_path, zg_log_level) < 0)
        zg_log_error("cannot reopen error log %s: %s", log_path, strerror(errno));
}

void zg_log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void zg_vlog(int level, const char *fmt, va_list ap)
{
    if (level > zg_log_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d/%02d/%02d %02d:%02d:%02d [%s] %d %s: ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     level_names[level < 0   ? 0
                                 : level > 4 ? 4
                                             : level],
                     (int)getpid(), log_role);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, n);
    (void)w;
}

void zg_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zg_vlog(level, fmt, ap);
    va_end(ap);
}
