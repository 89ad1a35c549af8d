/* cli.h — helpers shared by every `skeptic <command>`: option parsing with
 * per-command --help (usage, options, an example), exit codes, error
 * printing, --json output (exactly one object on stdout), the progress bar,
 * --log JSON lines, and loading data and models the same way everywhere.
 *
 * A command is `int cmd_NAME(int argc, char **argv)` with argv[0] the
 * command name; it returns an exit code. It is listed in main.c's table.
 *
 * A typical command:
 *
 *   int cmd_foo(int argc, char **argv) {
 *       struct cli_common c = cli_common_defaults();
 *       int n = 100;
 *       struct cli_opt opts[] = {
 *           CLI_MODEL_OPTS(c), CLI_DATA_OPTS(c), CLI_JSON_OPT(c),
 *           { "n", CLI_INT, &n, "N", "number of test rows (default 100)" },
 *           { 0 } };
 *       static const struct cli_help h = { "foo", "skeptic foo --model M --data D [options]",
 *           "Does foo to a model.", "skeptic foo --model mlp.safetensors --data fashion-mnist --n 500" };
 *       int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
 *       if (rc) return rc < 0 ? CLI_OK : rc;          // -1: --help was printed
 *       char *meta = NULL;
 *       struct sk_model *m = cli_load_model(&c, &meta);
 *       struct sk_dataset *d = m ? cli_load_eval_data(&c, m, meta) : NULL;
 *       ...
 *       cJSON *out = cJSON_CreateObject(); ...; if (c.json) cli_json_print(out);
 *   }
 */
#ifndef SKEPTIC_CLI_H
#define SKEPTIC_CLI_H

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "skeptic/skeptic.h"

/* Exit codes. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_INTERRUPTED = 130 /* 128 + SIGINT, as shells report it */ };

/* The command now running (for error messages), set by main. */
extern const char *cli_command;

/* ---- options ---- */
enum cli_opt_type {
    CLI_STR,   /* const char **   */
    CLI_INT,   /* int *           */
    CLI_FLOAT, /* float *         */
    CLI_U64,   /* uint64_t *      */
    CLI_FLAG,  /* bool *, no value */
    CLI_LONG,  /* long *          */
    CLI_GROUP, /* not an option: a heading of --help ("data"); CLI_GROUP_HEAD */
};
/* A heading in an option table: the options below it form one group of
 * --help. A table that starts with one is printed grouped. */
#define CLI_GROUP_HEAD(title) { title, CLI_GROUP, NULL, NULL, NULL }
struct cli_opt {
    const char *name;      /* "epochs" for --epochs; NULL ends the table */
    enum cli_opt_type type;
    void *dst;
    const char *meta;      /* value placeholder in --help ("N"); NULL for flags */
    const char *help;
};
struct cli_help {
    const char *name;      /* "train" */
    const char *usage;     /* "skeptic train --data D --arch SPEC [options]" */
    const char *summary;   /* one or more sentences */
    const char *example;   /* one or more lines of example commands */
};

/* Parse argv[1..argc) against opts. "--name value" and "--name=value" are
 * both accepted; "-h"/"--help" prints help to stdout. An option "threads"
 * (CLI_THREADS_OPT) given a count other than 0 sets the library's threads, so
 * no command does. Positional arguments
 * go to pos[0..max_pos) (*n_pos counts them; pos may be NULL when none are
 * allowed). Returns 0 on success, -1 after printing --help (the command then
 * exits 0), CLI_USAGE after printing a usage error to stderr. Values are
 * checked: an integer flag given "ten" is a usage error naming the flag. */
int cli_parse(int argc, char **argv, const struct cli_help *h, const struct cli_opt *opts, const char **pos,
              int max_pos, int *n_pos);
void cli_print_help(FILE *fp, const struct cli_help *h, const struct cli_opt *opts);

/* A file a command reads or writes, named by its flag ("--out"); a table
 * ends with flag NULL; entries with path NULL (not given) are skipped. */
