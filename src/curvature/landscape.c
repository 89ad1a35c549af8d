/* Loss landscapes: the training (and test) loss and accuracy of a model on a
 * line or a plane through its weights, and on the segment between two
 * models. Every point is an eval-mode sk_model_evaluate of the weights set
 * there; the model's own weights are put back bit for bit at the end. */
#include "curvature/curvature_impl.h"

#include <math.h>
#include <string.h>

/* The random directions' stream (a child of the caller's seed), away from
 * the ids of curvature_impl.h. */
#define LANDSCAPE_STREAM 0x63750101u

struct sk_curvature_landscape_config sk_curvature_landscape_defaults(void)
{
    struct sk_curvature_landscape_config c = { 0 };
    c.dims = 1;
    c.dirs = SK_LANDSCAPE_FILTER;
    c.lo = -1;
    c.hi = 1;
    c.steps = 21;
    c.lanczos_steps = 20;
    c.seed = 42;
    return c;
}

void sk_curvature_landscape_free(struct sk_curvature_landscape *ls)
{
    if (!ls) return;
    sk_free(ls->xs);
    sk_free(ls->ys);
    sk_free(ls->loss);
    sk_free(ls->acc);
    sk_free(ls->test_loss);
    sk_free(ls->test_acc);
    sk_free(ls->dir);
    sk_free(ls);
}

/* Coordinate i of steps points from lo to hi, written so that a symmetric
 * range has an exact 0 in the middle (odd steps) and the ends are exact. */
static double coord(double lo, double hi, int i, int steps)
{
    if (steps < 2) return lo;
    return (lo * (double)(steps - 1 - i) + hi * (double)i) / (double)(steps - 1);
}

int sk_curvature_landscape_filter_direction(const struct sk_model *m, uint64_t seed, bool keep_bias_bn, float *d)
{
    uint64_t key = sk_rng_derive(sk_rng_new(seed).key, LANDSCAPE_STREAM).key;
    for (size_t i = 0; i < m->n_params; i++) d[i] = sk_rng_normal_at(key, i);
    for (int k = 0; k < m->n_tensors; k++) {
        const struct sk_tensor_info *ti = &m->tensors[k];
        if (ti->buffer) continue;
        size_t len = 1;
        for (int j = 0; j < ti->ndim; j++) len *= (size_t)ti->shape[j];
        float *dt = d + ti->off;
        const float *wt = m->params + ti->off;
        if (ti->ndim <= 1) {
            /* biases and batch-norm scales and shifts: zero, or the weights
             * themselves (Li et al.'s two choices) */
            for (size_t i = 0; i < len; i++) dt[i] = keep_bias_bn ? wt[i] : 0.0f;
            continue;
        }
        /* a filter: one output channel of a convolution, one neuron (row) of
         * a dense layer */
        size_t rows = (size_t)ti->shape[0], per = len / rows;
        for (size_t r = 0; r < rows; r++) {
            double dn = 0, wn = 0;
            for (size_t i = 0; i < per; i++) {
                dn += (double)dt[r * per + i] * dt[r * per + i];
                wn += (double)wt[r * per + i] * wt[r * per + i];
            }
            double s = dn > 0 ? sqrt(wn) / sqrt(dn) : 0;
            for (size_t i = 0; i < per; i++) dt[r * per + i] = (float)(dt[r * per + i] * s);
        }
    }
    return SK_OK;
}

/* The points' loss and accuracy on the training rows and, if nt > 0, the
 * test rows; set(ctx, i) puts point i's weights into m. */
static int sweep(struct sk_model *m, int n_points, int (*set)(void *ctx, int i), void *ctx, const float *x,
                 const int *y, int n, const float *xt, const int *yt, int nt,
                 const struct sk_curvature_landscape_config *cfg, struct sk_curvature_landscape *ls)
{
    for (int i = 0; i < n_points; i++) {
        int rc = set(ctx, i);
        if (!rc) rc = sk_model_evaluate(m, x, y, n, &ls->acc[i], &ls->loss[i]);
        if (!rc && nt > 0) rc = sk_model_evaluate(m, xt, yt, nt, &ls->test_acc[i], &ls->test_loss[i]);
        if (rc) return rc;
        if (cfg && cfg->progress) cfg->progress(cfg->progress_ctx, "landscape", (double)(i + 1) / n_points);
    }
    return SK_OK;
}

