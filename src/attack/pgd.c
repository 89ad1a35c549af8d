/* The one projected-gradient ascent (internal.h: sk_attack_pgd_ascent), and the
 * PGD of adversarial training on a model's graph (attack.h: sk_pgd_*): CE,
 * CW margin, TRADES' KL and NuAT's CE + nuclear norm, eval or MC mode with
 * EOT, random / sign / given starts, with or without the eps-ball. The
 * attacks (gradient.c) run the same ascent with the classifier seam as the
 * gradient oracle. */
#include "attack/internal.h"

/* ---- the ascent ---- */

void sk_attack_pgd_ascend(enum sk_norm p, float *x, const float *g, const float *alpha, int M, int D)
{
    for (int i = 0; i < M; i++) {
        float *xi = x + (size_t)i * D;
        const float *gi = g + (size_t)i * D;
        float a = alpha[i];
        if (p == SK_NORM_LINF) {
            for (int j = 0; j < D; j++) xi[j] += gi[j] > 0 ? a : (gi[j] < 0 ? -a : 0.0f);
        } else {
            double s = 0;
            for (int j = 0; j < D; j++) s += (double)gi[j] * gi[j];
            if (s <= 0) continue;
            float sc = (float)(a / sqrt(s));
            for (int j = 0; j < D; j++) xi[j] += sc * gi[j];
        }
    }
}

static inline float clamp_ball_box(float v, float x0, float eps, bool box, float lo, float hi)
{
    v = v < x0 - eps ? x0 - eps : (v > x0 + eps ? x0 + eps : v);
    if (box) v = v < lo ? lo : (v > hi ? hi : v);
    return v;
}

void sk_attack_pgd_project(const struct sk_attack_pgd_set *s, float *x, int M)
{
    if (!s->box_last) {
        sk_attack_project_chunk(s->norm, s->eps, s->lo, s->hi, s->blo, s->bhi, s->x0, x, M, s->D, s->C);
        return;
    }
    SK_ASSERT(s->norm == SK_NORM_LINF);
    if (s->blo) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < s->D; j++) {
                size_t q = (size_t)i * s->D + j;
                x[q] = clamp_ball_box(x[q], s->x0[q], s->eps, true, s->blo[j], s->bhi[j]);
            }
        return;
    }
    size_t n = (size_t)M * s->D;
    for (size_t i = 0; i < n; i++) x[i] = clamp_ball_box(x[i], s->x0[i], s->eps, s->box, s->lo, s->hi);
}

int sk_attack_pgd_ascent(const struct sk_attack_pgd_run *r, const struct sk_attack_pgd_oracle *o)
{
    int M = r->M, D = r->set.D, rc;
    for (int s = 0; s <= r->steps; s++) {
        if (s == r->steps && !o->track) break;
        if ((rc = o->eval(o->ctx, r->x, s, s < r->steps, r->dx))) return rc;
        if (o->track && (s > 0 || r->track_start)) o->track(o->ctx, r->x);
        if (s == r->steps) break;
        const float *dir = r->dx;
        if (r->g) {
            /* MI-FGSM: g = mu g + dx / |dx|_1 */
            for (int i = 0; i < M; i++) {
                const float *di = r->dx + (size_t)i * D;
                float *gi = r->g + (size_t)i * D;
                double n1 = 0;
                for (int j = 0; j < D; j++) n1 += fabsf(di[j]);
                float inv = n1 > 0 ? (float)(1 / n1) : 0;
                for (int j = 0; j < D; j++) gi[j] = r->momentum * gi[j] + di[j] * inv;
            }
            dir = r->g;
        }
        sk_attack_pgd_ascend(r->set.norm, r->x, dir, r->alpha, M, D);
        sk_attack_pgd_project(&r->set, r->x, M);
    }
    return SK_OK;
}

/* ---- adversarial training's PGD: the oracle is the model's graph ---- */

#define PGD_BATCH 256

struct sk_attack_pgd_config sk_attack_pgd_defaults(float eps, int steps)
{
    struct sk_attack_pgd_config c = { 0 };
    c.eps = eps;
    c.steps = steps;
    c.step = 0;
    c.random_start = true;
    c.clip_lo = 0;
    c.clip_hi = 1;
    c.loss = SK_PGD_LOSS_CE;
    c.mode = SK_MODE_EVAL;
    c.eot = 1;
    return c;
}

/* One batch of B rows on the graph: lpc holds the clean log-probabilities
 * (KL) or logits (nuclear norm), fixed during the attack. */
struct model_oracle {
    struct sk_model *m;
    struct sk_graph *g;
    const struct sk_attack_pgd_config *c;
    const int *y;
    int B, eot;
    uint64_t key;
    const float *lpc;
};

/* dx = sum over the eot draws of the input gradient of the loss (the sign
 * step needs no mean); draw e of step s uses key child 1 + s eot + e. */
