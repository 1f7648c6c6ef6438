/* zg_ctl.c - `zerg -s`: the master's pid comes from its pid file; the
 * verdict on a reload or upgrade from the file zg_verdict.c keeps beside it.
 * The sequence number read before signalling tells our request's verdict
 * from older ones: whatever the master starts after that read has read the
 * configuration as it is now. */
#define _GNU_SOURCE
#include "zg_ctl.h"
#include "zg_util.h"
#include "zg_verdict.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    int sig;
    int waits; /* the master gives a verdict */
    zg_verdict_kind kind;
} actions[] = {{"reload", SIGHUP, 1, ZG_VERDICT_RELOAD},
               {"stop", SIGTERM, 0, 0},
               {"quit", SIGQUIT, 0, 0},
               {"reopen", SIGUSR1, 0, 0},
               {"upgrade", SIGUSR2, 1, ZG_VERDICT_UPGRADE}};

/* Running, and not a zombie its parent has yet to reap. */
static int alive(int pid)
{
    if (kill(pid, 0) < 0 && errno != EPERM)
        return 0;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1; /* no /proc: kill said it is there */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *state = strrchr(buf, ')'); /* the name in parentheses may hold anything */
    return !(state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X'));
}

static int read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "zerg: cannot read pid file %s: %s (is zerg running?)\n", path,
                f ? "no pid in it" : strerror(errno));
        pid = 0;
    }
    if (f)
        fclose(f);
    return pid;
}

/* Poll the verdict file until a verdict newer than seq0, the master's exit,
 * or the deadline. */
static int wait_verdict(const char *file, const char *what, int pid, unsigned long long seq0,
                        int wait_s)
{
    uint64_t deadline = zg_monotonic_ms() + (uint64_t)wait_s * 1000;
    const struct timespec step = {.tv_nsec = 10 * 1000000};
    for (;;) {
        zg_verdict v;
        if (zg_verdict_read(file, &v) == 0 && v.seq > seq0 && strcmp(v.state, "busy") != 0) {
            if (strcmp(v.state, "ok") == 0)
                return ZG_CTL_OK;
            fprintf(stderr, "zerg: %s\n", v.text);
            return ZG_CTL_REJECTED;
        }
        if (!alive(pid)) {
            fprintf(stderr, "zerg: the master (pid %d) exited before its verdict on the %s\n", pid,
                    what);
            return ZG_CTL_NO_MASTER;
        }
        if (zg_monotonic_ms() >= deadline) {
            fprintf(stderr,
                    "zerg: no verdict on the %s from the master (pid %d) within %d s; "
                    "see its error log\n",
                    what, pid, wait_s);
            return ZG_CTL_TIMEOUT;
        }
        nanosleep(&step, NULL);
    }
}

int zg_ctl_signal(const zg_config *cfg, const char *action, int wait_s)
{
    size_t i = 0;
    while (i < ZG_ARRAY_SIZE(actions) && strcmp(action, actions[i].name) != 0)
        i++;
    if (i == ZG_ARRAY_SIZE(actions)) {
        fprintf(stderr, "zerg: unknown signal \"%s\" (reload, stop, quit, reopen, upgrade)\n",
                action);
        return ZG_CTL_ERROR;
    }
    if (!cfg->pid) {
        fprintf(stderr, "zerg: the configuration names no pid file: no master to signal\n");
        return ZG_CTL_NO_MASTER;
    }
    int pid = read_pid(cfg->pid);
    if (!pid)
        return ZG_CTL_NO_MASTER;
    char file[4200];
    zg_verdict before = {0};
    int waits = actions[i].waits && wait_s > 0 &&
                zg_verdict_path(cfg->pid, actions[i].kind, file, sizeof(file)) == 0;
    if (waits && zg_verdict_read(file, &before) < 0)
        before.seq = 0; /* none yet: any verdict is newer */
    if (kill(pid, actions[i].sig) < 0) {
        int e = errno;
        fprintf(stderr, "zerg: cannot signal pid %d from %s: %s\n", pid, cfg->pid,
                e == ESRCH ? "not running" : strerror(e));
        return e == ESRCH ? ZG_CTL_NO_MASTER : ZG_CTL_ERROR;
    }
    return waits ? wait_verdict(file, action, pid, before.seq, wait_s) : ZG_CTL_OK;
}
