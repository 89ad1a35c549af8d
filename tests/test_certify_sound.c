/* Sound floating point: on networks where float32 rounding decides (large
 * weights whose products cancel to a small margin), the plain bounds are
 * exceeded by the exact (long double) margin of the real-number network at
 * some point of the box, and the outward-rounded bounds (cfg.sound_fp) never
 * are, for IBP, CROWN and alpha-CROWN, with and without an input
 * transform; on ordinary networks (an MLP, a CNN) the sound bounds are
 * never tighter and only slightly looser than the plain ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/certify.h"
#include "testutil.h"

static float urand(struct sk_rng *r, float a, float b) { return a + (b - a) * sk_rng_uniform(r); }

/* The exact margins z_y - z_j at x of a dense/relu network (optionally with
 * its input transform), in long double: float products are exact there and
 * a sum of a few thousand terms loses about 2^-64 of their magnitudes,
 * far below float's 2^-24. */
static void exact_margins(const struct sk_model *m, const float *x, int y, long double *mg)
{
    int D = m->in_dim;
    long double a[1024], b[1024];
    for (int j = 0; j < D; j++) {
        a[j] = x[j];
        if (m->prep) a[j] = (a[j] - (long double)m->prep->shift[j]) * m->prep->scale[j];
    }
    int d = D;
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (L->kind == SK_LAYER_DENSE) {
            int o = L->out[0];
            const float *W = m->params + L->w_off, *bb = m->params + L->b_off;
            for (int i = 0; i < o; i++) {
                long double s = bb[i];
                for (int j = 0; j < d; j++) s += (long double)W[(size_t)i * d + j] * a[j];
                b[i] = s;
            }
            memcpy(a, b, sizeof(long double) * (size_t)o);
            d = o;
        } else if (L->kind == SK_LAYER_RELU) {
            for (int j = 0; j < d; j++) a[j] = a[j] > 0 ? a[j] : 0;
        }
    }
    for (int j = 0; j < d; j++) mg[j] = a[y] - a[j];
}

/* mlp:D-H-2:relu whose pre-activations and margin are sums of terms of
 * size ~1e3 that cancel to ~1e-3 at x: float rounding of the products and
 * of the coefficient matrices is far larger than the margin. */
static struct sk_model *cancelling_mlp(int D, int H, uint64_t seed, const float *x, bool prep)
{
    char spec[64];
    snprintf(spec, sizeof spec, "mlp:%d-%d-2:relu", D, H);
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m) return NULL;
    struct sk_rng r = sk_rng_new(seed);
    if (prep) {
        m->prep = sk_calloc(1, sizeof *m->prep);
        m->prep->kind = SK_PREP_STANDARDIZE;
        m->prep->dim = D;
        m->prep->shift = sk_malloc(sizeof(float) * D);
        m->prep->scale = sk_malloc(sizeof(float) * D);
        for (int j = 0; j < D; j++) {
            m->prep->shift[j] = urand(&r, 0.1f, 0.3f);
            m->prep->scale[j] = urand(&r, 2.0f, 5.0f);
        }
    }
    const struct sk_layer *L1 = &m->layers[0], *L2 = &m->layers[2];
    float *W1 = m->params + L1->w_off, *b1 = m->params + L1->b_off;
    float *W2 = m->params + L2->w_off, *b2 = m->params + L2->b_off;
    for (int i = 0; i < H * D; i++) W1[i] = urand(&r, 100, 1000) * (sk_rng_uniform(&r) < 0.5f ? -1.0f : 1.0f);
    for (int i = 0; i < 2 * H; i++) W2[i] = urand(&r, 100, 1000) * (i < H ? 1.0f : 0.37f);
    /* biases that put the exact pre-activations (1e-3 i) and the margin (1e-4) near 0 at x */
    for (int i = 0; i < H; i++) {
        long double s = 0;
        for (int j = 0; j < D; j++) {
            long double xi = x[j];
            if (prep) xi = (xi - (long double)m->prep->shift[j]) * m->prep->scale[j];
            s += (long double)W1[(size_t)i * D + j] * xi;
        }
        b1[i] = (float)(-s + 1e-3L * (i + 1));
    }
    b2[0] = b2[1] = 0;
    long double mg[2];
    exact_margins(m, x, 0, mg);
    b2[1] = (float)(mg[1] - 1e-4L);
    return m;
}

/* lower bounds of the margins over [x - eps, x + eps] by method, plain or sound */
static int margins(struct sk_model *m, enum sk_certify_method meth, bool sound, const float *x, int y, float eps,
                   float *mlo)
{
    struct sk_certify_crown_config cfg = sk_certify_crown_defaults();
    cfg.sound_fp = sound;
    return sk_certify_margins_cfg(m, meth, x, &y, 1, eps, NULL, &cfg, mlo);
}

