/* skeptic attack: adversarial attacks and robustness evaluation (library:
 * skeptic/attack.h). Prints clean and robust accuracy, success rate, norms,
 * cost, per-stage figures of the suite and the audits' warnings; optionally
 * the accuracy-versus-eps curve (CSV, PNG), the adversarial examples (.npy),
 * the clean input gradients (.npy) and a picture grid (PNG). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/attack_property.h"
#include "cli/attack_shard.h"
#include "cli/cli.h"
#include "cli/cli_dist.h"
#include "cli/eval_uncertainty.h"
#include "skeptic/attack.h"
#include "skeptic/bayes.h"

#define MAX_EPS 32

static int parse_eps_list(const char *s, float *eps, int *n)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0) || *n >= MAX_EPS)
            return cli_usage("--eps-list: expected up to %d comma-separated numbers >= 0, got '%s'", MAX_EPS, s);
        eps[(*n)++] = (float)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return cli_usage("--eps-list: unexpected '%c' in '%s'", *p, s);
    }
    if (!*n) return cli_usage("--eps-list is empty");
    return 0; /* ascending: sk_attack_curve checks */
}

static void json_result(cJSON *o, const struct sk_attack_result *r)
{
    cJSON_AddStringToObject(o, "attack", r->attack);
    cJSON_AddStringToObject(o, "norm", sk_attack_norm_name(r->norm));
    char et[48];
    double eg = cli_float_as_given(r->eps, et, sizeof et);
    cli_json_num(o, "eps", eg);       /* as given */
    cli_json_num(o, "eps_f32", r->eps); /* the float the attack used */
    cJSON_AddNumberToObject(o, "n", r->n);
    cli_json_num(o, "clean_accuracy", r->clean_acc);
    cli_json_num(o, "robust_accuracy", r->robust_acc);
    cli_json_num(o, "success_rate", r->success_rate);
    cli_json_num(o, "mean_norm", r->mean_norm);
    cli_json_num(o, "median_norm", r->median_norm);
    cJSON_AddNumberToObject(o, "grad_evals", (double)r->grad_evals);
    cJSON_AddNumberToObject(o, "queries", (double)r->queries);
    cli_json_num(o, "seconds", r->seconds);
    cJSON_AddBoolToObject(o, "targeted", r->targeted);
    cJSON_AddBoolToObject(o, "stochastic", r->stochastic);
    cJSON_AddNumberToObject(o, "eot_samples", r->eot_samples);
    cJSON_AddBoolToObject(o, "no_eot", r->no_eot);
    cJSON_AddNumberToObject(o, "verdict_samples", r->verdict_samples);
    cli_json_num(o, "robust_accuracy_se", r->robust_acc_se);
    if (r->no_eot) cJSON_AddStringToObject(o, "label", "stochastic model, no EOT: optimistic robust accuracy");
    cJSON *st = cJSON_AddArrayToObject(o, "stages");
    for (int s = 0; s < r->n_stages; s++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "attack", r->stages[s].name);
        cJSON_AddNumberToObject(e, "attacked", r->stages[s].n_attacked);
        cJSON_AddNumberToObject(e, "broken", r->stages[s].n_broken);
        cli_json_num(e, "robust_accuracy", r->stages[s].robust_acc);
        cJSON_AddNumberToObject(e, "grad_evals", (double)r->stages[s].grad_evals);
        cJSON_AddNumberToObject(e, "queries", (double)r->stages[s].queries);
        cli_json_num(e, "seconds", r->stages[s].seconds);
        cJSON_AddItemToArray(st, e);
    }
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (int i = 0; i < r->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(r->warnings[i]));
}

/* The flags that set the attack-config fields the library names. */
static const struct cli_field_flag attack_flags[] = {
    { "cfg.eps", "--eps" }, { "cfg.norm", "--norm" }, { "cfg.target", "--targeted" }, { "eps_list", "--eps-list" },
    { NULL, NULL },
};

/* A bad eps or eps list (the library checks them) is a usage error, as it
 * always was; any other failure a failure. */
static int attack_failed(void)
{
    const char *e = sk_last_error();
    if (strstr(e, "cfg.eps") || strstr(e, "eps_list")) return cli_usage_lib(attack_flags);
    return cli_fail_lib_map(attack_flags);
}

