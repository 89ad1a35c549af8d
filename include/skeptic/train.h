/* skeptic/train.h — the training loop: seeded minibatches, validation split,
 * early stopping (best weights restored), per-epoch callback, non-finite loss
 * detection, and a state that can be checkpointed and resumed bit for bit.
 *
 * Randomness: with key k = sk_rng_new(seed).key, the validation split is a
 * permutation from stream SK_STREAM_SPLIT of k; epoch e visits the training
 * rows in the order of stream (SK_STREAM_ORDER of k, child e); optimiser
 * step t uses dropout key (SK_STREAM_DROPOUT of k, child t). Everything that
 * a run depends on is therefore (seed, epoch, step): a resumed run needs only
 * the weights, the optimiser state and struct sk_train_state.
 */
#ifndef SKEPTIC_TRAIN_H
#define SKEPTIC_TRAIN_H

#include <signal.h> /* sig_atomic_t */

#include "skeptic/model.h"
#include "skeptic/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sk_epoch_metrics {
    int epoch;           /* 0-based */
    double train_loss, train_acc;
    double val_loss, val_acc; /* NaN without a validation split */
    float lr;
    double seconds, samples_per_s;
    bool improved;       /* validation loss improved (best weights kept) */
};

struct sk_trainer;

/* Return nonzero to stop training after this epoch. */
typedef int (*sk_epoch_fn)(void *ctx, const struct sk_epoch_metrics *em);
/* Progress after every batch (for progress bars). */
typedef void (*sk_batch_fn)(void *ctx, int epoch, int batch, int n_batches, float loss, double samples_per_s);
/* A custom batch loss: record it on g (already reset) for the n rows xb/yb
 * and return the scalar loss node; set *logits to the node of class scores
 * (or -1) for the running accuracy. The default is softmax cross-entropy
 * (with the configured label smoothing) of the model in train mode. Hooks for
 * adversarial training, TRADES, IBP and variational inference go here. */
typedef int (*sk_loss_fn)(void *ctx, struct sk_trainer *t, struct sk_graph *g, const float *xb, const int *yb,
                          int n, uint64_t noise_key, int *logits);
/* Called after backward, before the optimiser step (e.g. to add a KL term to
 * the gradient). Nonzero status aborts training. */
typedef int (*sk_grad_fn)(void *ctx, struct sk_trainer *t, int n_batch);
/* Called after every optimiser step (st.step already counts it), before the
 * batch callback, e.g. to probe the training dynamics (sk_curvature_track).
 * Nonzero status aborts training. */
typedef int (*sk_step_fn)(void *ctx, struct sk_trainer *t);
/* Called every checkpoint_every optimiser steps, and at the end of each epoch. */
typedef int (*sk_checkpoint_fn)(void *ctx, struct sk_trainer *t);

/* ---- the step hook ----
 * A method whose parameters are not (only) the model's, or whose update is
 * not an optimiser step, plugs into the same loop, which keeps shuffling,
 * batching, the non-finite guard, checkpoints, resume and the callbacks:
 * Bayes by Backprop steps [mu; rho] (2P floats) with its own forward and a KL
 * term; SGLD replaces the optimiser step by a Langevin step and keeps
 * samples. Everything a hook carries from step to step must either be
 * derived from (seed, epoch, step) or be listed in `state` (tensors) or kept
 * in t->st.hook_count, so that a resumed run is bitwise identical. */

/* The loss and gradient of one minibatch: n rows xb / yb (the hook may
 * overwrite xb, e.g. with adversarial rows or its input transform) into
 * t->grads (t->n_params floats, zeroed by the trainer). Writes the mean loss
 * to *loss (the trainer stops on a non-finite one) and adds the number of
 * correct argmaxes to *correct. noise_key is the step's dropout key. Nonzero
 * status aborts training. */
typedef int (*sk_step_grad_fn)(void *ctx, struct sk_trainer *t, float *xb, const int *yb, int n, uint64_t noise_key,
                               double *loss, long *correct);
/* The update of step t->st.step (0-based; epoch t->st.epoch) from t->grads to
 * t->params. Nonzero status aborts training with the parameters as they are. */
typedef int (*sk_step_update_fn)(void *ctx, struct sk_trainer *t);
/* Called before every checkpoint: bring the model's weights up to date with
 * the flat buffer (a checkpoint is also a model file). */
