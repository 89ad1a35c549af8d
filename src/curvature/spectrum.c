/* The Hessian's spectrum: the chunked loss of a model and its exact
 * products, Lanczos with full reorthogonalisation, Hutchinson's trace,
 * stochastic Lanczos quadrature, the dense Hessian, lambda_max's spread. */
#include "curvature/curvature_impl.h"
#include "skeptic/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------- the loss of a model over rows ---------------- */

struct model_loss {
    struct sk_model *m;
    const float *x;
    const int *y;
    int n, chunk, n_chunks;
    struct sk_graph **g;            /* n_chunks kept forwards (NULL: not kept), then one scratch graph */
    int *loss_node;                 /* per kept chunk: the loss node, or -1 before its first product */
    unsigned char *kept;            /* per chunk: 0 undecided, 1 kept, 2 recorded afresh every product */
    size_t keep_bytes, kept_bytes;  /* the budget for kept forwards and its use */
    bool full;                      /* the budget is spent: later chunks are not kept */
    double *acc;                    /* n_params */
    float *hv_c;                    /* n_params: one chunk's product */
    long n_hvp;
};

int sk_curv_model_loss(struct sk_model *m, struct sk_graph *g, const float *x, const int *y, int n, int chunk,
                       double *loss)
{
    double sum = 0;
    for (int r0 = 0; r0 < n; r0 += chunk) {
        int nc = n - r0 < chunk ? n - r0 : chunk;
        sk_graph_reset(g);
        int xin = sk_graph_input(g, x + (size_t)r0 * m->in_dim, 2, (int[]){ nc, m->in_dim }, false);
        int L = sk_loss_cross_entropy(g, sk_model_forward(m, g, xin, SK_MODE_EVAL, 0), y + r0, 0.0f);
        if (L < 0) return L;
        sum += (double)sk_graph_value(g, L)[0] * nc;
    }
    sk_graph_reset(g);
    *loss = sum / n;
    return isfinite(*loss) ? SK_OK : sk_error(SK_ENONFINITE, "the loss over %d rows is not finite", n);
}

void sk_curv_gather(const float *x, const int *y, int in_dim, const int *idx, int n, float *xo, int *yo)
{
    for (int i = 0; i < n; i++) {
        memcpy(xo + (size_t)i * in_dim, x + (size_t)idx[i] * in_dim, sizeof(float) * (size_t)in_dim);
        yo[i] = y[idx[i]];
    }
}

static int ml_value_grad(void *ctx, double *loss, float *grad)
{
    struct model_loss *L = ctx;
    struct sk_model *m = L->m;
    struct sk_graph *g = L->g[L->n_chunks];
    size_t P = m->n_params;
    if (!grad) return sk_curv_model_loss(m, g, L->x, L->y, L->n, L->chunk, loss);
    memset(L->acc, 0, sizeof(double) * P);
    double sum = 0;
    for (int c = 0; c < L->n_chunks; c++) {
        int r0 = c * L->chunk, nc = L->n - r0 < L->chunk ? L->n - r0 : L->chunk;
        float lc;
        int rc = sk_model_loss_grad(m, g, L->x + (size_t)r0 * m->in_dim, L->y + r0, nc, SK_MODE_EVAL, 0, &lc);
        if (rc) return rc;
        sum += (double)lc * nc;
        double w = (double)nc / L->n;
        for (size_t i = 0; i < P; i++) L->acc[i] += w * m->grads[i];
    }
    sk_graph_reset(g);
    for (size_t i = 0; i < P; i++) grad[i] = (float)L->acc[i];
    *loss = sum / L->n;
    return isfinite(*loss) ? SK_OK : sk_error(SK_ENONFINITE, "the loss over %d rows is not finite", L->n);
}

/* Record chunk c's forward on g; returns the loss node. */
static int ml_record(struct model_loss *L, struct sk_graph *g, int c)
{
    struct sk_model *m = L->m;
    int r0 = c * L->chunk, nc = L->n - r0 < L->chunk ? L->n - r0 : L->chunk;
    sk_graph_reset(g);
    int xin = sk_graph_input(g, L->x + (size_t)r0 * m->in_dim, 2, (int[]){ nc, m->in_dim }, false);
    return sk_loss_cross_entropy(g, sk_model_forward(m, g, xin, SK_MODE_EVAL, 0), L->y + r0, 0.0f);
}

