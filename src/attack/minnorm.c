/* Minimal-norm attacks: Carlini–Wagner L2 (tanh box, Adam, binary search on
 * c), DeepFool (multi-class linearisation) and FMN (fast minimum-norm, L2 and
 * Linf). Each returns in bx the smallest adversarial point found (mn its
 * norm), or x0 if none; the caller projects onto the budget. On a
 * stochastic classifier: bx is the iterate within eps of the largest
 * averaged margin (keep_margin), DeepFool runs all its steps, no bisection. */
#include "attack/internal.h"

static int argmax_row(const float *r, int K) { return sk_attack_argmax(r, K); }

/* Adversarial with a margin: the winning log-probability leads the label's
 * (targeted: the target leads every other class) by at least 1e-5, so that
 * the verdict survives the float noise of another batch composition. */
static bool adv_margin(const struct sk_actx *a, const float *lp, int y, int t)
{
    if (!sk_attack_is_adv(a, lp, y, t)) return false;
    int K = a->K;
    if (t >= 0 && !a->t_loss_only) {
        for (int k = 0; k < K; k++)
            if (k != t && lp[t] - lp[k] < 1e-5f) return false;
        return true;
    }
    int am = sk_attack_argmax(lp, K);
    return lp[am] - lp[y] >= 1e-5f;
}

/* Stochastic classifier: a noisy success proves nothing and the caller's
 * verdict judges the point within eps, so each row keeps (in bx) its iterate
 * within the budget of the largest EOT-averaged CW margin (bm[i], init
 * -INFINITY); bs and mn are left to the verdict. */
static void keep_margin(const struct sk_actx *a, const float *xi, const float *x0i, const float *lpi, int y,
                        const int *t, float *bxi, float *bmi)
{
    if (sk_attack_rownorm(a, a->cfg.norm, xi, x0i) > a->cfg.eps) return;
    float m;
    sk_margin_rows(SK_MARGIN_CW, lpi, 1, a->K, &y, t, &m, NULL);
    if (m <= *bmi) return;
    *bmi = m;
    memcpy(bxi, xi, sizeof(float) * a->D);
}

/* bm [M] (stochastic only; NULL otherwise) from the run's memory, -INFINITY */
static float *margins_take(const struct sk_actx *a, struct sk_attack_mem *m, int M)
{
    float *bm = a->stoch ? sk_attack_take(m, sizeof(float) * (size_t)(M > 0 ? M : 1)) : NULL;
    for (int i = 0; bm && i < M; i++) bm[i] = -INFINITY;
    return bm;
}

/* loss = logp_k for one class k on every row */
static void loss_class(void *ctx, const float *logp, int N, int K, float *loss, float *dlogp)
{
    int k = *(const int *)ctx;
    memset(dlogp, 0, sizeof(float) * (size_t)N * K);
    for (int i = 0; i < N; i++) {
        if (loss) loss[i] = logp[(size_t)i * K + k];
        dlogp[(size_t)i * K + k] = 1;
    }
}

/* Shrink adversarial rows toward x0 along the segment by bisection (forward
 * calls only), keeping the smallest scale that is still adversarial. */
