/* skeptic landscape: the loss of a model along lines and planes through its
 * weights, between two models, and the edge-of-stability plot of a
 * --track curvature log. */
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

static void on_progress(void *ctx, const char *stage, double frac)
{
    struct stage_line *s = ctx;
    if (!s->on) return;
    fprintf(stderr, "\r\033[Klandscape: %-14s %3.0f%%  %5.0f s", stage, 100 * frac, sk_now() - s->t0);
    fflush(stderr);
}

static const struct cli_field_flag field_flags[] = {
    { "cfg.dims", "--dims" }, { "cfg.steps", "--steps" }, { "cfg.lo", "--range" }, { "cfg.hi", "--range" },
    { NULL, NULL },
};

static const char *dirs_name(enum sk_curvature_landscape_dirs d)
{
    return d == SK_LANDSCAPE_EIGEN ? "eigen" : d == SK_LANDSCAPE_FILTER ? "filter" : "interpolate";
}

static int write_csv(const char *path, const struct sk_curvature_landscape *ls)
{
    FILE *f = fopen(path, "w");
    if (!f) return cli_fail("%s: cannot open for writing", path);
    fprintf(f, ls->dims == 2 ? "a,b,train_loss,train_acc,test_loss,test_acc\n" : "a,train_loss,train_acc,test_loss,test_acc\n");
    for (int j = 0; j < ls->ny; j++)
        for (int i = 0; i < ls->nx; i++) {
            size_t k = (size_t)j * ls->nx + i;
            if (ls->dims == 2) fprintf(f, "%.9g,", ls->ys[j]);
            fprintf(f, "%.9g,%.17g,%.17g,%.17g,%.17g\n", ls->xs[i], ls->loss[k], ls->acc[k], ls->test_loss[k],
                    ls->test_acc[k]);
        }
    if (fclose(f)) return cli_fail("%s: write failed", path);
    return CLI_OK;
}

static cJSON *to_json(const char *model, const char *other, const struct sk_curvature_landscape *ls, int n, int nt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    if (other) cJSON_AddStringToObject(o, "model_b", other);
    cJSON_AddStringToObject(o, "directions", dirs_name(ls->dirs));
    cJSON_AddNumberToObject(o, "dims", ls->dims);
    cJSON_AddNumberToObject(o, "train_rows", n);
    cJSON_AddNumberToObject(o, "test_rows", nt);
    if (ls->dirs == SK_LANDSCAPE_EIGEN) {
        cJSON *e = cJSON_AddArrayToObject(o, "eigenvalues");
        for (int k = 0; k < ls->dims; k++) cJSON_AddItemToArray(e, cJSON_CreateNumber(ls->eig[k]));
    }
    cJSON *xs = cJSON_AddArrayToObject(o, ls->dirs == SK_LANDSCAPE_INTERPOLATE ? "t" : "a");
    for (int i = 0; i < ls->nx; i++) cJSON_AddItemToArray(xs, cJSON_CreateNumber(ls->xs[i]));
    if (ls->dims == 2) {
        cJSON *ys = cJSON_AddArrayToObject(o, "b");
        for (int j = 0; j < ls->ny; j++) cJSON_AddItemToArray(ys, cJSON_CreateNumber(ls->ys[j]));
    }
    /* row-major over (b, a): value [j nx + i] */
    const char *names[4] = { "train_loss", "train_acc", "test_loss", "test_acc" };
    const double *vals[4] = { ls->loss, ls->acc, ls->test_loss, ls->test_acc };
    for (int q = 0; q < 4; q++) {
        if (q >= 2 && nt == 0) continue;
        cJSON *a = cJSON_AddArrayToObject(o, names[q]);
        for (int k = 0; k < ls->nx * ls->ny; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(vals[q][k]));
    }
    return o;
}

