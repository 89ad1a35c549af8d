/* Calibration under attack: the metrics of a predictive on adversarial
 * inputs, along a list of eps (see study.h). */
#include <math.h>
#include <string.h>

#include "skeptic/study.h"

struct sk_study_adv_cal_config sk_study_adv_cal_defaults(enum sk_attack_kind kind)
{
    struct sk_study_adv_cal_config c;
    memset(&c, 0, sizeof c);
    c.attack = sk_attack_defaults(kind, SK_NORM_LINF, 0);
    /* the audits judge one attack's honesty and print warnings; a curve
     * of calibration figures has no place for them */
    c.attack.audit = false;
    c.samples = 20;
    c.attack_samples = 10;
    return c;
}

/* The classifier's own probabilities: exp of log_probs, averaged over
 * several calls when it is stochastic (one call is one noisy draw). */
struct own_pred {
    struct sk_classifier *c;
    int calls;
};

static int own_predict(void *ctx, const float *x, int n, float *probs)
{
    const struct own_pred *o = ctx;
    struct sk_classifier *c = o->c;
    int K = c->n_classes, B = 256;
    float *lp = sk_malloc(sizeof(float) * (size_t)B * K);
    if (!lp) return SK_ENOMEM;
    memset(probs, 0, sizeof(float) * (size_t)n * K);
    int rc = SK_OK;
    for (int r = 0; r < o->calls && !rc; r++)
        for (int i = 0; i < n && !rc; i += B) {
            int b = n - i < B ? n - i : B;
            if ((rc = c->log_probs(c->self, x + (size_t)i * c->in_dim, b, lp))) break;
            c->n_forward += b;
            float *p = probs + (size_t)i * K;
            for (size_t j = 0; j < (size_t)b * K; j++) p[j] += expf(lp[j]);
        }
    if (!rc && o->calls > 1)
        for (size_t j = 0; j < (size_t)n * K; j++) probs[j] /= (float)o->calls;
    sk_free(lp);
    return rc;
}

static double mean_conf(const float *p, int n, int K)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        float m = p[(size_t)i * K];
        for (int k = 1; k < K; k++) m = fmaxf(m, p[(size_t)i * K + k]);
        s += m;
    }
    return n > 0 ? s / n : NAN;
}

static double mean_entropy(const float *p, int n, int K, float *h)
{
    sk_entropy_rows(p, n, K, h);
    double s = 0;
    for (int i = 0; i < n; i++) s += h[i];
    return n > 0 ? s / n : NAN;
}

static int argmax(const float *p, int K)
{
    int b = 0;
    for (int k = 1; k < K; k++)
        if (p[k] > p[b]) b = k;
    return b;
}

static int check(const struct sk_study_adv_cal_config *cfg, const float *eps, int n_eps, const float *x, const int *y,
                 int n)
{
    if (!cfg || !eps || n_eps < 1 || n < 1 || !x || !y)
        return sk_error(SK_EINVAL, "calibration under attack: needs a config, at least one eps and one row");
    for (int e = 0; e < n_eps; e++) {
        if (!(eps[e] >= 0) || !isfinite(eps[e]))
            return sk_error(SK_EINVAL, "calibration under attack: adv_cal.eps[%d] = %g must be finite and >= 0", e,
                            eps[e]);
        if (e > 0 && eps[e] < eps[e - 1])
            return sk_error(SK_EINVAL, "calibration under attack: adv_cal.eps must ascend (eps[%d] = %g after %g)", e,
                            eps[e], eps[e - 1]);
    }
    return SK_OK;
}

