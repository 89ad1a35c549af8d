/* Gradient attacks with a budget: FGSM, BIM/PGD (random start, restarts),
 * MI-FGSM, and auto-PGD (APGD-CE, APGD-DLR, targeted APGD-DLR).
 * Every run keeps the best point per row (first adversarial, else highest
 * loss); restarts run only on the rows still standing. */
#include "attack/internal.h"

#include <float.h>

struct buf {
    float *gx, *gdx, *glp, *gloss; /* gathered active rows */
    int *gy, *gt, *gidx;
    float *x, *dx, *lp, *loss, *g, *xold, *xbest, *gbest, *lbest, *step, *lsteps, *lblast, *redlast;
    int *y, *t, *rid, *idx;
    float *x0, *bx, *bl;
    bool *bs;
    float *mn;
};

static void buf_free(struct buf *b)
{
    float **f[] = { &b->x, &b->dx, &b->lp, &b->loss, &b->g, &b->xold, &b->xbest, &b->gbest, &b->lbest, &b->step,
                    &b->lsteps, &b->lblast, &b->redlast, &b->x0, &b->bx, &b->bl, &b->mn };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) sk_free(*f[i]);
    sk_free(b->gx);
    sk_free(b->gdx);
    sk_free(b->glp);
    sk_free(b->gloss);
    sk_free(b->gy);
    sk_free(b->gt);
    sk_free(b->gidx);
    sk_free(b->y);
    sk_free(b->t);
    sk_free(b->rid);
    sk_free(b->idx);
    sk_free(b->bs);
    memset(b, 0, sizeof *b);
}

/* random start in the eps ball around x0 (row keys per restart and row id) */
static void random_start(const struct sk_actx *a, int tag, int r, const float *x0, const int *rid, int M, float *x)
{
    int D = a->D;
    float eps = a->cfg.eps;
    for (int i = 0; i < M; i++) {
        uint64_t k = sk_attack_rowkey(a, tag, r, rid[i]);
        float *xi = x + (size_t)i * D;
        const float *x0i = x0 + (size_t)i * D;
        if (a->cfg.norm == SK_NORM_LINF) {
            for (int j = 0; j < D; j++) xi[j] = x0i[j] + eps * (2 * sk_rng_uniform_at(k, (uint64_t)j) - 1);
        } else {
            double s = 0;
            for (int j = 0; j < D; j++) {
                xi[j] = sk_rng_normal_at(k, (uint64_t)j);
                s += (double)xi[j] * xi[j];
            }
            /* radius eps * u (u uniform): not uniform in volume, but spreads starts over radii */
            float rad = eps * sk_rng_uniform_at(k, (uint64_t)D + 1);
            float sc = s > 0 ? (float)(rad / sqrt(s)) : 0;
            for (int j = 0; j < D; j++) xi[j] = x0i[j] + sc * xi[j];
        }
    }
    sk_attack_proj_rows(a, eps, x0, x, M);
}

/* update tracking state with the point x whose log-probs and loss are lp, loss.
 * Stochastic classifier: one call's misclassification may be luck, so no row
 * is locked; bx is the iterate of the highest (EOT-averaged) loss. */
static void track(const struct sk_actx *a, const float *x, const float *x0, const float *lp, const float *loss,
                  const int *y, const int *t, int M, float *bx, float *bl, bool *bs, float *mn)
{
    int D = a->D, K = a->K;
    for (int i = 0; i < M; i++) {
        if (bs[i]) continue;
        const float *xi = x + (size_t)i * D;
        if (!a->stoch && sk_attack_is_adv(a, lp + (size_t)i * K, y[i], t ? t[i] : -1)) {
            bs[i] = true;
            memcpy(bx + (size_t)i * D, xi, sizeof(float) * D);
            mn[i] = (float)sk_attack_rownorm(a, a->cfg.norm, xi, x0 + (size_t)i * D);
        } else if (loss[i] > bl[i]) {
            bl[i] = loss[i];
            memcpy(bx + (size_t)i * D, xi, sizeof(float) * D);
        }
    }
}

