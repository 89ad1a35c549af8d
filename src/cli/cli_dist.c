/* The command line's side of several processes: see cli_dist.h. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli_dist.h"

#include <stdio.h>
#include <stdlib.h>

/* A failure that every rank knows of (agreed through rank 0): no abort. */
static bool agreed_failure;

static void finalize_at_exit(void) { sk_dist_finalize(); }

void cli_dist_start(int *argc, char ***argv)
{
    if (sk_dist_init(argc, argv)) {
        fprintf(stderr, "skeptic: %s\n", sk_last_error());
        exit(CLI_FAIL);
    }
    if (!sk_dist_built_with_mpi() && (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE")))
        fprintf(stderr, "skeptic: note: this skeptic was built without MPI: under mpirun every process runs the whole "
                        "command alone (rebuild with libopenmpi-dev installed, docs/mpi.md)\n");
    if (sk_dist_size() <= 1) return;
    atexit(finalize_at_exit);
    if (sk_dist_rank() != 0) {
        /* one output: rank 0's */
        if (!freopen("/dev/null", "w", stdout)) fprintf(stderr, "skeptic: rank %d: cannot silence stdout\n", sk_dist_rank());
        cli_verbosity = -1;
    }
}

int cli_dist_end(int rc)
{
    if (sk_dist_size() > 1 && rc != CLI_OK && rc != CLI_USAGE && !agreed_failure) {
        char msg[96];
        snprintf(msg, sizeof msg, "the command failed on this rank (exit code %d): ending every rank", rc);
        sk_dist_abort(msg, rc);
    }
    return rc;
}

bool cli_dist_on(void) { return sk_dist_size() > 1; }

int cli_dist_check_outputs(const struct cli_path *outs, const struct cli_path *ins)
{
    int rc = sk_dist_rank() == 0 ? cli_check_outputs(outs, ins) : CLI_OK;
    rc = sk_dist_agree(rc, 0);
    if (rc) agreed_failure = true;
    return rc;
}

int cli_dist_all_ok(int status)
{
    if (sk_dist_size() <= 1) return status;
    /* the number of failing ranks, as a sum that every rank learns at once */
    double failed = status ? 1 : 0;
    if (sk_dist_allreduce_sum_f64(&failed, 1)) {
        sk_dist_abort(sk_last_error(), CLI_FAIL);
        return CLI_FAIL;
    }
    if (failed > 0) {
        agreed_failure = true;
        return status ? status : CLI_FAIL;
    }
    return CLI_OK;
}

bool cli_dist_sit_out(const char *what)
{
    if (sk_dist_size() <= 1) return false;
    if (sk_dist_rank() == 0)
        fprintf(stderr, "skeptic %s: %s runs on rank 0 alone (%d ranks started; the others wait)\n", cli_command,
                what, sk_dist_size());
    return sk_dist_rank() != 0;
}

void cli_dist_shard(long n, long align, long *lo, long *hi)
{
    long P = sk_dist_size(), r = sk_dist_rank(), a = align > 0 ? align : 1, b = (n + a - 1) / a;
    long b0 = (r * b + P - 1) / P, b1 = ((r + 1) * b + P - 1) / P;
    *lo = b0 * a < n ? b0 * a : n;
    *hi = b1 * a < n ? b1 * a : n;
}

int cli_dist_gather_rows(const void *mine, long lo, long hi, size_t row_bytes, void *all, long n)
{
    (void)lo;
    if (sk_dist_gather(mine, row_bytes * (size_t)(hi - lo), all, row_bytes * (size_t)n)) return cli_fail_lib();
    return CLI_OK;
}
