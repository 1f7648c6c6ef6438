/* tests/unit/test_conf.c - Criterion tests of zg_conf_load: good configs and
 * their parsed values, and bad configs with their exact "file:line:col: message"
 * errors. Each case's YAML is inline; @M@ stands for the built modules folder. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zg_conf.h"
#include "unit_env.h"
#include "zg_module.h"

static char path[64];
static char err[4096];

/* Write yaml to a fresh temp file (path), with @M@ replaced by modules_dir(). */
static void write_conf(const char *yaml)
{
    snprintf(path, sizeof(path), "/tmp/zg-test-conf-XXXXXX.yaml");
    int fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0, "mkstemps");
    FILE *f = fdopen(fd, "w");
    cr_assert_not_null(f);
    for (const char *p = yaml; *p;) {
        if (strncmp(p, "@M@", 3) == 0) {
            fputs(modules_dir(), f);
            p += 3;
        } else {
            fputc(*p++, f);
        }
    }
    cr_assert_eq(fclose(f), 0);
}

static zg_config *load(const char *yaml)
{
    write_conf(yaml);
    err[0] = '\0';
    zg_config *cfg = zg_conf_load(path, NULL, err, sizeof(err));
    unlink(path);
    return cfg;
}

static zg_config *load_ok(const char *yaml)
{
    zg_config *cfg = load(yaml);
    cr_assert_not_null(cfg, "config refused: %s", err);
    return cfg;
}

/* The load fails with "PATH:line:col: " followed by a message containing msg. */
static void expect_error(const char *yaml, int line, int col, const char *msg)
{
    zg_config *cfg = load(yaml);
    if (cfg)
        zg_conf_free(cfg);
    cr_assert_null(cfg, "config accepted, expected an error with \"%s\"", msg);
    char want[256];
    snprintf(want, sizeof(want), "%s:%d:%d: ", path, line, col);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "error \"%s\" does not start with \"%s\"", err,
              want);
    cr_assert(strstr(err + strlen(want), msg) != NULL, "error \"%s\" lacks \"%s\"", err, msg);
}

