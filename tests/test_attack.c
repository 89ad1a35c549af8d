/* Attacks: norm ball and box for every attack; closed forms on a linear
 * softmax model (FGSM, DeepFool and CW minimal L2 distance); more steps or
 * restarts never raise per-sample robustness; a masked-gradient classifier
 * trips the audit and Square still breaks it; accuracy-vs-eps is
 * non-increasing; a stochastic model attacked without EOT looks more robust
 * and is labelled so. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/attack.h"
#include "skeptic/skeptic.h"
#include "testutil.h"

static float *rand_inputs(int n, int D, float lo, float hi, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n * D);
    struct sk_rng r = sk_rng_new(seed);
    for (size_t i = 0; i < (size_t)n * D; i++) x[i] = lo + (hi - lo) * sk_rng_uniform(&r);
    return x;
}

/* labels = the classifier's own predictions (clean accuracy 100%) */
static int *own_labels(struct sk_classifier *c, const float *x, int n)
{
    int *y = malloc(sizeof(int) * n);
    sk_classifier_predict(c, x, n, y);
    return y;
}

static bool within(const struct sk_attack_result *r, const float *x, enum sk_norm p, float eps, int C, double *worst)
{
    bool ok = true;
    *worst = 0;
    for (int i = 0; i < r->n; i++) {
        const float *a = r->x_adv + (size_t)i * r->dim, *b = x + (size_t)i * r->dim;
        float *d = malloc(sizeof(float) * r->dim);
        for (int j = 0; j < r->dim; j++) {
            if (!(a[j] >= 0.0f && a[j] <= 1.0f)) ok = false;
            d[j] = a[j] - b[j];
        }
        double nrm = sk_attack_norm(p, d, r->dim, C);
        free(d);
        if (nrm > *worst) *worst = nrm;
        if (nrm > eps * (1 + 1e-6) + 1e-6) ok = false;
    }
    return ok;
}

/* ---- a linear softmax model with hand-set weights ---- */
static struct sk_model *linear_model(int D, int K, uint64_t seed)
{
    char spec[64];
    snprintf(spec, sizeof spec, "mlp:%d-%d", D, K);
    struct sk_model *m = sk_model_from_spec(spec);
    struct sk_rng r = sk_rng_new(seed);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = 0.6f * sk_rng_normal(&r);
    return m;
}

static void test_linear(void)
{
    int D = 20, K = 4, n = 40;
    struct sk_model *m = linear_model(D, K, 3);
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
    float *x = rand_inputs(n, D, 0.35f, 0.65f, 11);
    int *y = own_labels(c, x, n);
    const float *W = sk_model_tensor_data(m, sk_model_tensor(m, "0.weight"));
    const float *b = sk_model_tensor_data(m, sk_model_tensor(m, "0.bias"));

    /* FGSM: x + eps sign(W^T (p - e_y)), clipped to the box */
    float eps = 0.05f;
    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_FGSM, SK_NORM_LINF, eps);
    float *xa = malloc(sizeof(float) * n * D);
    int rc = sk_attack_run(c, &cfg, x, y, NULL, n, xa, NULL);
    CHECK(rc == 0, "fgsm run: %s", sk_last_error());
    double maxdiff = 0;
    for (int i = 0; i < n; i++) {
        double z[8], mx = -1e30, s = 0;
        for (int k = 0; k < K; k++) {
            z[k] = b[k];
            for (int j = 0; j < D; j++) z[k] += (double)W[k * D + j] * x[i * D + j];
            mx = fmax(mx, z[k]);
        }
        for (int k = 0; k < K; k++) s += exp(z[k] - mx);
        for (int j = 0; j < D; j++) {
            double g = 0;
            for (int k = 0; k < K; k++) g += (exp(z[k] - mx) / s - (k == y[i])) * W[k * D + j];
            double want = x[i * D + j] + eps * ((g > 0) - (g < 0));
            want = fmin(fmax(want, 0), 1);
            maxdiff = fmax(maxdiff, fabs(want - xa[i * D + j]));
        }
    }
    CHECK(maxdiff < 1e-6, "fgsm equals its closed form on a linear model (max diff %.3g)", maxdiff);

    /* minimal L2 distance to the decision boundary: min_j (z_y - z_j) / |W_y - W_j| */
    double *dstar = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        double zy = b[y[i]], best = INFINITY;
        for (int j = 0; j < D; j++) zy += (double)W[y[i] * D + j] * x[i * D + j];
        for (int k = 0; k < K; k++) {
            if (k == y[i]) continue;
            double zk = b[k], w2 = 0;
            for (int j = 0; j < D; j++) {
                zk += (double)W[k * D + j] * x[i * D + j];
                double w = (double)W[y[i] * D + j] - W[k * D + j];
                w2 += w * w;
            }
            best = fmin(best, (zy - zk) / sqrt(w2));
        }
        dstar[i] = best;
    }
    enum sk_attack_kind kinds[] = { SK_ATTACK_DEEPFOOL, SK_ATTACK_CW, SK_ATTACK_FMN };
    for (int a = 0; a < 3; a++) {
        cfg = sk_attack_defaults(kinds[a], SK_NORM_L2, INFINITY);
        if (kinds[a] == SK_ATTACK_CW) {
            cfg.steps = 2000;
            cfg.step_size = 0.001f;
            cfg.cw_search_steps = 12;
        }
        float *mn = malloc(sizeof(float) * n);
        rc = sk_attack_run(c, &cfg, x, y, NULL, n, xa, mn);
        CHECK(rc == 0, "%s run: %s", sk_attack_name(kinds[a]), sk_last_error());
        double worst = 0;
        int found = 0, box_active = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < D; j++) box_active += xa[i * D + j] <= 0 || xa[i * D + j] >= 1;
            if (!isfinite(mn[i])) continue;
            found++;
            worst = fmax(worst, fabs(mn[i] - dstar[i]) / dstar[i]);
        }
        CHECK(box_active == 0, "%s: the box is not active in this test (%d coordinates on it)", sk_attack_name(kinds[a]),
              box_active);
        CHECK(found == n, "%s found an adversarial example for every point (%d of %d)", sk_attack_name(kinds[a]),
              found, n);
        double tol = kinds[a] == SK_ATTACK_FMN ? 0.05 : 0.01;
        CHECK(worst < tol, "%s reaches the minimal L2 distance within %.0f%% (worst %.4f%%)", sk_attack_name(kinds[a]),
              tol * 100, worst * 100);
        free(mn);
    }
    free(dstar);
    free(xa);
    free(x);
    free(y);
    sk_classifier_free(c);
    sk_model_free(m);
}

