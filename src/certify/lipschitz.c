/* A global Lipschitz bound: product of layer spectral norms (on graphs:
 * the branches' constants summed where they are added, root-sum-squared
 * where they are concatenated), and the certified radius it implies.
 *
 * The spectral norm of a linear layer (dense, conv, average pooling; bias
 * dropped) is bounded from above by Gram iteration (Delattre et al. 2023):
 * with H_0 = A and H_{t+1} = H_t^T H_t, sigma_max(A)^(2^t) = sigma_max(H_t)
 * <= |H_t|_F, so |H_t|_F^(1/2^t) is an upper bound that tightens to the norm
 * (by at most a factor rank^(1/2^(t+1))). The matrix of the layer is built
 * explicitly by pushing basis vectors through the op (so it is the map the
 * op computes), in double; every product's rounding is accounted for (see
 * gram_bound), so the bound is a proof, not an estimate. Layers whose matrix
 * is too large (GRAM_MAX_SIDE, GRAM_MAX_ENTRIES) fall back to power
 * iteration, which approaches the norm from below, times LIP_SAFETY: an
 * estimate, reported as not proved. */
#include "certify/certify_impl.h"
#include "model/layers.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define LIP_SAFETY 1.01       /* power iteration approaches the norm from below */
#define GRAM_MAX_SIDE 4096    /* the Gram matrix is min(rows, cols) squared */
#define GRAM_MAX_ENTRIES (1L << 26)
#define GRAM_MAX_ITERS 24
#define GRAM_TIGHT 1e-3       /* stop once the bound is within this of power iteration's lower bound */

