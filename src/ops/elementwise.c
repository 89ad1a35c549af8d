/* Element-wise activations, arithmetic and scalar reductions. */
#include "graph/graph_impl.h"

#include <math.h>
#include <string.h>

static int unary(struct sk_graph *g, int x, int op, const char *name)
{
    int rc = sk_node_check(g, x, name, "x");
    if (rc) return rc;
    struct sk_node *in = node_at(g, x);
    int shape[4];
    memcpy(shape, in->shape, sizeof shape);
    return sk_node_new(g, op, in->ndim, shape, x, -1, -1);
}

/* Kernel sk_<k>_forward: y = expr(v) element-wise; and its constructor. */
#define UNARY_OP(cname, k, OPID, expr)                                           \
    void sk_##k##_forward(struct sk_graph *g, struct sk_node *nd)                \
    {                                                                            \
        const float *X = in_val(g, nd, 0);                                       \
        float *Y = nd->val;                                                      \
        size_t n = nd->n;                                                        \
        _Pragma("omp parallel for if(n > SK_PAR_MIN) schedule(static)")          \
        for (size_t i = 0; i < n; i++) {                                         \
            float v = X[i];                                                      \
            Y[i] = (expr);                                                       \
        }                                                                        \
    }                                                                            \
    int cname(struct sk_graph *g, int x) { return sk_node_run(g, unary(g, x, OPID, #cname)); }

static inline float softplusf(float v) { return v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)); }
static inline float sigmoidf(float v)
{
    if (v >= 0) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}

UNARY_OP(sk_op_relu, relu, OP_RELU, v > 0 ? v : 0.0f)
UNARY_OP(sk_op_tanh, tanh, OP_TANH, tanhf(v))
UNARY_OP(sk_op_sigmoid, sigmoid, OP_SIGMOID, sigmoidf(v))
UNARY_OP(sk_op_softplus, softplus, OP_SOFTPLUS, softplusf(v))
UNARY_OP(sk_op_gelu, gelu, OP_GELU, 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)))
UNARY_OP(sk_op_step, step, OP_STEP, v > 0 ? 1.0f : 0.0f)

/* farg[0] = alpha */
void sk_lrelu_forward(struct sk_graph *g, struct sk_node *nd)
{
    const float *X = in_val(g, nd, 0);
    float alpha = nd->farg[0];
    for (size_t i = 0; i < nd->n; i++) nd->val[i] = X[i] > 0 ? X[i] : alpha * X[i];
}

int sk_op_leaky_relu(struct sk_graph *g, int x, float alpha)
{
    int id = unary(g, x, OP_LRELU, "sk_op_leaky_relu");
    if (id >= 0) node_at(g, id)->farg[0] = alpha;
    return sk_node_run(g, id);
}

/* farg[0] = alpha */
void sk_scale_forward(struct sk_graph *g, struct sk_node *nd)
{
    const float *X = in_val(g, nd, 0);
    float alpha = nd->farg[0];
    for (size_t i = 0; i < nd->n; i++) nd->val[i] = alpha * X[i];
}

int sk_op_scale(struct sk_graph *g, int x, float alpha)
{
    int id = unary(g, x, OP_SCALE, "sk_op_scale");
    if (id >= 0) node_at(g, id)->farg[0] = alpha;
    return sk_node_run(g, id);
}

/* cptr[0] = shift, cptr[1] = scale (D floats each, borrowed) */
void sk_affine_cols_forward(struct sk_graph *g, struct sk_node *nd)
{
    const float *shift = nd->cptr[0], *scale = nd->cptr[1];
    size_t N = (size_t)(nd->shape[0] > 0 ? nd->shape[0] : 1), D = nd->n / N;
    const float *X = in_val(g, nd, 0);
    float *Y = nd->val;
    /* the same float expression as sk_preprocess_apply: same bits as data
     * transformed up front */
#pragma omp parallel for if (nd->n > SK_PAR_MIN) schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t j = 0; j < D; j++) Y[r * D + j] = (X[r * D + j] - shift[j]) * scale[j];
}

int sk_op_affine_cols(struct sk_graph *g, int x, const float *shift, const float *scale)
{
    int id = unary(g, x, OP_AFFINE_COLS, "sk_op_affine_cols");
    if (id >= 0) {
        node_at(g, id)->cptr[0] = shift;
        node_at(g, id)->cptr[1] = scale;
    }
    return sk_node_run(g, id);
}

