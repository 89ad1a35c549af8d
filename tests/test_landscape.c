/* Optimisers that act on flatness (SAM, ASAM, gradient noise), full-batch
 * chunks, loss landscapes and the training-dynamics probes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

#include <cjson/cJSON.h>

/* ---- a one-layer softmax model, worked by hand in double ----
 * z = W x + b (W 2x2 row-major, b 2), L = -log softmax(z)_y, one row. */
static void ce_grad(const double *w, const double *x, int y, double *g)
{
    double z[2], p[2];
    for (int k = 0; k < 2; k++) z[k] = w[2 * k] * x[0] + w[2 * k + 1] * x[1] + w[4 + k];
    double mx = fmax(z[0], z[1]), s = exp(z[0] - mx) + exp(z[1] - mx);
    for (int k = 0; k < 2; k++) p[k] = exp(z[k] - mx) / s;
    for (int k = 0; k < 2; k++) {
        double dz = p[k] - (k == y);
        g[2 * k] = dz * x[0];
        g[2 * k + 1] = dz * x[1];
        g[4 + k] = dz;
    }
}

/* One SGD step of SAM (adaptive: ASAM) from w0, by hand. */
static void sam_by_hand(const double *w0, const double *x, int y, double rho, bool adaptive, double eta, double lr,
                        double *w1)
{
    double g[6], e[6], wp[6], g2[6], nrm = 0;
    ce_grad(w0, x, y, g);
    for (int i = 0; i < 6; i++) {
        double t = adaptive ? fabs(w0[i]) + eta : 1;
        nrm += t * g[i] * t * g[i];
    }
    nrm = sqrt(nrm);
    for (int i = 0; i < 6; i++) {
        double t = adaptive ? fabs(w0[i]) + eta : 1;
        e[i] = rho * t * t * g[i] / nrm;
        wp[i] = w0[i] + e[i];
    }
    ce_grad(wp, x, y, g2);
    for (int i = 0; i < 6; i++) w1[i] = w0[i] - lr * g2[i];
}

static void test_sam_first_step(bool adaptive)
{
    const float w0[6] = { 0.5f, -0.3f, 0.2f, 0.8f, 0.1f, -0.2f }; /* W row-major, then b */
    const float x[2] = { 1.5f, -0.7f };
    const int y[1] = { 1 };
    struct sk_model *m = sk_model_from_spec("mlp:2-2");
    CHECK(m && m->n_params == 6, "mlp:2-2: %s", sk_last_error());
    if (!m) return;
    memcpy(m->params, w0, sizeof w0);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 1;
    cfg.batch = 1;
    cfg.opt = sk_optim_defaults(SK_OPT_SGD);
    cfg.opt.lr = 0.5f;
    cfg.opt.sam_rho = 0.3f;
    cfg.opt.sam_adaptive = adaptive;
    cfg.opt.sam_eta = 0.05f;
    CHECK(sk_train(m, &cfg, x, y, 1) == 0, "SAM step: %s", sk_last_error());
    double wd[6], want[6], xd[2] = { x[0], x[1] };
    for (int i = 0; i < 6; i++) wd[i] = w0[i];
    sam_by_hand(wd, xd, 1, 0.3, adaptive, 0.05, 0.5, want);
    double err = 0;
    for (int i = 0; i < 6; i++) err = fmax(err, fabs(m->params[i] - want[i]));
    CHECK(err < 2e-6, "%s first step: max |w - hand| = %g (w0 %g -> %g, hand %g)", adaptive ? "ASAM" : "SAM", err,
          w0[0], m->params[0], want[0]);
    /* and it is not the plain SGD step */
    double g[6], plain = 0;
    ce_grad(wd, xd, 1, g);
    for (int i = 0; i < 6; i++) plain = fmax(plain, fabs((wd[i] - 0.5 * g[i]) - want[i]));
    CHECK(plain > 1e-3, "the SAM step differs from SGD's (by %g)", plain);
    sk_model_free(m);
}

