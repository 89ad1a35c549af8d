/* skeptic/robust.h — training against the worst case: PGD adversarial
 * training (Madry et al.), fast FGSM with random start (Wong et al.) with a
 * guard against catastrophic overfitting, TRADES (Zhang et al.), IBP training
 * (Gowal et al.), and adversarial training of MC-dropout models with EOT.
 *
 * The inner attack here is a training primitive on a model with a graph
 * (fast, L-infinity, sign steps); the attack suite of attack.h is the one to
 * *evaluate* robustness with.
 *
 *   PGD step:   x <- Proj_{B}(x + step * sign(grad_x loss)),
 *               B = {|x'-x0|_inf <= eps} intersected with [clip_lo, clip_hi]
 *               (no box if clip_lo >= clip_hi); random start x0 + U(-eps,eps).
 *   FGSM-RS:    one step of size 1.25 eps from a random start.
 *   TRADES:     L = CE(f(x), y) + beta KL(p(x) || p(x')), x' from PGD on the KL
 *               started at x + 0.001 N(0,1).
 *   IBP:        L = kappa CE(f(x), y) + (1-kappa) CE(zw(x, eps_t), y), zw the
 *               worst-case logits of the specification form (certify.h);
 *               clean warm-up epochs, then eps_t ramps 0 -> eps_train and
 *               kappa 1 -> kappa_end linearly over ramp epochs (per step).
 *   CROWN-IBP:  Zhang et al. 2020: as IBP with zw = -(beta m_C + (1-beta) m_I),
 *               m_I IBP's margin bounds (specification form), m_C the
 *               CROWN-IBP ones: IBP boxes for every pre-activation, then a
 *               backward linear relaxation (CROWN, adaptive lower slopes)
 *               from the margins; beta ramps from crown_beta_start to
 *               crown_beta_end with eps. Gradients flow through both passes.
 *   FGSM-mix:   L = CE(f(x), y) + CE(f(x'), y), x' = Proj_B(x + eps sign(grad_x CE))
 *               (no random start; the gradient of the current model in eval
 *               mode, x' held fixed in the parameter gradient): the
 *               adversarial training of deep ensembles (Lakshminarayanan et
 *               al. 2017), whose eps is 0.01 of the input range.
 *   N-FGSM:     de Jorge et al. 2022 ("make some noise"): x' = clip_box(x + d0 +
 *               eps sign(grad_x CE(x + d0))), d0 ~ U(-2 eps, 2 eps), with no
 *               projection back to the eps-ball (|x' - x| <= 3 eps): single-step
 *               training without catastrophic overfitting at FGSM's cost.
 *   FGSM-EP:    Jia et al. 2022 (prior-guided initialisation, the epoch prior):
 *               x' = Proj_B(x + d + a sign(grad_x CE(x + d))) where d is the
 *               perturbation this training row got in the previous epoch
 *               (U(-eps, eps) in its first), a = eps by default: one gradient per
 *               step like FGSM, but the perturbation accumulates over epochs.
 *               L = CE(f(x'), y) + lambda mean_k (z_k(x') - z_k(x + d))^2, the
 *               paper's regulariser against catastrophic overfitting (the
 *               logits of the start and of the adversarial point, both with
 *               gradients). Keeps one perturbation per training row (n x in_dim floats).
 *   EOT:        for a dropout model with eot > 1, the attack runs in MC mode
 *               and each step averages the input gradient over eot masks.
 *   Bayesian:   variational posteriors train against PGD with EOT over weight
 *               draws (sk_robust_train_vi); ensembles train every member with
 *               sk_robust_train (sk_robust_train_ensemble); sk_robust_train_bayes
 *               does either, or trains the network of the other methods
 *               (bayes.h) adversarially.
 *
 * Randomness: random starts come from stream SK_STREAM_ATTACK of the seed
 * given (training: the trainer's dropout key of the step), so runs are
 * reproducible bit for bit for a fixed thread count.
 */
#ifndef SKEPTIC_ROBUST_H
#define SKEPTIC_ROBUST_H

#include "skeptic/attack.h" /* the inner attack: sk_attack_pgd_config, sk_attack_pgd_graph */
#include "skeptic/bayes.h"  /* the posteriors of Bayesian adversarial training */
#include "skeptic/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* append only: saved in files by name */
enum sk_robust_kind {
    SK_ROBUST_NONE = 0,
    SK_ROBUST_PGD = 1,
    SK_ROBUST_FGSM = 2,
    SK_ROBUST_TRADES = 3,
    SK_ROBUST_IBP = 4,
    SK_ROBUST_FGSM_MIX = 5,
    SK_ROBUST_NFGSM = 6,
    SK_ROBUST_FGSM_EP = 7,
    SK_ROBUST_NUAT = 8,
    SK_ROBUST_CROWN_IBP = 9,
};
const char *sk_robust_kind_name(enum sk_robust_kind k);
/* "none" | "pgd" | "fgsm" | "trades" | "ibp" | "fgsm-mix" | "n-fgsm" | "fgsm-ep" | "nuat" | "crown-ibp" -> kind, or -1. */
int sk_robust_kind_parse(const char *s);
/* true for the one-gradient-step kinds (fgsm, fgsm-mix, n-fgsm, fgsm-ep, nuat), whose steps is always 1 */
bool sk_robust_single_step(enum sk_robust_kind k);

