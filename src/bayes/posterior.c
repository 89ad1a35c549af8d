/* The posterior type: weight draws for every method, per-sample and
 * predictive probabilities, temperature scaling and the classifier seam
 * (log of the averaged probability, EOT input gradient). */
#include "bayes/bayes_impl.h"

#include <math.h>
#include <string.h>

struct sk_posterior *sk_bayes_new(struct sk_model *m, enum sk_bayes_method method)
{
    if (!m) {
        sk_error(SK_EINVAL, "sk_bayes_new: no model");
        return NULL;
    }
    if ((unsigned)method > SK_BAYES_LAPLACE) {
        sk_error(SK_EINVAL, "unknown Bayesian method %d", (int)method);
        return NULL;
    }
    if (method == SK_BAYES_MCDROPOUT && !sk_model_has_dropout(m)) {
        sk_error(SK_EINVAL, "MC dropout needs dropout in the model spec ('%s'); add ':dropout0.2' to an mlp "
                 "spec or a 'dropout0.2' layer", m->spec);
        return NULL;
    }
    struct sk_posterior *p = sk_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->method = method;
    p->model = m;
    p->vi = sk_bayes_vi_defaults();
    p->sgld = sk_bayes_sgld_defaults();
    p->laplace = sk_bayes_laplace_defaults();
    p->temperature = 1.0f;
    p->ll_layer = -1;
    return p;
}

void sk_bayes_free(struct sk_posterior *p)
{
    if (!p) return;
    sk_model_free(p->model);
    sk_free(p->members);
    sk_free(p->rho);
    sk_free(p->vi_sigma);
    sk_free(p->ll_avec);
    sk_free(p->ll_aval);
    sk_free(p->ll_gvec);
    sk_free(p->ll_gval);
    sk_free(p->ll_cov);
    sk_free(p->ll_cov_sqrt);
    sk_free(p);
}

int sk_bayes_n_samples(const struct sk_posterior *p, int S)
{
    switch (p->method) {
    case SK_BAYES_DETERMINISTIC: return 1;
    case SK_BAYES_ENSEMBLE:
    case SK_BAYES_SGLD: {
        /* a finite set: at most every member once (more would repeat them) */
        int M = p->n_members > 0 ? p->n_members : 1;
        return S > 0 && S < M ? S : M;
    }
    default: return S > 0 ? S : 1;
    }
}

bool sk_bayes_stochastic(const struct sk_posterior *p)
{
    return p->method == SK_BAYES_VI || p->method == SK_BAYES_MCDROPOUT || p->method == SK_BAYES_LAPLACE;
}

int sk_bayes_prepare(struct sk_posterior *p)
{
    if (p->method != SK_BAYES_VI || !p->rho) return SK_OK;
    size_t P = p->model->n_params;
    if (!p->vi_sigma && !(p->vi_sigma = sk_malloc(sizeof(float) * P))) return SK_ENOMEM;
    sk_bayes_vi_sigma(p->rho, p->vi_sigma, P);
    return SK_OK;
}

/* Laplace: perturb the last layer of w (a copy of the MAP) by a draw from
 * N(0, (H + delta I)^-1) keyed by `key`. */