static int port_of(const zg_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

/* echo's per-server conf starts with its idle timeout in ms */
static uint64_t echo_idle(const zg_server *s)
{
    return *(const uint64_t *)s->module_conf;
}

#define HEAD                                                                                       \
    "modules_path: @M@\n"                                                                          \
    "load_modules: [echo]\n"                                                                       \
    "servers:\n"

/* ---- good configs ---- */

Test(conf_good, minimal_and_defaults)
{
    zg_config *cfg = load_ok("modules_path: @M@\n"
                             "load_modules: echo\n"
                             "servers:\n"
                             "  - listen: 127.0.0.1:8080\n"
                             "    module: echo\n");
    cr_assert_str_eq(cfg->modules_path, modules_dir());
    cr_assert_eq(cfg->load_modules.n, 1);
    cr_assert_str_eq(cfg->load_modules.items[0], "echo");
    cr_assert_eq(cfg->nmodules, 1);
    cr_assert_str_eq(cfg->modules[0]->desc->name, "echo");
    /* defaults */
    cr_assert_eq(cfg->worker_processes, 0);
    cr_assert_null(cfg->cpus);
    cr_assert_eq(cfg->worker_connections, 16384);
    cr_assert_eq(cfg->worker_shutdown_timeout, 30000);
    cr_assert_str_eq(cfg->error_log_path, "stderr");
    cr_assert_eq(cfg->error_log_level, ZERG_LOG_INFO);
    cr_assert_str_eq(cfg->pid, "/run/zerg.pid");
    cr_assert_eq(cfg->uring.entries, 4096);
    cr_assert_eq(cfg->uring.cq_entries, 0);
    cr_assert_eq(cfg->uring.buffers, 4096);
    cr_assert_eq(cfg->uring.buffer_size, 16384);
    cr_assert_eq(cfg->uring.send_zc_threshold, 16384);
    cr_assert_eq(cfg->uring.output_high, 256 * 1024);
    cr_assert_eq(cfg->uring.output_low, 64 * 1024);
    cr_assert_eq(cfg->uring.sqpoll, 0);
    cr_assert_eq(cfg->uring.sqpoll_cpu, -1);
    cr_assert_str_eq(cfg->uring.incremental, "auto");
    cr_assert_eq(cfg->uring.fixed_files, 1);
    /* the server */
    cr_assert_eq(cfg->nservers, 1);
    zg_server *s = &cfg->servers[0];
    cr_assert_eq(s->index, 0);
    cr_assert_eq(s->naddrs, 1);
    cr_assert_str_eq(s->addrs[0].text, "127.0.0.1:8080");
    cr_assert_eq(s->addrs[0].ss.ss_family, AF_INET);
    cr_assert_eq(s->addrs[0].len, sizeof(struct sockaddr_in));
    cr_assert_eq(port_of(&s->addrs[0]), 8080);
    cr_assert_eq(((struct sockaddr_in *)&s->addrs[0].ss)->sin_addr.s_addr, htonl(0x7f000001));
    cr_assert_str_eq(s->module_name, "echo");
    cr_assert_eq(s->module, cfg->modules[0]);
    cr_assert_eq(s->backlog, 511);
    cr_assert_eq(s->want_peer, 0);
    cr_assert_not_null(s->module_conf);
    cr_assert_eq(echo_idle(s), 60000, "echo's conf_init default");
    zg_conf_free(cfg);
}

Test(conf_good, full_every_core_key)
{
    zg_config *cfg = load_ok("worker_processes: 3\n"
                             "worker_cpu_affinity: [0, 1, 7]\n"
                             "worker_connections: 1024\n"
                             "worker_rlimit_nofile: 4096\n"
                             "worker_shutdown_timeout: 10m\n"
                             "user: nobody\n"
                             "group: nogroup\n"
                             "pid: /tmp/zerg-test.pid\n"
                             "error_log:\n"
                             "  path: /tmp/zerg-test.log\n"
                             "  level: debug\n"
                             "modules_path: @M@\n"
                             "load_modules:\n"
                             "  - echo\n"
                             "uring:\n"
                             "  entries: 256\n"
                             "  cq_entries: 1024\n"
                             "  buffers: 64\n"
                             "  buffer_size: 16k\n"
                             "  sqpoll: true\n"
                             "  sqpoll_cpu: 1\n"
                             "  send_zc_threshold: 1m\n"
                             "  output_high: 1m\n"
                             "  output_low: 16k\n"
                             "  incremental: false\n"
                             "  fixed_files: off\n"
                             "servers:\n"
                             "  - listen: [127.0.0.1:8080, \"[::1]:8081\"]\n"
                             "    module: echo\n"
                             "    backlog: 128\n"
                             "    echo:\n"
                             "      idle_timeout: 500ms\n"
                             "  - listen: \"*:9090\"\n"
                             "    module: echo\n"
                             "    echo:\n"
                             "      idle_timeout: 60s\n");
    cr_assert_eq(cfg->worker_processes, 3);
    cr_assert_eq(zg_conf_workers(cfg), 3);
    cr_assert_eq(cfg->ncpus, 3);
    cr_assert_eq(cfg->cpus[0], 0);
    cr_assert_eq(cfg->cpus[1], 1);
    cr_assert_eq(cfg->cpus[2], 7);
    cr_assert_eq(zg_conf_worker_cpu(cfg, 2), 7);
    cr_assert_eq(zg_conf_worker_cpu(cfg, 4), 1, "the list repeats for more workers");
    cr_assert_eq(cfg->worker_connections, 1024);
    cr_assert_eq(cfg->worker_rlimit_nofile, 4096);
    cr_assert_eq(cfg->worker_shutdown_timeout, 600000);
    cr_assert_str_eq(cfg->user, "nobody");
    cr_assert_str_eq(cfg->group, "nogroup");
    cr_assert_str_eq(cfg->pid, "/tmp/zerg-test.pid");
    cr_assert_str_eq(cfg->error_log_path, "/tmp/zerg-test.log");
    cr_assert_eq(cfg->error_log_level, ZERG_LOG_DEBUG);
    cr_assert_eq(cfg->uring.entries, 256);
    cr_assert_eq(cfg->uring.cq_entries, 1024);
    cr_assert_eq(cfg->uring.buffers, 64);
    cr_assert_eq(cfg->uring.buffer_size, 16384);
    cr_assert_eq(cfg->uring.sqpoll, 1);
    cr_assert_eq(cfg->uring.sqpoll_cpu, 1);
    cr_assert_eq(cfg->uring.send_zc_threshold, 1 << 20);
    cr_assert_eq(cfg->uring.output_high, 1 << 20);
    cr_assert_eq(cfg->uring.output_low, 16384);
    cr_assert_str_eq(cfg->uring.incremental, "false");
    cr_assert_eq(cfg->uring.fixed_files, 0);

    cr_assert_eq(cfg->nservers, 2);
    zg_server *s0 = &cfg->servers[0], *s1 = &cfg->servers[1];
    cr_assert_eq(s0->naddrs, 2);
    cr_assert_str_eq(s0->addrs[1].text, "[::1]:8081");
    cr_assert_eq(s0->addrs[1].ss.ss_family, AF_INET6);
    cr_assert_eq(s0->addrs[1].len, sizeof(struct sockaddr_in6));
    cr_assert_eq(port_of(&s0->addrs[1]), 8081);
    cr_assert(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&s0->addrs[1].ss)->sin6_addr));
    cr_assert_eq(s0->backlog, 128);
    cr_assert_eq(echo_idle(s0), 500);
    cr_assert_eq(s1->index, 1);
    cr_assert_eq(s1->naddrs, 1);
    cr_assert_eq(((struct sockaddr_in *)&s1->addrs[0].ss)->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_assert_eq(port_of(&s1->addrs[0]), 9090);
    cr_assert_eq(s1->backlog, 511);
    cr_assert_eq(echo_idle(s1), 60000);
    cr_assert_eq(s0->module, s1->module, "one loaded copy serves both blocks");
    cr_assert_neq(s0->module_conf, s1->module_conf);
    zg_conf_free(cfg);
}

