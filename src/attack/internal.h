/* Shared internals of the attacks: the attack context, the loss callback
 * and the per-chunk attack functions. A chunk is at most cfg.batch rows; all
 * arrays are compact (row i of x0 is row i of bx, ...). Best-point state:
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
    float *last;         /* if not NULL [M,D]: gradient attacks write each row's final iterate
                          * (a second candidate for the verdict; set by the caller per chunk) */
};

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

/* chunk attacks (M <= batch) */
int sk_atk_pgd(struct sk_actx *a, enum sk_attack_kind kind, const float *x0, const int *y, const int *t,
               const int *rid, int M, float *bx, float *bl, bool *bs, float *mn);
int sk_atk_apgd(struct sk_actx *a, enum sk_attack_loss loss, const float *x0, const int *y, const int *t,
                const int *rid, int M, float *bx, float *bl, bool *bs, float *mn);
int sk_atk_apgd_t(struct sk_actx *a, const float *x0, const int *y, const int *rid, int M, float *bx, float *bl,
                  bool *bs, float *mn);
int sk_atk_cw(struct sk_actx *a, const float *x0, const int *y, const int *t, const int *rid, int M, float *bx,
              bool *bs, float *mn);
int sk_atk_deepfool(struct sk_actx *a, const float *x0, const int *y, const int *t, const int *rid, int M,
                    float *bx, bool *bs, float *mn);
int sk_atk_fmn(struct sk_actx *a, const float *x0, const int *y, const int *t, const int *rid, int M, float *bx,
               bool *bs, float *mn);
int sk_atk_square(struct sk_actx *a, const float *x0, const int *y, const int *t, const int *rid, int M,
                  float *bx, bool *bs, float *mn);
int sk_atk_sparse(struct sk_actx *a, const float *x0, const int *y, const int *t, const int *rid, int M,
                  float *bx, bool *bs, float *mn);
/* Shrink adversarial rows toward x0 along the segment by bisection (forward
 * calls only), keeping the smallest scale that is still adversarial. */
int sk_attack_refine_line(struct sk_actx *a, const float *x0, const int *y, const int *t, int M, float *bx,
                          bool *bs, float *mn, int iters);

#endif
