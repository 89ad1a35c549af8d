/* Attack configuration, projections and norms, the dispatcher that runs an
 * attack (or the suite) on the rows still standing, and the evaluation:
 * clean and robust accuracy, norms, cost, audits, accuracy-versus-eps. */
#include "attack/internal.h"

#include <stdio.h>

/* ---- dispatcher ---- */

static bool family_is(enum sk_attack_kind k, enum sk_attack_family f)
{
    const struct sk_attack_spec *s = sk_attack_spec(k);
    return s && s->family == f;
}

static int check_config(const struct sk_classifier *c, const struct sk_attack_config *cfg, bool targeted)
{
    enum sk_attack_kind k = cfg->kind;
    enum sk_norm p = cfg->norm;
    const struct sk_attack_spec *s = sk_attack_spec(k);
    if (!s) return sk_error(SK_EINVAL, "attack: unknown attack kind %d", (int)k);
    if (!(cfg->eps >= 0)) return sk_error(SK_EINVAL, "attack: cfg.eps must be >= 0 (got %g)", cfg->eps);
    if (!isfinite(cfg->eps) && s->family != SK_ATK_MINNORM)
        return sk_error(SK_EINVAL, "attack %s: needs a finite cfg.eps (only cw, deepfool and fmn are unbounded)",
                        s->name);
    if (!(cfg->clip_min < cfg->clip_max)) return sk_error(SK_EINVAL, "attack: empty box [%g, %g]", cfg->clip_min, cfg->clip_max);
    if (!cfg->box_lo != !cfg->box_hi) return sk_error(SK_EINVAL, "attack: cfg.box_lo and cfg.box_hi go together");
    for (int j = 0; cfg->box_lo && j < c->in_dim; j++)
        if (!(cfg->box_lo[j] < cfg->box_hi[j]))
            return sk_error(SK_EINVAL, "attack: empty box [%g, %g] of feature %d", cfg->box_lo[j], cfg->box_hi[j], j);
    if ((unsigned)p > SK_NORM_L0 || !(s->norms & (1u << p)))
        return sk_error(SK_EINVAL, "attack %s does not support the %s norm: use cfg.norm %s", s->name,
                        sk_attack_norm_name(p), s->norm_hint);
    int K = c->n_classes;
    if (K < 2) return sk_error(SK_EINVAL, "attack: the classifier has %d class(es); need >= 2", K);
    int kmin = targeted ? s->min_classes_targeted : s->min_classes;
    if (K < kmin)
        return sk_error(SK_EINVAL, "attack %s: the DLR loss needs at least %d classes (the model has %d)", s->name,
                        kmin, K);
    if (targeted && s->own_targets)
        return sk_error(SK_EINVAL, "attack %s chooses its own targets; drop cfg.target", s->name);
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
    sk_attack_resolve(&a->cfg, kind);
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
    float *p, *lp;
    double *pb;
    struct sk_attack_mem mem = { 0 };
    for (int pass = 0; pass < 2; pass++) {
        p = sk_attack_take(&mem, sizeof(float) * (size_t)R * Bm * K);
        lp = sk_attack_take(&mem, sizeof(float) * (size_t)Bm * K);
        pb = sk_attack_take(&mem, sizeof(double) * K);
        if (pass == 0 && sk_attack_mem_alloc(&mem)) return sk_error(SK_ENOMEM, "attack: out of memory for the verdict of %d rows", n);
    }
    int rc = SK_OK;
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
    sk_free(mem.base);
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

static void vstate_layout(struct vstate *v, struct sk_attack_mem *m, size_t n)
{
    v->d = sk_attack_take(m, sizeof(float) * n);
    v->q = sk_attack_take(m, sizeof(double) * n);
    v->pred = sk_attack_take(m, sizeof(int) * n);
}

/* Buffers of one stage: a chunk of B rows (cx..cs), the row list (idx, n),
 * and (stochastic) the verdicts of the kept iterate (v*) and of the final
 * one (f*, gradient attacks only). */
struct stage_buf {
    float *cx, *cb, *cl, *cm, *cf, *vd, *fd;
    int *cy, *ct, *cr, *idx, *vp, *fp;
    double *vq, *fq;
    bool *cs;
};

static void stage_layout(struct stage_buf *b, struct sk_attack_mem *m, int B, int D, int n, bool vs, bool two)
{
    size_t BD = (size_t)B * D, Bz = (size_t)B;
    b->cx = sk_attack_take(m, sizeof(float) * BD);
    b->cb = sk_attack_take(m, sizeof(float) * BD);
    b->cl = sk_attack_take(m, sizeof(float) * Bz);
    b->cm = sk_attack_take(m, sizeof(float) * Bz);
    b->cy = sk_attack_take(m, sizeof(int) * Bz);
    b->ct = sk_attack_take(m, sizeof(int) * Bz);
    b->cr = sk_attack_take(m, sizeof(int) * Bz);
    b->idx = sk_attack_take(m, sizeof(int) * (size_t)(n > 0 ? n : 1));
    b->cs = sk_attack_take(m, sizeof(bool) * Bz);
    b->vd = vs ? sk_attack_take(m, sizeof(float) * Bz) : NULL;
    b->vq = vs ? sk_attack_take(m, sizeof(double) * Bz) : NULL;
    b->vp = vs ? sk_attack_take(m, sizeof(int) * Bz) : NULL;
    b->cf = two ? sk_attack_take(m, sizeof(float) * BD) : NULL;
    b->fd = two ? sk_attack_take(m, sizeof(float) * Bz) : NULL;
    b->fq = two ? sk_attack_take(m, sizeof(double) * Bz) : NULL;
    b->fp = two ? sk_attack_take(m, sizeof(int) * Bz) : NULL;
}

/* Gather rows idx[s0 .. s0+M) of the stage into the chunk buffers. */
static void stage_gather(const struct stage_buf *b, int D, int s0, int M, const float *x, const int *y, const int *t,
                         const int *rid, const float *xadv)
{
    for (int q = 0; q < M; q++) {
        int i = b->idx[s0 + q];
        memcpy(b->cx + (size_t)q * D, x + (size_t)i * D, sizeof(float) * D);
        memcpy(b->cb + (size_t)q * D, xadv + (size_t)i * D, sizeof(float) * D);
        b->cy[q] = y[i];
        b->ct[q] = t ? t[i] : -1;
        b->cr[q] = rid ? rid[i] : i;
        b->cl[q] = -INFINITY;
        b->cs[q] = false;
        b->cm[q] = INFINITY;
    }
}

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
                     float *mn, struct sk_attack_stage *st, struct vstate *vs, struct sk_attack_progress *pg)
{
    const struct sk_attack_spec *spec = sk_attack_spec(kind);
    struct sk_actx a;
    actx_init(&a, c, cfg, kind);
    a.stage = stage;
    int D = a.D, B = a.cfg.batch, rc = SK_OK;
    long g0 = c->n_backward, f0 = c->n_forward;
    double t0 = sk_now();
    bool minnorm = spec->family == SK_ATK_MINNORM, two = vs && spec->family == SK_ATK_GRADIENT;
    struct stage_buf b;
    struct sk_attack_mem mem = { 0 };
    stage_layout(&b, &mem, B, D, n, vs != NULL, two);
    if ((rc = sk_attack_mem_alloc(&mem))) return rc;
    stage_layout(&b, &mem, B, D, n, vs != NULL, two);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!succ[i]) b.idx[m++] = i;
    int broken = 0;
    if (pg && cfg->on_progress) {
        pg->name = spec->name;
        pg->done = 0;
        pg->total = m;
        pg->finished = NULL;
        cfg->on_progress(cfg->progress_ctx, pg);
    }
    for (int s0 = 0; s0 < m; s0 += B) {
        int M = m - s0 < B ? m - s0 : B;
        stage_gather(&b, D, s0, M, x, y, t, rid, xadv);
        if (minnorm) memcpy(b.cb, b.cx, sizeof(float) * (size_t)M * D);
        if (two) memcpy(b.cf, b.cb, sizeof(float) * (size_t)M * D);
        struct sk_attack_chunk ch = { b.cx, b.cy, t ? b.ct : NULL, b.cr, M, b.cb, b.cl, b.cs, b.cm, b.cf };
        if ((rc = spec->run(&a, &ch))) goto out;
        if (minnorm)
            for (int q = 0; q < M; q++) b.cs[q] = b.cs[q] && b.cm[q] <= a.cfg.eps;
        sk_attack_proj_rows(&a, a.cfg.eps, b.cx, b.cb, M);
        if (vs && (rc = verdict(c, a.cfg.verdict_samples, B, b.cb, b.cy, M, NULL, b.vp, b.vd, b.vq))) goto out;
        if (two) {
            sk_attack_proj_rows(&a, a.cfg.eps, b.cx, b.cf, M);
            if ((rc = verdict(c, a.cfg.verdict_samples, B, b.cf, b.cy, M, NULL, b.fp, b.fd, b.fq))) goto out;
        }
        for (int q = 0; q < M; q++) {
            int i = b.idx[s0 + q];
            if (mn && b.cm[q] < mn[i]) mn[i] = b.cm[q];
            if (two) { /* the final iterate if only it hits, or if its margin is smaller and both hit or both miss */
                bool h1 = t ? b.vp[q] == b.ct[q] : b.vp[q] != b.cy[q], h2 = t ? b.fp[q] == b.ct[q] : b.fp[q] != b.cy[q];
                if ((h2 && !h1) || (h1 == h2 && b.fd[q] < b.vd[q])) {
                    memcpy(b.cb + (size_t)q * D, b.cf + (size_t)q * D, sizeof(float) * D);
                    b.vd[q] = b.fd[q];
                    b.vq[q] = b.fq[q];
                    b.vp[q] = b.fp[q];
                }
            }
            if (vs) {
                b.cs[q] = t ? b.vp[q] == b.ct[q] : b.vp[q] != b.cy[q];
                if (!b.cs[q] && !(b.vd[q] < vs->d[i])) continue; /* the kept iterate stays */
                vs->d[i] = b.vd[q];
                vs->q[i] = b.vq[q];
                vs->pred[i] = b.vp[q];
            }
            memcpy(xadv + (size_t)i * D, b.cb + (size_t)q * D, sizeof(float) * D);
            succ[i] = b.cs[q];
            broken += b.cs[q];
        }
        if (pg && cfg->on_progress && s0 + M < m) {
            pg->done = s0 + M;
            cfg->on_progress(cfg->progress_ctx, pg);
        }
    }
    if (st) {
        snprintf(st->name, sizeof st->name, "%s", spec->name);
        st->n_attacked = m;
        st->n_broken = broken;
        st->grad_evals = c->n_backward - g0;
        st->queries = c->n_forward - f0;
        st->seconds = sk_now() - t0;
    }
