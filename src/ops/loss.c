/* Losses: cross-entropy (label smoothing), BCE with logits, MSE, categorical
 * KL, and the CW / DLR margins that attacks maximise. All return scalars. */
#include "graph/graph_impl.h"

#include <math.h>
#include <string.h>

static int scalar_node(struct sk_graph *g, int op, int a, int b)
{
    int one = 1;
    return sk_node_new(g, op, 1, &one, a, b, -1);
}

static int check_2d(struct sk_graph *g, int z, const char *name)
{
    int rc = sk_node_check(g, z, name, "z");
    if (rc) return rc;
    if (node_at(g, z)->ndim != 2)
        return sk_error(SK_EINVAL, "%s: expects [N,K] scores, got %d dims", name, node_at(g, z)->ndim);
    return 0;
}

int sk_loss_cross_entropy(struct sk_graph *g, int z, const int *labels, float smoothing)
{
    int rc = check_2d(g, z, "sk_loss_cross_entropy");
    if (rc) return rc;
    struct sk_node *in = node_at(g, z);
    int N = in->shape[0], K = in->shape[1];
    for (int i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= K)
            return sk_error(SK_EINVAL, "sk_loss_cross_entropy: label %d of row %d is outside [0,%d)",
                            labels[i], i, K);
    if (!(smoothing >= 0 && smoothing < 1))
        return sk_error(SK_EINVAL, "sk_loss_cross_entropy: label smoothing %g not in [0,1)", smoothing);
    int id = scalar_node(g, OP_CE, z, -1);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    nd->cptr[0] = labels;
    nd->farg[0] = smoothing;
    float *P = sk_arena_alloc(g->arena, (size_t)N * K * sizeof(float));
    if (!P) return SK_ENOMEM;
    nd->saved = P;
    return sk_node_run(g, id);
}

/* cptr[0] = labels, farg[0] = smoothing; saved = the softmax [N,K] for backward */
void sk_ce_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *in = node_at(g, nd->in[0]);
    int N = in->shape[0], K = in->shape[1];
    const int *labels = nd->cptr[0];
    float smoothing = nd->farg[0], *P = nd->saved;
    const float *Z = in->val;
    double total = 0;
    for (int i = 0; i < N; i++) {
        const float *r = Z + (size_t)i * K;
        float m = r[0];
        for (int k = 1; k < K; k++) m = r[k] > m ? r[k] : m;
        double s = 0;
        for (int k = 0; k < K; k++) s += exp((double)r[k] - m);
        double ls = log(s) + m, lsum = 0;
        for (int k = 0; k < K; k++) {
            P[(size_t)i * K + k] = (float)(exp((double)r[k] - m) / s);
            lsum += r[k] - ls;
        }
        double lp_y = r[labels[i]] - ls;
        total -= (1.0 - smoothing) * lp_y + smoothing / K * lsum;
    }
    nd->val[0] = (float)(total / N);
}

void sk_ce_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dZ = in_grad(g, nd, 0);
    if (!dZ) return;
    struct sk_node *in = node_at(g, nd->in[0]);
    int N = in->shape[0], K = in->shape[1];
    const int *labels = nd->cptr[0];
    const float *P = nd->saved;
    float s = nd->farg[0], d = nd->grad[0] / (float)N;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            float q = s / K + (k == labels[i] ? 1.0f - s : 0.0f);
            dZ[(size_t)i * K + k] += d * (P[(size_t)i * K + k] - q);
        }
}

int sk_loss_bce_logits(struct sk_graph *g, int z, const float *targets)
{
    int rc = sk_node_check(g, z, "sk_loss_bce_logits", "z");
    if (rc) return rc;
    struct sk_node *in = node_at(g, z);
    if (in->n != (size_t)in->shape[0])
        return sk_error(SK_EINVAL, "sk_loss_bce_logits: z must hold one logit per row ([N] or [N,1])");
    int id = scalar_node(g, OP_BCE, z, -1);
    if (id >= 0) node_at(g, id)->cptr[0] = targets;
    return sk_node_run(g, id);
}

