/* The classifier seam over a model: deterministic, or Monte Carlo dropout
 * with S masks averaged per call (expectation over transformation). */
#include "skeptic/model.h"

#include <math.h>
#include <string.h>

struct model_clf {
    struct sk_model *m;
    struct sk_graph *g;
    enum sk_mode mode;
    int samples;
    uint64_t key;
    uint64_t calls;
    float *buf;          /* S*N*K log-probs of the samples */
    size_t buf_n;
    struct sk_classifier *self;
};

static int ensure_buf(struct model_clf *c, size_t n)
{
    if (c->buf_n >= n) return SK_OK;
    sk_free(c->buf);
    c->buf = sk_malloc(n * sizeof(float));
    c->buf_n = c->buf ? n : 0;
    return c->buf ? SK_OK : SK_ENOMEM;
}

/* Forward of sample s on x; returns the log-softmax node. */
static int forward(struct model_clf *c, const float *x, int N, bool needs_grad, uint64_t noise, int *xin)
{
    sk_graph_reset(c->g);
    int shape[2] = { N, c->m->in_dim };
    *xin = sk_graph_input(c->g, x, 2, shape, needs_grad);
    c->self->n_forward += N;
    return sk_op_log_softmax(c->g, sk_model_forward(c->m, c->g, *xin, c->mode, noise));
}

static uint64_t sample_key(struct model_clf *c, uint64_t call, int s)
{
    return sk_rng_derive(c->key, call * 1000003ull + (uint64_t)s).key;
}

/* log of the average of the samples' probabilities, row by row (log-sum-exp). */
static void average(const float *lps, int S, int N, int K, float *out)
{
    for (size_t i = 0; i < (size_t)N * K; i++) {
        float mx = lps[i];
        for (int s = 1; s < S; s++) mx = fmaxf(mx, lps[(size_t)s * N * K + i]);
        double acc = 0;
        for (int s = 0; s < S; s++) acc += exp((double)lps[(size_t)s * N * K + i] - mx);
        out[i] = (float)(mx + log(acc / S));
    }
}

static int clf_log_probs(void *self, const float *x, int N, float *logp)
{
    struct model_clf *c = self;
    int K = c->m->n_classes, S = c->samples, xin;
    uint64_t call = c->calls++;
    if (S == 1) {
        int lp = forward(c, x, N, false, sample_key(c, call, 0), &xin);
        if (lp < 0) return lp;
        memcpy(logp, sk_graph_value(c->g, lp), sizeof(float) * (size_t)N * K);
        return SK_OK;
    }
    int rc = ensure_buf(c, (size_t)S * N * K);
    if (rc) return rc;
    for (int s = 0; s < S; s++) {
        int lp = forward(c, x, N, false, sample_key(c, call, s), &xin);
        if (lp < 0) return lp;
        memcpy(c->buf + (size_t)s * N * K, sk_graph_value(c->g, lp), sizeof(float) * (size_t)N * K);
    }
    average(c->buf, S, N, K, logp);
    return SK_OK;
}

static int clf_input_grad(void *self, const float *x, int N, sk_logp_loss_fn f, void *fctx, float *logp,
                          float *loss, float *dx)
{
    struct model_clf *c = self;
    int K = c->m->n_classes, S = c->samples, D = c->m->in_dim, xin;
    uint64_t call = c->calls++;
    /* buf: S sample log-probs, then the average, then dL/dlogp, then a seed */
    int rc = ensure_buf(c, (size_t)(S + 3) * N * K);
    if (rc) return rc;
    float *lps = c->buf, *avg = lps + (size_t)S * N * K, *dl = avg + (size_t)N * K, *seed = dl + (size_t)N * K;
    if (S == 1) {
        int lp = forward(c, x, N, true, sample_key(c, call, 0), &xin);
        if (lp < 0) return lp;
        memcpy(avg, sk_graph_value(c->g, lp), sizeof(float) * (size_t)N * K);
        f(fctx, avg, N, K, loss, dl);
        if ((rc = sk_graph_backward(c->g, lp, dl))) return rc;
        c->self->n_backward += N;
        memcpy(dx, sk_graph_grad(c->g, xin), sizeof(float) * (size_t)N * D);
    } else {
        for (int s = 0; s < S; s++) {
            int lp = forward(c, x, N, false, sample_key(c, call, s), &xin);
            if (lp < 0) return lp;
            memcpy(lps + (size_t)s * N * K, sk_graph_value(c->g, lp), sizeof(float) * (size_t)N * K);
        }
        average(lps, S, N, K, avg);
        f(fctx, avg, N, K, loss, dl);
        /* d avg_k / d lp_{s,k} = p_{s,k} / (S pbar_k): replay each sample's masks */
        memset(dx, 0, sizeof(float) * (size_t)N * D);
        for (int s = 0; s < S; s++) {
            for (size_t i = 0; i < (size_t)N * K; i++)
                seed[i] = dl[i] * expf(lps[(size_t)s * N * K + i] - avg[i]) / (float)S;
            int lp = forward(c, x, N, true, sample_key(c, call, s), &xin);
            if (lp < 0) return lp;
            if ((rc = sk_graph_backward(c->g, lp, seed))) return rc;
            c->self->n_backward += N;
            const float *gx = sk_graph_grad(c->g, xin);
            for (size_t i = 0; i < (size_t)N * D; i++) dx[i] += gx[i];
        }
    }
    if (logp) memcpy(logp, avg, sizeof(float) * (size_t)N * K);
    return SK_OK;
}

