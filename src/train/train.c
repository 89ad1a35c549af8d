/* The training loop: shuffling, batching, the non-finite guard, validation
 * and early stopping, checkpoints and progress, for the model and for every
 * method that plugs in through the step hook. */
#include "skeptic/train.h"

#include <math.h>

#include "skeptic/dist.h"
#include <string.h>

struct sk_train_config sk_train_defaults(void)
{
    struct sk_train_config c = { 0 };
    c.epochs = 10;
    c.batch = 128;
    c.seed = 1;
    c.opt = sk_optim_defaults(SK_OPT_MOMENTUM);
    return c;
}

void sk_trainer_free(struct sk_trainer *t)
{
    if (!t) return;
    sk_optim_free(t->opt);
    sk_free(t->train_idx);
    sk_free(t->val_idx);
    sk_free(t->best_params);
    sk_free(t->best_buffers);
    sk_graph_free(t->g);
    sk_free(t->xb);
    sk_free(t->yb);
    sk_free(t->vx);
    sk_free(t->vy);
    sk_free(t->sam_w);
    sk_free(t->sam_buffers);
    sk_free(t->chunk_sum);
    sk_free(t);
}

struct sk_trainer *sk_trainer_new(struct sk_model *m, const struct sk_train_config *cfg, const float *x,
                                  const int *y, int n)
{
    const struct sk_step_hook *h = cfg->step;
    if (cfg->epochs < 0 || cfg->batch < 1) {
        sk_error(SK_EINVAL, "training needs epochs >= 0 and batch >= 1 (got %d, %d)", cfg->epochs, cfg->batch);
        return NULL;
    }
    if (!(cfg->val_split >= 0 && cfg->val_split < 1)) {
        sk_error(SK_EINVAL, "validation split %g must be in [0,1)", cfg->val_split);
        return NULL;
    }
    if (!(cfg->opt.lr > 0) || !isfinite(cfg->opt.lr)) {
        sk_error(SK_EINVAL, "learning rate %g must be positive", cfg->opt.lr);
        return NULL;
    }
    if (!(cfg->opt.sam_rho >= 0 && isfinite(cfg->opt.sam_rho)) || !(cfg->opt.sam_eta >= 0 && isfinite(cfg->opt.sam_eta)) ||
        !(cfg->opt.grad_noise >= 0 && isfinite(cfg->opt.grad_noise)) || cfg->micro_batch < 0) {
        sk_error(SK_EINVAL, "cfg.opt.sam_rho (%g), cfg.opt.sam_eta (%g) and cfg.opt.grad_noise (%g) must be finite and "
                 ">= 0, cfg.micro_batch (%d) >= 0", cfg->opt.sam_rho, cfg->opt.sam_eta, cfg->opt.grad_noise,
                 cfg->micro_batch);
        return NULL;
    }
    if (h && h->params && (!h->grads || h->n_params < 1 || cfg->val_split > 0 || h->n_state < 0 ||
                           h->n_state > SK_STEP_MAX_STATE)) {
        sk_error(SK_EINVAL, "a step hook with its own parameters needs their gradient buffer, a length >= 1, at most "
                 "%d state tensors and no validation split (cfg.val_split %g)", SK_STEP_MAX_STATE, cfg->val_split);
        return NULL;
    }
    if (cfg->data_parallel && sk_dist_size() > 1 &&
        ((h && h->grad) || m->n_buffers > 0 || cfg->micro_batch > 0)) {
        sk_error(SK_EINVAL, "cfg.data_parallel over %d processes needs the model's own gradient (no step hook), a "
                 "model without batch norm (running statistics: %zu buffers) and cfg.micro_batch 0 (got %d)",
                 sk_dist_size(), m->n_buffers, cfg->micro_batch);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->n_classes) {
            sk_error(SK_EINVAL, "label %d of row %d is outside the model's %d classes", y[i], i, m->n_classes);
            return NULL;
        }
    struct sk_trainer *t = sk_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->model = m;
    t->cfg = *cfg;
    t->x = x;
    t->y = y;
    t->n = n;
    t->params = h && h->params ? h->params : m->params;
    t->grads = h && h->params ? h->grads : m->grads;
    t->n_params = h && h->params ? h->n_params : m->n_params;
    t->n_val = (int)(cfg->val_split * n);
    t->n_train = n - t->n_val;
    if (t->n_train < 1) {
        sk_error(SK_EINVAL, "no training rows left after a validation split of %g of %d rows", cfg->val_split, n);
        sk_free(t);
        return NULL;
    }
    long per_epoch = (t->n_train + cfg->batch - 1) / cfg->batch;
    if (t->cfg.opt.total_steps <= 0) t->cfg.opt.total_steps = per_epoch * (cfg->epochs > 0 ? cfg->epochs : 1);
    t->cfg.opt.noise_seed = cfg->seed;
    t->opt = sk_optim_new(&t->cfg.opt, t->n_params);
    /* micro-batches: each chunk's gradient alone, then added to the sum of the
     * earlier ones, the order in which data-parallel ranks are summed */
    if (cfg->micro_batch > 0 && cfg->micro_batch < cfg->batch && !(t->chunk_sum = sk_malloc(sizeof(float) * t->n_params))) {
        sk_trainer_free(t);
        return NULL;
    }
    if (cfg->opt.sam_rho > 0 && (!(t->sam_w = sk_malloc(sizeof(float) * t->n_params)) ||
                                 !(t->sam_buffers = sk_malloc(sizeof(float) * (m->n_buffers + 1))))) {
        sk_trainer_free(t);
        return NULL;
    }
    t->train_idx = sk_malloc(sizeof(int) * (size_t)n);
    t->val_idx = sk_malloc(sizeof(int) * (size_t)(t->n_val + 1));
    t->g = sk_graph_new();
    t->xb = sk_malloc(sizeof(float) * (size_t)cfg->batch * m->in_dim);
    t->yb = sk_malloc(sizeof(int) * (size_t)cfg->batch);
    t->vx = sk_malloc(sizeof(float) * (size_t)(t->n_val + 1) * m->in_dim);
    t->vy = sk_malloc(sizeof(int) * (size_t)(t->n_val + 1));
    /* zeroed: a checkpoint before the first improvement writes them */
    t->best_params = sk_calloc(m->n_params + 1, sizeof(float));
    t->best_buffers = sk_calloc(m->n_buffers + 1, sizeof(float));
    if (!t->opt || !t->train_idx || !t->val_idx || !t->g || !t->xb || !t->yb || !t->vx || !t->vy ||
        !t->best_params || !t->best_buffers) {
        sk_trainer_free(t);
        return NULL;
    }
    /* validation split: the first n_val rows of a seeded permutation */
    uint64_t key = sk_rng_new(cfg->seed).key;
    if (t->n_val > 0) {
        struct sk_rng r = sk_rng_derive(key, SK_STREAM_SPLIT);
        for (int i = 0; i < n; i++) t->train_idx[i] = i;
        sk_rng_shuffle(&r, t->train_idx, n);
        memcpy(t->val_idx, t->train_idx, sizeof(int) * (size_t)t->n_val);
        memmove(t->train_idx, t->train_idx + t->n_val, sizeof(int) * (size_t)t->n_train);
        for (int i = 0; i < t->n_val; i++) {
            memcpy(t->vx + (size_t)i * m->in_dim, x + (size_t)t->val_idx[i] * m->in_dim, sizeof(float) * m->in_dim);
            t->vy[i] = y[t->val_idx[i]];
        }
    } else {
        for (int i = 0; i < n; i++) t->train_idx[i] = i;
    }
    t->st.best_val = INFINITY;
    t->st.best_epoch = -1;
    return t;
}

