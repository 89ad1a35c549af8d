/* Bayesian methods: closed-form Gaussian KL against Monte Carlo, temperature
 * scaling of an over-confident network, the Laplace predictive of a linear
 * model against its closed form, EOT classifiers for every posterior (flags,
 * the EOT gradient against finite differences, an FGSM through the seam that
 * is weaker without EOT), every method learning a synthetic task, file
 * round trips, and Flipout (its forward against per-example weights, its
 * gradient against central differences, unbiased with a lower variance than
 * one weight draw per minibatch, reproducible), and the vectorised normal
 * draws against libm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bayes/bayes_impl.h"
#include "core/fastmath.h"
#include "skeptic/attack.h"
#include "skeptic/skeptic.h"
#include "testutil.h"

static void test_kl_mc(void)
{
    const float mu[4] = { 0.3f, -0.7f, 0.05f, 1.2f }, sg[4] = { 0.2f, 0.05f, 0.5f, 1.0f };
    float s = 0.4f;
    double kl = sk_bayes_kl_gauss(mu, sg, 4, s);
    /* MC: E_q[log q(w) - log p(w)] */
    struct sk_rng r = sk_rng_new(11);
    int M = 400000;
    double sum = 0, sum2 = 0;
    for (int t = 0; t < M; t++) {
        double v = 0;
        for (int i = 0; i < 4; i++) {
            double e = sk_rng_normal(&r), w = mu[i] + sg[i] * e;
            v += (-log(sg[i]) - 0.5 * e * e) - (-log(s) - 0.5 * w * w / ((double)s * s));
        }
        sum += v;
        sum2 += v * v;
    }
    double mc = sum / M, se = sqrt((sum2 / M - mc * mc) / M);
    CHECK(fabs(kl - mc) < 4 * se + 1e-9, "closed-form KL %.6f vs Monte Carlo %.6f +- %.6f", kl, mc, se);
    /* the posterior's KL (Gaussian prior) agrees with sk_bayes_kl_gauss */
    struct sk_model *m = sk_model_from_spec("mlp:2-2");
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_VI);
    p->rho = sk_malloc(sizeof(float) * 6);
    float sig[6];
    for (int i = 0; i < 6; i++) {
        m->params[i] = 0.1f * (float)i - 0.2f;
        p->rho[i] = -3.0f + 0.5f * (float)i;
        sig[i] = sk_softplusf(p->rho[i]);
    }
    p->vi.prior_sigma = 0.3f;
    double a = sk_bayes_kl(p, 1), b = sk_bayes_kl_gauss(m->params, sig, 6, 0.3f);
    CHECK(fabs(a - b) < 1e-9 * fmax(1, fabs(b)), "posterior KL %g = closed form %g", a, b);
    /* mixture prior: the one-sample estimate averages to the MC value of the same KL */
    p->vi.prior = SK_PRIOR_MIXTURE;
    double avg = 0;
    for (int t = 0; t < 2000; t++) avg += sk_bayes_kl(p, (uint64_t)t + 1) / 2000;
    CHECK(isfinite(avg) && avg > 0, "mixture KL estimate finite and positive (%g)", avg);
    sk_bayes_free(p);
}


static double acc_of(struct sk_posterior *p, const struct sk_dataset *d, int S)
{
    float *pb = malloc(sizeof(float) * (size_t)d->n * p->model->n_classes);
    sk_bayes_predict(p, d->x, d->n, S, 5, pb, NULL);
    double a = sk_metric_accuracy(pb, d->y, d->n, p->model->n_classes);
    free(pb);
    return a;
}

static double nll_of(struct sk_posterior *p, const struct sk_dataset *d, int S)
{
    float *pb = malloc(sizeof(float) * (size_t)d->n * p->model->n_classes);
    sk_bayes_predict(p, d->x, d->n, S, 5, pb, NULL);
    double a = sk_metric_nll(pb, d->y, d->n, p->model->n_classes);
    free(pb);
    return a;
}

static struct sk_train_config cfg_adam(int epochs, float lr)
{
    struct sk_train_config c = sk_train_defaults();
    c.epochs = epochs;
    c.batch = 32;
    c.seed = 3;
    c.opt = sk_optim_defaults(SK_OPT_ADAM);
    c.opt.lr = lr;
    return c;
}

static void test_temperature(void)
{
    struct sk_dataset *all = sk_data_blobs(1200, 3, 2, 1.2f, 1), *tr, *va;
    sk_data_split(all, 0.5f, 1, &tr, &va);
    struct sk_model *m = sk_model_from_spec("mlp:2-32-3:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 1);
    struct sk_train_config c = cfg_adam(30, 0.01f);
    CHECK(sk_train(m, &c, tr->x, tr->y, tr->n) == SK_OK, "train");
    /* make it over-confident: logits x 4 (scale the last layer) */
    const struct sk_layer *L = &m->layers[m->n_layers - 1];
    for (size_t i = 0; i < L->n_w; i++) m->params[L->w_off + i] *= 4;
    for (size_t i = 0; i < L->n_b; i++) m->params[L->b_off + i] *= 4;
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_DETERMINISTIC);
    double before = nll_of(p, va, 1);
    float T = 0;
    CHECK(sk_bayes_fit_temperature(p, va->x, va->y, va->n, 1, 1, &T) == SK_OK, "fit temperature");
    double after = nll_of(p, va, 1);
    CHECK(T > 2.0f && after < before - 0.05, "temperature %g lowers NLL %g -> %g", T, before, after);
    /* the fitted T is a minimum: nudging it either way does not lower the NLL */
    p->temperature = T * 1.1f;
    double up = nll_of(p, va, 1);
    p->temperature = T / 1.1f;
    double dn = nll_of(p, va, 1);
    CHECK(up >= after - 1e-6 && dn >= after - 1e-6, "T is a minimum (%g %g %g)", dn, after, up);
    sk_bayes_free(p);
    sk_dataset_free(all);
    sk_dataset_free(tr);
    sk_dataset_free(va);
}

