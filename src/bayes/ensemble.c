/* Deep ensembles and stochastic-gradient Langevin dynamics: posteriors that
 * are a set of weight vectors of one spec. */
#include "bayes/bayes_impl.h"
#include "skeptic/robust.h"

#include <math.h>
#include <string.h>

int sk_bayes_train_ensemble(struct sk_posterior *p, int M, enum sk_init init, const struct sk_train_config *cfg,
                            const float *x, const int *y, int n)
{
    return sk_bayes_train_ensemble_adv(p, M, init, cfg, NULL, x, y, n);
}

int sk_bayes_train_ensemble_adv(struct sk_posterior *p, int M, enum sk_init init, const struct sk_train_config *cfg,
                                const struct sk_adv_config *adv, const float *x, const int *y, int n)
{
    struct sk_model *m = p->model;
    if (p->method != SK_BAYES_ENSEMBLE)
        return sk_error(SK_EINVAL, "sk_bayes_train_ensemble: the posterior's method is %s", sk_bayes_method_name(p->method));
    if (M < 1 || M > 1000) return sk_error(SK_EINVAL, "an ensemble needs 1 to 1000 members, got %d", M);
    if (m->n_buffers > 0)
        return sk_error(SK_EINVAL, "ensembles of models with batch norm are not supported (members would share "
                        "running statistics); use a spec without 'bn'");
    if (adv && adv->kind != SK_ADV_NONE) {
        int rc = sk_adv_check(adv);
        if (rc) return rc;
    }
    size_t P = m->n_params;
    float *mem = sk_malloc(sizeof(float) * P * (size_t)M);
    if (!mem) return SK_ENOMEM;
    uint64_t ek = sk_rng_derive(sk_rng_new(cfg->seed).key, SK_STREAM_ENSEMBLE).key;
    int rc = SK_OK;
    for (int i = 0; i < M && !rc; i++) {
        uint64_t seed = sk_rng_derive(ek, (uint64_t)i).key;
        struct sk_train_config c = *cfg;
        c.seed = seed;
        if ((rc = sk_model_init(m, init, seed))) break;
        /* each member is its own adversarial training run (own seed, own guard) */
        if ((rc = adv && adv->kind != SK_ADV_NONE ? sk_adv_train(m, &c, adv, x, y, n, NULL) : sk_train(m, &c, x, y, n)))
            break;
        memcpy(mem + (size_t)i * P, m->params, sizeof(float) * P);
    }
    if (rc) {
        sk_free(mem);
        return rc;
    }
    sk_free(p->members);
    p->members = mem;
    p->n_members = M;
    memcpy(m->params, mem, sizeof(float) * P);
    return SK_OK;
}

