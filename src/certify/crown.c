/* CROWN (Zhang et al. 2018): backward linear relaxation over the steps
 * (lirpa.h) of a chain or a graph for every layer kind, with intermediate
 * boxes by CROWN layer by layer intersected with interval arithmetic, and
 * bounds of a specification matrix C directly (c·y, not logits subtracted
 * afterwards). */
#include "certify/rounding.h"
#include "certify/lirpa.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---------------- building the chain ---------------- */

static struct lp_step *push_step(struct lp_net *net, int cap)
{
    SK_ASSERT(net->n < cap);
    struct lp_step *s = &net->s[net->n++];
    memset(s, 0, sizeof *s);
    s->relu_off = -1;
    s->in1 = -1;
    return s;
}

/* ea_c, eab_c: per channel bounds of the rounding in a_c, b_c; in0: the value read */
static int diag_step(struct lp_net *net, int cap, int in0, int din, int per, const float *a_c, const float *b_c,
                     const float *ea_c, const float *eab_c)
{
    struct lp_step *s = push_step(net, cap);
    s->kind = LP_DIAG;
    s->in0 = in0;
    s->din = s->dout = din;
    s->a = sk_malloc(sizeof(float) * (size_t)din);
    s->ab = sk_malloc(sizeof(float) * (size_t)din);
    s->ea = sk_malloc(sizeof(float) * (size_t)din);
    s->eab = sk_malloc(sizeof(float) * (size_t)din);
    if (!s->a || !s->ab || !s->ea || !s->eab) return SK_ENOMEM;
    for (int j = 0; j < din; j++) {
        s->a[j] = a_c[j / per];
        s->ab[j] = b_c[j / per];
        s->ea[j] = ea_c[j / per];
        s->eab[j] = eab_c[j / per];
    }
    return SK_OK;
}

int lp_net_build(const struct sk_model *m, struct lp_net *net)
{
    memset(net, 0, sizeof *net);
    if (!sk_model_is_chain(m))
        return sk_error(SK_EINVAL, "the weight-box bounds take chains of layers only (model '%s' has branches: add, "
                        "cat or a layer reading a named output); certify the posterior's samples with method ibp, "
                        "crown or alpha-crown", m->spec);
    return lp_net_build_graph(m, net);
}

int lp_net_build_graph(const struct sk_model *m, struct lp_net *net)
{
    memset(net, 0, sizeof *net);
    int cap = m->n_layers + 1;
    net->s = sk_calloc((size_t)cap, sizeof *net->s);
    /* val[li]: the value holding layer li's output (flatten and dropout: their input's) */
    int *val = sk_malloc(sizeof(int) * ((size_t)m->n_layers + 1));
    if (!net->s || !val) {
        sk_free(val);
        sk_free(net->s);
        net->s = NULL;
        return SK_ENOMEM;
    }
    net->in_dim = m->in_dim;
    int rc = SK_OK, vin = 0;
    if (m->prep) {
        int D = m->in_dim;
        float *a = sk_malloc(sizeof(float) * (size_t)D), *b = sk_malloc(sizeof(float) * (size_t)D);
        float *ea = sk_calloc((size_t)D, sizeof(float)), *eb = sk_malloc(sizeof(float) * (size_t)D);
        rc = SK_ENOMEM;
        if (a && b && ea && eb) {
            for (int j = 0; j < D; j++) {
                a[j] = m->prep->scale[j];
                b[j] = -m->prep->shift[j] * m->prep->scale[j];
                /* one float product: within 2^-24 of the exact shift * scale */
                eb[j] = 0x1p-23f * fabsf(b[j]) + FLT_TRUE_MIN;
            }
            rc = diag_step(net, cap, 0, D, 1, a, b, ea, eb);
        }
        sk_free(a);
        sk_free(b);
        sk_free(ea);
        sk_free(eb);
        if (rc) goto fail;
        vin = 1;
    }
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        int din = L->in[0] * L->in[1] * L->in[2], dout = L->out[0] * L->out[1] * L->out[2];
        int in0 = L->from[0] < 0 ? vin : val[L->from[0]];
        if (L->kind == SK_LAYER_FLATTEN || L->kind == SK_LAYER_DROPOUT) {
            val[li] = in0;
            continue;
        }
        val[li] = net->n + 1;
        if (L->kind == SK_LAYER_BATCHNORM) {
            int C = L->units, per = L->in[1] * L->in[2];
            float *a = sk_malloc(sizeof(float) * (size_t)C), *b = sk_malloc(sizeof(float) * (size_t)C);
            float *ea = sk_malloc(sizeof(float) * (size_t)C), *eb = sk_malloc(sizeof(float) * (size_t)C);
            rc = SK_ENOMEM;
            if (a && b && ea && eb) {
                for (int c = 0; c < C; c++) {
                    double s = m->params[L->w_off + c] / sqrt((double)m->buffers[L->rv_off + c] + m->bn_eps);
                    a[c] = (float)s;
                    b[c] = (float)(m->params[L->b_off + c] - s * m->buffers[L->rm_off + c]);
                    /* the double formulas are within a few 2^-53 of exact, bn_eps a double of the
                     * model's float, the results rounded to float once */
                    ea[c] = 0x1p-23f * fabsf(a[c]) + FLT_TRUE_MIN;
                    eb[c] = (float)(0x1p-23 * fabs((double)b[c]) +
                                    0x1p-48 * (fabs((double)m->params[L->b_off + c]) +
                                               fabs(s * m->buffers[L->rm_off + c]))) + FLT_TRUE_MIN;
                }
                rc = diag_step(net, cap, in0, din, per, a, b, ea, eb);
            }
            sk_free(a);
            sk_free(b);
            sk_free(ea);
            sk_free(eb);
            if (rc) goto fail;
            continue;
        }
        struct lp_step *s = push_step(net, cap);
        s->in0 = in0;
        s->din = din;
        s->dout = dout;
        s->ic = L->in[0], s->ih = L->in[1], s->iw = L->in[2];
        s->oc = L->out[0], s->oh = L->out[1], s->ow = L->out[2];
        s->k = L->k, s->stride = L->stride, s->pad = L->pad;
        switch (L->kind) {
        case SK_LAYER_DENSE:
        case SK_LAYER_CONV: {
            s->kind = L->kind == SK_LAYER_DENSE ? LP_DENSE : LP_CONV;
            s->W = m->params + L->w_off;
            s->b = m->params + L->b_off;
            s->aW = sk_malloc(sizeof(float) * L->n_w);
            if (!s->aW) {
                rc = SK_ENOMEM;
                goto fail;
            }
            for (size_t i = 0; i < L->n_w; i++) s->aW[i] = fabsf(s->W[i]);
            break;
        }
        case SK_LAYER_AVGPOOL: s->kind = LP_AVGPOOL; break;
        case SK_LAYER_GAP: s->kind = LP_GAP; break;
        case SK_LAYER_MAXPOOL: s->kind = LP_MAXPOOL; break;
        case SK_LAYER_RELU:
        case SK_LAYER_LRELU:
            s->relu_off = net->n_relu;
            net->n_relu += din;
            /* fall through */
        case SK_LAYER_TANH:
        case SK_LAYER_SIGMOID:
        case SK_LAYER_SOFTPLUS:
        case SK_LAYER_GELU:
            s->kind = LP_ACT;
            s->act = L->kind;
            s->p = L->kind == SK_LAYER_LRELU ? L->p : 0.0f;
            break;
        case SK_LAYER_ADD:
        case SK_LAYER_CAT:
            s->kind = L->kind == SK_LAYER_ADD ? LP_ADD : LP_CAT;
            s->in1 = L->from[1] < 0 ? vin : val[L->from[1]];
            break;
        default:
            rc = sk_error(SK_EINVAL, "bound propagation: layer %d (%s) of '%s' is not supported", li,
                          sk_layer_name(L->kind), m->spec);
            goto fail;
        }
    }
    net->out_dim = m->n_classes;
    /* the output is the last step's (a model ending in flatten or dropout reads the value before) */
    if (net->n == 0 || val[m->n_layers - 1] != net->n || net->s[net->n - 1].dout != m->n_classes) {
        rc = sk_error(SK_EINVAL, "bound propagation: model '%s' has no layer that gives its %d outputs", m->spec,
                      m->n_classes);
        goto fail;
    }
    net->maxd = net->in_dim;
    for (int i = 0; i < net->n; i++) {
        if (net->s[i].din > net->maxd) net->maxd = net->s[i].din;
        if (net->s[i].dout > net->maxd) net->maxd = net->s[i].dout;
    }
    net->relu_step = sk_malloc(sizeof(int) * ((size_t)net->n_relu + 1));
    if (!net->relu_step) {
        rc = SK_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < net->n; i++) {
        if (net->s[i].relu_off >= 0)
            for (int j = 0; j < net->s[i].din; j++) net->relu_step[net->s[i].relu_off + j] = i;
        if (net->s[i].in0 != i || net->s[i].in1 >= 0) net->graph = true;
    }
    sk_free(val);
    return SK_OK;