/* What a recorded chunk holds after a product: value, gradient, tangent and
 * tangent gradient of every node (an upper bound: inputs and views share). */
static size_t graph_bytes(const struct sk_graph *g)
{
    size_t s = 0;
    for (int i = 0; i < sk_graph_n_nodes(g); i++) s += sk_graph_numel(g, i);
    return s * 4 * sizeof(float);
}

static int ml_hvp(void *ctx, const float *v, float *hv)
{
    struct model_loss *L = ctx;
    struct sk_model *m = L->m;
    size_t P = m->n_params;
    memset(L->acc, 0, sizeof(double) * P);
    for (int c = 0; c < L->n_chunks; c++) {
        int r0 = c * L->chunk, nc = L->n - r0 < L->chunk ? L->n - r0 : L->chunk;
        if (L->kept[c] == 0 && L->full) L->kept[c] = 2;
        bool keep = L->kept[c] != 2;
        if (keep && !L->g[c] && !(L->g[c] = sk_graph_new())) return SK_ENOMEM;
        struct sk_graph *g = keep ? L->g[c] : L->g[L->n_chunks];
        int node = keep ? L->loss_node[c] : -1;
        if (node < 0) {
            node = ml_record(L, g, c);
            if (node < 0) return node;
        }
        memset(L->hv_c, 0, sizeof(float) * P);
        sk_graph_param_directions(g, m->params, P, v, L->hv_c);
        int rc = sk_graph_hvp(g, node);
        if (rc) return rc;
        if (keep && L->kept[c] == 0) { /* first product: keep it if the budget allows */
            size_t b = graph_bytes(g);
            if (L->kept_bytes + b <= L->keep_bytes) {
                L->kept_bytes += b;
                L->kept[c] = 1;
            } else {
                L->full = true;
                L->kept[c] = 2;
                sk_graph_free(L->g[c]);
                L->g[c] = NULL;
            }
        }
        if (L->kept[c] == 1) L->loss_node[c] = node;
        double w = (double)nc / L->n;
        for (size_t i = 0; i < P; i++) L->acc[i] += w * L->hv_c[i];
    }
    for (size_t i = 0; i < P; i++) hv[i] = (float)L->acc[i];
    L->n_hvp++;
    return SK_OK;
}

static void ml_reset(void *ctx)
{
    struct model_loss *L = ctx;
    for (int c = 0; c < L->n_chunks; c++) {
        if (L->g[c]) sk_graph_reset(L->g[c]);
        L->loss_node[c] = -1;
    }
}

static void ml_destroy(void *ctx)
{
    struct model_loss *L = ctx;
    if (!L) return;
    if (L->g)
        for (int c = 0; c <= L->n_chunks; c++) sk_graph_free(L->g[c]);
    sk_free(L->g);
    sk_free(L->loss_node);
    sk_free(L->kept);
    sk_free(L->acc);
    sk_free(L->hv_c);
    sk_free(L);
}

