/* Helpers every attack shares: losses, the adversarial test, row keys,
 * norms, projections, and the scratch memory of a run. A leaf: it calls no
 * other attack file. */
#include "attack/internal.h"

static const char *const norm_names[] = { "linf", "l2", "l1", "l0" };
const char *sk_attack_norm_name(enum sk_norm p) { return (unsigned)p < 4 ? norm_names[p] : "?"; }
int sk_attack_norm_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, norm_names[i])) return i;
    if (s && (!strcmp(s, "inf") || !strcmp(s, "Linf"))) return SK_NORM_LINF;
    if (s && !strcmp(s, "L2")) return SK_NORM_L2;
    return -1;
}

const char *sk_attack_target_name(enum sk_target_mode t)
{
    static const char *const n[] = { "untargeted", "given", "random", "least-likely" };
    return (unsigned)t < 4 ? n[t] : "?";
}

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
    return sk_rng_derive(k, (uint64_t)row + (uint64_t)a->cfg.first_row).key;
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

void sk_attack_project_chunk(enum sk_norm p, float eps, float lo, float hi, const float *blo, const float *bhi,
                             const float *x0, float *x, int M, int D, int C)
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
                float v = fminf(fmaxf(xi[j], blo ? blo[j] : lo), bhi ? bhi[j] : hi);
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
        for (int j = 0; j < D; j++) xi[j] = fminf(fmaxf(xi[j], blo ? blo[j] : lo), bhi ? bhi[j] : hi);
    }
}

void sk_attack_project(enum sk_norm p, float eps, float lo, float hi, const float *x0, float *x, int n, int dim)
{
    sk_attack_project_chunk(p, eps, lo, hi, NULL, NULL, x0, x, n, dim, 1);
}

void sk_attack_proj_rows(const struct sk_actx *a, float eps, const float *x0, float *x, int M)
{
    sk_attack_project_chunk(a->cfg.norm, eps, a->cfg.clip_min, a->cfg.clip_max, a->cfg.box_lo, a->cfg.box_hi, x0, x, M,
                            a->D, a->img_c);
}

/* 64-byte slices: rows handed to BLAS stay aligned like separate allocations.
 * Uninitialised like sk_malloc: a layout zeroes what it needs zeroed. */
void *sk_attack_take(struct sk_attack_mem *m, size_t bytes)
{
    size_t at = m->used;
    m->used += (bytes + 63) & ~(size_t)63;
    return m->base ? m->base + at : NULL;
}

int sk_attack_mem_alloc(struct sk_attack_mem *m)
{
    size_t n = m->used;
    m->used = 0;
    m->base = sk_malloc(n ? n : 1);
    if (!m->base) return sk_error(SK_ENOMEM, "attack: out of memory for %zu bytes of scratch", n);
    return SK_OK;
}
