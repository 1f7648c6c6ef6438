/* zg_master.c - the master: it owns the listening sockets and forks one
 * worker per CPU; it never touches client traffic. Signals are taken
 * synchronously with sigtimedwait, so the whole cycle reads top to bottom. */
#define _GNU_SOURCE
#include "config.h"
#include "zg_master.h"
#include "zg_listen.h"
#include "zg_log.h"
#include "zg_metrics.h"
#include "zg_metrics_shm.h"
#include "zg_module.h"
#include "zg_notify.h"
#include "zg_tls_ticket.h"
#include "zg_upgrade.h"
#include "zg_util.h"
#include "zg_verdict.h"
#include "zg_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define ZG_READY_TIMEOUT_MS     10000
#define ZG_STOP_ACCEPT_WAIT_MS  5000 /* for replaced workers to stop accepting */
#define ZG_RESPAWN_MAX_DELAY_MS 5000

typedef struct zg_gen {
    zg_config *cfg;
    int nworkers;
    int live; /* worker processes of this generation still running */
} zg_gen;

typedef struct zg_child {
    pid_t pid;
    unsigned slot;
    zg_gen *gen;
    uint64_t started_ms;
    uint64_t respawn_at; /* pid 0 and respawn_at set: waiting to respawn */
    unsigned crashes;
    int retiring; /* told to drain by SIGWINCH: not respawned */
    int mrow;     /* its row of the shared metrics, folded when it exits */
    int pipe;     /* read end of its pipe: 'R' ready, then 'D' no more accepts */
} zg_child;

typedef struct zg_master {
    const zg_master_opts *opts;
    zg_gen *cur;
    zg_listen_set listen;
    zg_child *children;
    size_t nchildren, cap;
    int stopping;        /* 1 graceful, 2 fast */
    int idle;            /* SIGWINCH: workers retired, the master stays */
    char pid_path[4096]; /* the pid file we wrote (a reload may name another) */
    char oldbin[4200];   /* where pid_path went while a new binary runs */
    char exe[4096];      /* our own binary, for SIGUSR2 */
    pid_t new_binary;    /* the master a binary upgrade started, while it runs */
    uint64_t kill_at;
} zg_master;

static void gen_release(zg_gen *g)
{
    if (g && g->live == 0) {
        zg_conf_free(g->cfg);
        free(g);
    }
}

/* ---- workers ---- */

/* A free entry for a new worker. A reused one starts clean: the crashes
 * counted there belong to a worker of another generation (a reload cancelled
 * its respawn) and must not lengthen this one's back-off. */
static zg_child *child_slot(zg_master *m)
{
    for (size_t i = 0; i < m->nchildren; i++)
        if (!m->children[i].pid && !m->children[i].respawn_at) {
            memset(&m->children[i], 0, sizeof(m->children[i]));
            m->children[i].pipe = -1;
            return &m->children[i];
        }
    if (m->nchildren == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        zg_child *c = realloc(m->children, cap * sizeof(*c));
        if (!c)
            return NULL;
        m->children = c;
        m->cap = cap;
    }
    zg_child *c = &m->children[m->nchildren++];
    memset(c, 0, sizeof(*c));
    c->pipe = -1;
    return c;
}

/* Fork worker slot of gen into ch. Returns the read end of its pipe, which
 * ch keeps (ch->pipe) until the worker exits. */
