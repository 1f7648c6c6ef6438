/* zg_memory.h - a worker's memory going back to the system: every
 * worker_memory_release period, pool slabs that period did not need are
 * freed, spare receive buffers dropped, and malloc_trim returns the heap's
 * free pages. */
#ifndef ZG_MEMORY_H
#define ZG_MEMORY_H

typedef struct zerg_worker zg_worker;

/* Arm the periodic release (nothing when the period is 0). */
void zg_memory_start(zg_worker *w);

#endif