out:
    sk_free(mem.base);
    return rc;
}

/* stages of kind: itself, or a composite's stages that support the norm */
static int stages_of(const struct sk_attack_config *cfg, enum sk_attack_kind *ks)
{
    const struct sk_attack_spec *s = sk_attack_spec(cfg->kind);
    if (s->family != SK_ATK_COMPOSITE) {
        ks[0] = cfg->kind;
        return 1;
    }
    int n = 0;
    for (int i = 0; i < s->n_stages && n < SK_ATTACK_MAX_STAGES; i++)
        if (sk_attack_spec(s->stages[i])->norms & (1u << cfg->norm)) ks[n++] = s->stages[i];
    return n;
}

/* a composite's stages use their own reference settings, not the user's step counts */
static struct sk_attack_config stage_config(const struct sk_attack_config *cfg, enum sk_attack_kind k)
{
    if (!family_is(cfg->kind, SK_ATK_COMPOSITE)) return *cfg;
    struct sk_attack_config s = sk_attack_defaults(k, cfg->norm, cfg->eps);
    s.seed = cfg->seed;
    s.batch = cfg->batch;
    s.img_c = cfg->img_c;
    s.img_h = cfg->img_h;
    s.img_w = cfg->img_w;
    s.clip_min = cfg->clip_min;
    s.clip_max = cfg->clip_max;
    s.box_lo = cfg->box_lo;
    s.box_hi = cfg->box_hi;
    s.verdict_samples = cfg->verdict_samples;
    s.on_progress = cfg->on_progress;
    s.progress_ctx = cfg->progress_ctx;
    if (cfg->queries > 0) s.queries = cfg->queries;
    if (cfg->steps > 0 && !family_is(k, SK_ATK_SEARCH)) s.steps = cfg->steps;
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
    struct sk_attack_mem mem = { 0 };
    bool *succ = NULL;
    float *mn = NULL;
    struct vstate vs = { NULL, NULL, NULL };
    for (int pass = 0; pass < 2; pass++) {
        succ = sk_attack_take(&mem, sizeof(bool) * nn);
        mn = sk_attack_take(&mem, sizeof(float) * nn);
        if (c->stochastic) vstate_layout(&vs, &mem, nn);
        if (pass == 0 && (rc = sk_attack_mem_alloc(&mem))) return rc;
    }
    memset(succ, 0, sizeof(bool) * nn);
    for (int i = 0; i < n; i++) mn[i] = INFINITY;
    for (int i = 0; c->stochastic && i < n; i++) vs.d[i] = INFINITY; /* the first stage's iterate is kept */
    memcpy(x_adv, x, sizeof(float) * (size_t)n * D);
    enum sk_attack_kind ks[8];
    int ns = stages_of(cfg, ks);
    for (int s = 0; s < ns && !rc; s++) {
        struct sk_attack_config sc = stage_config(cfg, ks[s]);
        rc = run_stage(c, &sc, ks[s], s, x, y, tgt, NULL, n, x_adv, succ, mn, NULL, c->stochastic ? &vs : NULL, NULL);
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
    sk_free(mem.base);
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

/* Scratch of one evaluation, one allocation. n rows: lp (clean, then final
 * log-probs), norms; the clean verdict cd, cq, cp (stochastic); the m <= n
 * attacked rows, compact: rid, xs, xa, ys, ts, ss, mn and vs (stochastic). */
struct eval_buf {
    float *lp, *norms, *cd, *xs, *xa, *mn;
    double *cq;
    int *cp, *rid, *ys, *ts;
    bool *ss;
    struct vstate vs;
};

static void eval_layout(struct eval_buf *b, struct sk_attack_mem *m, int n, int D, int K, bool stoch)
{
    size_t nn = (size_t)(n > 0 ? n : 1);
    memset(b, 0, sizeof *b);
    b->lp = sk_attack_take(m, sizeof(float) * nn * K);
    b->norms = sk_attack_take(m, sizeof(float) * nn);
    b->xs = sk_attack_take(m, sizeof(float) * nn * D);
    b->xa = sk_attack_take(m, sizeof(float) * nn * D);
    b->mn = sk_attack_take(m, sizeof(float) * nn);
    b->rid = sk_attack_take(m, sizeof(int) * nn);
    b->ys = sk_attack_take(m, sizeof(int) * nn);
    b->ts = sk_attack_take(m, sizeof(int) * nn);
    b->ss = sk_attack_take(m, sizeof(bool) * nn);
    if (!stoch) return;
    b->cd = sk_attack_take(m, sizeof(float) * nn);
    b->cq = sk_attack_take(m, sizeof(double) * nn);
    b->cp = sk_attack_take(m, sizeof(int) * nn);
    vstate_layout(&b->vs, m, nn);
}

/* A result for n rows of D with its per-point arrays, or NULL (message set). */
static struct sk_attack_result *result_new(int n, int D, int K)
{
    struct sk_attack_result *r = sk_calloc(1, sizeof *r);
    size_t nn = (size_t)(n > 0 ? n : 1);
    if (!r) return NULL;
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
        !r->success || !r->norm_delta || !r->min_norm) {
        sk_attack_result_free(r);
        sk_error(SK_ENOMEM, "attack: out of memory for %d rows of %d", n, D);
        return NULL;
    }
    r->n = n;
    r->dim = D;
    r->n_classes = K;
    return r;
}

static int check_rows(const struct sk_classifier *c, const struct sk_attack_config *cfg, const float *x, const int *y,
                      int n)
{
    if (!c || !cfg || n < 0 || (n > 0 && (!x || !y))) return sk_error(SK_EINVAL, "sk_attack_evaluate: NULL argument or n < 0");
    if (cfg->target == SK_TARGET_GIVEN && !cfg->targets)
        return sk_error(SK_EINVAL, "attack: target mode 'given' needs the targets array");
    int rc = check_config(c, cfg, cfg->target != SK_TARGET_NONE);
    if (rc) return rc;
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= c->n_classes)
            return sk_error(SK_EINVAL, "attack: label %d of row %d is outside [0, %d)", y[i], i, c->n_classes);
    return SK_OK;
}

