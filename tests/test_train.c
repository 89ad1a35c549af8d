/* Models, optimisers and the training loop: spec parsing, learning two moons
 * and spirals, bitwise determinism, Hessian-vector products, early stopping,
 * non-finite loss detection, optimiser first steps against hand-worked values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static void test_spec(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:784-512-512-10:relu");
    CHECK(m && m->n_layers == 5 && m->n_classes == 10, "mlp spec parses into 5 layers");
    CHECK(m && m->n_params == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10, "mlp parameter count");
    CHECK(m && sk_model_tensor(m, "4.weight") && sk_model_tensor(m, "4.weight")->shape[0] == 10,
          "tensor 4.weight is [10,512] as in nn.Sequential");
    sk_model_free(m);
    m = sk_model_from_spec("cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10");
    CHECK(m && m->n_params == 32 * 9 + 32 + 64 * 32 * 9 + 64 + 3136 * 128 + 128 + 1280 + 10, "cnn parameter count");
    CHECK(m && sk_model_tensor(m, "7.weight") && sk_model_tensor(m, "7.weight")->shape[1] == 3136, "cnn 7.weight");
    sk_model_free(m);
    m = sk_model_from_spec("cnn:3x8x8-conv4k3s2p1-bn-gelu-gap-dense5");
    CHECK(m && sk_model_tensor(m, "1.running_var") && m->n_buffers == 8, "bn running statistics are buffers");
    sk_model_free(m);
    m = sk_model_from_spec("mlp:784-100-10:tanh:dropout0.5");
    CHECK(m && m->n_layers == 4 && m->layers[2].kind == SK_LAYER_DROPOUT && m->layers[2].p == 0.5f, "mlp dropout");
    sk_model_free(m);
    struct { const char *spec; const char *want; } bad[] = {
        { "mlp:784-x-10", "column 9" },
        { "mlp:784", "at least an input and an output" },
        { "cnn:1x28x28-conv32k3p1-dense10", "needs 'flatten'" },
        { "cnn:1x28x28-conv32p1", "column 19" },
        { "cnn:1x28x28-foo3", "unknown layer 'foo'" },
        { "mlp:10-5:relu:dropout1.5", "[0,1)" },
        { "rnn:10", "starts with" },
        { "cnn:1x4x4-conv2k9", "larger" },
        { "cnn:1x28x28-conv8k3-relu", "vector of class scores" },
        { "mlp:10-5:swish", "expected an activation" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = sk_model_from_spec(bad[i].spec);
        CHECK(!m && strstr(sk_last_error(), bad[i].want), "spec '%s' rejected with '%s' (got: %s)", bad[i].spec,
              bad[i].want, sk_last_error());
        sk_model_free(m);
    }
}

static double train_acc(const char *spec, struct sk_dataset *d, enum sk_optim_kind opt, float lr, int epochs,
                        uint64_t seed, float **params_out)
{
    struct sk_model *m = sk_model_from_spec(spec);
    sk_model_init(m, SK_INIT_HE_UNIFORM, seed);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = epochs;
    cfg.batch = 32;
    cfg.seed = seed;
    cfg.opt = sk_optim_defaults(opt);
    cfg.opt.lr = lr;
    int rc = sk_train(m, &cfg, d->x, d->y, d->n);
    CHECK(rc == 0, "training %s: %s", spec, sk_last_error());
    double acc = 0;
    sk_model_evaluate(m, d->x, d->y, d->n, &acc, NULL);
    if (params_out) {
        *params_out = malloc(sizeof(float) * m->n_params);
        memcpy(*params_out, m->params, sizeof(float) * m->n_params);
    }
    sk_model_free(m);
    return acc;
}

static void test_learns(void)
{
    struct sk_dataset *tr = sk_data_moons(2000, 0.1f, 1), *te = sk_data_moons(1000, 0.1f, 2);
    struct sk_model *m = sk_model_from_spec("mlp:2-32-32-2:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 5);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 30;
    cfg.batch = 32;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = 0.01f;
    CHECK(sk_train(m, &cfg, tr->x, tr->y, tr->n) == 0, "train moons: %s", sk_last_error());
    double acc;
    sk_model_evaluate(m, te->x, te->y, te->n, &acc, NULL);
    CHECK(acc >= 0.97, "two moons test accuracy %.4f >= 0.97", acc);
    sk_model_free(m);
    sk_dataset_free(tr);
    sk_dataset_free(te);

    struct sk_dataset *sp = sk_data_spirals(1500, 3, 0.02f, 3);
    double a = train_acc("mlp:2-64-64-3:tanh", sp, SK_OPT_ADAM, 0.01f, 60, 7, NULL);
    CHECK(a >= 0.97, "spirals training accuracy %.4f >= 0.97", a);
    sk_dataset_free(sp);
}

static void test_determinism(void)
{
    struct sk_dataset *d = sk_data_moons(600, 0.2f, 4);
    const char *spec = "mlp:2-16-16-2:relu:dropout0.2";
    float *p1, *p2, *p3;
    train_acc(spec, d, SK_OPT_MOMENTUM, 0.05f, 5, 11, &p1);
    train_acc(spec, d, SK_OPT_MOMENTUM, 0.05f, 5, 11, &p2);
    train_acc(spec, d, SK_OPT_MOMENTUM, 0.05f, 5, 12, &p3);
    struct sk_model *m = sk_model_from_spec(spec);
    size_t n = m->n_params;
    CHECK(memcmp(p1, p2, n * sizeof(float)) == 0, "same seed gives bitwise identical weights");
    CHECK(memcmp(p1, p3, n * sizeof(float)) != 0, "another seed gives other weights");
    free(p1), free(p2), free(p3);
    sk_model_free(m);
    /* the CNN path (conv, pool, bn) too */
    struct sk_dataset *b = sk_data_blobs(200, 3, 36, 2.0f, 5);
    b->c = 1, b->h = 6, b->w = 6;
    const char *cnn = "cnn:1x6x6-conv4k3p1-bn-relu-maxpool2-flatten-dense3";
    train_acc(cnn, b, SK_OPT_ADAM, 0.01f, 3, 3, &p1);
    train_acc(cnn, b, SK_OPT_ADAM, 0.01f, 3, 3, &p2);
    m = sk_model_from_spec(cnn);
    CHECK(memcmp(p1, p2, m->n_params * sizeof(float)) == 0, "CNN training is bitwise reproducible");
    free(p1), free(p2);
    sk_model_free(m);
    sk_dataset_free(b);
    sk_dataset_free(d);
}

