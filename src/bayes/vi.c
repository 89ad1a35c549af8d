/* Bayes by Backprop: mean-field Gaussian variational inference.
 *
 * The variational parameters live in one flat buffer theta = [mu (P); rho (P)]
 * (mu in the model's parameter layout), their gradients in dtheta, so any
 * optimiser of optim.h steps them. Two ways to get the data term's gradient:
 *  - MLP specs (dense + relu/lrelu/tanh/sigmoid): the local reparameterisation
 *    trick, by hand with sgemm (the graph has no square root op, and by hand
 *    it is two extra products per layer);
 *  - anything else: Flipout (flipout.c) when vc->flipout, else one
 *    weight draw per minibatch through the model's graph forward, then
 *    dmu = dw, drho = dw eps sigmoid(rho).
 */
#include "bayes/bayes_impl.h"
#include "core/fastmath.h"

#include <math.h>
#include <string.h>

struct lrt {
    int n_layers, B, maxw;
    int *width;          /* output width of each layer */
    float **out;         /* [n_layers] n x width */
    float **eps, **sd;   /* dense layers: n x O */
    float *h2, *tmp, *da, *db; /* scratch n x maxw */
};

static bool lrt_supported(const struct sk_model *m)
{
    if (m->spatial || !sk_model_is_chain(m)) return false;
    for (int i = 0; i < m->n_layers; i++) {
        enum sk_layer_kind k = m->layers[i].kind;
        if (k != SK_LAYER_DENSE && k != SK_LAYER_RELU && k != SK_LAYER_LRELU && k != SK_LAYER_TANH &&
            k != SK_LAYER_SIGMOID)
            return false;
    }
    return m->layers[m->n_layers - 1].kind == SK_LAYER_DENSE;
}

static void lrt_free(struct lrt *L)
{
    if (!L->out) return;
    for (int i = 0; i < L->n_layers; i++) {
        sk_free(L->out[i]);
        if (L->eps) sk_free(L->eps[i]);
        if (L->sd) sk_free(L->sd[i]);
    }
    sk_free(L->out);
    sk_free(L->eps);
    sk_free(L->sd);
    sk_free(L->width);
    sk_free(L->h2);
    sk_free(L->tmp);
    sk_free(L->da);
    sk_free(L->db);
}

static int lrt_init(struct lrt *L, const struct sk_model *m, int B)
{
    memset(L, 0, sizeof *L);
    L->n_layers = m->n_layers;
    L->B = B;
    L->out = sk_calloc((size_t)m->n_layers, sizeof(float *));
    L->eps = sk_calloc((size_t)m->n_layers, sizeof(float *));
    L->sd = sk_calloc((size_t)m->n_layers, sizeof(float *));
    L->width = sk_calloc((size_t)m->n_layers, sizeof(int));
    if (!L->out || !L->eps || !L->sd || !L->width) return SK_ENOMEM;
    int w = m->in_dim;
    L->maxw = w;
    for (int i = 0; i < m->n_layers; i++) {
        const struct sk_layer *ly = &m->layers[i];
        if (ly->kind == SK_LAYER_DENSE) {
            w = ly->units;
            L->eps[i] = sk_malloc(sizeof(float) * (size_t)B * w);
            L->sd[i] = sk_malloc(sizeof(float) * (size_t)B * w);
            if (!L->eps[i] || !L->sd[i]) return SK_ENOMEM;
        }
        L->width[i] = w;
        if (w > L->maxw) L->maxw = w;
        L->out[i] = sk_malloc(sizeof(float) * (size_t)B * w);
        if (!L->out[i]) return SK_ENOMEM;
    }
    size_t s = sizeof(float) * (size_t)B * L->maxw;
    L->h2 = sk_malloc(s);
    L->tmp = sk_malloc(s);
    L->da = sk_malloc(s);
    L->db = sk_malloc(s);
    return L->h2 && L->tmp && L->da && L->db ? SK_OK : SK_ENOMEM;
}

