/* modules/http/llhttp_http.c - compiles the system's llhttp http.c source into the
 * module when no libllhttp is installed (the source is never copied here). */
#include "llhttp_wrap.h"
#include LLHTTP_SRC_HTTP