struct sk_curvature_loss *sk_curvature_loss_model(struct sk_model *m, const float *x, const int *y, int n,
                                                  const struct sk_curvature_data_config *cfg)
{
    if (!m || !x || !y || n < 1) {
        sk_error(SK_EINVAL, "sk_curvature_loss_model: needs a model and n >= 1 rows (n = %d)", n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->n_classes) {
            sk_error(SK_EINVAL, "sk_curvature_loss_model: label %d of row %d is outside 0..%d", y[i], i,
                     m->n_classes - 1);
            return NULL;
        }
    int chunk = cfg && cfg->chunk > 0 ? cfg->chunk : 1024;
    double mb = cfg && cfg->keep_mb != 0 ? cfg->keep_mb : 1024;
    struct sk_curvature_loss *out = sk_calloc(1, sizeof *out);
    struct model_loss *L = sk_calloc(1, sizeof *L);
    if (!out || !L) goto fail;
    L->m = m;
    L->x = x;
    L->y = y;
    L->n = n;
    L->chunk = chunk;
    L->n_chunks = (n + chunk - 1) / chunk;
    L->keep_bytes = mb > 0 ? (size_t)(mb * 1048576.0) : 0;
    L->full = mb < 0;
    L->g = sk_calloc((size_t)L->n_chunks + 1, sizeof *L->g);
    L->loss_node = sk_malloc(sizeof(int) * (size_t)L->n_chunks);
    L->kept = sk_calloc((size_t)L->n_chunks, 1);
    L->acc = sk_malloc(sizeof(double) * m->n_params);
    L->hv_c = sk_malloc(sizeof(float) * m->n_params);
    if (!L->g || !L->loss_node || !L->kept || !L->acc || !L->hv_c) goto fail;
    for (int c = 0; c < L->n_chunks; c++) L->loss_node[c] = -1;
    if (!(L->g[L->n_chunks] = sk_graph_new())) goto fail;
    out->n = m->n_params;
    out->theta = m->params;
    out->ctx = L;
    out->value_grad = ml_value_grad;
    out->hvp = ml_hvp;
    out->destroy = ml_destroy;
    out->reset = ml_reset;
    return out;
fail:
    ml_destroy(L);
    sk_free(out);
    sk_error(SK_ENOMEM, "sk_curvature_loss_model: out of memory for %d rows", n);
    return NULL;
}

void sk_curvature_loss_reset(struct sk_curvature_loss *L)
{
    if (L && L->reset) L->reset(L->ctx);
}

void sk_curvature_loss_free(struct sk_curvature_loss *L)
{
    if (!L) return;
    if (L->destroy) L->destroy(L->ctx);
    sk_free(L);
}

struct sk_curvature_op sk_curvature_loss_op(const struct sk_curvature_loss *L)
{
    return (struct sk_curvature_op){ L->n, L->hvp, L->ctx };
}

long sk_curvature_loss_n_hvp(const struct sk_curvature_loss *L)
{
    return L && L->hvp == ml_hvp ? ((const struct model_loss *)L->ctx)->n_hvp : 0;
}

/* ---------------- Lanczos ---------------- */

static double dot_fd(const float *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static int op_check(const struct sk_curvature_op *op, const char *who)
{
    if (!op || !op->apply || op->n < 1) return sk_error(SK_EINVAL, "%s: the operator has no dimension or callback", who);
    return SK_OK;
}

/* One Lanczos run of up to `steps` steps from a seeded Gaussian start.
 * Q (steps x n floats) receives the orthonormal basis; alpha[steps],
 * beta[steps] the tridiagonal (beta[j] couples q_j and q_{j+1}). When
 * k > 0 and tol > 0, the run stops once the k largest Ritz pairs have
 * residuals |beta_j s_ji| <= tol |theta_1|. Returns the steps done (>= 1)
 * or a negative status. */
static int lanczos_run(const struct sk_curvature_op *op, int steps, uint64_t key, int k, double tol, float *Q,
                       double *alpha, double *beta)
{
    size_t n = op->n;
    double *w = sk_malloc(sizeof(double) * n);
    float *av = sk_malloc(sizeof(float) * n);
    double *T = sk_malloc(sizeof(double) * (size_t)steps * steps), *ev = sk_malloc(sizeof(double) * (size_t)steps);
    if (!w || !av || !T || !ev) {
        sk_free(w); sk_free(av); sk_free(T); sk_free(ev);
        return SK_ENOMEM;
    }
    double nrm = 0;
    for (size_t i = 0; i < n; i++) {
        w[i] = sk_rng_normal_at(key, i);
        nrm += w[i] * w[i];
    }
    nrm = sqrt(nrm);
    for (size_t i = 0; i < n; i++) Q[i] = (float)(w[i] / nrm);
    int done = 0, rc = SK_OK;
    for (int j = 0; j < steps; j++) {
        const float *q = Q + (size_t)j * n;
        rc = op->apply(op->ctx, q, av);
        if (rc) break;
        for (size_t i = 0; i < n; i++) w[i] = av[i];
        alpha[j] = dot_fd(q, w, n);
        done = j + 1;
        /* Full reorthogonalisation, twice ("twice is enough"): against the
         * whole basis, which also removes alpha_j q_j and beta_{j-1} q_{j-1}. */
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i <= j; i++) {
                const float *qi = Q + (size_t)i * n;
                double c = dot_fd(qi, w, n);
                for (size_t t = 0; t < n; t++) w[t] -= c * qi[t];
            }
        double b = 0;
        for (size_t i = 0; i < n; i++) b += w[i] * w[i];
        b = sqrt(b);
        beta[j] = b;
        double scale = 0;
        for (int i = 0; i <= j; i++) scale = fmax(scale, fabs(alpha[i]) + (i ? beta[i - 1] : 0));
        /* An invariant subspace: what is left is the float rounding of the
         * products (about 1e-7 of the scale), not a direction of the start. */
        if (b <= 1e-5 * (scale > 0 ? scale : 1)) {
            beta[j] = 0;
            break;
        }
        if (k > 0 && tol > 0 && done >= k) {
            int m = done;
            memset(T, 0, sizeof(double) * (size_t)m * m);
            for (int i = 0; i < m; i++) {
                T[(size_t)i * m + i] = alpha[i];
                if (i + 1 < m) T[(size_t)i * m + i + 1] = T[(size_t)(i + 1) * m + i] = beta[i];
            }
            rc = sk_dsyev(T, m, ev);
            if (rc) break;
            bool conv = true;
            double top = fabs(ev[m - 1]) > fabs(ev[0]) ? fabs(ev[m - 1]) : fabs(ev[0]);
            for (int i = 0; i < k && conv; i++) /* row m-1-i is the eigenvector of the i-th largest */
                conv = fabs(b * T[(size_t)(m - 1 - i) * m + m - 1]) <= tol * top;
            if (conv) break;
        }
        if (j + 1 < steps) {
            float *qn = Q + (size_t)(j + 1) * n;
            for (size_t i = 0; i < n; i++) qn[i] = (float)(w[i] / b);
        }
    }
    sk_free(w);
    sk_free(av);
    sk_free(T);
    sk_free(ev);
    return rc ? rc : done;
}

/* Eigen-decomposition of the m x m tridiagonal (alpha, beta): ev ascending,
 * S row i the eigenvector of ev[i]. */
static int tridiag_eigen(const double *alpha, const double *beta, int m, double *S, double *ev)
{
    memset(S, 0, sizeof(double) * (size_t)m * m);
    for (int i = 0; i < m; i++) {
        S[(size_t)i * m + i] = alpha[i];
        if (i + 1 < m) S[(size_t)i * m + i + 1] = S[(size_t)(i + 1) * m + i] = beta[i];
    }
    return sk_dsyev(S, m, ev);
}

struct sk_curvature_lanczos_config sk_curvature_lanczos_defaults(void)
{
    return (struct sk_curvature_lanczos_config){ .k = 1, .max_steps = 20, .tol = 1e-4, .seed = 42 };
}

int sk_curvature_lanczos(const struct sk_curvature_op *op, const struct sk_curvature_lanczos_config *cfg,
                         double *values, double *resid, float *vectors, int *steps)
{
    int rc = op_check(op, "sk_curvature_lanczos");
    if (rc) return rc;
    struct sk_curvature_lanczos_config c = cfg ? *cfg : sk_curvature_lanczos_defaults();
    size_t n = op->n;
    if (c.k < 1 || c.max_steps < c.k || (size_t)c.max_steps > n)
        return sk_error(SK_EINVAL, "sk_curvature_lanczos: needs 1 <= k <= max_steps <= n (k %d, max_steps %d, n %zu)",
                        c.k, c.max_steps, n);
    int S = c.max_steps;
    float *Q = sk_malloc(sizeof(float) * (size_t)S * n);
    double *alpha = sk_malloc(sizeof(double) * S), *beta = sk_malloc(sizeof(double) * S);
    double *T = sk_malloc(sizeof(double) * (size_t)S * S), *ev = sk_malloc(sizeof(double) * S);
    if (!Q || !alpha || !beta || !T || !ev) {
        rc = sk_error(SK_ENOMEM, "sk_curvature_lanczos: out of memory for %d basis vectors of %zu floats", S, n);
        goto out;
    }
    int m = lanczos_run(op, S, sk_rng_derive(c.seed, CURV_STREAM_START).key, c.k, c.tol, Q, alpha, beta);
    if (m < 0) {
        rc = m;
        goto out;
    }
    if ((rc = tridiag_eigen(alpha, beta, m, T, ev))) goto out;
    double b = beta[m - 1];
    for (int i = 0; i < c.k; i++) {
        int r = m - 1 - i; /* the i-th largest */
        if (r < 0) { /* an invariant subspace smaller than k: no more pairs */
            values[i] = NAN;
            if (resid) resid[i] = NAN;
            if (vectors) memset(vectors + (size_t)i * n, 0, sizeof(float) * n);
            continue;
        }
        values[i] = ev[r];
        if (resid) resid[i] = fabs(b * T[(size_t)r * m + m - 1]);
        if (vectors) {
            double *acc = sk_calloc(n, sizeof(double));
            if (!acc) {
                rc = SK_ENOMEM;
                goto out;
            }
            for (int j = 0; j < m; j++) {
                double s = T[(size_t)r * m + j];
                const float *q = Q + (size_t)j * n;
                for (size_t t = 0; t < n; t++) acc[t] += s * q[t];
            }
            double nr = 0;
            for (size_t t = 0; t < n; t++) nr += acc[t] * acc[t];
            nr = sqrt(nr);
            for (size_t t = 0; t < n; t++) vectors[(size_t)i * n + t] = (float)(acc[t] / nr);
            sk_free(acc);
        }
    }
    if (steps) *steps = m;
out:
    sk_free(Q);
    sk_free(alpha);
    sk_free(beta);
    sk_free(T);
    sk_free(ev);
    return rc;
}

/* ---------------- Hutchinson ---------------- */

int sk_curvature_trace(const struct sk_curvature_op *op, int probes, double rel_tol, uint64_t seed, double *tr,
                       double *se, double *samples, int *used)
{
    int rc = op_check(op, "sk_curvature_trace");
    if (rc) return rc;
    if (probes < 2) return sk_error(SK_EINVAL, "sk_curvature_trace: needs probes >= 2 for a standard error (got %d)", probes);
    size_t n = op->n;
    float *z = sk_malloc(sizeof(float) * n), *az = sk_malloc(sizeof(float) * n);
    if (!z || !az) {
        sk_free(z);
        sk_free(az);
        return SK_ENOMEM;
    }
    double sum = 0, sum2 = 0, mean = 0, sd = 0;
    int p = 0;
    for (; p < probes; p++) {
        struct sk_rng r = sk_rng_derive(sk_rng_derive(seed, CURV_STREAM_PROBE).key, (uint64_t)p);
        for (size_t i = 0; i < n; i += 64) {
            uint64_t bits = sk_rng_u64(&r);
            for (size_t b = 0; b < 64 && i + b < n; b++) z[i + b] = (bits >> b & 1) ? 1.0f : -1.0f;
        }
        if ((rc = op->apply(op->ctx, z, az))) break;
        double q = 0;
        for (size_t i = 0; i < n; i++) q += (double)z[i] * az[i];
        if (samples) samples[p] = q;
        sum += q;
        sum2 += q * q;
        int k = p + 1;
        mean = sum / k;
        sd = k > 1 ? sqrt(fmax(0, (sum2 - k * mean * mean) / (k - 1))) : 0;
        if (rel_tol > 0 && k >= 10 && sd / sqrt(k) <= rel_tol * fabs(mean)) {
            p++;
            break;
        }
    }
    sk_free(z);
    sk_free(az);
    if (rc) return rc;
    *tr = mean;
    if (se) *se = sd / sqrt(p);
    if (used) *used = p;
    return SK_OK;
}

/* ---------------- stochastic Lanczos quadrature ---------------- */

struct sk_curvature_density *sk_curvature_density(const struct sk_curvature_op *op, int runs, int steps,
                                                  uint64_t seed)
{
    if (op_check(op, "sk_curvature_density")) return NULL;
    if (runs < 1 || steps < 2 || (size_t)steps > op->n) {
        sk_error(SK_EINVAL, "sk_curvature_density: needs runs >= 1 and 2 <= steps <= n (runs %d, steps %d, n %zu)",
                 runs, steps, op->n);
        return NULL;
    }
    size_t n = op->n;
    struct sk_curvature_density *d = sk_calloc(1, sizeof *d);
    float *Q = sk_malloc(sizeof(float) * (size_t)steps * n);
    double *alpha = sk_malloc(sizeof(double) * steps), *beta = sk_malloc(sizeof(double) * steps);
    double *T = sk_malloc(sizeof(double) * (size_t)steps * steps), *ev = sk_malloc(sizeof(double) * steps);
    int rc = SK_OK;
    if (d) {
        d->nodes = sk_calloc((size_t)runs * steps, sizeof(double));
        d->weights = sk_calloc((size_t)runs * steps, sizeof(double));
    }
    if (!d || !Q || !alpha || !beta || !T || !ev || !d->nodes || !d->weights) {
        rc = sk_error(SK_ENOMEM, "sk_curvature_density: out of memory for %d basis vectors of %zu floats", steps, n);
        goto out;
    }
    d->runs = runs;
    d->steps = steps;
    d->n = n;
    uint64_t key = sk_rng_derive(seed, CURV_STREAM_START).key;
    for (int r = 0; r < runs; r++) {
        int m = lanczos_run(op, steps, sk_rng_derive(key, (uint64_t)r + 1).key, 0, 0, Q, alpha, beta);
        if (m < 0) {
            rc = m;
            goto out;
        }
        if ((rc = tridiag_eigen(alpha, beta, m, T, ev))) goto out;
        for (int i = 0; i < m; i++) {
            d->nodes[(size_t)r * steps + i] = ev[i];
            double s = T[(size_t)i * m]; /* first component of eigenvector i */
            d->weights[(size_t)r * steps + i] = s * s;
        }
    }
out:
    sk_free(Q);
    sk_free(alpha);
    sk_free(beta);
    sk_free(T);
    sk_free(ev);
    if (rc) {
        sk_curvature_density_free(d);
        return NULL;
    }
    return d;
}

void sk_curvature_density_free(struct sk_curvature_density *d)
{
    if (!d) return;
    sk_free(d->nodes);
    sk_free(d->weights);
    sk_free(d);
}

double sk_curvature_density_moment(const struct sk_curvature_density *d, int p)
{
    double s = 0;
    for (size_t i = 0; i < (size_t)d->runs * d->steps; i++) s += d->weights[i] * pow(d->nodes[i], p);
    return s / d->runs;
}

static void node_range(const struct sk_curvature_density *d, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < (size_t)d->runs * d->steps; i++)
        if (d->weights[i] > 0) {
            *lo = fmin(*lo, d->nodes[i]);
            *hi = fmax(*hi, d->nodes[i]);
        }
    if (!(*lo <= *hi)) *lo = *hi = 0;
}

