/* modules/http/http_autoindex.h - directory listings (http_autoindex.c). */
#ifndef ZERG_HTTP_AUTOINDEX_H
#define ZERG_HTTP_AUTOINDEX_H

#include "http.h"

/* A listing of the open directory dfd (closed here) for
 * the request path; returns like http_serve_static. */
int http_autoindex(http_conn *hc, int dfd, const char *path, size_t plen);

/* Its directive rows (composed by http_conf.c). */
extern const zerg_directive http_autoindex_location_directives[];

#endif
