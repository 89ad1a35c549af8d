/* skeptic curvature: the Hessian's spectrum of a model's training loss and
 * its flatness and generalization measures (sk_curvature_measures). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "skeptic/curvature.h"

struct stage_line {
    bool on;
    double t0;
};

/* One line on stderr, redrawn in place, when it is a terminal. */
static void on_progress(void *ctx, const char *stage, double frac)
{
    struct stage_line *s = ctx;
    if (!s->on) return;
    fprintf(stderr, "\r\033[Kcurvature: %-34s %3.0f%%  %5.0f s", stage, 100 * frac, sk_now() - s->t0);
    if (frac >= 1) fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

static const struct cli_field_flag field_flags[] = {
    { "cfg.top_k", "--top-k" },           { "cfg.lanczos_steps", "--lanczos-steps" }, { "cfg.probes", "--probes" },
    { "cfg.slq_steps", "--slq-steps" },   { "cfg.spread_n", "--spread-n" },          { "cfg.spread_steps", "--lanczos-steps" },
    { "cfg.eps", "--eps" },               { "cfg.rho", "--rho" },                    { "cfg.pac_bound", "--pac-bound" },
    { "cfg.ascent_steps", "--ascent-steps" }, { "cfg.pac_iters", "the bisection steps" }, { "cfg.pac_samples", "--pac-samples" },
    { "cfg.gns_batch", "--gns-batch" },   { "cfg.n", "--n" },                        { "gns_batch", "--gns-batch" },
    { NULL, NULL },
};

static void print_text(const char *model, const struct sk_model *m, const struct sk_curvature_report *r,
                       const char *density)
{
    printf("model      %s (%s, %zu parameters)\n", model, m->spec, r->n_params);
    printf("rows       %d training rows%s", r->n_train, r->n_test ? "" : "\n");
    if (r->n_test) printf(", %d test rows\n", r->n_test);
    printf("\nspectrum of the training loss's Hessian\n");
    for (int i = 0; i < r->k; i++)
        printf("  lambda_%-3d %12.6g   (residual %.2g)\n", i + 1, r->eig[i], r->eig_resid[i]);
    printf("  Lanczos steps %d\n", r->lanczos_steps);
    printf("  trace       %12.6g +- %.3g  (Hutchinson, %d probes)\n", r->trace, r->trace_se, r->trace_probes);
    if (!isnan(r->slq_m1))
        printf("  density     %s  (SLQ moments: mean %.4g, mean square %.4g)\n", density ? density : "-", r->slq_m1,
               r->slq_m2);
    if (r->has_dense) {
        printf("  dense       lambda_1 %.6g", r->dense_eig[0]);
        for (int i = 1; i < r->k; i++) printf(", %.6g", r->dense_eig[i]);
        printf("; trace %.6g; lambda_min %.6g\n", r->dense_trace, r->dense_min);
    }
    if (r->spread_sets)
        printf("  lambda_max over %d sets: min %.4g  median %.4g  max %.4g  (max/min %.2f, rel. sd %.2f)\n",
               r->spread_sets, r->spread_min, r->spread_median, r->spread_max, r->spread_max / r->spread_min,
               r->spread_rsd);
    printf("\ngeneralization gap\n");
    printf("  train       loss %.4f  error %.4f\n", r->train_loss, r->train_err);
    if (r->n_test) {
        printf("  test        loss %.4f  error %.4f\n", r->test_loss, r->test_err);
        printf("  gap         loss %+.4f  error %+.4f\n", r->test_loss - r->train_loss, r->test_err - r->train_err);
    }
    if (!isnan(r->eps_sharpness)) {
        printf("\nsharpness and flatness\n");
        printf("  eps-sharpness       %.6g  (Keskar: %.4g%%)\n", r->eps_sharpness, r->eps_sharpness_keskar);
        printf("  adaptive sharpness  %.6g\n", r->adaptive_sharpness);
        printf("  PAC-Bayes sigma     %.4g  (flatness 1/sigma^2 %.4g)\n", r->pac_sigma, 1 / (r->pac_sigma * r->pac_sigma));
        printf("  magnitude-aware     %.4g  (flatness %.4g)\n", r->pac_sigma_mag, 1 / (r->pac_sigma_mag * r->pac_sigma_mag));
    }
    printf("\nnorms and margins\n");
    printf("  Fisher-Rao norm^2   %.6g\n", r->fisher_rao);
    printf("  spectral norms      product %.6g  sum %.6g  (%d matrices; Frobenius^2 %.6g)\n", r->spec_prod,
           r->spec_sum, r->n_spectral, r->frobenius_sq);
    if (isnan(r->path_norm)) printf("  path norm           - (not defined for this network)\n");
    else printf("  path norm           %.6g\n", r->path_norm);
    printf("  margin              10th percentile %.4g  median %.4g\n", r->margin_p10, r->margin_median);
    if (!isnan(r->gns_trace_sigma))
        printf("  noise scale         B_simple %.4g  (tr Sigma %.4g, |G|^2 %.4g)\n", r->gns_simple, r->gns_trace_sigma,
               r->gns_grad_sq);
    printf("\n%ld Hessian-vector products, %.1f s\n", r->n_hvp, r->seconds);
}

static cJSON *report_json(const char *model, const struct sk_model *m, const struct sk_curvature_report *r,
                          const struct sk_curvature_config *cfg, const char *density)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "arch", m->spec);
    cJSON_AddNumberToObject(o, "params", (double)r->n_params);
    cJSON_AddNumberToObject(o, "n_train", r->n_train);
    cJSON_AddNumberToObject(o, "n_test", r->n_test);
    cJSON_AddNumberToObject(o, "seed", (double)cfg->seed);
    cJSON *ev = cJSON_AddArrayToObject(o, "eigenvalues"), *er = cJSON_AddArrayToObject(o, "eigen_residuals");
    for (int i = 0; i < r->k; i++) {
        cJSON_AddItemToArray(ev, cJSON_CreateNumber(isfinite(r->eig[i]) ? r->eig[i] : 0));
        cJSON_AddItemToArray(er, cJSON_CreateNumber(isfinite(r->eig_resid[i]) ? r->eig_resid[i] : 0));
    }
    cli_json_num(o, "lambda_max", r->eig[0]);
    cJSON_AddNumberToObject(o, "lanczos_steps", r->lanczos_steps);
    cli_json_num(o, "trace", r->trace);
    cli_json_num(o, "trace_se", r->trace_se);
    cJSON_AddNumberToObject(o, "trace_probes", r->trace_probes);
    if (density) cJSON_AddStringToObject(o, "density", density);
    cli_json_num(o, "slq_moment1", r->slq_m1);
    cli_json_num(o, "slq_moment2", r->slq_m2);
    if (r->has_dense) {
        cJSON *d = cJSON_AddArrayToObject(o, "dense_eigenvalues");
        for (int i = 0; i < r->k; i++) cJSON_AddItemToArray(d, cJSON_CreateNumber(r->dense_eig[i]));
        cli_json_num(o, "dense_trace", r->dense_trace);
        cli_json_num(o, "dense_lambda_min", r->dense_min);
    }
    cJSON_AddNumberToObject(o, "spread_sets", r->spread_sets);
    cJSON_AddNumberToObject(o, "spread_n", cfg->spread_n);
    cli_json_num(o, "spread_min", r->spread_min);
    cli_json_num(o, "spread_median", r->spread_median);
    cli_json_num(o, "spread_max", r->spread_max);
    cli_json_num(o, "spread_rsd", r->spread_rsd);
    cli_json_num(o, "train_loss", r->train_loss);
    cli_json_num(o, "train_err", r->train_err);
    cli_json_num(o, "test_loss", r->test_loss);
    cli_json_num(o, "test_err", r->test_err);
    cli_json_num(o, "gap_loss", r->test_loss - r->train_loss);
    cli_json_num(o, "gap_err", r->test_err - r->train_err);
    cli_json_num(o, "eps_sharpness", r->eps_sharpness);
    cli_json_num(o, "eps_sharpness_keskar", r->eps_sharpness_keskar);
    cli_json_num(o, "eps", cfg->eps);
    cli_json_num(o, "adaptive_sharpness", r->adaptive_sharpness);
    cli_json_num(o, "rho", cfg->rho);
    cli_json_num(o, "pac_sigma", r->pac_sigma);
    cli_json_num(o, "pac_flatness", 1 / (r->pac_sigma * r->pac_sigma));
    cli_json_num(o, "pac_sigma_mag", r->pac_sigma_mag);
    cli_json_num(o, "pac_flatness_mag", 1 / (r->pac_sigma_mag * r->pac_sigma_mag));
    cli_json_num(o, "pac_bound", cfg->pac_bound);
    cli_json_num(o, "fisher_rao", r->fisher_rao);
    cli_json_num(o, "spectral_prod", r->spec_prod);
    cli_json_num(o, "spectral_sum", r->spec_sum);
    cli_json_num(o, "frobenius_sq", r->frobenius_sq);
    cli_json_num(o, "path_norm", r->path_norm);
    cli_json_num(o, "margin_p10", r->margin_p10);
    cli_json_num(o, "margin_median", r->margin_median);
    cli_json_num(o, "gns_simple", r->gns_simple);
    cli_json_num(o, "gns_trace_sigma", r->gns_trace_sigma);
    cli_json_num(o, "gns_grad_sq", r->gns_grad_sq);
    cJSON_AddNumberToObject(o, "gns_batch", cfg->gns_batch);
    cJSON_AddNumberToObject(o, "hvp", (double)r->n_hvp);
    cli_json_num(o, "seconds", r->seconds);
    return o;
}

