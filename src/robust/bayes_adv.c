/* Bayesian adversarial training: the posteriors of bayes/ trained against
 * the worst case, through the seams bayes/ offers (the minibatch hook of
 * Bayes by Backprop, the network trainer of sk_bayes_train), so bayes/
 * knows nothing of attacks.
 *
 * Variational posteriors, Madry style: every minibatch's inputs are
 * *replaced* by the points that an L-infinity PGD with EOT finds against the
 * current posterior's predictive. The attack: random start x0 + U(-eps, eps)
 * in the ball and the box, then k sign steps. Each step draws S weight sets
 * w_s = mu + sigma e_s (fresh e_s per step) and ascends the *mean
 * cross-entropy over the draws*,
 *   grad_x (1/S) sum_s CE(f(x; w_s), y)
 * (Athalye et al.'s EOT of the loss; the other standard choice, the CE of the
 * log of the mean probability, needs a second pass per draw to weight each
 * draw's gradient by p_s / pbar; the sign step makes the scale irrelevant).
 * S = adv->eot; with eot <= 1 the attack runs on the posterior mean mu (the
 * analogue of the eval-mode attack of a dropout model).
 *
 * Weight sampling goes through the model's graph, so the same attack serves
 * the MLP (trained by the local reparameterisation trick) and any other spec:
 * the local trick would give each row its own weight draw, which for an
 * attack on one row is the same distribution. */
#include "skeptic/robust.h"

#include <string.h>

#define VI_ADV_BATCH 256

struct vi_adv {
    struct sk_model *m;   /* borrowed */
    struct sk_robust_config a;
    struct sk_graph *g;   /* attack graph, no parameter gradients */
    float *w, *sig, *grad, *x0;
    int cap;
};

static void vi_adv_free(struct vi_adv *v)
{
    if (!v) return;
    sk_graph_free(v->g);
    sk_free(v->w);
    sk_free(v->sig);
    sk_free(v->grad);
    sk_free(v->x0);
    sk_free(v);
}

/* Check adv for VI (kinds pgd and fgsm) and allocate the attack's state for
 * minibatches of up to `batch` rows of model m (its spec only). */
static int vi_adv_new(struct vi_adv **out, struct sk_model *m, const struct sk_robust_config *adv, int batch)
{
    *out = NULL;
    int rc = sk_robust_check(adv);
    if (rc) return rc;
    if (adv->kind != SK_ROBUST_PGD && adv->kind != SK_ROBUST_FGSM)
        return sk_error(SK_EINVAL, "VI adversarial training supports adv.kind pgd and fgsm, not %s (TRADES, IBP and "
                        "fgsm-mix need a clean pass beside the adversarial one, which Bayes by Backprop does not make)",
                        sk_robust_kind_name(adv->kind));
    if (batch < 1) return sk_error(SK_EINVAL, "VI adversarial training: batch %d", batch);
    struct vi_adv *v = sk_calloc(1, sizeof *v);
    if (!v) return SK_ENOMEM;
    size_t P = m->n_params;
    v->m = m;
    v->a = *adv;
    v->cap = batch;
    v->g = sk_graph_new();
    v->w = sk_malloc(sizeof(float) * P);
    v->sig = sk_malloc(sizeof(float) * P);
    v->grad = sk_malloc(sizeof(float) * (size_t)batch * m->in_dim);
    v->x0 = sk_malloc(sizeof(float) * (size_t)batch * m->in_dim);
    if (!v->g || !v->w || !v->sig || !v->grad || !v->x0) {
        vi_adv_free(v);
        return SK_ENOMEM;
    }
    sk_graph_set_param_grads(v->g, false);
    *out = v;
    return SK_OK;
}

static inline float project(float u, float x0, float eps, bool box, float lo, float hi)
{
    u = u < x0 - eps ? x0 - eps : (u > x0 + eps ? x0 + eps : u);
    if (box) u = u < lo ? lo : (u > hi ? hi : u);
    return u;
}

