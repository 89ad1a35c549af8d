/* Ops of backward bound propagation (CROWN on the tape): the transposed
 * convolution, the 2-D transpose, and the grouped product and dot product
 * that apply one sample's per-neuron relaxation to all of its
 * specification rows. */
#include "graph/graph_impl.h"

#include <string.h>

/* ---------------- transposed convolution ----------------
 * y = T^T x for the conv map T (stride, pad, input C x H x W) whose output
 * x [N, OC, OH, OW] is: the conv kernels with the roles of x and dy swapped.
 *   forward:   y   = col2im(W^T x)          (conv backward's dx)
 *   backward:  dx += conv(dy, W) (no bias), dW += x col(dy)^T  (conv backward's dW with x := dy, dy := x)
 * iarg = stride, pad, threads; saved = the conv thread scratch; saved2 = a
 * buffer of x's size for backward's contribution when dx already holds one. */

int sk_op_conv_transpose2d(struct sk_graph *g, int x, int W, int stride, int pad, int H, int Wd)
{
    const char *name = "sk_op_conv_transpose2d";
    int rc = sk_node_check(g, x, name, "x");
    if (!rc) rc = sk_node_check(g, W, name, "W");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x), *Wn = node_at(g, W);
    if (X->ndim != 4 || Wn->ndim != 4)
        return sk_error(SK_EINVAL, "%s: x and W must be 4-D (x has %d dims, W %d)", name, X->ndim, Wn->ndim);
    int N = X->shape[0], OC = X->shape[1], OH = X->shape[2], OW = X->shape[3];
    int C = Wn->shape[1], KH = Wn->shape[2], KW = Wn->shape[3];
    if (Wn->shape[0] != OC) return sk_error(SK_EINVAL, "%s: x has %d channels, W has %d outputs", name, OC, Wn->shape[0]);
    if (stride < 1 || pad < 0 || H < 1 || Wd < 1 || H + 2 * pad < KH || Wd + 2 * pad < KW)
        return sk_error(SK_EINVAL, "%s: stride %d, padding %d, output %dx%d do not fit a %dx%d kernel", name, stride,
                        pad, H, Wd, KH, KW);
    if ((H + 2 * pad - KH) / stride + 1 != OH || (Wd + 2 * pad - KW) / stride + 1 != OW)
        return sk_error(SK_EINVAL, "%s: a %dx%d input convolves to %dx%d, x is %dx%d", name, H, Wd,
                        (H + 2 * pad - KH) / stride + 1, (Wd + 2 * pad - KW) / stride + 1, OH, OW);
    int shape[4] = { N, C, H, Wd };
    int id = sk_node_new(g, OP_CONV_T, 4, shape, x, W, -1);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    int T = sk_get_threads();
    nd->iarg[0] = stride;
    nd->iarg[1] = pad;
    nd->iarg[2] = T;
    nd->saved = sk_arena_alloc(g->arena, sk_conv2d_scratch_floats(C, H, Wd, OC, KH, KW, stride, pad, T) * sizeof(float));
    nd->saved2 = sk_arena_alloc(g->arena, node_at(g, x)->n * sizeof(float));
    if (!nd->saved || !nd->saved2) return SK_ENOMEM;
    return sk_node_run(g, id);
}

/* The conv geometry of a transposed-conv node: N, C, H, W of its output, OC, KH, KW of W. */
#define CONVT_DIMS(g, nd)                                                                                  \
    struct sk_node *Xn = node_at(g, (nd)->in[0]), *Wn = node_at(g, (nd)->in[1]);                           \
    int N = (nd)->shape[0], C = (nd)->shape[1], H = (nd)->shape[2], Wd = (nd)->shape[3];                   \
    int OC = Wn->shape[0], KH = Wn->shape[2], KW = Wn->shape[3], s = (nd)->iarg[0], p = (nd)->iarg[1];     \
    int T = (nd)->iarg[2];                                                                                 \
    (void)Xn

