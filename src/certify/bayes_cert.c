/* Guarantees for Bayesian networks: the certified share of posterior
 * samples with its Clopper-Pearson interval, and for mean-field vi the
 * weight-box lower bound of Wicker et al. 2020 (interval weights and
 * interval inputs through the chain of lirpa.h). */
#include "bayes/bayes_impl.h"
#include "certify/certify_impl.h"
#include "certify/lirpa.h"

#include <float.h>
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------- Clopper-Pearson ---------------- */

/* P(X >= k) (upper) or P(X <= k) for X ~ Binomial(n, p), summed in log space
 * from the mode outward is not needed at these sizes: terms in order. */
static double binom_tail(long k, long n, double p, bool upper)
{
    if (p <= 0) return upper ? (k <= 0 ? 1.0 : 0.0) : 1.0;
    if (p >= 1) return upper ? 1.0 : (k >= n ? 1.0 : 0.0);
    double lp = log(p), lq = log1p(-p), lnf = lgamma((double)n + 1), s = 0;
    long a = upper ? k : 0, b = upper ? n : k;
    for (long j = a; j <= b; j++)
        s += exp(lnf - lgamma((double)j + 1) - lgamma((double)(n - j) + 1) + (double)j * lp + (double)(n - j) * lq);
    return s > 1 ? 1 : s;
}

int sk_certify_clopper_pearson(long k, long n, double confidence, double *lo, double *hi)
{
    if (n < 1 || k < 0 || k > n)
        return sk_error(SK_EINVAL, "Clopper-Pearson: %ld successes of %ld trials (need 0 <= k <= n, n >= 1)", k, n);
    if (!(confidence > 0 && confidence < 1))
        return sk_error(SK_EINVAL, "Clopper-Pearson: confidence %g must lie in (0, 1)", confidence);
    double a = 0.5 * (1 - confidence);
    /* P(X >= k | p) rises with p: lo solves it = a; P(X <= k | p) falls: hi solves it = a */
    double l = 0, u = 1;
    if (k > 0) {
        double x0 = 0, x1 = 1;
        for (int it = 0; it < 200 && x1 - x0 > 1e-13; it++) {
            double mid = 0.5 * (x0 + x1);
            if (binom_tail(k, n, mid, true) < a) x0 = mid;
            else x1 = mid;
        }
        l = x0;
    }
    if (k < n) {
        double x0 = 0, x1 = 1;
        for (int it = 0; it < 200 && x1 - x0 > 1e-13; it++) {
            double mid = 0.5 * (x0 + x1);
            if (binom_tail(k, n, mid, false) > a) x0 = mid;
            else x1 = mid;
        }
        u = x1;
    }
    if (lo) *lo = l;
    if (hi) *hi = u;
    return SK_OK;
}

/* ---------------- interval weights ---------------- */

#define U_D (1.0 / 9007199254740992.0) /* 2^-53 */
/* gamma_n = n u / (1 - n u): |fl(sum of n products) - exact| <= gamma_n sum |terms| in any order */
static double gamma_n(double n, double u)
{
    return n * u / (1 - n * u);
}

/* Dense step over interval weights W +- R and inputs [xl, xu]: every product
 * of two intervals is the min / max of its four corners (exact interval
 * product, in double), the sums widened by their a-priori rounding error. */
