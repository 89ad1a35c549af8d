/* Dense and conv2d (per sample: im2col + sgemm, NCHW), flatten, and the
 * naive conv twin that tests compare against. */
#include "graph/graph_impl.h"

#include <omp.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
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
    return sk_node_run(g, sk_node_new(g, OP_DENSE, 2, shape, x, W, b));
}

void sk_dense_forward(struct sk_graph *g, struct sk_node *nd)
{
    int N = nd->shape[0], O = nd->shape[1];
    int D = node_at(g, nd->in[1])->shape[1];
    bool bias = nd->in[2] >= 0;
    float *Y = nd->val;
    if (bias) {
        const float *B = in_val(g, nd, 2);
        for (int i = 0; i < N; i++) memcpy(Y + (size_t)i * O, B, sizeof(float) * (size_t)O);
    }
    sk_sgemm(false, true, N, O, D, 1.0f, in_val(g, nd, 0), D, in_val(g, nd, 1), D, bias ? 1.0f : 0.0f, Y, O);
}

void sk_dense_backward(struct sk_graph *g, struct sk_node *nd)
{
    int N = nd->shape[0], O = nd->shape[1];
    int D = node_at(g, nd->in[1])->shape[1];
    const float *dY = nd->grad;
    bool ow;
    float *dX = in_grad_w(g, nd, 0, &ow), *dW = in_grad(g, nd, 1), *dB = in_grad(g, nd, 2);
    if (dX) sk_sgemm(false, false, N, D, O, 1.0f, dY, O, in_val(g, nd, 1), D, ow ? 0.0f : 1.0f, dX, D);
    if (dW) sk_sgemm(true, false, O, D, N, 1.0f, dY, O, in_val(g, nd, 0), D, 1.0f, dW, D);
    if (dB)
        for (int i = 0; i < N; i++)
            for (int o = 0; o < O; o++) dB[o] += dY[(size_t)i * O + o];
}

/* Conv2d, per sample and in NCHW throughout. For one sample,
 *   col[k, q] = x[c, oh*s - p + kh, ow*s - p + kw],  k = (c*KH + kh)*KW + kw, q = oh*OW + ow
 *   y[OC, P]  = W[OC, CKK] col[CKK, P] + b                          (one sgemm)
 *   dW       += dy[OC, P] col[CKK, P]^T,  db += sum_q dy
 *   dcol      = W^T dy,  dx += col2im(dcol)
 * The batch is split into one contiguous block of samples per OpenMP thread;
 * each thread works on its own col/dcol (CKK x P floats: 225 KB for the
 * benchmark CNN's second layer, so it stays in L2) and its own dW/db partial
 * sums, which are added in thread order at the end, so that results are
 * bitwise reproducible for a fixed thread count. col is recomputed in
 * backward instead of being kept for the whole batch (29 MB for that layer):
 * rebuilding it in cache is cheaper than streaming it through memory, and
 * no transpose of y or dy is needed in either direction. */

/* Output columns ow whose input column ow*s - p + kw lies inside [0, W). */
static inline void valid_cols(int OW, int Wd, int s, int off, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + s - 1) / s; /* first ow with ow*s + off >= 0 */
    int b = Wd - 1 - off < 0 ? -1 : (Wd - 1 - off) / s; /* last ow with ow*s + off <= W-1 */
    if (b > OW - 1) b = OW - 1;
    *lo = a;
    *hi = b < a ? a : b + 1; /* [lo, hi) */
    if (*lo > OW) *lo = *hi = OW;
}

/* Rows are short (OW floats): keep gcc from turning the copy loops into
 * memcpy/memset calls, whose call overhead dominated at 14-28 floats. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void im2col1(float *col, const float *x, int C, int H, int Wd, int KH, int KW, int s, int p, int OH,
                    int OW)
{
    size_t P = (size_t)OH * OW;
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                float *row = col + ((size_t)(c * KH + kh) * KW + kw) * P;
                int lo, hi;
                valid_cols(OW, Wd, s, kw - p, &lo, &hi);
#ifdef __AVX512F__
                __mmask16 mv[4], ms[4]; /* per 16-column chunk: valid lanes, stored lanes */
                for (int j = 0, o = 0; j < 4; j++, o += 16) {
                    int a = lo - o < 0 ? 0 : lo - o > 16 ? 16 : lo - o;
                    int b = hi - o < 0 ? 0 : hi - o > 16 ? 16 : hi - o;
                    int e = OW - o < 0 ? 0 : OW - o > 16 ? 16 : OW - o;
                    mv[j] = (__mmask16)(((1u << b) - 1) & ~((1u << a) - 1));
                    ms[j] = (__mmask16)((1u << e) - 1);
                }