static double nrm(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* The layer's linear map (bias dropped) applied to B rows of x on graph g. */
static int layer_map(struct sk_graph *g, struct sk_model *m, const struct sk_layer *L, const float *x, int B,
                     bool needs_grad, int *xin)
{
    int xs4[4] = { B, L->in[0], L->in[1], L->in[2] }, xs2[2] = { B, L->in[0] };
    *xin = L->spatial_in ? sk_graph_input(g, x, 4, xs4, needs_grad) : sk_graph_input(g, x, 2, xs2, needs_grad);
    struct sk_layer_run r = { .g = g, .m = m, .L = L, .w = m->params };
    return sk_layer_of(L)->linear(&r, *xin);
}

/* Power iteration: A x by the graph's forward, A^T y by its backward with
 * seed y. *lower = |A x| for the last unit x: a lower bound of the norm. */
static int power_norm(struct sk_model *m, const struct sk_layer *L, int iters, uint64_t key, double *lower,
                      size_t *ny_out)
{
    size_t nx = (size_t)L->in[0] * L->in[1] * L->in[2];
    float *x = sk_malloc(sizeof(float) * nx), *seed = NULL;
    struct sk_graph *g = sk_graph_new();
    int rc = SK_OK;
    if (!x || !g) {
        rc = SK_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nx; i++) x[i] = sk_rng_normal_at(key, i);
    double s = 0;
    for (int it = 0; it < iters; it++) {
        double nx_ = nrm(x, nx);
        if (nx_ == 0) break;
        for (size_t i = 0; i < nx; i++) x[i] = (float)(x[i] / nx_);
        sk_graph_reset(g);
        int xin, y = layer_map(g, m, L, x, 1, true, &xin);
        if (y < 0) {
            rc = y;
            goto done;
        }
        size_t ny = sk_graph_numel(g, y);
        *ny_out = ny;
        if (!seed && !(seed = sk_malloc(sizeof(float) * ny))) {
            rc = SK_ENOMEM;
            goto done;
        }
        memcpy(seed, sk_graph_value(g, y), sizeof(float) * ny);
        /* |A x| / |x| (|x| is 1 up to the float rounding of the normalisation) */
        s = nrm(seed, ny) / nrm(x, nx);
        if ((rc = sk_graph_backward(g, y, seed))) goto done;
        memcpy(x, sk_graph_grad(g, xin), sizeof(float) * nx);
    }
    *lower = s;
done:
    sk_free(x);
    sk_free(seed);
    sk_graph_free(g);
    return rc;
}

/* The layer's matrix A (rows = outputs, cols = inputs), row-major in double,
 * column i = the op applied to basis vector e_i. */
static int layer_matrix(struct sk_model *m, const struct sk_layer *L, size_t rows, size_t cols, double *A)
{
    enum { CHUNK = 256 };
    float *e = sk_calloc((size_t)CHUNK * cols, sizeof(float));
    struct sk_graph *g = sk_graph_new();
    int rc = e && g ? SK_OK : SK_ENOMEM;
    if (g) sk_graph_set_param_grads(g, false);
    for (size_t c0 = 0; c0 < cols && !rc; c0 += CHUNK) {
        int B = (int)(cols - c0 < CHUNK ? cols - c0 : CHUNK);
        for (int b = 0; b < B; b++) e[(size_t)b * cols + c0 + (size_t)b] = 1.0f;
        sk_graph_reset(g);
        int xin, y = layer_map(g, m, L, e, B, false, &xin);
        if (y < 0) {
            rc = y;
            break;
        }
        if (sk_graph_numel(g, y) != (size_t)B * rows) {
            rc = sk_error(SK_EINVAL, "Lipschitz: layer output %zu, expected %zu", sk_graph_numel(g, y), (size_t)B * rows);
            break;
        }
        const float *v = sk_graph_value(g, y);
        for (int b = 0; b < B; b++)
            for (size_t r = 0; r < rows; r++) A[r * cols + c0 + (size_t)b] = v[(size_t)b * rows + r];
        for (int b = 0; b < B; b++) e[(size_t)b * cols + c0 + (size_t)b] = 0.0f;
    }
    sk_free(e);
    sk_graph_free(g);
    return rc;
}

static double frob(const double *A, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += A[i] * A[i];
    return sqrt(s);
}

/* Upper bound of sigma_max of a rows x cols matrix A (overwritten).
 *
 * The chain: S_0 = A; S_{t+1} = fl(P_t^T P_t) with P_t = 2^-k_t S_t (exact
 * scaling, 2^k_t near |S_t|_F). For any computed product, |fl(P^T P) - P^T P|
 * <= gamma_n |P|^T |P| entrywise (n the inner dimension, gamma_n = n u /
 * (1 - n u), any summation order or FMA), so its spectral norm is at most
 * gamma_n |P|_F^2, and
 *     sigma(S_t)^2 = 4^k_t sigma(P_t^T P_t) <= 4^k_t (sigma(S_{t+1}) + gamma_n |P_t|_F^2).
 * Starting from b_T >= |S_T|_F >= sigma(S_T) and going back gives b_0 >=
 * sigma(A). The Frobenius norms are computed in double and inflated by
 * (1 + (n + 2) u) for their own rounding; the recursion is evaluated upward
 * with a relative 1e-12 per step, far above its rounding. */
static double gram_bound(double *A, size_t rows, size_t cols, double lower)
{
    const double u = DBL_EPSILON / 2;
    size_t n = rows < cols ? rows : cols, inner = rows < cols ? cols : rows;
    double *S = sk_malloc(sizeof(double) * n * n);
    if (!S) return NAN;
    int k[GRAM_MAX_ITERS + 1];
    double fP[GRAM_MAX_ITERS + 1], gam[GRAM_MAX_ITERS + 1];
    double best = INFINITY;
    /* step 0: the Gram matrix of A on its smaller side */
    double f = frob(A, rows * cols) * (1 + (double)(rows * cols + 2) * u);
    if (!(f > 0)) {
        sk_free(S);
        return 0;
    }
    frexp(f, &k[0]);
    for (size_t i = 0; i < rows * cols; i++) A[i] = ldexp(A[i], -k[0]);
    fP[0] = ldexp(f, -k[0]);
    gam[0] = (double)inner * u / (1 - (double)inner * u);
    if (rows < cols)
        sk_dsyrk(false, (int)n, (int)cols, 1.0, A, (int)cols, 0.0, S, (int)n);
    else
        sk_dsyrk(true, (int)n, (int)rows, 1.0, A, (int)cols, 0.0, S, (int)n);
    double *T = A; /* A is no longer needed: n*n <= rows*cols */
    for (int t = 1; t <= GRAM_MAX_ITERS; t++) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < i; j++) S[i * n + j] = S[j * n + i];
        double fs = frob(S, n * n) * (1 + (double)(n * n + 2) * u);
        /* the bound from this level: b_t = |S_t|_F, then back to t = 0 */
        double b = fs;
        for (int s = t - 1; s >= 0; s--) b = ldexp(sqrt((b + gam[s] * fP[s] * fP[s]) * (1 + 1e-12)), k[s]);
        if (b < best) best = b;
        if (!(fs > 0) || best <= lower * (1 + GRAM_TIGHT) || t == GRAM_MAX_ITERS) break;
        frexp(fs, &k[t]);
        for (size_t i = 0; i < n * n; i++) S[i] = ldexp(S[i], -k[t]);
        fP[t] = ldexp(fs, -k[t]);
        gam[t] = (double)n * u / (1 - (double)n * u);
        sk_dsyrk(true, (int)n, (int)n, 1.0, S, (int)n, 0.0, T, (int)n);
        double *sw = S;
        S = T;
        T = sw;
    }
    /* S and T are A's buffer and the n*n one, in some order */
    sk_free(S == A ? T : S);
    return best;
}