static void epoch_order(const struct sk_trainer *t, int epoch, int *order)
{
    uint64_t key = sk_rng_derive(sk_rng_new(t->cfg.seed).key, SK_STREAM_ORDER).key;
    struct sk_rng r = sk_rng_derive(key, (uint64_t)epoch);
    memcpy(order, t->train_idx, sizeof(int) * (size_t)t->n_train);
    sk_rng_shuffle(&r, order, t->n_train);
}

/* Rows order[0..nb) of the data into the batch buffers, and a zero gradient.
 * Gathering random rows is memory-latency bound: both are split over the
 * threads. */
static void gather_batch(struct sk_trainer *t, const int *order, int nb)
{
    size_t D = (size_t)t->model->in_dim;
#pragma omp parallel for schedule(static) if ((size_t)nb * D > 65536)
    for (int i = 0; i < nb; i++) {
        int r = order[i];
        memcpy(t->xb + (size_t)i * D, t->x + (size_t)r * D, sizeof(float) * D);
        t->yb[i] = t->y[r];
    }
    size_t np = t->n_params, chunk = 16384, nch = (np + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (np > 65536)
    for (size_t k = 0; k < nch; k++) {
        size_t a = k * chunk, b = a + chunk < np ? a + chunk : np;
        memset(t->grads + a, 0, sizeof(float) * (b - a));
    }
}

/* Correct argmaxes of the class scores z [n,K]. */
static long count_correct(const float *z, const int *y, int n, int K)
{
    long c = 0;
    for (int i = 0; i < n; i++) {
        int b = 0;
        for (int k = 1; k < K; k++)
            if (z[(size_t)i * K + k] > z[(size_t)i * K + b]) b = k;
        c += b == y[i];
    }
    return c;
}

/* The loss of cfg.loss (or softmax cross-entropy of the model in train
 * mode, with the configured label smoothing) on the graph, whose backward
 * fills the model's gradient; then cfg.on_grad. */
static int graph_grad(struct sk_trainer *t, int nb, uint64_t nk, double *loss, long *correct)
{
    const struct sk_train_config *c = &t->cfg;
    struct sk_model *m = t->model;
    struct sk_graph *g = t->g;
    /* data-parallel: the chunks micro_batch = ceil(batch / N) would make, chunk r on rank r */
    int P = c->data_parallel ? sk_dist_size() : 1, rank = P > 1 ? sk_dist_rank() : 0;
    int cut = P > 1 ? (c->batch + P - 1) / P : c->micro_batch;
    int mb = cut > 0 && cut < nb ? cut : nb;
    const int *rows = t->batch_rows;
    double sum = 0;
    long right = 0;
    int rc = SK_OK;
    /* one chunk (the usual case) is the plain batch: no seed, no key change */
    for (int lo = P > 1 ? rank * mb : 0; lo < nb && !rc; lo += P > 1 ? nb : mb) {
        int nc = nb - lo < mb ? nb - lo : mb;
        float *xc = t->xb + (size_t)lo * m->in_dim;
        const int *yc = t->yb + lo;
        uint64_t ck = mb == nb ? nk : sk_rng_derive(nk, (uint64_t)(lo / mb)).key;
        sk_graph_reset(g);
        t->batch_rows = rows + lo;
        if (lo > 0 && P == 1) {
            /* this chunk's gradient alone, added to the earlier chunks' below */
            memcpy(t->chunk_sum, t->grads, sizeof(float) * t->n_params);
            memset(t->grads, 0, sizeof(float) * t->n_params);
        }
        int logits = -1, L;
        if (c->loss) {
            L = c->loss(c->ctx, t, g, xc, yc, nc, ck, &logits);
        } else {
            int shape[2] = { nc, m->in_dim };
            logits = sk_model_forward(m, g, sk_graph_input(g, xc, 2, shape, false), SK_MODE_TRAIN, ck);
            L = sk_loss_cross_entropy(g, logits, yc, c->label_smoothing);
        }
        if (L < 0) {
            rc = L;
            break;
        }
        double lc = sk_graph_value(g, L)[0];
        sum += lc * nc;
        if (!isfinite(lc)) break; /* the caller stops with its message */
        float seed = (float)nc / (float)nb;
        rc = sk_graph_backward(g, L, mb == nb ? NULL : &seed);
        if (!rc && logits >= 0) right += count_correct(sk_graph_value(g, logits), yc, nc, m->n_classes);
        if (!rc && lo > 0 && P == 1)
            for (size_t i = 0; i < t->n_params; i++) t->grads[i] = t->chunk_sum[i] + t->grads[i];
    }
    t->batch_rows = rows;
    if (!rc && P > 1) {
        /* every rank gets here (a failing rank ends the job): the same sums everywhere */
        double sc[2] = { sum, (double)right };
        rc = sk_dist_allreduce_sum_f32(t->grads, t->n_params);
        if (!rc) rc = sk_dist_allreduce_sum_f64(sc, 2);
        sum = sc[0];
        right = (long)sc[1];
    }
    *correct += right;
    *loss = sum / nb; /* exact for one chunk: float loss times nb fits a double */
    if (rc || !isfinite(*loss)) return rc;
    return c->on_grad ? c->on_grad(c->ctx, t, nb) : SK_OK;
}

/* SAM's second pass: the gradient of the same rows at w + e (same dropout
 * masks), then w and the model's buffers back bit for bit. */
static int sam_pass(struct sk_trainer *t, const int *rows, int nb, uint64_t nk)
{
    const struct sk_step_hook *h = t->cfg.step;
    struct sk_model *m = t->model;
    memcpy(t->sam_w, t->params, sizeof(float) * t->n_params);
    memcpy(t->sam_buffers, m->buffers, sizeof(float) * m->n_buffers);
    int rc = sk_optim_sam_perturb(&t->opt->cfg, t->params, t->grads, t->n_params, NULL);
    if (rc == SK_ENONFINITE)
        return sk_error(SK_ENONFINITE, "gradient became non-finite at epoch %d, batch %d (step %ld); the weights of "
                        "the last good step are kept. Lower the learning rate (cfg.opt.lr) or clip gradients.",
                        t->st.epoch + 1, t->st.batch, t->st.step);
    if (rc) return rc;
    gather_batch(t, rows, nb); /* a loss hook may have rewritten the rows */
    t->batch_rows = rows;
    double loss = NAN;
    long correct = 0;
    rc = h && h->grad ? h->grad(h->ctx, t, t->xb, t->yb, nb, nk, &loss, &correct)
                      : graph_grad(t, nb, nk, &loss, &correct);
    memcpy(t->params, t->sam_w, sizeof(float) * t->n_params);
    memcpy(m->buffers, t->sam_buffers, sizeof(float) * m->n_buffers);
    if (!rc && !isfinite(loss))
        rc = sk_error(SK_ENONFINITE, "the SAM pass's loss became %g at epoch %d, batch %d (step %ld); the weights of "
                      "the last good step are kept. Lower cfg.opt.sam_rho or the learning rate (cfg.opt.lr).",
                      loss, t->st.epoch + 1, t->st.batch, t->st.step);
    return rc;
}

/* One minibatch: gradient, guard, update, running sums, progress callback. */
static int train_step(struct sk_trainer *t, const int *rows, int nb, int n_batches, uint64_t drop_key, double t0)
{
    const struct sk_train_config *c = &t->cfg;
    const struct sk_step_hook *h = c->step;
    struct sk_train_state *st = &t->st;
    gather_batch(t, rows, nb);
    t->batch_rows = rows;
    uint64_t nk = sk_rng_derive(drop_key, (uint64_t)st->step).key;
    double loss = NAN;
    long correct = 0;
    int rc = h && h->grad ? h->grad(h->ctx, t, t->xb, t->yb, nb, nk, &loss, &correct)
                          : graph_grad(t, nb, nk, &loss, &correct);
    if (rc) return rc;
    if (!isfinite(loss))
        return sk_error(SK_ENONFINITE,
                        "training loss became %g at epoch %d, batch %d (step %ld); the weights of the last good "
                        "step are kept. Lower the learning rate (cfg.opt.lr) or clip gradients.",
                        loss, st->epoch + 1, st->batch, st->step);
    if (t->sam_w && (rc = sam_pass(t, rows, nb, nk))) return rc;
    if (h && h->update) {
        if ((rc = h->update(h->ctx, t))) return rc;
    } else if (sk_optim_step(t->opt, t->params, t->grads)) {
        return sk_error(SK_ENONFINITE,
                        "gradient became non-finite at epoch %d, batch %d (step %ld); the weights of the last "
                        "good step are kept. Lower the learning rate (cfg.opt.lr) or clip gradients.",
                        st->epoch + 1, st->batch, st->step);
    }
    st->step++;
    st->ep_loss_sum += loss * nb;
    st->ep_seen += nb;
    st->ep_correct += correct;
    if (c->on_step && (rc = c->on_step(c->step_ctx ? c->step_ctx : c->ctx, t))) return rc;
    double el = st->ep_seconds + (sk_now() - t0);
    if (c->on_batch) c->on_batch(c->ctx, st->epoch, st->batch + 1, n_batches, (float)loss, st->ep_seen / (el > 0 ? el : 1e-9));
    return SK_OK;
}

static int checkpoint(struct sk_trainer *t)
{
    const struct sk_step_hook *h = t->cfg.step;
    int rc = h && h->sync ? h->sync(h->ctx, t) : SK_OK;
    return rc ? rc : t->cfg.on_checkpoint(t->cfg.ctx, t);
}

/* The epoch's metrics, validation and early stopping; resets the running sums. */
static int end_epoch(struct sk_trainer *t, double t0)
{
    struct sk_model *m = t->model;
    const struct sk_train_config *c = &t->cfg;
    struct sk_train_state *st = &t->st;
    struct sk_epoch_metrics em = { 0 };
    em.epoch = st->epoch;
    em.train_loss = st->ep_seen ? st->ep_loss_sum / st->ep_seen : NAN;
    em.train_acc = st->ep_seen ? (double)st->ep_correct / st->ep_seen : NAN;
    em.lr = sk_optim_lr_at(&t->opt->cfg, t->opt->t > 0 ? t->opt->t - 1 : 0);
    em.seconds = st->ep_seconds + (sk_now() - t0);
    em.samples_per_s = st->ep_seen / (em.seconds > 0 ? em.seconds : 1e-9);
    em.val_loss = em.val_acc = NAN;
    if (t->n_val > 0) {
        int rc = sk_model_evaluate(m, t->vx, t->vy, t->n_val, &em.val_acc, &em.val_loss);
        if (rc) return rc;
        if (em.val_loss < st->best_val) {
            st->best_val = em.val_loss;
            st->best_epoch = st->epoch;
            st->bad_epochs = 0;
            em.improved = true;
            memcpy(t->best_params, m->params, sizeof(float) * m->n_params);
            memcpy(t->best_buffers, m->buffers, sizeof(float) * m->n_buffers);
        } else {
            st->bad_epochs++;
        }
    }
    t->last = em;
    st->epoch++;
    st->batch = 0;
    st->ep_loss_sum = 0;
    st->ep_correct = st->ep_seen = 0;
    st->ep_seconds = 0;
    if (c->patience > 0 && t->n_val > 0 && st->bad_epochs >= c->patience) st->done = true;
    if (c->on_epoch && c->on_epoch(c->ctx, &em)) st->done = true;
    return c->on_checkpoint ? checkpoint(t) : SK_OK;
}

int sk_trainer_run(struct sk_trainer *t)
{
    struct sk_model *m = t->model;
    const struct sk_train_config *c = &t->cfg;
    int B = c->batch, n_batches = (t->n_train + B - 1) / B;
    uint64_t drop_key = sk_rng_derive(sk_rng_new(c->seed).key, SK_STREAM_DROPOUT).key;
    int *order = sk_malloc(sizeof(int) * (size_t)t->n_train);
    if (!order) return SK_ENOMEM;
    int rc = SK_OK;
    struct sk_train_state *st = &t->st;
    bool stopped = false;
    while (!rc && !st->done && !stopped && st->epoch < c->epochs) {
        epoch_order(t, st->epoch, order);
        double t0 = sk_now();
        for (; st->batch < n_batches; st->batch++) {
            if (c->stop && *c->stop) {
                stopped = true;
                st->ep_seconds += sk_now() - t0;
                break;
            }
            int lo = st->batch * B, nb = t->n_train - lo < B ? t->n_train - lo : B;
            if ((rc = train_step(t, order + lo, nb, n_batches, drop_key, t0))) break;
            if (c->on_checkpoint && c->checkpoint_every > 0 && st->step % c->checkpoint_every == 0) {
                st->batch++; /* the state says where to continue */
                st->ep_seconds += sk_now() - t0;
                t0 = sk_now();
                rc = checkpoint(t);
                st->batch--;
                if (rc) break;
            }
        }
        if (!rc && !stopped) rc = end_epoch(t, t0);
    }
    if (stopped) {
        const struct sk_step_hook *h = c->step;
        rc = h && h->sync ? h->sync(h->ctx, t) : SK_OK;
        sk_free(order);
        return rc;
    }
    if (!rc && t->n_val > 0 && st->best_epoch >= 0) {
        memcpy(m->params, t->best_params, sizeof(float) * m->n_params);
        memcpy(m->buffers, t->best_buffers, sizeof(float) * m->n_buffers);
    }
    sk_free(order);
    return rc;
}

int sk_train(struct sk_model *m, const struct sk_train_config *cfg, const float *x, const int *y, int n)
{
    struct sk_trainer *t = sk_trainer_new(m, cfg, x, y, n);
    if (!t) return SK_EINVAL;
    int rc = cfg->resume ? sk_checkpoint_load(cfg->resume, t, NULL) : SK_OK;
    if (!rc) rc = sk_trainer_run(t);
    sk_trainer_free(t);
    return rc;
}