/* The clean pass: log-probs (stochastic: the verdict), predictions, targets. */
static int clean_pass(struct sk_classifier *c, const struct sk_attack_config *cfg, const float *x, const int *y,
                      int n, struct eval_buf *b, struct sk_attack_result *r)
{
    int K = c->n_classes, B = cfg->batch > 0 ? cfg->batch : 256;
    bool stoch = c->stochastic;
    int rc = stoch ? verdict(c, cfg->verdict_samples, B, x, y, n, b->lp, b->cp, b->cd, b->cq)
                   : log_probs_batched(c, x, n, B, b->lp);
    if (rc) return rc;
    struct sk_rng trng = sk_rng_derive(sk_rng_derive(sk_rng_new(cfg->seed).key, SK_STREAM_ATTACK).key, 99);
    for (int i = 0; i < n; i++) {
        const float *row = b->lp + (size_t)i * K;
        r->pred_clean[i] = stoch ? b->cp[i] : sk_attack_argmax(row, K);
        r->clean_correct[i] = r->pred_clean[i] == y[i];
        int tg = -1;
        if (cfg->target == SK_TARGET_GIVEN) {
            tg = cfg->targets[i];
            if (tg < 0 || tg >= K) return sk_error(SK_EINVAL, "attack: target %d of row %d is outside [0, %d)", tg, i, K);
        } else if (cfg->target == SK_TARGET_RANDOM) {
            struct sk_rng g = { trng.key, ((uint64_t)i + (uint64_t)cfg->first_row) * 8 };
            tg = (int)sk_rng_below(&g, (uint64_t)(K - 1));
            if (tg >= y[i]) tg++;
        } else if (cfg->target == SK_TARGET_LEAST_LIKELY) {
            tg = 0;
            for (int k = 1; k < K; k++)
                if (row[k] < row[tg]) tg = k;
        }
        r->target[i] = tg;
    }
    return SK_OK;
}