/* Forward with fresh noise per example; returns the logits buffer [n,K].
 * mu: means, s2: variances (P each). */
static const float *lrt_forward(struct lrt *L, const struct sk_model *m, const float *mu, const float *s2,
                                const float *x, int n, uint64_t key)
{
    const float *h = x;
    int win = m->in_dim;
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *ly = &m->layers[li];
        float *o = L->out[li];
        size_t cnt = (size_t)n * L->width[li];
        switch (ly->kind) {
        case SK_LAYER_DENSE: {
            int O = ly->units;
            const float *W = mu + ly->w_off, *b = mu + ly->b_off, *W2 = s2 + ly->w_off, *b2 = s2 + ly->b_off;
            for (size_t i = 0; i < (size_t)n * win; i++) L->h2[i] = h[i] * h[i];
            /* o = h W^T + b ; v = h^2 (sigma^2)^T + sigma_b^2 */
            sk_sgemm(false, true, n, O, win, 1.0f, h, win, W, win, 0.0f, o, O);
            sk_sgemm(false, true, n, O, win, 1.0f, L->h2, win, W2, win, 0.0f, L->sd[li], O);
            float *e = L->eps[li], *sd = L->sd[li];
            sk_bayes_normals(sk_rng_derive(key, (uint64_t)li).key, e, cnt);
#pragma omp parallel for schedule(static) if (n > 64)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < O; j++) {
                    size_t q = (size_t)i * O + j;
                    float sdv = sqrtf(sd[q] + b2[j] + 1e-16f);
                    sd[q] = sdv;
                    o[q] += b[j] + sdv * e[q];
                }
            break;
        }
        case SK_LAYER_RELU:
            for (size_t i = 0; i < cnt; i++) o[i] = h[i] > 0 ? h[i] : 0;
            break;
        case SK_LAYER_LRELU:
            for (size_t i = 0; i < cnt; i++) o[i] = h[i] > 0 ? h[i] : ly->p * h[i];
            break;
        case SK_LAYER_TANH:
            for (size_t i = 0; i < cnt; i++) o[i] = tanhf(h[i]);
            break;
        case SK_LAYER_SIGMOID:
            for (size_t i = 0; i < cnt; i++) o[i] = sk_sigmoidf(h[i]);
            break;
        default: break;
        }
        h = o;
        win = L->width[li];
    }
    return h;
}

/* Backward from dlogits [n,K] (overwritten as scratch): adds into dmu and
 * into dvar (the gradient w.r.t. the variances sigma^2). */