/* cptr[0] = targets */
void sk_bce_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *in = node_at(g, nd->in[0]);
    const float *targets = nd->cptr[0];
    double total = 0;
    for (size_t i = 0; i < in->n; i++) {
        double v = in->val[i], t = targets[i];
        total += (v > 0 ? v : 0) - v * t + log1p(exp(-fabs(v)));
    }
    nd->val[0] = (float)(total / (double)in->n);
}

void sk_bce_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dZ = in_grad(g, nd, 0);
    if (!dZ) return;
    struct sk_node *in = node_at(g, nd->in[0]);
    const float *t = nd->cptr[0];
    float d = nd->grad[0] / (float)in->n;
    for (size_t i = 0; i < in->n; i++) {
        float v = in->val[i];
        float sg = v >= 0 ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
        dZ[i] += d * (sg - t[i]);
    }
}

int sk_loss_mse(struct sk_graph *g, int a, int b)
{
    int rc = sk_node_check(g, a, "sk_loss_mse", "a");
    if (!rc) rc = sk_node_check(g, b, "sk_loss_mse", "b");
    if (rc) return rc;
    struct sk_node *A = node_at(g, a), *B = node_at(g, b);
    if (A->n != B->n)
        return sk_error(SK_EINVAL, "sk_loss_mse: %zu vs %zu elements", A->n, B->n);
    return sk_node_run(g, scalar_node(g, OP_MSE, a, b));
}

void sk_mse_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *A = node_at(g, nd->in[0]), *B = node_at(g, nd->in[1]);
    double s = 0;
    for (size_t i = 0; i < A->n; i++) {
        double d = (double)A->val[i] - B->val[i];
        s += d * d;
    }
    nd->val[0] = (float)(s / (double)A->n);
}

void sk_mse_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dA = in_grad(g, nd, 0), *dB = in_grad(g, nd, 1);
    const float *A = in_val(g, nd, 0), *B = in_val(g, nd, 1);
    size_t n = node_at(g, nd->in[0])->n;
    float c = 2.0f * nd->grad[0] / (float)n;
    for (size_t i = 0; i < n; i++) {
        float d = c * (A[i] - B[i]);
        if (dA) dA[i] += d;
        if (dB) dB[i] -= d;
    }
}

int sk_loss_kl_categorical(struct sk_graph *g, int lp, int lq)
{
    int rc = check_2d(g, lp, "sk_loss_kl_categorical");
    if (!rc) rc = check_2d(g, lq, "sk_loss_kl_categorical");
    if (rc) return rc;
    struct sk_node *P = node_at(g, lp), *Q = node_at(g, lq);
    if (P->shape[0] != Q->shape[0] || P->shape[1] != Q->shape[1])
        return sk_error(SK_EINVAL, "sk_loss_kl_categorical: shapes [%d,%d] and [%d,%d] differ",
                        P->shape[0], P->shape[1], Q->shape[0], Q->shape[1]);
    return sk_node_run(g, scalar_node(g, OP_KL, lp, lq));
}

void sk_kl_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *P = node_at(g, nd->in[0]), *Q = node_at(g, nd->in[1]);
    double s = 0;
    for (size_t i = 0; i < P->n; i++) s += exp((double)P->val[i]) * ((double)P->val[i] - Q->val[i]);
    nd->val[0] = (float)(s / P->shape[0]);
}

void sk_kl_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dP = in_grad(g, nd, 0), *dQ = in_grad(g, nd, 1);
    const float *P = in_val(g, nd, 0), *Q = in_val(g, nd, 1);
    struct sk_node *in = node_at(g, nd->in[0]);
    float d = nd->grad[0] / (float)in->shape[0];
    for (size_t i = 0; i < in->n; i++) {
        float p = expf(P[i]);
        /* d/dlp [e^lp (lp - lq)] = e^lp (lp - lq + 1); d/dlq = -e^lp */
        if (dP) dP[i] += d * p * (P[i] - Q[i] + 1.0f);
        if (dQ) dQ[i] -= d * p;
    }
}