Test(conf_good, units)
{
    zg_config *cfg = load_ok(HEAD "  - listen: 127.0.0.1:8080\n"
                                  "    module: echo\n"
                                  "    echo:\n"
                                  "      idle_timeout: 2h\n"
                                  "worker_shutdown_timeout: 1d\n"
                                  "uring:\n"
                                  "  buffer_size: 1m\n"
                                  "  output_high: 2G\n"
                                  "  output_low: 512kb\n"
                                  "  send_zc_threshold: 0\n");
    cr_assert_eq(echo_idle(&cfg->servers[0]), 2 * 3600 * 1000);
    cr_assert_eq(cfg->worker_shutdown_timeout, 86400000);
    cr_assert_eq(cfg->uring.buffer_size, 1 << 20);
    cr_assert_eq(cfg->uring.output_high, 2ULL << 30);
    cr_assert_eq(cfg->uring.output_low, 512 * 1024);
    cr_assert_eq(cfg->uring.send_zc_threshold, 0);
    zg_conf_free(cfg);
}

Test(conf_good, worker_processes_auto)
{
    zg_config *cfg = load_ok("worker_processes: auto\n"
                             "worker_cpu_affinity: auto\n" HEAD "  - listen: 127.0.0.1:8080\n"
                             "    module: echo\n");
    cr_assert_eq(cfg->worker_processes, 0);
    cr_assert_null(cfg->cpus);
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    cr_assert_eq(zg_conf_workers(cfg), CPU_COUNT(&set));
    int first = 0;
    while (!CPU_ISSET(first, &set))
        first++;
    cr_assert_eq(zg_conf_worker_cpu(cfg, 0), first);
    zg_conf_free(cfg);
}

