/* One entry for training a posterior by any method: the switch that
 * `skeptic train --method` and `skeptic compare` share. */
#include "bayes/bayes_impl.h"

struct sk_bayes_train_config sk_bayes_train_defaults(void)
{
    struct sk_bayes_train_config c = { 0 };
    c.train = sk_train_defaults();
    c.sgld_train = sk_train_defaults();
    c.vi = sk_bayes_vi_defaults();
    c.members = 5;
    c.member_init = SK_INIT_HE_UNIFORM;
    c.sgld = sk_bayes_sgld_defaults();
    c.laplace = sk_bayes_laplace_defaults();
    return c;
}

/* The network itself, by cfg->train (and cfg->train_net when given). */
static int train_net(struct sk_model *m, const struct sk_bayes_train_config *cfg, const float *x, const int *y, int n)
{
    if (cfg->pretrained) return SK_OK;
    if (cfg->train_net) return cfg->train_net(cfg->net_ctx, m, &cfg->train, x, y, n);
    return sk_train(m, &cfg->train, x, y, n);
}

int sk_bayes_train(struct sk_posterior *p, const struct sk_bayes_train_config *cfg, const float *x, const int *y, int n)
{
    struct sk_model *m = p->model;
    int rc;
    switch (p->method) {
    case SK_BAYES_VI: return sk_bayes_train_vi(p, &cfg->train, &cfg->vi, x, y, n);
    case SK_BAYES_ENSEMBLE:
        return sk_bayes_train_ensemble_with(p, cfg->members, cfg->member_init, &cfg->train, cfg->train_net,
                                            cfg->net_ctx, x, y, n);
    case SK_BAYES_SGLD:
        rc = train_net(m, cfg, x, y, n);
        return rc ? rc : sk_bayes_train_sgld(p, &cfg->sgld_train, &cfg->sgld, x, y, n);
    case SK_BAYES_LAPLACE:
        rc = train_net(m, cfg, x, y, n);
        return rc ? rc : sk_bayes_fit_laplace(p, &cfg->laplace, x, y, n, cfg->val_x, cfg->val_y, cfg->n_val);
    default: return train_net(m, cfg, x, y, n); /* deterministic, mc-dropout */
    }
}