void sk_conv_t_forward(struct sk_graph *g, struct sk_node *nd)
{
    CONVT_DIMS(g, nd);
    sk_conv2d_backward(nd->val, true, NULL, NULL, nd->saved, T, Xn->val, NULL, Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
}

/* dst (+)= conv(a, w) without bias, a [N,C,H,W]; tmp: x's size */
static void conv_into(float *dst, bool add, float *tmp, size_t n, float *scratch, int T, const float *a,
                      const float *w, int N, int C, int H, int Wd, int OC, int KH, int KW, int s, int p)
{
    float *out = add ? tmp : dst;
    sk_conv2d_forward(out, scratch, T, a, w, NULL, N, C, H, Wd, OC, KH, KW, s, p);
    if (add)
        for (size_t i = 0; i < n; i++) dst[i] += tmp[i];
}

void sk_conv_t_backward(struct sk_graph *g, struct sk_node *nd)
{
    CONVT_DIMS(g, nd);
    bool ow;
    float *dX = in_grad_w(g, nd, 0, &ow), *dW = in_grad(g, nd, 1);
    if (dX) conv_into(dX, !ow, nd->saved2, Xn->n, nd->saved, T, nd->grad, Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
    if (dW) sk_conv2d_backward(NULL, false, dW, NULL, nd->saved, T, Xn->val, nd->grad, Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
}

/* R{y} = T^T(R{x}; W) + T^T(x; R{W}) */
static void conv_t_tangent(struct sk_graph *g, struct sk_node *nd)
{
    CONVT_DIMS(g, nd);
    const float *tX = in_tval(g, nd, 0), *tW = in_tval(g, nd, 1);
    bool first = true;
    if (tX) {
        sk_conv2d_backward(nd->tval, true, NULL, NULL, nd->saved, T, tX, NULL, Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
        first = false;
    }
    if (tW) sk_conv2d_backward(nd->tval, first, NULL, NULL, nd->saved, T, Xn->val, NULL, tW, N, C, H, Wd, OC, KH, KW, s, p);
}

/* R{dx} += conv(R{dy}, W) + conv(dy, R{W});  R{dW} += x col(R{dy})^T + R{x} col(dy)^T */
static void conv_t_rback(struct sk_graph *g, struct sk_node *nd)
{
    CONVT_DIMS(g, nd);
    const float *tX = in_tval(g, nd, 0), *tW = in_tval(g, nd, 1);
    float *tdX = in_tgrad(g, nd, 0), *tdW = in_tgrad(g, nd, 1);
    if (tdX) {
        conv_into(tdX, true, nd->ttmp, Xn->n, nd->saved, T, nd->tgrad, Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
        if (tW) conv_into(tdX, true, nd->ttmp, Xn->n, nd->saved, T, nd->grad, tW, N, C, H, Wd, OC, KH, KW, s, p);
    }
    if (tdW) {
        sk_conv2d_backward(NULL, false, tdW, NULL, nd->saved, T, Xn->val, nd->tgrad, Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
        if (tX) sk_conv2d_backward(NULL, false, tdW, NULL, nd->saved, T, tX, nd->grad, Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
    }
}

static size_t conv_t_temp(const struct sk_graph *g, const struct sk_node *nd)
{
    return g->nodes[nd->in[0]].n;
}

const struct sk_op_hvp sk_hvp_conv_t = { conv_t_tangent, conv_t_rback, conv_t_temp };

/* ---------------- 2-D transpose ---------------- */

int sk_op_transpose(struct sk_graph *g, int x)
{
    int rc = sk_node_check(g, x, "sk_op_transpose", "x");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x);
    if (X->ndim != 2) return sk_error(SK_EINVAL, "sk_op_transpose: x must be 2-D (it has %d dims)", X->ndim);
    int shape[2] = { X->shape[1], X->shape[0] };
    return sk_node_run(g, sk_node_new(g, OP_TRANSPOSE, 2, shape, x, -1, -1));
}

/* dst[c, r] (+)= src[r, c], src [R, C] */
static void transpose_into(float *dst, bool add, const float *src, int R, int C)
{
#pragma omp parallel for schedule(static) if ((size_t)R * C > 65536)
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++) {
            float v = src[(size_t)r * C + c];
            dst[(size_t)c * R + r] = add ? dst[(size_t)c * R + r] + v : v;
        }
}

void sk_transpose_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    transpose_into(nd->val, false, X->val, X->shape[0], X->shape[1]);
}

void sk_transpose_backward(struct sk_graph *g, struct sk_node *nd)
{
    bool ow;
    float *dX = in_grad_w(g, nd, 0, &ow);
    if (dX) transpose_into(dX, !ow, nd->grad, nd->shape[0], nd->shape[1]);
}

static void transpose_tangent(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    transpose_into(nd->tval, false, in_tval(g, nd, 0), X->shape[0], X->shape[1]);
}

static void transpose_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdX = in_tgrad(g, nd, 0);
    if (tdX) transpose_into(tdX, true, nd->tgrad, nd->shape[0], nd->shape[1]);
}

const struct sk_op_hvp sk_hvp_transpose = { transpose_tangent, transpose_rback, NULL };

/* ---------------- grouped product and dot product ----------------
 * v [N, ...] holds D = numel(v)/N values per sample; x holds G groups of D
 * values per sample (numel(x) = N G D, sample-major).
 *   mul_groups:  y[n,g,d] = x[n,g,d] v[n,d]          (y has x's shape)
 *   dot_groups:  y[n,g]   = sum_d x[n,g,d] v[n,d]    (y [N, G]) */

static int groups_check(struct sk_graph *g, int x, int v, const char *name, int *G)
{
    int rc = sk_node_check(g, x, name, "x");
    if (!rc) rc = sk_node_check(g, v, name, "v");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x), *V = node_at(g, v);
    if (V->n == 0 || X->n % V->n != 0)
        return sk_error(SK_EINVAL, "%s: x has %zu values, not a multiple of v's %zu", name, X->n, V->n);
    *G = (int)(X->n / V->n);
    return SK_OK;
}

int sk_op_mul_groups(struct sk_graph *g, int x, int v)
{
    int G = 0, rc = groups_check(g, x, v, "sk_op_mul_groups", &G);
    if (rc) return rc;
    struct sk_node *X = node_at(g, x);
    int shape[4];
    memcpy(shape, X->shape, sizeof shape);
    return sk_node_run(g, sk_node_new(g, OP_MUL_GROUPS, X->ndim, shape, x, v, -1));
}

int sk_op_dot_groups(struct sk_graph *g, int x, int v)
{
    int G = 0, rc = groups_check(g, x, v, "sk_op_dot_groups", &G);
    if (rc) return rc;
    int shape[2] = { node_at(g, v)->shape[0], G };
    return sk_node_run(g, sk_node_new(g, OP_DOT_GROUPS, 2, shape, x, v, -1));
}

/* Sizes of a grouped node: samples N, groups G, values per group D. */
static void groups_dims(struct sk_graph *g, const struct sk_node *nd, size_t *N, size_t *G, size_t *D)
{
    const struct sk_node *X = node_at(g, nd->in[0]), *V = node_at(g, nd->in[1]);
    *N = (size_t)V->shape[0];
    *D = V->n / *N;
    *G = X->n / V->n;
}

/* y[n,g,:] = a[n,g,:] * b[n,:] (+ c[n,g,:] * e[n,:] when c) */
static void mulg(float *y, const float *a, const float *b, const float *c, const float *e, size_t N, size_t G,
                 size_t D, bool add)
{
#pragma omp parallel for schedule(static) if (N * G * D > 65536)
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < G; k++) {
            float *yr = y + (n * G + k) * D;
            const float *ar = a + (n * G + k) * D, *br = b + n * D;
            const float *cr = c ? c + (n * G + k) * D : NULL, *er = e ? e + n * D : NULL;
            for (size_t d = 0; d < D; d++) {
                float v = ar[d] * br[d] + (cr ? cr[d] * er[d] : 0.0f);
                yr[d] = add ? yr[d] + v : v;
            }
        }
}

/* dv[n,:] += sum_g a[n,g,:] * b[n,g,:] */
static void sumg(float *dv, const float *a, const float *b, size_t N, size_t G, size_t D)
{
#pragma omp parallel for schedule(static) if (N * G * D > 65536)
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < G; k++) {
            const float *ar = a + (n * G + k) * D, *br = b + (n * G + k) * D;
            float *vr = dv + n * D;
            for (size_t d = 0; d < D; d++) vr[d] += ar[d] * br[d];
        }
}

