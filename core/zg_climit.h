/* zg_climit.h - connections per client address, counted over all the
 * workers in shared memory: the server key max_connections_per_client. */
#ifndef ZG_CLIMIT_H
#define ZG_CLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef struct zg_climit zg_climit;

/* Bytes of shared memory for a table holding up to capacity clients. */
size_t zg_climit_size(uint32_t capacity);
void zg_climit_init(zg_climit *t, uint32_t capacity);
/* A connection from sa opens (self: the caller's pid, for the lock). Returns
 * 1 when it is counted, 0 when sa has max connections open already (not
 * counted: close it), -1 when it is not counted (not an IP address). */
int zg_climit_enter(zg_climit *t, const struct sockaddr *sa, uint32_t max, pid_t self);
/* A connection zg_climit_enter counted has closed. */
void zg_climit_leave(zg_climit *t, const struct sockaddr *sa, pid_t self);

#endif
