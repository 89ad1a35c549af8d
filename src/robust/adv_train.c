/* Adversarial training objectives as trainer loss hooks (PGD, FGSM-RS,
 * TRADES, IBP, FGSM-mix), the epsilon / kappa schedules, and the guard against
 * catastrophic overfitting. */
#include "skeptic/certify.h"
#include "skeptic/robust.h"

#include <math.h>
#include <string.h>

const char *sk_robust_kind_name(enum sk_robust_kind k)
{
    static const char *names[] = { "none", "pgd", "fgsm", "trades", "ibp", "fgsm-mix", "n-fgsm", "fgsm-ep", "nuat", "crown-ibp" };
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

int sk_robust_kind_parse(const char *s)
{
    for (int i = 0; i <= SK_ROBUST_CROWN_IBP; i++)
        if (s && strcmp(s, sk_robust_kind_name((enum sk_robust_kind)i)) == 0) return i;
    return -1;
}

bool sk_robust_single_step(enum sk_robust_kind k)
{
    return k == SK_ROBUST_FGSM || k == SK_ROBUST_FGSM_MIX || k == SK_ROBUST_NFGSM || k == SK_ROBUST_FGSM_EP ||
           k == SK_ROBUST_NUAT;
}

struct sk_robust_config sk_robust_defaults(enum sk_robust_kind kind, float eps)
{
    struct sk_robust_config a = { 0 };
    a.kind = kind;
    a.eps = eps;
    a.steps = sk_robust_single_step(kind) ? 1 : 10;
    a.step = 0;
    a.clip_lo = 0;
    a.clip_hi = 1;
    a.trades_beta = 6;
    a.nfgsm_noise = 2;
    a.ep_lambda = 10;
    a.nuat_lambda = 4.5f;
    a.ibp_kappa_end = 0.5f;
    a.ibp_warmup_epochs = 1;
    a.crown_beta_start = 1;
    a.crown_beta_end = 0;
    a.eot = 1;
    a.guard = kind == SK_ROBUST_FGSM || kind == SK_ROBUST_NFGSM || kind == SK_ROBUST_FGSM_EP || kind == SK_ROBUST_NUAT;
    a.guard_n = 512;
    a.guard_steps = 10;
    a.guard_tol = 0.05f;
    return a;
}

struct sk_robust_loss {
    struct sk_model *m;
    struct sk_robust_config a;
    struct sk_graph *ag;  /* the attack's graph (no parameter gradients) */
    float *xadv;          /* batch x in_dim */
    int cap;
    /* chaining (sk_robust_attach): the caller's callbacks and context */
    struct sk_train_config user;
    struct sk_trainer *t; /* seen by the last hook call */
    /* guard */
    const float *gx;
    const int *gy;
    int gn;
    float *best, *best_buf;
    double last_acc;
    /* FGSM-EP: the last perturbation of every training row (prior_n x in_dim), and a batch buffer */
    float *prior, *xstart;
    unsigned char *has_prior;
    int prior_n;
    struct sk_robust_report rep;
    int rc;
};

struct sk_robust_loss *sk_robust_loss_new(struct sk_model *m, const struct sk_robust_config *adv, int batch)
{
    struct sk_robust_loss *l = sk_calloc(1, sizeof *l);
    if (!l) return NULL;
    l->m = m;
    l->a = *adv;
    l->cap = batch;
    l->ag = sk_graph_new();
    l->xadv = sk_malloc(sizeof(float) * (size_t)batch * m->in_dim);
    l->best = sk_malloc(sizeof(float) * (m->n_params + 1));
    l->best_buf = sk_malloc(sizeof(float) * (m->n_buffers + 1));
    if (!l->ag || !l->xadv || !l->best || !l->best_buf) {
        sk_robust_loss_free(l);
        return NULL;
    }
    l->rep.best_epoch = -1;
    l->rep.kept_epoch = -1;
    sk_graph_set_param_grads(l->ag, false);
    return l;
}

void sk_robust_loss_free(struct sk_robust_loss *l)
{
    if (!l) return;
    sk_graph_free(l->ag);
    sk_free(l->xadv);
    sk_free(l->best);
    sk_free(l->best_buf);
    sk_free(l->prior);
    sk_free(l->xstart);
    sk_free(l->has_prior);
    sk_free(l);
}

/* Training progress in epochs (fractional) of trainer t. */
static double progress(const struct sk_trainer *t)
{
    int nb = (t->n_train + t->cfg.batch - 1) / t->cfg.batch;
    return t->st.epoch + (double)t->st.batch / (nb > 0 ? nb : 1);
}

static float ramp(double p, double start, double len)
{
    if (len <= 0) return p >= start ? 1.0f : 0.0f;
    double f = (p - start) / len;
    return (float)(f < 0 ? 0 : f > 1 ? 1 : f);
}

int sk_robust_loss_fn(void *ctx, struct sk_trainer *t, struct sk_graph *g, const float *xb, const int *yb, int n,
                      uint64_t noise_key, int *logits)
{
    struct sk_robust_loss *l = ctx;
    struct sk_model *m = l->m;
    const struct sk_robust_config *a = &l->a;
    l->t = t;
    if (n > l->cap) return sk_error(SK_EINVAL, "adversarial loss: batch %d larger than %d", n, l->cap);
    int shape[2] = { n, m->in_dim };
    double p = progress(t);
    if (a->kind == SK_ROBUST_IBP || a->kind == SK_ROBUST_CROWN_IBP) {
        int warm = a->ibp_warmup_epochs > 0 ? a->ibp_warmup_epochs : 0;
        int rampn = a->ibp_ramp_epochs > 0 ? a->ibp_ramp_epochs : (t->cfg.epochs - warm + 1) / 2;
        float f = ramp(p, warm, rampn);
        float eps = (a->ibp_eps_train > 0 ? a->ibp_eps_train : a->eps) * f;
        float kappa = 1.0f - f * (1.0f - a->ibp_kappa_end);
        int z = sk_model_forward(m, g, sk_graph_input(g, xb, 2, shape, false), SK_MODE_TRAIN, noise_key);
        *logits = z;
        int Lc = sk_loss_cross_entropy(g, z, yb, t->cfg.label_smoothing);
        if (f <= 0 || kappa >= 1.0f) return Lc;
        int c, r, zw, rc;
        struct sk_certify_domain box = { a->clip_lo, a->clip_hi, a->box_lo, a->box_hi };
        if ((rc = sk_certify_ibp_box(g, m, xb, n, eps, &box, &c, &r))) return rc;
        /* CROWN-IBP: beta moves with eps (Zhang et al.), so the last epochs are IBP's cost */
        float beta = a->crown_beta_start + f * (a->crown_beta_end - a->crown_beta_start);
        if (a->kind == SK_ROBUST_CROWN_IBP && beta > 0)
            rc = sk_robust_crown_ibp_worst_logits(m, g, c, r, yb, beta, &zw);
        else
            rc = sk_certify_ibp_worst_logits(m, g, c, r, yb, &zw);
        if (rc) return rc;
        int Lr = sk_loss_cross_entropy(g, zw, yb, 0.0f);
        return sk_op_add(g, sk_op_scale(g, Lc, kappa), sk_op_scale(g, Lr, 1.0f - kappa));
    }
    float eps = a->eps * (a->eps_warmup_epochs > 0 ? ramp(p, 0, a->eps_warmup_epochs) : 1.0f);
    bool mix = a->kind == SK_ROBUST_FGSM_MIX, ep = a->kind == SK_ROBUST_FGSM_EP;
    bool single = sk_robust_single_step(a->kind);
    struct sk_attack_pgd_config pc = sk_attack_pgd_defaults(eps, single ? 1 : a->steps);
    pc.step = a->step > 0 ? a->step * (a->eps > 0 ? eps / a->eps : 1) : 0;
    if (a->kind == SK_ROBUST_NFGSM) {
        /* de Jorge et al.: noise of 2 eps, a step of eps, no projection */
        pc.start_radius = (a->nfgsm_noise > 0 ? a->nfgsm_noise : 2.0f) * eps;
        pc.no_project = true;
        if (!(a->step > 0)) pc.step = eps;
    }
    if (mix) {
        /* Lakshminarayanan et al.: plain FGSM, x + eps sign(grad), from x itself */
        pc.random_start = false;
        pc.step = eps;
    }
    pc.clip_lo = a->clip_lo;
    pc.clip_hi = a->clip_hi;
    pc.box_lo = a->box_lo;
    pc.box_hi = a->box_hi;
    if (a->eot > 1 && sk_model_has_dropout(m)) {
        pc.mode = SK_MODE_MC;
        pc.eot = a->eot;
    }
    if (a->kind == SK_ROBUST_TRADES) pc.loss = SK_PGD_LOSS_KL;
    /* NuAT: lambda ramps from 0 over the first 90% of the epochs */
    float nuc = a->kind == SK_ROBUST_NUAT ? a->nuat_lambda * ramp(p, 0, 0.9 * t->cfg.epochs) : 0;
    if (a->kind == SK_ROBUST_NUAT) {
        /* Sriramanan et al.: x +- eps/2 (Bernoulli), one step of eps on CE + the nuclear norm (every
         * other batch: CE alone), projected onto the ball */
        pc.sign_start = true;
        pc.start_radius = 0.5f * eps;
        if (!(a->step > 0)) pc.step = eps;
        pc.loss = SK_PGD_LOSS_CE_NUC;
        pc.nuc_lambda = t->st.batch % 2 ? nuc : 0;
    }
    size_t D = (size_t)m->in_dim;
    if (ep) {
        /* Jia et al.: start from the row's perturbation of the last epoch, one step of eps */
        if (!t->batch_rows) return sk_error(SK_EINVAL, "fgsm-ep: the trainer gives no row indices");
        if (!l->prior) {
            l->prior_n = t->n;
            l->prior = sk_malloc(sizeof(float) * (size_t)t->n * D);
            l->has_prior = sk_calloc((size_t)t->n, 1);
            l->xstart = sk_malloc(sizeof(float) * (size_t)l->cap * D);
            if (!l->prior || !l->has_prior || !l->xstart) return SK_ENOMEM;
        }
        if (t->n != l->prior_n) return sk_error(SK_EINVAL, "fgsm-ep: %d training rows, the prior has %d", t->n, l->prior_n);
        uint64_t rk = sk_rng_derive(noise_key, 0x6570u).key;
        for (int i = 0; i < n; i++) {
            int r = t->batch_rows[i];
            const float *d = l->prior + (size_t)r * D;
            float *xs = l->xstart + (size_t)i * D;
            const float *x0 = xb + (size_t)i * D;
            for (size_t j = 0; j < D; j++) {
                float v = x0[j] + (l->has_prior[r] ? d[j] : eps * (2.0f * sk_rng_uniform_at(rk, (uint64_t)i * D + j) - 1.0f));
                /* onto the eps-ball (eps may have grown or shrunk) and the box */
                v = v < x0[j] - eps ? x0[j] - eps : (v > x0[j] + eps ? x0[j] + eps : v);
                if (a->box_lo) v = v < a->box_lo[j] ? a->box_lo[j] : (v > a->box_hi[j] ? a->box_hi[j] : v);
                else if (a->clip_lo < a->clip_hi) v = v < a->clip_lo ? a->clip_lo : (v > a->clip_hi ? a->clip_hi : v);
                xs[j] = v;
            }
        }
        pc.random_start = false;
        pc.x_start = l->xstart;
        if (!(a->step > 0)) pc.step = eps;
    }
    int rc = SK_OK;
    if (eps > 0) rc = sk_attack_pgd_graph(m, l->ag, &pc, xb, yb, n, noise_key, l->xadv);
    else memcpy(l->xadv, xb, sizeof(float) * (size_t)n * m->in_dim);
    if (rc) return rc;
    if (ep)
        for (int i = 0; i < n; i++) {
            int r = t->batch_rows[i];
            float *d = l->prior + (size_t)r * D;
            const float *xa = l->xadv + (size_t)i * D, *x0 = xb + (size_t)i * D;
            for (size_t j = 0; j < D; j++) d[j] = xa[j] - x0[j];
            l->has_prior[r] = 1;
        }
    if (mix) {
        int zc = sk_model_forward(m, g, sk_graph_input(g, xb, 2, shape, false), SK_MODE_TRAIN, noise_key);
        int za = sk_model_forward(m, g, sk_graph_input(g, l->xadv, 2, shape, false), SK_MODE_TRAIN, noise_key);
        *logits = zc;
        return sk_op_add(g, sk_loss_cross_entropy(g, zc, yb, t->cfg.label_smoothing),
                         sk_loss_cross_entropy(g, za, yb, t->cfg.label_smoothing));
    }
    if (ep && a->ep_lambda > 0) {
        int za = sk_model_forward(m, g, sk_graph_input(g, l->xadv, 2, shape, false), SK_MODE_TRAIN, noise_key);
        int zs = sk_model_forward(m, g, sk_graph_input(g, l->xstart, 2, shape, false), SK_MODE_TRAIN, noise_key);
        *logits = za;
        return sk_op_add(g, sk_loss_cross_entropy(g, za, yb, t->cfg.label_smoothing),
                         sk_op_scale(g, sk_loss_mse(g, za, zs), a->ep_lambda));
    }
    if (a->kind == SK_ROBUST_NUAT) {
        int zc = sk_model_forward(m, g, sk_graph_input(g, xb, 2, shape, false), SK_MODE_TRAIN, noise_key);
        *logits = zc;
        int Lc = sk_loss_cross_entropy(g, zc, yb, t->cfg.label_smoothing);
        if (nuc == 0) return Lc;
        int za = sk_model_forward(m, g, sk_graph_input(g, l->xadv, 2, shape, false), SK_MODE_TRAIN, noise_key);
        int Ln = sk_loss_nuclear(g, sk_op_sub(g, za, zc));
        return sk_op_add(g, Lc, sk_op_scale(g, Ln, nuc / (float)n));
    }
    if (a->kind == SK_ROBUST_TRADES) {
        int zc = sk_model_forward(m, g, sk_graph_input(g, xb, 2, shape, false), SK_MODE_TRAIN, noise_key);
        int za = sk_model_forward(m, g, sk_graph_input(g, l->xadv, 2, shape, false), SK_MODE_TRAIN, noise_key);
        *logits = zc;
        int Lc = sk_loss_cross_entropy(g, zc, yb, t->cfg.label_smoothing);
        int Lk = sk_loss_kl_categorical(g, sk_op_log_softmax(g, zc), sk_op_log_softmax(g, za));
        return sk_op_add(g, Lc, sk_op_scale(g, Lk, a->trades_beta));
    }
    int z = sk_model_forward(m, g, sk_graph_input(g, l->xadv, 2, shape, false), SK_MODE_TRAIN, noise_key);
    *logits = z;
    return sk_loss_cross_entropy(g, z, yb, t->cfg.label_smoothing);
}

int sk_robust_check(const struct sk_robust_config *adv)
{
    if ((unsigned)adv->kind > SK_ROBUST_CROWN_IBP) return sk_error(SK_EINVAL, "adversarial training: unknown kind %d", adv->kind);
    if (!(adv->eps >= 0) || !isfinite(adv->eps) || adv->eps > 1e3f)
        return sk_error(SK_EINVAL, "adversarial training: adv.eps %g must be finite and >= 0", adv->eps);
    if ((adv->kind == SK_ROBUST_PGD || adv->kind == SK_ROBUST_TRADES) && adv->steps < 1)
        return sk_error(SK_EINVAL, "adversarial training: adv.steps %d must be >= 1", adv->steps);
    if (!(adv->nfgsm_noise >= 0 && adv->nfgsm_noise <= 100)) /* 0: the default 2 */
        return sk_error(SK_EINVAL, "N-FGSM: adv.nfgsm_noise %g (in units of eps) must be in [0, 100]", adv->nfgsm_noise);
    if (adv->kind == SK_ROBUST_FGSM_EP && !(adv->ep_lambda >= 0 && adv->ep_lambda <= 1e6f))
        return sk_error(SK_EINVAL, "FGSM-EP: adv.ep_lambda %g must be in [0, 1e6]", adv->ep_lambda);
    if (adv->kind == SK_ROBUST_NUAT && !(adv->nuat_lambda >= 0 && adv->nuat_lambda <= 1e6f))
        return sk_error(SK_EINVAL, "NuAT: adv.nuat_lambda %g must be in [0, 1e6]", adv->nuat_lambda);
    if (adv->kind == SK_ROBUST_TRADES && !(adv->trades_beta >= 0))
        return sk_error(SK_EINVAL, "TRADES: adv.trades_beta %g must be >= 0", adv->trades_beta);
    if (adv->kind == SK_ROBUST_IBP && !(adv->ibp_kappa_end >= 0 && adv->ibp_kappa_end <= 1))
        return sk_error(SK_EINVAL, "IBP training: adv.ibp_kappa_end %g must be in [0,1]", adv->ibp_kappa_end);
    if (adv->kind == SK_ROBUST_CROWN_IBP &&
        !(adv->ibp_kappa_end >= 0 && adv->ibp_kappa_end <= 1 && adv->crown_beta_start >= 0 &&
          adv->crown_beta_start <= 1 && adv->crown_beta_end >= 0 && adv->crown_beta_end <= 1))
        return sk_error(SK_EINVAL, "CROWN-IBP training: adv.ibp_kappa_end %g, adv.crown_beta_start %g and "
                        "adv.crown_beta_end %g must be in [0,1]", adv->ibp_kappa_end, adv->crown_beta_start,
                        adv->crown_beta_end);
    return SK_OK;
}

/* ---------------- chaining and the guard ---------------- */

static int ch_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    struct sk_robust_loss *l = ctx;
    struct sk_model *m = l->m;
    l->rep.epochs = em->epoch + 1;
    const float *gx = l->gx;
    const int *gy = l->gy;
    int gn = l->gn;
    if (l->a.guard && gn <= 0 && l->t && l->t->n_val > 0) {
        /* the trainer's validation rows */
        gx = l->t->vx;
        gy = l->t->vy;
        gn = l->a.guard_n > 0 && l->a.guard_n < l->t->n_val ? l->a.guard_n : l->t->n_val;
    }
    if (l->a.guard && gn > 0) {
        struct sk_attack_pgd_config pc = sk_attack_pgd_defaults(l->a.eps, l->a.guard_steps > 0 ? l->a.guard_steps : 10);
        pc.clip_lo = l->a.clip_lo;
        pc.clip_hi = l->a.clip_hi;
        pc.box_lo = l->a.box_lo;
        pc.box_hi = l->a.box_hi;
        double acc = 0;
        int rc = sk_attack_pgd_accuracy(m, &pc, gx, gy, gn, 77 + (uint64_t)em->epoch, &acc, NULL);
        if (rc) {
            l->rc = rc;
            return 1;
        }
        if (em->epoch < 64) l->rep.guard_acc[em->epoch] = acc;
        l->last_acc = acc;
        if (l->rep.best_epoch >= 0 && acc < l->rep.best_guard_acc - 0.2) l->rep.catastrophic++;
        if (l->rep.best_epoch < 0 || acc > l->rep.best_guard_acc) {
            l->rep.best_guard_acc = acc;
            l->rep.best_epoch = em->epoch;
            memcpy(l->best, m->params, sizeof(float) * m->n_params);
            memcpy(l->best_buf, m->buffers, sizeof(float) * m->n_buffers);
        }
    }
    return l->user.on_epoch ? l->user.on_epoch(l->user.ctx, em) : 0;
}

