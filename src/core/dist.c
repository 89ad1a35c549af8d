/* Processes of one job over MPI (skeptic/dist.h); every call the identity
 * for a single process or without MPI. */
#define _POSIX_C_SOURCE 200809L
#include "skeptic/dist.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/core.h"

#ifdef SKEPTIC_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;

bool sk_dist_built_with_mpi(void)
{
#ifdef SKEPTIC_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int sk_dist_rank(void) { return g_rank; }
int sk_dist_size(void) { return g_size; }

void sk_dist_shard_of(long n, int r, int N, long *lo, long *hi)
{
    /* in long long: r n overflows a 32-bit long for large n times many ranks */
    *lo = (long)((long long)n * r / N);
    *hi = (long)((long long)n * (r + 1) / N);
}

void sk_dist_shard(long n, long *lo, long *hi) { sk_dist_shard_of(n, g_rank, g_size, lo, hi); }

#ifdef SKEPTIC_HAVE_MPI

static bool g_joined;

/* The launcher's environment: OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE,
 * PMIx launchers PMIX_RANK, Hydra (MPICH) PMI_SIZE. */
static bool launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE") || getenv("PMI_RANK");
}

static int mpi_err(int code, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", code);
    return sk_error(SK_EIO, "MPI %s failed on rank %d of %d: %s", what, g_rank, g_size, msg);
}

#define MPI_TRY(call, what)                                                                                            \
    do {                                                                                                               \
        int e_ = (call);                                                                                               \
        if (e_ != MPI_SUCCESS) return mpi_err(e_, what);                                                               \
    } while (0)

int sk_dist_init(int *argc, char ***argv)
{
    int done = 0;
    if (g_joined || !launched()) return SK_OK;
    MPI_Initialized(&done);
    if (!done) MPI_TRY(MPI_Init(argc, argv), "MPI_Init");
    /* errors come back as statuses (the caller decides to abort), not as an
     * abort inside MPI that names no file and no field */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_joined = true;
    return SK_OK;
}

void sk_dist_finalize(void)
{
    int fin = 0;
    if (!g_joined) return;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
    g_joined = false;
    g_rank = 0;
    g_size = 1;
}

int sk_dist_barrier(void)
{
    if (g_size > 1) MPI_TRY(MPI_Barrier(MPI_COMM_WORLD), "barrier");
    return SK_OK;
}

/* MPI counts are ints: a larger buffer goes in pieces. */
#define PIECE ((size_t)1 << 30)