static bool reused_row(const struct sk_attack_result *prev, int i)
{
    return prev && prev->clean_correct[i] && !prev->robust[i];
}

/* The points to attack: clean-correct (targeted: target != label), not
 * broken at a smaller eps (those keep prev's example). Gathers them into b
 * and returns their number m. */
static int select_rows(const float *x, const int *y, int n, int D, bool targeted, const struct sk_attack_result *prev,
                       struct sk_attack_result *r, struct eval_buf *b)
{
    memcpy(r->x_adv, x, sizeof(float) * (size_t)n * D);
    int m = 0;
    for (int i = 0; i < n; i++) {
        bool reused = reused_row(prev, i);
        if (reused) memcpy(r->x_adv + (size_t)i * D, prev->x_adv + (size_t)i * D, sizeof(float) * D);
        if (r->clean_correct[i] && !reused && !(targeted && r->target[i] == y[i])) b->rid[m++] = i;
    }
    for (int q = 0; q < m; q++) {
        int i = b->rid[q];
        memcpy(b->xs + (size_t)q * D, x + (size_t)i * D, sizeof(float) * D);
        b->ys[q] = y[i];
        b->ts[q] = r->target[i];
        b->mn[q] = INFINITY;
        b->ss[q] = false;
        if (b->cd) { /* stochastic: the clean point is the iterate to beat */
            b->vs.d[q] = b->cd[i];
            b->vs.q[q] = b->cq[i];
            b->vs.pred[q] = b->cp[i];
        }
    }
    memcpy(b->xa, b->xs, sizeof(float) * (size_t)m * D);
    return m;
}