/* PGD with EOT on n <= cap rows: x (n x D) clean, xa receives the result
 * (may alias x: the clean rows are copied first). v->sig must hold sigma. */
static int attack(struct vi_adv *v, const float *mu, float eps, const float *x, const int *y, int n, uint64_t key,
                  float *xa)
{
    struct sk_model *m = v->m;
    const struct sk_robust_config *a = &v->a;
    size_t P = m->n_params, nd = (size_t)n * m->in_dim;
    int steps = a->kind == SK_ROBUST_FGSM ? 1 : a->steps;
    int S = a->eot > 1 ? a->eot : 1;
    bool box = a->clip_lo < a->clip_hi, mean_only = a->eot <= 1;
    /* a given step size scales with the eps warm-up, as in adv_train.c */
    float step = a->step > 0 ? a->step * (a->eps > 0 ? eps / a->eps : 1.0f)
                             : (steps == 1 ? 1.25f * eps : 2.5f * eps / (float)steps);
    memcpy(v->x0, x, sizeof(float) * nd);
    const float *x0 = v->x0;
    uint64_t rk = sk_rng_derive(key, 0).key;
    for (size_t i = 0; i < nd; i++)
        xa[i] = project(x0[i] + eps * (2.0f * sk_rng_uniform_at(rk, i) - 1.0f), x0[i], eps, box, a->clip_lo,
                        a->clip_hi);
    struct sk_model view = *m;
    int shape[2] = { n, m->in_dim };
    for (int s = 0; s < steps; s++) {
        memset(v->grad, 0, sizeof(float) * nd);
        for (int e = 0; e < S; e++) {
            /* the mean weights, or a fresh draw per step and per EOT sample */
            if (mean_only) {
                view.params = (float *)mu;
            } else {
                sk_bayes_vi_sample(mu, v->sig, sk_rng_derive(key, 1 + (uint64_t)s * (uint64_t)S + (uint64_t)e).key,
                                   v->w, P);
                view.params = v->w;
            }
            sk_graph_reset(v->g);
            int xin = sk_graph_input(v->g, xa, 2, shape, true);
            int z = sk_model_forward(&view, v->g, xin, SK_MODE_EVAL, 0);
            int L = z < 0 ? z : sk_loss_cross_entropy(v->g, z, y, 0.0f);
            if (L < 0) return L;
            int rc = sk_graph_backward(v->g, L, NULL);
            if (rc) return rc;
            const float *dx = sk_graph_grad(v->g, xin);
            for (size_t i = 0; i < nd; i++) v->grad[i] += dx[i];
        }
        for (size_t i = 0; i < nd; i++) {
            float d = v->grad[i] > 0 ? step : (v->grad[i] < 0 ? -step : 0.0f);
            xa[i] = project(xa[i] + d, x0[i], eps, box, a->clip_lo, a->clip_hi);
        }
    }
    return SK_OK;
}

/* The minibatch hook of Bayes by Backprop (sk_bayes_vi_batch_fn): the rows
 * replaced by attack() at the eps of the warm-up. */
static int vi_adv_batch(void *ctx, const float *mu, const float *rho, float *xb, const int *yb, int n, double progress,
                        uint64_t key)
{
    struct vi_adv *v = ctx;
    const struct sk_robust_config *a = &v->a;
    if (n > v->cap) return sk_error(SK_EINVAL, "VI adversarial training: batch %d larger than %d", n, v->cap);
    float f = 1.0f;
    if (a->eps_warmup_epochs > 0) {
        double r = progress / a->eps_warmup_epochs;
        f = (float)(r < 0 ? 0 : r > 1 ? 1 : r);
    }
    float eps = a->eps * f;
    if (!(eps > 0)) return SK_OK; /* warm-up start: the clean batch */
    if (a->eot > 1) sk_bayes_vi_sigma(rho, v->sig, v->m->n_params);
    /* a child of the step's noise key that the VI step itself does not use */
    return attack(v, mu, eps, xb, yb, n, sk_rng_derive(key, (0xAD7ull << 32) | SK_STREAM_ATTACK).key, xb);
}