struct cli_path {
    const char *flag;
    const char *path;
    bool dir;              /* outputs: a directory the command creates or fills */
};
/* Before any work: every output can be created (its directory exists and is
 * writable; it is not a directory, or is one when .dir), none is one of the
 * inputs (same file: refused naming both flags, exit 2) and no two outputs
 * are the same file. Prints the problem; returns CLI_OK, CLI_USAGE or CLI_FAIL. */
int cli_check_outputs(const struct cli_path *outs, const struct cli_path *ins);

/* Print "skeptic CMD: error: ..." to stderr and return CLI_FAIL / CLI_USAGE. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_fail with sk_last_error() as the message (the data options' and the
 * learning rate's fields named by their flags, as cli_fail_lib_map does). */
int cli_fail_lib(void);

/* The library's messages name config fields ("adv.eps"); the command line
 * names the flag that sets each ("--adv-eps"). A table ends with { NULL }. */
struct cli_field_flag {
    const char *field;
    const char *flag;
};
/* cli_fail_lib / cli_usage with every field of map that sk_last_error()
 * names (as a whole word) replaced by its flag. */
int cli_fail_lib_map(const struct cli_field_flag *map);
int cli_usage_lib(const struct cli_field_flag *map);

/* ---- options most commands share ---- */
struct cli_common {
    const char *model;       /* --model FILE */
    const char *arch;        /* --arch SPEC (for files without skeptic.spec, e.g. from PyTorch) */
    const char *data;        /* --data NAME|PATH */
    const char *split;       /* --split train|test|all (default set by the command) */
    const char *classes;     /* --classes 6,0 */
    const char *labels;      /* --labels FILE (npy / IDX labels) */
    const char *label_column;/* --label-column NAME|INDEX (CSV) */
    const char *header;      /* --header yes|no|auto (CSV) */
    float test_fraction;     /* --test-fraction F (CSV/npy test split) */
    uint64_t data_seed;      /* --data-seed S (synthetic sets, CSV/npy split) */
    int limit;               /* --n N: first N rows only (0 = all) */
    int threads;             /* --threads T */
    bool json;               /* --json */
};
struct cli_common cli_common_defaults(void);
#define CLI_MODEL_OPTS(c)                                                                                        \
    { "model", CLI_STR, &(c).model, "FILE", "model file (.safetensors or .onnx)" },                                      \
    { "arch", CLI_STR, &(c).arch, "SPEC", "architecture, for model files without one (e.g. saved by PyTorch)" }
#define CLI_DATA_OPTS(c)                                                                                         \
    { "data", CLI_STR, &(c).data, "D", "fashion-mnist | mnist | moons | spirals | blobs[:k=3,...] | DIR | FILE.csv | FILE.npy" }, \
    { "split", CLI_STR, &(c).split, "S", "train | test | all" },                                                \
    { "classes", CLI_STR, &(c).classes, "LIST", "keep these classes, relabelled 0..k-1 (e.g. 6,0)" },            \
    { "labels", CLI_STR, &(c).labels, "FILE", "labels file for .npy or IDX images" },                            \
    { "label-column", CLI_STR, &(c).label_column, "COL", "CSV label column: name or 0-based index (default: last)" }, \
    { "header", CLI_STR, &(c).header, "yes|no|auto", "CSV header line (default auto)" },                        \
    { "test-fraction", CLI_FLOAT, &(c).test_fraction, "F", "CSV/npy: stratified fraction held out as test (default 0.2)" }, \
    { "data-seed", CLI_U64, &(c).data_seed, "S", "seed of synthetic data and of the CSV/npy split (default 1)" }, \
    { "n", CLI_INT, &(c).limit, "N", "use only the first N rows (of each split)" }
#define CLI_JSON_OPT(c) { "json", CLI_FLAG, &(c).json, NULL, "print one JSON object with the results on stdout" }
#define CLI_THREADS_OPT(c) { "threads", CLI_INT, &(c).threads, "T", "threads (default: all cores)" }

/* Parse "6,0" into classes[0..*k) (at most cap); CLI_USAGE on a bad list. */
int cli_parse_classes(const char *s, int *classes, int cap, int *k);

