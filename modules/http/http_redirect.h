/* modules/http/http_redirect.h - return answers: the return directive and
 * redirects whose location has variables (http_redirect.c). */
#ifndef ZERG_HTTP_REDIRECT_H
#define ZERG_HTTP_REDIRECT_H

#include "http.h"

/* A return whose location has variables. */
void http_send_redirect(http_conn *hc, const http_location *loc, const char *path, size_t plen);

/* Its directive rows (composed by http_conf.c). */
extern const zerg_directive http_redirect_location_directives[];

#endif
