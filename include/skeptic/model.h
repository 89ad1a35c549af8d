/* skeptic/model.h — models (chains and graphs of layers) from a spec string; parameters in one
 * flat buffer; forward into a graph; prediction; Hessian-vector products;
 * the classifier seam.
 *
 * Spec grammar (whitespace not allowed):
 *
 *   spec   := "mlp:" dims [":" act] [":dropout" P]
 *           | ("cnn:" | "seq:") input ["=" label] ("-" layer)*
 *   dims   := D ("-" D)+                    e.g. 784-512-512-10
 *   input  := D | C "x" H "x" W             e.g. 1x28x28
 *   layer  := kind ["@" label ["@" label]] ["=" label]
 *   kind   := "dense" O | "conv" OC "k" K ["s" S] ["p" P] | "maxpool" K ["s" S]
 *           | "avgpool" K ["s" S] | "gap" | "flatten" | "relu" | "lrelu" [A]
 *           | "tanh" | "sigmoid" | "softplus" | "gelu" | "dropout" P | "bn"
 *           | "add" | "cat"
 *   act    := relu | lrelu | tanh | sigmoid | softplus | gelu
 *   label  := a lower-case letter, then lower-case letters, digits or '_'
 *             (at most 15 characters)
 *
 * "mlp:784-512-512-10:relu" is Linear(784,512) ReLU Linear(512,512) ReLU
 * Linear(512,10); with ":dropout0.2" a Dropout follows every hidden
 * activation. The CNN of the benchmarks is
 *   cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10
 * Pool stride defaults to the window. A dense layer after a spatial layer
 * needs an explicit "flatten" (as in PyTorch). Layer i of the list is
 * element i of the equivalent torch nn.Sequential, so its tensors are named
 * "i.weight", "i.bias" (and for bn "i.running_mean", "i.running_var").
 * Errors name the offending character: "spec 'mlp:784-x' at column 9: ...".
 *
 * Graphs. A layer reads the output of the layer before it, unless "@label"
 * names another one: "=label" after a layer (or after the input shape)
 * names its output. "add" sums two outputs of one shape (residual
 * connections), "cat" concatenates two outputs along the channels (features
 * for vectors; the heights and widths must agree), first input first. Both
 * take the previous output and "@a", or "@a@b" for the outputs a and b. A
 * named output must be read by some later layer. A ResNet basic block with
 * a projection shortcut, from the output named b:
 *   relu=b-conv32k3s2p1-bn-relu-conv32k3p1-bn=c-conv32k1s2@b-bn-add@c-relu
 * Layer i is still element i of the layer list (tensors "i.weight", ...);
 * a graph is not an nn.Sequential, but its ONNX export runs in PyTorch.
 *
 * Ownership: sk_model_* constructors return a model the caller frees with
 * sk_model_free (NULL ok). The model owns params, grads and buffers.
 * Threads: a model may be read by several threads (prediction) only if each
 * uses its own graph; training mutates it.
 */
#ifndef SKEPTIC_MODEL_H
#define SKEPTIC_MODEL_H

#include "skeptic/data.h"
#include "skeptic/graph.h"
#include "skeptic/model_file.h" /* save, load, the record in the file */