static int model_eval(void *ctx, const float *x, int s, bool need_grad, float *dx)
{
    const struct model_oracle *o = ctx;
    const struct sk_attack_pgd_config *c = o->c;
    struct sk_graph *g = o->g;
    int D = o->m->in_dim, K = o->m->n_classes, B = o->B;
    int shape[2] = { B, D }, ks[2] = { B, K };
    size_t n = (size_t)B * D;
    SK_ASSERT(need_grad);
    memset(dx, 0, sizeof(float) * n);
    for (int e = 0; e < o->eot; e++) {
        sk_graph_reset(g);
        int xin = sk_graph_input(g, x, 2, shape, true);
        uint64_t nk = sk_rng_derive(o->key, 1 + (uint64_t)s * (uint64_t)o->eot + (uint64_t)e).key;
        int z = sk_model_forward(o->m, g, xin, c->mode, nk), L;
        switch (c->loss) {
        case SK_PGD_LOSS_CW: L = sk_loss_margin(g, z, o->y, NULL, SK_MARGIN_CW); break;
        case SK_PGD_LOSS_KL:
            L = sk_loss_kl_categorical(g, sk_graph_input(g, o->lpc, 2, ks, false), sk_op_log_softmax(g, z));
            break;
        case SK_PGD_LOSS_CE_NUC:
            L = sk_loss_cross_entropy(g, z, o->y, 0.0f);
            if (c->nuc_lambda != 0) {
                int d = sk_op_sub(g, z, sk_graph_input(g, o->lpc, 2, ks, false));
                L = sk_op_add(g, L, sk_op_scale(g, sk_loss_nuclear(g, d), c->nuc_lambda / (float)B));
            }
            break;
        default: L = sk_loss_cross_entropy(g, z, o->y, 0.0f); break;
        }
        if (L < 0) return L;
        int rc = sk_graph_backward(g, L, NULL);
        if (rc) return rc;
        const float *gx = sk_graph_grad(g, xin);
        for (size_t i = 0; i < n; i++) dx[i] += gx[i];
    }
    return SK_OK;
}

/* The start of one batch in xa: the given start, a random one (KL: x +
 * 0.001 N(0,1); sign_start: x +- r; else x + U(-r, r)), or x; projected. */
static void model_start(const struct sk_attack_pgd_config *c, const struct sk_attack_pgd_set *set, const float *xs,
                        uint64_t key, int B, float *xa) {
    const float *x = set->x0;
    size_t n = (size_t)B * set->D;
    float r0 = c->start_radius > 0 ? c->start_radius : c->eps;
    if (xs) {
        memcpy(xa, xs, sizeof(float) * n);
    } else if (c->random_start) {
        uint64_t rk = sk_rng_derive(key, 0).key;
        for (size_t i = 0; i < n; i++) {
            float u = c->loss == SK_PGD_LOSS_KL ? 0.001f * sk_rng_normal_at(rk, i)
                      : c->sign_start           ? (sk_rng_uniform_at(rk, i) < 0.5f ? -r0 : r0)
                                                : r0 * (2.0f * sk_rng_uniform_at(rk, i) - 1.0f);
            xa[i] = x[i] + u;
        }
    } else {
        memcpy(xa, x, sizeof(float) * n);
    }
    sk_attack_pgd_project(set, xa, B);
}

/* One batch of B rows: xa receives the result. */
static int model_batch(struct sk_model *m, struct sk_graph *g, const struct sk_attack_pgd_config *c, const float *x,
                       const float *xs, const int *y, int B, uint64_t key, float *xa, float *grad, float *lpc,
                       float *alpha)
{
    int D = m->in_dim, K = m->n_classes;
    float step = c->step > 0 ? c->step : (c->steps == 1 ? 1.25f * c->eps : 2.5f * c->eps / (float)c->steps);
    if (c->loss == SK_PGD_LOSS_KL || c->loss == SK_PGD_LOSS_CE_NUC) {
        int shape[2] = { B, D };
        sk_graph_reset(g);
        int z = sk_model_forward(m, g, sk_graph_input(g, x, 2, shape, false), c->mode, sk_rng_derive(key, 1u << 30).key);
        int lp = c->loss == SK_PGD_LOSS_KL ? sk_op_log_softmax(g, z) : z;
        if (lp < 0) return lp;
        memcpy(lpc, sk_graph_value(g, lp), sizeof(float) * (size_t)B * K);
    }
    for (int i = 0; i < B; i++) alpha[i] = step;
    struct sk_attack_pgd_run run = {
        .set = { SK_NORM_LINF, c->no_project ? INFINITY : c->eps, x, D, 1, c->clip_lo, c->clip_hi,
                 c->clip_lo < c->clip_hi, true, c->box_lo, c->box_hi },
        .M = B, .steps = c->steps, .alpha = alpha, .x = xa, .dx = grad,
    };
    struct model_oracle mo = { m, g, c, y, B, c->mode == SK_MODE_MC && c->eot > 1 ? c->eot : 1, key, lpc };
    struct sk_attack_pgd_oracle o = { model_eval, NULL, &mo };
    model_start(c, &run.set, xs, key, B, xa);
    return sk_attack_pgd_ascent(&run, &o);
}

