/* Shared internals of the attacks. Dependencies run one way:
 *
 *   attack.c (evaluation, stages, verdict)
 *     -> table.c (one row per attack: name, norms, defaults, kind, run)
 *       -> gradient.c, minnorm.c, search.c (the attacks on one chunk)
 *         -> pgd.c (the one projected-gradient ascent; also adversarial training's)
 *           -> common.c (losses, norms, projections, row keys, scratch memory)
 *
 * A chunk is at most cfg.batch rows; all its arrays are compact (row i of
 * x0 is row i of bx, ...). Best-point state of a chunk:
 *   bx [M,D]  best point so far (init x0)
 *   bl [M]    its loss (init -INFINITY; only compared within one attack)
 *   bs [M]    an adversarial point was found (bx is then the first one);
 *             always false on a stochastic classifier (a->stoch)
 *   mn [M]    norm of the smallest adversarial found (INFINITY if none)
 */
#ifndef SK_ATTACK_INTERNAL_H
#define SK_ATTACK_INTERNAL_H

#include "skeptic/attack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sk_actx {
    struct sk_classifier *c;
    struct sk_attack_config cfg; /* defaults resolved */
    int D, K;
    uint64_t key;        /* stream SK_STREAM_ATTACK of cfg.seed */
    int img_c, img_h, img_w;
    bool t_loss_only;    /* targets steer the loss only; success = misclassified (apgd-t) */
    int stage;           /* index of the current stage (randomness tag) */
    bool stoch;          /* stochastic classifier: no row is locked or stopped on a noisy success;
                          * bx keeps the iterate of the best averaged objective, bs stays false
                          * (the caller's verdict decides) */
};

/* One chunk of M rows (M <= cfg.batch), compact; see the state above. */
struct sk_attack_chunk {
    const float *x0;     /* [M,D] clean rows */
    const int *y;        /* [M] labels */
    const int *t;        /* [M] targets, or NULL (untargeted) */
    const int *rid;      /* [M] row ids: the random streams of the rows */
    int M;
    float *bx;           /* [M,D] */
    float *bl;           /* [M] */
    bool *bs;            /* [M] */
    float *mn;           /* [M] */
    float *last;         /* [M,D] or NULL: gradient attacks write each row's final iterate
                          * (a second candidate for the verdict of a stochastic classifier) */
};

/* ---- the attack table (table.c) ---- */

enum sk_attack_family {
    SK_ATK_GRADIENT,     /* budgeted gradient ascent: best loss tracked, final iterate kept too */
    SK_ATK_MINNORM,      /* unbounded search for the smallest adversarial; eps judges the result */
    SK_ATK_SEARCH,       /* score-based random search: queries, no gradients, no steps */
    SK_ATK_COMPOSITE,    /* stages of other attacks (the suite) */
};

struct sk_attack_spec {
    enum sk_attack_kind kind;
    const char *name;
    const char *alias;   /* another accepted name, or NULL */
    unsigned norms;      /* bit 1 << SK_NORM_* per supported norm */
    const char *norm_hint; /* what to use instead, for the message */
    enum sk_attack_family family;
    int steps;           /* default steps */
    float step_rel;      /* default step size = step_rel * eps / steps (0: none) */
    float step_abs;      /* ... else this absolute step size (0: none) */
    float p_init;        /* default cfg.p_init */
    int min_classes, min_classes_targeted; /* the DLR loss needs a third (fourth) class */
    bool own_targets;    /* chooses its targets: cfg.target must be none */
    int n_stages;        /* composite: its stages, run in order on the points left; */
    const enum sk_attack_kind *stages; /* a stage that does not support the norm is left out */
    int (*run)(struct sk_actx *a, const struct sk_attack_chunk *ch); /* one chunk; NULL for composites */
};

/* The row of a kind, or NULL for an unknown kind. */
const struct sk_attack_spec *sk_attack_spec(enum sk_attack_kind k);
/* Fill the defaults (steps, step size, ...) that cfg leaves at 0 for kind. */
void sk_attack_resolve(struct sk_attack_config *cfg, enum sk_attack_kind kind);

/* ---- shared helpers (common.c) ---- */

/* loss callback context: the attack ascends this loss */
struct sk_lctx {
    enum sk_attack_loss loss; /* CE, CW, DLR */
    const int *y, *t;    /* t may be NULL */
    const float *cw_c;   /* CW attack: per-row constant c (hinge of the margin) */
    float kappa;
};
void sk_attack_lossfn(void *ctx, const float *logp, int N, int K, float *loss, float *dlogp);