/* The model and the rows of its loss (split --split, default train) and,
 * for the gap, the first n_test test rows (*nt 0 without them). */
static int open_rows(const struct cli_common *cc, bool dense, int n_test, struct sk_model **mo, struct sk_dataset **tro,
                     struct sk_dataset **teo, int *nto)
{
    struct cli_common c = *cc;
    int rc;
    char *meta = NULL;
    struct sk_model *m = cli_load_model(&c, &meta);
    sk_free(meta);
    if (!m) return CLI_FAIL;
    if (dense && m->n_params > 8192) {
        size_t np = m->n_params;
        sk_model_free(m);
        return cli_usage("--dense: the model has %zu parameters; the dense Hessian is for at most 8192", np);
    }
    const char *split = c.split ? c.split : "train";
    struct sk_dataset *tr = cli_open_model_data(&c, m, c.data, split);
    if (!tr) {
        sk_model_free(m);
        return cli_fail_lib();
    }
    for (int i = 0; i < tr->n; i++)
        if (tr->y[i] < 0 || tr->y[i] >= m->n_classes) {
            rc = cli_fail("%s: row %d has label %d but the model has only %d classes (select classes with "
                          "--classes)", c.data, i, tr->y[i], m->n_classes);
            sk_dataset_free(tr);
            sk_model_free(m);
            return rc;
        }
    struct sk_dataset *te = strcmp(split, "train") ? NULL : cli_open_model_data(&c, m, c.data, "test");
    if (!te && !strcmp(split, "train")) {
        fprintf(stderr, "skeptic curvature: note: no test split (%s): no generalization gap\n", sk_last_error());
        sk_error_clear();
    }
    int nt = te ? (n_test > 0 && n_test < te->n ? n_test : te->n) : 0;
    if (te)
        for (int i = 0; i < nt; i++)
            if (te->y[i] < 0 || te->y[i] >= m->n_classes) {
                nt = 0;
                fprintf(stderr, "skeptic curvature: note: test labels outside the model's classes: no gap\n");
                break;
            }
    *mo = m;
    *tro = tr;
    *teo = te;
    *nto = nt;
    return CLI_OK;
}