/* ---- every attack: ball and box ---- */
static void test_bounds(void)
{
    int D = 64, n = 48;
    struct sk_model *m = sk_model_from_spec("mlp:64-32-10:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 7);
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
    float *x = rand_inputs(n, D, 0, 1, 5);
    for (int i = 0; i < n * D; i += 7) x[i] = (i / 7) % 2 ? 0.0f : 1.0f; /* some coordinates on the box */
    int *y = own_labels(c, x, n);
    int *tg = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) tg[i] = (y[i] + 3) % 10;
    struct {
        enum sk_attack_kind k;
        enum sk_norm p;
        float eps;
        enum sk_target_mode t;
    } cases[] = {
        { SK_ATTACK_FGSM, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_FGSM, SK_NORM_L2, 0.3f, SK_TARGET_NONE },
        { SK_ATTACK_PGD, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_PGD, SK_NORM_LINF, 0.05f, SK_TARGET_GIVEN },
        { SK_ATTACK_PGD, SK_NORM_LINF, 0.05f, SK_TARGET_RANDOM },
        { SK_ATTACK_PGD, SK_NORM_LINF, 0.05f, SK_TARGET_LEAST_LIKELY },
        { SK_ATTACK_PGD, SK_NORM_L2, 0.3f, SK_TARGET_NONE },
        { SK_ATTACK_MIFGSM, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_APGD_CE, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_APGD_CE, SK_NORM_L2, 0.3f, SK_TARGET_NONE },
        { SK_ATTACK_APGD_DLR, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_APGD_DLR, SK_NORM_LINF, 0.05f, SK_TARGET_GIVEN },
        { SK_ATTACK_APGD_T, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_CW, SK_NORM_L2, 0.3f, SK_TARGET_NONE },
        { SK_ATTACK_CW, SK_NORM_L2, 1.0f, SK_TARGET_RANDOM },
        { SK_ATTACK_DEEPFOOL, SK_NORM_L2, 0.3f, SK_TARGET_NONE },
        { SK_ATTACK_FMN, SK_NORM_L2, 0.3f, SK_TARGET_NONE },
        { SK_ATTACK_FMN, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_SQUARE, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_SQUARE, SK_NORM_LINF, 0.08f, SK_TARGET_RANDOM },
        { SK_ATTACK_SPARSE, SK_NORM_L0, 3, SK_TARGET_NONE },
        { SK_ATTACK_SUITE, SK_NORM_LINF, 0.03f, SK_TARGET_NONE },
        { SK_ATTACK_SUITE, SK_NORM_L2, 0.3f, SK_TARGET_NONE },
    };
    for (size_t q = 0; q < sizeof cases / sizeof *cases; q++) {
        struct sk_attack_config cfg = sk_attack_defaults(cases[q].k, cases[q].p, cases[q].eps);
        cfg.target = cases[q].t;
        cfg.targets = tg;
        cfg.queries = 300;
        cfg.seed = 9;
        if (cases[q].k == SK_ATTACK_CW) cfg.cw_search_steps = 5;
        struct sk_attack_result *r = sk_attack_evaluate(c, &cfg, x, y, n);
        CHECK(r != NULL, "evaluate %s %s: %s", sk_attack_name(cases[q].k), sk_attack_norm_name(cases[q].p),
              sk_last_error());
        if (!r) continue;
        double worst;
        bool ok = within(r, x, cases[q].p, cases[q].eps, 1, &worst);
        CHECK(ok, "%s %s %s: every example in the box and the eps=%g ball (worst norm %.8g)",
              sk_attack_name(cases[q].k), sk_attack_norm_name(cases[q].p), sk_attack_target_name(cases[q].t),
              cases[q].eps, worst);
        /* the verdicts agree with the examples: success => misclassified (or target hit) */
        int agree = 0;
        int *pa = malloc(sizeof(int) * n);
        sk_classifier_predict(c, r->x_adv, n, pa);
        for (int i = 0; i < n; i++) {
            int p = pa[i];
            bool want = cfg.target ? p == r->target[i] : p != y[i];
            agree += want == r->success[i];
        }
        free(pa);
        CHECK(agree == n, "%s %s: success flags match the classifier on x_adv (%d of %d)", sk_attack_name(cases[q].k),
              sk_attack_target_name(cases[q].t), agree, n);
        CHECK(r->clean_acc == 1.0, "clean accuracy 1 with own labels");
        CHECK(r->robust_acc < 1.0, "%s %s %s at eps %g breaks something (robust %.3f)", sk_attack_name(cases[q].k),
              sk_attack_norm_name(cases[q].p), sk_attack_target_name(cases[q].t), cases[q].eps, r->robust_acc);
        CHECK(r->grad_evals > 0 || cases[q].k == SK_ATTACK_SQUARE || cases[q].k == SK_ATTACK_SPARSE,
              "gradient count recorded");
        CHECK(!r->warn_bad_grad && !r->warn_no_eot && !r->warn_train_mode, "no audit warning on a clean model (%s)",
              r->n_warnings ? r->warnings[0] : "");
        if (cases[q].k == SK_ATTACK_SUITE)
            CHECK(r->n_stages == (cases[q].p == SK_NORM_LINF ? 4 : 3) && !strcmp(r->stages[0].name, "apgd-ce"),
                  "suite stages (%d)", r->n_stages);
        sk_attack_result_free(r);
    }
    /* errors name the config field (the CLI names its flag: test_cli) */
    struct sk_attack_config bad = sk_attack_defaults(SK_ATTACK_CW, SK_NORM_LINF, 0.1f);
    struct sk_attack_result *r = sk_attack_evaluate(c, &bad, x, y, n);
    CHECK(!r && strstr(sk_last_error(), "cfg.norm l2"), "cw with linf rejected: %s", sk_last_error());
    bad = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, -1);
    r = sk_attack_evaluate(c, &bad, x, y, n);
    CHECK(!r && strstr(sk_last_error(), "cfg.eps"), "negative eps rejected: %s", sk_last_error());
    free(tg);
    free(x);
    free(y);
    sk_classifier_free(c);
    sk_model_free(m);
}

