/* `skeptic eval` of a posterior: the uncertainty report (predictive with S
 * samples, calibration, OOD and misclassification detection, selective
 * prediction) and its pictures. Reached from cmd_eval.c when --samples,
 * --ood or --plots is given or the model file holds a Bayesian posterior. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/eval_uncertainty.h"
#include "skeptic/bayes.h"

/* The Fashion-MNIST name of class k of a model trained on classes (the
 * recorded list, "" for all ten), NULL for other data or a list this does
 * not read. */
static const char *class_name(const char *data, const char *classes, int k)
{
    static const char *const fm[10] = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot" };
    if (!data || strcmp(data, "fashion-mnist")) return NULL;
    int label = k;
    if (classes && *classes) {
        const char *q = classes;
        for (int i = 0; i <= k; i++) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q || v < 0 || v > 9 || (*end && *end != ',')) return NULL;
            label = (int)v;
            if (i < k && !*end) return NULL;
            q = end + (*end == ',');
        }
    }
    return label >= 0 && label < 10 ? fm[label] : NULL;
}

void cli_eval_print_classes(const long *conf, int K, const char *data, const char *classes)
{
    long most = 0;
    for (size_t i = 0; i < (size_t)K * K; i++) most = conf[i] > most ? conf[i] : most;
    int w = 6; /* every count right-aligned under its class number, two spaces apart at least */
    for (long v = most; v >= 10000; v /= 10) w++;
    int wn = 0; /* the names column, where the data has names */
    for (int k = 0; k < K; k++) {
        const char *n = class_name(data, classes, k);
        if (n && (int)strlen(n) + 1 > wn) wn = (int)strlen(n) + 1;
    }
    printf("\nclass %-*s  rows  accuracy\n", wn, "");
    for (int k = 0; k < K; k++) {
        long tot = 0;
        const char *n = class_name(data, classes, k);
        for (int j = 0; j < K; j++) tot += conf[(size_t)k * K + j];
        printf("%5d %-*s", k, wn, n ? n : "");
        if (tot) printf("%6ld  %8.4f\n", tot, (double)conf[(size_t)k * K + k] / tot);
        else printf("%6ld  %8s\n", tot, "n/a");
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%5s ", "");
    for (int j = 0; j < K; j++) printf("%*d", w, j);
    printf("\n");
    for (int k = 0; k < K; k++) {
        printf("%5d ", k);
        for (int j = 0; j < K; j++) printf("%*ld", w, conf[(size_t)k * K + j]);
        printf("\n");
    }
}

bool cli_is_posterior_file(const char *path)
{
    if (!path) return false;
    struct sk_safetensors *f = sk_safetensors_read(path);
    if (!f) return false;
    const char *m = sk_safetensors_meta(f, "skeptic.method");
    bool yes = m && strcmp(m, "deterministic") != 0;
    const char *t = sk_safetensors_meta(f, "skeptic.temperature");
    if (t && strtod(t, NULL) != 1.0) yes = true;
    sk_safetensors_free(f);
    return yes;
}

/* --predictions: log of the S-sample predictive (the report's numbers);
 * --logits (deterministic files): the logits divided by the temperature. */
static int write_outputs(struct sk_posterior *p, const struct sk_dataset *d, const struct cli_unc_opts *u, int S)
{
    int K = p->model->n_classes;
    int64_t shp[2] = { d->n, K };
    float *a = sk_malloc(sizeof(float) * (size_t)(d->n > 0 ? d->n : 1) * K);
    int rc = a ? SK_OK : SK_ENOMEM;
    if (!rc && u->predictions && !(rc = sk_bayes_predict(p, d->x, d->n, S, u->seed, a, NULL))) {
        for (size_t i = 0; i < (size_t)d->n * K; i++) a[i] = logf(a[i]);
        rc = sk_npy_write_f32(u->predictions, a, 2, shp);
    }
    if (!rc && u->logits && !(rc = sk_model_logits(p->model, d->x, d->n, a))) {
        for (size_t i = 0; i < (size_t)d->n * K; i++) a[i] /= p->temperature;
        rc = sk_npy_write_f32(u->logits, a, 2, shp);
    }
    sk_free(a);
    return rc ? cli_fail_lib() : CLI_OK;
}

static void add_det(cJSON *o, const char *key, const struct sk_detection *d)
{
    cJSON *e = cJSON_AddObjectToObject(o, key);
    cli_json_num(e, "auroc", d->auroc);
    cli_json_num(e, "aupr", d->aupr);
    cli_json_num(e, "fpr95", d->fpr95);
}

/* --ood D: raw values, like the test data (the model applies its own preprocessing). */
static int open_ood(const struct cli_unc_opts *u, const struct sk_model *m, struct sk_dataset **ood)
{
    if (!u->ood || !strcmp(u->ood, "none")) return CLI_OK;
    if (!(*ood = sk_data_open(u->ood, "all", NULL))) return cli_fail("--ood %s: %s", u->ood, sk_last_error());
    if ((*ood)->dim != m->in_dim)
        return cli_fail("--ood %s has %d values per row, the model takes %d", u->ood, (*ood)->dim, m->in_dim);
    return CLI_OK;
}

/* dir without its trailing slashes, for the paths printed and written */
static int dir_len(const char *dir)
{
    int n = (int)strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    return n;
}

static int write_plots(const char *dir, const struct sk_bayes_report *r, int n_classes)
{
    mkdir(dir, 0777);
    char path[1024];
    float hmax = logf((float)n_classes);
    float mimax = 0;
    for (int i = 0; i < r->n; i++) mimax = fmaxf(mimax, r->mi[i]);
    for (int i = 0; i < r->n_ood; i++) mimax = fmaxf(mimax, r->ood_mi[i]);
    if (!(mimax > 0)) mimax = 1;
    int n = dir_len(dir);
    snprintf(path, sizeof path, "%.*s/reliability.png", n, dir);
    int rc = sk_plot_reliability(path, &r->rel);
    snprintf(path, sizeof path, "%.*s/entropy.png", n, dir);
    if (!rc) rc = sk_plot_histograms(path, "Predictive entropy", "entropy (nats)", r->entropy, r->n, "test data",
                                     r->ood_entropy, r->n_ood, "out-of-distribution", 40, 0, hmax);
    /* A one-sample predictive has mutual information 0 everywhere: no figure rather than an empty one. */
    snprintf(path, sizeof path, "%.*s/mutual_information.png", n, dir);
    if (!rc && r->n_samples > 1)
        rc = sk_plot_histograms(path, "Mutual information (epistemic)", "mutual information (nats)", r->mi, r->n,
                                "test data", r->ood_mi, r->n_ood, "out-of-distribution", 40, 0, mimax);
    return rc ? cli_fail_lib() : CLI_OK;
}

static const char *score_names[3] = { "maxprob", "entropy", "mi" };

static void print_json(const struct cli_common *c, const struct cli_unc_opts *u, const struct sk_posterior *p,
                       const struct sk_bayes_report *r, bool has_ood)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "method", sk_bayes_method_name(p->method));
    cJSON_AddStringToObject(o, "data", c->data);
    cli_json_num(o, "n", r->n);
    cli_json_num(o, "samples", r->n_samples);
    cli_json_num(o, "temperature", p->temperature);
    cli_json_num(o, "accuracy", r->clean.accuracy);
    cli_json_num(o, "nll", r->clean.nll);
    cli_json_num(o, "brier", r->clean.brier);
    cli_json_num(o, "ece", r->clean.ece);
    cli_json_num(o, "mce", r->clean.mce);
    double me = 0, mm = 0;
    for (int i = 0; i < r->n; i++) {
        me += r->entropy[i] / r->n;
        mm += r->mi[i] / r->n;
    }
    cli_json_num(o, "mean_entropy", me);
    cli_json_num(o, "mean_mi", mm);
    cJSON *rel = cJSON_AddArrayToObject(o, "reliability");
    for (int b = 0; b < r->rel.n_bins; b++) {
        cJSON *e = cJSON_CreateObject();
        cli_json_num(e, "lo", (double)b / r->rel.n_bins);
        cli_json_num(e, "hi", (double)(b + 1) / r->rel.n_bins);
        cli_json_num(e, "count", (double)r->rel.count[b]);
        cli_json_num(e, "confidence", r->rel.count[b] ? r->rel.conf[b] : NAN);
        cli_json_num(e, "accuracy", r->rel.count[b] ? r->rel.acc[b] : NAN);
        cJSON_AddItemToArray(rel, e);
    }
    cJSON *mis = cJSON_AddObjectToObject(o, "misclassification");
    for (int s = 0; s < 3; s++) add_det(mis, score_names[s], &r->misc[s]);
    if (has_ood) {
        cJSON *od = cJSON_AddObjectToObject(o, "ood");
        cJSON_AddStringToObject(od, "data", u->ood);
        cli_json_num(od, "n", r->n_ood);
        for (int s = 0; s < 3; s++) add_det(od, score_names[s], &r->ood[s]);
    }
    cJSON *cov = cJSON_AddArrayToObject(o, "accuracy_at_coverage");
    const double cv[4] = { 0.5, 0.8, 0.9, 1.0 };
    for (int i = 0; i < 4; i++) {
        cJSON *e = cJSON_CreateObject();
        cli_json_num(e, "coverage", cv[i]);
        cli_json_num(e, "accuracy", r->coverage_acc[i]);
        cJSON_AddItemToArray(cov, e);
    }
    cli_json_print(o);
}