/* Closed-form last-layer Laplace for a linear softmax model, in double:
 * H = sum_n Lambda_n (x) xt xt^T + delta I, Sigma = H^-1 (Gauss–Jordan),
 * probit p = softmax(f / sqrt(1 + pi/8 var)). */
static void invert(double *A, int n)
{
    double *I = calloc((size_t)n * n, sizeof(double));
    for (int i = 0; i < n; i++) I[(size_t)i * n + i] = 1;
    for (int c = 0; c < n; c++) {
        int pr = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[(size_t)r * n + c]) > fabs(A[(size_t)pr * n + c])) pr = r;
        for (int k = 0; k < n; k++) {
            double t = A[(size_t)c * n + k];
            A[(size_t)c * n + k] = A[(size_t)pr * n + k];
            A[(size_t)pr * n + k] = t;
            t = I[(size_t)c * n + k];
            I[(size_t)c * n + k] = I[(size_t)pr * n + k];
            I[(size_t)pr * n + k] = t;
        }
        double d = A[(size_t)c * n + c];
        for (int k = 0; k < n; k++) {
            A[(size_t)c * n + k] /= d;
            I[(size_t)c * n + k] /= d;
        }
        for (int r = 0; r < n; r++)
            if (r != c) {
                double f = A[(size_t)r * n + c];
                for (int k = 0; k < n; k++) {
                    A[(size_t)r * n + k] -= f * A[(size_t)c * n + k];
                    I[(size_t)r * n + k] -= f * I[(size_t)c * n + k];
                }
            }
    }
    memcpy(A, I, sizeof(double) * (size_t)n * n);
    free(I);
}

static void test_laplace_linear(void)
{
    struct sk_dataset *all = sk_data_blobs(400, 3, 2, 1.0f, 4), *d, *te;
    sk_data_split(all, 0.25f, 1, &d, &te);
    struct sk_model *m = sk_model_from_spec("mlp:2-3");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 2);
    struct sk_train_config c = cfg_adam(20, 0.05f);
    sk_train(m, &c, d->x, d->y, d->n);
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_LAPLACE);
    struct sk_bayes_laplace_config lc = sk_bayes_laplace_defaults();
    lc.hessian = SK_LAPLACE_FULL;
    lc.prior_precision = 0.5f;
    lc.probit = true;
    CHECK(sk_bayes_fit_laplace(p, &lc, d->x, d->y, d->n, NULL, NULL, 0) == SK_OK, "fit laplace: %s", sk_last_error());
    int K = 3, D1 = 3, PK = 9;
    const float *W = m->params + m->layers[0].w_off, *b = m->params + m->layers[0].b_off;
    double H[81] = { 0 };
    for (int n = 0; n < d->n; n++) {
        double xt[3] = { d->x[2 * n], d->x[2 * n + 1], 1 }, z[3], pr[3], s = 0;
        for (int k = 0; k < K; k++) z[k] = W[2 * k] * xt[0] + W[2 * k + 1] * xt[1] + b[k];
        for (int k = 0; k < K; k++) s += (pr[k] = exp(z[k]));
        for (int k = 0; k < K; k++) pr[k] /= s;
        for (int k = 0; k < K; k++)
            for (int j = 0; j < K; j++)
                for (int a = 0; a < D1; a++)
                    for (int e = 0; e < D1; e++)
                        H[(k * D1 + a) * PK + j * D1 + e] += ((k == j) * pr[k] - pr[k] * pr[j]) * xt[a] * xt[e];
    }
    for (int i = 0; i < PK; i++) H[i * PK + i] += 0.5;
    invert(H, PK);
    double cov_err = 0;
    for (int i = 0; i < PK * PK; i++) cov_err = fmax(cov_err, fabs(H[i] - p->ll_cov[i]) / (fabs(H[i]) + 1e-3));
    CHECK(cov_err < 1e-3, "posterior covariance matches the inverse of H + delta I (rel err %g)", cov_err);
    float *pb = malloc(sizeof(float) * (size_t)te->n * K);
    sk_bayes_predict(p, te->x, te->n, 1, 1, pb, NULL);
    double perr = 0;
    for (int n = 0; n < te->n; n++) {
        double xt[3] = { te->x[2 * n], te->x[2 * n + 1], 1 }, z[3], s = 0, mx = -1e300;
        for (int k = 0; k < K; k++) {
            double f = W[2 * k] * xt[0] + W[2 * k + 1] * xt[1] + b[k], v = 0;
            for (int a = 0; a < D1; a++)
                for (int e = 0; e < D1; e++) v += xt[a] * H[(k * D1 + a) * PK + k * D1 + e] * xt[e];
            z[k] = f / sqrt(1 + SK_PI / 8 * v);
            mx = fmax(mx, z[k]);
        }
        for (int k = 0; k < K; k++) s += exp(z[k] - mx);
        for (int k = 0; k < K; k++) perr = fmax(perr, fabs(exp(z[k] - mx) / s - pb[n * K + k]));
    }
    CHECK(perr < 1e-4, "probit predictive matches the closed form (max abs err %g)", perr);
    /* MC draws of the last layer have covariance Sigma */
    int M = 20000;
    double mean[9] = { 0 }, c2[81] = { 0 };
    float *buf = malloc(sizeof(float) * m->n_params);
    for (int s = 0; s < M; s++) {
        const float *w = sk_bayes_draw(p, 77, s, buf);
        double dv[9];
        for (int k = 0; k < K; k++) {
            dv[k * D1 + 0] = w[m->layers[0].w_off + 2 * k] - W[2 * k];
            dv[k * D1 + 1] = w[m->layers[0].w_off + 2 * k + 1] - W[2 * k + 1];
            dv[k * D1 + 2] = w[m->layers[0].b_off + k] - b[k];
        }
        for (int i = 0; i < PK; i++) {
            mean[i] += dv[i] / M;
            for (int j = 0; j < PK; j++) c2[i * PK + j] += dv[i] * dv[j] / M;
        }
    }
    double cerr = 0, scale = 0;
    for (int i = 0; i < PK * PK; i++) {
        cerr = fmax(cerr, fabs(c2[i] - H[i]));
        scale = fmax(scale, fabs(H[i]));
    }
    CHECK(cerr < 0.05 * scale, "MC draws have the posterior covariance (max err %g of %g)", cerr, scale);
    /* marginal-likelihood choice of delta is inside the grid and finite; kfac fits */
    lc.prior_precision = 0;
    CHECK(sk_bayes_fit_laplace(p, &lc, d->x, d->y, d->n, NULL, NULL, 0) == SK_OK && p->prior_precision > 1e-4f &&
              p->prior_precision < 1e4f,
          "marginal likelihood picks delta = %g", p->prior_precision);
    lc.hessian = SK_LAPLACE_KFAC;
    CHECK(sk_bayes_fit_laplace(p, &lc, d->x, d->y, d->n, NULL, NULL, 0) == SK_OK, "kfac fit");
    double a = acc_of(p, te, 1);
    p->method = SK_BAYES_DETERMINISTIC;
    double a0 = acc_of(p, te, 1);
    p->method = SK_BAYES_LAPLACE;
    CHECK(a > 0.7 && fabs(a - a0) <= 0.03, "kfac probit predictive accuracy %g vs the MAP's %g", a, a0);
    /* save / load round trip (kfac) */
    char path[512];
    snprintf(path, sizeof path, "%s/laplace.safetensors", sk_test_tmpdir());
    CHECK(sk_bayes_save(p, path) == SK_OK, "save laplace: %s", sk_last_error());
    struct sk_posterior *q = sk_bayes_load(path);
    CHECK(q && q->method == SK_BAYES_LAPLACE && q->laplace.probit, "load laplace: %s", sk_last_error());
    if (q) {
        float *qb = malloc(sizeof(float) * (size_t)te->n * K);
        sk_bayes_predict(p, te->x, te->n, 1, 1, pb, NULL);
        sk_bayes_predict(q, te->x, te->n, 1, 1, qb, NULL);
        CHECK(sk_rel_err(qb, pb, (size_t)te->n * K) < 1e-6, "loaded laplace predicts the same");
        free(qb);
    }
    sk_bayes_free(q);
    free(buf);
    free(pb);
    sk_bayes_free(p);
    sk_dataset_free(all);
    sk_dataset_free(d);
    sk_dataset_free(te);
}

