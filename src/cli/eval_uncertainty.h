/* The uncertainty side of `skeptic eval` (owned by the Bayesian work; one
 * option macro and one call in cmd_eval.c). */
#ifndef SKEPTIC_CLI_EVAL_UNCERTAINTY_H
#define SKEPTIC_CLI_EVAL_UNCERTAINTY_H

#include "cli/cli.h"

struct cli_unc_opts {
    int samples;         /* --samples S (0 = not given; 20 then) */
    const char *ood;     /* --ood D */
    const char *plots;   /* --plots DIR */
    uint64_t seed;       /* --mc-seed S */
    const char *predictions; /* eval --predictions FILE.npy: log of the predictive */
    const char *logits;      /* eval --logits FILE.npy: deterministic files only */
};
#define CLI_UNC_OPTS(u)                                                                                          \
    { "samples", CLI_INT, &(u).samples, "S", "posterior samples per prediction (Bayesian models; default 20)" }, \
    { "ood", CLI_STR, &(u).ood, "D", "out-of-distribution data for detection AUROC/AUPR/FPR95 (e.g. mnist)" },   \
    { "plots", CLI_STR, &(u).plots, "DIR", "write reliability.png, entropy.png, mutual_information.png here" },   \
    { "mc-seed", CLI_U64, &(u).seed, "S", "seed of the posterior samples (default 0)" }

/* Whether the file holds a Bayesian posterior (or a temperature). */
bool cli_is_posterior_file(const char *path);
/* The whole eval of a posterior file; returns the exit code. */
int cli_eval_uncertainty(const struct cli_common *c, const struct cli_unc_opts *u);

/* eval's per-class accuracy and confusion matrix (conf: K x K counts, rows
 * the true class), the same block whatever the model and flags; Fashion-MNIST
 * class names beside the numbers (data: the --data name, classes: the
 * model's recorded class list, "" for all). */
void cli_eval_print_classes(const long *conf, int K, const char *data, const char *classes);

/* `skeptic train --method M` with M other than deterministic goes here. */
bool cli_train_wants_bayes(int argc, char **argv);
int cli_train_bayes(int argc, char **argv);

#endif
