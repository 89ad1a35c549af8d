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
    const char *next_phase; /* a second run of epochs (SGLD after its warm start) is this phase, */
    int next_epochs;        /* of this many epochs */
    struct sk_epoch_metrics last; /* the last epoch's figures (for the summary) */
    int epochs_run;         /* epochs finished, over every member and phase */
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
/* The figures every training run ends with, the same for every method. */
struct cli_train_summary {
    const char *out, *arch, *method;
    size_t params;
    int epochs_run, train_rows, val_rows, test_rows;
    long test_correct;
    double train_loss, train_acc, val_loss, test_acc, test_loss, seconds;
    uint64_t weights_hash;
};
/* The JSON object of a run (owned by the caller): model, arch, method,
 * params, epochs_run, train_rows, val_rows, test_rows, train_loss,
 * train_acc, val_loss, test_accuracy, test_correct, test_loss, seconds,
 * weights_fnv1a64. */
cJSON *cli_train_summary_json(const struct cli_train_summary *s);
/* The three lines on stdout: model, trained, test. */
void cli_train_summary_print(const struct cli_train_summary *s);
void cli_train_interrupted(const struct cli_train_report *r, int epoch, int batch, long step, const char *what);

#endif
