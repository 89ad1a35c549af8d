/* Complete verification of a VNN-LIB style property: margin PGD, CROWN and
 * α-CROWN on the whole box, then branch and bound over relu splits with
 * α/β-CROWN bounds per subdomain (certify.h explains the verdicts). */
#include <stdlib.h>
#include "certify/certify_impl.h"
#include "certify/lirpa.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

const char *sk_certify_verdict_name(enum sk_certify_verdict v)
{
    static const char *names[] = { "unsat", "sat", "timeout", "unknown", "error" };
    return (unsigned)v < 5 ? names[v] : "error";
}

struct sk_certify_verify_config sk_certify_verify_defaults(void)
{
    return (struct sk_certify_verify_config){ .timeout_s = 300, .pgd_restarts = 5, .pgd_steps = 100,
                                              .alpha_iters = 50, .inter_alpha_iters = 10, .bab_iters = 20,
                                              .refine_layers = 2, .refine_domains = 100, .child_crown = true,
                                              .branch_decay = 8, .batch = 64,
                                              .max_domain_mb = 1024, .crown_rows = 2048, .bab = true, .seed = 1 };
}

/* ---------------- the property ---------------- */

static int check_property(const struct sk_model *m, const struct sk_certify_property *p)
{
    if (p->n_in != m->in_dim || p->n_out != m->n_classes)
        return sk_error(SK_EINVAL, "verify: the property has %d inputs and %d outputs, the model '%s' %d and %d",
                        p->n_in, p->n_out, m->spec, m->in_dim, m->n_classes);
    if (p->n_disj < 1 || !p->disj || p->disj[0] != 0 || p->disj[p->n_disj] != p->n_rows)
        return sk_error(SK_EINVAL, "verify: the property's disjuncts must cover its %d output rows", p->n_rows);
    for (int i = 0; i < p->n_disj; i++)
        if (p->disj[i + 1] <= p->disj[i])
            return sk_error(SK_EINVAL, "verify: disjunct %d of the property has no constraint", i);
    for (int j = 0; j < p->n_in; j++)
        if (!(p->lo[j] <= p->hi[j]) || !isfinite(p->lo[j]) || !isfinite(p->hi[j]))
            return sk_error(SK_EINVAL, "verify: the input box of X_%d is [%g, %g]", j, p->lo[j], p->hi[j]);
    for (size_t i = 0; i < (size_t)p->n_rows * p->n_out; i++)
        if (!isfinite(p->c[i])) return sk_error(SK_EINVAL, "verify: output constraint %zu has a non-finite coefficient", i / (size_t)p->n_out);
    for (int i = 0; i < p->n_rows; i++)
        if (!isfinite(p->d[i])) return sk_error(SK_EINVAL, "verify: output constraint %d has a non-finite bound", i);
    return SK_OK;
}

/* max_k (c_k·y - d_k) over disjunct i's rows: <= 0 when y meets it */
static double disj_violation(const struct sk_certify_property *p, int i, const float *y, int *kmax)
{
    double worst = -INFINITY;
    for (int k = p->disj[i]; k < p->disj[i + 1]; k++) {
        double s = -(double)p->d[k];
        for (int j = 0; j < p->n_out; j++) s += (double)p->c[(size_t)k * p->n_out + j] * y[j];
        if (s > worst) {
            worst = s;
            if (kmax) *kmax = k;
        }
    }
    return worst;
}

int sk_certify_property_check(struct sk_model *m, const struct sk_certify_property *p, const float *x, float tol,
                              bool *holds, float *y, int *disj)
{
    int rc = check_property(m, p);
    if (rc) return rc;
    *holds = false;
    for (int j = 0; j < p->n_in; j++)
        if (!(x[j] >= p->lo[j] - tol && x[j] <= p->hi[j] + tol)) return SK_OK;
    float *z = sk_malloc(sizeof(float) * (size_t)p->n_out);
    if (!z) return SK_ENOMEM;
    rc = sk_model_logits(m, x, 1, z);
    if (!rc) {
        for (int i = 0; i < p->n_disj && !*holds; i++)
            if (disj_violation(p, i, z, NULL) <= 0) {
                *holds = true;
                if (disj) *disj = i;
            }
        if (y) memcpy(y, z, sizeof(float) * (size_t)p->n_out);
    }
    sk_free(z);
    return rc;
}

/* ---------------- margin PGD ---------------- */

/* R restarts per disjunct, all disjuncts in one batch: minimise the
 * disjunct's worst row c_k·y - d_k by signed gradient steps projected on the
 * box (cosine step from a quarter of the box width). The first restart of
 * each disjunct starts at x0 (NULL: the box centre). found: x (n_in) meets
 * disjunct *which in the model's forward pass. */
static int margin_pgd(struct sk_model *m, const struct sk_certify_property *p, int R, int S, uint64_t seed,
                      const float *x0, double deadline, bool *found, float *xout, int *which)
{
    int D = p->n_in, K = p->n_out, B = R * p->n_disj;
    *found = false;
    float *x = sk_malloc(sizeof(float) * (size_t)B * D), *seed_g = sk_malloc(sizeof(float) * (size_t)B * K);
    struct sk_graph *g = sk_graph_new();
    int rc = SK_ENOMEM;
    if (!x || !seed_g || !g) goto done;
    sk_graph_set_param_grads(g, false);
    struct sk_rng rng = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_ATTACK);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) {
            float lo = p->lo[j], hi = p->hi[j];
            float c = x0 ? x0[j] : 0.5f * (lo + hi);
            x[(size_t)b * D + j] = b < p->n_disj ? c : lo + (hi - lo) * (float)sk_rng_uniform_d(&rng);
        }
    rc = SK_OK;
    for (int t = 0; t <= S && !*found; t++) {
        sk_graph_reset(g);
        int shape[2] = { B, D };
        int xn = sk_graph_input(g, x, 2, shape, true);
        int y = sk_model_forward(m, g, xn, SK_MODE_EVAL, 0);
        if (y < 0) {
            rc = y;
            break;
        }
        const float *Y = sk_graph_value(g, y);
        for (int b = 0; b < B; b++) {
            int i = b % p->n_disj, k = p->disj[i];
            double v = disj_violation(p, i, Y + (size_t)b * K, &k);
            if (v <= 0) {
                /* the float forward of a batch can differ from one row's: confirm it alone */
                bool holds = false;
                int dj = -1;
                if ((rc = sk_certify_property_check(m, p, x + (size_t)b * D, 0, &holds, NULL, &dj))) goto done;
                if (holds) {
                    memcpy(xout, x + (size_t)b * D, sizeof(float) * (size_t)D);
                    *which = dj;
                    *found = true;
                    break;
                }
            }
            memcpy(seed_g + (size_t)b * K, p->c + (size_t)k * K, sizeof(float) * (size_t)K);
        }
        if (*found || t == S || sk_now() > deadline) break;
        if ((rc = sk_graph_backward(g, y, seed_g))) break;
        const float *gx = sk_graph_grad(g, xn);
        float frac = 0.25f * 0.5f * (1.0f + cosf(3.14159265f * (float)t / (float)S)) + 0.005f;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < D; j++) {
                size_t q = (size_t)b * D + j;
                float w = p->hi[j] - p->lo[j], gv = gx[q];
                float v = x[q] - frac * w * (gv > 0 ? 1.0f : gv < 0 ? -1.0f : 0.0f);
                x[q] = v < p->lo[j] ? p->lo[j] : v > p->hi[j] ? p->hi[j] : v;
            }
    }