/* The layout of cmd_eval.c's (summary, per-class, confusion) and then the
 * uncertainty blocks. A one-sample predictive (a deterministic net, or one
 * with a temperature) has zero mutual information everywhere: its MI rows
 * would be an AUROC of 0.5 that says nothing, so they are left out. */
static void print_text(const struct cli_common *c, const struct cli_unc_opts *u, const struct sk_posterior *p,
                       const struct sk_bayes_report *r, bool has_ood, const long *conf)
{
    printf("model     %s\nspec      %s (%s, %d sample%s, T = %.3g)\n", c->model, p->model->spec,
           sk_bayes_method_name(p->method), r->n_samples, r->n_samples == 1 ? "" : "s", p->temperature);
    printf("data      %s, split %s, %d rows\n", c->data, c->split ? c->split : "test", r->n);
    printf("accuracy  %.4f\nNLL       %.4f\nBrier     %.4f\nECE       %.4f (15 bins)\nMCE       %.4f\n",
           r->clean.accuracy, r->clean.nll, r->clean.brier, r->clean.ece, r->clean.mce);
    cli_eval_print_classes(conf, p->model->n_classes, c->data, p->model->data.classes);
    printf("\n%-15s %7s  %10s  %8s\n", "reliability bin", "count", "confidence", "accuracy");
    for (int b = 0; b < r->rel.n_bins; b++)
        if (r->rel.count[b]) {
            char bin[32];
            snprintf(bin, sizeof bin, "(%.3f,%.3f]", (double)b / r->rel.n_bins, (double)(b + 1) / r->rel.n_bins);
            printf("%-15s %7ld  %10.4f  %8.4f\n", bin, r->rel.count[b], r->rel.conf[b], r->rel.acc[b]);
        }
    int n_scores = r->n_samples > 1 ? 3 : 2;
    printf("\n%-28s %6s  %6s  %10s\n", "detection by score", "AUROC", "AUPR", "FPR@95%TPR");
    for (int s = 0; s < n_scores; s++) {
        char what[64];
        snprintf(what, sizeof what, "misclassified, %s", score_names[s]);
        printf("%-28s %6.4f  %6.4f  %10.4f\n", what, r->misc[s].auroc, r->misc[s].aupr, r->misc[s].fpr95);
    }
    for (int s = 0; has_ood && s < n_scores; s++) {
        char what[64];
        snprintf(what, sizeof what, "OOD %.12s, %s", u->ood, score_names[s]);
        printf("%-28s %6.4f  %6.4f  %10.4f\n", what, r->ood[s].auroc, r->ood[s].aupr, r->ood[s].fpr95);
    }
    printf("\naccuracy at coverage (the most certain rows by entropy)\n%8s  %8s  %8s  %8s\n", "50%", "80%", "90%",
           "100%");
    printf("%8.4f  %8.4f  %8.4f  %8.4f\n", r->coverage_acc[0], r->coverage_acc[1], r->coverage_acc[2],
           r->coverage_acc[3]);
    if (u->plots) {
        int n = dir_len(u->plots);
        printf("\nplots (blue: test data, orange: %s)\n", has_ood ? u->ood : "none");
        printf("  %.*s/reliability.png\n  %.*s/entropy.png\n", n, u->plots, n, u->plots);
        if (r->n_samples > 1) printf("  %.*s/mutual_information.png\n", n, u->plots);
        else printf("  (no mutual_information.png: one sample, so MI is 0 everywhere)\n");
    }
}

