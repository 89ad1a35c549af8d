/* The seed study's parts: the run loop and the step results (study.c), the
 * steps (study_steps.c), the report writer (study_report.c). */
#ifndef SKEPTIC_STUDY_IMPL_H
#define SKEPTIC_STUDY_IMPL_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "skeptic/data.h"
#include "skeptic/study_seed.h"

/* The sizes of one profile. */
struct study_sizes {
    int fm_train, fm_test, ood_n;      /* Fashion-MNIST rows (0 = all) and MNIST OOD rows */
    const char *shirt_arch;            /* experiment 1 */
    int shirt_epochs;
    const char *fm10_arch;             /* experiment 2 */
    int fm10_epochs;
    int adv_n, pgd_steps, suite_queries, suite_steps;
    int n_eps;
    float eps[8];
    const char *methods;               /* experiment 3 */
    int epochs, vi_epochs, sgld_epochs, members, samples, attack_samples, cmp_adv;
    int cal_n, n_cal_eps;              /* next check 1 */
    float cal_eps[8];
    int n_depths, n_widths;            /* next check 2 */
    int depths[4], widths[4];
    int grid_epochs, grid_adv;
    int n_opts, n_batches;             /* next check 3 */
    const char *opts[4];
    int batches[3];
    int ob_depth, ob_width, ob_train, ob_epochs, curv_n;
    int eot_n, n_eot;                  /* open question 2 */
    int eot[6];
    int cert_n, cert_samples, n_cert_eps; /* open question 1 */
    float cert_eps[8];
};

struct study {
    struct sk_study_config c;
    const struct study_sizes *z;
    char dir[900];
    struct sk_dataset *fm_tr, *fm_te, *mn_te; /* loaded on first use */
    FILE *log;
    int step, n_steps;
    const char *id;
    double done_est, total_est, step_est;
    cJSON *res;                         /* the running step's result */
};

/* ---- study.c ---- */
/* DIR/rel into buf. */
const char *study_path(const struct study *s, char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void study_progress(struct study *s, double frac, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void study_log(struct study *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fashion-MNIST train/test (profile-sized) and MNIST test (OOD; NULL with a
 * note when the digits are not installed). */
int study_data(struct study *s);
/* The result of a finished step (owned by the caller), NULL if not finished. */
cJSON *study_load_step(const struct study *s, const char *id);
/* A configuration's saved result within a step (steps/ID/KEY.json), NULL if none; and saving one. */
cJSON *study_load_part(const struct study *s, const char *key);
int study_save_part(const struct study *s, const char *key, const cJSON *part);
int study_write_json(const char *path, const cJSON *j);
cJSON *study_read_json(const char *path);

/* Building the running step's result. */
void study_text(struct study *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void study_num(struct study *s, const char *key, double v);
/* A table: returns its "rows" array; add rows with study_row. */
cJSON *study_table(struct study *s, const char *caption, const char *const *cols, int n_cols);
/* A row of cells: 's' string, 'd' double (NaN = null), 'i' int, as fmt says ("sdd"). */
void study_row(cJSON *rows, const char *fmt, ...);
/* A PNG written under figures/ (name without extension) entered as a figure. */
void study_figure(struct study *s, const char *name, const char *caption);

/* ---- study_steps.c ---- */
struct study_step {
    const char *id, *title;
    const char *deps;                  /* comma list of steps whose results it reads */
    int (*run)(struct study *s);
    double est[2];                     /* seconds on two idle cores: quick, full (measured, rounded up) */
    const char *what[2];
};
extern const struct study_step study_steps[];
extern const int study_n_steps;
const struct study_sizes *study_sizes_of(enum sk_study_profile p);

/* ---- study_report.c ---- */
int study_report_write(const struct study *s);

#endif