static double loss_at(struct sk_model *m, const float *theta, const float *v, double h, struct sk_dataset *d)
{
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = (float)(theta[i] + h * v[i]);
    double l;
    sk_model_evaluate(m, d->x, d->y, d->n, NULL, &l);
    return l;
}

static void test_hvp(void)
{
    struct sk_dataset *d = sk_data_blobs(64, 3, 4, 1.0f, 9);
    struct sk_model *m = sk_model_from_spec("mlp:4-6-3:tanh");
    sk_model_init(m, SK_INIT_GLOROT_NORMAL, 2);
    size_t P = m->n_params;
    float *v = malloc(P * 4), *u = malloc(P * 4), *hv = malloc(P * 4), *hu = malloc(P * 4), *theta = malloc(P * 4);
    struct sk_rng r = sk_rng_new(3);
    for (size_t i = 0; i < P; i++) v[i] = sk_rng_normal(&r), u[i] = sk_rng_normal(&r);
    memcpy(theta, m->params, P * 4);
    CHECK(sk_model_hvp(m, d->x, d->y, d->n, v, hv) == 0, "hvp runs");
    CHECK(memcmp(theta, m->params, P * 4) == 0, "hvp restores the parameters exactly");
    sk_model_hvp(m, d->x, d->y, d->n, u, hu);
    double vhv = 0, uhv = 0, vhu = 0;
    for (size_t i = 0; i < P; i++) vhv += (double)v[i] * hv[i], uhv += (double)u[i] * hv[i], vhu += (double)v[i] * hu[i];
    /* second difference of the loss along v: v^T H v */
    double h = 3e-2;
    double l0 = loss_at(m, theta, v, 0, d), lp = loss_at(m, theta, v, h, d), lm = loss_at(m, theta, v, -h, d);
    memcpy(m->params, theta, P * 4);
    double fd = (lp - 2 * l0 + lm) / (h * h);
    CHECK(fabs(vhv - fd) <= 0.02 * fabs(fd) + 1e-3, "v^T H v = %.5f vs second difference %.5f", vhv, fd);
    CHECK(fabs(uhv - vhu) <= 0.01 * (fabs(uhv) + fabs(vhu)) + 1e-4, "Hessian symmetric: %.5f vs %.5f", uhv, vhu);
    free(v), free(u), free(hv), free(hu), free(theta);
    sk_model_free(m);
    sk_dataset_free(d);
}

