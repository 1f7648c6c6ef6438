/* modules/http/http_log.h - the access log (http_log.c). */
#ifndef ZERG_HTTP_LOG_H
#define ZERG_HTTP_LOG_H

#include "http.h"

int http_log_open(http_srv *s);
void http_log_request(http_conn *hc);
void http_log_free_all(void);

/* Its directive rows (composed by http_conf.c). */
extern const zerg_directive http_log_server_directives[];

#endif