static void test_cancelling(void)
{
    const enum sk_certify_method meths[3] = { SK_CERTIFY_IBP, SK_CERTIFY_CROWN, SK_CERTIFY_ALPHA_CROWN };
    int D = 300, H = 4, n_net = 12;
    long plain_bad[3] = { 0 }, sound_bad[3] = { 0 }, checked = 0;
    double worst_sound = 0;
    float x[300], xs[300];
    struct sk_rng r = sk_rng_new(3);
    for (int t = 0; t < n_net; t++) {
        for (int j = 0; j < D; j++) x[j] = urand(&r, 0.5f, 1.0f);
        struct sk_model *m = cancelling_mlp(D, H, 100 + (uint64_t)t, x, t % 2 == 1);
        CHECK(m != NULL, "model: %s", sk_last_error());
        if (!m) return;
        float eps = t % 3 == 0 ? 0.0f : 1e-7f;
        for (int k = 0; k < 3; k++) {
            float lp[2], ls[2];
            int rc = margins(m, meths[k], false, x, 0, eps, lp);
            int rs = margins(m, meths[k], true, x, 0, eps, ls);
            CHECK(rc == 0 && rs == 0, "%s: %s", sk_certify_method_name(meths[k]), sk_last_error());
            if (rc || rs) continue;
            /* the exact margin at the centre and at random points and corners of the box */
            for (int s = 0; s < 20; s++) {
                for (int j = 0; j < D; j++) {
                    float u = s == 0 ? 0.5f : s < 10 ? sk_rng_uniform(&r) : (sk_rng_uniform(&r) < 0.5f ? 0 : 1);
                    xs[j] = x[j] + (2 * u - 1) * eps;
                }
                long double mg[2];
                exact_margins(m, xs, 0, mg);
                checked++;
                plain_bad[k] += (long double)lp[1] > mg[1];
                if ((long double)ls[1] > mg[1]) {
                    sound_bad[k]++;
                    worst_sound = fmax(worst_sound, (double)((long double)ls[1] - mg[1]));
                }
            }
        }
        sk_model_free(m);
    }
    for (int k = 0; k < 3; k++)
        CHECK(sound_bad[k] == 0, "%s sound: %ld exact margins below the bound (worst by %g)",
              sk_certify_method_name(meths[k]), sound_bad[k], worst_sound);
    /* the networks are ones where rounding matters: the plain bounds fail somewhere */
    CHECK(plain_bad[0] + plain_bad[1] + plain_bad[2] > 0,
          "plain bounds never exceeded the exact margin (%ld points): the networks do not test rounding", checked);
    fprintf(stderr, "cancelling networks: plain bounds above the exact margin at %ld / %ld / %ld of %ld points "
            "(ibp / crown / alpha-crown), sound at none\n", plain_bad[0], plain_bad[1], plain_bad[2], checked / 3);
}

/* Ordinary networks: the sound bounds lie below the plain ones, by little. */
static void test_ordinary(void)
{
    const char *specs[2] = { "mlp:20-32-32-5:relu", "cnn:1x8x8-conv4k3p1-relu-maxpool2-conv6k3-relu-flatten-dense5" };
    struct sk_rng r = sk_rng_new(9);
    for (int si = 0; si < 2; si++) {
        struct sk_model *m = sk_model_from_spec(specs[si]);
        CHECK(m != NULL, "%s: %s", specs[si], sk_last_error());
        if (!m) continue;
        sk_model_init(m, SK_INIT_HE_UNIFORM, 4);
        int D = m->in_dim, K = m->n_classes, N = 20;
        float *x = malloc(sizeof(float) * N * D), *mp = malloc(sizeof(float) * N * K),
              *ms = malloc(sizeof(float) * N * K);
        int *y = malloc(sizeof(int) * N);
        for (int i = 0; i < N * D; i++) x[i] = sk_rng_uniform(&r);
        for (int n = 0; n < N; n++) y[n] = n % K;
        for (int k = 0; k < 2; k++) {
            enum sk_certify_method meth = k ? SK_CERTIFY_ALPHA_CROWN : SK_CERTIFY_IBP;
            struct sk_certify_crown_config cfg = sk_certify_crown_defaults();
            struct sk_certify_domain box = { 0, 1, NULL, NULL };
            int rc = sk_certify_margins_cfg(m, meth, x, y, N, 0.02f, &box, &cfg, mp);
            cfg.sound_fp = true;
            int rs = sk_certify_margins_cfg(m, meth, x, y, N, 0.02f, &box, &cfg, ms);
            CHECK(rc == 0 && rs == 0, "%s %s: %s", specs[si], sk_certify_method_name(meth), sk_last_error());
            double worse = 0, looser = 0;
            for (int i = 0; i < N * K && !rc && !rs; i++) {
                if (i % K == y[i / K]) continue;
                worse = fmax(worse, (double)ms[i] - mp[i]);
                looser = fmax(looser, ((double)mp[i] - ms[i]) / (1 + fabs(mp[i])));
            }
            CHECK(worse <= 0 && looser < 1e-3, "%s %s: sound above plain by %g, below by %g (relative)", specs[si],
                  sk_certify_method_name(meth), worse, looser);
        }
        free(x), free(mp), free(ms), free(y);
        sk_model_free(m);
    }
    /* the Lipschitz method has no sound variant: said so, naming the field */
    struct sk_model *m = sk_model_from_spec("mlp:4-8-3:relu");
    float x[4] = { 0.5f, 0.5f, 0.5f, 0.5f }, mlo[3];
    int y = 0;
    struct sk_certify_crown_config cfg = sk_certify_crown_defaults();
    cfg.sound_fp = true;
    CHECK(sk_certify_margins_cfg(m, SK_CERTIFY_LIPSCHITZ, x, &y, 1, 0.1f, NULL, &cfg, mlo) == SK_EINVAL &&
              strstr(sk_last_error(), "cfg.sound_fp"),
          "lipschitz with sound_fp: %s", sk_last_error());
    sk_model_free(m);
}

int main(void)
{
    sk_set_threads(2);
    test_cancelling();
    test_ordinary();
    return sk_test_finish("test_certify_sound");
}
