/* The seed study's steps: the three experiments, the three next checks and
 * the three open questions of the review's summary, each on real data
 * (Fashion-MNIST, MNIST digits as out-of-distribution inputs, the Wisconsin
 * breast-cancer table). A step reads the networks and results of the steps
 * it names in deps and saves what it trains under models/ as it goes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "skeptic/attack.h"
#include "skeptic/bayes.h"
#include "skeptic/certify.h"
#include "skeptic/curvature.h"
#include "skeptic/metrics.h"
#include "skeptic/model.h"
#include "skeptic/study.h"
#include "study/study_impl.h"

static const struct study_sizes sizes[2] = {
    [SK_STUDY_QUICK] = {
        .fm_train = 10000, .fm_test = 1000, .ood_n = 1000,
        .shirt_arch = "mlp:784-128-2:relu", .shirt_epochs = 10,
        .fm10_arch = "mlp:784-256-10:relu", .fm10_epochs = 5,
        .adv_n = 200, .pgd_steps = 10, .suite_queries = 500, .suite_steps = 25,
        .n_eps = 5, .eps = { 0.005f, 0.01f, 0.02f, 0.05f, 0.1f },
        .methods = "deterministic,mc-dropout,ensemble,vi",
        .epochs = 3, .vi_epochs = 5, .sgld_epochs = 3, .members = 3, .samples = 10, .attack_samples = 5,
        .cmp_adv = 200,
        .cal_n = 200, .n_cal_eps = 4, .cal_eps = { 0, 0.01f, 0.03f, 0.1f },
        .n_depths = 2, .n_widths = 2, .depths = { 1, 2 }, .widths = { 64, 256 }, .grid_epochs = 3, .grid_adv = 200,
        .n_opts = 3, .n_batches = 2, .opts = { "momentum", "adam", "sam" }, .batches = { 32, 512 },
        .ob_depth = 1, .ob_width = 128, .ob_train = 3000, .ob_epochs = 5, .curv_n = 1000,
        .eot_n = 100, .n_eot = 4, .eot = { 1, 2, 5, 10 },
        .cert_n = 20, .cert_samples = 4, .n_cert_eps = 2, .cert_eps = { 0.002f, 0.01f },
    },
    [SK_STUDY_FULL] = {
        .fm_train = 0, .fm_test = 0, .ood_n = 0,
        .shirt_arch = "mlp:784-256-128-2:relu", .shirt_epochs = 10,
        .fm10_arch = "mlp:784-512-512-10:relu", .fm10_epochs = 10,
        .adv_n = 1000, .pgd_steps = 20, .suite_queries = 5000, .suite_steps = 100,
        .n_eps = 7, .eps = { 0.005f, 0.01f, 0.02f, 0.03f, 0.05f, 0.1f, 0.2f },
        .methods = "deterministic,temperature,mc-dropout,ensemble,vi,sgld,laplace",
        .epochs = 10, .vi_epochs = 20, .sgld_epochs = 5, .members = 5, .samples = 20, .attack_samples = 10,
        .cmp_adv = 1000,
        .cal_n = 1000, .n_cal_eps = 6, .cal_eps = { 0, 0.01f, 0.02f, 0.03f, 0.05f, 0.1f },
        .n_depths = 4, .n_widths = 3, .depths = { 1, 2, 3, 4 }, .widths = { 64, 256, 1024 }, .grid_epochs = 10,
        .grid_adv = 1000,
        .n_opts = 3, .n_batches = 2, .opts = { "momentum", "adam", "sam" }, .batches = { 32, 1024 },
        .ob_depth = 2, .ob_width = 256, .ob_train = 0, .ob_epochs = 20, .curv_n = 5000,
        .eot_n = 500, .n_eot = 6, .eot = { 1, 2, 5, 10, 20, 50 },
        .cert_n = 100, .cert_samples = 16, .n_cert_eps = 3, .cert_eps = { 0.002f, 0.005f, 0.01f },
    },
};

const struct study_sizes *study_sizes_of(enum sk_study_profile p)
{
    return &sizes[p == SK_STUDY_FULL];
}

/* The budget of experiment 3, of the grid's attacks and of the optimiser
 * grid's sensitivity: small enough that the nets are not all at 0% (eps 0.1
 * breaks nearly every point of an undefended Fashion-MNIST MLP). */
#define CMP_EPS 0.03f
#define GRID_EPS 0.03f
#define OB_EPS 0.02f

/* ---- small helpers ---- */

static double mean_conf(const float *p, int n, int K)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        float b = p[(size_t)i * K];
        for (int k = 1; k < K; k++) b = fmaxf(b, p[(size_t)i * K + k]);
        s += b;
    }
    return n ? s / n : NAN;
}

/* Probabilities of a deterministic model on n rows (probs n x K, owned by the caller). */
static float *model_probs(struct sk_model *m, const float *x, int n)
{
    int K = m->n_classes;
    float *p = sk_malloc(sizeof(float) * (size_t)n * K);
    if (!p) return NULL;
    if (sk_model_log_probs(m, x, n, p)) {
        sk_free(p);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)n * K; i++) p[i] = expf(p[i]);
    return p;
}

/* ---- networks: trained once, saved, loaded on a rerun ---- */

struct net_req {
    const char *name, *spec;
    const struct sk_dataset *tr, *te; /* te may be NULL: no test curve */
    const char *data, *classes;
    enum sk_prep_kind prep;
    enum sk_optim_kind opt;
    float lr, sam_rho;
    int batch, epochs;
    bool cosine;
};

struct epoch_log {
    struct study *s;
    struct sk_model *m;
    const struct net_req *q;
    cJSON *hist;
    double base, span; /* of the step's progress */
};

static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    struct epoch_log *e = ctx;
    double test_loss = NAN, test_acc = NAN;
    if (e->q->te) sk_model_evaluate(e->m, e->q->te->x, e->q->te->y, e->q->te->n, &test_acc, &test_loss);
    cJSON *r = cJSON_CreateArray();
    double v[5] = { em->epoch + 1, em->train_loss, em->train_acc, test_loss, test_acc };
    for (int i = 0; i < 5; i++) cJSON_AddItemToArray(r, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    cJSON_AddItemToArray(e->hist, r);
    study_progress(e->s, e->base + e->span * (em->epoch + 1) / e->q->epochs, "%s: epoch %d/%d, loss %.4f",
                   e->q->name, em->epoch + 1, e->q->epochs, em->train_loss);
    return 0;
}

/* The network of q: models/NAME.safetensors if a finished run saved it
 * (with its epoch history, *hist), else trained and saved. */
static struct sk_model *get_net(struct study *s, const struct net_req *q, double base, double span, cJSON **hist)
{
    char path[1024], key[160];
    study_path(s, path, sizeof path, "models/%s.safetensors", q->name);
    snprintf(key, sizeof key, "%s-epochs", q->name);
    struct stat st;
    cJSON *h = NULL;
    if (!stat(path, &st) && (h = study_load_part(s, key))) {
        struct sk_model *m = sk_model_load(path, NULL, NULL);
        if (m) {
            study_progress(s, base + span, "%s: loaded %s", q->name, path);
            *hist = h;
            return m;
        }
        cJSON_Delete(h);
        return NULL;
    }
    struct sk_model *m = sk_model_from_spec(q->spec);
    if (!m) return NULL;
    int rc = sk_model_record_data(m, q->data, q->classes, 0, 0, q->tr, q->prep);
    if (!rc) rc = sk_model_init(m, SK_INIT_HE_UNIFORM, s->c.seed);
    struct sk_train_config tc = sk_train_defaults();
    tc.epochs = q->epochs;
    tc.batch = q->batch;
    tc.seed = s->c.seed;
    tc.opt = sk_optim_defaults(q->opt);
    tc.opt.lr = q->lr;
    tc.opt.sam_rho = q->sam_rho;
    if (q->cosine) tc.opt.sched = SK_SCHED_COSINE;
    struct epoch_log el = { s, m, q, cJSON_CreateArray(), base, span };
    tc.on_epoch = on_epoch;
    tc.ctx = &el;
    if (!rc) rc = sk_train(m, &tc, q->tr->x, q->tr->y, q->tr->n);
    if (!rc) rc = sk_model_save(m, path, NULL);
    if (!rc) rc = study_save_part(s, key, el.hist);
    if (rc) {
        cJSON_Delete(el.hist);
        sk_model_free(m);
        return NULL;
    }
    *hist = el.hist;
    return m;
}

/* Accuracy, NLL, ECE of a model on a data set, and on the training rows. */
struct fit_figures {
    double train_acc, train_loss, test_acc, test_loss, ece, brier, conf;
};
static int fit_figures(struct sk_model *m, const struct sk_dataset *tr, const struct sk_dataset *te,
                       struct fit_figures *f)
{
    int rc = sk_model_evaluate(m, tr->x, tr->y, tr->n, &f->train_acc, &f->train_loss);
    if (rc) return rc;
    float *p = model_probs(m, te->x, te->n);
    if (!p) return SK_ENOMEM;
    struct sk_metric_summary ms;
    rc = sk_metric_summary(p, te->y, te->n, m->n_classes, &ms);
    f->test_acc = ms.accuracy;
    f->test_loss = ms.nll;
    f->ece = ms.ece;
    f->brier = ms.brier;
    f->conf = mean_conf(p, te->n, m->n_classes);
    sk_free(p);
    return rc;
}