static void train_blobs(struct sk_model *m, const struct sk_dataset *d, const struct sk_train_config *cfg)
{
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    CHECK(sk_train(m, cfg, d->x, d->y, d->n) == 0, "train: %s", sk_last_error());
}

static void test_grad_noise(void)
{
    struct sk_dataset *d = sk_data_blobs(200, 3, 5, 2.0f, 7);
    const char *spec = "seq:5-dense8-relu-dense3";
    struct sk_model *a = sk_model_from_spec(spec), *b = sk_model_from_spec(spec), *c = sk_model_from_spec(spec);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 2;
    cfg.batch = 32;
    cfg.seed = 5;
    cfg.opt = sk_optim_defaults(SK_OPT_SGD);
    cfg.opt.lr = 0.05f;
    train_blobs(a, d, &cfg);
    struct sk_train_config z = cfg;
    z.opt.grad_noise = 0;
    train_blobs(b, d, &z);
    CHECK(!memcmp(a->params, b->params, sizeof(float) * a->n_params), "noise 0 is plain SGD bit for bit");
    z.opt.grad_noise = 0.1f;
    train_blobs(b, d, &z);
    train_blobs(c, d, &z);
    CHECK(!memcmp(b->params, c->params, sizeof(float) * b->n_params), "noisy runs are reproducible");
    CHECK(sk_rel_err(b->params, a->params, a->n_params) > 1e-3, "noise changes the weights (rel %g)",
          sk_rel_err(b->params, a->params, a->n_params));
    /* one step: the difference is -lr sigma xi, xi from the documented stream */
    struct sk_train_config one = cfg;
    one.epochs = 1;
    one.batch = d->n;
    train_blobs(a, d, &one);
    one.opt.grad_noise = 0.1f;
    train_blobs(b, d, &one);
    uint64_t key = sk_rng_derive(sk_rng_derive(sk_rng_new(5).key, SK_OPTIM_STREAM_NOISE).key, 0).key;
    double err = 0;
    for (size_t i = 0; i < a->n_params; i++)
        err = fmax(err, fabs((b->params[i] - a->params[i]) - (-0.05 * 0.1 * sk_rng_normal_at(key, i))));
    CHECK(err < 1e-6, "one noisy step = plain step - lr sigma xi (max err %g)", err);
    sk_model_free(a);
    sk_model_free(b);
    sk_model_free(c);
    sk_dataset_free(d);
}

/* The full batch in chunks: the same gradient as one piece, up to rounding. */
static void test_chunks(void)
{
    struct sk_dataset *d = sk_data_blobs(150, 3, 5, 2.0f, 9);
    const char *spec = "seq:5-dense8-tanh-dense3";
    struct sk_model *a = sk_model_from_spec(spec), *b = sk_model_from_spec(spec);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 3;
    cfg.batch = d->n;
    cfg.opt = sk_optim_defaults(SK_OPT_SGD);
    cfg.opt.lr = 0.1f;
    train_blobs(a, d, &cfg);
    cfg.micro_batch = 64; /* 64 + 64 + 22 */
    train_blobs(b, d, &cfg);
    double e = sk_rel_err(b->params, a->params, a->n_params);
    CHECK(e < 1e-5, "chunked full-batch descent = one piece (rel %g)", e);
    sk_model_free(a);
    sk_model_free(b);
    sk_dataset_free(d);
}

struct stopper {
    const char *path;
    long stop_at;
};
static int ck_stop(void *ctx, struct sk_trainer *t)
{
    struct stopper *s = ctx;
    if (sk_checkpoint_save(s->path, t, NULL)) return SK_EIO;
    return t->st.step >= s->stop_at ? SK_ESTATE : 0;
}

