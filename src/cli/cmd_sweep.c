/* skeptic sweep: a grid of training configurations, each trained and
 * measured into one JSON row (sk_sweep_*, study.h), then Kendall's tau and
 * Jiang et al.'s Psi of every measure against the generalization gap and
 * robust accuracy (sk_sweep_summarize). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_dist.h"
#include "cli/sweep_dist.h"
#include "skeptic/robust.h"
#include "skeptic/study.h"

static const struct cli_field_flag field_flags[] = {
    { "sweep.depth", "--depth" },         { "sweep.width", "--width" },           { "sweep.optimizer", "--optimizer" },
    { "sweep.batch", "--batch" },         { "sweep.lr", "--lr" },                 { "sweep.seed", "--seeds" },
    { "sweep.adv", "--adv" },             { "sweep.bayes", "--bayes" },           { "sweep.epochs", "--epochs" },
    { "sweep.n_test", "--n-test" },       { "sweep.n_adv", "--n-adv" },           { "sweep.n_suite", "--n-suite" },
    { "sweep.n_ood", "--n-ood" },         { "sweep.n_curv", "--n-curv" },         { "sweep.pgd_steps", "--pgd-steps" },
    { "sweep.suite_steps", "--suite-steps" }, { "sweep.suite_queries", "--suite-queries" },
    { "sweep.samples", "--samples" },     { "sweep.attack_samples", "--attack-samples" },
    { "sweep.members", "--members" },     { "sweep.eps", "--eps" },               { "sweep.adv_eps", "--adv-eps" },
    { "sweep.cert_eps", "--cert-eps" },   { "sweep.dropout", "--dropout" },       { "sweep.clip_min", "--clip-min" },
    { "sweep.clip_max", "--clip-max" },   { NULL, NULL },
};

struct sweep_args {
    const char *axis[SK_SWEEP_N_AXES]; /* --depth ... --bayes */
    const char *grid, *out, *models, *ood, *summarize, *summary, *format;
    int n_train;
    bool dry_run;
};

/* ---------------- the plan and its cost ---------------- */

static double n_params(const struct sk_sweep_point *pt, int dim, int K)
{
    double W = pt->width;
    return dim * W + W + (pt->depth - 1) * (W * W + W) + W * K + K;
}

/* Multiply-adds of one configuration, in units of one row through the net
 * forward (2 P flops): training (3 per row and epoch; SAM twice, PGD
 * training steps + 1 times, an ensemble per member), predictions with their
 * samples, the attacks' gradients with EOT, the curvature measures (about
 * 120 gradients over n_curv rows). */
static double cost(const struct sk_sweep_config *o, const struct sk_sweep_point *pt, int n_train, int n_test,
                   int n_ood, int dim, int K)
{
    double P = n_params(pt, dim, K);
    double f_opt = strcmp(pt->optimizer, "sam") ? 1 : 2;
    double f_adv = pt->adv == SK_ROBUST_NONE ? 1 : sk_robust_single_step((enum sk_robust_kind)pt->adv) ? 2 : 11;
    double f_bayes = pt->bayes == SK_BAYES_ENSEMBLE ? o->members : pt->bayes == SK_BAYES_DETERMINISTIC ? 1 : 2;
    double S = pt->bayes == SK_BAYES_DETERMINISTIC ? 1 : pt->bayes == SK_BAYES_ENSEMBLE ? o->members : o->samples;
    double Sa = pt->bayes == SK_BAYES_DETERMINISTIC ? 1 : pt->bayes == SK_BAYES_ENSEMBLE ? o->members : o->attack_samples;
    double train = 3.0 * n_train * o->epochs * f_opt * f_adv * f_bayes;
    double pred = S * (n_train + n_test + n_ood + 3.0 * o->n_adv + o->n_suite);
    double att = 3.0 * Sa * (o->n_adv * (1.0 + o->pgd_steps) + o->n_suite * (4.0 * o->suite_steps + 40));
    double curv = o->n_curv > 0 ? 3.0 * 120 * o->n_curv : 0;
    return P * (train + pred + att + curv);
}

/* Forward row-parameters per second of this machine now: a short training
 * run of a mid-sized MLP, timed. */