#endif
                for (int oh = 0; oh < OH; oh++) {
                    float *dst = row + (size_t)oh * OW;
                    int ih = oh * s - p + kh;
                    if (ih < 0 || ih >= H) {
                        for (int ow = 0; ow < OW; ow++) dst[ow] = 0.0f;
                        continue;
                    }
                    const float *src = x + ((size_t)c * H + ih) * Wd + (kw - p);
#ifdef __AVX512F__
                    if (s == 1 && OW <= 64) {
                        /* masked loads never touch the lanes outside [lo, hi) */
                        for (int j = 0, o = 0; o < OW; j++, o += 16)
                            _mm512_mask_storeu_ps(dst + o, ms[j], _mm512_maskz_loadu_ps(mv[j], src + o));
                        continue;
                    }
#endif
                    for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (s == 1)
                        for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow];
                    else
                        for (int ow = lo; ow < hi; ow++) dst[ow] = src[(size_t)ow * s];
                    for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
                }
            }
}

static void col2im_add1(float *dx, const float *dcol, int C, int H, int Wd, int KH, int KW, int s, int p,
                        int OH, int OW)
{
    size_t P = (size_t)OH * OW;
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const float *row = dcol + ((size_t)(c * KH + kh) * KW + kw) * P;
                int lo, hi;
                valid_cols(OW, Wd, s, kw - p, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * s - p + kh;
                    if (ih < 0 || ih >= H) continue;
                    const float *src = row + (size_t)oh * OW;
                    float *dst = dx + ((size_t)c * H + ih) * Wd + (kw - p);
                    if (s == 1)
                        for (int ow = lo; ow < hi; ow++) dst[ow] += src[ow];
                    else
                        for (int ow = lo; ow < hi; ow++) dst[(size_t)ow * s] += src[ow];
                }
            }
}

/* Per-thread scratch, in floats, rounded to 64-byte multiples: col, dcol,
 * dW and db partial sums, and one conv-output plane set (fused op). */
static size_t conv_thread_floats(int C, int OC, int KH, int KW, int OH, int OW)
{
    size_t CKK = (size_t)C * KH * KW, P = (size_t)OH * OW;
    return 2 * ((CKK * P + 15) / 16 * 16) + (CKK * OC + OC + 15) / 16 * 16 + ((size_t)OC * P + 15) / 16 * 16;
}

size_t sk_conv2d_scratch_floats(int C, int H, int Wd, int OC, int KH, int KW, int stride, int pad, int n_threads)
{
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    return (size_t)(n_threads > 0 ? n_threads : 1) * conv_thread_floats(C, OC, KH, KW, OH, OW);
}

static inline void block_of(int N, int t, int nt, int *lo, int *hi)
{
    *lo = (int)((long)N * t / nt);
    *hi = (int)((long)N * (t + 1) / nt);
}

/* pk > 0: fused conv -> ReLU -> max-pool(pk, ps); y is the pooled output
 * [N,OC,PH,PW] and arg its argmax inside each conv-output plane. */
