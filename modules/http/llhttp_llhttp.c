/* modules/http/llhttp_llhttp.c - compiles the system's llhttp llhttp.c source into the
 * module when no libllhttp is installed (the source is never copied here). */
#include "llhttp_wrap.h"
#include LLHTTP_SRC_LLHTTP