static int spawn(zg_master *m, zg_gen *gen, zg_child *ch, unsigned slot)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        zg_log_error("pipe: %s", strerror(errno));
        return -1;
    }
    int cpu = zg_conf_worker_cpu(gen->cfg, (int)slot);
    int *fds = zg_listen_worker_fds(&m->listen, gen->cfg, slot);
    if (!fds) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    int mrow = zg_mshm_claim(slot); /* the child writes the row claimed last */
    if (mrow < 0)
        zg_log_warn("worker %u: no free row in the shared metrics: its figures are lost", slot);
    pid_t pid = fork();
    if (pid < 0) {
        zg_log_error("fork: %s", strerror(errno));
        zg_mshm_fold(mrow);
        free(fds);
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        for (size_t i = 0; i < m->nchildren; i++)
            if (m->children[i].pid && m->children[i].pipe >= 0)
                close(m->children[i].pipe); /* the master's, not ours */
        zg_listen_close_others(&m->listen, fds);
        int rc = zg_worker_main(gen->cfg, slot, cpu, fds, pipefd[1]);
#ifdef __SANITIZE_ADDRESS__
        /* _exit skips LeakSanitizer's exit-time check: a worker's leaks
         * are what the sanitizer build is for, so check here */
        __lsan_do_leak_check();
#endif
        _exit(rc);
    }
    free(fds);
    close(pipefd[1]);
    ch->pid = pid;
    ch->pipe = pipefd[0];
    ch->mrow = mrow;
    zg_mshm_set_pid(mrow, pid);
    ch->slot = slot;
    ch->gen = gen;
    ch->started_ms = zg_monotonic_ms();
    ch->respawn_at = 0;
    ch->retiring = 0;
    gen->live++;
    zg_log_info("worker %u started (pid %d, cpu %d)", slot, (int)pid, cpu);
    return pipefd[0];
}

/* Wait until each pipe says ready ('R') or closes; 0 when all are ready. */
static int wait_ready(int *fds, int n)
{
    int pending = n, ok = 1;
    uint64_t deadline = zg_monotonic_ms() + ZG_READY_TIMEOUT_MS;
    struct pollfd pfd[1024];
    for (int i = 0; i < n && i < 1024; i++)
        pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    while (pending > 0) {
        int64_t left = (int64_t)(deadline - zg_monotonic_ms());
        int r = left > 0 ? poll(pfd, (nfds_t)n, (int)left) : 0;
        if (r < 0 && errno == EINTR)
            continue; /* only a failed poll sets errno: a timeout after it must end */
        if (r <= 0) {
            ok = 0;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            char c = 0;
            if (read(pfd[i].fd, &c, 1) != 1 || c != 'R')
                ok = 0;
            pfd[i].fd = -1;
            pending--;
        }
    }
    return ok ? 0 : -1;
}

static void close_pipe(zg_child *ch)
{
    if (ch->pipe >= 0)
        close(ch->pipe);
    ch->pipe = -1;
}

/* After SIGQUIT to gen: wait until each of its workers says that it accepts
 * no more ('D', or its pipe closes as it exits). Until then a worker that has
 * not run since the signal still takes new connections from the sockets it
 * shares with its successor and serves them on the old configuration, so a
 * reload is done only after. */
static void wait_accepts_stopped(zg_master *m, zg_gen *gen)
{
    struct pollfd pfd[1024];
    zg_child *who[1024];
    nfds_t n = 0;
    for (size_t i = 0; i < m->nchildren && n < 1024; i++) {
        zg_child *ch = &m->children[i];
        if (ch->pid && ch->gen == gen && ch->pipe >= 0) {
            pfd[n] = (struct pollfd){.fd = ch->pipe, .events = POLLIN};
            who[n++] = ch;
        }
    }
    uint64_t deadline = zg_monotonic_ms() + ZG_STOP_ACCEPT_WAIT_MS;
    for (nfds_t pending = n; pending > 0;) {
        int64_t left = (int64_t)(deadline - zg_monotonic_ms());
        int rc = left > 0 ? poll(pfd, n, (int)left) : 0;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            zg_log_warn("%u replaced workers still accept connections after %d ms%s%s",
                        (unsigned)pending, ZG_STOP_ACCEPT_WAIT_MS, rc < 0 ? ": poll: " : "",
                        rc < 0 ? strerror(errno) : "");
            return;
        }
        for (nfds_t i = 0; i < n; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            char buf[8];
            ssize_t got = read(pfd[i].fd, buf, sizeof(buf));
            if ((got < 0 && errno == EINTR) || (got > 0 && !memchr(buf, 'D', (size_t)got)))
                continue; /* the 'R' of a respawned worker, read by nobody before */
            close_pipe(who[i]);
            pfd[i].fd = -1;
            pending--;
        }
    }
}

