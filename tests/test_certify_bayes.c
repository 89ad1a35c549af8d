/* Guarantees for Bayesian networks: Clopper-Pearson intervals against
 * scipy's values; interval-weight IBP sound (sampled weights in the box and
 * sampled inputs in the ball give logits and margins inside the bounds) and
 * as tight as plain IBP when the weight radius is 0; the vi weight-box lower
 * bound never above the certified share of sampled weights, and every sample
 * inside a certifying box certified; an ensemble's count equals certifying
 * its members one by one; skeptic certify on posterior files and with
 * --sound-fp. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/bayes.h"
#include "skeptic/certify.h"
#include <cjson/cJSON.h>

#include "testutil.h"

static float urand(struct sk_rng *r, float a, float b) { return a + (b - a) * sk_rng_uniform(r); }

static void logits_with(struct sk_model *m, const float *w, const float *x, int N, float *z)
{
    struct sk_model view = *m;
    view.params = (float *)w;
    struct sk_graph *g = sk_graph_new();
    sk_graph_set_param_grads(g, false);
    int shape[2] = { N, m->in_dim };
    int h = sk_model_forward(&view, g, sk_graph_input(g, x, 2, shape, false), SK_MODE_EVAL, 0);
    SK_ASSERT(h >= 0);
    memcpy(z, sk_graph_value(g, h), sizeof(float) * (size_t)N * m->n_classes);
    sk_graph_free(g);
}

static struct sk_model *random_model(const char *spec, uint64_t seed)
{
    struct sk_model *m = sk_model_from_spec(spec);
    CHECK(m != NULL, "spec %s: %s", spec, sk_last_error());
    if (!m) return NULL;
    sk_model_init(m, SK_INIT_HE_UNIFORM, seed);
    struct sk_rng r = sk_rng_new(seed + 5);
    for (int li = 0; li < m->n_layers; li++) {
        struct sk_layer *L = &m->layers[li];
        if (L->kind == SK_LAYER_DENSE || L->kind == SK_LAYER_CONV)
            for (size_t i = 0; i < L->n_b; i++) m->params[L->b_off + i] = urand(&r, -0.3f, 0.3f);
    }
    return m;
}

static void test_clopper_pearson(void)
{
    /* scipy.stats.beta.ppf(a/2, k, n-k+1), beta.ppf(1-a/2, k+1, n-k) */
    static const struct { long k, n; double c, lo, hi; } ref[] = {
        { 0, 10, 0.95, 0.000000000000, 0.308497107819 },   { 3, 10, 0.95, 0.066739511178, 0.652452850060 },
        { 10, 10, 0.95, 0.691502892181, 1.000000000000 },  { 7, 32, 0.95, 0.092771532285, 0.399728263712 },
        { 31, 32, 0.99, 0.789796110487, 0.999843370336 },  { 50, 100, 0.95, 0.398321129503, 0.601678870497 },
        { 1, 1, 0.9, 0.050000000000, 1.000000000000 },     { 123, 400, 0.999, 0.234546197412, 0.387821620217 },
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        double lo = -1, hi = -1;
        int rc = sk_certify_clopper_pearson(ref[i].k, ref[i].n, ref[i].c, &lo, &hi);
        CHECK(rc == 0 && fabs(lo - ref[i].lo) < 1e-9 && fabs(hi - ref[i].hi) < 1e-9,
              "CP(%ld of %ld, %g) = [%.12f, %.12f], scipy [%.12f, %.12f]", ref[i].k, ref[i].n, ref[i].c, lo, hi,
              ref[i].lo, ref[i].hi);
    }
    double lo, hi;
    CHECK(sk_certify_clopper_pearson(5, 4, 0.95, &lo, &hi) == SK_EINVAL, "k > n accepted");
    CHECK(sk_certify_clopper_pearson(1, 4, 1.0, &lo, &hi) == SK_EINVAL, "confidence 1 accepted");
}