/* Spectral norm of a linear layer (dense, conv, average pooling): a proved upper
 * bound by Gram iteration where the matrix fits, else power iteration times
 * LIP_SAFETY (*proved false). */
static int layer_norm(struct sk_model *m, const struct sk_layer *L, int iters, uint64_t key, double *out,
                      bool *proved)
{
    double lower = 0;
    size_t ny = 0, nx = (size_t)L->in[0] * L->in[1] * L->in[2];
    int rc = power_norm(m, L, iters, key, &lower, &ny);
    if (rc) return rc;
    size_t side = nx < ny ? nx : ny;
    if (side > GRAM_MAX_SIDE || nx * ny > (size_t)GRAM_MAX_ENTRIES) {
        *out = lower * LIP_SAFETY;
        *proved = false;
        return SK_OK;
    }
    double *A = sk_malloc(sizeof(double) * nx * ny);
    if (!A) return SK_ENOMEM;
    rc = layer_matrix(m, L, ny, nx, A);
    double b = rc ? NAN : gram_bound(A, ny, nx, lower); /* A is overwritten */
    if (!rc && isnan(b)) rc = SK_ENOMEM;
    if (!rc) {
        *out = b;
        *proved = true;
    }
    sk_free(A);
    return rc;
}

int sk_certify_lipschitz_bound(struct sk_model *m, int iters, uint64_t seed, double *norms, double *prefix,
                               double *global, bool *proved) {
    bool all_proved = true;
    if (iters <= 0) iters = 100;
    int ld = sk_certify_last_dense(m);
    /* Lv[li]: a constant of layer li's output as a function of the model's input. Along a chain it is
     * the product of the layers' constants; where branches join, |f(x) + g(x) - f(y) - g(y)| <= (L_f +
     * L_g)|x - y| for add and |(f, g)(x) - (f, g)(y)|^2 <= (L_f^2 + L_g^2)|x - y|^2 for cat. The input
     * transform (x - shift) * scale is diagonal: its constant is the largest scale. */
    double gain = sk_model_input_gain(m);
    double *Lv = sk_malloc(sizeof(double) * ((size_t)m->n_layers + 1));
    if (!Lv) return SK_ENOMEM;
    uint64_t key = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_NOISE).key;
    int rc = SK_OK;
    for (int li = 0; li < m->n_layers && rc == SK_OK; li++) {
        const struct sk_layer *L = &m->layers[li];
        const struct sk_layer_def *d = sk_layer_of(L);
        double in = L->from[0] < 0 ? gain : Lv[L->from[0]], s = 1;
        if (d->join) {
            double in2 = L->from[1] < 0 ? gain : Lv[L->from[1]];
            /* as a map of its two inputs stacked: (a, b) -> a + b has norm sqrt 2, (a, b) -> (a, b) norm 1 */
            bool add = L->kind == SK_LAYER_ADD;
            s = add ? sqrt(2.0) : 1.0;
            Lv[li] = add ? in + in2 : sqrt(in * in + in2 * in2);
            /* upward for the rounding of the sum and the root */
            Lv[li] *= 1 + 4 * DBL_EPSILON;
            if (norms) norms[li] = s;
            continue;
        }
        if (d->linear) {
            bool p = false;
            rc = layer_norm(m, L, iters, sk_rng_derive(key, (uint64_t)li).key, &s, &p);
            all_proved = all_proved && p;
        } else if (d->lipschitz) {
            s = d->lipschitz(m, L);
        } else {
            rc = sk_error(SK_EINVAL, "Lipschitz: layer %d (%s) not supported", li, d->name);
        }
        if (norms) norms[li] = s;
        Lv[li] = in * s;
    }
    if (rc == SK_OK) {
        const struct sk_layer *Ld = ld >= 0 ? &m->layers[ld] : NULL;
        if (prefix) *prefix = Ld ? (Ld->from[0] < 0 ? gain : Lv[Ld->from[0]]) : Lv[m->n_layers - 1];
        if (global) *global = Lv[m->n_layers - 1];
        if (proved) *proved = all_proved;
    }
    sk_free(Lv);
    return rc;
}

