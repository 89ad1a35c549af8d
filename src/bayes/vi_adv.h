/* Internal: adversarial training of a variational posterior (vi_adv.c),
 * called from the Bayes-by-Backprop loop of vi.c. */
#ifndef SK_VI_ADV_H
#define SK_VI_ADV_H

#include "skeptic/bayes.h"
#include "skeptic/robust.h"

struct sk_bayes_vi_adv;

/* Check adv for VI (kinds pgd and fgsm) and allocate the attack's state for
 * minibatches of up to `batch` rows of model m (borrowed; its spec only).
 * SK_OK and *out, or an error naming the bad setting. */
int sk_bayes_vi_adv_new(struct sk_bayes_vi_adv **out, struct sk_model *m, const struct sk_robust_config *adv,
                        int batch);
void sk_bayes_vi_adv_free(struct sk_bayes_vi_adv *v); /* NULL ok */
/* Replace the n rows of xb (labels yb) by adversarial rows against the
 * posterior q = N(mu, softplus(rho)^2) (mu, rho: P floats each). progress:
 * training progress in epochs (for the eps warm-up); key: the step's noise
 * key (every draw and the random start derive from it). */
int sk_bayes_vi_adv_batch(struct sk_bayes_vi_adv *v, const float *mu, const float *rho, float *xb, const int *yb, int n,
                          double progress, uint64_t key);

#endif