/* mean of the classifier's cross-entropy */
static double clf_loss(struct sk_classifier *c, const float *x, const int *y, int N)
{
    float *lp = malloc(sizeof(float) * (size_t)N * c->n_classes);
    c->log_probs(c->self, x, N, lp);
    double s = 0;
    for (int i = 0; i < N; i++) s -= lp[(size_t)i * c->n_classes + y[i]];
    free(lp);
    return s;
}

/* FGSM through the seam: accuracy of `judge` on x + eps sign(grad of `attacker`) */
static double fgsm_acc(struct sk_classifier *attacker, struct sk_classifier *judge, const struct sk_dataset *d, float eps)
{
    int N = d->n, D = d->dim;
    float *dx = malloc(sizeof(float) * (size_t)N * D), *xa = malloc(sizeof(float) * (size_t)N * D);
    attacker->input_grad(attacker->self, d->x, N, sk_logp_loss_ce, d->y, NULL, NULL, dx);
    for (size_t i = 0; i < (size_t)N * D; i++) xa[i] = d->x[i] + eps * (dx[i] > 0 ? 1.0f : dx[i] < 0 ? -1.0f : 0.0f);
    int *pred = malloc(sizeof(int) * (size_t)N);
    sk_classifier_predict(judge, xa, N, pred);
    int c = 0;
    for (int i = 0; i < N; i++) c += pred[i] == d->y[i];
    free(dx);
    free(xa);
    free(pred);
    return (double)c / N;
}

/* The settings each method needs beyond the common training config. */
struct method_setup {
    struct sk_bayes_vi_config vi;
    int members, member_epochs;  /* ensemble */
    struct sk_train_config sgld; /* sgld: its own config (step size, epochs) */
    struct sk_bayes_sgld_config sc;
};

/* Train posterior p (model initialised) by method meth on tr, through the
 * one library entry (the switch train --method and compare share). */
static int train_method(struct sk_posterior *p, int meth, const struct sk_train_config *c,
                        const struct method_setup *ms, const struct sk_dataset *tr)
{
    struct sk_bayes_train_config bc = sk_bayes_train_defaults();
    bc.train = *c;
    bc.vi = ms->vi;
    bc.members = ms->members;
    bc.member_init = SK_INIT_HE_UNIFORM;
    if (meth == SK_BAYES_ENSEMBLE) bc.train.epochs = ms->member_epochs;
    bc.pretrained = meth == SK_BAYES_SGLD; /* sgld starts from the initialised weights here */
    bc.sgld_train = ms->sgld;
    bc.sgld = ms->sc;
    CHECK((int)p->method == meth, "posterior of method %d", meth);
    return sk_bayes_train(p, &bc, tr->x, tr->y, tr->n);
}