/* ---- experiment 1: a binary MLP with a held-out test ---- */

/* python3-sklearn's copy starts with a count line ("569,30,malignant,benign"),
 * not a header: the table without it goes to data/breast_cancer.csv. */
static int cancer_csv(struct study *s, char *out, size_t cap)
{
    const char *src = s->c.cancer_csv ? s->c.cancer_csv
                                      : "/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv";
    char dir[1024];
    mkdir(study_path(s, dir, sizeof dir, "data"), 0777);
    study_path(s, out, cap, "data/breast_cancer.csv");
    FILE *f = fopen(src, "rb");
    if (!f) return sk_error(SK_EIO, "study: cannot read the breast-cancer table %s (python3-sklearn): give "
                            "study.cancer_csv", src);
    char *buf = NULL;
    size_t len = 0, got;
    char chunk[65536];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *nb = realloc(buf, len + got + 1);
        if (!nb) {
            free(buf);
            fclose(f);
            return sk_error(SK_ENOMEM, "out of memory reading %s", src);
        }
        buf = nb;
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (!buf) return sk_error(SK_EFORMAT, "%s is empty", src);
    buf[len] = 0;
    char *body = strchr(buf, '\n');
    int rc = SK_OK;
    if (!body) rc = sk_error(SK_EFORMAT, "%s: one line only; expected a count line and the table", src);
    else {
        body++;
        const void *parts[1] = { body };
        size_t lens[1] = { len - (size_t)(body - buf) };
        rc = sk_write_file_atomic(out, parts, lens, 1);
    }
    free(buf);
    return rc;
}

static void curve_figure(struct study *s, const char *name, const cJSON *hist, const char *title, const char *caption)
{
    int n = cJSON_GetArraySize(hist);
    if (n < 2) return;
    double *x = sk_malloc(sizeof(double) * (size_t)n * 3);
    if (!x) return;
    double *tr = x + n, *te = x + 2 * n;
    for (int i = 0; i < n; i++) {
        const cJSON *r = cJSON_GetArrayItem(hist, i);
        x[i] = cJSON_GetArrayItem(r, 0)->valuedouble;
        tr[i] = cJSON_GetArrayItem(r, 1)->valuedouble;
        const cJSON *t = cJSON_GetArrayItem(r, 3);
        te[i] = cJSON_IsNumber(t) ? t->valuedouble : NAN;
    }
    struct sk_plot_series ser[2] = { { x, tr, n, "TRAIN", false }, { x, te, n, "TEST", true } };
    char path[1024];
    study_path(s, path, sizeof path, "figures/%s.png", name);
    if (!sk_plot_lines(path, title, "EPOCH", "CROSS-ENTROPY", ser, 2, false)) study_figure(s, name, caption);
    sk_free(x);
}

static int step_exp1(struct study *s)
{
    const struct study_sizes *z = s->z;
    int rc = study_data(s);
    if (rc) return rc;
    int cl[2] = { 6, 0 };
    struct sk_dataset *tr = sk_data_select_classes(s->fm_tr, cl, 2), *te = sk_data_select_classes(s->fm_te, cl, 2);
    struct sk_dataset *ctr = NULL, *cte = NULL;
    struct sk_model *m = NULL, *cm = NULL;
    cJSON *hist = NULL, *chist = NULL;
    rc = SK_ENOMEM;
    if (!tr || !te) goto out;
    struct net_req q = { "exp1-shirt", z->shirt_arch, tr, te, "fashion-mnist", "6,0", SK_PREP_NONE, SK_OPT_ADAM,
                         1e-3f, 0, 128, z->shirt_epochs, true };
    if (!(m = get_net(s, &q, 0, 0.8, &hist))) goto fail;
    char csv[1024];
    if ((rc = cancer_csv(s, csv, sizeof csv))) goto out;
    struct sk_data_options o = { .header = 2 };
    ctr = sk_data_open(csv, "train", &o);
    cte = ctr ? sk_data_open(csv, "test", &o) : NULL;
    if (!cte) goto fail;
    struct net_req cq = { "exp1-cancer", "mlp:30-32-2:relu", ctr, cte, csv, NULL, SK_PREP_STANDARDIZE, SK_OPT_ADAM,
                          1e-3f, 0, 32, 50, false };
    if (!(cm = get_net(s, &cq, 0.8, 0.2, &chist))) goto fail;
    struct fit_figures f, cf;
    if ((rc = fit_figures(m, tr, te, &f)) || (rc = fit_figures(cm, ctr, cte, &cf))) goto out;
    int maj = 0, cmaj = 0;
    for (int i = 0; i < te->n; i++) maj += te->y[i] == 0;
    for (int i = 0; i < cte->n; i++) cmaj += cte->y[i] == 1;
    static const char *cols[] = { "task", "network", "train rows", "test rows", "train accuracy", "test accuracy",
                                  "gap (train - test)", "test NLL", "test ECE", "majority class" };
    cJSON *rows = study_table(s, "A binary MLP with a held-out test set: accuracy on the training rows and on rows "
                              "it never saw", cols, 10);
    study_row(rows, "ssiidddddd", "Fashion-MNIST shirt (0) vs T-shirt/top (1)", z->shirt_arch, tr->n, te->n,
              f.train_acc, f.test_acc, f.train_acc - f.test_acc, f.test_loss, f.ece,
              fmax(maj, te->n - maj) / (double)te->n);
    study_row(rows, "ssiidddddd", "Wisconsin breast cancer: malignant (0) vs benign (1)", "mlp:30-32-2:relu "
              "(standardised)", ctr->n, cte->n, cf.train_acc, cf.test_acc, cf.train_acc - cf.test_acc, cf.test_loss,
              cf.ece, fmax(cmaj, cte->n - cmaj) / (double)cte->n);
    study_num(s, "shirt_test_accuracy", f.test_acc);
    study_num(s, "shirt_train_accuracy", f.train_acc);
    study_num(s, "shirt_test_nll", f.test_loss);
    study_num(s, "cancer_test_accuracy", cf.test_acc);
    study_num(s, "cancer_train_accuracy", cf.train_acc);
    study_text(s, "Shirt against T-shirt is Fashion-MNIST's hardest pair: %d training and %d test images, Adam "
               "(lr 1e-3, cosine), batch 128, %d epochs. The network reaches %.1f%% on the held-out images against "
               "%.1f%% on its training images (chance 50%%).", tr->n, te->n, z->shirt_epochs, 100 * f.test_acc,
               100 * f.train_acc);
    study_text(s, "The breast-cancer table (569 tumours, 30 features, seeded stratified 80/20 split, features "
               "standardised by the training split) gives %.1f%% test accuracy against %.1f%% for always answering "
               "benign.", 100 * cf.test_acc, 100.0 * cmaj / cte->n);
    curve_figure(s, "exp1-shirt-loss", hist, "SHIRT VS T-SHIRT: LOSS PER EPOCH",
                 "Shirt vs T-shirt: cross-entropy on the training rows (solid; the mean over each epoch's "
                 "minibatches, so it lags the weights) and on the held-out rows (dashed) after each epoch");
    curve_figure(s, "exp1-cancer-loss", chist, "BREAST CANCER: LOSS PER EPOCH",
                 "Breast cancer: cross-entropy on the training rows (solid; the mean over each epoch's minibatches) "
                 "and on the held-out rows (dashed)");
    rc = SK_OK;
    goto out;
fail:
    rc = sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
out:
    cJSON_Delete(hist);
    cJSON_Delete(chist);
    sk_model_free(m);
    sk_model_free(cm);
    sk_dataset_free(tr);
    sk_dataset_free(te);
    sk_dataset_free(ctr);
    sk_dataset_free(cte);
    return rc;
}

/* A network the attacks of experiment 2 and open question 2 run on, and
 * its first adv_n test rows: the shirt network of experiment 1 (ten = false)
 * or experiment 2's ten-class network. */
static int attack_target(struct study *s, bool ten, struct sk_model **m, struct sk_dataset **te)
{
    int rc = study_data(s);
    if (rc) return rc;
    char path[1024];
    *te = NULL;
    *m = sk_model_load(study_path(s, path, sizeof path, ten ? "models/exp2-fm10.safetensors"
                                                           : "models/exp1-shirt.safetensors"), NULL, NULL);
    if (*m && ten) {
        int n = s->z->adv_n < s->fm_te->n ? s->z->adv_n : s->fm_te->n;
        int *idx = sk_malloc(sizeof(int) * (size_t)n);
        if (idx) {
            for (int i = 0; i < n; i++) idx[i] = i;
            *te = sk_dataset_subset(s->fm_te, idx, n);
            sk_free(idx);
        }
    } else if (*m) {
        int cl[2] = { 6, 0 };
        *te = sk_data_select_classes(s->fm_te, cl, 2);
    }
    if (!*te) {
        sk_model_free(*m);
        *m = NULL;
        return sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
    }
    if ((*te)->n > s->z->adv_n) (*te)->n = s->z->adv_n;
    return SK_OK;
}