bool sk_attack_is_adv(const struct sk_actx *a, const float *lp, int y, int t);
int sk_attack_argmax(const float *r, int K);
/* key of the random stream for (tag, restart, row) */
uint64_t sk_attack_rowkey(const struct sk_actx *a, int tag, int restart, int row);
/* norm of one row difference */
double sk_attack_rownorm(const struct sk_actx *a, enum sk_norm p, const float *xa, const float *x0);
void sk_attack_proj_rows(const struct sk_actx *a, float eps, const float *x0, float *x, int M);
/* The attacks' projection (attack.h, sk_attack_project) with the L0 pixel groups of C channels;
 * blo/bhi ([D] each) replace the box [lo, hi] per feature, NULL: the scalar box. */
void sk_attack_project_chunk(enum sk_norm p, float eps, float lo, float hi, const float *blo, const float *bhi,
                             const float *x0, float *x, int M, int D, int C);
/* Feature j's box of the attack's config: [box_lo[j], box_hi[j]], else [clip_min, clip_max]. */
static inline float sk_attack_lo(const struct sk_attack_config *c, int j)
{
    return c->box_lo ? c->box_lo[j] : c->clip_min;
}
static inline float sk_attack_hi(const struct sk_attack_config *c, int j)
{
    return c->box_hi ? c->box_hi[j] : c->clip_max;
}

/* Scratch memory of one run in one allocation. A layout function takes
 * every buffer with sk_attack_take; called first on a zeroed sk_attack_mem it only
 * adds up the sizes (and returns NULL), then sk_attack_mem_alloc allocates the
 * total (uninitialised), and the second call of the same layout hands out the
 * pointers (64-byte aligned). The owner frees base (sk_free). */
struct sk_attack_mem {
    char *base;
    size_t used;
};
void *sk_attack_take(struct sk_attack_mem *m, size_t bytes);
int sk_attack_mem_alloc(struct sk_attack_mem *m); /* SK_OK or SK_ENOMEM (with a message) */

/* ---- the one projected-gradient ascent (pgd.c) ----
 *
 *   for s = 0 .. steps:  dx = grad L(x)   (s = steps: forward only, when tracking)
 *                        track(x)         (from s = 1, or s = 0 when the start counts)
 *                        d = dx, or MI-FGSM's g = mu g + dx / |dx|_1
 *                        x = P(x + alpha * dir(d)),  dir = sign (Linf) | d / |d|_2 (L2)
 *
 * The gradient comes from an oracle: the classifier seam for the attacks
 * (gradient.c), a model's graph for adversarial training (pgd.c). */

/* The constraint set of P: the ball |x - x0|_p <= eps and the box [lo, hi].
 * Attacks: the box first, then the ball (sk_attack_project_chunk: the ball wins for
 * an x0 outside the box). box_last (adversarial training, Linf only): the
 * ball first, then the box if any (the box wins: the model is trained on
 * valid inputs only), eps INFINITY for no projection onto the ball. */
struct sk_attack_pgd_set {
    enum sk_norm norm;
    float eps;
    const float *x0;     /* [M,D] */
    int D, C;            /* C: channels (L0 pixel groups) */
    float lo, hi;
    bool box;            /* box_last only: clamp to [lo, hi] at all */
    bool box_last;
    const float *blo, *bhi; /* [D] per-feature box instead of [lo, hi], or NULL */
};
void sk_attack_pgd_project(const struct sk_attack_pgd_set *s, float *x, int M);

struct sk_attack_pgd_oracle {
    /* dx [M,D] = input gradient of the ascended loss at x (step s); need_grad
     * false (the last evaluation, only when tracking): the loss alone. */
    int (*eval)(void *ctx, const float *x, int s, bool need_grad, float *dx);
    /* NULL: the last iterate is the result and the last evaluation is skipped */
    void (*track)(void *ctx, const float *x);
    void *ctx;
};

struct sk_attack_pgd_run {
    struct sk_attack_pgd_set set;
    int M, steps;
    const float *alpha;  /* [M] step size per row */
    bool track_start;    /* the start counts as an iterate (a random start) */
    float momentum;      /* MI-FGSM decay (used when g is not NULL) */
    float *x;            /* [M,D] in: the start (projected); out: the last iterate */
    float *dx;           /* [M,D] scratch for the gradient */
    float *g;            /* [M,D] MI-FGSM's accumulated direction, or NULL (plain PGD) */
};
int sk_attack_pgd_ascent(const struct sk_attack_pgd_run *r, const struct sk_attack_pgd_oracle *o);
/* x += alpha_i dir(g_i) per row: sign(g) (Linf), g / |g|_2 (L2; rows with g = 0 stay) */
void sk_attack_pgd_ascend(enum sk_norm p, float *x, const float *g, const float *alpha, int M, int D);

/* ---- chunk attacks (table rows' run functions) ---- */
int sk_attack_run_fgsm(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_pgd(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_mifgsm(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_apgd_ce(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_apgd_dlr(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_apgd_t(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_cw(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_deepfool(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_fmn(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_square(struct sk_actx *a, const struct sk_attack_chunk *ch);
int sk_attack_run_sparse(struct sk_actx *a, const struct sk_attack_chunk *ch);

#endif