static void test_methods(void)
{
    struct sk_dataset *tr = sk_data_moons(800, 0.15f, 1), *te = sk_data_moons(400, 0.15f, 2);
    const char *spec = "mlp:2-64-64-2:relu";
    char path[512];
    for (int meth = 0; meth <= SK_BAYES_LAPLACE; meth++) {
        struct sk_model *m = sk_model_from_spec(meth == SK_BAYES_MCDROPOUT ? "mlp:2-64-64-2:relu:dropout0.1" : spec);
        sk_model_init(m, SK_INIT_HE_UNIFORM, 7);
        struct sk_posterior *p = sk_bayes_new(m, (enum sk_bayes_method)meth);
        struct sk_train_config c = cfg_adam(30, 0.01f);
        struct method_setup ms = { sk_bayes_vi_defaults(), 4, 15, cfg_adam(40, 0.05f), sk_bayes_sgld_defaults() };
        ms.vi.prior_sigma = 1.0f;
        ms.sc.burnin_epochs = 20;
        ms.sc.thin = 50;
        ms.sc.n_keep = 10;
        int rc = train_method(p, meth, &c, &ms, tr);
        const char *name = sk_bayes_method_name((enum sk_bayes_method)meth);
        CHECK(rc == SK_OK, "%s trains: %s", name, sk_last_error());
        double a = acc_of(p, te, 20);
        CHECK(a > 0.95, "%s learns two moons: test accuracy %g", name, a);
        /* the classifier: EOT flags */
        struct sk_classifier *cl = sk_bayes_classifier(p, 8, 3);
        bool stoch = meth == SK_BAYES_VI || meth == SK_BAYES_MCDROPOUT || meth == SK_BAYES_LAPLACE;
        int want_s = meth == SK_BAYES_DETERMINISTIC ? 1 : meth == SK_BAYES_ENSEMBLE ? 4 : 8;
        CHECK(cl && cl->stochastic == stoch && cl->n_samples == want_s && !strcmp(cl->kind, name),
              "%s classifier: stochastic %d samples %d kind %s", name, cl ? cl->stochastic : -1, cl ? cl->n_samples : -1,
              cl ? cl->kind : "");
        if (meth == SK_BAYES_ENSEMBLE) {
            /* deterministic posterior: EOT gradient equals central differences of the averaged loss */
            int N = 5;
            float dx[10], x[10];
            memcpy(x, te->x, sizeof x);
            cl->input_grad(cl->self, x, N, sk_logp_loss_ce, te->y, NULL, NULL, dx);
            double worst = 0;
            for (int i = 0; i < 10; i++) {
                float h = 1e-2f, s = x[i];
                x[i] = s + h;
                double up = clf_loss(cl, x, te->y, N);
                x[i] = s - h;
                double dn = clf_loss(cl, x, te->y, N);
                x[i] = s;
                worst = fmax(worst, fabs((up - dn) / (2 * h) - dx[i]) / (fabs(dx[i]) + 1e-2));
            }
            CHECK(worst < 2e-2, "ensemble EOT gradient matches finite differences (rel err %g)", worst);
        }
        /* save and load: same predictive with the same seed */
        snprintf(path, sizeof path, "%s/%s.safetensors", sk_test_tmpdir(), name);
        CHECK(sk_bayes_save(p, path) == SK_OK, "%s saves: %s", name, sk_last_error());
        struct sk_posterior *q = sk_bayes_load(path);
        CHECK(q && q->method == p->method && q->n_members == p->n_members, "%s loads: %s", name, sk_last_error());
        if (q) {
            int K = 2;
            float *pa = malloc(sizeof(float) * (size_t)te->n * K), *pq = malloc(sizeof(float) * (size_t)te->n * K);
            sk_bayes_predict(p, te->x, te->n, 6, 9, pa, NULL);
            sk_bayes_predict(q, te->x, te->n, 6, 9, pq, NULL);
            CHECK(sk_rel_err(pq, pa, (size_t)te->n * K) < 1e-6, "%s: loaded file predicts the same", name);
            free(pa);
            free(pq);
        }
        sk_bayes_free(q);
        sk_classifier_free(cl);
        sk_bayes_free(p);
    }
    sk_dataset_free(tr);
    sk_dataset_free(te);
}

static void test_vi_eot(void)
{
    /* a VI network with large posterior scales: an FGSM whose gradient comes
     * from one weight sample (no EOT) is weaker, judged by the 50-sample
     * predictive, than one that follows the 50-sample EOT gradient */
    struct sk_dataset *all = sk_data_blobs(1800, 3, 20, 1.0f, 5), *tr, *te;
    sk_data_split(all, 0.33f, 1, &tr, &te);
    struct sk_model *m = sk_model_from_spec("mlp:20-64-3:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 1);
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_VI);
    struct sk_train_config c = cfg_adam(15, 0.01f);
    struct sk_bayes_vi_config vc = sk_bayes_vi_defaults();
    vc.prior_sigma = 1.0f;
    vc.init_sigma = 0.3f;
    CHECK(sk_bayes_train_vi(p, &c, &vc, tr->x, tr->y, tr->n) == SK_OK, "vi trains");
    /* prediction with the local trick in the first layer draws from the same
     * predictive as plain weight sampling */
    {
        int n = 40, K = 3, S = 4000;
        float *fa = malloc(sizeof(float) * n * K), *fb = malloc(sizeof(float) * n * K), ma[40], mb[40];
        sk_bayes_predict(p, te->x, n, S, 1, fa, ma);
        sk_bayes_fast_vi_predict = false;
        sk_bayes_predict(p, te->x, n, S, 2, fb, mb);
        sk_bayes_fast_vi_predict = true;
        double dp = 0, sa = 0, sb = 0;
        for (int i = 0; i < n * K; i++) dp = fmax(dp, fabs(fa[i] - fb[i]));
        for (int i = 0; i < n; i++) {
            sa += ma[i];
            sb += mb[i];
        }
        CHECK(dp < 0.02 && fabs(sa - sb) < 0.1 * sb && sb > 0.01 * n,
              "local-trick prediction matches weight sampling (max |dp| %g, mean MI %g vs %g)", dp, sa / n, sb / n);
        free(fa);
        free(fb);
    }
    struct sk_classifier *one = sk_bayes_classifier(p, 1, 1), *eot = sk_bayes_classifier(p, 50, 2),
                         *judge = sk_bayes_classifier(p, 50, 3);
    CHECK(one->stochastic && one->n_samples == 1 && eot->n_samples == 50, "flags");
    double clean = fgsm_acc(eot, judge, te, 0.0f);
    double a1 = fgsm_acc(one, judge, te, 0.6f), a50 = fgsm_acc(eot, judge, te, 0.6f);
    CHECK(clean > 0.8, "clean accuracy %g", clean);
    CHECK(a50 < a1, "the EOT attack is stronger: accuracy %g (EOT) < %g (one sample)", a50, a1);
    /* the attack library labels the run without EOT */
    struct sk_attack_config ac = sk_attack_defaults(SK_ATTACK_FGSM, SK_NORM_LINF, 0.6f);
    ac.clip_min = -1e3f;
    ac.clip_max = 1e3f;
    struct sk_attack_result *r1 = sk_attack_evaluate(one, &ac, te->x, te->y, 200);
    struct sk_attack_result *r50 = sk_attack_evaluate(eot, &ac, te->x, te->y, 200);
    CHECK(r1 && r1->stochastic && r1->no_eot && r1->warn_no_eot, "one-sample attack on a stochastic model is "
          "labelled no-EOT (%s)", r1 ? (r1->n_warnings ? r1->warnings[0] : "no warning") : sk_last_error());
    CHECK(r50 && r50->stochastic && !r50->no_eot && r50->eot_samples == 50, "50-sample attack is EOT");
    sk_attack_result_free(r1);
    sk_attack_result_free(r50);
    sk_classifier_free(one);
    sk_classifier_free(eot);
    sk_classifier_free(judge);
    sk_bayes_free(p);
    sk_dataset_free(all);
    sk_dataset_free(tr);
    sk_dataset_free(te);
}

