/* Interval bound propagation as graph ops (centre/radius form), the
 * specification-form worst-case logits, and IBP margins on arrays. */
#include "certify/certify_impl.h"
#include "model/layers.h"

#include <math.h>
#include <string.h>

const char *sk_certify_method_name(enum sk_certify_method m)
{
    static const char *names[] = { "ibp", "crown", "lipschitz", "alpha-crown" };
    return (unsigned)m < 4 ? names[m] : "?";
}

int sk_certify_method_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, sk_certify_method_name((enum sk_certify_method)i)) == 0) return i;
    return -1;
}

int sk_certify_ibp_graph(struct sk_model *m, struct sk_graph *g, int c, int r, int upto, int *c_out, int *r_out)
{
    if (c < 0) return c;
    if (r < 0) return r;
    if (upto < 0 || upto > m->n_layers)
        return sk_error(SK_EINVAL, "sk_certify_ibp_graph: upto %d outside 0..%d layers", upto, m->n_layers);
    int N = sk_graph_shape(g, c)[0];
    if (sk_graph_numel(g, c) != (size_t)N * m->in_dim || sk_graph_numel(g, r) != sk_graph_numel(g, c))
        return sk_error(SK_EINVAL, "sk_certify_ibp_graph: model '%s' expects %d inputs per row", m->spec, m->in_dim);
    if (m->prep) {
        /* the input transform (scale > 0) maps the box exactly: c' = (c - shift) scale, r' = r scale */
        float *zero = sk_graph_scratch_zero(g, sizeof(float) * (size_t)m->in_dim);
        if (!zero) return SK_ENOMEM;
        c = sk_model_input(m, g, c);
        r = sk_op_affine_cols(g, r, zero, m->prep->scale);
        if (c < 0) return c;
        if (r < 0) return r;
    }
    if (m->spatial) {
        int s4[4] = { N, m->in_c, m->in_h, m->in_w };
        if (sk_graph_ndim(g, c) != 4) c = sk_op_reshape(g, c, 4, s4);
        if (sk_graph_ndim(g, r) != 4) r = sk_op_reshape(g, r, 4, s4);
    } else {
        int s2[2] = { N, m->in_dim };
        if (sk_graph_ndim(g, c) != 2) c = sk_op_reshape(g, c, 2, s2);
        if (sk_graph_ndim(g, r) != 2) r = sk_op_reshape(g, r, 2, s2);
    }
    struct sk_layer_run run = { .g = g, .m = m, .w = m->params, .dw = m->grads };
    /* every layer's box, for the layers of a graph that read it later */
    int *oc = sk_graph_scratch(g, sizeof(int) * (size_t)(upto > 0 ? upto : 1));
    int *orad = sk_graph_scratch(g, sizeof(int) * (size_t)(upto > 0 ? upto : 1));
    if (!oc || !orad) return SK_ENOMEM;
    int c0 = c, r0 = r, rc = SK_OK;
    for (int li = 0; li < upto && rc == SK_OK; li++) {
        const struct sk_layer *L = &m->layers[li];
        const struct sk_layer_def *d = sk_layer_of(L);
        run.L = L;
        run.index = li;
        if (!d->ibp) {
            rc = sk_error(SK_EINVAL, "IBP: layer %d (%s) %s", li, d->name,
                          d->ibp_note ? d->ibp_note : "is not supported");
            break;
        }
        c = L->from[0] < 0 ? c0 : oc[L->from[0]];
        r = L->from[0] < 0 ? r0 : orad[L->from[0]];
        run.c2 = L->from[1] < 0 ? c0 : oc[L->from[1]];
        run.r2 = L->from[1] < 0 ? r0 : orad[L->from[1]];
        rc = d->ibp(&run, &c, &r);
        if (rc == SK_OK && c < 0) rc = c;
        if (rc == SK_OK && r < 0) rc = r;
        oc[li] = c;
        orad[li] = r;
    }
    if (rc) return rc;
    *c_out = c;
    *r_out = r;
    return SK_OK;
}

