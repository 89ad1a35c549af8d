/* bench_train — training throughput and sgemm speed, as JSON lines.
 *
 *   bench_train [--threads T] [--reps R] [--n N] [--only mlp|cnn|sgemm]
 *
 * One epoch of Fashion-MNIST-sized training (N = 60,000 rows of 784 floats,
 * synthetic U(-1,1) pixels and uniform labels: throughput does not depend on
 * the values) with batch 128 and SGD with momentum 0.9, lr 0.01, for
 *   mlp:784-512-512-10:relu
 *   cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10
 * R repetitions each (median reported along with every run), then sgemm
 * GFLOP/s at 512^3 and at the shapes the MLP's training step uses. Every line
 * names the OpenBLAS kernel set in use (sk_blas_core()), which
 * OPENBLAS_CORETYPE changes at program start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void print_runs(const double *v, int n)
{
    printf("[");
    for (int i = 0; i < n; i++) printf("%s%.1f", i ? "," : "", v[i]);
    printf("]");
}

static int bench_model(const char *name, const char *spec, const float *x, const int *y, int n, int reps,
                       int threads)
{
    double sps[64];
    double acc = 0;
    for (int r = 0; r < reps; r++) {
        struct sk_model *m = sk_model_from_spec(spec);
        if (!m || sk_model_init(m, SK_INIT_TORCH, 1)) {
            fprintf(stderr, "bench_train: %s\n", sk_last_error());
            return 1;
        }
        struct sk_train_config c = sk_train_defaults();
        c.epochs = 1;
        c.batch = 128;
        c.seed = 1 + (uint64_t)r;
        c.opt = sk_optim_defaults(SK_OPT_MOMENTUM);
        c.opt.lr = 0.01f;
        c.opt.momentum = 0.9f;
        struct sk_trainer *t = sk_trainer_new(m, &c, x, y, n);
        if (!t) {
            fprintf(stderr, "bench_train: %s\n", sk_last_error());
            return 1;
        }
        double t0 = sk_now();
        int rc = sk_trainer_run(t);
        double dt = sk_now() - t0;
        if (rc) {
            fprintf(stderr, "bench_train: %s\n", sk_last_error());
            return 1;
        }
        sps[r] = n / dt;
        acc = t->last.train_loss;
        sk_trainer_free(t);
        sk_model_free(m);
    }
    double runs[64];
    memcpy(runs, sps, sizeof(double) * (size_t)reps);
    double med = median(sps, reps);
    printf("{\"bench\":\"train_epoch\",\"impl\":\"skeptic\",\"model\":\"%s\",\"samples\":%d,\"batch\":128,"
           "\"threads\":%d,\"blas_core\":\"%s\",\"samples_per_s\":%.1f,\"runs\":",
           name, n, threads, sk_blas_core(), med);
    print_runs(runs, reps);
    printf(",\"train_loss\":%.4f}\n", acc);
    fflush(stdout);
    return 0;
}

static void bench_sgemm(const char *label, bool ta, bool tb, int M, int N, int K, int reps, int threads)
{
    float *A = sk_malloc(sizeof(float) * (size_t)M * K);
    float *B = sk_malloc(sizeof(float) * (size_t)K * N);
    float *C = sk_malloc(sizeof(float) * (size_t)M * N);
    struct sk_rng r = sk_rng_new(7);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = sk_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = sk_rng_uniform(&r) - 0.5f;
    int lda = ta ? M : K, ldb = tb ? K : N;
    double flop = 2.0 * M * N * K;
    /* enough calls for ~0.2 s per measurement */
    sk_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
    double t0 = sk_now();
    sk_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
    double one = sk_now() - t0;
    int calls = (int)(0.2 / (one > 1e-6 ? one : 1e-6));
    if (calls < 3) calls = 3;
    double gf[64];
    for (int rep = 0; rep < reps; rep++) {
        t0 = sk_now();
        for (int i = 0; i < calls; i++) sk_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        gf[rep] = flop * calls / (sk_now() - t0) / 1e9;
    }
    double runs[64];
    memcpy(runs, gf, sizeof(double) * (size_t)reps);
    printf("{\"bench\":\"sgemm\",\"shape\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"trans_a\":%d,\"trans_b\":%d,"
           "\"threads\":%d,\"blas_core\":\"%s\",\"gflops\":%.1f,\"runs\":",
           label, M, N, K, ta, tb, threads, sk_blas_core(), median(gf, reps));
    print_runs(runs, reps);
    printf("}\n");
    fflush(stdout);
    sk_free(A);
    sk_free(B);
    sk_free(C);
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 3, n = 60000;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_train [--threads T] [--reps R] [--n N] [--only mlp|cnn|sgemm]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    if (n < 128) n = 128;
    sk_set_threads(threads);
    float *x = sk_malloc(sizeof(float) * (size_t)n * 784);
    int *y = sk_malloc(sizeof(int) * (size_t)n);
    if (!x || !y) return 1;
    struct sk_rng r = sk_rng_new(42);
    for (size_t i = 0; i < (size_t)n * 784; i++) x[i] = 2.0f * sk_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < n; i++) y[i] = (int)sk_rng_below(&r, 10);
    int rc = 0;
    if (!only || !strcmp(only, "mlp")) rc |= bench_model("mlp", "mlp:784-512-512-10:relu", x, y, n, reps, threads);
    if (!only || !strcmp(only, "cnn"))
        rc |= bench_model("cnn",
                          "cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10",
                          x, y, n, reps, threads);
    if (!only || !strcmp(only, "sgemm")) {
        bench_sgemm("512x512x512", false, false, 512, 512, 512, reps, threads);
        bench_sgemm("mlp_fwd_128x512x784", false, true, 128, 512, 784, reps, threads);
        bench_sgemm("mlp_dx_128x784x512", false, false, 128, 784, 512, reps, threads);
        bench_sgemm("mlp_dw_512x784x128", true, false, 512, 784, 128, reps, threads);
        bench_sgemm("mlp_fwd_128x512x512", false, true, 128, 512, 512, reps, threads);
        /* the per-sample products of the CNN's conv layers (each runs on one
         * thread in training; here split over the threads like any sgemm) */
        bench_sgemm("conv2_fwd_64x196x288", false, false, 64, 196, 288, reps, threads);
        bench_sgemm("conv2_dw_64x288x196", false, true, 64, 288, 196, reps, threads);
        bench_sgemm("conv2_dcol_288x196x64", true, false, 288, 196, 64, reps, threads);
        bench_sgemm("conv1_fwd_32x784x9", false, false, 32, 784, 9, reps, threads);
    }
    sk_free(x);
    sk_free(y);
    return rc;
}
