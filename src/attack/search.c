/* Score-based attacks (no gradients): Square Attack Linf (Andriushchenko et
 * al. 2020) and Sparse-RS L0 (Croce et al. 2022). Both do random search on
 * the margin max_{j!=y} z_j - z_y (targeted: z_t - max_{j!=t} z_j), accept a
 * proposal when the margin does not drop, and query only the rows still
 * standing. On a stochastic classifier no row is stopped: every row spends
 * all its queries and bx is the proposal of the best (EOT-averaged) margin.
 * Randomness: one stream per (row id, iteration). */
#include "attack/internal.h"

/* fraction of pixels changed at iteration it of n (the reference schedule,
 * defined on a 10,000-query scale) */
static float p_selection(float p_init, int it, int n)
{
    int i = (int)((double)it / n * 10000);
    if (i <= 10) return p_init;
    if (i <= 50) return p_init / 2;
    if (i <= 200) return p_init / 4;
    if (i <= 500) return p_init / 8;
    if (i <= 1000) return p_init / 16;
    if (i <= 2000) return p_init / 32;
    if (i <= 4000) return p_init / 64;
    if (i <= 6000) return p_init / 128;
    if (i <= 8000) return p_init / 256;
    return p_init / 512;
}

struct rs {
    float *xc, *xn, *lp, *m, *mb; /* compact candidates, log-probs, margins; mb: best margin per row */
    int *idx, *yc, *tc;
};

static void rs_free(struct rs *r)
{
    sk_free(r->xc);
    sk_free(r->xn);
    sk_free(r->lp);
    sk_free(r->m);
    sk_free(r->mb);
    sk_free(r->idx);
    sk_free(r->yc);
    sk_free(r->tc);
}

static int rs_alloc(struct rs *r, int M, int D, int K)
{
    memset(r, 0, sizeof *r);
    r->xc = sk_malloc(sizeof(float) * (size_t)M * D);
    r->xn = sk_malloc(sizeof(float) * (size_t)M * D);
    r->lp = sk_malloc(sizeof(float) * (size_t)M * K);
    r->m = sk_malloc(sizeof(float) * M);
    r->mb = sk_malloc(sizeof(float) * M);
    r->idx = sk_malloc(sizeof(int) * M);
    r->yc = sk_malloc(sizeof(int) * M);
    r->tc = sk_malloc(sizeof(int) * M);
    if (!r->xc || !r->xn || !r->lp || !r->m || !r->mb || !r->idx || !r->yc || !r->tc) {
        rs_free(r);
        return SK_ENOMEM;
    }
    return SK_OK;
}

/* evaluate m compact rows xc; margins into r->m */
static int rs_eval(struct sk_actx *a, struct rs *r, int m, const int *t)
{
    int rc = a->c->log_probs(a->c->self, r->xc, m, r->lp);
    if (rc) return rc;
    sk_margin_rows(SK_MARGIN_CW, r->lp, m, a->K, r->yc, t ? r->tc : NULL, r->m, NULL);
    return SK_OK;
}

/* Evaluate the M initial candidates (rows of bx, copied into r->xc by the
 * caller): best margins start there, and rows already adversarial are marked
 * broken with their perturbation's norm. */
static int rs_start(struct sk_actx *a, struct rs *r, int M, const float *x0, const int *y, const int *t,
                    enum sk_norm norm, const float *bx, bool *bs, float *mn)
{
    int rc = rs_eval(a, r, M, t);
    if (rc) return rc;
    for (int i = 0; i < M; i++) {
        r->mb[i] = r->m[i];
        if (!a->stoch && sk_attack_is_adv(a, r->lp + (size_t)i * a->K, y[i], t ? t[i] : -1)) {
            bs[i] = true;
            mn[i] = (float)sk_attack_rownorm(a, norm, bx + (size_t)i * a->D, x0 + (size_t)i * a->D);
        }
    }
    return SK_OK;
}

