/* modules/http/llhttp_api.c - compiles the system's llhttp api.c source into the
 * module when no libllhttp is installed (the source is never copied here). */
#include "llhttp_wrap.h"
#include LLHTTP_SRC_API
