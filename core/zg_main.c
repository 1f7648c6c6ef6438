/* zg_main.c - the zerg command line: test a config, signal a running master,
 * or start one. */
#define _GNU_SOURCE
#include "config.h"
#include "zg_conf.h"
#include "zg_ctl.h"
#include "zg_log.h"
#include "zg_master.h"
#include "zg_util.h"
#include "zg_verdict.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: zerg [-c FILE] [-p PREFIX] [-t | -T] [-s reload|stop|quit|reopen|upgrade "
            "[-w SECONDS]] [-d] [-v] [-h]\n"
            "  -c FILE    configuration file (default %s)\n"
            "  -p PREFIX  prefix for relative paths in the configuration\n"
            "  -t         test the configuration and exit (0 good, 1 bad)\n"
            "  -T         as -t, then print the configuration files read\n"
            "  -s SIGNAL  signal the running master: reload, stop, quit, reopen, upgrade\n"
            "  -w SECONDS with -s reload|upgrade: wait this long for the master's verdict\n"
            "             (default %d, 0: do not wait); exit 0 ok, 2 rejected, 3 timed out,\n"
            "             4 no master\n"
            "  -d         run as a daemon (default: foreground)\n"
            "  -v         print the version and exit\n"
            "  -h         this help\n",
            ZG_CONF_PATH, ZG_CTL_WAIT_DEFAULT_S);
}

/* -w: whole seconds, 0 to a day. */
static int parse_wait(const char *s, int *out)
{
    int64_t v;
    if (zg_parse_int(s, &v) < 0 || v < 0 || v > 86400)
        return -1;
    *out = (int)v;
    return 0;
}

/* Print one file as it is on disk now, under a header naming it. */
static int dump_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "zerg: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("# configuration file %s:\n", path);
    char buf[8192];
    size_t n, last = 0;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        fwrite(buf, 1, n, stdout);
        last = n;
    }
    if (last && buf[last - 1] != '\n')
        putchar('\n');
    putchar('\n');
    fclose(f);
    return 0;
}

/* -T: the main file, then every included one, in the order they were read. */
static int dump_files(const zg_config *cfg)
{
    int rc = dump_file(cfg->file);
    for (const zg_conf_file *f = cfg->included; f; f = f->next)
        rc |= dump_file(f->path);
    return fflush(stdout) == 0 ? rc : 1;
}

int main(int argc, char **argv)
{
    const char *conf_file = ZG_CONF_PATH, *prefix = NULL, *action = NULL;
    int test = 0, dump = 0, daemon = 0, wait_s = ZG_CTL_WAIT_DEFAULT_S, opt;
    sigset_t held;
    zg_master_block_signals(&held); /* first: see zg_master_block_signals */
    while ((opt = getopt(argc, argv, "c:p:tTs:w:dvh")) != -1) {
        switch (opt) {
        case 'c':
            conf_file = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'T':
            test = dump = 1;
            break;
        case 's':
            action = optarg;
            break;
        case 'w':
            if (parse_wait(optarg, &wait_s) < 0) {
                fprintf(stderr, "zerg: -w takes whole seconds from 0 to 86400, not \"%s\"\n",
                        optarg);
                return 1;
            }
            break;
        case 'd':
            daemon = 1;
            break;
        case 'v':
            printf("zerg %s (module ABI %d)\n", PACKAGE_VERSION, ZERG_ABI_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "zerg: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    /* the process title reuses argv's memory: keep our own copies */
    static char **args; /* static: the whole run may need them */
    args = calloc((size_t)argc + 1, sizeof(*args));
    for (int i = 0; i < argc; i++) {
        if (!args || !(args[i] = strdup(argv[i]))) {
            fprintf(stderr, "zerg: out of memory\n");
            return 1;
        }
    }
    static char conf_buf[4096], prefix_buf[4096], action_buf[32];
    if (snprintf(conf_buf, sizeof(conf_buf), "%s", conf_file) >= (int)sizeof(conf_buf) ||
        (prefix &&
         snprintf(prefix_buf, sizeof(prefix_buf), "%s", prefix) >= (int)sizeof(prefix_buf))) {
        fprintf(stderr, "zerg: path too long\n");
        return 1;
    }
    conf_file = conf_buf;
    prefix = prefix ? prefix_buf : NULL;
    if (action) {
        snprintf(action_buf, sizeof(action_buf), "%s", action);
        action = action_buf;
    }
    if (test || action)
        sigprocmask(SIG_UNBLOCK, &held, NULL); /* nothing to serve: default actions */
    zg_proctitle_init(argc, argv);
    char err[2048];
    zg_config *cfg = zg_conf_load(conf_file, prefix, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "zerg: %s\n", err);
        if (test)
            fprintf(stderr, "zerg: configuration file %s test failed\n", conf_file);
        else if (!action) /* the new binary of an upgrade owes its verdict */
            zg_verdict_upgrade_failed_early(err);
        return 1;
    }
    if (test) {
        printf("zerg: configuration file %s test is successful\n", conf_file);
        int rc = dump ? dump_files(cfg) : 0;
        zg_conf_free(cfg);
        return rc;
    }
    if (action) {
        int rc = zg_ctl_signal(cfg, action, wait_s);
        zg_conf_free(cfg);
        return rc;
    }
    if (zg_log_open(cfg->error_log_path, cfg->error_log_level) < 0) {
        fprintf(stderr, "zerg: cannot open error log %s\n", cfg->error_log_path);
        zg_conf_free(cfg);
        return 1;
    }
    zg_master_opts opts = {
        .conf_file = conf_file, .prefix = prefix, .daemonize = daemon, .argv = args};
    return zg_master_run(cfg, &opts);
}