static int start_generation(zg_master *m, zg_gen *gen)
{
    int fds[1024];
    int n = 0;
    for (int slot = 0; slot < gen->nworkers && n < 1024; slot++) {
        zg_child *ch = child_slot(m);
        int fd = ch ? spawn(m, gen, ch, (unsigned)slot) : -1;
        if (fd < 0)
            break;
        fds[n++] = fd;
    }
    if (wait_ready(fds, n) == 0 && n == gen->nworkers)
        return 0;
    /* a worker could not start: stop the ones that did */
    for (size_t i = 0; i < m->nchildren; i++)
        if (m->children[i].gen == gen && m->children[i].pid)
            kill(m->children[i].pid, SIGKILL);
    return -1;
}

static void signal_generation(zg_master *m, zg_gen *gen, int sig)
{
    for (size_t i = 0; i < m->nchildren; i++)
        if (m->children[i].pid && (!gen || m->children[i].gen == gen))
            kill(m->children[i].pid, sig);
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "exited with code %d", WEXITSTATUS(status));
}

/* ---- the service manager ---- */

typedef enum { ZG_NOTE_READY, ZG_NOTE_RELOADING, ZG_NOTE_STOPPING } zg_note;

/* systemd hears from the master it knows as the main process: not from one
 * whose new binary has taken over (and named itself the main process). A
 * new binary that stops while the master it upgraded still runs (a roll
 * back) hands the service back to it instead of stopping it. */
static void notify(zg_master *m, zg_note what)
{
    pid_t upgraded_from = m->listen.parent;
    if (m->new_binary)
        return;
    if (what == ZG_NOTE_READY)
        zg_notify_ready(m->cur->nworkers);
    else if (what == ZG_NOTE_RELOADING)
        zg_notify_reloading();
    else if (upgraded_from && getppid() == upgraded_from)
        zg_notify("MAINPID=%d\nSTATUS=handed back to pid %d\n", (int)upgraded_from,
                  (int)upgraded_from);
    else
        zg_notify("STOPPING=1\n");
}

/* ---- binary upgrade (SIGUSR2) and retiring the workers (SIGWINCH) ---- */

/* SIGWINCH: the workers drain and exit, the master stays, so that after a
 * binary upgrade the old master can take over again if the new one fails. */
static void retire_workers(zg_master *m)
{
    if (m->stopping || m->idle)
        return;
    if (isatty(STDIN_FILENO)) { /* a terminal sends SIGWINCH when its window changes */
        zg_log_notice("SIGWINCH ignored: the master runs on a terminal");
        return;
    }
    zg_log_notice("retiring the workers: they drain, the master stays (SIGHUP starts them again)");
    m->idle = 1;
    for (size_t i = 0; i < m->nchildren; i++) {
        zg_child *ch = &m->children[i];
        if (ch->gen != m->cur)
            continue;
        if (ch->pid)
            ch->retiring = 1;
        else
            ch->respawn_at = 0, ch->gen = NULL; /* a respawn that was due */
    }
    signal_generation(m, m->cur, SIGQUIT);
}

/* After SIGWINCH: workers again, with the configuration they had. */
static void resume_workers(zg_master *m, const char *why)
{
    m->idle = 0;
    if (start_generation(m, m->cur) < 0) {
        zg_log_error("%s: workers failed to start; send SIGHUP to try again", why);
        m->idle = 1;
        return;
    }
    zg_log_notice("%s: %d workers started on the running configuration", why, m->cur->nworkers);
}

/* An upgrade that does not happen: logged, and the verdict `zerg -s
 * upgrade` waits for. */
