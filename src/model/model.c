/* Initialisation, forward, prediction, loss gradient, Hessian-vector product. */
#include "model/layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *sk_init_name(enum sk_init k)
{
    static const char *names[] = { "he-uniform", "he-normal", "glorot-uniform", "glorot-normal", "torch" };
    return (unsigned)k < 5 ? names[k] : "?";
}

int sk_model_init(struct sk_model *m, enum sk_init init, uint64_t seed)
{
    struct sk_rng root = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_INIT);
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (!sk_layer_of(L)->init) continue;
        /* each layer its own stream: adding a layer does not shift the others */
        struct sk_rng r = sk_rng_derive(root.key, (uint64_t)li);
        int rc = sk_layer_of(L)->init(m, L, init, &r);
        if (rc) return rc;
    }
    return SK_OK;
}

/* Layers that read the output of layer li. */
static int readers(const struct sk_model *m, int li)
{
    int n = 0;
    for (int j = li + 1; j < m->n_layers; j++) n += (m->layers[j].from[0] == li) + (m->layers[j].from[1] == li);
    return n;
}

/* conv-relu-maxpool at layer li, a chain whose conv and relu outputs nothing
 * else reads: one fused op with the same numbers and a third of the memory
 * traffic. */
static bool fusable(const struct sk_model *m, int li)
{
    return m->layers[li].kind == SK_LAYER_CONV && li + 2 < m->n_layers &&
           m->layers[li + 1].kind == SK_LAYER_RELU && m->layers[li + 2].kind == SK_LAYER_MAXPOOL &&
           m->layers[li + 1].from[0] == li && m->layers[li + 2].from[0] == li + 1 && readers(m, li) == 1 &&
           readers(m, li + 1) == 1;
}

int sk_model_forward(struct sk_model *m, struct sk_graph *g, int x, enum sk_mode mode, uint64_t noise_key)
{
    if (x < 0) return x;
    size_t n = sk_graph_numel(g, x);
    const int *shape = sk_graph_shape(g, x);
    int N = shape[0];
    if (n != (size_t)N * m->in_dim)
        return sk_error(SK_EINVAL, "model '%s' expects %d inputs per row, got %zu", m->spec, m->in_dim,
                        n / (size_t)(N > 0 ? N : 1));
    int h = x = sk_model_input(m, g, x);
    if (h < 0) return h;
    if (m->spatial) {
        int s4[4] = { N, m->in_c, m->in_h, m->in_w };
        h = sk_graph_ndim(g, x) == 4 ? x : sk_op_reshape(g, x, 4, s4);
    } else {
        int s2[2] = { N, m->in_dim };
        h = sk_graph_ndim(g, x) == 2 ? x : sk_op_reshape(g, x, 2, s2);
    }
    if (h < 0) return h;
    x = h;
    struct sk_layer_run r = { .g = g, .m = m, .w = m->params, .dw = m->grads, .train = mode == SK_MODE_TRAIN,
                              .dropout = mode == SK_MODE_TRAIN || mode == SK_MODE_MC, .h2 = -1 };
    /* the node of every layer's output, for the layers that read it later */
    int *out = sk_graph_scratch(g, sizeof(int) * (size_t)m->n_layers);
    if (!out) return SK_ENOMEM;
    for (int li = 0; li < m->n_layers && h >= 0; li++) {
        r.L = &m->layers[li];
        r.index = li;
        r.key = sk_rng_derive(noise_key, (uint64_t)li).key;
        int f0 = r.L->from[0], f1 = r.L->from[1];
        h = f0 < 0 ? x : out[f0];
        r.h2 = f1 < 0 ? (sk_layer_of(r.L)->join ? x : -1) : out[f1];
        if (fusable(m, li)) {
            const struct sk_layer *P = &m->layers[li + 2];
            int W, b, rc = sk_layer_of(r.L)->params(&r, &W, &b);
            h = rc ? rc : sk_op_conv2d_relu_maxpool(g, h, W, b, r.L->stride, r.L->pad, P->k, P->stride);
            out[li] = out[li + 1] = out[li + 2] = h;
            li += 2;
            continue;
        }
        h = out[li] = sk_layer_of(r.L)->forward(&r, h);
    }
    return h;
}