/* steepest ascent direction of the norm: sign (Linf) or g/|g|_2 (L2) */
static void ascend(const struct sk_actx *a, float *x, const float *g, const float *alpha, int M)
{
    int D = a->D;
    for (int i = 0; i < M; i++) {
        float *xi = x + (size_t)i * D;
        const float *gi = g + (size_t)i * D;
        if (a->cfg.norm == SK_NORM_LINF) {
            for (int j = 0; j < D; j++) xi[j] += alpha[i] * (float)((gi[j] > 0) - (gi[j] < 0));
        } else {
            double s = 0;
            for (int j = 0; j < D; j++) s += (double)gi[j] * gi[j];
            if (s <= 0) continue;
            float sc = (float)(alpha[i] / sqrt(s));
            for (int j = 0; j < D; j++) xi[j] += sc * gi[j];
        }
    }
}

static int grad_call(struct sk_actx *a, const float *x, int M, struct sk_lctx *lc, float *lp, float *loss, float *dx)
{
    return a->c->input_grad(a->c->self, x, M, sk_attack_lossfn, lc, lp, loss, dx);
}

/* Log-probs, loss and (grad) input gradient at x for the rows not yet broken
 * (bs[i] false): a broken row already holds its first adversarial point,
 * which no later iterate replaces, so computing it further changes nothing
 * but the cost. The rows are gathered into one contiguous call; lp, loss and
 * dx of broken rows keep stale values that nobody reads. With
 * cfg.keep_going every row is computed (the work of a plain PGD loop). */
static int eval_active(struct sk_actx *a, struct buf *b, const float *x, int M, const struct sk_lctx *lc,
                       const bool *bs, bool grad, float *lp, float *loss, float *dx)
{
    int D = a->D, K = a->K, m = 0, rc;
    struct sk_lctx l = *lc;
    if (!a->cfg.keep_going)
        for (int i = 0; i < M; i++)
            if (!bs[i]) b->gidx[m++] = i;
    if (a->cfg.keep_going || m == M) {
        if (grad) return grad_call(a, x, M, &l, lp, loss, dx);
        if ((rc = a->c->log_probs(a->c->self, x, M, lp))) return rc;
        sk_attack_lossfn(&l, lp, M, K, loss, b->gdx); /* gdx: scratch (>= M*K) */
        return SK_OK;
    }
    if (m == 0) return SK_OK;
    for (int q = 0; q < m; q++) {
        int i = b->gidx[q];
        memcpy(b->gx + (size_t)q * D, x + (size_t)i * D, sizeof(float) * D);
        b->gy[q] = lc->y[i];
        b->gt[q] = lc->t ? lc->t[i] : -1;
    }
    l.y = b->gy;
    l.t = lc->t ? b->gt : NULL;
    if (grad)
        rc = grad_call(a, b->gx, m, &l, b->glp, b->gloss, b->gdx);
    else if (!(rc = a->c->log_probs(a->c->self, b->gx, m, b->glp)))
        sk_attack_lossfn(&l, b->glp, m, K, b->gloss, b->gdx);
    if (rc) return rc;
    for (int q = 0; q < m; q++) {
        int i = b->gidx[q];
        memcpy(lp + (size_t)i * K, b->glp + (size_t)q * K, sizeof(float) * K);
        loss[i] = b->gloss[q];
        if (grad) memcpy(dx + (size_t)i * D, b->gdx + (size_t)q * D, sizeof(float) * D);
    }
    return SK_OK;
}

/* One run of FGSM / PGD / MI-FGSM over M rows. */
static int pgd_single(struct sk_actx *a, enum sk_attack_kind kind, int r, const float *x0, const int *y,
                      const int *t, const int *rid, int M, float *bx, float *bl, bool *bs, float *mn, struct buf *b)
{
    const struct sk_attack_config *cfg = &a->cfg;
    int D = a->D, rc;
    int steps = kind == SK_ATTACK_FGSM ? 1 : cfg->steps;
    float alpha = kind == SK_ATTACK_FGSM ? cfg->eps : cfg->step_size;
    bool rs = kind == SK_ATTACK_PGD && (cfg->random_start || r > 0);
    struct sk_lctx lc = { cfg->loss, y, t, NULL, 0 };
    if (rs)
        random_start(a, 1 + a->stage * 16, r, x0, rid, M, b->x);
    else
        memcpy(b->x, x0, sizeof(float) * (size_t)M * D);
    if (kind == SK_ATTACK_MIFGSM) memset(b->g, 0, sizeof(float) * (size_t)M * D);
    for (int i = 0; i < M; i++) b->step[i] = alpha;
    for (int s = 0; s <= steps; s++) {
        if ((rc = eval_active(a, b, b->x, M, &lc, bs, s < steps, b->lp, b->loss, b->dx))) return rc;
        if (s > 0 || rs) track(a, b->x, x0, b->lp, b->loss, y, t, M, bx, bl, bs, mn);
        if (s == steps) break;
        const float *dir = b->dx;
        if (kind == SK_ATTACK_MIFGSM) {
            /* g = mu g + dx / |dx|_1 */
            for (int i = 0; i < M; i++) {
                const float *di = b->dx + (size_t)i * D;
                float *gi = b->g + (size_t)i * D;
                double n1 = 0;
                for (int j = 0; j < D; j++) n1 += fabsf(di[j]);
                float inv = n1 > 0 ? (float)(1 / n1) : 0;
                for (int j = 0; j < D; j++) gi[j] = cfg->momentum * gi[j] + di[j] * inv;
            }
            dir = b->g;
        }
        ascend(a, b->x, dir, b->step, M);
        sk_attack_proj_rows(a, cfg->eps, x0, b->x, M);
    }
    return SK_OK;
}