int sk_bayes_train_sgld(struct sk_posterior *p, const struct sk_train_config *cfg, const struct sk_sgld_config *sc,
                        const float *x, const int *y, int n)
{
    struct sk_model *m = p->model;
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
    p->sgld = *sc;
    size_t P = m->n_params;
    int B = cfg->batch, D = m->in_dim;
    long per_epoch = (n + B - 1) / B, total = per_epoch * cfg->epochs;
    long cycle = sc->cycles > 0 ? (total + sc->cycles - 1) / sc->cycles : 0;
    float *mem = sk_malloc(sizeof(float) * P * (size_t)sc->n_keep);
    float *xb = sk_malloc(sizeof(float) * (size_t)B * D), *xi = sk_malloc(sizeof(float) * P);
    int *yb = sk_malloc(sizeof(int) * (size_t)B), *order = sk_malloc(sizeof(int) * (size_t)n);
    struct sk_graph *g = sk_graph_new();
    int rc = SK_ENOMEM, kept = 0;
    if (!mem || !xb || !xi || !yb || !order || !g) goto out;
    rc = SK_OK;
    uint64_t key = sk_rng_new(cfg->seed).key;
    uint64_t okey = sk_rng_derive(key, SK_STREAM_ORDER).key, nkey = sk_rng_derive(key, SK_STREAM_SGLD).key;
    uint64_t dkey = sk_rng_derive(key, SK_STREAM_DROPOUT).key;
    double wd = 1.0 / ((double)n * sc->prior_sigma * sc->prior_sigma);
    long step = 0;
    for (int ep = 0; ep < cfg->epochs && !rc; ep++) {
        struct sk_rng r = sk_rng_derive(okey, (uint64_t)ep);
        for (int i = 0; i < n; i++) order[i] = i;
        sk_rng_shuffle(&r, order, n);
        double t0 = sk_now(), lsum = 0;
        long seen = 0;
        for (long bi = 0; bi < per_epoch; bi++, step++) {
            int lo = (int)(bi * B), nb = n - lo < B ? n - lo : B;
            for (int i = 0; i < nb; i++) {
                memcpy(xb + (size_t)i * D, x + (size_t)order[lo + i] * D, sizeof(float) * D);
                yb[i] = y[order[lo + i]];
            }
            float loss;
            if ((rc = sk_model_loss_grad(m, g, xb, yb, nb, SK_MODE_TRAIN, sk_rng_derive(dkey, (uint64_t)step).key,
                                         &loss)))
                break;
            if (!isfinite(loss)) {
                rc = sk_error(SK_ENONFINITE, "SGLD loss became %g at epoch %d; lower the step size (cfg.opt.lr)", loss, ep + 1);
                break;
            }
            double lr = cfg->opt.lr;
            bool noise = true, sample_phase;
            if (cycle > 0) {
                long t = step % cycle;
                lr = cfg->opt.lr / 2.0 * (cos(SK_PI * (double)t / cycle) + 1.0);
                noise = t >= cycle / 2;           /* exploration first, then sampling */
                sample_phase = t >= cycle - cycle / 4;
            } else {
                sample_phase = ep >= sc->burnin_epochs;
            }
            double ns = noise ? sqrt(2.0 * lr * sc->temperature / n) : 0.0;
            float *w = m->params;
            const float *gr = m->grads;
            if (noise) sk_bayes_normals(sk_rng_derive(nkey, (uint64_t)step).key, xi, P);
            float flr = (float)lr, fwd = (float)(lr * wd), fns = noise ? (float)ns : 0.0f;
#pragma omp parallel for schedule(static) if (P > 65536)
            for (size_t i = 0; i < P; i++) w[i] -= flr * gr[i] + fwd * w[i] - (noise ? fns * xi[i] : 0.0f);
            if (sample_phase && (step + 1) % sc->thin == 0) {
                /* a ring: the newest n_keep samples */
                memcpy(mem + (size_t)(kept % sc->n_keep) * P, w, sizeof(float) * P);
                kept++;
            }
            lsum += (double)loss * nb;
            seen += nb;
            double el = sk_now() - t0;
            if (cfg->on_batch) cfg->on_batch(cfg->ctx, ep, (int)bi + 1, (int)per_epoch, loss, seen / (el > 0 ? el : 1e-9));
        }
        if (rc) break;
        if (cfg->on_epoch) {
            struct sk_epoch_metrics em = { 0 };
            em.epoch = ep;
            em.train_loss = lsum / (seen ? seen : 1);
            em.train_acc = em.val_loss = em.val_acc = NAN;
            em.lr = cfg->opt.lr;
            em.seconds = sk_now() - t0;
            em.samples_per_s = seen / (em.seconds > 0 ? em.seconds : 1e-9);
            if (cfg->on_epoch(cfg->ctx, &em)) break;
        }
    }
    if (!rc && kept == 0)
        rc = sk_error(SK_EINVAL, "SGLD kept no samples: thinning %d is longer than the sampling phase", sc->thin);
    if (!rc) {
        sk_free(p->members);
        p->members = mem;
        p->n_members = kept < sc->n_keep ? kept : sc->n_keep;
        mem = NULL;
    }
out:
    sk_free(mem);
    sk_free(xb);
    sk_free(xi);
    sk_free(yb);
    sk_free(order);
    sk_graph_free(g);
    return rc;
}