void sk_affine_cols_backward(struct sk_graph *g, struct sk_node *nd)
{
    bool ow;
    float *dX = in_grad_w(g, nd, 0, &ow);
    if (!dX) return;
    const float *scale = nd->cptr[1], *dY = nd->grad;
    size_t N = (size_t)(nd->shape[0] > 0 ? nd->shape[0] : 1), D = nd->n / N;
#pragma omp parallel for if (nd->n > SK_PAR_MIN) schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t j = 0; j < D; j++) dX[r * D + j] = (ow ? 0.0f : dX[r * D + j]) + dY[r * D + j] * scale[j];
}

/* Backward of the unary ops: dx += dy * f'(x), f' written with x and y
 * (dx = ... when dx has no contribution yet: see in_grad_w). */
#define UNARY_BACKWARD(bname, expr)                                              \
    void bname(struct sk_graph *g, struct sk_node *nd)                           \
    {                                                                            \
        bool ow;                                                                 \
        float *dX = in_grad_w(g, nd, 0, &ow);                                    \
        if (!dX) return;                                                         \
        const float *X = in_val(g, nd, 0), *Y = nd->val, *dY = nd->grad;         \
        float alpha = nd->farg[0];                                               \
        (void)alpha; (void)Y;                                                    \
        size_t n = nd->n;                                                        \
        if (ow) {                                                                \
            _Pragma("omp parallel for if(n > SK_PAR_MIN) schedule(static)")      \
            for (size_t i = 0; i < n; i++) {                                     \
                float v = X[i], y = Y[i];                                        \
                (void)v; (void)y;                                                \
                dX[i] = dY[i] * (expr);                                          \
            }                                                                    \
        } else {                                                                 \
            _Pragma("omp parallel for if(n > SK_PAR_MIN) schedule(static)")      \
            for (size_t i = 0; i < n; i++) {                                     \
                float v = X[i], y = Y[i];                                        \
                (void)v; (void)y;                                                \
                dX[i] += dY[i] * (expr);                                         \
            }                                                                    \
        }                                                                        \
    }

UNARY_BACKWARD(sk_relu_backward, v > 0 ? 1.0f : 0.0f)
UNARY_BACKWARD(sk_lrelu_backward, v > 0 ? 1.0f : alpha)
UNARY_BACKWARD(sk_tanh_backward, 1.0f - y * y)
UNARY_BACKWARD(sk_sigmoid_backward, y * (1.0f - y))
UNARY_BACKWARD(sk_softplus_backward, sigmoidf(v))
UNARY_BACKWARD(sk_gelu_backward,
               0.5f * (1.0f + erff(v * 0.70710678118654752f)) +
                   v * 0.39894228040143268f * expf(-0.5f * v * v))
UNARY_BACKWARD(sk_scale_backward, alpha)

/* ---- binary element-wise ---- */
static int binary(struct sk_graph *g, int a, int b, int op, const char *name)
{
    int rc = sk_node_check(g, a, name, "a");
    if (!rc) rc = sk_node_check(g, b, name, "b");
    if (rc) return rc;
    struct sk_node *A = node_at(g, a), *B = node_at(g, b);
    if (A->n != B->n || A->ndim != B->ndim || memcmp(A->shape, B->shape, sizeof A->shape) != 0)
        return sk_error(SK_EINVAL, "%s: shapes differ ([%d,%d,%d,%d] vs [%d,%d,%d,%d])", name,
                        A->shape[0], A->shape[1], A->shape[2], A->shape[3], B->shape[0],
                        B->shape[1], B->shape[2], B->shape[3]);
    int shape[4];
    memcpy(shape, A->shape, sizeof shape);
    return sk_node_run(g, sk_node_new(g, op, A->ndim, shape, a, b, -1));
}

/* Kernels sk_<k>_forward: z = a OP b; sk_<k>_backward: da += da_expr,
 * db += db_expr with d = dz (one pass for both: a and b may be one node). */
#define BINARY_OP(k, OP, da_expr, db_expr)                                       \
    void sk_##k##_forward(struct sk_graph *g, struct sk_node *nd)                \
    {                                                                            \
        const float *X = in_val(g, nd, 0), *Y = in_val(g, nd, 1);                \
        float *Z = nd->val;                                                      \
        for (size_t i = 0; i < nd->n; i++) Z[i] = X[i] OP Y[i];                  \
    }                                                                            \
    void sk_##k##_backward(struct sk_graph *g, struct sk_node *nd)               \
    {                                                                            \
        float *dA = in_grad(g, nd, 0), *dB = in_grad(g, nd, 1);                  \
        const float *A = in_val(g, nd, 0), *B = in_val(g, nd, 1), *dY = nd->grad; \
        (void)A; (void)B;                                                        \
        for (size_t i = 0; i < nd->n; i++) {                                     \
            float d = dY[i];                                                     \
            if (dA) dA[i] += da_expr;                                            \
            if (dB) dB[i] += db_expr;                                            \
        }                                                                        \
    }