/* Interval weights: sampled networks and inputs inside the bounds. */
static void check_weight_box(const char *spec, int n_boxes)
{
    struct sk_model *m = random_model(spec, 3);
    if (!m) return;
    int D = m->in_dim, K = m->n_classes, S = 8;
    size_t P = m->n_params;
    struct sk_rng r = sk_rng_new(17);
    float *wr = malloc(sizeof(float) * P), *w = malloc(sizeof(float) * P);
    for (size_t i = 0; i < P; i++) wr[i] = 0.1f * fabsf(m->params[i]) + urand(&r, 0, 0.02f);
    float *lo = malloc(sizeof(float) * n_boxes * D), *hi = malloc(sizeof(float) * n_boxes * D);
    float *zl = malloc(sizeof(float) * n_boxes * K), *zh = malloc(sizeof(float) * n_boxes * K);
    float *ml = malloc(sizeof(float) * n_boxes * K), *xs = malloc(sizeof(float) * n_boxes * D);
    float *z = malloc(sizeof(float) * n_boxes * K);
    int *y = malloc(sizeof(int) * n_boxes);
    for (int i = 0; i < n_boxes * D; i++) {
        float c = urand(&r, 0, 1), rad = urand(&r, 0, 0.1f);
        lo[i] = c - rad;
        hi[i] = c + rad;
    }
    for (int n = 0; n < n_boxes; n++) y[n] = n % K;
    int rc = sk_certify_bayes_weight_bounds(m, wr, lo, hi, n_boxes, y, zl, zh, ml);
    CHECK(rc == 0, "weight bounds of %s: %s", spec, sk_last_error());
    long bad = 0, badm = 0, checked = 0;
    for (int s = 0; s < S && rc == 0; s++) {
        /* weights uniform in the box, half of the draws at its corners */
        for (size_t i = 0; i < P; i++) {
            float u = urand(&r, -1, 1);
            if (s % 2) u = u < 0 ? -1.0f : 1.0f;
            w[i] = m->params[i] + u * wr[i];
        }
        for (int i = 0; i < n_boxes * D; i++) {
            float u = sk_rng_uniform(&r);
            if (s % 4 >= 2) u = u < 0.5f ? 0.0f : 1.0f;
            xs[i] = lo[i] + u * (hi[i] - lo[i]);
        }
        logits_with(m, w, xs, n_boxes, z);
        for (int n = 0; n < n_boxes; n++)
            for (int k = 0; k < K; k++) {
                float v = z[n * K + k];
                checked++;
                bad += v < zl[n * K + k] || v > zh[n * K + k];
                if (k != y[n]) badm += z[n * K + y[n]] - v < ml[n * K + k];
            }
    }
    CHECK(bad == 0 && badm == 0 && checked > 0, "%s: %ld logits and %ld margins of %ld outside the weight-box bounds",
          spec, bad, badm, checked);
    /* radius 0: the interval product is exact for point weights, so the bounds are IBP's */
    memset(wr, 0, sizeof(float) * P);
    float *il = malloc(sizeof(float) * n_boxes * K), *ih = malloc(sizeof(float) * n_boxes * K);
    rc = sk_certify_bayes_weight_bounds(m, wr, lo, hi, n_boxes, NULL, zl, zh, NULL);
    int rc2 = sk_certify_bounds(m, SK_CERTIFY_IBP, lo, hi, n_boxes, il, ih);
    double worst = 0;
    for (int i = 0; i < n_boxes * K && !rc && !rc2; i++) {
        double sc = 1 + fabs(il[i]) + fabs(ih[i]);
        worst = fmax(worst, fmax(fabs(zl[i] - il[i]), fabs(zh[i] - ih[i])) / sc);
    }
    CHECK(rc == 0 && rc2 == 0 && worst < 1e-4, "%s: radius-0 weight box vs IBP differ by %g (relative)", spec, worst);
    free(il), free(ih);
    free(wr), free(w), free(lo), free(hi), free(zl), free(zh), free(ml), free(xs), free(z), free(y);
    sk_model_free(m);
}