Test(conf_good, error_log_scalar)
{
    zg_config *cfg =
        load_ok("error_log: /var/log/zerg/error.log\n" HEAD "  - listen: 127.0.0.1:8080\n"
                "    module: echo\n");
    cr_assert_str_eq(cfg->error_log_path, "/var/log/zerg/error.log");
    cr_assert_eq(cfg->error_log_level, ZERG_LOG_INFO);
    zg_conf_free(cfg);
}

Test(conf_good, error_log_map_level_only)
{
    zg_config *cfg = load_ok("error_log:\n"
                             "  level: warn\n" HEAD "  - listen: 127.0.0.1:8080\n"
                             "    module: echo\n");
    cr_assert_str_eq(cfg->error_log_path, "stderr");
    cr_assert_eq(cfg->error_log_level, ZERG_LOG_WARN);
    zg_conf_free(cfg);
}

Test(conf_good, relative_paths_use_prefix)
{
    write_conf("pid: run/zerg.pid\n"
               "error_log: logs/error.log\n" HEAD "  - listen: 127.0.0.1:8080\n"
               "    module: echo\n");
    zg_config *cfg = zg_conf_load(path, "/opt/zerg", err, sizeof(err));
    unlink(path);
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_str_eq(cfg->pid, "/opt/zerg/run/zerg.pid");
    cr_assert_str_eq(cfg->error_log_path, "/opt/zerg/logs/error.log");
    cr_assert_str_eq(cfg->file, path);
    cr_assert_str_eq(cfg->prefix, "/opt/zerg");
    zg_conf_free(cfg);
}

/* ---- bad configs: every one names file:line:col ---- */

Test(conf_bad, wrong_type_sequence_for_int)
{
    expect_error("worker_connections: [1, 2]\n", 1, 21, "expected an integer, got a sequence");
}

Test(conf_bad, wrong_type_mapping_for_string)
{
    expect_error("user: {name: nobody}\n", 1, 7, "expected a string, got a mapping");
}

Test(conf_bad, unknown_top_level_key)
{
    expect_error("worker_processes: 2\n"
                 "bogus: 1\n",
                 2, 1,
                 "unknown key \"bogus\" (expected one of: worker_processes, "
                 "worker_cpu_affinity, worker_connections, max_handshakes, listen_sockets, "
                 "worker_rlimit_nofile, "
                 "worker_shutdown_timeout, worker_memory_release, user, group, pid, error_log, "
                 "modules_path, "
                 "load_modules, uring, servers)");
}

Test(conf_bad, unknown_uring_key)
{
    expect_error(
        "uring:\n"
        "  entries: 64\n"
        "  nope: 1\n",
        3, 3,
        "unknown key \"nope\" (expected one of: entries, cq_entries, buffers, "
        "buffer_size, sqpoll, sqpoll_cpu, send_zc_threshold, output_high, output_low, "
        "incremental, fixed_files, fixed_outbound, send_zc_loopback, batch_wait_usec, batch_size)");
}

Test(conf_bad, unknown_error_log_key)
{
    expect_error("error_log:\n"
                 "  file: /tmp/x.log\n",
                 2, 3, "unknown key \"file\" (expected one of: path, level)");
}

Test(conf_bad, bad_size)
{
    expect_error("uring:\n"
                 "  buffer_size: 16q\n",
                 2, 16, "buffer_size: bad size \"16q\": expected a number with k, m or g");
}

Test(conf_bad, size_out_of_range)
{
    expect_error("uring:\n"
                 "  buffer_size: 32m\n",
                 2, 16, "buffer_size: 32m is out of range (512..16777216)");
}

Test(conf_bad, bad_duration)
{
    expect_error("worker_shutdown_timeout: 5x\n", 1, 26,
                 "worker_shutdown_timeout: bad duration \"5x\": expected a number with ms, s, m, "
                 "h or d");
}

Test(conf_bad, negative_duration)
{
    expect_error("worker_shutdown_timeout: -1s\n", 1, 26,
                 "worker_shutdown_timeout: bad duration \"-1s\"");
}

