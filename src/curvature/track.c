/* Training-dynamics probes: the curvature, gradient noise and norms of a
 * model at its current weights, on fixed subsets of the training and test
 * rows, for a log written while it trains. */
#include "curvature/curvature_impl.h"

#include <math.h>
#include <string.h>

/* The subsets' stream (a child of the caller's seed), away from the ids of
 * curvature_impl.h. */
#define TRACK_STREAM 0x63750201u

struct sk_curvature_track {
    struct sk_model *m;
    struct sk_curvature_track_config cfg;
    float *x, *xt; /* the subsets, n x in_dim and nt x in_dim */
    int *y, *yt;
    int n, nt;
    float *g;      /* n_params scratch */
    long n_probes; /* start vectors and probes change from probe to probe */
};

struct sk_curvature_track_config sk_curvature_track_defaults(void)
{
    struct sk_curvature_track_config c = { 0 };
    c.n = 1000;
    c.lanczos_steps = 20;
    c.probes = 20;
    c.gns_batch = 128;
    c.seed = 42;
    return c;
}

void sk_curvature_track_free(struct sk_curvature_track *tr)
{
    if (!tr) return;
    sk_free(tr->x);
    sk_free(tr->xt);
    sk_free(tr->y);
    sk_free(tr->yt);
    sk_free(tr->g);
    sk_free(tr);
}

/* k rows of a seeded permutation of n (k <= n) into xo, yo. */
static int pick(uint64_t key, const float *x, const int *y, int n, int k, int in_dim, float *xo, int *yo)
{
    int *idx = sk_malloc(sizeof(int) * (size_t)n);
    if (!idx) return SK_ENOMEM;
    for (int i = 0; i < n; i++) idx[i] = i;
    struct sk_rng r = sk_rng_derive(key, 0);
    sk_rng_shuffle(&r, idx, n);
    sk_curv_gather(x, y, in_dim, idx, k, xo, yo);
    sk_free(idx);
    return SK_OK;
}

struct sk_curvature_track *sk_curvature_track_new(struct sk_model *m, const float *x, const int *y, int n,
                                                  const float *xt, const int *yt, int nt,
                                                  const struct sk_curvature_track_config *cfg)
{
    if (cfg->n < 2 || cfg->lanczos_steps < 1 || cfg->probes < 2 || cfg->gns_batch < 1) {
        sk_error(SK_EINVAL, "cfg.n (%d) must be >= 2, cfg.lanczos_steps (%d) >= 1, cfg.probes (%d) >= 2, "
                 "cfg.gns_batch (%d) >= 1", cfg->n, cfg->lanczos_steps, cfg->probes, cfg->gns_batch);
        return NULL;
    }
    if (n < 2) {
        sk_error(SK_EINVAL, "tracking needs at least 2 training rows (got %d)", n);
        return NULL;
    }
    struct sk_curvature_track *tr = sk_calloc(1, sizeof *tr);
    if (!tr) return NULL;
    tr->m = m;
    tr->cfg = *cfg;
    tr->n = cfg->n < n ? cfg->n : n;
    tr->nt = nt > 0 ? (cfg->n < nt ? cfg->n : nt) : 0;
    size_t D = (size_t)m->in_dim;
    tr->x = sk_malloc(sizeof(float) * D * (size_t)tr->n);
    tr->y = sk_malloc(sizeof(int) * (size_t)tr->n);
    tr->xt = sk_malloc(sizeof(float) * D * (size_t)(tr->nt + 1));
    tr->yt = sk_malloc(sizeof(int) * (size_t)(tr->nt + 1));
    tr->g = sk_malloc(sizeof(float) * (m->n_params + 1));
    uint64_t key = sk_rng_derive(sk_rng_new(cfg->seed).key, TRACK_STREAM).key;
    int rc = !tr->x || !tr->y || !tr->xt || !tr->yt || !tr->g ? SK_ENOMEM : SK_OK;
    if (!rc) rc = pick(sk_rng_derive(key, 1).key, x, y, n, tr->n, m->in_dim, tr->x, tr->y);
    if (!rc && tr->nt > 0) rc = pick(sk_rng_derive(key, 2).key, xt, yt, nt, tr->nt, m->in_dim, tr->xt, tr->yt);
    if (rc) {
        sk_curvature_track_free(tr);
        return NULL;
    }
    return tr;
}

int sk_curvature_track_probe(struct sk_curvature_track *tr, struct sk_curvature_track_point *p)
{
    struct sk_model *m = tr->m;
    const struct sk_curvature_track_config *c = &tr->cfg;
    double t0 = sk_now();
    size_t P = m->n_params;
    uint64_t seed = sk_rng_derive(c->seed, (uint64_t)tr->n_probes++).key;
    memset(p, 0, sizeof *p);
    p->test_loss = p->test_acc = p->b_simple = NAN;
    struct sk_curvature_loss *L = sk_curvature_loss_model(m, tr->x, tr->y, tr->n, NULL);
    if (!L) return sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
    double loss;
    int rc = L->value_grad(L->ctx, &loss, tr->g);
    if (!rc) {
        double gs = 0, ws = 0;
        for (size_t i = 0; i < P; i++) {
            gs += (double)tr->g[i] * tr->g[i];
            ws += (double)m->params[i] * m->params[i];
        }
        p->grad_norm = sqrt(gs);
        p->weight_norm = sqrt(ws);
    }
    struct sk_curvature_op H = sk_curvature_loss_op(L);
    struct sk_curvature_lanczos_config lc = sk_curvature_lanczos_defaults();
    lc.k = 1;
    lc.max_steps = (size_t)c->lanczos_steps < P ? c->lanczos_steps : (int)P;
    lc.seed = seed;
    if (!rc) rc = sk_curvature_lanczos(&H, &lc, &p->lambda_max, &p->lambda_resid, NULL, NULL);
    if (!rc) rc = sk_curvature_trace(&H, c->probes, 0, seed, &p->trace, &p->trace_se, NULL, NULL);
    sk_curvature_loss_free(L);
    if (!rc && tr->n / c->gns_batch >= 2) {
        double ts, g2;
        rc = sk_curvature_noise_scale(m, tr->x, tr->y, tr->n, c->gns_batch, seed, &p->b_simple, &ts, &g2);
    }
    if (!rc) rc = sk_model_evaluate(m, tr->x, tr->y, tr->n, &p->train_acc, &p->train_loss);
    if (!rc && tr->nt > 0) rc = sk_model_evaluate(m, tr->xt, tr->yt, tr->nt, &p->test_acc, &p->test_loss);
    p->seconds = sk_now() - t0;
    return rc;
}