typedef int (*sk_step_sync_fn)(void *ctx, struct sk_trainer *t);

/* A tensor of extra state that checkpoints carry ("skeptic.<method>.<what>"). */
struct sk_train_tensor {
    const char *name;
    float *data;         /* borrowed; restored in place by sk_checkpoint_load */
    size_t n;
};
enum { SK_STEP_MAX_STATE = 4 };

struct sk_step_hook {
    /* The flat buffer the loop steps and its gradient (both borrowed, n_params
     * floats); NULL: the model's params and grads. A buffer of its own rules
     * out a validation split (which evaluates the model). */
    float *params, *grads;
    size_t n_params;
    /* NULL: cfg.loss (or softmax cross-entropy) on the graph, backward, cfg.on_grad. */
    sk_step_grad_fn grad;
    /* NULL: the optimiser of cfg.opt on (params, grads). */
    sk_step_update_fn update;
    sk_step_sync_fn sync;  /* may be NULL */
    struct sk_train_tensor state[SK_STEP_MAX_STATE];
    int n_state;
    void *ctx;             /* passed to grad, update and sync */
};

struct sk_train_config {
    int epochs;          /* default 10 */
    int batch;           /* default 128 */
    float val_split;     /* fraction held out for validation, 0 = none */
    int patience;        /* early stopping on val loss; 0 = off */
    uint64_t seed;
    float label_smoothing;
    struct sk_optim_config opt;
    sk_epoch_fn on_epoch;
    sk_batch_fn on_batch;
    sk_loss_fn loss;
    sk_grad_fn on_grad;
    sk_checkpoint_fn on_checkpoint;
    sk_step_fn on_step;
    void *step_ctx;      /* passed to on_step (NULL: ctx) */
    long checkpoint_every;
    void *ctx;           /* passed to every callback */
    const struct sk_step_hook *step; /* borrowed; NULL: plain training of the model */
    /* A checkpoint to continue from (sk_checkpoint_load) before the first
     * step: honoured by sk_train, sk_bayes_train_vi and sk_bayes_train_sgld.
     * NULL: start afresh. */
    const char *resume;
    /* Rows per forward and backward inside a batch (0 = the whole batch):
     * the batch's gradient is accumulated chunk by chunk, each weighted by its
     * rows, so that full-batch gradient descent (batch = all training rows)
     * fits in memory. Chunk k of step t draws its dropout masks from child k
     * of the step's key; batch norm in train mode normalises per chunk. */
    int micro_batch;
    /* Stop request (borrowed; NULL: none), e.g. set by a SIGINT handler:
     * read before every step. Once *stop is nonzero, sk_trainer_run returns
     * SK_OK at the next step boundary without finishing the epoch: no epoch
     * callback, no checkpoint, no best weights restored; t->st names the
     * next batch to run (st.epoch, st.batch, st.step) and the model holds
     * the weights of the last step (a step hook's sync has run). The caller
     * tells this end from a finished run by *stop. */
    volatile sig_atomic_t *stop;
    /* Data-parallel over the processes of the job (skeptic/dist.h; N =
     * sk_dist_size() > 1): every batch of nb rows is cut into chunks of
     * ceil(batch / N) rows exactly as micro_batch = ceil(batch / N) would cut
     * it, rank r computes the gradient of chunk r (none if the batch has
     * fewer chunks), and the gradients and loss sums are added in rank order
     * (sk_dist_allreduce_*), so every rank takes the same optimiser step.
     * Equality: the weights after any number of steps are bitwise those of
     * one process with micro_batch = ceil(batch / N) (same seed, data and
     * thread count per process), whose chunks are summed in the same order;
     * against one process without micro_batch they differ by the float
     * reassociation of that sum (and, with dropout, by the chunks' masks).
     * Needs the model's own loop (no cfg.step->grad), no batch norm (each
     * rank would update running statistics from its chunk alone) and
     * micro_batch 0. Every rank holds the whole data and validates alike;
     * callbacks run on every rank (write files on rank 0 only). With one
     * process it changes nothing. */
    bool data_parallel;
};
struct sk_train_config sk_train_defaults(void);
/* SAM and ASAM (cfg.opt.sam_rho > 0, skeptic/optim.h): every step takes the
 * batch's gradient g at w (loss, accuracy and the non-finite guard come from
 * this pass), moves to w + e (sk_optim_sam_perturb), takes the gradient of the
 * same rows with the same dropout masks there, returns to w bit for bit and
 * updates with that second gradient. Batch-norm running statistics keep the
 * first pass's update only. Works with any loss hook and step hook that
 * computes the gradient; the state is (seed, step), so checkpoints need
 * nothing more. */