done:
    sk_free(x);
    sk_free(seed_g);
    sk_graph_free(g);
    return rc;
}

/* ---------------- subdomains ---------------- */

struct dom {
    float score;   /* max_k (lb_k - d_k): the domain is refuted when > 0; the lowest is split first */
    int n_split;
    int *sp;       /* relu index * 2 + (1: active, 0: inactive) */
    float *alpha, *beta; /* [R, n_relu] warm start */
    float *lbq;    /* [R] each row's bound: the parent's until this domain is bounded (a child's is never below) */
    float *box;    /* the parent's boxes (lp_bounds' n_floats), then this domain's; NULL: the root's */
    int branch;    /* relu index to split next; -1: none left */
    /* results of bounding */
    int status;    /* 0 open, 1 refuted, 2 counterexample, 3 stuck (nothing to split), <0 error */
    float *cex;
};

static void dom_free(struct dom *d)
{
    if (!d) return;
    sk_free(d->sp);
    sk_free(d->alpha);
    sk_free(d->beta);
    sk_free(d->lbq);
    sk_free(d->box);
    sk_free(d->cex);
    sk_free(d);
}

/* binary min-heap on score */
struct heap {
    struct dom **a;
    long n, cap;
};

static int heap_push(struct heap *h, struct dom *d)
{
    if (h->n == h->cap) {
        long cap = h->cap ? 2 * h->cap : 256;
        struct dom **a = sk_malloc(sizeof *a * (size_t)cap);
        if (!a) return SK_ENOMEM;
        if (h->n) memcpy(a, h->a, sizeof *a * (size_t)h->n);
        sk_free(h->a);
        h->a = a;
        h->cap = cap;
    }
    long i = h->n++;
    while (i > 0 && h->a[(i - 1) / 2]->score > d->score) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = d;
    return SK_OK;
}

static struct dom *heap_pop(struct heap *h)
{
    if (h->n == 0) return NULL;
    struct dom *top = h->a[0], *last = h->a[--h->n];
    long i = 0;
    for (;;) {
        long c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->a[c + 1]->score < h->a[c]->score) c++;
        if (h->a[c]->score >= last->score) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    return top;
}

/* What every subdomain of one disjunct shares. */
struct bab {
    const struct lp_net *net;
    const struct lp_bounds *root;
    const struct sk_certify_property *p;
    const float *C, *d, *target; /* the disjunct's rows [R, n_out], bounds, bounds plus tolerance */
    int R, iters;
    long max_domains;  /* stop after this many subdomains (0: no limit) */
    float lr;
    const float *branch_w; /* [n_relu] the weight of each relu's split score (branch_decay^-layer) */
    struct lp_opts o;  /* the root's passes */
    struct lp_opts oc; /* a child's intermediate boxes after its newest split: CROWN (child_crown) or intervals alone */
    struct sk_model *m; /* NULL: bounds alone (an intermediate value's), no counterexamples sought */
    struct sk_certify_property sub; /* the disjunct alone, for local attacks */
    int sub_disj[2];
    uint64_t seed;
};

/* Work space of one domain being bounded. */
struct ws {
    struct lp_bounds b;
    signed char *split;
    float *lb, *xstar, *Arelu, *y;
};

static void ws_free(struct ws *w)
{
    lp_bounds_free(&w->b);
    sk_free(w->split);
    sk_free(w->lb);
    sk_free(w->xstar);
    sk_free(w->Arelu);
    sk_free(w->y);
}

static int ws_alloc(const struct bab *B, struct ws *w)
{
    memset(w, 0, sizeof *w);
    int rc = lp_bounds_alloc(B->net, &w->b);
    if (rc) return rc;
    size_t nr = (size_t)B->net->n_relu;
    w->split = sk_calloc(nr + 1, 1);
    w->lb = sk_malloc(sizeof(float) * (size_t)B->R);
    w->xstar = sk_malloc(sizeof(float) * (size_t)B->R * B->net->in_dim);
    w->Arelu = sk_malloc(sizeof(float) * ((size_t)B->R * nr + 1));
    w->y = sk_malloc(sizeof(float) * (size_t)B->net->out_dim);
    if (!w->split || !w->lb || !w->xstar || !w->Arelu || !w->y) {
        ws_free(w);
        return SK_ENOMEM;
    }
    return SK_OK;
}

/* The split with the largest score: |A| (coefficient at the relu output,
 * max over rows) times the intercept of the upper line, the loss the
 * relaxation of that value causes (BaBSR, Bunel et al. 2020, without its
 * bias term), ties to the widest interval; weighted by branch_w, which
 * favours earlier layers: with child_crown a split there also tightens the
 * intermediate boxes of every layer after it, which the score does not see. */
static int pick_branch(const struct bab *B, const struct lp_bounds *b, const signed char *split, const float *Arelu)
{
    const struct lp_net *net = B->net;
    int best = -1;
    double bs = -1;
    for (int g = 0; g < net->n_relu; g++) {
        if (split[g]) continue;
        int i = net->relu_step[g], j = g - net->s[i].relu_off, vi = net->s[i].in0;
        float l = b->lo[vi][j], u = b->hi[vi][j];
        if (!(l < 0 && u > 0)) continue;
        double icpt = b->rx[i][4 * (size_t)j + 3], s = 0;
        for (int q = 0; q < B->R; q++) {
            double a = Arelu[(size_t)q * net->n_relu + g];
            double v = (a < 0 ? -a * icpt : 0) + 1e-4 * fabs(a) * (u - l);
            s = v > s ? v : s;
        }
        s = (s + 1e-9 * (u - l)) * B->branch_w[g];
        if (s > bs) {
            bs = s;
            best = g;
        }
    }
    return best;
}

/* The boxes of domain d in w: its parent's (the root's for the root),
 * tightened from the step of its newest split on. Status 1 when the splits
 * leave no point. */
static void dom_boxes(const struct bab *B, struct ws *w, struct dom *d)
{
    const struct lp_net *net = B->net;
    memset(w->split, 0, (size_t)net->n_relu);
    for (int t = 0; t < d->n_split; t++) w->split[d->sp[t] >> 1] = (d->sp[t] & 1) ? 1 : -1;
    if (!d->box) {
        lp_bounds_copy(net, &w->b, B->root);
        if (d->n_split == 0) return;
        int first = net->n;
        for (int t = 0; t < d->n_split; t++) {
            int st = net->relu_step[d->sp[t] >> 1];
            first = st < first ? st : first;
        }
        int rc = lp_bounds_compute(net, B->root->lo[0], B->root->hi[0], w->split, first, &B->o, &w->b);
        if (rc) d->status = rc == 1 ? 1 : rc;
        return;
    }
    memcpy(w->b.mem, d->box, sizeof(float) * w->b.n_floats);
    int first = net->relu_step[d->sp[d->n_split - 1] >> 1];
    int rc = lp_bounds_compute(net, B->root->lo[0], B->root->hi[0], w->split, first, &B->oc, &w->b);
    if (rc) d->status = rc == 1 ? 1 : rc;
}

