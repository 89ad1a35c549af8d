/* bench_verify — bound throughput of CROWN and α-CROWN, as JSON lines.
 *
 *   bench_verify [--threads T] [--boxes B] [--eps E] [--alpha-iters N] [--onnx DIR]
 *                [--bab-net NET --bab-prop PROP.vnnlib [--bab-seconds S] [--repeat R]]
 *
 * For each network, B (8) boxes of radius E (0.02) around U(0,1) points,
 * clipped to [0,1], and the 9 margin rows of a 10-class output
 * (y_0 - y_j): the time per box (median over the boxes) of
 *
 *   crown   CROWN bounds (intermediate layers by CROWN, 2048 neurons per
 *           layer at most, intersected with intervals)
 *   alpha   α-CROWN with N (20) Adam steps on the slopes
 *
 * and the mean lower bound of each (α's is never below CROWN's). Networks:
 * mlp:784-512-512-10:relu and the benchmark CNN
 * cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10
 * with He-initialised weights, and with --onnx DIR the mnist_fc networks
 * DIR/mnist-net_256x{2,4,6}.onnx.
 *
 * With --bab-net and --bab-prop: complete verification of that instance
 * with a wall-clock cap of S (10) seconds, R (3) times, and the median of
 * the subdomains bounded per second of branch and bound: the subdomains
 * over the time beyond that of the same run without branch and bound (the
 * attack and the whole box's bounds, measured first). */
#include <math.h>
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