static int plot(const char *path, const struct sk_curvature_landscape *ls, int nt, bool log_z)
{
    char title[96];
    const char *xl = ls->dirs == SK_LANDSCAPE_INTERPOLATE ? "t (0: the model, 1: --between)"
                     : ls->dirs == SK_LANDSCAPE_EIGEN ? "a (along the top eigenvector)"
                                                      : "a (filter-normalised direction 1)";
    int rc;
    if (ls->dims == 1) {
        snprintf(title, sizeof title, "Loss %s", ls->dirs == SK_LANDSCAPE_INTERPOLATE ? "between two models"
                                                 : ls->dirs == SK_LANDSCAPE_EIGEN ? "along the top eigenvector"
                                                                                  : "along a random direction");
        struct sk_plot_series s[2] = { { ls->xs, ls->loss, ls->nx, "train", false },
                                       { ls->xs, ls->test_loss, ls->nx, "test", true } };
        rc = sk_plot_lines(path, title, xl, "cross-entropy", s, nt > 0 ? 2 : 1, log_z);
    } else {
        snprintf(title, sizeof title, "Training loss, %s", ls->dirs == SK_LANDSCAPE_EIGEN ? "top-2 eigenvectors"
                                                                                         : "filter-normalised plane");
        rc = sk_plot_heatmap(path, title, ls->dirs == SK_LANDSCAPE_EIGEN ? "a (eigenvector 1)" : "a (direction 1)",
                             ls->dirs == SK_LANDSCAPE_EIGEN ? "b (eigenvector 2)" : "b (direction 2)", "cross-entropy",
                             ls->xs, ls->nx, ls->ys, ls->ny, ls->loss, log_z, 12);
    }
    return rc ? cli_fail_lib() : CLI_OK;
}

/* --from-log: lambda_max against 2 / lr over the probes of a --track log. */
static int eos_plot(const char *log, const char *out, bool json)
{
    FILE *f = fopen(log, "r");
    if (!f) return cli_fail("%s: cannot open the log", log);
    size_t cap = 0;
    int n = 0;
    double *v = NULL; /* 4 per probe: step, lambda_max, 2/lr, train loss */
    char *line = NULL;
    size_t lcap = 0;
    int rc = CLI_OK;
    long lineno = 0;
    while (!rc && getline(&line, &lcap, f) > 0) {
        lineno++;
        if (line[0] == '\n') continue;
        cJSON *o = cJSON_Parse(line);
        const cJSON *l = o ? cJSON_GetObjectItemCaseSensitive(o, "lambda_max") : NULL;
        if (!o) rc = cli_fail("%s:%ld: not a JSON line", log, lineno);
        if (l && (size_t)(n + 1) * 4 > cap) {
            double *w = realloc(v, sizeof(double) * (cap = cap ? 2 * cap : 1024));
            if (!w) rc = cli_fail("out of memory");
            else v = w;
        }
        if (l && !rc) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step"),
                        *t = cJSON_GetObjectItemCaseSensitive(o, "two_over_lr"),
                        *L = cJSON_GetObjectItemCaseSensitive(o, "train_loss");
            double *p = v + 4 * (size_t)n++;
            p[0] = cJSON_IsNumber(s) ? s->valuedouble : n - 1;
            p[1] = cJSON_IsNumber(l) ? l->valuedouble : NAN;
            p[2] = cJSON_IsNumber(t) ? t->valuedouble : NAN;
            p[3] = cJSON_IsNumber(L) ? L->valuedouble : NAN;
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (!rc && n < 2) rc = cli_fail("%s: %d curvature probes (lines with lambda_max); the plot needs 2 or more: "
                                    "train with --track curvature --log FILE", log, n);
    double *st = rc ? NULL : malloc(sizeof(double) * 3 * (size_t)n), *lm = st ? st + n : NULL, *two = st ? st + 2 * n : NULL;
    if (!rc && !st) rc = cli_fail("out of memory");
    for (int i = 0; !rc && i < n; i++) {
        st[i] = v[4 * i];
        lm[i] = v[4 * i + 1];
        two[i] = v[4 * i + 2];
    }
    if (!rc && out) {
        struct sk_plot_series s[2] = { { st, lm, n, "\u03bb_max", false }, { st, two, n, "2 / lr", true } };
        if (sk_plot_lines(out, "Edge of stability: sharpness against 2 / lr", "optimizer step", "\u03bb_max", s, 2,
                          false))
            rc = cli_fail_lib();
    }
    if (!rc) {
        /* how close lambda_max comes to 2 / lr: its peak, and its mean over the second half of the run */
        int m = 0;
        double peak = -INFINITY, sum = 0;
        for (int i = 0; i < n; i++) peak = fmax(peak, lm[i] / two[i]);
        for (int i = n / 2; i < n; i++)
            if (isfinite(lm[i] / two[i])) {
                sum += lm[i] / two[i];
                m++;
            }
        double mean = m ? sum / m : NAN;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "log", log);
            cJSON_AddNumberToObject(o, "probes", n);
            cli_json_num(o, "first_lambda_max", lm[0]);
            cli_json_num(o, "last_lambda_max", lm[n - 1]);
            cli_json_num(o, "last_two_over_lr", two[n - 1]);
            cli_json_num(o, "peak_ratio", peak);
            cli_json_num(o, "late_mean_ratio", mean);
            cli_json_num(o, "last_train_loss", v[4 * (size_t)(n - 1) + 3]);
            if (out) cJSON_AddStringToObject(o, "plot", out);
            cli_json_print(o);
        } else {
            printf("log        %s (%d curvature probes, steps %g..%g)\n", log, n, st[0], st[n - 1]);
            printf("lambda_max %.4g at the start, %.4g at the end; 2/lr %.4g at the end\n", lm[0], lm[n - 1],
                   two[n - 1]);
            printf("ratio      lambda_max / (2/lr): peak %.3f, mean over the second half %.3f\n", peak, mean);
            if (out) printf("plot       %s\n", out);
        }
    }
    free(st);
    free(v);
    return rc;
}