static void laplace_perturb(const struct sk_posterior *p, uint64_t key, float *w)
{
    const struct sk_layer *L = &p->model->layers[p->ll_layer];
    int D1 = p->ll_d1, K = p->ll_k, D = D1 - 1, PK = K * D1;
    float *Wl = w + L->w_off, *bl = w + L->b_off;
    double dz[4096];
    double *delta = PK <= 4096 ? dz : sk_malloc(sizeof(double) * (size_t)PK);
    if (!delta) return; /* out of memory: the MAP itself */
    if (p->laplace.hessian == SK_LAPLACE_KFAC) {
        /* Delta = Ug (Z o 1/sqrt(g_i a_j + delta)) Ua^T, rows of *vec are eigenvectors */
        double *T = sk_malloc(sizeof(double) * (size_t)PK);
        if (!T) {
            if (delta != dz) sk_free(delta);
            return;
        }
        for (int i = 0; i < K; i++)
            for (int j = 0; j < D1; j++)
                T[(size_t)i * D1 + j] = sk_rng_normal_at(key, (uint64_t)i * D1 + j) /
                                        sqrt((double)p->ll_gval[i] * p->ll_aval[j] + p->prior_precision);
        /* U = T Ua^T-rows: U[i][d] = sum_j T[i][j] avec[j][d] */
        double *U = sk_calloc((size_t)PK, sizeof(double));
        if (U) {
            for (int i = 0; i < K; i++)
                for (int j = 0; j < D1; j++) {
                    double t = T[(size_t)i * D1 + j];
                    const float *av = p->ll_avec + (size_t)j * D1;
                    for (int d = 0; d < D1; d++) U[(size_t)i * D1 + d] += t * av[d];
                }
            for (int k = 0; k < K; k++)
                for (int d = 0; d < D1; d++) {
                    double s = 0;
                    for (int i = 0; i < K; i++) s += (double)p->ll_gvec[(size_t)i * K + k] * U[(size_t)i * D1 + d];
                    delta[(size_t)k * D1 + d] = s;
                }
        }
        sk_free(U);
        sk_free(T);
    } else {
        for (int r = 0; r < PK; r++) delta[r] = 0;
        for (int c = 0; c < PK; c++) {
            double z = sk_rng_normal_at(key, (uint64_t)c);
            for (int r = 0; r < PK; r++) delta[r] += (double)p->ll_cov_sqrt[(size_t)r * PK + c] * z;
        }
    }
    for (int k = 0; k < K; k++) {
        for (int d = 0; d < D; d++) Wl[(size_t)k * D + d] += (float)delta[(size_t)k * D1 + d];
        bl[k] += (float)delta[(size_t)k * D1 + D];
    }
    if (delta != dz) sk_free(delta);
}

const float *sk_bayes_draw(const struct sk_posterior *p, uint64_t key, int s, float *buf)
{
    const struct sk_model *m = p->model;
    size_t P = m->n_params;
    uint64_t k = sk_rng_derive(key, (uint64_t)s).key;
    switch (p->method) {
    case SK_BAYES_ENSEMBLE:
    case SK_BAYES_SGLD:
        if (p->n_members > 0) return p->members + (size_t)(s % p->n_members) * P;
        return m->params;
    case SK_BAYES_VI: {
        const float *mu = m->params, *rho = p->rho, *sg = p->vi_sigma;
        sk_bayes_normals(k, buf, P);
        if (sg) {
#pragma omp parallel for schedule(static) if (P > 65536)
            for (size_t i = 0; i < P; i++) buf[i] = mu[i] + sg[i] * buf[i];
        } else {
#pragma omp parallel for schedule(static) if (P > 65536)
            for (size_t i = 0; i < P; i++) buf[i] = mu[i] + sk_softplusf(rho[i]) * buf[i];
        }
        return buf;
    }
    case SK_BAYES_LAPLACE:
        if (p->ll_layer < 0) return m->params;
        memcpy(buf, m->params, sizeof(float) * P);
        laplace_perturb(p, k, buf);
        return buf;
    default: return m->params;
    }
}

int sk_bayes_forward(const struct sk_posterior *p, struct sk_graph *g, const float *params, int x, uint64_t noise)
{
    struct sk_model view = *p->model;
    view.params = (float *)params;
    enum sk_mode mode = p->method == SK_BAYES_MCDROPOUT ? SK_MODE_MC : SK_MODE_EVAL;
    int z = sk_model_forward(&view, g, x, mode, noise);
    if (z >= 0 && p->temperature != 1.0f) z = sk_op_scale(g, z, 1.0f / p->temperature);
    return sk_op_log_softmax(g, z);
}

static uint64_t noise_key(const struct sk_posterior *p, uint64_t seed)
{
    (void)p;
    return sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_NOISE).key;
}

#define PRED_BATCH 500

bool sk_bayes_fast_vi_predict = true;

/* VI prediction with the first (dense) layer by the local reparameterisation
 * trick. Under weight sampling the first layer's pre-activations of one input
 * are independent Gaussians N(x mu_j + b_j, x^2 sigma_j^2 + sigma_bj^2), so
 * drawing them directly gives every input an exact sample of the predictive
 * (draws of different inputs are independent instead of sharing one weight
 * draw, which no per-input quantity can see). The two products are shared by
 * all S samples; the later layers sample weights as usual. */