static double measure_rate(int dim)
{
    char spec[128];
    snprintf(spec, sizeof spec, "mlp:%d-256-256-10:relu", dim);
    struct sk_model *m = sk_model_from_spec(spec);
    struct sk_dataset *d = sk_dataset_new(1024, 1, 1, dim, 10);
    if (!m || !d) {
        sk_model_free(m);
        sk_dataset_free(d);
        return NAN;
    }
    for (int i = 0; i < d->n * dim; i++) d->x[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (int i = 0; i < d->n; i++) d->y[i] = i % 10;
    sk_model_init(m, SK_INIT_HE_UNIFORM, 1);
    struct sk_train_config tc = sk_train_defaults();
    tc.epochs = 2;
    tc.batch = 128;
    double t0 = sk_now();
    int rc = sk_train(m, &tc, d->x, d->y, d->n);
    double secs = sk_now() - t0;
    double rate = rc ? NAN : 3.0 * (double)m->n_params * d->n * tc.epochs / secs;
    sk_model_free(m);
    sk_dataset_free(d);
    return rate;
}

struct plan {
    const struct sk_sweep_config *o;
    int n_train, n_test, n_ood, dim, K;
    double *cost;   /* per index */
    double total;
    const char *times; /* ROWS.times: "index seconds" per configuration run, for later estimates */
};

/* Row-parameters per second observed by earlier runs of this sweep (the
 * times file: "index seconds" lines), or NaN when there are none. */
static double observed_rate(const struct plan *pl, long size, int *n_seen)
{
    FILE *f = fopen(pl->times, "r");
    double c = 0, t = 0;
    long i;
    double sec;
    *n_seen = 0;
    while (f && fscanf(f, "%ld %lf", &i, &sec) == 2)
        if (i >= 0 && i < size && sec > 0) {
            c += pl->cost[i];
            t += sec;
            (*n_seen)++;
        }
    if (f) fclose(f);
    return *n_seen > 0 ? c / t : NAN;
}

static int plan_costs(struct plan *pl, long size)
{
    pl->cost = sk_malloc(sizeof(double) * (size_t)(size > 0 ? size : 1));
    if (!pl->cost) return SK_ENOMEM;
    pl->total = 0;
    for (long i = 0; i < size; i++) {
        struct sk_sweep_point pt;
        sk_sweep_point(&pl->o->grid, i, &pt);
        pl->cost[i] = cost(pl->o, &pt, pl->n_train, pl->n_test, pl->n_ood, pl->dim, pl->K);
        pl->total += pl->cost[i];
    }
    return SK_OK;
}

static int print_plan(const struct sk_sweep_config *o, const struct sweep_args *a, struct sk_sweep *s,
                      const struct plan *pl, bool json)
{
    long size = sk_sweep_size(s), left = 0;
    double left_cost = 0;
    for (long i = 0; i < size; i++)
        if (!sk_sweep_finished(s, i)) {
            left++;
            left_cost += pl->cost[i];
        }
    int n_seen;
    double rate = observed_rate(pl, size, &n_seen);
    if (!(rate > 0)) rate = measure_rate(pl->dim);
    double est = left_cost / rate;
    char t[24];
    cli_fmt_time(t, sizeof t, est);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cli_json_num(j, "configurations", (double)size);
        cli_json_num(j, "finished", (double)(size - left));
        cli_json_num(j, "to_run", (double)left);
        cli_json_num(j, "estimated_seconds", est);
        cJSON *arr = cJSON_AddArrayToObject(j, "plan");
        for (long i = 0; i < size; i++) {
            struct sk_sweep_point pt;
            sk_sweep_point(&o->grid, i, &pt);
            char h[24];
            sk_sweep_config_hash(s, i, h);
            cJSON *e = cJSON_CreateObject();
            cli_json_num(e, "index", (double)i);
            cJSON_AddStringToObject(e, "config_hash", h);
            for (int ax = 0; ax < SK_SWEEP_N_AXES; ax++)
                cJSON_AddStringToObject(e, sk_sweep_axis_name((enum sk_sweep_axis)ax), o->grid.value[ax][pt.at[ax]]);
            cJSON_AddBoolToObject(e, "finished", sk_sweep_finished(s, i));
            cli_json_num(e, "estimated_seconds", pl->cost[i] / rate);
            cJSON_AddItemToArray(arr, e);
        }
        cli_json_print(j);
        return CLI_OK;
    }
    printf("sweep: %ld configurations (%ld finished, %ld to run) -> %s\n", size, size - left, left, a->out);
    printf("  rows: %d training, %d test, %d OOD; %d epochs; attacks on %d rows (suite %d), eps %g\n", pl->n_train,
           pl->n_test, pl->n_ood, o->epochs, o->n_adv, o->n_suite, (double)o->eps);
    printf("  %5s %-16s", "index", "config_hash");
    for (int ax = 0; ax < SK_SWEEP_N_AXES; ax++) printf(" %-9s", sk_sweep_axis_name((enum sk_sweep_axis)ax));
    printf(" %8s\n", "est.");
    for (long i = 0; i < size; i++) {
        struct sk_sweep_point pt;
        sk_sweep_point(&o->grid, i, &pt);
        char h[24], ti[24];
        sk_sweep_config_hash(s, i, h);
        cli_fmt_time(ti, sizeof ti, pl->cost[i] / rate);
        printf("  %5ld %-16s", i, h);
        for (int ax = 0; ax < SK_SWEEP_N_AXES; ax++) printf(" %-9.9s", o->grid.value[ax][pt.at[ax]]);
        printf(" %8s%s\n", sk_sweep_finished(s, i) ? "done" : ti, "");
    }
    if (n_seen > 0)
        printf("estimated time %s for %ld configurations, at the pace of the %d configurations run before (%.2g "
               "row-parameters/s)\n", t, left, n_seen, rate);
    else
        printf("estimated time %s for %ld configurations, at the pace of a short training run now (%.2g "
               "row-parameters/s; small batches, curvature and a loaded machine run slower)\n", t, left, rate);
    return CLI_OK;
}