/* A vi posterior around a random MLP with small scales. */
static struct sk_posterior *vi_posterior(uint64_t seed)
{
    struct sk_model *m = random_model("mlp:4-16-16-3:relu", seed);
    if (!m) return NULL;
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_VI);
    CHECK(p != NULL, "vi posterior: %s", sk_last_error());
    if (!p) return NULL;
    if (!p->rho) p->rho = sk_malloc(sizeof(float) * m->n_params);
    for (size_t i = 0; i < m->n_params; i++) {
        double sg = 0.004 * fabs(m->params[i]) + 0.0005;
        p->rho[i] = (float)log(expm1(sg));
    }
    return p;
}

static void test_vi_lower_bound(void)
{
    struct sk_posterior *p = vi_posterior(21);
    if (!p) return;
    struct sk_model *m = p->model;
    int N = 80, D = m->in_dim, K = m->n_classes;
    float *x = malloc(sizeof(float) * N * D), *z = malloc(sizeof(float) * N * K);
    int *y = malloc(sizeof(int) * N);
    struct sk_rng r = sk_rng_new(5);
    for (int i = 0; i < N * D; i++) x[i] = sk_rng_uniform(&r);
    logits_with(m, m->params, x, N, z);
    for (int n = 0; n < N; n++) {
        y[n] = 0;
        for (int k = 1; k < K; k++)
            if (z[n * K + k] > z[n * K + y[n]]) y[n] = k;
    }
    struct sk_certify_bayes_config cfg = sk_certify_bayes_defaults();
    cfg.samples = 300;
    cfg.method = SK_CERTIFY_IBP;
    struct sk_certify_domain box = { 0, 1, NULL, NULL };
    struct sk_certify_bayes_result res;
    for (int e = 0; e < 2; e++) {
        float eps = e == 0 ? 0.01f : 0.03f;
        int rc = sk_certify_bayes(p, x, y, N, eps, &box, &cfg, &res);
        CHECK(rc == 0, "vi certify: %s", sk_last_error());
        if (rc) break;
        int n_box = 0, above = 0;
        for (int n = 0; n < N; n++) {
            double lo, hi;
            sk_certify_clopper_pearson(res.n_cert[n], res.n_samples, 1 - 2e-7, &lo, &hi);
            n_box += res.vi_lower[n] > 0;
            above += res.vi_lower[n] > hi;
            CHECK(res.cp_lo[n] <= res.frac[n] && res.frac[n] <= res.cp_hi[n], "point %d: %g outside [%g, %g]", n,
                  res.frac[n], res.cp_lo[n], res.cp_hi[n]);
        }
        CHECK(above == 0, "eps %g: the vi lower bound exceeds the sampled share's 1 - 2e-7 upper end at %d points",
              eps, above);
        /* the test means something only if boxes certify some points, and not all of them */
        CHECK(n_box >= 5 && n_box < N, "eps %g: %d points with a certifying box", eps, n_box);
        CHECK(res.mean_vi_lower <= res.mean_frac + 0.05, "eps %g: mean bound %g, mean share %g", eps,
              res.mean_vi_lower, res.mean_frac);
        /* hard: every network inside a certifying box is certified at that point (weights uniform in
         * the box of a certifying radius, half of them at its corners) */
        size_t P = m->n_params;
        float *sig = malloc(sizeof(float) * P), *w = malloc(sizeof(float) * P);
        sk_bayes_vi_sigma(p->rho, sig, P);
        unsigned char *cert = malloc((size_t)N);
        long inside = 0, missed = 0;
        for (int s = 0; s < 60; s++) {
            int ki = s % res.n_k;
            if (res.k_certified[ki] == 0) continue;
            float k = res.k[ki];
            for (size_t i = 0; i < P; i++) {
                float u = urand(&r, -1, 1);
                if (s % 2) u = u < 0 ? -1.0f : 1.0f;
                w[i] = m->params[i] + u * k * sig[i] * (1 - 1e-6f);
            }
            struct sk_model view = *m;
            view.params = w;
            struct sk_certify_report rep;
            sk_certify_box(&view, SK_CERTIFY_IBP, x, y, N, eps, &box, cert, &rep);
            for (int n = 0; n < N; n++)
                if (res.vi_k[n] >= k) {
                    inside++;
                    missed += !cert[n];
                }
        }
        CHECK(missed == 0 && inside > 0, "eps %g: %ld of %ld networks inside a certifying box not certified", eps,
              missed, inside);
        free(sig), free(w), free(cert);
        sk_certify_bayes_result_free(&res);
    }
    sk_certify_bayes_result_free(NULL);
    free(x), free(z), free(y);
    sk_bayes_free(p);
}