/* ---- APGD (Croce & Hein 2020, reference implementation's schedule) ---- */
static int apgd_single(struct sk_actx *a, enum sk_attack_loss loss, int r, const float *x0, const int *y,
                       const int *t, const int *rid, int M, float *bx, float *bl, bool *bs, float *mn,
                       struct buf *b)
{
    const struct sk_attack_config *cfg = &a->cfg;
    int D = a->D, rc, n_iter = cfg->steps;
    size_t MD = (size_t)M * D;
    int n_iter_2 = n_iter * 22 / 100 > 1 ? n_iter * 22 / 100 : 1;
    int n_iter_min = n_iter * 6 / 100 > 1 ? n_iter * 6 / 100 : 1;
    int size_decr = n_iter * 3 / 100 > 1 ? n_iter * 3 / 100 : 1;
    const float rho = 0.75f, mom = 0.75f;
    struct sk_lctx lc = { loss, y, t, NULL, 0 };
    float *x = b->x, *g = b->g, *xold = b->xold, *xb = b->xbest, *gb = b->gbest, *lb = b->lbest;
    float *step = b->step, *ls = b->lsteps, *lblast = b->lblast, *red = b->redlast;

    random_start(a, 2 + a->stage * 16, r, x0, rid, M, x);
    if ((rc = grad_call(a, x, M, &lc, b->lp, b->loss, g))) return rc;
    track(a, x, x0, b->lp, b->loss, y, t, M, bx, bl, bs, mn);
    memcpy(xb, x, sizeof(float) * MD);
    memcpy(gb, g, sizeof(float) * MD);
    for (int i = 0; i < M; i++) {
        lb[i] = b->loss[i];
        lblast[i] = lb[i];
        red[i] = 1;
        step[i] = 2 * cfg->eps;
    }
    memcpy(xold, x, sizeof(float) * MD);
    int k = n_iter_2, counter3 = 0;
    for (int it = 0; it < n_iter; it++) {
        /* z = P(x + eta dir(g)); x' = P(x + a (z - x) + (1-a)(x - x_old)) */
        float am = it > 0 ? mom : 1.0f;
        memcpy(b->dx, x, sizeof(float) * MD); /* dx <- x (copy of x_k) */
        ascend(a, x, g, step, M);
        sk_attack_proj_rows(a, cfg->eps, x0, x, M);
        for (size_t j = 0; j < MD; j++) {
            float xk = b->dx[j];
            x[j] = xk + (x[j] - xk) * am + (xk - xold[j]) * (1 - am);
        }
        sk_attack_proj_rows(a, cfg->eps, x0, x, M);
        memcpy(xold, b->dx, sizeof(float) * MD);
        if ((rc = eval_active(a, b, x, M, &lc, bs, true, b->lp, b->loss, g))) return rc;
        track(a, x, x0, b->lp, b->loss, y, t, M, bx, bl, bs, mn);
        for (int i = 0; i < M; i++) {
            ls[(size_t)it * M + i] = b->loss[i];
            if (b->loss[i] > lb[i]) {
                lb[i] = b->loss[i];
                memcpy(xb + (size_t)i * D, x + (size_t)i * D, sizeof(float) * D);
                memcpy(gb + (size_t)i * D, g + (size_t)i * D, sizeof(float) * D);
            }
        }
        if (++counter3 == k) {
            for (int i = 0; i < M; i++) {
                /* oscillation: fewer than rho k of the last k steps increased the loss */
                int inc = 0;
                for (int c5 = 0; c5 < k; c5++) {
                    int j1 = it - c5, j0 = it - c5 - 1;
                    float prev = j0 >= 0 ? ls[(size_t)j0 * M + i] : 0.0f;
                    if (j1 >= 0 && ls[(size_t)j1 * M + i] > prev) inc++;
                }
                bool osc = inc <= k * rho;
                bool noimpr = red[i] == 0 && lblast[i] >= lb[i];
                bool fl = osc || noimpr;
                red[i] = fl;
                lblast[i] = lb[i];
                if (fl) {
                    step[i] /= 2;
                    memcpy(x + (size_t)i * D, xb + (size_t)i * D, sizeof(float) * D);
                    memcpy(g + (size_t)i * D, gb + (size_t)i * D, sizeof(float) * D);
                }
            }
            k = k - size_decr > n_iter_min ? k - size_decr : n_iter_min;
            counter3 = 0;
        }
    }
    return SK_OK;
}

