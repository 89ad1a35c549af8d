/* Max, average and global average pooling (no padding, floor mode). */
#include "graph/graph_impl.h"

#include <float.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include <string.h>

/* One output row of the common 2x2, stride-2 window: y[ow] is the first
 * maximum (strict '>', as PyTorch) of r0[2ow], r0[2ow+1], r1[2ow], r1[2ow+1]
 * with r1 = r0 + W, and arg[ow] its offset base + (2ow or 2ow+1) (+W). */
static void maxpool2_row(float *y, int *arg, const float *r0, int W, int OW, int base)
{
    const float *r1 = r0 + W;
    int ow = 0;
#ifdef __AVX512F__
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i lane2 = _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
    for (; ow < OW; ow += 16) {
        int rem = OW - ow < 16 ? OW - ow : 16;
        __mmask16 mo = (__mmask16)((1u << rem) - 1);
        int r2 = 2 * rem;
        __mmask16 m_lo = (__mmask16)(r2 >= 16 ? 0xFFFF : (1u << r2) - 1);
        __mmask16 m_hi = (__mmask16)(r2 <= 16 ? 0 : (1u << (r2 - 16)) - 1);
        const float *p0 = r0 + 2 * ow, *p1 = r1 + 2 * ow;
        __m512 a0 = _mm512_maskz_loadu_ps(m_lo, p0), a1 = _mm512_maskz_loadu_ps(m_hi, p0 + 16);
        __m512 c0 = _mm512_maskz_loadu_ps(m_lo, p1), c1 = _mm512_maskz_loadu_ps(m_hi, p1 + 16);
        __m512 a = _mm512_permutex2var_ps(a0, even, a1), b = _mm512_permutex2var_ps(a0, odd, a1);
        __m512 c = _mm512_permutex2var_ps(c0, even, c1), d = _mm512_permutex2var_ps(c0, odd, c1);
        __m512 m = a;
        __m512i i = _mm512_setzero_si512();
        __mmask16 gt = _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, gt, b);
        i = _mm512_mask_mov_epi32(i, gt, _mm512_set1_epi32(1));
        gt = _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, gt, c);
        i = _mm512_mask_mov_epi32(i, gt, _mm512_set1_epi32(W));
        gt = _mm512_cmp_ps_mask(d, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, gt, d);
        i = _mm512_mask_mov_epi32(i, gt, _mm512_set1_epi32(W + 1));
        __m512i off = _mm512_add_epi32(_mm512_add_epi32(_mm512_set1_epi32(base + 2 * ow), lane2), i);
        _mm512_mask_storeu_ps(y + ow, mo, m);
        _mm512_mask_storeu_epi32(arg + ow, mo, off);
    }
#endif
    for (; ow < OW; ow++) {
        float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        float m = a;
        int i = 0;
        if (b > m) m = b, i = 1;
        if (c > m) m = c, i = W;
        if (d > m) m = d, i = W + 1;
        y[ow] = m;
        arg[ow] = base + 2 * ow + i;
    }
}

void sk_maxpool_forward(float *y, int *arg, const float *x, int N, int C, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * OH * OW;
        int *ap = arg + (size_t)nc * OH * OW;
        if (k == 2 && s == 2) {
            for (int oh = 0; oh < OH; oh++)
                maxpool2_row(yp + (size_t)oh * OW, ap + (size_t)oh * OW, xp + (size_t)(2 * oh) * W, W, OW,
                             2 * oh * W);
            continue;
        }
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int best = (oh * s) * W + ow * s;
                float m = xp[best];
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int idx = (oh * s + i) * W + ow * s + j;
                        /* strict '>' keeps the first maximum, as PyTorch does */
                        if (xp[idx] > m) {
                            m = xp[idx];
                            best = idx;
                        }
                    }
                yp[oh * OW + ow] = m;
                ap[oh * OW + ow] = best;
            }
    }
}

void sk_maxpool_forward_ref(float *y, const float *x, int N, int C, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float m = -FLT_MAX;
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++) {
                            float v = x[(((size_t)n * C + c) * H + oh * s + i) * W + ow * s + j];
                            if (v > m) m = v;
                        }
                    y[(((size_t)n * C + c) * OH + oh) * OW + ow] = m;
                }
}

void sk_maxpool_backward(float *dx, bool assign_dx, const float *dy, const int *arg, int N, int C, int H, int W,
                         int OH, int OW)
{
    size_t P = (size_t)OH * OW, HW = (size_t)H * W;
    /* arg is an offset inside the (n,c) plane of x; a plane is handled whole by
     * one thread, so overlapping windows never race. */
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *dyp = dy + (size_t)nc * P;
        const int *ap = arg + (size_t)nc * P;
        float *dxp = dx + (size_t)nc * HW;
        if (assign_dx) memset(dxp, 0, sizeof(float) * HW);
        for (size_t q = 0; q < P; q++) dxp[ap[q]] += dyp[q];
    }
}

