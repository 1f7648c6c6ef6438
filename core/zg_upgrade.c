/* zg_upgrade.c - starting the new binary of a binary upgrade: the listening
 * sockets survive execve and their numbers travel in the environment; a
 * close-on-exec pipe tells the old master whether execve worked. */
#define _GNU_SOURCE
#include "zg_upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int zg_upgrade_self_path(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0 || (size_t)n >= len - 1)
        return -1;
    buf[n] = '\0';
    static const char deleted[] = " (deleted)";
    size_t dl = sizeof(deleted) - 1;
    if ((size_t)n > dl && strcmp(buf + n - dl, deleted) == 0)
        buf[n - dl] = '\0';
    return 0;
}

/* environ without any ZG_LISTEN_ENV of ours, plus the new one; malloc'd. */
static char **child_env(const char *listen_var)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0, plen = strlen(ZG_LISTEN_ENV);
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], ZG_LISTEN_ENV, plen) != 0 || environ[i][plen] != '=')
            env[k++] = environ[i];
    env[k] = (char *)listen_var;
    return env;
}

pid_t zg_upgrade_exec(const char *exe, char *const argv[], const zg_listen_set *set, char *err,
                      size_t errlen)
{
    static char var[65536];
    int plen = snprintf(var, sizeof(var), "%s=", ZG_LISTEN_ENV);
    if (zg_listen_export(set, var + plen, sizeof(var) - (size_t)plen) < 0) {
        snprintf(err, errlen, "too many listening sockets to hand over");
        return -1;
    }
    char **env = child_env(var);
    int pipefd[2];
    if (!env || pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "%s", strerror(env ? errno : ENOMEM));
        free(env);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        int e = 0;
        if (zg_listen_keep_on_exec(set) < 0)
            e = errno;
        else
            execve(exe, argv, env); /* the signal mask stays: the new master blocks the same */
        e = e ? e : errno;
        if (write(pipefd[1], &e, sizeof(e)) < 0)
            _exit(126);
        _exit(127);
    }
    int e = pid < 0 ? errno : 0;
    free(env);
    close(pipefd[1]);
    if (pid > 0) { /* EOF: execve closed the pipe; an int: it failed */
        ssize_t r;
        while ((r = read(pipefd[0], &e, sizeof(e))) < 0 && errno == EINTR)
            ;
        if (r == (ssize_t)sizeof(e))
            waitpid(pid, NULL, 0);
        else
            e = 0;
    }
    close(pipefd[0]);
    if (pid < 0 || e) {
        snprintf(err, errlen, "%s %s: %s", pid < 0 ? "fork for" : "execve", exe, strerror(e));
        return -1;
    }
    return pid;
}