BINARY_OP(add, +, d, d)
BINARY_OP(sub, -, d, -d) /* x + (-d) is x - d exactly (IEEE 754) */
BINARY_OP(mul, *, d * B[i], d * A[i])

int sk_op_add(struct sk_graph *g, int a, int b) { return binary(g, a, b, OP_ADD, "sk_op_add"); }
int sk_op_sub(struct sk_graph *g, int a, int b) { return binary(g, a, b, OP_SUB, "sk_op_sub"); }
int sk_op_mul(struct sk_graph *g, int a, int b) { return binary(g, a, b, OP_MUL, "sk_op_mul"); }

/* ---- reductions ---- */
static int reduce(struct sk_graph *g, int x, int op, const char *name)
{
    int rc = sk_node_check(g, x, name, "x");
    if (rc) return rc;
    int one = 1;
    return sk_node_run(g, sk_node_new(g, op, 1, &one, x, -1, -1));
}

static void reduce_forward(struct sk_graph *g, struct sk_node *nd, bool mean)
{
    struct sk_node *in = node_at(g, nd->in[0]);
    double s = 0;
    for (size_t i = 0; i < in->n; i++) s += in->val[i];
    nd->val[0] = (float)(mean ? s / (double)in->n : s);
}

static void reduce_backward(struct sk_graph *g, struct sk_node *nd, bool mean)
{
    float *dX = in_grad(g, nd, 0);
    if (!dX) return;
    size_t n = node_at(g, nd->in[0])->n;
    float d = nd->grad[0];
    if (mean) d /= (float)n;
    for (size_t i = 0; i < n; i++) dX[i] += d;
}

void sk_sum_forward(struct sk_graph *g, struct sk_node *nd) { reduce_forward(g, nd, false); }
void sk_mean_forward(struct sk_graph *g, struct sk_node *nd) { reduce_forward(g, nd, true); }
void sk_sum_backward(struct sk_graph *g, struct sk_node *nd) { reduce_backward(g, nd, false); }
void sk_mean_backward(struct sk_graph *g, struct sk_node *nd) { reduce_backward(g, nd, true); }

int sk_op_sum(struct sk_graph *g, int x) { return reduce(g, x, OP_SUM, "sk_op_sum"); }
int sk_op_mean(struct sk_graph *g, int x) { return reduce(g, x, OP_MEAN, "sk_op_mean"); }

/* ---- softmax / log-softmax over the last dim of [N,K] ---- */
static int rowwise(struct sk_graph *g, int x, int op, const char *name)
{
    int rc = sk_node_check(g, x, name, "x");
    if (rc) return rc;
    struct sk_node *in = node_at(g, x);
    if (in->ndim != 2) return sk_error(SK_EINVAL, "%s: x must be [N,K], got %d dims", name, in->ndim);
    int shape[2] = { in->shape[0], in->shape[1] };
    return sk_node_run(g, sk_node_new(g, op, 2, shape, x, -1, -1));
}

static void rowwise_forward(struct sk_graph *g, struct sk_node *nd, bool log_out)
{
    const float *X = in_val(g, nd, 0);
    int N = nd->shape[0], K = nd->shape[1];
    for (int i = 0; i < N; i++) {
        const float *r = X + (size_t)i * K;
        float *y = nd->val + (size_t)i * K;
        float m = r[0];
        for (int k = 1; k < K; k++) m = r[k] > m ? r[k] : m;
        double s = 0;
        for (int k = 0; k < K; k++) s += exp((double)r[k] - m);
        float ls = (float)log(s);
        for (int k = 0; k < K; k++) y[k] = log_out ? r[k] - m - ls : (float)(exp((double)r[k] - m) / s);
    }
}

void sk_softmax_forward(struct sk_graph *g, struct sk_node *nd) { rowwise_forward(g, nd, false); }
void sk_log_softmax_forward(struct sk_graph *g, struct sk_node *nd) { rowwise_forward(g, nd, true); }