/* The options of an attack run. */
struct attack_args {
    const char *attack, *norm, *eps_list, *targeted, *loss;
    const char *save_adv, *save_grad, *grid, *plot, *csv;
    float eps, step_size, clip_min, clip_max;
    int steps, restarts, eot, queries, n_targets, batch, target, grid_n, verdict;
    uint64_t seed;
    bool random_start, mc;
    float epsv[MAX_EPS];
    int n_eps;
};

/* What a run holds; attack_run_free releases it. */
struct attack_run {
    struct sk_attack_config cfg;
    struct sk_posterior *post; /* a posterior file; else m is a plain network */
    struct sk_model *m;
    char *meta;
    struct sk_dataset *d;
    struct sk_classifier *cl;
    struct sk_attack_result *r, **rs; /* rs: one per eps of --eps-list, r the last */
    int *tg;
    float *box_lo, *box_hi; /* per-feature box (tabular data), cfg's box_lo/box_hi */
    double curve[MAX_EPS];
    int C, H, W; /* the picture shape of a row */
};

static void attack_run_free(struct attack_run *r, int n_eps)
{
    if (r->rs) {
        for (int e = 0; e < n_eps; e++) sk_attack_result_free(r->rs[e]);
        sk_free(r->rs);
    } else {
        sk_attack_result_free(r->r);
    }
    sk_free(r->tg);
    sk_free(r->box_lo);
    sk_free(r->box_hi);
    sk_classifier_free(r->cl);
    sk_free(r->meta);
    sk_dataset_free(r->d);
    if (r->post)
        sk_bayes_free(r->post);
    else
        sk_model_free(r->m);
}

static int parse_target(struct attack_args *a, struct sk_attack_config *cfg)
{
    if (a->loss) {
        if (!strcmp(a->loss, "ce")) cfg->loss = SK_LOSS_CE;
        else if (!strcmp(a->loss, "cw")) cfg->loss = SK_LOSS_CW;
        else if (!strcmp(a->loss, "dlr")) cfg->loss = SK_LOSS_DLR;
        else return cli_usage("--loss: expected ce, cw or dlr, got '%s'", a->loss);
    }
    if (a->target >= 0 && !a->targeted) a->targeted = "given";
    if (!a->targeted) return CLI_OK;
    if (!strcmp(a->targeted, "random")) cfg->target = SK_TARGET_RANDOM;
    else if (!strcmp(a->targeted, "least-likely") || !strcmp(a->targeted, "ll")) cfg->target = SK_TARGET_LEAST_LIKELY;
    else if (!strcmp(a->targeted, "given")) {
        if (a->target < 0) return cli_usage("--targeted given needs --target K");
        cfg->target = SK_TARGET_GIVEN;
    } else
        return cli_usage("--targeted: expected random, least-likely or given, got '%s'", a->targeted);
    return CLI_OK;
}

