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
 *
 * Gradient noise (grad_noise = sigma > 0): g += sigma xi before penalties and
 * clipping, xi ~ N(0, I) drawn from the optimiser's noise stream, child t of
 * sk_rng_derive(sk_rng_new(noise_seed).key, SK_OPTIM_STREAM_NOISE), element i
 * by sk_rng_normal_at: isotropic noise of a chosen size, to set against the
 * anisotropic noise of minibatches (Zhu et al. 2019). It depends only on
 * (noise_seed, t), so it needs no state in a checkpoint.
 *
 * Sharpness-aware minimisation (sam_rho = rho > 0): the update uses the
 * gradient at the perturbed point w + e, with
 *   SAM  (Foret et al. 2021):  e = rho g / ||g||
 *   ASAM (Kwon et al. 2021):   e = rho T^2 g / ||T g||,  T = diag(|w| + eta)
 * (g the minibatch gradient at w, before penalties and noise). It needs a
 * second gradient of the same minibatch, which the training loop takes
 * (skeptic/train.h); sk_optim_sam_perturb computes e. ASAM scales every
 * parameter, biases too (the reference code leaves biases at T = 1).
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
    float grad_noise;    /* sigma of the isotropic Gaussian gradient noise; 0 = off */
    uint64_t noise_seed; /* its stream (the trainer sets its own seed here) */
    float sam_rho;       /* SAM / ASAM radius; 0 = off */
    bool sam_adaptive;   /* ASAM rather than SAM */
    float sam_eta;       /* ASAM's eta; default 0.01 */
};
/* The optimiser's private child stream of noise_seed (gradient noise). */
#define SK_OPTIM_STREAM_NOISE 0x6f700001u
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

/* The SAM / ASAM ascent of cfg (sam_rho > 0) at params w with gradient g:
 * writes w + e into w (n floats; the caller keeps w to restore it) and
 * returns SK_OK; *norm (may be NULL) receives ||g|| (SAM) or ||T g|| (ASAM).
 * SK_ENONFINITE (w untouched) for a gradient with a NaN or Inf, SK_EINVAL
 * naming cfg.sam_rho / cfg.sam_eta for rho <= 0 or eta < 0. A zero gradient
 * leaves w as it is. Elementwise and in fixed-order reductions: the same
 * bits for any thread count. */
int sk_optim_sam_perturb(const struct sk_optim_config *cfg, float *w, const float *g, size_t n, double *norm);

#ifdef __cplusplus
}
#endif
#endif
