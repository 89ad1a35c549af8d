/* ONNX import: a ModelProto (decoded by protobuf-c from onnx.proto) mapped
 * onto skeptic layers: a chain, or a graph whose layers read earlier
 * outputs (residual Add, Concat on the channels).
 *
 * The reader works in four passes over the graph:
 *   1. values: every graph input, initializer and node output by name
 *      (a hash table), constants decoded with their declared sizes checked
 *      against the bytes actually present;
 *   2. order: nodes sorted topologically (Kahn, smallest file index first, so
 *      a file already in order keeps its order and its layers their
 *      indices), so a cycle or an input that nothing produces is an error
 *      naming the node;
 *   3. folding: nodes whose inputs are all constants (Constant, Identity,
 *      Transpose of weights, Reshape, arithmetic) evaluated once;
 *   4. the walk: every node that reads a computed value, in that order, is
 *      mapped (alone, or as a GELU pattern) onto a layer that reads the
 *      layers its inputs came from, or folded into the input transform or
 *      the affine layer before it, or found to change nothing (Identity,
 *      a Flatten of a vector). Each computed value remembers the layer whose
 *      output it is, its shape and whether a constant may still fold into
 *      that layer (only while nothing else reads it). A node reading two
 *      computed values is a join: Add or Sum (one shape) become add layers,
 *      Concat on axis 1 cat layers. A computed value that nothing reads and
 *      that is not the output is a side branch, an error naming its node.
 * The layers become a spec string (sk_model_from_spec; a layer that does not
 * read the one before it reads a label: "=l3", "@l3"), the weights are
 * copied into its tensors, and what was changed on the way (an output
 * softmax removed, a tanh GELU replaced) is returned as notes. */
#include "model/onnx.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_record.h"
#include "onnx/onnx.pb-c.h"

#define MAX_DIMS 8
/* protobuf-c's allocations for a file of n bytes: every decoded message is a
 * struct of up to ~300 bytes, so this bounds the worst case of tiny messages
 * with room for all real files. */
#define PB_BUDGET(n) ((size_t)(n) * 96 + ((size_t)1 << 20))
#define MAX_FILE ((long)1 << 31)
#define GELU_MAX_NODES 16
/* how far past its input the walk looks for the nodes of a GELU pattern */
#define GELU_WINDOW 256
/* computed inputs of one node (a Concat or Sum of more becomes a chain of joins) */
#define MAX_JOIN 64
/* val.fold: no layer to fold a constant into; the input transform */
#define FOLD_NONE (-1)
#define FOLD_INPUT (-2)
/* imp.fold_out before a node is mapped: its output is an alias of its input */
#define FOLD_ALIAS (-3)

static const char *supported_ops =
    "Gemm, MatMul, Add, Sub, Mul, Div (by constants), Add and Sum of two computed tensors of one shape (residual), "
    "Concat (axis 1), Conv, Relu, LeakyRelu, Sigmoid, Tanh, Softplus, GELU (Erf- or Tanh-based patterns), MaxPool, "
    "AveragePool, GlobalAveragePool, ReduceMean (over H and W), Flatten, Reshape (to flat), Transpose (of "
    "constants), BatchNormalization, Dropout, Identity, Constant, Pad (by zeros), Softmax/LogSoftmax (at the output)";

/* ---------------- sniffing ---------------- */

bool sk_onnx_sniff(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    unsigned char b[9];
    size_t n = fread(b, 1, sizeof b, fp);
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0) size = ftell(fp);
    fclose(fp);
    if (n < 2) return false;
    if (n == 9 && b[8] == '{') {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | b[i];
        if (size >= 8 && len <= (uint64_t)size - 8) return false;
    }
    /* ModelProto fields 1..20 with their wire types: ir_version 1 varint,
     * opset_import 8, producer 2-4, doc 6, graph 7, metadata 14, ... LEN */
    unsigned field = b[0] >> 3, wt = b[0] & 7;
    if (b[0] & 0x80) return false;
    if (field == 1 || field == 5) return wt == 0;
    return field >= 2 && field <= 15 && wt == 2;
}

bool sk_onnx_plain_float(float v, char *buf, size_t cap)
{
    if (!(v >= 0) || !isfinite(v) || cap < 32) return false;
    for (int d = 0; d <= 30; d++) {
        int n = snprintf(buf, cap, "%.*f", d, (double)v);
        if (n < 0 || n >= 32) return false;
        if (strtof(buf, NULL) == v) {
            if (!strchr(buf, '.')) {
                if (n + 2 >= 32) return false;
                strcat(buf, ".0");
            }
            return true;
        }
    }
    return false;
}

/* ---------------- protobuf-c with a budget ---------------- */

struct pb_budget {
    size_t used, cap;
    bool over;
};

static void *pb_alloc(void *ctx, size_t n)
{
    struct pb_budget *b = ctx;
    if (n > b->cap - b->used) {
        b->over = true;
        return NULL;
    }
    b->used += n;
    return sk_malloc(n ? n : 1);
}

static void pb_free(void *ctx, void *p)
{
    (void)ctx;
    sk_free(p);
}

/* ---------------- values ---------------- */

struct val {
    const char *name;
    int producer;       /* node index, -1: graph input or initializer */
    bool input;         /* the graph's (non-initializer) input */
    bool is_const;
    int ndim;
    int64_t dims[MAX_DIMS];
    size_t numel;
    float *f;           /* constant's values as float32 (owned) */
    int64_t *i;         /* integer constants (owned), NULL for float ones */
    int cons_start, n_cons; /* consumers: imp->cons[cons_start ..] */
    /* computed values, once the walk has reached them (mapped) */
    bool mapped;
    int layer;          /* the layer whose output it is; -1: the model's input (after the transform) */
    int fold;           /* where a constant operation on it folds: a layer, FOLD_INPUT or FOLD_NONE;
                           valid only while it is read by that one operation */
    bool spatial;
    int C, H, W;        /* vector: C features, H = W = 1 */
    int rank;           /* its rank in the ONNX graph ([N, C, 1, 1] after GlobalAveragePool is a vector of rank 4) */
};

struct layer {
    enum sk_layer_kind kind;
    int from[2];        /* as sk_layer.from: the layers read, -1 the input */
    int units, k, stride, pad;
    float p;
    float *w, *b, *rm, *rv; /* owned */
    size_t per_unit;    /* weights per output unit (row of w), for folding constants */
    const char *node;   /* the node it came from */
};

struct imp {
    const char *path;
    const Onnx__ModelProto *mp;
    const Onnx__GraphProto *g;
    int opset;
    struct val *v;
    int n_v, cap_v;
    int *hash;          /* open addressing, -1 empty */
    size_t hash_cap;
    int *cons;          /* consumer node indices, grouped per value */
    int *order;         /* nodes in topological order */
    int *pos;           /* pos[node] = index in order */
    bool *done;         /* node mapped or folded */
    /* the layers being built */
    struct layer *L;
    int n_L, cap_L;
    /* the node being mapped: its computed input (the running value) and its
     * shape, which the map_* functions advance to the output's */
    int x;
    int from;           /* the layer the next layer pushed reads (-1: the input) */
    bool spatial;
    int C, H, W, rank;
    int fold_out;       /* where a constant may fold into the output: FOLD_ALIAS (as the input), a layer, FOLD_NONE */
    int in_c, in_h, in_w, in_dim, in_rank;
    bool in_spatial;
    float *shift, *scale; /* input transform, in_dim each (NULL: none yet) */
    float bn_eps_note;
    char notes[2048];
};

static void note(struct imp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct imp *im, const char *fmt, ...)
{
    size_t o = strlen(im->notes);
    if (o + 4 >= sizeof im->notes) return;
    if (o) {
        strcat(im->notes, "; ");
        o += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->notes + o, sizeof im->notes - o, fmt, ap);
    va_end(ap);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int find_val(const struct imp *im, const char *name)
{
    if (!name || !im->hash_cap) return -1;
    for (size_t h = hash_str(name) & (im->hash_cap - 1);; h = (h + 1) & (im->hash_cap - 1)) {
        int k = im->hash[h];
        if (k < 0) return -1;
        if (!strcmp(im->v[k].name, name)) return k;
    }
}

/* A new value; SK_EFORMAT when the name is taken (ONNX names are SSA). */
static int add_val(struct imp *im, const char *name, int producer, const char *what)
{
    if (!name || !*name) return sk_error(SK_EFORMAT, "%s: %s has an empty name", im->path, what);
    if (find_val(im, name) >= 0)
        return sk_error(SK_EFORMAT, "%s: value '%.100s' (%s) is defined twice", im->path, name, what);
    SK_ASSERT(im->n_v < im->cap_v);
    struct val *v = &im->v[im->n_v];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->producer = producer;
    size_t h = hash_str(name) & (im->hash_cap - 1);
    while (im->hash[h] >= 0) h = (h + 1) & (im->hash_cap - 1);
    im->hash[h] = im->n_v;
    return im->n_v++;
}

static const char *dtype_name(int t)
{
    static const char *n[] = { "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
                               "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
                               "COMPLEX128", "BFLOAT16" };
    return t >= 0 && t < (int)(sizeof n / sizeof *n) ? n[t] : "unknown";
}

/* Decode a TensorProto into a constant value; sizes checked against the
 * data present, so nothing larger than the file is allocated. */
static int decode_tensor(struct imp *im, const Onnx__TensorProto *t, struct val *v, const char *what)
{
    const char *nm = t->name && *t->name ? t->name : v->name;
    if (t->n_dims > MAX_DIMS)
        return sk_error(SK_EFORMAT, "%s: %s '%.100s' has %zu dimensions (at most %d)", im->path, what, nm, t->n_dims,
                        MAX_DIMS);
    size_t numel = 1;
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0 || t->dims[d] > INT32_MAX)
            return sk_error(SK_EFORMAT, "%s: %s '%.100s' dimension %zu is %lld", im->path, what, nm, d,
                            (long long)t->dims[d]);
        v->dims[d] = t->dims[d];
        if (t->dims[d] && numel > (size_t)INT32_MAX / (size_t)t->dims[d])
            return sk_error(SK_EFORMAT, "%s: %s '%.100s' declares more than 2^31 elements", im->path, what, nm);
        numel *= (size_t)t->dims[d];
    }
    v->ndim = (int)t->n_dims;
    v->numel = numel;
    v->is_const = true;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return sk_error(SK_EFORMAT, "%s: %s '%.100s' keeps its data in an external file, which is not supported "
                        "(save the model with its weights inside: onnx.save(model, path, save_as_external_data=False))",
                        im->path, what, nm);
    int dt = t->has_data_type ? t->data_type : 0;
    size_t es = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4
                : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? 8 : 0;
    if (!es)
        return sk_error(SK_EFORMAT, "%s: %s '%.100s' has data type %s (%d); FLOAT, DOUBLE, INT32 and INT64 are read",
                        im->path, what, nm, dtype_name(dt), dt);
    size_t have = t->has_raw_data ? t->raw_data.len / es
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->n_float_data
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->n_int64_data : t->n_int32_data;
    if ((t->has_raw_data && t->raw_data.len % es) || have != numel)
        return sk_error(SK_EFORMAT, "%s: %s '%.100s' declares %zu elements of %s but holds %zu%s", im->path, what, nm,
                        numel, dtype_name(dt), t->has_raw_data ? t->raw_data.len : have,
                        t->has_raw_data ? " bytes of raw data" : "");
    v->f = sk_malloc(sizeof(float) * (numel ? numel : 1));
    bool integer = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    if (integer) v->i = sk_malloc(sizeof(int64_t) * (numel ? numel : 1));
    if (!v->f || (integer && !v->i)) return SK_ENOMEM;
    const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
    for (size_t k = 0; k < numel; k++) {
        if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            float x;
            if (raw) memcpy(&x, raw + 4 * k, 4); /* little-endian host, as ONNX's raw data */
            else x = t->float_data[k];
            v->f[k] = x;
        } else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
            double x;
            if (raw) memcpy(&x, raw + 8 * k, 8);
            else x = t->double_data[k];
            v->f[k] = fabs(x) <= FLT_MAX || isnan(x) ? (float)x : x > 0 ? INFINITY : -INFINITY;
        } else {
            int64_t x;
            if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
                if (raw) memcpy(&x, raw + 8 * k, 8);
                else x = t->int64_data[k];
            } else {
                int32_t y;
                if (raw) memcpy(&y, raw + 4 * k, 4);
                else y = t->int32_data[k];
                x = y;
            }
            v->i[k] = x;
            v->f[k] = (float)x;
        }
    }
    return SK_OK;
}