struct stop_ctx { int epochs_seen; double best_val; int best_epoch; };
static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    struct stop_ctx *s = ctx;
    s->epochs_seen++;
    if (em->val_loss < s->best_val) s->best_val = em->val_loss, s->best_epoch = em->epoch;
    return 0;
}

static void test_early_stop_and_nan(void)
{
    /* tiny noisy set, big net: validation loss rises, early stopping fires */
    struct sk_dataset *d = sk_data_moons(200, 0.45f, 6);
    struct sk_model *m = sk_model_from_spec("mlp:2-128-128-2:relu");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 1);
    struct sk_train_config cfg = sk_train_defaults();
    struct stop_ctx sc = { 0, INFINITY, -1 };
    cfg.epochs = 300;
    cfg.batch = 16;
    cfg.val_split = 0.3f;
    cfg.patience = 5;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = 0.01f;
    cfg.on_epoch = on_epoch;
    cfg.ctx = &sc;
    struct sk_trainer *t = sk_trainer_new(m, &cfg, d->x, d->y, d->n);
    CHECK(sk_trainer_run(t) == 0, "early-stopping run");
    CHECK(sc.epochs_seen < 300 && sc.epochs_seen == sc.best_epoch + 1 + cfg.patience,
          "stopped %d epochs after the best (%d of %d)", cfg.patience, sc.best_epoch, sc.epochs_seen);
    double vl;
    sk_model_evaluate(m, t->vx, t->vy, t->n_val, NULL, &vl);
    CHECK(fabs(vl - sc.best_val) < 1e-9, "best weights restored: val loss %.6f vs best %.6f", vl, sc.best_val);
    sk_trainer_free(t);
    /* a learning rate that blows up stops with SK_ENONFINITE and finite weights */
    sk_model_init(m, SK_INIT_HE_UNIFORM, 1);
    cfg = sk_train_defaults();
    cfg.epochs = 50;
    cfg.opt = sk_optim_defaults(SK_OPT_SGD);
    cfg.opt.lr = 1e30f;
    int rc = sk_train(m, &cfg, d->x, d->y, d->n);
    CHECK(rc == SK_ENONFINITE && strstr(sk_last_error(), "last good step"), "blow-up detected: %d %s", rc, sk_last_error());
    bool finite = true;
    for (size_t i = 0; i < m->n_params; i++) finite &= isfinite(m->params[i]);
    CHECK(finite, "weights after a blow-up are the last good (finite) ones");
    sk_model_free(m);
    sk_dataset_free(d);
}

/* An update hook doing what the SGD optimiser does (constant rate). */
static int sgd_update(void *ctx, struct sk_trainer *t)
{
    float lr = *(const float *)ctx;
    for (size_t i = 0; i < t->n_params; i++) t->params[i] -= lr * t->grads[i];
    return SK_OK;
}

/* The step hook: an update hook stepping the trainer's buffer with the
 * trainer's gradient equals the optimiser bit for bit; a hook's own buffer
 * rules out a validation split; best weights start zeroed (a checkpoint
 * before the first validation holds zeros, not heap contents). */