/* every method on a CNN spec (VI samples weights per minibatch there) */
static void test_cnn(void)
{
    struct sk_dataset *all = sk_data_blobs(900, 3, 16, 1.0f, 8), *tr, *te;
    sk_data_split(all, 0.33f, 1, &tr, &te);
    for (int meth = SK_BAYES_VI; meth <= SK_BAYES_LAPLACE; meth++) {
        const char *spec = meth == SK_BAYES_MCDROPOUT ? "cnn:1x4x4-conv4k3p1-relu-flatten-dropout0.1-dense3"
                                                      : "cnn:1x4x4-conv4k3p1-relu-flatten-dense3";
        struct sk_model *m = sk_model_from_spec(spec);
        sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
        struct sk_posterior *p = sk_bayes_new(m, (enum sk_bayes_method)meth);
        struct sk_train_config c = cfg_adam(10, 0.01f);
        struct method_setup ms = { sk_bayes_vi_defaults(), 3, 10, c, sk_bayes_sgld_defaults() };
        ms.sgld.opt.lr = 0.05f;
        ms.sc.burnin_epochs = 5;
        ms.sc.thin = 10;
        ms.sc.n_keep = 5;
        int rc = train_method(p, meth, &c, &ms, tr);
        const char *name = sk_bayes_method_name((enum sk_bayes_method)meth);
        CHECK(rc == SK_OK, "cnn %s trains: %s", name, sk_last_error());
        double a = acc_of(p, te, 10);
        CHECK(a > 0.85, "cnn %s learns 16-d blobs as 1x4x4 images: accuracy %g", name, a);
        struct sk_classifier *cl = sk_bayes_classifier(p, 4, 1);
        float dx[16 * 4];
        CHECK(cl && cl->input_grad(cl->self, te->x, 4, sk_logp_loss_ce, te->y, NULL, NULL, dx) == SK_OK,
              "cnn %s EOT input gradient", name);
        sk_classifier_free(cl);
        sk_bayes_free(p);
    }
    sk_dataset_free(all);
    sk_dataset_free(tr);
    sk_dataset_free(te);
}

/* ---------------- Flipout ---------------- */

/* The per-example weights Flipout stands for: W_n = mu + (sigma eps) (.)
 * s_out,n s_in,n^T on dense and conv weights, mu + sigma eps elsewhere. */
static void flipout_weights(const struct sk_model *m, const float *mu, const float *sig, const float *eps,
                            uint64_t key, int row, float *w)
{
    for (size_t i = 0; i < m->n_params; i++) w[i] = mu[i] + sig[i] * eps[i];
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (L->kind != SK_LAYER_DENSE && L->kind != SK_LAYER_CONV) continue;
        int O = L->units, C = L->in[0], KK = L->kind == SK_LAYER_CONV ? L->k * L->k : 1;
        for (int o = 0; o < O; o++)
            for (int c = 0; c < C; c++) {
                float s = sk_flipout_sign(key, li, 1, (size_t)row * O + o) * sk_flipout_sign(key, li, 0, (size_t)row * C + c);
                for (int t = 0; t < KK; t++) {
                    size_t i = L->w_off + ((size_t)o * C + c) * KK + t;
                    w[i] = mu[i] + s * sig[i] * eps[i];
                }
            }
    }
}

/* Loss of the Flipout forward against the mean CE of each row under its
 * own weights W_n, and its gradients against central differences. */