fail:
    sk_free(val);
    lp_net_free(net);
    return rc;
}

void lp_net_free(struct lp_net *net)
{
    if (!net) return;
    for (int i = 0; i < net->n && net->s; i++) {
        sk_free(net->s[i].aW);
        sk_free(net->s[i].a);
        sk_free(net->s[i].ab);
        sk_free(net->s[i].ea);
        sk_free(net->s[i].eab);
    }
    sk_free(net->s);
    sk_free(net->relu_step);
    memset(net, 0, sizeof *net);
}

/* ---------------- boxes ---------------- */

/* Relaxation cache of a nonlinear step: 4 floats per value (activations:
 * al, bl, au, bu) or per output (max pooling: argmax index, dominated flag,
 * max upper bound, unused). */
static size_t rx_len(const struct lp_step *s)
{
    if (s->kind == LP_ACT) return 4 * (size_t)s->din;
    if (s->kind == LP_MAXPOOL) return 4 * (size_t)s->dout;
    return 0;
}

int lp_bounds_alloc(const struct lp_net *net, struct lp_bounds *b)
{
    memset(b, 0, sizeof *b);
    b->n = net->n;
    size_t tot = (size_t)net->in_dim, rtot = 0;
    for (int i = 0; i < net->n; i++) {
        tot += (size_t)net->s[i].dout;
        rtot += rx_len(&net->s[i]);
    }
    b->lo = sk_calloc((size_t)net->n + 1, sizeof(float *));
    b->hi = sk_calloc((size_t)net->n + 1, sizeof(float *));
    b->rx = sk_calloc((size_t)net->n + 1, sizeof(float *));
    b->mem = sk_malloc(sizeof(float) * (2 * tot + rtot + 1));
    if (!b->lo || !b->hi || !b->rx || !b->mem) {
        lp_bounds_free(b);
        return SK_ENOMEM;
    }
    b->n_floats = 2 * tot + rtot;
    float *p = b->mem;
    for (int i = 0; i <= net->n; i++) {
        size_t d = i == 0 ? (size_t)net->in_dim : (size_t)net->s[i - 1].dout;
        b->lo[i] = p;
        b->hi[i] = p + d;
        p += 2 * d;
    }
    for (int i = 0; i < net->n; i++) {
        size_t r = rx_len(&net->s[i]);
        b->rx[i] = r ? p : NULL;
        p += r;
    }
    return SK_OK;
}

void lp_bounds_free(struct lp_bounds *b)
{
    if (!b) return;
    sk_free(b->lo);
    sk_free(b->hi);
    sk_free(b->rx);
    sk_free(b->mem);
    memset(b, 0, sizeof *b);
}

int lp_bounds_copy(const struct lp_net *net, struct lp_bounds *dst, const struct lp_bounds *src)
{
    (void)net;
    SK_ASSERT(dst->n_floats == src->n_floats);
    memcpy(dst->mem, src->mem, sizeof(float) * src->n_floats);
    return SK_OK;
}

/* ---------------- activations: values and sound lines ---------------- */

double lp_act_f(enum sk_layer_kind k, double p, double x)
{
    switch (k) {
    case SK_LAYER_RELU: return x > 0 ? x : 0;
    case SK_LAYER_LRELU: return x > 0 ? x : p * x;
    case SK_LAYER_TANH: return tanh(x);
    case SK_LAYER_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case SK_LAYER_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case SK_LAYER_GELU: return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
    default: return x;
    }
}

static double act_df(enum sk_layer_kind k, double x)
{
    switch (k) {
    case SK_LAYER_TANH: {
        double t = tanh(x);
        return 1 - t * t;
    }
    case SK_LAYER_SIGMOID: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1 - s);
    }
    case SK_LAYER_SOFTPLUS: return 1.0 / (1.0 + exp(-x));
    case SK_LAYER_GELU: return 0.5 * (1.0 + erf(x * 0.70710678118654752)) + x * exp(-0.5 * x * x) * 0.3989422804014327;
    default: return 1;
    }
}

/* A bound of |f''| over the reals: sigmoid 1/(6 sqrt 3), tanh 4/(3 sqrt 3),
 * softplus 1/4, GELU 2 phi(0) (its f'' = phi(x)(2 - x^2)). */
static double act_d2max(enum sk_layer_kind k)
{
    switch (k) {
    case SK_LAYER_SIGMOID: return 0.0963;
    case SK_LAYER_TANH: return 0.7699;
    case SK_LAYER_SOFTPLUS: return 0.25;
    case SK_LAYER_GELU: return 0.7979;
    default: return 0;
    }
}

/* Convexity of f on [l,u]: 1 convex, -1 concave, 0 neither (or unknown). */
static int act_curv(enum sk_layer_kind k, double l, double u)
{
    switch (k) {
    case SK_LAYER_SOFTPLUS: return 1;
    case SK_LAYER_SIGMOID:
    case SK_LAYER_TANH: return u <= 0 ? 1 : l >= 0 ? -1 : 0;
    case SK_LAYER_GELU: return (l >= -1.4142 && u <= 1.4142) ? 1 : (l >= 1.4143 || u <= -1.4143) ? -1 : 0;
    default: return 0;
    }
}