/* ---- more steps / restarts never raise per-sample robustness ---- */
static void test_monotone(void)
{
    int D = 64, n = 64;
    struct sk_model *m = sk_model_from_spec("mlp:64-32-10:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 17);
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
    float *x = rand_inputs(n, D, 0, 1, 23);
    int *y = own_labels(c, x, n);
    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0.012f);
    cfg.step_size = 0.002f;
    cfg.steps = 3;
    struct sk_attack_result *a = sk_attack_evaluate(c, &cfg, x, y, n);
    cfg.steps = 12;
    struct sk_attack_result *b = sk_attack_evaluate(c, &cfg, x, y, n);
    cfg.random_start = true;
    cfg.restarts = 1;
    struct sk_attack_result *r1 = sk_attack_evaluate(c, &cfg, x, y, n);
    cfg.restarts = 4;
    struct sk_attack_result *r4 = sk_attack_evaluate(c, &cfg, x, y, n);
    struct sk_attack_config ac = sk_attack_defaults(SK_ATTACK_APGD_CE, SK_NORM_LINF, 0.008f);
    ac.steps = 10;
    struct sk_attack_result *p1 = sk_attack_evaluate(c, &ac, x, y, n);
    ac.restarts = 3;
    struct sk_attack_result *p3 = sk_attack_evaluate(c, &ac, x, y, n);
    CHECK(a && b && r1 && r4 && p1 && p3, "monotone runs: %s", sk_last_error());
    if (a && b && r1 && r4 && p1 && p3) {
        int v1 = 0, v2 = 0, v3 = 0;
        for (int i = 0; i < n; i++) {
            v1 += b->robust[i] && !a->robust[i];
            v2 += r4->robust[i] && !r1->robust[i];
            v3 += p3->robust[i] && !p1->robust[i];
        }
        CHECK(v1 == 0, "12 steps never leave standing a point that 3 steps broke (%d)", v1);
        CHECK(v2 == 0, "4 restarts never leave standing a point that 1 restart broke (%d)", v2);
        CHECK(v3 == 0, "apgd: 3 restarts never leave standing a point that 1 broke (%d)", v3);
        CHECK(b->robust_acc < a->robust_acc, "more steps break more here (%.3f < %.3f)", b->robust_acc, a->robust_acc);
        CHECK(r4->robust_acc <= r1->robust_acc, "restarts (%.3f <= %.3f)", r4->robust_acc, r1->robust_acc);
        printf("monotone: pgd 3 steps %.3f, 12 steps %.3f; 1 restart %.3f, 4 restarts %.3f; apgd 1 %.3f 3 %.3f\n",
               a->robust_acc, b->robust_acc, r1->robust_acc, r4->robust_acc, p1->robust_acc, p3->robust_acc);
    }
    /* dropping broken rows from later model calls changes the cost, not the results */
    struct sk_attack_config kc = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0.012f);
    kc.steps = 12;
    kc.step_size = 0.002f;
    kc.keep_going = true;
    struct sk_attack_result *k = sk_attack_evaluate(c, &kc, x, y, n);
    struct sk_attack_config ka = sk_attack_defaults(SK_ATTACK_APGD_CE, SK_NORM_LINF, 0.008f);
    ka.steps = 10;
    struct sk_attack_result *ap0 = sk_attack_evaluate(c, &ka, x, y, n);
    ka.keep_going = true;
    struct sk_attack_result *ap1 = sk_attack_evaluate(c, &ka, x, y, n);
    if (k && b && ap0 && ap1) {
        int same = 0, same2 = 0;
        for (int i = 0; i < n; i++) {
            same += k->robust[i] == b->robust[i];
            same2 += ap0->robust[i] == ap1->robust[i];
        }
        CHECK(same == n && same2 == n && k->grad_evals > b->grad_evals && ap1->grad_evals > ap0->grad_evals,
              "early stop of broken rows: same per-point verdicts (%d, %d of %d), fewer gradients (%ld < %ld)", same,
              same2, n, b->grad_evals, k->grad_evals);
    }
    sk_attack_result_free(k);
    sk_attack_result_free(ap0);
    sk_attack_result_free(ap1);
    sk_attack_result_free(a);
    sk_attack_result_free(b);
    sk_attack_result_free(r1);
    sk_attack_result_free(r4);
    sk_attack_result_free(p1);
    sk_attack_result_free(p3);

    /* accuracy versus eps */
    float eps[] = { 0, 0.005f, 0.01f, 0.02f, 0.05f };
    double acc[5];
    struct sk_attack_result *rs[5] = { 0 };
    cfg = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0);
    int rc = sk_attack_curve(c, &cfg, eps, 5, x, y, n, acc, rs);
    CHECK(rc == 0, "curve: %s", sk_last_error());
    bool mono = true;
    for (int e = 1; e < 5; e++) mono &= acc[e] <= acc[e - 1];
    CHECK(mono && acc[0] == 1.0 && acc[4] < acc[0], "accuracy vs eps non-increasing: %.3f %.3f %.3f %.3f %.3f", acc[0],
          acc[1], acc[2], acc[3], acc[4]);
    bool sub = true;
    for (int e = 1; e < 5 && rs[e]; e++)
        for (int i = 0; i < n; i++) sub &= !(rs[e]->robust[i] && !rs[e - 1]->robust[i]);
    CHECK(sub, "a point broken at eps is broken at every larger eps");
    for (int e = 0; e < 5; e++) sk_attack_result_free(rs[e]);
    float badeps[] = { 0.1f, 0.05f };
    CHECK(sk_attack_curve(c, &cfg, badeps, 2, x, y, n, acc, NULL) != 0 && strstr(sk_last_error(), "ascending"),
          "unsorted eps list rejected");
    free(x);
    free(y);
    sk_classifier_free(c);
    sk_model_free(m);
}