static int refine_line(struct sk_actx *a, const float *x0, const int *y, const int *t, int M, float *bx, bool *bs,
                       float *mn, int iters)
{
    int D = a->D, K = a->K, rc = SK_OK;
    float *xs, *lp, *lo, *hi;
    struct sk_attack_mem mem = { 0 };
    for (int pass = 0; pass < 2; pass++) {
        xs = sk_attack_take(&mem, sizeof(float) * (size_t)M * D);
        lp = sk_attack_take(&mem, sizeof(float) * (size_t)M * K);
        lo = sk_attack_take(&mem, sizeof(float) * M);
        hi = sk_attack_take(&mem, sizeof(float) * M);
        if (pass == 0 && (rc = sk_attack_mem_alloc(&mem))) return rc;
    }
    for (int i = 0; i < M; i++) {
        lo[i] = 0;
        hi[i] = 1;
    }
    for (int it = 0; it < iters; it++) {
        for (int i = 0; i < M; i++) {
            float s = 0.5f * (lo[i] + hi[i]);
            for (int j = 0; j < D; j++) {
                size_t q = (size_t)i * D + j;
                xs[q] = bs[i] ? x0[q] + s * (bx[q] - x0[q]) : x0[q];
            }
        }
        if ((rc = a->c->log_probs(a->c->self, xs, M, lp))) goto done;
        for (int i = 0; i < M; i++) {
            if (!bs[i]) continue;
            float s = 0.5f * (lo[i] + hi[i]);
            if (adv_margin(a, lp + (size_t)i * K, y[i], t ? t[i] : -1))
                hi[i] = s;
            else
                lo[i] = s;
        }
    }
    /* a hair beyond the bisection's adversarial end (0.1%), so that the
     * verdict survives float noise (another batch size rounds differently);
     * checked, else the bisection's end itself */
    for (int pass = 0; pass < 2; pass++) {
        float push = pass == 0 ? 1.001f : 1.0f;
        for (int i = 0; i < M; i++) {
            float s = bs[i] ? hi[i] * push : 0.0f;
            for (int j = 0; j < D; j++) {
                size_t q = (size_t)i * D + j;
                xs[q] = fminf(fmaxf(x0[q] + s * (bx[q] - x0[q]), sk_attack_lo(&a->cfg, j)), sk_attack_hi(&a->cfg, j));
            }
        }
        if ((rc = a->c->log_probs(a->c->self, xs, M, lp))) goto done;
        for (int i = 0; i < M; i++) {
            if (!bs[i] || !(pass == 0 ? adv_margin : sk_attack_is_adv)(a, lp + (size_t)i * K, y[i], t ? t[i] : -1))
                continue;
            memcpy(bx + (size_t)i * D, xs + (size_t)i * D, sizeof(float) * D);
            mn[i] = (float)sk_attack_rownorm(a, a->cfg.norm, bx + (size_t)i * D, x0 + (size_t)i * D);
            hi[i] = 1; /* settled: pass 2 leaves it (s = 1 is bx itself) */
        }
    }
done:
    sk_free(mem.base);
    return rc;
}