/* The corner attaining a row's bound of d may be a counterexample (status
 * 2, true); the lowest row's is kept in d->cex as a start for a local
 * attack. */
static bool corner_counterexample(const struct bab *B, struct ws *w, struct dom *d)
{
    const struct lp_net *net = B->net;
    int qw = 0;
    for (int q = 1; q < B->R; q++)
        if (w->lb[q] - B->d[q] > w->lb[qw] - B->d[qw]) qw = q;
    if ((d->cex = sk_malloc(sizeof(float) * (size_t)net->in_dim)))
        memcpy(d->cex, w->xstar + (size_t)qw * net->in_dim, sizeof(float) * (size_t)net->in_dim);
    for (int q = 0; q < B->R; q++) {
        const float *x = w->xstar + (size_t)q * net->in_dim;
        if (lp_forward_point(net, x, w->y)) continue;
        bool meets = true;
        for (int r = 0; r < B->R && meets; r++) {
            double s = -(double)B->d[r];
            for (int j = 0; j < net->out_dim; j++) s += (double)B->C[(size_t)r * net->out_dim + j] * w->y[j];
            meets = s <= 0;
        }
        if (meets && d->cex) {
            memcpy(d->cex, x, sizeof(float) * (size_t)net->in_dim);
            d->status = 2;
            return true;
        }
    }
    return false;
}

/* After the bound of d (w->lb, xstar, Arelu): refuted, a counterexample at
 * a corner of the relaxation (sought only with a model), or the next split. */
static void dom_finish(const struct bab *B, struct ws *w, struct dom *d)
{
    float sc = -INFINITY;
    bool refuted = false;
    /* the domain lies inside its parent's: each row's bound is at least the parent's */
    if (d->lbq)
        for (int q = 0; q < B->R; q++) w->lb[q] = w->lb[q] > d->lbq[q] ? w->lb[q] : d->lbq[q];
    else if (!(d->lbq = sk_malloc(sizeof(float) * (size_t)B->R))) {
        d->status = SK_ENOMEM;
        return;
    }
    memcpy(d->lbq, w->lb, sizeof(float) * (size_t)B->R);
    for (int q = 0; q < B->R; q++) {
        sc = w->lb[q] - B->d[q] > sc ? w->lb[q] - B->d[q] : sc;
        refuted |= w->lb[q] > B->target[q];
    }
    d->score = sc;
    if (refuted) {
        d->status = 1;
        return;
    }
    /* children start from these boxes */
    if (!d->box && !(d->box = sk_malloc(sizeof(float) * w->b.n_floats))) {
        d->status = SK_ENOMEM;
        return;
    }
    memcpy(d->box, w->b.mem, sizeof(float) * w->b.n_floats);
    if (B->m && corner_counterexample(B, w, d)) return;
    d->branch = pick_branch(B, &w->b, w->split, w->Arelu);
    d->status = d->branch < 0 ? 3 : 0;
}

/* Bound domain d alone (the root; nets lp_alpha_batch does not take). */
static void bound_domain(const struct bab *B, struct ws *w, struct dom *d)
{
    dom_boxes(B, w, d);
    if (d->status) {
        if (d->status == 1) d->score = INFINITY;
        return;
    }
    int rc = lp_alpha_optimize(B->net, &w->b, B->net->n, B->C, B->R, B->iters, B->lr, w->split, d->alpha, d->beta,
                               &B->o, B->target, w->lb, w->xstar, w->Arelu);
    if (rc) {
        d->status = rc;
        return;
    }
    dom_finish(B, w, d);
}

/* A child of parent: its splits plus (g, active); the parent's boxes
 * (taken when take, else copied) and slopes as its start. */
static struct dom *child_of(const struct bab *B, struct dom *parent, int g, bool active, bool take)
{
    size_t na = (size_t)B->R * B->net->n_relu + 1;
    struct dom *c = sk_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->n_split = parent->n_split + 1;
    c->sp = sk_malloc(sizeof(int) * (size_t)c->n_split);
    c->alpha = sk_malloc(sizeof(float) * na);
    c->beta = sk_malloc(sizeof(float) * na);
    c->lbq = sk_malloc(sizeof(float) * (size_t)B->R);
    bool nb = parent->box != NULL;
    if (take) {
        c->box = parent->box;
        parent->box = NULL;
    } else if (nb) {
        c->box = sk_malloc(sizeof(float) * B->root->n_floats);
        if (c->box) memcpy(c->box, parent->box, sizeof(float) * B->root->n_floats);
    }
    if (!c->sp || !c->alpha || !c->beta || !c->lbq || !parent->lbq || (nb && !c->box)) {
        dom_free(c);
        return NULL;
    }
    if (parent->n_split) memcpy(c->sp, parent->sp, sizeof(int) * (size_t)parent->n_split);
    c->sp[parent->n_split] = g * 2 + (active ? 1 : 0);
    memcpy(c->alpha, parent->alpha, sizeof(float) * na);
    memcpy(c->beta, parent->beta, sizeof(float) * na);
    memcpy(c->lbq, parent->lbq, sizeof(float) * (size_t)B->R);
    c->branch = -1;
    return c;
}

enum { BAB_UNSAT, BAB_SAT, BAB_TIMEOUT, BAB_UNKNOWN };

/* Bound the nk children of one round: their boxes in parallel, then α/β
 * for all of them in one batch (lp_alpha_batch) or one by one. */
static int bound_round(const struct bab *B, struct ws *w, struct dom **kids, int nk, int *live,
                       const struct lp_bounds **bl, const signed char **sl, float **al, float **bel, float **arl,
                       float *lbs, float *xss)
{
    const struct lp_net *net = B->net;
#pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < nk; k++) {
        dom_boxes(B, &w[k], kids[k]);
        if (kids[k]->status == 1) kids[k]->score = INFINITY;
    }
    int nl = 0;
    for (int k = 0; k < nk; k++) {
        if (kids[k]->status < 0) return kids[k]->status;
        if (kids[k]->status == 0) live[nl++] = k;
    }
    if (nl == 0) return SK_OK;
    if (lp_batch_ok(net)) {
        for (int t = 0; t < nl; t++) {
            struct ws *wk = &w[live[t]];
            bl[t] = &wk->b;
            sl[t] = wk->split;
            al[t] = kids[live[t]]->alpha;
            bel[t] = kids[live[t]]->beta;
            arl[t] = wk->Arelu;
        }
        int rc = lp_alpha_batch(net, bl, nl, net->n, B->C, B->R, B->iters, B->lr, sl, al, bel, &B->o, B->target, lbs, xss,
                                arl);
        if (rc) return rc;
        for (int t = 0; t < nl; t++) {
            struct ws *wk = &w[live[t]];
            memcpy(wk->lb, lbs + (size_t)t * B->R, sizeof(float) * (size_t)B->R);
            memcpy(wk->xstar, xss + (size_t)t * B->R * net->in_dim, sizeof(float) * (size_t)B->R * net->in_dim);
        }
    } else {
#pragma omp parallel for schedule(dynamic, 1)
        for (int t = 0; t < nl; t++) {
            struct ws *wk = &w[live[t]];
            struct dom *d = kids[live[t]];
            int rc = lp_alpha_optimize(net, &wk->b, net->n, B->C, B->R, B->iters, B->lr, wk->split, d->alpha, d->beta,
                                       &B->o, B->target, wk->lb, wk->xstar, wk->Arelu);
            if (rc) d->status = rc;
        }
        for (int t = 0; t < nl; t++)
            if (kids[live[t]]->status < 0) return kids[live[t]]->status;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < nl; t++) dom_finish(B, &w[live[t]], kids[live[t]]);
    return SK_OK;
}

