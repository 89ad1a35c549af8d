/* skeptic certify: certified accuracy by bound propagation (IBP, CROWN) or a
 * global Lipschitz bound. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/certify_bayes.h"
#include "cli/cli.h"
#include "cli/eval_uncertainty.h"
#include "cli/cli_dist.h"
#include "skeptic/certify.h"

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The flags of the values the library's messages name. */
static const struct cli_field_flag certify_flags[] = { { "method ibp", "--method ibp" },
                                                       { "cfg.sound_fp", "--sound-fp" }, { NULL, NULL } };

/* How bounds are computed: set once from --sound-fp before anything runs. */
static struct sk_certify_crown_config bound_cfg;

/* What certify found: the report, and the Lipschitz radii's medians. */
struct cert_result {
    struct sk_certify_report rep;
    double med2, medinf;
};

/* Certify d: the Lipschitz bound (one computation of the layer bounds gives
 * the certified points and the radii) or bound propagation in [lo, hi]. */
static int certify(struct sk_model *m, const struct sk_dataset *d, int method, float eps,
                   const struct sk_certify_domain *bx, struct cert_result *r)
{
    unsigned char *cert = sk_malloc((size_t)d->n);
    float *r2 = NULL, *rinf = NULL;
    int status = CLI_OK;
    r->med2 = r->medinf = NAN;
    if (!cert) {
        status = cli_fail_lib();
    } else if (method == SK_CERTIFY_LIPSCHITZ) {
        r2 = sk_malloc(sizeof(float) * (size_t)d->n);
        rinf = sk_malloc(sizeof(float) * (size_t)d->n);
        if (!r2 || !rinf || sk_certify_lipschitz(m, d->x, d->y, d->n, eps, cert, r2, rinf, &r->rep)) {
            status = cli_fail_lib();
        } else {
            qsort(r2, (size_t)d->n, sizeof(float), cmp_float);
            qsort(rinf, (size_t)d->n, sizeof(float), cmp_float);
            r->med2 = r2[d->n / 2];
            r->medinf = rinf[d->n / 2];
        }
    } else if (sk_certify_box_cfg(m, (enum sk_certify_method)method, d->x, d->y, d->n, eps, bx, &bound_cfg, cert,
                                  &r->rep)) {
        status = cli_fail_lib_map(certify_flags);
    }
    sk_free(cert);
    sk_free(r2);
    sk_free(rinf);
    return status;
}

static void print_json(const struct cli_common *c, int method, float eps, const struct sk_certify_domain *bx, int dim,
                       int n, const struct cert_result *r, int n_broken, int n_outside)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "data", c->data);
    cJSON_AddStringToObject(o, "split", c->split ? c->split : "test");
    cJSON_AddStringToObject(o, "method", sk_certify_method_name((enum sk_certify_method)method));
    char eb[32];
    snprintf(eb, sizeof eb, "%g", eps); /* the flag as given, not its float rounding */
    cli_json_num(o, "eps", atof(eb));
    cJSON_AddNumberToObject(o, "n", n);
    cli_json_num(o, "clean_accuracy", r->rep.clean_acc);
    cli_json_num(o, "certified_accuracy", r->rep.certified_acc);
    cJSON_AddNumberToObject(o, "n_certified", r->rep.n_certified);
    cli_json_num(o, "mean_margin_lower", r->rep.mean_margin_lo);
    cli_json_num(o, "seconds", r->rep.seconds);
    if (bx->lo < bx->hi) {
        cJSON *b = cJSON_AddArrayToObject(o, "box");
        cJSON_AddItemToArray(b, cJSON_CreateNumber(bx->lo));
        cJSON_AddItemToArray(b, cJSON_CreateNumber(bx->hi));
        if (bx->blo) {
            cJSON_AddItemToObject(o, "box_lo", cJSON_CreateFloatArray(bx->blo, dim));
            cJSON_AddItemToObject(o, "box_hi", cJSON_CreateFloatArray(bx->bhi, dim));
        }
    } else {
        cJSON_AddNullToObject(o, "box");
    }
    if (n_broken >= 0) {
        cJSON *sw = cJSON_AddObjectToObject(o, "sandwich");
        cJSON_AddNumberToObject(sw, "broken", n_broken);
        cJSON_AddNumberToObject(sw, "certified_and_broken", 0);
        cJSON_AddNumberToObject(sw, "outside_threat_set", n_outside);
    }
    if (method == SK_CERTIFY_LIPSCHITZ) {
        cli_json_num(o, "lipschitz_global", r->rep.lipschitz_global);
        cJSON_AddBoolToObject(o, "lipschitz_proved", r->rep.lipschitz_proved);
        cli_json_num(o, "median_radius_l2", r->med2);
        cli_json_num(o, "median_radius_linf", r->medinf);
    }
    cli_json_print(o);
}