Test(conf_bad, int_out_of_range)
{
    expect_error("uring:\n"
                 "  entries: 4\n",
                 2, 12, "entries: 4 is out of range (8..32768)");
}

Test(conf_bad, int_not_a_number)
{
    expect_error("worker_connections: 12abc\n", 1, 21, "worker_connections: bad integer \"12abc\"");
}

Test(conf_bad, bad_bool)
{
    expect_error("uring:\n"
                 "  sqpoll: maybe\n",
                 2, 11, "sqpoll: bad boolean \"maybe\": expected true or false");
}

Test(conf_bad, bad_incremental)
{
    expect_error("uring:\n"
                 "  incremental: sometimes\n",
                 2, 16, "incremental: expected auto, true or false");
}

Test(conf_bad, bad_address)
{
    expect_error(HEAD "  - listen: localhost\n"
                      "    module: echo\n",
                 4, 13, "bad address \"localhost\": expected \"host:port\"");
}

Test(conf_bad, bad_port)
{
    expect_error(HEAD "  - listen: 127.0.0.1:70000\n"
                      "    module: echo\n",
                 4, 13, "bad address \"127.0.0.1:70000\": bad port \"70000\" (1-65535)");
}

Test(conf_bad, port_zero_in_list)
{
    expect_error(HEAD "  - listen: [127.0.0.1:8080, \"[::1]:0\"]\n"
                      "    module: echo\n",
                 4, 30, "bad address \"[::1]:0\": bad port \"0\" (1-65535)");
}

Test(conf_bad, bad_ipv6_address)
{
    expect_error(HEAD "  - listen: \"[::1]8080\"\n"
                      "    module: echo\n",
                 4, 13, "bad address \"[::1]8080\": expected \"[IPv6]:port\"");
}

Test(conf_bad, empty_listen_list)
{
    expect_error(HEAD "  - listen: []\n"
                      "    module: echo\n",
                 4, 13, "listen: expected at least one address");
}

Test(conf_bad, unknown_module_in_server)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: http\n",
                 5, 13, "unknown module \"http\" (not in load_modules)");
}

/* A value echoed in an error is escaped: the message stays one line (found
 * by tests/fuzz/fuzz_conf: a module name folded over several lines). */
Test(conf_bad, control_bytes_in_a_value_are_escaped)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: \"ht\\ntp\\t\\x01\"\n",
                 5, 13, "unknown module \"ht\\ntp\\t\\x01\" (not in load_modules)");
    cr_assert_null(strchr(err, '\n'), "%s", err);
}

Test(conf_bad, module_not_a_name)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: [echo]\n",
                 5, 13, "module: expected a module name");
}

Test(conf_bad, duplicate_listen_same_server)
{
    expect_error(HEAD "  - listen: [127.0.0.1:8080, 127.0.0.1:8080]\n"
                      "    module: echo\n",
                 4, 30, "duplicate listen address \"127.0.0.1:8080\"");
}

Test(conf_bad, duplicate_listen_across_servers)
{
    /* "*:8080" and "0.0.0.0:8080" are the same socket address */
    expect_error(HEAD "  - listen: 0.0.0.0:8080\n"
                      "    module: echo\n"
                      "  - listen: [127.0.0.1:9090, \"*:8080\"]\n"
                      "    module: echo\n",
                 6, 30,
                 "listen address \"*:8080\" is also in servers[0]: only blocks of one module "
                 "with virtual hosts (http) may share one");
}

Test(conf_bad, duplicate_listen_names_the_right_server)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "  - listen: 127.0.0.1:9090\n"
                      "    module: echo\n"
                      "  - listen: 127.0.0.1:9090\n"
                      "    module: echo\n",
                 8, 13,
                 "listen address \"127.0.0.1:9090\" is also in servers[1]: only blocks of one "
                 "module with virtual hosts (http) may share one");
}