/* GELU's minimum over the reals, at x = -0.75179..., slightly under. */
#define GELU_MIN (-0.16998)
#define GELU_ARGMIN (-0.7517916)

/* Range of an activation over [l,u] (interval arithmetic). */
static void act_range(const struct lp_step *s, float l, float u, float *fl, float *fu)
{
    double a = lp_act_f(s->act, s->p, l), b = lp_act_f(s->act, s->p, u);
    double lo = a < b ? a : b, hi = a < b ? b : a;
    if (s->act == SK_LAYER_LRELU && l < 0 && u > 0) {
        lo = lo < 0 ? lo : 0;
        hi = hi > 0 ? hi : 0;
    }
    if (s->act == SK_LAYER_GELU && l < GELU_ARGMIN && u > GELU_ARGMIN) lo = GELU_MIN;
    /* transcendental values in float: widen by a few ulps */
    if (s->act != SK_LAYER_RELU && s->act != SK_LAYER_LRELU) {
        lo -= 1e-7 * (1 + fabs(lo));
        hi += 1e-7 * (1 + fabs(hi));
    }
    *fl = (float)lo;
    *fu = (float)hi;
    if ((double)*fl > lo) *fl = nextafterf(*fl, -INFINITY);
    if ((double)*fu < hi) *fu = nextafterf(*fu, INFINITY);
}

float lp_relu_default_slope(float p, float l, float u)
{
    if (p > 1) return u >= -l ? 1.0f : p; /* the concave case: this is the upper slope */
    return u >= -l ? 1.0f : p;
}

/* Lines al x + bl <= f(x) <= au x + bu on [l,u] of a smooth activation:
 * slopes from the tangent at the midpoint (the side where f is convex) or
 * the chord, intercepts from the extremes of f(x) - s x on a grid of NG
 * cells, widened by d2max h^2 / 8 (a function with |g''| <= D lies within
 * D h^2 / 8 of its chord on a cell of width h): sound for any slope. */
#define NG 32
static void smooth_lines(enum sk_layer_kind k, double l, double u, float *al, float *bl, float *au, float *bu)
{
    double fl = lp_act_f(k, 0, l), fu = lp_act_f(k, 0, u);
    if (!(u - l > 1e-6)) {
        double lo = fl < fu ? fl : fu, hi = fl < fu ? fu : fl, w = fabs(u - l) * 1.2 + 1e-7 * (1 + fabs(hi));
        *al = *au = 0;
        *bl = (float)(lo - w);
        *bu = (float)(hi + w);
        return;
    }
    double chord = (fu - fl) / (u - l), mid = 0.5 * (l + u), tan = act_df(k, mid);
    int cv = act_curv(k, l, u);
    double sl = cv > 0 ? tan : chord, su = cv < 0 ? tan : chord;
    double h = (u - l) / NG, gmin = INFINITY, gmax = -INFINITY, gmin2 = INFINITY, gmax2 = -INFINITY;
    for (int i = 0; i <= NG; i++) {
        double x = i == NG ? u : l + h * i, f = lp_act_f(k, 0, x);
        double g = f - sl * x, g2 = f - su * x;
        gmin = g < gmin ? g : gmin;
        gmax2 = g2 > gmax2 ? g2 : gmax2;
        (void)gmax;
        (void)gmin2;
    }
    double slack = act_d2max(k) * h * h / 8;
    double tol_l = 1e-7 * (1 + fabs(gmin) + fabs(sl) * (fabs(l) + fabs(u)));
    double tol_u = 1e-7 * (1 + fabs(gmax2) + fabs(su) * (fabs(l) + fabs(u)));
    *al = (float)sl;
    *au = (float)su;
    /* the float slope differs from sl: the intercept absorbs (sl - al) x over [l,u] */
    double dl = fabs(sl - (double)*al) * (fabs(l) + fabs(u)), du = fabs(su - (double)*au) * (fabs(l) + fabs(u));
    *bl = (float)(gmin - slack - tol_l - dl);
    *bu = (float)(gmax2 + slack + tol_u + du);
    *bl = nextafterf(*bl, -INFINITY);
    *bu = nextafterf(*bu, INFINITY);
}

/* The relaxation cache of nonlinear step i from its input box. */
void lp_make_relax(const struct lp_net *net, struct lp_bounds *b, int i)
{
    const struct lp_step *s = &net->s[i];
    const float *lo = b->lo[s->in0], *hi = b->hi[s->in0];
    float *rx = b->rx[i];
    if (s->kind == LP_MAXPOOL) {
        for (int c = 0; c < s->oc; c++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    int best = -1;
                    float bl = -INFINITY, umax = -INFINITY, u2 = -INFINITY;
                    for (int ky = 0; ky < s->k; ky++)
                        for (int kx = 0; kx < s->k; kx++) {
                            int j = (c * s->ih + oy * s->stride + ky) * s->iw + ox * s->stride + kx;
                            if (lo[j] > bl || best < 0) {
                                bl = lo[j];
                                best = j;
                            }
                            umax = hi[j] > umax ? hi[j] : umax;
                        }
                    for (int ky = 0; ky < s->k; ky++)
                        for (int kx = 0; kx < s->k; kx++) {
                            int j = (c * s->ih + oy * s->stride + ky) * s->iw + ox * s->stride + kx;
                            if (j != best) u2 = hi[j] > u2 ? hi[j] : u2;
                        }
                    float *r = rx + 4 * (size_t)((c * s->oh + oy) * s->ow + ox);
                    r[0] = (float)best;
                    r[1] = bl >= u2 ? 1.0f : 0.0f; /* max is x_best exactly */
                    r[2] = umax;
                    r[3] = 0;
                }
        return;
    }
    for (int j = 0; j < s->din; j++) {
        float l = lo[j], u = hi[j], *r = rx + 4 * (size_t)j;
        if (s->act == SK_LAYER_RELU || s->act == SK_LAYER_LRELU) {
            float p = s->p;
            if (l >= 0) {
                r[0] = r[2] = 1;
                r[1] = r[3] = 0;
            } else if (u <= 0) {
                r[0] = r[2] = p;
                r[1] = r[3] = 0;
            } else {
                double cs = ((double)u - (double)p * l) / ((double)u - l);
                double ci = (double)u - cs * u;
                float sl = lp_relu_default_slope(p, l, u);
                /* sound: the float slope differs from cs by |dcs|, which the intercept absorbs
                 * over [l, u], as does the double rounding of cs and ci */
                double fix = net->sound ? fabs(cs - (double)(float)cs) * fmax(-(double)l, (double)u) +
                                              1e-15 * ((double)u - l + fabs(ci))
                                        : 0;
                if (p <= 1) { /* convex: chord above, a line through 0 below */
                    r[0] = sl, r[1] = 0;
                    r[2] = (float)cs;
                    r[3] = nextafterf((float)(ci + fix + 1e-7 * fabs(ci)), INFINITY);
                } else { /* concave: the chord below, a line through 0 above */
                    r[0] = (float)cs;
                    r[1] = nextafterf((float)(ci - fix - 1e-7 * fabs(ci)), -INFINITY);
                    r[2] = sl, r[3] = 0;
                }
            }
        } else {
            smooth_lines(s->act, l, u, &r[0], &r[1], &r[2], &r[3]);
        }
    }
}