static void test_ensemble(void)
{
    struct sk_model *m = random_model("mlp:4-16-16-3:relu", 9);
    if (!m) return;
    size_t P = m->n_params;
    int M = 5, N = 40, D = m->in_dim;
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_ENSEMBLE);
    if (!p) return;
    p->n_members = M;
    p->members = sk_malloc(sizeof(float) * P * M);
    struct sk_rng r = sk_rng_new(1);
    for (int k = 0; k < M; k++)
        for (size_t i = 0; i < P; i++) p->members[k * P + i] = m->params[i] * urand(&r, 0.8f, 1.2f);
    float *x = malloc(sizeof(float) * N * D);
    int *y = malloc(sizeof(int) * N);
    for (int i = 0; i < N * D; i++) x[i] = sk_rng_uniform(&r);
    for (int n = 0; n < N; n++) y[n] = n % 3;
    struct sk_certify_domain box = { 0, 1, NULL, NULL };
    struct sk_certify_bayes_result res;
    int rc = sk_certify_bayes(p, x, y, N, 0.02f, &box, NULL, &res);
    CHECK(rc == 0, "ensemble certify: %s", sk_last_error());
    if (!rc) {
        CHECK(res.n_samples == M && res.method == SK_CERTIFY_CROWN && !res.vi_lower,
              "ensemble: %d samples, method %d", res.n_samples, res.method);
        int *cnt = calloc((size_t)N, sizeof(int));
        unsigned char *cert = malloc((size_t)N);
        for (int k = 0; k < M; k++) {
            struct sk_model view = *m;
            view.params = p->members + k * P;
            struct sk_certify_report rep;
            sk_certify_box(&view, SK_CERTIFY_CROWN, x, y, N, 0.02f, &box, cert, &rep);
            for (int n = 0; n < N; n++) cnt[n] += cert[n];
        }
        int diff = 0, some = 0;
        for (int n = 0; n < N; n++) {
            diff += cnt[n] != res.n_cert[n];
            some += cnt[n] > 0;
        }
        CHECK(diff == 0 && some > 0, "ensemble: %d points differ from member-by-member counts (%d certified)", diff,
              some);
        free(cnt), free(cert);
        sk_certify_bayes_result_free(&res);
    }
    struct sk_certify_bayes_config cfg = sk_certify_bayes_defaults();
    cfg.confidence = 1.5;
    CHECK(sk_certify_bayes(p, x, y, N, 0.02f, &box, &cfg, &res) == SK_EINVAL &&
              strstr(sk_last_error(), "cfg.confidence"),
          "a bad confidence: %s", sk_last_error());
    free(x), free(y);
    sk_bayes_free(p);
}

static void test_mc_dropout(void)
{
    struct sk_model *m = random_model("mlp:4-16-16-3:relu:dropout0.3", 4);
    if (!m) return;
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_MCDROPOUT);
    if (!p) return;
    int N = 30, D = m->in_dim;
    float *x = malloc(sizeof(float) * N * D);
    struct sk_rng r = sk_rng_new(8);
    for (int i = 0; i < N * D; i++) x[i] = sk_rng_uniform(&r);
    struct sk_certify_bayes_config cfg = sk_certify_bayes_defaults();
    cfg.samples = 64;
    struct sk_certify_bayes_result res;
    struct sk_certify_domain box = { 0, 1, NULL, NULL };
    /* eps 0: a sample is certified where it predicts the predictive's class (margin above the tolerance) */
    int rc = sk_certify_bayes(p, x, NULL, N, 0.0f, &box, &cfg, &res);
    CHECK(rc == 0, "mc-dropout certify: %s", sk_last_error());
    if (!rc) {
        /* the predictive's class is the samples' majority in most points; masks really vary */
        int part = 0, most = 0;
        for (int n = 0; n < N; n++) {
            part += res.n_cert[n] > 0 && res.n_cert[n] < res.n_samples;
            most += res.frac[n] >= 0.5;
        }
        CHECK(res.n_samples == 64 && part > 0 && most >= N * 2 / 3, "mc-dropout: %d points split, %d majority", part,
              most);
        sk_certify_bayes_result_free(&res);
    }
    free(x);
    sk_bayes_free(p);
}