/* ---- a classifier with a masked gradient: z = W step(V x + c) ---- */
struct masked {
    struct sk_graph *g;
    float *V, *cb, *W;
    int D, H, K;
};

static int masked_forward(struct masked *mk, const float *x, int N, bool grad, int *xin)
{
    sk_graph_reset(mk->g);
    *xin = sk_graph_input(mk->g, x, 2, (int[]){ N, mk->D }, grad);
    int V = sk_graph_param(mk->g, mk->V, NULL, 2, (int[]){ mk->H, mk->D });
    int cb = sk_graph_param(mk->g, mk->cb, NULL, 1, (int[]){ mk->H });
    int W = sk_graph_param(mk->g, mk->W, NULL, 2, (int[]){ mk->K, mk->H });
    int h = sk_op_step(mk->g, sk_op_dense(mk->g, *xin, V, cb));
    return sk_op_log_softmax(mk->g, sk_op_dense(mk->g, h, W, -1));
}

static int masked_log_probs(void *self, const float *x, int N, float *logp)
{
    struct masked *mk = self;
    int xin, lp = masked_forward(mk, x, N, false, &xin);
    if (lp < 0) return lp;
    memcpy(logp, sk_graph_value(mk->g, lp), sizeof(float) * (size_t)N * mk->K);
    return 0;
}

static int masked_input_grad(void *self, const float *x, int N, sk_logp_loss_fn f, void *fctx, float *logp,
                             float *loss, float *dx)
{
    struct masked *mk = self;
    int xin, lp = masked_forward(mk, x, N, true, &xin);
    if (lp < 0) return lp;
    float *dl = malloc(sizeof(float) * (size_t)N * mk->K);
    f(fctx, sk_graph_value(mk->g, lp), N, mk->K, loss, dl);
    int rc = sk_graph_backward(mk->g, lp, dl);
    free(dl);
    if (rc) return rc;
    if (logp) memcpy(logp, sk_graph_value(mk->g, lp), sizeof(float) * (size_t)N * mk->K);
    memcpy(dx, sk_graph_grad(mk->g, xin), sizeof(float) * (size_t)N * mk->D);
    return 0;
}

static void masked_destroy(void *self)
{
    struct masked *mk = self;
    sk_graph_free(mk->g);
    free(mk->V);
    free(mk->cb);
    free(mk->W);
    free(mk);
}

static struct sk_classifier *masked_classifier(int D, int H, int K, uint64_t seed)
{
    struct masked *mk = calloc(1, sizeof *mk);
    mk->g = sk_graph_new();
    sk_graph_set_param_grads(mk->g, false);
    mk->D = D;
    mk->H = H;
    mk->K = K;
    mk->V = malloc(sizeof(float) * H * D);
    mk->cb = malloc(sizeof(float) * H);
    mk->W = malloc(sizeof(float) * K * H);
    struct sk_rng r = sk_rng_new(seed);
    for (int i = 0; i < H * D; i++) mk->V[i] = sk_rng_normal(&r);
    /* thresholds near V x0 for x0 around 0.5: features flip under small perturbations */
    for (int h = 0; h < H; h++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += mk->V[h * D + j] * 0.5;
        mk->cb[h] = (float)(-s + 0.3 * sk_rng_normal(&r));
    }
    for (int i = 0; i < K * H; i++) mk->W[i] = sk_rng_normal(&r);
    struct sk_classifier *c = calloc(1, sizeof *c);
    c->self = mk;
    c->n_classes = K;
    c->in_c = 1;
    c->in_h = 8;
    c->in_w = 8;
    c->in_dim = D;
    c->n_samples = 1;
    c->kind = "masked";
    c->log_probs = masked_log_probs;
    c->input_grad = masked_input_grad;
    c->destroy = masked_destroy;
    return c;
}