int sk_certify_ibp_input(struct sk_graph *g, const struct sk_model *m, const float *x, int N, float eps, float clip_lo,
                         float clip_hi, int *c, int *r)
{
    struct sk_certify_domain box = { clip_lo, clip_hi, NULL, NULL };
    return sk_certify_ibp_box(g, m, x, N, eps, &box, c, r);
}

int sk_certify_ibp_box(struct sk_graph *g, const struct sk_model *m, const float *x, int N, float eps,
                       const struct sk_certify_domain *box, int *c, int *r)
{
    size_t n = (size_t)N * m->in_dim;
    float *cv = sk_graph_scratch(g, n * sizeof(float)), *rv = sk_graph_scratch(g, n * sizeof(float));
    if (!cv || !rv) return SK_ENOMEM;
    int rc = sk_certify_domain_centre_radius(x, n, m->in_dim, eps, box, cv, rv);
    if (rc) return rc;
    int shape[2] = { N, m->in_dim };
    *c = sk_graph_input(g, cv, 2, shape, false);
    *r = sk_graph_input(g, rv, 2, shape, false);
    return *r < 0 ? *r : (*c < 0 ? *c : SK_OK);
}

int sk_certify_last_dense(const struct sk_model *m)
{
    for (int li = m->n_layers - 1; li >= 0; li--) {
        /* the box of layer li - 1 must be the one the tail reads */
        if (m->layers[li].from[0] != li - 1 || m->layers[li].from[1] >= 0) return -1;
        if (m->layers[li].kind == SK_LAYER_DENSE) return li;
        if (m->layers[li].kind != SK_LAYER_DROPOUT && m->layers[li].kind != SK_LAYER_FLATTEN) return -1;
    }
    return -1;
}

int sk_certify_ibp_worst_logits(struct sk_model *m, struct sk_graph *g, int c, int r, const int *y, int *zw)
{
    int K = m->n_classes, N = c >= 0 ? sk_graph_shape(g, c)[0] : 0;
    int ld = sk_certify_last_dense(m);
    int rc, hc, hr;
    if (ld < 0) {
        /* elementwise (Gowal et al.'s form): zw_j = upper(z_j) for j != y, zw_y = lower(z_y) */
        if ((rc = sk_certify_ibp_graph(m, g, c, r, m->n_layers, &hc, &hr))) return rc;
        float *mask = sk_graph_scratch_zero(g, sizeof(float) * (size_t)N * K);
        if (!mask) return SK_ENOMEM;
        for (int n = 0; n < N; n++) mask[(size_t)n * K + y[n]] = 1.0f;
        int shape[2] = { N, K };
        int mk = sk_graph_input(g, mask, 2, shape, false);
        int u = sk_op_add(g, hc, hr), l = sk_op_sub(g, hc, hr);
        *zw = sk_op_sub(g, u, sk_op_mul(g, mk, sk_op_sub(g, u, l)));
        return *zw < 0 ? *zw : SK_OK;
    }
    if ((rc = sk_certify_ibp_graph(m, g, c, r, ld, &hc, &hr))) return rc;
    const struct sk_layer *L = &m->layers[ld];
    int D = L->in[0];
    int ws[2] = { K, D }, bs[2] = { 1, K };
    int W = sk_graph_param(g, m->params + L->w_off, m->grads + L->w_off, 2, ws);
    int b = sk_graph_param(g, m->params + L->b_off, m->grads + L->b_off, 2, bs);
    /* Wt = I_D W^T (a dense op), then per class k: D_k = M_k W with
     * M_k = I - 1 e_k^T (row j: W_j - W_k), bias M_k b. */
    float *eye = sk_graph_scratch_zero(g, sizeof(float) * (size_t)D * D);
    float *Ms = sk_graph_scratch_zero(g, sizeof(float) * (size_t)K * K * K);
    if (!eye || !Ms) return SK_ENOMEM;
    for (int i = 0; i < D; i++) eye[(size_t)i * D + i] = 1.0f;
    int es[2] = { D, D }, ms[2] = { K, K }, vs[1] = { K };
    int Wt = sk_op_dense(g, sk_graph_input(g, eye, 2, es, false), W, -1); /* [D,K] */
    int acc = -1;
    for (int k = 0; k < K; k++) {
        float *M = Ms + (size_t)k * K * K;
        bool any = false;
        for (int n = 0; n < N; n++) any |= y[n] == k;
        if (!any) continue;
        for (int j = 0; j < K; j++) {
            M[(size_t)j * K + j] += 1.0f;
            M[(size_t)j * K + k] -= 1.0f;
        }
        int Mk = sk_graph_input(g, M, 2, ms, false);
        int Dk = sk_op_dense(g, Mk, Wt, -1);                       /* [K,D] */
        int bk = sk_op_reshape(g, sk_op_dense(g, Mk, b, -1), 1, vs); /* [K] */
        int up = sk_op_add(g, sk_op_dense(g, hc, Dk, bk), sk_op_dense(g, hr, sk_layer_abs(g, Dk), -1));
        float *mk = sk_graph_scratch_zero(g, sizeof(float) * (size_t)N * K);
        if (!mk) return SK_ENOMEM;
        for (int n = 0; n < N; n++)
            if (y[n] == k)
                for (int j = 0; j < K; j++) mk[(size_t)n * K + j] = 1.0f;
        int shape[2] = { N, K };
        int term = sk_op_mul(g, sk_graph_input(g, mk, 2, shape, false), up);
        acc = acc < 0 ? term : sk_op_add(g, acc, term);
        if (acc < 0) return acc;
    }
    *zw = acc;
    return acc < 0 ? acc : SK_OK;
}

