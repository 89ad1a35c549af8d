/* skeptic compare: the seed's experiment 3 (sk_compare_run, study.h) on the
 * command line: parse, open the data, call, print. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "skeptic/study.h"

/* The flag that sets each config field the library's messages name. */
static const struct cli_field_flag compare_flags[] = {
    { "compare.epochs", "--epochs" },           { "compare.vi_epochs", "--vi-epochs" },
    { "compare.ens_epochs", "--ensemble-epochs" }, { "compare.sgld_epochs", "--sgld-epochs" },
    { "compare.batch", "--batch" },             { "compare.members", "--members" },
    { "compare.samples", "--samples" },         { "compare.attack_samples", "--attack-samples" },
    { "compare.n_adv", "--n-adv" },             { "compare.pgd_steps", "--pgd-steps" },
    { "compare.lr", "--lr" },                   { "compare.vi_lr", "--vi-lr" },
    { "compare.sgld_lr", "--sgld-lr" },         { "compare.prior_sigma", "--prior-sigma" },
    { "compare.init_sigma", "--init-sigma" },   { "compare.kl_weight", "--kl-weight" },
    { "compare.eps", "--eps" },                 { "compare.dropout", "--dropout" },
    { "compare.arch", "--arch" },               { "compare.methods", "--methods" },
    { "compare.classes", "--classes" },         { "compare.data_seed", "--data-seed" },
    { "compare.test_fraction", "--test-fraction" }, { "compare.clip_min", "--clip-min" },
    { "compare.clip_max", "--clip-max" },       { "compare.data", "--data" },
    { "cfg.opt.lr", "--lr" },                   { "labels_path", "--labels" },
    { NULL, NULL },
};

/* The options that are no config field as they stand. */
struct compare_args {
    const char *prior, *ood, *format;
    bool flipout, no_flipout;
    int n_test;
};

static void on_progress(void *ctx, const struct sk_compare_progress *p)
{
    (void)ctx;
    const struct sk_compare_row *r = p->row;
    switch (p->stage) {
    case SK_COMPARE_LOADING: fprintf(stderr, "compare: loading %s\n", p->path); break;
    case SK_COMPARE_TRAINING: fprintf(stderr, "compare: training %s (%s)\n", p->method, p->spec); break;
    case SK_COMPARE_EPOCH:
        fprintf(stderr, "  [%s] epoch %d loss %.4f acc %.4f (%.1f s, %.0f samples/s)\n", p->method,
                p->epoch->epoch + 1, p->epoch->train_loss, p->epoch->train_acc, p->epoch->seconds,
                p->epoch->samples_per_s);
        break;
    case SK_COMPARE_WARM_START: fprintf(stderr, "  (starting from the deterministic network of this run)\n"); break;
    case SK_COMPARE_FITTED:
        if (!strcmp(p->method, "laplace")) fprintf(stderr, "  [laplace] prior precision %g\n", p->value);
        else fprintf(stderr, "  [temperature] T = %.3f\n", p->value);
        break;
    case SK_COMPARE_EVALUATING:
        fprintf(stderr, "compare: evaluating %s (%d sample%s)\n", p->method, r->samples, r->samples == 1 ? "" : "s");
        break;
    case SK_COMPARE_ROW:
        fprintf(stderr, "compare: %s done: accuracy %.4f, NLL %.4f, ECE %.4f\n", r->method, r->rep.clean.accuracy,
                r->rep.clean.nll, r->rep.clean.ece);
        break;
    }
}

static double ood_auroc(const struct sk_compare_result *res, const struct sk_compare_row *r, int score)
{
    return res->has_ood ? r->rep.ood[score].auroc : NAN;
}

static void print_json(const struct cli_common *c, const struct sk_compare_config *o, const char *ood,
                       const struct sk_compare_result *res)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", c->data);
    cJSON_AddStringToObject(j, "ood", ood);
    cJSON_AddStringToObject(j, "arch", o->arch);
    cli_json_num(j, "eps", o->eps);
    cli_json_num(j, "n_test", res->n_test);
    cli_json_num(j, "n_adv", res->n_adv);
    cJSON *arr = cJSON_AddArrayToObject(j, "methods");
    for (int i = 0; i < res->n_rows; i++) {
        const struct sk_compare_row *r = &res->rows[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "method", r->method);
        cli_json_num(e, "samples", r->samples);
        cli_json_num(e, "temperature", r->temperature);
        cli_json_num(e, "accuracy", r->rep.clean.accuracy);
        cli_json_num(e, "nll", r->rep.clean.nll);
        cli_json_num(e, "ece", r->rep.clean.ece);
        cli_json_num(e, "brier", r->rep.clean.brier);
        cli_json_num(e, "ood_auroc_entropy", ood_auroc(res, r, SK_SCORE_ENTROPY));
        cli_json_num(e, "ood_auroc_mi", ood_auroc(res, r, SK_SCORE_MI));
        cli_json_num(e, "ood_auroc_maxprob", ood_auroc(res, r, SK_SCORE_MAXPROB));
        cli_json_num(e, "fgsm_accuracy", r->fgsm_acc);
        cli_json_num(e, "pgd_accuracy", r->pgd_acc);
        cli_json_num(e, "adv_auroc_mi", r->adv_mi.auroc);
        cli_json_num(e, "adv_auroc_entropy", r->adv_ent.auroc);
        cli_json_num(e, "adv_detection_n", r->adv_n);
        cli_json_num(e, "train_seconds", r->train_seconds);
        cJSON_AddItemToArray(arr, e);
    }
    cli_json_print(j);
}