/* ---------------- linear steps: forward and transpose ---------------- */

/* y[dout] = T x (+ b when with_bias), T the step's map with weights W. */
void lp_lin_forward(const struct lp_step *s, const float *W, const float *x, float *y, bool with_bias, float *col)
{
    switch (s->kind) {
    case LP_DENSE:
        for (int o = 0; o < s->dout; o++) {
            const float *w = W + (size_t)o * s->din;
            double acc = with_bias ? s->b[o] : 0;
            for (int j = 0; j < s->din; j++) acc += (double)w[j] * x[j];
            y[o] = (float)acc;
        }
        break;
    case LP_CONV: {
        int K = s->ic * s->k * s->k, P = s->oh * s->ow;
        /* col [K, P] */
        for (int c = 0; c < s->ic; c++)
            for (int ky = 0; ky < s->k; ky++)
                for (int kx = 0; kx < s->k; kx++) {
                    float *cr = col + (size_t)((c * s->k + ky) * s->k + kx) * P;
                    for (int oy = 0; oy < s->oh; oy++) {
                        int iy = oy * s->stride - s->pad + ky;
                        for (int ox = 0; ox < s->ow; ox++) {
                            int ix = ox * s->stride - s->pad + kx;
                            cr[oy * s->ow + ox] = (iy >= 0 && iy < s->ih && ix >= 0 && ix < s->iw)
                                                      ? x[(c * s->ih + iy) * s->iw + ix]
                                                      : 0.0f;
                        }
                    }
                }
        sk_sgemm(false, false, s->oc, P, K, 1.0f, W, K, col, P, 0.0f, y, P);
        if (with_bias)
            for (int o = 0; o < s->oc; o++)
                for (int q = 0; q < P; q++) y[o * P + q] += s->b[o];
        break;
    }
    case LP_DIAG:
        for (int j = 0; j < s->din; j++) y[j] = (W ? fabsf(s->a[j]) : s->a[j]) * x[j] + (with_bias ? s->ab[j] : 0);
        break;
    case LP_AVGPOOL: {
        float inv = 1.0f / (float)(s->k * s->k);
        for (int c = 0; c < s->oc; c++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    double acc = 0;
                    for (int ky = 0; ky < s->k; ky++)
                        for (int kx = 0; kx < s->k; kx++)
                            acc += x[(c * s->ih + oy * s->stride + ky) * s->iw + ox * s->stride + kx];
                    y[(c * s->oh + oy) * s->ow + ox] = (float)(acc * inv);
                }
        break;
    }
    case LP_GAP: {
        int P = s->ih * s->iw;
        for (int c = 0; c < s->ic; c++) {
            double acc = 0;
            for (int q = 0; q < P; q++) acc += x[c * P + q];
            y[c] = (float)(acc / P);
        }
        break;
    }
    default: SK_ASSERT(0);
    }
}

/* B[M, din] = A[M, dout] T; bias[q] += A[q]·b. col: conv scratch. */
static void lin_backward(const struct lp_step *s, const float *A, int M, float *B, double *bias, float *col)
{
    switch (s->kind) {
    case LP_DENSE:
        sk_sgemm(false, false, M, s->din, s->dout, 1.0f, A, s->dout, s->W, s->din, 0.0f, B, s->din);
        for (int q = 0; q < M; q++) {
            const float *a = A + (size_t)q * s->dout;
            double acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int o = 0; o < s->dout; o++) acc += (double)a[o] * s->b[o];
            bias[q] += acc;
        }
        break;
    case LP_CONV: {
        int K = s->ic * s->k * s->k, P = s->oh * s->ow;
        for (int q = 0; q < M; q++) {
            const float *a = A + (size_t)q * s->dout;
            float *bq = B + (size_t)q * s->din;
            double acc = 0;
            for (int o = 0; o < s->oc; o++)
                for (int t = 0; t < P; t++) acc += (double)a[o * P + t] * s->b[o];
            bias[q] += acc;
            /* col [K, P] = W^T [K, oc] a [oc, P], then scattered back (col2im) */
            sk_sgemm(true, false, K, P, s->oc, 1.0f, s->W, K, a, P, 0.0f, col, P);
            memset(bq, 0, sizeof(float) * (size_t)s->din);
            for (int c = 0; c < s->ic; c++)
                for (int ky = 0; ky < s->k; ky++)
                    for (int kx = 0; kx < s->k; kx++) {
                        const float *cr = col + (size_t)((c * s->k + ky) * s->k + kx) * P;
                        for (int oy = 0; oy < s->oh; oy++) {
                            int iy = oy * s->stride - s->pad + ky;
                            if (iy < 0 || iy >= s->ih) continue;
                            for (int ox = 0; ox < s->ow; ox++) {
                                int ix = ox * s->stride - s->pad + kx;
                                if (ix >= 0 && ix < s->iw) bq[(c * s->ih + iy) * s->iw + ix] += cr[oy * s->ow + ox];
                            }
                        }
                    }
        }
        break;
    }
    case LP_DIAG:
        for (int q = 0; q < M; q++) {
            const float *a = A + (size_t)q * s->dout;
            float *bq = B + (size_t)q * s->din;
            double acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int j = 0; j < s->din; j++) {
                bq[j] = a[j] * s->a[j];
                acc += (double)a[j] * s->ab[j];
            }
            bias[q] += acc;
        }
        break;
    case LP_AVGPOOL: {
        float inv = 1.0f / (float)(s->k * s->k);
        for (int q = 0; q < M; q++) {
            const float *a = A + (size_t)q * s->dout;
            float *bq = B + (size_t)q * s->din;
            memset(bq, 0, sizeof(float) * (size_t)s->din);
            for (int c = 0; c < s->oc; c++)
                for (int oy = 0; oy < s->oh; oy++)
                    for (int ox = 0; ox < s->ow; ox++) {
                        float v = a[(c * s->oh + oy) * s->ow + ox] * inv;
                        for (int ky = 0; ky < s->k; ky++)
                            for (int kx = 0; kx < s->k; kx++)
                                bq[(c * s->ih + oy * s->stride + ky) * s->iw + ox * s->stride + kx] += v;
                    }
        }
        break;
    }
    case LP_GAP: {
        int P = s->ih * s->iw;
        for (int q = 0; q < M; q++) {
            const float *a = A + (size_t)q * s->dout;
            float *bq = B + (size_t)q * s->din;
            for (int c = 0; c < s->ic; c++)
                for (int t = 0; t < P; t++) bq[c * P + t] = a[c] / (float)P;
        }
        break;
    }
    default: SK_ASSERT(0);
    }
}

