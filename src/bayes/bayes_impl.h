/* Internal helpers shared by the files of src/bayes. */
#ifndef SK_BAYES_IMPL_H
#define SK_BAYES_IMPL_H

#include "skeptic/bayes.h"
#include "skeptic/metrics.h"

#define SK_PI 3.14159265358979323846

float sk_softplusf(float r);
float sk_sigmoidf(float r);
bool sk_bayes_stochastic(const struct sk_posterior *p);
/* out[i], i < n: standard normals of stream `key` (Box–Muller in float, both
 * values of each pair used; thread-count independent). */
void sk_bayes_normals(uint64_t key, float *out, size_t n);
/* VI prediction with the local trick in the first layer (tests turn it off
 * to compare with plain weight sampling). */
extern bool sk_bayes_fast_vi_predict;
/* Refresh the vi sigma cache (no-op for other methods). */
int sk_bayes_prepare(struct sk_posterior *p);
/* Parameters of sample s of the draw keyed by `key`: a pointer into the
 * posterior (ensemble, sgld, deterministic) or into buf (n_params floats). */
const float *sk_bayes_draw(const struct sk_posterior *p, uint64_t key, int s, float *buf);
/* Log-probabilities node of the model with `params` (temperature applied). */
int sk_bayes_forward(const struct sk_posterior *p, struct sk_graph *g, const float *params, int x, uint64_t noise);
/* NLL of the mean over S samples of softmax(lp_s / T). lp [S,n,K]. */
double sk_bayes_tempered_nll(const float *lp, int S, int n, int K, const int *y, double T);
/* sk_bayes_train_ensemble with each member trained by net(net_ctx, ...)
 * (NULL: sk_train). */
int sk_bayes_train_ensemble_with(struct sk_posterior *p, int M, enum sk_init init, const struct sk_train_config *cfg,
                                 sk_bayes_net_fn net, void *net_ctx, const float *x, const int *y, int n);
/* Laplace probit predictive pbar [N,K]. */
int sk_bayes_laplace_probit(const struct sk_posterior *p, const float *x, int N, float *pbar);

/* Flipout (flipout.c): a workspace for minibatches of up to B rows. */
struct sk_flipout;
struct sk_flipout *sk_flipout_new(const struct sk_model *m, int B);
void sk_flipout_free(struct sk_flipout *f); /* NULL ok */
/* The data term of one Bayes-by-Backprop step with Flipout: the mean
 * cross-entropy of (x, y) [n rows] under W_n = mu + (sigma eps) (.) s_out,n s_in,n^T
 * for dense and conv weights, mu + sigma eps for every other parameter.
 * eps [P] is the minibatch's shared draw; the signs come from `key` (the
 * step's noise key: sk_flipout_sign), dropout masks from stream 2 of it.
 * Writes *loss, adds correct argmaxes to *correct (either may be NULL),
 * and overwrites dmu, dsig [P] with the gradients w.r.t. mu and sigma.
 * Training mode (dropout on, batch norm updates m's running statistics). */
int sk_flipout_loss_grad(struct sk_flipout *f, struct sk_model *m, const float *mu, const float *sig,
                         const float *eps, const float *x, const int *y, int n, uint64_t key, float *loss,
                         long *correct, float *dmu, float *dsig);
/* The sign of unit i (row * C + channel) on side 0 (input) or 1 (output) of layer `layer`. */
float sk_flipout_sign(uint64_t key, int layer, int side, size_t i);

#endif