static const struct cli_help help = {
    "curvature",
    "skeptic curvature --model M --data D [--n N] [--top-k K] [--lanczos-steps S] [--probes P]\n"
    "                  [--density FILE.png|svg] [--json] [--threads T] [--seed S]",
    "How flat is the minimum the optimiser found, and does it matter? Measures the curvature of a model's\n"
    "training loss (mean cross-entropy in eval mode over N training rows) with exact Hessian-vector\n"
    "products, and the generalization measures built on it:\n"
    "  spectrum    the top-K Hessian eigenvalues (Lanczos; lambda_max is the sharpest direction), the\n"
    "              trace (Hutchinson, with its standard error: the total curvature), the spectral\n"
    "              density (--density: stochastic Lanczos quadrature, log scale), lambda_max on small\n"
    "              disjoint sample sets (how far one batch's value speaks for the whole loss), and with\n"
    "              --dense the exact eigenvalues of small models to check the estimates;\n"
    "  gap         train and test loss and error;\n"
    "  sharpness   the largest loss increase within a box |dw| <= eps(|w|+1) (Keskar et al.) and within\n"
    "              the scaled ball ||dw/|w| || <= rho (adaptive sharpness: unchanged by rescaling a ReLU\n"
    "              layer, which plain sharpness is not); the largest Gaussian weight noise sigma keeping\n"
    "              the mean loss increase under --pac-bound (PAC-Bayes flatness), plain and relative to\n"
    "              each weight's size;\n"
    "  norms       Fisher-Rao norm, product and sum of the layers' spectral norms, the path norm\n"
    "              (ReLU networks), the 10th percentile of the logit margin, and the gradient noise\n"
    "              scale B_simple = tr(Sigma) / |G|^2 (the batch size beyond which larger batches stop\n"
    "              helping).\n"
    "Larger lambda_max, trace and sharpness, smaller sigma: a sharper minimum. None of these predicts\n"
    "generalization on its own; docs/curvature.md says what each means and where it fails.\n"
    "Cost: each Hessian-vector product is about three gradients over the N rows; the sharpness\n"
    "measures take about 100 forward passes. Progress on stderr on a terminal.\n"
    "JSON keys: eigenvalues, lambda_max, trace, trace_se, slq_moment1/2, spread_min/median/max/rsd,\n"
    "train_loss, train_err, test_loss, test_err, gap_loss, gap_err, eps_sharpness, eps_sharpness_keskar,\n"
    "adaptive_sharpness, pac_sigma, pac_flatness, pac_sigma_mag, pac_flatness_mag, fisher_rao,\n"
    "spectral_prod, spectral_sum, path_norm (null if undefined), margin_p10, margin_median, gns_simple,\n"
    "hvp, seconds (null: not computed or infinite).",
    "skeptic curvature --model mlp.safetensors --data fashion-mnist --n 5000\n"
    "skeptic curvature --model mlp.safetensors --data fashion-mnist --top-k 5 --density density.png --json\n"
    "skeptic curvature --model small.safetensors --data moons --dense --top-k 5",
};