static void __attribute__((format(printf, 2, 3))) upgrade_refused(int level, const char *fmt, ...)
{
    char msg[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    zg_log(level, "%s", msg);
    zg_verdict_end(ZG_VERDICT_UPGRADE, 0, "%s", msg);
}

/* An upgrade that failed or ended: pid.oldbin is the pid file again. */
static void restore_pid_file(zg_master *m)
{
    if (m->oldbin[0] && rename(m->oldbin, m->pid_path) < 0)
        zg_log_error("rename %s to %s: %s", m->oldbin, m->pid_path, strerror(errno));
    m->oldbin[0] = '\0';
}

static void upgrade(zg_master *m)
{
    char err[4400];
    zg_verdict_begin(ZG_VERDICT_UPGRADE);
    if (m->stopping) {
        upgrade_refused(ZERG_LOG_WARN, "SIGUSR2 ignored: the master is stopping");
        return;
    }
    if (m->new_binary) {
        upgrade_refused(ZERG_LOG_WARN, "SIGUSR2 ignored: a new binary already runs (pid %d)",
                        (int)m->new_binary);
        return;
    }
    if (m->listen.parent && getppid() == m->listen.parent) { /* its pid.oldbin is taken */
        upgrade_refused(ZERG_LOG_WARN,
                        "SIGUSR2 ignored: the master this one upgraded (pid %d) still runs; "
                        "let it go first (SIGQUIT)",
                        (int)m->listen.parent);
        return;
    }
    if (!m->exe[0]) {
        upgrade_refused(ZERG_LOG_ERROR,
                        "binary upgrade: cannot tell which file this zerg was started from");
        return;
    }
    m->oldbin[0] = '\0';
    if (m->pid_path[0]) {
        snprintf(m->oldbin, sizeof(m->oldbin), "%s.oldbin", m->pid_path);
        if (rename(m->pid_path, m->oldbin) < 0) {
            upgrade_refused(ZERG_LOG_ERROR, "binary upgrade: rename %s to %s: %s", m->pid_path,
                            m->oldbin, strerror(errno));
            m->oldbin[0] = '\0';
            return;
        }
    }
    zg_verdict_export_upgrade(); /* the new binary gives the verdict */
    zg_tls_ticket_export();      /* and resumes the sessions of this one */
    pid_t pid = zg_upgrade_exec(m->exe, m->opts->argv, &m->listen, err, sizeof(err));
    unsetenv(ZG_VERDICT_ENV);
    zg_tls_ticket_export_done();
    if (pid < 0) { /* the pid file back first: the verdict and the log tell it is done */
        restore_pid_file(m);
        upgrade_refused(ZERG_LOG_ERROR, "binary upgrade failed: %s", err);
        return;
    }
    m->new_binary = pid;
    m->listen.keep_files = 1;
    zg_log_notice(
        "binary upgrade: %s started as pid %d and serves beside this master (pid %d%s%s); "
        "SIGQUIT to this master completes the upgrade",
        m->exe, (int)pid, (int)getpid(), m->oldbin[0] ? ", now in " : "", m->oldbin);
}

/* The new binary exited: this master is the one again. */
static void upgrade_ended(zg_master *m, int status)
{
    char how[96];
    describe_exit(status, how, sizeof(how));
    restore_pid_file(m); /* before the log line and the verdict, which callers wait for */
    zg_log_notice("the new binary (pid %d) %s; this master (pid %d) serves alone again",
                  (int)m->new_binary, how, (int)getpid());
    char why[256];
    snprintf(why, sizeof(why),
             "binary upgrade failed: the new binary (pid %d) %s before its workers were ready",
             (int)m->new_binary, how);
    zg_verdict_upgrade_exited(why);
    m->new_binary = 0;
    m->listen.keep_files = 0;
    if (m->idle && !m->stopping)
        resume_workers(m, "the new binary exited");
    if (!m->stopping)
        notify(m, ZG_NOTE_READY); /* the main process again */
}

static void reap_children(zg_master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        zg_child *ch = NULL;
        for (size_t i = 0; i < m->nchildren; i++)
            if (m->children[i].pid == pid)
                ch = &m->children[i];
        if (pid == m->new_binary)
            upgrade_ended(m, status);
        if (!ch)
            continue;
        zg_gen *gen = ch->gen;
        zg_mshm_fold(ch->mrow);
        char how[96];
        describe_exit(status, how, sizeof(how));
        ch->pid = 0;
        close_pipe(ch);
        gen->live--;
        int crashed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (gen == m->cur && !m->stopping && !ch->retiring) {
            /* unexpected: respawn on the same CPU, backing off if it keeps dying */
            uint64_t now = zg_monotonic_ms();
            ch->crashes = now - ch->started_ms < 2000 ? ch->crashes + 1 : 0;
            uint64_t delay = ch->crashes ? 100u << (ch->crashes < 6 ? ch->crashes : 6) : 0;
            if (delay > ZG_RESPAWN_MAX_DELAY_MS)
                delay = ZG_RESPAWN_MAX_DELAY_MS;
            ch->respawn_at = now + delay + 1;
            zg_metrics_restart_counted();
            zg_log_error("worker %u (pid %d) %s; respawning in %llu ms", ch->slot, (int)pid, how,
                         (unsigned long long)delay);
        } else {
            if (crashed)
                zg_log_warn("worker %u (pid %d) %s", ch->slot, (int)pid, how);
            else
                zg_log_info("worker %u (pid %d) exited", ch->slot, (int)pid);
            ch->gen = NULL;
            if (gen != m->cur)
                gen_release(gen);
        }
    }
}

