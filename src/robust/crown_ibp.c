/* CROWN-IBP (Zhang et al. 2020) on the tape: interval bounds for every
 * pre-activation, then one backward linear relaxation (CROWN) from the
 * margin specification through the chain, all recorded as graph ops so that
 * the certified-training loss differentiates through both passes. */
#include "skeptic/certify.h"
#include "skeptic/robust.h"
#include "model/layers.h"

#include <string.h>

/* The chain CROWN-IBP expresses: dense, conv, relu, flatten, dropout
 * (identity in the bounds), ending in a dense layer (flatten / dropout after it). */
static int crown_ibp_check(const struct sk_model *m, int *last)
{
    int ld = -1;
    for (int li = 0; li < m->n_layers; li++) {
        enum sk_layer_kind k = m->layers[li].kind;
        if (k != SK_LAYER_DENSE && k != SK_LAYER_CONV && k != SK_LAYER_RELU && k != SK_LAYER_FLATTEN &&
            k != SK_LAYER_DROPOUT)
            return sk_error(SK_EINVAL, "CROWN-IBP: layer %d (%s) of '%s' has no relaxation here: the chain may hold "
                            "dense, conv, relu, flatten and dropout layers (use kind ibp for others)",
                            li, sk_layer_name(k), m->spec);
        if (k == SK_LAYER_DENSE) ld = li;
        else if (k != SK_LAYER_FLATTEN && k != SK_LAYER_DROPOUT) ld = -1;
    }
    if (ld < 0) return sk_error(SK_EINVAL, "CROWN-IBP: model '%s' must end with a dense layer", m->spec);
    *last = ld;
    return SK_OK;
}