int cmd_curvature(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct sk_curvature_config cfg = sk_curvature_defaults();
    int n = 10000, n_test = 10000, slq_runs = 4;
    float eps = (float)cfg.eps, rho = (float)cfg.rho, pac_bound = (float)cfg.pac_bound;
    const char *density = NULL;
    bool dense = false, no_sharp = false;
    uint64_t seed = cfg.seed;
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c),
        { "data", CLI_STR, &c.data, "D", "fashion-mnist | mnist | moons | spirals | blobs[:k=3,...] | DIR | FILE.csv | FILE.npy" },
        { "split", CLI_STR, &c.split, "S", "rows the loss is taken over: train (default) | test | all; the gap needs train" },
        { "classes", CLI_STR, &c.classes, "LIST", "the classes the model was trained on, if its file does not record them" },
        { "labels", CLI_STR, &c.labels, "FILE", "labels file for .npy or IDX images" },
        { "label-column", CLI_STR, &c.label_column, "COL", "CSV label column: name or 0-based index (default: last)" },
        { "header", CLI_STR, &c.header, "yes|no|auto", "CSV header line (default auto)" },
        { "test-fraction", CLI_FLOAT, &c.test_fraction, "F", "CSV/npy: the held-out fraction (default: the model's record)" },
        { "data-seed", CLI_U64, &c.data_seed, "S", "synthetic data / CSV split seed (default: the model's record)" },
        { "n", CLI_INT, &n, "N", "training rows the loss is taken over, a seeded choice (default 10000; 0 = all)" },
        { "n-test", CLI_INT, &n_test, "N", "first N test rows for the generalization gap (default 10000; 0 = all)" },
        { "top-k", CLI_INT, &cfg.top_k, "K", "top Hessian eigenvalues by Lanczos (default 1, at most 64)" },
        { "lanczos-steps", CLI_INT, &cfg.lanczos_steps, "S", "Lanczos steps at most (default 20; stops early once converged)" },
        { "probes", CLI_INT, &cfg.probes, "P", "Hutchinson probes for the trace (default 100)" },
        { "density", CLI_STR, &density, "FILE.png|svg", "plot the spectral density (stochastic Lanczos quadrature)" },
        { "slq-runs", CLI_INT, &slq_runs, "R", "density: Lanczos runs (default 4)" },
        { "slq-steps", CLI_INT, &cfg.slq_steps, "S", "density: Lanczos steps per run (default 80)" },
        { "spread-sets", CLI_INT, &cfg.spread_sets, "K", "lambda_max on K disjoint sample sets (default 5; 0 = skip)" },
        { "spread-n", CLI_INT, &cfg.spread_n, "N", "rows per sample set (default 128)" },
        { "dense", CLI_FLAG, &dense, NULL, "also the exact dense Hessian's spectrum (models up to 8192 parameters)" },
        { "eps", CLI_FLOAT, &eps, "E", "epsilon-sharpness box: |dw| <= E (|w| + 1) (default 1e-3)" },
        { "rho", CLI_FLOAT, &rho, "R", "adaptive sharpness radius: ||dw / |w| ||_2 <= R (default 0.05)" },
        { "ascent-steps", CLI_INT, &cfg.ascent_steps, "S", "gradient-ascent steps of the sharpness measures (default 20)" },
        { "pac-bound", CLI_FLOAT, &pac_bound, "B", "PAC-Bayes sigma: allowed mean training-loss increase (default 0.1)" },
        { "pac-samples", CLI_INT, &cfg.pac_samples, "S", "PAC-Bayes: weight-noise draws per sigma (default 5)" },
        { "no-sharpness", CLI_FLAG, &no_sharp, NULL, "skip the sharpness measures and PAC-Bayes sigma (the slow part)" },
        { "gns-batch", CLI_INT, &cfg.gns_batch, "B", "batch size of the gradient noise scale (default 128)" },
        { "seed", CLI_U64, &seed, "S", "seed of the row choice, start vectors, probes and noise (default 42)" },
        CLI_THREADS_OPT(c),
        CLI_JSON_OPT(c),
        { 0 },
    };
    int rc = cli_parse(argc, argv, &help, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!c.model) return cli_usage("--model FILE is required");
    if (!c.data) return cli_usage("--data D is required");
    if (n < 0 || n_test < 0) return cli_usage("--n and --n-test must be >= 0");
    if (slq_runs < 1) return cli_usage("--slq-runs must be >= 1");
    const struct cli_path outs[] = { { "--density", density, false }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--model", c.model, false }, { "--data", c.data, false },
                                    { "--labels", c.labels, false }, { NULL, NULL, false } };
    if ((rc = cli_check_outputs(outs, ins))) return rc;
    enum sk_figure_format ff;
    if (density && sk_figure_format_of(density, &ff)) return cli_usage("--density: %s", sk_last_error());
    cfg.n = n;
    cfg.eps = eps;
    cfg.rho = rho;
    cfg.pac_bound = pac_bound;
    cfg.dense = dense;
    cfg.skip_sharpness = no_sharp;
    cfg.slq_runs = density ? slq_runs : 0;
    cfg.seed = seed;

    struct sk_model *m = NULL;
    struct sk_dataset *tr = NULL, *te = NULL;
    int nt = 0;
    if ((rc = open_rows(&c, dense, n_test, &m, &tr, &te, &nt))) return rc;
    struct stage_line sl = { isatty(fileno(stderr)) && !getenv("SKEPTIC_NO_PROGRESS"), sk_now() };
    cfg.progress = on_progress;
    cfg.progress_ctx = &sl;
    struct sk_curvature_report r;
    struct sk_curvature_density *dn = NULL;
    rc = sk_curvature_measures(m, tr->x, tr->y, tr->n, te ? te->x : NULL, te ? te->y : NULL, nt, &cfg, &r,
                               density ? &dn : NULL);
    if (sl.on) fprintf(stderr, "\r\033[K");
    if (rc == SK_EINVAL && strstr(sk_last_error(), "cfg.")) {
        rc = cli_usage_lib(field_flags); /* a setting out of range: a flag's fault */
    } else if (rc) {
        rc = sk_last_error()[0] ? cli_fail_lib_map(field_flags) : cli_fail("%s", sk_status_name(rc));
    } else {
        if (dn && sk_curvature_density_plot(dn, 0, density, "Hessian eigenvalue density (SLQ)")) {
            rc = cli_fail_lib();
        } else if (c.json) {
            cli_json_print(report_json(c.model, m, &r, &cfg, density));
        } else {
            print_text(c.model, m, &r, density);
        }
    }
    sk_curvature_density_free(dn);
    sk_dataset_free(tr);
    sk_dataset_free(te);
    sk_model_free(m);
    return rc;
}