/* ---- DeepFool ---- */
int sk_attack_run_deepfool(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    const float *x0 = ch->x0;
    const int *y = ch->y, *t = ch->t;
    int M = ch->M;
    float *bx = ch->bx, *mn = ch->mn;
    bool *bs = ch->bs;
    int D = a->D, K = a->K, rc = SK_OK, steps = a->cfg.steps;
    size_t MD = (size_t)M * D;
    float *x, *rt, *gk, *lp, *xg, *gg, *lpg, *bm;
    bool *done;
    int *gi;
    struct sk_attack_mem mem = { 0 };
    for (int pass = 0; pass < 2; pass++) {
        x = sk_attack_take(&mem, sizeof(float) * MD);
        rt = sk_attack_take(&mem, sizeof(float) * MD);
        gk = sk_attack_take(&mem, sizeof(float) * MD * K);
        lp = sk_attack_take(&mem, sizeof(float) * (size_t)M * K);
        done = sk_attack_take(&mem, sizeof(bool) * (size_t)M);
        xg = sk_attack_take(&mem, sizeof(float) * MD);
        gg = sk_attack_take(&mem, sizeof(float) * MD);
        lpg = sk_attack_take(&mem, sizeof(float) * (size_t)M * K);
        gi = sk_attack_take(&mem, sizeof(int) * (size_t)M);
        bm = margins_take(a, &mem, M);
        if (pass == 0 && (rc = sk_attack_mem_alloc(&mem))) return rc;
    }
    memset(rt, 0, sizeof(float) * MD);
    memset(done, 0, sizeof(bool) * (size_t)M);
    memcpy(x, x0, sizeof(float) * MD);
    for (int it = 0; it <= steps; it++) {
        /* gradients of every log-probability (one call per class), for the rows
         * still running only (gathered into one contiguous batch) */
        int m = 0;
        for (int i = 0; i < M; i++)
            if (!done[i]) gi[m++] = i;
        if (!m) break;
        for (int q = 0; q < m; q++) memcpy(xg + (size_t)q * D, x + (size_t)gi[q] * D, sizeof(float) * D);
        for (int k = 0; k < K; k++) {
            int kk = k;
            if ((rc = a->c->input_grad(a->c->self, xg, m, loss_class, &kk, lpg, NULL, gg))) goto out;
            for (int q = 0; q < m; q++)
                memcpy(gk + (size_t)k * MD + (size_t)gi[q] * D, gg + (size_t)q * D, sizeof(float) * D);
        }
        for (int q = 0; q < m; q++) memcpy(lp + (size_t)gi[q] * K, lpg + (size_t)q * K, sizeof(float) * K);
        int active = 0;
        for (int i = 0; i < M; i++) {
            if (done[i]) continue;
            const float *li = lp + (size_t)i * K;
            int ti = t ? t[i] : -1;
            if (a->stoch)
                keep_margin(a, x + (size_t)i * D, x0 + (size_t)i * D, li, y[i], t ? t + i : NULL,
                            bx + (size_t)i * D, bm + i);
            else if (sk_attack_is_adv(a, li, y[i], ti)) {
                done[i] = bs[i] = true;
                memcpy(bx + (size_t)i * D, x + (size_t)i * D, sizeof(float) * D);
                mn[i] = (float)sk_attack_rownorm(a, SK_NORM_L2, x + (size_t)i * D, x0 + (size_t)i * D);
                continue;
            }
            if (it == steps) continue;
            active++;
            /* closest linearised boundary: min_k |f_k| / |w_k|, f_k = lp_k - lp_src, w_k = g_k - g_src */
            int src = ti >= 0 ? argmax_row(li, K) : y[i];
            double best = INFINITY;
            int bk = -1;
            for (int k = 0; k < K; k++) {
                if (k == src || (ti >= 0 && k != ti)) continue;
                double f = li[k] - li[src], w2 = 0;
                const float *gk_i = gk + (size_t)k * MD + (size_t)i * D, *gs = gk + (size_t)src * MD + (size_t)i * D;
                for (int j = 0; j < D; j++) {
                    double w = (double)gk_i[j] - gs[j];
                    w2 += w * w;
                }
                if (w2 <= 0) continue;
                double dist = fabs(f) / sqrt(w2);
                if (dist < best) {
                    best = dist;
                    bk = k;
                }
            }
            if (bk < 0) {
                done[i] = true; /* zero gradient: DeepFool cannot move */
                continue;
            }
            double f = li[bk] - li[src], w2 = 0;
            const float *gb = gk + (size_t)bk * MD + (size_t)i * D, *gs = gk + (size_t)src * MD + (size_t)i * D;
            for (int j = 0; j < D; j++) {
                double w = (double)gb[j] - gs[j];
                w2 += w * w;
            }
            double sc = (fabs(f) + 1e-4) / w2;
            float *ri = rt + (size_t)i * D;
            for (int j = 0; j < D; j++) ri[j] += (float)(sc * ((double)gb[j] - gs[j]));
            float ov = 1 + a->cfg.overshoot;
            for (int j = 0; j < D; j++) {
                float v = x0[(size_t)i * D + j] + ov * ri[j];
                x[(size_t)i * D + j] = fminf(fmaxf(v, sk_attack_lo(&a->cfg, j)), sk_attack_hi(&a->cfg, j));
            }
        }
        if (!active && it < steps) {
            bool any = false;
            for (int i = 0; i < M; i++) any |= !done[i];
            if (!any) break;
        }
    }
    /* the overshoot passes the boundary on purpose; bisect back to it (not on a
     * stochastic classifier: bisection on noisy calls would only pull bx back) */
    if (!a->stoch) {
        enum sk_norm saved = a->cfg.norm;
        a->cfg.norm = SK_NORM_L2;
        rc = refine_line(a, x0, y, t, M, bx, bs, mn, 12);
        a->cfg.norm = saved;
    }
out:
    sk_free(mem.base);
    return rc;
}

/* ---- Carlini–Wagner L2 ----
 * minimise |x - x0|^2 + c max(z_y - max_{j!=y} z_j + kappa, 0) over
 * x = lo + (hi-lo)(tanh w + 1)/2; Adam on w; binary search on c per row. */
