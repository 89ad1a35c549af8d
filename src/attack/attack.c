/* Attack configuration, projections and norms, the dispatcher that runs an
 * attack (or the suite) on the rows still standing, and the evaluation:
 * clean and robust accuracy, norms, cost, audits, accuracy-versus-eps. */
#include "attack/internal.h"

#include <stdio.h>

static const char *const attack_names[SK_ATTACK_COUNT] = {
    "fgsm", "pgd", "mifgsm", "apgd-ce", "apgd-dlr", "apgd-t", "cw", "deepfool", "fmn", "square", "sparse", "suite",
};

const char *sk_attack_name(enum sk_attack_kind k)
{
    return (unsigned)k < SK_ATTACK_COUNT ? attack_names[k] : "?";
}

int sk_attack_parse(const char *s)
{
    for (int i = 0; s && i < SK_ATTACK_COUNT; i++)
        if (!strcmp(s, attack_names[i])) return i;
    if (s && !strcmp(s, "bim")) return SK_ATTACK_PGD;
    if (s && !strcmp(s, "mi-fgsm")) return SK_ATTACK_MIFGSM;
    return -1;
}

static const char *const norm_names[] = { "linf", "l2", "l1", "l0" };
const char *sk_norm_name(enum sk_norm p) { return (unsigned)p < 4 ? norm_names[p] : "?"; }
int sk_norm_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, norm_names[i])) return i;
    if (s && (!strcmp(s, "inf") || !strcmp(s, "Linf"))) return SK_NORM_LINF;
    if (s && !strcmp(s, "L2")) return SK_NORM_L2;
    return -1;
}

const char *sk_target_mode_name(enum sk_target_mode t)
{
    static const char *const n[] = { "untargeted", "given", "random", "least-likely" };
    return (unsigned)t < 4 ? n[t] : "?";
}

static bool is_minnorm(enum sk_attack_kind k)
{
    return k == SK_ATTACK_CW || k == SK_ATTACK_DEEPFOOL || k == SK_ATTACK_FMN;
}

struct sk_attack_config sk_attack_defaults(enum sk_attack_kind kind, enum sk_norm norm, float eps)
{
    struct sk_attack_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.norm = norm;
    c.eps = eps;
    c.restarts = 1;
    c.n_target_classes = 9;
    c.momentum = 1.0f;
    c.queries = 5000;
    c.p_init = kind == SK_ATTACK_SPARSE ? 0.3f : 0.8f;
    c.cw_search_steps = 9;
    c.cw_c_init = 1e-2f;
    c.overshoot = 0.02f;
    c.batch = 256;
    c.clip_min = 0;
    c.clip_max = 1;
    c.audit = true;
    c.verdict_samples = SK_ATTACK_VERDICT_SAMPLES;
    return c;
}

/* default steps and step size of an attack */
static void resolve(struct sk_attack_config *c, enum sk_attack_kind kind)
{
    if (c->steps <= 0) {
        switch (kind) {
        case SK_ATTACK_FGSM: c->steps = 1; break;
        case SK_ATTACK_PGD: c->steps = 20; break;
        case SK_ATTACK_MIFGSM: c->steps = 10; break;
        case SK_ATTACK_CW: c->steps = 100; break;
        case SK_ATTACK_DEEPFOOL: c->steps = 50; break;
        default: c->steps = 100; break;
        }
    }
    if (c->step_size <= 0) {
        if (kind == SK_ATTACK_PGD) c->step_size = 2.5f * c->eps / c->steps;
        else if (kind == SK_ATTACK_MIFGSM) c->step_size = c->eps / c->steps;
        else if (kind == SK_ATTACK_CW) c->step_size = 0.01f;
    }
    if (c->restarts < 1) c->restarts = 1;
    if (c->batch < 1) c->batch = 256;
    if (c->queries < 1) c->queries = 5000;
    if (c->p_init <= 0) c->p_init = kind == SK_ATTACK_SPARSE ? 0.3f : 0.8f;
    if (c->cw_search_steps < 1) c->cw_search_steps = 9;
    if (c->cw_c_init <= 0) c->cw_c_init = 1e-2f;
    if (c->n_target_classes < 1) c->n_target_classes = 9;
    if (c->verdict_samples < 1) c->verdict_samples = SK_ATTACK_VERDICT_SAMPLES;
}

/* ---- small shared helpers ---- */

int sk_attack_argmax(const float *r, int K)
{
    int b = 0;
    for (int k = 1; k < K; k++)
        if (r[k] > r[b]) b = k;
    return b;
}

bool sk_attack_is_adv(const struct sk_actx *a, const float *lp, int y, int t)
{
    int am = sk_attack_argmax(lp, a->K);
    if (t >= 0 && !a->t_loss_only) return am == t;
    return am != y;
}

uint64_t sk_attack_rowkey(const struct sk_actx *a, int tag, int restart, int row)
{
    uint64_t k = sk_rng_derive(a->key, (uint64_t)tag * 4096u + (uint64_t)restart).key;
    return sk_rng_derive(k, (uint64_t)row).key;
}

void sk_attack_lossfn(void *ctx, const float *logp, int N, int K, float *loss, float *dlogp)
{
    const struct sk_lctx *lc = ctx;
    switch (lc->loss) {
    case SK_LOSS_CW:
        sk_margin_rows(SK_MARGIN_CW, logp, N, K, lc->y, lc->t, loss, dlogp);
        return;
    case SK_LOSS_DLR:
        sk_margin_rows(SK_MARGIN_DLR, logp, N, K, lc->y, lc->t, loss, dlogp);
        return;
    default:
        if (lc->t)
            sk_logp_loss_ce_targeted((void *)lc->t, logp, N, K, loss, dlogp);
        else
            sk_logp_loss_ce((void *)lc->y, logp, N, K, loss, dlogp);
    }
}

double sk_attack_norm(enum sk_norm p, const float *v, int n, int channels)
{
    double s = 0;
    if (p == SK_NORM_LINF) {
        for (int i = 0; i < n; i++) s = fmax(s, fabs(v[i]));
    } else if (p == SK_NORM_L2) {
        for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
        s = sqrt(s);
    } else if (p == SK_NORM_L1) {
        for (int i = 0; i < n; i++) s += fabs(v[i]);
    } else {
        int C = channels > 0 ? channels : 1, P = n / C;
        for (int q = 0; q < P; q++) {
            bool ch = false;
            for (int c = 0; c < C; c++) ch |= fabsf(v[(size_t)c * P + q]) > 1e-7f;
            s += ch;
        }
    }
    return s;
}