static void test_sam_resume(bool adaptive)
{
    struct sk_dataset *d = sk_data_blobs(300, 3, 6, 2.0f, 5);
    const char *spec = "seq:6-dense12-bn-relu-dropout0.2-dense3";
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 2;
    cfg.batch = 32;
    cfg.seed = 11;
    cfg.opt = sk_optim_defaults(SK_OPT_MOMENTUM);
    cfg.opt.sam_rho = 0.05f;
    cfg.opt.sam_adaptive = adaptive;
    cfg.opt.grad_noise = 0.01f;
    struct sk_model *full = sk_model_from_spec(spec), *m = sk_model_from_spec(spec);
    train_blobs(full, d, &cfg);
    struct stopper s = { sk_test_path("sam.ckpt"), 13 }; /* 10 batches per epoch: mid-epoch 2 */
    struct sk_train_config c2 = cfg;
    c2.on_checkpoint = ck_stop;
    c2.checkpoint_every = 13;
    c2.ctx = &s;
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    struct sk_trainer *t = sk_trainer_new(m, &c2, d->x, d->y, d->n);
    CHECK(t && sk_trainer_run(t) == SK_ESTATE && t->st.step == 13, "stopped at step 13");
    sk_trainer_free(t);
    sk_model_free(m);
    m = sk_model_from_spec(spec);
    t = sk_trainer_new(m, &cfg, d->x, d->y, d->n);
    CHECK(sk_checkpoint_load(s.path, t, NULL) == 0, "load: %s", sk_last_error());
    CHECK(sk_trainer_run(t) == 0, "resumed");
    CHECK(!memcmp(m->params, full->params, sizeof(float) * m->n_params) &&
              !memcmp(m->buffers, full->buffers, sizeof(float) * m->n_buffers),
          "%s resume is bitwise identical", adaptive ? "ASAM" : "SAM");
    sk_trainer_free(t);
    /* another rho is another run */
    struct sk_train_config c3 = cfg;
    c3.opt.sam_rho = 0.1f;
    t = sk_trainer_new(m, &c3, d->x, d->y, d->n);
    CHECK(sk_checkpoint_load(s.path, t, NULL) == SK_EINVAL && strstr(sk_last_error(), "rho=0.05"),
          "other rho refused: %s", sk_last_error());
    sk_trainer_free(t);
    sk_model_free(m);
    sk_model_free(full);
    sk_dataset_free(d);
}

static void test_landscape_centre(void)
{
    struct sk_dataset *d = sk_data_blobs(120, 3, 4, 2.0f, 2);
    struct sk_model *m = sk_model_from_spec("seq:4-dense10-bn-relu-dense3");
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 2;
    cfg.batch = 30;
    train_blobs(m, d, &cfg);
    double acc0, loss0;
    sk_model_evaluate(m, d->x, d->y, d->n, &acc0, &loss0);
    float *w0 = malloc(sizeof(float) * m->n_params);
    memcpy(w0, m->params, sizeof(float) * m->n_params);
    struct sk_curvature_landscape_config lc = sk_curvature_landscape_defaults();
    lc.steps = 5;
    for (int dims = 1; dims <= 2; dims++) {
        lc.dims = dims;
        struct sk_curvature_landscape *ls = sk_curvature_landscape_slice(m, d->x, d->y, d->n, d->x, d->y, 50, &lc);
        CHECK(ls != NULL, "slice: %s", sk_last_error());
        if (!ls) continue;
        int c = dims == 2 ? 2 * 5 + 2 : 2;
        CHECK(ls->xs[2] == 0 && ls->loss[c] == loss0 && ls->acc[c] == acc0, "%dD centre loss %.17g = model's %.17g",
              dims, ls->loss[c], loss0);
        CHECK(ls->loss[0] > loss0 && ls->loss[4] > loss0, "%dD: the trained model sits lower than the ends (%g %g %g)",
              dims, ls->loss[0], loss0, ls->loss[4]);
        CHECK(isfinite(ls->test_loss[c]) && !memcmp(w0, m->params, sizeof(float) * m->n_params), "weights restored");
        sk_curvature_landscape_free(ls);
    }
    /* eigen directions: unit vectors */
    lc.dims = 2;
    lc.dirs = SK_LANDSCAPE_EIGEN;
    lc.lanczos_steps = 15;
    struct sk_curvature_landscape *ls = sk_curvature_landscape_slice(m, d->x, d->y, d->n, NULL, NULL, 0, &lc);
    CHECK(ls != NULL, "eigen slice: %s", sk_last_error());
    if (ls) {
        double n1 = 0, dot = 0;
        for (size_t i = 0; i < m->n_params; i++) {
            n1 += (double)ls->dir[i] * ls->dir[i];
            dot += (double)ls->dir[i] * ls->dir[m->n_params + i];
        }
        CHECK(fabs(n1 - 1) < 1e-4 && fabs(dot) < 1e-3 && ls->eig[0] >= ls->eig[1] && ls->loss[12] == loss0,
              "eigen directions orthonormal (|d1|^2 %g, d1.d2 %g), eig %g >= %g, centre exact", n1, dot, ls->eig[0],
              ls->eig[1]);
        sk_curvature_landscape_free(ls);
    }
    free(w0);
    sk_model_free(m);
    sk_dataset_free(d);
}