/* Branch and bound on one disjunct from its root domain (bounded already). */
static int bab_run(const struct bab *B, struct dom *root, const struct sk_certify_verify_config *cfg,
                   double deadline, int *outcome, float *cex, long *n_dom, float *worst)
{
    const struct lp_net *net = B->net;
    int batch = cfg->batch > 0 ? cfg->batch : 64, nw = 2 * batch;
    size_t per = sizeof(struct dom) + 2 * sizeof(float) * ((size_t)B->R * net->n_relu + 1) +
                 sizeof(float) * B->root->n_floats + 64 * sizeof(int);
    long cap = (long)((size_t)cfg->max_domain_mb * 1024 * 1024 / per);
    if (cap < 4) cap = 4;
    struct heap h = { 0 };
    struct ws *w = sk_calloc((size_t)nw, sizeof *w);
    struct dom **kids = sk_calloc((size_t)nw, sizeof *kids);
    int *live = sk_malloc(sizeof(int) * (size_t)nw);
    const struct lp_bounds **bl = sk_malloc(sizeof *bl * (size_t)nw);
    const signed char **sl = sk_malloc(sizeof *sl * (size_t)nw);
    float **al = sk_malloc(sizeof *al * (size_t)nw), **bel = sk_malloc(sizeof *bel * (size_t)nw);
    float **arl = sk_malloc(sizeof *arl * (size_t)nw);
    float *lbs = sk_malloc(sizeof(float) * (size_t)nw * B->R);
    float *xss = sk_malloc(sizeof(float) * (size_t)nw * B->R * net->in_dim);
    int rc = SK_ENOMEM;
    bool stuck = false;
    int round = 0;
    float dropped = INFINITY; /* the lowest bound of the subdomains left with nothing to split */
    *outcome = BAB_UNKNOWN;
    if (!w || !kids || !live || !bl || !sl || !al || !bel || !arl || !lbs || !xss) goto done;
    for (int t = 0; t < nw; t++)
        if ((rc = ws_alloc(B, &w[t]))) goto done;
    if ((rc = heap_push(&h, root))) goto done;
    root = NULL;
    rc = SK_OK;
    for (;;) {
        if (h.n == 0) {
            *outcome = stuck ? BAB_UNKNOWN : BAB_UNSAT;
            break;
        }
        if (sk_now() > deadline) {
            *outcome = BAB_TIMEOUT;
            break;
        }
        if (h.n + 2L * batch > cap || (B->max_domains > 0 && *n_dom >= B->max_domains)) {
            *outcome = BAB_UNKNOWN;
            break;
        }
        int nk = 0;
        while (nk < nw && h.n > 0) {
            struct dom *d = heap_pop(&h);
            struct dom *a = child_of(B, d, d->branch, true, false), *b = child_of(B, d, d->branch, false, true);
            dom_free(d);
            if (!a || !b) {
                dom_free(a);
                dom_free(b);
                rc = SK_ENOMEM;
                goto done;
            }
            kids[nk++] = a;
            kids[nk++] = b;
        }
        rc = bound_round(B, w, kids, nk, live, bl, sl, al, bel, arl, lbs, xss);
        *n_dom += nk;
        round++;
        /* local attacks from the relaxations' minimisers: those of subdomains
         * with nothing left to split, and the lowest one every few rounds */
        int lowest = -1;
        for (int k = 0; k < nk; k++)
            if (kids[k]->status == 0 && kids[k]->cex && (lowest < 0 || kids[k]->score < kids[lowest]->score))
                lowest = k;
        for (int k = 0; k < nk && *outcome != BAB_SAT && rc == SK_OK && B->m; k++) {
            struct dom *c = kids[k];
            if (!c->cex || !(c->status == 3 || (k == lowest && round % 4 == 1))) continue;
            bool f = false;
            int wh = -1;
            rc = margin_pgd(B->m, &B->sub, 1, 30, B->seed + (uint64_t)round, c->cex, deadline, &f, cex, &wh);
            if (f) *outcome = BAB_SAT;
            else if (c->status == 3) stuck = true;
        }
        for (int k = 0; k < nk; k++) {
            struct dom *c = kids[k];
            kids[k] = NULL;
            if (c->status < 0 && rc == SK_OK) rc = c->status;
            if (c->status == 2 && *outcome != BAB_SAT) {
                memcpy(cex, c->cex, sizeof(float) * (size_t)net->in_dim);
                *outcome = BAB_SAT;
            }
            if (c->status == 3 && *outcome != BAB_SAT && !c->cex) stuck = true;
            if (c->status == 3 && c->score < dropped) dropped = c->score;
            sk_free(c->cex);
            c->cex = NULL;
            if (c->status == 0 && rc == SK_OK && *outcome != BAB_SAT) {
                if ((rc = heap_push(&h, c))) {
                    dom_free(c);
                    goto done;
                }
            } else {
                dom_free(c);
            }
        }
        if (rc || *outcome == BAB_SAT) break;
    }
    *worst = h.n && h.a[0]->score < dropped ? h.a[0]->score : dropped;
done:
    dom_free(root);
    for (long i = 0; i < h.n; i++) dom_free(h.a[i]);
    sk_free(h.a);
    if (kids)
        for (int k = 0; k < nw; k++) dom_free(kids[k]);
    sk_free(kids);
    if (w)
        for (int t = 0; t < nw; t++) ws_free(&w[t]);
    sk_free(w);
    sk_free(live);
    sk_free(bl);
    sk_free(sl);
    sk_free(al);
    sk_free(bel);
    sk_free(arl);
    sk_free(lbs);
    sk_free(xss);
    return rc;
}

/* ---------------- the whole property ---------------- */

static float tol_of(float d) { return SK_CERTIFY_TOL * (1.0f + fabsf(d)); }

/* Tighten the box of the input of relu step si (a chain's value si) by
 * branch and bound over the relus before it: for each unstable entry z_j,
 * the lowest α/β-CROWN bound of z_j, and of -z_j, over the subdomains left
 * after at most `domains` of them (each subdomain's bound holds on it, and
 * they cover the box; those proved >= 0 only clamp the entry at 0). The
 * intermediate bounds a MIP solver would give, as far as the budget goes.
 * Entries in parallel, each search on one thread; a budget in subdomains,
 * not seconds, so the boxes do not depend on the machine's speed. */