/* Open c->data split `split` (c->split if set overrides it), then select
 * c->classes, then cut to c->limit rows. Prints nothing; NULL +
 * sk_last_error() on failure. */
struct sk_dataset *cli_load_data(const struct cli_common *c, const char *split);

/* Load c->model (with c->arch if given); *meta receives the file's
 * __metadata__ JSON (free with sk_free). On failure prints the error and
 * returns NULL. */
struct sk_model *cli_load_model(const struct cli_common *c, char **meta);

/* sk_model_record_data with c's data set, class selection, data seed and
 * test fraction. Every training command calls it before training. */
int cli_record_training_data(struct sk_model *m, const struct cli_common *c, const struct sk_dataset *train,
                             enum sk_prep_kind prep);
/* Open data set `name` (split `split`) as model m was trained on it: the
 * class selection and split recorded in m (c's --classes, --data-seed and
 * --test-fraction must agree with the record: otherwise an error naming
 * both), then c->limit rows; raw values (m applies its own preprocessing).
 * NULL + sk_last_error() on failure. */
struct sk_dataset *cli_open_model_data(const struct cli_common *c, const struct sk_model *m, const char *name,
                                       const char *split);
/* cli_open_model_data of c->data (split c->split, or "test"), checking that
 * the labels fit the model's classes. On failure prints the error and
 * returns NULL. (meta is unused: the record travels in the model.) */
struct sk_dataset *cli_load_eval_data(const struct cli_common *c, const struct sk_model *m, const char *meta);

/* The valid input box of attacks, adversarial training and certification
 * (--clip-min / --clip-max, NaN when not given):
 *   given: both or neither, lo < hi, and every value of d inside it;
 *   not given: [0,1] when every value of d lies in it (images), else
 *   (allow_none) no box, *lo = *hi = 0, or the data's own range [min, max];
 *   the last two with a note on stderr naming the range, so a tabular data
 *   set is never silently clipped into [0,1] (which weakens attacks).
 * Returns CLI_OK, or the exit status after printing what was wrong. */
int cli_input_box(const char *cmd, const char *data, const struct sk_dataset *d, float given_lo, float given_hi,
                  bool allow_none, float *lo, float *hi);
/* cli_input_box, or for tabular rows (not images) without --clip-min/max:
 * a box per feature, owned arrays *blo, *bhi (d->dim each, sk_free; NULL
 * when the scalar box applies). m given: the training range the model
 * records (m->in_lo/in_hi; none recorded: the scalar box), widened to the
 * values of d's rows; m NULL: d's own range per feature (the training split
 * itself). *lo, *hi: the smallest lower and largest upper end. Prints a
 * note naming the box. */
int cli_feature_box(const char *cmd, const char *data, const struct sk_dataset *d, const struct sk_model *m,
                    float given_lo, float given_hi, bool allow_none, float *lo, float *hi, float **blo, float **bhi);
#define CLI_BOX_OPTS(lo, hi)                                                                                      \
    { "clip-min", CLI_FLOAT, &(lo), "X", "lower end of the valid input box (default 0 if the data lie in [0,1], else their minimum)" }, \
    { "clip-max", CLI_FLOAT, &(hi), "X", "upper end of the valid input box (default 1 if the data lie in [0,1], else their maximum)" }

/* ---- output ---- */
/* Print o as one line of JSON on stdout and delete it. */
void cli_json_print(cJSON *o);
/* Add a number that may be NaN/Inf (written as null). */
void cli_json_num(cJSON *o, const char *key, double v);

/* ---- the terminal (term.c) ---- */
/* -1 under --quiet (results and errors only), 0 normally, 1 under --verbose.
 * cli_parse sets it from --quiet/-q and --verbose/-v, which every command takes. */
extern int cli_verbosity;
/* SIGWINCH marks the width stale (main installs it before any command runs). */
void cli_term_install(void);
/* Columns of the terminal fp is on (else stderr's, stdout's, $COLUMNS), 80
 * when none; re-read after the window changed size. */