static void test_interpolation(void)
{
    struct sk_dataset *d = sk_data_blobs(120, 3, 4, 2.0f, 4);
    const char *spec = "seq:4-dense10-bn-relu-dense3";
    struct sk_model *a = sk_model_from_spec(spec), *b = sk_model_from_spec(spec);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 2;
    train_blobs(a, d, &cfg);
    cfg.seed = 9;
    sk_model_init(b, SK_INIT_HE_UNIFORM, 8);
    sk_train(b, &cfg, d->x, d->y, d->n);
    double la, lb;
    sk_model_evaluate(a, d->x, d->y, d->n, NULL, &la);
    sk_model_evaluate(b, d->x, d->y, d->n, NULL, &lb);
    struct sk_curvature_landscape_config lc = sk_curvature_landscape_defaults();
    lc.lo = 0;
    lc.hi = 1;
    lc.steps = 7;
    struct sk_curvature_landscape *ls = sk_curvature_landscape_interpolate(a, b, d->x, d->y, d->n, NULL, NULL, 0, &lc);
    CHECK(ls != NULL, "interpolate: %s", sk_last_error());
    if (ls) {
        CHECK(ls->loss[0] == la && ls->loss[6] == lb && la != lb, "ends %.17g %.17g = models' %.17g %.17g",
              ls->loss[0], ls->loss[6], la, lb);
        sk_curvature_landscape_free(ls);
    }
    double la2;
    sk_model_evaluate(a, d->x, d->y, d->n, NULL, &la2);
    CHECK(la2 == la, "model a restored");
    struct sk_model *c = sk_model_from_spec("seq:4-dense9-relu-dense3");
    CHECK(!sk_curvature_landscape_interpolate(a, c, d->x, d->y, d->n, NULL, NULL, 0, &lc) &&
              strstr(sk_last_error(), "one architecture"),
          "two architectures refused: %s", sk_last_error());
    sk_model_free(a);
    sk_model_free(b);
    sk_model_free(c);
    sk_dataset_free(d);
}

