/* zg_worker.c - a worker process from fork to exit: pin to its CPU, drop
 * privileges, build the ring and listeners, start the modules, run the loop;
 * and its drain on reload or graceful stop. */
#define _GNU_SOURCE
#include "zg_worker.h"
#include "zg_connect.h"
#include "zg_log.h"
#include "zg_logfile.h"
#include "zg_module.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static int pin_cpu(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        zg_log_error("sched_setaffinity(cpu %d): %s", cpu, strerror(errno));
        return -1;
    }
    return 0;
}

static int drop_privileges(const zg_config *cfg)
{
    if (geteuid() != 0 || (!cfg->user && !cfg->group))
        return 0;
    gid_t gid = 0;
    uid_t uid = 0;
    if (cfg->group) {
        struct group *g = getgrnam(cfg->group);
        if (!g) {
            zg_log_error("group \"%s\" not found", cfg->group);
            return -1;
        }
        gid = g->gr_gid;
    }
    if (cfg->user) {
        struct passwd *p = getpwnam(cfg->user);
        if (!p) {
            zg_log_error("user \"%s\" not found", cfg->user);
            return -1;
        }
        uid = p->pw_uid;
        if (!cfg->group)
            gid = p->pw_gid;
    }
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || (cfg->user && setuid(uid) < 0)) {
        zg_log_error("dropping privileges: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int start_modules(zg_worker *w)
{
    zg_config *cfg = w->cfg;
    for (size_t i = 0; i < cfg->nmodules; i++) {
        const zerg_module *d = cfg->modules[i]->desc;
        if (d->worker_init && d->worker_init(w) != 0) {
            zg_log_error("module %s: worker_init failed", d->name);
            return -1;
        }
    }
    for (size_t s = 0; s < cfg->nservers; s++) {
        const zerg_module *d = cfg->servers[s].module->desc;
        if (d->server_init && d->server_init(w, cfg->servers[s].module_conf) != 0) {
            zg_log_error("module %s: server_init failed for servers[%zu]", d->name, s);
            return -1;
        }
    }
    return 0;
}

int zg_worker_main(zg_config *cfg, unsigned id, int cpu, int *listen_fds, int ready_fd)
{
    static zg_worker worker;
    zg_worker *w = &worker;
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    w->id = id;
    w->pid = getpid();
    w->count = (unsigned)zg_conf_workers(cfg);
    w->cpu = cpu;
    w->signal_fd = -1;
    w->master_fd = -1;

    char role[32];
    snprintf(role, sizeof(role), "worker %u", id);
    zg_log_set_role(role);
    zg_proctitle_set("zerg: worker %u (cpu %d)", id, cpu);
    prctl(PR_SET_PDEATHSIG, SIGTERM);

    if (pin_cpu(cpu) < 0)
        return 2;
    if (cfg->worker_rlimit_nofile) {
        struct rlimit rl = {(rlim_t)cfg->worker_rlimit_nofile, (rlim_t)cfg->worker_rlimit_nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            zg_log_warn("worker_rlimit_nofile %lld: %s", (long long)cfg->worker_rlimit_nofile,
                        strerror(errno));
    }
    if (drop_privileges(cfg) < 0 || zg_event_init(w) < 0 || zg_accept_init(w, listen_fds) < 0 ||
        start_modules(w) < 0)
        return 2;
    if (ready_fd >= 0) {
        ssize_t n = write(ready_fd, "R", 1);
        (void)n;
        w->master_fd = ready_fd; /* kept for zg_worker_accepts_over */
    }
    zg_event_loop(w);
    zg_event_close_all(w, 1000); /* on_close for every connection, then worker_exit */
    const zerg_stats *st = &w->stats;
    zg_log_info("exiting: %llu connections accepted, %llu bytes in, %llu out, %llu enobufs, "
                "%llu accept back-offs, %llu cq overflows",
                (unsigned long long)st->conns_accepted, (unsigned long long)st->bytes_in,
                (unsigned long long)st->bytes_out, (unsigned long long)st->enobufs,
                (unsigned long long)st->accept_backoffs, (unsigned long long)st->cq_overflows);
    for (size_t i = 0; i < cfg->nmodules; i++)
        if (cfg->modules[i]->desc->worker_exit)
            cfg->modules[i]->desc->worker_exit(w);
    zg_logfile_close_all(w);
    zg_event_destroy(w);
    zg_connect_destroy(w);
    zg_accept_destroy(w);
    zg_metrics_publish(&w->stats); /* the last figures, for the master to fold */
    zg_text_free(&w->metrics_text);
    return 0;
}

/* ---- drain (reload, graceful stop) ---- */

void zg_worker_accepts_over(zg_worker *w)
{
    if (w->master_fd < 0)
        return;
    if (write(w->master_fd, "D", 1) != 1) /* a master gone or done waiting */
        zg_log_debug("telling the master that accepts are over: %s", strerror(errno));
    close(w->master_fd);
    w->master_fd = -1;
}

static void shutdown_expired(zerg_timer *t)
{
    zg_worker *w = t->data;
    zg_log_notice("worker_shutdown_timeout: closing %llu connections",
                  (unsigned long long)w->stats.conns_active);
    zg_conn_close_all(w);
}

void zg_worker_drain(zg_worker *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    zg_log_info("draining %llu connections", (unsigned long long)w->stats.conns_active);
    zg_conn_dump(w);
    zg_proctitle_set("zerg: worker %u (old, draining)", w->id);
    zg_accept_stop(w);
    for (size_t i = 0; i < w->cfg->nmodules; i++)
        if (w->cfg->modules[i]->desc->worker_drain)
            w->cfg->modules[i]->desc->worker_drain(w);
    zg_logfile_flush_all(w); /* what was logged so far goes out now, not after the drain */
    w->shutdown_timer.fn = shutdown_expired;
    w->shutdown_timer.data = w;
    zg_timer_set(&w->timers, &w->shutdown_timer, w->now_ms, w->cfg->worker_shutdown_timeout);
}