static void dense_interval(const struct lp_step *s, const float *W, const float *R, const float *b, const float *br,
                           const float *xl, const float *xu, float *yl, float *yu)
{
    double g = gamma_n(3.0 * s->din + 6, U_D);
    for (int o = 0; o < s->dout; o++) {
        const float *w = W + (size_t)o * s->din, *r = R + (size_t)o * s->din;
        double lo = (double)b[o] - br[o], hi = (double)b[o] + br[o];
        double mag = fabs((double)b[o]) + br[o];
        for (int j = 0; j < s->din; j++) {
            double wl = (double)w[j] - r[j], wu = (double)w[j] + r[j], a = xl[j], z = xu[j];
            double p1 = wl * a, p2 = wl * z, p3 = wu * a, p4 = wu * z;
            double mn = fmin(fmin(p1, p2), fmin(p3, p4)), mx = fmax(fmax(p1, p2), fmax(p3, p4));
            lo += mn;
            hi += mx;
            mag += fmax(fabs(wl), fabs(wu)) * fmax(fabs(a), fabs(z));
        }
        double e = g * mag + 1e-300;
        yl[o] = sk_certify_down(lo - e);
        yu[o] = sk_certify_up(hi + e);
    }
}

/* Convolution over interval weights, midpoint-radius (Rump): with centre c,
 * radius r of the input box,
 *   y in W c + b +- (|W| r + R (|c| + r) + R_b),
 * each product by lp_lin_forward (float sgemm: gamma_{K+1} of |W||c| + |b|
 * for the centre; the sums of the non-negative radius terms are at least
 * (1 - gamma) of their exact values). */
static void conv_interval(const struct lp_step *s, const float *W, const float *aW, const float *R, const float *br,
                          const float *xl, const float *xu, float *yl, float *yu, float *work, float *col)
{
    int din = s->din, dout = s->dout, P = s->oh * s->ow;
    float *c = work, *r = c + din, *t = r + din, *ac = t + din;
    float *y0 = ac + din, *u1 = y0 + dout, *u2 = u1 + dout, *u3 = u2 + dout;
    for (int j = 0; j < din; j++) {
        c[j] = 0.5f * (xl[j] + xu[j]);
        r[j] = sk_certify_up(fmax((double)xu[j] - c[j], (double)c[j] - xl[j]));
        ac[j] = fabsf(c[j]);
        t[j] = sk_certify_up((double)ac[j] + r[j]);
    }
    lp_lin_forward(s, W, c, y0, true, col);
    lp_lin_forward(s, aW, r, u1, false, col);
    lp_lin_forward(s, aW, ac, u2, false, col);
    lp_lin_forward(s, R, t, u3, false, col);
    double g = gamma_n((double)s->ic * s->k * s->k + 2, FLT_EPSILON / 2);
    for (int o = 0; o < dout; o++) {
        int ch = o / P;
        double bb = fabs((double)s->b[ch]);
        double rad = ((double)u1[o] + u3[o]) / (1 - g) + br[ch] + g * ((double)u2[o] + bb) + 1e-37 * (s->ic * s->k * s->k + 2);
        yl[o] = sk_certify_down(y0[o] - rad);
        yu[o] = sk_certify_up(y0[o] + rad);
    }
}

/* Work space of one point's propagation. */
struct wb_work {
    struct lp_bounds b;
    float *tmp, *col, *work;
};

static void wb_free(struct wb_work *w)
{
    lp_bounds_free(&w->b);
    sk_free(w->tmp);
    sk_free(w->col);
    sk_free(w->work);
}

static int wb_alloc(const struct lp_net *net, struct wb_work *w)
{
    memset(w, 0, sizeof *w);
    int rc = lp_bounds_alloc(net, &w->b);
    w->tmp = sk_malloc(sizeof(float) * (4 * (size_t)net->maxd + 2));
    w->col = sk_malloc(sizeof(float) * lp_conv_col(net));
    w->work = sk_malloc(sizeof(float) * (8 * (size_t)net->maxd + 1));
    if (rc || !w->tmp || !w->col || !w->work) {
        wb_free(w);
        return SK_ENOMEM;
    }
    return SK_OK;
}

/* One box through the chain; the last step (a dense layer, for the
 * specification form) is left to the caller when spec. */