static struct sk_curvature_landscape *alloc_landscape(int nx, int ny, size_t n_dir)
{
    struct sk_curvature_landscape *ls = sk_calloc(1, sizeof *ls);
    if (!ls) return NULL;
    size_t np = (size_t)nx * (size_t)ny;
    ls->nx = nx;
    ls->ny = ny;
    ls->xs = sk_malloc(sizeof(double) * (size_t)nx);
    ls->ys = sk_malloc(sizeof(double) * (size_t)ny);
    ls->loss = sk_malloc(sizeof(double) * np);
    ls->acc = sk_malloc(sizeof(double) * np);
    ls->test_loss = sk_malloc(sizeof(double) * np);
    ls->test_acc = sk_malloc(sizeof(double) * np);
    ls->dir = n_dir ? sk_calloc(n_dir, sizeof(float)) : NULL;
    if (!ls->xs || !ls->ys || !ls->loss || !ls->acc || !ls->test_loss || !ls->test_acc || (n_dir && !ls->dir)) {
        sk_curvature_landscape_free(ls);
        return NULL;
    }
    for (size_t i = 0; i < np; i++) ls->test_loss[i] = ls->test_acc[i] = NAN;
    ls->ys[0] = 0;
    return ls;
}

struct slice_ctx {
    struct sk_model *m;
    const float *w0, *d1, *d2; /* d2 NULL in 1D */
    const struct sk_curvature_landscape *ls;
};

static int slice_set(void *ctx, int i)
{
    struct slice_ctx *s = ctx;
    const struct sk_curvature_landscape *ls = s->ls;
    float a = (float)ls->xs[i % ls->nx], b = s->d2 ? (float)ls->ys[i / ls->nx] : 0.0f;
    float *w = s->m->params;
    size_t P = s->m->n_params;
    if (a == 0 && b == 0) {
        memcpy(w, s->w0, sizeof(float) * P); /* the centre is the model itself, bit for bit */
        return SK_OK;
    }
    if (s->d2) {
#pragma omp parallel for schedule(static) if (P > 65536)
        for (size_t j = 0; j < P; j++) w[j] = s->w0[j] + a * s->d1[j] + b * s->d2[j];
    } else {
#pragma omp parallel for schedule(static) if (P > 65536)
        for (size_t j = 0; j < P; j++) w[j] = s->w0[j] + a * s->d1[j];
    }
    return SK_OK;
}

static int check_range(const struct sk_curvature_landscape_config *c, int n)
{
    if (c->dims != 1 && c->dims != 2) return sk_error(SK_EINVAL, "cfg.dims %d must be 1 or 2", c->dims);
    if (c->steps < 2 || c->steps > 1001) return sk_error(SK_EINVAL, "cfg.steps %d must be in [2, 1001]", c->steps);
    if (!(c->lo < c->hi) || !isfinite(c->lo) || !isfinite(c->hi))
        return sk_error(SK_EINVAL, "cfg.lo %g must be below cfg.hi %g (both finite)", c->lo, c->hi);
    if (n < 1) return sk_error(SK_EINVAL, "a landscape needs at least one training row (got %d)", n);
    return SK_OK;
}

/* The top dims eigenvectors of the Hessian of the mean cross-entropy on
 * cfg->eig_n rows (0: all n), by Lanczos: d[dims x P]. */
static int eigen_directions(struct sk_model *m, const float *x, const int *y, int n,
                            const struct sk_curvature_landscape_config *cfg, float *d, double *eig)
{
    int ne = cfg->eig_n > 0 && cfg->eig_n < n ? cfg->eig_n : n;
    struct sk_curvature_loss *L = sk_curvature_loss_model(m, x, y, ne, NULL);
    if (!L) return sk_last_error()[0] ? SK_EINVAL : SK_ENOMEM;
    struct sk_curvature_op H = sk_curvature_loss_op(L);
    struct sk_curvature_lanczos_config lc = sk_curvature_lanczos_defaults();
    lc.k = cfg->dims;
    lc.max_steps = cfg->lanczos_steps > lc.k ? cfg->lanczos_steps : lc.k;
    if ((size_t)lc.max_steps > m->n_params) lc.max_steps = (int)m->n_params;
    lc.seed = cfg->seed;
    if (cfg->progress) cfg->progress(cfg->progress_ctx, "eigenvectors", 0);
    int rc = lc.k > lc.max_steps ? sk_error(SK_EINVAL, "the model has %zu parameters, fewer than the %d directions",
                                            m->n_params, lc.k)
                                 : sk_curvature_lanczos(&H, &lc, eig, NULL, d, NULL);
    sk_curvature_loss_free(L);
    return rc;
}