/* The text table's columns after the method; the MI columns are n/a for a
 * posterior of one sample (deterministic, temperature), whose mutual
 * information is zero everywhere, so an AUROC by it says nothing. */
enum { COL_S, COL_ACC, COL_NLL, COL_ECE, COL_BRIER, COL_OOD_ENT, COL_OOD_MI, COL_FGSM, COL_PGD, COL_ADV_MI, N_COLS };
static const char *const col_text[N_COLS] = { "S", "accuracy", "NLL", "ECE", "Brier", "OOD ent", "OOD MI",
                                              "FGSM acc", "PGD acc", "adv MI" };
static const char *const col_md[N_COLS] = { "S", "accuracy", "NLL", "ECE", "Brier", "OOD AUROC (entropy)",
                                            "OOD AUROC (MI)", "FGSM acc", "PGD acc", "adv AUROC (MI)" };
#define CELL 16

static void cell(const struct sk_compare_result *res, const struct sk_compare_row *r, int col, char *out)
{
    bool one = r->samples <= 1;
    double v = NAN;
    switch (col) {
    case COL_S: snprintf(out, CELL, "%d", r->samples); return;
    case COL_ACC: v = r->rep.clean.accuracy; break;
    case COL_NLL: v = r->rep.clean.nll; break;
    case COL_ECE: v = r->rep.clean.ece; break;
    case COL_BRIER: v = r->rep.clean.brier; break;
    case COL_OOD_ENT: v = ood_auroc(res, r, SK_SCORE_ENTROPY); break;
    case COL_OOD_MI: v = one ? NAN : ood_auroc(res, r, SK_SCORE_MI); break;
    case COL_FGSM: v = r->fgsm_acc; break;
    case COL_PGD: v = r->pgd_acc; break;
    case COL_ADV_MI: v = one ? NAN : r->adv_mi.auroc; break;
    }
    if (isnan(v)) snprintf(out, CELL, "n/a");
    else snprintf(out, CELL, "%.4f", v);
}

static void print_md(const struct sk_compare_result *res)
{
    printf("| method |");
    for (int k = 0; k < N_COLS; k++) printf(" %s |", col_md[k]);
    printf("\n|---|");
    for (int k = 0; k < N_COLS; k++) printf("---:|");
    printf("\n");
    for (int i = 0; i < res->n_rows; i++) {
        printf("| %s |", res->rows[i].method);
        for (int k = 0; k < N_COLS; k++) {
            char b[CELL];
            cell(res, &res->rows[i], k, b);
            printf(" %s |", b);
        }
        printf("\n");
    }
}

/* Columns padded to their widest cell, numbers right-aligned; where the
 * whole is wider than the terminal, stacked tables that each repeat the
 * method column. */
static void print_aligned(const struct sk_compare_result *res)
{
    int wm = (int)strlen("method"), w[N_COLS];
    for (int i = 0; i < res->n_rows; i++)
        if ((int)strlen(res->rows[i].method) > wm) wm = (int)strlen(res->rows[i].method);
    for (int k = 0; k < N_COLS; k++) {
        w[k] = (int)strlen(col_text[k]);
        for (int i = 0; i < res->n_rows; i++) {
            char b[CELL];
            cell(res, &res->rows[i], k, b);
            if ((int)strlen(b) > w[k]) w[k] = (int)strlen(b);
        }
    }
    int width = cli_term_width(stdout);
    for (int k0 = 0; k0 < N_COLS;) {
        int k1 = k0, used = wm;
        while (k1 < N_COLS && (k1 == k0 || used + 2 + w[k1] <= width - 1)) used += 2 + w[k1++];
        if (k0 > 0) printf("\n");
        printf("%-*s", wm, "method");
        for (int k = k0; k < k1; k++) printf("  %*s", w[k], col_text[k]);
        printf("\n");
        for (int i = 0; i < res->n_rows; i++) {
            printf("%-*s", wm, res->rows[i].method);
            for (int k = k0; k < k1; k++) {
                char b[CELL];
                cell(res, &res->rows[i], k, b);
                printf("  %*s", w[k], b);
            }
            printf("\n");
        }
        k0 = k1;
    }
}