double sk_attack_rownorm(const struct sk_actx *a, enum sk_norm p, const float *xa, const float *x0)
{
    double s = 0;
    int D = a->D;
    if (p == SK_NORM_L0) {
        int C = a->img_c, P = D / C;
        for (int q = 0; q < P; q++) {
            bool ch = false;
            for (int c = 0; c < C; c++) ch |= fabsf(xa[(size_t)c * P + q] - x0[(size_t)c * P + q]) > 1e-7f;
            s += ch;
        }
        return s;
    }
    for (int j = 0; j < D; j++) {
        double d = (double)xa[j] - x0[j];
        if (p == SK_NORM_LINF) s = fmax(s, fabs(d));
        else if (p == SK_NORM_L2) s += d * d;
        else s += fabs(d);
    }
    return p == SK_NORM_L2 ? sqrt(s) : s;
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Euclidean projection of v (n) onto the L1 ball of radius eps (Duchi et al. 2008). */
static void proj_l1(float *v, int n, float eps)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += fabs(v[i]);
    if (s <= eps) return;
    float *u = sk_malloc(sizeof(float) * (size_t)n);
    if (!u) { /* fall back to scaling (still inside the ball) */
        for (int i = 0; i < n; i++) v[i] *= (float)(eps / s);
        return;
    }
    for (int i = 0; i < n; i++) u[i] = fabsf(v[i]);
    qsort(u, (size_t)n, sizeof(float), cmp_desc);
    double cs = 0, theta = 0;
    for (int i = 0; i < n; i++) {
        cs += u[i];
        double th = (cs - eps) / (i + 1);
        if (u[i] - th > 0) theta = th;
    }
    for (int i = 0; i < n; i++) {
        float m = fabsf(v[i]) - (float)theta;
        v[i] = m > 0 ? copysignf(m, v[i]) : 0;
    }
    sk_free(u);
}

static void project(enum sk_norm p, float eps, float lo, float hi, const float *x0, float *x, int M, int D, int C)
{
    for (int i = 0; i < M; i++) {
        float *xi = x + (size_t)i * D;
        const float *x0i = x0 + (size_t)i * D;
        if (p == SK_NORM_LINF) {
            for (int j = 0; j < D; j++) {
                /* box first, then the ball: the same point when they meet; when x0 lies
                 * farther than eps outside the box (data not in [lo, hi], e.g. moons)
                 * the eps constraint wins, and the loop below only fixes rounding
                 * (box last, it stepped ulp by ulp across the gap: a hang near 0) */
                float v = fminf(fmaxf(xi[j], lo), hi);
                v = fminf(fmaxf(v, x0i[j] - eps), x0i[j] + eps);
                /* x0 +- eps rounds; keep |v - x0| <= eps in float */
                while (fabsf(v - x0i[j]) > eps) v = nextafterf(v, x0i[j]);
                xi[j] = v;
            }
            continue;
        }
        if (p == SK_NORM_L2 && isfinite(eps)) {
            double s = 0;
            for (int j = 0; j < D; j++) {
                double d = (double)xi[j] - x0i[j];
                s += d * d;
            }
            s = sqrt(s);
            if (s > eps) {
                double sc = eps / s * (1 - 1e-7);
                for (int j = 0; j < D; j++) xi[j] = (float)(x0i[j] + sc * ((double)xi[j] - x0i[j]));
            }
        } else if (p == SK_NORM_L1 && isfinite(eps)) {
            for (int j = 0; j < D; j++) xi[j] -= x0i[j];
            proj_l1(xi, D, eps * (1 - 1e-6f));
            for (int j = 0; j < D; j++) xi[j] += x0i[j];
        } else if (p == SK_NORM_L0 && isfinite(eps)) {
            /* keep the k pixels of largest change */
            int P = D / C, k = (int)eps;
            int changed = 0;
            for (int q = 0; q < P; q++) {
                bool ch = false;
                for (int c = 0; c < C; c++) ch |= fabsf(xi[(size_t)c * P + q] - x0i[(size_t)c * P + q]) > 1e-7f;
                changed += ch;
            }
            while (changed > k) { /* drop the smallest change (rare path: sparse keeps k by design) */
                int bq = -1;
                float bv = INFINITY;
                for (int q = 0; q < P; q++) {
                    float m = 0;
                    for (int c = 0; c < C; c++) m = fmaxf(m, fabsf(xi[(size_t)c * P + q] - x0i[(size_t)c * P + q]));
                    if (m > 1e-7f && m < bv) {
                        bv = m;
                        bq = q;
                    }
                }
                for (int c = 0; c < C; c++) xi[(size_t)c * P + bq] = x0i[(size_t)c * P + bq];
                changed--;
            }
        }
        for (int j = 0; j < D; j++) xi[j] = fminf(fmaxf(xi[j], lo), hi);
    }
}

void sk_attack_project(enum sk_norm p, float eps, float lo, float hi, const float *x0, float *x, int n, int dim)
{
    project(p, eps, lo, hi, x0, x, n, dim, 1);
}

void sk_attack_proj_rows(const struct sk_actx *a, float eps, const float *x0, float *x, int M)
{
    project(a->cfg.norm, eps, a->cfg.clip_min, a->cfg.clip_max, x0, x, M, a->D, a->img_c);
}

/* ---- dispatcher ---- */

static int check_config(const struct sk_classifier *c, const struct sk_attack_config *cfg, bool targeted)
{
    enum sk_attack_kind k = cfg->kind;
    enum sk_norm p = cfg->norm;
    if ((unsigned)k >= SK_ATTACK_COUNT) return sk_error(SK_EINVAL, "attack: unknown attack kind %d", (int)k);
    if (!(cfg->eps >= 0)) return sk_error(SK_EINVAL, "attack: cfg.eps must be >= 0 (got %g)", cfg->eps);
    if (!isfinite(cfg->eps) && !is_minnorm(k))
        return sk_error(SK_EINVAL, "attack %s: needs a finite cfg.eps (only cw, deepfool and fmn are unbounded)",
                        sk_attack_name(k));
    if (!(cfg->clip_min < cfg->clip_max)) return sk_error(SK_EINVAL, "attack: empty box [%g, %g]", cfg->clip_min, cfg->clip_max);
    bool ok;
    switch (k) {
    case SK_ATTACK_CW:
    case SK_ATTACK_DEEPFOOL: ok = p == SK_NORM_L2; break;
    case SK_ATTACK_SQUARE: ok = p == SK_NORM_LINF; break;
    case SK_ATTACK_SPARSE: ok = p == SK_NORM_L0; break;
    default: ok = p == SK_NORM_LINF || p == SK_NORM_L2; break;
    }
    if (!ok) {
        const char *want = k == SK_ATTACK_CW || k == SK_ATTACK_DEEPFOOL ? "l2"
                           : k == SK_ATTACK_SQUARE                     ? "linf"
                           : k == SK_ATTACK_SPARSE                     ? "l0 (eps = number of pixels)"
                                                                       : "linf or l2";
        return sk_error(SK_EINVAL, "attack %s does not support the %s norm: use cfg.norm %s", sk_attack_name(k),
                        sk_norm_name(p), want);
    }
    int K = c->n_classes;
    if (K < 2) return sk_error(SK_EINVAL, "attack: the classifier has %d class(es); need >= 2", K);
    if ((k == SK_ATTACK_APGD_DLR && (targeted ? K < 4 : K < 3)) || ((k == SK_ATTACK_APGD_T || k == SK_ATTACK_SUITE) && K < 4))
        return sk_error(SK_EINVAL, "attack %s: the DLR loss needs at least %d classes (the model has %d)",
                        sk_attack_name(k), k == SK_ATTACK_APGD_DLR && !targeted ? 3 : 4, K);
    if (targeted && (k == SK_ATTACK_APGD_T || k == SK_ATTACK_SUITE))
        return sk_error(SK_EINVAL, "attack %s chooses its own targets; drop cfg.target", sk_attack_name(k));
    if (cfg->loss == SK_LOSS_DLR && (targeted ? K < 4 : K < 3))
        return sk_error(SK_EINVAL, "attack: the DLR loss needs at least %d classes", targeted ? 4 : 3);
    return SK_OK;
}