static int check_labels(const char *data, const struct sk_dataset *d, const struct sk_model *m)
{
    for (int i = 0; i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= m->n_classes)
            return cli_fail("%s: row %d has label %d but the model has only %d classes (select classes with --classes)",
                            data, i, d->y[i], m->n_classes);
    return CLI_OK;
}

static const struct cli_help help = {
    "landscape",
    "skeptic landscape --model M --data D [--dims 1|2] [--dirs filter|eigen] [--between M2] [--out FILE.png|svg]\n"
    "skeptic landscape --from-log RUN.jsonl --out eos.png",
    "The training loss (and with --test the test loss) around a model, in eval mode on the first --n rows\n"
    "(default 2000): along one or two filter-normalised random directions (Li et al. 2018: each filter and\n"
    "neuron of the direction scaled to the norm of the weights' own, biases and batch norm left in place),\n"
    "along the top Hessian eigenvectors (unit vectors: the sharpest directions), or on the segment between\n"
    "two models of one architecture (--between; Goodfellow et al. 2015). The centre (0) is the model itself,\n"
    "bit for bit; t = 0 and t = 1 are the two models. With --from-log, the edge-of-stability picture of a\n"
    "`skeptic train --track curvature --log RUN.jsonl` run: lambda_max and 2/lr against the step, and how\n"
    "close lambda_max sits to 2/lr. Progress on stderr on a terminal.\n"
    "JSON keys: model, directions, dims, a (t for --between), b, train_loss, train_acc, test_loss, test_acc\n"
    "(2D: row-major over b then a), eigenvalues (eigen); with --from-log: probes, first_lambda_max,\n"
    "last_lambda_max, last_two_over_lr, peak_ratio, late_mean_ratio.",
    "skeptic landscape --model mlp.safetensors --data fashion-mnist --dims 2 --steps 25 --out plane.png\n"
    "skeptic landscape --model small.safetensors --between large.safetensors --data fashion-mnist --test --out interp.png\n"
    "skeptic landscape --model mlp.safetensors --data fashion-mnist --dirs eigen --csv eig.csv\n"
    "skeptic landscape --from-log run.jsonl --out eos.png",
};