int sk_robust_crown_ibp_margins(struct sk_model *m, struct sk_graph *g, int c, int r, const int *y, float beta,
                                int *mlo)
{
    if (c < 0) return c;
    if (r < 0) return r;
    if (!(beta >= 0 && beta <= 1)) return sk_error(SK_EINVAL, "CROWN-IBP: beta %g must be in [0,1]", beta);
    int ld, rc = crown_ibp_check(m, &ld);
    if (rc) return rc;
    int N = sk_graph_shape(g, c)[0], K = m->n_classes, S = K - 1, M = N * S;
    if (K < 2) return sk_error(SK_EINVAL, "CROWN-IBP: model '%s' has %d class", m->spec, K);
    if (sk_graph_numel(g, c) != (size_t)N * m->in_dim || sk_graph_numel(g, r) != sk_graph_numel(g, c))
        return sk_error(SK_EINVAL, "CROWN-IBP: model '%s' expects %d inputs per row", m->spec, m->in_dim);
    for (int n = 0; n < N; n++)
        if (y[n] < 0 || y[n] >= K) return sk_error(SK_EINVAL, "CROWN-IBP: label %d of row %d outside 0..%d", y[n], n, K - 1);

    /* IBP forward, keeping every layer's input box (the concretization
     * point of CROWN is the transformed input: the transform is a positive
     * diagonal map, so the box maps exactly) */
    if (m->prep) {
        float *zero = sk_graph_scratch_zero(g, sizeof(float) * (size_t)m->in_dim);
        if (!zero) return SK_ENOMEM;
        c = sk_model_input(m, g, c);
        r = sk_op_affine_cols(g, r, zero, m->prep->scale);
        if (c < 0) return c;
        if (r < 0) return r;
    }
    int s2[2] = { N, m->in_dim }, s4[4] = { N, m->in_c, m->in_h, m->in_w };
    c = m->spatial ? sk_op_reshape(g, c, 4, s4) : sk_op_reshape(g, c, 2, s2);
    r = m->spatial ? sk_op_reshape(g, r, 4, s4) : sk_op_reshape(g, r, 2, s2);
    int c0 = c, r0 = r;
    int *cin = sk_graph_scratch(g, sizeof(int) * 2 * (size_t)(ld + 1));
    if (!cin) return SK_ENOMEM;
    int *rin = cin + ld + 1;
    struct sk_layer_run run = { .g = g, .m = m, .w = m->params, .dw = m->grads };
    for (int li = 0; li < ld; li++) {
        cin[li] = c;
        rin[li] = r;
        run.L = &m->layers[li];
        run.index = li;
        if ((rc = sk_layer_of(run.L)->ibp(&run, &c, &r))) return rc;
        if (c < 0) return c;
        if (r < 0) return r;
    }
    int hc = c, hr = r; /* the box of the last dense layer's input */

    /* C [M, K]: row (n, i) is e_y - e_j, j the i-th class other than y_n;
     * P [N*K, S] puts margin i of row n back at column j (0 at y). */
    float *Cm = sk_graph_scratch_zero(g, sizeof(float) * (size_t)M * K);
    float *Pm = sk_graph_scratch_zero(g, sizeof(float) * (size_t)N * K * S);
    if (!Cm || !Pm) return SK_ENOMEM;
    for (int n = 0; n < N; n++)
        for (int j = 0, i = 0; j < K; j++) {
            if (j == y[n]) continue;
            Cm[((size_t)n * S + i) * K + y[n]] = 1.0f;
            Cm[((size_t)n * S + i) * K + j] = -1.0f;
            Pm[((size_t)n * K + j) * S + i] = 1.0f;
            i++;
        }
    int cs[2] = { M, K }, ps[2] = { N * K, S }, ns[2] = { N, S };
    int Cn = sk_graph_input(g, Cm, 2, cs, false);
    run.L = &m->layers[ld];
    run.index = ld;
    int W, b;
    if ((rc = sk_layer_of(run.L)->params(&run, &W, &b))) return rc;
    int b1[2] = { 1, K };
    int A = sk_op_dense(g, Cn, sk_op_transpose(g, W), -1);                                /* [M, D]: W_y - W_j */
    int acc = sk_op_reshape(g, sk_op_dense(g, Cn, sk_op_reshape(g, b, 2, b1), -1), 2, ns); /* b_y - b_j */
    if (A < 0) return A;
    if (acc < 0) return acc;
    /* IBP in specification form: (W_y - W_j) c - |W_y - W_j| r + b_y - b_j */
    int m_ibp = sk_op_add(g, sk_op_sub(g, sk_op_dot_groups(g, A, hc), sk_op_dot_groups(g, sk_layer_abs(g, A), hr)), acc);
    int mar = m_ibp;
    if (beta > 0) {
        for (int li = ld - 1; li >= 0 && rc == SK_OK; li--) {
            const struct sk_layer *L = &m->layers[li];
            run.L = L;
            run.index = li;
            /* A is [M, out of layer li]; bring it to [M, in of layer li] */
            int sh[4] = { M, L->in[0], L->in[1], L->in[2] }, sf[2] = { M, L->in[0] * L->in[1] * L->in[2] };
            switch (L->kind) {
            case SK_LAYER_FLATTEN:
            case SK_LAYER_DROPOUT:
                A = L->spatial_in ? sk_op_reshape(g, A, 4, sh) : sk_op_reshape(g, A, 2, sf);
                break;
            case SK_LAYER_RELU: {
                /* lower line alpha x (alpha = [u >= -l], the adaptive choice), upper line s x + s l-;
                 * the lower bound takes the lower line where A > 0, the upper where A < 0 */
                int l = sk_op_sub(g, cin[li], rin[li]), u = sk_op_add(g, cin[li], rin[li]);
                if (l < 0) return l;
                if (u < 0) return u;
                size_t D = sk_graph_numel(g, l);
                float *al = sk_graph_scratch(g, sizeof(float) * D);
                if (!al) return SK_ENOMEM;
                const float *lv = sk_graph_value(g, l), *uv = sk_graph_value(g, u);
                for (size_t q = 0; q < D; q++) al[q] = lv[q] >= 0 ? 1.0f : uv[q] <= 0 ? 0.0f : (uv[q] >= -lv[q] ? 1.0f : 0.0f);
                int alpha = sk_graph_input(g, al, sk_graph_ndim(g, l), sk_graph_shape(g, l), false);
                int s = sk_op_relu_upper_slope(g, l, u);
                int t = sk_op_mul(g, sk_op_relu(g, sk_op_scale(g, l, -1.0f)), s);
                int Ap = sk_op_relu(g, A), An = sk_op_sub(g, A, Ap);
                A = sk_op_add(g, sk_op_mul_groups(g, Ap, alpha), sk_op_mul_groups(g, An, s));
                acc = sk_op_add(g, acc, sk_op_dot_groups(g, An, t));
                break;
            }
            case SK_LAYER_DENSE:
                if ((rc = sk_layer_of(L)->params(&run, &W, &b))) return rc;
                if (b >= 0) {
                    int bs[2] = { 1, L->units };
                    acc = sk_op_add(g, acc, sk_op_reshape(g, sk_op_dense(g, A, sk_op_reshape(g, b, 2, bs), -1), 2, ns));
                }
                A = sk_op_dense(g, A, sk_op_transpose(g, W), -1);
                break;
            case SK_LAYER_CONV: {
                if ((rc = sk_layer_of(L)->params(&run, &W, &b))) return rc;
                int so[4] = { M, L->out[0], L->out[1], L->out[2] };
                A = sk_op_reshape(g, A, 4, so);
                if (b >= 0) {
                    /* the bias as a map: the conv of a zero image */
                    int z4[4] = { 1, L->in[0], L->in[1], L->in[2] }, bf[2] = { 1, L->out[0] * L->out[1] * L->out[2] };
                    float *zi = sk_graph_scratch_zero(g, sizeof(float) * (size_t)L->in[0] * L->in[1] * L->in[2]);
                    if (!zi) return SK_ENOMEM;
                    int bmap = sk_op_conv2d(g, sk_graph_input(g, zi, 4, z4, false), W, b, L->stride, L->pad);
                    int Af[2] = { M, bf[1] };
                    int term = sk_op_dense(g, sk_op_reshape(g, A, 2, Af), sk_op_reshape(g, bmap, 2, bf), -1);
                    acc = sk_op_add(g, acc, sk_op_reshape(g, term, 2, ns));
                }
                A = sk_op_conv_transpose2d(g, A, W, L->stride, L->pad, L->in[1], L->in[2]);
                break;
            }
            default:
                return sk_error(SK_EINVAL, "CROWN-IBP: layer %d (%s) unexpected", li, sk_layer_name(L->kind));
            }
            if (A < 0) return A;
            if (acc < 0) return acc;
        }
        /* concretize at the (transformed) input box */
        int m_crown = sk_op_add(g, sk_op_sub(g, sk_op_dot_groups(g, A, c0), sk_op_dot_groups(g, sk_layer_abs(g, A), r0)), acc);
        mar = beta >= 1 ? m_crown : sk_op_add(g, sk_op_scale(g, m_crown, beta), sk_op_scale(g, m_ibp, 1.0f - beta));
    }
    if (mar < 0) return mar;
    *mlo = sk_op_dot_groups(g, sk_graph_input(g, Pm, 2, ps, false), mar);
    return *mlo < 0 ? *mlo : SK_OK;
}

int sk_robust_crown_ibp_worst_logits(struct sk_model *m, struct sk_graph *g, int c, int r, const int *y, float beta,
                                     int *zw)
{
    int mlo, rc = sk_robust_crown_ibp_margins(m, g, c, r, y, beta, &mlo);
    if (rc) return rc;
    *zw = sk_op_scale(g, mlo, -1.0f);
    return *zw < 0 ? *zw : SK_OK;
}