/* ---- nuclear norm ---- */
/* One-sided Jacobi (Hestenes) in double on A (N x K, row-major): rotates pairs
 * of columns until every pair is orthogonal, accumulating the rotations in V
 * (K x K). On return column k of A is sigma_k u_k and column k of V is v_k, so
 * A_in = sum_k sigma_k u_k v_k^T. */
static void jacobi_svd(double *A, int N, int K, double *V)
{
    for (int i = 0; i < K * K; i++) V[i] = i % (K + 1) == 0 ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 64; sweep++) {
        double off = 0;
        for (int p = 0; p < K - 1; p++)
            for (int q = p + 1; q < K; q++) {
                double a = 0, b = 0, c = 0;
                for (int i = 0; i < N; i++) {
                    double x = A[(size_t)i * K + p], y = A[(size_t)i * K + q];
                    a += x * x;
                    b += y * y;
                    c += x * y;
                }
                if (c == 0 || fabs(c) <= 1e-15 * sqrt(a * b)) continue;
                off = fmax(off, fabs(c) / sqrt(a * b));
                /* the smaller root t of t^2 + 2 zeta t - 1 = 0 zeroes the pair's inner product */
                double zeta = (b - a) / (2 * c);
                double t = copysign(1.0, zeta) / (fabs(zeta) + sqrt(1 + zeta * zeta));
                double cs = 1 / sqrt(1 + t * t), sn = cs * t;
                for (int i = 0; i < N; i++) {
                    double x = A[(size_t)i * K + p], y = A[(size_t)i * K + q];
                    A[(size_t)i * K + p] = cs * x - sn * y;
                    A[(size_t)i * K + q] = sn * x + cs * y;
                }
                for (int i = 0; i < K; i++) {
                    double x = V[i * K + p], y = V[i * K + q];
                    V[i * K + p] = cs * x - sn * y;
                    V[i * K + q] = sn * x + cs * y;
                }
            }
        if (off <= 1e-14) break;
    }
}

int sk_loss_nuclear(struct sk_graph *g, int a)
{
    int rc = check_2d(g, a, "sk_loss_nuclear");
    if (rc) return rc;
    int N = node_at(g, a)->shape[0], K = node_at(g, a)->shape[1];
    int id = scalar_node(g, OP_NUC, a, -1);
    if (id < 0) return id;
    float *G = sk_arena_alloc(g->arena, (size_t)N * K * sizeof(float));
    double *W = sk_arena_alloc(g->arena, sizeof(double) * ((size_t)N * K + (size_t)K * K + (size_t)K + 1));
    if (!G || !W) return SK_ENOMEM;
    struct sk_node *nd = node_at(g, id);
    nd->saved = G;
    nd->saved2 = W;
    return sk_node_run(g, id);
}

/* saved = the gradient U V^T [N,K]; saved2 = the SVD's double workspace */
void sk_nuc_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *in = node_at(g, nd->in[0]);
    int N = in->shape[0], K = in->shape[1];
    float *G = nd->saved;
    double *W = nd->saved2, *V = W + (size_t)N * K, *sig = V + (size_t)K * K;
    const float *X = in->val;
    for (size_t i = 0; i < (size_t)N * K; i++) W[i] = X[i];
    jacobi_svd(W, N, K, V);
    double total = 0, smax = 0;
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int i = 0; i < N; i++) s += W[(size_t)i * K + k] * W[(size_t)i * K + k];
        sig[k] = sqrt(s);
        total += sig[k];
        smax = fmax(smax, sig[k]);
    }
    /* gradient U V^T over the non-zero singular values (a subgradient where some are 0) */
    for (int k = 0; k < K; k++) sig[k] = sig[k] > 1e-9 * smax ? 1 / sig[k] : 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < K; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += W[(size_t)i * K + k] * sig[k] * V[j * K + k];
            G[(size_t)i * K + j] = (float)s;
        }
    nd->val[0] = (float)total;
}