/* Lipschitz constant of each margin z_y - z_j: Lyj[K*K]; the global bound and
 * whether every factor is proved. */
static int margin_lip(struct sk_model *m, int iters, double *Lyj, double *global, bool *proved)
{
    double pre, all;
    int rc = sk_certify_lipschitz_bound(m, iters, 1, NULL, &pre, &all, proved);
    if (rc) return rc;
    if (global) *global = all;
    int K = m->n_classes, ld = sk_certify_last_dense(m);
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            if (ld < 0) {
                Lyj[a * K + b] = sqrt(2.0) * all;
                continue;
            }
            const struct sk_layer *L = &m->layers[ld];
            const float *W = m->params + L->w_off;
            int D = L->in[0];
            double s = 0;
            for (int i = 0; i < D; i++) {
                double d = (double)W[(size_t)a * D + i] - W[(size_t)b * D + i];
                s += d * d;
            }
            Lyj[a * K + b] = pre * sqrt(s);
        }
    return SK_OK;
}

int sk_certify_lipschitz_run(struct sk_model *m, const float *x, const int *y, int N, float eps, int iters, float *lp,
                             float *mlo, float *r2, float *rinf, double *global, bool *proved)
{
    int K = m->n_classes;
    double *Lyj = sk_malloc(sizeof(double) * (size_t)K * K);
    int rc = SK_ENOMEM;
    if (Lyj && !(rc = margin_lip(m, iters, Lyj, global, proved)) && !(rc = sk_model_log_probs(m, x, N, lp))) {
        double s = eps * sqrt((double)m->in_dim); /* |d|_2 <= sqrt(dim) |d|_inf */
        for (int n = 0; n < N; n++) {
            const float *z = lp + (size_t)n * K;
            const double *L = Lyj + (size_t)y[n] * K;
            double r = INFINITY;
            for (int j = 0; j < K; j++) {
                if (mlo) mlo[(size_t)n * K + j] = j == y[n] ? 0.0f : (float)((double)z[y[n]] - z[j] - L[j] * s);
                if (j == y[n]) continue;
                double d = (double)z[y[n]] - z[j];
                double q = d <= 0 ? 0 : (L[j] > 0 ? d / L[j] : INFINITY);
                r = q < r ? q : r;
            }
            if (r2) r2[n] = (float)r;
            if (rinf) rinf[n] = (float)(r / sqrt((double)m->in_dim));
        }
    }
    sk_free(Lyj);
    return rc;
}

int sk_certify_lipschitz_margins(struct sk_model *m, const float *x, const int *y, int N, float eps, float *mlo)
{
    float *lp = sk_malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * m->n_classes);
    int rc = lp ? sk_certify_lipschitz_run(m, x, y, N, eps, 0, lp, mlo, NULL, NULL, NULL, NULL) : SK_ENOMEM;
    sk_free(lp);
    return rc;
}

int sk_certify_lipschitz_radius(struct sk_model *m, const float *x, const int *y, int N, int iters, float *r2,
                                float *rinf) {
    float *lp = sk_malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * m->n_classes);
    int rc = lp ? sk_certify_lipschitz_run(m, x, y, N, 0, iters, lp, NULL, r2, rinf, NULL, NULL) : SK_ENOMEM;
    sk_free(lp);
    return rc;
}