static int alloc_buf(struct buf *b, int M, int D, int K, int n_iter)
{
    size_t MD = (size_t)M * D, MK = (size_t)M * K;
    size_t big = MD > MK ? MD : MK;
    b->x = sk_malloc(sizeof(float) * MD);
    b->dx = sk_malloc(sizeof(float) * big);
    b->lp = sk_malloc(sizeof(float) * MK);
    b->loss = sk_malloc(sizeof(float) * M);
    b->g = sk_malloc(sizeof(float) * MD);
    b->xold = sk_malloc(sizeof(float) * MD);
    b->xbest = sk_malloc(sizeof(float) * MD);
    b->gbest = sk_malloc(sizeof(float) * MD);
    b->lbest = sk_malloc(sizeof(float) * M);
    b->step = sk_malloc(sizeof(float) * M);
    b->lsteps = sk_malloc(sizeof(float) * (size_t)M * (n_iter > 0 ? n_iter : 1));
    b->lblast = sk_malloc(sizeof(float) * M);
    b->redlast = sk_malloc(sizeof(float) * M);
    b->x0 = sk_malloc(sizeof(float) * MD);
    b->bx = sk_malloc(sizeof(float) * MD);
    b->bl = sk_malloc(sizeof(float) * M);
    b->mn = sk_malloc(sizeof(float) * M);
    b->y = sk_malloc(sizeof(int) * M);
    b->t = sk_malloc(sizeof(int) * M);
    b->rid = sk_malloc(sizeof(int) * M);
    b->idx = sk_malloc(sizeof(int) * M);
    b->bs = sk_malloc(sizeof(bool) * M);
    b->gx = sk_malloc(sizeof(float) * MD);
    b->gdx = sk_malloc(sizeof(float) * big);
    b->glp = sk_malloc(sizeof(float) * MK);
    b->gloss = sk_malloc(sizeof(float) * M);
    b->gy = sk_malloc(sizeof(int) * M);
    b->gt = sk_malloc(sizeof(int) * M);
    b->gidx = sk_malloc(sizeof(int) * M);
    if (!b->gx || !b->gdx || !b->glp || !b->gloss || !b->gy || !b->gt || !b->gidx ||
        !b->x || !b->dx || !b->lp || !b->loss || !b->g || !b->xold || !b->xbest || !b->gbest || !b->lbest ||
        !b->step || !b->lsteps || !b->lblast || !b->redlast || !b->x0 || !b->bx || !b->bl || !b->mn || !b->y ||
        !b->t || !b->rid || !b->idx || !b->bs) {
        buf_free(b);
        return sk_error(SK_ENOMEM, "attack: out of memory for a batch of %d rows of %d", M, D);
    }
    return SK_OK;
}

