/* bench_hvp — the cost of one exact Hessian-vector product against one
 * gradient, as JSON lines.
 *
 *   bench_hvp [--threads T] [--reps R] [--n N] [--spec SPEC]
 *
 * On the first N (1000) Fashion-MNIST test images (Debian's
 * dataset-fashion-mnist; synthetic U(0,1) pixels if it is not installed) and
 * mlp:784-512-512-10:relu (669,706 parameters), eval mode, mean
 * cross-entropy, each timed R times (median and every run, milliseconds):
 *
 *   grad        forward + backward on a reused graph (sk_model_loss_grad)
 *   hvp         forward + exact HVP on a reused graph (sk_graph_hvp), the
 *               loop a curvature method runs
 *   model_hvp   sk_model_hvp (builds its graph per call)
 *   hvp_input   sk_model_hvp_input
 *   hvp_fd      sk_model_hvp_fd, the central-difference oracle (two gradients)
 *
 * and the ratios hvp / grad and model_hvp / grad. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[64];
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void report(const char *what, const char *spec, int n, int threads, const double *ms, int reps)
{
    printf("{\"bench\":\"hvp\",\"what\":\"%s\",\"spec\":\"%s\",\"n\":%d,\"threads\":%d,\"blas\":\"%s\","
           "\"ms_median\":%.2f,\"ms\":[",
           what, spec, n, threads, sk_blas_core(), median(ms, reps));
    for (int i = 0; i < reps; i++) printf("%s%.2f", i ? "," : "", ms[i]);
    printf("]}\n");
}

/* forward + exact HVP along v on a graph g that is reset and reused */
static int graph_hvp(struct sk_model *m, struct sk_graph *g, const float *x, const int *y, int n, const float *v,
                     float *hv)
{
    sk_graph_reset(g);
    int xin = sk_graph_input(g, x, 2, (int[]){ n, m->in_dim }, false);
    int L = sk_loss_cross_entropy(g, sk_model_forward(m, g, xin, SK_MODE_EVAL, 0), y, 0.0f);
    if (L < 0) return L;
    memset(hv, 0, sizeof(float) * m->n_params);
    sk_graph_param_directions(g, m->params, m->n_params, v, hv);
    return sk_graph_hvp(g, L);
}

int main(int argc, char **argv)
{
    int threads = 0, reps = 7, n = 1000;
    const char *spec = "mlp:784-512-512-10:relu";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--spec")) spec = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_hvp [--threads T] [--reps R] [--n N] [--spec SPEC]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64 || n < 1) {
        fprintf(stderr, "bench_hvp: reps in 1..64, n >= 1\n");
        return 2;
    }
    if (threads > 0) sk_set_threads(threads);
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m || sk_model_init(m, SK_INIT_TORCH, 1)) {
        fprintf(stderr, "bench_hvp: %s\n", sk_last_error());
        return 1;
    }
    struct sk_dataset *d = sk_data_fashion_mnist(NULL, "test");
    const char *data = "fashion-mnist";
    float *x = malloc(sizeof(float) * (size_t)n * m->in_dim);
    int *y = malloc(sizeof(int) * (size_t)n);
    struct sk_rng r = sk_rng_new(5);
    if (!x || !y) return 1;
    if (d && d->dim == m->in_dim && d->n >= n) {
        memcpy(x, d->x, sizeof(float) * (size_t)n * m->in_dim);
        memcpy(y, d->y, sizeof(int) * (size_t)n);
    } else {
        data = "synthetic";
        for (size_t i = 0; i < (size_t)n * m->in_dim; i++) x[i] = sk_rng_uniform(&r);
        for (int i = 0; i < n; i++) y[i] = (int)sk_rng_below(&r, (uint64_t)m->n_classes);
    }
    sk_dataset_free(d);
    size_t P = m->n_params;
    float *v = malloc(sizeof(float) * P), *hv = malloc(sizeof(float) * P);
    float *vx = malloc(sizeof(float) * (size_t)n * m->in_dim), *hx = malloc(sizeof(float) * (size_t)n * m->in_dim);
    if (!v || !hv || !vx || !hx) return 1;
    for (size_t i = 0; i < P; i++) v[i] = sk_rng_normal(&r);
    for (size_t i = 0; i < (size_t)n * m->in_dim; i++) vx[i] = sk_rng_normal(&r);
    struct sk_graph *g = sk_graph_new(), *gh = sk_graph_new();
    if (!g || !gh) return 1;
    int T = threads > 0 ? threads : sk_get_threads();
    printf("{\"bench\":\"hvp\",\"what\":\"setup\",\"spec\":\"%s\",\"params\":%zu,\"n\":%d,\"data\":\"%s\","
           "\"threads\":%d}\n",
           spec, P, n, data, T);
    double t_grad[64], t_hvp[64], t_mhvp[64], t_xhvp[64], t_fd[64];
    /* one warm-up of each: arenas sized, pages touched */
    int rc = sk_model_loss_grad(m, g, x, y, n, SK_MODE_EVAL, 0, NULL);
    if (!rc) rc = graph_hvp(m, gh, x, y, n, v, hv);
    for (int k = 0; k < reps && !rc; k++) {
        double t0 = sk_now();
        rc = sk_model_loss_grad(m, g, x, y, n, SK_MODE_EVAL, 0, NULL);
        t_grad[k] = 1e3 * (sk_now() - t0);
        t0 = sk_now();
        if (!rc) rc = graph_hvp(m, gh, x, y, n, v, hv);
        t_hvp[k] = 1e3 * (sk_now() - t0);
        t0 = sk_now();
        if (!rc) rc = sk_model_hvp(m, x, y, n, v, hv);
        t_mhvp[k] = 1e3 * (sk_now() - t0);
        t0 = sk_now();
        if (!rc) rc = sk_model_hvp_input(m, x, y, n, vx, hx);
        t_xhvp[k] = 1e3 * (sk_now() - t0);
        t0 = sk_now();
        if (!rc) rc = sk_model_hvp_fd(m, x, y, n, v, hv);
        t_fd[k] = 1e3 * (sk_now() - t0);
    }
    if (rc) {
        fprintf(stderr, "bench_hvp: %s\n", sk_last_error());
        return 1;
    }
    report("grad", spec, n, T, t_grad, reps);
    report("hvp", spec, n, T, t_hvp, reps);
    report("model_hvp", spec, n, T, t_mhvp, reps);
    report("hvp_input", spec, n, T, t_xhvp, reps);
    report("hvp_fd", spec, n, T, t_fd, reps);
    double mg = median(t_grad, reps);
    printf("{\"bench\":\"hvp\",\"what\":\"ratio\",\"spec\":\"%s\",\"n\":%d,\"threads\":%d,\"hvp_over_grad\":%.2f,"
           "\"model_hvp_over_grad\":%.2f,\"hvp_input_over_grad\":%.2f,\"fd_over_grad\":%.2f}\n",
           spec, n, T, median(t_hvp, reps) / mg, median(t_mhvp, reps) / mg, median(t_xhvp, reps) / mg,
           median(t_fd, reps) / mg);
    sk_graph_free(g);
    sk_graph_free(gh);
    sk_model_free(m);
    free(x), free(y), free(v), free(hv), free(vx), free(hx);
    return 0;
}
