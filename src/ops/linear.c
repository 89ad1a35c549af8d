/* Dense and conv2d (im2col + one sgemm over the whole batch), flatten, and
 * the naive conv twin that tests compare against. */
#include "graph/graph_impl.h"

#include <string.h>

int sk_op_dense(struct sk_graph *g, int x, int W, int b)
{
    int rc = sk_node_check(g, x, "sk_op_dense", "x");
    if (!rc) rc = sk_node_check(g, W, "sk_op_dense", "W");
    if (!rc && b >= 0) rc = sk_node_check(g, b, "sk_op_dense", "b");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x), *Wn = node_at(g, W);
    int N = X->shape[0], D = (int)(X->n / (size_t)N);
    if (Wn->ndim != 2 || Wn->shape[1] != D)
        return sk_error(SK_EINVAL, "sk_op_dense: x has %d features per row but W is [%d,%d]", D,
                        Wn->shape[0], Wn->shape[1]);
    int O = Wn->shape[0];
    if (b >= 0 && node_at(g, b)->n != (size_t)O)
        return sk_error(SK_EINVAL, "sk_op_dense: bias has %zu elements, W has %d rows", node_at(g, b)->n, O);
    int shape[2] = { N, O };
    int id = sk_node_new(g, OP_DENSE, 2, shape, x, W, b);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    float *Y = nd->val;
    if (b >= 0) {
        const float *B = in_val(g, nd, 2);
        for (int i = 0; i < N; i++) memcpy(Y + (size_t)i * O, B, sizeof(float) * (size_t)O);
    }
    sk_sgemm(false, true, N, O, D, 1.0f, in_val(g, nd, 0), D, in_val(g, nd, 1), D, b >= 0 ? 1.0f : 0.0f,
             Y, O);
    return id;
}

void sk_dense_backward(struct sk_graph *g, struct sk_node *nd)
{
    int N = nd->shape[0], O = nd->shape[1];
    int D = node_at(g, nd->in[1])->shape[1];
    const float *dY = nd->grad;
    float *dX = in_grad(g, nd, 0), *dW = in_grad(g, nd, 1), *dB = in_grad(g, nd, 2);
    if (dX) sk_sgemm(false, false, N, D, O, 1.0f, dY, O, in_val(g, nd, 1), D, 1.0f, dX, D);
    if (dW) sk_sgemm(true, false, O, D, N, 1.0f, dY, O, in_val(g, nd, 0), D, 1.0f, dW, D);
    if (dB)
        for (int i = 0; i < N; i++)
            for (int o = 0; o < O; o++) dB[o] += dY[(size_t)i * O + o];
}

/* col[(n*OH*OW + oh*OW + ow), (c*KH + kh)*KW + kw] = x[n, c, oh*s - p + kh, ow*s - p + kw] */
static void im2col(float *col, const float *x, int N, int C, int H, int Wd, int KH, int KW, int s,
                   int p, int OH, int OW)
{
    int CKK = C * KH * KW;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C * H * Wd;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *row = col + ((size_t)n * OH * OW + (size_t)oh * OW + ow) * CKK;
                for (int c = 0; c < C; c++)
                    for (int kh = 0; kh < KH; kh++) {
                        int ih = oh * s - p + kh;
                        float *dst = row + (c * KH + kh) * KW;
                        if (ih < 0 || ih >= H) {
                            for (int kw = 0; kw < KW; kw++) dst[kw] = 0;
                            continue;
                        }
                        const float *src = xn + ((size_t)c * H + ih) * Wd;
                        for (int kw = 0; kw < KW; kw++) {
                            int iw = ow * s - p + kw;
                            dst[kw] = (iw >= 0 && iw < Wd) ? src[iw] : 0.0f;
                        }
                    }
            }
    }
}