struct sk_robust_config {
    enum sk_robust_kind kind;
    float eps;            /* target radius */
    int steps;            /* inner PGD steps (PGD, TRADES); FGSM uses 1 */
    float step;           /* inner step size; <= 0 automatic */
    float clip_lo, clip_hi;
    const float *box_lo, *box_hi; /* per-feature box (in_dim each, borrowed; tabular data: the training
                                   * split's range) instead of [clip_lo, clip_hi]; NULL: the scalar box.
                                   * Used by the PGD kinds, FGSM-EP, IBP and the guard */
    int eps_warmup_epochs;/* PGD/FGSM/TRADES: eps ramps from 0 over these epochs (0: none) */
    float trades_beta;    /* default 6 */
    float nfgsm_noise;    /* N-FGSM: radius of the uniform noise in units of eps (<= 0: 2, de Jorge et al.'s) */
    float ep_lambda;      /* FGSM-EP: weight of the prior regulariser lambda mean (z(x') - z(x + d))^2 (default 10) */
    float nuat_lambda;    /* NuAT: final weight of the nuclear norm (default 4.5), ramped from 0 over the
                           * first 90% of the epochs. Loss CE(z(x)) + lambda ||z(x') - z(x)||_* / B; x' one
                           * step of eps from x +- eps/2 (Bernoulli) on CE(z(x')) + lambda ||.||_* / B (the
                           * nuclear term on every other batch), projected (Sriramanan et al. 2021) */
    float ibp_eps_train;  /* <= 0: eps */
    float ibp_kappa_end;  /* default 0.5 */
    int ibp_warmup_epochs;/* clean epochs first (default 1) */
    int ibp_ramp_epochs;  /* <= 0: half of the remaining epochs */
    float crown_beta_start, crown_beta_end; /* CROWN-IBP: weight of the CROWN-IBP margins against IBP's, ramped
                                             * with eps from start to end (defaults 1 and 0; the CROWN pass is
                                             * skipped once it reaches 0). eps, kappa and the epochs as for IBP */
    int eot;              /* dropout models: MC attack averaged over eot masks (<= 1: eval-mode attack) */
    bool guard;           /* track PGD accuracy on held-out rows each epoch (FGSM default on) */
    int guard_n;          /* held-out rows for the guard (default 512) */
    int guard_steps;      /* PGD steps of the guard (default 10) */
    float guard_tol;      /* keep the last epoch's weights unless its guard accuracy is more than
                           * guard_tol below the best epoch's, then restore the best (default 0.05,
                           * about 2.5 standard errors at 512 rows: the best of noisy estimates is
                           * biased, and picking it would throw away the end of the schedule) */
};
struct sk_robust_config sk_robust_defaults(enum sk_robust_kind kind, float eps);

struct sk_robust_report {
    int epochs;                /* epochs run */
    double guard_acc[64];      /* guard PGD accuracy after each epoch (first 64) */
    double best_guard_acc;
    int best_epoch;            /* epoch of the best guard accuracy, -1 without guard */
    int kept_epoch;            /* epoch whose weights were returned (last, or best after a drop), -1 without guard */
    int catastrophic;          /* epochs whose guard accuracy fell > 20 points below the best so far */
    double seconds;
};

/* Train m on (x, y) with cfg (epochs, batch, optimiser, validation split,
 * callbacks other than loss) and the adversarial objective adv. With the
 * guard, held-out rows are the validation split if there is one, else the
 * last guard_n rows (not trained on); at the end the best-guard weights are
 * restored if the last epoch fell more than guard_tol below them. rep may be NULL. */
int sk_robust_train(struct sk_model *m, const struct sk_train_config *cfg, const struct sk_robust_config *adv,
                    const float *x, const int *y, int n, struct sk_robust_report *rep);

/* SK_OK, or SK_EINVAL with a message naming the bad setting. */
int sk_robust_check(const struct sk_robust_config *adv);

/* For callers that run their own trainer (checkpoints, progress bars):
 *
 *     struct sk_robust_loss *l = sk_robust_loss_new(m, &adv, cfg.batch);
 *     sk_robust_attach(&cfg, l);          // before sk_trainer_new
 *     t = sk_trainer_new(m, &cfg, x, y, n); sk_trainer_run(t);
 *     sk_robust_finish(l, &rep);          // restores the best-guard weights after a drop
 *     sk_robust_loss_free(l);
 *
 * attach replaces cfg->loss and chains cfg's other callbacks (called with
 * the caller's ctx). The guard uses the rows given to
 * sk_robust_set_guard_rows, else the trainer's validation split, else none.
 * The loss hook itself (ctx = the sk_robust_loss) is sk_robust_loss_fn. */
