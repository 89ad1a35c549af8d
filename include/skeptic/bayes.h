/* skeptic/bayes.h — Bayesian neural networks: one posterior type for every
 * method, trained, saved, loaded and turned into a classifier that averages
 * S samples (so attacks on it are EOT attacks).
 *
 * Methods (all on any model spec; "MLP" = a dense/activation stack):
 *
 *  deterministic  the network itself (S = 1); optional temperature.
 *  vi             mean-field Gaussian variational inference, Bayes by Backprop
 *                 (Blundell et al. 2015): q(w) = prod_i N(mu_i, sigma_i^2),
 *                 sigma = softplus(rho), over every parameter. The loss per
 *                 minibatch is   mean_n CE(x_n, y_n; w) + beta_t KL(q || p) / N_train
 *                 (the KL weight per minibatch of Blundell's uniform schedule;
 *                 beta_t ramps linearly from 0 to kl_weight over anneal_epochs).
 *                 MLPs train with the local reparameterisation trick (Kingma et
 *                 al. 2015): pre-activations b = x mu^T + sqrt(x^2 sigma^2^T) eps
 *                 with eps fresh per example; other specs sample one weight set
 *                 per minibatch (w = mu + sigma eps), or with flipout (Wen et
 *                 al. 2018) one perturbation dW = sigma eps per minibatch that
 *                 example n sees as dW (.) s_out,n s_in,n^T (random signs per
 *                 input / output unit or channel): for dense and conv layers
 *                 y = layer(x; mu) + s_out (.) layer(x (.) s_in; dW); biases and
 *                 other parameters keep the shared draw. Unbiased, with about a
 *                 sixth of the gradient variance on a small CNN, but two
 *                 products per layer: on the Fashion-MNIST CNN it costs 2.4x
 *                 the CPU time per epoch, and at equal CPU time the plain draw
 *                 trained for more epochs ends better, so it is off by default.
 *                 Prediction samples weights.
 *                 Priors: Gaussian N(0, s^2) with the closed-form KL
 *                   KL = sum_i log(s/sigma_i) + (sigma_i^2 + mu_i^2)/(2 s^2) - 1/2,
 *                 or the scale mixture pi N(0,s1^2) + (1-pi) N(0,s2^2), whose KL
 *                 has no closed form and is estimated by one reparameterised
 *                 sample, log q(w) - log p(w).
 *                 Initial posterior scale: sigma_0 = init_sigma (default 0.02):
 *                 rho_0 = log(expm1(sigma_0)). Around 1e-2 of He-initialised
 *                 weights of ~0.05: noise that matters from the first step,
 *                 small enough not to swamp the signal. Scales of 1e-4 or less
 *                 stay there for many epochs (the gradient of rho is
 *                 proportional to sigmoid(rho)) and the network is Bayesian in
 *                 name only.
 *  mc-dropout     dropout kept on at prediction (Gal & Ghahramani 2016); the
 *                 spec must contain dropout.
 *  ensemble       M members trained from independent seeds (Lakshminarayanan
 *                 et al. 2017); member m's seed is stream SK_STREAM_ENSEMBLE,
 *                 child m of the training seed.
 *  sgld           stochastic-gradient Langevin dynamics (Welling & Teh 2011)
 *                 on U(w) = N mean_n CE + |w|^2 / (2 s^2), written with a
 *                 learning rate on the mean loss:
 *                   w -= lr_t (grad mean CE + w / (N s^2)) + sqrt(2 lr_t T / N) xi
 *                 (lr_t = epsilon_t N / 2 of the original; T = 1 is the
 *                 posterior). After burn-in every thin-th step is kept (up to
 *                 n_keep, the newest kept). Cyclical (Zhang et al. 2020):
 *                 lr_t = lr/2 (cos(pi (t mod C)/C) + 1) with C steps per cycle,
 *                 noise only in the last half of each cycle, samples from its
 *                 last quarter.
 *  laplace        last-layer Laplace approximation around a trained network
 *                 (Daxberger et al. 2021): the generalised Gauss–Newton of the
 *                 last dense layer (weights and bias) over the training data,
 *                   full:  H = sum_n Lambda_n (x) phi_n phi_n^T,  Lambda = diag(p) - p p^T
 *                   kfac:  H ~ G (x) A,  G = mean_n Lambda_n,  A = sum_n phi_n phi_n^T
 *                 (phi = [features, 1]), posterior N(w*, (H + delta I)^-1). The
 *                 prior precision delta maximises the Laplace marginal
 *                 likelihood  -delta/2 |w*|^2 + P/2 log delta - 1/2 log det(H + delta I)
 *                 over a log grid (or minimises the NLL of a validation split).
 *                 Predictive: Monte Carlo over last-layer weights, or the
 *                 probit approximation in function space
 *                   p = softmax(f / sqrt(1 + pi/8 diag Sigma_f)),  Sigma_f = J Sigma J^T.
 *
 * Temperature scaling (Guo et al. 2017) applies to every method: each sample's
 * log-probabilities are divided by T and renormalised. sk_bayes_fit_temperature
 * chooses T by minimising the NLL of held-out data.
 *
 * Files: one safetensors file per posterior. The spec and method are in
 * __metadata__ ("skeptic.spec", "skeptic.method", and the method's
 * settings); tensors are the nn.Sequential names with a prefix:
 *   every method                  "0.weight", ... (mean / MAP / member 0 under the plain
 *                                 names; PyTorch reads them directly. sk_model_load
 *                                 refuses the extra tensors: use sk_bayes_load)
 *   vi                            + "rho.0.weight", ...
 *   ensemble                      + "member3.0.weight", ...
 *   sgld                          + "sample7.0.weight", ...
 *   laplace                       + "laplace.A_vec", "laplace.A_val",
 *                                 "laplace.G_vec", "laplace.G_val" (kfac) or "laplace.cov", "laplace.cov_sqrt" (full)
 *
 * Ownership: a posterior owns its model and buffers; sk_bayes_free(NULL)
 * is a no-op. A classifier made from a posterior borrows it.
 * Randomness: every draw is keyed by a seed (weight noise stream
 * SK_STREAM_NOISE); the same seed gives the same bits.
 */