static void lrt_backward(struct lrt *L, const struct sk_model *m, const float *mu, const float *s2, const float *x,
                         int n, const float *dlogits, float *dmu, float *dvar)
{
    float *d = L->da, *dn = L->db;
    memcpy(d, dlogits, sizeof(float) * (size_t)n * m->n_classes);
    for (int li = m->n_layers - 1; li >= 0; li--) {
        const struct sk_layer *ly = &m->layers[li];
        const float *h = li ? L->out[li - 1] : x;
        int win = li ? L->width[li - 1] : m->in_dim;
        size_t cnt = (size_t)n * L->width[li];
        switch (ly->kind) {
        case SK_LAYER_DENSE: {
            int O = ly->units;
            const float *e = L->eps[li], *sd = L->sd[li];
            /* dmu_W = d^T h, dmu_b = sum d */
            sk_sgemm(true, false, O, win, n, 1.0f, d, O, h, win, 1.0f, dmu + ly->w_off, win);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < O; j++) dmu[ly->b_off + j] += d[(size_t)i * O + j];
            /* dv = d eps / (2 sd) (into tmp) */
            float *dv = L->tmp;
            for (size_t i = 0; i < cnt; i++) dv[i] = d[i] * e[i] / (2.0f * sd[i]);
            for (size_t i = 0; i < (size_t)n * win; i++) L->h2[i] = h[i] * h[i];
            sk_sgemm(true, false, O, win, n, 1.0f, dv, O, L->h2, win, 1.0f, dvar + ly->w_off, win);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < O; j++) dvar[ly->b_off + j] += dv[(size_t)i * O + j];
            if (li == 0) return;
            /* dh = d W + 2 h (dv sigma^2) */
            sk_sgemm(false, false, n, win, O, 1.0f, d, O, mu + ly->w_off, win, 0.0f, dn, win);
            sk_sgemm(false, false, n, win, O, 1.0f, dv, O, s2 + ly->w_off, win, 0.0f, L->h2, win);
            for (size_t i = 0; i < (size_t)n * win; i++) dn[i] += 2.0f * h[i] * L->h2[i];
            break;
        }
        case SK_LAYER_RELU:
            for (size_t i = 0; i < cnt; i++) dn[i] = h[i] > 0 ? d[i] : 0;
            break;
        case SK_LAYER_LRELU:
            for (size_t i = 0; i < cnt; i++) dn[i] = h[i] > 0 ? d[i] : ly->p * d[i];
            break;
        case SK_LAYER_TANH:
            for (size_t i = 0; i < cnt; i++) dn[i] = d[i] * (1 - L->out[li][i] * L->out[li][i]);
            break;
        case SK_LAYER_SIGMOID:
            for (size_t i = 0; i < cnt; i++) dn[i] = d[i] * L->out[li][i] * (1 - L->out[li][i]);
            break;
        default: break;
        }
        float *t = d;
        d = dn;
        dn = t;
    }
}

/* softmax cross-entropy of logits z [n,K]: returns the mean loss, writes
 * dz = (p - onehot)/n and counts correct argmaxes. */
static double ce_grad(const float *z, const int *y, int n, int K, float *dz, long *correct)
{
    double loss = 0;
    for (int i = 0; i < n; i++) {
        const float *r = z + (size_t)i * K;
        float *d = dz + (size_t)i * K;
        float mx = r[0];
        int b = 0;
        for (int k = 1; k < K; k++)
            if (r[k] > mx) mx = r[b = k];
        double s = 0;
        for (int k = 0; k < K; k++) s += exp((double)r[k] - mx);
        double ls = mx + log(s);
        loss += ls - r[y[i]];
        for (int k = 0; k < K; k++) d[k] = (float)(exp((double)r[k] - ls) / n);
        d[y[i]] -= 1.0f / n;
        *correct += b == y[i];
    }
    return loss / n;
}

double sk_bayes_kl_gauss(const float *mu, const float *sigma, size_t n, float s)
{
    double kl = 0, s2 = (double)s * s;
    for (size_t i = 0; i < n; i++)
        kl += log(s / (double)sigma[i]) + ((double)sigma[i] * sigma[i] + (double)mu[i] * mu[i]) / (2 * s2) - 0.5;
    return kl;
}

/* -d/dw log of the scale-mixture prior, and log p(w). */
static double mix_logp(const struct sk_bayes_vi_config *c, double w, double *gneg)
{
    double s1 = c->mix_s1, s2 = c->mix_s2;
    double l1 = log(c->mix_pi) - log(s1) - 0.5 * w * w / (s1 * s1);
    double l2 = log(1 - c->mix_pi) - log(s2) - 0.5 * w * w / (s2 * s2);
    double mx = fmax(l1, l2), lse = mx + log(exp(l1 - mx) + exp(l2 - mx));
    double r1 = exp(l1 - lse);
    if (gneg) *gneg = w * (r1 / (s1 * s1) + (1 - r1) / (s2 * s2));
    return lse - 0.5 * log(2 * SK_PI);
}

/* The same gradient in float for the training loop: the responsibility of
 * the wide component is sigmoid(l1 - l2) (one exp per weight). */