static void col2im_add(float *dx, const float *dcol, int N, int C, int H, int Wd, int KH, int KW,
                       int s, int p, int OH, int OW)
{
    int CKK = C * KH * KW;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *dxn = dx + (size_t)n * C * H * Wd;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *row = dcol + ((size_t)n * OH * OW + (size_t)oh * OW + ow) * CKK;
                for (int c = 0; c < C; c++)
                    for (int kh = 0; kh < KH; kh++) {
                        int ih = oh * s - p + kh;
                        if (ih < 0 || ih >= H) continue;
                        const float *src = row + (c * KH + kh) * KW;
                        float *dst = dxn + ((size_t)c * H + ih) * Wd;
                        for (int kw = 0; kw < KW; kw++) {
                            int iw = ow * s - p + kw;
                            if (iw >= 0 && iw < Wd) dst[iw] += src[kw];
                        }
                    }
            }
    }
}

void sk_conv2d_forward(float *y, float *col, float *yt, const float *x, const float *W, const float *b,
                       int N, int C, int H, int Wd, int OC, int KH, int KW, int stride, int pad)
{
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    int CKK = C * KH * KW, P = OH * OW;
    im2col(col, x, N, C, H, Wd, KH, KW, stride, pad, OH, OW);
    /* yt[(n,p), oc] = sum_k col[(n,p), k] W[oc, k] */
    sk_sgemm(false, true, N * P, OC, CKK, 1.0f, col, CKK, W, CKK, 0.0f, yt, OC);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++) {
            float bias = b ? b[oc] : 0.0f;
            float *dst = y + ((size_t)n * OC + oc) * P;
            const float *src = yt + (size_t)n * P * OC + oc;
            for (int q = 0; q < P; q++) dst[q] = src[(size_t)q * OC] + bias;
        }
}

void sk_conv2d_backward(float *dx, float *dW, float *db, float *dcol, float *dyt, const float *dy,
                        const float *col, const float *W, int N, int C, int H, int Wd, int OC,
                        int KH, int KW, int stride, int pad)
{
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    int CKK = C * KH * KW, P = OH * OW;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++) {
            const float *src = dy + ((size_t)n * OC + oc) * P;
            float *dst = dyt + (size_t)n * P * OC + oc;
            for (int q = 0; q < P; q++) dst[(size_t)q * OC] = src[q];
        }
    if (dW) sk_sgemm(true, false, OC, CKK, N * P, 1.0f, dyt, OC, col, CKK, 1.0f, dW, CKK);
    if (db)
        for (int n = 0; n < N; n++)
            for (int oc = 0; oc < OC; oc++) {
                const float *src = dy + ((size_t)n * OC + oc) * P;
                double s = 0;
                for (int q = 0; q < P; q++) s += src[q];
                db[oc] += (float)s;
            }
    if (dx) {
        sk_sgemm(false, false, N * P, CKK, OC, 1.0f, dyt, OC, W, CKK, 0.0f, dcol, CKK);
        col2im_add(dx, dcol, N, C, H, Wd, KH, KW, stride, pad, OH, OW);
    }
}

void sk_conv2d_forward_ref(float *y, const float *x, const float *W, const float *b, int N, int C,
                           int H, int Wd, int OC, int KH, int KW, int stride, int pad)
{
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = b ? b[oc] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                                s += (double)x[(((size_t)n * C + c) * H + ih) * Wd + iw] *
                                     W[(((size_t)oc * C + c) * KH + kh) * KW + kw];
                            }
                    y[(((size_t)n * OC + oc) * OH + oh) * OW + ow] = (float)s;
                }
}

void sk_conv2d_backward_ref(float *dx, float *dW, float *db, const float *dy, const float *x,
                            const float *W, int N, int C, int H, int Wd, int OC, int KH, int KW,
                            int stride, int pad)
{
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float d = dy[(((size_t)n * OC + oc) * OH + oh) * OW + ow];
                    if (db) db[oc] += d;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                                size_t xi = (((size_t)n * C + c) * H + ih) * Wd + iw;
                                size_t wi = (((size_t)oc * C + c) * KH + kh) * KW + kw;
                                if (dx) dx[xi] += d * W[wi];
                                if (dW) dW[wi] += d * x[xi];
                            }
                }
}