static void wb_point(const struct lp_net *net, const float *params, const float *wr, struct wb_work *w,
                     const float *lo, const float *hi, int upto)
{
    struct lp_bounds *b = &w->b;
    memcpy(b->lo[0], lo, sizeof(float) * (size_t)net->in_dim);
    memcpy(b->hi[0], hi, sizeof(float) * (size_t)net->in_dim);
    for (int i = 0; i < upto; i++) {
        const struct lp_step *s = &net->s[i];
        if (s->kind == LP_DENSE) {
            size_t wo = (size_t)(s->W - params), bo = (size_t)(s->b - params);
            dense_interval(s, s->W, wr + wo, s->b, wr + bo, b->lo[i], b->hi[i], b->lo[i + 1], b->hi[i + 1]);
        } else if (s->kind == LP_CONV) {
            size_t wo = (size_t)(s->W - params), bo = (size_t)(s->b - params);
            conv_interval(s, s->W, s->aW, wr + wo, wr + bo, b->lo[i], b->hi[i], b->lo[i + 1], b->hi[i + 1], w->work,
                          w->col);
        } else {
            lp_step_interval(net, b, i, w->tmp, w->col);
            memcpy(b->lo[i + 1], w->tmp, sizeof(float) * (size_t)s->dout);
            memcpy(b->hi[i + 1], w->tmp + s->dout, sizeof(float) * (size_t)s->dout);
        }
    }
}

/* Lower bound of (W_y - W_j) h + b_y - b_j over W +- R, b +- br and h in
 * [hl, hu]: the corners of each interval product, in double. */
static double spec_margin(const struct lp_step *s, const float *R, const float *br, int yc, int j, const float *hl,
                          const float *hu)
{
    const float *wy = s->W + (size_t)yc * s->din, *wj = s->W + (size_t)j * s->din;
    const float *ry = R + (size_t)yc * s->din, *rj = R + (size_t)j * s->din;
    double lo = (double)s->b[yc] - s->b[j] - ((double)br[yc] + br[j]);
    double mag = fabs((double)s->b[yc]) + fabs((double)s->b[j]) + br[yc] + br[j];
    for (int i = 0; i < s->din; i++) {
        double d = (double)wy[i] - wj[i], dr = (double)ry[i] + rj[i];
        double dl = d - dr, du = d + dr, a = hl[i], z = hu[i];
        lo += fmin(fmin(dl * a, dl * z), fmin(du * a, du * z));
        mag += fmax(fabs(dl), fabs(du)) * fmax(fabs(a), fabs(z));
    }
    return lo - gamma_n(4.0 * s->din + 8, U_D) * mag - 1e-300;
}

static bool has_batchnorm(const struct sk_model *m)
{
    for (int li = 0; li < m->n_layers; li++)
        if (m->layers[li].kind == SK_LAYER_BATCHNORM) return true;
    return false;
}