/* ---------------- nodes and attributes ---------------- */

static const Onnx__NodeProto *node_at(const struct imp *im, int k) { return im->g->node[k]; }

static const char *node_name(const Onnx__NodeProto *n)
{
    return n->name && *n->name ? n->name : n->n_output && n->output[0] && *n->output[0] ? n->output[0] : "?";
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t a = 0; a < n->n_attribute; a++)
        if (n->attribute[a]->name && !strcmp(n->attribute[a]->name, name)) return n->attribute[a];
    return NULL;
}

static int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

static float attr_f(const Onnx__NodeProto *n, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : dflt;
}

static int node_err(const struct imp *im, const Onnx__NodeProto *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int node_err(const struct imp *im, const Onnx__NodeProto *n, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sk_error(SK_EFORMAT, "%s: node '%.100s' (%.40s, opset %d): %s", im->path, node_name(n),
                    n->op_type ? n->op_type : "?", im->opset, what);
}

/* The ints of attribute name (NULL, *n = 0 when absent). */
static const int64_t *attr_ints(const Onnx__NodeProto *n, const char *name, size_t *cnt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    *cnt = a ? a->n_ints : 0;
    return a ? a->ints : NULL;
}

static struct val *in_val(const struct imp *im, const Onnx__NodeProto *n, size_t k)
{
    if (k >= n->n_input || !n->input[k] || !*n->input[k]) return NULL;
    int i = find_val(im, n->input[k]);
    return i >= 0 ? &im->v[i] : NULL;
}

static struct val *out_val(const struct imp *im, const Onnx__NodeProto *n)
{
    int i = n->n_output ? find_val(im, n->output[0]) : -1;
    return i >= 0 ? &im->v[i] : NULL;
}

static bool is_op(const Onnx__NodeProto *n, const char *op) { return n->op_type && !strcmp(n->op_type, op); }

/* ---------------- constant folding ---------------- */

static int alloc_const(struct val *o, int ndim, const int64_t *dims, bool integer)
{
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        o->dims[d] = dims[d];
        numel *= (size_t)dims[d];
    }
    o->ndim = ndim;
    o->numel = numel;
    o->is_const = true;
    o->f = sk_malloc(sizeof(float) * (numel ? numel : 1));
    if (integer) o->i = sk_malloc(sizeof(int64_t) * (numel ? numel : 1));
    return !o->f || (integer && !o->i) ? SK_ENOMEM : SK_OK;
}

/* Numpy broadcasting of a and b (right-aligned); SK_EFORMAT if they do not. */
static int broadcast_shape(const struct val *a, const struct val *b, int *ndim, int64_t *dims)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < nd; d++) {
        int ia = a->ndim - nd + d, ib = b->ndim - nd + d;
        int64_t x = ia >= 0 ? a->dims[ia] : 1, y = ib >= 0 ? b->dims[ib] : 1;
        if (x != y && x != 1 && y != 1) return SK_EFORMAT;
        dims[d] = x == 1 ? y : x;
    }
    *ndim = nd;
    return SK_OK;
}

/* Flat index into t for the element at multi-index idx of a broadcast
 * result of nd dimensions. */
static size_t bidx(const struct val *t, int nd, const int64_t *idx)
{
    size_t o = 0;
    for (int d = 0; d < t->ndim; d++) {
        int64_t i = t->dims[d] == 1 ? 0 : idx[nd - t->ndim + d];
        o = o * (size_t)t->dims[d] + (size_t)i;
    }
    return o;
}

static double arith(const char *op, double x, double y)
{
    return op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : x / y;
}

/* Fold node n (all inputs constant) into its output; *folded false when its
 * op is not one that folds (the walk then reports it). */
static int fold_node(struct imp *im, const Onnx__NodeProto *n, bool *folded)
{
    *folded = false;
    struct val *o = out_val(im, n);
    if (!o) return SK_OK;
    if (is_op(n, "Constant")) {
        const Onnx__AttributeProto *a = attr(n, "value");
        if (a && a->t) {
            int rc = decode_tensor(im, a->t, o, "Constant");
            *folded = !rc;
            return rc;
        }
        const Onnx__AttributeProto *vf = attr(n, "value_float"), *vi = attr(n, "value_int");
        const Onnx__AttributeProto *vfs = attr(n, "value_floats"), *vis = attr(n, "value_ints");
        int64_t one = 1, cnt = vfs ? (int64_t)vfs->n_floats : vis ? (int64_t)vis->n_ints : 1;
        if (!vf && !vi && !vfs && !vis) return node_err(im, n, "a Constant without a value");
        int rc = alloc_const(o, vf || vi ? 0 : 1, vf || vi ? &one : &cnt, vi || vis);
        if (rc) return rc;
        for (int64_t k = 0; k < cnt; k++) {
            if (vf) o->f[k] = vf->f;
            else if (vfs) o->f[k] = vfs->floats[k];
            else {
                int64_t x = vi ? vi->i : vis->ints[k];
                o->i[k] = x;
                o->f[k] = (float)x;
            }
        }
        *folded = true;
        return SK_OK;
    }
    struct val *a = in_val(im, n, 0), *b = in_val(im, n, 1);
    if (!a) return SK_OK;
    if (is_op(n, "Identity") || is_op(n, "Reshape") || is_op(n, "Flatten") || is_op(n, "Squeeze") ||
        is_op(n, "Unsqueeze")) {
        /* same data, new shape */
        int64_t dims[MAX_DIMS];
        int nd = 0;
        if (is_op(n, "Identity")) {
            nd = a->ndim;
            memcpy(dims, a->dims, sizeof dims);
        } else if (is_op(n, "Flatten")) {
            int64_t ax = attr_i(n, "axis", 1);
            if (ax < 0) ax += a->ndim;
            if (ax < 0 || ax > a->ndim) return node_err(im, n, "axis %lld out of range", (long long)attr_i(n, "axis", 1));
            dims[0] = 1;
            dims[1] = 1;
            for (int d = 0; d < a->ndim; d++) dims[d < ax ? 0 : 1] *= a->dims[d];
            nd = 2;
        } else if (is_op(n, "Reshape")) {
            if (!b || !b->i || b->ndim != 1 || b->numel > MAX_DIMS) return SK_OK;
            int64_t known = 1;
            int neg = -1;
            nd = (int)b->numel;
            for (int d = 0; d < nd; d++) {
                int64_t s = b->i[d] == 0 && d < a->ndim ? a->dims[d] : b->i[d];
                if (s == -1 && neg < 0) neg = d;
                else if (s < 0) return node_err(im, n, "shape entry %lld", (long long)b->i[d]);
                else known *= s, dims[d] = s;
                if (known > INT32_MAX) return node_err(im, n, "shape too large");
            }
            if (neg >= 0) dims[neg] = known ? (int64_t)a->numel / known : 0;
            if (neg >= 0) known *= dims[neg];
            if ((size_t)known != a->numel) return node_err(im, n, "reshape of %zu elements to %lld", a->numel, (long long)known);
        } else {
            return SK_OK; /* Squeeze / Unsqueeze of constants: not needed by the supported patterns */
        }
        int rc = alloc_const(o, nd, dims, a->i != NULL);
        if (rc) return rc;
        memcpy(o->f, a->f, sizeof(float) * a->numel);
        if (a->i) memcpy(o->i, a->i, sizeof(int64_t) * a->numel);
        *folded = true;
        return SK_OK;
    }
    if (is_op(n, "Transpose")) {
        size_t np = 0;
        const int64_t *perm = attr_ints(n, "perm", &np);
        int64_t p[MAX_DIMS], dims[MAX_DIMS];
        int nd = a->ndim;
        if (perm && (int)np != nd) return node_err(im, n, "perm has %zu entries for a %d-d tensor", np, nd);
        bool seen[MAX_DIMS] = { 0 };
        for (int d = 0; d < nd; d++) {
            p[d] = perm ? perm[d] : nd - 1 - d;
            if (p[d] < 0 || p[d] >= nd || seen[p[d]]) return node_err(im, n, "perm is not a permutation");
            seen[p[d]] = true;
            dims[d] = a->dims[p[d]];
        }
        int rc = alloc_const(o, nd, dims, a->i != NULL);
        if (rc) return rc;
        int64_t idx[MAX_DIMS] = { 0 }, st[MAX_DIMS];
        for (int d = nd - 1, s = 1; d >= 0; d--) st[d] = s, s *= (int)a->dims[d];
        for (size_t k = 0; k < o->numel; k++) {
            size_t src = 0;
            for (int d = 0; d < nd; d++) src += (size_t)(idx[d] * st[p[d]]);
            o->f[k] = a->f[src];
            if (a->i) o->i[k] = a->i[src];
            for (int d = nd - 1; d >= 0 && ++idx[d] == dims[d]; d--) idx[d] = 0;
        }
        *folded = true;
        return SK_OK;
    }
    if ((is_op(n, "Add") || is_op(n, "Sub") || is_op(n, "Mul") || is_op(n, "Div")) && b) {
        int64_t dims[MAX_DIMS];
        int nd;
        if (broadcast_shape(a, b, &nd, dims)) return node_err(im, n, "the shapes of its inputs do not broadcast");
        /* the result may be larger than both operands, but not larger than the file allows */
        double nd_el = 1;
        for (int d = 0; d < nd; d++) nd_el *= (double)dims[d];
        if (nd_el > (double)(a->numel + b->numel) && nd_el > (double)(1 << 24))
            return node_err(im, n, "broadcasting constants of %zu and %zu elements to %.0f", a->numel, b->numel, nd_el);
        size_t numel = (size_t)nd_el;
        bool integer = a->i && b->i;
        int rc = alloc_const(o, nd, dims, integer);
        if (rc) return rc;
        int64_t idx[MAX_DIMS] = { 0 };
        for (size_t k = 0; k < numel; k++) {
            size_t ia = bidx(a, nd, idx), ib = bidx(b, nd, idx);
            if (integer) {
                /* wrap around rather than overflow (shape arithmetic never gets near it) */
                uint64_t x = (uint64_t)a->i[ia], y = (uint64_t)b->i[ib];
                int64_t sy = b->i[ib], sx = a->i[ia];
                o->i[k] = n->op_type[0] == 'A' ? (int64_t)(x + y) : n->op_type[0] == 'S' ? (int64_t)(x - y)
                          : n->op_type[0] == 'M' ? (int64_t)(x * y)
                          : sy == 0 || (sy == -1 && sx == INT64_MIN) ? 0 : sx / sy;
                o->f[k] = (float)o->i[k];
            } else {
                /* in float32, as a runtime computes it */
                float x = a->f[ia], y = b->f[ib];
                o->f[k] = n->op_type[0] == 'A' ? x + y : n->op_type[0] == 'S' ? x - y : n->op_type[0] == 'M' ? x * y : x / y;
            }
            for (int d = nd - 1; d >= 0 && ++idx[d] == dims[d]; d--) idx[d] = 0;
        }
        *folded = true;
        return SK_OK;
    }
    return SK_OK;
}

