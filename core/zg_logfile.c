/* zg_logfile.c - buffered log files: two buffers per file, one filling while
 * the other is written through io_uring (O_APPEND), a timer for quiet times,
 * reopened on SIGUSR1 (the old file keeps what was logged before), written
 * out synchronously at exit. Built on the module API itself. */
#define _GNU_SOURCE
#include "zg_logfile.h"
#include "zg_log.h"
#include "zg_module.h"
#include "zg_timer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct zerg_logfile {
    zerg_logfile *next;
    zg_worker *w;
    char *path;
    int fd, old_fd; /* old_fd: the file before a reopen, while a write to it runs */
    char *buf, *wbuf;
    size_t len, cap, wlen;
    int writing;
    uint64_t flush_ms, dropped;
    zerg_timer timer;
};

static int open_fd(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void flush(zerg_logfile *lf);

static void written(void *arg, ssize_t res)
{
    zerg_logfile *lf = arg;
    lf->writing = 0;
    if (res < 0)
        zg_log_error("log file %s: %s", lf->path, strerror((int)-res));
    else if ((size_t)res < lf->wlen)
        zg_log_error("log file %s: short write", lf->path);
    lf->wlen = 0;
    if (lf->old_fd >= 0) {
        close(lf->old_fd);
        lf->old_fd = -1;
    }
    if (lf->len >= lf->cap / 2)
        flush(lf);
}

/* Swap the buffers and write the full one; one write at a time. */
static void flush(zerg_logfile *lf)
{
    if (lf->writing || lf->len == 0 || lf->fd < 0)
        return;
    char *t = lf->wbuf;
    lf->wbuf = lf->buf;
    lf->wlen = lf->len;
    lf->buf = t;
    lf->len = 0;
    lf->writing = 1;
    if (zg_api.file_io(lf->w, NULL, 1, lf->fd, lf->wbuf, lf->wlen, -1, written, lf) != 0) {
        /* the ring refused: write it out directly rather than lose it */
        ssize_t r = write(lf->fd, lf->wbuf, lf->wlen);
        (void)r;
        lf->writing = 0;
        lf->wlen = 0;
    }
}

static void flush_timer(zerg_timer *t)
{
    zerg_logfile *lf = t->data;
    flush(lf);
    if (lf->len)
        zg_api.timer_set(lf->w, &lf->timer, lf->flush_ms);
}

zerg_logfile *zg_logfile_open(zg_worker *w, const char *path, size_t buffer, uint64_t flush_ms)
{
    zerg_logfile *lf = calloc(1, sizeof(*lf));
    if (!lf)
        return NULL;
    lf->w = w;
    lf->cap = buffer < 4096 ? 4096 : buffer;
    lf->flush_ms = flush_ms ? flush_ms : 1;
    lf->path = strdup(path);
    lf->buf = malloc(lf->cap);
    lf->wbuf = malloc(lf->cap);
    lf->old_fd = -1;
    lf->fd = lf->path && lf->buf && lf->wbuf ? open_fd(path) : -1;
    if (lf->fd < 0) {
        int err = lf->path && lf->buf && lf->wbuf ? errno : ENOMEM;
        free(lf->path);
        free(lf->buf);
        free(lf->wbuf);
        free(lf);
        errno = err;
        return NULL;
    }
    lf->timer.fn = flush_timer;
    lf->timer.data = lf;
    lf->next = w->logfiles;
    w->logfiles = lf;
    return lf;
}

char *zg_logfile_reserve(zerg_logfile *lf, size_t need)
{
    if (lf->cap - lf->len < need) {
        flush(lf);
        if (lf->cap - lf->len < need) {
            lf->dropped++;
            return NULL;
        }
    }
    return lf->buf + lf->len;
}

void zg_logfile_commit(zerg_logfile *lf, size_t n)
{
    lf->len += n;
    if (lf->len >= lf->cap / 2)
        flush(lf);
    if (lf->len && !zg_timer_armed(&lf->timer))
        zg_api.timer_set(lf->w, &lf->timer, lf->flush_ms);
}

void zg_logfile_flush_all(zg_worker *w)
{
    for (zerg_logfile *lf = w->logfiles; lf; lf = lf->next)
        flush(lf);
}

void zg_logfile_reopen_all(zg_worker *w)
{
    for (zerg_logfile *lf = w->logfiles; lf; lf = lf->next) {
        int fd = open_fd(lf->path);
        if (fd < 0) {
            zg_log_error("log file %s: reopen: %s", lf->path, strerror(errno));
            continue;
        }
        flush(lf); /* what was logged before goes to the old file */
        if (lf->writing) {
            if (lf->old_fd >= 0)
                close(lf->old_fd);
            lf->old_fd = lf->fd;
        } else {
            close(lf->fd);
        }
        lf->fd = fd;
    }
}

void zg_logfile_close_all(zg_worker *w)
{
    zerg_logfile *lf = w->logfiles, *next;
    for (; lf; lf = next) {
        next = lf->next;
        if (zg_timer_armed(&lf->timer))
            zg_api.timer_cancel(w, &lf->timer);
        /* the loop has ended: write synchronously what is left (a buffer
         * still owned by an unfinished ring write is leaked, not freed) */
        if (lf->len && lf->fd >= 0) {
            ssize_t r = write(lf->fd, lf->buf, lf->len);
            (void)r;
        }
        if (lf->dropped)
            zg_log_warn("log file %s: %llu lines dropped (buffer full while writing)", lf->path,
                        (unsigned long long)lf->dropped);
        if (!lf->writing) {
            if (lf->fd >= 0)
                close(lf->fd);
            free(lf->wbuf);
            free(lf->buf);
            free(lf->path);
            free(lf);
        }
    }
    w->logfiles = NULL;
}