int sk_op_softmax(struct sk_graph *g, int x) { return rowwise(g, x, OP_SOFTMAX, "sk_op_softmax"); }
int sk_op_log_softmax(struct sk_graph *g, int x)
{
    return rowwise(g, x, OP_LOGSOFTMAX, "sk_op_log_softmax");
}

/* dx = y * (dy - <dy, y>) */
void sk_softmax_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dX = in_grad(g, nd, 0);
    if (!dX) return;
    int N = nd->shape[0], K = nd->shape[1];
    for (int i = 0; i < N; i++) {
        const float *y = nd->val + (size_t)i * K, *dy = nd->grad + (size_t)i * K;
        float *dx = dX + (size_t)i * K;
        double dot = 0;
        for (int k = 0; k < K; k++) dot += (double)dy[k] * y[k];
        for (int k = 0; k < K; k++) dx[k] += y[k] * (dy[k] - (float)dot);
    }
}

/* dx = dy - softmax * sum(dy) */
void sk_log_softmax_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dX = in_grad(g, nd, 0);
    if (!dX) return;
    int N = nd->shape[0], K = nd->shape[1];
    for (int i = 0; i < N; i++) {
        const float *y = nd->val + (size_t)i * K, *dy = nd->grad + (size_t)i * K;
        float *dx = dX + (size_t)i * K;
        double s = 0;
        for (int k = 0; k < K; k++) s += dy[k];
        for (int k = 0; k < K; k++) dx[k] += dy[k] - expf(y[k]) * (float)s;
    }
}

/* ---- second order (R-operator; see struct sk_op_hvp) ----
 * A unary y = f(x): R{y} = f'(x) R{x};  R{dx} += f'(x) R{dy} + f''(x) dy R{x}.
 * d1, d2 are f' and f'' written with v = x, y and alpha. */
#define UNARY_HVP(k, d1, d2)                                                     \
    static void k##_tangent(struct sk_graph *g, struct sk_node *nd)              \
    {                                                                            \
        const float *X = in_val(g, nd, 0), *Y = nd->val, *T = in_tval(g, nd, 0); \
        float alpha = nd->farg[0], *tY = nd->tval;                               \
        (void)alpha; (void)Y;                                                    \
        size_t n = nd->n;                                                        \
        _Pragma("omp parallel for if(n > SK_PAR_MIN) schedule(static)")          \
        for (size_t i = 0; i < n; i++) {                                         \
            float v = X[i], y = Y[i];                                            \
            (void)v; (void)y;                                                    \
            tY[i] = T[i] * (d1);                                                 \
        }                                                                        \
    }                                                                            \
    static void k##_rback(struct sk_graph *g, struct sk_node *nd)                \
    {                                                                            \
        float *tdX = in_tgrad(g, nd, 0);                                         \
        if (!tdX) return;                                                        \
        const float *X = in_val(g, nd, 0), *Y = nd->val, *T = in_tval(g, nd, 0); \
        const float *dY = nd->grad, *tdY = nd->tgrad;                            \
        float alpha = nd->farg[0];                                               \
        (void)alpha; (void)Y;                                                    \
        size_t n = nd->n;                                                        \
        _Pragma("omp parallel for if(n > SK_PAR_MIN) schedule(static)")          \
        for (size_t i = 0; i < n; i++) {                                         \
            float v = X[i], y = Y[i];                                            \
            (void)v; (void)y;                                                    \
            tdX[i] += tdY[i] * (d1) + (T ? dY[i] * T[i] * (d2) : 0.0f);          \
        }                                                                        \
    }                                                                            \
    const struct sk_op_hvp sk_hvp_##k = { k##_tangent, k##_rback, NULL };

static inline float gelu_pdf(float v) { return 0.39894228040143268f * expf(-0.5f * v * v); }

UNARY_HVP(relu, v > 0 ? 1.0f : 0.0f, 0.0f)
UNARY_HVP(lrelu, v > 0 ? 1.0f : alpha, 0.0f)
UNARY_HVP(scale, alpha, 0.0f)
UNARY_HVP(tanh, 1.0f - y * y, -2.0f * y * (1.0f - y * y))
UNARY_HVP(sigmoid, y * (1.0f - y), y * (1.0f - y) * (1.0f - 2.0f * y))
UNARY_HVP(softplus, sigmoidf(v), sigmoidf(v) * (1.0f - sigmoidf(v)))
UNARY_HVP(gelu, 0.5f * (1.0f + erff(v * 0.70710678118654752f)) + v * gelu_pdf(v), gelu_pdf(v) * (2.0f - v * v))