/* ---------------- building the chain ---------------- */

static struct layer *push_layer(struct imp *im, enum sk_layer_kind kind, const Onnx__NodeProto *n)
{
    if (im->n_L == im->cap_L) {
        int cap = im->cap_L ? 2 * im->cap_L : 16;
        struct layer *L = sk_calloc((size_t)cap, sizeof *L);
        if (!L) return NULL;
        if (im->n_L) memcpy(L, im->L, sizeof *L * (size_t)im->n_L);
        sk_free(im->L);
        im->L = L;
        im->cap_L = cap;
    }
    struct layer *L = &im->L[im->n_L++];
    memset(L, 0, sizeof *L);
    L->kind = kind;
    L->from[0] = im->from;
    L->from[1] = -1;
    L->node = node_name(n);
    im->from = im->n_L - 1;
    im->fold_out = FOLD_NONE;
    return L;
}

/* A copy of n floats (NULL on failure). */
static float *dupf(const float *x, size_t n)
{
    float *o = sk_malloc(sizeof(float) * (n ? n : 1));
    if (o && n) memcpy(o, x, sizeof(float) * n);
    return o;
}

/* Values of constant c broadcast to the current tensor [1, C(, H, W)]:
 * out[j] for every feature j (C*H*W), or per channel (out[c], C values)
 * when per_channel; SK_EFORMAT when c does not broadcast or (per_channel)
 * varies within a channel. */
static int expand_const(const struct imp *im, const struct val *c, bool per_channel, float *out)
{
    int nd = im->spatial ? 4 : 2;
    int64_t shp[4] = { 1, im->C, im->H, im->W };
    if (c->ndim > nd) return SK_EFORMAT;
    for (int d = 0; d < c->ndim; d++) {
        int64_t want = shp[nd - c->ndim + d];
        if (c->dims[d] != 1 && c->dims[d] != want) return SK_EFORMAT;
    }
    int64_t idx[4] = { 0 };
    size_t total = (size_t)im->C * (im->spatial ? (size_t)im->H * im->W : 1);
    size_t per = im->spatial ? (size_t)im->H * im->W : 1;
    for (size_t k = 0; k < total; k++) {
        if (im->spatial) {
            idx[1] = (int64_t)(k / per);
            idx[2] = (int64_t)(k % per) / im->W;
            idx[3] = (int64_t)(k % per) % im->W;
        } else {
            idx[1] = (int64_t)k;
        }
        float x = c->f[bidx(c, nd, idx)];
        if (per_channel) {
            size_t ch = k / per;
            if (k % per == 0) out[ch] = x;
            else if (out[ch] != x && !(isnan(x) && isnan(out[ch]))) return SK_EFORMAT;
        } else {
            out[k] = x;
        }
    }
    return SK_OK;
}

/* Is value v read by exactly one node input? A constant folds into the layer
 * before only then: any other reader would see the changed layer. */
static bool read_once(const struct val *v) { return v->n_cons == 1; }

/* A node other than `n` that reads v (for messages). */
static const Onnx__NodeProto *other_reader(const struct imp *im, const struct val *v, const Onnx__NodeProto *n)
{
    for (int c = 0; c < v->n_cons; c++) {
        const Onnx__NodeProto *r = node_at(im, im->cons[v->cons_start + c]);
        if (r != n) return r;
    }
    return n;
}

/* Add/Sub/Mul/Div (op 'A', 'S', 'M', 'D') of the running value by constant c
 * (x_first: the running value is the first operand). Folded into the input
 * transform at the input, into the affine layer whose output the running value
 * is when nothing else reads it; an error otherwise. */
static int map_arith(struct imp *im, const Onnx__NodeProto *n, char op, const struct val *c, bool x_first)
{
    const struct val *xv = &im->v[im->x];
    size_t D = (size_t)im->C * im->H * im->W;
    float *e = sk_malloc(sizeof(float) * D);
    if (!e) return SK_ENOMEM;
    int rc = SK_OK;
    im->fold_out = FOLD_ALIAS;
    if (!x_first && (op == 'S' || op == 'D')) {
        rc = node_err(im, n, "the constant is the first operand (c %s x): only x %s c maps onto a layer",
                      op == 'S' ? "-" : "/", op == 'S' ? "-" : "/");
    } else if (xv->fold != FOLD_NONE && !read_once(xv)) {
        const Onnx__NodeProto *o = other_reader(im, xv, n);
        rc = node_err(im, n, "its input '%.100s' is also read by node '%.100s' (%s), so the constant cannot be folded "
                      "into %s", xv->name, node_name(o), o->op_type ? o->op_type : "?",
                      xv->fold == FOLD_INPUT ? "the input transform" : "the layer before it");
    } else if (xv->fold == FOLD_INPUT) {
        /* the input transform (x - shift) * scale, one feature at a time */
        if (expand_const(im, c, false, e)) {
            rc = node_err(im, n, "a constant of %d dimensions that does not broadcast to the input", c->ndim);
        } else {
            if (!im->shift) {
                im->shift = sk_calloc(D, sizeof(float));
                im->scale = sk_malloc(sizeof(float) * D);
                if (!im->shift || !im->scale) rc = SK_ENOMEM;
                for (size_t j = 0; !rc && j < D; j++) im->scale[j] = 1.0f;
            }
            for (size_t j = 0; !rc && j < D; j++) {
                float x = e[j];
                if (op == 'S') im->shift[j] += x / im->scale[j];
                else if (op == 'A') im->shift[j] -= x / im->scale[j];
                else if (op == 'M') im->scale[j] *= x;
                else im->scale[j] /= x;
                if (!(im->scale[j] > 0) || !isfinite(im->scale[j]) || !isfinite(im->shift[j]))
                    rc = node_err(im, n, "input feature %zu: the input transform would get scale %g and shift %g "
                                  "(need a finite scale > 0: divide and multiply by positive constants)", j,
                                  (double)im->scale[j], (double)im->shift[j]);
            }
        }
    } else if (xv->fold >= 0) {
        struct layer *L = &im->L[xv->fold];
        size_t units = (size_t)L->units;
        if (expand_const(im, c, true, e)) {
            rc = node_err(im, n, "the constant is not one value per %s of the preceding %s layer (node '%s')",
                          im->spatial ? "channel" : "feature", sk_layer_name(L->kind), L->node);
        } else {
            for (size_t u = 0; u < units; u++) {
                float x = e[u];
                if (op == 'A') L->b[u] += x;
                else if (op == 'S') L->b[u] -= x;
                else {
                    float *w = L->w + u * L->per_unit;
                    for (size_t q = 0; q < L->per_unit; q++) w[q] = op == 'M' ? w[q] * x : w[q] / x;
                    L->b[u] = op == 'M' ? L->b[u] * x : L->b[u] / x;
                }
            }
        }
    } else if (xv->layer >= 0) {
        const struct layer *L = &im->L[xv->layer];
        rc = node_err(im, n, "an arithmetic node by a constant maps onto a layer only at the input (the input "
                      "transform) or right after Gemm/MatMul/Conv/BatchNormalization; here it follows %s (node '%s')",
                      sk_layer_name(L->kind), L->node);
    } else {
        rc = node_err(im, n, "an arithmetic node by a constant on the input maps onto the input transform only before "
                      "anything else reads the input");
    }
    sk_free(e);
    return rc;
}

/* Dense from weight W (O x I, row-major, copied) and optional bias. */
static int emit_dense(struct imp *im, const Onnx__NodeProto *n, const float *W, bool transpose, int O, int I,
                      float alpha, const struct val *bias, float beta)
{
    if (im->spatial)
        return node_err(im, n, "a matrix product of a %dx%dx%d tensor (flatten it first)", im->C, im->H, im->W);
    if (I != im->C) return node_err(im, n, "the weight takes %d features but its input has %d", I, im->C);
    struct layer *L = push_layer(im, SK_LAYER_DENSE, n);
    if (!L) return SK_ENOMEM;
    L->units = O;
    L->per_unit = (size_t)I;
    L->w = sk_malloc(sizeof(float) * (size_t)O * I);
    L->b = sk_calloc((size_t)O, sizeof(float));
    if (!L->w || !L->b) return SK_ENOMEM;
    for (int o = 0; o < O; o++)
        for (int i = 0; i < I; i++) {
            float w = transpose ? W[(size_t)i * O + o] : W[(size_t)o * I + i];
            L->w[(size_t)o * I + i] = alpha == 1.0f ? w : alpha * w;
        }
    if (bias) {
        if (bias->numel != 1 && bias->numel != (size_t)O)
            return node_err(im, n, "the bias has %zu values for %d outputs", bias->numel, O);
        for (int o = 0; o < O; o++) {
            float b = bias->f[bias->numel == 1 ? 0 : o];
            L->b[o] = beta == 1.0f ? b : beta * b;
        }
    }
    im->C = O;
    im->rank = 2;
    im->fold_out = im->n_L - 1;
    return SK_OK;
}

static int want_const(const struct imp *im, const Onnx__NodeProto *n, size_t k, const char *what, struct val **out)
{
    struct val *c = in_val(im, n, k);
    if (!c || !c->is_const)
        return node_err(im, n, "its %s (input %zu) must be a constant (an initializer); here it is %s", what, k,
                        c ? "computed from the input" : "missing");
    *out = c;
    return SK_OK;
}

