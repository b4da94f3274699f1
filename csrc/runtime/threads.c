/* threads.c - the kernels' thread pool: claimed tasks, blocking workers.
 *
 * Why this shape (see threads.h for the contract):
 *   - Tasks are claimed from one atomic ticket = generation | ntasks | next,
 *     so a job needs no barrier that waits for every thread to arrive: the
 *     caller works too and only waits for tasks already claimed. With the
 *     other core busy a descheduled worker costs at most the task it holds,
 *     not a whole step (measured: docs/ARCHITECTURE.md, "Threads").
 *   - The job's size lives in the ticket itself, so a worker that wakes late
 *     and reads the fields of a newer job can never claim a task with them:
 *     a claim only succeeds for the generation it read the fields of, and
 *     the caller rewrites the fields only after every task of that
 *     generation was claimed and done.
 *   - Idle workers spin for about SPIN_NS (consecutive time steps come
 *     microseconds apart) and then block on a condition variable; they
 *     never spin indefinitely, so oversubscription degrades gracefully.
 *   - A worker descheduled while it holds a task is detected by how long
 *     the task has run, and the pool then backs off to one thread for a
 *     while (frnn_parallel_for): on a busy machine two threads must not be
 *     slower than one.
 *   - Workers compute in the caller's floating-point control mode (copied
 *     per job, fpenv.c): flush-to-zero on the caller means flush-to-zero on
 *     every block of the job.
 *   - POSIX threads, not OpenMP: the pool is ours to size, and a forked
 *     child simply starts with no workers (pthread_atfork).
 * Not here: nested jobs, more than one concurrent caller (a second caller
 * runs its job inline, which is correct, just not parallel).
 */
/* clock_gettime, pthreads: POSIX, which a strict -std=c11 does not expose
 * unless asked (CMake builds with the GNU dialect, which does anyway). */
#if !defined(_POSIX_C_SOURCE) && (defined(__unix__) || defined(__APPLE__))
#define _POSIX_C_SOURCE 200809L
#endif
#include "runtime/threads.h"

#if defined(__unix__) || defined(__APPLE__)
#define FRNN_HAVE_PTHREADS 1
#endif

#include <stdint.h>

static int num_threads = 1;

void frnn_set_num_threads(int n) { num_threads = n < 1 ? 1 : n; }
int frnn_get_num_threads(void) { return num_threads; }

/* A job below this many flops (about 40 us of one core) runs on one thread.
 * Handing a job to a spinning worker and back costs about a microsecond,
 * but on a shared machine a worker descheduled while it holds a task
 * stalls the job for a scheduler time slice, and short jobs meet that
 * often: with the other core busy, two threads on the small shape's steps
 * (0.5-2 MFLOP) took up to 1.5x the one-thread time at a 0.5 MFLOP
 * threshold, and at most 1.12x at this one, while an idle machine gives up
 * their 1.6x (bench/oversubscription.py, measured 2026-11-29). */
#define DEFAULT_MIN_FLOPS 4.0e6
static double min_flops = DEFAULT_MIN_FLOPS;

void frnn_set_thread_min_flops(double flops) { min_flops = flops < 0 ? DEFAULT_MIN_FLOPS : flops; }

int frnn_threads_for(double flops, frnn_int ntasks) {
    const int n = num_threads;
    if (n <= 1 || ntasks <= 1 || flops < min_flops) return 1;
    return ntasks < n ? (int)ntasks : n;
}

static void run_inline(frnn_int ntasks, frnn_task_fn fn, void *arg) {
    for (frnn_int i = 0; i < ntasks; i++) fn(arg, i);
}

#if !FRNN_HAVE_PTHREADS

void frnn_parallel_for(frnn_int ntasks, int threads, frnn_task_fn fn, void *arg) {
    (void)threads;
    run_inline(ntasks, fn, arg);
}

#else

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#define MAX_WORKERS 255
#define SPIN_NS 100000 /* 0.1 ms: longer than a step's gap, short on a shared core */

/* ticket bits: generation 24 | ntasks 20 | next 20 */
#define TASK_BITS 20
#define MAX_TASKS (((uint64_t)1 << TASK_BITS) - 1)
#define GEN(t) ((uint32_t)((t) >> (2 * TASK_BITS)))
#define NTASKS(t) ((frnn_int)(((t) >> TASK_BITS) & MAX_TASKS))
#define NEXT(t) ((frnn_int)((t) & MAX_TASKS))