static void test_flipout_exact(void)
{
    const char *specs[2] = { "cnn:2x5x5-conv3k3p1-tanh-avgpool2-flatten-dense4-tanh-dense3",
                             "cnn:2x6x6-conv4k3p1-relu-maxpool2-conv3k3-relu-flatten-dense3" };
    for (int si = 0; si < 2; si++) {
        struct sk_model *m = sk_model_from_spec(specs[si]);
        sk_model_init(m, SK_INIT_HE_UNIFORM, 4);
        size_t P = m->n_params;
        int n = 3, D = m->in_dim, K = m->n_classes;
        float *mu = malloc(sizeof(float) * P), *sig = malloc(sizeof(float) * P), *eps = malloc(sizeof(float) * P);
        float *dmu = malloc(sizeof(float) * P), *dsig = malloc(sizeof(float) * P), *w = malloc(sizeof(float) * P);
        float *x = malloc(sizeof(float) * (size_t)n * D), lp[8];
        int y[3] = { 0, 2, 1 };
        struct sk_rng r = sk_rng_new(21);
        for (size_t i = 0; i < P; i++) {
            mu[i] = m->params[i] + 0.05f * sk_rng_normal(&r);
            sig[i] = 0.05f + 0.2f * sk_rng_uniform(&r);
            eps[i] = sk_rng_normal(&r);
        }
        for (int i = 0; i < n * D; i++) x[i] = sk_rng_normal(&r);
        uint64_t key = 77;
        struct sk_flipout *f = sk_flipout_new(m, 4);
        float loss = 0;
        long correct = 0;
        CHECK(f && sk_flipout_loss_grad(f, m, mu, sig, eps, x, y, n, key, &loss, &correct, dmu, dsig) == SK_OK,
              "flipout step: %s", sk_last_error());
        /* the signs really flip: not all rows share one pattern */
        int differ = 0;
        for (int j = 0; j < 8; j++) differ += sk_flipout_sign(key, 0, 0, j) != sk_flipout_sign(key, 0, 0, 0);
        CHECK(differ > 0, "signs vary");
        double ref = 0;
        struct sk_model *view = sk_model_clone(m);
        for (int row = 0; row < n; row++) {
            flipout_weights(m, mu, sig, eps, key, row, w);
            memcpy(view->params, w, sizeof(float) * P);
            sk_model_log_probs(view, x + (size_t)row * D, 1, lp);
            ref -= lp[y[row]] / n;
        }
        CHECK(fabs(loss - ref) < 1e-5 * (1 + fabs(ref)), "%s: flipout loss %.7f = mean CE under per-row weights %.7f",
              specs[si], loss, ref);
        (void)K;
        /* central differences in mu and sigma (eps and signs fixed); the
         * relu/maxpool spec only where no kink is crossed (loss smooth) */
        double worst = 0;
        int bad = 0, checked = 0;
        for (int which = 0; which < 2; which++)
            for (size_t i = 0; i < P; i++) {
                float *v = which ? sig : mu, keep = v[i], h = 2e-3f, lpl = 0, lmi = 0;
                v[i] = keep + h;
                sk_flipout_loss_grad(f, m, mu, sig, eps, x, y, n, key, &lpl, NULL, w, w);
                v[i] = keep - h;
                sk_flipout_loss_grad(f, m, mu, sig, eps, x, y, n, key, &lmi, NULL, w, w);
                v[i] = keep;
                double fd = ((double)lpl - lmi) / (2.0 * h), an = which ? dsig[i] : dmu[i];
                double err = fabs(fd - an) / (1e-2 + fabs(an));
                checked++;
                if (err > worst) worst = err;
                bad += err > 0.05;
            }
        /* relu/maxpool: allow a handful of kinks crossed by the +-h step */
        CHECK(bad <= (si ? 3 : 0), "%s: flipout gradient vs central differences: %d of %d off, worst rel err %.3g",
              specs[si], bad, checked, worst);
        sk_flipout_free(f);
        sk_model_free(view);
        sk_model_free(m);
        free(mu);
        free(sig);
        free(eps);
        free(dmu);
        free(dsig);
        free(w);
        free(x);
    }
}

/* Over many draws of eps and signs the Flipout gradient averages to the
 * same vector as the plain one-sample estimator (both unbiased for
 * d/d(mu, sigma) E_q[CE]), with a smaller variance. */
static void test_flipout_unbiased(void)
{
    struct sk_dataset *d = sk_data_blobs(32, 3, 36, 1.0f, 5);
    struct sk_model *m = sk_model_from_spec("cnn:1x6x6-conv4k3p1-relu-maxpool2-flatten-dense8-relu-dense3");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 6);
    size_t P = m->n_params;
    int T = 400;
    float *sig = malloc(sizeof(float) * P), *eps = malloc(sizeof(float) * P), *w = malloc(sizeof(float) * P);
    float *g1 = malloc(sizeof(float) * P), *g2 = malloc(sizeof(float) * P);
    double *sum = calloc(4 * P, sizeof(double)), *sq = calloc(4 * P, sizeof(double)); /* [estimator][mu|sigma][P] */
    for (size_t i = 0; i < P; i++) sig[i] = 0.15f;
    struct sk_flipout *f = sk_flipout_new(m, 32);
    struct sk_model *view = sk_model_clone(m);
    struct sk_graph *g = sk_graph_new();
    int rc = SK_OK;
    for (int t = 0; t < T && !rc; t++) {
        uint64_t key = sk_rng_derive(123, (uint64_t)t).key;
        sk_bayes_normals(sk_rng_derive(key, 1).key, eps, P);
        rc = sk_flipout_loss_grad(f, m, m->params, sig, eps, d->x, d->y, d->n, key, NULL, NULL, g1, g2);
        for (size_t i = 0; i < P; i++) {
            sum[i] += g1[i];
            sq[i] += (double)g1[i] * g1[i];
            sum[P + i] += g2[i];
            sq[P + i] += (double)g2[i] * g2[i];
        }
        /* plain: one weight set for the whole minibatch, independent draw */
        sk_bayes_normals(sk_rng_derive(key, 9).key, eps, P);
        for (size_t i = 0; i < P; i++) view->params[i] = m->params[i] + sig[i] * eps[i];
        if (!rc) rc = sk_model_loss_grad(view, g, d->x, d->y, d->n, SK_MODE_TRAIN, 0, NULL);
        for (size_t i = 0; i < P; i++) {
            double a = view->grads[i], b = (double)view->grads[i] * eps[i];
            sum[2 * P + i] += a;
            sq[2 * P + i] += a * a;
            sum[3 * P + i] += b;
            sq[3 * P + i] += b * b;
        }
    }
    CHECK(rc == SK_OK, "flipout / plain gradients: %s", sk_last_error());
    double z2 = 0, vf[2] = { 0, 0 }, vp[2] = { 0, 0 };
    int nz = 0;
    for (size_t j = 0; j < 2 * P; j++) {
        double mf = sum[j] / T, mp = sum[2 * P + j] / T;
        double varf = (sq[j] / T - mf * mf) * T / (T - 1), varp = (sq[2 * P + j] / T - mp * mp) * T / (T - 1);
        vf[j >= P] += varf;
        vp[j >= P] += varp;
        double se2 = (varf + varp) / T;
        if (se2 < 1e-20) continue;
        z2 += (mf - mp) * (mf - mp) / se2;
        nz++;
    }
    z2 /= nz > 0 ? nz : 1;
    CHECK(nz > (int)P && z2 > 0.7 && z2 < 1.4, "flipout and plain gradient means agree: mean z^2 %.3f over %d coordinates", z2, nz);
    double rmu = vf[0] / vp[0], rsig = vf[1] / vp[1];
    CHECK(rmu < 0.8 && rsig < 0.8, "flipout lowers the gradient variance: ratio %.3f (mu), %.3f (sigma)", rmu, rsig);
    printf("flipout / one-sample gradient variance on a small CNN, batch 32, sigma 0.15: mu %.3f, sigma %.3f "
           "(mean z^2 of the difference of means %.3f)\n", rmu, rsig, z2);
    sk_flipout_free(f);
    sk_graph_free(g);
    sk_model_free(view);
    sk_model_free(m);
    sk_dataset_free(d);
    free(sig);
    free(eps);
    free(w);
    free(g1);
    free(g2);
    free(sum);
    free(sq);
}