int sk_certify_bayes_weight_bounds(struct sk_model *m, const float *wr, const float *lo, const float *hi, int N,
                                   const int *y, float *zlo, float *zhi, float *mlo)
{
    int K = m->n_classes, D = m->in_dim;
    if (N < 0) return sk_error(SK_EINVAL, "weight-box bounds: %d rows", N);
    if (has_batchnorm(m))
        return sk_error(SK_EINVAL, "weight-box bounds: model '%s' has batch norm, whose interval weights are not "
                        "supported", m->spec);
    for (size_t i = 0; i < m->n_params; i++)
        if (!(wr[i] >= 0) || !isfinite(wr[i]))
            return sk_error(SK_EINVAL, "weight-box bounds: radius %g of parameter %zu must be finite and >= 0", wr[i], i);
    for (size_t i = 0; i < (size_t)N * D; i++)
        if (!(lo[i] <= hi[i])) return sk_error(SK_EINVAL, "weight-box bounds: box row %zu has lo > hi at input %zu", i / D, i % D);
    if (y)
        for (int n = 0; n < N; n++)
            if (y[n] < 0 || y[n] >= K)
                return sk_error(SK_EINVAL, "weight-box bounds: label %d of row %d outside the model's %d classes", y[n], n, K);
    struct lp_net net;
    int rc = lp_net_build(m, &net);
    if (rc) return rc;
    net.sound = true;
    bool spec = mlo && y && net.s[net.n - 1].kind == LP_DENSE;
    int fail = SK_OK;
#pragma omp parallel
    {
        struct wb_work w;
        int my = wb_alloc(&net, &w);
        if (my) {
#pragma omp atomic write
            fail = my;
        }
#pragma omp for schedule(dynamic, 4)
        for (int n = 0; n < N; n++) {
            if (my) continue;
            const float *pl = lo + (size_t)n * D, *ph = hi + (size_t)n * D;
            wb_point(&net, m->params, wr, &w, pl, ph, net.n);
            const float *ol = w.b.lo[net.n], *oh = w.b.hi[net.n];
            if (zlo) memcpy(zlo + (size_t)n * K, ol, sizeof(float) * (size_t)K);
            if (zhi) memcpy(zhi + (size_t)n * K, oh, sizeof(float) * (size_t)K);
            if (!mlo || !y) continue;
            float *ml = mlo + (size_t)n * K;
            const struct lp_step *last = &net.s[net.n - 1];
            for (int j = 0; j < K; j++) {
                if (j == y[n]) {
                    ml[j] = 0;
                    continue;
                }
                double v = (double)ol[y[n]] - oh[j];
                if (spec) {
                    double sv = spec_margin(last, wr + (last->W - m->params), wr + (last->b - m->params), y[n], j,
                                            w.b.lo[net.n - 1], w.b.hi[net.n - 1]);
                    v = sv > v ? sv : v;
                }
                ml[j] = sk_certify_down(v);
            }
        }
        wb_free(&w);
    }
    lp_net_free(&net);
    return fail ? fail : rc;
}

/* ---------------- the posterior ---------------- */

struct sk_certify_bayes_config sk_certify_bayes_defaults(void)
{
    return (struct sk_certify_bayes_config){ .method = -1, .samples = 0, .seed = 1, .confidence = 0.95, .n_k = 0,
                                             .k = NULL, .vi_box = true };
}

static const float default_k[] = { 1, 2, 3, 4, 5, 5.5f, 6, 7 };

void sk_certify_bayes_result_free(struct sk_certify_bayes_result *r)
{
    if (!r) return;
    sk_free(r->n_cert);
    sk_free(r->frac);
    sk_free(r->cp_lo);
    sk_free(r->cp_hi);
    sk_free(r->label);
    sk_free(r->vi_lower);
    sk_free(r->vi_k);
    sk_free(r->k);
    sk_free(r->k_mass);
    sk_free(r->k_certified);
    memset(r, 0, sizeof *r);
}

/* CROWN applies to dense layers with relu / leaky relu between them. */
static bool is_mlp(const struct sk_model *m)
{
    bool dense = false;
    for (int li = 0; li < m->n_layers; li++) {
        enum sk_layer_kind k = m->layers[li].kind;
        if (k == SK_LAYER_DENSE) dense = true;
        else if (k == SK_LAYER_LRELU && !(m->layers[li].p >= 0 && m->layers[li].p <= 1)) return false;
        else if (k != SK_LAYER_RELU && k != SK_LAYER_LRELU && k != SK_LAYER_FLATTEN && k != SK_LAYER_DROPOUT)
            return false;
    }
    return dense && m->layers[m->n_layers - 1].kind != SK_LAYER_RELU;
}

/* MC dropout: a sample is one mask per dropout layer (keep with 1 - p,
 * scaled by 1 / (1 - p), as sk_op_dropout); the mask of the input of a dense
 * layer is a column scaling of its weights, so the masked network is a
 * plain network with weights w. */
