/* study_seed.h — the seed study: every experiment, next check and open
 * question of the review paper's summary as one resumable run that writes a
 * self-contained report (included by skeptic/study.h).
 *
 *   struct sk_study_config cfg = sk_study_defaults(SK_STUDY_QUICK);
 *   cfg.out = "study-quick";
 *   if (sk_study_run(&cfg)) fprintf(stderr, "%s\n", sk_last_error());
 *   // study-quick/report.html, report.json, models/, figures/, steps/, study.log
 *
 * The run is a list of steps (sk_study_plan). Each step saves its result as
 * OUT/steps/ID.json the moment it finishes (atomically), and steps that
 * train several networks also save each network and each configuration's
 * figures as they finish; a run started again on the same directory with
 * the same profile and seed reads what is there and computes the rest.
 * Every random stream derives from cfg.seed and no step depends on the
 * order it runs in, so an interrupted and resumed study gives the numbers
 * of an uninterrupted one bit for bit (for the same thread count).
 */
#ifndef SKEPTIC_STUDY_SEED_H
#define SKEPTIC_STUDY_SEED_H

#include "skeptic/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sk_study_profile {
    SK_STUDY_QUICK = 0, /* subsets and few epochs: minutes on two cores */
    SK_STUDY_FULL = 1,  /* the data sets' real sizes: hours */
};
const char *sk_study_profile_name(enum sk_study_profile p); /* "quick", "full" */
int sk_study_profile_parse(const char *s);                   /* -1 if unknown */

/* What the progress callback sees. Pointers live for the call only. */
struct sk_study_progress {
    int step, n_steps;       /* 0-based index of the running step in the plan */
    const char *id;          /* its id ("exp2") */
    const char *what;        /* what it is doing now ("training depth 2 width 256") */
    double step_frac;        /* of this step, in [0,1] */
    double done_est;         /* estimated seconds of the steps finished (or skipped) so far */
    double total_est;        /* estimated seconds of the whole plan */
    double step_est;         /* estimated seconds of this step */
    bool skipped;            /* the step was found finished in the output directory */
    bool finished;           /* the step has just finished */
};

struct sk_study_config {
    enum sk_study_profile profile;
    const char *out;         /* the output directory (created); required */
    const char *only;        /* NULL, or a comma list of step ids to run (the steps they read from
                              * must be finished in out already, or are run first) */
    uint64_t seed;           /* of every stream (default 1) */
    const char *command;     /* the command line that runs this study, shown in the report
                              * (NULL: "skeptic study seed --profile P --out OUT") */
    const char *cancer_csv;  /* the Wisconsin breast-cancer table (NULL: python3-sklearn's copy) */
    void (*on_progress)(void *ctx, const struct sk_study_progress *p); /* NULL: silent */
    void *ctx;
};
struct sk_study_config sk_study_defaults(enum sk_study_profile profile);

/* One entry of the plan. */
struct sk_study_step_info {
    const char *id;          /* "exp1", ..., "oq3" */
    const char *title;
    const char *what;        /* what the step runs at this profile, in one sentence */
    double est_seconds;      /* estimated time on two cores, optimised build */
    bool done;               /* OUT/steps/ID.json exists for this profile and seed */
};
/* The steps of cfg's profile in order, into steps[0..*n) (cap entries at
 * most; SK_STUDY_MAX_STEPS suffices), with done set from cfg->out. */
#define SK_STUDY_MAX_STEPS 16
int sk_study_plan(const struct sk_study_config *cfg, struct sk_study_step_info *steps, int cap, int *n);

/* Run the plan (the steps not finished yet), then write OUT/report.json
 * (every number of the report) and OUT/report.html (one file: the figures
 * embedded as base64 PNG, no external links). SK_EINVAL naming the field
 * (study.out, study.only) for a bad config; SK_EIO naming the file; SK_ESTATE
 * when OUT holds a study of another profile or seed. */
int sk_study_run(const struct sk_study_config *cfg);

/* Write report.json and report.html from the finished steps in cfg->out
 * (steps not finished are shown as not run). */
int sk_study_write_report(const struct sk_study_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