static void test_masked(void)
{
    int D = 64, n = 64;
    struct sk_classifier *c = masked_classifier(D, 32, 10, 5);
    float *x = rand_inputs(n, D, 0.3f, 0.7f, 41);
    int *y = own_labels(c, x, n);
    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0.1f);
    struct sk_attack_result *rp = sk_attack_evaluate(c, &cfg, x, y, n);
    cfg = sk_attack_defaults(SK_ATTACK_SQUARE, SK_NORM_LINF, 0.1f);
    cfg.queries = 1000;
    struct sk_attack_result *rq = sk_attack_evaluate(c, &cfg, x, y, n);
    cfg = sk_attack_defaults(SK_ATTACK_SUITE, SK_NORM_LINF, 0.1f);
    cfg.queries = 1000;
    cfg.steps = 20;
    struct sk_attack_result *rs = sk_attack_evaluate(c, &cfg, x, y, n);
    CHECK(rp && rq && rs, "masked runs: %s", sk_last_error());
    if (rp && rq && rs) {
        CHECK(rp->warn_bad_grad && rp->frac_zero_grad == 1.0, "zero-gradient audit fires (fraction %.2f)",
              rp->frac_zero_grad);
        CHECK(rp->n_warnings > 0 && strstr(rp->warnings[0], "zero"), "warning text: %s",
              rp->n_warnings ? rp->warnings[0] : "(none)");
        CHECK(rp->robust_acc == 1.0, "pgd is helpless against a zero gradient (robust %.3f)", rp->robust_acc);
        CHECK(rq->robust_acc < 0.5, "square still breaks the masked model (robust %.3f)", rq->robust_acc);
        CHECK(rs->warn_masking && rs->robust_acc <= rq->robust_acc,
              "suite: black-box beat white-box warning fires (robust %.3f)", rs->robust_acc);
        printf("masked: pgd robust %.3f, square robust %.3f, suite robust %.3f\n", rp->robust_acc, rq->robust_acc,
               rs->robust_acc);
    }
    sk_attack_result_free(rp);
    sk_attack_result_free(rq);
    sk_attack_result_free(rs);
    /* the audit warnings reach every point of an accuracy-vs-eps curve */
    float eps[] = { 0.05f, 0.1f };
    double acc[2];
    struct sk_attack_result *cr[2] = { 0 };
    cfg = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0);
    cfg.steps = 5;
    CHECK(sk_attack_curve(c, &cfg, eps, 2, x, y, n, acc, cr) == 0 && cr[1] && cr[1]->warn_bad_grad &&
              cr[1]->n_warnings > 0,
          "curve carries the zero-gradient warning to its last point");
    sk_attack_result_free(cr[0]);
    sk_attack_result_free(cr[1]);
    /* pictures and arrays: PNG and npy files are written (atomically) */
    char path[512];
    snprintf(path, sizeof path, "%s/grid.png", sk_test_tmpdir());
    int pred[64];
    sk_classifier_predict(c, x, n, pred);
    CHECK(sk_attack_plot_grid(path, x, x, y, pred, NULL, 4, 1, 8, 8, NULL, 0) == 0, "grid png: %s", sk_last_error());
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = { 0 };
    CHECK(f && fread(sig, 1, 8, f) == 8 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G', "grid is a PNG");
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/adv.npy", sk_test_tmpdir());
    CHECK(sk_attack_save_npy(path, x, n, 1, 8, 8) == 0, "npy written");
    f = fopen(path, "rb");
    char head[128] = { 0 };
    long size = 0;
    if (f) {
        size_t got = fread(head, 1, sizeof head - 1, f);
        (void)got;
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
    }
    CHECK(!memcmp(head, "\x93NUMPY", 6) && strstr(head + 10, "(64, 1, 8, 8)") && size % 64 == (long)(sizeof(float) * n * D) % 64 &&
              size == 128 + (long)(sizeof(float) * n * D),
          "npy header and size (%ld bytes)", size);
    snprintf(path, sizeof path, "%s/no-such-dir/adv.npy", sk_test_tmpdir());
    CHECK(sk_attack_save_npy(path, x, n, 1, 8, 8) != 0 && strstr(sk_last_error(), "no-such-dir"),
          "npy to a missing directory fails with the path: %s", sk_last_error());
    free(x);
    free(y);
    sk_classifier_free(c);
}

/* ---- stochastic model: no EOT looks more robust and is labelled ---- */
static void test_eot(void)
{
    int D = 64, n = 200;
    struct sk_dataset *d = sk_data_blobs(n * 2, 10, D, 1.0f, 3);
    /* squash blobs into [0,1] */
    for (size_t i = 0; i < (size_t)d->n * D; i++) d->x[i] = 1 / (1 + expf(-d->x[i] / 3));
    struct sk_model *m = sk_model_from_spec("seq:64-dense128-relu-dropout0.6-dense128-relu-dropout0.6-dense10");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 2);
    struct sk_train_config tc = sk_train_defaults();
    tc.epochs = 5;
    tc.batch = 32;
    tc.opt = sk_optim_defaults(SK_OPT_ADAM);
    int rc = sk_train(m, &tc, d->x + (size_t)n * D, d->y + n, n);
    CHECK(rc == 0, "train: %s", sk_last_error());
    struct sk_classifier *c1 = sk_classifier_from_model(m, SK_MODE_MC, 1, 1);
    struct sk_classifier *c16 = sk_classifier_from_model(m, SK_MODE_MC, 16, 1);
    struct sk_classifier *judge = sk_classifier_from_model(m, SK_MODE_MC, 64, 77);
    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_FGSM, SK_NORM_LINF, 0.03f);
    struct sk_attack_result *r1 = sk_attack_evaluate(c1, &cfg, d->x, d->y, n);
    struct sk_attack_result *r16 = sk_attack_evaluate(c16, &cfg, d->x, d->y, n);
    CHECK(r1 && r16, "eot runs: %s", sk_last_error());
    if (r1 && r16) {
        int *p = malloc(sizeof(int) * n);
        int ok1 = 0, ok16 = 0;
        sk_classifier_predict(judge, r1->x_adv, n, p);
        for (int i = 0; i < n; i++) ok1 += p[i] == d->y[i];
        sk_classifier_predict(judge, r16->x_adv, n, p);
        for (int i = 0; i < n; i++) ok16 += p[i] == d->y[i];
        free(p);
        printf("eot: robust accuracy (judged with 64 samples) without EOT %.3f, with EOT-16 %.3f; "
               "reported %.3f vs %.3f\n", (double)ok1 / n, (double)ok16 / n, r1->robust_acc, r16->robust_acc);
        CHECK(ok1 > ok16 + n / 50, "without EOT the model looks more robust (%d vs %d of %d)", ok1, ok16, n);
        CHECK(r1->no_eot && r1->warn_no_eot && !r16->no_eot && !r16->warn_no_eot, "no-EOT flag and warning only without EOT");
        char buf[2048];
        sk_attack_summary(r1, buf, sizeof buf);
        CHECK(strstr(buf, "stochastic model, no EOT") != NULL, "summary labels the no-EOT figure:\n%s", buf);
        sk_attack_summary(r16, buf, sizeof buf);
        CHECK(strstr(buf, "no EOT") == NULL, "EOT figure not labelled no-EOT");
    }
    sk_attack_result_free(r1);
    sk_attack_result_free(r16);
    sk_classifier_free(c1);
    sk_classifier_free(c16);
    sk_classifier_free(judge);
    sk_model_free(m);
    sk_dataset_free(d);
}