static void conv_forward_impl(float *y, int *arg, int pk, int ps, float *scratch, int n_threads, const float *x,
                              const float *W, const float *b, int N, int C, int H, int Wd, int OC, int KH, int KW,
                              int stride, int pad)
{
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    int CKK = C * KH * KW, P = OH * OW;
    int PH = pk ? (OH - pk) / ps + 1 : 0, PW = pk ? (OW - pk) / ps + 1 : 0;
    size_t per = conv_thread_floats(C, OC, KH, KW, OH, OW);
    size_t colf = ((size_t)CKK * P + 15) / 16 * 16, pwf = ((size_t)CKK * OC + OC + 15) / 16 * 16;
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num(), lo, hi;
        float *col = scratch + (size_t)t * per, *yc = col + 2 * colf + pwf;
        block_of(N, t, nt, &lo, &hi);
        for (int n = lo; n < hi; n++) {
            float *yn = pk ? yc : y + (size_t)n * OC * P;
            for (int oc = 0; oc < OC; oc++) {
                float bias = b ? b[oc] : 0.0f;
                for (int q = 0; q < P; q++) yn[(size_t)oc * P + q] = bias;
            }
            im2col1(col, x + (size_t)n * C * H * Wd, C, H, Wd, KH, KW, stride, pad, OH, OW);
            sk_sgemm(false, false, OC, P, CKK, 1.0f, W, CKK, col, P, 1.0f, yn, P);
            if (pk) {
                /* the same arithmetic as sk_op_relu then sk_op_maxpool2d, on a
                 * plane set that stays in cache (the nested parallel region of
                 * sk_maxpool_forward is inactive: one thread) */
                for (size_t i = 0; i < (size_t)OC * P; i++) yc[i] = yc[i] > 0 ? yc[i] : 0.0f;
                sk_maxpool_forward(y + (size_t)n * OC * PH * PW, arg + (size_t)n * OC * PH * PW, yc, 1, OC, OH, OW,
                                   pk, ps);
            }
        }
    }
}

void sk_conv2d_forward(float *y, float *scratch, int n_threads, const float *x, const float *W, const float *b,
                       int N, int C, int H, int Wd, int OC, int KH, int KW, int stride, int pad)
{
    conv_forward_impl(y, NULL, 0, 0, scratch, n_threads, x, W, b, N, C, H, Wd, OC, KH, KW, stride, pad);
}

/* pk > 0: backward of the fused op; dy is then the gradient of the pooled
 * output, py the pooled output and arg its argmax. The conv-output gradient
 * of one sample is rebuilt in cache: dpool scattered to the argmax, kept where
 * the pooled value (= ReLU output there) is positive, exactly as the max-pool
 * and ReLU backwards would produce it. */
static void conv_backward_impl(float *dx, bool assign_dx, float *dW, float *db, float *scratch, int n_threads,
                               const float *dy, const float *py, const int *arg, int pk, int ps, const float *x,
                               const float *W, int N, int C, int H, int Wd, int OC, int KH, int KW, int stride,
                               int pad)
{
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    int CKK = C * KH * KW, P = OH * OW;
    int PH = pk ? (OH - pk) / ps + 1 : 0, PW = pk ? (OW - pk) / ps + 1 : 0, PP = PH * PW;
    size_t per = conv_thread_floats(C, OC, KH, KW, OH, OW);
    size_t colf = ((size_t)CKK * P + 15) / 16 * 16, pwf = ((size_t)CKK * OC + OC + 15) / 16 * 16;
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num(), lo, hi;
        float *col = scratch + (size_t)t * per, *dcol = col + colf, *pw = dcol + colf, *pb = pw + (size_t)OC * CKK;
        float *dyc = col + 2 * colf + pwf;
        block_of(N, t, nt, &lo, &hi);
        if (dW) memset(pw, 0, sizeof(float) * (size_t)OC * CKK);
        if (db) memset(pb, 0, sizeof(float) * (size_t)OC);
        for (int n = lo; n < hi; n++) {
            const float *dyn = dy + (size_t)n * OC * P;
            if (pk) {
                memset(dyc, 0, sizeof(float) * (size_t)OC * P);
                const float *dp = dy + (size_t)n * OC * PP, *pv = py + (size_t)n * OC * PP;
                const int *ap = arg + (size_t)n * OC * PP;
                /* branch-free: adding 0 where the ReLU is off changes nothing */
                for (int oc = 0; oc < OC; oc++)
                    for (int q = 0; q < PP; q++) {
                        size_t i = (size_t)oc * PP + q;
                        dyc[(size_t)oc * P + ap[i]] += pv[i] > 0 ? dp[i] : 0.0f;
                    }
                dyn = dyc;
            }
            if (db)
                for (int oc = 0; oc < OC; oc++) {
                    float s = 0;
#pragma omp simd reduction(+ : s)
                    for (int q = 0; q < P; q++) s += dyn[(size_t)oc * P + q];
                    pb[oc] += s;
                }
            if (dW) {
                im2col1(col, x + (size_t)n * C * H * Wd, C, H, Wd, KH, KW, stride, pad, OH, OW);
                sk_sgemm(false, true, OC, CKK, P, 1.0f, dyn, P, col, P, 1.0f, pw, CKK);
            }
            if (dx) {
                sk_sgemm(true, false, CKK, P, OC, 1.0f, W, CKK, dyn, P, 0.0f, dcol, P);
                float *dxn = dx + (size_t)n * C * H * Wd;
                if (assign_dx) memset(dxn, 0, sizeof(float) * (size_t)C * H * Wd);
                col2im_add1(dxn, dcol, C, H, Wd, KH, KW, stride, pad, OH, OW);
            }
        }
#pragma omp barrier
        /* partial sums added in thread order: reproducible for a thread count */
        if (dW) {
#pragma omp for schedule(static)
            for (int i = 0; i < OC * CKK; i++) {
                float s = dW[i];
                for (int u = 0; u < nt; u++) s += scratch[(size_t)u * per + 2 * colf + i];
                dW[i] = s;
            }
        }
        if (db) {
#pragma omp single
            for (int oc = 0; oc < OC; oc++) {
                float s = db[oc];
                for (int u = 0; u < nt; u++) s += scratch[(size_t)u * per + 2 * colf + (size_t)OC * CKK + oc];
                db[oc] = s;
            }
        }
    }
}