int cli_term_width(FILE *fp);
/* Whether fp takes colour: a terminal, TERM not "dumb", NO_COLOR unset or empty. */
bool cli_color(FILE *fp);
enum cli_style { CLI_STYLE_OFF, CLI_STYLE_ERROR, CLI_STYLE_WARN, CLI_STYLE_GOOD, CLI_STYLE_BAD, CLI_STYLE_BOLD, CLI_STYLE_DIM };
/* The escape sequence of style s for fp, "" where fp takes no colour. */
const char *cli_sgr(FILE *fp, enum cli_style s);
/* Print text from column first_col, wrapped at width columns (lines end
 * before the last column), continuation lines indented by indent; words are
 * never broken; '\n' in text starts a new indented line. No final newline. */
void cli_wrap(FILE *fp, const char *text, int indent, int first_col, int width);
/* $PAGER (default less, with LESS=FRX as git sets it) when stdout and stdin
 * are terminals; NULL otherwise or for PAGER=cat/"" (then print to stdout). */
FILE *cli_pager_open(void);
void cli_pager_close(FILE *fp); /* NULL ok */
/* Damerau-Levenshtein distance, case-insensitive (99 for words over 63 chars). */
int cli_edit_distance(const char *a, const char *b);
/* The candidate nearest to word when near enough to be a typo of it, else NULL. */
const char *cli_suggest(const char *word, const char *const *cands, int n);
/* A usage error for a value not among choices: lists them, suggests the nearest. */
int cli_bad_choice(const char *flag, const char *value, const char *const *choices, int n);
/* `skeptic help TOPIC` (specs, eps, ood, files, exit-codes), paged on a
 * terminal; an unknown topic is a usage error suggesting the nearest topic
 * or command (commands: NULL-terminated names). */
int cli_help_topic(const char *topic, const char *const *commands);
/* Ctrl-C during long work: after cli_interrupt_arm, the first SIGINT sets
 * cli_interrupted (hand &cli_interrupted to the library as its stop flag,
 * e.g. sk_train_config.stop) and the command reports where it stopped and
 * exits CLI_INTERRUPTED; a second SIGINT ends the process at once (an atomic
 * write in progress leaves no temporary behind). cli_interrupt_disarm
 * restores the handler of before. */
extern volatile sig_atomic_t cli_interrupted;
void cli_interrupt_arm(void);
void cli_interrupt_disarm(void);
/* A float as the user wrote it: the shortest decimal that reads back as v
 * (0.1f is "0.1", not 0.10000000149011612) into buf; returns that decimal as
 * a double (for JSON). */
double cli_float_as_given(float v, char *buf, size_t cap);
/* "1:05", "1:02:03", "--:--" for an unknown time. */
void cli_fmt_time(char *b, size_t cap, double seconds);

/* ---- progress bar: live on stderr only when stderr is a terminal ----
 * One line, redrawn in place (CR, text, erase to the end of the line), never
 * wider than the terminal (re-measured after SIGWINCH), at most ~10 redraws a
 * second. Off under --quiet, SKEPTIC_NO_PROGRESS, or when stderr is not a
 * terminal (then commands print whole lines only). */
struct cli_progress {
    bool on, drawn;
    int n_epochs;
    int member, n_members; /* ensembles: "member 3/5" */
    int epoch_seen;
    double last_draw, epoch_start, t_start;
};
void cli_progress_init(struct cli_progress *p, int n_epochs);
/* The bar of member `member` (1-based) of n_members from now on. */
void cli_progress_member(struct cli_progress *p, int member, int n_members);
/* "epoch e/E [====>   ] b/B ETA t loss L S samples/s", the extras dropped
 * from the right as the terminal narrows. */
void cli_progress_update(struct cli_progress *p, int epoch, int batch, int n_batches, float loss, double samples_per_s);
/* "left [====>    ] extra0 extra1 ..." with frac of the bar filled; force:
 * draw even within 0.1 s of the last draw. */
void cli_progress_draw(struct cli_progress *p, const char *left, double frac, const char *const *extra, int n_extra,
                       bool force);
/* Clear the bar's line (before printing anything else on stderr). */
void cli_progress_clear(struct cli_progress *p);

#endif
