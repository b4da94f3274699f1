/* scratch.c - the working memory of a kernel call, kept between calls.
 *
 * A training step of a large layer needs tens of MB of scratch (the gate
 * gradients of every step, the packed weights). Fresh from malloc that is
 * fresh pages from the kernel on every call - glibc maps blocks this large
 * with mmap and unmaps them on free - and zeroing and faulting them in took
 * about 10% of a large LSTM training step (measured with perf: clear_page
 * and the page-fault path). So each calling thread keeps its largest block
 * and reuses it; a thread's block is freed when the thread ends, or on
 * request (frnn_release_scratch).
 *
 * Not a general allocator: one block per thread, for the one kernel call
 * that thread is in. A nested request while the block is in use gets plain
 * malloc memory, so correctness never depends on the cache.
 */
/* clock_gettime, pthreads: POSIX, which a strict -std=c11 does not expose
 * unless asked (CMake builds with the GNU dialect, which does anyway). */
#if !defined(_POSIX_C_SOURCE) && (defined(__unix__) || defined(__APPLE__))
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdlib.h>
#include "fastrnn.h"
#include "runtime/memory.h"

void *frnn_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>

typedef struct {
    void *block;
    size_t capacity;
    int in_use;
} scratch_cache;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_ok;

static void free_cache(void *p) {
    scratch_cache *c = p;
    free(c->block);
    free(c);
}

static void make_key(void) { cache_ok = pthread_key_create(&cache_key, free_cache) == 0; }

static scratch_cache *this_thread_cache(int create) {
    pthread_once(&cache_once, make_key);
    if (!cache_ok) return NULL;
    scratch_cache *c = pthread_getspecific(cache_key);
    if (!c && create) {
        c = calloc(1, sizeof *c);
        if (c && pthread_setspecific(cache_key, c) != 0) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

void *frnn_scratch_acquire(size_t bytes) {
    if (bytes == 0) bytes = 1;
    scratch_cache *c = this_thread_cache(1);
    if (!c || c->in_use) return malloc(bytes);
    if (c->capacity < bytes) {
        free(c->block); /* grow: the old contents are not needed */
        c->block = malloc(bytes);
        c->capacity = c->block ? bytes : 0;
        if (!c->block) return NULL;
    }
    c->in_use = 1;
    return c->block;
}

void frnn_scratch_release(void *p) {
    scratch_cache *c = p ? this_thread_cache(0) : NULL;
    if (c && c->in_use && p == c->block) {
        c->in_use = 0;
        return;
    }
    free(p);
}

void frnn_release_scratch(void) {
    scratch_cache *c = this_thread_cache(0);
    if (c && !c->in_use) {
        free(c->block);
        c->block = NULL;
        c->capacity = 0;
    }
}

#else /* no thread-local cache: plain malloc */

void *frnn_scratch_acquire(size_t bytes) { return malloc(bytes ? bytes : 1); }
void frnn_scratch_release(void *p) { free(p); }
void frnn_release_scratch(void) {}

#endif