static void actx_init(struct sk_actx *a, struct sk_classifier *c, const struct sk_attack_config *cfg,
                      enum sk_attack_kind kind)
{
    memset(a, 0, sizeof *a);
    a->c = c;
    a->cfg = *cfg;
    a->cfg.kind = kind;
    resolve(&a->cfg, kind);
    a->D = c->in_dim;
    a->K = c->n_classes;
    a->key = sk_rng_derive(sk_rng_new(cfg->seed).key, SK_STREAM_ATTACK).key;
    a->stoch = c->stochastic;
    a->img_c = cfg->img_c > 0 ? cfg->img_c : c->in_c;
    a->img_h = cfg->img_h > 0 ? cfg->img_h : c->in_h;
    a->img_w = cfg->img_w > 0 ? cfg->img_w : c->in_w;
    if (a->img_c * a->img_h * a->img_w != a->D) {
        a->img_c = 1;
        a->img_h = a->D;
        a->img_w = 1;
    }
    if (a->img_h == 1 && a->img_w == 1) {
        /* a vector classifier: take D = C*s*s as an image of one channel when it is a square */
        int s = (int)lround(sqrt((double)a->D));
        a->img_c = 1;
        if (s * s == a->D) {
            a->img_h = s;
            a->img_w = s;
        } else {
            a->img_h = a->D;
            a->img_w = 1;
        }
    }
}

/* run one attack kind on the chunk (compact arrays) */
static int attack_chunk(struct sk_actx *a, enum sk_attack_kind kind, const float *x0, const int *y, const int *t,
                        const int *rid, int M, float *bx, float *bl, bool *bs, float *mn)
{
    switch (kind) {
    case SK_ATTACK_FGSM:
    case SK_ATTACK_PGD:
    case SK_ATTACK_MIFGSM: return sk_atk_pgd(a, kind, x0, y, t, rid, M, bx, bl, bs, mn);
    case SK_ATTACK_APGD_CE: return sk_atk_apgd(a, SK_LOSS_CE, x0, y, t, rid, M, bx, bl, bs, mn);
    case SK_ATTACK_APGD_DLR: return sk_atk_apgd(a, SK_LOSS_DLR, x0, y, t, rid, M, bx, bl, bs, mn);
    case SK_ATTACK_APGD_T: return sk_atk_apgd_t(a, x0, y, rid, M, bx, bl, bs, mn);
    case SK_ATTACK_CW: return sk_atk_cw(a, x0, y, t, rid, M, bx, bs, mn);
    case SK_ATTACK_DEEPFOOL: return sk_atk_deepfool(a, x0, y, t, rid, M, bx, bs, mn);
    case SK_ATTACK_FMN: return sk_atk_fmn(a, x0, y, t, rid, M, bx, bs, mn);
    case SK_ATTACK_SQUARE: return sk_atk_square(a, x0, y, t, rid, M, bx, bs, mn);
    case SK_ATTACK_SPARSE: return sk_atk_sparse(a, x0, y, t, rid, M, bx, bs, mn);
    default: return sk_error(SK_EINVAL, "attack: %s is not a single attack", sk_attack_name(kind));
    }
}

/* calls of the verdict: R = max(2, ceil(V / S)) (two at least, for the error) */
static int verdict_calls(const struct sk_classifier *c, int V)
{
    int S = c->n_samples > 0 ? c->n_samples : 1;
    int R = (V + S - 1) / S;
    return R < 2 ? 2 : R;
}

/* The verdict of a stochastic classifier (attack.h) on n rows of x, B rows
 * per call: R calls of log_probs, probabilities averaged. Writes (each may
 * be NULL) logp [n,K] (log of the averaged probabilities), pred [n],
 * d [n] = pbar_y - max_{k!=y} pbar_k, and q [n] = Phi(d / s), s the
 * standard error of d over the R calls (s = 0: q = 1 if pred == y, else 0). */
static int verdict(struct sk_classifier *c, int V, int B, const float *x, const int *y, int n, float *logp, int *pred,
                   float *d, double *q)
{
    int D = c->in_dim, K = c->n_classes, R = verdict_calls(c, V);
    int Bm = n < B ? (n > 0 ? n : 1) : B;
    float *p = sk_malloc(sizeof(float) * (size_t)R * Bm * K), *lp = sk_malloc(sizeof(float) * (size_t)Bm * K);
    double *pb = sk_malloc(sizeof(double) * K);
    int rc = SK_OK;
    if (!p || !lp || !pb) {
        rc = sk_error(SK_ENOMEM, "attack: out of memory for the verdict of %d rows", n);
        goto out;
    }
    for (int s0 = 0; s0 < n; s0 += B) {
        int m = n - s0 < B ? n - s0 : B;
        for (int r = 0; r < R; r++) {
            if ((rc = c->log_probs(c->self, x + (size_t)s0 * D, m, lp))) goto out;
            for (size_t j = 0; j < (size_t)m * K; j++) p[(size_t)r * m * K + j] = expf(lp[j]);
        }
        for (int i = 0; i < m; i++) {
            for (int k = 0; k < K; k++) {
                double acc = 0;
                for (int r = 0; r < R; r++) acc += p[((size_t)r * m + i) * K + k];
                pb[k] = acc / R;
            }
            int am = 0;
            for (int k = 1; k < K; k++)
                if (pb[k] > pb[am]) am = k;
            int yi = y[s0 + i], ks = -1;
            for (int k = 0; k < K; k++)
                if (k != yi && (ks < 0 || pb[k] > pb[ks])) ks = k;
            double di = pb[yi] - pb[ks], v = 0;
            for (int r = 0; r < R; r++) {
                const float *pr = p + ((size_t)r * m + i) * K;
                double e = (double)pr[yi] - pr[ks] - di;
                v += e * e;
            }
            double se = sqrt(v / (R - 1) / R);
            if (logp)
                for (int k = 0; k < K; k++) logp[(size_t)(s0 + i) * K + k] = (float)log(pb[k]);
            if (pred) pred[s0 + i] = am;
            if (d) d[s0 + i] = (float)di;
            if (q) q[s0 + i] = se > 0 ? 0.5 * erfc(-di / se / sqrt(2.0)) : am == yi;
        }
    }
out:
    sk_free(p);
    sk_free(lp);
    sk_free(pb);
    return rc;
}