static int refine_value(const struct lp_net *net, struct lp_bounds *root, int si, int domains, int iters,
                        const float *branch_w, const struct lp_opts *o, double deadline, long *n_dom)
{
    struct lp_net sub = *net;
    int vi = net->s[si].in0, dv = net->s[si].din;
    sub.n = si;
    sub.out_dim = dv;
    sub.n_relu = net->s[si].relu_off;
    int *js = sk_malloc(sizeof(int) * (size_t)dv);
    float *nlo = sk_malloc(sizeof(float) * (size_t)dv), *nhi = sk_malloc(sizeof(float) * (size_t)dv);
    int nu = 0, rc = SK_ENOMEM;
    long nd = 0;
    struct lp_bounds sroot = { 0 }; /* root's boxes up to value si, in sub's layout */
    if (!js || !nlo || !nhi || lp_bounds_alloc(&sub, &sroot)) goto done;
    for (int v = 0; v <= si; v++) {
        size_t d = v == 0 ? (size_t)net->in_dim : (size_t)net->s[v - 1].dout;
        memcpy(sroot.lo[v], root->lo[v], sizeof(float) * d);
        memcpy(sroot.hi[v], root->hi[v], sizeof(float) * d);
    }
    for (int i = 0; i < si; i++)
        if (sroot.rx[i]) lp_make_relax(&sub, &sroot, i);
    for (int j = 0; j < dv; j++) {
        nlo[j] = root->lo[vi][j];
        nhi[j] = root->hi[vi][j];
        if (nlo[j] < 0 && nhi[j] > 0) js[nu++] = j;
    }
    rc = SK_OK;
    static const float zero = 0;
    const float target = tol_of(0);
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : nd)
    for (int t = 0; t < 2 * nu; t++) {
        int j = js[t / 2], up = t % 2, rct = SK_OK;
        int stop;
#pragma omp atomic read
        stop = rc;
        if (stop || sk_now() > deadline) continue;
        float *C = sk_calloc((size_t)dv, sizeof(float)), *cex = sk_malloc(sizeof(float) * (size_t)net->in_dim);
        struct dom *d = sk_calloc(1, sizeof *d);
        size_t na = (size_t)sub.n_relu + 1;
        struct ws w0 = { 0 };
        if (!C || !cex || !d || !(d->alpha = sk_malloc(sizeof(float) * na)) ||
            !(d->beta = sk_calloc(na, sizeof(float)))) {
            rct = SK_ENOMEM;
            goto next;
        }
        C[j] = up ? -1.0f : 1.0f;
        struct bab B = { .net = &sub, .root = &sroot, .C = C, .d = &zero, .target = &target, .R = 1, .iters = iters,
                         .lr = 0.1f, .branch_w = branch_w, .o = *o, .oc = *o, .max_domains = domains };
        B.o.alpha_iters = B.oc.alpha_iters = 0;
        for (size_t q = 0; q < na; q++) d->alpha[q] = NAN;
        if ((rct = ws_alloc(&B, &w0))) goto next;
        bound_domain(&B, &w0, d);
        ws_free(&w0);
        nd++;
        float low = INFINITY;
        if (d->status < 0) {
            rct = d->status;
        } else if (d->status == 3) {
            low = d->score;
        } else if (d->status == 0) {
            struct sk_certify_verify_config rcfg = { .batch = 4, .max_domain_mb = 64 };
            int outcome;
            long n1 = 0;
            rct = bab_run(&B, d, &rcfg, deadline, &outcome, cex, &n1, &low);
            d = NULL;
            nd += n1;
        }
        /* the bound of the entry: min(low, 0); above 0 only where every subdomain is */
        if (rct == SK_OK && low < INFINITY) {
            float v = low < 0 ? low : 0;
            if (up && -v < nhi[j]) nhi[j] = -v;
            if (!up && v > nlo[j]) nlo[j] = v;
        } else if (rct == SK_OK) {
            if (up) nhi[j] = 0;
            else nlo[j] = 0;
        }
    next:
        if (rct) {
#pragma omp atomic write
            rc = rct;
        }
        dom_free(d);
        sk_free(C);
        sk_free(cex);
    }
    if (rc) goto done;
    for (int j = 0; j < dv; j++) {
        root->lo[vi][j] = nlo[j];
        root->hi[vi][j] = nhi[j];
    }
    *n_dom += nd;
done:
    lp_bounds_free(&sroot);
    sk_free(js);
    sk_free(nlo);
    sk_free(nhi);
    return rc;
}

/* refine_value on the first `layers` relu layers after the first (their
 * inputs must be a chain's values), each from the boxes tightened before
 * it; every layer after each is re-bounded with oi (α-CROWN). */
static int refine_boxes(const struct lp_net *net, struct lp_bounds *root, const float *lo, const float *hi, int layers,
                        int domains, int iters, const float *branch_w, const struct lp_opts *o,
                        const struct lp_opts *oi, double deadline, long *n_dom)
{
    int rc = SK_OK;
    for (int g = 0, layer = -1, done = 0; g < net->n_relu && done < layers && rc == SK_OK; g++) {
        if (g > 0 && net->relu_step[g] == net->relu_step[g - 1]) continue;
        if (++layer == 0) continue;
        int si = net->relu_step[g];
        if (net->s[si].in0 != si) break;
        if (!(rc = refine_value(net, root, si, domains, iters, branch_w, o, deadline, n_dom)))
            rc = lp_bounds_compute(net, lo, hi, NULL, si, oi, root);
        done++;
    }
    return rc;
}

static float *layer_weights(const struct lp_net *net, float decay)
{
    float *w = sk_malloc(sizeof(float) * ((size_t)net->n_relu + 1));
    if (w)
        for (int g = 0, layer = -1; g < net->n_relu; g++) {
            if (g == 0 || net->relu_step[g] != net->relu_step[g - 1]) layer++;
            w[g] = (float)pow((double)decay, -(double)layer);
        }
    return w;
}