static int check_pgd(const struct sk_model *m, const struct sk_attack_pgd_config *c, const int *y, int N)
{
    if (!(c->eps >= 0) || !isfinite(c->eps)) return sk_error(SK_EINVAL, "PGD: epsilon %g must be finite and >= 0", c->eps);
    if (c->steps < 1) return sk_error(SK_EINVAL, "PGD: %d steps (need >= 1)", c->steps);
    if (c->mode == SK_MODE_TRAIN) return sk_error(SK_EINVAL, "PGD: attack in eval or MC mode, not train mode");
    if (y && c->loss != SK_PGD_LOSS_KL)
        for (int i = 0; i < N; i++)
            if (y[i] < 0 || y[i] >= m->n_classes)
                return sk_error(SK_EINVAL, "PGD: label %d of row %d outside the model's %d classes", y[i], i,
                                m->n_classes);
    if (!y && c->loss != SK_PGD_LOSS_KL) return sk_error(SK_EINVAL, "PGD: labels needed for the CE/CW loss");
    if (c->loss == SK_PGD_LOSS_CE_NUC && !isfinite(c->nuc_lambda))
        return sk_error(SK_EINVAL, "PGD: nuclear-norm weight %g must be finite", c->nuc_lambda);
    return SK_OK;
}

int sk_attack_pgd_graph(struct sk_model *m, struct sk_graph *g, const struct sk_attack_pgd_config *c, const float *x,
                        const int *y, int N, uint64_t seed, float *xadv)
{
    int rc = check_pgd(m, c, y, N);
    if (rc) return rc;
    int D = m->in_dim, K = m->n_classes, B = N < PGD_BATCH ? N : PGD_BATCH;
    struct sk_attack_mem mem = { 0 };
    float *grad = NULL, *lpc = NULL, *alpha = NULL;
    for (int pass = 0; pass < 2; pass++) {
        grad = sk_attack_take(&mem, sizeof(float) * ((size_t)B * D + 1));
        lpc = sk_attack_take(&mem, sizeof(float) * ((size_t)B * K + 1));
        alpha = sk_attack_take(&mem, sizeof(float) * ((size_t)B + 1));
        if (pass == 0 && (rc = sk_attack_mem_alloc(&mem))) return rc;
    }
    uint64_t key = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_ATTACK).key;
    for (int i = 0; i < N && rc == SK_OK; i += PGD_BATCH) {
        int nb = N - i < PGD_BATCH ? N - i : PGD_BATCH;
        rc = model_batch(m, g, c, x + (size_t)i * D, c->x_start ? c->x_start + (size_t)i * D : NULL, y ? y + i : NULL,
                         nb, sk_rng_derive(key, (uint64_t)i).key, xadv + (size_t)i * D, grad, lpc, alpha);
    }
    sk_free(mem.base);
    return rc;
}

int sk_attack_pgd(struct sk_model *m, const struct sk_attack_pgd_config *c, const float *x, const int *y, int N,
                  uint64_t seed, float *xadv)
{
    struct sk_graph *g = sk_graph_new();
    if (!g) return SK_ENOMEM;
    sk_graph_set_param_grads(g, false);
    int rc = sk_attack_pgd_graph(m, g, c, x, y, N, seed, xadv);
    sk_graph_free(g);
    return rc;
}

int sk_attack_pgd_accuracy(struct sk_model *m, const struct sk_attack_pgd_config *c, const float *x, const int *y,
                           int N, uint64_t seed, double *robust_acc, unsigned char *correct) {
    int D = m->in_dim, K = m->n_classes;
    float *xa = sk_malloc(sizeof(float) * ((size_t)N * D + 1)), *lp = sk_malloc(sizeof(float) * ((size_t)N * K + 1));
    float *lc = sk_malloc(sizeof(float) * ((size_t)N * K + 1));
    int rc = xa && lp && lc ? SK_OK : SK_ENOMEM;
    if (!rc) rc = sk_attack_pgd(m, c, x, y, N, seed, xa);
    if (!rc) rc = sk_model_log_probs(m, xa, N, lp);
    if (!rc) rc = sk_model_log_probs(m, x, N, lc);
    if (!rc) {
        long ok = 0;
        for (int n = 0; n < N; n++) {
            int a = 0, b = 0;
            for (int k = 1; k < K; k++) {
                if (lp[(size_t)n * K + k] > lp[(size_t)n * K + a]) a = k;
                if (lc[(size_t)n * K + k] > lc[(size_t)n * K + b]) b = k;
            }
            bool good = a == y[n] && b == y[n]; /* robust implies correct on x itself */
            ok += good;
            if (correct) correct[n] = good;
        }
        if (robust_acc) *robust_acc = N ? (double)ok / N : 0;
    }
    sk_free(xa);
    sk_free(lp);
    sk_free(lc);
    return rc;
}
