/* threads.h - internal: the kernels' thread pool (threads.c).
 *
 * One job at a time: `ntasks` independent tasks, claimed one by one from a
 * shared counter by the calling thread and up to `threads - 1` pool workers.
 * Claiming, not a fixed split, is what keeps two threads graceful on a
 * shared machine: if a worker is descheduled, the caller takes its share
 * instead of waiting at a barrier for it. The caller returns when every
 * task has finished, so consecutive jobs are ordered (a job is the barrier
 * between two dependent phases, e.g. two time steps).
 *
 * Not a general scheduler: no nesting (a task must not start a job), one
 * caller at a time (kernels are called from one Python thread per process;
 * a second concurrent caller runs its job inline, see threads.c).
 */
#ifndef FRNN_THREADS_H
#define FRNN_THREADS_H

#include "fastrnn.h"

/* task: [0, ntasks) the task to run; arg: the job's argument. */
typedef void (*frnn_task_fn)(void *arg, frnn_int task);

/* Run fn(arg, i) for every i in [0, ntasks) on up to `threads` threads (the
 * caller included) and return when all have finished. threads <= 1 or
 * ntasks <= 1 runs everything inline, in order. */
void frnn_parallel_for(frnn_int ntasks, int threads, frnn_task_fn fn, void *arg);

/* How many threads a job of `flops` floating-point operations that splits
 * into `ntasks` tasks should use: 1 below the work threshold (a hand-off
 * costs a few microseconds; a job must be worth several), else
 * min(frnn_get_num_threads(), ntasks). */
int frnn_threads_for(double flops, frnn_int ntasks);

#endif