Test(conf_good, http_blocks_share_an_address)
{
    /* name-based virtual hosts: the default_server block owns the address,
     * else the first block listing it */
    zg_config *cfg = load_ok("modules_path: @M@\n"
                             "load_modules: [http]\n"
                             "servers:\n"
                             "  - listen: [127.0.0.1:8080, 127.0.0.1:8081]\n"
                             "    module: http\n"
                             "  - listen: 127.0.0.1:8080\n"
                             "    module: http\n"
                             "    default_server: true\n"
                             "  - listen: 127.0.0.1:8081\n"
                             "    module: http\n");
    cr_assert_eq(cfg->nservers, 3);
    cr_assert_eq(cfg->servers[1].default_server, 1);
    cr_assert_eq(zg_conf_addr_owner(cfg, &cfg->servers[0], 0), &cfg->servers[1]);
    cr_assert_eq(zg_conf_addr_owner(cfg, &cfg->servers[1], 0), &cfg->servers[1]);
    cr_assert_eq(zg_conf_addr_owner(cfg, &cfg->servers[0], 1), &cfg->servers[0]);
    cr_assert_eq(zg_conf_addr_owner(cfg, &cfg->servers[2], 0), &cfg->servers[0]);
    zg_conf_free(cfg);
}

Test(conf_bad, two_default_servers_for_an_address)
{
    expect_error("modules_path: @M@\n"
                 "load_modules: [http]\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: http\n"
                 "    default_server: yes\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: http\n"
                 "    default_server: yes\n",
                 7, 13,
                 "listen address \"127.0.0.1:8080\": servers[0] is its default_server already");
}

Test(conf_bad, blocks_of_one_address_agree_on_proxy_protocol)
{
    expect_error("modules_path: @M@\n"
                 "load_modules: [http]\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: http\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: http\n"
                 "    proxy_protocol: on\n",
                 6, 13,
                 "listen address \"127.0.0.1:8080\": servers[0] shares it with proxy_protocol off");
}

Test(conf_bad, proxy_protocol_timeout_range)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "    proxy_protocol_timeout: 2h\n",
                 6, 29, "proxy_protocol_timeout");
}

Test(conf_bad, lingering_close_value)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "    lingering_close: sometimes\n",
                 6, 22, "lingering_close: expected off, on or always");
}

Test(conf, lingering_keys)
{
    zg_config *cfg = load_ok(HEAD "  - listen: 127.0.0.1:8080\n"
                                  "    module: echo\n"
                                  "    lingering_close: always\n"
                                  "    lingering_time: 2s\n"
                                  "    lingering_timeout: 250ms\n"
                                  "  - listen: 127.0.0.1:8081\n"
                                  "    module: echo\n");
    cr_assert_eq(cfg->servers[0].lingering_close, ZG_LINGER_ALWAYS);
    cr_assert_eq(cfg->servers[0].lingering_time, 2000);
    cr_assert_eq(cfg->servers[0].lingering_timeout, 250);
    cr_assert_eq(cfg->servers[1].lingering_close, ZG_LINGER_ON, "nginx's defaults");
    cr_assert_eq(cfg->servers[1].lingering_time, 30000);
    cr_assert_eq(cfg->servers[1].lingering_timeout, 5000);
    zg_conf_free(cfg);
}

Test(conf_bad, modules_cannot_share_an_address)
{
    expect_error("modules_path: @M@\n"
                 "load_modules: [http, echo]\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: http\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: echo\n",
                 6, 13, "is also in servers[0]: only blocks of one module with virtual hosts");
}

Test(conf_bad, http_server_name_pattern)
{
    expect_error("modules_path: @M@\n"
                 "load_modules: [http]\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: http\n"
                 "    http:\n"
                 "      server_name: [example.com, \"w*w.example.com\"]\n",
                 7, 7, "server_name \"w*w.example.com\": expected a host name");
}

Test(conf_good, http_small_header_buffers_alone)
{
    /* max_uri_length left unset follows a large_client_header_buffers
     * below its 8k default instead of refusing the config */
    zg_config *cfg = load_ok("modules_path: @M@\n"
                             "load_modules: [http]\n"
                             "servers:\n"
                             "  - listen: 127.0.0.1:8080\n"
                             "    module: http\n"
                             "    http: { large_client_header_buffers: 2k }\n");
    zg_conf_free(cfg);
}