static int sample_logp_vi_lrt(struct sk_posterior *p, const float *x, int N, int S, uint64_t key, float *out)
{
    struct sk_model *m = p->model;
    const struct sk_layer *L0 = &m->layers[0];
    int K = m->n_classes, D = m->in_dim, O = L0->units;
    size_t P = m->n_params, off = L0->w_off < L0->b_off ? L0->w_off : L0->b_off;
    size_t end = (L0->w_off > L0->b_off ? L0->w_off + L0->n_w : L0->b_off + L0->n_b);
    float *mean = sk_malloc(sizeof(float) * (size_t)N * O), *sd = sk_malloc(sizeof(float) * (size_t)N * O);
    float *x2 = sk_malloc(sizeof(float) * (size_t)PRED_BATCH * D), *s2 = sk_malloc(sizeof(float) * L0->n_w);
    float *xt = sk_malloc(sizeof(float) * (size_t)PRED_BATCH * D);
    float *h = sk_malloc(sizeof(float) * (size_t)PRED_BATCH * O), *buf = sk_malloc(sizeof(float) * (P + 1));
    /* layers 1.. of the chain as a model of their own: each reads the one before it, the first the view's input */
    struct sk_layer *tail = sk_malloc(sizeof(struct sk_layer) * (size_t)(m->n_layers - 1));
    struct sk_graph *g = sk_graph_new();
    int rc = SK_OK;
    if (!mean || !sd || !x2 || !xt || !s2 || !h || !buf || !tail || !g) {
        rc = SK_ENOMEM;
        goto out;
    }
    sk_graph_set_param_grads(g, false);
    const float *sg = p->vi_sigma, *mu = m->params;
    for (size_t j = 0; j < L0->n_w; j++) s2[j] = sg[L0->w_off + j] * sg[L0->w_off + j];
    for (int i = 0; i < N; i += PRED_BATCH) {
        int B = N - i < PRED_BATCH ? N - i : PRED_BATCH;
        /* xt: the rows after the model's input transform (x2 holds them first) */
        memcpy(xt, x + (size_t)i * D, sizeof(float) * (size_t)B * D);
        sk_model_input_rows(m, xt, B);
        const float *xb = xt;
        for (size_t q = 0; q < (size_t)B * D; q++) x2[q] = xb[q] * xb[q];
        sk_sgemm(false, true, B, O, D, 1.0f, xb, D, mu + L0->w_off, D, 0.0f, mean + (size_t)i * O, O);
        sk_sgemm(false, true, B, O, D, 1.0f, x2, D, s2, D, 0.0f, sd + (size_t)i * O, O);
        for (int r = 0; r < B; r++)
            for (int j = 0; j < O; j++) {
                size_t q = (size_t)(i + r) * O + j;
                float sb = sg[L0->b_off + j];
                mean[q] += mu[L0->b_off + j];
                sd[q] = sqrtf(sd[q] + sb * sb);
            }
    }
    for (int li = 1; li < m->n_layers; li++) {
        tail[li - 1] = m->layers[li];
        tail[li - 1].from[0] = li - 2;
        tail[li - 1].from[1] = -1;
    }
    struct sk_model view = *m;
    view.layers = tail;
    view.n_layers = m->n_layers - 1;
    view.in_c = O;
    view.in_h = view.in_w = 1;
    view.in_dim = O;
    view.spatial = false;
    view.prep = NULL; /* the view starts at layer 1: the input transform is behind it */
    view.params = buf;
    for (int s = 0; s < S && !rc; s++) {
        uint64_t sk = sk_rng_derive(key, (uint64_t)s).key;
        /* weights of the later layers only (layer 0's block is not used) */
        sk_bayes_normals(sk_rng_derive(sk, 1).key, buf, off);
        sk_bayes_normals(sk_rng_derive(sk, 3).key, buf + end, P - end);
        for (size_t q = 0; q < P; q++)
            if (q < off || q >= end) buf[q] = mu[q] + sg[q] * buf[q];
        for (int i = 0; i < N && !rc; i += PRED_BATCH) {
            int B = N - i < PRED_BATCH ? N - i : PRED_BATCH;
            sk_bayes_normals(sk_rng_derive(sk_rng_derive(sk, 2).key, (uint64_t)i).key, h, (size_t)B * O);
            for (size_t q = 0; q < (size_t)B * O; q++) {
                size_t r = (size_t)i * O + q;
                h[q] = mean[r] + sd[r] * h[q];
            }
            sk_graph_reset(g);
            int shape[2] = { B, O };
            int hin = sk_graph_input(g, h, 2, shape, false);
            int z = sk_model_forward(&view, g, hin, SK_MODE_EVAL, 0);
            if (z >= 0 && p->temperature != 1.0f) z = sk_op_scale(g, z, 1.0f / p->temperature);
            int lp = sk_op_log_softmax(g, z);
            if (lp < 0) {
                rc = lp;
                break;
            }
            memcpy(out + ((size_t)s * N + i) * K, sk_graph_value(g, lp), sizeof(float) * (size_t)B * K);
        }
    }
out:
    sk_free(mean);
    sk_free(sd);
    sk_free(x2);
    sk_free(xt);
    sk_free(s2);
    sk_free(h);
    sk_free(buf);
    sk_free(tail);
    sk_graph_free(g);
    return rc;
}