static void print_table(const struct cli_common *c, const struct sk_compare_config *o, const char *ood,
                        const struct sk_compare_result *res, bool md)
{
    char head[512];
    snprintf(head, sizeof head,
             "data %s (test %d rows), OOD %s, arch %s; attacks Linf eps %g on %d rows, EOT over each method's samples. "
             "S: samples per prediction; AUROCs of telling OOD (or PGD) inputs from clean ones by predictive entropy "
             "(ent) or mutual information (MI); n/a: no OOD data, no attacks, or MI of a one-sample method",
             c->data, res->n_test, ood, o->arch, o->eps, res->n_adv);
    if (md) printf("%s\n", head);
    else cli_wrap(stdout, head, 0, 0, cli_term_width(stdout)), printf("\n");
    printf("\n");
    if (md) print_md(res);
    else print_aligned(res);
}

/* The options into the config, checked by the library's own check. */
static int build_config(const struct cli_common *c, const struct compare_args *a, struct sk_compare_config *o)
{
    static const char *const formats[] = { "text", "md" };
    if (strcmp(a->format, "text") && strcmp(a->format, "md")) return cli_bad_choice("--format", a->format, formats, 2);
    if (a->flipout && a->no_flipout) return cli_usage("--flipout and --no-flipout contradict each other");
    if (strcmp(a->prior, "gaussian") && strcmp(a->prior, "mixture"))
        return cli_usage("--prior must be gaussian or mixture (got '%s')", a->prior);
    o->prior = strcmp(a->prior, "mixture") ? SK_PRIOR_GAUSSIAN : SK_PRIOR_MIXTURE;
    o->flipout = a->flipout ? 1 : a->no_flipout ? 0 : -1;
    o->data = c->data;
    o->classes = c->classes;
    o->data_seed = c->data_seed;
    o->test_fraction = c->test_fraction;
    /* the box is checked against the data once they are open */
    float lo = o->clip_min, hi = o->clip_max;
    o->clip_min = 0;
    o->clip_max = 1;
    int rc = sk_compare_check(o) ? cli_usage_lib(compare_flags) : CLI_OK;
    o->clip_min = lo;
    o->clip_max = hi;
    return rc;
}

/* The training rows, the test rows (--n-test of them) and the OOD rows. */
static int open_data(const struct cli_common *c, const struct compare_args *a, struct sk_dataset **all,
                     struct sk_dataset **te, struct sk_dataset **ood)
{
    struct cli_common ct = *c;
    ct.limit = a->n_test;
    if (!(*all = cli_load_data(c, "train")) || !(*te = cli_load_data(&ct, "test"))) return cli_fail_lib();
    if (strcmp(a->ood, "none") && !(*ood = sk_data_open(a->ood, "all", NULL)))
        return cli_fail("%s (for MNIST run scripts/fetch-mnist or set SKEPTIC_MNIST_DIR; --ood none skips)",
                        sk_last_error());
    if (*ood && (*ood)->dim != (*te)->dim)
        return cli_fail("--ood %s has %d values per row, the data %d", a->ood, (*ood)->dim, (*te)->dim);
    return CLI_OK;
}

static int run(const struct cli_common *c, const struct compare_args *a, struct sk_compare_config *o)
{
    struct sk_dataset *all = NULL, *te = NULL, *ood = NULL;
    struct sk_compare_result *res = NULL;
    int status = open_data(c, a, &all, &te, &ood);
    if (status == CLI_OK && o->n_adv > 0)
        status = cli_input_box("compare", c->data, te, o->clip_min, o->clip_max, false, &o->clip_min, &o->clip_max);
    if (status == CLI_OK) {
        o->on_progress = on_progress;
        status = sk_compare_run(o, all, te, ood, &res) ? cli_fail_lib_map(compare_flags) : CLI_OK;
    }
    if (status == CLI_OK) {
        if (c->json) print_json(c, o, a->ood, res);
        else print_table(c, o, a->ood, res, !strcmp(a->format, "md"));
    }
    sk_compare_result_free(res);
    sk_dataset_free(all);
    sk_dataset_free(te);
    sk_dataset_free(ood);
    return status;
}

