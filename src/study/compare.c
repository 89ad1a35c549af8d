/* The seed's experiment 3: deterministic and Bayesian networks of one
 * architecture judged side by side (see study.h). */
#define _POSIX_C_SOURCE 200809L /* strtok_r, mkdir */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "skeptic/attack.h"
#include "skeptic/model.h"
#include "skeptic/study.h"

struct sk_compare_config sk_compare_defaults(void)
{
    struct sk_compare_config c;
    memset(&c, 0, sizeof c);
    c.arch = "mlp";
    c.methods = "deterministic,temperature,mc-dropout,ensemble,vi,sgld,laplace";
    c.data = "fashion-mnist";
    c.epochs = 10;
    c.vi_epochs = 20;
    c.sgld_epochs = 5;
    c.batch = 128;
    c.members = 5;
    c.samples = 20;
    c.attack_samples = 10;
    c.n_adv = 500;
    c.pgd_steps = 10;
    c.lr = 1e-3f;
    c.vi_lr = 1e-3f;
    c.sgld_lr = 0.01f;
    c.val_fraction = 1.0f / 12;
    c.dropout = 0.2f;
    c.prior = SK_PRIOR_GAUSSIAN;
    c.prior_sigma = 0.1f;
    c.init_sigma = 0.02f;
    c.kl_weight = 1.0f;
    c.flipout = -1;
    c.eps = 0.1f;
    c.clip_min = 0;
    c.clip_max = 1;
    c.seed = 1;
    return c;
}

