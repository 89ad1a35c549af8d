/* Batch norm in training mode (batch statistics) on the activation shapes of
 * the Fashion-MNIST ResNet-8 (width 32, batch 128): median time of the
 * forward and of the backward over R repetitions, one JSON line per shape.
 * The times are the process's CPU time, not wall time, so that a machine
 * loaded by other jobs still compares two builds fairly; with T = 1 (the
 * default) that is the op's work alone.
 *
 *   bench_batchnorm [--reps R] [--threads T]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skeptic/skeptic.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int reps = 21, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_batchnorm [--reps R] [--threads T]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (threads < 1) threads = 1;
    sk_set_threads(threads);
    const int shapes[3][4] = { { 128, 32, 28, 28 }, { 128, 64, 14, 14 }, { 128, 128, 7, 7 } };
    double *tf = malloc(sizeof(double) * reps), *tb = malloc(sizeof(double) * reps);
    for (int s = 0; s < 3; s++) {
        const int *sh = shapes[s];
        int C = sh[1];
        size_t n = (size_t)sh[0] * C * sh[2] * sh[3];
        float *x = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n);
        float *gb = malloc(sizeof(float) * 4 * C), *dgb = calloc(2 * (size_t)C, sizeof(float)), *run = malloc(sizeof(float) * 2 * C);
        uint64_t r = 12345;
        for (size_t i = 0; i < n; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i] = (float)((r >> 40) & 0xffff) / 65536.0f - 0.3f;
            dy[i] = (float)((r >> 20) & 0xffff) / 65536.0f - 0.5f;
        }
        for (int c = 0; c < C; c++) gb[c] = 1, gb[C + c] = 0, run[c] = 0, run[C + c] = 1;
        struct sk_graph *g = sk_graph_new();
        int rc = g ? SK_OK : SK_ENOMEM;
        for (int t = 0; t < reps && !rc; t++) {
            sk_graph_reset(g);
            int xi = sk_graph_input(g, x, 4, sh, true);
            int gi = sk_graph_param(g, gb, dgb, 1, &C), bi = sk_graph_param(g, gb + C, dgb + C, 1, &C);
            double t0 = cpu_now();
            int y = sk_op_batchnorm(g, xi, gi, bi, run, run + C, 0.1f, 1e-5f, true);
            double t1 = cpu_now();
            if (y < 0) {
                rc = y;
                break;
            }
            rc = sk_graph_backward(g, y, dy);
            tf[t] = t1 - t0;
            tb[t] = cpu_now() - t1;
        }
        if (rc) {
            fprintf(stderr, "bench_batchnorm: %s\n", sk_last_error());
            return 1;
        }
        qsort(tf, reps, sizeof(double), cmp);
        qsort(tb, reps, sizeof(double), cmp);
        printf("{\"shape\":[%d,%d,%d,%d],\"threads\":%d,\"reps\":%d,\"forward_cpu_ms\":%.3f,\"backward_cpu_ms\":%.3f}\n",
               sh[0], sh[1], sh[2], sh[3], threads, reps, 1e3 * tf[reps / 2], 1e3 * tb[reps / 2]);
        sk_graph_free(g);
        free(x);
        free(dy);
        free(gb);
        free(dgb);
        free(run);
    }
    free(tf);
    free(tb);
    return 0;
}