/* Restarts over the rows still standing: gather, run, scatter. */
static int restarts_loop(struct sk_actx *a, int kind_or_loss, bool is_apgd, const float *x0, const int *y,
                         const int *t, const int *rid, int M, float *bx, float *bl, bool *bs, float *mn, int restarts)
{
    int D = a->D, rc = SK_OK;
    struct buf b = { 0 };
    if ((rc = alloc_buf(&b, M, D, a->K, is_apgd ? a->cfg.steps : 0))) return rc;
    for (int r = 0; r < restarts; r++) {
        int m = 0;
        for (int i = 0; i < M; i++)
            if (!bs[i]) b.idx[m++] = i;
        if (!m) break;
        for (int q = 0; q < m; q++) {
            int i = b.idx[q];
            memcpy(b.x0 + (size_t)q * D, x0 + (size_t)i * D, sizeof(float) * D);
            memcpy(b.bx + (size_t)q * D, bx + (size_t)i * D, sizeof(float) * D);
            b.y[q] = y[i];
            b.t[q] = t ? t[i] : -1;
            b.rid[q] = rid[i];
            b.bl[q] = bl[i];
            b.bs[q] = false;
            b.mn[q] = mn[i];
        }
        const int *tq = t ? b.t : NULL;
        if (is_apgd)
            rc = apgd_single(a, (enum sk_attack_loss)kind_or_loss, r, b.x0, b.y, tq, b.rid, m, b.bx, b.bl, b.bs,
                             b.mn, &b);
        else
            rc = pgd_single(a, (enum sk_attack_kind)kind_or_loss, r, b.x0, b.y, tq, b.rid, m, b.bx, b.bl, b.bs,
                            b.mn, &b);
        if (rc) break;
        for (int q = 0; q < m; q++) {
            int i = b.idx[q];
            if (a->last) memcpy(a->last + (size_t)i * D, b.x + (size_t)q * D, sizeof(float) * D);
            memcpy(bx + (size_t)i * D, b.bx + (size_t)q * D, sizeof(float) * D);
            bl[i] = b.bl[q];
            bs[i] = b.bs[q];
            mn[i] = b.mn[q];
        }
    }
    buf_free(&b);
    return rc;
}

int sk_atk_pgd(struct sk_actx *a, enum sk_attack_kind kind, const float *x0, const int *y, const int *t,
               const int *rid, int M, float *bx, float *bl, bool *bs, float *mn)
{
    int restarts = kind == SK_ATTACK_FGSM ? 1 : a->cfg.restarts;
    return restarts_loop(a, (int)kind, false, x0, y, t, rid, M, bx, bl, bs, mn, restarts);
}

int sk_atk_apgd(struct sk_actx *a, enum sk_attack_loss loss, const float *x0, const int *y, const int *t,
                const int *rid, int M, float *bx, float *bl, bool *bs, float *mn)
{
    return restarts_loop(a, (int)loss, true, x0, y, t, rid, M, bx, bl, bs, mn, a->cfg.restarts);
}

/* APGD-T: targeted DLR toward the classes ranked 2..k+1 at the clean point;
 * success is misclassification. */
int sk_atk_apgd_t(struct sk_actx *a, const float *x0, const int *y, const int *rid, int M, float *bx, float *bl,
                  bool *bs, float *mn)
{
    int K = a->K, rc;
    int nt = a->cfg.n_target_classes;
    if (nt > K - 1) nt = K - 1;
    float *lp = sk_malloc(sizeof(float) * (size_t)M * K);
    int *tg = sk_malloc(sizeof(int) * M);
    if (!lp || !tg) {
        sk_free(lp);
        sk_free(tg);
        return SK_ENOMEM;
    }
    rc = a->c->log_probs(a->c->self, x0, M, lp);
    bool saved = a->t_loss_only;
    int saved_stage = a->stage;
    a->t_loss_only = true;
    for (int tc = 2; !rc && tc <= nt + 1; tc++) {
        for (int i = 0; i < M; i++) {
            /* class of rank tc (1 = top) in row i */
            const float *r = lp + (size_t)i * K;
            int best = -1;
            for (int rank = 1; rank <= tc; rank++) {
                int cand = -1;
                for (int k2 = 0; k2 < K; k2++) {
                    bool taken = false;
                    /* classes strictly better ranked were chosen before: skip those above `best` */
                    if (best >= 0 && (r[k2] > r[best] || (r[k2] == r[best] && k2 <= best))) taken = true;
                    if (!taken && (cand < 0 || r[k2] > r[cand])) cand = k2;
                }
                best = cand;
            }
            tg[i] = best;
        }
        /* a new loss: best-loss tracking restarts. Stochastic: no row is locked, so the
         * targeted DLR losses (normalised margins toward different targets) are compared
         * across targets instead, and the iterate of the best one stays. */
        for (int i = 0; i < M && !a->stoch; i++)
            if (!bs[i]) bl[i] = -INFINITY;
        a->stage = saved_stage * 16 + tc;
        rc = restarts_loop(a, SK_LOSS_DLR, true, x0, y, tg, rid, M, bx, bl, bs, mn, a->cfg.restarts);
    }
    a->t_loss_only = saved;
    a->stage = saved_stage;
    sk_free(lp);
    sk_free(tg);
    return rc;
}