/* ---- experiment 2: FGSM, PGD and the suite against eps ---- */

struct attack_prog {
    struct study *s;
    const char *name;
    double base, span;
};
static void on_attack(void *ctx, const struct sk_attack_progress *p)
{
    struct attack_prog *a = ctx;
    if (p->finished) return;
    double f = (p->stage + (p->total ? (double)p->done / p->total : 1)) / (p->n_stages ? p->n_stages : 1);
    study_progress(a->s, a->base + a->span * f, "%s: %s %d/%d", a->name, p->name, p->done, p->total);
}

static struct sk_attack_config attack_cfg(const struct study *s, enum sk_attack_kind k, float eps)
{
    struct sk_attack_config ac = sk_attack_defaults(k, SK_NORM_LINF, eps);
    ac.seed = s->c.seed;
    if (k == SK_ATTACK_PGD) ac.steps = s->z->pgd_steps;
    if (k == SK_ATTACK_SUITE) {
        ac.queries = s->z->suite_queries;
        ac.steps = s->z->suite_steps;
    }
    return ac;
}

/* Accuracy against eps of attack `kind` on (c, te): acc[n_eps], *clean;
 * the suite's stages and every audit's warnings go into the step's result. */
static int curve(struct study *s, struct sk_classifier *c, const struct sk_dataset *te, const char *net,
                 enum sk_attack_kind kind, double base, double span, double *acc, double *clean)
{
    const struct study_sizes *z = s->z;
    struct sk_attack_result *res[8] = { 0 };
    struct sk_attack_config ac = attack_cfg(s, kind, z->eps[0]);
    struct attack_prog ap = { s, net, base, span };
    ac.on_progress = on_attack;
    ac.progress_ctx = &ap;
    int rc = sk_attack_curve(c, &ac, z->eps, z->n_eps, te->x, te->y, te->n, acc, res);
    if (rc) return rc;
    *clean = res[0]->clean_acc;
    cJSON *stages = cJSON_GetObjectItemCaseSensitive(s->res, "suite_stages");
    cJSON *audits = cJSON_GetObjectItemCaseSensitive(s->res, "audits");
    for (int e = 0; e < z->n_eps; e++) {
        const struct sk_attack_result *r = res[e];
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "network", net);
        cJSON_AddStringToObject(a, "attack", r->attack);
        cJSON_AddNumberToObject(a, "eps", r->eps);
        cJSON_AddNumberToObject(a, "frac_zero_grad", r->frac_zero_grad);
        cJSON *w = cJSON_AddArrayToObject(a, "warnings");
        for (int i = 0; i < r->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(r->warnings[i]));
        cJSON_AddItemToArray(audits, a);
        if (kind == SK_ATTACK_SUITE)
            for (int g = 0; g < r->n_stages; g++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "eps", r->eps);
                cJSON_AddStringToObject(o, "stage", r->stages[g].name);
                cJSON_AddNumberToObject(o, "attacked", r->stages[g].n_attacked);
                cJSON_AddNumberToObject(o, "broken", r->stages[g].n_broken);
                cJSON_AddNumberToObject(o, "robust_accuracy", r->stages[g].robust_acc);
                cJSON_AddItemToArray(stages, o);
            }
        sk_attack_result_free(res[e]);
    }
    return SK_OK;
}

static int step_exp2(struct study *s)
{
    const struct study_sizes *z = s->z;
    int rc = study_data(s);
    if (rc) return rc;
    /* the suite's targeted APGD-DLR needs four classes or more: the binary
     * network meets FGSM and PGD, a ten-class one all three */
    cJSON *hist = NULL;
    struct net_req q = { "exp2-fm10", z->fm10_arch, s->fm_tr, NULL, "fashion-mnist", NULL, SK_PREP_NONE, SK_OPT_ADAM,
                         1e-3f, 0, 128, z->fm10_epochs, true };
    struct sk_model *m10 = get_net(s, &q, 0, 0.15, &hist);
    cJSON_Delete(hist);
    if (!m10) return sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
    sk_model_free(m10);
    cJSON_AddArrayToObject(s->res, "suite_stages");
    cJSON_AddArrayToObject(s->res, "audits");
    static const enum sk_attack_kind kinds[3] = { SK_ATTACK_FGSM, SK_ATTACK_PGD, SK_ATTACK_SUITE };
    static const char *const nets[2] = { "shirt/T-shirt MLP", "10-class MLP" };
    double acc[2][3][8], clean[2] = { NAN, NAN };
    int n_pts[2] = { 0, 0 };
    for (int t = 0; t < 2 && !rc; t++) {
        struct sk_model *m = NULL;
        struct sk_dataset *te = NULL;
        if ((rc = attack_target(s, t == 1, &m, &te))) break;
        n_pts[t] = te->n;
        struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
        if (!c) rc = SK_ENOMEM;
        for (int k = 0; k < 3 && !rc; k++) {
            if (t == 0 && kinds[k] == SK_ATTACK_SUITE) {
                for (int e = 0; e < z->n_eps; e++) acc[t][k][e] = NAN;
                continue;
            }
            rc = curve(s, c, te, nets[t], kinds[k], 0.15 + 0.85 * (t * 2 + k) / 5.0, 0.85 / 5, acc[t][k], &clean[t]);
        }
        sk_classifier_free(c);
        sk_model_free(m);
        sk_dataset_free(te);
    }
    if (rc) return rc;
    static const char *cols[] = { "eps (L-inf)", "shirt: FGSM", "shirt: PGD", "10-class: FGSM", "10-class: PGD",
                                  "10-class: suite" };
    char cap[768];
    snprintf(cap, sizeof cap, "Accuracy under attack against the L-inf budget eps (pixels in [0,1]; eps 0 is the "
             "clean accuracy): the shirt/T-shirt MLP of experiment 1 on %d held-out images and a 10-class MLP (%s) "
             "on the first %d Fashion-MNIST test images; PGD-%d; the suite is APGD-CE, APGD-T, FMN and Square on "
             "the points each leaves standing (its targeted stage needs four classes, so not on the binary net)",
             n_pts[0], z->fm10_arch, n_pts[1], z->pgd_steps);
    cJSON *rows = study_table(s, cap, cols, 6);
    study_row(rows, "dddddd", 0.0, clean[0], clean[0], clean[1], clean[1], clean[1]);
    int ne = z->n_eps, np = ne + 1;
    double *ex = sk_malloc(sizeof(double) * 6 * (size_t)np);
    if (!ex) return SK_ENOMEM;
    ex[0] = 0;
    for (int e = 0; e < ne; e++) {
        study_row(rows, "dddddd", (double)z->eps[e], acc[0][0][e], acc[0][1][e], acc[1][0][e], acc[1][1][e],
                  acc[1][2][e]);
        ex[e + 1] = z->eps[e];
        char key[64];
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 3 - (t == 0); k++) {
                snprintf(key, sizeof key, "%s_%s_accuracy_eps_%g", t ? "fm10" : "shirt", sk_attack_name(kinds[k]),
                         z->eps[e]);
                study_num(s, key, acc[t][k][e]);
            }
    }
    study_num(s, "shirt_clean_accuracy", clean[0]);
    study_num(s, "fm10_clean_accuracy", clean[1]);
    static const char *const lab[5] = { "SHIRT FGSM", "SHIRT PGD", "10-CLASS FGSM", "10-CLASS PGD", "10-CLASS SUITE" };
    struct sk_plot_series ser[5];
    for (int i = 0; i < 5; i++) {
        int t = i >= 2, k = t ? i - 2 : i;
        double *y = ex + (size_t)(i + 1) * np;
        y[0] = clean[t];
        for (int e = 0; e < ne; e++) y[e + 1] = acc[t][k][e];
        ser[i] = (struct sk_plot_series){ ex, y, np, lab[i], k == 0 };
    }
    char path[1024];
    if (!sk_plot_lines(study_path(s, path, sizeof path, "figures/exp2-eps.png"), "ACCURACY UNDER ATTACK",
                       "EPS (L-INF)", "ACCURACY", ser, 5, false))
        study_figure(s, "exp2-eps", "Accuracy against eps: FGSM (dashed), PGD and the suite, for the shirt/T-shirt "
                     "MLP and the 10-class MLP");
    sk_free(ex);
    int last = ne - 1;
    study_text(s, "The %.1f%%-accurate shirt/T-shirt network of experiment 1 keeps %.1f%% under FGSM and %.1f%% under "
               "PGD-%d at eps = %g (%.1f grey levels of 255). The %.1f%%-accurate 10-class network keeps %.1f%% "
               "(FGSM), %.1f%% (PGD) and %.1f%% (suite) there.", 100 * clean[0], 100 * acc[0][0][last],
               100 * acc[0][1][last], z->pgd_steps, z->eps[last], 255 * z->eps[last], 100 * clean[1],
               100 * acc[1][0][last], 100 * acc[1][1][last], 100 * acc[1][2][last]);
    for (int t = 0; t < 2; t++) {
        int k = t ? 2 : 1, half = 0;
        while (half < ne && acc[t][k][half] > clean[t] / 2) half++;
        if (half < ne)
            study_text(s, "The %s's accuracy under %s falls below half its clean accuracy at eps = %g: %.1f grey "
                       "levels per pixel.", nets[t], t ? "the suite" : "PGD", z->eps[half], 255 * z->eps[half]);
    }
    study_text(s, "Each budget attacks only the points still standing at the smaller one (a broken point stays "
               "broken), so each curve is non-increasing by construction; open question 2 checks that against "
               "independent runs.");
    return SK_OK;
}

