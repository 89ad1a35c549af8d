/* One configuration of a sweep: train (or load) its model, measure it and
 * write its row. Everything is keyed by the configuration's seed, so the
 * row is a function of the configuration and the data alone. */
#define _POSIX_C_SOURCE 200809L /* mkdir */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "skeptic/certify.h"
#include "skeptic/curvature.h"
#include "skeptic/robust.h"
#include "skeptic/study.h"
#include "study/sweep_impl.h"

static void stage(const struct sk_sweep *s, long index, const char *what, int epoch)
{
    if (s->cfg.on_stage) s->cfg.on_stage(s->cfg.ctx, index, what, epoch);
}

struct epoch_ctx {
    const struct sk_sweep *s;
    long index;
};

static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    const struct epoch_ctx *e = ctx;
    stage(e->s, e->index, "epoch", em->epoch);
    return 0;
}

/* "mlp:D-W-...-W-K:relu", a dropout after every hidden activation for mc-dropout. */
static void spec_of(const struct sk_sweep *s, const struct sk_sweep_point *pt, char *spec, size_t cap)
{
    int n = snprintf(spec, cap, "mlp:%d", s->train->dim);
    for (int l = 0; l < pt->depth && n < (int)cap; l++) n += snprintf(spec + n, cap - (size_t)n, "-%d", pt->width);
    int K = s->train->n_classes;
    for (int i = 0; i < s->test->n; i++)
        if (s->test->y[i] + 1 > K) K = s->test->y[i] + 1;
    if (n < (int)cap) n += snprintf(spec + n, cap - (size_t)n, "-%d:relu", K);
    if (pt->bayes == SK_BAYES_MCDROPOUT && n < (int)cap)
        snprintf(spec + n, cap - (size_t)n, ":dropout%g", (double)s->cfg.dropout);
}

static int train_posterior(const struct sk_sweep *s, const struct sk_sweep_point *pt, struct sk_posterior **out)
{
    const struct sk_sweep_config *o = &s->cfg;
    char spec[4096];
    spec_of(s, pt, spec, sizeof spec);
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m) return sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
    int rc = sk_model_record_data(m, o->data, NULL, 0, 0, s->train, SK_PREP_NONE);
    if (!rc) rc = sk_model_init(m, SK_INIT_HE_UNIFORM, pt->seed);
    if (rc) {
        sk_model_free(m);
        return rc;
    }
    struct sk_posterior *p = sk_bayes_new(m, (enum sk_bayes_method)pt->bayes);
    if (!p) {
        sk_model_free(m);
        return SK_ENOMEM;
    }
    struct epoch_ctx ec = { s, pt->index };
    struct sk_bayes_train_config bc = sk_bayes_train_defaults();
    bc.train = sk_train_defaults();
    bc.train.epochs = o->epochs;
    bc.train.batch = pt->batch;
    bc.train.seed = pt->seed;
    bc.train.opt = sk_optim_defaults((enum sk_optim_kind)(strcmp(pt->optimizer, "sam") ? sk_optim_kind_parse(pt->optimizer)
                                                                                       : SK_OPT_MOMENTUM));
    bc.train.opt.lr = pt->lr;
    if (!strcmp(pt->optimizer, "sam")) bc.train.opt.sam_rho = 0.05f;
    bc.train.on_epoch = on_epoch;
    bc.train.ctx = &ec;
    bc.members = o->members;
    if (pt->bayes == SK_BAYES_SGLD) {
        /* a warm start by the configuration's optimizer, then Langevin dynamics as compare runs it */
        int epochs = o->epochs < 2 ? 2 : o->epochs;
        long per_epoch = (s->train->n + pt->batch - 1) / pt->batch;
        bc.sgld_train = bc.train;
        bc.sgld_train.epochs = epochs;
        bc.sgld_train.opt = sk_optim_defaults(SK_OPT_SGD);
        bc.sgld_train.opt.lr = 0.01f;
        bc.sgld.burnin_epochs = 1;
        bc.sgld.n_keep = 20;
        bc.sgld.thin = (int)(per_epoch * (epochs - 1) / bc.sgld.n_keep);
        if (bc.sgld.thin < 1) bc.sgld.thin = 1;
    }
    struct sk_robust_config adv = sk_robust_defaults((enum sk_robust_kind)pt->adv, o->adv_eps > 0 ? o->adv_eps : o->eps);
    adv.clip_lo = o->clip_min;
    adv.clip_hi = o->clip_max;
    /* the guard holds out training rows: every configuration trains on the same rows */
    adv.guard = false;
    stage(s, pt->index, "train", -1);
    rc = sk_robust_train_bayes(p, &bc, pt->adv == SK_ROBUST_NONE ? NULL : &adv, s->train->x, s->train->y,
                               s->train->n);
    if (rc) {
        sk_bayes_free(p);
        return rc;
    }
    *out = p;
    return SK_OK;
}