void sk_nuc_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dA = in_grad(g, nd, 0);
    if (!dA) return;
    const float *G = nd->saved;
    size_t n = node_at(g, nd->in[0])->n;
    float d = nd->grad[0];
    for (size_t i = 0; i < n; i++) dA[i] += d * G[i];
}

/* ---- margins ---- */
void sk_margin_rows(enum sk_margin_kind kind, const float *z, int N, int K, const int *labels,
                    const int *targets, float *loss, float *dz)
{
    for (int i = 0; i < N; i++) {
        const float *r = z + (size_t)i * K;
        float *d = dz ? dz + (size_t)i * K : NULL;
        if (d) memset(d, 0, sizeof(float) * (size_t)K);
        int y = labels[i], t = targets ? targets[i] : -1;
        /* best other than y (untargeted) or other than t (targeted) */
        int excl = t >= 0 ? t : y, jmax = -1;
        for (int k = 0; k < K; k++)
            if (k != excl && (jmax < 0 || r[k] > r[jmax])) jmax = k;
        if (kind == SK_MARGIN_CW) {
            float l = t >= 0 ? r[t] - r[jmax] : r[jmax] - r[y];
            if (loss) loss[i] = l;
            if (d) {
                if (t >= 0) {
                    d[t] += 1;
                    d[jmax] -= 1;
                } else {
                    d[jmax] += 1;
                    d[y] -= 1;
                }
            }
            continue;
        }
        /* DLR: indices of the sorted top four. */
        int top[4] = { -1, -1, -1, -1 };
        for (int k = 0; k < K; k++) {
            int c = k;
            for (int s = 0; s < 4; s++) {
                if (top[s] < 0) {
                    top[s] = c;
                    break;
                }
                if (r[c] > r[top[s]]) {
                    int tmp = top[s];
                    top[s] = c;
                    c = tmp;
                }
            }
        }
        float num, den;
        if (t < 0) {
            num = r[y] - r[jmax];
            den = r[top[0]] - r[top[2]] + 1e-12f;
            if (loss) loss[i] = -num / den;
            if (d) {
                d[y] += -1 / den;
                d[jmax] += 1 / den;
                d[top[0]] += num / (den * den);
                d[top[2]] -= num / (den * den);
            }
        } else {
            num = r[y] - r[t];
            den = r[top[0]] - 0.5f * (r[top[2]] + r[top[3]]) + 1e-12f;
            if (loss) loss[i] = -num / den;
            if (d) {
                d[y] += -1 / den;
                d[t] += 1 / den;
                d[top[0]] += num / (den * den);
                d[top[2]] -= 0.5f * num / (den * den);
                d[top[3]] -= 0.5f * num / (den * den);
            }
        }
    }
}

int sk_loss_margin(struct sk_graph *g, int z, const int *labels, const int *targets,
                   enum sk_margin_kind kind)
{
    int rc = check_2d(g, z, "sk_loss_margin");
    if (rc) return rc;
    struct sk_node *in = node_at(g, z);
    int N = in->shape[0], K = in->shape[1];
    int need = kind == SK_MARGIN_DLR ? (targets ? 4 : 3) : 2;
    if (K < need)
        return sk_error(SK_EINVAL, "sk_loss_margin: %s needs at least %d classes, got %d",
                        kind == SK_MARGIN_DLR ? "DLR" : "CW", need, K);
    for (int i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= K || (targets && (targets[i] < 0 || targets[i] >= K)))
            return sk_error(SK_EINVAL, "sk_loss_margin: label or target of row %d outside [0,%d)", i, K);
    int id = scalar_node(g, OP_MARGIN, z, -1);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    nd->cptr[0] = labels;
    nd->cptr[1] = targets;
    nd->iarg[0] = kind;
    /* The row gradients are cheap: computed in the forward so backward cannot fail. */
    float *l = sk_arena_alloc(g->arena, sizeof(float) * (size_t)N);
    float *dz = sk_arena_alloc(g->arena, sizeof(float) * (size_t)N * K);
    if (!l || !dz) return SK_ENOMEM;
    nd->saved = dz;
    nd->saved2 = l;
    return sk_node_run(g, id);
}