static inline float mix_grad(float w, float a1, float a2, float i1, float i2)
{
    float d = a1 - a2 - 0.5f * w * w * (i1 - i2); /* l1 - l2 */
    float r1 = d >= 0 ? 1.0f / (1.0f + expf(-d)) : expf(d) / (1.0f + expf(d));
    return w * (r1 * i1 + (1.0f - r1) * i2);
}

double sk_bayes_kl(const struct sk_posterior *p, uint64_t seed)
{
    if (p->method != SK_BAYES_VI || !p->rho) return 0;
    size_t P = p->model->n_params;
    const float *mu = p->model->params;
    double kl = 0;
    if (p->vi.prior == SK_PRIOR_GAUSSIAN) {
        double s = p->vi.prior_sigma, s2 = s * s;
        for (size_t i = 0; i < P; i++) {
            double sg = sk_softplusf(p->rho[i]);
            kl += log(s / sg) + (sg * sg + (double)mu[i] * mu[i]) / (2 * s2) - 0.5;
        }
        return kl;
    }
    uint64_t k = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_NOISE).key;
    for (size_t i = 0; i < P; i++) {
        double sg = sk_softplusf(p->rho[i]), e = sk_rng_normal_at(k, i), w = mu[i] + sg * e;
        kl += -log(sg) - 0.5 * e * e - 0.5 * log(2 * SK_PI) - mix_logp(&p->vi, w, NULL);
    }
    return kl;
}

/* On entry drho holds the data term's gradient w.r.t. sigma; on return
 * dmu += c dKL/dmu and drho = (drho + c dKL/dsigma) dsigma/drho, with
 * sgm = sigmoid(rho) = dsigma/drho. scratch: P floats. */
static void kl_grad(const struct sk_bayes_vi_config *vc, size_t P, const float *mu, const float *sig, const float *sgm,
                    double c, uint64_t key, float *scratch, float *dmu, float *drho)
{
    if (vc->prior == SK_PRIOR_GAUSSIAN) {
        float is2 = 1.0f / (vc->prior_sigma * vc->prior_sigma), cf = (float)c;
#pragma omp parallel for schedule(static) if (P > 65536)
        for (size_t i = 0; i < P; i++) {
            dmu[i] += cf * mu[i] * is2;
            drho[i] = (drho[i] + cf * (sig[i] * is2 - 1.0f / sig[i])) * sgm[i];
        }
    } else {
        /* one-sample estimate of log q(w) - log p(w), w = mu + sigma e' */
        sk_bayes_normals(key, scratch, P);
        float a1 = logf(vc->mix_pi) - logf(vc->mix_s1), a2 = logf(1 - vc->mix_pi) - logf(vc->mix_s2);
        float i1 = 1.0f / (vc->mix_s1 * vc->mix_s1), i2 = 1.0f / (vc->mix_s2 * vc->mix_s2), cf = (float)c;
#pragma omp parallel for schedule(static) if (P > 65536)
        for (size_t i = 0; i < P; i++) {
            float e = scratch[i], w = mu[i] + sig[i] * e, gp = mix_grad(w, a1, a2, i1, i2);
            dmu[i] += cf * gp;
            drho[i] = (drho[i] + cf * (gp * e - 1.0f / sig[i])) * sgm[i];
        }
    }
}

/* One Bayes-by-Backprop run: the flat buffer theta = [mu; rho] the trainer
 * steps, and the scratch of its forward. */
struct vi_run {
    struct sk_model *m;
    struct sk_bayes_vi_config vc;
    size_t P;
    long per_epoch;
    int n;                 /* training rows (the KL weight per minibatch is beta / n) */
    uint64_t nkey;         /* stream SK_STREAM_NOISE of the seed; step t uses its child t */
    float *theta, *dtheta; /* [mu; rho] and its gradient, 2P */
    float *sig, *s2, *sgm, *wbuf, *gw, *dz;
    struct sk_graph *g;
    struct lrt L;
    bool use_lrt;
    struct sk_flipout *fo;
};