/* The model of configuration index: loaded from cfg.dir when its file is
 * there, else trained (and saved there). */
static int get_posterior(const struct sk_sweep *s, const struct sk_sweep_point *pt, struct sk_posterior **out,
                         bool *loaded)
{
    char path[4096] = "";
    *loaded = false;
    if (s->cfg.dir) {
        mkdir(s->cfg.dir, 0777);
        snprintf(path, sizeof path, "%s/%016" PRIx64 ".safetensors", s->cfg.dir, s->hash[pt->index]);
        struct stat st;
        if (!stat(path, &st)) {
            stage(s, pt->index, "load", -1);
            *out = sk_bayes_load(path);
            if (!*out) return sk_last_error()[0] ? SK_EFORMAT : SK_ENOMEM;
            *loaded = true;
            return SK_OK;
        }
    }
    int rc = train_posterior(s, pt, out);
    if (!rc && path[0]) {
        rc = sk_bayes_save(*out, path);
        if (rc) {
            sk_bayes_free(*out);
            *out = NULL;
        }
    }
    return rc;
}

/* FNV-1a over every weight a posterior predicts with. */
static uint64_t weights_hash(const struct sk_posterior *p)
{
    const struct sk_model *m = p->model;
    uint64_t h = sk_model_weights_hash(m);
    size_t P = m->n_params;
    if (p->members) h = sk_sweep_fnv(h, p->members, sizeof(float) * P * (size_t)p->n_members);
    if (p->rho) h = sk_sweep_fnv(h, p->rho, sizeof(float) * P);
    size_t d1 = (size_t)p->ll_d1, k = (size_t)p->ll_k;
    if (p->ll_avec) h = sk_sweep_fnv(h, p->ll_avec, sizeof(float) * d1 * d1);
    if (p->ll_aval) h = sk_sweep_fnv(h, p->ll_aval, sizeof(float) * d1);
    if (p->ll_gvec) h = sk_sweep_fnv(h, p->ll_gvec, sizeof(float) * k * k);
    if (p->ll_gval) h = sk_sweep_fnv(h, p->ll_gval, sizeof(float) * k);
    if (p->ll_cov) h = sk_sweep_fnv(h, p->ll_cov, sizeof(float) * k * d1 * k * d1);
    h = sk_sweep_fnv(h, &p->temperature, sizeof p->temperature);
    return sk_sweep_fnv(h, &p->prior_precision, sizeof p->prior_precision);
}