size_t lp_conv_col(const struct lp_net *net)
{
    size_t c = 1;
    for (int i = 0; i < net->n; i++)
        if (net->s[i].kind == LP_CONV) {
            size_t v = (size_t)net->s[i].ic * net->s[i].k * net->s[i].k * net->s[i].oh * net->s[i].ow;
            c = v > c ? v : c;
        }
    return c;
}

/* ---------------- sound floating point ----------------
 * Rounding errors are bounded a priori (Higham, Accuracy and Stability of
 * Numerical Algorithms, 3.1): a sum of n products computed in any order, with
 * any blocking and with or without FMA, differs from the exact sum by at most
 * gamma_n sum |a_i b_i|, gamma_n = n u / (1 - n u) (u = 2^-24 in float, 2^-53
 * in double), and a computed sum of non-negative terms is at least
 * (1 - gamma_n) of the exact one. So the sgemm of OpenBLAS, whatever its
 * kernel and thread split, needs no change: each bound moves outward by the
 * error term, computed from |T| and the magnitudes of the boxes. Underflow
 * adds at most 2^-149 per operation: a few FLT_TRUE_MIN per value. */
#define U_F (FLT_EPSILON / 2)
#define U_D (DBL_EPSILON / 2)
static double gam(double n, double u)
{
    return n * u / (1 - n * u);
}

/* lp_lin_forward of step s: |fl(T x + b) - (T x + b)| <= g (|T| |x| + |b|),
 * and on non-negative T and x the computed value is >= (1 - g) T x. */
static double fwd_gamma(const struct lp_step *s)
{
    switch (s->kind) {
    case LP_DENSE: return gam((double)s->din + 1, U_D) + 2 * U_F; /* double sums, one rounding to float */
    case LP_CONV: return gam((double)s->ic * s->k * s->k + 1, U_F); /* float sgemm, then the bias */
    case LP_DIAG: return gam(2, U_F);
    case LP_AVGPOOL: return gam((double)s->k * s->k + 1, U_D) + 3 * U_F; /* 1/k^2 in float, a product */
    case LP_GAP: return gam((double)s->ih * s->iw + 1, U_D) + 2 * U_F;
    default: return 0;
    }
}

/* lin_backward of step s: |fl(A T) - A T| <= g |A| |T| elementwise. */
static double bwd_gamma(const struct lp_step *s)
{
    switch (s->kind) {
    case LP_DENSE: return gam((double)s->dout, U_F);
    case LP_CONV: return gam((double)s->oc + (double)s->k * s->k, U_F); /* sgemm, then col2im's adds */
    case LP_DIAG:
    case LP_GAP: return gam(1, U_F);
    case LP_AVGPOOL: return gam((double)s->k * s->k + 2, U_F);
    default: return 0;
    }
}

/* |T| for lp_lin_forward: |W|, |a| (any non-NULL pointer), or the
 * non-negative pooling maps themselves. */
static const float *abs_map(const struct lp_step *s)
{
    if (s->kind == LP_DENSE || s->kind == LP_CONV) return s->aW;
    if (s->kind == LP_DIAG) return s->a;
    return NULL;
}

/* |bias| of output o of a linear step (0 for the pooling steps). */
static double abs_bias(const struct lp_step *s, int o)
{
    if (s->kind == LP_DENSE) return fabs((double)s->b[o]);
    if (s->kind == LP_CONV) return fabs((double)s->b[o / (s->oh * s->ow)]);
    if (s->kind == LP_DIAG) return fabs((double)s->ab[o]);
    return 0;
}

/* lp_step_interval of a linear step with every rounding bounded: the centre
 * c and a radius r with [lo, hi] inside [c - r, c + r] exactly, then
 *   T x + b in fl(T c + b) +- (fl(|T| r) + g (fl(|T| |c|) + |b|)) / (1 - g)^2
 * (+ the diagonal step's rounded coefficients: ea max|x| + eab). */
static void interval_sound(const struct lp_step *s, const float *lo, const float *hi, float *tmp, float *col)
{
    float *olo = tmp, *ohi = tmp + s->dout, *cr = ohi + s->dout, *rr = cr + s->din;
    for (int j = 0; j < s->din; j++) {
        cr[j] = 0.5f * (lo[j] + hi[j]);
        rr[j] = sk_certify_up(fmax((double)hi[j] - cr[j], (double)cr[j] - lo[j]));
    }
    lp_lin_forward(s, s->W, cr, olo, true, col);
    lp_lin_forward(s, abs_map(s), rr, ohi, false, col);
    /* |c| over the centre, |T| |c| over the radius (no longer needed) */
    for (int j = 0; j < s->din; j++) cr[j] = fabsf(cr[j]);
    lp_lin_forward(s, abs_map(s), cr, rr, false, col);
    double g = fwd_gamma(s), d = (1 - g) * (1 - g);
    double tiny = (double)FLT_TRUE_MIN * (s->din + 4);
    for (int o = 0; o < s->dout; o++) {
        double R = ((double)ohi[o] + g * ((double)rr[o] + abs_bias(s, o))) / d + tiny;
        if (s->kind == LP_DIAG) R += (double)s->ea[o] * fmax(fabs((double)lo[o]), fabs((double)hi[o])) * (1 + 1e-6) + s->eab[o];
        double c = olo[o];
        olo[o] = sk_certify_down(c - R);
        ohi[o] = sk_certify_up(c + R);
    }
}

/* Interval of step i's output from its input box (centre/radius form for
 * the linear steps, with the radius through |W|). Rounding: the results are
 * widened by a relative 2^-20 (float accumulation over the layer), or with
 * net->sound by the a-priori bound of interval_sound. */