static int fold_dropout(const struct sk_model *m, float *w, uint64_t key)
{
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (L->kind != SK_LAYER_DROPOUT || !(L->p > 0)) continue;
        int nx = li + 1;
        while (nx < m->n_layers && (m->layers[nx].kind == SK_LAYER_FLATTEN ||
                                    (m->layers[nx].kind == SK_LAYER_DROPOUT && !(m->layers[nx].p > 0))))
            nx++;
        if (nx >= m->n_layers || m->layers[nx].kind != SK_LAYER_DENSE)
            return sk_error(SK_EINVAL, "certify: dropout layer %d of '%s' is followed by %s; certifying mc-dropout "
                            "samples needs a dense layer after each dropout (the mask scales its weights' columns)",
                            li, m->spec, nx < m->n_layers ? sk_layer_name(m->layers[nx].kind) : "nothing");
        const struct sk_layer *Dn = &m->layers[nx];
        int din = Dn->in[0] * Dn->in[1] * Dn->in[2], dout = Dn->out[0] * Dn->out[1] * Dn->out[2];
        float keep = 1.0f / (1.0f - L->p);
        uint64_t lk = sk_rng_derive(key, (uint64_t)li).key;
        float *W = w + Dn->w_off;
        for (int j = 0; j < din; j++) {
            float s = sk_rng_uniform_at(lk, (uint64_t)j) >= L->p ? keep : 0.0f;
            if (s == 1.0f) continue;
            for (int o = 0; o < dout; o++) W[(size_t)o * din + j] *= s;
        }
    }
    return SK_OK;
}

/* The parameters of sample s into buf (or a pointer into the posterior). */
static const float *sample_params(struct sk_posterior *p, uint64_t key, int s, float *buf, int *rc)
{
    if (p->method == SK_BAYES_MCDROPOUT) {
        memcpy(buf, p->model->params, sizeof(float) * p->model->n_params);
        *rc = fold_dropout(p->model, buf, sk_rng_derive(key, (uint64_t)s).key);
        return buf;
    }
    return sk_bayes_draw(p, key, s, buf);
}

static int check_config(const struct sk_posterior *p, const struct sk_certify_bayes_config *c)
{
    if (c->method != -1 && c->method != SK_CERTIFY_IBP && c->method != SK_CERTIFY_CROWN &&
        c->method != SK_CERTIFY_ALPHA_CROWN)
        return sk_error(SK_EINVAL, "certify: cfg.method %d is not -1 (automatic), ibp, crown or alpha-crown", c->method);
    if (c->samples < 0) return sk_error(SK_EINVAL, "certify: cfg.samples %d must be >= 0", c->samples);
    if (!(c->confidence > 0 && c->confidence < 1))
        return sk_error(SK_EINVAL, "certify: cfg.confidence %g must lie in (0, 1)", c->confidence);
    if (c->n_k < 0 || (c->n_k > 0 && !c->k)) return sk_error(SK_EINVAL, "certify: cfg.n_k %d without cfg.k", c->n_k);
    for (int i = 0; i < c->n_k; i++)
        if (!(c->k[i] > 0) || !isfinite(c->k[i]))
            return sk_error(SK_EINVAL, "certify: cfg.k[%d] = %g must be a finite radius > 0", i, c->k[i]);
    if (p->method == SK_BAYES_VI && !p->rho) return sk_error(SK_EINVAL, "certify: a vi posterior without scales (rho)");
    return SK_OK;
}

static int n_samples_of(const struct sk_posterior *p, int S)
{
    switch (p->method) {
    case SK_BAYES_ENSEMBLE:
    case SK_BAYES_SGLD:
        if (p->n_members < 1) return 1;
        return S > 0 && S < p->n_members ? S : p->n_members;
    case SK_BAYES_VI:
    case SK_BAYES_LAPLACE:
    case SK_BAYES_MCDROPOUT: return S > 0 ? S : 32;
    default: return 1;
    }
}