int sk_model_set_preprocess(struct sk_model *m, const struct sk_preprocess *p)
{
    if (p && p->kind != SK_PREP_NONE) {
        if (p->dim != m->in_dim)
            return sk_error(SK_EINVAL, "preprocessing has %d features but model '%s' takes %d", p->dim, m->spec,
                            m->in_dim);
        for (int j = 0; j < p->dim; j++)
            if (!isfinite(p->shift[j]) || !(p->scale[j] > 0) || !isfinite(p->scale[j]))
                return sk_error(SK_EINVAL, "preprocessing feature %d: shift %g, scale %g (need finite, scale > 0)", j,
                                p->shift[j], p->scale[j]);
    }
    struct sk_preprocess *c = NULL;
    if (p && p->kind != SK_PREP_NONE && !(c = sk_preprocess_clone(p))) return SK_ENOMEM;
    sk_preprocess_free(m->prep);
    m->prep = c;
    return SK_OK;
}

int sk_model_input(const struct sk_model *m, struct sk_graph *g, int x)
{
    if (x < 0 || !m->prep) return x;
    return sk_op_affine_cols(g, x, m->prep->shift, m->prep->scale);
}

void sk_model_input_rows(const struct sk_model *m, float *x, int n)
{
    if (!m->prep) return;
    struct sk_dataset d = { .n = n, .dim = m->in_dim, .x = x };
    sk_preprocess_apply(m->prep, &d);
}

void sk_model_input_box(const struct sk_model *m, const float *lo, const float *hi, int n, float *lo_out,
                        float *hi_out)
{
    size_t D = (size_t)m->in_dim;
    for (size_t i = 0; i < (size_t)n * D; i++) {
        float a = lo[i], b = hi[i];
        if (m->prep) {
            /* scale > 0: the map is increasing in every feature, so the box maps to a box */
            a = (a - m->prep->shift[i % D]) * m->prep->scale[i % D];
            b = (b - m->prep->shift[i % D]) * m->prep->scale[i % D];
        }
        lo_out[i] = a;
        hi_out[i] = b;
    }
}

float sk_model_input_gain(const struct sk_model *m)
{
    float g = 1.0f;
    if (m->prep)
        for (int j = 0; j < m->prep->dim; j++) g = j ? fmaxf(g, m->prep->scale[j]) : m->prep->scale[j];
    return g;
}

int sk_model_set_range(struct sk_model *m, const struct sk_dataset *d)
{
    if (d->dim != m->in_dim)
        return sk_error(SK_EINVAL, "training range: the data have %d values per row, model '%s' takes %d", d->dim,
                        m->spec, m->in_dim);
    size_t D = (size_t)m->in_dim;
    size_t HW = d->h * d->w > 1 && (size_t)d->c * d->h * d->w == D ? (size_t)d->h * d->w : 1;
    float *lo = sk_malloc(sizeof(float) * D), *hi = sk_malloc(sizeof(float) * D);
    if (!lo || !hi) {
        sk_free(lo);
        sk_free(hi);
        return SK_ENOMEM;
    }
    for (size_t g0 = 0; g0 < D; g0 += HW) {
        float a = d->n > 0 ? d->x[g0] : 0, b = a;
        for (size_t i = 0; i < (size_t)d->n; i++)
            for (size_t q = 0; q < HW; q++) {
                float v = d->x[i * D + g0 + q];
                a = v < a ? v : a;
                b = v > b ? v : b;
            }
        for (size_t q = 0; q < HW; q++) {
            lo[g0 + q] = a;
            hi[g0 + q] = b;
        }
    }
    sk_free(m->in_lo);
    sk_free(m->in_hi);
    m->in_lo = lo;
    m->in_hi = hi;
    return SK_OK;
}