int sk_compare_check(const struct sk_compare_config *o)
{
    const struct { const char *name; int v, min; } ints[] = {
        { "compare.epochs", o->epochs, 1 },       { "compare.vi_epochs", o->vi_epochs, 1 },
        { "compare.batch", o->batch, 1 },         { "compare.members", o->members, 1 },
        { "compare.samples", o->samples, 1 },     { "compare.attack_samples", o->attack_samples, 1 },
        { "compare.sgld_epochs", o->sgld_epochs, 2 }, { "compare.n_adv", o->n_adv, 0 },
        { "compare.pgd_steps", o->pgd_steps, 1 }, { "compare.ens_epochs", o->ens_epochs, 0 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (ints[i].v < ints[i].min)
            return sk_error(SK_EINVAL, "compare: %s %d must be >= %d", ints[i].name, ints[i].v, ints[i].min);
    const struct { const char *name; float v; } pos[] = {
        { "compare.lr", o->lr }, { "compare.vi_lr", o->vi_lr }, { "compare.sgld_lr", o->sgld_lr },
        { "compare.prior_sigma", o->prior_sigma }, { "compare.init_sigma", o->init_sigma },
    };
    for (size_t i = 0; i < sizeof pos / sizeof *pos; i++)
        if (!(pos[i].v > 0) || !isfinite(pos[i].v))
            return sk_error(SK_EINVAL, "compare: %s %g must be finite and > 0", pos[i].name, pos[i].v);
    if (!(o->kl_weight >= 0) || !isfinite(o->kl_weight))
        return sk_error(SK_EINVAL, "compare: compare.kl_weight %g must be finite and >= 0", o->kl_weight);
    if (!(o->eps >= 0) || !isfinite(o->eps))
        return sk_error(SK_EINVAL, "compare: compare.eps %g must be finite and >= 0", o->eps);
    if (!(o->dropout >= 0 && o->dropout < 1))
        return sk_error(SK_EINVAL, "compare: compare.dropout %g must be in [0,1)", o->dropout);
    if (!(o->val_fraction > 0 && o->val_fraction < 1))
        return sk_error(SK_EINVAL, "compare: compare.val_fraction %g must be in (0,1)", o->val_fraction);
    if (o->prior != SK_PRIOR_GAUSSIAN && o->prior != SK_PRIOR_MIXTURE)
        return sk_error(SK_EINVAL, "compare: compare.prior %d is neither gaussian nor mixture", (int)o->prior);
    if (o->flipout < -1 || o->flipout > 1)
        return sk_error(SK_EINVAL, "compare: compare.flipout %d must be -1, 0 or 1", o->flipout);
    if (o->n_adv > 0 && !(o->clip_min < o->clip_max))
        return sk_error(SK_EINVAL, "compare: compare.clip_min %g must be below compare.clip_max %g", o->clip_min,
                        o->clip_max);
    if (!o->arch || !o->methods || !o->data)
        return sk_error(SK_EINVAL, "compare: compare.arch, compare.methods and compare.data are required");
    return SK_OK;
}

/* One run's state: the deterministic network of this run (trained or loaded
 * first) is the starting point of temperature scaling, Laplace and SGLD. */
struct run {
    const struct sk_compare_config *o;
    struct sk_model *base_net;
};

/* ctx of the training callbacks */
struct epoch_ctx {
    const struct sk_compare_config *o;
    const char *method;
};

static void progress(const struct sk_compare_config *o, struct sk_compare_progress p)
{
    if (o->on_progress) o->on_progress(o->ctx, &p);
}

static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    const struct epoch_ctx *e = ctx;
    progress(e->o, (struct sk_compare_progress){ .stage = SK_COMPARE_EPOCH, .method = e->method, .epoch = em });
    return 0;
}

static const char *preset(const char *arch, bool dropout, float p, char *buf, size_t cap)
{
    if (!strcmp(arch, "mlp")) {
        if (dropout) snprintf(buf, cap, "mlp:784-400-400-10:relu:dropout%g", p);
        else snprintf(buf, cap, "mlp:784-400-400-10:relu");
    } else if (!strcmp(arch, "cnn")) {
        if (dropout)
            snprintf(buf, cap, "cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dropout%g-"
                     "dense128-relu-dropout%g-dense10", p, p);
        else
            snprintf(buf, cap, "cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10");
    } else {
        snprintf(buf, cap, "%s", arch);
    }
    return buf;
}

static struct sk_train_config train_cfg(const struct sk_compare_config *o, int epochs, float lr,
                                        struct epoch_ctx *ec)
{
    struct sk_train_config c = sk_train_defaults();
    c.epochs = epochs;
    c.batch = o->batch;
    c.seed = o->seed;
    c.opt = sk_optim_defaults(SK_OPT_ADAM);
    c.opt.lr = lr;
    c.on_epoch = on_epoch;
    c.ctx = ec;
    return c;
}

/* Train the base network or copy it into m. */
static int base_weights(struct run *r, const char *method, struct sk_model *m, struct sk_train_config *c,
                        const struct sk_dataset *tr)
{
    if (r->base_net && !strcmp(r->base_net->spec, m->spec)) {
        progress(r->o, (struct sk_compare_progress){ .stage = SK_COMPARE_WARM_START, .method = method });
        return sk_model_copy_weights(m, r->base_net);
    }
    int rc = sk_train(m, c, tr->x, tr->y, tr->n);
    if (!rc && !r->base_net) r->base_net = sk_model_clone(m);
    return rc;
}

/* A file from dir must fit the data it is judged on: the same class
 * selection and split as recorded in it, the same row length, and labels
 * inside its classes (its preprocessing is its own: it takes raw data). */
static int check_loaded(const struct sk_compare_config *o, const struct sk_posterior *p,
                        const struct sk_dataset *tr, const char *path)
{
    const struct sk_model *m = p->model;
    uint64_t seed = o->data_seed ? o->data_seed : 1;
    float frac = o->test_fraction > 0 ? o->test_fraction : 0.2f;
    if (m->data.has_split && sk_data_split_by_seed(o->data) &&
        (m->data.data_seed != seed || m->data.test_fraction != frac))
        return sk_error(SK_EINVAL, "%s was trained on the split of data seed %llu, test fraction %g; compare splits %s "
                        "with seed %llu, fraction %g, so its test rows would include the file's training rows: give "
                        "compare.data_seed %llu compare.test_fraction %g",
                        path, (unsigned long long)m->data.data_seed, m->data.test_fraction, o->data,
                        (unsigned long long)seed, frac, (unsigned long long)m->data.data_seed, m->data.test_fraction);
    const char *asked = o->classes ? o->classes : "";
    if (strcmp(m->data.classes, asked))
        return sk_error(SK_EINVAL, "%s was trained on classes %s; compare runs on %s: give compare.classes %s or leave "
                        "the file out", path, m->data.classes, *asked ? asked : "all classes", m->data.classes);
    if (m->in_dim != tr->dim)
        return sk_error(SK_EINVAL, "%s takes %d values per row; %s has %d", path, m->in_dim, o->data, tr->dim);
    if (tr->n_classes > m->n_classes)
        return sk_error(SK_EINVAL, "%s outputs %d classes; the data have %d", path, m->n_classes, tr->n_classes);
    return SK_OK;
}

/* METHOD.safetensors of dir, checked against the data; NULL with no error
 * set when there is none. */
static struct sk_posterior *load(struct run *r, const char *method, const struct sk_dataset *tr, const char *path)
{
    struct stat st;
    if (stat(path, &st)) return NULL;
    progress(r->o, (struct sk_compare_progress){ .stage = SK_COMPARE_LOADING, .method = method, .path = path });
    struct sk_posterior *lp = sk_bayes_load(path);
    if (lp && check_loaded(r->o, lp, tr, path)) {
        sk_bayes_free(lp);
        return NULL;
    }
    if (lp && lp->method == SK_BAYES_DETERMINISTIC && !r->base_net && lp->temperature == 1.0f)
        r->base_net = sk_model_clone(lp->model);
    return lp;
}

/* A new model of the run's architecture for method kind mk, recording the data. */
static struct sk_model *new_model(const struct sk_compare_config *o, int mk, const struct sk_dataset *tr,
                                  char *spec, size_t cap)
{
    struct sk_model *m = sk_model_from_spec(preset(o->arch, mk == SK_BAYES_MCDROPOUT, o->dropout, spec, cap));
    if (!m) return NULL;
    if (m->in_dim != tr->dim || m->n_classes < tr->n_classes ||
        sk_model_record_data(m, o->data, o->classes, o->data_seed, o->test_fraction, tr, SK_PREP_NONE)) {
        if (!sk_last_error()[0] || m->in_dim != tr->dim || m->n_classes < tr->n_classes)
            sk_error(SK_EINVAL, "compare.arch '%s' takes %d values and outputs %d classes; %s has %d values and %d "
                     "classes", spec, m->in_dim, m->n_classes, o->data, tr->dim, tr->n_classes);
        sk_model_free(m);
        return NULL;
    }
    sk_model_init(m, SK_INIT_HE_UNIFORM, o->seed);
    return m;
}

/* Train posterior p (its model freshly initialised) by method kind mk. */
static int fit(struct run *r, struct sk_posterior *p, int mk, struct epoch_ctx *ec, const struct sk_dataset *tr,
               const struct sk_dataset *va)
{
    const struct sk_compare_config *o = r->o;
    struct sk_bayes_train_config bc = sk_bayes_train_defaults();
    bc.train = train_cfg(o, o->epochs, o->lr, ec);
    switch (mk) {
    case SK_BAYES_VI:
        bc.vi.prior_sigma = o->prior_sigma;
        bc.vi.init_sigma = o->init_sigma;
        bc.vi.kl_weight = o->kl_weight;
        bc.vi.prior = o->prior;
        if (o->flipout >= 0) bc.vi.flipout = o->flipout;
        bc.train = train_cfg(o, o->vi_epochs, o->vi_lr, ec);
        bc.train.opt.sched = SK_SCHED_COSINE;
        bc.train.opt.min_lr = o->vi_lr * 0.05f;
        break;
    case SK_BAYES_ENSEMBLE:
        if (o->ens_epochs > 0) bc.train.epochs = o->ens_epochs;
        bc.members = o->members;
        break;
    case SK_BAYES_SGLD: {
        /* warm start from a trained network, then Langevin dynamics */
        long per_epoch = (tr->n + o->batch - 1) / o->batch;
        bc.sgld_train = train_cfg(o, o->sgld_epochs, o->sgld_lr, ec);
        bc.sgld.burnin_epochs = 1;
        bc.sgld.n_keep = 20;
        bc.sgld.thin = (int)((per_epoch * (o->sgld_epochs - 1)) / bc.sgld.n_keep);
        if (bc.sgld.thin < 1) bc.sgld.thin = 1;
        break;
    }
    case SK_BAYES_LAPLACE:
        bc.val_x = va->x;
        bc.val_y = va->y;
        bc.n_val = va->n;
        break;
    default: break;
    }
    int rc = SK_OK;
    if (mk != SK_BAYES_VI && mk != SK_BAYES_ENSEMBLE) {
        /* the base network, trained once and shared by the methods built on it */
        rc = base_weights(r, ec->method, p->model, &bc.train, tr);
        bc.pretrained = true;
    }
    if (!rc) rc = sk_bayes_train(p, &bc, tr->x, tr->y, tr->n);
    if (!rc && mk == SK_BAYES_LAPLACE)
        progress(o, (struct sk_compare_progress){ .stage = SK_COMPARE_FITTED, .method = ec->method,
                                                  .value = p->prior_precision });
    return rc;
}

/* Train (or load from dir) one method. Returns an owned posterior or NULL. */
static struct sk_posterior *make(struct run *r, const char *method, const struct sk_dataset *tr,
                                 const struct sk_dataset *va, double *secs)
{
    const struct sk_compare_config *o = r->o;
    char path[1024] = "", spec[512];
    if (o->dir) {
        snprintf(path, sizeof path, "%s/%s.safetensors", o->dir, method);
        sk_error_clear();
        struct sk_posterior *lp = load(r, method, tr, path);
        if (lp || sk_last_error()[0]) {
            *secs = NAN;
            return lp;
        }
    }
    bool is_temp = !strcmp(method, "temperature");
    int mk = is_temp ? SK_BAYES_DETERMINISTIC : sk_bayes_method_parse(method);
    if (mk < 0) {
        sk_error(SK_EINVAL, "unknown method '%s' in compare.methods (deterministic, temperature, mc-dropout, "
                 "ensemble, vi, sgld, laplace)", method);
        return NULL;
    }
    struct sk_model *m = new_model(o, mk, tr, spec, sizeof spec);
    if (!m) return NULL;
    struct sk_posterior *p = sk_bayes_new(m, (enum sk_bayes_method)mk);
    if (!p) {
        sk_model_free(m);
        return NULL;
    }
    progress(o, (struct sk_compare_progress){ .stage = SK_COMPARE_TRAINING, .method = method, .spec = spec });
    double t0 = sk_now();
    struct epoch_ctx ec = { o, method };
    int rc = fit(r, p, mk, &ec, tr, va);
    if (!rc && is_temp) {
        float T;
        rc = sk_bayes_fit_temperature(p, va->x, va->y, va->n, 1, o->seed, &T);
        if (!rc) progress(o, (struct sk_compare_progress){ .stage = SK_COMPARE_FITTED, .method = method, .value = T });
    }
    *secs = sk_now() - t0;
    if (!rc && path[0]) rc = sk_bayes_save(p, path);
    if (rc) {
        sk_bayes_free(p);
        return NULL;
    }
    return p;
}

/* Keep the entries i of each array where ok[i]; returns how many. */
static int keep_right(const bool *ok, int n, float *a, float *b, float *c, float *d)
{
    int nk = 0;
    for (int i = 0; i < n; i++)
        if (ok[i]) {
            a[nk] = a[i];
            b[nk] = b[i];
            c[nk] = c[i];
            d[nk] = d[i];
            nk++;
        }
    return nk;
}

/* FGSM and PGD with EOT over the posterior's samples; accuracy judged by the
 * posterior's predictive with fresh samples; MI / entropy of the PGD points
 * against the clean ones. */
static int attack_row(const struct sk_compare_config *o, struct sk_posterior *p, const struct sk_dataset *te,
                      struct sk_compare_row *r)
{
    int n = te->n < o->n_adv ? te->n : o->n_adv, D = te->dim, K = p->model->n_classes;
    int S_att = sk_bayes_n_samples(p, o->attack_samples);
    struct sk_classifier *c = sk_bayes_classifier(p, S_att, o->seed + 101);
    float *xa = sk_malloc(sizeof(float) * (size_t)n * D), *pb = sk_malloc(sizeof(float) * (size_t)n * K);
    float *mi_c = sk_malloc(sizeof(float) * (size_t)n), *mi_a = sk_malloc(sizeof(float) * (size_t)n);
    float *h_c = sk_malloc(sizeof(float) * (size_t)n), *h_a = sk_malloc(sizeof(float) * (size_t)n);
    bool *ok = sk_malloc(sizeof(bool) * (size_t)n);
    int rc = SK_ENOMEM;
    if (!c || !xa || !pb || !mi_c || !mi_a || !h_c || !h_a || !ok) goto out;
    if ((rc = sk_bayes_predict(p, te->x, n, o->samples, o->seed + 5, pb, mi_c))) goto out;
    sk_entropy_rows(pb, n, K, h_c);
    for (int i = 0; i < n; i++) {
        const float *q = pb + (size_t)i * K;
        int b = 0;
        for (int k = 1; k < K; k++)
            if (q[k] > q[b]) b = k;
        ok[i] = b == te->y[i];
    }
    for (int a = 0; a < 2; a++) {
        struct sk_attack_config ac = sk_attack_defaults(a ? SK_ATTACK_PGD : SK_ATTACK_FGSM, SK_NORM_LINF, o->eps);
        if (a) ac.steps = o->pgd_steps;
        ac.seed = o->seed;
        ac.clip_min = o->clip_min;
        ac.clip_max = o->clip_max;
        if ((rc = sk_attack_run(c, &ac, te->x, te->y, NULL, n, xa, NULL))) goto out;
        if ((rc = sk_bayes_predict(p, xa, n, o->samples, o->seed + 6, pb, mi_a))) goto out;
        double acc = sk_metric_accuracy(pb, te->y, n, K);
        if (!a) {
            r->fgsm_acc = acc;
            continue;
        }
        r->pgd_acc = acc;
        sk_entropy_rows(pb, n, K, h_a);
        /* a row misclassified already is no adversarial example to detect */
        int nk = keep_right(ok, n, mi_a, mi_c, h_a, h_c);
        r->adv_n = nk;
        if ((rc = sk_metric_detection(mi_a, nk, mi_c, nk, &r->adv_mi))) goto out;
        if ((rc = sk_metric_detection(h_a, nk, h_c, nk, &r->adv_ent))) goto out;
    }
out:
    sk_classifier_free(c);
    sk_free(xa);
    sk_free(pb);
    sk_free(mi_c);
    sk_free(mi_a);
    sk_free(h_c);
    sk_free(h_a);
    sk_free(ok);
    return rc;
}

/* One row: make the method's posterior, report it and attack it. */
static int judge(struct run *run, const char *method, const struct sk_dataset *tr, const struct sk_dataset *va,
                 const struct sk_dataset *te, const struct sk_dataset *ood, struct sk_compare_row *r)
{
    const struct sk_compare_config *o = run->o;
    snprintf(r->method, sizeof r->method, "%s", method);
    struct sk_posterior *p = make(run, method, tr, va, &r->train_seconds);
    if (!p) return sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
    r->samples = sk_bayes_n_samples(p, o->samples);
    r->temperature = p->temperature;
    progress(o, (struct sk_compare_progress){ .stage = SK_COMPARE_EVALUATING, .method = method, .row = r });
    int rc = sk_bayes_report(p, te->x, te->y, te->n, ood ? ood->x : NULL, ood ? ood->n : 0, o->samples, o->seed,
                             &r->rep);
    if (!rc && o->n_adv > 0) rc = attack_row(o, p, te, r);
    sk_bayes_free(p);
    if (rc) return rc;
    if (o->n_adv == 0) r->fgsm_acc = r->pgd_acc = r->adv_mi.auroc = r->adv_ent.auroc = NAN;
    progress(o, (struct sk_compare_progress){ .stage = SK_COMPARE_ROW, .method = method, .row = r });
    return SK_OK;
}

void sk_compare_result_free(struct sk_compare_result *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_rows; i++) sk_bayes_report_free(&r->rows[i].rep);
    sk_free(r->rows);
    sk_free(r);
}