/* Log-probabilities of S samples [S,N,K] (s outer so that a weight draw is
 * made once per sample, rows in batches). */
static int sample_logp(struct sk_posterior *p, const float *x, int N, int S, uint64_t key, float *out)
{
    struct sk_model *m = p->model;
    if (p->method == SK_BAYES_VI && sk_bayes_fast_vi_predict && !m->spatial && m->n_layers > 1 && sk_model_is_chain(m) &&
        m->layers[0].kind == SK_LAYER_DENSE && p->rho) {
        int rc = sk_bayes_prepare(p);
        return rc ? rc : sample_logp_vi_lrt(p, x, N, S, key, out);
    }
    int K = m->n_classes, D = m->in_dim;
    float *buf = sk_malloc(sizeof(float) * (m->n_params + 1));
    struct sk_graph *g = sk_graph_new();
    int rc = sk_bayes_prepare(p);
    if (!buf || !g) rc = SK_ENOMEM;
    if (g) sk_graph_set_param_grads(g, false);
    for (int s = 0; s < S && !rc; s++) {
        const float *w = sk_bayes_draw(p, key, s, buf);
        for (int i = 0; i < N && !rc; i += PRED_BATCH) {
            int B = N - i < PRED_BATCH ? N - i : PRED_BATCH;
            sk_graph_reset(g);
            int shape[2] = { B, D };
            int xin = sk_graph_input(g, x + (size_t)i * D, 2, shape, false);
            uint64_t nk = sk_rng_derive(sk_rng_derive(key, (uint64_t)s).key, (uint64_t)i).key;
            int lp = sk_bayes_forward(p, g, w, xin, nk);
            if (lp < 0) {
                rc = lp;
                break;
            }
            memcpy(out + ((size_t)s * N + i) * K, sk_graph_value(g, lp), sizeof(float) * (size_t)B * K);
        }
    }
    sk_graph_free(g);
    sk_free(buf);
    return rc;
}

int sk_bayes_sample_probs(struct sk_posterior *p, const float *x, int N, int S, uint64_t seed, float *probs)
{
    S = sk_bayes_n_samples(p, S);
    int rc = sample_logp(p, x, N, S, noise_key(p, seed), probs);
    if (rc) return rc;
    size_t n = (size_t)S * N * p->model->n_classes;
    for (size_t i = 0; i < n; i++) probs[i] = expf(probs[i]);
    return SK_OK;
}

int sk_bayes_predict(struct sk_posterior *p, const float *x, int N, int S, uint64_t seed, float *pbar, float *mi)
{
    int K = p->model->n_classes;
    if (p->method == SK_BAYES_LAPLACE && p->laplace.probit && p->ll_layer >= 0) {
        if (mi) memset(mi, 0, sizeof(float) * (size_t)N);
        return sk_bayes_laplace_probit(p, x, N, pbar);
    }
    S = sk_bayes_n_samples(p, S);
    /* rows in chunks so that S x chunk x K stays bounded */
    int chunk = 20000;
    float *sp = sk_malloc(sizeof(float) * (size_t)S * (N < chunk ? N : chunk) * K + 1);
    if (!sp) return SK_ENOMEM;
    int rc = SK_OK;
    for (int i = 0; i < N && !rc; i += chunk) {
        int B = N - i < chunk ? N - i : chunk;
        rc = sk_bayes_sample_probs(p, x + (size_t)i * p->model->in_dim, B, S, seed + (uint64_t)i, sp);
        if (!rc) sk_predictive(sp, S, B, K, pbar + (size_t)i * K, NULL, NULL, mi ? mi + i : NULL);
    }
    sk_free(sp);
    return rc;
}