/* Every stage on the points left; each stage's robust accuracy. */
static int run_stages(struct sk_classifier *c, const struct sk_attack_config *cfg, int n, int m, int standing,
                      bool targeted, struct eval_buf *b, struct sk_attack_result *r)
{
    bool stoch = c->stochastic;
    enum sk_attack_kind ks[SK_ATTACK_MAX_STAGES];
    int ns = stages_of(cfg, ks), rc;
    for (int s = 0; s < ns; s++) {
        struct sk_attack_config sc = stage_config(cfg, ks[s]);
        struct sk_attack_stage *st = &r->stages[s];
        struct sk_attack_progress pg = { .stage = s, .n_stages = ns, .n = n };
        if ((rc = run_stage(c, &sc, ks[s], s, b->xs, b->ys, targeted ? b->ts : NULL, b->rid, m, b->xa, b->ss, b->mn,
                            st, stoch ? &b->vs : NULL, &pg)))
            return rc;
        if (stoch) {
            /* the verdicts on the kept iterates (the headline counts the same way) */
            int rob = standing - m;
            for (int q = 0; q < m; q++) rob += b->vs.pred[q] == b->ys[q];
            st->robust_acc = n ? (double)rob / n : NAN;
        } else {
            standing -= st->n_broken;
            st->robust_acc = n ? (double)standing / n : NAN;
        }
        if (sc.on_progress) {
            pg.done = pg.total;
            pg.finished = st;
            sc.on_progress(sc.progress_ctx, &pg);
        }
    }
    r->n_stages = ns;
    /* a black-box stage after white-box ones that breaks points: the gradients were masked */
    if (ns > 1 && family_is(ks[ns - 1], SK_ATK_SEARCH) && r->stages[ns - 1].n_broken > 0) {
        r->warn_masking = true;
        warn(r, "the black-box square attack broke %d point(s) that the white-box attacks (apgd-ce, apgd-t, fmn) "
                "left standing: a sign of gradient masking; trust the black-box figure",
             r->stages[ns - 1].n_broken);
    }
    return SK_OK;
}

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The final verdict, per-point outcomes and the figures. Deterministic: one
 * more call at x_adv; stochastic: the stages' verdicts on the kept iterates
 * (b->lp keeps the clean verdict, whose argmax the rows not attacked keep). */