static void respawn_due(zg_master *m)
{
    uint64_t now = zg_monotonic_ms();
    for (size_t i = 0; i < m->nchildren; i++) {
        zg_child *ch = &m->children[i];
        if (ch->pid || !ch->respawn_at || ch->respawn_at > now)
            continue;
        unsigned crashes = ch->crashes;
        int fd = spawn(m, m->cur, ch, ch->slot); /* it serves as soon as it can */
        ch->crashes = crashes;
        if (fd < 0)
            ch->respawn_at = now + ZG_RESPAWN_MAX_DELAY_MS;
    }
}

static int64_t next_wakeup_ms(zg_master *m)
{
    uint64_t now = zg_monotonic_ms(), next = UINT64_MAX;
    for (size_t i = 0; i < m->nchildren; i++)
        if (!m->children[i].pid && m->children[i].respawn_at && m->children[i].respawn_at < next)
            next = m->children[i].respawn_at;
    if (m->kill_at && m->kill_at < next)
        next = m->kill_at;
    if (next == UINT64_MAX)
        return -1;
    return next > now ? (int64_t)(next - now) : 0;
}

static int live_children(zg_master *m)
{
    int n = 0;
    for (size_t i = 0; i < m->nchildren; i++)
        n += m->children[i].pid != 0;
    return n;
}

/* ---- reload ---- */

/* A reload that keeps the running configuration: logged, and the verdict
 * `zerg -s reload` waits for. */
/* The counters first: a log line is what callers wait on, and a scrape
 * right after it must count the reload. */
static void reload_failed(const char *why)
{
    zg_metrics_reload_done(0);
    zg_log_error("reload failed, keeping the running configuration: %s", why);
    zg_verdict_end(ZG_VERDICT_RELOAD, 0, "reload failed, keeping the running configuration: %s",
                   why);
}