/* cptr = labels, targets; iarg[0] = kind; saved = dloss/dz [N,K], saved2 = loss per row [N] */
void sk_margin_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *in = node_at(g, nd->in[0]);
    int N = in->shape[0], K = in->shape[1];
    float *l = nd->saved2;
    sk_margin_rows((enum sk_margin_kind)nd->iarg[0], in->val, N, K, nd->cptr[0], nd->cptr[1], l, nd->saved);
    double s = 0;
    for (int i = 0; i < N; i++) s += l[i];
    nd->val[0] = (float)s;
}

void sk_margin_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dZ = in_grad(g, nd, 0);
    if (!dZ) return;
    struct sk_node *in = node_at(g, nd->in[0]);
    const float *d = nd->saved;
    for (size_t i = 0; i < in->n; i++) dZ[i] += nd->grad[0] * d[i];
}

/* ---- second order (R-operator; see struct sk_op_hvp) ---- */

/* CE, per row with P = softmax(z), q the smoothed target, d = dL/dloss:
 *   R{L} = (1/N) sum <P - q, R{z}>;
 *   R{dz} += R{d}/N (P - q) + d/N P (R{z} - <P, R{z}>). */
static void ce_tangent(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *in = node_at(g, nd->in[0]);
    int N = in->shape[0], K = in->shape[1];
    const int *labels = nd->cptr[0];
    const float *P = nd->saved, *T = in_tval(g, nd, 0);
    float s = nd->farg[0];
    double acc = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            float q = s / K + (k == labels[i] ? 1.0f - s : 0.0f);
            acc += (double)(P[(size_t)i * K + k] - q) * T[(size_t)i * K + k];
        }
    nd->tval[0] = (float)(acc / N);
}

static void ce_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdZ = in_tgrad(g, nd, 0);
    if (!tdZ) return;
    struct sk_node *in = node_at(g, nd->in[0]);
    int N = in->shape[0], K = in->shape[1];
    const int *labels = nd->cptr[0];
    const float *P = nd->saved, *T = in_tval(g, nd, 0);
    float s = nd->farg[0], d = nd->grad[0] / (float)N, td = nd->tgrad[0] / (float)N;
    for (int i = 0; i < N; i++) {
        const float *p = P + (size_t)i * K, *t = T ? T + (size_t)i * K : NULL;
        double pt = 0;
        if (t)
            for (int k = 0; k < K; k++) pt += (double)p[k] * t[k];
        for (int k = 0; k < K; k++) {
            float q = s / K + (k == labels[i] ? 1.0f - s : 0.0f);
            tdZ[(size_t)i * K + k] += td * (p[k] - q) + (t ? d * p[k] * (t[k] - (float)pt) : 0.0f);
        }
    }
}
const struct sk_op_hvp sk_hvp_ce = { ce_tangent, ce_rback, NULL };

/* BCE: R{L} = mean (sigma(z) - t) R{z};
 * R{dz} += R{d}/n (sigma - t) + d/n sigma (1 - sigma) R{z}. */
static inline float sigm(float v) { return v >= 0 ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v)); }

static void bce_tangent(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *in = node_at(g, nd->in[0]);
    const float *t = nd->cptr[0], *T = in_tval(g, nd, 0);
    double acc = 0;
    for (size_t i = 0; i < in->n; i++) acc += (double)(sigm(in->val[i]) - t[i]) * T[i];
    nd->tval[0] = (float)(acc / (double)in->n);
}

static void bce_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdZ = in_tgrad(g, nd, 0);
    if (!tdZ) return;
    struct sk_node *in = node_at(g, nd->in[0]);
    const float *t = nd->cptr[0], *T = in_tval(g, nd, 0);
    float d = nd->grad[0] / (float)in->n, td = nd->tgrad[0] / (float)in->n;
    for (size_t i = 0; i < in->n; i++) {
        float sg = sigm(in->val[i]);
        tdZ[i] += td * (sg - t[i]) + (T ? d * sg * (1.0f - sg) * T[i] : 0.0f);
    }
}
const struct sk_op_hvp sk_hvp_bce = { bce_tangent, bce_rback, NULL };