static int map_gemm(struct imp *im, const Onnx__NodeProto *n)
{
    struct val *B = NULL, *Cb = in_val(im, n, 2);
    int rc = want_const(im, n, 1, "weight B", &B);
    if (rc) return rc;
    if (attr_i(n, "transA", 0)) return node_err(im, n, "transA=1 (the input transposed) is not supported");
    if (B->ndim != 2) return node_err(im, n, "the weight has %d dimensions (need 2)", B->ndim);
    if (Cb && !Cb->is_const) return node_err(im, n, "the bias C must be a constant");
    bool tb = attr_i(n, "transB", 0) != 0;
    int O = (int)(tb ? B->dims[0] : B->dims[1]), I = (int)(tb ? B->dims[1] : B->dims[0]);
    if (O < 1 || I < 1) return node_err(im, n, "an empty weight");
    return emit_dense(im, n, B->f, !tb, O, I, attr_f(n, "alpha", 1.0f), Cb, attr_f(n, "beta", 1.0f));
}

static int map_matmul(struct imp *im, const Onnx__NodeProto *n, bool x_first)
{
    struct val *B = NULL;
    int rc = want_const(im, n, x_first ? 1 : 0, "weight", &B);
    if (rc) return rc;
    if (!x_first) return node_err(im, n, "the weight is the first operand (W x): only x W maps onto a dense layer");
    if (B->ndim != 2) return node_err(im, n, "the weight has %d dimensions (need 2)", B->ndim);
    if (B->dims[0] < 1 || B->dims[1] < 1) return node_err(im, n, "an empty weight");
    return emit_dense(im, n, B->f, true, (int)B->dims[1], (int)B->dims[0], 1.0f, NULL, 1.0f);
}

/* kernel, strides, pads, dilations of a conv / pool node, all square and
 * symmetric; *k from kernel_shape (or kdefault > 0). */
static int window(struct imp *im, const Onnx__NodeProto *n, int kdefault, int *k, int *s, int *p)
{
    size_t nk, ns, np, nd;
    const int64_t *ks = attr_ints(n, "kernel_shape", &nk), *st = attr_ints(n, "strides", &ns);
    const int64_t *pd = attr_ints(n, "pads", &np), *dl = attr_ints(n, "dilations", &nd);
    const Onnx__AttributeProto *ap = attr(n, "auto_pad");
    if (!im->spatial) return node_err(im, n, "its input is a vector of %d values, not an image", im->C);
    if (nk && (nk != 2 || ks[0] != ks[1])) return node_err(im, n, "a kernel that is not square (%zu-d)", nk);
    *k = nk ? (int)ks[0] : kdefault;
    if (*k < 1 || *k > 4096) return node_err(im, n, "kernel size %d", *k);
    if (ns && (ns != 2 || st[0] != st[1] || st[0] < 1 || st[0] > 4096)) return node_err(im, n, "strides that are not equal and positive");
    *s = ns ? (int)st[0] : 1;
    if (np && (np != 4 || pd[0] != pd[1] || pd[0] != pd[2] || pd[0] != pd[3] || pd[0] < 0 || pd[0] > 4096))
        return node_err(im, n, "pads that are not the same on all four sides");
    *p = np ? (int)pd[0] : 0;
    for (size_t d = 0; d < nd; d++)
        if (dl[d] != 1) return node_err(im, n, "dilation %lld (only 1 is supported)", (long long)dl[d]);
    if (ap && ap->has_s && ap->s.len && !(ap->s.len == 6 && !memcmp(ap->s.data, "NOTSET", 6))) {
        if (ap->s.len == 5 && !memcmp(ap->s.data, "VALID", 5)) *p = 0;
        else if (*s == 1 && *k % 2 == 1) *p = (*k - 1) / 2; /* SAME_UPPER / SAME_LOWER agree here */
        else return node_err(im, n, "auto_pad %.*s with an even kernel or a stride", (int)ap->s.len, (const char *)ap->s.data);
    }
    if (im->H + 2 * *p < *k || im->W + 2 * *p < *k) return node_err(im, n, "the kernel is larger than the padded input");
    return SK_OK;
}

static int map_conv(struct imp *im, const Onnx__NodeProto *n)
{
    struct val *Wv = NULL, *bv = in_val(im, n, 2);
    int rc = want_const(im, n, 1, "weight", &Wv), k, s, p;
    if (rc) return rc;
    if (attr_i(n, "group", 1) != 1) return node_err(im, n, "group %lld (only 1 is supported)", (long long)attr_i(n, "group", 1));
    if (Wv->ndim != 4 || Wv->dims[1] != im->C || Wv->dims[2] != Wv->dims[3] || Wv->dims[0] < 1 || Wv->dims[2] < 1)
        return node_err(im, n, "the weight is not [out, %d, k, k]", im->C);
    if ((rc = window(im, n, Wv->dims[2] > 4096 ? 0 : (int)Wv->dims[2], &k, &s, &p))) return rc;
    if (k != Wv->dims[2]) return node_err(im, n, "kernel_shape %d but the weight's kernel is %lld", k, (long long)Wv->dims[2]);
    if (im->H + 2 * p < k || im->W + 2 * p < k) return node_err(im, n, "the kernel is larger than the padded input");
    if (bv && (!bv->is_const || bv->numel != (size_t)Wv->dims[0])) return node_err(im, n, "the bias is not %lld constants", (long long)Wv->dims[0]);
    struct layer *L = push_layer(im, SK_LAYER_CONV, n);
    if (!L) return SK_ENOMEM;
    L->units = (int)Wv->dims[0];
    L->k = k;
    L->stride = s;
    L->pad = p;
    L->per_unit = (size_t)im->C * k * k;
    L->w = dupf(Wv->f, Wv->numel);
    L->b = bv ? dupf(bv->f, bv->numel) : sk_calloc((size_t)L->units, sizeof(float));
    if (!L->w || !L->b) return SK_ENOMEM;
    im->C = L->units;
    im->H = (im->H + 2 * p - k) / s + 1;
    im->W = (im->W + 2 * p - k) / s + 1;
    im->fold_out = im->n_L - 1;
    return SK_OK;
}

static int map_pool(struct imp *im, const Onnx__NodeProto *n, enum sk_layer_kind kind)
{
    int k, s, p;
    int rc = window(im, n, 0, &k, &s, &p);
    if (rc) return rc;
    if (!attr(n, "kernel_shape")) return node_err(im, n, "no kernel_shape");
    if (p) return node_err(im, n, "padding %d (pooling layers have none)", p);
    if (attr_i(n, "ceil_mode", 0) && ((im->H - k) % s || (im->W - k) % s))
        return node_err(im, n, "ceil_mode=1 where it changes the output size");
    if (n->n_output > 1 && n->output[1] && *n->output[1]) return node_err(im, n, "the Indices output is used");
    if (attr_i(n, "storage_order", 0)) return node_err(im, n, "storage_order=1");
    struct layer *L = push_layer(im, kind, n);
    if (!L) return SK_ENOMEM;
    L->k = k;
    L->stride = s;
    im->H = (im->H - k) / s + 1;
    im->W = (im->W - k) / s + 1;
    return SK_OK;
}

static int map_bn(struct imp *im, const Onnx__NodeProto *n)
{
    struct val *sc = NULL, *bi = NULL, *mu = NULL, *var = NULL;
    int rc;
    if ((rc = want_const(im, n, 1, "scale", &sc)) || (rc = want_const(im, n, 2, "bias", &bi)) ||
        (rc = want_const(im, n, 3, "mean", &mu)) || (rc = want_const(im, n, 4, "variance", &var)))
        return rc;
    size_t C = (size_t)im->C;
    if (sc->numel != C || bi->numel != C || mu->numel != C || var->numel != C)
        return node_err(im, n, "its parameters do not have one value per channel (%zu)", C);
    if (attr_i(n, "training_mode", 0)) return node_err(im, n, "training_mode=1 (export the model in eval mode)");
    for (size_t o = 1; o < n->n_output; o++)
        if (n->output[o] && *n->output[o]) return node_err(im, n, "its running-statistics outputs are used (training mode)");
    float eps = attr_f(n, "epsilon", 1e-5f);
    if (!(eps >= 0) || !isfinite(eps)) return node_err(im, n, "epsilon %g", (double)eps);
    struct layer *L = push_layer(im, SK_LAYER_BATCHNORM, n);
    if (!L) return SK_ENOMEM;
    L->units = (int)C;
    L->per_unit = 1;
    L->w = dupf(sc->f, C);
    L->b = dupf(bi->f, C);
    L->rm = dupf(mu->f, C);
    L->rv = dupf(var->f, C);
    if (!L->w || !L->b || !L->rm || !L->rv) return SK_ENOMEM;
    if (eps != 1e-5f) {
        /* skeptic's batch norm divides by sqrt(var + 1e-5): the file's epsilon goes into the variance */
        for (size_t c = 0; c < C; c++) {
            double v = (double)L->rv[c] + (double)eps - 1e-5;
            L->rv[c] = (float)v;
            if (!(L->rv[c] + 1e-5f > 0)) return node_err(im, n, "variance %g with epsilon %g is not positive", (double)var->f[c], (double)eps);
        }
        note(im, "BatchNormalization '%s': epsilon %g added to its running variance (skeptic uses 1e-5)", L->node, (double)eps);
    }
    for (size_t c = 0; c < C; c++)
        if (!(L->rv[c] + 1e-5f > 0))
            return node_err(im, n, "running variance %g of channel %zu is not positive", (double)L->rv[c], c);
    im->fold_out = im->n_L - 1;
    return SK_OK;
}

static int map_simple(struct imp *im, const Onnx__NodeProto *n, enum sk_layer_kind kind, float p)
{
    struct layer *L = push_layer(im, kind, n);
    if (!L) return SK_ENOMEM;
    L->p = p;
    return SK_OK;
}

static int map_flatten(struct imp *im, const Onnx__NodeProto *n)
{
    if (!im->spatial) {
        im->rank = 2;
        return SK_OK;
    }
    struct layer *L = push_layer(im, SK_LAYER_FLATTEN, n);
    if (!L) return SK_ENOMEM;
    im->C *= im->H * im->W;
    im->H = im->W = 1;
    im->spatial = false;
    im->rank = 2;
    return SK_OK;
}

static int map_reshape(struct imp *im, const Onnx__NodeProto *n)
{
    struct val *s = NULL;
    int rc = want_const(im, n, 1, "shape", &s);
    if (rc) return rc;
    int64_t D = (int64_t)im->C * im->H * im->W;
    if (!s->i || s->ndim != 1 || s->numel != 2 || (s->i[1] != -1 && s->i[1] != D) ||
        !(s->i[0] == -1 || s->i[0] == 0 || s->i[0] == 1))
        return node_err(im, n, "reshape to a shape other than [N, %lld] (only flattening reshapes are supported)", (long long)D);
    return map_flatten(im, n);
}

static int map_dropout(struct imp *im, const Onnx__NodeProto *n)
{
    float ratio = attr_f(n, "ratio", 0.5f);
    struct val *r = in_val(im, n, 1), *t = in_val(im, n, 2);
    if (r) {
        if (!r->is_const || r->numel != 1) return node_err(im, n, "the ratio is not one constant");
        ratio = r->f[0];
    }
    if (t && (!t->is_const || t->numel != 1 || t->f[0] != 0)) return node_err(im, n, "training_mode is not a constant false");
    if (n->n_output > 1 && n->output[1] && *n->output[1]) return node_err(im, n, "its mask output is used");
    if (!(ratio >= 0 && ratio < 1)) return node_err(im, n, "ratio %g (need [0, 1))", (double)ratio);
    char buf[40];
    if (!sk_onnx_plain_float(ratio, buf, sizeof buf)) return node_err(im, n, "ratio %g cannot be written in a spec", (double)ratio);
    return map_simple(im, n, SK_LAYER_DROPOUT, ratio);
}