int sk_study_adv_calibration(struct sk_classifier *c, const struct sk_study_predictor *pred,
                             const struct sk_study_adv_cal_config *cfg, const float *eps, int n_eps, const float *x,
                             const int *y, int n, struct sk_study_adv_cal *out)
{
    int rc = check(cfg, eps, n_eps, x, y, n);
    if (rc) return rc;
    if (!c || !out) return sk_error(SK_EINVAL, "calibration under attack: NULL classifier or output");
    int D = c->in_dim, K = c->n_classes;
    struct own_pred own = { c, 1 };
    if (c->stochastic) {
        int S = c->n_samples > 0 ? c->n_samples : 1;
        own.calls = (cfg->attack.verdict_samples + S - 1) / S;
        if (own.calls < 2) own.calls = 2;
    }
    struct sk_study_predictor p = pred ? *pred : (struct sk_study_predictor){ own_predict, &own };
    float *pc = sk_malloc(sizeof(float) * (size_t)n * K), *pa = sk_malloc(sizeof(float) * (size_t)n * K);
    float *pn = sk_malloc(sizeof(float) * (size_t)n * K), *h = sk_malloc(sizeof(float) * (size_t)n);
    float *xa = sk_malloc(sizeof(float) * (size_t)n * D), *xn = sk_malloc(sizeof(float) * (size_t)n * D);
    if (!pc || !pa || !pn || !h || !xa || !xn) {
        rc = SK_ENOMEM;
        goto out;
    }
    double t0 = sk_now();
    struct sk_metric_summary clean;
    if ((rc = p.fn(p.ctx, x, n, pc)) || (rc = sk_metric_summary(pc, y, n, K, &clean))) goto out;
    double clean_conf = mean_conf(pc, n, K);
    /* xa / pa: the adversarial rows so far and their probabilities */
    memcpy(xa, x, sizeof(float) * (size_t)n * D);
    memcpy(pa, pc, sizeof(float) * (size_t)n * K);
    for (int e = 0; e < n_eps; e++) {
        struct sk_study_adv_cal *o = &out[e];
        memset(o, 0, sizeof *o);
        double te = sk_now();
        long g0 = c->n_backward;
        if (eps[e] > 0) {
            struct sk_attack_config ac = cfg->attack;
            ac.eps = eps[e];
            if ((rc = sk_attack_run(c, &ac, x, y, NULL, n, xn, NULL))) goto out;
            if ((rc = p.fn(p.ctx, xn, n, pn))) goto out;
            for (int i = 0; i < n; i++) {
                bool old_wrong = argmax(pa + (size_t)i * K, K) != y[i];
                bool new_wrong = argmax(pn + (size_t)i * K, K) != y[i];
                if (old_wrong && !new_wrong) continue;
                memcpy(xa + (size_t)i * D, xn + (size_t)i * D, sizeof(float) * D);
                memcpy(pa + (size_t)i * K, pn + (size_t)i * K, sizeof(float) * K);
            }
        }
        o->eps = eps[e];
        o->n = n;
        o->clean = clean;
        o->clean_conf = clean_conf;
        if ((rc = sk_metric_summary(pa, y, n, K, &o->adv))) goto out;
        o->adv_conf = mean_conf(pa, n, K);
        o->adv_entropy = mean_entropy(pa, n, K, h);
        o->grad_evals = c->n_backward - g0;
        o->seconds = sk_now() - te + (e == 0 ? te - t0 : 0);
    }
out:
    sk_free(pc);
    sk_free(pa);
    sk_free(pn);
    sk_free(h);
    sk_free(xa);
    sk_free(xn);
    return rc;
}

struct bayes_pred {
    struct sk_posterior *p;
    int S;
    uint64_t seed;
};

static int bayes_predict(void *ctx, const float *x, int n, float *probs)
{
    const struct bayes_pred *b = ctx;
    return sk_bayes_predict(b->p, x, n, b->S, b->seed, probs, NULL);
}

int sk_study_adv_calibration_bayes(struct sk_posterior *p, const struct sk_study_adv_cal_config *cfg,
                                   const float *eps, int n_eps, const float *x, const int *y, int n,
                                   struct sk_study_adv_cal *out)
{
    int rc = check(cfg, eps, n_eps, x, y, n);
    if (rc) return rc;
    if (!p) return sk_error(SK_EINVAL, "calibration under attack: NULL posterior");
    if (cfg->samples < 1)
        return sk_error(SK_EINVAL, "calibration under attack: adv_cal.samples %d must be >= 1", cfg->samples);
    if (cfg->attack_samples < 1)
        return sk_error(SK_EINVAL, "calibration under attack: adv_cal.attack_samples %d must be >= 1",
                        cfg->attack_samples);
    struct sk_classifier *c = sk_bayes_classifier(p, cfg->attack_samples, cfg->seed + 101);
    if (!c) return sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
    struct bayes_pred bp = { p, cfg->samples, cfg->seed };
    struct sk_study_predictor pred = { bayes_predict, &bp };
    rc = sk_study_adv_calibration(c, &pred, cfg, eps, n_eps, x, y, n, out);
    sk_classifier_free(c);
    return rc;
}