/* State of the verdict per row (stochastic classifiers): the verdict on the
 * row's kept iterate xadv. d: margin (INFINITY: not judged yet, the next
 * iterate replaces it), q: chance of a correct fresh verdict, pred. */
struct vstate {
    float *d;
    double *q;
    int *pred;
};

/* Run `kind` on the rows of (x, y, t) with !succ, in chunks; update xadv,
 * succ and mn. stage: stats (may be NULL). vs (stochastic classifier): the
 * verdict judges each row's new iterate (gradient attacks: the iterate of
 * the best objective and the final one, the better of the two): succ if it
 * misclassifies it (hits the target), else the iterate of the smaller margin
 * stays in xadv. The final iterate is a candidate because the best noisy
 * objective favours lucky calls: on MC-dropout Fashion-MNIST (PGD-10,
 * EOT-10) it alone left the robust accuracy 0.9 points above PyTorch's
 * last-iterate EOT PGD. */
static int run_stage(struct sk_classifier *c, const struct sk_attack_config *cfg, enum sk_attack_kind kind, int stage,
                     const float *x, const int *y, const int *t, const int *rid, int n, float *xadv, bool *succ,
                     float *mn, struct sk_attack_stage *st, struct vstate *vs)
{
    struct sk_actx a;
    actx_init(&a, c, cfg, kind);
    a.stage = stage;
    int D = a.D, B = a.cfg.batch, rc = SK_OK;
    long g0 = c->n_backward, f0 = c->n_forward;
    double t0 = sk_now();
    float *cx = sk_malloc(sizeof(float) * (size_t)B * D), *cb = sk_malloc(sizeof(float) * (size_t)B * D);
    float *cl = sk_malloc(sizeof(float) * B), *cm = sk_malloc(sizeof(float) * B);
    int *cy = sk_malloc(sizeof(int) * B), *ct = sk_malloc(sizeof(int) * B), *cr = sk_malloc(sizeof(int) * B);
    int *idx = sk_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    bool *cs = sk_malloc(sizeof(bool) * B);
    float *vd = vs ? sk_malloc(sizeof(float) * B) : NULL;
    double *vq = vs ? sk_malloc(sizeof(double) * B) : NULL;
    int *vp = vs ? sk_malloc(sizeof(int) * B) : NULL;
    bool two = vs && (kind <= SK_ATTACK_APGD_T); /* gradient attacks: fgsm .. apgd-t */
    float *cf = two ? sk_malloc(sizeof(float) * (size_t)B * D) : NULL, *vd2 = two ? sk_malloc(sizeof(float) * B) : NULL;
    double *vq2 = two ? sk_malloc(sizeof(double) * B) : NULL;
    int *vp2 = two ? sk_malloc(sizeof(int) * B) : NULL;
    if (!cx || !cb || !cl || !cm || !cy || !ct || !cr || !idx || !cs || (vs && (!vd || !vq || !vp)) ||
        (two && (!cf || !vd2 || !vq2 || !vp2))) {
        rc = sk_error(SK_ENOMEM, "attack: out of memory");
        goto out;
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!succ[i]) idx[m++] = i;
    int broken = 0;
    for (int s0 = 0; s0 < m; s0 += B) {
        int M = m - s0 < B ? m - s0 : B;
        for (int q = 0; q < M; q++) {
            int i = idx[s0 + q];
            memcpy(cx + (size_t)q * D, x + (size_t)i * D, sizeof(float) * D);
            memcpy(cb + (size_t)q * D, xadv + (size_t)i * D, sizeof(float) * D);
            cy[q] = y[i];
            ct[q] = t ? t[i] : -1;
            cr[q] = rid ? rid[i] : i;
            cl[q] = -INFINITY;
            cs[q] = false;
            cm[q] = INFINITY;
        }
        if (is_minnorm(kind)) memcpy(cb, cx, sizeof(float) * (size_t)M * D);
        if (two) memcpy(cf, cb, sizeof(float) * (size_t)M * D);
        a.last = cf;
        if ((rc = attack_chunk(&a, kind, cx, cy, t ? ct : NULL, cr, M, cb, cl, cs, cm))) goto out;
        if (is_minnorm(kind))
            for (int q = 0; q < M; q++) cs[q] = cs[q] && cm[q] <= a.cfg.eps;
        sk_attack_proj_rows(&a, a.cfg.eps, cx, cb, M);
        if (vs && (rc = verdict(c, a.cfg.verdict_samples, B, cb, cy, M, NULL, vp, vd, vq))) goto out;
        if (two) {
            sk_attack_proj_rows(&a, a.cfg.eps, cx, cf, M);
            if ((rc = verdict(c, a.cfg.verdict_samples, B, cf, cy, M, NULL, vp2, vd2, vq2))) goto out;
        }
        for (int q = 0; q < M; q++) {
            int i = idx[s0 + q];
            if (mn && cm[q] < mn[i]) mn[i] = cm[q];
            if (two) { /* the final iterate if only it hits, or if its margin is smaller and both hit or both miss */
                bool h1 = t ? vp[q] == ct[q] : vp[q] != cy[q], h2 = t ? vp2[q] == ct[q] : vp2[q] != cy[q];
                if ((h2 && !h1) || (h1 == h2 && vd2[q] < vd[q])) {
                    memcpy(cb + (size_t)q * D, cf + (size_t)q * D, sizeof(float) * D);
                    vd[q] = vd2[q];
                    vq[q] = vq2[q];
                    vp[q] = vp2[q];
                }
            }
            if (vs) {
                cs[q] = t ? vp[q] == ct[q] : vp[q] != cy[q];
                if (!cs[q] && !(vd[q] < vs->d[i])) continue; /* the kept iterate stays */
                vs->d[i] = vd[q];
                vs->q[i] = vq[q];
                vs->pred[i] = vp[q];
            }
            memcpy(xadv + (size_t)i * D, cb + (size_t)q * D, sizeof(float) * D);
            succ[i] = cs[q];
            broken += cs[q];
        }
    }
    if (st) {
        snprintf(st->name, sizeof st->name, "%s", sk_attack_name(kind));
        st->n_attacked = m;
        st->n_broken = broken;
        st->grad_evals = c->n_backward - g0;
        st->queries = c->n_forward - f0;
        st->seconds = sk_now() - t0;
    }
out:
    sk_free(cx);
    sk_free(cb);
    sk_free(cl);
    sk_free(cm);
    sk_free(cy);
    sk_free(ct);
    sk_free(cr);
    sk_free(idx);
    sk_free(cs);
    sk_free(vd);
    sk_free(vq);
    sk_free(vp);
    sk_free(cf);
    sk_free(vd2);
    sk_free(vq2);
    sk_free(vp2);
    return rc;
}

static const enum sk_attack_kind suite_linf[] = { SK_ATTACK_APGD_CE, SK_ATTACK_APGD_T, SK_ATTACK_FMN, SK_ATTACK_SQUARE };