/* ---- experiment 3: the deterministic net against each Bayesian method ---- */

struct cmp_prog {
    struct study *s;
    int n_methods, done;
};
static void on_compare(void *ctx, const struct sk_compare_progress *p)
{
    struct cmp_prog *c = ctx;
    if (p->stage == SK_COMPARE_ROW) c->done++;
    const char *what = p->stage == SK_COMPARE_EVALUATING ? "evaluating and attacking" : p->stage == SK_COMPARE_LOADING
                                                                                            ? "loading"
                                                                                            : "training";
    study_progress(c->s, (double)c->done / c->n_methods, "%s %s", what, p->method);
}

static int count_list(const char *s)
{
    int n = 1;
    for (; *s; s++) n += *s == ',';
    return n;
}

static int step_exp3(struct study *s)
{
    const struct study_sizes *z = s->z;
    int rc = study_data(s);
    if (rc) return rc;
    char dir[1024];
    struct sk_compare_config o = sk_compare_defaults();
    o.methods = z->methods;
    o.dir = study_path(s, dir, sizeof dir, "models/exp3");
    o.epochs = z->epochs;
    o.vi_epochs = z->vi_epochs;
    o.sgld_epochs = z->sgld_epochs;
    o.members = z->members;
    o.samples = z->samples;
    o.attack_samples = z->attack_samples;
    o.n_adv = z->cmp_adv;
    o.pgd_steps = z->pgd_steps;
    o.eps = CMP_EPS;
    o.seed = s->c.seed;
    struct cmp_prog cp = { s, count_list(z->methods), 0 };
    o.on_progress = on_compare;
    o.ctx = &cp;
    struct sk_compare_result *r = NULL;
    if ((rc = sk_compare_run(&o, s->fm_tr, s->fm_te, s->mn_te, &r))) return rc;
    static const char *cols[] = { "method", "samples", "accuracy", "NLL", "ECE", "Brier", "OOD AUROC (entropy)",
                                  "OOD AUROC (MI)", "FGSM accuracy", "PGD accuracy (EOT)",
                                  "PGD detection AUROC (MI)" };
    char cap[768];
    snprintf(cap, sizeof cap, "Fashion-MNIST, MLP 784-400-400-10: %d test images, MNIST digits as "
             "out-of-distribution inputs, FGSM and PGD-%d at eps = %g on the first %d test images, the attack's "
             "gradient averaged over %d posterior samples (EOT)", r->n_test, z->pgd_steps, CMP_EPS, r->n_adv,
             z->attack_samples);
    cJSON *rows = study_table(s, cap, cols, 11);
    int best_ece = 0, best_pgd = 0;
    for (int i = 0; i < r->n_rows; i++) {
        const struct sk_compare_row *w = &r->rows[i];
        bool one = w->samples <= 1;
        study_row(rows, "sidddddddd" "d", w->method, w->samples, w->rep.clean.accuracy, w->rep.clean.nll,
                  w->rep.clean.ece, w->rep.clean.brier, r->has_ood ? w->rep.ood[SK_SCORE_ENTROPY].auroc : NAN,
                  r->has_ood && !one ? w->rep.ood[SK_SCORE_MI].auroc : NAN, w->fgsm_acc, w->pgd_acc,
                  one ? NAN : w->adv_mi.auroc);
        char key[96];
        snprintf(key, sizeof key, "%s_accuracy", w->method);
        study_num(s, key, w->rep.clean.accuracy);
        snprintf(key, sizeof key, "%s_ece", w->method);
        study_num(s, key, w->rep.clean.ece);
        snprintf(key, sizeof key, "%s_nll", w->method);
        study_num(s, key, w->rep.clean.nll);
        snprintf(key, sizeof key, "%s_pgd_accuracy", w->method);
        study_num(s, key, w->pgd_acc);
        if (w->rep.clean.ece < r->rows[best_ece].rep.clean.ece) best_ece = i;
        if (w->pgd_acc > r->rows[best_pgd].pgd_acc) best_pgd = i;
    }
    const struct sk_compare_row *d = &r->rows[0];
    study_text(s, "Every method has the same architecture and sees the same %d training images (%d epochs; Bayes by "
               "Backprop %d).", s->fm_tr->n, z->epochs, z->vi_epochs);
    if (best_ece) study_text(s, "The lowest ECE is %s's (%.4f against the deterministic net's %.4f).",
                             r->rows[best_ece].method, r->rows[best_ece].rep.clean.ece, d->rep.clean.ece);
    else study_text(s, "No Bayesian method here has a lower ECE than the deterministic net (%.4f).", d->rep.clean.ece);
    if (best_pgd) study_text(s, "The highest accuracy under PGD with EOT is %s's (%.1f%% against the deterministic "
                             "net's %.1f%%).", r->rows[best_pgd].method, 100 * r->rows[best_pgd].pgd_acc,
                             100 * d->pgd_acc);
    else study_text(s, "No Bayesian method here is more accurate under PGD with EOT than the deterministic net "
                    "(%.1f%%).", 100 * d->pgd_acc);
    study_text(s, "A posterior is attacked through its predictive (the log of the averaged probabilities), so its "
               "gradient is the EOT gradient and its robustness is not an artefact of noisy gradients; MI columns "
               "are empty for one-sample methods, whose mutual information is zero.");
    sk_compare_result_free(r);
    return SK_OK;
}

/* ---- next check 1: calibration under attack against eps ---- */

static int step_nc1(struct study *s)
{
    const struct study_sizes *z = s->z;
    int rc = study_data(s);
    if (rc) return rc;
    char list[256];
    snprintf(list, sizeof list, "%s", z->methods);
    const char *meth[8];
    int nm = 0;
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t && nm < 8; t = strtok_r(NULL, ",", &save)) meth[nm++] = t;
    int ne = z->n_cal_eps, n = z->cal_n < s->fm_te->n ? z->cal_n : s->fm_te->n;
    double *ece = sk_calloc((size_t)nm * ne * 3, sizeof(double));
    if (!ece) return SK_ENOMEM;
    double *nll = ece + (size_t)nm * ne, *acc = nll + (size_t)nm * ne;
    for (int i = 0; i < nm; i++) {
        cJSON *part = study_load_part(s, meth[i]);
        if (!part) {
            char path[1024];
            study_progress(s, (double)i / nm, "%s: PGD-%d with EOT at %d budgets", meth[i], z->pgd_steps, ne);
            struct sk_posterior *p = sk_bayes_load(study_path(s, path, sizeof path, "models/exp3/%s.safetensors",
                                                              meth[i]));
            if (!p) {
                rc = SK_EIO;
                break;
            }
            struct sk_study_adv_cal_config cc = sk_study_adv_cal_defaults(SK_ATTACK_PGD);
            cc.attack.steps = z->pgd_steps;
            cc.attack.seed = s->c.seed;
            cc.samples = z->samples;
            cc.attack_samples = z->attack_samples;
            cc.seed = s->c.seed;
            struct sk_study_adv_cal out[8];
            rc = sk_study_adv_calibration_bayes(p, &cc, z->cal_eps, ne, s->fm_te->x, s->fm_te->y, n, out);
            sk_bayes_free(p);
            if (rc) break;
            part = cJSON_CreateArray();
            for (int e = 0; e < ne; e++) {
                double v[3] = { out[e].adv.ece, out[e].adv.nll, out[e].adv.accuracy };
                cJSON_AddItemToArray(part, cJSON_CreateDoubleArray(v, 3));
            }
            if ((rc = study_save_part(s, meth[i], part))) {
                cJSON_Delete(part);
                break;
            }
        }
        for (int e = 0; e < ne; e++) {
            const cJSON *v = cJSON_GetArrayItem(part, e);
            ece[(size_t)i * ne + e] = cJSON_GetArrayItem(v, 0)->valuedouble;
            nll[(size_t)i * ne + e] = cJSON_GetArrayItem(v, 1)->valuedouble;
            acc[(size_t)i * ne + e] = cJSON_GetArrayItem(v, 2)->valuedouble;
        }
        cJSON_Delete(part);
    }
    if (!rc) {
        static const char *cols[] = { "method", "eps", "accuracy", "ECE", "NLL" };
        char cap[768];
        snprintf(cap, sizeof cap, "Calibration on PGD-%d inputs (EOT over %d samples) against eps, first %d "
                 "Fashion-MNIST test images; eps 0 is the clean predictive", z->pgd_steps, z->attack_samples, n);
        cJSON *rows = study_table(s, cap, cols, 5);
        for (int i = 0; i < nm; i++)
            for (int e = 0; e < ne; e++) {
                size_t k = (size_t)i * ne + e;
                study_row(rows, "sdddd", meth[i], (double)z->cal_eps[e], acc[k], ece[k], nll[k]);
                char key[96];
                snprintf(key, sizeof key, "%s_ece_eps_%g", meth[i], z->cal_eps[e]);
                study_num(s, key, ece[k]);
            }
        double ex[8];
        for (int e = 0; e < ne; e++) ex[e] = z->cal_eps[e];
        struct sk_plot_series ser[6];
        int ns = nm < 6 ? nm : 6;
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < ns; i++)
                ser[i] = (struct sk_plot_series){ ex, (pass ? nll : ece) + (size_t)i * ne, ne, meth[i], i == 0 };
            char path[1024];
            const char *name = pass ? "nc1-nll" : "nc1-ece";
            if (!sk_plot_lines(study_path(s, path, sizeof path, "figures/%s.png", name),
                               pass ? "NLL UNDER ATTACK" : "ECE UNDER ATTACK", "EPS (L-INF)", pass ? "NLL" : "ECE",
                               ser, ns, pass == 1))
                study_figure(s, name, pass ? "Negative log-likelihood on PGD inputs against eps (log scale), one "
                                             "line per method (deterministic dashed)"
                                           : "Expected calibration error on PGD inputs against eps, one line per "
                                             "method (deterministic dashed)");
        }
        /* at which eps does a method's ECE stay below the deterministic net's (row 0)? */
        for (int i = 1; i < nm; i++) {
            char below[160] = "", above[160] = "";
            for (int e = 0; e < ne; e++) {
                char *dst = ece[(size_t)i * ne + e] < ece[e] ? below : above;
                size_t l = strlen(dst);
                snprintf(dst + l, sizeof below - l, "%s%g", l ? ", " : "", z->cal_eps[e]);
            }
            study_text(s, "%s: ECE below the deterministic net's at eps = %s%s%s (at the largest eps %.3f against "
                       "%.3f).", meth[i], below[0] ? below : "none", above[0] ? "; not at eps = " : "", above,
                       ece[(size_t)i * ne + ne - 1], ece[ne - 1]);
        }
    }
    sk_free(ece);
    return rc;
}