int sk_curvature_density_eval(const struct sk_curvature_density *d, double sigma, double lo, double hi, int n_grid,
                              double *t, double *rho)
{
    if (!d || n_grid < 2 || !(hi > lo))
        return sk_error(SK_EINVAL, "sk_curvature_density_eval: needs a density, n_grid >= 2 and hi > lo");
    if (!(sigma > 0)) {
        double a, b;
        node_range(d, &a, &b);
        sigma = b > a ? (b - a) / 200 : 1e-3 * (fabs(a) + 1);
    }
    double c = 1 / (2.5066282746310002 * sigma * d->runs); /* sqrt(2 pi) */
    for (int g = 0; g < n_grid; g++) {
        double u = lo + (hi - lo) * g / (n_grid - 1), s = 0;
        for (size_t i = 0; i < (size_t)d->runs * d->steps; i++) {
            if (d->weights[i] <= 0) continue;
            double z = (u - d->nodes[i]) / sigma;
            if (fabs(z) < 40) s += d->weights[i] * exp(-0.5 * z * z);
        }
        t[g] = u;
        rho[g] = c * s;
    }
    return SK_OK;
}

int sk_curvature_density_plot(const struct sk_curvature_density *d, double sigma, const char *path,
                              const char *title)
{
    if (!d || !path) return sk_error(SK_EINVAL, "sk_curvature_density_plot: needs a density and a path");
    enum { G = 600 };
    double lo, hi, t[G], rho[G];
    node_range(d, &lo, &hi);
    double pad = hi > lo ? 0.05 * (hi - lo) : 0.05 * (fabs(lo) + 1);
    int rc = sk_curvature_density_eval(d, sigma, lo - pad, hi + pad, G, t, rho);
    if (rc) return rc;
    double peak = 0;
    for (int g = 0; g < G; g++) peak = fmax(peak, rho[g]);
    float x[G], y[G];
    for (int g = 0; g < G; g++) {
        x[g] = (float)t[g];
        y[g] = (float)log10(fmax(rho[g], 1e-7 * peak) + 1e-300);
    }
    return sk_plot_line(path, title ? title : "Hessian eigenvalue density (SLQ)", "eigenvalue",
                        "log\u2081\u2080 density", x, y, G);
}