/* Linear with constant per-column scale: R{y} = R{x} scale, R{dx} += R{dy} scale. */
static void affine_cols_tangent(struct sk_graph *g, struct sk_node *nd)
{
    const float *scale = nd->cptr[1], *T = in_tval(g, nd, 0);
    size_t N = (size_t)(nd->shape[0] > 0 ? nd->shape[0] : 1), D = nd->n / N;
#pragma omp parallel for if (nd->n > SK_PAR_MIN) schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t j = 0; j < D; j++) nd->tval[r * D + j] = T[r * D + j] * scale[j];
}

static void affine_cols_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdX = in_tgrad(g, nd, 0);
    if (!tdX) return;
    const float *scale = nd->cptr[1], *tdY = nd->tgrad;
    size_t N = (size_t)(nd->shape[0] > 0 ? nd->shape[0] : 1), D = nd->n / N;
#pragma omp parallel for if (nd->n > SK_PAR_MIN) schedule(static)
    for (size_t r = 0; r < N; r++)
        for (size_t j = 0; j < D; j++) tdX[r * D + j] += tdY[r * D + j] * scale[j];
}
const struct sk_op_hvp sk_hvp_affine_cols = { affine_cols_tangent, affine_cols_rback, NULL };

/* Binary: add/sub R{z} = R{a} +- R{b}; mul R{z} = R{a} b + a R{b},
 * R{da} += R{dz} b + dz R{b}, R{db} += R{dz} a + dz R{a}. */
static void binary_tangent(struct sk_graph *g, struct sk_node *nd, float sb, bool mul)
{
    const float *A = in_val(g, nd, 0), *B = in_val(g, nd, 1);
    const float *tA = in_tval(g, nd, 0), *tB = in_tval(g, nd, 1);
    for (size_t i = 0; i < nd->n; i++) {
        float ta = tA ? tA[i] : 0.0f, tb = tB ? tB[i] : 0.0f;
        nd->tval[i] = mul ? ta * B[i] + A[i] * tb : ta + sb * tb;
    }
}

static void binary_rback(struct sk_graph *g, struct sk_node *nd, float sb, bool mul)
{
    float *tdA = in_tgrad(g, nd, 0), *tdB = in_tgrad(g, nd, 1);
    const float *A = in_val(g, nd, 0), *B = in_val(g, nd, 1);
    const float *tA = in_tval(g, nd, 0), *tB = in_tval(g, nd, 1), *dY = nd->grad, *tdY = nd->tgrad;
    for (size_t i = 0; i < nd->n; i++) {
        if (!mul) {
            if (tdA) tdA[i] += tdY[i];
            if (tdB) tdB[i] += sb * tdY[i];
            continue;
        }
        if (tdA) tdA[i] += tdY[i] * B[i] + (tB ? dY[i] * tB[i] : 0.0f);
        if (tdB) tdB[i] += tdY[i] * A[i] + (tA ? dY[i] * tA[i] : 0.0f);
    }
}

static void add_tangent(struct sk_graph *g, struct sk_node *nd) { binary_tangent(g, nd, 1.0f, false); }
static void add_rback(struct sk_graph *g, struct sk_node *nd) { binary_rback(g, nd, 1.0f, false); }
static void sub_tangent(struct sk_graph *g, struct sk_node *nd) { binary_tangent(g, nd, -1.0f, false); }
static void sub_rback(struct sk_graph *g, struct sk_node *nd) { binary_rback(g, nd, -1.0f, false); }
static void mul_tangent(struct sk_graph *g, struct sk_node *nd) { binary_tangent(g, nd, 0.0f, true); }
static void mul_rback(struct sk_graph *g, struct sk_node *nd) { binary_rback(g, nd, 0.0f, true); }
const struct sk_op_hvp sk_hvp_add = { add_tangent, add_rback, NULL };
const struct sk_op_hvp sk_hvp_sub = { sub_tangent, sub_rback, NULL };
const struct sk_op_hvp sk_hvp_mul = { mul_tangent, mul_rback, NULL };

/* Reductions are linear: R{y} = sum R{x} (/n); R{dx} += R{dy} (/n). */
static void reduce_tangent(struct sk_graph *g, struct sk_node *nd, bool mean)
{
    size_t n = node_at(g, nd->in[0])->n;
    const float *T = in_tval(g, nd, 0);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += T[i];
    nd->tval[0] = (float)(mean ? s / (double)n : s);
}