void lp_step_interval(const struct lp_net *net, struct lp_bounds *b, int i, float *tmp, float *col)
{
    const struct lp_step *s = &net->s[i];
    const float *lo = b->lo[s->in0], *hi = b->hi[s->in0];
    float *olo = tmp, *ohi = tmp + s->dout;
    if (s->kind == LP_ADD) {
        /* the double sum of two floats is within 2^-53 of exact; then outward to float */
        const float *lo2 = b->lo[s->in1], *hi2 = b->hi[s->in1];
        for (int j = 0; j < s->dout; j++) {
            double l = (double)lo[j] + lo2[j], u = (double)hi[j] + hi2[j];
            olo[j] = sk_certify_down(l - U_D * fabs(l));
            ohi[j] = sk_certify_up(u + U_D * fabs(u));
        }
        return;
    }
    if (s->kind == LP_CAT) {
        int d2 = s->dout - s->din;
        memcpy(olo, lo, sizeof(float) * (size_t)s->din);
        memcpy(olo + s->din, b->lo[s->in1], sizeof(float) * (size_t)d2);
        memcpy(ohi, hi, sizeof(float) * (size_t)s->din);
        memcpy(ohi + s->din, b->hi[s->in1], sizeof(float) * (size_t)d2);
        return;
    }
    if (s->kind == LP_ACT) {
        for (int j = 0; j < s->din; j++) act_range(s, lo[j], hi[j], &olo[j], &ohi[j]);
        return;
    }
    if (s->kind == LP_MAXPOOL) {
        for (int c = 0; c < s->oc; c++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    float a = -INFINITY, z = -INFINITY;
                    for (int ky = 0; ky < s->k; ky++)
                        for (int kx = 0; kx < s->k; kx++) {
                            int j = (c * s->ih + oy * s->stride + ky) * s->iw + ox * s->stride + kx;
                            a = lo[j] > a ? lo[j] : a;
                            z = hi[j] > z ? hi[j] : z;
                        }
                    int o = (c * s->oh + oy) * s->ow + ox;
                    olo[o] = a;
                    ohi[o] = z;
                }
        return;
    }
    if (net->sound) {
        interval_sound(s, lo, hi, tmp, col);
        return;
    }
    /* centre and radius in the output's space: olo <- T c + b, ohi <- |T| r */
    float *cr = ohi + s->dout; /* din centre, din radius */
    for (int j = 0; j < s->din; j++) {
        cr[j] = 0.5f * (lo[j] + hi[j]);
        cr[s->din + j] = 0.5f * (hi[j] - lo[j]);
    }
    lp_lin_forward(s, s->W, cr, olo, true, col);
    if (s->kind == LP_DENSE || s->kind == LP_CONV)
        lp_lin_forward(s, s->aW, cr + s->din, ohi, false, col);
    else if (s->kind == LP_DIAG)
        lp_lin_forward(s, (const float *)s->a /* non-NULL: |a| */, cr + s->din, ohi, false, col);
    else
        lp_lin_forward(s, NULL, cr + s->din, ohi, false, col);
    for (int o = 0; o < s->dout; o++) {
        float c = olo[o], r = ohi[o];
        float w = 9.6e-7f * (fabsf(c) + r) + 1e-30f;
        olo[o] = c - r - w;
        ohi[o] = c + r + w;
    }
}

/* ---------------- the backward pass ---------------- */

/* The lines of value j of nonlinear step i for row q: lower (A >= 0) or
 * upper (A < 0). */
static inline void act_line(const struct lp_net *net, const struct lp_bounds *b, int i, int j, int q, bool lower,
                            const struct lp_extra *x, float *sl, float *ic)
{
    const struct lp_step *s = &net->s[i];
    const float *r = b->rx[i] + 4 * (size_t)j;
    if (lower) {
        *sl = r[0];
        *ic = r[1];
        if (x && x->alpha && s->relu_off >= 0 && s->p <= 1 && b->lo[s->in0][j] < 0 && b->hi[s->in0][j] > 0)
            *sl = x->alpha[(size_t)q * net->n_relu + s->relu_off + j];
    } else {
        *sl = r[2];
        *ic = r[3];
    }
}

/* sum_j min over [lo_j, hi_j] of a_j x_j, in double; *err (may be NULL)
 * gets a bound of its rounding error */
static double concretize(const float *a, const float *lo, const float *hi, int d, float *corner, double *err)
{
    double s = 0, mag = 0;
    /* the products are exact in double and the rounding bound holds for any
     * order of the sum, so the sums are vectorised */
    if (!corner && !err) {
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < d; j++) s += (double)a[j] * (a[j] >= 0 ? lo[j] : hi[j]);
        return s;
    }
#pragma omp simd reduction(+ : s, mag)
    for (int j = 0; j < d; j++) {
        float x = a[j] >= 0 ? lo[j] : hi[j];
        if (corner) corner[j] = x;
        s += (double)a[j] * x;
        mag += fabs((double)a[j] * x);
    }
    if (err) *err = gam((double)d, U_D) * mag;
    return s;
}

/* max |x| over the box [lo, hi] of d values */
static void box_mag(const float *lo, const float *hi, int d, float *m)
{
    for (int j = 0; j < d; j++) m[j] = fmaxf(fabsf(lo[j]), fabsf(hi[j]));
}

/* Sound floating point, linear step s with input box magnitudes mi [din]:
 * e[dout] such that the rounding of A -> A T, of the bias sum A b and of the
 * diagonal step's coefficients costs at most sum_o |A_o| e_o of the bound.
 * e = g_b |T| mi (the coefficients' error times the input's magnitude) +
 * gamma |b| (+ ea mi + eab). work: din floats; col: conv scratch. */
static void lin_error(const struct lp_step *s, const float *mi, float *e, float *col)
{
    lp_lin_forward(s, abs_map(s), mi, e, false, col);
    double gb = bwd_gamma(s), gf = fwd_gamma(s);
    double gbias = gam(s->kind == LP_CONV ? (double)s->oc * s->oh * s->ow : (double)s->dout + 1, U_D);
    for (int o = 0; o < s->dout; o++) {
        double v = gb * (double)e[o] / (1 - gf) + gbias * abs_bias(s, o) + (double)FLT_TRUE_MIN * (s->din + 4);
        if (s->kind == LP_DIAG) v += (double)s->ea[o] * mi[o] + s->eab[o];
        e[o] = sk_certify_up(v * (1 + 4 * U_F));
    }
}

/* The coefficients of one chunk of rows on the live values of the graph:
 * Av[v] [Mc, size of v] or NULL (no row has a coefficient there yet), and
 * a free list of buffers of chunk * maxd floats. */
struct coefs {
    float **Av, **pool;
    int n_pool;
    size_t len;
};

static float *coef_get(struct coefs *c)
{
    return c->n_pool > 0 ? c->pool[--c->n_pool] : sk_malloc(sizeof(float) * c->len);
}

static void coef_put(struct coefs *c, float *p)
{
    if (p) c->pool[c->n_pool++] = p;
}

static int value_dim(const struct lp_net *net, int v)
{
    return v == 0 ? net->in_dim : net->s[v - 1].dout;
}

/* Add src (Mc rows of d values, row stride ld, from column off) into the
 * coefficients of value v: the first reader's are taken as they are, the
 * others' summed in float. sound: err[q] gets the rounding of those sums,
 * u (|old| + |new|) times the magnitude of v's box. take: src is a buffer
 * of the pool that v may keep (ld == d, off == 0). */
static int coef_add(const struct lp_net *net, const struct lp_bounds *b, struct coefs *c, int v, float *src, int ld,
                    int off, int Mc, bool take, double *err)
{
    int d = value_dim(net, v);
    float *dst = c->Av[v];
    if (!dst) {
        if (take) {
            c->Av[v] = src;
            return SK_OK;
        }
        if (!(dst = c->Av[v] = coef_get(c))) return SK_ENOMEM;
        for (int q = 0; q < Mc; q++)
            memcpy(dst + (size_t)q * d, src + (size_t)q * ld + off, sizeof(float) * (size_t)d);
        return SK_OK;
    }
    for (int q = 0; q < Mc; q++) {
        float *dq = dst + (size_t)q * d;
        const float *sq = src + (size_t)q * ld + off;
        double e = 0;
        for (int j = 0; j < d; j++) {
            if (err) e += (fabs((double)dq[j]) + fabs((double)sq[j])) * fmax(fabs((double)b->lo[v][j]), fabs((double)b->hi[v][j]));
            dq[j] += sq[j];
        }
        if (err) err[q] += U_F * e * (1 + gam((double)d, U_D)) + (double)FLT_TRUE_MIN * d;
    }
    if (take) coef_put(c, src);
    return SK_OK;
}