static void reload(zg_master *m)
{
    char err[2048];
    zg_log_notice("reloading configuration from %s", m->opts->conf_file);
    zg_config *cfg = zg_conf_load(m->opts->conf_file, m->opts->prefix, err, sizeof(err));
    if (!cfg) {
        reload_failed(err);
        return;
    }
    zg_gen *gen = calloc(1, sizeof(*gen));
    if (!gen) {
        reload_failed("out of memory");
        zg_conf_free(cfg);
        return;
    }
    gen->cfg = cfg;
    gen->nworkers = zg_conf_workers(cfg);
    if (zg_listen_open(&m->listen, cfg, gen->nworkers, err, sizeof(err)) < 0) {
        reload_failed(err);
        gen_release(gen);
        return;
    }
    if (start_generation(m, gen) < 0) {
        zg_metrics_reload_done(0);
        zg_log_error("reload failed: new workers did not start; keeping the running ones");
        zg_verdict_end(ZG_VERDICT_RELOAD, 0,
                       "reload failed: new workers did not start; keeping the running ones "
                       "(see the error log)");
        zg_listen_prune(&m->listen, m->cur->cfg, m->cur->nworkers);
        /* their exits are reaped later; the generation is freed with the last */
        if (gen->live == 0)
            gen_release(gen);
        return;
    }
    zg_gen *old = m->cur;
    m->cur = gen;
    /* cancel pending respawns of the old generation, then let it drain */
    for (size_t i = 0; i < m->nchildren; i++)
        if (m->children[i].gen == old && !m->children[i].pid)
            m->children[i].respawn_at = 0, m->children[i].gen = NULL;
    signal_generation(m, old, SIGQUIT);
    wait_accepts_stopped(m, old);
    zg_listen_prune(&m->listen, cfg, gen->nworkers);
    if (zg_log_open(cfg->error_log_path, cfg->error_log_level) < 0)
        zg_log_error("cannot open error log %s: %s", cfg->error_log_path, strerror(errno));
    gen_release(old);
    zg_metrics_reload_done(1);
    zg_log_notice("reload done: %d workers on the new configuration", gen->nworkers);
    zg_verdict_end(ZG_VERDICT_RELOAD, 1, "reload done: %d workers on the new configuration",
                   gen->nworkers);
}

/* ---- pid file ---- */

static int write_pid_file(const char *path)
{
    char tmp[4200], buf[32];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void remove_pid_file(const char *path)
{
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (!f)
        return;
    if (fscanf(f, "%d", &pid) == 1 && pid == (int)getpid())
        unlink(path);
    fclose(f);
}

/* ---- the cycle ---- */

static int daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return 0;
}

/* SIGHUP: a reload, or the workers again after SIGWINCH; either way a
 * verdict for `zerg -s reload`. */
static void hangup(zg_master *m)
{
    zg_verdict_begin(ZG_VERDICT_RELOAD);
    if (m->stopping) {
        zg_verdict_end(ZG_VERDICT_RELOAD, 0, "reload refused: the master is stopping");
    } else if (m->idle) {
        resume_workers(m, "SIGHUP after SIGWINCH");
        zg_verdict_end(ZG_VERDICT_RELOAD, !m->idle, "SIGHUP after SIGWINCH: workers %s",
                       m->idle ? "failed to start (see the error log)" : "started");
    } else {
        notify(m, ZG_NOTE_RELOADING);
        reload(m);
        notify(m, ZG_NOTE_READY);
    }
}

static void handle_signal(zg_master *m, int sig)
{
    switch (sig) {
    case SIGCHLD:
        reap_children(m);
        break;
    case SIGHUP:
        hangup(m);
        break;
    case SIGUSR2:
        upgrade(m);
        break;
    case SIGWINCH:
        retire_workers(m);
        break;
    case SIGQUIT:
        if (!m->stopping) {
            zg_log_notice("graceful stop: workers drain");
            notify(m, ZG_NOTE_STOPPING);
            m->stopping = 1;
            signal_generation(m, NULL, SIGQUIT);
        }
        break;
    case SIGTERM:
    case SIGINT:
        if (m->stopping != 2) {
            zg_log_notice("fast stop");
            if (!m->stopping)
                notify(m, ZG_NOTE_STOPPING);
            m->stopping = 2;
            m->kill_at = zg_monotonic_ms() + 5000;
            signal_generation(m, NULL, SIGTERM);
        }
        break;
    case SIGUSR1:
        zg_log_reopen();
        signal_generation(m, NULL, SIGUSR1);
        break;
    default:
        break;
    }
}

void zg_master_block_signals(sigset_t *out)
{
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGHUP, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGWINCH};
    for (size_t i = 0; i < ZG_ARRAY_SIZE(sigs); i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (out)
        *out = set;
}