#ifndef SKEPTIC_BAYES_H
#define SKEPTIC_BAYES_H

#include "skeptic/metrics.h"
#include "skeptic/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* append only: saved in files by name */
enum sk_bayes_method {
    SK_BAYES_DETERMINISTIC = 0,
    SK_BAYES_VI = 1,
    SK_BAYES_MCDROPOUT = 2,
    SK_BAYES_ENSEMBLE = 3,
    SK_BAYES_SGLD = 4,
    SK_BAYES_LAPLACE = 5,
};
const char *sk_bayes_method_name(enum sk_bayes_method m);
/* "deterministic" | "vi" | "mc-dropout" | "ensemble" | "sgld" | "laplace"; -1 if unknown */
int sk_bayes_method_parse(const char *s);

enum sk_bayes_prior_kind { SK_PRIOR_GAUSSIAN = 0, SK_PRIOR_MIXTURE = 1 };

/* A hook on each minibatch of Bayes by Backprop, called before the step:
 * it may overwrite the n rows of xb (n x in_dim; labels yb) in place, given
 * the current posterior mu, rho (n_params floats each, read only), the
 * training progress in epochs (step / steps per epoch) and the step's noise
 * key (draws keyed by a child of it are reproducible for a seed; the step
 * itself uses children 1 to 3). SK_OK, or a status that ends training.
 * Adversarial training of VI (robust.h, sk_robust_train_vi) is one. */
typedef int (*sk_bayes_vi_batch_fn)(void *ctx, const float *mu, const float *rho, float *xb, const int *yb, int n,
                                    double progress, uint64_t key);

struct sk_bayes_vi_config {
    enum sk_bayes_prior_kind prior;
    float prior_sigma;          /* Gaussian prior s (default 0.1) */
    float mix_pi, mix_s1, mix_s2; /* scale mixture (default 0.5, 1, e^-6 ~ 0.0025) */
    float init_sigma;           /* posterior scale at init (default 0.02) */
    float kl_weight;            /* beta (default 1) */
    int anneal_epochs;          /* linear KL warm-up (default 0 = none) */
    bool local_reparam;         /* LRT for MLP specs (default true) */
    bool flipout;               /* Flipout for every spec the LRT does not cover (default false) */
    /* The minibatch hook (default NULL: the rows as they are) and its ctx;
     * used during sk_bayes_train_vi only, not kept in the posterior. */
    sk_bayes_vi_batch_fn batch;
    void *batch_ctx;
};
struct sk_bayes_vi_config sk_bayes_vi_defaults(void);

struct sk_bayes_sgld_config {
    float prior_sigma;          /* s (default 1) */
    float temperature;          /* T (default 1) */
    int burnin_epochs;          /* default 2 */
    int thin;                   /* steps between kept samples (default 100) */
    int n_keep;                 /* samples kept (default 20) */
    int cycles;                 /* 0 = constant step size; else cyclical */
};
struct sk_bayes_sgld_config sk_bayes_sgld_defaults(void);

enum sk_bayes_laplace_hessian { SK_LAPLACE_FULL = 0, SK_LAPLACE_KFAC = 1 };
struct sk_bayes_laplace_config {
    enum sk_bayes_laplace_hessian hessian; /* default kfac */
    float prior_precision;      /* > 0: fixed; 0: marginal likelihood (default) */
    bool select_on_val;         /* choose delta by NLL on the validation data instead */
    bool probit;                /* predictive by probit (sk_bayes_predict) else MC */
};
struct sk_bayes_laplace_config sk_bayes_laplace_defaults(void);