/* stages of kind (1, or the suite's; L2 suite has no square) */
static int stages_of(const struct sk_attack_config *cfg, enum sk_attack_kind *ks)
{
    if (cfg->kind != SK_ATTACK_SUITE) {
        ks[0] = cfg->kind;
        return 1;
    }
    int n = cfg->norm == SK_NORM_LINF ? 4 : 3;
    for (int i = 0; i < n; i++) ks[i] = suite_linf[i];
    return n;
}

/* suite stages use their own reference settings, not the user's step counts */
static struct sk_attack_config stage_config(const struct sk_attack_config *cfg, enum sk_attack_kind k)
{
    if (cfg->kind != SK_ATTACK_SUITE) return *cfg;
    struct sk_attack_config s = sk_attack_defaults(k, cfg->norm, cfg->eps);
    s.seed = cfg->seed;
    s.batch = cfg->batch;
    s.img_c = cfg->img_c;
    s.img_h = cfg->img_h;
    s.img_w = cfg->img_w;
    s.clip_min = cfg->clip_min;
    s.clip_max = cfg->clip_max;
    s.verdict_samples = cfg->verdict_samples;
    if (cfg->queries > 0) s.queries = cfg->queries;
    if (cfg->steps > 0 && k != SK_ATTACK_SQUARE) s.steps = cfg->steps;
    return s;
}

int sk_attack_run(struct sk_classifier *c, const struct sk_attack_config *cfg, const float *x, const int *y,
                  const int *tgt, int n, float *x_adv, float *min_norm)
{
    if (!c || !cfg || (!x && n > 0) || (!y && n > 0) || (!x_adv && n > 0) || n < 0)
        return sk_error(SK_EINVAL, "sk_attack_run: NULL argument or n < 0");
    int rc = check_config(c, cfg, tgt != NULL);
    if (rc) return rc;
    int D = c->in_dim;
    size_t nn = (size_t)(n > 0 ? n : 1);
    bool *succ = sk_calloc(nn, sizeof(bool));
    float *mn = sk_malloc(sizeof(float) * nn);
    struct vstate vs = { NULL, NULL, NULL };
    if (c->stochastic) {
        vs.d = sk_malloc(sizeof(float) * nn);
        vs.q = sk_malloc(sizeof(double) * nn);
        vs.pred = sk_malloc(sizeof(int) * nn);
    }
    if (!succ || !mn || (c->stochastic && (!vs.d || !vs.q || !vs.pred))) {
        rc = sk_error(SK_ENOMEM, "attack: out of memory for %d rows", n);
        goto out;
    }
    for (int i = 0; i < n; i++) mn[i] = INFINITY;
    for (int i = 0; c->stochastic && i < n; i++) vs.d[i] = INFINITY; /* the first stage's iterate is kept */
    memcpy(x_adv, x, sizeof(float) * (size_t)n * D);
    enum sk_attack_kind ks[8];
    int ns = stages_of(cfg, ks);
    for (int s = 0; s < ns && !rc; s++) {
        struct sk_attack_config sc = stage_config(cfg, ks[s]);
        rc = run_stage(c, &sc, ks[s], s, x, y, tgt, NULL, n, x_adv, succ, mn, NULL, c->stochastic ? &vs : NULL);
    }
    if (c->stochastic && !rc) {
        /* the noisy calls' norms prove nothing: the norm where the verdict says adversarial */
        struct sk_actx na;
        actx_init(&na, c, cfg, cfg->kind);
        for (int i = 0; i < n; i++)
            mn[i] = succ[i] ? (float)sk_attack_rownorm(&na, cfg->norm, x_adv + (size_t)i * D, x + (size_t)i * D)
                            : INFINITY;
    }
    if (min_norm) memcpy(min_norm, mn, sizeof(float) * (size_t)n);
out:
    sk_free(succ);
    sk_free(mn);
    sk_free(vs.d);
    sk_free(vs.q);
    sk_free(vs.pred);
    return rc;
}

/* ---- evaluation ---- */

void sk_attack_result_free(struct sk_attack_result *r)
{
    if (!r) return;
    sk_free(r->x_adv);
    sk_free(r->pred_clean);
    sk_free(r->pred_adv);
    sk_free(r->target);
    sk_free(r->clean_correct);
    sk_free(r->robust);
    sk_free(r->success);
    sk_free(r->norm_delta);
    sk_free(r->min_norm);
    sk_free(r);
}

static void warn(struct sk_attack_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void warn(struct sk_attack_result *r, const char *fmt, ...)
{
    if (r->n_warnings >= SK_ATTACK_MAX_WARNINGS) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings[r->n_warnings++], sizeof r->warnings[0], fmt, ap);
    va_end(ap);
}

static int log_probs_batched(struct sk_classifier *c, const float *x, int n, int B, float *lp)
{
    int D = c->in_dim, K = c->n_classes;
    for (int s = 0; s < n; s += B) {
        int m = n - s < B ? n - s : B;
        int rc = c->log_probs(c->self, x + (size_t)s * D, m, lp + (size_t)s * K);
        if (rc) return rc;
    }
    return SK_OK;
}

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Audits before the attack: determinism, batch independence, probabilities
 * passed as logits, zero or non-finite input gradients. */