/* The options into the attack config; the library checks eps and the norm. */
static int build_config(const struct cli_common *c, struct attack_args *a, struct sk_attack_config *cfg)
{
    if (!c->model) return cli_usage("--model FILE is required");
    if (!c->data) return cli_usage("--data D is required");
    const struct cli_path outs[] = { { "--save-adv", a->save_adv, false }, { "--save-grad", a->save_grad, false },
                                     { "--grid", a->grid, false },         { "--plot", a->plot, false },
                                     { "--csv", a->csv, false },           { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--model", c->model, false }, { "--data", c->data, false },
                                    { "--labels", c->labels, false }, { NULL, NULL, false } };
    int kind = sk_attack_parse(a->attack), rc = cli_dist_check_outputs(outs, ins);
    if (rc) return rc;
    enum sk_figure_format ff;
    if (a->grid && sk_figure_format_of(a->grid, &ff)) return cli_usage("--grid: %s", sk_last_error());
    if (a->plot && sk_figure_format_of(a->plot, &ff)) return cli_usage("--plot: %s", sk_last_error());
    if (kind < 0) {
        const char *names[SK_ATTACK_COUNT];
        for (int k = 0; k < SK_ATTACK_COUNT; k++) names[k] = sk_attack_name((enum sk_attack_kind)k);
        return cli_bad_choice("--attack", a->attack, names, SK_ATTACK_COUNT);
    }
    int p = kind == SK_ATTACK_CW || kind == SK_ATTACK_DEEPFOOL ? SK_NORM_L2
            : kind == SK_ATTACK_SPARSE                         ? SK_NORM_L0
                                                               : SK_NORM_LINF;
    if (a->norm && (p = sk_attack_norm_parse(a->norm)) < 0)
        return cli_usage("--norm: expected linf, l2 or l0, got '%s'", a->norm);
    bool minnorm = kind == SK_ATTACK_CW || kind == SK_ATTACK_DEEPFOOL || kind == SK_ATTACK_FMN;
    if (a->eps_list && (rc = parse_eps_list(a->eps_list, a->epsv, &a->n_eps))) return rc;
    if (!a->eps_list && isnan(a->eps)) {
        if (!minnorm) return cli_usage("--eps E is required for --attack %s (or give --eps-list)", a->attack);
        a->eps = INFINITY;
    }
    if ((a->plot || a->csv) && !a->eps_list) return cli_usage("--plot and --csv need --eps-list");
    if (a->steps < 0 || a->restarts < 1 || a->batch < 1 || a->eot < 0 || a->queries < 0 || a->grid_n < 1 ||
        a->verdict < 1)
        return cli_usage("--steps, --restarts, --batch, --eot, --queries, --verdict-samples and --grid-n must be positive");
    *cfg = sk_attack_defaults((enum sk_attack_kind)kind, (enum sk_norm)p, a->eps);
    cfg->steps = a->steps;
    cfg->restarts = a->restarts;
    cfg->step_size = a->step_size;
    cfg->random_start = a->random_start;
    cfg->batch = a->batch;
    cfg->seed = a->seed;
    cfg->verdict_samples = a->verdict;
    if (a->queries) cfg->queries = a->queries;
    if (a->n_targets) cfg->n_target_classes = a->n_targets;
    return parse_target(a, cfg);
}

/* The model file (a posterior file, or one with a temperature, is attacked
 * through its predictive, like eval and compare judge it; a plain file as a
 * network) and its data. */
static int open_target(const struct cli_common *c, const struct attack_args *a, struct attack_run *r)
{
    if (cli_is_posterior_file(c->model)) {
        if (!(r->post = sk_bayes_load(c->model))) return cli_fail_lib();
        r->m = r->post->model;
    } else if (!(r->m = cli_load_model(c, &r->meta))) {
        return CLI_FAIL;
    }
    if (!(r->d = cli_load_eval_data(c, r->m, r->meta))) return CLI_FAIL;
    if (r->d->n < 1) return cli_fail("%s: no rows to attack", c->data);
    if (a->target >= r->m->n_classes)
        return cli_usage("--target %d: the model has %d classes", a->target, r->m->n_classes);
    if (r->post && a->mc)
        return cli_usage("--mc: %s holds a %s posterior, attacked through its own predictive (--eot K samples per "
                         "call); --mc is for plain files with dropout", c->model, sk_bayes_method_name(r->post->method));
    if (a->mc && !sk_model_has_dropout(r->m)) return cli_usage("--mc: the model has no dropout layer, it is deterministic");
    int rc = cli_feature_box("attack", c->data, r->d, r->m, a->clip_min, a->clip_max, false, &r->cfg.clip_min,
                             &r->cfg.clip_max, &r->box_lo, &r->box_hi);
    r->cfg.box_lo = r->box_lo;
    r->cfg.box_hi = r->box_hi;
    return rc;
}

static int make_classifier(const struct cli_common *c, const struct attack_args *a, struct attack_run *r)
{
    int eot = a->eot;
    if (r->post) {
        /* ensembles and SGLD: every member unless --eot K; vi / laplace: K samples per call (default 1: no EOT) */
        enum sk_bayes_method me = r->post->method;
        bool stoch = me == SK_BAYES_VI || me == SK_BAYES_LAPLACE || me == SK_BAYES_MCDROPOUT;
        r->cl = sk_bayes_classifier(r->post, eot ? eot : (stoch ? 1 : 0), a->seed);
        if (r->cl)
            fprintf(stderr, "skeptic attack: %s is a %s posterior: attacking its predictive over %d sample(s) per call, "
                    "temperature %g applied\n", c->model, sk_bayes_method_name(me), r->cl->n_samples,
                    r->post->temperature);
    } else {
        if (eot && !a->mc)
            fprintf(stderr, "skeptic attack: note: --eot without --mc: the model runs deterministic (eval mode); --eot ignored\n");
        r->cl = sk_classifier_from_model(r->m, a->mc ? SK_MODE_MC : SK_MODE_EVAL, a->mc ? (eot ? eot : 1) : 1, a->seed);
    }
    return r->cl ? CLI_OK : cli_fail_lib();
}

/* Live progress on stderr: a bar inside each stage (terminals only) and
 * each stage's line as soon as it is over (every output). */
/* The stage lines went to a terminal that stdout shares: not printed twice. */
static bool stages_on_screen;

struct attack_live {
    struct cli_progress prog;
    double t0;
    float eps; /* the eps being attacked (--eps-list: changes) */
    bool lines;
};

static void stage_line(FILE *fp, const struct sk_attack_stage *st, int n)
{
    long robust = lround(st->robust_acc * n);
    char pct[48], t[24];
    snprintf(pct, sizeof pct, "%.2f%% (%ld/%d)", 100 * st->robust_acc, robust, n);
    cli_fmt_time(t, sizeof t, st->seconds);
    fprintf(fp, "  %-9s %8d %s%7d%s  %-18s %6s\n", st->name, st->n_attacked,
            cli_sgr(fp, st->n_broken ? CLI_STYLE_BAD : CLI_STYLE_GOOD), st->n_broken, cli_sgr(fp, CLI_STYLE_OFF), pct, t);
}

static void stage_header(FILE *fp)
{
    fprintf(fp, "  %-9s %8s %7s  %-18s %6s\n", "stage", "attacked", "broken", "robust", "time");
}

static void on_attack_progress(void *ctx, const struct sk_attack_progress *p)
{
    struct attack_live *l = ctx;
    if (p->finished) {
        cli_progress_clear(&l->prog);
        if (l->lines) {
            if (p->stage == 0 && p->n_stages > 1) stage_header(stderr);
            if (p->n_stages > 1) stage_line(stderr, p->finished, p->n);
            fflush(stderr);
        }
        return;
    }
    char left[64], e0[48], e1[48];
    snprintf(left, sizeof left, "stage %d/%d %s", p->stage + 1, p->n_stages, p->name);
    snprintf(e0, sizeof e0, "%d/%d rows", p->done, p->total);
    char t[24];
    cli_fmt_time(t, sizeof t, sk_now() - l->t0);
    snprintf(e1, sizeof e1, "%s", t);
    const char *extra[] = { e0, e1 };
    cli_progress_draw(&l->prog, left, p->total ? (double)p->done / p->total : 1, extra, 2, true);
}

/* The attack (or the curve of --eps-list); warnings on stderr. */
static int run_attack(const struct cli_common *c, const struct attack_args *a, struct attack_run *r)
{
    const struct sk_dataset *d = r->d;
    struct sk_attack_config *cfg = &r->cfg;
    /* image shape for square/sparse and pictures: the data's (an MLP sees a vector) */
    if (d->c * d->h * d->w == r->m->in_dim) {
        cfg->img_c = d->c;
        cfg->img_h = d->h;
        cfg->img_w = d->w;
    }
    r->C = cfg->img_c ? cfg->img_c : r->m->in_c;
    r->H = cfg->img_c ? cfg->img_h : r->m->in_h;
    r->W = cfg->img_c ? cfg->img_w : r->m->in_w;
    if (cfg->target == SK_TARGET_GIVEN) {
        if (!(r->tg = sk_malloc(sizeof(int) * (size_t)d->n))) return cli_fail_lib();
        for (int i = 0; i < d->n; i++) r->tg[i] = a->target;
        cfg->targets = r->tg;
    }
    struct attack_live live;
    cli_progress_init(&live.prog, 1);
    live.t0 = sk_now();
    live.lines = !c->json && cli_verbosity >= 0 && !a->eps_list;
    cfg->on_progress = on_attack_progress;
    cfg->progress_ctx = &live;
    if (a->eps_list) {
        r->rs = sk_calloc((size_t)a->n_eps, sizeof *r->rs);
        if (!r->rs) return cli_fail_lib();
        if (cli_attack_curve(r->cl, cfg, a->epsv, a->n_eps, d->x, d->y, d->n, r->curve, r->rs)) return attack_failed();
        r->r = r->rs[a->n_eps - 1];
    } else if (!(r->r = cli_attack_evaluate(r->cl, cfg, d->x, d->y, d->n))) {
        cli_progress_clear(&live.prog);
        return attack_failed();
    }
    cli_progress_clear(&live.prog);
    cfg->on_progress = NULL;
    if (sk_dist_rank() != 0) return CLI_OK; /* rank 0 reports the whole */
    if (live.lines && r->r->n_stages > 1) {
        fputc('\n', stderr);
        stages_on_screen = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
    }
    for (int i = 0; i < r->r->n_warnings; i++)
        fprintf(stderr, "%swarning: %s\n", c->json ? "skeptic attack: " : "", r->r->warnings[i]);
    return CLI_OK;
}

static int write_csv(const char *path, const struct attack_args *a, const double *curve)
{
    size_t cap = 64 + 48 * (size_t)a->n_eps, o = 0;
    char *buf = sk_malloc(cap);
    if (!buf) return cli_fail_lib();
    o += (size_t)snprintf(buf + o, cap - o, "eps,robust_accuracy\n");
    for (int e = 0; e < a->n_eps; e++) o += (size_t)snprintf(buf + o, cap - o, "%g,%.6f\n", a->epsv[e], curve[e]);
    const void *parts[1] = { buf };
    size_t lens[1] = { o };
    int wrc = sk_write_file_atomic(path, parts, lens, 1);
    sk_free(buf);
    return wrc ? cli_fail_lib() : CLI_OK;
}

/* --save-grad: the input gradient of the cross-entropy at the clean points. */
static int write_grad(const struct attack_args *a, const struct attack_run *r)
{
    const struct sk_dataset *d = r->d;
    int D = r->m->in_dim, B = a->batch;
    float *gx = sk_malloc(sizeof(float) * (size_t)d->n * D);
    int rc = gx ? SK_OK : SK_ENOMEM;
    for (int s = 0; !rc && s < d->n; s += B) {
        int nb = d->n - s < B ? d->n - s : B;
        rc = r->cl->input_grad(r->cl->self, d->x + (size_t)s * D, nb, sk_logp_loss_ce, d->y + s, NULL, NULL,
                               gx + (size_t)s * D);
    }
    if (!rc) rc = sk_attack_save_npy(a->save_grad, gx, d->n, r->C, r->H, r->W);
    sk_free(gx);
    return rc ? cli_fail_lib() : CLI_OK;
}

/* --grid: successful examples first; classes named where the data has names. */
static int write_grid(const struct cli_common *c, const struct attack_args *a, const struct attack_run *r)
{
    const struct sk_dataset *d = r->d;
    if (r->C != 1 && r->C != 3) return cli_fail("--grid: images need 1 or 3 channels (the data has %d)", r->C);
    int *idx = sk_malloc(sizeof(int) * (size_t)d->n), k = 0;
    if (!idx) return cli_fail_lib();
    for (int i = 0; i < d->n && k < a->grid_n; i++)
        if (r->r->success[i]) idx[k++] = i;
    for (int i = 0; i < d->n && k < a->grid_n; i++)
        if (!r->r->success[i]) idx[k++] = i;
    const char *names[16];
    int n_names = r->m->n_classes <= 16 ? r->m->n_classes : 0;
    for (int j = 0; j < n_names; j++) names[j] = sk_data_class_name(c->data, r->m->data.classes, j);
    int grc = sk_attack_plot_grid(a->grid, d->x, r->r->x_adv, d->y, r->r->pred_adv, idx, k, r->C, r->H, r->W, names,
                                  n_names);
    sk_free(idx);
    return grc ? cli_fail_lib() : CLI_OK;
}

static int write_files(const struct cli_common *c, const struct attack_args *a, const struct attack_run *r)
{
    int rc = CLI_OK;
    if (a->csv && (rc = write_csv(a->csv, a, r->curve))) return rc;
    if (a->plot) {
        char title[96];
        snprintf(title, sizeof title, "%s %s%s", sk_attack_name(r->cfg.kind), sk_attack_norm_name(r->cfg.norm),
                 r->r->no_eot ? " NO EOT" : "");
        const char *names[1] = { title };
        if (sk_attack_plot_curve(a->plot, title, a->epsv, a->n_eps, r->curve, 1, names)) return cli_fail_lib();
    }
    if (a->save_adv && sk_attack_save_npy(a->save_adv, r->r->x_adv, r->r->n, r->C, r->H, r->W)) return cli_fail_lib();
    if (a->save_grad && (rc = write_grad(a, r))) return rc;
    if (a->grid && (rc = write_grid(c, a, r))) return rc;
    return CLI_OK;
}

static void print_json(const struct cli_common *c, const struct attack_args *a, const struct attack_run *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "data", c->data);
    json_result(o, r->r);
    cJSON *bx = cJSON_AddArrayToObject(o, "box");
    cJSON_AddItemToArray(bx, cJSON_CreateNumber(r->cfg.clip_min));
    cJSON_AddItemToArray(bx, cJSON_CreateNumber(r->cfg.clip_max));
    if (r->box_lo) {
        cJSON_AddItemToObject(o, "box_lo", cJSON_CreateFloatArray(r->box_lo, r->d->dim));
        cJSON_AddItemToObject(o, "box_hi", cJSON_CreateFloatArray(r->box_hi, r->d->dim));
    }
    if (a->eps_list) {
        cJSON *cv = cJSON_AddObjectToObject(o, "curve");
        cJSON *ea = cJSON_AddArrayToObject(cv, "eps"), *aa = cJSON_AddArrayToObject(cv, "robust_accuracy");
        for (int e = 0; e < a->n_eps; e++) {
            cJSON_AddItemToArray(ea, cJSON_CreateNumber(a->epsv[e]));
            cJSON_AddItemToArray(aa, cJSON_CreateNumber(r->curve[e]));
        }
    }
    cli_json_print(o);
}

