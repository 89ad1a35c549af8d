/* skeptic train --track curvature: probes of the training dynamics every K
 * optimiser steps (sk_curvature_track), written as JSON lines into --log
 * next to the per-epoch lines. */
#ifndef SKEPTIC_CLI_TRAIN_TRACK_H
#define SKEPTIC_CLI_TRAIN_TRACK_H

#include "cli/cli.h"

struct cli_track {
    struct sk_curvature_track *tr; /* owned; NULL: no tracking */
    FILE *log;                     /* borrowed: the --log file */
    long every;                    /* K */
};
/* Start probing m every `every` steps on the subsets of cfg (train rows x/y/n,
 * test rows xt/yt/nt), logging into log; probes once at once when the
 * trainer t has taken no step yet. CLI_OK or a printed failure. */
int cli_track_start(struct cli_track *k, struct sk_model *m, const float *x, const int *y, int n, const float *xt,
                    const int *yt, int nt, const struct sk_curvature_track_config *cfg, long every, FILE *log,
                    struct sk_trainer *t);
/* sk_train_config.on_step with ctx = the cli_track. */
int cli_track_on_step(void *ctx, struct sk_trainer *t);
void cli_track_free(struct cli_track *k);

#endif