static void print_text(const struct cli_common *c, const char *spec, int method, float eps, const struct sk_certify_domain *bx,
                       int n, const struct cert_result *r, int n_broken, int n_outside)
{
    printf("model      %s (%s)\n", c->model, spec);
    printf("data       %s, split %s, %d rows\n", c->data, c->split ? c->split : "test", n);
    printf("threat     L-inf ball of radius %g", eps);
    if (bx->blo) printf(" within the per-feature training range (overall [%g, %g])\n", bx->lo, bx->hi);
    else if (bx->lo < bx->hi) printf(" within [%g, %g]\n", bx->lo, bx->hi);
    else printf(" (no input box)\n");
    printf("method     %s\n", sk_certify_method_name((enum sk_certify_method)method));
    printf("clean      %.4f  (%d of %d)\n", r->rep.clean_acc, r->rep.n_correct, n);
    printf("certified  %.4f  (%d of %d)\n", r->rep.certified_acc, r->rep.n_certified, n);
    printf("margin     mean lower bound of the worst margin %.4g\n", r->rep.mean_margin_lo);
    if (method == SK_CERTIFY_LIPSCHITZ)
        printf("lipschitz  global L2 bound %.4g (%s); median certified radius L2 %.4g, L-inf %.4g\n",
               r->rep.lipschitz_global,
               r->rep.lipschitz_proved ? "proved" : "estimated: a layer too large for Gram iteration", r->med2,
               r->medinf);
    if (n_broken >= 0)
        printf("sandwich   %d point(s) broken by the attack, none of them certified%s\n", n_broken,
               n_outside ? " (examples outside the threat set skipped)" : "");
    printf("time       %.2f s\n", r->rep.seconds);
}

/* Per point: the predicted class, certified or not, and the certified
 * margin (the lower bound of min_{j != y} z_y - z_j over the threat set). */
struct cert_points {
    int *pred;
    float *margin;
    unsigned char *cert;
};

static void points_free(struct cert_points *p)
{
    sk_free(p->pred);
    sk_free(p->margin);
    sk_free(p->cert);
}

static int cert_points(struct sk_model *m, const struct sk_dataset *d, int method, float eps,
                       const struct sk_certify_domain *bx, struct cert_points *p)
{
    int N = d->n, K = m->n_classes;
    float *mlo = sk_malloc(sizeof(float) * (size_t)N * K), *lp = sk_malloc(sizeof(float) * (size_t)N * K);
    p->pred = sk_malloc(sizeof(int) * (size_t)N);
    p->margin = sk_malloc(sizeof(float) * (size_t)N);
    p->cert = sk_malloc((size_t)N);
    int rc = !mlo || !lp || !p->pred || !p->margin || !p->cert ? SK_ENOMEM : SK_OK;
    struct sk_certify_report rep;
    /* the certified flags are sk_certify's own decisions; the margins come with them */
    if (!rc)
        rc = sk_certify_box_cfg(m, (enum sk_certify_method)method, d->x, d->y, N, eps, bx, &bound_cfg, p->cert, &rep);
    if (!rc) rc = sk_certify_margins_cfg(m, (enum sk_certify_method)method, d->x, d->y, N, eps, bx, &bound_cfg, mlo);
    if (!rc) rc = sk_model_log_probs(m, d->x, N, lp);
    for (int i = 0; i < N && !rc; i++) {
        int b = 0;
        float w = INFINITY;
        for (int k = 0; k < K; k++) {
            if (lp[(size_t)i * K + k] > lp[(size_t)i * K + b]) b = k;
            if (k != d->y[i]) w = fminf(w, mlo[(size_t)i * K + k]);
        }
        p->pred[i] = b;
        p->margin[i] = w;
    }
    sk_free(mlo);
    sk_free(lp);
    return rc;
}