static _Atomic uint64_t ticket;
static _Atomic(frnn_task_fn) job_fn;
static _Atomic(void *) job_arg;
static _Atomic uint64_t job_control; /* the caller's FP control bits (fpenv.c) */
static atomic_int job_threads;  /* workers with id < job_threads take part */
static _Atomic frnn_int done;   /* tasks finished in this generation */
static atomic_int sleepers;     /* workers blocked on `wake` */
static atomic_int busy;         /* a job is in flight */
static uint32_t generation;     /* the caller's: last published */

/* When each worker's current task started (0: none), for stall detection. */
static _Atomic int64_t task_started[MAX_WORKERS + 1];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int nworkers;            /* started (under lock) */
static int atfork_registered;

/* A spin-wait hint to the core (GCC / Clang spellings; any other compiler
 * spins without one, which is correct, only less polite to a sibling
 * hyperthread). */
static inline void cpu_relax(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claim the next task of generation `gen`; 0 when it has none left. */
static int claim(uint32_t gen, frnn_int *task) {
    uint64_t t = atomic_load(&ticket);
    for (;;) {
        if (GEN(t) != gen || NEXT(t) >= NTASKS(t)) return 0;
        if (atomic_compare_exchange_weak(&ticket, &t, t + 1)) {
            *task = NEXT(t);
            return 1;
        }
    }
}

static void *worker_main(void *p) {
    const int id = (int)(intptr_t)p; /* 1, 2, ...; the caller is 0 */
    uint32_t seen = GEN(atomic_load(&ticket));
    for (;;) {
        uint64_t t = atomic_load(&ticket);
        if (GEN(t) == seen) {
            const int64_t until = now_ns() + SPIN_NS;
            for (int i = 1; GEN(t = atomic_load(&ticket)) == seen; i++) {
                cpu_relax();
                if (i % 256 == 0 && now_ns() > until) {
                    pthread_mutex_lock(&lock);
                    atomic_fetch_add(&sleepers, 1);
                    while (GEN(t = atomic_load(&ticket)) == seen) pthread_cond_wait(&wake, &lock);
                    atomic_fetch_sub(&sleepers, 1);
                    pthread_mutex_unlock(&lock);
                    break;
                }
            }
        }
        seen = GEN(t);
        if (id >= atomic_load_explicit(&job_threads, memory_order_relaxed)) continue;
        const frnn_task_fn fn = atomic_load_explicit(&job_fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&job_arg, memory_order_relaxed);
        /* The caller's flush-to-zero mode, so that a worker's blocks come
         * out bitwise as the caller's would (results independent of the
         * thread count). */
        frnn_fpenv_adopt(atomic_load_explicit(&job_control, memory_order_relaxed));
        frnn_int task;
        while (claim(seen, &task)) {
            atomic_store_explicit(&task_started[id], now_ns(), memory_order_relaxed);
            fn(arg, task);
            atomic_store_explicit(&task_started[id], 0, memory_order_relaxed);
            atomic_fetch_add(&done, 1);
        }
    }
    return NULL;
}

/* In a forked child only the forking thread exists: forget the workers. */
static void after_fork_in_child(void) {
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&wake, NULL);
    nworkers = 0;
    atomic_store(&sleepers, 0);
    atomic_store(&busy, 0);
}

/* Start workers until `want` exist (or creation fails); returns how many do. */
static int ensure_workers(int want) {
    if (want > MAX_WORKERS) want = MAX_WORKERS;
    if (nworkers >= want) return nworkers;
    pthread_mutex_lock(&lock);
    if (!atfork_registered) atfork_registered = pthread_atfork(NULL, NULL, after_fork_in_child) == 0;
    while (nworkers < want) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int rc = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)(nworkers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break; /* run with the workers we have */
        nworkers++;
    }
    pthread_mutex_unlock(&lock);
    return nworkers;
}