struct sk_curvature_landscape *sk_curvature_landscape_slice(struct sk_model *m, const float *x, const int *y, int n,
                                                            const float *xt, const int *yt, int nt,
                                                            const struct sk_curvature_landscape_config *cfg)
{
    if (check_range(cfg, n)) return NULL;
    size_t P = m->n_params;
    int nx = cfg->steps, ny = cfg->dims == 2 ? cfg->steps : 1;
    struct sk_curvature_landscape *ls = alloc_landscape(nx, ny, (size_t)cfg->dims * P);
    float *w0 = sk_malloc(sizeof(float) * (P ? P : 1));
    if (!ls || !w0) {
        sk_curvature_landscape_free(ls);
        sk_free(w0);
        return NULL;
    }
    memcpy(w0, m->params, sizeof(float) * P);
    ls->dims = cfg->dims;
    ls->dirs = cfg->dirs;
    ls->eig[0] = ls->eig[1] = NAN;
    int rc = SK_OK;
    if (cfg->dirs == SK_LANDSCAPE_EIGEN) {
        rc = eigen_directions(m, x, y, n, cfg, ls->dir, ls->eig);
    } else {
        /* the second direction from the next seed: independent of the first */
        for (int k = 0; k < cfg->dims && !rc; k++)
            rc = sk_curvature_landscape_filter_direction(m, cfg->seed + (uint64_t)k, cfg->keep_bias_bn,
                                                         ls->dir + (size_t)k * P);
    }
    for (int i = 0; i < nx; i++) ls->xs[i] = coord(cfg->lo, cfg->hi, i, nx);
    for (int i = 0; i < ny && cfg->dims == 2; i++) ls->ys[i] = coord(cfg->lo, cfg->hi, i, ny);
    struct slice_ctx sc = { m, w0, ls->dir, cfg->dims == 2 ? ls->dir + P : NULL, ls };
    if (!rc) rc = sweep(m, nx * ny, slice_set, &sc, x, y, n, xt, yt, nt, cfg, ls);
    memcpy(m->params, w0, sizeof(float) * P);
    sk_free(w0);
    if (rc) {
        sk_curvature_landscape_free(ls);
        return NULL;
    }
    return ls;
}

struct interp_ctx {
    struct sk_model *m;
    const float *pa, *pb, *ba, *bb; /* params and buffers of the two ends */
    const double *xs;
};

static int interp_set(void *ctx, int i)
{
    struct interp_ctx *s = ctx;
    struct sk_model *m = s->m;
    float t = (float)s->xs[i], u = 1.0f - t;
    /* t = 0 and t = 1 give each end's weights exactly: 1 w + 0 v = w */
    for (size_t j = 0; j < m->n_params; j++) m->params[j] = u * s->pa[j] + t * s->pb[j];
    for (size_t j = 0; j < m->n_buffers; j++) m->buffers[j] = u * s->ba[j] + t * s->bb[j];
    return SK_OK;
}

struct sk_curvature_landscape *sk_curvature_landscape_interpolate(struct sk_model *a, const struct sk_model *b,
                                                                  const float *x, const int *y, int n,
                                                                  const float *xt, const int *yt, int nt,
                                                                  const struct sk_curvature_landscape_config *cfg)
{
    struct sk_curvature_landscape_config c1 = *cfg;
    c1.dims = 1;
    if (check_range(&c1, n)) return NULL;
    if (strcmp(a->spec, b->spec) || a->n_params != b->n_params || a->n_buffers != b->n_buffers) {
        sk_error(SK_EINVAL, "interpolation needs two models of one architecture ('%s' and '%s')", a->spec, b->spec);
        return NULL;
    }
    size_t P = a->n_params, NB = a->n_buffers;
    struct sk_curvature_landscape *ls = alloc_landscape(cfg->steps, 1, 0);
    float *pa = sk_malloc(sizeof(float) * (P + NB + 1));
    if (!ls || !pa) {
        sk_curvature_landscape_free(ls);
        sk_free(pa);
        return NULL;
    }
    memcpy(pa, a->params, sizeof(float) * P);
    memcpy(pa + P, a->buffers, sizeof(float) * NB);
    ls->dims = 1;
    ls->dirs = SK_LANDSCAPE_INTERPOLATE;
    ls->eig[0] = ls->eig[1] = NAN;
    for (int i = 0; i < cfg->steps; i++) ls->xs[i] = coord(cfg->lo, cfg->hi, i, cfg->steps);
    struct interp_ctx ic = { a, pa, b->params, pa + P, b->buffers, ls->xs };
    int rc = sweep(a, cfg->steps, interp_set, &ic, x, y, n, xt, yt, nt, cfg, ls);
    memcpy(a->params, pa, sizeof(float) * P);
    memcpy(a->buffers, pa + P, sizeof(float) * NB);
    sk_free(pa);
    if (rc) {
        sk_curvature_landscape_free(ls);
        return NULL;
    }
    return ls;
}