Test(conf_bad, http_max_uri_length_over_header_buffers)
{
    expect_error("modules_path: @M@\n"
                 "load_modules: [http]\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: http\n"
                 "    http: { large_client_header_buffers: 2k, max_uri_length: 4k }\n",
                 6, 11, "max_uri_length must not exceed large_client_header_buffers");
}

Test(conf_bad, module_section_missing_points_at_the_server)
{
    /* conf_done without its section reports at the server block (it used
     * to log the reason and leave a bare "module proxy: invalid") */
    expect_error("modules_path: @M@\n"
                 "load_modules: [proxy]\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: proxy\n",
                 4, 5, "proxy: upstream with at least one server is required");
}

Test(conf_bad, missing_listen)
{
    expect_error(HEAD "  - module: echo\n", 4, 5, "server: missing key \"listen\"");
}

Test(conf_bad, missing_module)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    backlog: 10\n",
                 4, 5, "server: missing key \"module\"");
}

Test(conf_bad, missing_servers)
{
    expect_error("worker_processes: 2\n", 1, 1, "missing key \"servers\": nothing to serve");
}

Test(conf_bad, servers_not_a_list)
{
    expect_error("modules_path: @M@\n"
                 "load_modules: echo\n"
                 "servers: {listen: 127.0.0.1:8080}\n",
                 3, 10, "servers: expected a list of server blocks");
}

Test(conf_bad, server_entry_not_a_mapping)
{
    expect_error(HEAD "  - 127.0.0.1:8080\n", 4, 5,
                 "servers: each entry must be a mapping (listen, module, ...)");
}

Test(conf_bad, unknown_server_key)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "    root: /srv\n",
                 6, 5,
                 "unknown key \"root\" (expected one of: module, listen, backlog, default_server, "
                 "proxy_protocol, proxy_protocol_timeout, unix_mode, max_connections_per_client, "
                 "lingering_close, lingering_time, lingering_timeout, tls, server_name, echo)");
}

Test(conf_bad, backlog_out_of_range)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "    backlog: 0\n",
                 6, 14, "backlog: 0 is out of range (1..65535)");
}

Test(conf_bad, buffers_not_power_of_two)
{
    expect_error("uring:\n"
                 "  buffers: 100\n",
                 2, 3, "uring.buffers: 100 is not a power of two");
}

Test(conf_bad, output_low_above_high)
{
    expect_error("uring:\n"
                 "  output_high: 64k\n"
                 "  output_low: 128k\n",
                 2, 3, "uring.output_low is above uring.output_high");
}

Test(conf_bad, duplicate_key_top_level)
{
    expect_error("worker_connections: 100\n"
                 "worker_connections: 200\n",
                 2, 1, "duplicate key \"worker_connections\"");
}

Test(conf_bad, duplicate_key_in_uring)
{
    expect_error("uring:\n"
                 "  entries: 64\n"
                 "  buffers: 64\n"
                 "  entries: 128\n",
                 4, 3, "duplicate key \"entries\"");
}

Test(conf_bad, duplicate_key_in_server)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "    listen: 127.0.0.1:8081\n",
                 6, 5, "duplicate key \"listen\"");
}

Test(conf_bad, yaml_syntax_error)
{
    expect_error("worker_processes: 2\n"
                 "user: a: b\n",
                 2, 8, "mapping values are not allowed in this context");
}

Test(conf_bad, yaml_unclosed_flow_sequence)
{
    expect_error("worker_processes: 2\n"
                 "worker_cpu_affinity: [0, 1\n"
                 "user: nobody\n",
                 3, 5, "did not find expected ',' or ']' while parsing a flow sequence");
}

Test(conf_bad, key_not_a_string)
{
    expect_error("? [a, b]\n"
                 ": 1\n",
                 1, 3, "keys must be plain strings");
}