static void test_filter_normalisation(void)
{
    struct sk_model *m = sk_model_from_spec("cnn:2x6x6-conv4k3-bn-relu-flatten-dense3");
    CHECK(m != NULL, "cnn: %s", sk_last_error());
    if (!m) return;
    sk_model_init(m, SK_INIT_HE_NORMAL, 4);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 1.0f + 0.1f * (float)(i % 7); /* uneven filters */
    float *d = malloc(sizeof(float) * m->n_params);
    sk_curvature_landscape_filter_direction(m, 7, false, d);
    int filters = 0, zeros = 0;
    double worst = 0;
    for (int k = 0; k < m->n_tensors; k++) {
        const struct sk_tensor_info *ti = &m->tensors[k];
        if (ti->buffer) continue;
        size_t len = 1;
        for (int j = 0; j < ti->ndim; j++) len *= (size_t)ti->shape[j];
        if (ti->ndim == 1) {
            for (size_t i = 0; i < len; i++) zeros += d[ti->off + i] == 0;
            continue;
        }
        size_t rows = (size_t)ti->shape[0], per = len / rows;
        for (size_t r = 0; r < rows; r++, filters++) {
            double dn = 0, wn = 0;
            for (size_t i = 0; i < per; i++) {
                dn += (double)d[ti->off + r * per + i] * d[ti->off + r * per + i];
                wn += (double)m->params[ti->off + r * per + i] * m->params[ti->off + r * per + i];
            }
            worst = fmax(worst, fabs(sqrt(dn) - sqrt(wn)) / sqrt(wn));
        }
    }
    /* 4 conv filters + 3 dense neurons; biases 4 + 3, bn 4 + 4 */
    CHECK(filters == 7 && worst < 1e-5, "every filter of d has its weights' norm (%d filters, worst rel %g)", filters,
          worst);
    CHECK(zeros == 15, "biases and batch norm get zero (%d of 15)", zeros);
    sk_curvature_landscape_filter_direction(m, 7, true, d);
    const struct sk_tensor_info *bias = sk_model_tensor(m, "0.bias");
    CHECK(bias && !memcmp(d + bias->off, m->params + bias->off, sizeof(float) * 4), "keep_bias_bn copies the weights");
    free(d);
    sk_model_free(m);
}

/* skeptic train --track curvature writes the probe's fields into the log. */
static void test_track_cli(void)
{
    const char *log = sk_test_path("track.jsonl");
    char args[512];
    snprintf(args, sizeof args,
             "train --data blobs:k=3,dim=2 --n 200 --arch seq:2-dense8-relu-dense3 --epochs 2 --batch full --optimizer sgd "
             "--lr 0.1 --track curvature --track-every 1 --track-n 100 --log %s --out m.safetensors --quiet",
             log);
    int rc = sk_cli_run(args);
    CHECK(rc == 0, "train --track: %d %s", rc, sk_cli_err);
    static char buf[1 << 16];
    sk_test_slurp(log, buf, sizeof buf);
    int probes = 0, epochs = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;
        if (cJSON_GetObjectItem(o, "lambda_max")) {
            probes++;
            const char *keys[] = { "step", "lr", "two_over_lr", "lambda_max", "trace", "trace_se", "b_simple",
                                   "grad_norm", "weight_norm", "train_loss", "train_acc", "test_loss", "test_acc" };
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
                CHECK(cJSON_GetObjectItem(o, keys[k]) != NULL, "probe line has %s", keys[k]);
            double lm = sk_json_num(o, "lambda_max"), tr = sk_json_num(o, "trace");
            CHECK(lm > 0 && isfinite(tr) && fabs(sk_json_num(o, "two_over_lr") - 2 / (double)0.1f) < 1e-9, "lambda_max %g, trace %g", lm, tr);
        } else if (cJSON_GetObjectItem(o, "epoch")) {
            epochs++;
        }
        cJSON_Delete(o);
    }
    /* full batch: one step per epoch, probes at steps 0, 1, 2 */
    CHECK(probes == 3 && epochs == 2, "%d probe lines (want 3), %d epoch lines", probes, epochs);
}

int main(void)
{
    sk_set_threads(2);
    test_sam_first_step(false);
    test_sam_first_step(true);
    test_grad_noise();
    test_chunks();
    test_sam_resume(false);
    test_sam_resume(true);
    test_landscape_centre();
    test_interpolation();
    test_filter_normalisation();
    test_track_cli();
    return sk_test_finish("test_landscape");
}