static int audits(struct sk_classifier *c, const float *x, const int *y, const bool *correct, const float *lp_clean,
                  int n, int B, struct sk_attack_result *r)
{
    int D = c->in_dim, K = c->n_classes, rc = SK_OK;
    int m = n < 16 ? n : 16;
    if (m == 0) return SK_OK;
    float *lp = sk_malloc(sizeof(float) * (size_t)m * K * 2), *one = sk_malloc(sizeof(float) * K);
    int gm = 0;
    int *idx = sk_malloc(sizeof(int) * (size_t)(n < B ? n : B) + sizeof(int));
    if (!lp || !one || !idx) {
        rc = SK_ENOMEM;
        goto out;
    }
    /* same input twice */
    if ((rc = c->log_probs(c->self, x, m, lp)) || (rc = c->log_probs(c->self, x, m, lp + (size_t)m * K))) goto out;
    double dmax = 0;
    for (size_t i = 0; i < (size_t)m * K; i++) dmax = fmax(dmax, fabs((double)lp[i] - lp[(size_t)m * K + i]));
    bool varies = dmax > 1e-5;
    if (varies && !c->stochastic) {
        r->warn_train_mode = true;
        warn(r, "the outputs change between two calls on the same input (max |d log p| = %.2g) but the "
                "classifier says it is deterministic: a model left in train mode (dropout on)?", dmax);
    }
    if (c->stochastic && c->n_samples <= 1) {
        r->warn_no_eot = true;
        warn(r, "the model is stochastic (%s) and no EOT was asked (1 sample per call): gradients are single "
                "noisy samples and the robust accuracy is optimistic; use --eot K", c->kind ? c->kind : "?");
    } else if (varies && c->n_samples <= 1 && !c->stochastic) {
        r->warn_no_eot = true;
        warn(r, "the model looks stochastic but no EOT was asked; use --eot K");
    }
    /* batch independence (deterministic models only) */
    if (!varies && m > 1) {
        if ((rc = c->log_probs(c->self, x, 1, one))) goto out;
        double db = 0;
        for (int k = 0; k < K; k++) db = fmax(db, fabs((double)one[k] - lp[k]));
        if (db > 1e-3) {
            r->warn_train_mode = true;
            warn(r, "the output for a row depends on the other rows of the batch (max |d log p| = %.2g): batch "
                    "norm in train mode?", db);
        }
    }
    /* probabilities passed where logits belong: every row's log-probs span <= 1 */
    int narrow = 0;
    for (int i = 0; i < n; i++) {
        const float *row = lp_clean + (size_t)i * K;
        float lo = row[0], hi = row[0];
        for (int k = 1; k < K; k++) {
            lo = fminf(lo, row[k]);
            hi = fmaxf(hi, row[k]);
        }
        narrow += hi - lo <= 1.0f + 1e-4f;
    }
    if (n >= 4 && narrow == n) {
        r->warn_probabilities = true;
        warn(r, "the outputs already look like probabilities (every row of scores spans <= 1): a softmax before "
                "the loss? Attacks then see flattened gradients");
    }
    /* input gradients of the margin on up to B clean-correct points */
    for (int i = 0; i < n && gm < B; i++)
        if (correct[i]) idx[gm++] = i;
    if (gm > 0) {
        float *xg = sk_malloc(sizeof(float) * (size_t)gm * D), *dx = sk_malloc(sizeof(float) * (size_t)gm * D);
        int *yg = sk_malloc(sizeof(int) * gm);
        if (!xg || !dx || !yg) {
            sk_free(xg);
            sk_free(dx);
            sk_free(yg);
            rc = SK_ENOMEM;
            goto out;
        }
        for (int q = 0; q < gm; q++) {
            memcpy(xg + (size_t)q * D, x + (size_t)idx[q] * D, sizeof(float) * D);
            yg[q] = y[idx[q]];
        }
        struct sk_lctx lc = { SK_LOSS_CW, yg, NULL, NULL, 0 };
        rc = c->input_grad(c->self, xg, gm, sk_attack_lossfn, &lc, NULL, NULL, dx);
        int bad = 0, nonfin = 0;
        for (int q = 0; !rc && q < gm; q++) {
            bool zero = true, fin = true;
            for (int j = 0; j < D; j++) {
                float v = dx[(size_t)q * D + j];
                if (!isfinite(v)) fin = false;
                if (v != 0) zero = false;
            }
            bad += zero || !fin;
            nonfin += !fin;
        }
        sk_free(xg);
        sk_free(dx);
        sk_free(yg);
        if (rc) goto out;
        r->frac_zero_grad = (double)bad / gm;
        if (bad > 0) {
            r->warn_bad_grad = true;
            warn(r, "%d of %d clean points have an all-zero%s input gradient of the margin loss: gradient "
                    "masking (a hard threshold, quantisation, non-differentiable layer)? Gradient attacks cannot "
                    "move there; check with --attack square", bad, gm, nonfin ? " or non-finite" : "");
        }
    }
out:
    sk_free(lp);
    sk_free(one);
    sk_free(idx);
    return rc;
}