int sk_certify_relu_bounds(struct sk_model *m, const float *lo, const float *hi, int refine_layers,
                           int refine_domains, float *zlo, float *zhi, int *n)
{
    if (!m || !lo || !hi || !n || refine_layers < 0 || refine_domains < 0)
        return sk_error(SK_EINVAL, "relu bounds: a model, a box, n and refine_layers, refine_domains >= 0 needed");
    for (int j = 0; j < m->in_dim; j++)
        if (!(lo[j] <= hi[j])) return sk_error(SK_EINVAL, "relu bounds: input %d: lo %g > hi %g", j, lo[j], hi[j]);
    struct lp_net net = { 0 };
    struct lp_bounds root = { 0 };
    float *bw = NULL;
    int rc = lp_net_build_graph(m, &net);
    if (rc || (rc = lp_bounds_alloc(&net, &root))) goto done;
    *n = net.n_relu;
    if (!zlo || !zhi) goto done;
    struct sk_certify_verify_config dc = sk_certify_verify_defaults();
    struct lp_opts o = { .with_ibp = true, .crown_rows = dc.crown_rows }, oi = o;
    oi.alpha_iters = dc.inter_alpha_iters;
    if ((rc = lp_bounds_compute(&net, lo, hi, NULL, 0, &oi, &root))) goto done;
    if (refine_layers > 0 && refine_domains > 0 && !net.graph && net.n_relu > 0) {
        long nd = 0;
        if (!(bw = layer_weights(&net, dc.branch_decay))) {
            rc = SK_ENOMEM;
            goto done;
        }
        if ((rc = refine_boxes(&net, &root, lo, hi, refine_layers, refine_domains, dc.bab_iters, bw, &o, &oi, INFINITY,
                               &nd)))
            goto done;
    }
    for (int g = 0; g < net.n_relu; g++) {
        int i = net.relu_step[g], j = g - net.s[i].relu_off, vi = net.s[i].in0;
        zlo[g] = root.lo[vi][j];
        zhi[g] = root.hi[vi][j];
    }
done:
    sk_free(bw);
    lp_bounds_free(&root);
    lp_net_free(&net);
    return rc;
}