/* MSE: R{L} = 2/n sum (a - b)(R{a} - R{b});
 * R{da} = -R{db} += 2 R{d}/n (a - b) + 2 d/n (R{a} - R{b}). */
static void mse_tangent(struct sk_graph *g, struct sk_node *nd)
{
    const float *A = in_val(g, nd, 0), *B = in_val(g, nd, 1), *tA = in_tval(g, nd, 0), *tB = in_tval(g, nd, 1);
    size_t n = node_at(g, nd->in[0])->n;
    double acc = 0;
    for (size_t i = 0; i < n; i++) acc += ((double)A[i] - B[i]) * ((tA ? tA[i] : 0.0f) - (tB ? tB[i] : 0.0f));
    nd->tval[0] = (float)(2.0 * acc / (double)n);
}

static void mse_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdA = in_tgrad(g, nd, 0), *tdB = in_tgrad(g, nd, 1);
    const float *A = in_val(g, nd, 0), *B = in_val(g, nd, 1), *tA = in_tval(g, nd, 0), *tB = in_tval(g, nd, 1);
    size_t n = node_at(g, nd->in[0])->n;
    float c = 2.0f * nd->grad[0] / (float)n, tc = 2.0f * nd->tgrad[0] / (float)n;
    for (size_t i = 0; i < n; i++) {
        float r = tc * (A[i] - B[i]) + c * ((tA ? tA[i] : 0.0f) - (tB ? tB[i] : 0.0f));
        if (tdA) tdA[i] += r;
        if (tdB) tdB[i] -= r;
    }
}
const struct sk_op_hvp sk_hvp_mse = { mse_tangent, mse_rback, NULL };

/* KL = (1/N) sum e^lp (lp - lq), u = R{lp}, w = R{lq}, p = e^lp:
 *   R{L}   = (1/N) sum p ((lp - lq + 1) u - w)
 *   R{dlp} += R{d}/N p (lp - lq + 1) + d/N p ((lp - lq + 2) u - w)
 *   R{dlq} -= R{d}/N p + d/N p u. */
static void kl_tangent(struct sk_graph *g, struct sk_node *nd)
{
    const float *P = in_val(g, nd, 0), *Q = in_val(g, nd, 1), *tP = in_tval(g, nd, 0), *tQ = in_tval(g, nd, 1);
    struct sk_node *in = node_at(g, nd->in[0]);
    double acc = 0;
    for (size_t i = 0; i < in->n; i++) {
        double p = exp((double)P[i]);
        acc += p * (((double)P[i] - Q[i] + 1) * (tP ? tP[i] : 0.0f) - (tQ ? tQ[i] : 0.0f));
    }
    nd->tval[0] = (float)(acc / in->shape[0]);
}

static void kl_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdP = in_tgrad(g, nd, 0), *tdQ = in_tgrad(g, nd, 1);
    const float *P = in_val(g, nd, 0), *Q = in_val(g, nd, 1), *tP = in_tval(g, nd, 0), *tQ = in_tval(g, nd, 1);
    struct sk_node *in = node_at(g, nd->in[0]);
    float d = nd->grad[0] / (float)in->shape[0], td = nd->tgrad[0] / (float)in->shape[0];
    for (size_t i = 0; i < in->n; i++) {
        float p = expf(P[i]), u = tP ? tP[i] : 0.0f, w = tQ ? tQ[i] : 0.0f;
        if (tdP) tdP[i] += td * p * (P[i] - Q[i] + 1.0f) + d * p * ((P[i] - Q[i] + 2.0f) * u - w);
        if (tdQ) tdQ[i] -= td * p + d * p * u;
    }
}
const struct sk_op_hvp sk_hvp_kl = { kl_tangent, kl_rback, NULL };