static void clf_destroy(void *self)
{
    struct model_clf *c = self;
    sk_graph_free(c->g);
    sk_free(c->buf);
    sk_free(c);
}

struct sk_classifier *sk_classifier_from_model(struct sk_model *m, enum sk_mode mode, int samples, uint64_t seed)
{
    if (mode == SK_MODE_TRAIN) {
        sk_error(SK_EINVAL, "a classifier runs the model in eval or mc mode, not train mode "
                 "(train-mode batch norm would make attacks and metrics batch-dependent)");
        return NULL;
    }
    if (samples < 1) samples = 1;
    if (mode == SK_MODE_EVAL) samples = 1;
    struct sk_classifier *cl = sk_calloc(1, sizeof *cl);
    struct model_clf *c = sk_calloc(1, sizeof *c);
    if (!cl || !c || !(c->g = sk_graph_new())) {
        sk_free(cl);
        if (c) sk_graph_free(c->g);
        sk_free(c);
        return NULL;
    }
    sk_graph_set_param_grads(c->g, false);
    c->m = m;
    c->mode = mode;
    c->samples = samples;
    c->key = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_DROPOUT).key;
    c->self = cl;
    cl->self = c;
    cl->n_classes = m->n_classes;
    cl->in_c = m->in_c;
    cl->in_h = m->in_h;
    cl->in_w = m->in_w;
    cl->in_dim = m->in_dim;
    cl->stochastic = mode == SK_MODE_MC && sk_model_has_dropout(m);
    cl->n_samples = samples;
    cl->kind = mode == SK_MODE_MC ? "mc-dropout" : "deterministic";
    cl->log_probs = clf_log_probs;
    cl->input_grad = clf_input_grad;
    cl->destroy = clf_destroy;
    return cl;
}

void sk_classifier_free(struct sk_classifier *c)
{
    if (!c) return;
    if (c->destroy) c->destroy(c->self);
    sk_free(c);
}

int sk_classifier_predict(struct sk_classifier *c, const float *x, int N, int *pred)
{
    int K = c->n_classes;
    float *lp = sk_malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * K);
    if (!lp) return SK_ENOMEM;
    int rc = c->log_probs(c->self, x, N, lp);
    if (!rc)
        for (int i = 0; i < N; i++) {
            const float *r = lp + (size_t)i * K;
            int b = 0;
            for (int k = 1; k < K; k++)
                if (r[k] > r[b]) b = k;
            pred[i] = b;
        }
    sk_free(lp);
    return rc;
}

void sk_logp_loss_ce(void *labels, const float *logp, int N, int K, float *loss, float *dlogp)
{
    const int *y = labels;
    memset(dlogp, 0, sizeof(float) * (size_t)N * K);
    for (int i = 0; i < N; i++) {
        if (loss) loss[i] = -logp[(size_t)i * K + y[i]];
        dlogp[(size_t)i * K + y[i]] = -1.0f;
    }
}

void sk_logp_loss_ce_targeted(void *targets, const float *logp, int N, int K, float *loss, float *dlogp)
{
    const int *t = targets;
    memset(dlogp, 0, sizeof(float) * (size_t)N * K);
    for (int i = 0; i < N; i++) {
        if (loss) loss[i] = logp[(size_t)i * K + t[i]];
        dlogp[(size_t)i * K + t[i]] = 1.0f;
    }
}