/* ---------------- progress ---------------- */

struct progress {
    struct cli_progress bar;
    const struct plan *pl;
    struct sk_sweep *s;
    long n_left, n_done;
    double cost_left, cost_done, t0, t_last;
    const char *stage;
    int epoch;
    long index;
    bool lines; /* whole lines on stderr (no terminal) */
};

static void draw(struct progress *p, bool force)
{
    char left[64], e0[48], e1[48], e2[48];
    snprintf(left, sizeof left, "config %ld/%ld", p->n_done + 1, p->n_left);
    double el = sk_now() - p->t0;
    double eta = p->cost_done > 0 ? el / p->cost_done * (p->cost_left - p->cost_done) : NAN;
    char t[24];
    cli_fmt_time(t, sizeof t, eta);
    snprintf(e0, sizeof e0, "#%ld", p->index);
    if (p->epoch >= 0 && !strcmp(p->stage, "epoch")) snprintf(e1, sizeof e1, "epoch %d", p->epoch + 1);
    else snprintf(e1, sizeof e1, "%s", p->stage);
    snprintf(e2, sizeof e2, "ETA %s", t);
    const char *extra[] = { e0, e1, e2 };
    cli_progress_draw(&p->bar, left, p->cost_left > 0 ? p->cost_done / p->cost_left : 0, extra, 3, force);
}

static void on_stage(void *ctx, long index, const char *stage, int epoch)
{
    struct progress *p = ctx;
    p->index = index;
    p->stage = stage;
    p->epoch = epoch;
    if (p->bar.on) draw(p, false);
    else if (p->lines && cli_verbosity > 0) fprintf(stderr, "sweep: #%ld %s%s\n", index, stage, epoch >= 0 ? "" : "");
}

static int on_row(void *ctx, long index, const char *row)
{
    struct progress *p = ctx;
    (void)row;
    p->n_done++;
    p->cost_done += p->pl->cost[index];
    double now = sk_now();
    FILE *f = fopen(p->pl->times, "a");
    if (f) {
        fprintf(f, "%ld %.3f\n", index, now - p->t_last);
        fclose(f);
    }
    p->t_last = now;
    if (p->bar.on) draw(p, true);
    else if (p->lines && cli_verbosity >= 0) {
        char t[24], eta[24];
        double el = sk_now() - p->t0;
        cli_fmt_time(t, sizeof t, el);
        cli_fmt_time(eta, sizeof eta, el / p->cost_done * (p->cost_left - p->cost_done));
        fprintf(stderr, "sweep: configuration %ld done (%ld/%ld, %s, ETA %s)\n", index, p->n_done, p->n_left, t, eta);
    }
    return cli_interrupted ? 1 : 0;
}