int sk_bayes_fit_temperature(struct sk_posterior *p, const float *x, const int *y, int n, int S, uint64_t seed,
                             float *T)
{
    if (n < 1) return sk_error(SK_EINVAL, "temperature scaling needs validation rows");
    int K = p->model->n_classes;
    S = sk_bayes_n_samples(p, S);
    float T0 = p->temperature;
    p->temperature = 1.0f;
    float *lp = sk_malloc(sizeof(float) * (size_t)S * n * K);
    if (!lp) {
        p->temperature = T0;
        return SK_ENOMEM;
    }
    int rc = sample_logp(p, x, n, S, noise_key(p, seed), lp);
    if (rc) {
        p->temperature = T0;
        sk_free(lp);
        return rc;
    }
    /* NLL of the averaged tempered probabilities as a function of log T;
     * golden-section search on [log 0.05, log 20] */
    double lo = log(0.05), hi = log(20.0);
    const double gr = 0.6180339887498949;
    double a = hi - gr * (hi - lo), b = lo + gr * (hi - lo);
    double fa = sk_bayes_tempered_nll(lp, S, n, K, y, exp(a)), fb = sk_bayes_tempered_nll(lp, S, n, K, y, exp(b));
    for (int it = 0; it < 60; it++) {
        if (fa < fb) {
            hi = b;
            b = a;
            fb = fa;
            a = hi - gr * (hi - lo);
            fa = sk_bayes_tempered_nll(lp, S, n, K, y, exp(a));
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + gr * (hi - lo);
            fb = sk_bayes_tempered_nll(lp, S, n, K, y, exp(b));
        }
    }
    sk_free(lp);
    p->temperature = (float)exp(0.5 * (lo + hi));
    if (T) *T = p->temperature;
    return SK_OK;
}

double sk_bayes_tempered_nll(const float *lp, int S, int n, int K, const int *y, double T)
{
    double nll = 0;
    for (int i = 0; i < n; i++) {
        double py = 0;
        for (int s = 0; s < S; s++) {
            const float *r = lp + ((size_t)s * n + i) * K;
            double mx = -INFINITY, z = 0;
            for (int k = 0; k < K; k++) mx = fmax(mx, r[k] / T);
            for (int k = 0; k < K; k++) z += exp(r[k] / T - mx);
            py += exp(r[y[i]] / T - mx) / z;
        }
        nll -= log(fmax(py / S, 1e-12));
    }
    return nll / n;
}

/* ---------------- the classifier seam ---------------- */

struct post_clf {
    struct sk_posterior *p;
    struct sk_graph *g;
    int S;
    uint64_t key, calls;
    float *wbuf;
    float *buf;
    size_t buf_n;
    struct sk_classifier *self;
};

static int ensure(struct post_clf *c, size_t n)
{
    if (c->buf_n >= n) return SK_OK;
    sk_free(c->buf);
    c->buf = sk_malloc(n * sizeof(float));
    c->buf_n = c->buf ? n : 0;
    return c->buf ? SK_OK : SK_ENOMEM;
}

static int pc_forward(struct post_clf *c, uint64_t ck, int s, const float *x, int N, bool needs_grad, int *xin)
{
    const float *w = sk_bayes_draw(c->p, ck, s, c->wbuf);
    sk_graph_reset(c->g);
    int shape[2] = { N, c->p->model->in_dim };
    *xin = sk_graph_input(c->g, x, 2, shape, needs_grad);
    c->self->n_forward += N;
    return sk_bayes_forward(c->p, c->g, w, *xin, sk_rng_derive(ck, 1000000 + (uint64_t)s).key);
}

static void log_mean_exp(const float *lps, int S, size_t NK, float *out)
{
    for (size_t i = 0; i < NK; i++) {
        float mx = lps[i];
        for (int s = 1; s < S; s++) mx = fmaxf(mx, lps[(size_t)s * NK + i]);
        double acc = 0;
        for (int s = 0; s < S; s++) acc += exp((double)lps[(size_t)s * NK + i] - mx);
        out[i] = (float)(mx + log(acc / S));
    }
}