/* y[n,g] (+)= sum_d a[n,g,d] b[n,d] */
static void dotg(float *y, bool add, const float *a, const float *b, size_t N, size_t G, size_t D)
{
#pragma omp parallel for schedule(static) if (N * G * D > 65536)
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < G; k++) {
            const float *ar = a + (n * G + k) * D, *br = b + n * D;
            double s = 0;
            for (size_t d = 0; d < D; d++) s += (double)ar[d] * br[d];
            y[n * G + k] = add ? y[n * G + k] + (float)s : (float)s;
        }
}

/* da[n,g,:] += dy[n,g] b[n,:];  (outer products of a row scalar and a sample vector) */
static void outerg(float *da, const float *dy, const float *b, size_t N, size_t G, size_t D)
{
#pragma omp parallel for schedule(static) if (N * G * D > 65536)
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < G; k++) {
            float s = dy[n * G + k];
            float *ar = da + (n * G + k) * D;
            const float *br = b + n * D;
            for (size_t d = 0; d < D; d++) ar[d] += s * br[d];
        }
}

/* dv[n,:] += sum_g dy[n,g] a[n,g,:] */
static void outer_sum(float *dv, const float *dy, const float *a, size_t N, size_t G, size_t D)
{
#pragma omp parallel for schedule(static) if (N * G * D > 65536)
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < G; k++) {
            float s = dy[n * G + k];
            const float *ar = a + (n * G + k) * D;
            float *vr = dv + n * D;
            for (size_t d = 0; d < D; d++) vr[d] += s * ar[d];
        }
}