/* ---- a stochastic classifier that lucky samples fool ----
 * Two classes, inputs (x1, x2, x3) in [0,1]; per sample the score of class 0 is
 *   z = 1.25 (x1 + x2 - 1) + base + u,  base = 2.2 if x3 rounds to 1, else 1.3,
 * u = -7 with probability 0.2 (a lucky sample: p0 < 0.01), else 0; a call
 * averages the probabilities of 8 samples (EOT). At x = (0.5, 0.5, x3) with
 * eps 0.45 (L-inf) the attack can lower z by 1.125: the averaged
 * p0 = 0.8 sigma(z) + 0.2 sigma(z - 7) stays >= 0.6 for base 2.2 (robust
 * everywhere in the ball) and drops to 0.44 for base 1.3 (clean 0.63:
 * breakable). One call misclassifies a robust point when 3 or more of its 8
 * samples are lucky: about one time in five. */
#define LUCKY_S 8
struct lucky {
    uint64_t key, calls;
};

/* the S sample scores of row i in call `call`, and the log of the averaged probabilities */
static void lucky_forward(const struct lucky *l, uint64_t call, int row, const float *x, float *z, float *lp)
{
    float base = rintf(x[2]) >= 1 ? 2.2f : 1.3f;
    double p0 = 0;
    for (int s = 0; s < LUCKY_S; s++) {
        uint64_t k = sk_rng_derive(sk_rng_derive(l->key, call).key, (uint64_t)row).key;
        bool hit = sk_rng_uniform_at(k, (uint64_t)s) < 0.2f;
        z[s] = 1.25f * (x[0] + x[1] - 1) + base - (hit ? 7.0f : 0.0f);
        p0 += 1 / (1 + exp(-(double)z[s]));
    }
    p0 /= LUCKY_S;
    lp[0] = (float)log(p0);
    lp[1] = (float)log1p(-p0);
}

static int lucky_log_probs(void *self, const float *x, int N, float *logp)
{
    struct lucky *l = self;
    uint64_t call = l->calls++;
    float z[LUCKY_S];
    for (int i = 0; i < N; i++) lucky_forward(l, call, i, x + (size_t)i * 3, z, logp + 2 * i);
    return SK_OK;
}

static int lucky_input_grad(void *self, const float *x, int N, sk_logp_loss_fn f, void *fctx, float *logp,
                            float *loss, float *dx)
{
    struct lucky *l = self;
    uint64_t call = l->calls++;
    float *lp = calloc(2 * (size_t)N + 2, sizeof(float)), *dl = calloc(2 * (size_t)N + 2, sizeof(float));
    float *z = calloc((size_t)N * LUCKY_S + 1, sizeof(float));
    for (int i = 0; i < N; i++) lucky_forward(l, call, i, x + (size_t)i * 3, z + (size_t)i * LUCKY_S, lp + 2 * i);
    f(fctx, lp, N, 2, loss, dl);
    for (int i = 0; i < N; i++) {
        /* d log pbar0 / d z_s = sigma'(z_s) / (S pbar0), d log pbar1 / d z_s = -sigma'(z_s) / (S pbar1) */
        double p0 = exp(lp[2 * i]), p1 = exp(lp[2 * i + 1]), g = 0;
        for (int s = 0; s < LUCKY_S; s++) {
            double sg = 1 / (1 + exp(-(double)z[(size_t)i * LUCKY_S + s])), ds = sg * (1 - sg) / LUCKY_S;
            g += dl[2 * i] * ds / p0 - dl[2 * i + 1] * ds / p1;
        }
        dx[3 * i] = dx[3 * i + 1] = (float)(1.25 * g);
        dx[3 * i + 2] = 0;
    }
    if (logp) memcpy(logp, lp, sizeof(float) * 2 * (size_t)N);
    free(lp);
    free(dl);
    free(z);
    return SK_OK;
}