static void num(cJSON *o, const char *k, double v)
{
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static int clean_measures(const struct sk_sweep *s, struct sk_posterior *p, const struct sk_sweep_point *pt, cJSON *row)
{
    const struct sk_sweep_config *o = &s->cfg;
    int nt = o->n_test > 0 && o->n_test < s->test->n ? o->n_test : s->test->n;
    int no = !s->ood ? 0 : o->n_ood > 0 && o->n_ood < s->ood->n ? o->n_ood : s->ood->n;
    stage(s, pt->index, "eval", -1);
    struct sk_bayes_report rep;
    int rc = sk_bayes_report(p, s->test->x, s->test->y, nt, no ? s->ood->x : NULL, no, o->samples, pt->seed, &rep);
    if (rc) return rc;
    int K = p->model->n_classes, n = s->train->n;
    float *pb = sk_malloc(sizeof(float) * (size_t)n * K);
    struct sk_metric_summary tr;
    if (!pb) rc = SK_ENOMEM;
    if (!rc) rc = sk_bayes_predict(p, s->train->x, n, o->samples, pt->seed + 1, pb, NULL);
    if (!rc) rc = sk_metric_summary(pb, s->train->y, n, K, &tr);
    sk_free(pb);
    if (!rc) {
        num(row, "train_acc", tr.accuracy);
        num(row, "train_loss", tr.nll);
        num(row, "test_acc", rep.clean.accuracy);
        num(row, "test_loss", rep.clean.nll);
        num(row, "gap_err", tr.accuracy - rep.clean.accuracy);
        num(row, "gap_loss", rep.clean.nll - tr.nll);
        num(row, "ece", rep.clean.ece);
        num(row, "brier", rep.clean.brier);
        num(row, "ood_auroc_entropy", no ? rep.ood[SK_SCORE_ENTROPY].auroc : NAN);
        num(row, "ood_auroc_maxprob", no ? rep.ood[SK_SCORE_MAXPROB].auroc : NAN);
        num(row, "ood_auroc_mi", no && rep.n_samples > 1 ? rep.ood[SK_SCORE_MI].auroc : NAN);
    }
    sk_bayes_report_free(&rep);
    return rc;
}

static int curvature_measures(const struct sk_sweep *s, struct sk_posterior *p, const struct sk_sweep_point *pt,
                              cJSON *row)
{
    const struct sk_sweep_config *o = &s->cfg;
    if (o->n_curv == 0) return SK_OK;
    stage(s, pt->index, "curvature", -1);
    struct sk_curvature_config cc = sk_curvature_defaults();
    int n = o->n_curv < s->train->n ? o->n_curv : s->train->n;
    cc.n = n;
    cc.probes = 10;
    cc.lanczos_steps = 20;
    cc.spread_sets = 0;
    cc.ascent_steps = 10;
    cc.pac_samples = 3;
    cc.pac_iters = 6;
    cc.gns_batch = n / 4 > 1 ? n / 4 : 1;
    cc.seed = pt->seed;
    struct sk_curvature_report r;
    int rc = sk_curvature_measures(p->model, s->train->x, s->train->y, n, NULL, NULL, 0, &cc, &r, NULL);
    if (rc) return rc;
    num(row, "lambda_max", r.eig[0]);
    num(row, "hessian_trace", r.trace);
    num(row, "eps_sharpness", r.eps_sharpness);
    num(row, "adaptive_sharpness", r.adaptive_sharpness);
    num(row, "pac_flatness", 1.0 / (r.pac_sigma * r.pac_sigma));
    num(row, "pac_flatness_mag", 1.0 / (r.pac_sigma_mag * r.pac_sigma_mag));
    num(row, "fisher_rao", r.fisher_rao);
    num(row, "log_spec_prod", log(r.spec_prod));
    num(row, "spec_sum", r.spec_sum);
    num(row, "frobenius_sq", r.frobenius_sq);
    num(row, "log_path_norm", log(r.path_norm));
    num(row, "margin_median", r.margin_median);
    num(row, "grad_noise_scale", r.gns_simple);
    return SK_OK;
}

static int attack_measures(const struct sk_sweep *s, struct sk_posterior *p, const struct sk_sweep_point *pt,
                           cJSON *row)
{
    const struct sk_sweep_config *o = &s->cfg;
    const char *names[3] = { "fgsm", "pgd", "suite" };
    enum sk_attack_kind kinds[3] = { SK_ATTACK_FGSM, SK_ATTACK_PGD, SK_ATTACK_SUITE };
    for (int a = 0; a < 3; a++) {
        int n = a < 2 ? o->n_adv : o->n_suite;
        if (n > s->test->n) n = s->test->n;
        /* the suite's DLR losses need four classes */
        if (a == 2 && p->model->n_classes < 4) n = 0;
        char key[48];
        if (n == 0) {
            const char *sfx[4] = { "acc", "ece", "nll", "conf" };
            for (int k = 0; k < 4; k++) {
                snprintf(key, sizeof key, "%s_%s", names[a], sfx[k]);
                num(row, key, NAN);
            }
            continue;
        }
        stage(s, pt->index, names[a], -1);
        struct sk_study_adv_cal_config ac = sk_study_adv_cal_defaults(kinds[a]);
        ac.attack.steps = a == 1 ? o->pgd_steps : a == 2 ? o->suite_steps : 0;
        ac.attack.queries = o->suite_queries;
        ac.attack.n_target_classes = 3;
        ac.attack.clip_min = o->clip_min;
        ac.attack.clip_max = o->clip_max;
        ac.attack.seed = pt->seed;
        ac.samples = o->samples;
        ac.attack_samples = o->attack_samples;
        ac.seed = pt->seed;
        struct sk_study_adv_cal r;
        int rc = sk_study_adv_calibration_bayes(p, &ac, &o->eps, 1, s->test->x, s->test->y, n, &r);
        if (rc) return rc;
        snprintf(key, sizeof key, "%s_acc", names[a]);
        num(row, key, r.adv.accuracy);
        snprintf(key, sizeof key, "%s_ece", names[a]);
        num(row, key, r.adv.ece);
        snprintf(key, sizeof key, "%s_nll", names[a]);
        num(row, key, r.adv.nll);
        snprintf(key, sizeof key, "%s_conf", names[a]);
        num(row, key, r.adv_conf);
    }
    return SK_OK;
}

/* IBP bounds hold for one network: the deterministic configurations only. */
static int certify_measures(const struct sk_sweep *s, struct sk_posterior *p, const struct sk_sweep_point *pt,
                            cJSON *row)
{
    const struct sk_sweep_config *o = &s->cfg;
    if (o->cert_eps <= 0 || p->method != SK_BAYES_DETERMINISTIC) {
        num(row, "ibp_cert_acc", NAN);
        return SK_OK;
    }
    stage(s, pt->index, "certify", -1);
    int n = o->n_adv < s->test->n ? o->n_adv : s->test->n;
    struct sk_certify_report r;
    int rc = sk_certify(p->model, SK_CERTIFY_IBP, s->test->x, s->test->y, n, o->cert_eps, o->clip_min, o->clip_max,
                        NULL, &r);
    if (!rc) num(row, "ibp_cert_acc", r.certified_acc);
    return rc;
}

static void add_config(const struct sk_sweep *s, const struct sk_sweep_point *pt, const struct sk_posterior *p,
                       cJSON *row)
{
    const struct sk_sweep_config *o = &s->cfg;
    char h[24];
    cJSON_AddNumberToObject(row, "index", (double)pt->index);
    sk_sweep_config_hash(s, pt->index, h);
    cJSON_AddStringToObject(row, "config_hash", h);
    snprintf(h, sizeof h, "%016" PRIx64, s->measure_hash);
    cJSON_AddStringToObject(row, "measure_hash", h);
    snprintf(h, sizeof h, "%016" PRIx64, weights_hash(p));
    cJSON_AddStringToObject(row, "weights_hash", h);
    cJSON_AddNumberToObject(row, "depth", pt->depth);
    cJSON_AddNumberToObject(row, "width", pt->width);
    cJSON_AddStringToObject(row, "optimizer", pt->optimizer);
    cJSON_AddNumberToObject(row, "batch", pt->batch);
    /* the float the run used, as the shortest decimal that reads back as it */
    char lr[32];
    snprintf(lr, sizeof lr, "%.9g", (double)pt->lr);
    for (int d = 1; d <= 9; d++) {
        char t[32];
        snprintf(t, sizeof t, "%.*g", d, (double)pt->lr);
        if (strtof(t, NULL) == pt->lr) {
            snprintf(lr, sizeof lr, "%s", t);
            break;
        }
    }
    cJSON_AddNumberToObject(row, "lr", strtod(lr, NULL));
    cJSON_AddNumberToObject(row, "seed", (double)pt->seed);
    cJSON_AddStringToObject(row, "adv", sk_robust_kind_name((enum sk_robust_kind)pt->adv));
    cJSON_AddStringToObject(row, "bayes", pt->bayes == SK_BAYES_DETERMINISTIC ? "none"
                                                                              : sk_bayes_method_name((enum sk_bayes_method)pt->bayes));
    cJSON_AddNumberToObject(row, "epochs", o->epochs);
    cJSON_AddNumberToObject(row, "n_train", s->train->n);
    cJSON_AddNumberToObject(row, "n_params", (double)p->model->n_params);
}

int sk_sweep_run_one(struct sk_sweep *s, long index, char **row_out)
{
    *row_out = NULL;
    struct sk_sweep_point pt;
    int rc = sk_sweep_point(&s->cfg.grid, index, &pt);
    if (rc) return rc;
    struct sk_posterior *p = NULL;
    bool loaded;
    if ((rc = get_posterior(s, &pt, &p, &loaded))) return rc;
    cJSON *row = cJSON_CreateObject();
    if (!row) {
        sk_bayes_free(p);
        return SK_ENOMEM;
    }
    add_config(s, &pt, p, row);
    if (!rc) rc = clean_measures(s, p, &pt, row);
    if (!rc) rc = curvature_measures(s, p, &pt, row);
    if (!rc) rc = attack_measures(s, p, &pt, row);
    if (!rc) rc = certify_measures(s, p, &pt, row);
    sk_bayes_free(p);
    if (!rc) {
        char *text = cJSON_PrintUnformatted(row);
        if (!text || !(*row_out = sk_strdup(text))) rc = SK_ENOMEM;
        cJSON_free(text);
    }
    cJSON_Delete(row);
    return rc;
}