/* ---------------- arrays ---------------- */

#define CERT_BATCH 128

/* IBP margins for rows [0,N) of the box in centre/radius form (arrays). */
static int ibp_margins_cr(struct sk_model *m, struct sk_graph *g, const float *cv, const float *rv, const int *y,
                          int N, float *mlo)
{
    int K = m->n_classes, ld = sk_certify_last_dense(m);
    int shape[2] = { N, m->in_dim };
    sk_graph_reset(g);
    int c = sk_graph_input(g, cv, 2, shape, false), r = sk_graph_input(g, rv, 2, shape, false);
    int hc, hr, rc;
    if (ld < 0) {
        if ((rc = sk_certify_ibp_graph(m, g, c, r, m->n_layers, &hc, &hr))) return rc;
        const float *zc = sk_graph_value(g, hc), *zr = sk_graph_value(g, hr);
        for (int n = 0; n < N; n++) {
            const float *a = zc + (size_t)n * K, *b = zr + (size_t)n * K;
            for (int j = 0; j < K; j++)
                mlo[(size_t)n * K + j] = j == y[n] ? 0.0f : (a[y[n]] - b[y[n]]) - (a[j] + b[j]);
        }
        return SK_OK;
    }
    if ((rc = sk_certify_ibp_graph(m, g, c, r, ld, &hc, &hr))) return rc;
    const struct sk_layer *L = &m->layers[ld];
    int D = L->in[0];
    const float *W = m->params + L->w_off, *bias = m->params + L->b_off;
    const float *hcv = sk_graph_value(g, hc), *hrv = sk_graph_value(g, hr);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *cc = hcv + (size_t)n * D, *rr = hrv + (size_t)n * D, *Wy = W + (size_t)y[n] * D;
        for (int j = 0; j < K; j++) {
            if (j == y[n]) {
                mlo[(size_t)n * K + j] = 0.0f;
                continue;
            }
            const float *Wj = W + (size_t)j * D;
            double s = (double)bias[y[n]] - bias[j];
            for (int i = 0; i < D; i++) {
                double d = (double)Wy[i] - Wj[i];
                s += d * cc[i] - fabs(d) * rr[i];
            }
            mlo[(size_t)n * K + j] = (float)s;
        }
    }
    return SK_OK;
}