/* ---------------- the dense Hessian ---------------- */

#define DENSE_MAX 8192

int sk_curvature_hessian_dense(const struct sk_curvature_op *op, double *h, double *asym)
{
    int rc = op_check(op, "sk_curvature_hessian_dense");
    if (rc) return rc;
    size_t n = op->n;
    if (n > DENSE_MAX)
        return sk_error(SK_EINVAL, "sk_curvature_hessian_dense: %zu parameters; the dense Hessian is for at most %d",
                        n, DENSE_MAX);
    float *e = sk_calloc(n, sizeof(float)), *he = sk_malloc(sizeof(float) * n);
    if (!e || !he) {
        sk_free(e);
        sk_free(he);
        return SK_ENOMEM;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        e[i] = 1;
        rc = op->apply(op->ctx, e, he);
        e[i] = 0;
        for (size_t j = 0; j < n; j++) h[i * n + j] = he[j]; /* row i = column i, by symmetry */
    }
    sk_free(e);
    sk_free(he);
    if (rc) return rc;
    double big = 0, gap = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            big = fmax(big, fabs(h[i * n + j]));
            gap = fmax(gap, fabs(h[i * n + j] - h[j * n + i]));
            h[i * n + j] = h[j * n + i] = 0.5 * (h[i * n + j] + h[j * n + i]);
        }
    if (asym) *asym = big > 0 ? gap / big : 0;
    return SK_OK;
}

