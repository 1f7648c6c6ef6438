/* zg_log.h - the error log: one line per event, level-filtered, reopenable. */
#ifndef ZG_LOG_H
#define ZG_LOG_H

#include <stdarg.h>
#include <zerg/module.h>

/* Open (or reopen) the log at path ("stderr" or a file, O_APPEND). */
int zg_log_open(const char *path, int level);
void zg_log_reopen(void);
/* The tag printed on every line: "master", "worker 3". */
void zg_log_set_role(const char *role);
void zg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void zg_vlog(int level, const char *fmt, va_list ap);
int zg_log_level_parse(const char *s);
extern int zg_log_level;

#define zg_log_error(...)  zg_log(ZERG_LOG_ERROR, __VA_ARGS__)
#define zg_log_warn(...)   zg_log(ZERG_LOG_WARN, __VA_ARGS__)
#define zg_log_notice(...) zg_log(ZERG_LOG_NOTICE, __VA_ARGS__)
#define zg_log_info(...)   zg_log(ZERG_LOG_INFO, __VA_ARGS__)
#define zg_log_debug(...)                                                                          \
    do {                                                                                           \
        if (zg_log_level >= ZERG_LOG_DEBUG)                                                        \
            zg_log(ZERG_LOG_DEBUG, __VA_ARGS__);                                                   \
    } while (0)

#endif