static void print_text(const struct attack_args *a, const struct attack_run *r)
{
    const struct sk_attack_result *res = r->r;
    char buf[4096];
    if (a->eps_list) {
        printf("accuracy versus eps (%s, %s%s), %d points\n  eps        robust accuracy\n", res->attack,
               sk_attack_norm_name(res->norm), res->no_eot ? ", stochastic model, no EOT" : "", res->n);
        for (int e = 0; e < a->n_eps; e++) printf("  %-9g  %.4f\n", a->epsv[e], r->curve[e]);
        printf("\nat the largest eps:\n");
    }
    (void)buf;
    long nc = 0, nr = 0, ns = 0;
    for (int i = 0; i < res->n; i++) {
        nc += res->clean_correct[i];
        nr += res->robust[i];
        ns += res->clean_correct[i] && res->success[i];
    }
    char et[48];
    cli_float_as_given(res->eps, et, sizeof et);
    printf("attack %s (%s, eps %s%s) on %d points%s\n", res->attack, sk_attack_norm_name(res->norm), et,
           res->targeted ? ", targeted" : "", res->n, res->no_eot ? "  [stochastic model, no EOT: optimistic]" : "");
    printf("clean accuracy    %.2f%% (%ld/%d)\n", 100 * res->clean_acc, nc, res->n);
    printf("robust accuracy   %s%.2f%% (%ld/%d)%s%s\n", cli_sgr(stdout, CLI_STYLE_BOLD), 100 * res->robust_acc, nr, res->n,
           cli_sgr(stdout, CLI_STYLE_OFF), res->no_eot ? "  (stochastic model, no EOT)" : "");
    if (res->stochastic)
        printf("verdict           %d predictive samples per point; Monte-Carlo s.e. %.2f points\n", res->verdict_samples,
               100 * res->robust_acc_se);
    printf("success rate      %.2f%% of clean-correct points (%ld/%ld)\n", 100 * res->success_rate, ns, nc);
    printf("perturbation      mean %.4g  median %.4g (%s, successful points)\n", res->mean_norm, res->median_norm,
           sk_attack_norm_name(res->norm));
    char t[24];
    cli_fmt_time(t, sizeof t, res->seconds);
    printf("cost              %ld input gradients, %ld forward rows, %s\n", res->grad_evals, res->queries, t);
    if (res->n_stages > 1 && !stages_on_screen) {
        putchar('\n');
        stage_header(stdout);
        for (int s = 0; s < res->n_stages; s++) stage_line(stdout, &res->stages[s], res->n);
        if (cli_verbosity > 0)
            for (int s = 0; s < res->n_stages; s++)
                printf("  %-9s %ld input gradients, %ld forward rows\n", res->stages[s].name, res->stages[s].grad_evals,
                       res->stages[s].queries);
    }
    if (a->save_adv) printf("adversarial examples written to %s\n", a->save_adv);
    if (a->grid) printf("grid written to %s\n", a->grid);
    if (a->plot) printf("plot written to %s\n", a->plot);
}

