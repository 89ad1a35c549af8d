/* Certified accuracy of a model file on the Fashion-MNIST test set by IBP
 * (specification form), by the CROWN-IBP bound of certified training
 * (sk_robust_crown_ibp_margins: IBP boxes, CROWN backward from the margins;
 * any chain of dense / conv / relu / flatten, where `skeptic certify
 * --method crown` takes MLPs only), and by the better of the two per margin.
 * A point counts when its prediction is right and every margin bound exceeds
 * SK_CERTIFY_TOL (1 + max |bound|), as sk_certify counts. Prints one JSON line.
 *
 *   crown_ibp_cert --model M.safetensors [--eps 0.1] [--n 10000] [--threads 1] [--dir D]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/certify.h"
#include "skeptic/model_file.h"
#include "skeptic/robust.h"

static bool certified(const float *mlo, int K, int y)
{
    float big = 0;
    for (int j = 0; j < K; j++) big = fmaxf(big, fabsf(mlo[j]));
    for (int j = 0; j < K; j++)
        if (j != y && !(mlo[j] > SK_CERTIFY_TOL * (1 + big))) return false;
    return true;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *dir = NULL;
    float eps = 0.1f;
    int n = 10000, threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: crown_ibp_cert --model M [--eps E] [--n N] [--threads T] [--dir D]\n");
            return 2;
        }
        if (!strcmp(k, "--model")) path = v;
        else if (!strcmp(k, "--eps")) eps = (float)atof(v);
        else if (!strcmp(k, "--n")) n = atoi(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--dir")) dir = v;
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
        i++;
    }
    if (!path) {
        fprintf(stderr, "crown_ibp_cert: --model is required\n");
        return 2;
    }
    sk_set_threads(threads);
    struct sk_model *m = sk_model_load(path, NULL, NULL);
    struct sk_dataset *te = m ? sk_data_fashion_mnist(dir, "test") : NULL;
    if (!m || !te) {
        fprintf(stderr, "%s\n", sk_last_error());
        return 1;
    }
    if (n > te->n) n = te->n;
    int K = m->n_classes, D = m->in_dim, B = 100;
    if (K > 64) {
        fprintf(stderr, "crown_ibp_cert: %d classes, at most 64\n", K);
        return 1;
    }
    float *mi = malloc(sizeof(float) * (size_t)n * K), *mc = malloc(sizeof(float) * (size_t)B * K);
    float *z = malloc(sizeof(float) * (size_t)B * K);
    struct sk_graph *g = sk_graph_new();
    sk_graph_set_param_grads(g, false);
    double t0 = sk_now();
    struct sk_certify_domain box = { 0, 1, NULL, NULL };
    int rc = sk_certify_margins_box(m, SK_CERTIFY_IBP, te->x, te->y, n, eps, &box, mi);
    double t_ibp = sk_now() - t0;
    int n_ok = 0, n_ibp = 0, n_ci = 0, n_best = 0;
    t0 = sk_now();
    for (int i = 0; i < n && rc == SK_OK; i += B) {
        int b = n - i < B ? n - i : B;
        const float *x = te->x + (size_t)i * D;
        const int *y = te->y + i;
        if ((rc = sk_model_logits(m, x, b, z))) break;
        sk_graph_reset(g);
        int c, r, ml;
        if ((rc = sk_certify_ibp_input(g, m, x, b, eps, 0, 1, &c, &r))) break;
        if ((rc = sk_robust_crown_ibp_margins(m, g, c, r, y, 1.0f, &ml))) break;
        memcpy(mc, sk_graph_value(g, ml), sizeof(float) * (size_t)b * K);
        for (int q = 0; q < b; q++) {
            int pred = 0;
            for (int j = 1; j < K; j++)
                if (z[q * K + j] > z[q * K + pred]) pred = j;
            if (pred != y[q]) continue;
            n_ok++;
            const float *a = mi + (size_t)(i + q) * K, *cc = mc + (size_t)q * K;
            float best[64];
            for (int j = 0; j < K; j++) best[j] = fmaxf(a[j], cc[j]);
            n_ibp += certified(a, K, y[q]);
            n_ci += certified(cc, K, y[q]);
            n_best += certified(best, K, y[q]);
        }
    }
    double t_ci = sk_now() - t0;
    if (rc) {
        fprintf(stderr, "%s\n", sk_last_error());
        return 1;
    }
    printf("{\"model\":\"%s\",\"eps\":%g,\"n\":%d,\"clean\":%.4f,\"ibp_cert\":%.4f,\"crown_ibp_cert\":%.4f,"
           "\"best_cert\":%.4f,\"ibp_s\":%.1f,\"crown_ibp_s\":%.1f}\n",
           path, eps, n, (double)n_ok / n, (double)n_ibp / n, (double)n_ci / n, (double)n_best / n, t_ibp, t_ci);
    sk_graph_free(g);
    free(mi), free(mc), free(z);
    sk_dataset_free(te);
    sk_model_free(m);
    return 0;
}
