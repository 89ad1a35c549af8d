/* cli_dist.h — a command on several processes (mpirun -np N skeptic ...).
 *
 * Rank 0 is the command as it runs alone: it prints, writes every file and
 * checks beforehand that the outputs can be written; the other ranks compute
 * their share and hand it to rank 0 (skeptic/dist.h). Their stdout goes to
 * /dev/null; their stderr stays, so that a rank's own failure is seen. A
 * failure on one rank ends the whole job (MPI_Abort with the message), so no
 * rank waits for ever on a rank that has given up; a usage error, which
 * every rank finds alike, ends every rank on its own. Alone (or built
 * without MPI) none of this does anything. */
#ifndef SKEPTIC_CLI_DIST_H
#define SKEPTIC_CLI_DIST_H

#include <stdbool.h>

#include "cli/cli.h"
#include "skeptic/dist.h"

/* Join the job when started by mpirun (first thing in main). */
void cli_dist_start(int *argc, char ***argv);
/* The exit code of a command: a failure this rank met alone ends the job. */
int cli_dist_end(int rc);
/* More than one process. */
bool cli_dist_on(void);
/* cli_check_outputs on rank 0; every rank returns rank 0's verdict. */
int cli_dist_check_outputs(const struct cli_path *outs, const struct cli_path *ins);
/* Every rank's status becomes the first failure in rank order (SK_OK when
 * none): call it where a step may fail on some ranks and not on others, so
 * that all go on or all stop together. The failing ranks printed their
 * message; the others return CLI_FAIL quietly. */
int cli_dist_all_ok(int status);
/* This rank's rows [*lo, *hi) of n, in whole blocks of `align` rows (the
 * last block may be short): ranks get ceil(r b / N) .. ceil((r + 1) b / N)
 * of the b = ceil(n / align) blocks, so rank 0 always holds rows and a
 * rank's library calls cut its rows into the very batches one process cuts
 * (boundaries at multiples of the batch). That matters: OpenBLAS may round
 * a row's products differently with the number of rows in the call (its
 * small-matrix and edge kernels), so identical batches are what makes a
 * row's result identical bit for bit. */
void cli_dist_shard(long n, long align, long *lo, long *hi);
/* The batches of the library's one-pass commands: sk_model_log_probs takes
 * 256 rows per pass, the certifiers 128 (src/model/model.c, src/certify/ibp.c). */
#define CLI_DIST_ROWS 256
/* Concatenate every rank's rows of `row_bytes` bytes each ([lo, hi) of
 * cli_dist_shard, at mine) into all (n rows) on rank 0; identity alone. A
 * failure is printed and ends the job. */
int cli_dist_gather_rows(const void *mine, long lo, long hi, size_t row_bytes, void *all, long n);
/* For a command or mode that does not share its work: whether this rank
 * sits the run out (every rank but 0 when several run). A rank that sits out
 * returns CLI_OK at once; rank 0 runs the command alone, as without mpirun. */
bool cli_dist_sit_out(const char *what);

#endif
