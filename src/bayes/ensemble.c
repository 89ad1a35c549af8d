/* Deep ensembles: M members of one spec, each trained from its own seed by
 * the one training loop (sk_train, or the caller's network trainer). */
#include "bayes/bayes_impl.h"

#include <string.h>

int sk_bayes_train_ensemble_with(struct sk_posterior *p, int M, enum sk_init init, const struct sk_train_config *cfg,
                                 sk_bayes_net_fn net, void *net_ctx, const float *x, const int *y, int n)
{
    struct sk_model *m = p->model;
    if (p->method != SK_BAYES_ENSEMBLE)
        return sk_error(SK_EINVAL, "sk_bayes_train_ensemble: the posterior's method is %s", sk_bayes_method_name(p->method));
    if (M < 1 || M > 1000) return sk_error(SK_EINVAL, "an ensemble needs 1 to 1000 members, got %d", M);
    if (cfg->resume)
        return sk_error(SK_EINVAL, "an ensemble does not resume from one checkpoint (cfg.resume): each member is a "
                        "run of its own");
    if (m->n_buffers > 0)
        return sk_error(SK_EINVAL, "ensembles of models with batch norm are not supported (members would share "
                        "running statistics); use a spec without 'bn'");
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
        /* each member is a training run of its own (own seed; adversarial training: own guard) */
        if ((rc = net ? net(net_ctx, m, &c, x, y, n) : sk_train(m, &c, x, y, n))) break;
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

int sk_bayes_train_ensemble(struct sk_posterior *p, int M, enum sk_init init, const struct sk_train_config *cfg,
                            const float *x, const int *y, int n)
{
    return sk_bayes_train_ensemble_with(p, M, init, cfg, NULL, NULL, x, y, n);
}
