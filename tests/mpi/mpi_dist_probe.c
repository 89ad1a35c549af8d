/* Drives src/core/dist.c under mpirun (or alone): the all-reduce's bits are
 * the sequential sum in rank order, gathers concatenate in rank order, the
 * work queue hands every task out exactly once. Prints one line per check
 * on rank 0; exit status 1 on the first failure (every rank). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/core.h"
#include "skeptic/dist.h"

static int fails;

static void check(int ok, const char *what)
{
    if (sk_dist_rank() == 0) printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    fails += !ok;
}

/* Rank r's buffer: values whose sum depends on the order of the additions. */
static float value_of(int r, size_t i) { return (r % 2 ? 1e-3f : 1e7f) * (float)((i * 7919 + (size_t)r * 104729) % 1000 + 1) / 997.0f; }

int main(int argc, char **argv)
{
    if (sk_dist_init(&argc, &argv)) {
        fprintf(stderr, "%s\n", sk_last_error());
        return 1;
    }
    int R = sk_dist_rank(), P = sk_dist_size();
    if (R == 0) printf("ranks %d (MPI %s)\n", P, sk_dist_built_with_mpi() ? "built in" : "not built in");
    /* all-reduce: bitwise the loop over ranks */
    size_t n = 1000;
    float *b = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        b[i] = value_of(R, i);
        float s = value_of(0, i);
        for (int r = 1; r < P; r++) s += value_of(r, i);
        want[i] = s;
    }
    int rc = sk_dist_allreduce_sum_f32(b, n);
    check(!rc && !memcmp(b, want, sizeof(float) * n), "allreduce f32 = sum in rank order, bitwise, on every rank");
    double d = R + 0.25;
    rc = sk_dist_allreduce_sum_f64(&d, 1);
    check(!rc && d == P * (P - 1) / 2.0 + 0.25 * P, "allreduce f64");
    /* gather of unequal shares */
    long lo, hi, tot = 103;
    sk_dist_shard(tot, &lo, &hi);
    int *mine = malloc(sizeof(int) * (size_t)(hi - lo + 1)), *all = malloc(sizeof(int) * (size_t)tot);
    for (long i = lo; i < hi; i++) mine[i - lo] = (int)(i * 3 + 1);
    rc = sk_dist_gather(mine, sizeof(int) * (size_t)(hi - lo), R == 0 ? all : NULL, R == 0 ? sizeof(int) * (size_t)tot : 0);
    int ok = !rc;
    for (long i = 0; R == 0 && ok && i < tot; i++) ok = all[i] == i * 3 + 1;
    check(ok, "gather of the shards in rank order = 0..n-1");
    /* broadcast and agree */
    int v = R == 0 ? 4242 : -1;
    rc = sk_dist_bcast(&v, sizeof v, 0);
    check(!rc && v == 4242 && sk_dist_agree(R == 0 ? SK_EIO : SK_OK, 0) == SK_EIO, "broadcast and agree");
    /* the work queue: every task once, results on rank 0 */
    long n_tasks = 37, t, done_here = 0;
    struct sk_dist_queue *q = sk_dist_queue_new(n_tasks);
    ok = q != NULL;
    while (ok && !sk_dist_queue_next(q, &t) && t >= 0) {
        char msg[64];
        int len = snprintf(msg, sizeof msg, "%ld squared is %ld", t, t * t);
        ok = !sk_dist_queue_put(q, t, msg, (size_t)len);
        done_here++;
    }
    if (ok && R == 0) {
        int *seen = calloc((size_t)n_tasks, sizeof(int));
        void *res;
        size_t bytes;
        long got = 0;
        while (ok && !sk_dist_queue_take(q, true, &t, &res, &bytes) && t >= 0) {
            char want_msg[64];
            snprintf(want_msg, sizeof want_msg, "%ld squared is %ld", t, t * t);
            ok = t < n_tasks && !seen[t] && bytes == strlen(want_msg) && !strcmp(res, want_msg);
            if (ok) seen[t] = 1;
            got++;
            sk_free(res);
        }
        ok = ok && got == n_tasks;
        free(seen);
    }
    double dh = (double)done_here;
    sk_dist_allreduce_sum_f64(&dh, 1);
    check(ok && dh == n_tasks, "work queue: every task handed out once, every result on rank 0");
    sk_dist_queue_free(q);
    double f = fails; /* any rank's failure fails every rank */
    sk_dist_allreduce_sum_f64(&f, 1);
    free(b);
    free(want);
    free(mine);
    free(all);
    sk_dist_finalize();
    return f > 0 ? 1 : 0;
}
