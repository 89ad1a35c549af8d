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
    float *xc, *lp, *m, *mb; /* compact candidates, log-probs, margins; mb: best margin per row */
    int *idx, *yc, *tc;
};

static void rs_layout(struct rs *r, struct sk_attack_mem *m, int M, int D, int K)
{
    r->xc = sk_attack_take(m, sizeof(float) * (size_t)M * D);
    r->lp = sk_attack_take(m, sizeof(float) * (size_t)M * K);
    r->m = sk_attack_take(m, sizeof(float) * (size_t)M);
    r->mb = sk_attack_take(m, sizeof(float) * (size_t)M);
    r->idx = sk_attack_take(m, sizeof(int) * (size_t)M);
    r->yc = sk_attack_take(m, sizeof(int) * (size_t)M);
    r->tc = sk_attack_take(m, sizeof(int) * (size_t)M);
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
static int rs_start(struct sk_actx *a, struct rs *r, const struct sk_attack_chunk *ch, enum sk_norm norm)
{
    int rc = rs_eval(a, r, ch->M, ch->t);
    if (rc) return rc;
    for (int i = 0; i < ch->M; i++) {
        r->mb[i] = r->m[i];
        if (!a->stoch && sk_attack_is_adv(a, r->lp + (size_t)i * a->K, ch->y[i], ch->t ? ch->t[i] : -1)) {
            ch->bs[i] = true;
            ch->mn[i] = (float)sk_attack_rownorm(a, norm, ch->bx + (size_t)i * a->D, ch->x0 + (size_t)i * a->D);
        }
    }
    return SK_OK;
}

/* What a random search proposes; the loop around it (rs_run) is shared. */
struct rs_proposal {
    enum sk_norm norm;   /* of mn */
    /* the start of row i written into bx row i */
    void (*init)(void *ctx, struct sk_actx *a, const struct sk_attack_chunk *ch, int i);
    /* before the proposals of iteration it (of nq) */
    void (*begin)(void *ctx, struct sk_actx *a, int it, int nq);
    /* the proposal of iteration it for row i (slot q) written into xc (which holds bx row i) */
    void (*propose)(void *ctx, struct sk_actx *a, const struct sk_attack_chunk *ch, int it, int q, int i, float *xc);
    /* proposal q was accepted for row i (may be NULL) */
    void (*accept)(void *ctx, int q, int i);
    void *ctx;
};

/* Random search: start, then up to queries - 1 proposals per row still
 * standing; a proposal whose margin does not drop replaces the row's point,
 * and a deterministic classifier locks a row at its first adversarial one. */
static int rs_run(struct sk_actx *a, const struct sk_attack_chunk *ch, const struct rs_proposal *p)
{
    int D = a->D, K = a->K, M = ch->M, nq = a->cfg.queries, rc;
    const int *y = ch->y, *t = ch->t;
    struct rs r;
    struct sk_attack_mem mem = { 0 };
    rs_layout(&r, &mem, M, D, K);
    if ((rc = sk_attack_mem_alloc(&mem))) return rc;
    rs_layout(&r, &mem, M, D, K);
    for (int i = 0; i < M; i++) {
        p->init(p->ctx, a, ch, i);
        memcpy(r.xc + (size_t)i * D, ch->bx + (size_t)i * D, sizeof(float) * D);
        r.yc[i] = y[i];
        r.tc[i] = t ? t[i] : -1;
    }
    if ((rc = rs_start(a, &r, ch, p->norm))) goto out;
    for (int it = 1; it < nq; it++) {
        int m = 0;
        for (int i = 0; i < M; i++)
            if (!ch->bs[i]) r.idx[m++] = i;
        if (!m) break;
        p->begin(p->ctx, a, it, nq);
        for (int q = 0; q < m; q++) {
            int i = r.idx[q];
            float *xc = r.xc + (size_t)q * D;
            memcpy(xc, ch->bx + (size_t)i * D, sizeof(float) * D);
            p->propose(p->ctx, a, ch, it, q, i, xc);
            r.yc[q] = y[i];
            r.tc[q] = t ? t[i] : -1;
        }
        if ((rc = rs_eval(a, &r, m, t))) goto out;
        for (int q = 0; q < m; q++) {
            int i = r.idx[q];
            if (r.m[q] < r.mb[i]) continue;
            r.mb[i] = r.m[q];
            memcpy(ch->bx + (size_t)i * D, r.xc + (size_t)q * D, sizeof(float) * D);
            if (p->accept) p->accept(p->ctx, q, i);
            if (!a->stoch && sk_attack_is_adv(a, r.lp + (size_t)q * K, y[i], t ? t[i] : -1)) {
                ch->bs[i] = true;
                ch->mn[i] = (float)sk_attack_rownorm(a, p->norm, ch->bx + (size_t)i * D, ch->x0 + (size_t)i * D);
            }
        }
    }
out:
    sk_free(mem.base);
    return rc;
}

/* ---- Square: squares of +-eps ---- */

struct square {
    int s, sw;           /* side of this iteration's square (sw: its width; 1 for a column image) */
};

/* init: vertical stripes of +-eps (one sign per channel and column) */
static void square_init(void *ctx, struct sk_actx *a, const struct sk_attack_chunk *ch, int i)
{
    (void)ctx;
    int D = a->D, C = a->img_c, H = a->img_h, W = a->img_w;
    float eps = a->cfg.eps;
    struct sk_rng g = { sk_attack_rowkey(a, 3 + a->stage * 16, 0, ch->rid[i]), 0 };
    float *xi = ch->bx + (size_t)i * D;
    const float *x0i = ch->x0 + (size_t)i * D;
    for (int c = 0; c < C; c++)
        for (int w = 0; w < W; w++) {
            float sg = sk_rng_u64(&g) & 1 ? eps : -eps;
            for (int h = 0; h < H; h++) {
                size_t q = ((size_t)c * H + h) * W + w;
                xi[q] = fminf(fmaxf(x0i[q] + sg, sk_attack_lo(&a->cfg, (int)q)), sk_attack_hi(&a->cfg, (int)q));
            }
        }
}

static void square_begin(void *ctx, struct sk_actx *a, int it, int nq)
{
    struct square *sq = ctx;
    int D = a->D, C = a->img_c, H = a->img_h, W = a->img_w, s;
    float p = p_selection(a->cfg.p_init, it, nq);
    if (W > 1) {
        s = (int)lroundf(sqrtf(p * (float)D / C));
        s = s < 1 ? 1 : s;
        s = s > H - 1 ? (H > 1 ? H - 1 : 1) : s;
        sq->sw = s > W - 1 ? (W > 1 ? W - 1 : 1) : s;
    } else {
        s = (int)lroundf(p * (float)D / C);
        s = s < 1 ? 1 : s;
        s = s > H - 1 ? (H > 1 ? H - 1 : 1) : s;
        sq->sw = 1;
    }
    sq->s = s;
}

/* a random square (one sign per channel) set to x0 +- eps */
static void square_propose(void *ctx, struct sk_actx *a, const struct sk_attack_chunk *ch, int it, int q, int i,
                           float *xc)
{
    const struct square *sq = ctx;
    int D = a->D, C = a->img_c, H = a->img_h, W = a->img_w, s = sq->s, sw = sq->sw;
    float eps = a->cfg.eps;
    (void)q;
    struct sk_rng g = { sk_attack_rowkey(a, 3 + a->stage * 16, 0, ch->rid[i]), (uint64_t)it << 16 };
    int vh = (int)sk_rng_below(&g, (uint64_t)(H - s + 1 > 0 ? H - s + 1 : 1));
    int vw = (int)sk_rng_below(&g, (uint64_t)(W - sw + 1 > 0 ? W - sw + 1 : 1));
    const float *x0i = ch->x0 + (size_t)i * D;
    for (int c = 0; c < C; c++) {
        float sg = sk_rng_u64(&g) & 1 ? eps : -eps;
        for (int h = vh; h < vh + s && h < H; h++)
            for (int w = vw; w < vw + sw && w < W; w++) {
                size_t o = ((size_t)c * H + h) * W + w;
                xc[o] = fminf(fmaxf(x0i[o] + sg, sk_attack_lo(&a->cfg, (int)o)), sk_attack_hi(&a->cfg, (int)o));
            }
    }
}

int sk_attack_run_square(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    if (a->cfg.norm != SK_NORM_LINF)
        return sk_error(SK_EINVAL, "square: only the linf norm is implemented (got %s)",
                        sk_attack_norm_name(a->cfg.norm));
    struct square sq = { 1, 1 };
    struct rs_proposal p = { SK_NORM_LINF, square_init, square_begin, square_propose, NULL, &sq };
    return rs_run(a, ch, &p);
}

/* ---- Sparse-RS L0: a set of k = eps pixels per row set to random corners
 * of the box; each step swaps max(p k, 1) of them for pixels outside the set. ---- */

struct sparse {
    int k, P, nc;        /* pixels in the set, pixels of the image, swaps this iteration */
    int *pos;            /* [M,k] the set of each row */
    int *npos;           /* [M,k] the proposed sets (by slot) */
    int *mark;           /* [P] scratch: pixels in the current set */
    int *perm;           /* [P] scratch for the start */
};

static void sparse_init(void *ctx, struct sk_actx *a, const struct sk_attack_chunk *ch, int i)
{
    struct sparse *sp = ctx;
    int D = a->D, C = a->img_c, P = sp->P, k = sp->k;
    struct sk_rng g = { sk_attack_rowkey(a, 4 + a->stage * 16, 0, ch->rid[i]), 0 };
    for (int j = 0; j < P; j++) sp->perm[j] = j;
    sk_rng_shuffle(&g, sp->perm, P);
    float *xi = ch->bx + (size_t)i * D;
    memcpy(xi, ch->x0 + (size_t)i * D, sizeof(float) * D);
    for (int j = 0; j < k; j++) {
        sp->pos[(size_t)i * k + j] = sp->perm[j];
        for (int c = 0; c < C; c++) {
            int f = c * P + sp->perm[j];
            xi[f] = sk_rng_u64(&g) & 1 ? sk_attack_hi(&a->cfg, f) : sk_attack_lo(&a->cfg, f);
        }
    }
}

static void sparse_begin(void *ctx, struct sk_actx *a, int it, int nq)
{
    struct sparse *sp = ctx;
    int nc = (int)lroundf(p_selection(a->cfg.p_init, it, nq) * sp->k);
    nc = nc < 1 ? 1 : nc > sp->k ? sp->k : nc;
    sp->nc = sp->k == sp->P ? 0 : nc;
}

static void sparse_propose(void *ctx, struct sk_actx *a, const struct sk_attack_chunk *ch, int it, int q, int i,
                           float *xc)
{
    struct sparse *sp = ctx;
    int D = a->D, C = a->img_c, P = sp->P, k = sp->k;
    struct sk_rng g = { sk_attack_rowkey(a, 4 + a->stage * 16, 0, ch->rid[i]), (uint64_t)it << 20 };
    int *pi = sp->pos + (size_t)i * k, *ni = sp->npos + (size_t)q * k, *mark = sp->mark;
    memcpy(ni, pi, sizeof(int) * k);
    const float *x0i = ch->x0 + (size_t)i * D;
    for (int j = 0; j < k; j++) mark[pi[j]] = 1;
    for (int j = 0; j < sp->nc; j++) {
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
        for (int c = 0; c < C; c++) {
            int f = c * P + np;
            xc[f] = sk_rng_u64(&g) & 1 ? sk_attack_hi(&a->cfg, f) : sk_attack_lo(&a->cfg, f);
        }
    }
    for (int j = 0; j < k; j++) mark[ni[j]] = 0;
}

static void sparse_accept(void *ctx, int q, int i)
{
    struct sparse *sp = ctx;
    memcpy(sp->pos + (size_t)i * sp->k, sp->npos + (size_t)q * sp->k, sizeof(int) * sp->k);
}

int sk_attack_run_sparse(struct sk_actx *a, const struct sk_attack_chunk *ch)
{
    int P = a->img_h * a->img_w, k = (int)a->cfg.eps, M = ch->M, rc;
    if (k < 1) return sk_error(SK_EINVAL, "sparse: eps is the number of pixels (>= 1), got %g", a->cfg.eps);
    if (k > P) k = P;
    struct sparse sp = { k, P, 0, NULL, NULL, NULL, NULL };
    struct sk_attack_mem mem = { 0 };
    for (int pass = 0; pass < 2; pass++) {
        sp.pos = sk_attack_take(&mem, sizeof(int) * (size_t)M * k);
        sp.npos = sk_attack_take(&mem, sizeof(int) * (size_t)M * k);
        sp.mark = sk_attack_take(&mem, sizeof(int) * (size_t)P);
        sp.perm = sk_attack_take(&mem, sizeof(int) * (size_t)P);
        if (pass == 0 && (rc = sk_attack_mem_alloc(&mem))) return rc;
    }
    memset(sp.mark, 0, sizeof(int) * (size_t)P);
    struct rs_proposal p = { SK_NORM_L0, sparse_init, sparse_begin, sparse_propose, sparse_accept, &sp };
    rc = rs_run(a, ch, &p);
    sk_free(mem.base);
    return rc;
}