void sk_conv2d_backward(float *dx, bool assign_dx, float *dW, float *db, float *scratch, int n_threads,
                        const float *dy, const float *x, const float *W, int N, int C, int H, int Wd, int OC,
                        int KH, int KW, int stride, int pad)
{
    conv_backward_impl(dx, assign_dx, dW, db, scratch, n_threads, dy, NULL, NULL, 0, 0, x, W, N, C, H, Wd, OC, KH,
                       KW, stride, pad);
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

static int conv_check(struct sk_graph *g, int x, int W, int b, int stride, int pad, const char *name)
{
    int rc = sk_node_check(g, x, name, "x");
    if (!rc) rc = sk_node_check(g, W, name, "W");
    if (!rc && b >= 0) rc = sk_node_check(g, b, name, "b");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x), *Wn = node_at(g, W);
    if (X->ndim != 4 || Wn->ndim != 4)
        return sk_error(SK_EINVAL, "%s: x and W must be 4-D (x has %d dims, W %d)", name, X->ndim, Wn->ndim);
    int C = X->shape[1], H = X->shape[2], Wd = X->shape[3];
    int OC = Wn->shape[0], KH = Wn->shape[2], KW = Wn->shape[3];
    if (Wn->shape[1] != C)
        return sk_error(SK_EINVAL, "%s: x has %d channels, W expects %d", name, C, Wn->shape[1]);
    if (stride < 1 || pad < 0) return sk_error(SK_EINVAL, "%s: stride %d / padding %d invalid", name, stride, pad);
    if (H + 2 * pad < KH || Wd + 2 * pad < KW)
        return sk_error(SK_EINVAL, "%s: %dx%d kernel larger than padded %dx%d input", name, KH, KW, H + 2 * pad,
                        Wd + 2 * pad);
    if (b >= 0 && node_at(g, b)->n != (size_t)OC)
        return sk_error(SK_EINVAL, "%s: bias has %zu elements for %d channels", name, node_at(g, b)->n, OC);
    return 0;
}

/* Records a conv node (OP_CONV2D, or OP_CONV_RELU_POOL with pooled output
 * shape) with its thread scratch: iarg = stride, pad, threads, pk | ps << 16. */
