/* skeptic/dist.h — several processes on one job (MPI), and the same calls as
 * identities when there is one process.
 *
 * Overview. A program started by a launcher (`mpirun -np N prog ...`) calls
 * sk_dist_init() once; from then on every process knows its rank (0..N-1)
 * and the size N, and can share work with the others. A program started
 * alone, or a libskeptic built without MPI (SKEPTIC_MPI=OFF, or no MPI found
 * at build time), sees rank 0 of size 1: every call below is then the
 * identity (a broadcast leaves the buffer, a sum is the buffer itself, a
 * gather copies, the queue hands out 0, 1, 2, ... in turn), so code written
 * for N processes runs unchanged on one.
 *
 * Determinism. Nothing here depends on timing: sums are taken on rank 0 in
 * rank order ((b0 + b1) + b2 ...) in the buffer's own precision, then sent
 * to every rank, so all ranks hold the same bits and the result is that of
 * a sequential loop over the ranks' buffers; gathers are concatenations in
 * rank order. The work queue hands out task indices in request order (which
 * does depend on timing): what a task computes must depend on its index
 * alone, never on which rank ran it or what ran before.
 *
 * Failure. A collective call that one rank never reaches would wait for
 * ever. A process whose work failed calls sk_dist_abort() (the skeptic
 * command does so for every failure that is not the same on all ranks),
 * which ends the whole job with its message on stderr instead of leaving
 * the others waiting. Errors of the calls below are SK_EIO with the MPI
 * library's message (sk_last_error()).
 *
 *     sk_dist_init(&argc, &argv);
 *     long lo, hi;
 *     sk_dist_shard(n, &lo, &hi);              // this rank's rows [lo, hi)
 *     ... compute out[lo..hi) into mine ...
 *     if (sk_dist_gather(mine, (hi - lo) * sizeof *mine, all, n * sizeof *all)) sk_dist_abort(sk_last_error());
 *     if (sk_dist_rank() == 0) print(all);
 *     sk_dist_finalize();
 */
#ifndef SKEPTIC_DIST_H
#define SKEPTIC_DIST_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Join the job when the process was started by an MPI launcher (OpenMPI's
 * mpirun, or any that sets PMI_SIZE / PMIX_RANK); a process started alone
 * does not initialise MPI at all (no cost, no MPI messages). Idempotent.
 * Returns SK_OK, or SK_EIO when the launcher's MPI could not start. */
int sk_dist_init(int *argc, char ***argv);
/* Leave the job (MPI_Finalize once); no-op when not joined. */
void sk_dist_finalize(void);
/* Whether libskeptic was built with MPI. */
bool sk_dist_built_with_mpi(void);
/* This process's rank (0 alone) and the number of processes (1 alone). */
int sk_dist_rank(void);
int sk_dist_size(void);
/* Wait until every rank has reached this call. */
int sk_dist_barrier(void);
/* buf (bytes) of rank `root` into buf of every rank. */
int sk_dist_bcast(void *buf, size_t bytes, int root);
/* buf[i] = sum over ranks r in order 0, 1, ..., N-1 of buf_r[i], in float
 * (f32) or double (f64), the same bits on every rank. Memory: rank 0 holds
 * N copies of buf for the time of the call. */
int sk_dist_allreduce_sum_f32(float *buf, size_t n);
int sk_dist_allreduce_sum_f64(double *buf, size_t n);
/* The contiguous share of n items of this rank: [*lo, *hi) with
 * lo = floor(r n / N), hi = floor((r + 1) n / N): shares differ by at most
 * one item and, concatenated in rank order, give 0..n-1. */
void sk_dist_shard(long n, long *lo, long *hi);
/* The same for rank r of N (any rank's share, e.g. to size a gather). */
void sk_dist_shard_of(long n, int r, int N, long *lo, long *hi);
/* Concatenate every rank's `bytes` bytes at mine (sizes may differ between
 * ranks) in rank order into all (all_bytes, which must hold the total) on
 * rank 0; other ranks may pass all = NULL. SK_EINVAL when the total does not
 * fit all_bytes (on rank 0, after the data was received). */
int sk_dist_gather(const void *mine, size_t bytes, void *all, size_t all_bytes);
/* Rank `root`'s status to every rank: e.g. rank 0 checks that the output
 * files can be written and the others learn the verdict. Returns it. */
int sk_dist_agree(int status, int root);
/* End the whole job: message (may be NULL) on stderr with the rank, then
 * MPI_Abort with exit code `code`. Only for a program's main loop, never the
 * library's own error path. Alone (size 1) it returns without doing
 * anything, so the caller's ordinary error path runs. */
void sk_dist_abort(const char *message, int code);

/* ---- the dynamic work queue ----
 * Tasks 0..n_tasks-1 handed out in request order: every rank (0 included)
 * asks for the next index when it is free, so fast and slow tasks balance
 * themselves over the ranks. A finished task's result (any bytes) goes to
 * rank 0 with sk_dist_queue_put; rank 0 collects them with
 * sk_dist_queue_take, in arrival order (tag them with the task index and
 * sort if order matters). Implemented with an MPI atomic counter held by
 * rank 0 (one-sided fetch-and-add), so rank 0 needs not stop its own work to
 * serve the others. Each rank creates and frees the queue (collective). */
struct sk_dist_queue;
/* NULL + sk_last_error() on failure. */
struct sk_dist_queue *sk_dist_queue_new(long n_tasks);
/* Collective: waits for the others' results to leave (worker ranks) and
 * frees. NULL ok. */
void sk_dist_queue_free(struct sk_dist_queue *q);
/* The next task index into *task, or -1 when every task is handed out. */
int sk_dist_queue_next(struct sk_dist_queue *q, long *task);
/* The result of `task` (bytes, copied) to rank 0. */
int sk_dist_queue_put(struct sk_dist_queue *q, long task, const void *result, size_t bytes);
/* Rank 0 only: the next result, from any rank (rank 0's own included).
 * wait false: *task = -1 when none has arrived yet; wait true: blocks
 * until one arrives. *task = -1 also once all n_tasks results were taken.
 * *result (malloc'd by sk_malloc, NUL-terminated beyond *bytes) is the
 * caller's to sk_free. */
int sk_dist_queue_take(struct sk_dist_queue *q, bool wait, long *task, void **result, size_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