static void bench(struct sk_model *m, const char *name, int boxes, float eps, int iters, int threads)
{
    int D = m->in_dim, K = m->n_classes, S = K - 1;
    float *lo = malloc(sizeof(float) * D), *hi = malloc(sizeof(float) * D);
    float *C = calloc((size_t)S * K, sizeof(float)), *lb = malloc(sizeof(float) * S);
    double *tc = malloc(sizeof(double) * boxes), *ta = malloc(sizeof(double) * boxes), sc = 0, sa = 0;
    for (int j = 1; j < K; j++) {
        C[(j - 1) * K] = 1;
        C[(j - 1) * K + j] = -1;
    }
    struct sk_rng r = sk_rng_new(1);
    struct sk_certify_crown_config cc = sk_certify_crown_defaults(), ca = cc;
    ca.alpha_iters = iters;
    for (int b = 0; b < boxes; b++) {
        for (int j = 0; j < D; j++) {
            float x = sk_rng_uniform(&r);
            lo[j] = x - eps < 0 ? 0 : x - eps;
            hi[j] = x + eps > 1 ? 1 : x + eps;
        }
        double t0 = sk_now();
        if (sk_certify_spec_bounds(m, lo, hi, 1, C, S, &cc, lb)) {
            fprintf(stderr, "bench_verify: %s\n", sk_last_error());
            exit(1);
        }
        tc[b] = sk_now() - t0;
        for (int s = 0; s < S; s++) sc += lb[s];
        t0 = sk_now();
        if (sk_certify_spec_bounds(m, lo, hi, 1, C, S, &ca, lb)) {
            fprintf(stderr, "bench_verify: %s\n", sk_last_error());
            exit(1);
        }
        ta[b] = sk_now() - t0;
        for (int s = 0; s < S; s++) sa += lb[s];
    }
    printf("{\"bench\":\"verify\",\"net\":\"%s\",\"threads\":%d,\"eps\":%g,\"boxes\":%d,\"rows\":%d,"
           "\"crown_ms\":%.2f,\"alpha_ms\":%.2f,\"alpha_iters\":%d,\"crown_boxes_per_s\":%.2f,"
           "\"alpha_boxes_per_s\":%.2f,\"crown_mean_lb\":%.5g,\"alpha_mean_lb\":%.5g}\n",
           name, threads, eps, boxes, S, 1e3 * median(tc, boxes), 1e3 * median(ta, boxes), iters,
           1.0 / median(tc, boxes), 1.0 / median(ta, boxes), sc / (boxes * S), sa / (boxes * S));
    fflush(stdout);
    free(lo);
    free(hi);
    free(C);
    free(lb);
    free(tc);
    free(ta);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int bench_bab(const char *net, const char *prop, double secs, int repeat, int threads)
{
    struct sk_model *m = sk_model_load_onnx(net, NULL);
    struct sk_vnnlib *v = sk_certify_vnnlib_read(prop);
    if (!m || !v) {
        fprintf(stderr, "bench_verify: %s\n", sk_last_error());
        return 1;
    }
    struct sk_certify_verify_config cfg = sk_certify_verify_defaults();
    cfg.timeout_s = secs;
    double *rate = malloc(sizeof(double) * repeat), *sec = malloc(sizeof(double) * repeat), root = 0;
    {
        struct sk_certify_verify_config c0 = cfg;
        c0.bab = false;
        struct sk_certify_verify_report rep;
        if (sk_certify_verify_vnnlib(m, v, &c0, &rep, NULL, NULL)) {
            fprintf(stderr, "bench_verify: %s\n", sk_last_error());
            return 1;
        }
        root = rep.seconds;
    }
    long *dom = malloc(sizeof(long) * repeat);
    const char *word = "error";
    for (int r = 0; r < repeat; r++) {
        struct sk_certify_verify_report rep;
        if (sk_certify_verify_vnnlib(m, v, &cfg, &rep, NULL, NULL)) {
            fprintf(stderr, "bench_verify: %s\n", sk_last_error());
            return 1;
        }
        rate[r] = rep.seconds > root ? rep.domains / (rep.seconds - root) : 0;
        sec[r] = rep.seconds;
        dom[r] = rep.domains;
        word = sk_certify_verdict_name(rep.verdict);
    }
    double mr = median(rate, repeat), ms = median(sec, repeat);
    qsort(dom, (size_t)repeat, sizeof *dom, cmp_long);
    printf("{\"bench\":\"bab\",\"net\":\"%s\",\"prop\":\"%s\",\"threads\":%d,\"cap_s\":%g,\"repeat\":%d,"
           "\"result\":\"%s\",\"seconds\":%.2f,\"root_seconds\":%.2f,\"domains\":%ld,\"domains_per_s\":%.1f}\n",
           net, prop, threads, secs, repeat, word, ms, root, dom[repeat / 2], mr);
    fflush(stdout);
    free(rate);
    free(sec);
    free(dom);
    sk_certify_vnnlib_free(v);
    sk_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 0, boxes = 8, iters = 20;
    float eps = 0.02f;
    const char *onnx = NULL, *bab_net = NULL, *bab_prop = NULL;
    double bab_s = 10;
    int repeat = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--boxes")) boxes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--eps")) eps = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--alpha-iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--onnx")) onnx = argv[i + 1];
        else if (!strcmp(argv[i], "--bab-net")) bab_net = argv[i + 1];
        else if (!strcmp(argv[i], "--bab-prop")) bab_prop = argv[i + 1];
        else if (!strcmp(argv[i], "--bab-seconds")) bab_s = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_verify [--threads T] [--boxes B] [--eps E] [--alpha-iters N] [--onnx DIR]\n"
                            "                    [--bab-net NET --bab-prop PROP [--bab-seconds S] [--repeat R]]\n");
            return 2;
        }
    }
    if (boxes < 1) boxes = 1;
    sk_set_threads(threads);
    threads = sk_get_threads();
    if (bab_net || bab_prop) {
        if (!bab_net || !bab_prop || !(bab_s > 0) || repeat < 1) {
            fprintf(stderr, "bench_verify: --bab-net and --bab-prop go together; --bab-seconds > 0, --repeat >= 1\n");
            return 2;
        }
        return bench_bab(bab_net, bab_prop, bab_s, repeat, threads);
    }
    const char *specs[] = { "mlp:784-512-512-10:relu",
                            "cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10" };
    for (int s = 0; s < 2; s++) {
        struct sk_model *m = sk_model_from_spec(specs[s]);
        if (!m || sk_model_init(m, SK_INIT_HE_UNIFORM, 1)) {
            fprintf(stderr, "bench_verify: %s\n", sk_last_error());
            return 1;
        }
        bench(m, specs[s], boxes, eps, iters, threads);
        sk_model_free(m);
    }
    if (onnx) {
        const char *nets[] = { "mnist-net_256x2.onnx", "mnist-net_256x4.onnx", "mnist-net_256x6.onnx" };
        for (int k = 0; k < 3; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", onnx, nets[k]);
            struct sk_model *m = sk_model_load_onnx(path, NULL);
            if (!m) {
                fprintf(stderr, "bench_verify: %s\n", sk_last_error());
                return 1;
            }
            bench(m, nets[k], boxes, eps, iters, threads);
            sk_model_free(m);
        }
    }
    return 0;
}