/* ---------------- GELU patterns ---------------- */

static double gelu_erf(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double gelu_tanh(double x) { return 0.5 * x * (1 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x))); }

static bool gelu_op(const Onnx__NodeProto *n)
{
    static const char *ops[] = { "Add", "Sub", "Mul", "Div", "Erf", "Tanh", "Pow", "Sqrt" };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (is_op(n, ops[i])) return true;
    return false;
}

/* Evaluate the region's nodes (in topological order) at x = t; the value of
 * each region output in vals[] indexed by value; NAN when undefined. */
static double eval_region(const struct imp *im, const int *nodes, int nn, int xin, double t, int yout)
{
    double vals[2 * GELU_MAX_NODES + 1];
    int ids[2 * GELU_MAX_NODES + 1], nv = 0;
    ids[nv] = xin;
    vals[nv++] = t;
    for (int q = 0; q < nn; q++) {
        const Onnx__NodeProto *n = node_at(im, nodes[q]);
        double a[2] = { 0, 0 };
        for (size_t k = 0; k < n->n_input && k < 2; k++) {
            int vi = find_val(im, n->input[k]);
            const struct val *v = &im->v[vi];
            if (v->is_const) {
                a[k] = v->f[0];
                continue;
            }
            int j = 0;
            while (j < nv && ids[j] != vi) j++;
            if (j == nv) return NAN;
            a[k] = vals[j];
        }
        double y = is_op(n, "Erf") ? erf(a[0]) : is_op(n, "Tanh") ? tanh(a[0]) : is_op(n, "Sqrt") ? sqrt(a[0])
                   : is_op(n, "Pow") ? pow(a[0], a[1]) : arith(n->op_type, a[0], a[1]);
        ids[nv] = find_val(im, n->output[0]);
        vals[nv++] = y;
    }
    for (int j = 0; j < nv; j++)
        if (ids[j] == yout) return vals[j];
    return NAN;
}

/* From running value x (node index list of candidates in topological order),
 * the smallest region of elementwise nodes with scalar constants that reads
 * only x, has one value leaving it, and computes GELU (exact or tanh).
 * Other readers of x (the other branch of a residual block) stay outside.
 * Returns 1 (exact) or 2 (tanh) with the region in nodes[0..*nn) and its output
 * in *yout; 0 when there is none. */
static int match_gelu(struct imp *im, int xin, int *nodes, int *nn, int *yout)
{
    int start = im->v[xin].producer >= 0 ? im->pos[im->v[xin].producer] + 1 : 0;
    int inside[2 * GELU_MAX_NODES + 1], n_in = 0;
    inside[n_in++] = xin;
    *nn = 0;
    int end = (int)im->g->n_node - start > GELU_WINDOW ? start + GELU_WINDOW : (int)im->g->n_node;
    for (int q = start; q < end && *nn < GELU_MAX_NODES; q++) {
        int ni = im->order[q];
        const Onnx__NodeProto *n = node_at(im, ni);
        if (im->done[ni]) continue;
        bool reads_x = false, reads_in = false, other = false;
        bool ok = gelu_op(n) && n->n_output == 1 && n->n_input >= 1 && n->n_input <= 2;
        for (size_t k = 0; k < n->n_input; k++) {
            int vi = find_val(im, n->input[k]);
            if (vi < 0) ok = false;
            else if (im->v[vi].is_const) ok = ok && im->v[vi].numel == 1;
            else if (vi == xin) reads_x = true;
            else {
                bool in = false;
                for (int j = 1; j < n_in; j++) in |= inside[j] == vi;
                reads_in |= in;
                other |= !in;
            }
        }
        if (!reads_x && !reads_in) continue;
        if (!ok || other) {
            if (reads_in) return 0;
            continue; /* reads x only: a reader outside the region */
        }
        int out_v = find_val(im, n->output[0]);
        if (out_v < 0) return 0; /* an output without a value (an empty name): not a GELU region */
        nodes[(*nn)++] = ni;
        inside[n_in++] = out_v;
        /* closed: every inner value except one is read only inside (x may be read elsewhere) */
        int leaving = -1, n_leave = 0;
        for (int j = 1; j < n_in; j++) {
            const struct val *v = &im->v[inside[j]];
            bool out = false;
            for (int c = 0; c < v->n_cons; c++) {
                int cn = im->cons[v->cons_start + c];
                bool in = false;
                for (int r = 0; r < *nn; r++) in |= nodes[r] == cn;
                out |= !in;
            }
            for (size_t o = 0; o < im->g->n_output; o++) out |= !strcmp(im->g->output[o]->name ? im->g->output[o]->name : "", v->name);
            if (out) leaving = inside[j], n_leave++;
        }
        if (n_leave != 1) continue;
        static const double ts[] = { -6, -3, -2.2, -1.5, -1, -0.6, -0.25, 0, 0.3, 0.7, 1, 1.6, 2.5, 4, 7 };
        bool e = true, th = true;
        for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) {
            double y = eval_region(im, nodes, *nn, xin, ts[k], leaving);
            e = e && fabs(y - gelu_erf(ts[k])) <= 2e-6 * (1 + fabs(y));
            th = th && fabs(y - gelu_tanh(ts[k])) <= 2e-6 * (1 + fabs(y));
        }
        if (e || th) {
            *yout = leaving;
            return e ? 1 : 2;
        }
    }
    return 0;
}

/* ---------------- the walk ---------------- */

static bool is_graph_output(const struct imp *im, const struct val *v)
{
    for (size_t o = 0; o < im->g->n_output; o++)
        if (im->g->output[o]->name && !strcmp(im->g->output[o]->name, v->name)) return true;
    return false;
}

/* Make value x the running value: the map_* functions start from its shape
 * and their first layer reads x's layer. */
static void enter(struct imp *im, int x)
{
    const struct val *v = &im->v[x];
    im->x = x;
    im->from = v->layer;
    im->spatial = v->spatial;
    im->C = v->C, im->H = v->H, im->W = v->W, im->rank = v->rank;
    im->fold_out = FOLD_ALIAS;
}

/* Value o is what the node just mapped computed: the output of the last
 * layer added (when it added one since n_before) or the running value as
 * it was (Identity, a flatten of a vector, a folded constant). */
static void leave(struct imp *im, struct val *o, int n_before)
{
    const struct val *x = &im->v[im->x];
    o->mapped = true;
    o->layer = im->n_L > n_before ? im->n_L - 1 : x->layer;
    o->fold = im->fold_out != FOLD_ALIAS ? im->fold_out : read_once(x) ? x->fold : FOLD_NONE;
    o->spatial = im->spatial;
    o->C = im->C, o->H = im->H, o->W = im->W, o->rank = im->rank;
}

/* The error for node n reading v, a value that the walk did not compute. */
static int unmapped_input(const struct imp *im, const Onnx__NodeProto *n, const struct val *v)
{
    if (v->producer < 0)
        return node_err(im, n, "input '%.100s' is neither a constant nor the graph's input", v->name);
    const Onnx__NodeProto *p = node_at(im, v->producer);
    if (im->done[v->producer])
        return node_err(im, n, "input '%.100s' is a second output of node '%.100s' (%s), which skeptic does not "
                        "compute (it reads the first output of a node)", v->name, node_name(p),
                        p->op_type ? p->op_type : "?");
    return node_err(im, p, "its output '%.100s' (read by node '%.100s') is computed from constants only, by an op that "
                    "skeptic does not evaluate on constants (it evaluates Constant, Identity, Reshape, Flatten, "
                    "Transpose, Add, Sub, Mul and Div)", v->name, node_name(n));
}

/* What a shape is, for messages. */
static const char *shape_str(const struct val *v, char *buf, size_t cap)
{
    if (v->spatial) snprintf(buf, cap, "%dx%dx%d", v->C, v->H, v->W);
    else if (v->rank == 2) snprintf(buf, cap, "a vector of %d", v->C);
    else snprintf(buf, cap, "a vector of %d (rank %d)", v->C, v->rank);
    return buf;
}