/* Everything beyond weights and optimiser moments that a resume needs. */
struct sk_train_state {
    int epoch;           /* current epoch */
    int batch;           /* next batch within the epoch */
    long step;           /* optimiser steps taken */
    double ep_loss_sum;  /* running sums of the current epoch */
    long ep_correct, ep_seen;
    double ep_seconds;
    double best_val;     /* best validation loss (INFINITY before any) */
    int best_epoch, bad_epochs;
    bool done;
    long hook_count;     /* a count the step hook keeps (SGLD: samples kept) */
};

struct sk_trainer {
    struct sk_model *model;        /* borrowed */
    struct sk_train_config cfg;
    struct sk_optim *opt;          /* owned; over the n_params floats of params */
    float *params, *grads;         /* borrowed: the model's, or the step hook's flat buffer */
    size_t n_params;
    struct sk_train_state st;
    const float *x;                /* borrowed training data, n x in_dim */
    const int *y;
    int n;
    int n_train, n_val;
    int *train_idx, *val_idx;      /* owned */
    float *best_params, *best_buffers; /* owned; zero until st.best_epoch >= 0 */
    struct sk_graph *g;            /* owned */
    float *xb;                     /* owned batch buffers */
    int *yb;
    float *vx;                     /* owned copy of the validation rows */
    int *vy;
    struct sk_epoch_metrics last;  /* metrics of the last finished epoch */
    const int *batch_rows;         /* inside the loss hook: the row of x of each example of the batch */
    float *sam_w, *sam_buffers;    /* owned; SAM's copy of params and of the model's buffers (NULL without) */
    float *chunk_sum;              /* owned; the gradient of the chunks so far (micro_batch), else NULL */
};

/* Prepare training of m on n rows. NULL + sk_last_error() on bad config. */
struct sk_trainer *sk_trainer_new(struct sk_model *m, const struct sk_train_config *cfg, const float *x,
                                  const int *y, int n);
void sk_trainer_free(struct sk_trainer *t); /* NULL ok */
/* Run from the current state to the end (or early stop). On a non-finite
 * loss returns SK_ENONFINITE with the weights of the last good step. At the
 * end, if a validation split was used, the best weights are restored. */
int sk_trainer_run(struct sk_trainer *t);

/* Convenience: new, resume from cfg->resume (if set), run, free. */
int sk_train(struct sk_model *m, const struct sk_train_config *cfg, const float *x, const int *y, int n);

/* ---- checkpoints ----
 * A checkpoint is a model file (skeptic/model_file.h) that also holds the
 * optimiser moments ("skeptic.optim.m", "skeptic.optim.v", of the flat
 * buffer the loop steps), the best weights so far ("skeptic.best.params",
 * "skeptic.best.buffers"), the step hook's state tensors and, in
 * __metadata__, the optimiser step count and struct sk_train_state
 * ("skeptic.state": numbers printed as strings with 17 significant digits,
 * so a resume is exact) next to metadata_json (e.g. the command line that
 * started the run). Written atomically, so a run killed while writing leaves
 * the previous checkpoint intact. */
int sk_checkpoint_save(const char *path, const struct sk_trainer *t, const char *metadata_json);
/* Restore a checkpoint into a trainer built with the same model spec, data
 * and configuration (and step hook): weights, buffers, optimiser state,
 * train state, best weights, the hook's state tensors. *metadata_json_out
 * (may be NULL) receives the __metadata__ text.
 * Another configuration (seed, batch size, rows, optimiser) is SK_EINVAL.
 * Every state field is checked before anything is restored: a number that
 * is missing, NaN, not an integer where one is due, or outside its range
 * for this run (epoch in [0, epochs], batch in [0, batches per epoch],
 * counts >= 0, ...) is SK_EFORMAT naming the file and the field, found
 * before anything of t is overwritten. */
int sk_checkpoint_load(const char *path, struct sk_trainer *t, char **metadata_json_out);

#ifdef __cplusplus
}
#endif
#endif