struct cw_ctx {
    const int *y, *t;
    const float *c;
    float kappa;
};

/* per-row c f and d(c f)/dlogp, f = max(kappa - m, 0) */
static void cw_loss(void *ctx, const float *logp, int N, int K, float *loss, float *dlogp)
{
    const struct cw_ctx *cc = ctx;
    for (int i = 0; i < N; i++) {
        float m;
        float *d = dlogp + (size_t)i * K;
        sk_margin_rows(SK_MARGIN_CW, logp + (size_t)i * K, 1, K, cc->y + i, cc->t ? cc->t + i : NULL, &m, d);
        float act = cc->kappa - m > 0 ? 1.0f : 0.0f;
        for (int k = 0; k < K; k++) d[k] *= -cc->c[i] * act;
        if (loss) loss[i] = cc->c[i] * fmaxf(cc->kappa - m, 0);
    }
}

int sk_attack_run_cw(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    const float *x0 = ch->x0;
    const int *y = ch->y, *t = ch->t;
    int M = ch->M;
    float *bx = ch->bx, *mn = ch->mn;
    bool *bs = ch->bs;
    int D = a->D, K = a->K, rc = SK_OK, steps = a->cfg.steps;
    size_t MD = (size_t)M * D;
    float lr = a->cfg.step_size;
    float *w, *w0, *x, *dx, *m1, *v, *lp, *loss, *c, *clo, *chi, *bm;
    bool *found;
    struct sk_attack_mem mem = { 0 };
    for (int pass = 0; pass < 2; pass++) {
        w = sk_attack_take(&mem, sizeof(float) * MD);
        w0 = sk_attack_take(&mem, sizeof(float) * MD);
        x = sk_attack_take(&mem, sizeof(float) * MD);
        dx = sk_attack_take(&mem, sizeof(float) * MD);
        m1 = sk_attack_take(&mem, sizeof(float) * MD);
        v = sk_attack_take(&mem, sizeof(float) * MD);
        lp = sk_attack_take(&mem, sizeof(float) * (size_t)M * K);
        loss = sk_attack_take(&mem, sizeof(float) * (size_t)M);
        c = sk_attack_take(&mem, sizeof(float) * (size_t)M);
        clo = sk_attack_take(&mem, sizeof(float) * (size_t)M);
        chi = sk_attack_take(&mem, sizeof(float) * (size_t)M);
        found = sk_attack_take(&mem, sizeof(bool) * (size_t)M);
        bm = margins_take(a, &mem, M);
        if (pass == 0 && (rc = sk_attack_mem_alloc(&mem))) return rc;
    }
    /* tanh space per feature: x_j = lo_j + span_j (tanh w + 1) / 2 */
    const struct sk_attack_config *bc = &a->cfg;
    for (size_t q = 0; q < MD; q++) {
        int j = (int)(q % (size_t)D);
        float lo = sk_attack_lo(bc, j), span = sk_attack_hi(bc, j) - lo;
        float u = (x0[q] - lo) / span * 2 - 1;
        u = fminf(fmaxf(u, -0.999999f), 0.999999f);
        w0[q] = atanhf(u);
    }
    for (int i = 0; i < M; i++) {
        c[i] = a->cfg.cw_c_init;
        clo[i] = 0;
        chi[i] = INFINITY;
    }
    /* a hair of confidence (1e-4 in log-probability) puts the optimum, which sits on the
     * kink of the hinge, on the adversarial side of the boundary */
    struct cw_ctx cc = { y, t, c, fmaxf(a->cfg.cw_confidence, 1e-4f) };
    for (int bsi = 0; bsi < a->cfg.cw_search_steps; bsi++) {
        memcpy(w, w0, sizeof(float) * MD);
        memset(m1, 0, sizeof(float) * MD);
        memset(v, 0, sizeof(float) * MD);
        memset(found, 0, sizeof(bool) * M);
        float b1t = 1, b2t = 1;
        for (int it = 0; it <= steps; it++) {
            for (size_t q = 0; q < MD; q++) {
                int j = (int)(q % (size_t)D);
                float lo = sk_attack_lo(bc, j), span = sk_attack_hi(bc, j) - lo;
                x[q] = lo + span * (tanhf(w[q]) + 1) * 0.5f;
            }
            if (it < steps) {
                if ((rc = a->c->input_grad(a->c->self, x, M, cw_loss, &cc, lp, loss, dx))) goto out;
            } else if ((rc = a->c->log_probs(a->c->self, x, M, lp)))
                goto out;
            for (int i = 0; i < M; i++) {
                const float *xi = x + (size_t)i * D;
                if (a->stoch)
                    keep_margin(a, xi, x0 + (size_t)i * D, lp + (size_t)i * K, y[i], t ? t + i : NULL,
                                bx + (size_t)i * D, bm + i);
                if (!sk_attack_is_adv(a, lp + (size_t)i * K, y[i], t ? t[i] : -1)) continue;
                found[i] = true;
                float nrm = (float)sk_attack_rownorm(a, SK_NORM_L2, xi, x0 + (size_t)i * D);
                if (nrm < mn[i] && !a->stoch) {
                    mn[i] = nrm;
                    bs[i] = true;
                    memcpy(bx + (size_t)i * D, xi, sizeof(float) * D);
                }
            }
            if (it == steps) break;
            /* gradient of |x-x0|^2 + c f w.r.t. w; Adam (0.9, 0.999, 1e-8) with the
             * step decayed (cosine, lr -> lr/100) so that the iterates settle on
             * the boundary instead of orbiting it */
            float lr_it = lr * (0.01f + 0.99f * 0.5f * (1 + cosf(3.14159265f * it / steps)));
            b1t *= 0.9f;
            b2t *= 0.999f;
            for (size_t q = 0; q < MD; q++) {
                float th = tanhf(w[q]);
                float gx = 2 * (x[q] - x0[q]) + dx[q];
                int j = (int)(q % (size_t)D);
                float gw = gx * (sk_attack_hi(bc, j) - sk_attack_lo(bc, j)) * 0.5f * (1 - th * th);
                m1[q] = 0.9f * m1[q] + 0.1f * gw;
                v[q] = 0.999f * v[q] + 0.001f * gw * gw;
                float mh = m1[q] / (1 - b1t), vh = v[q] / (1 - b2t);
                w[q] -= lr_it * mh / (sqrtf(vh) + 1e-8f);
            }
        }
        for (int i = 0; i < M; i++) {
            if (found[i]) {
                chi[i] = fminf(chi[i], c[i]);
                c[i] = 0.5f * (clo[i] + chi[i]);
            } else {
                clo[i] = fmaxf(clo[i], c[i]);
                c[i] = isfinite(chi[i]) ? 0.5f * (clo[i] + chi[i]) : c[i] * 10;
            }
        }
    }
    if (!a->stoch) rc = refine_line(a, x0, y, t, M, bx, bs, mn, 10);
out:
    sk_free(mem.base);
    return rc;
}