struct sk_posterior {
    enum sk_bayes_method method;
    struct sk_model *model;     /* architecture; deterministic, MAP, mean (vi) or member 0 weights */
    int n_members;              /* ensemble members / sgld samples */
    float *members;             /* [n_members][n_params] */
    float *rho;                 /* vi: [n_params] */
    float *vi_sigma;            /* vi: cache of softplus(rho), refreshed by every prediction call (owned) */
    struct sk_bayes_vi_config vi;
    struct sk_bayes_sgld_config sgld;
    struct sk_bayes_laplace_config laplace;
    float temperature;          /* 1 = none */
    /* last-layer Laplace: layer index, D1 = features + 1, K; prior precision */
    int ll_layer, ll_d1, ll_k;
    float prior_precision;
    float *ll_avec, *ll_aval;   /* kfac: eigenvectors [D1][D1] (row i = vector i), values [D1] */
    float *ll_gvec, *ll_gval;   /* kfac: [K][K], [K] */
    float *ll_cov;              /* full: posterior covariance [(K D1)^2], index (k*D1+d) */
    float *ll_cov_sqrt;         /* full: a square root V diag((lambda+delta)^-1/2) of it (sampling) */
};

/* A posterior of `method` around a model (the posterior takes ownership of m). */
struct sk_posterior *sk_bayes_new(struct sk_model *m, enum sk_bayes_method method);
void sk_bayes_free(struct sk_posterior *p); /* NULL ok */

/* ---------------- training ----------------
 * All use cfg's epochs, batch, seed, optimiser and learning-rate schedule,
 * on_epoch (called with train loss/accuracy) and on_batch. The model's
 * parameters are the starting point (initialise them first). vi and sgld run
 * in the trainer's loop (train.h, step hook) on every row (cfg's validation
 * split, patience, loss and on_grad do not apply) and honour on_checkpoint /
 * checkpoint_every and resume: a checkpoint also holds vi's [mu; rho]
 * ("skeptic.vi.theta", with the optimiser moments of those 2P values) or
 * sgld's kept samples ("skeptic.sgld.samples", their count in the state), so
 * a run killed and resumed ends bitwise identical. */

/* Bayes by Backprop. On return p->model->params = mu, p->rho = rho. */
int sk_bayes_train_vi(struct sk_posterior *p, const struct sk_train_config *cfg, const struct sk_bayes_vi_config *vi,
                      const float *x, const int *y, int n);
/* M members, each initialised with `init` from its own seed and trained with
 * sk_train (adversarially trained members: robust.h, sk_robust_train_ensemble). */
int sk_bayes_train_ensemble(struct sk_posterior *p, int M, enum sk_init init, const struct sk_train_config *cfg,
                            const float *x, const int *y, int n);
/* SGLD from the current weights (cfg->opt.lr is the step size lr above). */
int sk_bayes_train_sgld(struct sk_posterior *p, const struct sk_train_config *cfg,
                        const struct sk_bayes_sgld_config *sc, const float *x, const int *y, int n);
/* Last-layer Laplace around the current (trained) weights. vx/vy (may be
 * NULL) are used when lc->select_on_val. */
int sk_bayes_fit_laplace(struct sk_posterior *p, const struct sk_bayes_laplace_config *lc, const float *x, const int *y,
                         int n, const float *vx, const int *vy, int nv);
/* How one network is trained where a method trains one: sk_train's contract
 * (m's weights are the start and the result, a library status) plus ctx. */
typedef int (*sk_bayes_net_fn)(void *ctx, struct sk_model *m, const struct sk_train_config *cfg, const float *x,
                               const int *y, int n);

/* Every method through one call: what `skeptic train --method M` and
 * `skeptic compare` run. Fields a method does not use are ignored. */
struct sk_bayes_train_config {
    /* deterministic and mc-dropout networks, vi, every ensemble member, and
     * the warm start (MAP network) of sgld and laplace */
    struct sk_train_config train;
    /* sgld, laplace, deterministic, mc-dropout: the model's weights are
     * trained already; no warm start (default false) */
    bool pretrained;
    /* How the deterministic, mc-dropout and warm-start networks and each
     * ensemble member are trained (default NULL: sk_train) and its ctx;
     * robust.h's sk_robust_train_bayes trains them adversarially. */
    sk_bayes_net_fn train_net;
    void *net_ctx;
    struct sk_bayes_vi_config vi;
    int members;                 /* ensemble (default 5) */
    enum sk_init member_init;    /* ensemble (default He uniform) */
    struct sk_train_config sgld_train; /* sgld's sampling run: epochs, batch, seed, lr = step size */
    struct sk_bayes_sgld_config sgld;
    struct sk_bayes_laplace_config laplace;
    const float *val_x;          /* laplace.select_on_val: validation rows (borrowed; may be NULL) */
    const int *val_y;
    int n_val;
};
struct sk_bayes_train_config sk_bayes_train_defaults(void);
/* Train p by its method on n rows of x (the model initialised, or trained
 * with cfg->pretrained): vi, ensemble and sgld as their functions above,
 * laplace and sgld after the warm start. A library status. */
