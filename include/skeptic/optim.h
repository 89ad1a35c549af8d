/* skeptic/optim.h — optimisers on flat parameter/gradient buffers, penalties,
 * clipping and learning-rate schedules.
 *
 * Update rules (g = gradient after penalties and clipping, t = step from 1):
 *   sgd       w -= lr g
 *   momentum  b = mu b + g;            w -= lr b                (PyTorch SGD momentum)
 *   nesterov  b = mu b + g;            w -= lr (g + mu b)
 *   adam      m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *             w -= lr mhat / (sqrt(vhat) + eps), hats bias-corrected
 *   adamw     adam with decoupled decay: w -= lr wd w before the adam step
 *   rmsprop   v = a v + (1-a) g^2;      w -= lr g / (sqrt(v) + eps)
 * Penalties (all but adamw's decay): g += wd w (L2), g += l1 sign(w) (L1).
 * Clipping: if clip_norm > 0 and |g|_2 > clip_norm, g *= clip_norm / |g|_2.
 * Schedules give lr(t) for optimiser step t (0-based):
 *   constant lr; step lr gamma^floor(t/step_size); cosine
 *   min_lr + (lr-min_lr)(1+cos(pi t/T))/2; onecycle: linear warm-up from lr/25
 *   over warmup steps (default 30% of T), then cosine down to min_lr.
 * Warm-up (warmup > 0) also prefixes step and cosine schedules linearly.
 */
#ifndef SKEPTIC_OPTIM_H
#define SKEPTIC_OPTIM_H

#include "skeptic/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sk_optim_kind { SK_OPT_SGD, SK_OPT_MOMENTUM, SK_OPT_NESTEROV, SK_OPT_ADAM, SK_OPT_ADAMW, SK_OPT_RMSPROP };
enum sk_sched_kind { SK_SCHED_CONSTANT, SK_SCHED_STEP, SK_SCHED_COSINE, SK_SCHED_ONECYCLE };

struct sk_optim_config {
    enum sk_optim_kind kind;
    float lr;
    float momentum;      /* momentum/nesterov; default 0.9 */
    float beta1, beta2;  /* adam; default 0.9, 0.999 */
    float eps;           /* adam/rmsprop; default 1e-8 */
    float alpha;         /* rmsprop decay; default 0.99 */
    float weight_decay;  /* L2 (adamw: decoupled) */
    float l1;
    float clip_norm;     /* 0 = off */
    enum sk_sched_kind sched;
    long total_steps;    /* for cosine/onecycle */
    long warmup_steps;
    long step_size;      /* for step */
    float gamma;         /* for step; default 0.1 */
    float min_lr;
};
/* Defaults for a kind (lr 0.01 sgd family, 1e-3 adam family and rmsprop). */
struct sk_optim_config sk_optim_defaults(enum sk_optim_kind kind);
/* Parse "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"; -1 if unknown. */
int sk_optim_kind_parse(const char *s);
const char *sk_optim_kind_name(enum sk_optim_kind k);
int sk_sched_kind_parse(const char *s);
const char *sk_sched_kind_name(enum sk_sched_kind k);

struct sk_optim {
    struct sk_optim_config cfg;
    size_t n;
    float *m;            /* first moment / momentum buffer (n floats) */
    float *v;            /* second moment (n floats) */
    long t;              /* steps taken */
    float last_grad_norm;
};
struct sk_optim *sk_optim_new(const struct sk_optim_config *cfg, size_t n_params);
void sk_optim_free(struct sk_optim *o); /* NULL ok */
/* Learning rate at step t. */
float sk_optim_lr_at(const struct sk_optim_config *cfg, long t);
/* One step: applies penalties and clipping to grads (modified in place) and
 * updates params. Returns SK_ENONFINITE (params untouched) if the gradient
 * holds a NaN or Inf. */
int sk_optim_step(struct sk_optim *o, float *params, float *grads);

#ifdef __cplusplus
}
#endif
#endif