/* Training with Flipout: same seed, same bits; the flag changes the result. */
static void test_flipout_train(void)
{
    struct sk_dataset *d = sk_data_blobs(200, 3, 16, 1.0f, 8);
    float *res[3];
    for (int run = 0; run < 3; run++) {
        struct sk_model *m = sk_model_from_spec("cnn:1x4x4-conv4k3p1-relu-flatten-dense3");
        sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
        struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_VI);
        struct sk_train_config c = cfg_adam(2, 0.01f);
        struct sk_bayes_vi_config vc = sk_bayes_vi_defaults();
        vc.flipout = run < 2;
        CHECK(sk_bayes_train_vi(p, &c, &vc, d->x, d->y, d->n) == SK_OK, "vi run %d", run);
        size_t P = m->n_params;
        res[run] = malloc(sizeof(float) * 2 * P);
        memcpy(res[run], m->params, sizeof(float) * P);
        memcpy(res[run] + P, p->rho, sizeof(float) * P);
        if (run == 2) {
            CHECK(!memcmp(res[0], res[1], sizeof(float) * 2 * P), "flipout: same seed, same bits");
            CHECK(memcmp(res[0], res[2], sizeof(float) * 2 * P) != 0, "flipout on and off differ");
        }
        sk_bayes_free(p);
    }
    CHECK(!sk_bayes_vi_defaults().flipout, "flipout is off by default (it does not pay at equal CPU time)");
    for (int i = 0; i < 3; i++) free(res[i]);
    sk_dataset_free(d);
}

/* Checkpoints every `every` steps into `path`; with stop_at > 0 the run ends
 * (status 1) after the first checkpoint at or past that step, as a kill -9
 * right after it would leave things. */
struct ckpt_ctx {
    const char *path;
    long stop_at;
    int saved;
};

static int ckpt_save(void *ctx, struct sk_trainer *t)
{
    struct ckpt_ctx *k = ctx;
    int rc = sk_checkpoint_save(k->path, t, NULL);
    if (rc) return rc;
    k->saved++;
    return k->stop_at > 0 && t->st.step >= k->stop_at ? 1 : 0;
}

/* The bytes of a trained posterior: mu, then rho (vi) or the kept samples
 * (sgld), then the sample count; malloc'ed, length in *len. */
static unsigned char *posterior_bytes(const struct sk_posterior *p, size_t *len)
{
    size_t P = p->model->n_params;
    size_t extra = p->method == SK_BAYES_VI ? P : (size_t)p->n_members * P;
    unsigned char *b = malloc(sizeof(float) * (P + extra) + sizeof(int));
    memcpy(b, p->model->params, sizeof(float) * P);
    memcpy(b + sizeof(float) * P, p->method == SK_BAYES_VI ? p->rho : p->members, sizeof(float) * extra);
    memcpy(b + sizeof(float) * (P + extra), &p->n_members, sizeof(int));
    *len = sizeof(float) * (P + extra) + sizeof(int);
    return b;
}

/* Run `kind` of a resume check: 0 uninterrupted without checkpoints, 1
 * uninterrupted with them, 2 stopped after the checkpoint at step `stop`,
 * 3 resumed from it in a fresh posterior. */