/* ---------------- the summary ---------------- */

static void print_summary_table(const struct sk_sweep_summary *sm, bool md)
{
    const char *sep = md ? " | " : "  ";
    if (md) {
        printf("| measure | mean | tau gap_err | Psi gap_err | tau gap_loss | Psi gap_loss | tau pgd_acc | Psi pgd_acc |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    } else {
        printf("%d rows; Kendall's tau-b and Jiang et al.'s Psi of each measure with the generalization gap (error,\n"
               "loss) and with PGD accuracy\n\n",
               sm->n_rows);
        printf("%-20s %9s", "measure", "mean");
        for (int g = 0; g < sm->n_targets; g++) printf("  %-15s", sm->target[g]);
        printf("\n%-20s %9s", "", "");
        for (int g = 0; g < sm->n_targets; g++) printf("  %7s %7s", "tau", "Psi");
        printf("\n");
    }
    for (int m = 0; m < sm->n_measures; m++) {
        char mean[32];
        snprintf(mean, sizeof mean, "%.4g", sm->mean[m]);
        if (md) printf("| %s | %s", sm->measure[m], isfinite(sm->mean[m]) ? mean : "n/a");
        else printf("%-20.20s %9s", sm->measure[m], isfinite(sm->mean[m]) ? mean : "n/a");
        for (int g = 0; g < sm->n_targets; g++) {
            char a[16] = "n/a", b[16] = "n/a";
            if (isfinite(sm->tau[m][g])) snprintf(a, sizeof a, "%+.3f", sm->tau[m][g]);
            if (isfinite(sm->psi[m][g])) snprintf(b, sizeof b, "%+.3f", sm->psi[m][g]);
            if (md) printf("%s%s%s%s", sep, a, sep, b);
            else printf("  %7s %7s", a, b);
        }
        printf(md ? " |\n" : "\n");
    }
}

static cJSON *summary_json(const struct sk_sweep_summary *sm, const char *rows)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "rows", rows);
    cli_json_num(j, "n_rows", sm->n_rows);
    cJSON *ms = cJSON_AddObjectToObject(j, "measures");
    for (int m = 0; m < sm->n_measures; m++) {
        cJSON *e = cJSON_AddObjectToObject(ms, sm->measure[m]);
        cli_json_num(e, "mean", sm->mean[m]);
        cli_json_num(e, "n", sm->n_finite[m]);
        for (int g = 0; g < sm->n_targets; g++) {
            cJSON *t = cJSON_AddObjectToObject(e, sm->target[g]);
            cli_json_num(t, "tau", sm->tau[m][g]);
            cli_json_num(t, "psi", sm->psi[m][g]);
        }
    }
    return j;
}

static int write_json_file(const char *path, cJSON *j)
{
    char *text = cJSON_Print(j);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = text ? fopen(tmp, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f)) ok = 0;
    cJSON_free(text);
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        return cli_fail("cannot write the summary %s", path);
    }
    return CLI_OK;
}

static int summarize(const char *rows, const char *out_json, bool json, bool md)
{
    struct sk_sweep_summary *sm = sk_calloc(1, sizeof *sm);
    if (!sm) return cli_fail_lib();
    int status = CLI_OK;
    if (sk_sweep_summarize(rows, sm)) {
        status = cli_fail_lib();
    } else {
        cJSON *j = summary_json(sm, rows);
        if (out_json) status = write_json_file(out_json, j);
        if (json) cli_json_print(j);
        else {
            cJSON_Delete(j);
            print_summary_table(sm, md);
            if (out_json && !status) printf("\nsummary written to %s\n", out_json);
        }
    }
    sk_free(sm);
    return status;
}

/* ---------------- data and configuration ---------------- */