static int ch_loss(void *ctx, struct sk_trainer *t, struct sk_graph *g, const float *xb, const int *yb, int n,
                   uint64_t nk, int *logits)
{
    return sk_robust_loss_fn(ctx, t, g, xb, yb, n, nk, logits);
}

static void ch_batch(void *ctx, int epoch, int batch, int n_batches, float loss, double sps)
{
    struct sk_robust_loss *l = ctx;
    if (l->user.on_batch) l->user.on_batch(l->user.ctx, epoch, batch, n_batches, loss, sps);
}

static int ch_grad(void *ctx, struct sk_trainer *t, int nb)
{
    struct sk_robust_loss *l = ctx;
    return l->user.on_grad ? l->user.on_grad(l->user.ctx, t, nb) : 0;
}

static int ch_ckpt(void *ctx, struct sk_trainer *t)
{
    struct sk_robust_loss *l = ctx;
    return l->user.on_checkpoint ? l->user.on_checkpoint(l->user.ctx, t) : 0;
}

void sk_robust_attach(struct sk_train_config *cfg, struct sk_robust_loss *l)
{
    l->user = *cfg;
    cfg->loss = ch_loss;
    cfg->on_epoch = ch_epoch;
    cfg->on_batch = l->user.on_batch ? ch_batch : NULL;
    cfg->on_grad = l->user.on_grad ? ch_grad : NULL;
    cfg->on_checkpoint = l->user.on_checkpoint ? ch_ckpt : NULL;
    cfg->ctx = l;
}