static int conv_node(struct sk_graph *g, int op, int x, int W, int b, int stride, int pad, int pk, int ps,
                     const int *shape)
{
    struct sk_node *X = node_at(g, x), *Wn = node_at(g, W);
    int C = X->shape[1], H = X->shape[2], Wd = X->shape[3];
    int OC = Wn->shape[0], KH = Wn->shape[2], KW = Wn->shape[3];
    int id = sk_node_new(g, op, 4, shape, x, W, b);
    if (id < 0) return id;
    struct sk_node *nd = node_at(g, id);
    nd->iarg[0] = stride;
    nd->iarg[1] = pad;
    nd->iarg[3] = pk | (ps << 16);
    int T = sk_get_threads();
    /* The scratch is reused by backward, which therefore cannot fail. */
    float *scratch = sk_arena_alloc(g->arena, sk_conv2d_scratch_floats(C, H, Wd, OC, KH, KW, stride, pad, T) *
                                                  sizeof(float));
    if (!scratch) return SK_ENOMEM;
    nd->saved = scratch;
    nd->iarg[2] = T;
    if (pk) {
        int *arg = sk_arena_alloc(g->arena, nd->n * sizeof(int));
        if (!arg) return SK_ENOMEM;
        nd->saved2 = arg;
    }
    return id;
}

int sk_op_conv2d(struct sk_graph *g, int x, int W, int b, int stride, int pad)
{
    int rc = conv_check(g, x, W, b, stride, pad, "sk_op_conv2d");
    if (rc) return rc;
    struct sk_node *X = node_at(g, x), *Wn = node_at(g, W);
    int N = X->shape[0], H = X->shape[2], Wd = X->shape[3];
    int OC = Wn->shape[0], KH = Wn->shape[2], KW = Wn->shape[3];
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    int shape[4] = { N, OC, OH, OW };
    return sk_node_run(g, conv_node(g, OP_CONV2D, x, W, b, stride, pad, 0, 0, shape));
}

int sk_op_conv2d_relu_maxpool(struct sk_graph *g, int x, int W, int b, int stride, int pad, int pk, int ps)
{
    const char *name = "sk_op_conv2d_relu_maxpool";
    int rc = conv_check(g, x, W, b, stride, pad, name);
    if (rc) return rc;
    struct sk_node *X = node_at(g, x), *Wn = node_at(g, W);
    int N = X->shape[0], H = X->shape[2], Wd = X->shape[3];
    int OC = Wn->shape[0], KH = Wn->shape[2], KW = Wn->shape[3];
    int OH = (H + 2 * pad - KH) / stride + 1, OW = (Wd + 2 * pad - KW) / stride + 1;
    if (pk < 1 || ps < 1 || pk > OH || pk > OW || ps > 0xFFFF)
        return sk_error(SK_EINVAL, "%s: pooling window %d / stride %d does not fit the %dx%d conv output", name, pk,
                        ps, OH, OW);
    int shape[4] = { N, OC, (OH - pk) / ps + 1, (OW - pk) / ps + 1 };
    return sk_node_run(g, conv_node(g, OP_CONV_RELU_POOL, x, W, b, stride, pad, pk, ps, shape));
}

/* Forward / backward of both conv nodes (pk = 0: plain conv). */
static void conv_node_forward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]), *Wn = node_at(g, nd->in[1]);
    int pk = nd->iarg[3] & 0xFFFF, ps = nd->iarg[3] >> 16;
    conv_forward_impl(nd->val, nd->saved2, pk, ps, nd->saved, nd->iarg[2], X->val, Wn->val,
                      nd->in[2] >= 0 ? in_val(g, nd, 2) : NULL, X->shape[0], X->shape[1], X->shape[2], X->shape[3],
                      Wn->shape[0], Wn->shape[2], Wn->shape[3], nd->iarg[0], nd->iarg[1]);
}

static void conv_node_backward(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]), *Wn = node_at(g, nd->in[1]);
    bool ow;
    float *dx = in_grad_w(g, nd, 0, &ow), *dW = in_grad(g, nd, 1), *db = in_grad(g, nd, 2);
    int pk = nd->iarg[3] & 0xFFFF, ps = nd->iarg[3] >> 16;
    conv_backward_impl(dx, ow, dW, db, nd->saved, nd->iarg[2], nd->grad, nd->val, nd->saved2, pk, ps, X->val, Wn->val,
                       X->shape[0], X->shape[1], X->shape[2], X->shape[3], Wn->shape[0], Wn->shape[2],
                       Wn->shape[3], nd->iarg[0], nd->iarg[1]);
}