void sk_mul_groups_forward(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, G, D;
    groups_dims(g, nd, &N, &G, &D);
    mulg(nd->val, in_val(g, nd, 0), in_val(g, nd, 1), NULL, NULL, N, G, D, false);
}

void sk_mul_groups_backward(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, G, D;
    groups_dims(g, nd, &N, &G, &D);
    bool ow;
    float *dX = in_grad_w(g, nd, 0, &ow), *dV = in_grad(g, nd, 1);
    if (dX) mulg(dX, nd->grad, in_val(g, nd, 1), NULL, NULL, N, G, D, !ow);
    if (dV) sumg(dV, nd->grad, in_val(g, nd, 0), N, G, D);
}

static void mul_groups_tangent(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, G, D;
    groups_dims(g, nd, &N, &G, &D);
    const float *tX = in_tval(g, nd, 0), *tV = in_tval(g, nd, 1);
    if (tX) mulg(nd->tval, tX, in_val(g, nd, 1), tV ? in_val(g, nd, 0) : NULL, tV, N, G, D, false);
    else mulg(nd->tval, in_val(g, nd, 0), tV, NULL, NULL, N, G, D, false);
}

/* R{dx} += R{dy} v + dy R{v};  R{dv} += sum_g R{dy} x + dy R{x} */
static void mul_groups_rback(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, G, D;
    groups_dims(g, nd, &N, &G, &D);
    const float *tX = in_tval(g, nd, 0), *tV = in_tval(g, nd, 1);
    float *tdX = in_tgrad(g, nd, 0), *tdV = in_tgrad(g, nd, 1);
    if (tdX) mulg(tdX, nd->tgrad, in_val(g, nd, 1), tV ? nd->grad : NULL, tV, N, G, D, true);
    if (tdV) {
        sumg(tdV, nd->tgrad, in_val(g, nd, 0), N, G, D);
        if (tX) sumg(tdV, nd->grad, tX, N, G, D);
    }
}

const struct sk_op_hvp sk_hvp_mul_groups = { mul_groups_tangent, mul_groups_rback, NULL };

void sk_dot_groups_forward(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, G, D;
    groups_dims(g, nd, &N, &G, &D);
    dotg(nd->val, false, in_val(g, nd, 0), in_val(g, nd, 1), N, G, D);
}