int zg_master_run(zg_config *cfg, const zg_master_opts *opts)
{
    zg_master master = {.opts = opts};
    zg_master *m = &master;
    char err[1024];
    sigset_t set;
    zg_master_block_signals(&set);
    signal(SIGPIPE, SIG_IGN);

    m->cur = calloc(1, sizeof(zg_gen));
    if (!m->cur) {
        zg_conf_free(cfg);
        return 1;
    }
    m->cur->cfg = cfg;
    m->cur->nworkers = zg_conf_workers(cfg);
    if (zg_upgrade_self_path(m->exe, sizeof(m->exe)) < 0)
        m->exe[0] = '\0';
    zg_verdict_init(cfg->pid);
    /* started by a binary upgrade: serve on the old master's sockets */
    const char *handed = getenv(ZG_LISTEN_ENV);
    int upgraded = handed != NULL;
    if (upgraded) {
        int n = zg_listen_inherit(&m->listen, handed);
        zg_log_notice("binary upgrade: took over %d listening sockets from pid %d", n,
                      (int)m->listen.parent);
        unsetenv(ZG_LISTEN_ENV);
    }
    if (zg_listen_open(&m->listen, cfg, m->cur->nworkers, err, sizeof(err)) < 0) {
        zg_log_error("%s", err);
        zg_verdict_started(0, "binary upgrade failed: %s", err);
        zg_listen_close_all(&m->listen);
        gen_release(m->cur);
        return 1;
    }
    /* the old master is detached already, and a second fork would look to
     * it like this binary's exit */
    if (opts->daemonize && !upgraded && daemonize() < 0) {
        zg_log_error("daemonize: %s", strerror(errno));
        zg_listen_close_all(&m->listen);
        gen_release(m->cur);
        return 1;
    }
    if (cfg->pid && write_pid_file(cfg->pid) < 0)
        zg_log_warn("cannot write pid file %s: %s", cfg->pid, strerror(errno));
    else if (cfg->pid)
        snprintf(m->pid_path, sizeof(m->pid_path), "%s", cfg->pid);
    zg_log_set_role("master");
    zg_proctitle_set("zerg: master");
    zg_log_notice("zerg %s starting %d workers", PACKAGE_VERSION, m->cur->nworkers);
    int rc = 0;
    if (start_generation(m, m->cur) < 0) {
        zg_log_error("workers failed to start");
        zg_verdict_started(0, "binary upgrade failed: the new binary's workers did not start "
                              "(see the error log)");
        m->stopping = 2;
        m->kill_at = zg_monotonic_ms() + 2000;
        rc = 1;
    } else {
        zg_log_notice("%d workers ready", m->cur->nworkers);
        zg_metrics_started();
        zg_listen_prune(&m->listen, cfg, m->cur->nworkers); /* handed over, not configured */
        notify(m, ZG_NOTE_READY);
        zg_verdict_started(1, "zerg %s (pid %d) started %d workers", PACKAGE_VERSION, (int)getpid(),
                           m->cur->nworkers);
    }
    while (!m->stopping || live_children(m) > 0) {
        int64_t wait = next_wakeup_ms(m);
        struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, wait >= 0 ? &ts : NULL);
        if (sig > 0)
            handle_signal(m, sig);
        else if (errno != EAGAIN && errno != EINTR)
            zg_log_error("sigtimedwait: %s", strerror(errno));
        reap_children(m);
        if (!m->stopping)
            respawn_due(m);
        if (m->kill_at && zg_monotonic_ms() >= m->kill_at) {
            signal_generation(m, NULL, SIGKILL);
            m->kill_at = 0;
        }
    }
    zg_log_notice("exiting");
    if (m->pid_path[0])
        remove_pid_file(m->pid_path);
    if (m->oldbin[0]) /* a new binary runs on: the pid file it wrote stays */
        remove_pid_file(m->oldbin);
    zg_verdict_remove();
    zg_listen_close_all(&m->listen);
    m->cur->live = 0;
    gen_release(m->cur);
    free(m->children);
    return rc;
}