static int attack(const struct cli_common *c, struct attack_args *a, const struct sk_attack_config *cfg)
{
    struct attack_run r = { .cfg = *cfg };
    int status = open_target(c, a, &r);
    if (!status) status = make_classifier(c, a, &r);
    /* mpirun: the rows are shared out (attack_shard.c), except for a stochastic classifier */
    bool sit_out = !status && r.cl->stochastic &&
                   cli_dist_sit_out("an attack on a stochastic classifier (its draws depend on the batch)");
    if (!status && !sit_out) status = run_attack(c, a, &r);
    if (!status && (sit_out || sk_dist_rank() != 0)) {
        attack_run_free(&r, a->n_eps);
        return CLI_OK;
    }
    if (!status) status = write_files(c, a, &r);
    if (!status && c->json) print_json(c, a, &r);
    else if (!status) print_text(a, &r);
    attack_run_free(&r, a->n_eps);
    return status;
}

int cmd_attack(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct attack_args a = { .attack = "pgd", .eps = NAN, .clip_min = NAN, .clip_max = NAN, .restarts = 1,
                             .batch = 256, .target = -1, .grid_n = 8, .verdict = SK_ATTACK_VERDICT_SAMPLES };
    const char *property = NULL;
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c),
        CLI_DATA_OPTS(c),
        { "attack", CLI_STR, &a.attack, "A",
          "fgsm | pgd | mifgsm | apgd-ce | apgd-dlr | apgd-t | cw | deepfool | fmn | square | sparse | suite (default pgd)" },
        { "norm", CLI_STR, &a.norm, "P", "linf | l2 | l0 (sparse: eps = pixels) (default linf; cw, deepfool: l2)" },
        { "eps", CLI_FLOAT, &a.eps, "E", "budget (required, except cw/deepfool/fmn: unbounded by default)" },
        { "eps-list", CLI_STR, &a.eps_list, "LIST", "accuracy versus eps, e.g. 0,0.02,0.05,0.1,0.2 (ascending)" },
        { "steps", CLI_INT, &a.steps, "S", "iterations (default: pgd 20, mifgsm 10, apgd/fmn 100, cw 100 per search step)" },
        { "restarts", CLI_INT, &a.restarts, "R", "restarts, run on the points still standing (default 1)" },
        { "step-size", CLI_FLOAT, &a.step_size, "A", "pgd (default 2.5 eps/steps), mifgsm (eps/steps), cw Adam lr (0.01)" },
        { "random-start", CLI_FLAG, &a.random_start, NULL, "pgd: start at a uniform point of the ball" },
        { "loss", CLI_STR, &a.loss, "L", "pgd/mifgsm loss: ce | cw | dlr (default ce)" },
        { "targeted", CLI_STR, &a.targeted, "T", "random | least-likely | given (with --target K)" },
        { "target", CLI_INT, &a.target, "K", "target class for every point (implies --targeted given)" },
        { "mc", CLI_FLAG, &a.mc, NULL, "attack the MC-dropout predictive (dropout on at test time)" },
        { "eot", CLI_INT, &a.eot, "K", "expectation over transformation: K dropout samples per call (with --mc)" },
        { "verdict-samples", CLI_INT, &a.verdict, "N",
          "stochastic model: predictive samples that judge each point (default 200; same for every stage)" },
        { "queries", CLI_INT, &a.queries, "Q", "square/sparse queries per point (default 5000)" },
        { "n-targets", CLI_INT, &a.n_targets, "K", "apgd-t: target classes tried (default 9)" },
        { "batch", CLI_INT, &a.batch, "B", "rows per model call (default 256)" },
        { "seed", CLI_U64, &a.seed, "S", "seed of random starts, targets and search (default 0)" },
        { "save-adv", CLI_STR, &a.save_adv, "FILE.npy", "write the adversarial examples (float32, N x C x H x W)" },
        { "save-grad", CLI_STR, &a.save_grad, "FILE.npy", "write the input gradient of the cross-entropy at the clean points" },
        { "grid", CLI_STR, &a.grid, "FILE.png|svg", "picture: originals, perturbations (magnified), adversarial examples" },
        { "grid-n", CLI_INT, &a.grid_n, "N", "rows of the grid (default 8; successful examples first)" },
        { "plot", CLI_STR, &a.plot, "FILE.png|svg", "with --eps-list: the accuracy-versus-eps plot" },
        { "csv", CLI_STR, &a.csv, "FILE", "with --eps-list: eps,robust_accuracy lines" },
        CLI_BOX_OPTS(a.clip_min, a.clip_max),
        { "property", CLI_STR, &property, "FILE.vnnlib",
          "threat model from a VNN-LIB property: find a point of its box meeting its output constraints (no --data; "
          "--restarts starts per disjunct, --steps, --seed, --save-adv)" },
        CLI_THREADS_OPT(c),
        CLI_JSON_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "attack",
        "skeptic attack --model M --data D --attack A [--norm P] --eps E [options]",
        "Attack a model on the test split of D (the first --n points) and report clean accuracy, robust accuracy\n"
        "(correct at the adversarial example), attack success rate, mean and median norm of the successful\n"
        "perturbations, input gradients and forward rows spent, and wall time. Every example is projected onto the\n"
        "eps ball and the valid input box ([0,1] when the data lie in it, else their range, or --clip-min/--clip-max);\n"
        "each point keeps the best example found across iterations and restarts.\n"
        "--attack suite runs APGD-CE, APGD-T (targeted DLR), FMN and Square (linf) each on the points still\n"
        "standing: a point is robust only if it survives all. Audits print warnings: stochastic model without EOT,\n"
        "zero or non-finite input gradients, black-box beating white-box (gradient masking), outputs that look\n"
        "like probabilities, train-mode behaviour. With --mc and no --eot K the figure is labelled 'no EOT'.\n"
        "JSON keys: attack, norm, eps, n, clean_accuracy, robust_accuracy, success_rate, mean_norm, median_norm,\n"
        "grad_evals, queries, seconds, stochastic, eot_samples, no_eot, verdict_samples, robust_accuracy_se,\n"
        "stages, warnings, curve, box. With --mc the attacks run all their steps on every point and a point is\n"
        "broken only if the average of --verdict-samples predictive samples misclassifies it.",
        "skeptic attack --model mlp.safetensors --data fashion-mnist --n 1000 --attack pgd --eps 0.1 --steps 20\n"
        "skeptic attack --model mlp.safetensors --data fashion-mnist --n 1000 --attack suite --eps 0.1 --json\n"
        "skeptic attack --model mlp.safetensors --data fashion-mnist --n 1000 --eps-list 0,0.02,0.05,0.1,0.2 --plot eps.png\n"
        "skeptic attack --model mlp.safetensors --data fashion-mnist --attack deepfool --grid adv.png",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (property) {
        if (!c.model) return cli_usage("--model FILE is required");
        if (c.data) return cli_usage("--property is the threat model: no --data");
        return cli_attack_property(&c, property, a.restarts, a.steps, a.seed, a.save_adv);
    }
    struct sk_attack_config cfg;
    if ((rc = build_config(&c, &a, &cfg))) return rc;
    return attack(&c, &a, &cfg);
}