/* ---- next checks 2 and 3: sweeps (skeptic/study.h, sk_sweep) ---- */

struct sweep_prog {
    struct study *s;
    long n;
};
static void on_sweep_stage(void *ctx, long index, const char *stage, int epoch)
{
    struct sweep_prog *p = ctx;
    if (epoch >= 0)
        study_progress(p->s, (double)index / p->n, "configuration %ld/%ld: %s %d", index + 1, p->n, stage, epoch + 1);
    else study_progress(p->s, (double)index / p->n, "configuration %ld/%ld: %s", index + 1, p->n, stage);
}

/* Run (or resume) the sweep of cfg on train into steps/ID/rows.jsonl, its
 * models in models/ID/; *rows receives the rows in grid order (owned). */
static int run_sweep(struct study *s, struct sk_sweep_config *cfg, const struct sk_dataset *train, cJSON **rows)
{
    char path[1024], mdir[1024];
    *rows = NULL;
    mkdir(study_path(s, path, sizeof path, "steps/%s", s->id), 0777);
    study_path(s, path, sizeof path, "steps/%s/rows.jsonl", s->id);
    cfg->dir = study_path(s, mdir, sizeof mdir, "models/%s", s->id);
    struct sweep_prog sp = { s, sk_sweep_grid_size(&cfg->grid) };
    cfg->on_stage = on_sweep_stage;
    cfg->ctx = &sp;
    struct sk_sweep *sw = sk_sweep_new(cfg, train, s->fm_te, s->mn_te);
    if (!sw) return SK_EINVAL;
    int rc = sk_sweep_resume(sw, path);
    if (!rc) rc = sk_sweep_run(sw, path, NULL, NULL);
    long n = sk_sweep_size(sw);
    char hash[24];
    cJSON *arr = rc ? NULL : cJSON_CreateArray();
    for (long i = 0; i < n && arr; i++) cJSON_AddItemToArray(arr, cJSON_CreateNull());
    FILE *f = rc ? NULL : fopen(path, "r");
    if (!rc && !f) rc = sk_error(SK_EIO, "study: cannot read %s", path);
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(j, "index");
        const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "config_hash"));
        long i = cJSON_IsNumber(ix) ? (long)ix->valuedouble : -1;
        if (i >= 0 && i < n && h && (sk_sweep_config_hash(sw, i, hash), !strcmp(hash, h)))
            cJSON_ReplaceItemInArray(arr, (int)i, j);
        else cJSON_Delete(j);
    }
    free(line);
    if (f) fclose(f);
    for (long i = 0; i < n && !rc; i++)
        if (cJSON_IsNull(cJSON_GetArrayItem(arr, (int)i)))
            rc = sk_error(SK_EFORMAT, "study: %s has no row for configuration %ld", path, i);
    sk_sweep_free(sw);
    if (rc) {
        cJSON_Delete(arr);
        return rc;
    }
    *rows = arr;
    return SK_OK;
}

static double rnum(const cJSON *row, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void sweep_common(struct study *s, struct sk_sweep_config *c, int epochs, float eps, int n_adv)
{
    c->data = "fashion-mnist";
    c->epochs = epochs;
    c->n_test = 0;
    c->n_ood = 0;
    c->n_adv = n_adv;
    c->n_suite = 0;
    c->cert_eps = 0;
    c->eps = eps;
    c->pgd_steps = s->z->pgd_steps;
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->c.seed);
    sk_sweep_grid_set(&c->grid, SK_SWEEP_SEED, seed);
}

static int step_nc2(struct study *s)
{
    const struct study_sizes *z = s->z;
    int rc = study_data(s);
    if (rc) return rc;
    int nd = z->n_depths, nw = z->n_widths, nc = nd * nw;
    struct sk_sweep_config c = sk_sweep_defaults();
    sweep_common(s, &c, z->grid_epochs, GRID_EPS, z->grid_adv);
    c.n_curv = 0;
    char list[64];
    int k = 0;
    for (int d = 0; d < nd; d++) k += snprintf(list + k, sizeof list - (size_t)k, "%s%d", d ? "," : "", z->depths[d]);
    if ((rc = sk_sweep_grid_set(&c.grid, SK_SWEEP_DEPTH, list))) return rc;
    k = 0;
    for (int w = 0; w < nw; w++) k += snprintf(list + k, sizeof list - (size_t)k, "%s%d", w ? "," : "", z->widths[w]);
    if ((rc = sk_sweep_grid_set(&c.grid, SK_SWEEP_WIDTH, list))) return rc;
    cJSON *rows_in = NULL;
    if ((rc = run_sweep(s, &c, s->fm_tr, &rows_in))) return rc;
    static const char *cols[] = { "depth", "width", "test accuracy", "NLL", "ECE", "OOD AUROC (entropy)",
                                  "FGSM accuracy", "PGD accuracy", "ECE under PGD" };
    char cap[768];
    snprintf(cap, sizeof cap, "ReLU MLPs of each depth (hidden layers) and width trained by skeptic sweep on %d "
             "Fashion-MNIST images (Adam, lr 1e-3, batch 128, %d epochs); MNIST digits as OOD inputs; FGSM and "
             "PGD-%d at eps = %g on the first %d test images", s->fm_tr->n, z->grid_epochs, z->pgd_steps, GRID_EPS,
             z->grid_adv);
    cJSON *rows = study_table(s, cap, cols, 9);
    double pgd[16], ood[16], acc[16];
    for (int i = 0; i < nc; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows_in, i);
        int d = z->depths[i / nw], w = z->widths[i % nw];
        pgd[i] = rnum(r, "pgd_acc");
        ood[i] = rnum(r, "ood_auroc_entropy");
        acc[i] = rnum(r, "test_acc");
        study_row(rows, "iiddddddd", d, w, acc[i], rnum(r, "test_loss"), rnum(r, "ece"), ood[i], rnum(r, "fgsm_acc"),
                  pgd[i], rnum(r, "pgd_ece"));
        char key[64];
        snprintf(key, sizeof key, "d%d_w%d_pgd_accuracy", d, w);
        study_num(s, key, pgd[i]);
        snprintf(key, sizeof key, "d%d_w%d_ood_auroc", d, w);
        study_num(s, key, ood[i]);
    }
    cJSON_Delete(rows_in);
    double wx[4], ys[2][4][4];
    for (int j = 0; j < nw; j++) wx[j] = z->widths[j];
    struct sk_plot_series ser[4];
    char lab[4][32];
    for (int pass = 0; pass < 2; pass++) {
        for (int d = 0; d < nd; d++) {
            for (int j = 0; j < nw; j++) ys[pass][d][j] = pass ? ood[d * nw + j] : pgd[d * nw + j];
            snprintf(lab[d], sizeof lab[d], "DEPTH %d", z->depths[d]);
            ser[d] = (struct sk_plot_series){ wx, ys[pass][d], nw, lab[d], false };
        }
        char path[1024];
        const char *name = pass ? "nc2-ood" : "nc2-pgd";
        if (!sk_plot_lines(study_path(s, path, sizeof path, "figures/%s.png", name),
                           pass ? "OOD DETECTION AGAINST WIDTH" : "PGD ACCURACY AGAINST WIDTH", "WIDTH",
                           pass ? "AUROC" : "ACCURACY", ser, nd, false))
            study_figure(s, name, pass ? "MNIST-vs-Fashion-MNIST AUROC by predictive entropy against width, one "
                                         "line per depth"
                                       : "PGD accuracy against width, one line per depth");
    }
    int bp = 0, bo = 0, lo = 0, hi = 0;
    for (int i = 1; i < nc; i++) {
        if (pgd[i] > pgd[bp]) bp = i;
        if (ood[i] > ood[bo]) bo = i;
        if (acc[i] < acc[lo]) lo = i;
        if (acc[i] > acc[hi]) hi = i;
    }
    study_text(s, "The most robust net under PGD is depth %d, width %d (%.1f%%); the best OOD detector is depth %d, "
               "width %d (AUROC %.3f). Test accuracy ranges over %.1f-%.1f%% across the grid.", z->depths[bp / nw],
               z->widths[bp % nw], 100 * pgd[bp], z->depths[bo / nw], z->widths[bo % nw], ood[bo], 100 * acc[lo],
               100 * acc[hi]);
    study_text(s, "The grid is a sweep of the library's sk_sweep (the engine of skeptic sweep): its rows, with their "
               "configuration and weight hashes, are in steps/nc2/rows.jsonl.");
    return SK_OK;
}