int sk_certify_domain_centre_radius(const float *x, size_t n, int D, float eps, const struct sk_certify_domain *b,
                                    float *cv, float *rv) {
    if (!(eps >= 0) || !isfinite(eps)) return sk_error(SK_EINVAL, "epsilon %g must be finite and >= 0", eps);
    const float *blo = b ? b->blo : NULL, *bhi = b ? b->bhi : NULL;
    bool box = blo || (b && b->lo < b->hi);
    for (size_t i = 0; i < n; i++) {
        float lo = x[i] - eps, hi = x[i] + eps;
        if (box) {
            float bl = blo ? blo[i % (size_t)D] : b->lo, bh = bhi ? bhi[i % (size_t)D] : b->hi;
            lo = lo < bl ? bl : lo;
            hi = hi > bh ? bh : hi;
            if (hi < lo) hi = lo; /* x itself outside the box */
        }
        cv[i] = 0.5f * (lo + hi);
        rv[i] = 0.5f * (hi - lo);
    }
    return SK_OK;
}

int sk_certify_ibp_margins(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, float *mlo)
{
    struct sk_graph *g = sk_graph_new();
    if (!g) return SK_ENOMEM;
    sk_graph_set_param_grads(g, false);
    int rc = SK_OK, D = m->in_dim, K = m->n_classes;
    for (int i = 0; i < N && rc == SK_OK; i += CERT_BATCH) {
        int B = N - i < CERT_BATCH ? N - i : CERT_BATCH;
        rc = ibp_margins_cr(m, g, cv + (size_t)i * D, rv + (size_t)i * D, y + i, B, mlo + (size_t)i * K);
    }
    sk_graph_free(g);
    return rc;
}

int sk_certify_ibp_bounds(struct sk_model *m, const float *lo, const float *hi, int N, float *zlo, float *zhi)
{
    struct sk_graph *g = sk_graph_new();
    if (!g) return SK_ENOMEM;
    sk_graph_set_param_grads(g, false);
    int rc = SK_OK, D = m->in_dim, K = m->n_classes;
    for (int i = 0; i < N && rc == SK_OK; i += CERT_BATCH) {
        int B = N - i < CERT_BATCH ? N - i : CERT_BATCH;
        sk_graph_reset(g);
        size_t nn = (size_t)B * D;
        float *cv = sk_graph_scratch(g, nn * sizeof(float)), *rv = sk_graph_scratch(g, nn * sizeof(float));
        if (!cv || !rv) {
            rc = SK_ENOMEM;
            break;
        }
        for (size_t q = 0; q < nn; q++) {
            float a = lo[(size_t)i * D + q], b = hi[(size_t)i * D + q];
            if (!(a <= b)) {
                rc = sk_error(SK_EINVAL, "bounds: box row %d has lo > hi at input %zu", i + (int)(q / D), q % D);
                break;
            }
            cv[q] = 0.5f * (a + b);
            rv[q] = 0.5f * (b - a);
        }
        if (rc) break;
        int shape[2] = { B, D };
        int c = sk_graph_input(g, cv, 2, shape, false), r = sk_graph_input(g, rv, 2, shape, false), hc, hr;
        if ((rc = sk_certify_ibp_graph(m, g, c, r, m->n_layers, &hc, &hr))) break;
        const float *zc = sk_graph_value(g, hc), *zr = sk_graph_value(g, hr);
        if (sk_graph_numel(g, hc) != (size_t)B * K) {
            rc = sk_error(SK_EINVAL, "bounds: model output has %zu values per row, expected %d",
                          sk_graph_numel(g, hc) / (size_t)B, K);
            break;
        }
        for (size_t q = 0; q < (size_t)B * K; q++) {
            zlo[(size_t)i * K + q] = zc[q] - zr[q];
            zhi[(size_t)i * K + q] = zc[q] + zr[q];
        }
    }
    sk_graph_free(g);
    return rc;
}
