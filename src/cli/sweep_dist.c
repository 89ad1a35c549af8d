/* skeptic sweep over several ranks: see sweep_dist.h. */
#include "cli/sweep_dist.h"

#include <string.h>

#include "cli/cli_dist.h"

/* Rank 0: one row in. */
static int take_row(struct sk_sweep *s, const char *path, long index, const char *row,
                    int (*on_row)(void *, long, const char *), void *ctx, bool *quiet)
{
    int rc = sk_sweep_append(s, path, index, row);
    if (!rc && on_row && !*quiet && on_row(ctx, index, row)) *quiet = true;
    return rc;
}

int cli_sweep_run(struct sk_sweep *s, const char *path, int (*on_row)(void *ctx, long index, const char *row), void *ctx)
{
    if (!cli_dist_on()) return sk_sweep_run(s, path, on_row, ctx);
    bool root = sk_dist_rank() == 0, quiet = false;
    long n = sk_sweep_size(s), n_todo = 0;
    long *todo = sk_malloc(sizeof(long) * (size_t)(n > 0 ? n : 1));
    if (!todo) return SK_ENOMEM;
    if (root)
        for (long i = sk_sweep_next(s, 0); i >= 0; i = sk_sweep_next(s, i + 1)) todo[n_todo++] = i;
    int rc = sk_dist_bcast(&n_todo, sizeof n_todo, 0);
    if (!rc) rc = sk_dist_bcast(todo, sizeof(long) * (size_t)n_todo, 0);
    struct sk_dist_queue *q = rc ? NULL : sk_dist_queue_new(n_todo);
    if (!q) {
        sk_free(todo);
        return rc ? rc : SK_ENOMEM;
    }
    long t, index;
    void *row;
    size_t bytes;
    while (!rc && !(rc = sk_dist_queue_next(q, &t)) && t >= 0) {
        char *mine = NULL;
        if ((rc = sk_sweep_run_one(s, todo[t], &mine))) break;
        rc = sk_dist_queue_put(q, todo[t], mine, strlen(mine));
        sk_free(mine);
        /* rank 0 writes the rows that came in while it worked */
        while (!rc && root && !(rc = sk_dist_queue_take(q, false, &index, &row, &bytes)) && index >= 0) {
            rc = take_row(s, path, index, row, on_row, ctx, &quiet);
            sk_free(row);
        }
    }
    while (!rc && root && !(rc = sk_dist_queue_take(q, true, &index, &row, &bytes)) && index >= 0) {
        rc = take_row(s, path, index, row, on_row, ctx, &quiet);
        sk_free(row);
    }
    if (!rc) sk_dist_queue_free(q); /* collective: a failed rank ends the job instead */
    sk_free(todo);
    return rc;
}
