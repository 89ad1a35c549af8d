/* The parts of judging a trained graph model (a ResNet) that the CLI does not
 * cover on a plain model file. One JSON line per mode.
 *
 *   resnet_trial --model M --mc-dropout OUT
 *       OUT: the MC-dropout posterior of M (the same weights; dropout on at
 *       prediction), so `skeptic eval --samples S --ood mnist` and
 *       `skeptic attack` judge the MC-dropout form with its own predictive.
 *   resnet_trial --model M --laplace OUT [--fit-n N]
 *       OUT: last-layer Laplace (KFAC, prior precision by the marginal
 *       likelihood) around M, fitted on the first N training rows (default all).
 *   resnet_trial --model M --ibp-sound [--eps E] [--n N] [--draws T] [--seed S]
 *       IBP logit bounds of the first N test points' balls (L-inf radius E,
 *       inside [0,1]) against the logits of T points drawn in each ball (half
 *       of them corners, where a ReLU network takes its extremes): a logit
 *       outside its bounds by more than 1e-5 (1 + |bound|) counts as a
 *       violation. Also the share of each bound's width that the draws reach.
 *
 * Fashion-MNIST from --dir (default: the Debian dataset's folder).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/bayes.h"
#include "skeptic/certify.h"

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f;
}

static int fail(void)
{
    fprintf(stderr, "resnet_trial: %s\n", sk_last_error());
    return 1;
}

static int write_mc(const char *model, const char *out)
{
    struct sk_posterior *p = sk_bayes_load(model);
    if (!p) return fail();
    if (!sk_model_has_dropout(p->model)) {
        fprintf(stderr, "resnet_trial: %s has no dropout layer: its MC-dropout form would be deterministic\n", model);
        sk_bayes_free(p);
        return 1;
    }
    p->method = SK_BAYES_MCDROPOUT;
    int rc = sk_bayes_save(p, out);
    sk_bayes_free(p);
    if (rc) return fail();
    printf("{\"mode\":\"mc-dropout\",\"model\":\"%s\",\"out\":\"%s\"}\n", model, out);
    return 0;
}

static int write_laplace(const char *model, const char *out, const char *dir, int fit_n)
{
    struct sk_posterior *p = sk_bayes_load(model);
    struct sk_dataset *tr = p ? sk_data_fashion_mnist(dir, "train") : NULL;
    if (!p || !tr) {
        sk_bayes_free(p);
        return fail();
    }
    int n = fit_n > 0 && fit_n < tr->n ? fit_n : tr->n;
    p->method = SK_BAYES_LAPLACE;
    struct sk_bayes_laplace_config lc = sk_bayes_laplace_defaults();
    double t0 = sk_now();
    int rc = sk_bayes_fit_laplace(p, &lc, tr->x, tr->y, n, NULL, NULL, 0);
    double secs = sk_now() - t0;
    if (!rc) rc = sk_bayes_save(p, out);
    if (!rc)
        printf("{\"mode\":\"laplace\",\"model\":\"%s\",\"out\":\"%s\",\"fit_rows\":%d,\"hessian\":\"kfac\","
               "\"prior_precision\":%.9g,\"seconds\":%.3f}\n",
               model, out, n, p->prior_precision, secs);
    sk_dataset_free(tr);
    sk_bayes_free(p);
    return rc ? fail() : 0;
}

static int ibp_sound(const char *model, const char *dir, float eps, int n, int draws, uint64_t seed)
{
    struct sk_model *m = sk_model_load(model, NULL, NULL);
    struct sk_dataset *te = m ? sk_data_fashion_mnist(dir, "test") : NULL;
    if (!m || !te) {
        sk_model_free(m);
        return fail();
    }
    if (n > te->n) n = te->n;
    /* the draws of P points go through one call: sk_model_logits sets up its
     * graph per call, which costs more than a small batch's forward */
    int D = m->in_dim, K = m->n_classes, P = draws < 4096 ? 4096 / draws : 1;
    size_t rows = (size_t)P * draws;
    float *lo = malloc(sizeof(float) * (size_t)n * D), *hi = malloc(sizeof(float) * (size_t)n * D);
    float *zlo = malloc(sizeof(float) * (size_t)n * K), *zhi = malloc(sizeof(float) * (size_t)n * K);
    float *p = malloc(sizeof(float) * rows * D), *z = malloc(sizeof(float) * rows * K);
    float *smin = malloc(sizeof(float) * (size_t)K), *smax = malloc(sizeof(float) * (size_t)K);
    int rc = lo && hi && zlo && zhi && p && z && smin && smax ? SK_OK : SK_ENOMEM;
    for (size_t i = 0; !rc && i < (size_t)n * D; i++) {
        lo[i] = fmaxf(0.0f, te->x[i] - eps);
        hi[i] = fminf(1.0f, te->x[i] + eps);
    }
    double t0 = sk_now();
    if (!rc) rc = sk_certify_bounds(m, SK_CERTIFY_IBP, lo, hi, n, zlo, zhi);
    double t_ibp = sk_now() - t0;
    long outside = 0, checked = 0;
    double worst = 0, width = 0, reach = 0;
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int i0 = 0; !rc && i0 < n; i0 += P) {
        int np = n - i0 < P ? n - i0 : P;
        for (int a = 0; a < np; a++) {
            const float *l = lo + (size_t)(i0 + a) * D, *h = hi + (size_t)(i0 + a) * D;
            for (int t = 0; t < draws; t++) {
                float *row = p + ((size_t)a * draws + t) * D;
                for (int j = 0; j < D; j++) {
                    float u = urand(&s);
                    row[j] = t % 2 ? (u < 0.5f ? l[j] : h[j]) : l[j] + (h[j] - l[j]) * u;
                }
            }
        }
        if ((rc = sk_model_logits(m, p, np * draws, z))) break;
        for (int a = 0; a < np; a++) {
            const float *bl = zlo + (size_t)(i0 + a) * K, *bh = zhi + (size_t)(i0 + a) * K;
            for (int k = 0; k < K; k++) smin[k] = INFINITY, smax[k] = -INFINITY;
            for (int t = 0; t < draws; t++)
                for (int k = 0; k < K; k++) {
                    float v = z[((size_t)a * draws + t) * K + k];
                    double over = fmax(bl[k] - v, v - bh[k]);
                    if (over > worst) worst = over;
                    outside += over > 1e-5 * (1 + fmax(fabs(bl[k]), fabs(bh[k])));
                    checked++;
                    smin[k] = fminf(smin[k], v);
                    smax[k] = fmaxf(smax[k], v);
                }
            for (int k = 0; k < K; k++) {
                width += bh[k] - bl[k];
                reach += bh[k] > bl[k] ? (smax[k] - smin[k]) / (bh[k] - bl[k]) : 1;
            }
        }
    }
    if (!rc)
        printf("{\"mode\":\"ibp-sound\",\"model\":\"%s\",\"eps\":%g,\"n\":%d,\"draws\":%d,\"logits_checked\":%ld,"
               "\"outside\":%ld,\"worst_excess\":%.6g,\"mean_bound_width\":%.6g,\"mean_reached_share\":%.6g,"
               "\"ibp_seconds\":%.3f}\n",
               model, eps, n, draws, checked, outside, worst, width / ((double)n * K), reach / ((double)n * K),
               t_ibp);
    free(lo);
    free(hi);
    free(zlo);
    free(zhi);
    free(p);
    free(z);
    free(smin);
    free(smax);
    sk_dataset_free(te);
    sk_model_free(m);
    if (rc) return fail();
    return outside ? 3 : 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *mc = NULL, *lap = NULL, *dir = NULL;
    bool sound = false;
    float eps = 0.01f;
    int n = 100, draws = 200, fit_n = 0, threads = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--ibp-sound")) {
            sound = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "usage: resnet_trial --model M (--mc-dropout OUT | --laplace OUT [--fit-n N] | --ibp-sound "
                            "[--eps E] [--n N] [--draws T] [--seed S]) [--dir D] [--threads T]\n");
            return 2;
        }
        if (!strcmp(k, "--model")) model = v;
        else if (!strcmp(k, "--mc-dropout")) mc = v;
        else if (!strcmp(k, "--laplace")) lap = v;
        else if (!strcmp(k, "--dir")) dir = v;
        else if (!strcmp(k, "--eps")) eps = (float)atof(v);
        else if (!strcmp(k, "--n")) n = atoi(v);
        else if (!strcmp(k, "--draws")) draws = atoi(v);
        else if (!strcmp(k, "--fit-n")) fit_n = atoi(v);
        else if (!strcmp(k, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else {
            fprintf(stderr, "resnet_trial: unknown option %s\n", k);
            return 2;
        }
        i++;
    }
    if (!model || (!mc && !lap && !sound) || n < 1 || draws < 1 || !(eps >= 0)) {
        fprintf(stderr, "resnet_trial: --model and one of --mc-dropout, --laplace, --ibp-sound are required "
                        "(n, draws >= 1, eps >= 0)\n");
        return 2;
    }
    if (threads > 0) sk_set_threads(threads);
    if (mc) return write_mc(model, mc);
    if (lap) return write_laplace(model, lap, dir, fit_n);
    return ibp_sound(model, dir, eps, n, draws, seed);
}