/* The vi lower bound: for each radius, interval weights k sigma. */
static int vi_box(struct sk_posterior *p, const float *lo, const float *hi, const int *lab, int N,
                  const struct sk_certify_bayes_config *c, struct sk_certify_bayes_result *r)
{
    struct sk_model *m = p->model;
    int K = m->n_classes, nk = c->n_k ? c->n_k : (int)(sizeof default_k / sizeof default_k[0]);
    const float *ks = c->n_k ? c->k : default_k;
    size_t P = m->n_params;
    r->n_k = nk;
    r->k = sk_malloc(sizeof(float) * (size_t)nk);
    r->k_mass = sk_malloc(sizeof(double) * (size_t)nk);
    r->k_certified = sk_calloc((size_t)nk, sizeof(int));
    r->vi_lower = sk_calloc((size_t)N + 1, sizeof(double));
    r->vi_k = sk_calloc((size_t)N + 1, sizeof(float));
    float *wr = sk_malloc(sizeof(float) * (P + 1)), *mlo = sk_malloc(sizeof(float) * ((size_t)N * K + 1));
    int rc = SK_ENOMEM;
    if (!r->k || !r->k_mass || !r->k_certified || !r->vi_lower || !r->vi_k || !wr || !mlo) goto done;
    const float *sig = p->vi_sigma;
    rc = SK_OK;
    for (int i = 0; i < nk && rc == SK_OK; i++) {
        double k = ks[i];
        /* q(|w_i - mu_i| <= k sigma_i for all i) = erf(k / sqrt 2)^P, rounded down */
        double mass = exp((double)P * log1p(-erfc(k / sqrt(2.0)))) * (1 - 1e-12);
        r->k[i] = ks[i];
        r->k_mass[i] = mass;
        for (size_t j = 0; j < P; j++) wr[j] = sk_certify_up((double)sig[j] * k);
        rc = sk_certify_bayes_weight_bounds(m, wr, lo, hi, N, lab, NULL, NULL, mlo);
        for (int n = 0; n < N && rc == SK_OK; n++) {
            const float *ml = mlo + (size_t)n * K;
            bool ok = K > 1;
            for (int j = 0; j < K && ok; j++)
                if (j != lab[n]) ok = ml[j] > 0;
            if (!ok) continue;
            r->k_certified[i]++;
            if (mass > r->vi_lower[n]) {
                r->vi_lower[n] = mass;
                r->vi_k[n] = ks[i];
            }
        }
    }
    double s = 0;
    for (int n = 0; n < N; n++) s += r->vi_lower[n];
    r->mean_vi_lower = N ? s / N : NAN;
done:
    sk_free(wr);
    sk_free(mlo);
    return rc;
}