/* Map node ni, which reads one computed value x (once) and constants. */
static int map_op(struct imp *im, const Onnx__NodeProto *n, int xi, struct val *o)
{
    const char *op = n->op_type ? n->op_type : "";
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return node_err(im, n, "op domain '%.60s' is not supported; supported ops (default domain, opsets %d-%d): %s",
                        n->domain, SK_ONNX_OPSET_MIN, SK_ONNX_OPSET_MAX, supported_ops);
    if (!strcmp(op, "Gemm")) return xi == 0 ? map_gemm(im, n) : node_err(im, n, "the input is not operand A");
    if (!strcmp(op, "MatMul")) return map_matmul(im, n, xi == 0);
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div") ||
        (!strcmp(op, "Sum") && n->n_input == 2)) {
        struct val *c = in_val(im, n, xi == 0 ? 1 : 0);
        if (!c || !c->is_const) return node_err(im, n, "needs a constant operand");
        return map_arith(im, n, !strcmp(op, "Sum") ? 'A' : op[0], c, xi == 0);
    }
    if (!strcmp(op, "Sum") || !strcmp(op, "Concat")) {
        /* one input: the value itself; constants beside it: nothing to join */
        if (n->n_input == 1) return SK_OK;
        return node_err(im, n, "joins computed tensors only, and input %d is a constant", xi == 0 ? 1 : 0);
    }
    if (!strcmp(op, "Conv")) return map_conv(im, n);
    if (!strcmp(op, "Relu")) return map_simple(im, n, SK_LAYER_RELU, 0);
    if (!strcmp(op, "LeakyRelu")) {
        float a = attr_f(n, "alpha", 0.01f);
        char buf[40];
        if (!sk_onnx_plain_float(a, buf, sizeof buf))
            return node_err(im, n, "alpha %g (skeptic's leaky relu takes a slope >= 0 of at most 31 digits)", (double)a);
        return map_simple(im, n, SK_LAYER_LRELU, a);
    }
    if (!strcmp(op, "Sigmoid")) return map_simple(im, n, SK_LAYER_SIGMOID, 0);
    if (!strcmp(op, "Tanh")) return map_simple(im, n, SK_LAYER_TANH, 0);
    if (!strcmp(op, "Softplus")) return map_simple(im, n, SK_LAYER_SOFTPLUS, 0);
    if (!strcmp(op, "MaxPool")) return map_pool(im, n, SK_LAYER_MAXPOOL);
    if (!strcmp(op, "AveragePool")) return map_pool(im, n, SK_LAYER_AVGPOOL); /* window() refuses padding */
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "ReduceMean")) {
        if (!im->spatial) return node_err(im, n, "its input is a vector, not an image");
        int keep = 1;
        if (!strcmp(op, "ReduceMean")) {
            /* the mean over H and W (x.mean((2, 3)) in PyTorch): global average pooling */
            size_t na = 0;
            const int64_t *ax = attr_ints(n, "axes", &na);
            bool h = false, w = false, other = na != 2 || n->n_input > 1;
            for (size_t k = 0; k < na && !other; k++) {
                int64_t a = ax[k] < 0 ? ax[k] + 4 : ax[k];
                h |= a == 2;
                w |= a == 3;
                other |= a != 2 && a != 3;
            }
            if (other || !h || !w)
                return node_err(im, n, "a mean over other axes than H and W (2, 3); only the global average over each "
                                "channel's pixels is a layer (gap)");
            keep = attr_i(n, "keepdims", 1) != 0;
        }
        int rc = map_simple(im, n, SK_LAYER_GAP, 0);
        im->H = im->W = 1;
        im->spatial = false;
        im->rank = keep ? 4 : 2;
        return rc;
    }
    if (!strcmp(op, "Flatten")) {
        int64_t ax = attr_i(n, "axis", 1);
        if ((ax < 0 ? ax + im->rank : ax) != 1)
            return node_err(im, n, "axis %lld of a rank-%d tensor (only axis 1, flattening each row, is supported)",
                            (long long)ax, im->rank);
        return map_flatten(im, n);
    }
    if (!strcmp(op, "Reshape")) return map_reshape(im, n);
    if (!strcmp(op, "BatchNormalization")) return map_bn(im, n);
    if (!strcmp(op, "Dropout")) return map_dropout(im, n);
    if (!strcmp(op, "Identity")) return SK_OK;
    if (!strcmp(op, "Pad")) {
        /* PyTorch writes a Pad of zeros before AveragePool; any real padding belongs in Conv's pads */
        size_t np = 0;
        const int64_t *pa = attr_ints(n, "pads", &np);
        struct val *pv = in_val(im, n, 1);
        const Onnx__AttributeProto *mode = attr(n, "mode");
        if (pv && (!pv->is_const || !pv->i)) return node_err(im, n, "pads are not integer constants");
        if (pv) np = pv->numel;
        bool zero = true;
        for (size_t k = 0; k < np; k++) zero = zero && (pv ? pv->i[k] : pa[k]) == 0;
        if (mode && mode->has_s && mode->s.len && !(mode->s.len == 8 && !memcmp(mode->s.data, "constant", 8)))
            return node_err(im, n, "mode %.*s (only constant padding by zero amounts is read)", (int)mode->s.len,
                            (const char *)mode->s.data);
        if (!zero) return node_err(im, n, "padding by nonzero amounts (skeptic pads inside Conv: use Conv's pads)");
        return SK_OK;
    }
    if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax")) {
        int64_t ax = attr_i(n, "axis", im->opset >= 13 ? -1 : 1);
        /* before opset 13 the axis splits [N, rest]: axis 1 is the classes at any rank */
        bool classes = im->opset >= 13 ? (ax < 0 ? ax + im->rank : ax) == 1 : ax == 1 || (ax == -1 && im->rank == 2);
        if (im->spatial || !classes) return node_err(im, n, "a softmax over other than the class axis");
        if (!is_graph_output(im, o) || o->n_cons)
            return node_err(im, n, "a softmax before the output (only a final Softmax/LogSoftmax is accepted, and removed)");
        note(im, "the output %s '%s' was removed: skeptic's models give logits and apply the softmax themselves "
             "(same predictions, same probabilities)", op, node_name(n));
        return SK_OK;
    }
    return node_err(im, n, "op '%.60s' is not supported; supported ops (opsets %d-%d): %s", op, SK_ONNX_OPSET_MIN,
                    SK_ONNX_OPSET_MAX, supported_ops);
}

/* Node ni reading the one computed value x. */
static int map_node(struct imp *im, int ni, int x)
{
    const Onnx__NodeProto *n = node_at(im, ni);
    struct val *o = out_val(im, n);
    if (!o) return node_err(im, n, "no output");
    int xi = 0;
    for (size_t k = 0; k < n->n_input; k++)
        if (in_val(im, n, k) == &im->v[x]) xi = (int)k;
    enter(im, x);
    int before = im->n_L, rc = map_op(im, n, xi, o);
    if (!rc) leave(im, o, before);
    return rc;
}

/* Node ni reading nx > 1 computed values xs[] (in input order): Add or Sum
 * of one shape (add layers), Concat on axis 1 (cat layers); more than two
 * make a chain of joins, first inputs first, as the op's left-to-right
 * definition. */
static int map_join(struct imp *im, int ni, const int *xs, int nx)
{
    const Onnx__NodeProto *n = node_at(im, ni);
    struct val *o = out_val(im, n);
    if (!o) return node_err(im, n, "no output");
    bool cat = is_op(n, "Concat"), add = is_op(n, "Add") || is_op(n, "Sum");
    if (!cat && !add)
        return node_err(im, n, "it combines %d computed tensors ('%.100s', '%.100s'); skeptic joins branches by "
                        "addition (Add, Sum) of tensors of one shape and by concatenation (Concat on axis 1), and takes "
                        "the other ops with one computed input", nx, im->v[xs[0]].name, im->v[xs[1]].name);
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return node_err(im, n, "op domain '%.60s' is not supported", n->domain);
    for (size_t k = 0; k < n->n_input; k++) {
        const struct val *v = in_val(im, n, k);
        if (!v || v->is_const)
            return node_err(im, n, "input %zu is %s: a join of computed tensors takes no constants (add a constant "
                            "with a separate Add)", k, v ? "a constant" : "missing");
    }
    const struct val *a = &im->v[xs[0]];
    if (cat) {
        const Onnx__AttributeProto *at = attr(n, "axis");
        if (!at || !at->has_i) return node_err(im, n, "no axis attribute");
        int64_t ax = at->i < 0 ? at->i + a->rank : at->i;
        if (ax != 1)
            return node_err(im, n, "concatenation on axis %lld of rank-%d tensors; skeptic concatenates along axis 1 "
                            "(the channels of images, the features of vectors)", (long long)at->i, a->rank);
    }
    long long C = a->C;
    for (int k = 1; k < nx; k++) {
        const struct val *b = &im->v[xs[k]];
        if (b->rank != a->rank || b->spatial != a->spatial || b->H != a->H || b->W != a->W || (add && b->C != a->C)) {
            char sa[64], sb[64];
            return node_err(im, n, "its inputs '%.100s' (%s) and '%.100s' (%s) do not fit: %s", a->name,
                            shape_str(a, sa, sizeof sa), b->name, shape_str(b, sb, sizeof sb),
                            add ? "the branches of a sum must have one shape"
                                : "concatenated tensors need one rank, and images one height and width");
        }
        C += b->C;
        if (cat && C * a->H * a->W > SK_MODEL_MAX_ACTIVATION)
            return node_err(im, n, "the concatenation has more than %ld values per row", SK_MODEL_MAX_ACTIVATION);
    }
    enter(im, xs[0]);
    int before = im->n_L;
    for (int k = 1; k < nx; k++) {
        struct layer *L = push_layer(im, cat ? SK_LAYER_CAT : SK_LAYER_ADD, n);
        if (!L) return SK_ENOMEM;
        L->from[1] = im->v[xs[k]].layer;
        if (cat) im->C += im->v[xs[k]].C;
    }
    leave(im, o, before);
    return SK_OK;
}

/* The GELU region nodes[0..nn) from x to y, of kind (1 exact, 2 tanh). */
static int map_gelu(struct imp *im, const int *nodes, int nn, int x, int y, int kind)
{
    enter(im, x);
    int before = im->n_L, rc = map_simple(im, node_at(im, nodes[0]), SK_LAYER_GELU, 0);
    if (rc) return rc;
    if (kind == 2)
        note(im, "the tanh-approximate GELU at '%s' was mapped to the exact (erf) GELU, which differs from it by "
             "at most 4.8e-4", node_name(node_at(im, nodes[0])));
    for (int q = 0; q < nn; q++) im->done[nodes[q]] = true;
    leave(im, &im->v[y], before);
    return SK_OK;
}

/* Every node that reads a computed value, in topological order, from the
 * graph's input xin; *y gets the output value. */
static int walk(struct imp *im, int xin, int *y)
{
    struct val *in = &im->v[xin];
    in->mapped = true;
    in->layer = -1;
    in->fold = FOLD_INPUT;
    in->spatial = im->in_spatial;
    in->C = im->in_c, in->H = im->in_h, in->W = im->in_w, in->rank = im->in_rank;
    int xs[MAX_JOIN];
    for (int q = 0; q < (int)im->g->n_node; q++) {
        int ni = im->order[q];
        if (im->done[ni]) continue;
        const Onnx__NodeProto *n = node_at(im, ni);
        int nx = 0;
        bool one = true;
        for (size_t k = 0; k < n->n_input; k++) {
            const struct val *v = in_val(im, n, k);
            if (!v || v->is_const) continue;
            if (!v->mapped) return unmapped_input(im, n, v);
            if (is_graph_output(im, v))
                return sk_error(SK_EFORMAT, "%s: the output '%.100s' is also read by node '%.100s': a classifier's "
                                "output is its last value", im->path, v->name, node_name(n));
            if (nx == MAX_JOIN) return node_err(im, n, "more than %d computed inputs", MAX_JOIN);
            xs[nx++] = (int)(v - im->v);
            one = one && xs[nx - 1] == xs[0];
        }
        if (!nx) continue;
        if (one && gelu_op(n) && im->v[xs[0]].n_cons >= 2) {
            int nodes[GELU_MAX_NODES], nn = 0, yg = -1;
            int kind = match_gelu(im, xs[0], nodes, &nn, &yg);
            if (kind && nodes[0] == ni) {
                int rc = map_gelu(im, nodes, nn, xs[0], yg, kind);
                if (rc) return rc;
                continue;
            }
        }
        int rc = nx == 1 ? map_node(im, ni, xs[0]) : map_join(im, ni, xs, nx);
        if (rc) return rc;
        im->done[ni] = true;
    }
    const char *out = im->g->output[0]->name ? im->g->output[0]->name : "";
    for (int i = 0; i < im->n_v; i++) {
        const struct val *v = &im->v[i];
        if (!v->mapped || v->n_cons || is_graph_output(im, v)) continue;
        if (v->producer < 0) return sk_error(SK_EFORMAT, "%s: the graph's input '%.100s' is read by no node", im->path, v->name);
        return node_err(im, node_at(im, v->producer), "its output '%.100s' is read by no node and is not the graph's "
                        "output '%.100s': a side branch that does not reach the output", v->name, out);
    }
    int k = find_val(im, out);
    if (k < 0 || !im->v[k].mapped)
        return sk_error(SK_EFORMAT, "%s: the graph's output '%.100s' is %s", im->path, out,
                        k < 0 ? "produced by no node" : im->v[k].is_const ? "a constant" : "not computed from its input");
    if (im->v[k].layer != im->n_L - 1)
        return sk_error(SK_EFORMAT, "%s: the graph's output '%.100s' is not the output of its last layer", im->path, out);
    *y = k;
    return SK_OK;
}

/* ---------------- the spec and the model ---------------- */

