/* bench_bayes — Bayes by Backprop throughput against PyTorch in the same run,
 * as JSON lines.
 *
 *   bench_bayes [--n-train N] [--n-pred N] [--samples S] [--reps R] [--threads T] [--no-torch]
 *
 * Training: one epoch (after a warm-up epoch) of mlp:784-400-400-10:relu
 * with sk_bayes_train_vi (local reparameterisation, Gaussian prior 0.1,
 * closed-form KL, Adam 1e-3, batch 128) on N synthetic rows (N(0,1) pixels,
 * uniform labels: throughput does not depend on the values); median of R.
 * Prediction: sk_bayes_predict with S weight samples (default 20) on
 * n-pred rows (samples/s = rows per second, all S samples included).
 * Then bench/bench_bayes_torch.py runs the same algorithm in PyTorch (with
 * OMP_WAIT_POLICY=PASSIVE and the same thread count) and its lines are
 * echoed, followed by the ratios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/bayes.h"
#include "skeptic/skeptic.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double last_sps;
static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    (void)ctx;
    last_sps = em->samples_per_s;
    return 0;
}

static double field(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p ? atof(p + strlen(key)) : 0;
}

int main(int argc, char **argv)
{
    int n_train = 10000, n_pred = 2000, S = 20, reps = 3, threads = 2;
    bool torch = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n-train") && i + 1 < argc) n_train = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n-pred") && i + 1 < argc) n_pred = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--samples") && i + 1 < argc) S = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = false;
        else {
            fprintf(stderr, "usage: bench_bayes [--n-train N] [--n-pred N] [--samples S] [--reps R] [--threads T] [--no-torch]\n");
            return 2;
        }
    }
    if (n_train < 128 || n_pred < 1 || S < 1 || reps < 1 || reps > 100) {
        fprintf(stderr, "bench_bayes: need --n-train >= 128, --n-pred, --samples >= 1, --reps in 1..100\n");
        return 2;
    }
    sk_set_threads(threads);
    struct sk_dataset *d = sk_dataset_new(n_train > n_pred ? n_train : n_pred, 1, 28, 28, 10);
    struct sk_rng r = sk_rng_new(1);
    for (size_t i = 0; i < (size_t)d->n * d->dim; i++) d->x[i] = sk_rng_normal(&r);
    for (int i = 0; i < d->n; i++) d->y[i] = (int)sk_rng_below(&r, 10);
    struct sk_model *m = sk_model_from_spec("mlp:784-400-400-10:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 1);
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_VI);
    struct sk_train_config c = sk_train_defaults();
    c.epochs = 1;
    c.batch = 128;
    c.opt = sk_optim_defaults(SK_OPT_ADAM);
    c.opt.lr = 1e-3f;
    c.on_epoch = on_epoch;
    struct sk_bayes_vi_config vc = sk_bayes_vi_defaults();
    double tr[100], pr[100];
    for (int i = 0; i <= reps; i++) {
        c.seed = (uint64_t)i + 1;
        if (sk_bayes_train_vi(p, &c, &vc, d->x, d->y, n_train)) {
            fprintf(stderr, "bench_bayes: %s\n", sk_last_error());
            return 1;
        }
        if (i > 0) tr[i - 1] = last_sps;
    }
    float *pb = malloc(sizeof(float) * (size_t)n_pred * 10);
    for (int i = 0; i <= reps; i++) {
        double t0 = sk_now();
        if (sk_bayes_predict(p, d->x, n_pred, S, (uint64_t)i, pb, NULL)) {
            fprintf(stderr, "bench_bayes: %s\n", sk_last_error());
            return 1;
        }
        if (i > 0) pr[i - 1] = n_pred / (sk_now() - t0);
    }
    double mt = median(tr, reps), mp = median(pr, reps);
    printf("{\"bench\":\"bbb_train\",\"impl\":\"skeptic\",\"threads\":%d,\"blas_core\":\"%s\",\"rows\":%d,"
           "\"samples_per_s\":%.1f}\n", threads, sk_blas_core(), n_train, mt);
    printf("{\"bench\":\"bbb_predict\",\"impl\":\"skeptic\",\"threads\":%d,\"rows\":%d,\"mc_samples\":%d,"
           "\"samples_per_s\":%.1f}\n", threads, n_pred, S, mp);
    fflush(stdout);
    if (torch) {
        /* the source tree: $SKEPTIC_SOURCE_DIR, else where this file was compiled from */
        const char *src = getenv("SKEPTIC_SOURCE_DIR");
        char here[512];
        snprintf(here, sizeof here, "%s", __FILE__);
        char *cut = strstr(here, "/bench/bench_bayes.c");
        if (cut) *cut = 0;
        else snprintf(here, sizeof here, ".");
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 %s/bench/bench_bayes_torch.py --n-train %d --n-pred %d "
                 "--samples %d --reps %d --threads %d", src ? src : here, n_train, n_pred, S, reps,
                 threads);
        FILE *f = popen(cmd, "r");
        char line[4096];
        double tt = 0, tp = 0;
        while (f && fgets(line, sizeof line, f)) {
            fputs(line, stdout);
            if (strstr(line, "bbb_train")) tt = field(line, "\"samples_per_s\": ");
            if (strstr(line, "bbb_predict")) tp = field(line, "\"samples_per_s\": ");
        }
        int st = f ? pclose(f) : -1;
        if (st != 0 || tt <= 0 || tp <= 0)
            fprintf(stderr, "bench_bayes: the PyTorch side failed (status %d); is torch installed for /usr/bin/python3?\n", st);
        else
            printf("{\"bench\":\"bbb_ratio\",\"train_speedup\":%.2f,\"predict_speedup\":%.2f}\n", mt / tt, mp / tp);
    }
    free(pb);
    sk_bayes_free(p);
    sk_dataset_free(d);
    return 0;
}