int cmd_compare(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct sk_compare_config o = sk_compare_defaults();
    struct compare_args a = { .prior = "gaussian", .ood = "mnist", .format = "text" };
    o.clip_min = o.clip_max = NAN;
    c.data = "fashion-mnist";
    struct cli_opt opts[] = {
        CLI_DATA_OPTS(c), CLI_THREADS_OPT(c), CLI_JSON_OPT(c),
        { "format", CLI_STR, &a.format, "F", "text (aligned columns fitting the terminal) | md (a Markdown pipe table)" },
        { "arch", CLI_STR, &o.arch, "A", "mlp (784-400-400-10) | cnn | a spec (default mlp)" },
        { "methods", CLI_STR, &o.methods, "LIST", "comma list of deterministic, temperature, mc-dropout, ensemble, vi, sgld, laplace" },
        { "ood", CLI_STR, &a.ood, "D", "out-of-distribution data set (default mnist; 'none' to skip)" },
        { "dir", CLI_STR, &o.dir, "DIR", "save models here as METHOD.safetensors; existing files are loaded, not retrained" },
        { "epochs", CLI_INT, &o.epochs, "E", "epochs of the deterministic nets and members (default 10)" },
        { "ensemble-epochs", CLI_INT, &o.ens_epochs, "E", "epochs of each ensemble member (default: --epochs)" },
        { "vi-epochs", CLI_INT, &o.vi_epochs, "E", "epochs of Bayes by Backprop (default 20)" },
        { "sgld-epochs", CLI_INT, &o.sgld_epochs, "E", "SGLD epochs after the warm start (default 5; 1 is burn-in)" },
        { "batch", CLI_INT, &o.batch, "B", "minibatch (default 128)" },
        { "lr", CLI_FLOAT, &o.lr, "LR", "Adam learning rate (default 1e-3)" },
        { "vi-lr", CLI_FLOAT, &o.vi_lr, "LR", "Adam learning rate of VI, cosine schedule (default 1e-3)" },
        { "sgld-lr", CLI_FLOAT, &o.sgld_lr, "LR", "SGLD step size on the mean loss (default 0.01)" },
        { "prior-sigma", CLI_FLOAT, &o.prior_sigma, "S", "VI Gaussian prior scale (default 0.1)" },
        { "prior", CLI_STR, &a.prior, "P", "VI prior: gaussian (N(0, prior-sigma^2)) | mixture (0.5 N(0,1) + 0.5 N(0,e^-12))" },
        { "kl-weight", CLI_FLOAT, &o.kl_weight, "B", "VI KL weight beta (default 1)" },
        { "init-sigma", CLI_FLOAT, &o.init_sigma, "S", "VI initial posterior scale (default 0.02)" },
        { "flipout", CLI_FLAG, &a.flipout, NULL, "VI: Flipout for the cnn and other non-MLP specs (lower-variance gradients, 2.4x the time)" },
        { "no-flipout", CLI_FLAG, &a.no_flipout, NULL, "VI: one weight draw per minibatch for non-MLP specs (the default)" },
        { "dropout", CLI_FLOAT, &o.dropout, "P", "MC dropout rate (default 0.2)" },
        { "members", CLI_INT, &o.members, "M", "ensemble members (default 5)" },
        { "samples", CLI_INT, &o.samples, "S", "posterior samples per prediction (default 20)" },
        { "attack-samples", CLI_INT, &o.attack_samples, "S", "EOT samples per attack gradient (default 10)" },
        { "n-adv", CLI_INT, &o.n_adv, "N", "test rows attacked (default 500; 0 = no attacks)" },
        { "eps", CLI_FLOAT, &o.eps, "E", "Linf budget of FGSM and PGD (default 0.1)" },
        CLI_BOX_OPTS(o.clip_min, o.clip_max),
        { "pgd-steps", CLI_INT, &o.pgd_steps, "K", "PGD steps (default 10)" },
        { "n-test", CLI_INT, &a.n_test, "N", "use only the first N test rows (default all)" },
        { "seed", CLI_U64, &o.seed, "S", "seed of everything (default 1)" },
        { 0 },
    };
    static const struct cli_help h = {
        "compare",
        "skeptic compare [--data fashion-mnist] [--ood mnist] [--arch mlp|cnn|SPEC] [options]",
        "Train a deterministic network and its Bayesian counterparts on the same data (or load them from --dir) and\n"
        "print one table: test accuracy, NLL, ECE, Brier, OOD AUROC (by entropy and by mutual information), accuracy\n"
        "under FGSM and PGD (Linf, with EOT over the method's samples) and the AUROC of telling PGD inputs from clean\n"
        "ones by mutual information. --n N limits the training rows. A validation split (1/12 of the training rows)\n"
        "serves temperature scaling and Laplace.",
        "skeptic compare --data fashion-mnist --ood mnist --arch mlp --dir runs/mlp\n"
        "skeptic compare --methods deterministic,vi --epochs 3 --vi-epochs 5 --n 10000 --n-adv 200 --json",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if ((rc = build_config(&c, &a, &o))) return rc;
    const struct cli_path outs[] = { { "--dir", o.dir, true }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--data", c.data, false }, { "--ood", a.ood, false }, { NULL, NULL, false } };
    if ((rc = cli_check_outputs(outs, ins))) return rc;
    return run(&c, &a, &o);
}