static int spec_append(char **s, size_t *len, size_t *cap, const char *t)
{
    size_t n = strlen(t);
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap * 2 : 256) + n;
        char *b = sk_malloc(c);
        if (!b) return SK_ENOMEM;
        if (*len) memcpy(b, *s, *len);
        sk_free(*s);
        *s = b;
        *cap = c;
    }
    memcpy(*s + *len, t, n + 1);
    *len += n;
    return SK_OK;
}

/* Label of layer i's output (-1: the input) in the spec. */
static void label_of(int i, char *buf, size_t cap)
{
    if (i < 0) snprintf(buf, cap, "in");
    else snprintf(buf, cap, "l%d", i);
}

/* The spec of the layers: a layer reading another output than the one
 * before it names it ("@l3"), and that output gets the label ("=l3"). */
static char *make_spec(const struct imp *im)
{
    char *s = NULL, t[192], f[40], la[24], lb[24];
    size_t len = 0, cap = 0;
    bool *named = sk_calloc((size_t)im->n_L + 1, sizeof(bool)); /* [i + 1]: layer i, [0]: the input */
    if (!named) return NULL;
    for (int i = 0; i < im->n_L; i++) {
        const struct layer *L = &im->L[i];
        if (L->from[0] != i - 1) named[L->from[0] + 1] = true;
        if (L->kind == SK_LAYER_ADD || L->kind == SK_LAYER_CAT) named[L->from[1] + 1] = true;
    }
    if (im->in_spatial) snprintf(t, sizeof t, "seq:%dx%dx%d%s", im->in_c, im->in_h, im->in_w, named[0] ? "=in" : "");
    else snprintf(t, sizeof t, "seq:%d%s", im->in_dim, named[0] ? "=in" : "");
    int rc = spec_append(&s, &len, &cap, t);
    for (int i = 0; !rc && i < im->n_L; i++) {
        const struct layer *L = &im->L[i];
        switch (L->kind) {
        case SK_LAYER_DENSE: snprintf(t, sizeof t, "-dense%d", L->units); break;
        case SK_LAYER_CONV: snprintf(t, sizeof t, "-conv%dk%ds%dp%d", L->units, L->k, L->stride, L->pad); break;
        case SK_LAYER_MAXPOOL: snprintf(t, sizeof t, "-maxpool%ds%d", L->k, L->stride); break;
        case SK_LAYER_AVGPOOL: snprintf(t, sizeof t, "-avgpool%ds%d", L->k, L->stride); break;
        case SK_LAYER_LRELU:
        case SK_LAYER_DROPOUT:
            sk_onnx_plain_float(L->p, f, sizeof f);
            snprintf(t, sizeof t, "-%s%s", sk_layer_name(L->kind), f);
            break;
        default: snprintf(t, sizeof t, "-%s", sk_layer_name(L->kind)); break;
        }
        rc = spec_append(&s, &len, &cap, t);
        label_of(L->from[0], la, sizeof la);
        label_of(L->from[1], lb, sizeof lb);
        t[0] = 0;
        if (L->kind == SK_LAYER_ADD || L->kind == SK_LAYER_CAT) {
            if (L->from[0] == i - 1) snprintf(t, sizeof t, "@%s", lb);
            else snprintf(t, sizeof t, "@%s@%s", la, lb);
        } else if (L->from[0] != i - 1) {
            snprintf(t, sizeof t, "@%s", la);
        }
        if (named[i + 1]) {
            label_of(i, la, sizeof la);
            snprintf(t + strlen(t), sizeof t - strlen(t), "=%s", la);
        }
        if (!rc && t[0]) rc = spec_append(&s, &len, &cap, t);
    }
    sk_free(named);
    if (rc) {
        sk_free(s);
        return NULL;
    }
    return s;
}

static int fill_model(const struct imp *im, struct sk_model *m)
{
    SK_ASSERT(m->n_layers == im->n_L);
    for (int i = 0; i < im->n_L; i++)
        SK_ASSERT(m->layers[i].kind == im->L[i].kind && m->layers[i].from[0] == im->L[i].from[0] &&
                  m->layers[i].from[1] == im->L[i].from[1]);
    for (int i = 0; i < im->n_L; i++) {
        const struct layer *src = &im->L[i];
        const struct sk_layer *L = &m->layers[i];
        if (src->w) memcpy(m->params + L->w_off, src->w, sizeof(float) * L->n_w);
        if (src->b) memcpy(m->params + L->b_off, src->b, sizeof(float) * L->n_b);
        if (src->rm) {
            memcpy(m->buffers + L->rm_off, src->rm, sizeof(float) * (size_t)L->units);
            memcpy(m->buffers + L->rv_off, src->rv, sizeof(float) * (size_t)L->units);
        }
    }
    for (size_t k = 0; k < m->n_params; k++)
        if (!isfinite(m->params[k]))
            return sk_error(SK_ENONFINITE, "%s: a weight of the model is %g", im->path, (double)m->params[k]);
    for (size_t k = 0; k < m->n_buffers; k++)
        if (!isfinite(m->buffers[k]))
            return sk_error(SK_ENONFINITE, "%s: a batch-norm statistic is %g", im->path, (double)m->buffers[k]);
    if (im->shift) {
        struct sk_preprocess p = { .kind = SK_PREP_STANDARDIZE, .dim = im->in_dim, .shift = im->shift, .scale = im->scale };
        bool identity = true;
        for (int j = 0; j < im->in_dim; j++) identity = identity && im->shift[j] == 0 && im->scale[j] == 1;
        if (!identity) {
            int rc = sk_model_set_preprocess(m, &p);
            if (rc == SK_ENOMEM) return sk_error(SK_ENOMEM, "%s: out of memory for the input transform", im->path);
            if (rc) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", sk_last_error());
                return sk_error(SK_EFORMAT, "%s: input transform: %s", im->path, msg);
            }
        }
    }
    return SK_OK;
}

/* The graph's one input and its shape. */
static int read_input(struct imp *im, int *xin)
{
    int found = -1;
    for (int i = 0; i < im->n_v; i++)
        if (im->v[i].input) {
            if (found >= 0)
                return sk_error(SK_EFORMAT, "%s: the graph has more than one input ('%.100s', '%.100s'); a classifier "
                                "takes one", im->path, im->v[found].name, im->v[i].name);
            found = i;
        }
    if (found < 0) return sk_error(SK_EFORMAT, "%s: the graph has no input (every input is an initializer)", im->path);
    const Onnx__ValueInfoProto *vi = NULL;
    for (size_t k = 0; k < im->g->n_input; k++)
        if (im->g->input[k]->name && !strcmp(im->g->input[k]->name, im->v[found].name)) vi = im->g->input[k];
    const Onnx__TypeProto *tp = vi ? vi->type : NULL;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type || !tp->tensor_type->shape)
        return sk_error(SK_EFORMAT, "%s: input '%.100s' is not a tensor with a shape", im->path, im->v[found].name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return sk_error(SK_EFORMAT, "%s: input '%.100s' has type %s; skeptic models take FLOAT", im->path,
                        im->v[found].name, dtype_name(tt->elem_type));
    size_t nd = tt->shape->n_dim;
    if (nd < 2 || nd > 4)
        return sk_error(SK_EFORMAT, "%s: input '%.100s' has %zu dimensions; a batch of vectors [N, D] or images "
                        "[N, C, H, W] (or [N, D, 1]) is read", im->path, im->v[found].name, nd);
    int64_t d[4];
    int64_t total = 1;
    for (size_t k = 1; k < nd; k++) {
        const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[k];
        if (dm->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || dm->dim_value < 1 ||
            dm->dim_value > SK_MODEL_MAX_ACTIVATION)
            return sk_error(SK_EFORMAT, "%s: input '%.100s' dimension %zu is not a fixed size in [1, %ld]", im->path,
                            im->v[found].name, k, SK_MODEL_MAX_ACTIVATION);
        d[k] = dm->dim_value;
        total *= d[k];
        if (total > SK_MODEL_MAX_ACTIVATION)
            return sk_error(SK_EFORMAT, "%s: input '%.100s' has more than %ld values per row", im->path,
                            im->v[found].name, SK_MODEL_MAX_ACTIVATION);
    }
    im->in_spatial = nd == 4;
    im->in_rank = (int)nd;
    im->in_c = im->in_spatial ? (int)d[1] : (int)total;
    im->in_h = im->in_spatial ? (int)d[2] : 1;
    im->in_w = im->in_spatial ? (int)d[3] : 1;
    im->in_dim = (int)total;
    *xin = found;
    return SK_OK;
}

static int build_values(struct imp *im)
{
    const Onnx__GraphProto *g = im->g;
    size_t nv = g->n_input + g->n_initializer;
    for (size_t k = 0; k < g->n_node; k++) nv += g->node[k]->n_output;
    if (nv > (size_t)INT32_MAX / 4) return sk_error(SK_EFORMAT, "%s: too many values", im->path);
    im->cap_v = (int)nv + 1;
    im->hash_cap = 16;
    while (im->hash_cap < 2 * (size_t)im->cap_v) im->hash_cap *= 2;
    im->v = sk_calloc((size_t)im->cap_v, sizeof *im->v);
    im->hash = sk_malloc(sizeof(int) * im->hash_cap);
    if (!im->v || !im->hash) return SK_ENOMEM;
    for (size_t k = 0; k < im->hash_cap; k++) im->hash[k] = -1;
    int rc;
    for (size_t k = 0; k < g->n_initializer; k++) {
        if ((rc = add_val(im, g->initializer[k]->name, -1, "an initializer")) < 0) return rc;
        if ((rc = decode_tensor(im, g->initializer[k], &im->v[rc], "initializer"))) return rc;
    }
    for (size_t k = 0; k < g->n_input; k++) {
        const char *nm = g->input[k]->name;
        if (nm && find_val(im, nm) >= 0 && im->v[find_val(im, nm)].is_const) continue; /* an initializer's default */
        if ((rc = add_val(im, nm, -1, "a graph input")) < 0) return rc;
        im->v[rc].input = true;
    }
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        if (!n->op_type || !*n->op_type) return sk_error(SK_EFORMAT, "%s: node %zu has no op type", im->path, k);
        if (!n->n_output) return node_err(im, n, "a node without outputs");
        for (size_t o = 0; o < n->n_output; o++) {
            if (!n->output[o] || !*n->output[o]) continue; /* an optional output left out */
            if ((rc = add_val(im, n->output[o], (int)k, "a node output")) < 0) return rc;
        }
    }
    /* consumers, grouped per value */
    size_t n_edges = 0;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t i = 0; i < n->n_input; i++) {
            if (!n->input[i] || !*n->input[i]) continue;
            int vi = find_val(im, n->input[i]);
            if (vi < 0)
                return node_err(im, n, "input '%.100s' is produced by no node, initializer or graph input", n->input[i]);
            im->v[vi].n_cons++;
            n_edges++;
        }
    }
    im->cons = sk_malloc(sizeof(int) * (n_edges ? n_edges : 1));
    if (!im->cons) return SK_ENOMEM;
    int at = 0;
    for (int i = 0; i < im->n_v; i++) {
        im->v[i].cons_start = at;
        at += im->v[i].n_cons;
        im->v[i].n_cons = 0;
    }
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t i = 0; i < n->n_input; i++) {
            if (!n->input[i] || !*n->input[i]) continue;
            struct val *v = &im->v[find_val(im, n->input[i])];
            im->cons[v->cons_start + v->n_cons++] = (int)k;
        }
    }
    return SK_OK;
}