static int open_data(const struct cli_common *c, const struct sweep_args *a, struct sk_dataset **tr,
                     struct sk_dataset **te, struct sk_dataset **ood)
{
    struct sk_dataset *all = cli_load_data(c, "train");
    if (!all) return cli_fail_lib();
    if (a->n_train > 0 && a->n_train < all->n) {
        int *idx = sk_malloc(sizeof(int) * (size_t)a->n_train);
        if (idx) {
            for (int i = 0; i < a->n_train; i++) idx[i] = i;
            *tr = sk_dataset_subset(all, idx, a->n_train);
        }
        sk_free(idx);
        sk_dataset_free(all);
        if (!*tr) return cli_fail_lib();
    } else {
        *tr = all;
    }
    if (!(*te = cli_load_data(c, "test"))) return cli_fail_lib();
    const char *o = a->ood;
    if (!o) o = c->data && !strcmp(c->data, "fashion-mnist") ? "mnist" : "none";
    if (strcmp(o, "none")) {
        if (!(*ood = sk_data_open(o, "all", NULL)))
            return cli_fail("--ood %s: %s (for MNIST run scripts/fetch-mnist; --ood none skips)", o, sk_last_error());
        if ((*ood)->dim != (*tr)->dim)
            return cli_fail("--ood %s has %d values per row, the data %d", o, (*ood)->dim, (*tr)->dim);
    }
    return CLI_OK;
}

static int build_grid(struct sk_sweep_config *o, const struct sweep_args *a)
{
    if (a->grid && sk_sweep_grid_read(&o->grid, a->grid)) return cli_usage_lib(field_flags);
    for (int ax = 0; ax < SK_SWEEP_N_AXES; ax++)
        if (a->axis[ax] && sk_sweep_grid_set(&o->grid, (enum sk_sweep_axis)ax, a->axis[ax]))
            return cli_usage_lib(field_flags);
    if (sk_sweep_check(o)) return cli_usage_lib(field_flags);
    return CLI_OK;
}

/* rows.jsonl -> rows.models (the models) and rows.summary.json */
static void sibling(const char *rows, const char *suffix, char *buf, size_t cap)
{
    size_t n = strlen(rows);
    if (n > 6 && !strcmp(rows + n - 6, ".jsonl")) n -= 6;
    snprintf(buf, cap, "%.*s%s", (int)n, rows, suffix);
}

static int run(const struct cli_common *c, struct sweep_args *a, struct sk_sweep_config *o)
{
    struct sk_dataset *tr = NULL, *te = NULL, *ood = NULL;
    struct sk_sweep *s = NULL;
    struct plan pl = { .o = o };
    struct progress p = { .pl = &pl, .stage = "start", .epoch = -1 };
    o->on_stage = on_stage;
    o->ctx = &p;
    int status = open_data(c, a, &tr, &te, &ood);
    char models[4096], summary[4096], times[4096];
    sibling(a->out, ".models", models, sizeof models);
    sibling(a->out, ".times", times, sizeof times);
    pl.times = times;
    sibling(a->out, ".summary.json", summary, sizeof summary);
    if (!status && strcmp(a->models ? a->models : "", "none")) o->dir = a->models ? a->models : models;
    if (!status && !(s = sk_sweep_new(o, tr, te, ood))) status = cli_fail_lib_map(field_flags);
    /* mpirun: rank 0 owns the rows file and hands configurations out (sweep_dist.c) */
    if (!status && sk_dist_rank() == 0 && sk_sweep_resume(s, a->out)) status = cli_fail_lib();
    if (!status) {
        pl.n_train = tr->n;
        pl.n_test = o->n_test > 0 && o->n_test < te->n ? o->n_test : te->n;
        pl.n_ood = !ood ? 0 : o->n_ood > 0 && o->n_ood < ood->n ? o->n_ood : ood->n;
        pl.dim = tr->dim;
        pl.K = tr->n_classes;
        if (plan_costs(&pl, sk_sweep_size(s))) status = cli_fail_lib();
    }
    if (!status && a->dry_run) {
        status = print_plan(o, a, s, &pl, c->json);
    } else if (!status) {
        p.s = s;
        p.t0 = p.t_last = sk_now();
        cli_progress_init(&p.bar, 0);
        p.lines = !p.bar.on;
        for (long i = 0; i < sk_sweep_size(s); i++)
            if (!sk_sweep_finished(s, i)) {
                p.n_left++;
                p.cost_left += pl.cost[i];
            }
        if (cli_verbosity >= 0 && !c->json)
            fprintf(stderr, "sweep: %ld configurations, %ld to run -> %s (models in %s)\n", sk_sweep_size(s),
                    p.n_left, a->out, o->dir ? o->dir : "none");
        cli_interrupt_arm();
        if (!status && cli_sweep_run(s, a->out, on_row, &p)) status = cli_fail_lib_map(field_flags);
        cli_interrupt_disarm();
        cli_progress_clear(&p.bar);
        if (!status && cli_interrupted) {
            fprintf(stderr, "sweep: interrupted after %ld configurations; the same command resumes\n", p.n_done);
            status = CLI_INTERRUPTED;
        }
        if (!status && sk_dist_rank() == 0)
            status = summarize(a->out, a->summary ? a->summary : summary, c->json, !strcmp(a->format, "md"));
    }
    sk_free(pl.cost);
    sk_sweep_free(s);
    sk_dataset_free(tr);
    sk_dataset_free(te);
    sk_dataset_free(ood);
    return status;
}

