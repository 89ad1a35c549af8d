/* Internal to libskeptic: the layer table.
 *
 * One row per enum sk_layer_kind holding what code that walks a model needs
 * to know about a layer: its spec word and argument grammar, its shape and
 * tensors, its parameters and their initialisation, its forward on a graph,
 * its interval bound propagation, its bias-free linear map and its Lipschitz
 * constant. The spec parser (spec.c), sk_model_forward, sk_model_init,
 * sk_layer_forward_fixed, IBP (certify/ibp.c) and the Lipschitz bound
 * (certify/lipschitz.c) read the table instead of switching on the kind, so
 * a new layer kind is one enum value and one row in layers.c.
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
    /* The second input of a two-input layer (add, cat): its node for
     * forward, its box (centre, radius) for ibp. The first input is the
     * node (box) the call is given. */
    int h2, c2, r2;
};

/* ---- the spec grammar of a row ----
 * In a cnn:/seq: spec a layer is its row's word, then its arguments in the
 * row's order: the first may follow the word directly, the others are each
 * introduced by a letter (conv32k3s2p1: 32, then k3, s2, p1). */
enum sk_layer_arg_type {
    SK_ARG_INT,   /* a positive integer (into an int field) */
    SK_ARG_INT0,  /* the same, or a single 0 */
    SK_ARG_FLOAT, /* digits with at most one '.', no sign or exponent (into a float field) */
};
struct sk_layer_arg {
    const char *what;    /* names the value in messages ("the stride after 's'"); NULL ends the list */
    char tag;            /* the letter before the value; 0: right after the word */
    enum sk_layer_arg_type type;
    bool optional;       /* may be left out: an untagged one is present when a number follows */
    size_t field;        /* offsetof(struct sk_layer, ...) */
    float def;           /* the value when left out */
    const char *missing; /* a required tagged argument: the message when its letter is absent */
};
#define SK_LAYER_MAX_ARGS 4

/* The input a layer takes. */
enum sk_layer_input { SK_INPUT_ANY, SK_INPUT_IMAGE, SK_INPUT_VECTOR };

/* The running shape of a spec being read: C values (H = W = 1) or a C x H x W image. */
struct sk_layer_shape {
    int C, H, W;
    bool spatial;
};

/* One tensor of a layer, named "<layer index>.<suffix>" in model files. */
enum sk_layer_tensor_slot { SK_TENSOR_W, SK_TENSOR_B, SK_TENSOR_RUNNING_MEAN, SK_TENSOR_RUNNING_VAR };
struct sk_layer_tensor {
    const char *suffix;  /* "weight", "bias", "running_mean", "running_var" */
    enum sk_layer_tensor_slot slot; /* which of L's offsets (w_off, b_off, rm_off, rv_off) */
    bool buffer;         /* in m->buffers (not trained) */
    int ndim, shape[4];
};
#define SK_LAYER_MAX_TENSORS 4

struct sk_layer_def {
    const char *name; /* the spec word (sk_layer_name) */
    /* The spec: the input it takes (else the spec is refused with input_note),
     * its arguments, and whether the word is one of mlp:'s activations. */
    enum sk_layer_input input;
    const char *input_note;
    struct sk_layer_arg args[SK_LAYER_MAX_ARGS];
    bool activation;
    /* From the layer's input shape (L->in set, arguments read) to its output
     * shape, in place in s; settles L's remaining fields. NULL, or a message
     * when the layer cannot take that input or those arguments. NULL: the
     * shape passes through. */
    const char *(*shape)(struct sk_layer *L, struct sk_layer_shape *s);
    /* A layer of two inputs (add, cat) has join instead of shape: from its
     * inputs' shapes s and s2 to its output shape in s; NULL or a message. */
    const char *(*join)(struct sk_layer *L, struct sk_layer_shape *s, const struct sk_layer_shape *s2);
    /* L's tensors in file order into t (at most SK_LAYER_MAX_TENSORS); their
     * count. NULL: none. Read after shape. */
    int (*tensors)(const struct sk_layer *L, struct sk_layer_tensor *t);
    /* Record the layer's weight and bias nodes from r->w / r->dw (the shapes
     * of its tensors); NULL for layers without parameters (this is what "has
     * parameters" means). */
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