/* Min-heap of node indices: Kahn's algorithm takes the ready node that comes
 * first in the file, so a file in topological order keeps its order. */
static void heap_push(int *h, int *n, int v)
{
    int i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static int heap_pop(int *h, int *n)
{
    int top = h[0], v = h[--*n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = v;
    return top;
}

/* Kahn's algorithm; a node left over lies on a cycle. */
static int topo_sort(struct imp *im)
{
    const Onnx__GraphProto *g = im->g;
    size_t N = g->n_node;
    int *indeg = sk_calloc(N ? N : 1, sizeof(int)), *heap = sk_malloc(sizeof(int) * (N ? N : 1)), n_heap = 0;
    im->order = sk_malloc(sizeof(int) * (N ? N : 1));
    im->pos = sk_malloc(sizeof(int) * (N ? N : 1));
    im->done = sk_calloc(N ? N : 1, sizeof(bool));
    if (!indeg || !heap || !im->order || !im->pos || !im->done) {
        sk_free(indeg);
        sk_free(heap);
        return SK_ENOMEM;
    }
    for (size_t k = 0; k < N; k++) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t i = 0; i < n->n_input; i++) {
            int vi = n->input[i] && *n->input[i] ? find_val(im, n->input[i]) : -1;
            if (vi >= 0 && im->v[vi].producer >= 0) indeg[k]++;
        }
    }
    int tail = 0;
    for (size_t k = 0; k < N; k++)
        if (!indeg[k]) heap_push(heap, &n_heap, (int)k);
    while (n_heap) {
        int k = heap_pop(heap, &n_heap);
        im->order[tail++] = k;
        const Onnx__NodeProto *n = g->node[k];
        for (size_t o = 0; o < n->n_output; o++) {
            int vi = n->output[o] && *n->output[o] ? find_val(im, n->output[o]) : -1;
            if (vi < 0) continue;
            const struct val *v = &im->v[vi];
            for (int c = 0; c < v->n_cons; c++)
                if (--indeg[im->cons[v->cons_start + c]] == 0) heap_push(heap, &n_heap, im->cons[v->cons_start + c]);
        }
    }
    int rc = SK_OK;
    if ((size_t)tail < N) {
        /* a node left over reads a value of another one left over; N such steps back end on the cycle */
        size_t k = 0;
        while (!indeg[k]) k++;
        for (size_t step = 0; step < N; step++) {
            const Onnx__NodeProto *n = g->node[k];
            for (size_t i = 0; i < n->n_input; i++) {
                int vi = n->input[i] && *n->input[i] ? find_val(im, n->input[i]) : -1;
                if (vi >= 0 && im->v[vi].producer >= 0 && indeg[im->v[vi].producer]) {
                    k = (size_t)im->v[vi].producer;
                    break;
                }
            }
        }
        rc = node_err(im, g->node[k], "it lies on a cycle (its inputs depend on its own output)");
    }
    sk_free(indeg);
    sk_free(heap);
    for (int q = 0; q < tail; q++) im->pos[im->order[q]] = q;
    return rc;
}

static const char *mp_meta(const void *ctx, const char *key)
{
    const Onnx__ModelProto *mp = ctx;
    if (!strcmp(key, "skeptic.preprocess")) return NULL; /* the transform is in the graph */
    for (size_t k = 0; k < mp->n_metadata_props; k++)
        if (mp->metadata_props[k]->key && !strcmp(mp->metadata_props[k]->key, key)) return mp->metadata_props[k]->value;
    return NULL;
}

static char *make_meta(const struct imp *im)
{
    const Onnx__ModelProto *mp = im->mp;
    cJSON *o = cJSON_CreateObject();
    char b[64];
    cJSON_AddStringToObject(o, "format", "onnx");
    snprintf(b, sizeof b, "%d", im->opset);
    cJSON_AddStringToObject(o, "onnx.opset", b);
    snprintf(b, sizeof b, "%lld", (long long)(mp->has_ir_version ? mp->ir_version : 0));
    cJSON_AddStringToObject(o, "onnx.ir_version", b);
    char prod[256];
    snprintf(prod, sizeof prod, "%.120s%s%.120s", mp->producer_name ? mp->producer_name : "",
             mp->producer_version && *mp->producer_version ? " " : "", mp->producer_version ? mp->producer_version : "");
    cJSON_AddStringToObject(o, "onnx.producer", prod);
    for (size_t k = 0; k < mp->n_metadata_props; k++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[k];
        if (e->key && e->value && !cJSON_GetObjectItemCaseSensitive(o, e->key)) cJSON_AddStringToObject(o, e->key, e->value);
    }
    if (im->notes[0]) cJSON_AddStringToObject(o, "skeptic.import_notes", im->notes);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *r = t ? sk_strdup(t) : NULL;
    free(t);
    if (!r) sk_error(SK_ENOMEM, "out of memory");
    return r;
}

static void imp_free(struct imp *im)
{
    for (int i = 0; im->v && i < im->n_v; i++) {
        sk_free(im->v[i].f);
        sk_free(im->v[i].i);
    }
    for (int i = 0; im->L && i < im->n_L; i++) {
        sk_free(im->L[i].w);
        sk_free(im->L[i].b);
        sk_free(im->L[i].rm);
        sk_free(im->L[i].rv);
    }
    sk_free(im->L);
    sk_free(im->v);
    sk_free(im->hash);
    sk_free(im->cons);
    sk_free(im->order);
    sk_free(im->pos);
    sk_free(im->done);
    sk_free(im->shift);
    sk_free(im->scale);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sk_error(SK_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (size < 0 || size >= MAX_FILE || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        sk_error(size >= MAX_FILE ? SK_EFORMAT : SK_EIO, "%s: %s", path,
                 size >= MAX_FILE ? "larger than 2 GiB, the limit of a protobuf message" : "cannot read");
        return NULL;
    }
    unsigned char *b = sk_malloc((size_t)size + 1);
    if (!b) {
        fclose(fp);
        return NULL;
    }
    size_t got = fread(b, 1, (size_t)size, fp);
    fclose(fp);
    if (got != (size_t)size) {
        sk_free(b);
        sk_error(SK_EIO, "%s: short read", path);
        return NULL;
    }
    *n = got;
    return b;
}

struct sk_model *sk_model_load_onnx(const char *path, char **metadata_json_out)
{
    if (metadata_json_out) *metadata_json_out = NULL;
    size_t size = 0;
    unsigned char *bytes = read_all(path, &size);
    if (!bytes) return NULL;
    struct pb_budget budget = { 0, PB_BUDGET(size), false };
    ProtobufCAllocator alloc = { pb_alloc, pb_free, &budget };
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&alloc, size, bytes);
    sk_free(bytes);
    if (!mp) {
        if (budget.over)
            sk_error(SK_EFORMAT, "%s: decoding the protobuf needs more than %zu bytes for a file of %zu: not an ONNX "
                     "model, or a malformed one", path, budget.cap, size);
        else if (!sk_alloc_fail_taken() || strstr(sk_last_error(), "out of memory") == NULL)
            sk_error(SK_EFORMAT, "%s: not a valid ONNX protobuf (%zu bytes): truncated, or fields of the wrong type", path,
                     size);
        return NULL;
    }
    struct imp im;
    memset(&im, 0, sizeof im);
    im.path = path;
    im.mp = mp;
    im.g = mp->graph;
    struct sk_model *m = NULL;
    char *spec = NULL;
    int rc = SK_OK, xin = -1;
    for (size_t k = 0; k < mp->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *os = mp->opset_import[k];
        if (!os->domain || !*os->domain || !strcmp(os->domain, "ai.onnx")) im.opset = os->has_version ? (int)os->version : 0;
    }
    if (!im.g) rc = sk_error(SK_EFORMAT, "%s: the model has no graph", path);
    else if (mp->n_opset_import == 0 && mp->has_ir_version && mp->ir_version >= 3)
        rc = sk_error(SK_EFORMAT, "%s: the model declares no operator set (opset_import)", path);
    else if (im.opset && (im.opset < SK_ONNX_OPSET_MIN || im.opset > SK_ONNX_OPSET_MAX))
        rc = sk_error(SK_EFORMAT, "%s: opset %d of the default domain; opsets %d to %d are read (convert the model "
                      "with onnx.version_converter)", path, im.opset, SK_ONNX_OPSET_MIN, SK_ONNX_OPSET_MAX);
    if (!im.opset) im.opset = SK_ONNX_OPSET_MIN;
    if (!rc && im.g->n_output != 1)
        rc = sk_error(SK_EFORMAT, "%s: the graph has %zu outputs; a classifier has one (the logits)", path, im.g->n_output);
    if (!rc) rc = build_values(&im);
    if (!rc) rc = topo_sort(&im);
    for (int q = 0; !rc && q < (int)im.g->n_node; q++) {
        int ni = im.order[q];
        const Onnx__NodeProto *n = im.g->node[ni];
        bool all_const = true, folded = false;
        for (size_t i = 0; i < n->n_input; i++) {
            struct val *v = in_val(&im, n, i);
            all_const = all_const && (!v || v->is_const);
        }
        if (all_const && !(rc = fold_node(&im, n, &folded)) && folded) im.done[ni] = true;
    }
    if (!rc) rc = read_input(&im, &xin);
    int y = -1;
    if (!rc) rc = walk(&im, xin, &y);
    for (int k = 0; !rc && k < (int)im.g->n_node; k++)
        if (!im.done[k])
            rc = node_err(&im, im.g->node[k], "it reads constants only, and no node on the way from the input to the "
                          "output reads its result");
    if (!rc && im.n_L == 0) rc = sk_error(SK_EFORMAT, "%s: the graph has no layer (input straight to output)", path);
    if (!rc && im.v[y].spatial)
        rc = sk_error(SK_EFORMAT, "%s: the output is a %dx%dx%d tensor, not a vector of class scores", path, im.v[y].C,
                      im.v[y].H, im.v[y].W);
    if (!rc && !(spec = make_spec(&im))) rc = SK_ENOMEM;
    if (!rc && !(m = sk_model_from_spec(spec))) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: the layers read do not form a skeptic model: %s", path, sk_last_error());
        rc = sk_error(SK_EFORMAT, "%s", msg);
    }
    if (!rc) rc = fill_model(&im, m);
    if (!rc) rc = sk_model_read_record_from(m, path, mp_meta, mp);
    if (!rc && metadata_json_out && !(*metadata_json_out = make_meta(&im))) rc = SK_ENOMEM;
    if (rc) {
        sk_model_free(m);
        m = NULL;
    }
    sk_free(spec);
    imp_free(&im);
    onnx__model_proto__free_unpacked(mp, &alloc);
    return m;
}