#ifdef __cplusplus
extern "C" {
#endif

/* Layer kinds: append only, before SK_LAYER_COUNT (saved in files through
 * the spec string). Each kind has one row in the layer table
 * (src/model/layers.c), which also gives its spec word and arguments. */
enum sk_layer_kind {
    SK_LAYER_DENSE, SK_LAYER_CONV, SK_LAYER_MAXPOOL, SK_LAYER_AVGPOOL, SK_LAYER_GAP,
    SK_LAYER_FLATTEN, SK_LAYER_RELU, SK_LAYER_LRELU, SK_LAYER_TANH, SK_LAYER_SIGMOID,
    SK_LAYER_SOFTPLUS, SK_LAYER_GELU, SK_LAYER_DROPOUT, SK_LAYER_BATCHNORM,
    SK_LAYER_ADD, SK_LAYER_CAT,
    SK_LAYER_COUNT
};
const char *sk_layer_name(enum sk_layer_kind k);

struct sk_layer {
    enum sk_layer_kind kind;
    /* The layers whose outputs it reads, earlier in the list; -1 is the
     * model's input. from[0] is the previous layer in a chain; from[1] is
     * the second input of add and cat, -1 for every other kind. */
    int from[2];
    int in[3], out[3];   /* C,H,W of input and output (dense data: D,1,1);
                            cat: in is its first input */
    bool spatial_in;     /* input is [N,C,H,W] (else [N,D]) */
    int units;           /* dense: outputs; conv: out channels; bn: channels */
    int k, stride, pad;  /* conv / pooling */
    float p;             /* dropout probability / leaky-relu slope */
    /* offsets in the model's params (w, b) and buffers (running mean, var) */
    size_t w_off, n_w, b_off, n_b, rm_off, rv_off;
};

/* One named tensor of the model (for files and initialisation). */
struct sk_tensor_info {
    char name[48];
    int layer;
    bool buffer;         /* in model->buffers (not trained) rather than params */
    size_t off;
    int ndim;
    int shape[4];
};

/* The data a model was trained on, as its files record it: the class
 * selection ("6,0": class 6 became 0, class 0 became 1; "" = all classes)
 * and, for single-file sets (CSV, npy), the seeded split that made the test
 * rows. A command given other classes or another split stops with an error
 * (sk_data_record_check) rather than scoring training rows as test rows. */
struct sk_data_record {
    char classes[256];
    bool has_split;       /* data_seed / test_fraction were recorded */
    uint64_t data_seed;   /* the effective seed (1 when none was given) */
    float test_fraction;  /* the effective fraction (0.2 when none was given) */
};

struct sk_model {
    char *spec;
    int n_layers;
    struct sk_layer *layers;
    int in_c, in_h, in_w, in_dim; /* input shape; in_dim = C*H*W */
    bool spatial;        /* input is an image (C,H,W) rather than a vector */
    int n_classes;       /* outputs of the last layer */
    size_t n_params;
    float *params;       /* all trainable parameters, contiguous */
    float *grads;        /* same layout as params */
    size_t n_buffers;
    float *buffers;      /* batch-norm running statistics */
    int n_tensors;
    struct sk_tensor_info *tensors;
    float bn_momentum, bn_eps; /* 0.1, 1e-5 as PyTorch */
    /* The model's input transform, its file's preprocessing record: the first
     * layer sees (x - shift[j]) * scale[j] (scale > 0) for raw x. NULL: none.
     * Owned. Inputs, eps, boxes and gradients are all in the raw data's units. */
    struct sk_preprocess *prep;
    /* What the training data were, recorded in every file made from the model
     * and checked against the data a command is given. */
    struct sk_data_record data;
    /* Per-feature range [in_lo, in_hi] of the training split (NULL: not
     * recorded, e.g. files from PyTorch). Data far outside it were probably
     * preprocessed already: sk_model_check_range says so. Owned. */
    float *in_lo, *in_hi;
};

/* Limits on what a spec may ask for, checked before anything is allocated:
 * values per row of the input and of every layer's output, and trainable
 * parameters plus buffers (a model holds parameters and gradients, 8 bytes
 * per parameter; training adds optimiser moments). A model also has to fit
 * in the machine's physical memory. */
#define SK_MODEL_MAX_ACTIVATION (1L << 26)
#define SK_MODEL_MAX_PARAMS (1L << 27)

/* Parse a spec and allocate a model with zeroed parameters (running
 * variances 1). NULL + sk_last_error() on a malformed spec, or one over the
 * limits above (the message gives the count and the limit). */
struct sk_model *sk_model_from_spec(const char *spec);
/* Parse a spec without allocating its parameters: the counts of parameters
 * and buffers (either may be NULL). For checking a file's tensors against
 * its spec before allocating. SK_EINVAL on a malformed or too large spec,
 * SK_ENOMEM when parsing ran out of memory. */
int sk_spec_size(const char *spec, size_t *n_params, size_t *n_buffers);
void sk_model_free(struct sk_model *m);
/* A deep copy (parameters, buffers; gradients zeroed). */
struct sk_model *sk_model_clone(const struct sk_model *m);
/* Copy parameters and buffers from src (same spec) into dst. */
int sk_model_copy_weights(struct sk_model *dst, const struct sk_model *src);

enum sk_init {
    SK_INIT_HE_UNIFORM, SK_INIT_HE_NORMAL, SK_INIT_GLOROT_UNIFORM, SK_INIT_GLOROT_NORMAL,
    SK_INIT_TORCH, /* PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases */
};
const char *sk_init_name(enum sk_init k);
/* He: std = sqrt(2/fan_in) (normal) or bound sqrt(6/fan_in) (uniform);
 * Glorot: std = sqrt(2/(fan_in+fan_out)), bound sqrt(6/(fan_in+fan_out)).
 * Biases zero (except SK_INIT_TORCH); bn gamma 1, beta 0, running var 1.
 * Draws come from the SK_STREAM_INIT stream of `seed`, tensor by tensor. */
int sk_model_init(struct sk_model *m, enum sk_init init, uint64_t seed);

enum sk_mode {
    SK_MODE_EVAL = 0,  /* dropout off, batch norm uses running statistics */
    SK_MODE_TRAIN = 1, /* dropout on, batch norm uses (and updates) batch statistics */
    SK_MODE_MC = 2,    /* eval, but dropout on: one Monte Carlo dropout sample */
};
/* Record the model's forward on g for input node x ([N,in_dim] or
 * [N,C,H,W]; reshaped as the model needs). noise_key keys the dropout masks
 * of this call (layer i uses sk_rng_derive(noise_key, i)). Returns the logits
 * node [N,n_classes] or a negative status. */
int sk_model_forward(struct sk_model *m, struct sk_graph *g, int x, enum sk_mode mode, uint64_t noise_key);
/* One layer without parameters (pooling, flatten, activations, dropout with
 * the mask keyed by dropout_key when dropout_on) applied to node h; for
 * dense, conv and batch-norm layers (which need weights) it returns h as is.
 * For callers that build their own forward pass over other weights. */
int sk_layer_forward_fixed(struct sk_graph *g, const struct sk_layer *L, int h, bool dropout_on, uint64_t dropout_key);

/* Log-probabilities for n rows of x (n x in_dim), batch by batch, written to
 * logp (n x n_classes). Eval mode. */
int sk_model_log_probs(struct sk_model *m, const float *x, int n, float *logp);
/* The same, but the raw class scores (logits) before the softmax. */
int sk_model_logits(struct sk_model *m, const float *x, int n, float *logits);
/* Accuracy and mean cross-entropy on (x, y). Either output may be NULL. */
int sk_model_evaluate(struct sk_model *m, const float *x, const int *y, int n, double *accuracy,
                      double *loss);

/* Mean cross-entropy loss of the batch and its gradient into m->grads
 * (overwritten). mode TRAIN or EVAL. */
int sk_model_loss_grad(struct sk_model *m, struct sk_graph *g, const float *x, const int *y, int n,
                       enum sk_mode mode, uint64_t noise_key, float *loss);

/* Exact Hessian-vector product of the mean cross-entropy on (x,y) w.r.t.
 * the parameters, in eval mode (dropout off, batch norm on its running
 * statistics): hv = H v with H = d^2 L / d theta^2, v and hv n_params floats
 * in the parameter layout. Forward-over-reverse on the tape (sk_graph_hvp):
 * exact up to float32 rounding, about three gradients' cost. ReLU and max
 * pooling contribute their active sets (second derivative 0 off kinks).
 * Parameters, buffers and m->grads unchanged. SK_EINVAL, naming
 * the op, for a model with an op that has no second-order rule. */
int sk_model_hvp(struct sk_model *m, const float *x, const int *y, int n, const float *v, float *hv);
/* The same w.r.t. the input rows x (raw units, through the model's input
 * transform): v and hv are n x in_dim floats, hv = (d^2 L / dx^2) v for the
 * mean loss L (rows are independent in eval mode: row i's block is 1/n times
 * the Hessian of its own loss). m->grads untouched. */
int sk_model_hvp_input(struct sk_model *m, const float *x, const int *y, int n, const float *v, float *hv);
/* The test oracle for the two above, not for use: central differences of
 * exact gradients, Hv ~ (g(theta + r v) - g(theta - r v)) / (2 r) with
 * r = 1e-3 (1 + |theta|) / |v|, eval mode; about 1e-3 relative error in
 * float32. Parameters and buffers restored exactly; m->grads zeroed. */
int sk_model_hvp_fd(struct sk_model *m, const float *x, const int *y, int n, const float *v, float *hv);

/* Attach the input transform p (copied; NULL or kind none removes it):
 * the model then takes raw data and applies p as its first step, so every
 * forward, gradient, attack and bound sees raw inputs. p->dim must be in_dim
 * and every scale finite and > 0. */
int sk_model_set_preprocess(struct sk_model *m, const struct sk_preprocess *p);
/* Record node x ([N,in_dim] or [N,C,H,W]) through the model's input transform
 * (x itself when it has none). sk_model_forward calls it first. */
int sk_model_input(const struct sk_model *m, struct sk_graph *g, int x);
/* The same on n raw rows (in place), for code that runs the network's
 * layers by hand (local reparameterisation, flipout). */
void sk_model_input_rows(const struct sk_model *m, float *x, int n);
/* The box [lo, hi] (per feature, n rows each of in_dim) mapped through the
 * input transform (exact: scale > 0); out may alias in. */
void sk_model_input_box(const struct sk_model *m, const float *lo, const float *hi, int n, float *lo_out,
                        float *hi_out);
/* The largest input scale (1 without a transform): the transform's Lipschitz
 * constant in every norm. */
float sk_model_input_gain(const struct sk_model *m);

/* Record the range of the training rows as m->in_lo/in_hi: per feature for
 * tables, per channel over all its pixels for images (H x W > 1; stored
 * expanded to every pixel), like the preprocessing's statistics. */
int sk_model_set_range(struct sk_model *m, const struct sk_dataset *train);
/* SK_EINVAL when more than 1% of the values of n rows x lie outside the
 * recorded training range widened by a quarter of its width on each side
 * (the message names the data `what`, the worst feature and the
 * preprocessing the model applies itself); SK_OK otherwise or without a
 * record. Catches data preprocessed a second time, or in other units. */
int sk_model_check_range(const struct sk_model *m, const float *x, int n, const char *what);

/* Record in m what its training data were: the class selection `classes`
 * (NULL = all), and for a data set `data` that is split by seed
 * (sk_data_split_by_seed) its data seed and test fraction (0 = the defaults
 * 1 and 0.2); fit the preprocessing `prep` on train and attach it as m's
 * input transform (the data stay raw); record train's range
 * (sk_model_set_range). Every trainer calls it before training, so that the
 * file written afterwards opens the same data the same way. */
int sk_model_record_data(struct sk_model *m, const char *data, const char *classes, uint64_t data_seed,
                         float test_fraction, const struct sk_dataset *train, enum sk_prep_kind prep);
/* Check a data request against the record (classes: the selection asked for,
 * NULL = none asked; seed/fraction: 0 = not asked). Fills *eff with what to
 * open (the record's values where none were asked). SK_EINVAL with a
 * message naming both when they differ. `what` names the model in messages. */
int sk_data_record_check(const struct sk_data_record *rec, const char *what, const char *classes, uint64_t seed,
                         float test_fraction, struct sk_data_record *eff);

/* True when every layer reads the one before it (a chain, nn.Sequential);
 * false for a graph with branches (add, cat or a layer reading a named
 * output). Code that runs the layers one after the other by hand refuses
 * graphs with a message naming the model and what to use instead. */
bool sk_model_is_chain(const struct sk_model *m);

/* Number of trainable parameters of a tensor table entry / whole model. */
size_t sk_model_n_params(const struct sk_model *m);
/* Find a tensor by name; NULL if none. */
const struct sk_tensor_info *sk_model_tensor(const struct sk_model *m, const char *name);
/* Pointer to a tensor's data (params or buffers). */
float *sk_model_tensor_data(const struct sk_model *m, const struct sk_tensor_info *t);
/* True if any layer is stochastic at prediction in `mode` (dropout in MC). */
bool sk_model_has_dropout(const struct sk_model *m);

/* ---------------- the classifier seam ----------------
 * Everything that attacks, Bayesian prediction, metrics and certification
 * need from a model: log-probabilities for a batch, and the gradient of a
 * loss of those log-probabilities with respect to the input. A posterior
 * (ensemble, MC dropout, variational, SGLD, Laplace) returns the log of the
 * *averaged* probabilities over its samples, and its input gradient is then
 * the expectation-over-transformation (EOT) gradient of that quantity.
 */

/* A per-row loss of log-probabilities: writes loss[N] (may be NULL) and
 * dloss/dlogp [N,K]. */
typedef void (*sk_logp_loss_fn)(void *ctx, const float *logp, int N, int K, float *loss, float *dlogp);

struct sk_classifier {
    void *self;
    int n_classes;
    int in_c, in_h, in_w, in_dim;
    bool stochastic;     /* two calls on the same input may differ */
    int n_samples;       /* samples averaged per call (1 = no EOT) */
    const char *kind;    /* "deterministic", "mc-dropout", "ensemble", ... */
    /* log-probabilities of N rows of x: logp [N,K]. */
    int (*log_probs)(void *self, const float *x, int N, float *logp);
    /* loss per row and its gradient w.r.t. x: fills logp [N,K] (may be NULL),
     * loss [N] (may be NULL) and dx [N,in_dim]. */
    int (*input_grad)(void *self, const float *x, int N, sk_logp_loss_fn f, void *fctx, float *logp,
                      float *loss, float *dx);
    void (*destroy)(void *self);
    /* counters for reports */
    long n_forward, n_backward;
};

/* A classifier over a model (borrowed: must outlive the classifier).
 * mode EVAL: deterministic. mode MC: dropout on, averaging `samples` masks
 * per call (samples >= 1), masks from stream `seed`; each call advances it. */
struct sk_classifier *sk_classifier_from_model(struct sk_model *m, enum sk_mode mode, int samples,
                                               uint64_t seed);
void sk_classifier_free(struct sk_classifier *c); /* NULL ok */
/* Predicted classes (argmax of log_probs) of N rows. */
int sk_classifier_predict(struct sk_classifier *c, const float *x, int N, int *pred);

/* Ready-made logp losses (ctx = const int *labels, or for targeted ones a
 * const int *targets): cross-entropy -logp_y, targeted +logp_t. */
void sk_logp_loss_ce(void *labels, const float *logp, int N, int K, float *loss, float *dlogp);
void sk_logp_loss_ce_targeted(void *targets, const float *logp, int N, int K, float *loss, float *dlogp);

#ifdef __cplusplus
}
#endif
#endif