int sk_curvature_eigen_dense(const struct sk_curvature_op *op, double *w, double *vectors)
{
    int rc = op_check(op, "sk_curvature_eigen_dense");
    if (rc) return rc;
    size_t n = op->n;
    if (n > DENSE_MAX)
        return sk_error(SK_EINVAL, "sk_curvature_eigen_dense: %zu parameters; the dense Hessian is for at most %d", n,
                        DENSE_MAX);
    double *h = vectors ? vectors : sk_malloc(sizeof(double) * n * n);
    if (!h) return sk_error(SK_ENOMEM, "sk_curvature_eigen_dense: out of memory for a %zu x %zu matrix", n, n);
    rc = sk_curvature_hessian_dense(op, h, NULL);
    if (!rc) rc = sk_dsyev(h, (int)n, w);
    if (!vectors) sk_free(h);
    return rc;
}

/* ---------------- lambda_max across sample sets ---------------- */

int sk_curvature_lmax_spread(struct sk_model *m, const float *x, const int *y, int n, int n_per_set, int n_sets,
                             int steps, uint64_t seed, double *lmax)
{
    if (n_per_set < 1 || n_sets < 1 || (long)n_per_set * n_sets > n)
        return sk_error(SK_EINVAL, "sk_curvature_lmax_spread: %d sets of %d rows need %ld rows; there are %d",
                        n_sets, n_per_set, (long)n_per_set * n_sets, n);
    if (steps < 1 || (size_t)steps > m->n_params)
        return sk_error(SK_EINVAL, "sk_curvature_lmax_spread: steps %d outside 1..%zu", steps, m->n_params);
    int *idx = sk_malloc(sizeof(int) * (size_t)n), *ys = sk_malloc(sizeof(int) * (size_t)n_per_set);
    float *xs = sk_malloc(sizeof(float) * (size_t)n_per_set * m->in_dim);
    int rc = SK_OK;
    if (!idx || !ys || !xs) {
        rc = SK_ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    struct sk_rng r = sk_rng_derive(seed, CURV_STREAM_SETS);
    sk_rng_shuffle(&r, idx, n);
    for (int s = 0; s < n_sets && !rc; s++) {
        sk_curv_gather(x, y, m->in_dim, idx + (size_t)s * n_per_set, n_per_set, xs, ys);
        struct sk_curvature_loss *L = sk_curvature_loss_model(m, xs, ys, n_per_set, NULL);
        if (!L) {
            rc = SK_ENOMEM;
            break;
        }
        struct sk_curvature_op H = sk_curvature_loss_op(L);
        struct sk_curvature_lanczos_config lc = { .k = 1, .max_steps = steps, .tol = 0, .seed = seed + (uint64_t)s };
        rc = sk_curvature_lanczos(&H, &lc, lmax + s, NULL, NULL, NULL);
        sk_curvature_loss_free(L);
    }
out:
    sk_free(idx);
    sk_free(ys);
    sk_free(xs);
    return rc;
}
