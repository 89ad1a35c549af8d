/* Flipout (Wen et al. 2018) for Bayes by Backprop on any spec.
 *
 * One weight perturbation dW = sigma (.) eps is drawn per minibatch, as in
 * plain weight sampling, but every example n sees it multiplied by a rank-one
 * sign pattern: W_n = mu + dW (.) (s_out,n s_in,n^T). W_n is again distributed
 * as N(mu, sigma^2) (the signs are independent of eps and eps is symmetric),
 * so the gradient stays unbiased, while the perturbations of different
 * examples are decorrelated and the minibatch average has lower variance.
 * The per-example weights never exist; each dense or conv layer computes
 *   y_n = layer(x_n; mu, b) + s_out,n (.) layer(x_n (.) s_in,n; dW, no bias)
 * with s_in per input feature (dense) or input channel (conv) and s_out per
 * output unit / output channel, constant over the spatial positions: two
 * products per layer instead of one. Biases, batch-norm parameters and any
 * other parameter use the shared draw mu + sigma eps (their perturbation is
 * per unit already; flipping a bias would need per-example bias noise).
 *
 * Built from graph ops on two parameter views: value buffer w (mu for the
 * flipped weights, mu + sigma eps for the rest) with gradient gw, and pw =
 * dW with gradient gp. Then dL/dmu = gw, and dL/dsigma = gp eps on flipped
 * weights, gw eps on the rest.
 */
#include "bayes/bayes_impl.h"

#include <string.h>

struct sk_flipout {
    int B, n_layers;
    size_t P;
    float **sin, **sout;   /* per layer: B x (input / output numel) signs; NULL for other layers */
    float *w, *pw, *gw, *gp; /* [P] */
    struct sk_graph *g;
};

static bool flipped(enum sk_layer_kind k) { return k == SK_LAYER_DENSE || k == SK_LAYER_CONV; }

static size_t numel3(const int *d) { return (size_t)d[0] * (size_t)d[1] * (size_t)d[2]; }

void sk_flipout_free(struct sk_flipout *f)
{
    if (!f) return;
    for (int i = 0; f->sin && i < f->n_layers; i++) {
        sk_free(f->sin[i]);
        sk_free(f->sout[i]);
    }
    sk_free(f->sin);
    sk_free(f->sout);
    sk_free(f->w);
    sk_free(f->pw);
    sk_free(f->gw);
    sk_free(f->gp);
    sk_graph_free(f->g);
    sk_free(f);
}

struct sk_flipout *sk_flipout_new(const struct sk_model *m, int B)
{
    struct sk_flipout *f = sk_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->B = B;
    f->n_layers = m->n_layers;
    f->P = m->n_params;
    size_t P = m->n_params ? m->n_params : 1;
    f->sin = sk_calloc((size_t)m->n_layers, sizeof(float *));
    f->sout = sk_calloc((size_t)m->n_layers, sizeof(float *));
    f->w = sk_malloc(sizeof(float) * P);
    f->pw = sk_malloc(sizeof(float) * P);
    f->gw = sk_malloc(sizeof(float) * P);
    f->gp = sk_malloc(sizeof(float) * P);
    f->g = sk_graph_new();
    if (!f->sin || !f->sout || !f->w || !f->pw || !f->gw || !f->gp || !f->g) {
        sk_flipout_free(f);
        return NULL;
    }
    for (int i = 0; i < m->n_layers; i++) {
        const struct sk_layer *L = &m->layers[i];
        if (!flipped(L->kind)) continue;
        f->sin[i] = sk_malloc(sizeof(float) * (size_t)B * numel3(L->in));
        f->sout[i] = sk_malloc(sizeof(float) * (size_t)B * numel3(L->out));
        if (!f->sin[i] || !f->sout[i]) {
            sk_flipout_free(f);
            return NULL;
        }
    }
    return f;
}

float sk_flipout_sign(uint64_t key, int layer, int side, size_t i)
{
    uint64_t lk = sk_rng_derive(sk_rng_derive(key, 4).key, 2 * (uint64_t)layer + (uint64_t)side).key;
    return sk_mix64(lk + (i + 1) * 0x9E3779B97F4A7C15ull) >> 63 ? -1.0f : 1.0f;
}

/* Signs of one side of layer li for n rows: C channels (features), each
 * repeated over HW positions; out is n x C x HW. */
static void fill_signs(float *out, uint64_t key, int li, int side, int n, int C, size_t HW)
{
    uint64_t lk = sk_rng_derive(sk_rng_derive(key, 4).key, 2 * (uint64_t)li + (uint64_t)side).key;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            size_t j = (size_t)i * C + c;
            float s = sk_mix64(lk + (j + 1) * 0x9E3779B97F4A7C15ull) >> 63 ? -1.0f : 1.0f;
            float *o = out + j * HW;
            for (size_t t = 0; t < HW; t++) o[t] = s;
        }
}