static void vi_run_free(struct vi_run *r)
{
    lrt_free(&r->L);
    sk_flipout_free(r->fo);
    sk_free(r->theta);
    sk_free(r->dtheta);
    sk_free(r->sig);
    sk_free(r->s2);
    sk_free(r->sgm);
    sk_free(r->wbuf);
    sk_free(r->gw);
    sk_free(r->dz);
    sk_graph_free(r->g);
}

static int vi_run_init(struct vi_run *r, struct sk_posterior *p, const struct sk_train_config *cfg, int n)
{
    const struct sk_bayes_vi_config *vc = &r->vc;
    struct sk_model *m = p->model;
    size_t P = m->n_params;
    int B = cfg->batch;
    r->m = m;
    r->P = P;
    r->n = n;
    r->per_epoch = (n + B - 1) / B;
    r->nkey = sk_rng_derive(sk_rng_new(cfg->seed).key, SK_STREAM_NOISE).key;
    r->use_lrt = vc->local_reparam && lrt_supported(m);
    r->theta = sk_malloc(sizeof(float) * 2 * P);
    r->dtheta = sk_malloc(sizeof(float) * 2 * P);
    r->sig = sk_malloc(sizeof(float) * P);
    r->s2 = sk_malloc(sizeof(float) * P);
    r->sgm = sk_malloc(sizeof(float) * P);
    r->wbuf = sk_malloc(sizeof(float) * P);
    r->gw = sk_malloc(sizeof(float) * P);
    r->dz = sk_malloc(sizeof(float) * (size_t)B * m->n_classes);
    r->g = sk_graph_new();
    if (!r->theta || !r->dtheta || !r->sig || !r->s2 || !r->sgm || !r->wbuf || !r->gw || !r->dz || !r->g)
        return SK_ENOMEM;
    int rc;
    if (r->use_lrt && (rc = lrt_init(&r->L, m, B))) return rc;
    if (!r->use_lrt && vc->flipout && !sk_model_is_chain(m))
        return sk_error(SK_EINVAL, "flipout runs the layers one after the other; model '%s' has branches (set "
                        "flipout off)", m->spec);
    if (!r->use_lrt && vc->flipout && !(r->fo = sk_flipout_new(m, B))) return SK_ENOMEM;
    /* start: mu = the model's (initialised) weights; rho from init_sigma, or the
     * posterior's rho if it has one already (continued training) */
    memcpy(r->theta, m->params, sizeof(float) * P);
    float rho0 = (float)log(expm1((double)vc->init_sigma));
    for (size_t i = 0; i < P; i++) r->theta[P + i] = p->rho ? p->rho[i] : rho0;
    return SK_OK;
}

/* The data term by one weight draw w = mu + sigma eps through the model's
 * graph: dmu = dw, dsigma = dw eps (drho converted by kl_grad). */