static void test_lucky_sample(void)
{
    int n = 60;
    struct lucky l = { sk_rng_derive(sk_rng_new(5).key, 1).key, 0 };
    struct sk_classifier c = { 0 };
    c.self = &l;
    c.n_classes = 2;
    c.in_c = 3;
    c.in_h = c.in_w = 1;
    c.in_dim = 3;
    c.stochastic = true;
    c.n_samples = LUCKY_S;
    c.kind = "lucky";
    c.log_probs = lucky_log_probs;
    c.input_grad = lucky_input_grad;
    float *x = malloc(sizeof(float) * 3 * (size_t)n);
    int *y = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        x[3 * i] = x[3 * i + 1] = 0.5f;
        x[3 * i + 2] = i < n / 2 ? 1.0f : 0.0f; /* first half robust, second half breakable */
    }
    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0.45f);
    cfg.steps = 10;
    cfg.audit = false;
    struct sk_attack_result *r = sk_attack_evaluate(&c, &cfg, x, y, n);
    CHECK(r != NULL, "lucky: %s", sk_last_error());
    if (r) {
        int rob_first = 0, rob_second = 0;
        for (int i = 0; i < n; i++) *(i < n / 2 ? &rob_first : &rob_second) += r->robust[i];
        printf("lucky sample: clean %.3f robust %.3f (s.e. %.4f, verdict %d samples); robust half %d/%d, "
               "breakable half %d/%d robust\n", r->clean_acc, r->robust_acc, r->robust_acc_se, r->verdict_samples,
               rob_first, n / 2, rob_second, n / 2);
        /* one call as the verdict would misjudge about 6 of the 30 robust points (each 1 in 5) */
        CHECK(r->clean_acc == 1.0, "every clean point is correct on average (clean %.3f)", r->clean_acc);
        CHECK(rob_first == n / 2, "no robust point is counted broken by a lucky sample (%d of %d robust)", rob_first,
              n / 2);
        CHECK(rob_second == 0, "every breakable point is broken (%d of %d left robust)", rob_second, n / 2);
        CHECK(fabs(r->robust_acc - 0.5) < 1e-12 && r->n_stages == 1 && r->stages[0].robust_acc == r->robust_acc,
              "robust accuracy 0.5 = the stage's (%g, %g)", r->robust_acc, r->stages[0].robust_acc);
        CHECK(r->verdict_samples == SK_ATTACK_VERDICT_SAMPLES, "verdict of %d samples (%d)", SK_ATTACK_VERDICT_SAMPLES,
              r->verdict_samples);
        /* margins are >= 6 standard errors: the error is tiny but positive */
        CHECK(r->robust_acc_se >= 0 && r->robust_acc_se < 0.01, "Monte-Carlo s.e. %g", r->robust_acc_se);
        /* the breakable points' kept iterates sit at the corner of the ball (z lowered by 1) */
        double worst = 0;
        for (int i = n / 2; i < n; i++)
            worst = fmax(worst, fabs(r->x_adv[3 * i] - 0.05f) + fabs(r->x_adv[3 * i + 1] - 0.05f));
        CHECK(worst < 0.05, "broken points pushed to the corner of the ball (worst distance %g)", worst);
    }
    sk_attack_result_free(r);
    /* a verdict of 16 samples (2 calls of 8) misjudges robust points: the sample count matters */
    cfg.verdict_samples = 1;
    r = sk_attack_evaluate(&c, &cfg, x, y, n);
    CHECK(r && r->verdict_samples == 2 * LUCKY_S, "the verdict takes two calls at least (%d)",
          r ? r->verdict_samples : -1);
    if (r) {
        int rob_first = 0;
        for (int i = 0; i < n / 2; i++) rob_first += r->robust[i];
        printf("lucky sample, verdict of 16 samples: %d of %d robust points kept, s.e. %.4f\n", rob_first, n / 2,
               r->robust_acc_se);
        CHECK(rob_first < n / 2 && r->robust_acc_se > 0.01,
              "a 16-sample verdict loses robust points (%d of %d) and says so (s.e. %g)", rob_first, n / 2,
              r->robust_acc_se);
    }
    sk_attack_result_free(r);
    /* sk_attack_run: the same verdict, min_norm only where it says adversarial */
    float *xa = malloc(sizeof(float) * 3 * (size_t)n), *mn = malloc(sizeof(float) * (size_t)n);
    cfg.verdict_samples = 0; /* the default */
    int rc = sk_attack_run(&c, &cfg, x, y, NULL, n, xa, mn);
    CHECK(rc == 0, "run: %s", sk_last_error());
    int inf_first = 0, fin_second = 0;
    for (int i = 0; i < n; i++) {
        if (i < n / 2) inf_first += isinf(mn[i]);
        else fin_second += isfinite(mn[i]) && fabsf(mn[i] - 0.45f) < 1e-3f;
    }
    CHECK(inf_first == n / 2 && fin_second == n / 2, "min_norm: none for robust points (%d of %d), eps for broken (%d of %d)",
          inf_first, n / 2, fin_second, n / 2);
    free(xa);
    free(mn);
    free(x);
    free(y);
}

/* ---- the suite on an MC-dropout model: stage lines and headline agree ---- */
static void test_suite_stochastic(void)
{
    int D = 64, n = 40;
    struct sk_dataset *d = sk_data_blobs(n + 300, 10, D, 1.0f, 3);
    for (size_t i = 0; i < (size_t)d->n * D; i++) d->x[i] = 1 / (1 + expf(-d->x[i] / 3));
    struct sk_model *m = sk_model_from_spec("mlp:64-128-10:relu:dropout0.3");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 2);
    struct sk_train_config tc = sk_train_defaults();
    tc.epochs = 15;
    tc.batch = 32;
    tc.opt = sk_optim_defaults(SK_OPT_ADAM);
    CHECK(sk_train(m, &tc, d->x + (size_t)n * D, d->y + n, 300) == 0, "train: %s", sk_last_error());
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_MC, 4, 1);
    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_SUITE, SK_NORM_LINF, 0.02f);
    cfg.steps = 8;
    cfg.queries = 40;
    cfg.verdict_samples = 100;
    struct sk_attack_result *r = sk_attack_evaluate(c, &cfg, d->x, d->y, n);
    CHECK(r && r->n_stages == 4, "suite runs: %s", r ? "" : sk_last_error());
    if (r && r->n_stages == 4) {
        char buf[4096];
        sk_attack_summary(r, buf, sizeof buf);
        printf("%s", buf);
        CHECK(r->stages[3].robust_acc == r->robust_acc, "last stage %.4f = headline %.4f", r->stages[3].robust_acc,
              r->robust_acc);
        for (int s = 1; s < 4; s++)
            CHECK(r->stages[s].robust_acc <= r->stages[s - 1].robust_acc, "stage %d %.4f <= stage %d %.4f", s,
                  r->stages[s].robust_acc, s - 1, r->stages[s - 1].robust_acc);
        CHECK(r->robust_acc < r->clean_acc && r->clean_acc > 0.5, "the attack breaks something (clean %.3f, robust %.3f)",
              r->clean_acc, r->robust_acc);
        CHECK(r->verdict_samples == 100 && r->robust_acc_se > 0 && r->robust_acc_se < 0.05,
              "verdict of 100 samples (%d), s.e. %g", r->verdict_samples, r->robust_acc_se);
        CHECK(strstr(buf, "100 predictive samples") != NULL, "summary names the verdict");
        /* a fresh 400-sample predictive agrees with the headline on the kept iterates */
        struct sk_classifier *judge = sk_classifier_from_model(m, SK_MODE_MC, 400, 99);
        int *p = malloc(sizeof(int) * n), ok = 0;
        sk_classifier_predict(judge, r->x_adv, n, p);
        for (int i = 0; i < n; i++) ok += p[i] == d->y[i] && r->clean_correct[i];
        free(p);
        sk_classifier_free(judge);
        double acc = (double)ok / n;
        CHECK(fabs(acc - r->robust_acc) <= 3 * r->robust_acc_se + 1.0 / n + 1e-9,
              "a fresh 400-sample verdict %.4f agrees with the headline %.4f (s.e. %.4f)", acc, r->robust_acc,
              r->robust_acc_se);
    }
    sk_attack_result_free(r);
    sk_classifier_free(c);
    sk_model_free(m);
    sk_dataset_free(d);
}

