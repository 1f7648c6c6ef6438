/* zg_server_name.c - server_name patterns matched against a host name, as
 * nginx's server_name: exact, leading and trailing wildcards (see
 * zg_server_name.h). Shared by SNI (zg_tls_sni.c) and the http module's
 * Host (through api->server_names_match). */
#include "zg_server_name.h"

#include <string.h>

/* How well pattern p matches host h; the ranks of zg_server_names_match. */
static size_t name_rank(const char *p, const char *h, size_t hn)
{
    size_t pn = strlen(p);
    if (pn == hn && memcmp(p, h, hn) == 0)
        return 3u << 16;
    if (p[0] == '*' || p[0] == '.') {
        const char *suffix = p[0] == '*' ? p + 1 : p; /* ".example.com" */
        size_t sn = strlen(suffix);
        if (hn > sn && memcmp(h + hn - sn, suffix, sn) == 0)
            return (2u << 16) + pn;
        if (p[0] == '.' && hn == sn - 1 && memcmp(h, suffix + 1, hn) == 0)
            return (2u << 16) + pn;
    } else if (pn > 1 && p[pn - 1] == '*') {
        if (hn > pn - 1 && memcmp(h, p, pn - 1) == 0)
            return (1u << 16) + pn;
    }
    return 0;
}

size_t zg_server_names_match(const zerg_str_list *names, const char *host, size_t hn)
{
    size_t best = 0;
    for (size_t k = 0; k < names->n; k++) {
        size_t rank = name_rank(names->items[k], host, hn);
        best = rank > best ? rank : best;
    }
    return best;
}

void zg_server_names_lower(zerg_str_list *names)
{
    for (size_t i = 0; i < names->n; i++)
        for (char *p = names->items[i]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
}