static int finish(struct sk_classifier *c, const struct sk_attack_config *cfg, const float *x, const int *y, int n,
                  int m, const struct sk_attack_result *prev, struct eval_buf *b, struct sk_attack_result *r)
{
    int D = c->in_dim, K = c->n_classes, B = cfg->batch > 0 ? cfg->batch : 256, rc;
    bool stoch = c->stochastic, minnorm = family_is(cfg->kind, SK_ATK_MINNORM);
    for (int q = 0; q < m; q++) memcpy(r->x_adv + (size_t)b->rid[q] * D, b->xa + (size_t)q * D, sizeof(float) * D);
    if (!stoch && (rc = log_probs_batched(c, r->x_adv, n, B, b->lp))) return rc;
    double qvar = 0;
    if (stoch) {
        for (int i = 0; i < n; i++) {
            r->pred_adv[i] = b->cp[i];
            if (r->clean_correct[i] && !(prev && !prev->robust[i])) qvar += b->cq[i] * (1 - b->cq[i]);
        }
        for (int q = 0; q < m; q++) {
            int i = b->rid[q];
            r->pred_adv[i] = b->vs.pred[q];
            qvar += b->vs.q[q] * (1 - b->vs.q[q]) - b->cq[i] * (1 - b->cq[i]);
        }
    }
    for (int i = 0; i < n; i++) r->min_norm[i] = INFINITY;
    for (int q = 0; q < m; q++) r->min_norm[b->rid[q]] = b->mn[q];
    int n_correct = 0, n_rob = 0, n_succ = 0, n_norm = 0;
    struct sk_actx na; /* for the norms (image shape for L0) */
    actx_init(&na, c, cfg, cfg->kind);
    for (int i = 0; i < n; i++) {
        bool reused = reused_row(prev, i);
        r->pred_adv[i] = reused ? prev->pred_adv[i] : stoch ? r->pred_adv[i] : sk_attack_argmax(b->lp + (size_t)i * K, K);
        r->robust[i] = r->clean_correct[i] && !reused && r->pred_adv[i] == y[i];
        n_correct += r->clean_correct[i];
        n_rob += r->robust[i];
        bool sc = r->clean_correct[i] && (r->targeted ? r->pred_adv[i] == r->target[i] : !r->robust[i]);
        r->success[i] = sc;
        n_succ += sc;
        r->norm_delta[i] = (float)sk_attack_rownorm(&na, cfg->norm, r->x_adv + (size_t)i * D, x + (size_t)i * D);
        if (!minnorm || reused || stoch) r->min_norm[i] = sc ? r->norm_delta[i] : INFINITY;
        if (sc) b->norms[n_norm++] = r->norm_delta[i];
    }
    r->clean_acc = n ? (double)n_correct / n : NAN;
    r->robust_acc = n ? (double)n_rob / n : NAN;
    r->robust_acc_se = n ? sqrt(fmax(qvar, 0)) / n : NAN;
    r->success_rate = n_correct ? (double)n_succ / n_correct : NAN;
    r->mean_norm = r->median_norm = NAN;
    if (n_norm) {
        double s = 0;
        for (int i = 0; i < n_norm; i++) s += b->norms[i];
        r->mean_norm = s / n_norm;
        qsort(b->norms, (size_t)n_norm, sizeof(float), cmpf);
        float *v = b->norms;
        r->median_norm = n_norm % 2 ? v[n_norm / 2] : 0.5 * (v[n_norm / 2 - 1] + v[n_norm / 2]);
    }
    return SK_OK;
}