int sk_bayes_train(struct sk_posterior *p, const struct sk_bayes_train_config *cfg, const float *x, const int *y,
                   int n);

/* Temperature minimising the NLL of (x, y) under the posterior's predictive
 * with S samples; sets p->temperature and returns it in *T (may be NULL). */
int sk_bayes_fit_temperature(struct sk_posterior *p, const float *x, const int *y, int n, int S, uint64_t seed,
                             float *T);

/* sigma = softplus(rho) for n values: the scales of a vi posterior. */
void sk_bayes_vi_sigma(const float *rho, float *sigma, size_t n);
/* One draw of q(w): w = mu + sigma e for n weights, e the standard normals
 * of stream `key` (every vi weight sample is made this way). */
void sk_bayes_vi_sample(const float *mu, const float *sigma, uint64_t key, float *w, size_t n);

/* Closed-form KL(N(mu, sigma^2) || N(0, s^2)) summed over n weights (double). */
double sk_bayes_kl_gauss(const float *mu, const float *sigma, size_t n, float s);
/* Total KL of the vi posterior under its prior (closed form for the Gaussian
 * prior; a one-sample estimate with stream `seed` for the mixture). */
double sk_bayes_kl(const struct sk_posterior *p, uint64_t seed);

/* ---------------- prediction ----------------
 * S weight samples (ensemble / sgld: the first min(S, M) members, S = 0 all
 * of them; deterministic: S forced to 1). */

/* Per-sample probabilities [S,N,K] of the S samples (call key from seed). */
int sk_bayes_sample_probs(struct sk_posterior *p, const float *x, int N, int S, uint64_t seed, float *probs);
/* The predictive pbar [N,K] (and, if non-NULL, mi [N]) in batches; the
 * laplace posterior with laplace.probit uses the probit approximation (mi then 0). */
int sk_bayes_predict(struct sk_posterior *p, const float *x, int N, int S, uint64_t seed, float *pbar,
                     float *mi);
/* The number of samples a call with S uses (members for S = 0 etc.). */
int sk_bayes_n_samples(const struct sk_posterior *p, int S);

/* A classifier averaging S samples per call (log of the mean probability;
 * input gradient = EOT gradient over the same samples). Stochastic methods
 * (vi, mc-dropout, laplace) draw fresh samples every call from stream `seed`.
 * The posterior is borrowed. */
struct sk_classifier *sk_bayes_classifier(struct sk_posterior *p, int S, uint64_t seed);

/* ---------------- the uncertainty report ----------------
 * Everything `skeptic eval --samples S --ood D` prints, for one posterior:
 * the point metrics and reliability table of the predictive on (x, y), the
 * per-input total entropy and mutual information in and (if ood_x) out of
 * distribution, OOD detection by max probability / entropy / MI,
 * misclassification detection and accuracy at 50/80/90/100% coverage (by
 * entropy). Arrays are owned by the report (sk_bayes_report_free). */
struct sk_bayes_report {
    int n, n_ood, n_samples;
    struct sk_metric_summary clean;
    struct sk_reliability rel;
    struct sk_detection ood[3];      /* by score: maxprob, entropy, mi (n_ood > 0) */
    struct sk_detection misc[3];     /* misclassification by score */
    double coverage_acc[4];          /* at 0.5, 0.8, 0.9, 1.0 */
    float *entropy, *mi;             /* [n] */
    float *ood_entropy, *ood_mi;     /* [n_ood] */
    double seconds;
};
int sk_bayes_report(struct sk_posterior *p, const float *x, const int *y, int n, const float *ood_x, int n_ood, int S,
                    uint64_t seed, struct sk_bayes_report *out);
void sk_bayes_report_free(struct sk_bayes_report *r); /* arrays only; NULL ok */

/* ---------------- files ---------------- */
int sk_bayes_save(const struct sk_posterior *p, const char *path);
/* Any file written by sk_bayes_save, or a plain model file (method
 * deterministic; with dropout in the spec, choose mc-dropout by setting
 * p->method yourself). */
struct sk_posterior *sk_bayes_load(const char *path);

#ifdef __cplusplus
}
#endif
#endif