static int vi_sampled_grad(struct vi_run *r, const float *xb, const int *yb, int nb, uint64_t sk, double *loss,
                           long *correct)
{
    struct sk_model *m = r->m;
    size_t P = r->P;
    const float *mu = r->theta, *sig = r->sig;
    float *dmu = r->dtheta, *drho = r->dtheta + P, *eps = r->s2; /* eps kept in s2 (unused without the local trick) */
    sk_bayes_normals(sk_rng_derive(sk, 1).key, eps, P);
#pragma omp parallel for schedule(static) if (P > 65536)
    for (size_t i = 0; i < P; i++) r->wbuf[i] = mu[i] + sig[i] * eps[i];
    struct sk_model view = *m;
    view.params = r->wbuf;
    view.grads = r->gw;
    memset(r->gw, 0, sizeof(float) * P);
    sk_graph_reset(r->g);
    int shape[2] = { nb, m->in_dim };
    int xin = sk_graph_input(r->g, xb, 2, shape, false);
    int zn = sk_model_forward(&view, r->g, xin, SK_MODE_TRAIN, sk_rng_derive(sk, 2).key);
    int Ln = sk_loss_cross_entropy(r->g, zn, yb, 0.0f);
    if (Ln < 0) return Ln;
    int rc = sk_graph_backward(r->g, Ln, NULL);
    if (rc) return rc;
    *loss = sk_graph_value(r->g, Ln)[0];
    const float *z = sk_graph_value(r->g, zn);
    int K = m->n_classes;
    for (int i = 0; i < nb; i++) {
        int b = 0;
        for (int k = 1; k < K; k++)
            if (z[(size_t)i * K + k] > z[(size_t)i * K + b]) b = k;
        *correct += b == yb[i];
    }
#pragma omp parallel for schedule(static) if (P > 65536)
    for (size_t i = 0; i < P; i++) {
        dmu[i] = r->gw[i];
        drho[i] = r->gw[i] * eps[i];
    }
    return SK_OK;
}

/* The trainer's step hook: the minibatch's ELBO gradient w.r.t. [mu; rho]
 * into dtheta (zeroed by the trainer). */
static int vi_grad(void *ctx, struct sk_trainer *t, float *xb, const int *yb, int nb, uint64_t noise_key,
                   double *loss, long *correct)
{
    struct vi_run *r = ctx;
    struct sk_model *m = r->m;
    const struct sk_bayes_vi_config *vc = &r->vc;
    size_t P = r->P;
    long step = t->st.step;
    uint64_t sk = sk_rng_derive(r->nkey, (uint64_t)step).key;
    (void)noise_key;
    int rc;
    /* e.g. adversarial training: the rows replaced by attacks on q(w) */
    if (vc->batch &&
        (rc = vc->batch(vc->batch_ctx, r->theta, r->theta + P, xb, yb, nb, (double)step / r->per_epoch, sk)))
        return rc;
    const float *mu = r->theta, *rho = r->theta + P;
    float *dmu = r->dtheta, *drho = r->dtheta + P, *sig = r->sig, *s2 = r->s2, *sgm = r->sgm;
    /* one exp and one log1p per parameter: sigma, sigma^2, sigmoid(rho) */
#pragma omp parallel for simd schedule(static) if (P > 65536)
    for (size_t i = 0; i < P; i++) {
        float rr = rho[i], e = sk_fast_exp_neg(fabsf(rr));
        sig[i] = (rr > 0 ? rr : 0.0f) + sk_fast_log1p_unit(e);
        s2[i] = sig[i] * sig[i];
        sgm[i] = (rr >= 0 ? 1.0f : e) / (1.0f + e);
    }
    if (r->use_lrt) {
        /* the hand-written layers start after the model's input transform */
        sk_model_input_rows(m, xb, nb);
        const float *z = lrt_forward(&r->L, m, mu, s2, xb, nb, sk);
        *loss = ce_grad(z, yb, nb, m->n_classes, r->dz, correct);
        /* gradient w.r.t. the variances lands in drho, converted below */
        lrt_backward(&r->L, m, mu, s2, xb, nb, r->dz, dmu, drho);
        for (size_t i = 0; i < P; i++) drho[i] *= 2.0f * sig[i];
    } else if (r->fo) {
        /* eps kept in s2; the gradient w.r.t. sigma lands in drho, converted by kl_grad */
        sk_bayes_normals(sk_rng_derive(sk, 1).key, s2, P);
        float lf = 0;
        if ((rc = sk_flipout_loss_grad(r->fo, m, mu, sig, s2, xb, yb, nb, sk, &lf, correct, dmu, drho))) return rc;
        *loss = lf;
    } else if ((rc = vi_sampled_grad(r, xb, yb, nb, sk, loss, correct))) {
        return rc;
    }
    double beta = vc->kl_weight;
    if (vc->anneal_epochs > 0) beta *= fmin(1.0, (double)(step + 1) / ((double)vc->anneal_epochs * r->per_epoch));
    kl_grad(vc, P, mu, sig, sgm, beta / r->n, sk_rng_derive(sk, 3).key, s2, dmu, drho);
    return SK_OK;
}