/* Margins, for a fixed ordering of each row (ties are kinks):
 *   CW is piecewise linear: R{L} = <dz, R{z}>, R{dz} += R{d} dz.
 *   DLR is -u/w with u, w linear in z (u = <a, z>, w = <b, z> + 1e-12):
 *   d(-u/w) = -a/w + u b/w^2, and its R along t: (a <b,t> + b <a,t>)/w^2 - 2 u b <b,t>/w^3.
 * The coefficient vectors a, b are rebuilt from the saved row gradient's
 * indices by the same selection as sk_margin_rows. */
struct dlr_row {
    int ia[2], ib[3];
    float ca[2], cb[3];
    int na, nb;
};

static struct dlr_row dlr_row_of(const float *r, int K, int y, int t)
{
    int top[4] = { -1, -1, -1, -1 };
    for (int k = 0; k < K; k++) {
        int c = k;
        for (int s = 0; s < 4; s++) {
            if (top[s] < 0) {
                top[s] = c;
                break;
            }
            if (r[c] > r[top[s]]) {
                int tmp = top[s];
                top[s] = c;
                c = tmp;
            }
        }
    }
    struct dlr_row d;
    int excl = t >= 0 ? t : y, jmax = -1;
    for (int k = 0; k < K; k++)
        if (k != excl && (jmax < 0 || r[k] > r[jmax])) jmax = k;
    d.na = 2;
    d.ia[0] = y;
    d.ca[0] = 1;
    d.ia[1] = t >= 0 ? t : jmax;
    d.ca[1] = -1;
    if (t < 0) {
        d.nb = 2;
        d.ib[0] = top[0], d.cb[0] = 1;
        d.ib[1] = top[2], d.cb[1] = -1;
    } else {
        d.nb = 3;
        d.ib[0] = top[0], d.cb[0] = 1;
        d.ib[1] = top[2], d.cb[1] = -0.5f;
        d.ib[2] = top[3], d.cb[2] = -0.5f;
    }
    return d;
}

static void margin_tangent(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *in = node_at(g, nd->in[0]);
    const float *dz = nd->saved, *T = in_tval(g, nd, 0);
    double acc = 0;
    for (size_t i = 0; i < in->n; i++) acc += (double)dz[i] * T[i];
    nd->tval[0] = (float)acc;
}

static void margin_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdZ = in_tgrad(g, nd, 0);
    if (!tdZ) return;
    struct sk_node *in = node_at(g, nd->in[0]);
    int N = in->shape[0], K = in->shape[1];
    const float *dz = nd->saved, *T = in_tval(g, nd, 0), *Z = in->val;
    const int *labels = nd->cptr[0], *targets = nd->cptr[1];
    float d = nd->grad[0], td = nd->tgrad[0];
    for (size_t i = 0; i < in->n; i++) tdZ[i] += td * dz[i];
    if (nd->iarg[0] != SK_MARGIN_DLR || !T) return;
    for (int i = 0; i < N; i++) {
        const float *r = Z + (size_t)i * K, *t = T + (size_t)i * K;
        float *o = tdZ + (size_t)i * K;
        struct dlr_row c = dlr_row_of(r, K, labels[i], targets ? targets[i] : -1);
        double u = 0, w = 1e-12, at = 0, bt = 0;
        for (int j = 0; j < c.na; j++) {
            u += c.ca[j] * r[c.ia[j]];
            at += c.ca[j] * t[c.ia[j]];
        }
        for (int j = 0; j < c.nb; j++) {
            w += c.cb[j] * r[c.ib[j]];
            bt += c.cb[j] * t[c.ib[j]];
        }
        for (int j = 0; j < c.na; j++) o[c.ia[j]] += (float)(d * c.ca[j] * bt / (w * w));
        for (int j = 0; j < c.nb; j++)
            o[c.ib[j]] += (float)(d * c.cb[j] * (at / (w * w) - 2 * u * bt / (w * w * w)));
    }
}
const struct sk_op_hvp sk_hvp_margin = { margin_tangent, margin_rback, NULL };