int sk_model_check_range(const struct sk_model *m, const float *x, int n, const char *what)
{
    if (!m->in_lo || n < 1) return SK_OK;
    size_t D = (size_t)m->in_dim, outside = 0, worst_j = 0;
    double worst = 0, worst_v = 0;
    for (size_t i = 0; i < (size_t)n; i++)
        for (size_t j = 0; j < D; j++) {
            double lo = m->in_lo[j], hi = m->in_hi[j], w = hi - lo, v = x[i * D + j];
            /* a constant training feature: any change as large as the feature itself is far */
            double pad = w > 0 ? 0.25 * w : 0.25 * fabs(lo) + 1e-6;
            double d = v < lo - pad ? lo - pad - v : v > hi + pad ? v - hi - pad : 0;
            if (d > 0) {
                outside++;
                if (d > worst) {
                    worst = d;
                    worst_j = j;
                    worst_v = v;
                }
            }
        }
    if (outside * 100 <= (size_t)n * D) return SK_OK;
    return sk_error(SK_EINVAL,
                    "%s: %.1f%% of the values lie far outside the range the model was trained on (feature %zu: "
                    "training range [%g, %g], here %g). The model takes the data in their own units and applies its "
                    "own preprocessing (%s): were these data preprocessed already, or are they another data set?",
                    what, 100.0 * (double)outside / ((double)n * (double)D), worst_j, m->in_lo[worst_j],
                    m->in_hi[worst_j], worst_v, m->prep ? sk_prep_kind_name(m->prep->kind) : "none");
}

int sk_data_record_check(const struct sk_data_record *rec, const char *what, const char *classes, uint64_t seed,
                         float test_fraction, struct sk_data_record *eff)
{
    *eff = *rec;
    if (classes && *classes) {
        if (rec->classes[0] && strcmp(classes, rec->classes))
            return sk_error(SK_EINVAL,
                            "%s was trained on classes %s (class %.*s is its output 0); classes %s were asked for: "
                            "the class selection travels with the model, leave it out",
                            what, rec->classes, (int)strcspn(rec->classes, ","), rec->classes, classes);
        snprintf(eff->classes, sizeof eff->classes, "%s", classes);
    }
    if (seed) {
        if (rec->has_split && seed != rec->data_seed)
            return sk_error(SK_EINVAL,
                            "%s was trained on the split of data seed %llu; data seed %llu would score its training "
                            "rows as test rows: leave the data seed out",
                            what, (unsigned long long)rec->data_seed, (unsigned long long)seed);
        eff->data_seed = seed;
    }
    if (test_fraction > 0) {
        if (rec->has_split && test_fraction != rec->test_fraction)
            return sk_error(SK_EINVAL,
                            "%s was trained with test fraction %g; test fraction %g makes another split: leave it out",
                            what, rec->test_fraction, test_fraction);
        eff->test_fraction = test_fraction;
    }
    return SK_OK;
}

#define PRED_BATCH 256

/* Eval-mode outputs of n rows, batch by batch: logits, or their log-softmax. */
static int predict(struct sk_model *m, const float *x, int n, bool log_softmax, float *out)
{
    struct sk_graph *g = sk_graph_new();
    if (!g) return SK_ENOMEM;
    sk_graph_set_param_grads(g, false);
    int K = m->n_classes, rc = SK_OK;
    for (int i = 0; i < n && rc == SK_OK; i += PRED_BATCH) {
        int B = n - i < PRED_BATCH ? n - i : PRED_BATCH;
        sk_graph_reset(g);
        int shape[2] = { B, m->in_dim };
        int xin = sk_graph_input(g, x + (size_t)i * m->in_dim, 2, shape, false);
        int z = sk_model_forward(m, g, xin, SK_MODE_EVAL, 0);
        if (log_softmax) z = sk_op_log_softmax(g, z);
        if (z < 0) {
            rc = z;
            break;
        }
        memcpy(out + (size_t)i * K, sk_graph_value(g, z), sizeof(float) * (size_t)B * K);
    }
    sk_graph_free(g);
    return rc;
}

int sk_model_log_probs(struct sk_model *m, const float *x, int n, float *logp) { return predict(m, x, n, true, logp); }

int sk_model_logits(struct sk_model *m, const float *x, int n, float *logits) { return predict(m, x, n, false, logits); }

int sk_model_evaluate(struct sk_model *m, const float *x, const int *y, int n, double *accuracy, double *loss)
{
    int K = m->n_classes;
    float *lp = sk_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * K);
    if (!lp) return SK_ENOMEM;
    int rc = sk_model_log_probs(m, x, n, lp);
    if (rc == SK_OK) {
        long correct = 0;
        double nll = 0;
        for (int i = 0; i < n; i++) {
            const float *r = lp + (size_t)i * K;
            int best = 0;
            for (int k = 1; k < K; k++)
                if (r[k] > r[best]) best = k;
            correct += best == y[i];
            nll -= r[y[i]];
        }
        if (accuracy) *accuracy = n ? (double)correct / n : 0;
        if (loss) *loss = n ? nll / n : 0;
    }
    sk_free(lp);
    return rc;
}