static void test_step_hook(void)
{
    struct sk_dataset *d = sk_data_moons(300, 0.2f, 9);
    float *w[2];
    float lr = 0.05f;
    for (int run = 0; run < 2; run++) {
        struct sk_model *m = sk_model_from_spec("mlp:2-16-2:tanh");
        sk_model_init(m, SK_INIT_HE_UNIFORM, 4);
        struct sk_train_config c = sk_train_defaults();
        c.epochs = 3;
        c.batch = 32;
        c.opt = sk_optim_defaults(SK_OPT_SGD);
        c.opt.lr = lr;
        struct sk_step_hook h = { .update = sgd_update, .ctx = &lr };
        if (run) c.step = &h;
        CHECK(sk_train(m, &c, d->x, d->y, d->n) == SK_OK, "run %d", run);
        w[run] = malloc(sizeof(float) * m->n_params);
        memcpy(w[run], m->params, sizeof(float) * m->n_params);
        if (run) CHECK(!memcmp(w[0], w[1], sizeof(float) * m->n_params), "update hook = SGD optimiser, bit for bit");
        sk_model_free(m);
    }
    free(w[0]);
    free(w[1]);
    struct sk_model *m = sk_model_from_spec("mlp:2-16-2:tanh");
    struct sk_train_config c = sk_train_defaults();
    c.val_split = 0.2f;
    struct sk_trainer *t = sk_trainer_new(m, &c, d->x, d->y, d->n);
    bool zero = t != NULL;
    for (size_t i = 0; t && i < m->n_params; i++) zero &= t->best_params[i] == 0;
    CHECK(zero, "best weights start zeroed");
    sk_trainer_free(t);
    float buf[4], dbuf[4];
    struct sk_step_hook h = { .params = buf, .grads = dbuf, .n_params = 4 };
    c.step = &h;
    CHECK(!sk_trainer_new(m, &c, d->x, d->y, d->n) && strstr(sk_last_error(), "validation split"),
          "own buffer + validation split refused: %s", sk_last_error());
    sk_model_free(m);
    sk_dataset_free(d);
}