/* bias[q] + the concretization of every live value at or below `upto` for
 * row q; sound: minus the rounding bounds (err[q] and the sums'). corner
 * (may be NULL): value 0's minimising corner of the row. */
static double concretize_live(const struct lp_net *net, const struct lp_bounds *b, const struct coefs *c, int upto,
                              int q, double bias, const double *err, float *corner)
{
    double v = bias, ce = 0;
    bool sound = net->sound;
    if (corner && !c->Av[0]) memcpy(corner, b->lo[0], sizeof(float) * (size_t)net->in_dim);
    for (int w = 0; w <= upto; w++) {
        if (!c->Av[w]) continue;
        int d = value_dim(net, w);
        double e = 0;
        v += concretize(c->Av[w] + (size_t)q * d, b->lo[w], b->hi[w], d, w == 0 ? corner : NULL, sound ? &e : NULL);
        ce += e;
    }
    if (sound) v -= (err[q] + ce) * (1 + 1e-12) + U_D * fabs(v);
    return v;
}

int lp_backward(const struct lp_net *net, const struct lp_bounds *b, int top, const float *A, int M,
                const struct lp_opts *o, const struct lp_extra *x, float *lb)
{
    int maxd = net->maxd, stop = o->stop, n = net->n;
    bool sound = net->sound;
    SK_ASSERT(stop >= 0 && stop <= top && top <= n);
    /* rows in chunks of at most 2^22 floats of coefficients per value (not with extras: they are per row) */
    int chunk = x ? M : (int)((1u << 22) / (unsigned)maxd);
    if (chunk < 1) chunk = 1;
    if (chunk > M) chunk = M;
    struct coefs cf = { .Av = sk_calloc((size_t)n + 1, sizeof(float *)), .pool = sk_calloc((size_t)n + 3, sizeof(float *)),
                        .len = (size_t)chunk * maxd + 1 };
    float *nxt = sk_malloc(sizeof(float) * cf.len);
    float *col = sk_malloc(sizeof(float) * lp_conv_col(net));
    double *bias = sk_malloc(sizeof(double) * (size_t)chunk + 1), *best = sk_malloc(sizeof(double) * (size_t)chunk + 1);
    /* sound: the rounding error so far of each row's bound, input magnitudes and per-output errors */
    double *err = sound ? sk_calloc((size_t)chunk + 1, sizeof(double)) : NULL;
    float *mi = sound ? sk_malloc(sizeof(float) * ((size_t)maxd + 1)) : NULL;
    float *ev = sound ? sk_malloc(sizeof(float) * ((size_t)maxd + 1)) : NULL;
    int rc = SK_ENOMEM;
    if (!cf.Av || !cf.pool || !nxt || !col || !bias || !best || (sound && (!err || !mi || !ev))) goto done;
    rc = SK_OK;
    int dtop = value_dim(net, top);
    for (int q0 = 0; q0 < M && rc == SK_OK; q0 += chunk) {
        int Mc = M - q0 < chunk ? M - q0 : chunk;
        if (!(cf.Av[top] = coef_get(&cf))) {
            rc = SK_ENOMEM;
            break;
        }
        memcpy(cf.Av[top], A + (size_t)q0 * dtop, sizeof(float) * (size_t)Mc * dtop);
        for (int q = 0; q < Mc; q++) {
            bias[q] = 0;
            best[q] = -INFINITY;
            if (sound) err[q] = 0;
            if (o->with_ibp) {
                double ce = 0;
                best[q] = concretize(cf.Av[top] + (size_t)q * dtop, b->lo[top], b->hi[top], dtop, NULL, sound ? &ce : NULL);
                best[q] -= ce;
            }
        }
        for (int i = top - 1; i >= stop && rc == SK_OK; i--) {
            const struct lp_step *s = &net->s[i];
            bool linear = s->kind == LP_DIAG || s->kind == LP_DENSE || s->kind == LP_CONV || s->kind == LP_AVGPOOL ||
                          s->kind == LP_GAP || s->kind == LP_ADD || s->kind == LP_CAT;
            float *cur = cf.Av[i + 1];
            if (!cur) {
                /* no coefficient reaches this step's output: it takes no part in these rows' bounds */
                if (x && x->Aout && !linear) memset(x->Aout[i] + (size_t)q0 * s->dout, 0, sizeof(float) * (size_t)Mc * s->dout);
                continue;
            }
            cf.Av[i + 1] = NULL;
            if (x && x->Aout && !linear) memcpy(x->Aout[i] + (size_t)q0 * s->dout, cur, sizeof(float) * (size_t)Mc * s->dout);
            if (s->kind == LP_ADD || s->kind == LP_CAT) {
                /* add: both inputs take the coefficient; cat: each its own columns */
                int off2 = s->kind == LP_ADD ? 0 : s->din;
                rc = coef_add(net, b, &cf, s->in0, cur, s->dout, 0, Mc, false, err);
                if (!rc) rc = coef_add(net, b, &cf, s->in1, cur, s->dout, off2, Mc, false, err);
                coef_put(&cf, cur);
                goto next;
            }
            if (sound) box_mag(b->lo[s->in0], b->hi[s->in0], s->din, mi);
            if (sound && linear) {
                lin_error(s, mi, ev, col);
                for (int q = 0; q < Mc; q++) {
                    const float *a = cur + (size_t)q * s->dout;
                    double e = 0;
                    for (int t = 0; t < s->dout; t++) e += fabs((double)a[t]) * ev[t];
                    err[q] += e * (1 + gam((double)s->dout, U_D));
                }
            }
            if (s->kind == LP_ACT) {
                const float *rx = b->rx[i], *li = b->lo[s->in0], *hi = b->hi[s->in0];
                bool opt = x && x->alpha && s->relu_off >= 0 && s->p <= 1;
                for (int q = 0; q < Mc; q++) {
                    const float *a = cur + (size_t)q * s->dout;
                    float *bq = nxt + (size_t)q * s->din;
                    double acc = 0, mag = 0;
                    if (!sound) {
                        /* act_line, vectorised: the lower line (alpha's slope where the relu is
                         * unstable and alpha is given) for a >= 0, else the upper */
                        const float *al = opt ? x->alpha + (size_t)(q0 + q) * net->n_relu + s->relu_off : NULL;
                        if (al) {
#pragma omp simd reduction(+ : acc)
                            for (int j = 0; j < s->din; j++) {
                                int k = 4 * j + (a[j] >= 0 ? 0 : 2);
                                float sl = rx[k], aj = al[j];
                                sl = a[j] >= 0 && li[j] < 0 && hi[j] > 0 ? aj : sl;
                                bq[j] = a[j] * sl;
                                acc += (double)a[j] * rx[k + 1];
                            }
                        } else {
#pragma omp simd reduction(+ : acc)
                            for (int j = 0; j < s->din; j++) {
                                int k = 4 * j + (a[j] >= 0 ? 0 : 2);
                                bq[j] = a[j] * rx[k];
                                acc += (double)a[j] * rx[k + 1];
                            }
                        }
                    } else
                        for (int j = 0; j < s->din; j++) {
                            float sl, ic;
                            act_line(net, b, i, j, q0 + q, a[j] >= 0, x, &sl, &ic);
                            bq[j] = a[j] * sl;
                            acc += (double)a[j] * ic;
                            mag += fabs((double)a[j] * ic);
                        }
                    bias[q] += acc;
                    if (x && x->beta && s->relu_off >= 0)
                        for (int j = 0; j < s->din; j++) {
                            int g = s->relu_off + j;
                            if (x->split[g]) bq[j] += x->beta[(size_t)(q0 + q) * net->n_relu + g] * (float)(-x->split[g]);
                        }
                    if (sound) {
                        /* a_j sl_j rounded once, and once more with beta: u (|a_j sl_j| + |bq_j|) max|x_j| */
                        double e = gam((double)s->din, U_D) * mag;
                        for (int j = 0; j < s->din; j++) {
                            float sl, ic;
                            act_line(net, b, i, j, q0 + q, a[j] >= 0, x, &sl, &ic);
                            e += U_F * (fabs((double)a[j] * sl) + fabs((double)bq[j])) * mi[j];
                        }
                        err[q] += e * (1 + gam((double)s->din, U_D)) + (double)FLT_TRUE_MIN * s->din;
                    }
                }
            } else if (s->kind == LP_MAXPOOL) {
                const float *rx = b->rx[i];
                for (int q = 0; q < Mc; q++) {
                    const float *a = cur + (size_t)q * s->dout;
                    float *bq = nxt + (size_t)q * s->din;
                    memset(bq, 0, sizeof(float) * (size_t)s->din);
                    double acc = 0, e = 0;
                    for (int t = 0; t < s->dout; t++) {
                        const float *r = rx + 4 * (size_t)t;
                        if (a[t] >= 0 || r[1] > 0) {
                            bq[(int)r[0]] += a[t];
                            if (sound) e += fabs((double)a[t]) * mi[(int)r[0]];
                        } else {
                            acc += (double)a[t] * r[2];
                            if (sound) e += gam((double)s->dout, U_D) * fabs((double)a[t] * r[2]);
                        }
                    }
                    bias[q] += acc;
                    if (sound) err[q] += e * gam((double)s->k * s->k + 1, U_F) + e * gam((double)s->dout, U_D);
                }
            } else {
                lin_backward(s, cur, Mc, nxt, bias, col);
            }
            coef_put(&cf, cur);
            /* the step's input coefficients: nxt itself when no other reader put any there yet */
            rc = coef_add(net, b, &cf, s->in0, nxt, s->din, 0, Mc, true, err);
            if (rc == SK_OK && !(nxt = coef_get(&cf))) rc = SK_ENOMEM;
        next:
            if (rc) break;
            if (sound)
                for (int q = 0; q < Mc; q++) err[q] += U_D * fabs(bias[q]);
            if (o->with_ibp && i > stop)
                for (int q = 0; q < Mc; q++) {
                    double v = concretize_live(net, b, &cf, i, q, bias[q], err, NULL);
                    if (v > best[q]) best[q] = v;
                }
        }
        if (rc) break;
        for (int q = 0; q < Mc; q++) {
            float *corner = x && x->xstar && stop == 0 ? x->xstar + (size_t)(q0 + q) * net->in_dim : NULL;
            double v = concretize_live(net, b, &cf, stop, q, bias[q], err, corner);
            if (o->with_ibp && best[q] > v) v = best[q];
            /* float products and sums: a relative margin for their rounding (sound: on top of the
             * a-priori bound, after rounding down) */
            float f = sound ? sk_certify_down(v) : (float)v;
            lb[q0 + q] = f - 2e-6f * (1.0f + fabsf(f));
        }
        for (int w = 0; w <= n; w++) {
            coef_put(&cf, cf.Av[w]);
            cf.Av[w] = NULL;
        }
    }
done:
    if (cf.Av)
        for (int w = 0; w <= n; w++) sk_free(cf.Av[w]);
    if (cf.pool)
        for (int k = 0; k < cf.n_pool; k++) sk_free(cf.pool[k]);
    sk_free(cf.Av);
    sk_free(cf.pool);
    sk_free(nxt);
    sk_free(col);
    sk_free(bias);
    sk_free(best);
    sk_free(err);
    sk_free(mi);
    sk_free(ev);
    return rc;
}