int sk_model_loss_grad(struct sk_model *m, struct sk_graph *g, const float *x, const int *y, int n,
                       enum sk_mode mode, uint64_t noise_key, float *loss)
{
    memset(m->grads, 0, sizeof(float) * m->n_params);
    sk_graph_reset(g);
    int shape[2] = { n, m->in_dim };
    int xin = sk_graph_input(g, x, 2, shape, false);
    int L = sk_loss_cross_entropy(g, sk_model_forward(m, g, xin, mode, noise_key), y, 0.0f);
    if (L < 0) return L;
    if (loss) *loss = sk_graph_value(g, L)[0];
    return sk_graph_backward(g, L, NULL);
}

int sk_model_hvp_fd(struct sk_model *m, const float *x, const int *y, int n, const float *v, float *hv)
{
    size_t P = m->n_params;
    double vn = 0, tn = 0;
    for (size_t i = 0; i < P; i++) {
        vn += (double)v[i] * v[i];
        tn += (double)m->params[i] * m->params[i];
    }
    if (vn == 0) {
        memset(hv, 0, sizeof(float) * P);
        return SK_OK;
    }
    double r = 1e-3 * (1.0 + sqrt(tn)) / sqrt(vn);
    float *save = sk_malloc(sizeof(float) * P), *gp = sk_malloc(sizeof(float) * P);
    float *buf = sk_malloc(sizeof(float) * m->n_buffers + 64);
    struct sk_graph *g = sk_graph_new();
    int rc = SK_ENOMEM;
    if (save && gp && g && buf) {
        memcpy(save, m->params, sizeof(float) * P);
        memcpy(buf, m->buffers, sizeof(float) * m->n_buffers);
        for (size_t i = 0; i < P; i++) m->params[i] = (float)(save[i] + r * v[i]);
        rc = sk_model_loss_grad(m, g, x, y, n, SK_MODE_EVAL, 0, NULL);
        if (!rc) {
            memcpy(gp, m->grads, sizeof(float) * P);
            for (size_t i = 0; i < P; i++) m->params[i] = (float)(save[i] - r * v[i]);
            rc = sk_model_loss_grad(m, g, x, y, n, SK_MODE_EVAL, 0, NULL);
        }
        if (!rc)
            for (size_t i = 0; i < P; i++) hv[i] = (float)(((double)gp[i] - m->grads[i]) / (2 * r));
        memcpy(m->params, save, sizeof(float) * P);
        memcpy(m->buffers, buf, sizeof(float) * m->n_buffers);
        memset(m->grads, 0, sizeof(float) * P);
    }
    sk_free(save);
    sk_free(gp);
    sk_free(buf);
    sk_graph_free(g);
    return rc;
}

/* One exact HVP of the eval-mode mean cross-entropy along v: on the input
 * rows (on_x: v, hv n x in_dim floats) or on the parameters (n_params). */
static int model_hvp(struct sk_model *m, const float *x, const int *y, int n, bool on_x, const float *v, float *hv)
{
    struct sk_graph *g = sk_graph_new();
    if (!g) return SK_ENOMEM;
    sk_graph_set_param_grads(g, !on_x);
    int shape[2] = { n, m->in_dim };
    int xin = sk_graph_input(g, x, 2, shape, on_x);
    int L = sk_loss_cross_entropy(g, sk_model_forward(m, g, xin, SK_MODE_EVAL, 0), y, 0.0f);
    int rc = L < 0 ? L : SK_OK;
    if (!rc) {
        memset(hv, 0, sizeof(float) * (on_x ? (size_t)n * m->in_dim : m->n_params));
        if (on_x) rc = sk_graph_set_direction(g, xin, v, hv);
        else sk_graph_param_directions(g, m->params, m->n_params, v, hv);
    }
    if (!rc) rc = sk_graph_hvp(g, L);
    sk_graph_free(g);
    return rc;
}

int sk_model_hvp(struct sk_model *m, const float *x, const int *y, int n, const float *v, float *hv)
{
    return model_hvp(m, x, y, n, false, v, hv);
}

int sk_model_hvp_input(struct sk_model *m, const float *x, const int *y, int n, const float *v, float *hv)
{
    return model_hvp(m, x, y, n, true, v, hv);
}