/* ---- the other audits ---- */
struct batchdep {
    struct sk_classifier *inner;
    float *buf;
    int D;
};

/* rows centred on the batch mean, as a batch-norm layer left in train mode does */
static void centre(struct batchdep *b, const float *x, int N)
{
    for (int j = 0; j < b->D; j++) {
        double m = 0;
        for (int i = 0; i < N; i++) m += x[(size_t)i * b->D + j];
        m /= N;
        for (int i = 0; i < N; i++) b->buf[(size_t)i * b->D + j] = x[(size_t)i * b->D + j] - (float)m + 0.5f;
    }
}

static int bd_log_probs(void *self, const float *x, int N, float *logp)
{
    struct batchdep *b = self;
    centre(b, x, N);
    return b->inner->log_probs(b->inner->self, b->buf, N, logp);
}

static int bd_input_grad(void *self, const float *x, int N, sk_logp_loss_fn f, void *fctx, float *logp, float *loss,
                         float *dx)
{
    struct batchdep *b = self;
    centre(b, x, N);
    return b->inner->input_grad(b->inner->self, b->buf, N, f, fctx, logp, loss, dx);
}

static void test_audits(void)
{
    int D = 64, n = 32;
    float *x = rand_inputs(n, D, 0, 1, 77);
    /* scores that are probabilities already: a sigmoid as the last layer */
    struct sk_model *m = sk_model_from_spec("seq:64-dense32-relu-dense10-sigmoid");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
    int *y = own_labels(c, x, n);
    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_FGSM, SK_NORM_LINF, 0.05f);
    struct sk_attack_result *r = sk_attack_evaluate(c, &cfg, x, y, n);
    CHECK(r && r->warn_probabilities && !r->warn_train_mode, "probabilities-as-logits audit fires");
    sk_attack_result_free(r);
    sk_classifier_free(c);
    sk_model_free(m);
    free(y);
    /* dropout left on while the classifier claims to be deterministic */
    m = sk_model_from_spec("mlp:64-32-10:relu:dropout0.5");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    c = sk_classifier_from_model(m, SK_MODE_MC, 1, 0);
    c->stochastic = false;
    y = own_labels(c, x, n);
    r = sk_attack_evaluate(c, &cfg, x, y, n);
    CHECK(r && r->warn_train_mode && r->warn_no_eot, "train-mode dropout audit fires");
    sk_attack_result_free(r);
    sk_classifier_free(c);
    /* outputs that depend on the batch */
    struct sk_model *m2 = sk_model_from_spec("mlp:64-32-10:relu");
    sk_model_init(m2, SK_INIT_HE_UNIFORM, 4);
    struct batchdep *bd = calloc(1, sizeof *bd);
    bd->inner = sk_classifier_from_model(m2, SK_MODE_EVAL, 1, 0);
    bd->buf = malloc(sizeof(float) * 256 * D);
    bd->D = D;
    struct sk_classifier w = *bd->inner;
    w.self = bd;
    w.log_probs = bd_log_probs;
    w.input_grad = bd_input_grad;
    w.destroy = NULL;
    int *y2 = own_labels(&w, x, n);
    r = sk_attack_evaluate(&w, &cfg, x, y2, n);
    CHECK(r && r->warn_train_mode && !r->warn_no_eot, "batch-dependence audit fires (%s)",
          r && r->n_warnings ? r->warnings[0] : "");
    sk_attack_result_free(r);
    sk_classifier_free(bd->inner);
    free(bd->buf);
    free(bd);
    free(y2);
    sk_model_free(m2);
    sk_model_free(m);
    free(y);
    free(x);
}

/* Inputs outside the box (data not scaled to [0,1], e.g. moons): the L-inf
 * projection keeps |x - x0| <= eps and returns at once (it used to step
 * ulp by ulp from the box edge towards x0). */
static void test_project_outside_box(void)
{
    const float x0[4] = { -1.0f, 2.0f, 0.5f, 1.05f };
    float x[4] = { 0.3f, 0.3f, 0.9f, 0.9f };
    sk_attack_project(SK_NORM_LINF, 0.1f, 0.0f, 1.0f, x0, x, 1, 4);
    CHECK(fabsf(x[0] + 0.9f) < 1e-6f && fabsf(x[1] - 1.9f) < 1e-6f, "outside the box the ball wins: %g %g", x[0], x[1]);
    CHECK(fabsf(x[2] - 0.6f) < 1e-6f && fabsf(x[3] - 0.95f) < 1e-6f, "box and ball meet: the nearest point of both: %g %g",
          x[2], x[3]);
    for (int j = 0; j < 4; j++) CHECK(fabsf(x[j] - x0[j]) <= 0.1f, "|x - x0| <= eps at %d", j);
}

int main(void)
{
    sk_set_threads(2);
    test_linear();
    test_bounds();
    test_monotone();
    test_masked();
    test_eot();
    test_lucky_sample();
    test_suite_stochastic();
    test_audits();
    test_project_outside_box();
    return sk_test_finish("test_attack");
}