/* Under mpirun: every rank certifies its share of the points (cert_points:
 * the library's own certified flags and margins), rank 0 gathers them in
 * point order into p and adds them up as sk_certify's report does, in the
 * same order, so that every figure is one process's. */
static int certify_sharded(struct sk_model *m, const struct sk_dataset *d, int method, float eps,
                           const struct sk_certify_domain *bx, struct cert_result *r, struct cert_points *p)
{
    double t0 = sk_now();
    long lo, hi, n = d->n;
    int K = m->n_classes;
    cli_dist_shard(n, CLI_DIST_ROWS, &lo, &hi);
    struct sk_dataset part = *d;
    part.n = (int)(hi - lo);
    part.x = d->x + (size_t)lo * d->dim;
    part.y = d->y + lo;
    struct cert_points mine = { 0 };
    struct sk_certify_report rep = { 0 };
    bool lip = method == SK_CERTIFY_LIPSCHITZ;
    size_t cnt = (size_t)(part.n > 0 ? part.n : 1);
    float *r2 = lip ? sk_malloc(sizeof(float) * cnt) : NULL, *rinf = lip ? sk_malloc(sizeof(float) * cnt) : NULL;
    float *a2 = lip ? sk_malloc(sizeof(float) * (size_t)n) : NULL, *ainf = lip ? sk_malloc(sizeof(float) * (size_t)n) : NULL;
    unsigned char *scratch = lip ? sk_malloc(cnt) : NULL;
    p->pred = sk_malloc(sizeof(int) * (size_t)n);
    p->margin = sk_malloc(sizeof(float) * (size_t)n);
    p->cert = sk_malloc((size_t)n);
    int rc = !p->pred || !p->margin || !p->cert || (lip && (!r2 || !rinf || !a2 || !ainf || !scratch)) ? SK_ENOMEM : SK_OK;
    if (!rc && part.n > 0) rc = cert_points(m, &part, method, eps, bx, &mine);
    if (!rc && part.n > 0 && lip) rc = sk_certify_lipschitz(m, part.x, part.y, part.n, eps, scratch, r2, rinf, &rep);
    int status = rc ? cli_fail_lib() : CLI_OK;
    if (!status) status = cli_dist_gather_rows(mine.pred, lo, hi, sizeof(int), p->pred, n);
    if (!status) status = cli_dist_gather_rows(mine.margin, lo, hi, sizeof(float), p->margin, n);
    if (!status) status = cli_dist_gather_rows(mine.cert, lo, hi, 1, p->cert, n);
    if (!status && lip) status = cli_dist_gather_rows(r2, lo, hi, sizeof(float), a2, n);
    if (!status && lip) status = cli_dist_gather_rows(rinf, lo, hi, sizeof(float), ainf, n);
    if (!status && sk_dist_rank() == 0) {
        struct sk_certify_report *t = &r->rep;
        double msum = 0;
        *t = (struct sk_certify_report){ .method = (enum sk_certify_method)method, .eps = eps, .n = (int)n };
        for (long i = 0; i < n; i++) {
            t->n_correct += p->pred[i] == d->y[i];
            t->n_certified += p->cert[i];
            msum += K > 1 ? p->margin[i] : 0;
        }
        t->clean_acc = (double)t->n_correct / n;
        t->certified_acc = (double)t->n_certified / n;
        t->mean_margin_lo = msum / n;
        t->lipschitz_global = lip ? rep.lipschitz_global : NAN;
        t->lipschitz_proved = lip && rep.lipschitz_proved;
        r->med2 = r->medinf = NAN;
        if (lip) {
            qsort(a2, (size_t)n, sizeof(float), cmp_float);
            qsort(ainf, (size_t)n, sizeof(float), cmp_float);
            r->med2 = a2[n / 2];
            r->medinf = ainf[n / 2];
        }
        t->seconds = sk_now() - t0;
    }
    points_free(&mine);
    sk_free(r2);
    sk_free(rinf);
    sk_free(a2);
    sk_free(ainf);
    sk_free(scratch);
    return status;
}