static void test_optimisers(void)
{
    /* first two steps on w = [1, -2], g = [0.5, -1] (then g = [0.25, 0.5]) */
    float g1[2] = { 0.5f, -1.0f }, g2[2] = { 0.25f, 0.5f };
    struct { enum sk_optim_kind k; float w1[2], w2[2]; } cases[] = {
        { SK_OPT_SGD, { 0.95f, -1.9f }, { 0.925f, -1.95f } },
        { SK_OPT_MOMENTUM, { 0.95f, -1.9f }, { 0.88f, -1.86f } },         /* b2 = 0.9 g1 + g2 */
        { SK_OPT_NESTEROV, { 0.905f, -1.81f }, { 0.817f, -1.824f } },      /* w -= lr (g + mu b) */
        { SK_OPT_ADAM, { 0.9f, -1.9f }, { 0.0f, 0.0f } },                 /* first step = lr * sign */
        { SK_OPT_RMSPROP, { 0.0f, 0.0f }, { 0.0f, 0.0f } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct sk_optim_config c = sk_optim_defaults(cases[i].k);
        c.lr = cases[i].k == SK_OPT_ADAM ? 0.1f : 0.1f;
        struct sk_optim *o = sk_optim_new(&c, 2);
        float w[2] = { 1, -2 }, g[2];
        memcpy(g, g1, sizeof g);
        sk_optim_step(o, w, g);
        if (cases[i].k == SK_OPT_RMSPROP) {
            /* v = 0.01 g^2, step = lr g / (0.1 |g| + eps) = lr * 10 sign */
            CHECK(fabsf(w[0] - 0.0f) < 1e-5f && fabsf(w[1] + 1.0f) < 1e-5f, "rmsprop first step: %g %g", w[0], w[1]);
        } else {
            CHECK(fabsf(w[0] - cases[i].w1[0]) < 1e-5f && fabsf(w[1] - cases[i].w1[1]) < 1e-5f,
                  "%s first step: %g %g", sk_optim_kind_name(cases[i].k), w[0], w[1]);
        }
        memcpy(g, g2, sizeof g);
        sk_optim_step(o, w, g);
        if (cases[i].k <= SK_OPT_NESTEROV)
            CHECK(fabsf(w[0] - cases[i].w2[0]) < 1e-5f && fabsf(w[1] - cases[i].w2[1]) < 1e-5f,
                  "%s second step: %g %g", sk_optim_kind_name(cases[i].k), w[0], w[1]);
        sk_optim_free(o);
    }
    /* weight decay, L1, clipping */
    struct sk_optim_config c = sk_optim_defaults(SK_OPT_SGD);
    c.lr = 1;
    c.weight_decay = 0.1f;
    c.l1 = 0.01f;
    struct sk_optim *o = sk_optim_new(&c, 2);
    float w[2] = { 1, -2 }, g[2] = { 0, 0 };
    sk_optim_step(o, w, g);
    CHECK(fabsf(w[0] - (1 - 0.1f - 0.01f)) < 1e-6f && fabsf(w[1] - (-2 + 0.2f + 0.01f)) < 1e-6f, "L2 + L1: %g %g", w[0], w[1]);
    sk_optim_free(o);
    c = sk_optim_defaults(SK_OPT_SGD);
    c.lr = 1;
    c.clip_norm = 1;
    o = sk_optim_new(&c, 2);
    float w2[2] = { 0, 0 }, g3[2] = { 3, 4 };
    sk_optim_step(o, w2, g3);
    CHECK(fabsf(w2[0] + 0.6f) < 1e-6f && fabsf(w2[1] + 0.8f) < 1e-6f && fabsf(o->last_grad_norm - 5) < 1e-5f,
          "clipping by global norm: %g %g", w2[0], w2[1]);
    sk_optim_free(o);
    /* schedules */
    c = sk_optim_defaults(SK_OPT_SGD);
    c.lr = 1;
    c.sched = SK_SCHED_COSINE;
    c.total_steps = 100;
    CHECK(fabsf(sk_optim_lr_at(&c, 0) - 1) < 1e-6f && fabsf(sk_optim_lr_at(&c, 50) - 0.5f) < 1e-6f &&
              fabsf(sk_optim_lr_at(&c, 100)) < 1e-6f, "cosine schedule");
    c.sched = SK_SCHED_STEP;
    c.step_size = 10;
    c.gamma = 0.5f;
    CHECK(fabsf(sk_optim_lr_at(&c, 25) - 0.25f) < 1e-6f, "step schedule");
    c.sched = SK_SCHED_ONECYCLE;
    CHECK(fabsf(sk_optim_lr_at(&c, 0) - (0.04f + 0.96f / 30)) < 1e-5f && fabsf(sk_optim_lr_at(&c, 29) - 1) < 1e-6f,
          "one-cycle warm-up: %g %g", sk_optim_lr_at(&c, 0), sk_optim_lr_at(&c, 29));
    /* AdamW decays decoupled from the gradient */
    c = sk_optim_defaults(SK_OPT_ADAMW);
    c.lr = 0.1f;
    c.weight_decay = 0.5f;
    o = sk_optim_new(&c, 1);
    float w3[1] = { 2 }, g4[1] = { 1 };
    sk_optim_step(o, w3, g4);
    CHECK(fabsf(w3[0] - (2 * (1 - 0.05f) - 0.1f)) < 1e-5f, "adamw: %g", w3[0]);
    sk_optim_free(o);
}

static void test_init(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:400-300-10:relu");
    sk_model_init(m, SK_INIT_HE_NORMAL, 1);
    double s = 0;
    size_t n = m->layers[0].n_w;
    for (size_t i = 0; i < n; i++) s += (double)m->params[i] * m->params[i];
    double sd = sqrt(s / n), want = sqrt(2.0 / 400);
    CHECK(fabs(sd - want) < 0.02 * want, "He normal std %.5f vs %.5f", sd, want);
    sk_model_init(m, SK_INIT_GLOROT_UNIFORM, 1);
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(m->params[i]));
    double bound = sqrt(6.0 / 700);
    CHECK(mx <= bound && mx > 0.99 * bound, "Glorot uniform bound %.5f vs %.5f", mx, bound);
    sk_model_free(m);
}

int main(void)
{
    sk_set_threads(2);
    test_spec();
    test_init();
    test_optimisers();
    test_learns();
    test_determinism();
    test_hvp();
    test_early_stop_and_nan();
    test_step_hook();
    return sk_test_finish("test_train");
}