int cmd_sweep(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    c.data = "fashion-mnist";
    struct sk_sweep_config o = sk_sweep_defaults();
    struct sweep_args a = { .format = "text", .n_train = 10000 };
    struct cli_opt opts[] = {
        CLI_GROUP_HEAD("grid (comma lists; every combination is one configuration)"),
        { "depth", CLI_STR, &a.axis[SK_SWEEP_DEPTH], "LIST", "hidden layers of the MLP (default 2)" },
        { "width", CLI_STR, &a.axis[SK_SWEEP_WIDTH], "LIST", "units per hidden layer (default 256)" },
        { "optimizer", CLI_STR, &a.axis[SK_SWEEP_OPTIMIZER], "LIST",
          "sgd | momentum | nesterov | adam | adamw | rmsprop | sam (default adam)" },
        { "batch", CLI_STR, &a.axis[SK_SWEEP_BATCH], "LIST", "batch sizes (default 128)" },
        { "lr", CLI_STR, &a.axis[SK_SWEEP_LR], "LIST", "learning rates or auto (sgd 0.1, adam 1e-3, others 0.01; default auto)" },
        { "seeds", CLI_STR, &a.axis[SK_SWEEP_SEED], "LIST", "seeds (default 1)" },
        { "adv", CLI_STR, &a.axis[SK_SWEEP_ADV], "LIST", "adversarial training: none | pgd | fgsm | trades | ... (default none)" },
        { "bayes", CLI_STR, &a.axis[SK_SWEEP_BAYES], "LIST",
          "none | mc-dropout | ensemble | vi | sgld | laplace (default none)" },
        { "grid", CLI_STR, &a.grid, "FILE", "a grid file: lines 'axis = v1,v2' (flags given as well override it)" },
        CLI_GROUP_HEAD("budget"),
        { "epochs", CLI_INT, &o.epochs, "E", "epochs of every training (default 5)" },
        { "n-train", CLI_INT, &a.n_train, "N", "the first N training rows (default 10000; 0 = all)" },
        { "n-test", CLI_INT, &o.n_test, "N", "test rows of the clean metrics (default 2000; 0 = all)" },
        { "n-adv", CLI_INT, &o.n_adv, "N", "test rows attacked by FGSM and PGD and certified (default 500)" },
        { "n-suite", CLI_INT, &o.n_suite, "N", "test rows attacked by the suite (default 200; 0 = none)" },
        { "n-ood", CLI_INT, &o.n_ood, "N", "OOD rows (default 2000; 0 = all)" },
        { "n-curv", CLI_INT, &o.n_curv, "N", "training rows of the curvature measures (default 512; 0 = none)" },
        { "eps", CLI_FLOAT, &o.eps, "E", "Linf budget of the attacks (default 0.1)" },
        { "adv-eps", CLI_FLOAT, &o.adv_eps, "E", "budget of adversarial training (default --eps)" },
        { "cert-eps", CLI_FLOAT, &o.cert_eps, "E", "budget of IBP certification (default 0.01; 0 = none)" },
        { "pgd-steps", CLI_INT, &o.pgd_steps, "K", "PGD steps (default 10)" },
        { "suite-steps", CLI_INT, &o.suite_steps, "K", "steps of the suite's gradient attacks (default 20)" },
        { "suite-queries", CLI_INT, &o.suite_queries, "Q", "queries of the suite's Square attack (default 500)" },
        { "samples", CLI_INT, &o.samples, "S", "posterior samples of predictions (default 20)" },
        { "attack-samples", CLI_INT, &o.attack_samples, "S", "EOT samples per attack gradient (default 10)" },
        { "members", CLI_INT, &o.members, "M", "ensemble members (default 5)" },
        { "dropout", CLI_FLOAT, &o.dropout, "P", "mc-dropout rate (default 0.2)" },
        { "clip-min", CLI_FLOAT, &o.clip_min, "X", "lower end of the attacks' box (default 0)" },
        { "clip-max", CLI_FLOAT, &o.clip_max, "X", "upper end of the attacks' box (default 1)" },
        CLI_GROUP_HEAD("data and files"),
        CLI_DATA_OPTS(c),
        { "ood", CLI_STR, &a.ood, "D", "out-of-distribution data (default mnist for fashion-mnist, else none)" },
        { "out", CLI_STR, &a.out, "FILE", "the rows (JSON lines); an existing file is resumed" },
        { "models", CLI_STR, &a.models, "DIR", "the models, by configuration hash (default OUT without .jsonl + .models; none: keep none)" },
        { "summary", CLI_STR, &a.summary, "FILE", "tau/Psi summary JSON (default OUT without .jsonl + .summary.json)" },
        CLI_GROUP_HEAD("output"),
        { "dry-run", CLI_FLAG, &a.dry_run, NULL, "print the plan with an estimated time and stop" },
        { "summarize", CLI_STR, &a.summarize, "FILE", "only the tau/Psi table of an existing rows file" },
        { "format", CLI_STR, &a.format, "text|md", "the table as text (default) or a markdown table" },
        CLI_JSON_OPT(c), CLI_THREADS_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "sweep",
        "skeptic sweep --out ROWS.jsonl [--depth 1,2 --width 64,256 --optimizer sgd,adam --batch 32,1024 ...]",
        "Train every configuration of a grid on the same rows and measure each: train and test accuracy and loss\n"
        "(the generalization gap), ECE, Brier, OOD AUROC, the curvature measures (lambda_max, trace, sharpness,\n"
        "PAC-Bayes flatness, norms), accuracy, ECE and NLL under FGSM, PGD and the suite (EOT for stochastic\n"
        "models), IBP-certified accuracy. One JSON row per configuration, appended as it finishes; run the same\n"
        "command again to resume. Then Kendall's tau-b and Psi (Jiang et al. 2020) of every measure against the\n"
        "generalization gap and PGD accuracy, as a table and as JSON.",
        "skeptic sweep --depth 1,2,3,4 --width 64,256,1024 --optimizer sgd,adam,sam --batch 32,1024 --out sweep.jsonl\n"
        "skeptic sweep --depth 1,2 --width 64 --epochs 1 --out s.jsonl --dry-run\n"
        "skeptic sweep --summarize sweep.jsonl --format md",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (strcmp(a.format, "text") && strcmp(a.format, "md")) {
        static const char *const fm[] = { "text", "md" };
        return cli_bad_choice("--format", a.format, fm, 2);
    }
    if (a.summarize) return summarize(a.summarize, a.summary, c.json, !strcmp(a.format, "md"));
    if (!a.out) return cli_usage("--out FILE is required (the rows; an existing file is resumed)");
    if (a.n_train < 0) return cli_usage("--n-train must be >= 0 (got %d)", a.n_train);
    if ((rc = build_grid(&o, &a))) return rc;
    o.data = c.data;
    const struct cli_path ins[] = { { "--data", c.data, false }, { "--grid", a.grid, false }, { NULL, NULL, false } };
    const struct cli_path outs[] = { { "--summary", a.summary, false }, { NULL, NULL, false } };
    if ((rc = cli_dist_check_outputs(outs, ins))) return rc;
    return run(&c, &a, &o);
}