int sk_op_conv2d(struct sk_graph *g, int x, int W, int b, int stride, int pad)
{
    int rc = sk_node_check(g, x, "sk_op_conv2d", "x");
    if (!rc) rc = sk_node_check(g, W, "sk_op_conv2d", "W");
    if (!rc && b >= 0) rc = sk_node_check(g, b, "sk_op_conv2d", "b");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x), *Wn = node_at(g, W);
    if (X->ndim != 4 || Wn->ndim != 4)
        return sk_error(SK_EINVAL, "sk_op_conv2d: x and W must be 4-D (x has %d dims, W %d)", X->ndim,
                        Wn->ndim);
    int N = X->shape[0], C = X->shape[1], H = X->shape[2], Wd = X->shape[3];
    int OC = Wn->shape[0], KH = Wn->shape[2], KW = Wn->shape[3];
    if (Wn->shape[1] != C)
        return sk_error(SK_EINVAL, "sk_op_conv2d: x has %d channels, W expects %d", C, Wn->shape[1]);
    if (stride < 1 || pad < 0)
        return sk_error(SK_EINVAL, "sk_op_conv2d: stride %d / padding %d invalid", stride, pad);
    if (H + 2 * pad < KH || Wd + 2 * pad < KW)
        return sk_error(SK_EINVAL, "sk_op_conv2d: %dx%d kernel larger than padded %dx%d input", KH, KW,
                        H + 2 * pad, Wd + 2 * pad);
    if (b >= 0 && node_at(g, b)->n != (size_t)OC)
        return sk_error(SK_EINVAL, "sk_op_conv2d: bias has %zu elements for %d channels", node_at(g, b)->n, OC);
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    int shape[4] = { N, OC, OH, OW };
    int id = sk_node_new(g, OP_CONV2D, 4, shape, x, W, b);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    nd->iarg[0] = stride;
    nd->iarg[1] = pad;
    size_t ncol = (size_t)N * OH * OW * C * KH * KW;
    float *col = sk_arena_alloc(g->arena, ncol * sizeof(float));
    /* The transposed output is scratch; its memory is reused by backward. */
    float *yt = sk_arena_alloc(g->arena, (size_t)N * OH * OW * OC * sizeof(float));
    X = node_at(g, x); /* the node array may have moved */
    /* dcol (size of col) is reserved now so that backward cannot fail. */
    float *dcol = X->needs_grad ? sk_arena_alloc(g->arena, ncol * sizeof(float)) : NULL;
    if (!col || !yt || (X->needs_grad && !dcol)) return SK_ENOMEM;
    nd->saved = col;
    nd->saved2 = yt;
    nd->saved3 = dcol;
    sk_conv2d_forward(nd->val, col, yt, in_val(g, nd, 0), in_val(g, nd, 1), b >= 0 ? in_val(g, nd, 2) : NULL,
                      N, C, H, Wd, OC, KH, KW, stride, pad);
    return id;
}

void sk_conv2d_node_backward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]), *Wn = node_at(g, nd->in[1]);
    float *dx = in_grad(g, nd, 0), *dW = in_grad(g, nd, 1), *db = in_grad(g, nd, 2);
    sk_conv2d_backward(dx, dW, db, nd->saved3, nd->saved2, nd->grad, nd->saved, Wn->val, X->shape[0], X->shape[1],
                       X->shape[2], X->shape[3], Wn->shape[0], Wn->shape[2], Wn->shape[3], nd->iarg[0],
                       nd->iarg[1]);
}

int sk_op_reshape(struct sk_graph *g, int x, int ndim, const int *shape)
{
    int rc = sk_node_check(g, x, "sk_op_reshape", "x");
    if (rc) return rc;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i] > 0 ? (size_t)shape[i] : 0;
    if (ndim < 1 || ndim > 4 || n != node_at(g, x)->n)
        return sk_error(SK_EINVAL, "sk_op_reshape: cannot view %zu elements as %d dims of %zu",
                        node_at(g, x)->n, ndim, n);
    int id = sk_node_new(g, OP_FLATTEN, ndim, shape, x, -1, -1);
    if (id < 0) return id;
    node_at(g, id)->val = node_at(g, x)->val;
    return id;
}

int sk_op_flatten(struct sk_graph *g, int x)
{
    int rc = sk_node_check(g, x, "sk_op_flatten", "x");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x);
    int shape[2] = { X->shape[0], (int)(X->n / (size_t)X->shape[0]) };
    return sk_op_reshape(g, x, 2, shape);
}