int sk_certify_verify(struct sk_model *m, const struct sk_certify_property *p,
                      const struct sk_certify_verify_config *cfg, struct sk_certify_verify_report *rep, float *cex_x,
                      float *cex_y)
{
    double t0 = sk_now();
    struct sk_certify_verify_config dc = sk_certify_verify_defaults();
    if (!cfg) cfg = &dc;
    struct sk_certify_verify_report r = { .verdict = SK_VERDICT_ERROR, .stage = "", .disjunct = -1,
                                          .worst_lb = NAN };
    *rep = r;
    int rc = check_property(m, p);
    if (rc) return rc;
    if (!(cfg->timeout_s > 0) || cfg->pgd_restarts < 0 || cfg->pgd_steps < 0 || cfg->alpha_iters < 0 ||
        cfg->bab_iters < 0 || cfg->max_domain_mb < 1 || cfg->crown_rows < 0 || cfg->inter_alpha_iters < 0 ||
        cfg->refine_layers < 0 || cfg->refine_domains < 0 ||
        !(cfg->branch_decay >= 1) || !isfinite(cfg->branch_decay))
        return sk_error(SK_EINVAL, "verify: cfg.timeout_s %g (> 0), cfg.pgd_restarts %d, cfg.pgd_steps %d, "
                        "cfg.alpha_iters %d, cfg.bab_iters %d, cfg.refine_layers %d, cfg.refine_domains %d (>= 0), "
                        "cfg.max_domain_mb %d (>= 1), cfg.branch_decay %g (>= 1) out of range",
                        cfg->timeout_s, cfg->pgd_restarts, cfg->pgd_steps, cfg->alpha_iters, cfg->bab_iters,
                        cfg->refine_layers, cfg->refine_domains, cfg->max_domain_mb, (double)cfg->branch_decay);
    double deadline = t0 + cfg->timeout_s;
    int D = p->n_in, K = p->n_out;
    float *x = sk_malloc(sizeof(float) * (size_t)D), *y = sk_malloc(sizeof(float) * (size_t)K);
    float *lb = sk_malloc(sizeof(float) * (size_t)p->n_rows), *tg = sk_malloc(sizeof(float) * (size_t)p->n_rows);
    float *xs = sk_malloc(sizeof(float) * (size_t)p->n_rows * D);
    int *open = sk_malloc(sizeof(int) * (size_t)p->n_disj);
    float *dlb = sk_malloc(sizeof(float) * (size_t)p->n_disj), *branch_w = NULL;
    struct lp_net net = { 0 };
    struct lp_bounds root = { 0 };
    if (!x || !y || !lb || !tg || !xs || !open || !dlb) {
        rc = SK_ENOMEM;
        goto done;
    }
    for (int k = 0; k < p->n_rows; k++) tg[k] = p->d[k] + tol_of(p->d[k]);
    bool found = false;
    int which = -1;
    /* a counterexample first */
    if (cfg->pgd_restarts > 0 &&
        (rc = margin_pgd(m, p, cfg->pgd_restarts, cfg->pgd_steps, cfg->seed, NULL, deadline, &found, x, &which)))
        goto done;
    if (found) {
        r.verdict = SK_VERDICT_SAT;
        r.stage = "pgd";
        r.disjunct = which;
        goto sat;
    }
    if ((rc = lp_net_build_graph(m, &net)) || (rc = lp_bounds_alloc(&net, &root))) goto done;
    net.sound = cfg->sound_fp;
    struct lp_opts o = { .with_ibp = true, .crown_rows = cfg->crown_rows, .alpha_iters = 0,
                         .deadline = deadline };
    if ((rc = lp_bounds_compute(&net, p->lo, p->hi, NULL, 0, &o, &root))) goto done;
    /* CROWN on every row, then α-CROWN on the disjuncts left */
    if ((rc = lp_backward(&net, &root, net.n, p->c, p->n_rows, &o, NULL, lb))) goto done;
    int n_open = 0;
    for (int i = 0; i < p->n_disj; i++) {
        bool refuted = false;
        for (int k = p->disj[i]; k < p->disj[i + 1]; k++) refuted |= lb[k] > tg[k];
        if (!refuted) open[n_open++] = i;
    }
    r.stage = "crown";
    if (n_open > 0 && cfg->alpha_iters > 0 && net.n_relu > 0) {
        r.stage = "alpha-crown";
        int m2 = 0;
        for (int t = 0; t < n_open; t++) {
            int i = open[t], R = p->disj[i + 1] - p->disj[i];
            const float *Ci = p->c + (size_t)p->disj[i] * K;
            if ((rc = lp_alpha_optimize(&net, &root, net.n, Ci, R, cfg->alpha_iters, 0.1f, NULL, NULL, NULL, &o,
                                        tg + p->disj[i], lb + p->disj[i], xs + (size_t)p->disj[i] * D, NULL)))
                goto done;
            bool refuted = false;
            for (int k = p->disj[i]; k < p->disj[i + 1]; k++) refuted |= lb[k] > tg[k];
            if (refuted) continue;
            open[m2++] = i;
            /* the corners of the bound may be counterexamples */
            for (int k = p->disj[i]; k < p->disj[i + 1] && !found; k++) {
                bool holds = false;
                int dj = -1;
                if ((rc = sk_certify_property_check(m, p, xs + (size_t)k * D, 0, &holds, NULL, &dj))) goto done;
                if (holds) {
                    memcpy(x, xs + (size_t)k * D, sizeof(float) * (size_t)D);
                    found = true;
                    which = dj;
                }
            }
            /* and good starts for PGD on that disjunct alone: the relaxation
             * points at where the network is weakest */
            if (!found && cfg->pgd_restarts > 0) {
                int sd[2] = { 0, p->disj[i + 1] - p->disj[i] };
                struct sk_certify_property sub = *p;
                sub.n_rows = sd[1];
                sub.c = p->c + (size_t)p->disj[i] * K;
                sub.d = p->d + p->disj[i];
                sub.n_disj = 1;
                sub.disj = sd;
                if ((rc = margin_pgd(m, &sub, cfg->pgd_restarts, cfg->pgd_steps, cfg->seed + 1 + (uint64_t)i,
                                     xs + (size_t)p->disj[i] * D, deadline, &found, x, &which)))
                    goto done;
                if (found) {
                    which = i;
                    r.stage = "alpha-pgd";
                }
            }
            if (found) break;
        }
        n_open = m2;
    }
    if (found) {
        r.verdict = SK_VERDICT_SAT;
        r.disjunct = which;
        goto sat;
    }
    if (n_open == 0) {
        r.verdict = SK_VERDICT_UNSAT;
        goto done;
    }
    if (!cfg->bab || net.n_relu == 0) {
        r.verdict = SK_VERDICT_UNKNOWN;
        goto done;
    }
    /* the easiest disjuncts first: a timeout on the hardest then costs nothing else */
    for (int t = 0; t < n_open; t++) {
        float best = -INFINITY;
        for (int k = p->disj[open[t]]; k < p->disj[open[t] + 1]; k++)
            best = lb[k] - p->d[k] > best ? lb[k] - p->d[k] : best;
        dlb[t] = best;
    }
    for (int a = 1; a < n_open; a++)
        for (int b = a; b > 0 && dlb[b - 1] < dlb[b]; b--) {
            float tf = dlb[b];
            dlb[b] = dlb[b - 1];
            dlb[b - 1] = tf;
            int ti = open[b];
            open[b] = open[b - 1];
            open[b - 1] = ti;
        }
    if (!(branch_w = layer_weights(&net, cfg->branch_decay))) {
        rc = SK_ENOMEM;
        goto done;
    }
    /* Every subdomain's intermediate boxes start from the root's (a child
     * only tightens its parent's after its split): worth α-CROWN on every
     * layer first, and branch and bound on the boxes of the first layers,
     * which decide some disjuncts outright. */
    bool refine = cfg->refine_layers > 0 && cfg->refine_domains > 0 && !net.graph && net.n_relu > 0;
    if (cfg->inter_alpha_iters > 0 || refine) {
        struct lp_opts oi = o;
        oi.alpha_iters = cfg->inter_alpha_iters;
        if (cfg->inter_alpha_iters > 0 && (rc = lp_bounds_compute(&net, p->lo, p->hi, NULL, 0, &oi, &root))) goto done;
        if (refine &&
            (rc = refine_boxes(&net, &root, p->lo, p->hi, cfg->refine_layers, cfg->refine_domains, cfg->bab_iters,
                               branch_w, &o, &oi, deadline, &r.domains)))
            goto done;
        int m2 = 0;
        for (int t = 0; t < n_open; t++) {
            int i = open[t], R = p->disj[i + 1] - p->disj[i];
            if ((rc = lp_alpha_optimize(&net, &root, net.n, p->c + (size_t)p->disj[i] * K, R, cfg->alpha_iters, 0.1f,
                                        NULL, NULL, NULL, &o, tg + p->disj[i], lb + p->disj[i], NULL, NULL)))
                goto done;
            bool refuted = false;
            for (int k = p->disj[i]; k < p->disj[i + 1]; k++) refuted |= lb[k] > tg[k];
            if (!refuted) open[m2++] = i;
        }
        n_open = m2;
        r.stage = "alpha-crown";
        if (n_open == 0) {
            r.verdict = SK_VERDICT_UNSAT;
            goto done;
        }
    }
    r.stage = "bab";
    r.worst_lb = INFINITY;
    enum sk_certify_verdict v = SK_VERDICT_UNSAT;
    for (int t = 0; t < n_open; t++) {
        int i = open[t], R = p->disj[i + 1] - p->disj[i];
        struct bab B = { .net = &net, .root = &root, .p = p, .C = p->c + (size_t)p->disj[i] * K,
                         .d = p->d + p->disj[i], .target = tg + p->disj[i], .R = R, .iters = cfg->bab_iters,
                         .lr = 0.1f, .branch_w = branch_w, .o = o, .oc = o, .m = m, .seed = cfg->seed };
        if (!cfg->child_crown) B.oc.crown_rows = 0;
        B.sub = *p;
        B.sub.n_rows = R;
        B.sub.c = B.C;
        B.sub.d = B.d;
        B.sub.n_disj = 1;
        B.sub_disj[0] = 0;
        B.sub_disj[1] = R;
        B.sub.disj = B.sub_disj;
        /* the root domain: its α from a fresh α-CROWN with the branching scores */
        struct dom *root_d = sk_calloc(1, sizeof *root_d);
        size_t na = (size_t)R * net.n_relu + 1;
        struct ws w0;
        if (!root_d || !(root_d->alpha = sk_malloc(sizeof(float) * na)) ||
            !(root_d->beta = sk_calloc(na, sizeof(float)))) {
            dom_free(root_d);
            rc = SK_ENOMEM;
            goto done;
        }
        for (size_t q = 0; q < na; q++) root_d->alpha[q] = NAN; /* projected to CROWN's slopes */
        if ((rc = ws_alloc(&B, &w0))) {
            dom_free(root_d);
            goto done;
        }
        bound_domain(&B, &w0, root_d);
        ws_free(&w0);
        r.domains++;
        int outcome = BAB_UNKNOWN;
        float worst = INFINITY;
        if (root_d->status < 0) {
            rc = root_d->status;
            dom_free(root_d);
            goto done;
        } else if (root_d->status == 1) {
            dom_free(root_d);
            continue;
        } else if (root_d->status == 2) {
            memcpy(x, root_d->cex, sizeof(float) * (size_t)D);
            dom_free(root_d);
            outcome = BAB_SAT;
        } else if (root_d->status == 3) {
            worst = root_d->score;
            dom_free(root_d);
            outcome = BAB_UNKNOWN;
        } else if ((rc = bab_run(&B, root_d, cfg, deadline, &outcome, x, &r.domains, &worst))) {
            goto done;
        }
        if (outcome == BAB_SAT) {
            bool holds = false;
            int dj = -1;
            if ((rc = sk_certify_property_check(m, p, x, 0, &holds, NULL, &dj))) goto done;
            if (holds) {
                r.verdict = SK_VERDICT_SAT;
                r.disjunct = dj;
                goto sat;
            }
            /* the steps' forward and the model's disagree at the boundary: not a counterexample */
            outcome = BAB_UNKNOWN;
        }
        if (worst < r.worst_lb) r.worst_lb = worst;
        if (outcome == BAB_TIMEOUT) {
            v = SK_VERDICT_TIMEOUT;
            break;
        }
        if (outcome == BAB_UNKNOWN) v = SK_VERDICT_UNKNOWN;
    }
    r.verdict = v;
    goto done;
sat:
    {
        bool holds = false;
        int dj = -1;
        if ((rc = sk_certify_property_check(m, p, x, 0, &holds, y, &dj))) goto done;
        SK_ASSERT(holds); /* every path to here re-checked it */
        if (cex_x) memcpy(cex_x, x, sizeof(float) * (size_t)D);
        if (cex_y) memcpy(cex_y, y, sizeof(float) * (size_t)K);
    }
done:
    r.seconds = sk_now() - t0;
    if (rc) r.verdict = SK_VERDICT_ERROR;
    *rep = r;
    sk_free(x);
    sk_free(y);
    sk_free(lb);
    sk_free(tg);
    sk_free(xs);
    sk_free(open);
    sk_free(dlb);
    sk_free(branch_w);
    lp_bounds_free(&root);
    lp_net_free(&net);
    return rc;
}