void sk_maxpool_backward_ref(float *dx, const float *dy, const float *x, int N, int C, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    size_t plane = ((size_t)n * C + c) * H * W;
                    size_t best = plane + (size_t)(oh * s) * W + ow * s;
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++) {
                            size_t idx = plane + (size_t)(oh * s + i) * W + ow * s + j;
                            if (x[idx] > x[best]) best = idx; /* first maximum */
                        }
                    dx[best] += dy[(((size_t)n * C + c) * OH + oh) * OW + ow];
                }
}

void sk_avgpool_backward_ref(float *dx, const float *dy, int N, int C, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++)
                            dx[(((size_t)n * C + c) * H + oh * s + i) * W + ow * s + j] +=
                                dy[(((size_t)n * C + c) * OH + oh) * OW + ow] / (float)(k * k);
}

void sk_avgpool_forward(float *y, const float *x, int N, int C, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    float inv = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float acc = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) acc += xp[(oh * s + i) * W + ow * s + j];
                yp[oh * OW + ow] = acc * inv;
            }
    }
}

void sk_avgpool_forward_ref(float *y, const float *x, int N, int C, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double acc = 0;
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++)
                            acc += x[(((size_t)n * C + c) * H + oh * s + i) * W + ow * s + j];
                    y[(((size_t)n * C + c) * OH + oh) * OW + ow] = (float)(acc / (k * k));
                }
}

void sk_avgpool_backward(float *dx, bool assign_dx, const float *dy, int N, int C, int H, int W, int k, int s)
{
    int OH = (H - k) / s + 1, OW = (W - k) / s + 1;
    float inv = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static)
    for (int nc = 0; nc < N * C; nc++) {
        float *dxp = dx + (size_t)nc * H * W;
        const float *dyp = dy + (size_t)nc * OH * OW;
        if (assign_dx) memset(dxp, 0, sizeof(float) * (size_t)H * W);
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float d = dyp[oh * OW + ow] * inv;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) dxp[(oh * s + i) * W + ow * s + j] += d;
            }
    }
}

static int pool_node(struct sk_graph *g, int x, int k, int s, int op, const char *name)
{
    int rc = sk_node_check(g, x, name, "x");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x);
    if (X->ndim != 4) return sk_error(SK_EINVAL, "%s: x must be [N,C,H,W], got %d dims", name, X->ndim);
    if (k < 1 || s < 1) return sk_error(SK_EINVAL, "%s: window %d / stride %d must be >= 1", name, k, s);
    int H = X->shape[2], W = X->shape[3];
    if (k > H || k > W)
        return sk_error(SK_EINVAL, "%s: %dx%d window larger than the %dx%d input", name, k, k, H, W);
    int shape[4] = { X->shape[0], X->shape[1], (H - k) / s + 1, (W - k) / s + 1 };
    int id = sk_node_new(g, op, 4, shape, x, -1, -1);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    nd->iarg[0] = k;
    nd->iarg[1] = s;
    return id;
}

int sk_op_maxpool2d(struct sk_graph *g, int x, int k, int stride)
{
    int id = pool_node(g, x, k, stride, OP_MAXPOOL, "sk_op_maxpool2d");
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    int *arg = sk_arena_alloc(g->arena, nd->n * sizeof(int));
    if (!arg) return SK_ENOMEM;
    nd->saved = arg;
    return sk_node_run(g, id);
}

int sk_op_avgpool2d(struct sk_graph *g, int x, int k, int stride)
{
    return sk_node_run(g, pool_node(g, x, k, stride, OP_AVGPOOL, "sk_op_avgpool2d"));
}

/* iarg = window, stride; saved = argmax (max pooling) */
void sk_maxpool_node_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    sk_maxpool_forward(nd->val, nd->saved, X->val, X->shape[0], X->shape[1], X->shape[2], X->shape[3], nd->iarg[0],
                       nd->iarg[1]);
}

void sk_avgpool_node_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    sk_avgpool_forward(nd->val, X->val, X->shape[0], X->shape[1], X->shape[2], X->shape[3], nd->iarg[0],
                       nd->iarg[1]);
}

void sk_maxpool_node_backward(struct sk_graph *g, struct sk_node *nd)
{
    bool ow;
    float *dX = in_grad_w(g, nd, 0, &ow);
    if (!dX) return;
    struct sk_node *X = node_at(g, nd->in[0]);
    sk_maxpool_backward(dX, ow, nd->grad, nd->saved, X->shape[0], X->shape[1], X->shape[2], X->shape[3],
                        nd->shape[2], nd->shape[3]);
}

