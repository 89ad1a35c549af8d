/* sweep_dist.h — skeptic sweep over the ranks of mpirun (cli_dist.h). */
#ifndef SKEPTIC_CLI_SWEEP_DIST_H
#define SKEPTIC_CLI_SWEEP_DIST_H

#include "skeptic/study.h"

/* sk_sweep_run, shared out when several ranks run: rank 0 lists the
 * configurations not yet finished in path (sk_sweep_resume must have run on
 * rank 0) and hands their indices out one at a time through the work queue
 * (sk_dist_queue_*), to itself too; every rank runs what it is handed
 * (sk_sweep_run_one) and sends the row to rank 0, which appends the rows to
 * path as they come in (sk_sweep_append) and calls on_row on each (its
 * nonzero return stops the calls, not the sweep). A row depends on its
 * configuration only, so the set of rows is one process's whatever the
 * ranks and the timing; the file's order is arrival order (the summary
 * reads rows by configuration, not by line). Alone: sk_sweep_run. Returns
 * SK_OK or a status with sk_last_error() (a rank's failure ends the job). */
int cli_sweep_run(struct sk_sweep *s, const char *path, int (*on_row)(void *ctx, long index, const char *row), void *ctx);

#endif