/* evaluation; prev (curve): rows broken at a smaller eps are reused as broken */
static struct sk_attack_result *evaluate(struct sk_classifier *c, const struct sk_attack_config *cfg0,
                                         const float *x, const int *y, int n, const struct sk_attack_result *prev,
                                         bool do_audit)
{
    if (!c || !cfg0 || n < 0 || (n > 0 && (!x || !y))) {
        sk_error(SK_EINVAL, "sk_attack_evaluate: NULL argument or n < 0");
        return NULL;
    }
    struct sk_attack_config cfg = *cfg0;
    bool targeted = cfg.target != SK_TARGET_NONE;
    if (cfg.target == SK_TARGET_GIVEN && !cfg.targets) {
        sk_error(SK_EINVAL, "attack: target mode 'given' needs the targets array");
        return NULL;
    }
    if (check_config(c, &cfg, targeted)) return NULL;
    int D = c->in_dim, K = c->n_classes, B = cfg.batch > 0 ? cfg.batch : 256;
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K) {
            sk_error(SK_EINVAL, "attack: label %d of row %d is outside [0, %d)", y[i], i, K);
            return NULL;
        }
    struct sk_attack_result *r = sk_calloc(1, sizeof *r);
    size_t nn = (size_t)(n > 0 ? n : 1);
    float *lp = sk_malloc(sizeof(float) * nn * K), *mn = NULL;
    float *xs = NULL, *xa = NULL;
    int *ys = NULL, *ts = NULL, *rid = NULL;
    bool *ss = NULL;
    /* stochastic: the verdict at the clean points (cd, cq, cp: all n) and at the kept
     * iterates (vs: compact, the attacked rows) */
    bool stoch = c->stochastic;
    float *cd = NULL;
    double *cq = NULL;
    int *cp = NULL;
    struct vstate vs = { NULL, NULL, NULL };
    if (!r || !lp) goto nomem;
    if (stoch) {
        cd = sk_malloc(sizeof(float) * nn);
        cq = sk_malloc(sizeof(double) * nn);
        cp = sk_malloc(sizeof(int) * nn);
        if (!cd || !cq || !cp) goto nomem;
    }
    r->x_adv = sk_malloc(sizeof(float) * nn * D);
    r->pred_clean = sk_malloc(sizeof(int) * nn);
    r->pred_adv = sk_malloc(sizeof(int) * nn);
    r->target = sk_malloc(sizeof(int) * nn);
    r->clean_correct = sk_malloc(sizeof(bool) * nn);
    r->robust = sk_malloc(sizeof(bool) * nn);
    r->success = sk_malloc(sizeof(bool) * nn);
    r->norm_delta = sk_malloc(sizeof(float) * nn);
    r->min_norm = sk_malloc(sizeof(float) * nn);
    if (!r->x_adv || !r->pred_clean || !r->pred_adv || !r->target || !r->clean_correct || !r->robust ||
        !r->success || !r->norm_delta || !r->min_norm)
        goto nomem;
    r->n = n;
    r->dim = D;
    r->n_classes = K;
    snprintf(r->attack, sizeof r->attack, "%s", sk_attack_name(cfg.kind));
    r->norm = cfg.norm;
    r->eps = cfg.eps;
    r->targeted = targeted;
    r->stochastic = c->stochastic;
    r->eot_samples = c->n_samples;
    r->no_eot = c->stochastic && c->n_samples <= 1;
    int V = cfg.verdict_samples > 0 ? cfg.verdict_samples : SK_ATTACK_VERDICT_SAMPLES;
    cfg.verdict_samples = V;
    r->verdict_samples = stoch ? verdict_calls(c, V) * (c->n_samples > 0 ? c->n_samples : 1) : 1;
    long g0 = c->n_backward, f0 = c->n_forward;
    double t0 = sk_now();
    int rc = stoch ? verdict(c, V, B, x, y, n, lp, cp, cd, cq) : log_probs_batched(c, x, n, B, lp);
    if (rc) goto fail;
    int n_correct = 0;
    struct sk_rng trng = sk_rng_derive(sk_rng_derive(sk_rng_new(cfg.seed).key, SK_STREAM_ATTACK).key, 99);
    for (int i = 0; i < n; i++) {
        const float *row = lp + (size_t)i * K;
        r->pred_clean[i] = stoch ? cp[i] : sk_attack_argmax(row, K);
        r->clean_correct[i] = r->pred_clean[i] == y[i];
        n_correct += r->clean_correct[i];
        int tg = -1;
        if (cfg.target == SK_TARGET_GIVEN) {
            tg = cfg.targets[i];
            if (tg < 0 || tg >= K) {
                rc = sk_error(SK_EINVAL, "attack: target %d of row %d is outside [0, %d)", tg, i, K);
                goto fail;
            }
        } else if (cfg.target == SK_TARGET_RANDOM) {
            struct sk_rng g = { trng.key, (uint64_t)i * 8 };
            tg = (int)sk_rng_below(&g, (uint64_t)(K - 1));
            if (tg >= y[i]) tg++;
        } else if (cfg.target == SK_TARGET_LEAST_LIKELY) {
            tg = 0;
            for (int k = 1; k < K; k++)
                if (row[k] < row[tg]) tg = k;
        }
        r->target[i] = tg;
    }
    if (do_audit && cfg.audit && (rc = audits(c, x, y, r->clean_correct, lp, n, B, r))) goto fail;
    /* the points to attack: clean-correct (and, targeted, target != label), not broken before */
    memcpy(r->x_adv, x, sizeof(float) * nn * D);
    int m = 0;
    rid = sk_malloc(sizeof(int) * nn);
    if (!rid) goto nomem;
    for (int i = 0; i < n; i++) {
        bool reused = prev && prev->clean_correct[i] && !prev->robust[i];
        if (reused) memcpy(r->x_adv + (size_t)i * D, prev->x_adv + (size_t)i * D, sizeof(float) * D);
        if (r->clean_correct[i] && !reused && !(targeted && r->target[i] == y[i])) rid[m++] = i;
    }
    xs = sk_malloc(sizeof(float) * (size_t)(m > 0 ? m : 1) * D);
    xa = sk_malloc(sizeof(float) * (size_t)(m > 0 ? m : 1) * D);
    ys = sk_malloc(sizeof(int) * (size_t)(m > 0 ? m : 1));
    ts = sk_malloc(sizeof(int) * (size_t)(m > 0 ? m : 1));
    ss = sk_calloc((size_t)(m > 0 ? m : 1), sizeof(bool));
    mn = sk_malloc(sizeof(float) * (size_t)(m > 0 ? m : 1));
    if (!xs || !xa || !ys || !ts || !ss || !mn) goto nomem;
    if (stoch) {
        vs.d = sk_malloc(sizeof(float) * (size_t)(m > 0 ? m : 1));
        vs.q = sk_malloc(sizeof(double) * (size_t)(m > 0 ? m : 1));
        vs.pred = sk_malloc(sizeof(int) * (size_t)(m > 0 ? m : 1));
        if (!vs.d || !vs.q || !vs.pred) goto nomem;
    }
    for (int q = 0; q < m; q++) {
        memcpy(xs + (size_t)q * D, x + (size_t)rid[q] * D, sizeof(float) * D);
        ys[q] = y[rid[q]];
        ts[q] = r->target[rid[q]];
        mn[q] = INFINITY;
        if (stoch) { /* the clean point is the iterate to beat */
            vs.d[q] = cd[rid[q]];
            vs.q[q] = cq[rid[q]];
            vs.pred[q] = cp[rid[q]];
        }
    }
    memcpy(xa, xs, sizeof(float) * (size_t)m * D);
    enum sk_attack_kind ks[8];
    int ns = stages_of(&cfg, ks);
    int standing = 0;
    for (int i = 0; i < n; i++) standing += r->clean_correct[i] && !(prev && !prev->robust[i]);
    for (int s = 0; s < ns; s++) {
        struct sk_attack_config sc = stage_config(&cfg, ks[s]);
        struct sk_attack_stage *st = &r->stages[s];
        if ((rc = run_stage(c, &sc, ks[s], s, xs, ys, targeted ? ts : NULL, rid, m, xa, ss, mn, st,
                            stoch ? &vs : NULL)))
            goto fail;
        if (stoch) {
            /* the verdicts on the kept iterates (the headline counts the same way) */
            int rob = standing - m;
            for (int q = 0; q < m; q++) rob += vs.pred[q] == ys[q];
            st->robust_acc = n ? (double)rob / n : NAN;
            continue;
        }
        standing -= st->n_broken;
        st->robust_acc = n ? (double)standing / n : NAN;
    }
    r->n_stages = ns;
    if (cfg.kind == SK_ATTACK_SUITE && ns == 4 && r->stages[3].n_broken > 0) {
        r->warn_masking = true;
        warn(r, "the black-box square attack broke %d point(s) that the white-box attacks (apgd-ce, apgd-t, fmn) "
                "left standing: a sign of gradient masking; trust the black-box figure",
             r->stages[3].n_broken);
    }
    for (int q = 0; q < m; q++) memcpy(r->x_adv + (size_t)rid[q] * D, xa + (size_t)q * D, sizeof(float) * D);
    /* final verdict by the classifier (stochastic: the stages' verdicts on the kept iterates;
     * lp keeps the clean verdict, whose argmax rows not attacked keep) */
    if (!stoch && (rc = log_probs_batched(c, r->x_adv, n, B, lp))) goto fail;
    double qvar = 0;
    if (stoch) {
        for (int i = 0; i < n; i++) {
            r->pred_adv[i] = cp[i];
            if (r->clean_correct[i] && !(prev && !prev->robust[i])) qvar += cq[i] * (1 - cq[i]);
        }
        for (int q = 0; q < m; q++) {
            r->pred_adv[rid[q]] = vs.pred[q];
            qvar += vs.q[q] * (1 - vs.q[q]) - cq[rid[q]] * (1 - cq[rid[q]]);
        }
    }
    for (int i = 0; i < n; i++) r->min_norm[i] = INFINITY;
    for (int q = 0; q < m; q++) r->min_norm[rid[q]] = mn[q];
    int n_rob = 0, n_succ = 0, n_norm = 0;
    struct sk_actx na; /* for the norms (image shape for L0) */
    actx_init(&na, c, &cfg, cfg.kind);
    float *allnorms = sk_malloc(sizeof(float) * nn);
    if (!allnorms) goto nomem;
    for (int i = 0; i < n; i++) {
        bool reused = prev && prev->clean_correct[i] && !prev->robust[i];
        r->pred_adv[i] = reused ? prev->pred_adv[i] : stoch ? r->pred_adv[i] : sk_attack_argmax(lp + (size_t)i * K, K);
        r->robust[i] = r->clean_correct[i] && !reused && r->pred_adv[i] == y[i];
        n_rob += r->robust[i];
        bool sc = r->clean_correct[i] && (targeted ? r->pred_adv[i] == r->target[i] : !r->robust[i]);
        r->success[i] = sc;
        n_succ += sc;
        r->norm_delta[i] = (float)sk_attack_rownorm(&na, cfg.norm, r->x_adv + (size_t)i * D, x + (size_t)i * D);
        if (!is_minnorm(cfg.kind) || reused || stoch) r->min_norm[i] = sc ? r->norm_delta[i] : INFINITY;
        if (sc) allnorms[n_norm++] = r->norm_delta[i];
    }
    r->clean_acc = n ? (double)n_correct / n : NAN;
    r->robust_acc = n ? (double)n_rob / n : NAN;
    r->robust_acc_se = n ? sqrt(fmax(qvar, 0)) / n : NAN;
    r->success_rate = n_correct ? (double)n_succ / n_correct : NAN;
    if (n_norm) {
        double s = 0;
        for (int i = 0; i < n_norm; i++) s += allnorms[i];
        r->mean_norm = s / n_norm;
        qsort(allnorms, (size_t)n_norm, sizeof(float), cmpf);
        r->median_norm = n_norm % 2 ? allnorms[n_norm / 2] : 0.5 * (allnorms[n_norm / 2 - 1] + allnorms[n_norm / 2]);
    } else {
        r->mean_norm = r->median_norm = NAN;
    }
    sk_free(allnorms);
    r->grad_evals = c->n_backward - g0;
    r->queries = c->n_forward - f0;
    r->seconds = sk_now() - t0;
    sk_free(lp);
    sk_free(xs);
    sk_free(xa);
    sk_free(ys);
    sk_free(ts);
    sk_free(ss);
    sk_free(mn);
    sk_free(rid);
    sk_free(cd);
    sk_free(cq);
    sk_free(cp);
    sk_free(vs.d);
    sk_free(vs.q);
    sk_free(vs.pred);
    return r;