void sk_robust_set_guard_rows(struct sk_robust_loss *l, const float *x, const int *y, int n)
{
    l->gx = x;
    l->gy = y;
    l->gn = n;
}

int sk_robust_finish(struct sk_robust_loss *l, struct sk_robust_report *rep)
{
    struct sk_model *m = l->m;
    if (l->rc == SK_OK && l->rep.best_epoch >= 0) {
        l->rep.kept_epoch = l->rep.epochs - 1;
        if (l->last_acc < l->rep.best_guard_acc - l->a.guard_tol) {
            memcpy(m->params, l->best, sizeof(float) * m->n_params);
            memcpy(m->buffers, l->best_buf, sizeof(float) * m->n_buffers);
            l->rep.kept_epoch = l->rep.best_epoch;
        }
    }
    if (rep) *rep = l->rep;
    return l->rc;
}

int sk_robust_train(struct sk_model *m, const struct sk_train_config *cfg, const struct sk_robust_config *adv,
                    const float *x, const int *y, int n, struct sk_robust_report *rep)
{
    double t0 = sk_now();
    if (adv->kind == SK_ROBUST_NONE) {
        if (rep) memset(rep, 0, sizeof *rep), rep->best_epoch = -1, rep->kept_epoch = -1;
        return sk_train(m, cfg, x, y, n);
    }
    int rc = sk_robust_check(adv);
    if (rc) return rc;
    /* the guard's best weights and FGSM-EP's perturbations are not in checkpoints */
    if (cfg->resume)
        return sk_error(SK_EINVAL, "adversarial training does not resume from a checkpoint (cfg.resume)");
    int n_fit = n;
    struct sk_robust_loss *l = sk_robust_loss_new(m, adv, cfg->batch);
    if (!l) return SK_ENOMEM;
    if (adv->guard && cfg->val_split <= 0) {
        /* no validation split: hold out the last rows for the guard */
        int gn = adv->guard_n > 0 ? adv->guard_n : 512;
        if (gn > n / 5) gn = n / 5;
        if (gn < 1) {
            sk_robust_loss_free(l);
            return sk_error(SK_EINVAL, "guard: too few rows (%d) to hold some out", n);
        }
        n_fit = n - gn;
        sk_robust_set_guard_rows(l, x + (size_t)n_fit * m->in_dim, y + n_fit, gn);
    }
    struct sk_train_config c = *cfg;
    sk_robust_attach(&c, l);
    struct sk_trainer *t = sk_trainer_new(m, &c, x, y, n_fit);
    if (!t) {
        sk_robust_loss_free(l);
        return SK_EINVAL; /* the trainer set the message */
    }
    rc = sk_trainer_run(t);
    int rc2 = sk_robust_finish(l, rep);
    if (!rc) rc = rc2;
    if (rep) rep->seconds = sk_now() - t0;
    sk_trainer_free(t);
    sk_robust_loss_free(l);
    return rc;
}
