/* Stochastic-gradient Langevin dynamics: the training loop's gradient of the
 * mean cross-entropy, and a step hook that replaces the optimiser by a
 * Langevin step and keeps every thin-th weight vector after burn-in. */
#include "bayes/bayes_impl.h"

#include <math.h>
#include <string.h>

struct sgld_run {
    struct sk_bayes_sgld_config sc;
    float lr;          /* cfg.opt.lr */
    int n;             /* training rows */
    long cycle;        /* steps per cycle (0: constant step size) */
    double wd;         /* 1 / (n s^2): the prior's weight decay */
    uint64_t nkey;     /* stream SK_STREAM_SGLD of the seed; step t uses its child t */
    float *mem;        /* [n_keep][P]: a ring of the newest samples */
    float *xi;         /* [P] scratch */
};

/* w -= lr_t (grad + w / (n s^2)) - sqrt(2 lr_t T / n) xi, then keep w if it
 * is a sample; the count of samples kept is t->st.hook_count. */
static int sgld_update(void *ctx, struct sk_trainer *t)
{
    struct sgld_run *r = ctx;
    const struct sk_bayes_sgld_config *sc = &r->sc;
    size_t P = t->n_params;
    long step = t->st.step;
    double lr = r->lr;
    bool noise = true, sample_phase;
    if (r->cycle > 0) {
        long c = step % r->cycle;
        lr = r->lr / 2.0 * (cos(SK_PI * (double)c / r->cycle) + 1.0);
        noise = c >= r->cycle / 2; /* exploration first, then sampling */
        sample_phase = c >= r->cycle - r->cycle / 4;
    } else {
        sample_phase = t->st.epoch >= sc->burnin_epochs;
    }
    double ns = noise ? sqrt(2.0 * lr * sc->temperature / r->n) : 0.0;
    float *w = t->params, *xi = r->xi;
    const float *gr = t->grads;
    if (noise) sk_bayes_normals(sk_rng_derive(r->nkey, (uint64_t)step).key, xi, P);
    float flr = (float)lr, fwd = (float)(lr * r->wd), fns = noise ? (float)ns : 0.0f;
#pragma omp parallel for schedule(static) if (P > 65536)
    for (size_t i = 0; i < P; i++) w[i] -= flr * gr[i] + fwd * w[i] - (noise ? fns * xi[i] : 0.0f);
    if (sample_phase && (step + 1) % sc->thin == 0) {
        memcpy(r->mem + (size_t)(t->st.hook_count % sc->n_keep) * P, w, sizeof(float) * P);
        t->st.hook_count++;
    }
    return SK_OK;
}

static int sgld_check(const struct sk_posterior *p, const struct sk_train_config *cfg,
                      const struct sk_bayes_sgld_config *sc, const int *y, int n) {
    const struct sk_model *m = p->model;
    if (p->method != SK_BAYES_SGLD)
        return sk_error(SK_EINVAL, "sk_bayes_train_sgld: the posterior's method is %s", sk_bayes_method_name(p->method));
    if (cfg->epochs < 1 || cfg->batch < 1 || n < 1 || sc->n_keep < 1 || sc->thin < 1 || !(cfg->opt.lr > 0) ||
        !(sc->prior_sigma > 0) || !(sc->temperature >= 0))
        return sk_error(SK_EINVAL, "SGLD needs epochs, batch, data, n_keep, thin >= 1, lr > 0, prior sigma > 0 and "
                        "temperature >= 0 (got %d, %d, %d, %d, %d, %g, %g, %g)", cfg->epochs, cfg->batch, n,
                        sc->n_keep, sc->thin, cfg->opt.lr, sc->prior_sigma, sc->temperature);
    if (sc->burnin_epochs >= cfg->epochs && sc->cycles == 0)
        return sk_error(SK_EINVAL, "SGLD burn-in (%d epochs) leaves no epochs to sample from (%d)", sc->burnin_epochs,
                        cfg->epochs);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->n_classes)
            return sk_error(SK_EINVAL, "label %d of row %d is outside the model's %d classes", y[i], i, m->n_classes);
    return SK_OK;
}

int sk_bayes_train_sgld(struct sk_posterior *p, const struct sk_train_config *cfg,
                        const struct sk_bayes_sgld_config *sc, const float *x, const int *y, int n) {
    int rc = sgld_check(p, cfg, sc, y, n);
    if (rc) return rc;
    struct sk_model *m = p->model;
    p->sgld = *sc;
    size_t P = m->n_params;
    long total = (n + cfg->batch - 1) / cfg->batch * (long)cfg->epochs;
    struct sgld_run r = {
        .sc = *sc, .lr = cfg->opt.lr, .n = n, .cycle = sc->cycles > 0 ? (total + sc->cycles - 1) / sc->cycles : 0,
        .wd = 1.0 / ((double)n * sc->prior_sigma * sc->prior_sigma),
        .nkey = sk_rng_derive(sk_rng_new(cfg->seed).key, SK_STREAM_SGLD).key,
        .mem = sk_malloc(sizeof(float) * P * (size_t)sc->n_keep), .xi = sk_malloc(sizeof(float) * P),
    };
    struct sk_step_hook h = { .update = sgld_update, .ctx = &r, .n_state = 1,
                              .state = { { "skeptic.sgld.samples", r.mem, P * (size_t)sc->n_keep } } };
    /* every row trains, on the plain mean cross-entropy */
    struct sk_train_config c = *cfg;
    c.step = &h;
    c.val_split = 0;
    c.patience = 0;
    c.label_smoothing = 0;
    c.loss = NULL;
    c.on_grad = NULL;
    struct sk_trainer *t = NULL;
    if (!r.mem || !r.xi) rc = SK_ENOMEM;
    else if (!(t = sk_trainer_new(m, &c, x, y, n))) rc = sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
    if (!rc && c.resume) rc = sk_checkpoint_load(c.resume, t, NULL);
    if (!rc) rc = sk_trainer_run(t);
    long kept = t ? t->st.hook_count : 0;
    if (!rc && kept == 0)
        rc = sk_error(SK_EINVAL, "SGLD kept no samples: thinning %d is longer than the sampling phase", sc->thin);
    if (!rc) {
        sk_free(p->members);
        p->members = r.mem;
        p->n_members = kept < sc->n_keep ? (int)kept : sc->n_keep;
        r.mem = NULL;
    }
    sk_trainer_free(t);
    sk_free(r.mem);
    sk_free(r.xi);
    return rc;
}
