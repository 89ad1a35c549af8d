/* The inner attack of adversarial training: L-infinity PGD / FGSM with sign
 * steps on a model's graph (CE, CW margin or TRADES' KL), EOT for dropout. */
#include "skeptic/robust.h"

#include <math.h>
#include <string.h>

#define PGD_BATCH 256

struct sk_pgd_config sk_pgd_defaults(float eps, int steps)
{
    struct sk_pgd_config c = { 0 };
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

static inline float project(float v, float x0, float eps, bool box, float lo, float hi)
{
    v = v < x0 - eps ? x0 - eps : (v > x0 + eps ? x0 + eps : v);
    if (box) v = v < lo ? lo : (v > hi ? hi : v);
    return v;
}

/* One batch of B rows: xa holds the start and receives the result. */
static int pgd_batch(struct sk_model *m, struct sk_graph *g, const struct sk_pgd_config *c, const float *x,
                     const float *xs, const int *y, int B, uint64_t key, float *xa, float *grad, float *lpc)
{
    int D = m->in_dim, K = m->n_classes;
    size_t n = (size_t)B * D;
    bool box = c->clip_lo < c->clip_hi;
    float pe = c->no_project ? INFINITY : c->eps, r0 = c->start_radius > 0 ? c->start_radius : c->eps;
    float step = c->step > 0 ? c->step : (c->steps == 1 ? 1.25f * c->eps : 2.5f * c->eps / (float)c->steps);
    int eot = c->mode == SK_MODE_MC && c->eot > 1 ? c->eot : 1;
    int shape[2] = { B, D }, ks[2] = { B, K };
    if (c->loss == SK_PGD_LOSS_KL || c->loss == SK_PGD_LOSS_CE_NUC) {
        /* clean log-probabilities (KL) or logits (nuclear norm), fixed during the attack */
        sk_graph_reset(g);
        int z = sk_model_forward(m, g, sk_graph_input(g, x, 2, shape, false), c->mode, sk_rng_derive(key, 1u << 30).key);
        int lp = c->loss == SK_PGD_LOSS_KL ? sk_op_log_softmax(g, z) : z;
        if (lp < 0) return lp;
        memcpy(lpc, sk_graph_value(g, lp), sizeof(float) * (size_t)B * K);
    }
    if (xs) {
        for (size_t i = 0; i < n; i++) xa[i] = project(xs[i], x[i], pe, box, c->clip_lo, c->clip_hi);
    } else if (c->random_start) {
        uint64_t rk = sk_rng_derive(key, 0).key;
        for (size_t i = 0; i < n; i++) {
            float u = c->loss == SK_PGD_LOSS_KL ? 0.001f * sk_rng_normal_at(rk, i)
                      : c->sign_start           ? (sk_rng_uniform_at(rk, i) < 0.5f ? -r0 : r0)
                                                : r0 * (2.0f * sk_rng_uniform_at(rk, i) - 1.0f);
            xa[i] = project(x[i] + u, x[i], pe, box, c->clip_lo, c->clip_hi);
        }
    } else {
        for (size_t i = 0; i < n; i++) xa[i] = project(x[i], x[i], pe, box, c->clip_lo, c->clip_hi);
    }
    for (int s = 0; s < c->steps; s++) {
        memset(grad, 0, sizeof(float) * n);
        for (int e = 0; e < eot; e++) {
            sk_graph_reset(g);
            int xin = sk_graph_input(g, xa, 2, shape, true);
            uint64_t nk = sk_rng_derive(key, 1 + (uint64_t)s * (uint64_t)eot + (uint64_t)e).key;
            int z = sk_model_forward(m, g, xin, c->mode, nk), L;
            switch (c->loss) {
            case SK_PGD_LOSS_CW: L = sk_loss_margin(g, z, y, NULL, SK_MARGIN_CW); break;
            case SK_PGD_LOSS_KL:
                L = sk_loss_kl_categorical(g, sk_graph_input(g, lpc, 2, ks, false), sk_op_log_softmax(g, z));
                break;
            case SK_PGD_LOSS_CE_NUC:
                L = sk_loss_cross_entropy(g, z, y, 0.0f);
                if (c->nuc_lambda != 0) {
                    int d = sk_op_sub(g, z, sk_graph_input(g, lpc, 2, ks, false));
                    L = sk_op_add(g, L, sk_op_scale(g, sk_loss_nuclear(g, d), c->nuc_lambda / (float)B));
                }
                break;
            default: L = sk_loss_cross_entropy(g, z, y, 0.0f); break;
            }
            if (L < 0) return L;
            int rc = sk_graph_backward(g, L, NULL);
            if (rc) return rc;
            const float *dx = sk_graph_grad(g, xin);
            for (size_t i = 0; i < n; i++) grad[i] += dx[i];
        }
        for (size_t i = 0; i < n; i++) {
            float d = grad[i] > 0 ? step : (grad[i] < 0 ? -step : 0.0f);
            xa[i] = project(xa[i] + d, x[i], pe, box, c->clip_lo, c->clip_hi);
        }
    }
    return SK_OK;
}

int sk_pgd_perturb_graph(struct sk_model *m, struct sk_graph *g, const struct sk_pgd_config *c, const float *x,
                         const int *y, int N, uint64_t seed, float *xadv)
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
    int D = m->in_dim, K = m->n_classes, B = N < PGD_BATCH ? N : PGD_BATCH;
    float *grad = sk_malloc(sizeof(float) * ((size_t)B * D + 1));
    float *lpc = sk_malloc(sizeof(float) * ((size_t)B * K + 1));
    int rc = grad && lpc ? SK_OK : SK_ENOMEM;
    uint64_t key = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_ATTACK).key;
    for (int i = 0; i < N && rc == SK_OK; i += PGD_BATCH) {
        int nb = N - i < PGD_BATCH ? N - i : PGD_BATCH;
        rc = pgd_batch(m, g, c, x + (size_t)i * D, c->x_start ? c->x_start + (size_t)i * D : NULL, y ? y + i : NULL, nb, sk_rng_derive(key, (uint64_t)i).key,
                       xadv + (size_t)i * D, grad, lpc);
    }
    sk_free(grad);
    sk_free(lpc);
    return rc;
}

int sk_pgd_perturb(struct sk_model *m, const struct sk_pgd_config *c, const float *x, const int *y, int N,
                   uint64_t seed, float *xadv)
{
    struct sk_graph *g = sk_graph_new();
    if (!g) return SK_ENOMEM;
    sk_graph_set_param_grads(g, false);
    int rc = sk_pgd_perturb_graph(m, g, c, x, y, N, seed, xadv);
    sk_graph_free(g);
    return rc;
}

int sk_pgd_accuracy(struct sk_model *m, const struct sk_pgd_config *c, const float *x, const int *y, int N,
                    uint64_t seed, double *robust_acc, unsigned char *correct)
{
    int D = m->in_dim, K = m->n_classes;
    float *xa = sk_malloc(sizeof(float) * ((size_t)N * D + 1)), *lp = sk_malloc(sizeof(float) * ((size_t)N * K + 1));
    float *lc = sk_malloc(sizeof(float) * ((size_t)N * K + 1));
    int rc = xa && lp && lc ? SK_OK : SK_ENOMEM;
    if (!rc) rc = sk_pgd_perturb(m, c, x, y, N, seed, xa);
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