/* ---- next check 3: optimizer x batch size ---- */

/* The optimiser grid's sweep (nc3 runs it; open question 3 reads its rows). */
static int ob_sweep(struct study *s, cJSON **rows)
{
    const struct study_sizes *z = s->z;
    int rc = study_data(s);
    if (rc) return rc;
    int n = z->ob_train && z->ob_train < s->fm_tr->n ? z->ob_train : s->fm_tr->n;
    int *idx = sk_malloc(sizeof(int) * (size_t)n);
    if (!idx) return SK_ENOMEM;
    for (int i = 0; i < n; i++) idx[i] = i;
    struct sk_dataset *tr = sk_dataset_subset(s->fm_tr, idx, n);
    sk_free(idx);
    if (!tr) return SK_ENOMEM;
    struct sk_sweep_config c = sk_sweep_defaults();
    sweep_common(s, &c, z->ob_epochs, OB_EPS, z->grid_adv);
    c.n_curv = z->curv_n;
    char list[64];
    int k = 0;
    for (int o = 0; o < z->n_opts; o++) k += snprintf(list + k, sizeof list - (size_t)k, "%s%s", o ? "," : "", z->opts[o]);
    rc = sk_sweep_grid_set(&c.grid, SK_SWEEP_OPTIMIZER, list);
    k = 0;
    for (int b = 0; b < z->n_batches; b++)
        k += snprintf(list + k, sizeof list - (size_t)k, "%s%d", b ? "," : "", z->batches[b]);
    if (!rc) rc = sk_sweep_grid_set(&c.grid, SK_SWEEP_BATCH, list);
    snprintf(list, sizeof list, "%d", z->ob_depth);
    if (!rc) rc = sk_sweep_grid_set(&c.grid, SK_SWEEP_DEPTH, list);
    snprintf(list, sizeof list, "%d", z->ob_width);
    if (!rc) rc = sk_sweep_grid_set(&c.grid, SK_SWEEP_WIDTH, list);
    if (!rc) rc = run_sweep(s, &c, tr, rows);
    sk_dataset_free(tr);
    return rc;
}

/* The measures of the optimiser grid's table: row key and column name. */
static const struct { const char *key, *name; } ob_cols[] = {
    { "train_acc", "train acc" },          { "test_acc", "test acc" },
    { "gap_err", "gap (acc)" },            { "gap_loss", "gap (loss)" },
    { "lambda_max", "lambda_max" },        { "hessian_trace", "trace" },
    { "eps_sharpness", "eps-sharpness" },  { "adaptive_sharpness", "adaptive sharpness" },
    { "pac_flatness", "PAC-Bayes flatness" }, { "fisher_rao", "Fisher-Rao" },
    { "log_spec_prod", "log spectral product" }, { "log_path_norm", "log path norm" },
    { "margin_median", "median margin" },  { "grad_noise_scale", "noise scale" },
    { "fgsm_acc", "FGSM acc" },            { "pgd_acc", "PGD acc" },
    { "pgd_ece", "ECE under PGD" },
};
#define N_OB_COLS ((int)(sizeof ob_cols / sizeof *ob_cols))

static int step_nc3(struct study *s)
{
    const struct study_sizes *z = s->z;
    cJSON *rows_in = NULL;
    int rc = ob_sweep(s, &rows_in);
    if (rc) return rc;
    int nb = z->n_batches, nc = z->n_opts * nb;
    const char *cols[2 + N_OB_COLS] = { "optimizer", "batch" };
    for (int k = 0; k < N_OB_COLS; k++) cols[2 + k] = ob_cols[k].name;
    char cap[768];
    snprintf(cap, sizeof cap, "The same MLP (depth %d, width %d) trained by skeptic sweep with each optimizer and "
             "batch size on %d images for %d epochs (momentum: SGD with momentum 0.9, lr 0.01; sam: the same with "
             "rho 0.05; adam: lr 1e-3). Gap: train minus test accuracy, test minus train loss. Curvature measures "
             "on %d training rows; sensitivity: FGSM and PGD at eps = %g", z->ob_depth, z->ob_width,
             z->ob_train ? z->ob_train : 60000, z->ob_epochs, z->curv_n, OB_EPS);
    cJSON *rows = study_table(s, cap, cols, 2 + N_OB_COLS);
    double gap[12];
    for (int i = 0; i < nc; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows_in, i);
        cJSON *row = cJSON_CreateArray();
        cJSON_AddItemToArray(row, cJSON_CreateString(z->opts[i / nb]));
        cJSON_AddItemToArray(row, cJSON_CreateNumber(z->batches[i % nb]));
        for (int k = 0; k < N_OB_COLS; k++) {
            double v = rnum(r, ob_cols[k].key);
            cJSON_AddItemToArray(row, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(rows, row);
        gap[i] = rnum(r, "gap_loss");
        char key[64];
        snprintf(key, sizeof key, "%s_b%d_gap_loss", z->opts[i / nb], z->batches[i % nb]);
        study_num(s, key, gap[i]);
    }
    cJSON_Delete(rows_in);
    int small = 0, large = 0;
    for (int o = 0; o < z->n_opts; o++) {
        double a = gap[o * nb], b = gap[o * nb + nb - 1];
        small += a < b;
        large += a > b;
    }
    study_text(s, "For %d of %d optimizers the smallest batch (%d) has the smaller loss gap than the largest (%d); "
               "for %d the larger batch does. Open question 3 ranks every curvature measure against the gap.",
               small, z->n_opts, z->batches[0], z->batches[nb - 1], large);
    study_text(s, "The rows, with their configuration and weight hashes, are in steps/nc3/rows.jsonl (sk_sweep).");
    return SK_OK;
}

/* ---- open question 1: certified posterior mass ---- */

static int step_oq1(struct study *s)
{
    const struct study_sizes *z = s->z;
    int rc = study_data(s);
    if (rc) return rc;
    char list[256];
    snprintf(list, sizeof list, "%s", z->methods);
    const char *meth[8];
    int nm = 0;
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t && nm < 8; t = strtok_r(NULL, ",", &save)) meth[nm++] = t;
    int ne = z->n_cert_eps, n = z->cert_n < s->fm_te->n ? z->cert_n : s->fm_te->n;
    static const char *cols[] = { "method", "eps", "samples", "certified share", "95% interval low",
                                  "95% interval high", "points: every sample", "points: no sample",
                                  "vi box lower bound" };
    char cap[768];
    snprintf(cap, sizeof cap, "Certified posterior mass on the first %d Fashion-MNIST test images: the share of "
             "posterior samples (ensemble members; weight draws of MC dropout and Bayes by Backprop) whose network "
             "CROWN proves robust within the L-inf ball of radius eps, averaged over the points, with its "
             "Clopper-Pearson interval; for Bayes by Backprop also the proven lower bound on the posterior mass of "
             "robust networks (the weight box of Wicker et al. 2020)", n);
    cJSON *rows = study_table(s, cap, cols, 9);
    double share[8][8];
    for (int i = 0; i < nm && !rc; i++) {
        cJSON *part = study_load_part(s, meth[i]);
        if (!part) {
            char path[1024];
            struct sk_posterior *p = sk_bayes_load(study_path(s, path, sizeof path, "models/exp3/%s.safetensors",
                                                              meth[i]));
            if (!p) return SK_EIO;
            part = cJSON_CreateArray();
            for (int e = 0; e < ne && !rc; e++) {
                study_progress(s, (i + (double)e / ne) / nm, "%s: certifying at eps %g", meth[i], z->cert_eps[e]);
                struct sk_certify_bayes_config cc = sk_certify_bayes_defaults();
                cc.samples = z->cert_samples;
                cc.seed = s->c.seed;
                struct sk_certify_domain box = { 0.0f, 1.0f, NULL, NULL };
                struct sk_certify_bayes_result r;
                rc = sk_certify_bayes(p, s->fm_te->x, s->fm_te->y, n, z->cert_eps[e], &box, &cc, &r);
                if (rc) break;
                double v[7] = { r.n_samples, r.mean_frac, r.mean_cp_lo, r.mean_cp_hi, r.n_all, r.n_none,
                                r.mean_vi_lower };
                cJSON_AddItemToArray(part, cJSON_CreateDoubleArray(v, 7));
                sk_certify_bayes_result_free(&r);
            }
            sk_bayes_free(p);
            if (!rc) rc = study_save_part(s, meth[i], part);
            if (rc) {
                cJSON_Delete(part);
                break;
            }
        }
        for (int e = 0; e < ne; e++) {
            const cJSON *v = cJSON_GetArrayItem(part, e);
            double x[7];
            for (int k = 0; k < 7; k++) {
                const cJSON *c = cJSON_GetArrayItem(v, k);
                x[k] = cJSON_IsNumber(c) ? c->valuedouble : NAN;
            }
            study_row(rows, "sdidddiid", meth[i], (double)z->cert_eps[e], (int)x[0], x[1], x[2], x[3], (int)x[4],
                      (int)x[5], x[6]);
            share[i][e] = x[1];
            char key[96];
            snprintf(key, sizeof key, "%s_certified_share_eps_%g", meth[i], z->cert_eps[e]);
            study_num(s, key, x[1]);
        }
        cJSON_Delete(part);
    }
    if (rc) return rc;
    double ex[8];
    for (int e = 0; e < ne; e++) ex[e] = z->cert_eps[e];
    struct sk_plot_series ser[8];
    for (int i = 0; i < nm; i++) ser[i] = (struct sk_plot_series){ ex, share[i], ne, meth[i], i == 0 };
    char path[1024];
    if (!sk_plot_lines(study_path(s, path, sizeof path, "figures/oq1-mass.png"), "CERTIFIED POSTERIOR MASS",
                       "EPS (L-INF)", "CERTIFIED SHARE OF SAMPLES", ser, nm, false))
        study_figure(s, "oq1-mass", "Share of posterior samples certified robust (CROWN) against eps, averaged over "
                     "the points, one line per method (deterministic dashed: its one network is certified or not)");
    int last = ne - 1;
    study_text(s, "At eps = %g the deterministic net is proven robust on %.0f%% of the points; the share of posterior "
               "samples proven robust is %.0f%% for %s%s.", z->cert_eps[last], 100 * share[0][last],
               nm > 1 ? 100 * share[1][last] : NAN, nm > 1 ? meth[1] : "-", nm > 2 ? " (the other methods: see the table)" : "");
    study_text(s, "A certified share is a statement about networks drawn from the posterior: for ensemble members it "
               "is exact, for weight draws it estimates the posterior probability of a robust network, with the "
               "interval shown. Only the weight box of Bayes by Backprop is a proof about the posterior itself; with "
               "hundreds of thousands of weights its mass is negligible unless the box is wide, which is why that "
               "column is near 0 where it is not empty.");
    return SK_OK;
}