/* conf (K x K, zeroed): the argmax of the S-sample predictive against the labels */
static int confusion(struct sk_posterior *p, const struct sk_dataset *d, int S, uint64_t seed, long *conf)
{
    int K = p->model->n_classes;
    float *pb = sk_malloc(sizeof(float) * (size_t)d->n * K);
    int rc = pb ? sk_bayes_predict(p, d->x, d->n, S, seed, pb, NULL) : SK_ENOMEM;
    for (int i = 0; !rc && i < d->n; i++) {
        const float *q = pb + (size_t)i * K;
        int b = 0;
        for (int k = 1; k < K; k++)
            if (q[k] > q[b]) b = k;
        conf[(size_t)d->y[i] * K + b]++;
    }
    sk_free(pb);
    return rc;
}

int cli_eval_uncertainty(const struct cli_common *c, const struct cli_unc_opts *u)
{
    if (!c->model) return cli_usage("--model FILE is required");
    if (!c->data) return cli_usage("--data D is required");
    if (u->samples < 0) return cli_usage("--samples must be >= 1 (got %d)", u->samples);
    struct sk_posterior *p = sk_bayes_load(c->model);
    if (!p) return cli_fail_lib();
    struct sk_dataset *d = cli_load_eval_data(c, p->model, NULL), *ood = NULL;
    struct sk_bayes_report r = { 0 };
    long *conf = NULL;
    int status = CLI_FAIL;
    int S = u->samples > 0 ? u->samples : 20;
    if (!d) goto out;
    if (u->logits && p->method != SK_BAYES_DETERMINISTIC) {
        status = cli_usage("--logits: a %s model's predictive is an average of probabilities and has no logits; "
                           "--predictions writes its log-probabilities", sk_bayes_method_name(p->method));
        goto out;
    }
    if ((status = open_ood(u, p->model, &ood))) goto out;
    if ((u->predictions || u->logits) && (status = write_outputs(p, d, u, S)) != CLI_OK) goto out;
    if (sk_bayes_report(p, d->x, d->y, d->n, ood ? ood->x : NULL, ood ? ood->n : 0, S, u->seed, &r)) {
        status = cli_fail_lib();
        goto out;
    }
    if (u->plots && (status = write_plots(u->plots, &r, p->model->n_classes))) goto out;
    if (c->json) print_json(c, u, p, &r, ood != NULL);
    else {
        int K = p->model->n_classes;
        if (!(conf = sk_calloc((size_t)K * K, sizeof(long))) || confusion(p, d, S, u->seed, conf)) {
            status = cli_fail_lib();
            goto out;
        }
        print_text(c, u, p, &r, ood != NULL, conf);
    }
    status = CLI_OK;
out:
    sk_free(conf);
    sk_bayes_report_free(&r);
    sk_dataset_free(d);
    sk_dataset_free(ood);
    sk_bayes_free(p);
    return status;
}
