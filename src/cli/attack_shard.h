/* attack_shard.h — skeptic attack's rows shared out over the ranks of
 * mpirun (cli_dist.h), gathered on rank 0 into the result one process
 * would have produced.
 *
 * Every rank attacks its share [lo, hi) of the rows, in whole batches of
 * cfg.batch rows (cli_dist_shard), with cfg.first_row = lo, so that each row
 * draws what it draws in one evaluation and the clean pass sees one
 * process's batches. A deterministic classifier's per-row results (x_adv,
 * predictions, targets, success, norms) are then one process's, bit for bit,
 * as long as a row's arithmetic does not depend on the rows that share its
 * classifier call: the attacks' later batches hold the rows still standing,
 * which differ between one process and a share, and OpenBLAS may round a
 * row differently with the row count of a product (docs/mpi.md). The figures
 * are computed on rank 0 from the gathered rows (clean and robust accuracy, success rate, mean and median
 * norm, each stage's attacked and broken counts and robust accuracy). The
 * cost figures (input gradients, forward rows) are the sum of the ranks'
 * work, seconds rank 0's wall time; the audits run on rank 0's share only,
 * so their warnings speak of those rows. A stochastic classifier is never
 * shared out (its draws depend on the batch): see cmd_attack.c. */
#ifndef SKEPTIC_CLI_ATTACK_SHARD_H
#define SKEPTIC_CLI_ATTACK_SHARD_H

#include "skeptic/attack.h"

/* sk_attack_evaluate, shared out when several ranks run. On rank 0 the
 * whole result; on the others a result of their share (NULL + message on
 * failure, as sk_attack_evaluate). */
struct sk_attack_result *cli_attack_evaluate(struct sk_classifier *c, const struct sk_attack_config *cfg,
                                             const float *x, const int *y, int n);
/* sk_attack_curve, shared out alike (results[] and robust_acc[] whole on rank 0). */
int cli_attack_curve(struct sk_classifier *c, const struct sk_attack_config *cfg, const float *eps_list, int n_eps,
                     const float *x, const int *y, int n, double *robust_acc, struct sk_attack_result **results);

#endif