static void reduce_rback(struct sk_graph *g, struct sk_node *nd, bool mean)
{
    float *tdX = in_tgrad(g, nd, 0);
    if (!tdX) return;
    size_t n = node_at(g, nd->in[0])->n;
    float d = nd->tgrad[0];
    if (mean) d /= (float)n;
    for (size_t i = 0; i < n; i++) tdX[i] += d;
}

static void sum_tangent(struct sk_graph *g, struct sk_node *nd) { reduce_tangent(g, nd, false); }
static void sum_rback(struct sk_graph *g, struct sk_node *nd) { reduce_rback(g, nd, false); }
static void mean_tangent(struct sk_graph *g, struct sk_node *nd) { reduce_tangent(g, nd, true); }
static void mean_rback(struct sk_graph *g, struct sk_node *nd) { reduce_rback(g, nd, true); }
const struct sk_op_hvp sk_hvp_sum = { sum_tangent, sum_rback, NULL };
const struct sk_op_hvp sk_hvp_mean = { mean_tangent, mean_rback, NULL };

/* Row-wise, p = softmax(x):
 *   softmax:     R{y} = y (R{x} - <y, R{x}>);
 *                R{dx} += R{y} (dy - <dy, y>) + y (R{dy} - <R{dy}, y> - <dy, R{y}>)
 *   log-softmax: R{y} = R{x} - <p, R{x}>;
 *                R{dx} += R{dy} - p sum R{dy} - p R{y} sum dy */
static void rowwise_tangent(struct sk_graph *g, struct sk_node *nd, bool log_out)
{
    const float *T = in_tval(g, nd, 0);
    int N = nd->shape[0], K = nd->shape[1];
    for (int i = 0; i < N; i++) {
        const float *y = nd->val + (size_t)i * K, *t = T + (size_t)i * K;
        float *ty = nd->tval + (size_t)i * K;
        double dot = 0;
        for (int k = 0; k < K; k++) dot += (double)(log_out ? expf(y[k]) : y[k]) * t[k];
        for (int k = 0; k < K; k++) ty[k] = log_out ? t[k] - (float)dot : y[k] * (t[k] - (float)dot);
    }
}

static void rowwise_rback(struct sk_graph *g, struct sk_node *nd, bool log_out)
{
    float *tdX = in_tgrad(g, nd, 0);
    if (!tdX) return;
    const float *TY = nd->tval; /* NULL: no direction reaches x */
    int N = nd->shape[0], K = nd->shape[1];
    for (int i = 0; i < N; i++) {
        size_t o = (size_t)i * K;
        const float *y = nd->val + o, *dy = nd->grad + o, *tdy = nd->tgrad + o, *ty = TY ? TY + o : NULL;
        float *tdx = tdX + o;
        double a = 0, b = 0, c = 0; /* softmax: <dy,y>, <tdy,y>, <dy,ty>; log: sum dy, sum tdy */
        for (int k = 0; k < K; k++) {
            if (log_out) {
                a += dy[k];
                b += tdy[k];
            } else {
                a += (double)dy[k] * y[k];
                b += (double)tdy[k] * y[k];
                if (ty) c += (double)dy[k] * ty[k];
            }
        }
        for (int k = 0; k < K; k++) {
            if (log_out) {
                float p = expf(y[k]);
                tdx[k] += tdy[k] - p * (float)b - (ty ? p * ty[k] * (float)a : 0.0f);
            } else {
                tdx[k] += (ty ? ty[k] * (dy[k] - (float)a) : 0.0f) + y[k] * (tdy[k] - (float)b - (float)c);
            }
        }
    }
}

static void softmax_tangent(struct sk_graph *g, struct sk_node *nd) { rowwise_tangent(g, nd, false); }
static void softmax_rback(struct sk_graph *g, struct sk_node *nd) { rowwise_rback(g, nd, false); }
static void log_softmax_tangent(struct sk_graph *g, struct sk_node *nd) { rowwise_tangent(g, nd, true); }
static void log_softmax_rback(struct sk_graph *g, struct sk_node *nd) { rowwise_rback(g, nd, true); }
const struct sk_op_hvp sk_hvp_softmax = { softmax_tangent, softmax_rback, NULL };
const struct sk_op_hvp sk_hvp_log_softmax = { log_softmax_tangent, log_softmax_rback, NULL };