Test(conf_bad, empty_file)
{
    zg_config *cfg = load("");
    cr_assert_null(cfg);
    char want[128];
    snprintf(want, sizeof(want), "%s: empty configuration", path);
    cr_assert_str_eq(err, want);
}

Test(conf_bad, comments_only)
{
    zg_config *cfg = load("# nothing here\n");
    cr_assert_null(cfg);
    cr_assert(strstr(err, ": empty configuration") != NULL, "%s", err);
}

Test(conf_bad, missing_file)
{
    zg_config *cfg = zg_conf_load("/nonexistent/zerg.yaml", NULL, err, sizeof(err));
    cr_assert_null(cfg);
    cr_assert_str_eq(err, "/nonexistent/zerg.yaml: cannot open: No such file or directory");
}

Test(conf_bad, top_level_sequence)
{
    expect_error("- worker_processes: 2\n"
                 "- user: nobody\n",
                 1, 1, "expected a mapping of settings at the top level");
}

Test(conf_bad, top_level_scalar)
{
    expect_error("\n"
                 "hello\n",
                 2, 1, "expected a mapping of settings at the top level");
}

Test(conf_bad, worker_processes_word_zero_or_too_many)
{
    const char *bad[] = {"worker_processes: lots\n", "worker_processes: 0\n",
                         "worker_processes: 1025\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 1, 19, "worker_processes: expected auto or a number 1..1024");
}

Test(conf_bad, affinity_not_a_list)
{
    expect_error("worker_cpu_affinity: 3\n", 1, 22,
                 "worker_cpu_affinity: expected auto or a list of CPU ids");
}

Test(conf_bad, affinity_cpu_out_of_range)
{
    expect_error("worker_cpu_affinity: [0, 5000]\n", 1, 26, "5000 is out of range (0..4095)");
}

Test(conf_bad, error_log_bad_level)
{
    expect_error("error_log:\n"
                 "  path: /tmp/x.log\n"
                 "  level: loud\n",
                 3, 10, "level: expected error, warn, notice, info or debug");
}

Test(conf_bad, empty_pid_path)
{
    expect_error("pid: \"\"\n", 1, 6, "expected a path");
}

Test(conf_bad, module_section_unknown_key)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "    echo:\n"
                      "      bogus: 1\n",
                 7, 7, "unknown key \"bogus\" (expected one of: idle_timeout)");
}

Test(conf_bad, module_section_bad_value)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "    echo:\n"
                      "      idle_timeout: forever\n",
                 7, 21, "idle_timeout: bad duration \"forever\"");
}

Test(conf_bad, module_section_not_a_mapping)
{
    expect_error(HEAD "  - listen: 127.0.0.1:8080\n"
                      "    module: echo\n"
                      "    echo: on\n",
                 6, 11, "expected a mapping of keys");
}

Test(conf_bad, load_modules_missing_file)
{
    char msg[4400];
    snprintf(msg, sizeof(msg), "module nosuch: cannot open %s/nosuch.so: No such file or directory",
             modules_dir());
    expect_error("modules_path: @M@\n"
                 "load_modules: [echo, nosuch]\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: echo\n",
                 2, 22, msg);
}

Test(conf_bad, load_modules_twice)
{
    expect_error("modules_path: @M@\n"
                 "load_modules: [echo, echo]\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: echo\n",
                 2, 22, "module \"echo\" is loaded twice");
}

Test(conf_bad, load_modules_bad_name)
{
    expect_error("modules_path: @M@\n"
                 "load_modules:\n"
                 "  - ../echo\n"
                 "servers:\n"
                 "  - listen: 127.0.0.1:8080\n"
                 "    module: echo\n",
                 3, 5, "bad module name \"../echo\"");
}

Test(conf_bad, load_modules_not_strings)
{
    expect_error("load_modules: [[echo]]\n", 1, 16, "expected a string, got a sequence");
}

Test(conf_bad, first_error_wins)
{
    /* both keys are bad: the first one in the file is reported */
    expect_error("worker_connections: 1\n"
                 "worker_processes: none\n",
                 1, 21, "1 is out of range (16..1048576)");
}
