/* zg_conf_include.h - the server blocks of a configuration: those listed
 * under servers, and those of the files its include items name. */
#ifndef ZG_CONF_INCLUDE_H
#define ZG_CONF_INCLUDE_H

#include "zg_conf.h"

/* One server block and the document (and file) it was read from. */
typedef struct zg_conf_block {
    yaml_document_t *doc;
    const char *file;
    const zerg_conf_node *node;
} zg_conf_block;

typedef struct zg_conf_doc zg_conf_doc;

typedef struct zg_conf_blocks {
    zg_conf_block *v;
    size_t n, cap;
    zg_conf_doc *docs; /* the included files' documents, kept until freed */
} zg_conf_blocks;

/* Collect the blocks of the servers sequence seq (in cx's document and file),
 * reading every file an item { include: PATTERN | [PATTERN, ...] } names, in
 * order: a glob(7) pattern, relative to the directory of the file holding it;
 * such a file holds a sequence of server blocks (include items too) or one
 * block. 0, or -1 with the error recorded in cx. */
int zg_conf_collect_blocks(zerg_conf_ctx *cx, const zerg_conf_node *seq, zg_conf_blocks *out);
void zg_conf_blocks_free(zg_conf_blocks *b);

#endif