/* --points FILE.csv: one line per point. */
static int write_points(const char *path, const struct sk_dataset *d, const struct cert_points *p)
{
    size_t cap = 64 + 64 * (size_t)d->n, o = 0;
    char *buf = sk_malloc(cap);
    if (!buf) return cli_fail_lib();
    o += (size_t)snprintf(buf, cap, "index,label,predicted,certified,margin_lower\n");
    for (int i = 0; i < d->n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%d,%d,%d,%d,%.9g\n", i, d->y[i], p->pred[i], p->cert[i], p->margin[i]);
    const void *parts[1] = { buf };
    size_t lens[1] = { o };
    int rc = sk_write_file_atomic(path, parts, lens, 1);
    sk_free(buf);
    return rc ? cli_fail_lib() : CLI_OK;
}

/* --attacked FILE.npy (attack --save-adv of the same points): no point an
 * attack broke inside the threat set may be certified. A certified point
 * with a misclassified example within eps and the box means an unsound
 * bound: a loud failure, never a figure. */
static int sandwich(struct sk_model *m, const struct sk_dataset *d, const char *path, float eps, const struct sk_certify_domain *bx,
                    const struct cert_points *p, int *n_broken, int *n_outside)
{
    int nd;
    long sh[4];
    float *xa = sk_npy_read(path, &nd, sh);
    if (!xa) return cli_fail_lib();
    size_t D = (size_t)m->in_dim;
    int K = m->n_classes, status = CLI_OK;
    float *lp = NULL;
    if (sh[0] != d->n || (size_t)(sh[1] * sh[2] * sh[3]) != D) {
        status = cli_fail("--attacked %s holds %ld rows of %ld values; the certified points are %d rows of %zu (attack "
                          "the same --data, --split and --n)", path, sh[0], sh[1] * sh[2] * sh[3], d->n, D);
        goto out;
    }
    lp = sk_malloc(sizeof(float) * (size_t)d->n * K);
    if (!lp || sk_model_log_probs(m, xa, d->n, lp)) {
        status = cli_fail_lib();
        goto out;
    }
    *n_broken = *n_outside = 0;
    int bad = -1, n_bad = 0;
    for (int i = 0; i < d->n; i++) {
        const float *a = xa + (size_t)i * D, *x = d->x + (size_t)i * D;
        bool inside = true;
        for (size_t j = 0; j < D && inside; j++)
            inside = fabsf(a[j] - x[j]) <= eps * (1 + 1e-6f) &&
                     (bx->blo ? a[j] >= bx->blo[j] && a[j] <= bx->bhi[j]
                              : !(bx->lo < bx->hi) || (a[j] >= bx->lo && a[j] <= bx->hi));
        int b = 0;
        for (int k = 1; k < K; k++)
            if (lp[(size_t)i * K + k] > lp[(size_t)i * K + b]) b = k;
        if (!inside) {
            (*n_outside)++;
            continue;
        }
        if (b != d->y[i] && p->pred[i] == d->y[i]) {
            (*n_broken)++;
            if (p->cert[i]) {
                n_bad++;
                if (bad < 0) bad = i;
            }
        }
    }
    if (n_bad)
        status = cli_fail("sandwich check failed: %d point(s) certified at eps %g were broken by the attack (first: "
                          "point %d, certified margin %g): the bound is unsound", n_bad, eps, bad, p->margin[bad]);
out:
    sk_free(xa);
    sk_free(lp);
    return status;
}

/* run() under mpirun: the points shared out (certify_sharded), the files
 * and the report on rank 0. Frees m, meta and d. */
static int run_sharded(const struct cli_common *c, struct sk_model *m, char *meta, struct sk_dataset *d, int method,
                       float eps, float clip_min, float clip_max, const char *points_path, const char *attacked)
{
    struct sk_certify_domain bx = { 0, 0, NULL, NULL };
    float *blo = NULL, *bhi = NULL;
    struct cert_result r = { 0 };
    struct cert_points p = { 0 };
    int n_broken = -1, n_outside = 0;
    int status = cli_feature_box("certify", c->data, d, m, clip_min, clip_max, true, &bx.lo, &bx.hi, &blo, &bhi);
    bx.blo = blo;
    bx.bhi = bhi;
    if (!status) status = certify_sharded(m, d, method, eps, &bx, &r, &p);
    if (!status && sk_dist_rank() == 0) {
        if (points_path) status = write_points(points_path, d, &p);
        if (!status && attacked) status = sandwich(m, d, attacked, eps, &bx, &p, &n_broken, &n_outside);
        if (!status && c->json) print_json(c, method, eps, &bx, d->dim, d->n, &r, n_broken, n_outside);
        else if (!status) print_text(c, m->spec, method, eps, &bx, d->n, &r, n_broken, n_outside);
    }
    points_free(&p);
    sk_free(blo);
    sk_free(bhi);
    sk_free(meta);
    sk_dataset_free(d);
    sk_model_free(m);
    return status;
}

static int run(const struct cli_common *c, int method, float eps, float clip_min, float clip_max,
               const char *points_path, const char *attacked)
{
    char *meta = NULL;
    struct sk_model *m = cli_load_model(c, &meta);
    if (!m) return CLI_FAIL;
    struct sk_dataset *d = cli_load_eval_data(c, m, meta);
    int status = CLI_FAIL;
    struct sk_certify_domain bx = { 0, 0, NULL, NULL };
    float *blo = NULL, *bhi = NULL;
    struct cert_result r = { 0 };
    if (d && d->n >= 1 && cli_dist_on()) return run_sharded(c, m, meta, d, method, eps, clip_min, clip_max, points_path, attacked);
    if (d && d->n < 1) status = cli_fail("%s: no rows to certify", c->data);
    /* the box: given, else [0,1] when the data lie in it, else none */
    else if (d && !(status = cli_feature_box("certify", c->data, d, m, clip_min, clip_max, true, &bx.lo, &bx.hi, &blo,
                                             &bhi)) &&
             (bx.blo = blo, bx.bhi = bhi, !(status = certify(m, d, method, eps, &bx, &r)))) {
        struct cert_points p = { 0 };
        int n_broken = -1, n_outside = 0;
        if ((points_path || attacked) && cert_points(m, d, method, eps, &bx, &p)) status = cli_fail_lib();
        if (!status && points_path) status = write_points(points_path, d, &p);
        if (!status && attacked) status = sandwich(m, d, attacked, eps, &bx, &p, &n_broken, &n_outside);
        points_free(&p);
        if (!status && c->json) print_json(c, method, eps, &bx, d->dim, d->n, &r, n_broken, n_outside);
        else if (!status) print_text(c, m->spec, method, eps, &bx, d->n, &r, n_broken, n_outside);
    }
    sk_free(blo);
    sk_free(bhi);
    sk_free(meta);
    sk_dataset_free(d);
    sk_model_free(m);
    return status;
}

int cmd_certify(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    float eps = -1, clip_min = NAN, clip_max = NAN;
    const char *method_s = NULL, *points_path = NULL, *attacked = NULL;
    struct cli_bayes_cert_opts bo = { .method = -1, .samples = 0, .seed = 1, .confidence = 0.95, .sound_fp = false };
    float confidence = 0.95f;
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c),
        CLI_DATA_OPTS(c),
        { "eps", CLI_FLOAT, &eps, "E", "L-infinity radius (in the model's input units)" },
        { "method", CLI_STR, &method_s, "M", "ibp | crown | alpha-crown | lipschitz (default ibp)" },
        { "clip-min", CLI_FLOAT, &clip_min, "X", "lower end of one input box for all features (default: [0,1] for images, the training range per feature for tables)" },
        { "clip-max", CLI_FLOAT, &clip_max, "X", "upper end of one input box for all features (default: [0,1] for images, the training range per feature for tables)" },
        { "points", CLI_STR, &points_path, "FILE.csv", "write per point: index,label,predicted,certified,margin_lower" },
        { "attacked", CLI_STR, &attacked, "FILE.npy", "adversarial examples of the same points (attack --save-adv): fail "
          "if one that is misclassified within eps was certified" },
        { "sound-fp", CLI_FLAG, &bo.sound_fp, NULL, "round every bound outward (a-priori error terms), so certified "
          "holds for the real-number network, not only up to float32 rounding" },
        { "samples", CLI_INT, &bo.samples, "S", "posterior files: samples certified per point (default: every "
          "member of an ensemble / sgld file, 32 draws of vi, laplace, mc-dropout)" },
        { "seed", CLI_U64, &bo.seed, "S", "posterior files: seed of the weight draws (default 1)" },
        { "confidence", CLI_FLOAT, &confidence, "C", "posterior files: level of the Clopper-Pearson interval "
          "(default 0.95)" },
        CLI_THREADS_OPT(c),
        CLI_JSON_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "certify",
        "skeptic certify --model MODEL --data D --eps E [--method ibp|crown|lipschitz] [options]",
        "Prove robustness: a test point is certified when no input within L-infinity distance E (inside the valid box)\n"
        "can change its prediction. ibp pushes intervals through every layer and bounds the logit differences with\n"
        "the last layer folded in; crown adds backward linear relaxation (every layer kind, residual and concat\n"
        "graphs too) and is never looser than ibp; alpha-crown also optimises the lower slopes of unstable ReLUs;\n"
        "lipschitz uses the product of the layers' spectral norms (cheap, loose) and also reports the certified L2\n"
        "and L-infinity radius of every point. Certified accuracy is a lower bound on the accuracy under any attack.\n"
        "A posterior file (train --method) gets per point the certified share of its samples (members, draws) with a\n"
        "Clopper-Pearson interval (default bound: crown for MLPs, else ibp), and for vi a proved lower bound of the\n"
        "probability that the prediction is the label over the whole ball (interval weights, Wicker et al. 2020).\n"
        "--sound-fp rounds every bound outward, so certified holds for the real-number network.\n"
        "JSON keys: method, eps, n, clean_accuracy, certified_accuracy, n_certified, mean_margin_lower, seconds,\n"
        "box, lipschitz_global (lipschitz), median_radius_l2, median_radius_linf (lipschitz).",
        "skeptic certify --model ibp.safetensors --data fashion-mnist --eps 0.1\n"
        "skeptic certify --model mlp.safetensors --data fashion-mnist --eps 0.01 --method crown --n 1000 --json",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!c.model) return cli_usage("--model FILE is required");
    if (!c.data) return cli_usage("--data D is required");
    if (!(eps >= 0) || !isfinite(eps)) return cli_usage("--eps E is required (a finite radius >= 0, e.g. 0.1)");
    int method = sk_certify_method_parse(method_s ? method_s : "ibp");
    if (method < 0) return cli_usage("--method '%s' is not ibp, crown or lipschitz", method_s);
    if (bo.sound_fp && method == SK_CERTIFY_LIPSCHITZ)
        return cli_usage("--sound-fp: the Lipschitz bound has no outward-rounded variant (use --method ibp, crown or "
                         "alpha-crown)");
    bound_cfg = sk_certify_crown_defaults();
    bound_cfg.sound_fp = bo.sound_fp;
    bo.method = method_s ? method : -1;
    bo.confidence = confidence;
    const struct cli_path outs[] = { { "--points", points_path, false }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--model", c.model, false }, { "--data", c.data, false },
                                    { "--attacked", attacked, false }, { NULL, NULL, false } };
    if ((rc = cli_dist_check_outputs(outs, ins))) return rc;
    if (cli_is_posterior_file(c.model)) {
        if (points_path || attacked)
            return cli_usage("--points and --attacked are for a single network; %s is a posterior file", c.model);
        if (method == SK_CERTIFY_LIPSCHITZ)
            return cli_usage("--method lipschitz: posterior files take ibp, crown or alpha-crown");
        return cli_certify_bayes(&c, &bo, eps, clip_min, clip_max);
    }
    return run(&c, method, eps, clip_min, clip_max, points_path, attacked);
}