/* Backing off on a shared machine. If a worker's task runs far longer than
 * the caller's own tasks of the same job took, the worker was descheduled
 * while holding it: the cores are oversubscribed, and until the scheduler
 * runs the worker again (milliseconds) the caller can only wait, so two
 * threads are slower than one. Jobs then run on the caller alone for a
 * while (below) before two threads are tried again. The clock starts when the
 * worker claims the task, so a worker that merely woke up late is not
 * mistaken for a stalled one. Measured on 2 cores with the other one busy
 * (bench/oversubscription.py, small shape): two threads took up to 1.5x the
 * one-thread time without this, 1.1x with it. */
#define STALL_FACTOR 4           /* a task this many times the caller's longest, */
#define STALL_MIN_NS 1000000     /* and at least this (a scheduler time slice, not a
                                    page fault: zeroing a fresh huge page takes ~0.2 ms) */
/* How long jobs stay on one thread after a stall: 20 ms after an isolated
 * one (any machine has the odd hiccup), doubling up to 0.1 s while stalls
 * keep coming within STALL_MEMORY_NS of each other (a busy machine). */
#define BACKOFF_MIN_NS 20000000
#define BACKOFF_MAX_NS 100000000
#define STALL_MEMORY_NS 200000000
static int64_t backoff_until, backoff_ns, last_stall; /* caller-only (one caller at a time) */

void frnn_parallel_for(frnn_int ntasks, int threads, frnn_task_fn fn, void *arg) {
    if (threads > ntasks) threads = (int)ntasks;
    if (threads <= 1 || (uint64_t)ntasks > MAX_TASKS || atomic_exchange(&busy, 1)) {
        run_inline(ntasks, fn, arg);
        return;
    }
    if (min_flops > 0 && now_ns() < backoff_until) { /* min_flops 0 (tests): always thread */
        atomic_store(&busy, 0);
        run_inline(ntasks, fn, arg);
        return;
    }
    const int workers = ensure_workers(threads - 1);
    const int used = workers + 1 < threads ? workers + 1 : threads;
    atomic_store_explicit(&job_fn, fn, memory_order_relaxed);
    atomic_store_explicit(&job_arg, arg, memory_order_relaxed);
    atomic_store_explicit(&job_control, frnn_fpenv_control(), memory_order_relaxed);
    atomic_store_explicit(&job_threads, used, memory_order_relaxed);
    atomic_store(&done, 0);
    generation = (generation + 1) & ((1u << (64 - 2 * TASK_BITS)) - 1);
    const uint32_t gen = generation;
    atomic_store(&ticket, ((uint64_t)gen << (2 * TASK_BITS)) | ((uint64_t)ntasks << TASK_BITS));
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&lock);
    }
    frnn_int task, mine = 0;
    int64_t longest = 0, t0 = now_ns();
    while (claim(gen, &task)) {
        fn(arg, task);
        const int64_t t1 = now_ns();
        if (t1 - t0 > longest) longest = t1 - t0;
        t0 = t1;
        mine++;
    }
    /* Wait for the tasks workers hold; yield rather than spin once it takes
     * long, so a descheduled worker sharing this core can finish. */
    atomic_fetch_add(&done, mine);
    int stalled = 0;
    for (int i = 1; atomic_load(&done) < ntasks; i++) {
        if (i < 4096) {
            cpu_relax();
            continue;
        }
        sched_yield();
        if (stalled || mine == 0 || min_flops <= 0 || i % 64) continue;
        const int64_t now = now_ns();
        const int64_t limit = STALL_FACTOR * longest > STALL_MIN_NS ? STALL_FACTOR * longest
                                                                    : STALL_MIN_NS;
        for (int w = 1; w < used; w++) {
            const int64_t began = atomic_load_explicit(&task_started[w], memory_order_relaxed);
            if (began > 0 && now - began > limit) stalled = 1;
        }
    }
    if (stalled) {
        const int64_t now = now_ns();
        backoff_ns = last_stall > 0 && now - last_stall < STALL_MEMORY_NS
                         ? (2 * backoff_ns < BACKOFF_MAX_NS ? 2 * backoff_ns : BACKOFF_MAX_NS)
                         : BACKOFF_MIN_NS;
        last_stall = now;
        backoff_until = now + backoff_ns;
    }
    atomic_store(&busy, 0);
}

#endif