int lp_relaxed_forward(const struct lp_net *net, const struct lp_bounds *b, int top, int M, const struct lp_extra *x,
                       float **G)
{
    float *col = sk_malloc(sizeof(float) * lp_conv_col(net));
    if (!col) return SK_ENOMEM;
    memcpy(G[0], x->xstar, sizeof(float) * (size_t)M * net->in_dim);
    for (int i = 0; i < top; i++) {
        const struct lp_step *s = &net->s[i];
        for (int q = 0; q < M; q++) {
            const float *gi = G[s->in0] + (size_t)q * s->din;
            float *go = G[i + 1] + (size_t)q * s->dout;
            if (s->kind == LP_ADD) {
                const float *g2 = G[s->in1] + (size_t)q * s->dout;
                for (int j = 0; j < s->dout; j++) go[j] = gi[j] + g2[j];
            } else if (s->kind == LP_CAT) {
                int d2 = s->dout - s->din;
                memcpy(go, gi, sizeof(float) * (size_t)s->din);
                memcpy(go + s->din, G[s->in1] + (size_t)q * d2, sizeof(float) * (size_t)d2);
            } else if (s->kind == LP_ACT) {
                const float *a = x->Aout[i] + (size_t)q * s->dout;
                for (int j = 0; j < s->din; j++) {
                    float sl, ic;
                    act_line(net, b, i, j, q, a[j] >= 0, x, &sl, &ic);
                    go[j] = sl * gi[j] + ic;
                }
            } else if (s->kind == LP_MAXPOOL) {
                const float *a = x->Aout[i] + (size_t)q * s->dout, *rx = b->rx[i];
                for (int t = 0; t < s->dout; t++) {
                    const float *r = rx + 4 * (size_t)t;
                    go[t] = (a[t] >= 0 || r[1] > 0) ? gi[(int)r[0]] : r[2];
                }
            } else {
                lp_lin_forward(s, s->W, gi, go, true, col);
            }
        }
    }
    sk_free(col);
    return SK_OK;
}