/* ---- open question 2: the attack suite's audits ---- */

static int step_oq2(struct study *s)
{
    const struct study_sizes *z = s->z;
    cJSON *e2 = study_load_step(s, "exp2");
    if (!e2) return sk_error(SK_ESTATE, "study: step exp2 is not finished");
    /* (a) which stage of the suite broke which points */
    static const char *scols[] = { "eps", "stage", "points attacked", "broken by it", "accuracy after it" };
    cJSON *rows = study_table(s, "Which stage of the suite broke which points: each stage runs on the points the "
                              "stages before it left standing (the 10-class MLP of experiment 2)", scols, 5);
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(e2, "suite_stages"))
    {
        study_row(rows, "dsiid", cJSON_GetObjectItemCaseSensitive(st, "eps")->valuedouble,
                  cJSON_GetObjectItemCaseSensitive(st, "stage")->valuestring,
                  (int)cJSON_GetObjectItemCaseSensitive(st, "attacked")->valuedouble,
                  (int)cJSON_GetObjectItemCaseSensitive(st, "broken")->valuedouble,
                  cJSON_GetObjectItemCaseSensitive(st, "robust_accuracy")->valuedouble);
    }
    int n_warn = 0;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(e2, "audits"))
    {
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(st, "warnings"))
        {
            if (n_warn++ < 5)
                study_text(s, "Audit of %s on the %s at eps %g: %s",
                           cJSON_GetObjectItemCaseSensitive(st, "attack")->valuestring,
                           cJSON_GetObjectItemCaseSensitive(st, "network")->valuestring,
                           cJSON_GetObjectItemCaseSensitive(st, "eps")->valuedouble, w->valuestring);
        }
    }
    study_num(s, "audit_warnings", n_warn);
    cJSON_Delete(e2);
    if (!n_warn)
        study_text(s, "The attacks' audits (gradient masking, zero or non-finite gradients, a stochastic model "
                   "without EOT, probabilities instead of logits, train mode) raised no warning at any eps.");
    /* (b) independent runs per eps, (c) an unbounded attack */
    struct sk_model *m = NULL;
    struct sk_dataset *te = NULL;
    int rc = attack_target(s, true, &m, &te);
    if (rc) return rc;
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
    struct sk_posterior *p = NULL;
    if (!c) {
        rc = SK_ENOMEM;
        goto out;
    }
    static const char *mcols[] = { "eps", "PGD accuracy, independent run", "non-increasing so far" };
    rows = study_table(s, "eps-monotonicity: PGD run afresh at each eps (no point carried over from a smaller "
                       "budget) on the 10-class MLP of experiment 2; a rise with eps would mean the attack failed to find what a "
                       "smaller ball holds",
                       mcols, 3);
    double prev = 2;
    int viol = 0;
    for (int e = 0; e < z->n_eps; e++) {
        study_progress(s, 0.4 * e / z->n_eps, "PGD afresh at eps %g", z->eps[e]);
        struct sk_attack_config ac = attack_cfg(s, SK_ATTACK_PGD, z->eps[e]);
        struct sk_attack_result *r = sk_attack_evaluate(c, &ac, te->x, te->y, te->n);
        if (!r) {
            rc = SK_EINVAL;
            goto out;
        }
        bool ok = r->robust_acc <= prev;
        viol += !ok;
        study_row(rows, "dds", (double)z->eps[e], r->robust_acc, ok ? "yes" : "NO");
        prev = r->robust_acc;
        sk_attack_result_free(r);
    }
    study_num(s, "monotonicity_violations", viol);
    study_progress(s, 0.45, "unbounded PGD and FMN");
    struct sk_attack_config ac = attack_cfg(s, SK_ATTACK_PGD, 1.0f);
    struct sk_attack_result *ub = sk_attack_evaluate(c, &ac, te->x, te->y, te->n);
    struct sk_attack_config fc = attack_cfg(s, SK_ATTACK_FMN, 1.0f);
    struct sk_attack_result *fm = ub ? sk_attack_evaluate(c, &fc, te->x, te->y, te->n) : NULL;
    if (!fm) {
        sk_attack_result_free(ub);
        rc = SK_EINVAL;
        goto out;
    }
    static const char *ucols[] = { "attack", "budget", "accuracy", "success rate", "median L-inf norm found" };
    rows = study_table(s, "An unbounded attack must reach 0%: PGD with eps = 1 (the whole [0,1] box) and the "
                       "minimal-norm FMN", ucols, 5);
    study_row(rows, "ssddd", "PGD", "eps 1 (unbounded)", ub->robust_acc, ub->success_rate, ub->median_norm);
    study_row(rows, "ssddd", "FMN (L-inf)", "minimal norm", fm->robust_acc, fm->success_rate, fm->median_norm);
    study_num(s, "unbounded_pgd_accuracy", ub->robust_acc);
    study_num(s, "fmn_median_norm", fm->median_norm);
    study_text(s, "eps-monotonicity: %d rise%s in %d independent PGD runs. Unbounded PGD leaves %.1f%% (it must "
               "leave 0%%: %s); FMN's median minimal L-inf perturbation is %.4f (%.1f grey levels).", viol,
               viol == 1 ? "" : "s", z->n_eps, 100 * ub->robust_acc, ub->robust_acc == 0 ? "it does" : "IT DOES NOT",
               fm->median_norm, 255 * fm->median_norm);
    sk_attack_result_free(ub);
    sk_attack_result_free(fm);
    /* (d) EOT sample count converged, on MC dropout (experiment 3's file) */
    char path[1024];
    const char *meth = strstr(z->methods, "mc-dropout") ? "mc-dropout" : "vi";
    p = sk_bayes_load(study_path(s, path, sizeof path, "models/exp3/%s.safetensors", meth));
    if (!p) {
        rc = SK_EIO;
        goto out;
    }
    static const char *ecols[] = { "EOT samples", "PGD accuracy", "verdict s.e.", "change from the previous" };
    char cap[768];
    snprintf(cap, sizeof cap, "EOT sample count: PGD-%d at eps = %g on %s (experiment 3's network), first %d "
             "Fashion-MNIST test images, the verdict averaging %d predictive samples", z->pgd_steps, CMP_EPS, meth,
             z->eot_n, SK_ATTACK_VERDICT_SAMPLES);
    rows = study_table(s, cap, ecols, 4);
    double last = NAN, last_se = 0, change = NAN, ex[6], ey[6];
    for (int i = 0; i < z->n_eot; i++) {
        study_progress(s, 0.5 + 0.5 * i / z->n_eot, "%s: PGD with %d EOT samples", meth, z->eot[i]);
        struct sk_classifier *bc = sk_bayes_classifier(p, z->eot[i], s->c.seed + 101);
        if (!bc) {
            rc = SK_ENOMEM;
            goto out;
        }
        struct sk_attack_config ec = attack_cfg(s, SK_ATTACK_PGD, CMP_EPS);
        ec.audit = false;
        int n = z->eot_n < s->fm_te->n ? z->eot_n : s->fm_te->n;
        struct sk_attack_result *r = sk_attack_evaluate(bc, &ec, s->fm_te->x, s->fm_te->y, n);
        sk_classifier_free(bc);
        if (!r) {
            rc = SK_EINVAL;
            goto out;
        }
        change = r->robust_acc - last;
        ex[i] = z->eot[i];
        ey[i] = r->robust_acc;
        study_row(rows, "iddd", z->eot[i], r->robust_acc, r->robust_acc_se, change);
        last = r->robust_acc;
        last_se = r->robust_acc_se;
        sk_attack_result_free(r);
    }
    struct sk_plot_series es = { ex, ey, z->n_eot, "PGD ACCURACY", false };
    if (!sk_plot_lines(study_path(s, path, sizeof path, "figures/oq2-eot.png"), "ACCURACY UNDER PGD AGAINST EOT SAMPLES",
                       "EOT SAMPLES PER GRADIENT", "ACCURACY", &es, 1, false))
        study_figure(s, "oq2-eot", "Accuracy of the posterior under PGD against the number of posterior samples "
                     "averaged per attack gradient: the curve must flatten before the figure can be trusted");
    bool conv = fabs(change) <= 2 * fmax(last_se, 1.0 / z->eot_n);
    study_num(s, "eot_last_change", change);
    study_num(s, "eot_converged", conv);
    study_text(s, "EOT: going from %d to %d samples per gradient changes the accuracy under PGD by %+.1f points, %s "
               "twice the verdict's standard error (or one point): the sample count %s converged.",
               z->eot[z->n_eot - 2], z->eot[z->n_eot - 1], 100 * change, conv ? "within" : "more than",
               conv ? "has" : "has NOT");