void sk_conv2d_node_forward(struct sk_graph *g, struct sk_node *nd) { conv_node_forward(g, nd); }
void sk_conv2d_node_backward(struct sk_graph *g, struct sk_node *nd) { conv_node_backward(g, nd); }
void sk_conv_relu_pool_forward(struct sk_graph *g, struct sk_node *nd) { conv_node_forward(g, nd); }
void sk_conv_relu_pool_backward(struct sk_graph *g, struct sk_node *nd) { conv_node_backward(g, nd); }

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

/* ---- second order (R-operator; see struct sk_op_hvp) ----
 * Dense and conv are bilinear in (x, W) plus b:
 *   R{y}  = op(R{x}, W) + op(x, R{W}) + R{b}
 *   R{dx} += op^T(R{dy}, W) + op^T(dy, R{W})
 *   R{dW} += corr(R{dy}, x) + corr(dy, R{x}),  R{db} += sum R{dy}. */
static void dense_tangent(struct sk_graph *g, struct sk_node *nd)
{
    int N = nd->shape[0], O = nd->shape[1];
    int D = node_at(g, nd->in[1])->shape[1];
    const float *tX = in_tval(g, nd, 0), *tW = in_tval(g, nd, 1), *tB = in_tval(g, nd, 2);
    float *TY = nd->tval, beta = 0.0f;
    if (tB) {
        for (int i = 0; i < N; i++) memcpy(TY + (size_t)i * O, tB, sizeof(float) * (size_t)O);
        beta = 1.0f;
    }
    if (tX) {
        sk_sgemm(false, true, N, O, D, 1.0f, tX, D, in_val(g, nd, 1), D, beta, TY, O);
        beta = 1.0f;
    }
    if (tW) sk_sgemm(false, true, N, O, D, 1.0f, in_val(g, nd, 0), D, tW, D, beta, TY, O);
}

static void dense_rback(struct sk_graph *g, struct sk_node *nd)
{
    int N = nd->shape[0], O = nd->shape[1];
    int D = node_at(g, nd->in[1])->shape[1];
    const float *dY = nd->grad, *tdY = nd->tgrad, *tX = in_tval(g, nd, 0), *tW = in_tval(g, nd, 1);
    float *tdX = in_tgrad(g, nd, 0), *tdW = in_tgrad(g, nd, 1), *tdB = in_tgrad(g, nd, 2);
    if (tdX) {
        sk_sgemm(false, false, N, D, O, 1.0f, tdY, O, in_val(g, nd, 1), D, 1.0f, tdX, D);
        if (tW) sk_sgemm(false, false, N, D, O, 1.0f, dY, O, tW, D, 1.0f, tdX, D);
    }
    if (tdW) {
        sk_sgemm(true, false, O, D, N, 1.0f, tdY, O, in_val(g, nd, 0), D, 1.0f, tdW, D);
        if (tX) sk_sgemm(true, false, O, D, N, 1.0f, dY, O, tX, D, 1.0f, tdW, D);
    }
    if (tdB)
        for (int i = 0; i < N; i++)
            for (int o = 0; o < O; o++) tdB[o] += tdY[(size_t)i * O + o];
}
const struct sk_op_hvp sk_hvp_dense = { dense_tangent, dense_rback, NULL };

/* The conv output's size (fused op: before the pooling). */
static size_t conv_out_floats(const struct sk_graph *g, const struct sk_node *nd)
{
    const struct sk_node *X = &g->nodes[nd->in[0]], *Wn = &g->nodes[nd->in[1]];
    int s = nd->iarg[0], p = nd->iarg[1];
    size_t OH = (size_t)((X->shape[2] + 2 * p - Wn->shape[2]) / s + 1);
    size_t OW = (size_t)((X->shape[3] + 2 * p - Wn->shape[3]) / s + 1);
    return (size_t)X->shape[0] * (size_t)Wn->shape[0] * OH * OW;
}
/* ttmp: one conv output (plain conv); two (fused: R{conv} before pooling, and a term of it). */
static size_t conv_temp_floats(const struct sk_graph *g, const struct sk_node *nd)
{
    return (nd->op == OP_CONV_RELU_POOL ? 2 : 1) * conv_out_floats(g, nd);
}