int sk_certify_bayes(struct sk_posterior *p, const float *x, const int *y, int N, float eps,
                     const struct sk_certify_domain *box, const struct sk_certify_bayes_config *cfg,
                     struct sk_certify_bayes_result *r)
{
    double t0 = sk_now();
    struct sk_certify_bayes_config dc = sk_certify_bayes_defaults();
    const struct sk_certify_bayes_config *c = cfg ? cfg : &dc;
    memset(r, 0, sizeof *r);
    int rc = check_config(p, c);
    if (rc) return rc;
    struct sk_model *m = p->model;
    int K = m->n_classes, D = m->in_dim;
    if (N < 1) return sk_error(SK_EINVAL, "certify: %d points (need at least one)", N);
    if (!(eps >= 0) || !isfinite(eps)) return sk_error(SK_EINVAL, "certify: epsilon %g must be finite and >= 0", eps);
    if (y)
        for (int n = 0; n < N; n++)
            if (y[n] < 0 || y[n] >= K)
                return sk_error(SK_EINVAL, "certify: label %d of row %d outside the model's %d classes", y[n], n, K);
    int method = c->method >= 0 ? c->method : is_mlp(m) ? SK_CERTIFY_CROWN : SK_CERTIFY_IBP;
    int S = n_samples_of(p, c->samples);
    if ((rc = sk_bayes_prepare(p))) return rc;
    r->n = N;
    r->n_samples = S;
    r->method = method;
    r->mean_vi_lower = NAN;
    r->n_cert = sk_calloc((size_t)N, sizeof(int));
    r->frac = sk_malloc(sizeof(double) * (size_t)N);
    r->cp_lo = sk_malloc(sizeof(double) * (size_t)N);
    r->cp_hi = sk_malloc(sizeof(double) * (size_t)N);
    r->label = sk_malloc(sizeof(int) * (size_t)N);
    float *buf = sk_malloc(sizeof(float) * (m->n_params + 1)), *lp = sk_malloc(sizeof(float) * (size_t)N * K);
    unsigned char *cert = sk_malloc((size_t)N);
    float *lo = NULL, *hi = NULL;
    rc = SK_ENOMEM;
    if (!r->n_cert || !r->frac || !r->cp_lo || !r->cp_hi || !r->label || !buf || !lp || !cert) goto fail;
    if (y) {
        memcpy(r->label, y, sizeof(int) * (size_t)N);
    } else {
        /* the predictive's class: the mean of the samples' probabilities */
        if ((rc = sk_bayes_predict(p, x, N, S, c->seed, lp, NULL))) goto fail;
        for (int n = 0; n < N; n++) {
            int b = 0;
            for (int k = 1; k < K; k++)
                if (lp[(size_t)n * K + k] > lp[(size_t)n * K + b]) b = k;
            r->label[n] = b;
        }
    }
    struct sk_certify_crown_config cc = sk_certify_crown_defaults();
    cc.sound_fp = c->sound_fp;
    uint64_t key = sk_rng_derive(sk_rng_new(c->seed).key, SK_STREAM_NOISE).key;
    long clean = 0;
    for (int s = 0; s < S; s++) {
        rc = SK_OK;
        const float *w = sample_params(p, key, s, buf, &rc);
        if (rc) goto fail;
        struct sk_model view = *m;
        view.params = (float *)w;
        struct sk_certify_report rep;
        if ((rc = sk_certify_box_cfg(&view, (enum sk_certify_method)method, x, r->label, N, eps, box, &cc, cert,
                                     &rep)))
            goto fail;
        clean += rep.n_correct;
        for (int n = 0; n < N; n++) r->n_cert[n] += cert[n];
    }
    double sf = 0, sl = 0, sh = 0;
    for (int n = 0; n < N; n++) {
        r->frac[n] = (double)r->n_cert[n] / S;
        if ((rc = sk_certify_clopper_pearson(r->n_cert[n], S, c->confidence, &r->cp_lo[n], &r->cp_hi[n]))) goto fail;
        sf += r->frac[n];
        sl += r->cp_lo[n];
        sh += r->cp_hi[n];
        r->n_all += r->n_cert[n] == S;
        r->n_none += r->n_cert[n] == 0;
    }
    r->mean_frac = sf / N;
    r->mean_cp_lo = sl / N;
    r->mean_cp_hi = sh / N;
    r->sample_clean = (double)clean / ((double)S * N);
    if (p->method == SK_BAYES_VI && c->vi_box) {
        lo = sk_malloc(sizeof(float) * (size_t)N * D);
        hi = sk_malloc(sizeof(float) * (size_t)N * D);
        rc = !lo || !hi ? SK_ENOMEM : sk_certify_outward_box(x, (size_t)N * D, D, eps, box, lo, hi);
        if (!rc) rc = vi_box(p, lo, hi, r->label, N, c, r);
        if (rc) goto fail;
    }
    sk_free(buf);
    sk_free(lp);
    sk_free(cert);
    sk_free(lo);
    sk_free(hi);
    r->seconds = sk_now() - t0;
    return SK_OK;
fail:
    sk_free(buf);
    sk_free(lp);
    sk_free(cert);
    sk_free(lo);
    sk_free(hi);
    sk_certify_bayes_result_free(r);
    return rc;
}