void sk_dot_groups_backward(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, G, D;
    groups_dims(g, nd, &N, &G, &D);
    float *dX = in_grad(g, nd, 0), *dV = in_grad(g, nd, 1);
    if (dX) outerg(dX, nd->grad, in_val(g, nd, 1), N, G, D);
    if (dV) outer_sum(dV, nd->grad, in_val(g, nd, 0), N, G, D);
}

static void dot_groups_tangent(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, G, D;
    groups_dims(g, nd, &N, &G, &D);
    const float *tX = in_tval(g, nd, 0), *tV = in_tval(g, nd, 1);
    bool add = false;
    if (tX) {
        dotg(nd->tval, false, tX, in_val(g, nd, 1), N, G, D);
        add = true;
    }
    if (tV) dotg(nd->tval, add, in_val(g, nd, 0), tV, N, G, D);
}

/* R{dx}[n,g,:] += R{dy} v + dy R{v};  R{dv} += sum_g R{dy} x + dy R{x} */
static void dot_groups_rback(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, G, D;
    groups_dims(g, nd, &N, &G, &D);
    const float *tX = in_tval(g, nd, 0), *tV = in_tval(g, nd, 1);
    float *tdX = in_tgrad(g, nd, 0), *tdV = in_tgrad(g, nd, 1);
    if (tdX) {
        outerg(tdX, nd->tgrad, in_val(g, nd, 1), N, G, D);
        if (tV) outerg(tdX, nd->grad, tV, N, G, D);
    }
    if (tdV) {
        outer_sum(tdV, nd->tgrad, in_val(g, nd, 0), N, G, D);
        if (tX) outer_sum(tdV, nd->grad, tX, N, G, D);
    }
}

const struct sk_op_hvp sk_hvp_dot_groups = { dot_groups_tangent, dot_groups_rback, NULL };

/* ---------------- the upper slope of a ReLU's relaxation ----------------
 * s = u+ / (u+ + l-) with u+ = max(u,0), l- = max(-l,0) (0 when both are 0):
 * the chord through (l,0) and (u,u) of an unstable ReLU, 1 when l >= 0,
 * 0 when u <= 0. ds/du = [u>0] l- / den^2, ds/dl = [l<0] u+ / den^2.
 * Its intercept is l- s. */

int sk_op_relu_upper_slope(struct sk_graph *g, int l, int u)
{
    const char *name = "sk_op_relu_upper_slope";
    int rc = sk_node_check(g, l, name, "l");
    if (!rc) rc = sk_node_check(g, u, name, "u");
    if (rc) return rc;
    struct sk_node *L = node_at(g, l), *U = node_at(g, u);
    if (L->n != U->n) return sk_error(SK_EINVAL, "%s: l has %zu values, u %zu", name, L->n, U->n);
    int shape[4];
    memcpy(shape, U->shape, sizeof shape);
    return sk_node_run(g, sk_node_new(g, OP_RELU_SLOPE, U->ndim, shape, l, u, -1));
}

void sk_relu_slope_forward(struct sk_graph *g, struct sk_node *nd)
{
    const float *L = in_val(g, nd, 0), *U = in_val(g, nd, 1);
#pragma omp parallel for schedule(static) if (nd->n > 65536)
    for (size_t i = 0; i < nd->n; i++) {
        float up = U[i] > 0 ? U[i] : 0.0f, lm = L[i] < 0 ? -L[i] : 0.0f, den = up + lm;
        nd->val[i] = den > 0 ? up / den : 0.0f;
    }
}

void sk_relu_slope_backward(struct sk_graph *g, struct sk_node *nd)
{
    const float *L = in_val(g, nd, 0), *U = in_val(g, nd, 1);
    float *dL = in_grad(g, nd, 0), *dU = in_grad(g, nd, 1);
    for (size_t i = 0; i < nd->n; i++) {
        float up = U[i] > 0 ? U[i] : 0.0f, lm = L[i] < 0 ? -L[i] : 0.0f, den = up + lm;
        if (!(up > 0 && lm > 0)) continue; /* s is locally constant (0 or 1) */
        float q = nd->grad[i] / (den * den);
        if (dU) dU[i] += q * lm;
        if (dL) dL[i] += q * up;
    }
}