/* ---- FMN (Pintor et al. 2021) ----
 * Loss: the margin z_y - max_{j!=y} z_j (targeted: max_{j!=t} z_j - z_t), to be
 * driven below 0. Each step: the radius eps_k shrinks by (1 - gamma) while
 * adversarial (never above the best norm), grows by (1 + gamma) otherwise,
 * starting at the linear estimate |margin| / |grad|_dual; delta takes a step of
 * alpha along the normalised descent direction and is projected onto the
 * eps_k ball and the box. alpha and gamma follow cosine decays. */
int sk_attack_run_fmn(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    const float *x0 = ch->x0;
    const int *y = ch->y, *t = ch->t;
    int M = ch->M;
    float *bx = ch->bx, *mn = ch->mn;
    bool *bs = ch->bs;
    int D = a->D, K = a->K, rc = SK_OK, steps = a->cfg.steps;
    size_t MD = (size_t)M * D;
    bool linf = a->cfg.norm == SK_NORM_LINF;
    float *x, *dx, *lp, *loss, *eps, *bm;
    struct sk_attack_mem mem = { 0 };
    for (int pass = 0; pass < 2; pass++) {
        x = sk_attack_take(&mem, sizeof(float) * MD);
        dx = sk_attack_take(&mem, sizeof(float) * MD);
        lp = sk_attack_take(&mem, sizeof(float) * (size_t)M * K);
        loss = sk_attack_take(&mem, sizeof(float) * (size_t)M);
        eps = sk_attack_take(&mem, sizeof(float) * (size_t)M);
        bm = margins_take(a, &mem, M);
        if (pass == 0 && (rc = sk_attack_mem_alloc(&mem))) return rc;
    }
    memcpy(x, x0, sizeof(float) * MD);
    /* the loss ascended is the CW margin (bigger = adversarial); FMN descends its negative */
    struct sk_lctx lc = { SK_LOSS_CW, y, t, NULL, 0 };
    const float alpha0 = linf ? 10.0f : 1.0f, alpha1 = alpha0 / 100, gamma0 = 0.05f, gamma1 = 0.001f;
    for (int it = 0; it <= steps; it++) {
        if (it < steps) {
            if ((rc = a->c->input_grad(a->c->self, x, M, sk_attack_lossfn, &lc, lp, loss, dx))) goto out;
        } else if ((rc = a->c->log_probs(a->c->self, x, M, lp)))
            goto out;
        double cosf_ = 0.5 * (1 + cos(3.14159265358979323846 * it / (double)steps));
        float alpha = alpha1 + (alpha0 - alpha1) * (float)cosf_;
        float gamma = gamma1 + (gamma0 - gamma1) * (float)cosf_;
        for (int i = 0; i < M; i++) {
            float *xi = x + (size_t)i * D;
            const float *x0i = x0 + (size_t)i * D;
            bool adv = sk_attack_is_adv(a, lp + (size_t)i * K, y[i], t ? t[i] : -1);
            float nrm = (float)sk_attack_rownorm(a, a->cfg.norm, xi, x0i);
            if (a->stoch) {
                /* the radius schedule still follows the noisy calls (mn: smallest seen) */
                keep_margin(a, xi, x0i, lp + (size_t)i * K, y[i], t ? t + i : NULL, bx + (size_t)i * D, bm + i);
                if (adv && nrm < mn[i]) mn[i] = nrm;
            } else if (adv && nrm < mn[i]) {
                mn[i] = nrm;
                bs[i] = true;
                memcpy(bx + (size_t)i * D, xi, sizeof(float) * D);
            }
            if (it == steps) continue;
            float *g = dx + (size_t)i * D;
            double gn2 = 0, gn1 = 0;
            for (int j = 0; j < D; j++) {
                gn2 += (double)g[j] * g[j];
                gn1 += fabs(g[j]);
            }
            double gdual = linf ? gn1 : sqrt(gn2);
            if (it == 0)
                eps[i] = adv ? nrm : (gdual > 0 ? (float)(fabs(loss[i]) / gdual) : 0);
            else if (adv)
                eps[i] = fminf(eps[i] * (1 - gamma), mn[i]);
            else if (bs[i] || (a->stoch && isfinite(mn[i])))
                eps[i] = eps[i] * (1 + gamma);
            else
                eps[i] = fmaxf(eps[i] * (1 + gamma), gdual > 0 ? (float)(nrm + fabs(loss[i]) / gdual) : 0);
            if (gn2 <= 0) continue;
            /* ascend the margin (towards adversarial): Linf sign step scaled by eps, L2 normalised step */
            if (linf) {
                float st = alpha * fmaxf(eps[i], 1e-3f) / 10;
                for (int j = 0; j < D; j++) xi[j] += st * (float)((g[j] > 0) - (g[j] < 0));
            } else {
                float sc = (float)(alpha * fmaxf(eps[i], 1e-3f) / sqrt(gn2));
                for (int j = 0; j < D; j++) xi[j] += sc * g[j];
            }
            sk_attack_proj_rows(a, eps[i], x0i, xi, 1);
        }
    }
    if (!a->stoch) rc = refine_line(a, x0, y, t, M, bx, bs, mn, 8);
out:
    sk_free(mem.base);
    return rc;
}