int sk_atk_square(struct sk_actx *a, const float *x0, const int *y, const int *t, const int *rid, int M,
                  float *bx, bool *bs, float *mn)
{
    if (a->cfg.norm != SK_NORM_LINF)
        return sk_error(SK_EINVAL, "square: only the linf norm is implemented (got %s)", sk_norm_name(a->cfg.norm));
    int D = a->D, K = a->K, C = a->img_c, H = a->img_h, W = a->img_w, rc = SK_OK;
    float eps = a->cfg.eps, lo = a->cfg.clip_min, hi = a->cfg.clip_max;
    int nq = a->cfg.queries;
    struct rs r;
    if (rs_alloc(&r, M, D, K)) return SK_ENOMEM;
    /* init: vertical stripes of +-eps (one sign per channel and column) */
    for (int i = 0; i < M; i++) {
        struct sk_rng g = { sk_attack_rowkey(a, 3 + a->stage * 16, 0, rid[i]), 0 };
        float *xi = bx + (size_t)i * D;
        const float *x0i = x0 + (size_t)i * D;
        for (int c = 0; c < C; c++)
            for (int w = 0; w < W; w++) {
                float sg = sk_rng_u64(&g) & 1 ? eps : -eps;
                for (int h = 0; h < H; h++) {
                    size_t q = ((size_t)c * H + h) * W + w;
                    xi[q] = fminf(fmaxf(x0i[q] + sg, lo), hi);
                }
            }
        memcpy(r.xc + (size_t)i * D, xi, sizeof(float) * D);
        r.yc[i] = y[i];
        r.tc[i] = t ? t[i] : -1;
    }
    if ((rc = rs_start(a, &r, M, x0, y, t, SK_NORM_LINF, bx, bs, mn))) goto out;
    for (int it = 1; it < nq; it++) {
        int m = 0;
        for (int i = 0; i < M; i++)
            if (!bs[i]) r.idx[m++] = i;
        if (!m) break;
        float p = p_selection(a->cfg.p_init, it, nq);
        int s, sw;
        if (W > 1) {
            s = (int)lroundf(sqrtf(p * (float)D / C));
            s = s < 1 ? 1 : s;
            s = s > H - 1 ? (H > 1 ? H - 1 : 1) : s;
            sw = s > W - 1 ? (W > 1 ? W - 1 : 1) : s;
        } else {
            s = (int)lroundf(p * (float)D / C);
            s = s < 1 ? 1 : s;
            s = s > H - 1 ? (H > 1 ? H - 1 : 1) : s;
            sw = 1;
        }
        for (int q = 0; q < m; q++) {
            int i = r.idx[q];
            struct sk_rng g = { sk_attack_rowkey(a, 3 + a->stage * 16, 0, rid[i]), (uint64_t)it << 16 };
            int vh = (int)sk_rng_below(&g, (uint64_t)(H - s + 1 > 0 ? H - s + 1 : 1));
            int vw = (int)sk_rng_below(&g, (uint64_t)(W - sw + 1 > 0 ? W - sw + 1 : 1));
            float *xc = r.xc + (size_t)q * D;
            const float *x0i = x0 + (size_t)i * D;
            memcpy(xc, bx + (size_t)i * D, sizeof(float) * D);
            for (int c = 0; c < C; c++) {
                float sg = sk_rng_u64(&g) & 1 ? eps : -eps;
                for (int h = vh; h < vh + s && h < H; h++)
                    for (int w = vw; w < vw + sw && w < W; w++) {
                        size_t o = ((size_t)c * H + h) * W + w;
                        xc[o] = fminf(fmaxf(x0i[o] + sg, lo), hi);
                    }
            }
            r.yc[q] = y[i];
            r.tc[q] = t ? t[i] : -1;
        }
        if ((rc = rs_eval(a, &r, m, t))) goto out;
        for (int q = 0; q < m; q++) {
            int i = r.idx[q];
            if (r.m[q] < r.mb[i]) continue;
            r.mb[i] = r.m[q];
            memcpy(bx + (size_t)i * D, r.xc + (size_t)q * D, sizeof(float) * D);
            if (!a->stoch && sk_attack_is_adv(a, r.lp + (size_t)q * K, y[i], t ? t[i] : -1)) {
                bs[i] = true;
                mn[i] = (float)sk_attack_rownorm(a, SK_NORM_LINF, bx + (size_t)i * D, x0 + (size_t)i * D);
            }
        }
    }
out:
    rs_free(&r);
    return rc;
}

/* Sparse-RS L0: a set of k = eps pixels per row set to random corners of the
 * box; each step swaps max(p k, 1) of them for pixels outside the set. */