/* y = layer(h; mu, b) + s_out (.) layer(h (.) s_in; dW) for a dense or conv layer. */
static int flip_layer(struct sk_flipout *f, const struct sk_layer *L, int li, int h, int n, uint64_t key)
{
    struct sk_graph *g = f->g;
    bool conv = L->kind == SK_LAYER_CONV;
    int ws[4] = { L->units, L->in[0], L->k, L->k }, bs[1] = { L->units };
    int wnd = conv ? 4 : 2;
    int Wm = sk_graph_param(g, f->w + L->w_off, f->gw + L->w_off, wnd, ws);
    int b = sk_graph_param(g, f->w + L->b_off, f->gw + L->b_off, 1, bs);
    int Wp = sk_graph_param(g, f->pw + L->w_off, f->gp + L->w_off, wnd, ws);
    int ishape[4] = { n, L->in[0], L->in[1], L->in[2] }, oshape[4] = { n, L->out[0], L->out[1], L->out[2] };
    fill_signs(f->sin[li], key, li, 0, n, L->in[0], (size_t)L->in[1] * L->in[2]);
    fill_signs(f->sout[li], key, li, 1, n, L->out[0], (size_t)L->out[1] * L->out[2]);
    int si = sk_graph_input(g, f->sin[li], conv ? 4 : 2, ishape, false);
    int so = sk_graph_input(g, f->sout[li], conv ? 4 : 2, oshape, false);
    int hm, hp;
    if (conv) {
        hm = sk_op_conv2d(g, h, Wm, b, L->stride, L->pad);
        hp = sk_op_conv2d(g, sk_op_mul(g, h, si), Wp, -1, L->stride, L->pad);
    } else {
        hm = sk_op_dense(g, h, Wm, b);
        hp = sk_op_dense(g, sk_op_mul(g, h, si), Wp, -1);
    }
    return sk_op_add(g, hm, sk_op_mul(g, hp, so));
}

int sk_flipout_loss_grad(struct sk_flipout *f, struct sk_model *m, const float *mu, const float *sig,
                         const float *eps, const float *x, const int *y, int n, uint64_t key, float *loss,
                         long *correct, float *dmu, float *dsig)
{
    SK_ASSERT(n >= 1 && n <= f->B && f->P == m->n_params);
    size_t P = m->n_params;
    for (size_t i = 0; i < P; i++) f->w[i] = mu[i] + sig[i] * eps[i];
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (!flipped(L->kind)) continue;
        for (size_t i = L->w_off; i < L->w_off + L->n_w; i++) {
            f->w[i] = mu[i];
            f->pw[i] = sig[i] * eps[i];
        }
    }
    memset(f->gw, 0, sizeof(float) * P);
    memset(f->gp, 0, sizeof(float) * P);
    struct sk_graph *g = f->g;
    sk_graph_reset(g);
    int s2[2] = { n, m->in_dim }, s4[4] = { n, m->in_c, m->in_h, m->in_w };
    int h = sk_model_input(m, g, sk_graph_input(g, x, 2, s2, false));
    if (m->spatial) h = sk_op_reshape(g, h, 4, s4);
    uint64_t dkey = sk_rng_derive(key, 2).key; /* dropout masks, as the plain path */
    for (int li = 0; li < m->n_layers && h >= 0; li++) {
        const struct sk_layer *L = &m->layers[li];
        switch (L->kind) {
        case SK_LAYER_DENSE:
        case SK_LAYER_CONV: h = flip_layer(f, L, li, h, n, key); break;
        case SK_LAYER_BATCHNORM: {
            int cs[1] = { L->units };
            int gm = sk_graph_param(g, f->w + L->w_off, f->gw + L->w_off, 1, cs);
            int bt = sk_graph_param(g, f->w + L->b_off, f->gw + L->b_off, 1, cs);
            h = sk_op_batchnorm(g, h, gm, bt, m->buffers + L->rm_off, m->buffers + L->rv_off, m->bn_momentum,
                                m->bn_eps, true);
            break;
        }
        default: h = sk_layer_forward_fixed(g, L, h, true, sk_rng_derive(dkey, (uint64_t)li).key); break;
        }
    }
    int Ln = sk_loss_cross_entropy(g, h, y, 0.0f);
    if (Ln < 0) return Ln;
    int rc = sk_graph_backward(g, Ln, NULL);
    if (rc) return rc;
    if (loss) *loss = sk_graph_value(g, Ln)[0];
    if (correct) {
        const float *z = sk_graph_value(g, h);
        int K = m->n_classes;
        for (int i = 0; i < n; i++) {
            int b = 0;
            for (int k = 1; k < K; k++)
                if (z[(size_t)i * K + k] > z[(size_t)i * K + b]) b = k;
            *correct += b == y[i];
        }
    }
    for (size_t i = 0; i < P; i++) {
        dmu[i] = f->gw[i];
        dsig[i] = f->gw[i] * eps[i];
    }
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (!flipped(L->kind)) continue;
        for (size_t i = L->w_off; i < L->w_off + L->n_w; i++) dsig[i] = f->gp[i] * eps[i];
    }
    return SK_OK;
}