/* ---------------- from a VNN-LIB file ---------------- */

static float round_down(double v)
{
    float f = (float)v;
    return (double)f > v ? nextafterf(f, -INFINITY) : f;
}

static float round_up(double v)
{
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

/* The property of a VNN-LIB file in float (owned buffers in *p; free with
 * vnnlib_property_free): the box rounded outward, each d rounded up, so
 * c·y > d proved in float is proved for the file's numbers. */
static int vnnlib_property(const struct sk_model *m, const struct sk_vnnlib *v, struct sk_certify_property *p)
{
    memset(p, 0, sizeof *p);
    if (v->n_inputs != m->in_dim || v->n_outputs != m->n_classes)
        return sk_error(SK_EINVAL, "verify: the property declares %d inputs and %d outputs, the model '%s' has %d and %d",
                        v->n_inputs, v->n_outputs, m->spec, m->in_dim, m->n_classes);
    int n_rows = 0, D = v->n_inputs, K = v->n_outputs;
    for (int i = 0; i < v->n_disjuncts; i++) n_rows += v->disj[i].n;
    float *lo = sk_malloc(sizeof(float) * (size_t)D), *hi = sk_malloc(sizeof(float) * (size_t)D);
    float *c = sk_calloc((size_t)n_rows * K + 1, sizeof(float)), *d = sk_malloc(sizeof(float) * ((size_t)n_rows + 1));
    int *disj = sk_malloc(sizeof(int) * ((size_t)v->n_disjuncts + 1));
    *p = (struct sk_certify_property){ .n_in = D, .n_out = K, .lo = lo, .hi = hi, .n_rows = n_rows, .c = c, .d = d,
                                       .n_disj = v->n_disjuncts, .disj = disj };
    if (!lo || !hi || !c || !d || !disj) return SK_ENOMEM;
    for (int j = 0; j < D; j++) {
        lo[j] = round_down(v->lo[j]);
        hi[j] = round_up(v->hi[j]);
    }
    int k = 0;
    for (int i = 0; i < v->n_disjuncts; i++) {
        disj[i] = k;
        for (int t = 0; t < v->disj[i].n; t++, k++) {
            const struct sk_vnnlib_constraint *ct = &v->disj[i].c[t];
            for (int q = 0; q < ct->n_terms; q++) {
                if (ct->idx[q] < 0 || ct->idx[q] >= K)
                    return sk_error(SK_EINVAL, "verify: constraint %d of disjunct %d names Y_%d of %d outputs", t, i,
                                    ct->idx[q], K);
                c[(size_t)k * K + ct->idx[q]] += (float)ct->coef[q];
            }
            d[k] = round_up(ct->rhs);
        }
    }
    disj[v->n_disjuncts] = k;
    return SK_OK;
}

static void vnnlib_property_free(struct sk_certify_property *p)
{
    sk_free((void *)p->lo);
    sk_free((void *)p->hi);
    sk_free((void *)p->c);
    sk_free((void *)p->d);
    sk_free((void *)p->disj);
}

int sk_certify_verify_vnnlib(struct sk_model *m, const struct sk_vnnlib *v,
                             const struct sk_certify_verify_config *cfg, struct sk_certify_verify_report *rep,
                             float *cex_x, float *cex_y)
{
    struct sk_certify_verify_report r0 = { .verdict = SK_VERDICT_ERROR, .stage = "", .disjunct = -1,
                                           .worst_lb = NAN };
    *rep = r0;
    struct sk_certify_property p;
    float *x = sk_malloc(sizeof(float) * ((size_t)m->in_dim + 1)), *y = sk_malloc(sizeof(float) * ((size_t)m->n_classes + 1));
    int rc = vnnlib_property(m, v, &p);
    if (!rc && (!x || !y)) rc = SK_ENOMEM;
    if (!rc) rc = sk_certify_verify(m, &p, cfg, rep, x, y);
    if (!rc && rep->verdict == SK_VERDICT_SAT) {
        /* the file's own numbers decide: a point on the float box's outer
         * ulp, or meeting a rounded-up bound only, is no counterexample */
        if (!sk_certify_vnnlib_in_box(v, x, 1e-6) || !sk_certify_vnnlib_satisfied(v, y, 0)) {
            rep->verdict = SK_VERDICT_UNKNOWN;
            rep->stage = "recheck";
        } else {
            if (cex_x) memcpy(cex_x, x, sizeof(float) * (size_t)m->in_dim);
            if (cex_y) memcpy(cex_y, y, sizeof(float) * (size_t)m->n_classes);
        }
    }
    vnnlib_property_free(&p);
    sk_free(x);
    sk_free(y);
    return rc;
}

/* ---------------- search alone ---------------- */

int sk_certify_falsify(struct sk_model *m, const struct sk_certify_property *p, int restarts, int steps,
                       uint64_t seed, double timeout_s, bool *found, float *x, float *y, int *disjunct)
{
    *found = false;
    int rc = check_property(m, p);
    if (rc) return rc;
    if (restarts < 1 || steps < 0 || !(timeout_s > 0))
        return sk_error(SK_EINVAL, "falsify: restarts %d (>= 1), steps %d (>= 0), timeout_s %g (> 0) out of range",
                        restarts, steps, timeout_s);
    int which = -1;
    rc = margin_pgd(m, p, restarts, steps, seed, NULL, sk_now() + timeout_s, found, x, &which);
    if (rc || !*found) return rc;
    bool holds = false;
    if ((rc = sk_certify_property_check(m, p, x, 0, &holds, y, &which))) return rc;
    SK_ASSERT(holds); /* margin_pgd re-checked it alone */
    if (disjunct) *disjunct = which;
    return SK_OK;
}

int sk_certify_falsify_vnnlib(struct sk_model *m, const struct sk_vnnlib *v, int restarts, int steps,
                              uint64_t seed, double timeout_s, bool *found, float *x, float *y, int *disjunct)
{
    *found = false;
    struct sk_certify_property p;
    float *z = sk_malloc(sizeof(float) * ((size_t)m->n_classes + 1));
    int rc = vnnlib_property(m, v, &p);
    if (!rc && !z) rc = SK_ENOMEM;
    if (!rc) rc = sk_certify_falsify(m, &p, restarts, steps, seed, timeout_s, found, x, z, disjunct);
    if (!rc && *found && (!sk_certify_vnnlib_in_box(v, x, 1e-6) || !sk_certify_vnnlib_satisfied(v, z, 0)))
        *found = false; /* within the float box's outer ulp or a rounded-up bound only */
    if (!rc && *found && y) memcpy(y, z, sizeof(float) * (size_t)m->n_classes);
    vnnlib_property_free(&p);
    sk_free(z);
    return rc;
}