/* R{conv(x, W) + b} into t (n floats), using tmp (n floats) for the second term. */
static void conv_tangent_full(struct sk_graph *g, struct sk_node *nd, float *t, float *tmp, size_t n)
{
    struct sk_node *X = node_at(g, nd->in[0]), *Wn = node_at(g, nd->in[1]);
    const float *tX = in_tval(g, nd, 0), *tW = in_tval(g, nd, 1), *tB = in_tval(g, nd, 2);
    int N = X->shape[0], C = X->shape[1], H = X->shape[2], Wd = X->shape[3];
    int OC = Wn->shape[0], KH = Wn->shape[2], KW = Wn->shape[3], s = nd->iarg[0], p = nd->iarg[1];
    int T = nd->iarg[2];
    float *scratch = nd->saved;
    if (tX) conv_forward_impl(t, NULL, 0, 0, scratch, T, tX, Wn->val, tB, N, C, H, Wd, OC, KH, KW, s, p);
    if (tW) {
        float *dst = tX ? tmp : t;
        conv_forward_impl(dst, NULL, 0, 0, scratch, T, X->val, tW, tX ? NULL : tB, N, C, H, Wd, OC, KH, KW, s, p);
        if (tX)
            for (size_t i = 0; i < n; i++) t[i] += tmp[i];
    }
    if (!tX && !tW) { /* only the bias moves */
        size_t P = n / ((size_t)N * OC);
        for (size_t i = 0; i < n; i++) t[i] = tB[(i / P) % (size_t)OC];
    }
}

static void conv2d_tangent(struct sk_graph *g, struct sk_node *nd)
{
    conv_tangent_full(g, nd, nd->tval, nd->ttmp, nd->n);
}

/* Fused: the pooled output is the conv output at the argmax where it is
 * positive (the ReLU and the window's winner are locally constant). */
static void conv_relu_pool_tangent(struct sk_graph *g, struct sk_node *nd)
{
    size_t nc = conv_out_floats(g, nd);
    float *tc = nd->ttmp;
    conv_tangent_full(g, nd, tc, tc + nc, nc);
    const int *arg = nd->saved2;
    size_t PP = (size_t)nd->shape[2] * nd->shape[3], P = nc / ((size_t)nd->shape[0] * nd->shape[1]);
    for (size_t i = 0; i < nd->n; i++) nd->tval[i] = nd->val[i] > 0 ? tc[(i / PP) * P + (size_t)arg[i]] : 0.0f;
}

static void conv_rback(struct sk_graph *g, struct sk_node *nd)
{
    struct sk_node *X = node_at(g, nd->in[0]), *Wn = node_at(g, nd->in[1]);
    const float *tX = in_tval(g, nd, 0), *tW = in_tval(g, nd, 1);
    float *tdX = in_tgrad(g, nd, 0), *tdW = in_tgrad(g, nd, 1), *tdB = in_tgrad(g, nd, 2);
    int pk = nd->iarg[3] & 0xFFFF, ps = nd->iarg[3] >> 16;
    int N = X->shape[0], C = X->shape[1], H = X->shape[2], Wd = X->shape[3];
    int OC = Wn->shape[0], KH = Wn->shape[2], KW = Wn->shape[3], s = nd->iarg[0], p = nd->iarg[1];
    if (tdX || tdW || tdB)
        conv_backward_impl(tdX, false, tdW, tdB, nd->saved, nd->iarg[2], nd->tgrad, nd->val, nd->saved2, pk, ps,
                           X->val, Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
    float *dx2 = tW ? tdX : NULL, *dW2 = tX ? tdW : NULL;
    if (dx2 || dW2)
        conv_backward_impl(dx2, false, dW2, NULL, nd->saved, nd->iarg[2], nd->grad, nd->val, nd->saved2, pk, ps,
                           tX ? tX : X->val, tW ? tW : Wn->val, N, C, H, Wd, OC, KH, KW, s, p);
}
const struct sk_op_hvp sk_hvp_conv2d = { conv2d_tangent, conv_rback, conv_temp_floats };
const struct sk_op_hvp sk_hvp_conv_relu_pool = { conv_relu_pool_tangent, conv_rback, conv_temp_floats };