static unsigned char *resume_run(int meth, int variant, int kind, long stop, const char *path,
                                 const struct sk_dataset *d, size_t *len, int *rc)
{
    struct sk_model *m = sk_model_from_spec("mlp:2-16-16-2:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 5);
    struct sk_posterior *p = sk_bayes_new(m, (enum sk_bayes_method)meth);
    struct sk_train_config c = cfg_adam(4, 0.01f);
    struct ckpt_ctx k = { path, kind == 2 ? stop : 0, 0 };
    if (kind > 0) {
        c.on_checkpoint = ckpt_save;
        c.checkpoint_every = 7;
        c.ctx = &k;
    }
    if (kind == 3) c.resume = path;
    if (meth == SK_BAYES_VI) {
        struct sk_bayes_vi_config vc = sk_bayes_vi_defaults();
        vc.local_reparam = variant == 0;    /* 1: one weight draw per minibatch through the graph */
        vc.prior = variant == 0 ? SK_PRIOR_MIXTURE : SK_PRIOR_GAUSSIAN; /* the mixture's KL draws noise */
        vc.anneal_epochs = 2;
        *rc = sk_bayes_train_vi(p, &c, &vc, d->x, d->y, d->n);
    } else {
        struct sk_bayes_sgld_config sc = sk_bayes_sgld_defaults();
        sc.burnin_epochs = 1;
        sc.thin = 3;
        sc.n_keep = 4;                       /* a ring that wraps around before the end */
        sc.cycles = variant;                 /* 0: constant step size; 2: cyclical */
        c.opt.lr = 0.05f;
        *rc = sk_bayes_train_sgld(p, &c, &sc, d->x, d->y, d->n);
    }
    unsigned char *b = *rc ? NULL : posterior_bytes(p, len);
    CHECK(*rc || kind == 0 || k.saved > 0, "checkpoints written");
    sk_bayes_free(p);
    return b;
}

/* VI and SGLD through the one training loop: a run stopped right after a
 * checkpoint and resumed from it in a fresh process state ends bitwise
 * identical (mu, rho / kept samples and their count) to an uninterrupted run,
 * and writing checkpoints changes nothing. */
static void test_resume(void)
{
    struct sk_dataset *d = sk_data_moons(300, 0.15f, 4); /* 10 batches of 32 per epoch, 40 steps */
    char path[512];
    snprintf(path, sizeof path, "%s/bayes_resume.ckpt", sk_test_tmpdir());
    const struct { int meth, variant; long stop; } runs[] = {
        { SK_BAYES_VI, 0, 21 }, { SK_BAYES_VI, 1, 14 }, { SK_BAYES_SGLD, 0, 14 }, { SK_BAYES_SGLD, 2, 28 },
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        const char *name = sk_bayes_method_name((enum sk_bayes_method)runs[r].meth);
        size_t len[4] = { 0 };
        int rc[4];
        unsigned char *b[4];
        for (int kind = 0; kind < 4; kind++)
            b[kind] = resume_run(runs[r].meth, runs[r].variant, kind, runs[r].stop, path, d, &len[kind], &rc[kind]);
        CHECK(rc[0] == SK_OK && rc[1] == SK_OK && rc[2] == 1 && rc[3] == SK_OK, "%s %d: runs %d %d %d %d (%s)", name,
              runs[r].variant, rc[0], rc[1], rc[2], rc[3], sk_last_error());
        CHECK(b[0] && b[1] && len[0] == len[1] && !memcmp(b[0], b[1], len[0]), "%s %d: checkpoints change nothing",
              name, runs[r].variant);
        CHECK(b[0] && b[3] && len[0] == len[3] && !memcmp(b[0], b[3], len[0]),
              "%s %d: stopped at step %ld and resumed = uninterrupted, bit for bit", name, runs[r].variant,
              runs[r].stop);
        for (int kind = 0; kind < 4; kind++) free(b[kind]);
    }
    /* a checkpoint of one method does not resume another */
    int rc;
    size_t len;
    resume_run(SK_BAYES_VI, 0, 2, 7, path, d, &len, &rc);
    free(resume_run(SK_BAYES_SGLD, 0, 3, 0, path, d, &len, &rc));
    CHECK(rc == SK_EFORMAT && strstr(sk_last_error(), "checkpoint tensor"), "vi checkpoint into sgld: %s",
          sk_last_error());
    sk_dataset_free(d);
}

/* The vectorised Box–Muller of sk_bayes_normals against the same formula in
 * double precision with libm, and the moments of a million draws. */
static void test_normals(void)
{
    const uint64_t G = 0x9E3779B97F4A7C15ull, key = 0x1234567u;
    size_t n = 1000001;
    float *v = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * 4);
    CHECK(v && w, "allocation");
    if (!v || !w) return;
    sk_bayes_normals(key, v, n);
    double worst = 0, s1 = 0, s2 = 0, s4 = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = i / 2;
        uint64_t a = sk_mix64(key + (2 * j + 1) * G), b = sk_mix64(key + (2 * j + 2) * G);
        double u1 = ((double)(a >> 40) + 1.0) * 0x1.0p-24, u2 = (double)(b >> 40) * 0x1.0p-24;
        double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
        double ref = i % 2 ? r * sin(t) : r * cos(t), e = fabs(v[i] - ref) / (1.0 + fabs(ref));
        if (e > worst) worst = e;
        s1 += v[i], s2 += (double)v[i] * v[i], s4 += (double)v[i] * v[i] * v[i] * v[i];
    }
    double mean = s1 / n, var = s2 / n - mean * mean, kurt = s4 / n / (var * var);
    CHECK(worst < 2e-6, "normals differ from the libm Box-Muller by %.3g (relative to 1 + |x|)", worst);
    /* standard errors: 1e-3 for the mean, 1.4e-3 for the variance, 5e-3 for the kurtosis */
    CHECK(fabs(mean) < 5e-3 && fabs(var - 1) < 7e-3 && fabs(kurt - 3) < 0.025, "moments %g %g %g", mean, var, kurt);
    /* an odd count ends with the cosine half of its pair; a prefix is a prefix */
    sk_bayes_normals(key, w, 3);
    CHECK(w[0] == v[0] && w[1] == v[1] && w[2] == v[2], "the first 3 of 3 equal the first 3 of %zu", n);
    free(v);
    free(w);
    /* the softplus kernels of VI: exp(-a) on [0, 100] and log1p(e) on [0, 1],
     * relative to double-precision libm */
    double we = 0, wl = 0;
    for (int i = 0; i <= 200000; i++) {
        float a = 100.0f * (float)i / 200000;
        double ref = exp(-(double)a), got = sk_fast_exp_neg(a);
        double e1 = a > 87.0f ? fabs(got) : fabs(got - ref) / ref;
        if (e1 > we) we = e1;
        float e = (float)i / 200000 * (i % 2 ? 1.0f : 1e-6f);
        double rl = log1p((double)e), gl = sk_fast_log1p_unit(e);
        double e2 = e > 0 ? fabs(gl - rl) / rl : fabs(gl);
        if (e2 > wl) wl = e2;
    }
    CHECK(we < 1e-6 && wl < 1e-6, "fast exp(-a) relative error %.3g, log1p %.3g (need < 1e-6)", we, wl);
}

static void test_errors(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:2-3");
    CHECK(!sk_bayes_new(m, SK_BAYES_MCDROPOUT) && strstr(sk_last_error(), "dropout"), "mc dropout without dropout");
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_VI);
    struct sk_train_config c = cfg_adam(1, 0.01f);
    struct sk_bayes_vi_config vc = sk_bayes_vi_defaults();
    vc.init_sigma = 0;
    float x[2] = { 0, 0 };
    int y[1] = { 0 };
    CHECK(sk_bayes_train_vi(p, &c, &vc, x, y, 1) == SK_EINVAL && strstr(sk_last_error(), "init sigma"), "bad init sigma");
    CHECK(sk_bayes_method_parse("bbb") == SK_BAYES_VI && sk_bayes_method_parse("nope") == -1, "method names");
    sk_bayes_free(p);
    char path[512];
    snprintf(path, sizeof path, "%s/none.safetensors", sk_test_tmpdir());
    CHECK(!sk_bayes_load(path) && strstr(sk_last_error(), "none.safetensors"), "missing file named: %s",
          sk_last_error());
}

int main(void)
{
    sk_set_threads(2);
    test_kl_mc();
    test_temperature();
    test_laplace_linear();
    test_methods();
    test_vi_eot();
    test_cnn();
    test_flipout_exact();
    test_flipout_unbiased();
    test_flipout_train();
    test_resume();
    test_normals();
    test_errors();
    return sk_test_finish("test_bayes");
}
