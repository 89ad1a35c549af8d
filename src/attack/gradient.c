/* Gradient attacks with a budget: FGSM, BIM/PGD (random start, restarts),
 * MI-FGSM, and auto-PGD (APGD-CE, APGD-DLR, targeted APGD-DLR).
 * Every run keeps the best point per row (first adversarial, else highest
 * loss); restarts run only on the rows still standing. */
#include "attack/internal.h"

#include <float.h>

/* Scratch of one chunk run, one allocation (buf_layout). gx..gidx: the
 * rows still standing gathered for one classifier call; x..redlast: the
 * iterate and APGD's state; x0..mn: the chunk's rows still standing,
 * compact, for one restart. */
struct buf {
    float *gx, *gdx, *glp, *gloss;
    int *gy, *gt, *gidx;
    float *x, *dx, *lp, *loss, *g, *xold, *xbest, *gbest, *lbest, *step, *lsteps, *lblast, *redlast;
    int *y, *t, *rid, *idx;
    float *x0, *bx, *bl;
    bool *bs;
    float *mn;
};

static void buf_layout(struct buf *b, struct sk_attack_mem *m, int M, int D, int K, int n_iter)
{
    size_t MD = (size_t)M * D, MK = (size_t)M * K, Mz = (size_t)M, F = sizeof(float), I = sizeof(int);
    size_t big = MD > MK ? MD : MK;
    b->x = sk_attack_take(m, F * MD);
    b->dx = sk_attack_take(m, F * big);
    b->lp = sk_attack_take(m, F * MK);
    b->loss = sk_attack_take(m, F * Mz);
    b->g = sk_attack_take(m, F * MD);
    b->xold = sk_attack_take(m, F * MD);
    b->xbest = sk_attack_take(m, F * MD);
    b->gbest = sk_attack_take(m, F * MD);
    b->lbest = sk_attack_take(m, F * Mz);
    b->step = sk_attack_take(m, F * Mz);
    b->lsteps = sk_attack_take(m, F * Mz * (size_t)(n_iter > 0 ? n_iter : 1));
    b->lblast = sk_attack_take(m, F * Mz);
    b->redlast = sk_attack_take(m, F * Mz);
    b->x0 = sk_attack_take(m, F * MD);
    b->bx = sk_attack_take(m, F * MD);
    b->bl = sk_attack_take(m, F * Mz);
    b->mn = sk_attack_take(m, F * Mz);
    b->y = sk_attack_take(m, I * Mz);
    b->t = sk_attack_take(m, I * Mz);
    b->rid = sk_attack_take(m, I * Mz);
    b->idx = sk_attack_take(m, I * Mz);
    b->bs = sk_attack_take(m, sizeof(bool) * Mz);
    b->gx = sk_attack_take(m, F * MD);
    b->gdx = sk_attack_take(m, F * big);
    b->glp = sk_attack_take(m, F * MK);
    b->gloss = sk_attack_take(m, F * Mz);
    b->gy = sk_attack_take(m, I * Mz);
    b->gt = sk_attack_take(m, I * Mz);
    b->gidx = sk_attack_take(m, I * Mz);
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
static void track(const struct sk_actx *a, const struct sk_attack_chunk *ch, const float *x, const float *lp,
                  const float *loss)
{
    int D = a->D, K = a->K;
    for (int i = 0; i < ch->M; i++) {
        if (ch->bs[i]) continue;
        const float *xi = x + (size_t)i * D;
        if (!a->stoch && sk_attack_is_adv(a, lp + (size_t)i * K, ch->y[i], ch->t ? ch->t[i] : -1)) {
            ch->bs[i] = true;
            memcpy(ch->bx + (size_t)i * D, xi, sizeof(float) * D);
            ch->mn[i] = (float)sk_attack_rownorm(a, a->cfg.norm, xi, ch->x0 + (size_t)i * D);
        } else if (loss[i] > ch->bl[i]) {
            ch->bl[i] = loss[i];
            memcpy(ch->bx + (size_t)i * D, xi, sizeof(float) * D);
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

/* The classifier seam as the oracle of the PGD ascent (pgd.c). */
struct cls_oracle {
    struct sk_actx *a;
    struct buf *b;
    const struct sk_attack_chunk *ch;
    struct sk_lctx lc;
};

static int cls_eval(void *ctx, const float *x, int s, bool need_grad, float *dx)
{
    struct cls_oracle *o = ctx;
    (void)s;
    return eval_active(o->a, o->b, x, o->ch->M, &o->lc, o->ch->bs, need_grad, o->b->lp, o->b->loss, dx);
}

static void cls_track(void *ctx, const float *x)
{
    const struct cls_oracle *o = ctx;
    track(o->a, o->ch, x, o->b->lp, o->b->loss);
}

/* What distinguishes the gradient attacks; the rest is the PGD ascent or APGD. */
struct grad_opts {
    bool apgd;
    enum sk_attack_loss loss;
    int steps;           /* pgd family */
    float alpha;         /* step size */
    bool random_start;   /* the first run starts at random */
    bool restart_random; /* later runs (restarts) start at random */
    bool momentum;       /* MI-FGSM */
    int restarts;
};

/* One run of FGSM / PGD / MI-FGSM on the compact chunk ch (restart r). */
static int pgd_single(struct sk_actx *a, const struct grad_opts *op, int r, const struct sk_attack_chunk *ch,
                      struct buf *b)
{
    int M = ch->M;
    bool rs = op->random_start || (r > 0 && op->restart_random);
    if (rs)
        random_start(a, 1 + a->stage * 16, r, ch->x0, ch->rid, M, b->x);
    else
        memcpy(b->x, ch->x0, sizeof(float) * (size_t)M * a->D);
    if (op->momentum) memset(b->g, 0, sizeof(float) * (size_t)M * a->D);
    for (int i = 0; i < M; i++) b->step[i] = op->alpha;
    struct sk_attack_pgd_run run = {
        .set = { a->cfg.norm, a->cfg.eps, ch->x0, a->D, a->img_c, a->cfg.clip_min, a->cfg.clip_max, true, false,
                 a->cfg.box_lo, a->cfg.box_hi },
        .M = M, .steps = op->steps, .alpha = b->step, .track_start = rs, .momentum = a->cfg.momentum,
        .x = b->x, .dx = b->dx, .g = op->momentum ? b->g : NULL,
    };
    struct cls_oracle co = { a, b, ch, { op->loss, ch->y, ch->t, NULL, 0 } };
    struct sk_attack_pgd_oracle o = { cls_eval, cls_track, &co };
    return sk_attack_pgd_ascent(&run, &o);
}

/* ---- APGD (Croce & Hein 2020, reference implementation's schedule) ---- */
static int apgd_single(struct sk_actx *a, const struct grad_opts *op, int r, const struct sk_attack_chunk *ch,
                       struct buf *b)
{
    const struct sk_attack_config *cfg = &a->cfg;
    int D = a->D, M = ch->M, rc, n_iter = cfg->steps;
    const float *x0 = ch->x0;
    size_t MD = (size_t)M * D;
    int n_iter_2 = n_iter * 22 / 100 > 1 ? n_iter * 22 / 100 : 1;
    int n_iter_min = n_iter * 6 / 100 > 1 ? n_iter * 6 / 100 : 1;
    int size_decr = n_iter * 3 / 100 > 1 ? n_iter * 3 / 100 : 1;
    const float rho = 0.75f, mom = 0.75f;
    struct sk_lctx lc = { op->loss, ch->y, ch->t, NULL, 0 };
    float *x = b->x, *g = b->g, *xold = b->xold, *xb = b->xbest, *gb = b->gbest, *lb = b->lbest;
    float *step = b->step, *ls = b->lsteps, *lblast = b->lblast, *red = b->redlast;

    random_start(a, 2 + a->stage * 16, r, x0, ch->rid, M, x);
    if ((rc = grad_call(a, x, M, &lc, b->lp, b->loss, g))) return rc;
    track(a, ch, x, b->lp, b->loss);
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
        sk_attack_pgd_ascend(cfg->norm, x, g, step, M, D);
        sk_attack_proj_rows(a, cfg->eps, x0, x, M);
        for (size_t j = 0; j < MD; j++) {
            float xk = b->dx[j];
            x[j] = xk + (x[j] - xk) * am + (xk - xold[j]) * (1 - am);
        }
        sk_attack_proj_rows(a, cfg->eps, x0, x, M);
        memcpy(xold, b->dx, sizeof(float) * MD);
        if ((rc = eval_active(a, b, x, M, &lc, ch->bs, true, b->lp, b->loss, g))) return rc;
        track(a, ch, x, b->lp, b->loss);
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

/* Restarts over the rows of ch still standing: gather, run, scatter. */
static int restarts_loop(struct sk_actx *a, const struct grad_opts *op, const struct sk_attack_chunk *ch)
{
    int D = a->D, M = ch->M, rc = SK_OK;
    struct buf b;
    struct sk_attack_mem mem = { 0 };
    buf_layout(&b, &mem, M, D, a->K, op->apgd ? a->cfg.steps : 0);
    if ((rc = sk_attack_mem_alloc(&mem))) return rc;
    buf_layout(&b, &mem, M, D, a->K, op->apgd ? a->cfg.steps : 0);
    for (int r = 0; r < op->restarts; r++) {
        int m = 0;
        for (int i = 0; i < M; i++)
            if (!ch->bs[i]) b.idx[m++] = i;
        if (!m) break;
        for (int q = 0; q < m; q++) {
            int i = b.idx[q];
            memcpy(b.x0 + (size_t)q * D, ch->x0 + (size_t)i * D, sizeof(float) * D);
            memcpy(b.bx + (size_t)q * D, ch->bx + (size_t)i * D, sizeof(float) * D);
            b.y[q] = ch->y[i];
            b.t[q] = ch->t ? ch->t[i] : -1;
            b.rid[q] = ch->rid[i];
            b.bl[q] = ch->bl[i];
            b.bs[q] = false;
            b.mn[q] = ch->mn[i];
        }
        struct sk_attack_chunk cc = { b.x0, b.y, ch->t ? b.t : NULL, b.rid, m, b.bx, b.bl, b.bs, b.mn, NULL };
        if ((rc = (op->apgd ? apgd_single : pgd_single)(a, op, r, &cc, &b))) break;
        for (int q = 0; q < m; q++) {
            int i = b.idx[q];
            if (ch->last) memcpy(ch->last + (size_t)i * D, b.x + (size_t)q * D, sizeof(float) * D);
            memcpy(ch->bx + (size_t)i * D, b.bx + (size_t)q * D, sizeof(float) * D);
            ch->bl[i] = b.bl[q];
            ch->bs[i] = b.bs[q];
            ch->mn[i] = b.mn[q];
        }
    }
    sk_free(mem.base);
    return rc;
}

int sk_attack_run_fgsm(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    struct grad_opts op = { false, a->cfg.loss, 1, a->cfg.eps, false, false, false, 1 };
    return restarts_loop(a, &op, ch);
}

int sk_attack_run_pgd(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    struct grad_opts op = { false, a->cfg.loss, a->cfg.steps, a->cfg.step_size, a->cfg.random_start, true, false,
                            a->cfg.restarts };
    return restarts_loop(a, &op, ch);
}

int sk_attack_run_mifgsm(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    struct grad_opts op = { false, a->cfg.loss, a->cfg.steps, a->cfg.step_size, false, false, true, a->cfg.restarts };
    return restarts_loop(a, &op, ch);
}

int sk_attack_run_apgd_ce(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    struct grad_opts op = { true, SK_LOSS_CE, a->cfg.steps, 0, true, true, false, a->cfg.restarts };
    return restarts_loop(a, &op, ch);
}

int sk_attack_run_apgd_dlr(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    struct grad_opts op = { true, SK_LOSS_DLR, a->cfg.steps, 0, true, true, false, a->cfg.restarts };
    return restarts_loop(a, &op, ch);
}

/* class of rank tc (1 = top) in the row r of K log-probs */
static int class_of_rank(const float *r, int K, int tc)
{
    int best = -1;
    for (int rank = 1; rank <= tc; rank++) {
        int cand = -1;
        for (int k2 = 0; k2 < K; k2++) {
            /* classes strictly better ranked were chosen before: skip those above `best` */
            bool taken = best >= 0 && (r[k2] > r[best] || (r[k2] == r[best] && k2 <= best));
            if (!taken && (cand < 0 || r[k2] > r[cand])) cand = k2;
        }
        best = cand;
    }
    return best;
}

/* APGD-T: targeted DLR toward the classes ranked 2..k+1 at the clean point;
 * success is misclassification. */
int sk_attack_run_apgd_t(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    int K = a->K, M = ch->M, rc;
    int nt = a->cfg.n_target_classes;
    if (nt > K - 1) nt = K - 1;
    struct sk_attack_mem mem = { 0 };
    float *lp = NULL;
    int *tg = NULL;
    for (int pass = 0; pass < 2; pass++) {
        lp = sk_attack_take(&mem, sizeof(float) * (size_t)M * K);
        tg = sk_attack_take(&mem, sizeof(int) * (size_t)M);
        if (pass == 0 && (rc = sk_attack_mem_alloc(&mem))) return rc;
    }
    rc = a->c->log_probs(a->c->self, ch->x0, M, lp);
    bool saved = a->t_loss_only;
    int saved_stage = a->stage;
    a->t_loss_only = true;
    struct grad_opts op = { true, SK_LOSS_DLR, a->cfg.steps, 0, true, true, false, a->cfg.restarts };
    struct sk_attack_chunk tch = *ch;
    tch.t = tg;
    for (int tc = 2; !rc && tc <= nt + 1; tc++) {
        for (int i = 0; i < M; i++) tg[i] = class_of_rank(lp + (size_t)i * K, K, tc);
        /* a new loss: best-loss tracking restarts. Stochastic: no row is locked, so the
         * targeted DLR losses (normalised margins toward different targets) are compared
         * across targets instead, and the iterate of the best one stays. */
        for (int i = 0; i < M && !a->stoch; i++)
            if (!ch->bs[i]) ch->bl[i] = -INFINITY;
        a->stage = saved_stage * 16 + tc;
        rc = restarts_loop(a, &op, &tch);
    }
    a->t_loss_only = saved;
    a->stage = saved_stage;
    sk_free(mem.base);
    return rc;
}
