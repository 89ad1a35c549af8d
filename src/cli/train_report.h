/* What `skeptic train` shows while it trains, the same for every --method:
 * the progress bar (with "member 3/5" for ensembles and the phase of SGLD),
 * one line per epoch, the --log JSON lines, checkpoints, and the message
 * after Ctrl-C. */
#ifndef SKEPTIC_CLI_TRAIN_REPORT_H
#define SKEPTIC_CLI_TRAIN_REPORT_H

#include "cli/cli.h"

struct cli_train_report {
    struct cli_progress prog;
    FILE *log;              /* --log, or NULL */
    const char *ckpt;       /* --checkpoint, or NULL */
    const char *ckpt_meta;  /* metadata of the checkpoints */
    long ckpt_step;         /* step of the last checkpoint written (-1: none) */
    int n_epochs;           /* epochs of the current phase */
    int n_members;          /* > 1: an ensemble, members trained one after another */
    int member;             /* 1-based, counted from the epoch callbacks */
    const char *phase;      /* a label before "epoch" ("warm start", "sampling"), or NULL */
    int last_epoch, last_batch;
    bool member_mode;       /* a new run of epochs starts a new member */
};
void cli_train_report_init(struct cli_train_report *r, int n_epochs, int n_members);
/* sk_train_config callbacks; ctx is the report. */
void cli_train_on_batch(void *ctx, int epoch, int batch, int n_batches, float loss, double samples_per_s);
int cli_train_on_epoch(void *ctx, const struct sk_epoch_metrics *em);
int cli_train_on_checkpoint(void *ctx, struct sk_trainer *t);
/* After a run that stopped on cli_interrupted: "interrupted at epoch E,
 * batch B (step S)", then what was kept (the clause is appended). */
void cli_train_interrupted(const struct cli_train_report *r, int epoch, int batch, long step, const char *what);

#endif