/* Checkpoints are model files too: their weights are mu. */
static int vi_sync(void *ctx, struct sk_trainer *t)
{
    struct vi_run *r = ctx;
    memcpy(t->model->params, r->theta, sizeof(float) * r->P);
    return SK_OK;
}

static int vi_check(const struct sk_posterior *p, const struct sk_train_config *cfg,
                    const struct sk_bayes_vi_config *vc, const int *y, int n) {
    const struct sk_model *m = p->model;
    if (p->method != SK_BAYES_VI)
        return sk_error(SK_EINVAL, "sk_bayes_train_vi: the posterior's method is %s", sk_bayes_method_name(p->method));
    if (cfg->epochs < 0 || cfg->batch < 1 || n < 1)
        return sk_error(SK_EINVAL, "VI training needs epochs >= 0, batch >= 1 and data (got %d, %d, %d rows)",
                        cfg->epochs, cfg->batch, n);
    if (!(vc->init_sigma > 0) || !(vc->prior_sigma > 0) || !(vc->kl_weight >= 0) ||
        (vc->prior == SK_PRIOR_MIXTURE && !(vc->mix_pi > 0 && vc->mix_pi < 1 && vc->mix_s1 > 0 && vc->mix_s2 > 0)))
        return sk_error(SK_EINVAL, "VI settings out of range: init sigma %g, prior sigma %g, kl weight %g, "
                        "mixture pi %g s1 %g s2 %g", vc->init_sigma, vc->prior_sigma, vc->kl_weight, vc->mix_pi,
                        vc->mix_s1, vc->mix_s2);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->n_classes)
            return sk_error(SK_EINVAL, "label %d of row %d is outside the model's %d classes", y[i], i, m->n_classes);
    return SK_OK;
}

int sk_bayes_train_vi(struct sk_posterior *p, const struct sk_train_config *cfg, const struct sk_bayes_vi_config *vc,
                      const float *x, const int *y, int n)
{
    int rc = vi_check(p, cfg, vc, y, n);
    if (rc) return rc;
    struct sk_model *m = p->model;
    p->vi = *vc;
    p->vi.batch = NULL; /* borrowed for this call only */
    p->vi.batch_ctx = NULL;
    struct vi_run r = { .vc = *vc };
    struct sk_trainer *t = NULL;
    if (!(rc = vi_run_init(&r, p, cfg, n))) {
        size_t P = r.P;
        struct sk_step_hook h = { .params = r.theta, .grads = r.dtheta, .n_params = 2 * P, .grad = vi_grad,
                                  .sync = vi_sync, .ctx = &r, .n_state = 1,
                                  .state = { { "skeptic.vi.theta", r.theta, 2 * P } } };
        /* every row trains: no validation split, and the objective is the ELBO's */
        struct sk_train_config c = *cfg;
        c.step = &h;
        c.val_split = 0;
        c.patience = 0;
        c.loss = NULL;
        c.on_grad = NULL;
        if (!(t = sk_trainer_new(m, &c, x, y, n))) rc = sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
        if (!rc && c.resume) rc = sk_checkpoint_load(c.resume, t, NULL);
        if (!rc) rc = sk_trainer_run(t);
        if (!rc && !p->rho && !(p->rho = sk_malloc(sizeof(float) * P))) rc = SK_ENOMEM;
        if (!rc) {
            memcpy(m->params, r.theta, sizeof(float) * P);
            memcpy(p->rho, r.theta + P, sizeof(float) * P);
        }
    }
    sk_trainer_free(t);
    vi_run_free(&r);
    return rc;
}