/* evaluation; prev (curve): rows broken at a smaller eps are reused as broken */
static struct sk_attack_result *evaluate(struct sk_classifier *c, const struct sk_attack_config *cfg0,
                                         const float *x, const int *y, int n, const struct sk_attack_result *prev,
                                         bool do_audit)
{
    if (check_rows(c, cfg0, x, y, n)) return NULL;
    struct sk_attack_config cfg = *cfg0;
    cfg.verdict_samples = cfg.verdict_samples > 0 ? cfg.verdict_samples : SK_ATTACK_VERDICT_SAMPLES;
    int D = c->in_dim, K = c->n_classes, B = cfg.batch > 0 ? cfg.batch : 256, S = c->n_samples > 0 ? c->n_samples : 1;
    bool stoch = c->stochastic, targeted = cfg.target != SK_TARGET_NONE;
    struct sk_attack_result *r = result_new(n, D, K);
    struct eval_buf b;
    struct sk_attack_mem mem = { 0 };
    eval_layout(&b, &mem, n, D, K, stoch);
    if (!r || sk_attack_mem_alloc(&mem)) goto fail;
    eval_layout(&b, &mem, n, D, K, stoch);
    snprintf(r->attack, sizeof r->attack, "%s", sk_attack_name(cfg.kind));
    r->norm = cfg.norm;
    r->eps = cfg.eps;
    r->targeted = targeted;
    r->stochastic = stoch;
    r->eot_samples = c->n_samples;
    r->no_eot = stoch && c->n_samples <= 1;
    r->verdict_samples = stoch ? verdict_calls(c, cfg.verdict_samples) * S : 1;
    long g0 = c->n_backward, f0 = c->n_forward;
    double t0 = sk_now();
    if (clean_pass(c, &cfg, x, y, n, &b, r)) goto fail;
    if (do_audit && cfg.audit && audits(c, x, y, r->clean_correct, b.lp, n, B, r)) goto fail;
    int m = select_rows(x, y, n, D, targeted, prev, r, &b), standing = 0;
    for (int i = 0; i < n; i++) standing += r->clean_correct[i] && !(prev && !prev->robust[i]);
    if (run_stages(c, &cfg, n, m, standing, targeted, &b, r)) goto fail;
    if (finish(c, &cfg, x, y, n, m, prev, &b, r)) goto fail;
    r->grad_evals = c->n_backward - g0;
    r->queries = c->n_forward - f0;
    r->seconds = sk_now() - t0;
    sk_free(mem.base);
    return r;
fail:
    sk_free(mem.base);
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
    PUT("attack %s (%s, eps %g%s) on %d points%s\n", r->attack, sk_attack_norm_name(r->norm), r->eps,
        r->targeted ? ", targeted" : "", r->n, r->no_eot ? "  [stochastic model, no EOT: optimistic]" : "");
    PUT("clean accuracy    %.4f\n", r->clean_acc);
    PUT("robust accuracy   %.4f%s\n", r->robust_acc, r->no_eot ? "  (stochastic model, no EOT)" : "");
    if (r->stochastic)
        PUT("verdict           %d predictive samples per point; Monte-Carlo s.e. of robust accuracy %.4f\n",
            r->verdict_samples, r->robust_acc_se);
    PUT("success rate      %.4f of clean-correct points\n", r->success_rate);
    PUT("perturbation      mean %.4g  median %.4g (%s, successful points)\n", r->mean_norm, r->median_norm,
        sk_attack_norm_name(r->norm));
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
