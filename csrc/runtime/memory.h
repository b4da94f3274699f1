/* memory.h - internal: where a kernel call's working memory comes from
 * (scratch.c).
 *
 * Not a general allocator: one allocation per call, freed by that call.
 */
#ifndef FRNN_MEMORY_H
#define FRNN_MEMORY_H

#include <stddef.h>

/* Scratch: one allocation for all buffers of a call, freed with free()
 * (never NULL for bytes = 0 on success). */
void *frnn_alloc(size_t bytes);
/* The same for the large scratch of a whole-window call, from the calling
 * thread's cached block (scratch.c); give it back with frnn_scratch_release. */
void *frnn_scratch_acquire(size_t bytes);
void frnn_scratch_release(void *p);

#endif