nomem:
    sk_error(SK_ENOMEM, "attack: out of memory for %d rows of %d", n, D);
fail:
    sk_free(lp);
    sk_free(xs);
    sk_free(xa);
    sk_free(ys);
    sk_free(ts);
    sk_free(ss);
    sk_free(mn);
    sk_free(rid);
    sk_free(cd);
    sk_free(cq);
    sk_free(cp);
    sk_free(vs.d);
    sk_free(vs.q);
    sk_free(vs.pred);
    sk_attack_result_free(r);
    return NULL;
}

struct sk_attack_result *sk_attack_evaluate(struct sk_classifier *c, const struct sk_attack_config *cfg,
                                            const float *x, const int *y, int n)
{
    return evaluate(c, cfg, x, y, n, NULL, true);
}

int sk_attack_curve(struct sk_classifier *c, const struct sk_attack_config *cfg, const float *eps_list, int n_eps,
                    const float *x, const int *y, int n, double *robust_acc, struct sk_attack_result **results)
{
    if (!eps_list || n_eps < 1 || !robust_acc) return sk_error(SK_EINVAL, "sk_attack_curve: empty eps list");
    for (int i = 1; i < n_eps; i++)
        if (!(eps_list[i] >= eps_list[i - 1]))
            return sk_error(SK_EINVAL, "attack: eps_list must be sorted ascending (%g after %g)", eps_list[i],
                            eps_list[i - 1]);
    struct sk_attack_result *prev = NULL;
    int rc = SK_OK;
    for (int e = 0; e < n_eps; e++) {
        struct sk_attack_config sc = *cfg;
        sc.eps = eps_list[e];
        struct sk_attack_result *r = evaluate(c, &sc, x, y, n, prev, e == 0);
        if (!r) {
            rc = SK_EINVAL;
            break;
        }
        robust_acc[e] = r->robust_acc;
        if (prev) {
            /* the audits ran once, at the first budget; every point of the curve carries them */
            r->warn_no_eot |= prev->warn_no_eot;
            r->warn_bad_grad |= prev->warn_bad_grad;
            r->warn_probabilities |= prev->warn_probabilities;
            r->warn_train_mode |= prev->warn_train_mode;
            r->frac_zero_grad = prev->frac_zero_grad;
            for (int i = 0; i < prev->n_warnings && r->n_warnings < SK_ATTACK_MAX_WARNINGS; i++) {
                bool dup = false;
                for (int j = 0; j < r->n_warnings; j++) dup |= !strcmp(r->warnings[j], prev->warnings[i]);
                if (!dup) memcpy(r->warnings[r->n_warnings++], prev->warnings[i], sizeof r->warnings[0]);
            }
        }
        if (results) results[e] = r;
        else sk_attack_result_free(prev);
        prev = r;
    }
    if (!results) sk_attack_result_free(prev);
    return rc;
}

void sk_attack_summary(const struct sk_attack_result *r, char *buf, size_t size)
{
    size_t o = 0;
#define PUT(...) do { int w_ = snprintf(buf + o, o < size ? size - o : 0, __VA_ARGS__); if (w_ > 0) o += (size_t)w_; } while (0)
    if (!size) return;
    buf[0] = 0;
    PUT("attack %s (%s, eps %g%s) on %d points%s\n", r->attack, sk_norm_name(r->norm), r->eps,
        r->targeted ? ", targeted" : "", r->n, r->no_eot ? "  [stochastic model, no EOT: optimistic]" : "");
    PUT("clean accuracy    %.4f\n", r->clean_acc);
    PUT("robust accuracy   %.4f%s\n", r->robust_acc, r->no_eot ? "  (stochastic model, no EOT)" : "");
    if (r->stochastic)
        PUT("verdict           %d predictive samples per point; Monte-Carlo s.e. of robust accuracy %.4f\n",
            r->verdict_samples, r->robust_acc_se);
    PUT("success rate      %.4f of clean-correct points\n", r->success_rate);
    PUT("perturbation      mean %.4g  median %.4g (%s, successful points)\n", r->mean_norm, r->median_norm,
        sk_norm_name(r->norm));
    PUT("cost              %ld input gradients, %ld forward rows, %.2f s\n", r->grad_evals, r->queries, r->seconds);
    if (r->n_stages > 1)
        for (int s = 0; s < r->n_stages; s++)
            PUT("  stage %-9s attacked %5d broke %5d  robust %.4f  (%ld grads, %ld forwards, %.2f s)\n",
                r->stages[s].name, r->stages[s].n_attacked, r->stages[s].n_broken, r->stages[s].robust_acc,
                r->stages[s].grad_evals, r->stages[s].queries, r->stages[s].seconds);
    for (int i = 0; i < r->n_warnings; i++) PUT("warning: %s\n", r->warnings[i]);
#undef PUT
    if (o >= size) buf[size - 1] = 0;
}