static int pc_log_probs(void *self, const float *x, int N, float *logp)
{
    struct post_clf *c = self;
    int K = c->p->model->n_classes, S = c->S, xin;
    uint64_t ck = sk_rng_derive(c->key, c->calls++).key;
    size_t NK = (size_t)N * K;
    int rc = ensure(c, (size_t)S * NK);
    if (rc) return rc;
    for (int s = 0; s < S; s++) {
        int lp = pc_forward(c, ck, s, x, N, false, &xin);
        if (lp < 0) return lp;
        memcpy(c->buf + (size_t)s * NK, sk_graph_value(c->g, lp), sizeof(float) * NK);
    }
    log_mean_exp(c->buf, S, NK, logp);
    return SK_OK;
}

static int pc_input_grad(void *self, const float *x, int N, sk_logp_loss_fn f, void *fctx, float *logp, float *loss,
                         float *dx)
{
    struct post_clf *c = self;
    int K = c->p->model->n_classes, S = c->S, D = c->p->model->in_dim, xin;
    uint64_t ck = sk_rng_derive(c->key, c->calls++).key;
    size_t NK = (size_t)N * K;
    int rc = ensure(c, (size_t)(S + 3) * NK);
    if (rc) return rc;
    float *lps = c->buf, *avg = lps + (size_t)S * NK, *dl = avg + NK, *seed = dl + NK;
    for (int s = 0; s < S; s++) {
        int lp = pc_forward(c, ck, s, x, N, false, &xin);
        if (lp < 0) return lp;
        memcpy(lps + (size_t)s * NK, sk_graph_value(c->g, lp), sizeof(float) * NK);
    }
    log_mean_exp(lps, S, NK, avg);
    f(fctx, avg, N, K, loss, dl);
    /* d log pbar_k / d lp_{s,k} = p_{s,k} / (S pbar_k): replay each sample (same draw, same masks) */
    memset(dx, 0, sizeof(float) * (size_t)N * D);
    for (int s = 0; s < S; s++) {
        for (size_t i = 0; i < NK; i++) seed[i] = dl[i] * expf(lps[(size_t)s * NK + i] - avg[i]) / (float)S;
        int lp = pc_forward(c, ck, s, x, N, true, &xin);
        if (lp < 0) return lp;
        if ((rc = sk_graph_backward(c->g, lp, seed))) return rc;
        c->self->n_backward += N;
        const float *gx = sk_graph_grad(c->g, xin);
        for (size_t i = 0; i < (size_t)N * D; i++) dx[i] += gx[i];
    }
    if (logp) memcpy(logp, avg, sizeof(float) * NK);
    return SK_OK;
}

static void pc_destroy(void *self)
{
    struct post_clf *c = self;
    sk_graph_free(c->g);
    sk_free(c->wbuf);
    sk_free(c->buf);
    sk_free(c);
}

struct sk_classifier *sk_bayes_classifier(struct sk_posterior *p, int S, uint64_t seed)
{
    struct sk_classifier *cl = sk_calloc(1, sizeof *cl);
    struct post_clf *c = sk_calloc(1, sizeof *c);
    if (!cl || !c || !(c->g = sk_graph_new()) || !(c->wbuf = sk_malloc(sizeof(float) * (p->model->n_params + 1)))) {
        sk_free(cl);
        if (c) {
            sk_graph_free(c->g);
            sk_free(c->wbuf);
        }
        sk_free(c);
        return NULL;
    }
    if (sk_bayes_prepare(p)) {
        sk_free(cl);
        sk_graph_free(c->g);
        sk_free(c->wbuf);
        sk_free(c);
        return NULL;
    }
    sk_graph_set_param_grads(c->g, false);
    c->p = p;
    c->S = sk_bayes_n_samples(p, S);
    c->key = noise_key(p, seed);
    c->self = cl;
    cl->self = c;
    cl->n_classes = p->model->n_classes;
    cl->in_c = p->model->in_c;
    cl->in_h = p->model->in_h;
    cl->in_w = p->model->in_w;
    cl->in_dim = p->model->in_dim;
    cl->stochastic = sk_bayes_stochastic(p);
    cl->n_samples = c->S;
    cl->kind = sk_bayes_method_name(p->method);
    cl->log_probs = pc_log_probs;
    cl->input_grad = pc_input_grad;
    cl->destroy = pc_destroy;
    return cl;
}