out:
    sk_bayes_free(p);
    sk_classifier_free(c);
    sk_model_free(m);
    sk_dataset_free(te);
    return rc;
}

/* ---- open question 3: which curvature measure tracks the gap ---- */

static const char *const curv_measures[] = { "lambda_max", "hessian_trace", "eps_sharpness", "adaptive_sharpness",
                                             "pac_flatness", "pac_flatness_mag", "fisher_rao", "log_spec_prod",
                                             "spec_sum", "frobenius_sq", "log_path_norm", "margin_median",
                                             "grad_noise_scale" };
#define N_CURV ((int)(sizeof curv_measures / sizeof *curv_measures))

static int step_oq3(struct study *s)
{
    char path[1024];
    study_path(s, path, sizeof path, "steps/nc3/rows.jsonl");
    struct sk_sweep_summary *sm = sk_calloc(1, sizeof *sm);
    if (!sm) return SK_ENOMEM;
    int rc = sk_sweep_summarize(path, sm);
    if (rc) {
        sk_free(sm);
        return rc;
    }
    int tg[3] = { -1, -1, -1 };
    static const char *tnames[3] = { "gap_loss", "gap_err", "pgd_acc" };
    for (int g = 0; g < sm->n_targets; g++)
        for (int t = 0; t < 3; t++)
            if (!strcmp(sm->target[g], tnames[t])) tg[t] = g;
    static const char *cols[] = { "measure", "tau with the loss gap", "psi with the loss gap",
                                  "tau with the error gap", "psi with the error gap", "tau with PGD accuracy" };
    char cap[768];
    snprintf(cap, sizeof cap, "Kendall's tau-b of each curvature measure with the generalization gap over the %d "
             "networks of next check 3 (+1: a larger measure always comes with a larger gap), and Jiang et al.'s "
             "granulated psi (tau along one hyperparameter with the others fixed, averaged over the axes)",
             sm->n_rows);
    cJSON *rows = study_table(s, cap, cols, 6);
    int best = -1;
    double best_abs = -1;
    for (int c = 0; c < N_CURV; c++) {
        int m = -1;
        for (int k = 0; k < sm->n_measures; k++)
            if (!strcmp(sm->measure[k], curv_measures[c])) m = k;
        if (m < 0) continue;
        double v[5];
        for (int t = 0; t < 3; t++) {
            v[t == 0 ? 0 : t == 1 ? 2 : 4] = tg[t] >= 0 ? sm->tau[m][tg[t]] : NAN;
            if (t < 2) v[t == 0 ? 1 : 3] = tg[t] >= 0 ? sm->psi[m][tg[t]] : NAN;
        }
        study_row(rows, "sddddd", curv_measures[c], v[0], v[1], v[2], v[3], v[4]);
        char name[64];
        snprintf(name, sizeof name, "tau_gap_loss_%s", curv_measures[c]);
        study_num(s, name, v[0]);
        if (isfinite(v[0]) && fabs(v[0]) > best_abs) best_abs = fabs(v[0]), best = c;
    }
    int n = sm->n_rows;
    double step = n > 1 ? 2.0 / (n * (n - 1) / 2.0) : NAN;
    if (best >= 0) {
        int m = -1;
        for (int k = 0; k < sm->n_measures; k++)
            if (!strcmp(sm->measure[k], curv_measures[best])) m = k;
        double tau = sm->tau[m][tg[0]];
        study_text(s, "Over %d networks the curvature measure whose ranking agrees best with the loss gap is %s, tau = "
                   "%+.2f%s. With %d networks one swapped pair moves tau by %.2f, so %s.", n, curv_measures[best], tau,
                   tau < 0 ? " (a larger value comes with a smaller gap)" : "", n, step,
                   best_abs >= 0.6 ? "it is a lead to check over more seeds, not a finding"
                                   : "no measure tracks the gap convincingly here");
    } else {
        study_text(s, "No curvature measure could be ranked: every value is missing or constant.");
    }
    sk_free(sm);
    return SK_OK;
}

const struct study_step study_steps[] = {
    { "exp1", "Experiment 1: a binary MLP with a held-out test set", "", step_exp1, { 12, 10 },
      { "shirt vs T-shirt (about 2,000 images, 10 epochs) and the breast-cancer table",
        "shirt vs T-shirt (12,000 images, 784-256-128-2, 10 epochs) and the breast-cancer table" } },
    { "exp2", "Experiment 2: FGSM, PGD and the suite, accuracy against eps", "exp1", step_exp2, { 25, 300 },
      { "200 test images, 5 budgets, PGD-10, a lighter suite", "1,000 test images, 7 budgets, PGD-20, the full suite" } },
    { "exp3", "Experiment 3: the deterministic net against Bayesian methods", "", step_exp3, { 60, 180 },
      { "deterministic, MC dropout, ensemble of 3, Bayes by Backprop on 10,000 images, few epochs",
        "all seven methods on 60,000 images, 10 epochs (VI 20)" } },
    { "nc1", "Next check 1: calibration under attack against eps", "exp3", step_nc1, { 30, 150 },
      { "PGD-10 with EOT at 4 budgets, 200 images per method", "PGD-20 with EOT at 6 budgets, 1,000 images per method" } },
    { "nc2", "Next check 2: depth and width against robustness and uncertainty", "", step_nc2, { 20, 240 },
      { "depth 1-2 x width 64-256, 3 epochs", "depth 1-4 x width 64-1024, 10 epochs on 60,000 images" } },
    { "nc3", "Next check 3: optimizer and batch size against gap, sharpness and sensitivity", "", step_nc3,
      { 45, 150 },
      { "momentum, adam, sam x batch 32, 512 on 3,000 images, 5 epochs",
        "momentum, adam, sam x batch 32, 1024 on 60,000 images, 20 epochs" } },
    { "oq1", "Open question 1: certified posterior mass", "exp3", step_oq1, { 45, 210 },
      { "CROWN on 4 samples of each posterior, 20 images, 2 budgets",
        "CROWN on 16 samples of each posterior, 100 images, 3 budgets" } },
    { "oq2", "Open question 2: auditing the attack suite", "exp2,exp3", step_oq2, { 20, 45 },
      { "stages, eps-monotonicity, unbounded attacks, EOT 1-10", "stages, eps-monotonicity, unbounded attacks, EOT 1-50" } },
    { "oq3", "Open question 3: which curvature measure tracks the generalization gap", "nc3", step_oq3, { 0, 0 },
      { "Kendall tau and psi over next check 3's networks", "Kendall tau and psi over next check 3's networks" } },
};
const int study_n_steps = (int)(sizeof study_steps / sizeof *study_steps);