/* skeptic certify on posterior files and with --sound-fp, end to end on moons. */
#define MOONS "moons:n=200,noise=0.1"
static void test_cli(void)
{
    char a[512];
    const char *train[3] = { "--method ensemble --members 3 --out ens.safetensors",
                             "--method vi --kl-weight 0.1 --out vi.safetensors", "--out det.safetensors" };
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "train --data " MOONS " --arch mlp:2-16-16-2:relu --epochs 8 --lr 0.01 --batch 32 "
                 "--seed 3 --threads 1 %s", train[i]);
        CHECK(sk_cli_run(a) == 0, "%s: %s", a, sk_cli_err);
    }
    CHECK(sk_cli_run("certify --model ens.safetensors --data " MOONS " --eps 0.05 --json") == 0, "ens: %s", sk_cli_err);
    struct cJSON *o = sk_cli_json();
    double mass = sk_json_num(o, "certified_mass");
    CHECK(o && sk_json_num(o, "samples") == 3 && !strcmp(sk_json_str(o, "method"), "crown") &&
              !strcmp(sk_json_str(o, "posterior"), "ensemble") && mass >= 0 && mass <= 1 &&
              sk_json_num(o, "certified_mass_cp_lower") <= mass && mass <= sk_json_num(o, "certified_mass_cp_upper"),
          "ensemble --json: %s", sk_cli_out);
    cJSON_Delete(o);
    CHECK(sk_cli_run("certify --model vi.safetensors --data " MOONS " --eps 0.05 --samples 16 --method ibp --json") == 0,
          "vi: %s", sk_cli_err);
    o = sk_cli_json();
    double vl = sk_json_num(o, "vi_lower");
    CHECK(o && sk_json_num(o, "samples") == 16 && vl >= 0 && vl <= 1 && strstr(sk_cli_out, "\"vi_boxes\""),
          "vi --json: %s", sk_cli_out);
    cJSON_Delete(o);
    CHECK(sk_cli_run("certify --model vi.safetensors --data " MOONS " --eps 0.05 --samples 8") == 0 &&
              strstr(sk_cli_out, "certified  posterior mass") && strstr(sk_cli_out, "vi bound"),
          "vi text: %s", sk_cli_out);
    /* --sound-fp: never more certified than without */
    double n_plain = -1, n_sound = -1;
    if (sk_cli_run("certify --model det.safetensors --data " MOONS " --eps 0.05 --method crown --json") == 0 &&
        (o = sk_cli_json())) {
        n_plain = sk_json_num(o, "n_certified");
        cJSON_Delete(o);
    }
    if (sk_cli_run("certify --model det.safetensors --data " MOONS " --eps 0.05 --method crown --sound-fp --json") == 0 &&
        (o = sk_cli_json())) {
        n_sound = sk_json_num(o, "n_certified");
        cJSON_Delete(o);
    }
    CHECK(n_plain > 0 && n_sound >= 0 && n_sound <= n_plain, "--sound-fp certified %g, plain %g: %s", n_sound, n_plain,
          sk_cli_err);
    CHECK(sk_cli_run("certify --model det.safetensors --data " MOONS " --eps 0.05 --method lipschitz --sound-fp") == 2 &&
              strstr(sk_cli_err, "--sound-fp"),
          "lipschitz --sound-fp: %s", sk_cli_err);
}

int main(void)
{
    sk_set_threads(2);
    test_clopper_pearson();
    check_weight_box("mlp:6-12-12-4:relu", 200);
    check_weight_box("mlp:6-12-12-4:tanh", 100);
    check_weight_box("cnn:1x6x6-conv3k3p1-relu-maxpool2-flatten-dense4", 100);
    test_vi_lower_bound();
    test_ensemble();
    test_mc_dropout();
    test_cli();
    return sk_test_finish("test_certify_bayes");
}
