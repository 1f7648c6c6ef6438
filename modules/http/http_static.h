/* modules/http/http_static.h - static files: serving a location's files
 * (http_static.c) and its directives (http_static_conf.c). */
#ifndef ZERG_HTTP_STATIC_H
#define ZERG_HTTP_STATIC_H

#include "http.h"

/* Returns 0 when answered synchronously, 1 when the answer goes on
 * asynchronously (http_request_done follows). */
int http_serve_static(http_conn *hc, const http_location *loc, const char *path, size_t plen);
void http_file_conn_closed(http_conn *hc);
/* Frees what the static handler keeps for reuse (worker exit). */
void http_static_worker_exit(void);
/* Opens each static location's root, per worker (a missing one answers
 * 404). */
int http_static_server_init(http_srv *s);

/* Its directive rows (composed by http_conf.c). */
extern const zerg_directive http_static_server_directives[];
extern const zerg_directive http_static_location_directives[];

#endif