int cmd_landscape(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct sk_curvature_landscape_config cfg = sk_curvature_landscape_defaults();
    const char *between = NULL, *dirs = "filter", *range = NULL, *out = NULL, *csv = NULL, *from_log = NULL;
    bool test = false, linear = false;
    c.limit = 2000;
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c),
        CLI_DATA_OPTS(c),
        { "between", CLI_STR, &between, "M2", "1D: the segment from --model (t = 0) to M2 (t = 1), Goodfellow et al." },
        { "dims", CLI_INT, &cfg.dims, "1|2", "a line or a plane through the weights (default 1)" },
        { "dirs", CLI_STR, &dirs, "D", "filter (filter-normalised random directions, Li et al.; default) | eigen (top Hessian eigenvectors)" },
        { "range", CLI_STR, &range, "LO,HI", "coordinates from LO to HI (default -1,1; with --between -0.5,1.5)" },
        { "steps", CLI_INT, &cfg.steps, "N", "points per axis (default 21; odd keeps 0 on the grid)" },
        { "keep-bias-bn", CLI_FLAG, &cfg.keep_bias_bn, NULL, "filter: biases and batch norm move along the weights themselves (default: they stay)" },
        { "eig-n", CLI_INT, &cfg.eig_n, "N", "eigen: rows of the Hessian's loss (default: the --n rows)" },
        { "lanczos-steps", CLI_INT, &cfg.lanczos_steps, "S", "eigen: Lanczos steps (default 20)" },
        { "test", CLI_FLAG, &test, NULL, "also the loss and accuracy on the test split (its first --n rows)" },
        { "linear", CLI_FLAG, &linear, NULL, "plot the loss on a linear scale (default: logarithmic)" },
        { "out", CLI_STR, &out, "FILE.png|svg", "the picture: a line chart (1D) or a heat map with contours (2D)" },
        { "csv", CLI_STR, &csv, "FILE.csv", "every point: coordinates, train loss and accuracy, test loss and accuracy" },
        { "from-log", CLI_STR, &from_log, "RUN.jsonl", "plot lambda_max against 2/lr from a train --track curvature log into --out" },
        { "seed", CLI_U64, &cfg.seed, "S", "seed of the random directions and start vectors (default 42)" },
        CLI_THREADS_OPT(c),
        CLI_JSON_OPT(c),
        { 0 },
    };
    int rc = cli_parse(argc, argv, &help, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    const struct cli_path outs[] = { { "--out", out, false }, { "--csv", csv, false }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--model", c.model, false }, { "--between", between, false },
                                    { "--data", c.data, false }, { "--from-log", from_log, false },
                                    { NULL, NULL, false } };
    if ((rc = cli_check_outputs(outs, ins))) return rc;
    enum sk_figure_format ff;
    if (out && sk_figure_format_of(out, &ff)) return cli_usage("--out: %s", sk_last_error());
    if (from_log) {
        if (c.model || between) return cli_usage("--from-log plots a training log: it takes no --model or --between");
        return eos_plot(from_log, out, c.json);
    }
    if (!c.model) return cli_usage("--model FILE is required");
    if (!c.data) return cli_usage("--data D is required");
    if (strcmp(dirs, "filter") && strcmp(dirs, "eigen")) return cli_usage("--dirs '%s' is not filter or eigen", dirs);
    cfg.dirs = strcmp(dirs, "eigen") ? SK_LANDSCAPE_FILTER : SK_LANDSCAPE_EIGEN;
    if (between && (cfg.dims != 1 || cfg.dirs != SK_LANDSCAPE_FILTER))
        return cli_usage("--between draws the 1D segment between two models: no --dims 2 or --dirs eigen");
    if (between) {
        cfg.lo = -0.5;
        cfg.hi = 1.5;
    }
    if (range) {
        char *end;
        cfg.lo = strtod(range, &end);
        if (*end != ',' || (cfg.hi = strtod(end + 1, &end), *end))
            return cli_usage("--range '%s' is not LO,HI", range);
    }
    if (!out && !csv && !c.json) return cli_usage("nothing to write: give --out FILE.png, --csv FILE.csv or --json");

    char *meta = NULL;
    struct sk_model *m = cli_load_model(&c, &meta), *b = NULL;
    sk_free(meta);
    if (!m) return CLI_FAIL;
    struct sk_dataset *tr = NULL, *te = NULL;
    struct sk_curvature_landscape *ls = NULL;
    if (between) {
        struct cli_common cb = c;
        cb.model = between;
        if (!(b = cli_load_model(&cb, &meta))) rc = CLI_FAIL;
        sk_free(meta);
    }
    if (!rc && !(tr = cli_open_model_data(&c, m, c.data, "train"))) rc = cli_fail_lib();
    if (!rc) rc = check_labels(c.data, tr, m);
    if (!rc && test && !(te = cli_open_model_data(&c, m, c.data, "test"))) rc = cli_fail_lib();
    if (!rc && te) rc = check_labels(c.data, te, m);
    if (!rc) {
        struct stage_line sl = { isatty(fileno(stderr)) && !getenv("SKEPTIC_NO_PROGRESS"), sk_now() };
        cfg.progress = on_progress;
        cfg.progress_ctx = &sl;
        int nt = te ? te->n : 0;
        ls = b ? sk_curvature_landscape_interpolate(m, b, tr->x, tr->y, tr->n, te ? te->x : NULL, te ? te->y : NULL,
                                                    nt, &cfg)
               : sk_curvature_landscape_slice(m, tr->x, tr->y, tr->n, te ? te->x : NULL, te ? te->y : NULL, nt, &cfg);
        if (sl.on) fprintf(stderr, "\r\033[K");
        if (!ls) rc = strstr(sk_last_error(), "cfg.") ? cli_usage_lib(field_flags) : cli_fail_lib_map(field_flags);
    }
    if (!rc && out) rc = plot(out, ls, te ? te->n : 0, !linear);
    if (!rc && csv) rc = write_csv(csv, ls);
    if (!rc) {
        int nt = te ? te->n : 0;
        if (c.json) {
            cli_json_print(to_json(c.model, between, ls, tr->n, nt));
        } else {
            /* the centre (or the two ends) and the extremes */
            int np = ls->nx * ls->ny, lo = 0, hi = 0;
            for (int k = 1; k < np; k++) {
                if (ls->loss[k] < ls->loss[lo]) lo = k;
                if (ls->loss[k] > ls->loss[hi]) hi = k;
            }
            printf("model      %s (%s, %zu parameters)\n", c.model, m->spec, m->n_params);
            printf("slice      %dD, %s directions, %d x %d points on %d training rows%s\n", ls->dims,
                   dirs_name(ls->dirs), ls->nx, ls->ny, tr->n, nt ? " and test rows" : "");
            if (ls->dirs == SK_LANDSCAPE_EIGEN)
                printf("eigen      lambda_1 %.5g%s%.5g\n", ls->eig[0], ls->dims == 2 ? ", lambda_2 " : "",
                       ls->dims == 2 ? ls->eig[1] : 0.0);
            printf("loss       min %.5g at (%g, %g), max %.5g at (%g, %g)\n", ls->loss[lo], ls->xs[lo % ls->nx],
                   ls->ys[lo / ls->nx], ls->loss[hi], ls->xs[hi % ls->nx], ls->ys[hi / ls->nx]);
            if (out) printf("plot       %s\n", out);
            if (csv) printf("csv        %s\n", csv);
        }
    }
    sk_curvature_landscape_free(ls);
    sk_dataset_free(tr);
    sk_dataset_free(te);
    sk_model_free(b);
    sk_model_free(m);
    return rc;
}