void sk_avgpool_node_backward(struct sk_graph *g, struct sk_node *nd)
{
    bool ow;
    float *dX = in_grad_w(g, nd, 0, &ow);
    if (!dX) return;
    struct sk_node *X = node_at(g, nd->in[0]);
    sk_avgpool_backward(dX, ow, nd->grad, X->shape[0], X->shape[1], X->shape[2], X->shape[3], nd->iarg[0],
                        nd->iarg[1]);
}

int sk_op_global_avgpool(struct sk_graph *g, int x)
{
    int rc = sk_node_check(g, x, "sk_op_global_avgpool", "x");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x);
    if (X->ndim != 4)
        return sk_error(SK_EINVAL, "sk_op_global_avgpool: x must be [N,C,H,W], got %d dims", X->ndim);
    int shape[2] = { X->shape[0], X->shape[1] };
    return sk_node_run(g, sk_node_new(g, OP_GAP, 2, shape, x, -1, -1));
}

void sk_gap_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    size_t HW = (size_t)X->shape[2] * X->shape[3];
    for (size_t i = 0; i < nd->n; i++) {
        double acc = 0;
        for (size_t q = 0; q < HW; q++) acc += X->val[i * HW + q];
        nd->val[i] = (float)(acc / (double)HW);
    }
}

void sk_gap_backward(struct sk_graph *g, struct sk_node *nd)
{
    float *dX = in_grad(g, nd, 0);
    if (!dX) return;
    struct sk_node *X = node_at(g, nd->in[0]);
    size_t HW = (size_t)X->shape[2] * X->shape[3];
    for (size_t i = 0; i < nd->n; i++) {
        float d = nd->grad[i] / (float)HW;
        for (size_t q = 0; q < HW; q++) dX[i * HW + q] += d;
    }
}

/* ---- second order (R-operator; see struct sk_op_hvp) ----
 * Pooling is linear for a fixed winner set: R{y} = pool(R{x}),
 * R{dx} += pool^T(R{dy}) (max pooling: through the recorded argmax). */
static void maxpool_tangent(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    const float *T = in_tval(g, nd, 0);
    const int *arg = nd->saved;
    size_t PP = (size_t)nd->shape[2] * nd->shape[3], HW = (size_t)X->shape[2] * X->shape[3];
    for (size_t i = 0; i < nd->n; i++) nd->tval[i] = T[(i / PP) * HW + (size_t)arg[i]];
}

static void maxpool_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdX = in_tgrad(g, nd, 0);
    if (!tdX) return;
    struct sk_node *X = node_at(g, nd->in[0]);
    sk_maxpool_backward(tdX, false, nd->tgrad, nd->saved, X->shape[0], X->shape[1], X->shape[2], X->shape[3],
                        nd->shape[2], nd->shape[3]);
}
const struct sk_op_hvp sk_hvp_maxpool = { maxpool_tangent, maxpool_rback, NULL };

static void avgpool_tangent(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    sk_avgpool_forward(nd->tval, in_tval(g, nd, 0), X->shape[0], X->shape[1], X->shape[2], X->shape[3],
                       nd->iarg[0], nd->iarg[1]);
}

static void avgpool_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdX = in_tgrad(g, nd, 0);
    if (!tdX) return;
    struct sk_node *X = node_at(g, nd->in[0]);
    sk_avgpool_backward(tdX, false, nd->tgrad, X->shape[0], X->shape[1], X->shape[2], X->shape[3], nd->iarg[0],
                        nd->iarg[1]);
}
const struct sk_op_hvp sk_hvp_avgpool = { avgpool_tangent, avgpool_rback, NULL };

static void gap_tangent(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]);
    const float *T = in_tval(g, nd, 0);
    size_t HW = (size_t)X->shape[2] * X->shape[3];
    for (size_t i = 0; i < nd->n; i++) {
        double acc = 0;
        for (size_t q = 0; q < HW; q++) acc += T[i * HW + q];
        nd->tval[i] = (float)(acc / (double)HW);
    }
}

static void gap_rback(struct sk_graph *g, struct sk_node *nd)
{
    float *tdX = in_tgrad(g, nd, 0);
    if (!tdX) return;
    struct sk_node *X = node_at(g, nd->in[0]);
    size_t HW = (size_t)X->shape[2] * X->shape[3];
    for (size_t i = 0; i < nd->n; i++) {
        float d = nd->tgrad[i] / (float)HW;
        for (size_t q = 0; q < HW; q++) tdX[i * HW + q] += d;
    }
}
const struct sk_op_hvp sk_hvp_gap = { gap_tangent, gap_rback, NULL };