int sk_atk_sparse(struct sk_actx *a, const float *x0, const int *y, const int *t, const int *rid, int M,
                  float *bx, bool *bs, float *mn)
{
    int D = a->D, K = a->K, C = a->img_c, P = a->img_h * a->img_w, rc = SK_OK;
    int k = (int)a->cfg.eps, nq = a->cfg.queries;
    float lo = a->cfg.clip_min, hi = a->cfg.clip_max;
    if (k < 1) return sk_error(SK_EINVAL, "sparse: eps is the number of pixels (>= 1), got %g", a->cfg.eps);
    if (k > P) k = P;
    struct rs r;
    int *pos = sk_malloc(sizeof(int) * (size_t)M * k), *mark = sk_calloc((size_t)P, sizeof(int));
    int *npos = sk_malloc(sizeof(int) * (size_t)M * k);
    if (!pos || !mark || !npos || rs_alloc(&r, M, D, K)) {
        sk_free(pos);
        sk_free(mark);
        sk_free(npos);
        return SK_ENOMEM;
    }
    int *perm = sk_malloc(sizeof(int) * P);
    if (!perm) {
        rc = SK_ENOMEM;
        goto out;
    }
    for (int i = 0; i < M; i++) {
        struct sk_rng g = { sk_attack_rowkey(a, 4 + a->stage * 16, 0, rid[i]), 0 };
        for (int j = 0; j < P; j++) perm[j] = j;
        sk_rng_shuffle(&g, perm, P);
        float *xi = bx + (size_t)i * D;
        memcpy(xi, x0 + (size_t)i * D, sizeof(float) * D);
        for (int j = 0; j < k; j++) {
            pos[(size_t)i * k + j] = perm[j];
            for (int c = 0; c < C; c++) xi[(size_t)c * P + perm[j]] = sk_rng_u64(&g) & 1 ? hi : lo;
        }
        memcpy(r.xc + (size_t)i * D, xi, sizeof(float) * D);
        r.yc[i] = y[i];
        r.tc[i] = t ? t[i] : -1;
    }
    if ((rc = rs_start(a, &r, M, x0, y, t, SK_NORM_L0, bx, bs, mn))) goto out;
    for (int it = 1; it < nq; it++) {
        int m = 0;
        for (int i = 0; i < M; i++)
            if (!bs[i]) r.idx[m++] = i;
        if (!m) break;
        int nc = (int)lroundf(p_selection(a->cfg.p_init, it, nq) * k);
        nc = nc < 1 ? 1 : nc > k ? k : nc;
        if (k == P) nc = 0;
        for (int q = 0; q < m; q++) {
            int i = r.idx[q];
            struct sk_rng g = { sk_attack_rowkey(a, 4 + a->stage * 16, 0, rid[i]), (uint64_t)it << 20 };
            int *pi = pos + (size_t)i * k, *ni = npos + (size_t)q * k;
            memcpy(ni, pi, sizeof(int) * k);
            float *xc = r.xc + (size_t)q * D;
            const float *x0i = x0 + (size_t)i * D;
            memcpy(xc, bx + (size_t)i * D, sizeof(float) * D);
            for (int j = 0; j < k; j++) mark[pi[j]] = 1;
            for (int j = 0; j < nc; j++) {
                /* swap slot sl (a random one of the set) for a pixel outside the set */
                int sl = (int)sk_rng_below(&g, (uint64_t)k);
                int np;
                do np = (int)sk_rng_below(&g, (uint64_t)P);
                while (mark[np]);
                int old = ni[sl];
                for (int c = 0; c < C; c++) xc[(size_t)c * P + old] = x0i[(size_t)c * P + old];
                mark[old] = 0;
                mark[np] = 1;
                ni[sl] = np;
                for (int c = 0; c < C; c++) xc[(size_t)c * P + np] = sk_rng_u64(&g) & 1 ? hi : lo;
            }
            for (int j = 0; j < k; j++) mark[ni[j]] = 0;
            r.yc[q] = y[i];
            r.tc[q] = t ? t[i] : -1;
        }
        if ((rc = rs_eval(a, &r, m, t))) goto out;
        for (int q = 0; q < m; q++) {
            int i = r.idx[q];
            if (r.m[q] < r.mb[i]) continue;
            r.mb[i] = r.m[q];
            memcpy(bx + (size_t)i * D, r.xc + (size_t)q * D, sizeof(float) * D);
            memcpy(pos + (size_t)i * k, npos + (size_t)q * k, sizeof(int) * k);
            if (!a->stoch && sk_attack_is_adv(a, r.lp + (size_t)q * K, y[i], t ? t[i] : -1)) {
                bs[i] = true;
                mn[i] = (float)sk_attack_rownorm(a, SK_NORM_L0, bx + (size_t)i * D, x0 + (size_t)i * D);
            }
        }
    }
out:
    sk_free(perm);
    sk_free(pos);
    sk_free(npos);
    sk_free(mark);
    rs_free(&r);
    return rc;
}