int sk_dist_bcast(void *buf, size_t bytes, int root)
{
    if (g_size <= 1) return SK_OK;
    for (size_t o = 0; o < bytes; o += PIECE) {
        size_t k = bytes - o < PIECE ? bytes - o : PIECE;
        MPI_TRY(MPI_Bcast((char *)buf + o, (int)k, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
    }
    return SK_OK;
}

int sk_dist_agree(int status, int root)
{
    if (g_size <= 1) return status;
    int s = status;
    if (sk_dist_bcast(&s, sizeof s, root)) return sk_dist_abort(sk_last_error(), 1), SK_EIO;
    return s;
}

/* Gather to rank 0 in rank order, sum in that order, broadcast: the same
 * bits whatever the timing, and those of a loop over the ranks' buffers. */
#define ALLREDUCE(NAME, T, MPIT)                                                                                       \
    int NAME(T *buf, size_t n)                                                                                         \
    {                                                                                                                  \
        if (g_size <= 1 || n == 0) return SK_OK;                                                                       \
        if (n > (size_t)INT_MAX)                                                                                       \
            return sk_error(SK_EINVAL, "all-reduce of %zu values: at most %d per call", n, INT_MAX);                   \
        T *all = NULL;                                                                                                 \
        if (g_rank == 0 && !(all = sk_malloc(sizeof(T) * n * (size_t)g_size))) return SK_ENOMEM;                       \
        int e = MPI_Gather(buf, (int)n, MPIT, all, (int)n, MPIT, 0, MPI_COMM_WORLD);                                  \
        if (e != MPI_SUCCESS) {                                                                                        \
            sk_free(all);                                                                                              \
            return mpi_err(e, "all-reduce (gather)");                                                                  \
        }                                                                                                              \
        if (g_rank == 0)                                                                                               \
            for (size_t i = 0; i < n; i++) {                                                                           \
                T s = all[i];                                                                                          \
                for (int r = 1; r < g_size; r++) s += all[(size_t)r * n + i];                                          \
                buf[i] = s;                                                                                            \
            }                                                                                                          \
        sk_free(all);                                                                                                  \
        MPI_TRY(MPI_Bcast(buf, (int)n, MPIT, 0, MPI_COMM_WORLD), "all-reduce (broadcast)");                            \
        return SK_OK;                                                                                                  \
    }
ALLREDUCE(sk_dist_allreduce_sum_f32, float, MPI_FLOAT)
ALLREDUCE(sk_dist_allreduce_sum_f64, double, MPI_DOUBLE)

int sk_dist_gather(const void *mine, size_t bytes, void *all, size_t all_bytes)
{
    if (g_size <= 1) {
        if (bytes > all_bytes) return sk_error(SK_EINVAL, "gather: %zu bytes do not fit %zu", bytes, all_bytes);
        if (bytes) memmove(all, mine, bytes);
        return SK_OK;
    }
    if (bytes > (size_t)INT_MAX) return sk_error(SK_EINVAL, "gather: %zu bytes from one rank: at most %d", bytes, INT_MAX);
    int mb = (int)bytes, *counts = NULL, *displs = NULL;
    if (g_rank == 0) {
        counts = sk_malloc(sizeof(int) * (size_t)g_size);
        displs = sk_malloc(sizeof(int) * (size_t)g_size);
        if (!counts || !displs) {
            sk_free(counts);
            sk_free(displs);
            sk_dist_abort(sk_last_error(), 1);
            return SK_ENOMEM;
        }
    }
    int e = MPI_Gather(&mb, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (e != MPI_SUCCESS) {
        sk_free(counts);
        sk_free(displs);
        return mpi_err(e, "gather (sizes)");
    }
    int ok = 1, status = SK_OK;
    if (g_rank == 0) {
        size_t tot = 0;
        for (int r = 0; r < g_size; r++) {
            displs[r] = (int)tot;
            tot += (size_t)counts[r];
        }
        ok = tot <= all_bytes && tot <= (size_t)INT_MAX;
        if (!ok) status = sk_error(SK_EINVAL, "gather: %zu bytes from %d ranks do not fit %zu", tot, g_size, all_bytes);
    }
    /* everyone learns whether rank 0 can take the data, so nobody waits on a send it will never receive */
    e = MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (e != MPI_SUCCESS) status = mpi_err(e, "gather (verdict)");
    else if (ok) {
        /* rank 0's own share goes first: in place (MPI forbids overlapping buffers) */
        if (g_rank == 0 && bytes && mine != all) memmove(all, mine, bytes);
        e = MPI_Gatherv(g_rank == 0 ? MPI_IN_PLACE : mine, mb, MPI_BYTE, all, counts, displs, MPI_BYTE, 0,
                        MPI_COMM_WORLD);
        if (e != MPI_SUCCESS) status = mpi_err(e, "gather");
    } else if (!status) {
        status = sk_error(SK_EINVAL, "gather: rank 0 cannot hold the data");
    }
    sk_free(counts);
    sk_free(displs);
    return status;
}

void sk_dist_abort(const char *message, int code)
{
    if (g_size <= 1) return;
    if (message && *message) fprintf(stderr, "skeptic: rank %d of %d: %s\n", g_rank, g_size, message);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

#else /* without MPI: one process */

int sk_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return SK_OK;
}
void sk_dist_finalize(void) {}
int sk_dist_barrier(void) { return SK_OK; }
int sk_dist_bcast(void *buf, size_t bytes, int root)
{
    (void)buf;
    (void)bytes;
    (void)root;
    return SK_OK;
}
int sk_dist_agree(int status, int root)
{
    (void)root;
    return status;
}
int sk_dist_allreduce_sum_f32(float *buf, size_t n)
{
    (void)buf;
    (void)n;
    return SK_OK;
}
int sk_dist_allreduce_sum_f64(double *buf, size_t n)
{
    (void)buf;
    (void)n;
    return SK_OK;
}
int sk_dist_gather(const void *mine, size_t bytes, void *all, size_t all_bytes)
{
    if (bytes > all_bytes) return sk_error(SK_EINVAL, "gather: %zu bytes do not fit %zu", bytes, all_bytes);
    if (bytes) memmove(all, mine, bytes);
    return SK_OK;
}
void sk_dist_abort(const char *message, int code)
{
    (void)message;
    (void)code;
}
#endif

/* ---------------- the work queue ---------------- */

/* A result kept on rank 0 (its own, or received). */
struct qitem {
    long task;
    void *data;
    size_t bytes;
};

struct sk_dist_queue {
    long n_tasks, next_local, n_taken;
    struct qitem *own; /* rank 0's own results, FIFO */
    int n_own, head_own, cap_own;
#ifdef SKEPTIC_HAVE_MPI
    bool rma;
    MPI_Win win;
    int64_t *counter; /* rank 0: the next task index */
    MPI_Request *reqs; /* worker ranks: results in flight */
    void **bufs;
    int n_req, cap_req;
#endif
};

#define QTAG 7301

struct sk_dist_queue *sk_dist_queue_new(long n_tasks)
{
    if (n_tasks < 0) {
        sk_error(SK_EINVAL, "work queue of %ld tasks", n_tasks);
        return NULL;
    }
    struct sk_dist_queue *q = sk_calloc(1, sizeof *q);
    if (!q) return NULL;
    q->n_tasks = n_tasks;
#ifdef SKEPTIC_HAVE_MPI
    if (g_size > 1) {
        int e = MPI_Win_allocate(g_rank == 0 ? (MPI_Aint)sizeof(int64_t) : 0, sizeof(int64_t), MPI_INFO_NULL,
                                 MPI_COMM_WORLD, &q->counter, &q->win);
        if (e != MPI_SUCCESS) {
            mpi_err(e, "work queue (window)");
            sk_free(q);
            return NULL;
        }
        q->rma = true;
        if (g_rank == 0) *q->counter = 0;
        MPI_Win_lock_all(0, q->win);
        MPI_Win_sync(q->win);
        MPI_Barrier(MPI_COMM_WORLD); /* the counter is 0 before anyone takes from it */
    }
#endif
    return q;
}

void sk_dist_queue_free(struct sk_dist_queue *q)
{
    if (!q) return;
    for (int i = q->head_own; i < q->n_own; i++) sk_free(q->own[i].data);
    sk_free(q->own);
#ifdef SKEPTIC_HAVE_MPI
    if (q->n_req) MPI_Waitall(q->n_req, q->reqs, MPI_STATUSES_IGNORE);
    for (int i = 0; i < q->n_req; i++) sk_free(q->bufs[i]);
    sk_free(q->reqs);
    sk_free(q->bufs);
    if (q->rma) {
        MPI_Win_unlock_all(q->win);
        MPI_Win_free(&q->win);
    }
#endif
    sk_free(q);
}

int sk_dist_queue_next(struct sk_dist_queue *q, long *task)
{
    int64_t t = q->next_local;
#ifdef SKEPTIC_HAVE_MPI
    if (q->rma) {
        const int64_t one = 1;
        MPI_TRY(MPI_Fetch_and_op(&one, &t, MPI_INT64_T, 0, 0, MPI_SUM, q->win), "work queue (fetch)");
        MPI_TRY(MPI_Win_flush(0, q->win), "work queue (flush)");
    } else
#endif
        q->next_local++;
    *task = t < q->n_tasks ? (long)t : -1;
    return SK_OK;
}

static int keep_own(struct sk_dist_queue *q, long task, const void *result, size_t bytes)
{
    if (q->n_own == q->cap_own) {
        int cap = q->cap_own ? 2 * q->cap_own : 16;
        struct qitem *o = sk_malloc(sizeof *o * (size_t)cap);
        if (!o) return SK_ENOMEM;
        if (q->n_own) memcpy(o, q->own, sizeof *o * (size_t)q->n_own);
        sk_free(q->own);
        q->own = o;
        q->cap_own = cap;
    }
    void *d = sk_malloc(bytes + 1);
    if (!d) return SK_ENOMEM;
    if (bytes) memcpy(d, result, bytes);
    ((char *)d)[bytes] = 0;
    q->own[q->n_own++] = (struct qitem){ task, d, bytes };
    return SK_OK;
}

int sk_dist_queue_put(struct sk_dist_queue *q, long task, const void *result, size_t bytes)
{
#ifdef SKEPTIC_HAVE_MPI
    if (q->rma && g_rank != 0) {
        if (bytes > (size_t)INT_MAX - sizeof(int64_t))
            return sk_error(SK_EINVAL, "work queue: a result of %zu bytes is too large to send", bytes);
        if (q->n_req == q->cap_req) {
            int cap = q->cap_req ? 2 * q->cap_req : 16;
            MPI_Request *r = sk_malloc(sizeof *r * (size_t)cap);
            void **b = sk_malloc(sizeof *b * (size_t)cap);
            if (!r || !b) {
                sk_free(r);
                sk_free(b);
                return SK_ENOMEM;
            }
            if (q->n_req) {
                memcpy(r, q->reqs, sizeof *r * (size_t)q->n_req);
                memcpy(b, q->bufs, sizeof *b * (size_t)q->n_req);
            }
            sk_free(q->reqs);
            sk_free(q->bufs);
            q->reqs = r;
            q->bufs = b;
            q->cap_req = cap;
        }
        char *m = sk_malloc(sizeof(int64_t) + bytes);
        if (!m) return SK_ENOMEM;
        int64_t t = task;
        memcpy(m, &t, sizeof t);
        if (bytes) memcpy(m + sizeof t, result, bytes);
        /* not blocking: rank 0 receives when it next looks, the worker goes on */
        int e = MPI_Isend(m, (int)(sizeof t + bytes), MPI_BYTE, 0, QTAG, MPI_COMM_WORLD, &q->reqs[q->n_req]);
        if (e != MPI_SUCCESS) {
            sk_free(m);
            return mpi_err(e, "work queue (send)");
        }
        q->bufs[q->n_req++] = m;
        return SK_OK;
    }
#endif
    return keep_own(q, task, result, bytes);
}

int sk_dist_queue_take(struct sk_dist_queue *q, bool wait, long *task, void **result, size_t *bytes)
{
    *task = -1;
    *result = NULL;
    *bytes = 0;
    if (g_rank != 0) return sk_error(SK_ESTATE, "work queue: results are taken on rank 0 (this is rank %d)", g_rank);
    if (q->n_taken >= q->n_tasks) return SK_OK;
    if (q->head_own < q->n_own) {
        struct qitem *it = &q->own[q->head_own++];
        *task = it->task;
        *result = it->data;
        *bytes = it->bytes;
        q->n_taken++;
        return SK_OK;
    }
#ifdef SKEPTIC_HAVE_MPI
    if (q->rma) {
        MPI_Status st;
        int flag = 1;
        if (wait) MPI_TRY(MPI_Probe(MPI_ANY_SOURCE, QTAG, MPI_COMM_WORLD, &st), "work queue (probe)");
        else MPI_TRY(MPI_Iprobe(MPI_ANY_SOURCE, QTAG, MPI_COMM_WORLD, &flag, &st), "work queue (probe)");
        if (!flag) return SK_OK;
        int cnt = 0;
        MPI_Get_count(&st, MPI_BYTE, &cnt);
        if (cnt < (int)sizeof(int64_t))
            return sk_error(SK_EFORMAT, "work queue: a message of %d bytes from rank %d", cnt, st.MPI_SOURCE);
        char *m = sk_malloc((size_t)cnt + 1);
        if (!m) return SK_ENOMEM;
        int e = MPI_Recv(m, cnt, MPI_BYTE, st.MPI_SOURCE, QTAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS) {
            sk_free(m);
            return mpi_err(e, "work queue (receive)");
        }
        int64_t t;
        memcpy(&t, m, sizeof t);
        size_t nb = (size_t)cnt - sizeof t;
        memmove(m, m + sizeof t, nb);
        m[nb] = 0;
        *task = (long)t;
        *result = m;
        *bytes = nb;
        q->n_taken++;
        return SK_OK;
    }
#endif
    (void)wait;
    return SK_OK;
}