int sk_robust_train_vi(struct sk_posterior *p, const struct sk_train_config *cfg, const struct sk_bayes_vi_config *vc,
                       const struct sk_robust_config *adv, const float *x, const int *y, int n)
{
    if (!adv || adv->kind == SK_ROBUST_NONE) return sk_bayes_train_vi(p, cfg, vc, x, y, n);
    struct vi_adv *v;
    /* a batch below 1 is sk_bayes_train_vi's to refuse */
    int rc = vi_adv_new(&v, p->model, adv, cfg->batch > 0 ? cfg->batch : 1);
    if (rc) return rc;
    struct sk_bayes_vi_config c = *vc;
    c.batch = vi_adv_batch;
    c.batch_ctx = v;
    rc = sk_bayes_train_vi(p, cfg, &c, x, y, n);
    vi_adv_free(v);
    return rc;
}

/* The network trainer of sk_bayes_train (sk_bayes_net_fn), ctx = the adv config. */
static int robust_net(void *ctx, struct sk_model *m, const struct sk_train_config *cfg, const float *x, const int *y,
                      int n)
{
    return sk_robust_train(m, cfg, ctx, x, y, n, NULL);
}

int sk_robust_train_bayes(struct sk_posterior *p, const struct sk_bayes_train_config *cfg,
                          const struct sk_robust_config *adv, const float *x, const int *y, int n)
{
    if (!adv || adv->kind == SK_ROBUST_NONE) return sk_bayes_train(p, cfg, x, y, n);
    if (p->method == SK_BAYES_VI) return sk_robust_train_vi(p, &cfg->train, &cfg->vi, adv, x, y, n);
    int rc = sk_robust_check(adv);
    if (rc) return rc;
    struct sk_bayes_train_config c = *cfg;
    c.train_net = robust_net;
    c.net_ctx = (void *)adv;
    return sk_bayes_train(p, &c, x, y, n);
}

int sk_robust_train_ensemble(struct sk_posterior *p, int M, enum sk_init init, const struct sk_train_config *cfg,
                             const struct sk_robust_config *adv, const float *x, const int *y, int n)
{
    if (p->method != SK_BAYES_ENSEMBLE)
        return sk_error(SK_EINVAL, "sk_robust_train_ensemble: the posterior's method is %s",
                        sk_bayes_method_name(p->method));
    struct sk_bayes_train_config c = sk_bayes_train_defaults();
    c.train = *cfg;
    c.members = M;
    c.member_init = init;
    return sk_robust_train_bayes(p, &c, adv, x, y, n);
}

int sk_robust_vi_perturb(struct sk_posterior *p, const struct sk_robust_config *adv, const float *x, const int *y,
                         int n, uint64_t seed, float *xadv)
{
    struct sk_model *m = p->model;
    if (p->method != SK_BAYES_VI || !p->rho)
        return sk_error(SK_EINVAL, "sk_robust_vi_perturb: needs a trained vi posterior (method %s%s)",
                        sk_bayes_method_name(p->method), p->rho ? "" : ", no rho");
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->n_classes)
            return sk_error(SK_EINVAL, "label %d of row %d is outside the model's %d classes", y[i], i, m->n_classes);
    struct vi_adv *v;
    int rc = vi_adv_new(&v, m, adv, n < VI_ADV_BATCH ? n : VI_ADV_BATCH);
    if (rc) return rc;
    sk_bayes_vi_sigma(p->rho, v->sig, m->n_params);
    uint64_t key = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_ATTACK).key;
    size_t D = (size_t)m->in_dim;
    for (int i = 0; i < n && !rc; i += VI_ADV_BATCH) {
        int nb = n - i < VI_ADV_BATCH ? n - i : VI_ADV_BATCH;
        rc = attack(v, m->params, adv->eps, x + (size_t)i * D, y + i, nb, sk_rng_derive(key, (uint64_t)i).key,
                    xadv + (size_t)i * D);
    }
    vi_adv_free(v);
    return rc;
}
