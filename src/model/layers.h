/* Internal to libskeptic: the layer table.
 *
 * One row per enum sk_layer_kind holding what code that walks a model needs
 * to know about a layer: its name, its parameters and their initialisation,
 * its forward on a graph, its interval bound propagation, its bias-free
 * linear map and its Lipschitz constant. sk_model_forward, sk_model_init,
 * sk_layer_forward_fixed, IBP (certify/ibp.c) and the Lipschitz bound
 * (certify/lipschitz.c) read the table instead of switching on the kind, so
 * a new layer kind is one enum value, one row in layers.c and its word in the
 * spec parser (spec.c).
 *
 *     struct sk_layer_run r = { .g = g, .m = m, .L = L, .w = m->params, .dw = m->grads };
 *     h = sk_layer_of(L)->forward(&r, h);
 */
#ifndef SK_MODEL_LAYERS_H
#define SK_MODEL_LAYERS_H

#include "skeptic/model.h"

/* One layer applied on a graph. */
struct sk_layer_run {
    struct sk_graph *g;
    /* The model (batch-norm running statistics, momentum and eps). Rows of
     * layers without parameters never read it: may be NULL for them. */
    const struct sk_model *m;
    const struct sk_layer *L;
    int index;        /* L's position in the model, for messages */
    /* Parameter values in the model's layout (m->params, or another set of
     * the same layout such as a posterior sample) and their gradient
     * accumulators (NULL: frozen, no parameter gradients). */
    float *w, *dw;
    bool train;       /* batch norm: batch statistics (running ones updated) */
    bool dropout;     /* dropout masks on */
    uint64_t key;     /* the dropout mask stream of this layer */
};

struct sk_layer_def {
    const char *name; /* the spec word (sk_layer_name) */
    /* Record the layer's weight and bias nodes from r->w / r->dw; NULL for
     * layers without parameters (this is what "has parameters" means). */
    int (*params)(const struct sk_layer_run *r, int *W, int *b);
    /* Set the layer's parameters (and buffers) in m for initialiser init,
     * drawing from rng, the layer's own stream. NULL: nothing to set. */
    int (*init)(struct sk_model *m, const struct sk_layer *L, enum sk_init init, struct sk_rng *rng);
    /* Node h through the layer; the output node or a negative status. */
    int (*forward)(const struct sk_layer_run *r, int h);
    /* Interval bound propagation, eval mode, in centre/radius form: from a
     * box (*c, *rad) containing the layer's inputs to one containing its
     * outputs (graph ops, so bounds are differentiable for certified
     * training). Returns SK_OK or a status; the caller checks *c and *rad.
     * NULL: not supported, and ibp_note says why. */
    int (*ibp)(const struct sk_layer_run *r, int *c, int *rad);
    const char *ibp_note;
    /* The bias-free linear map of a linear layer (dense, conv, average
     * pooling), whose operator norm the Lipschitz bound computes from the
     * map itself; NULL for other layers. */
    int (*linear)(const struct sk_layer_run *r, int h);
    /* A Lipschitz constant (2-norm) of the layer in closed form; NULL when
     * `linear` is set. */
    double (*lipschitz)(const struct sk_model *m, const struct sk_layer *L);
};

extern const struct sk_layer_def sk_layer_table[SK_LAYER_COUNT];

/* The row of L's kind. */
static inline const struct sk_layer_def *sk_layer_of(const struct sk_layer *L) { return &sk_layer_table[L->kind]; }

/* |W| = relu(W) + relu(-W) as graph ops (differentiable: sign(W)). */
int sk_layer_abs(struct sk_graph *g, int W);

#endif