struct sk_robust_loss;
struct sk_robust_loss *sk_robust_loss_new(struct sk_model *m, const struct sk_robust_config *adv, int batch);
void sk_robust_loss_free(struct sk_robust_loss *l); /* NULL ok */
void sk_robust_attach(struct sk_train_config *cfg, struct sk_robust_loss *l);
void sk_robust_set_guard_rows(struct sk_robust_loss *l, const float *x, const int *y, int n);
int sk_robust_finish(struct sk_robust_loss *l, struct sk_robust_report *rep);
int sk_robust_loss_fn(void *ctx, struct sk_trainer *t, struct sk_graph *g, const float *xb, const int *yb, int n,
                      uint64_t noise_key, int *logits);

/* CROWN-IBP margin bounds on the graph (differentiable): for the box of
 * nodes c, r (centre/radius [N, in_dim] or [N,C,H,W], raw units) and labels
 * y[N] (caller's array, alive until backward), *mlo [N, n_classes] gets
 * lower bounds of z_y - z_j (0 at j = y): beta times the CROWN-IBP bound
 * plus (1 - beta) times IBP's in specification form (beta in [0,1]; 0 records
 * no backward pass). CROWN-IBP: every pre-activation box by IBP
 * (sk_certify_ibp_graph's layers), then A = (e_y - e_j)^T pushed backward:
 * through dense W as A W (bias A b), conv as its transpose, relu on [l,u]
 * as A+ alpha + A- s with intercept A- (s max(-l,0)), alpha = [u >= -l] for
 * unstable values (1 active, 0 dead), s = u/(u-l) (sk_op_relu_upper_slope),
 * and concretized at the input box: A c - |A| r + bias. Gradients flow into
 * the parameters through A, s and the IBP boxes (alpha is held constant).
 * Layers: dense, conv, relu, flatten, dropout (identity), ending in dense;
 * else SK_EINVAL naming the layer. Eval-mode bounds, like IBP's. */
int sk_robust_crown_ibp_margins(struct sk_model *m, struct sk_graph *g, int c, int r, const int *y, float beta,
                                int *mlo);
/* The worst-case logits of those bounds, -mlo: what cross-entropy takes as
 * the robust loss (sk_certify_ibp_worst_logits' form). */
int sk_robust_crown_ibp_worst_logits(struct sk_model *m, struct sk_graph *g, int c, int r, const int *y, float beta,
                                     int *zw);

/* ---------------- Bayesian adversarial training ----------------
 * The posteriors of bayes.h trained against the worst case. adv is borrowed
 * for the call (nothing keeps a pointer to it); adv NULL or kind none: the
 * plain bayes.h training. */

/* Bayes by Backprop (sk_bayes_train_vi) on adversarial minibatches: every
 * minibatch is replaced, Madry style, by the points an L-inf PGD finds
 * against the current posterior: random start, adv->steps sign steps (kind
 * fgsm: one of 1.25 eps), eps warm-up as above; each step ascends the mean
 * CE over adv->eot fresh weight draws mu + sigma e (EOT; eot <= 1: the attack
 * runs on the mean weights). The KL term is unchanged. The attack's draws
 * derive from the step's noise key (same seed, same bits). Kinds pgd and
 * fgsm only (the others need a clean pass beside the adversarial one); the
 * FGSM guard is not applied (no rows are held out). vc->batch is replaced. */
int sk_robust_train_vi(struct sk_posterior *p, const struct sk_train_config *cfg, const struct sk_bayes_vi_config *vc,
                       const struct sk_robust_config *adv, const float *x, const int *y, int n);
/* sk_bayes_train_ensemble with every member trained by sk_robust_train(adv),
 * each its own run (own seed, own guard). Lakshminarayanan et al.'s own
 * variant is kind SK_ROBUST_FGSM_MIX: CE(x) + CE(x + eps sign grad_x CE),
 * eps 0.01 of the range. */
int sk_robust_train_ensemble(struct sk_posterior *p, int M, enum sk_init init, const struct sk_train_config *cfg,
                             const struct sk_robust_config *adv, const float *x, const int *y, int n);
/* sk_bayes_train with adversarial training: vi as sk_robust_train_vi; the
 * deterministic and mc-dropout networks, the warm start of sgld and laplace
 * and each ensemble member by sk_robust_train(adv) (cfg->train_net and
 * cfg->vi.batch are replaced). */
int sk_robust_train_bayes(struct sk_posterior *p, const struct sk_bayes_train_config *cfg,
                          const struct sk_robust_config *adv, const float *x, const int *y, int n);
/* The inner attack of VI adversarial training on a trained vi posterior:
 * PGD (adv->kind pgd, adv->steps) or FGSM-RS (fgsm) at radius adv->eps with
 * EOT over adv->eot weight draws per step, as at sk_robust_train_vi; n rows
 * of x into xadv (may not alias x). Stream SK_STREAM_ATTACK of seed. */
int sk_robust_vi_perturb(struct sk_posterior *p, const struct sk_robust_config *adv, const float *x, const int *y,
                         int n, uint64_t seed, float *xadv);

#ifdef __cplusplus
}
#endif
#endif