int sk_compare_run(const struct sk_compare_config *cfg, const struct sk_dataset *train,
                   const struct sk_dataset *test, const struct sk_dataset *ood, struct sk_compare_result **out)
{
    *out = NULL;
    int rc = sk_compare_check(cfg);
    if (rc) return rc;
    if (!train || !test) return sk_error(SK_EINVAL, "compare: the training and test rows are required");
    if (ood && ood->dim != test->dim)
        return sk_error(SK_EINVAL, "compare: the OOD data have %d values per row, the data %d", ood->dim, test->dim);
    if (cfg->dir) mkdir(cfg->dir, 0777);
    struct sk_compare_result *res = sk_calloc(1, sizeof *res);
    struct run run = { cfg, NULL };
    struct sk_dataset *tr = NULL, *va = NULL;
    if (!res || !(res->rows = sk_calloc(SK_COMPARE_MAX_METHODS, sizeof *res->rows))) {
        rc = SK_ENOMEM;
        goto out;
    }
    res->n_test = test->n;
    res->n_adv = cfg->n_adv < test->n ? cfg->n_adv : test->n;
    res->has_ood = ood != NULL;
    if ((rc = sk_data_split(train, cfg->val_fraction, cfg->seed, &tr, &va))) goto out;
    char list[512];
    snprintf(list, sizeof list, "%s", cfg->methods);
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok && res->n_rows < SK_COMPARE_MAX_METHODS;
         tok = strtok_r(NULL, ",", &save)) {
        if ((rc = judge(&run, tok, tr, va, test, ood, &res->rows[res->n_rows]))) {
            sk_bayes_report_free(&res->rows[res->n_rows].rep);
            goto out;
        }
        res->n_rows++;
    }
out:
    sk_model_free(run.base_net);
    sk_dataset_free(tr);
    sk_dataset_free(va);
    if (rc) {
        sk_compare_result_free(res);
        return rc;
    }
    *out = res;
    return SK_OK;
}
