/* ONNX export: a skeptic model as an opset-13 graph of standard ops that
 * sk_model_load_onnx maps back onto the same layers, bit for bit.
 *
 *   input [N, C, H, W] or [N, D]
 *   Sub(input.shift) Mul(input.scale)       the input transform, if any
 *   one node per layer (Gemm with transB=1, Conv, MaxPool, AveragePool,
 *   GlobalAveragePool + Flatten, Flatten, Relu, LeakyRelu, Tanh, Sigmoid,
 *   Softplus, Dropout, BatchNormalization, Add and Concat on axis 1 for the
 *   two-input layers of a graph); GELU as the Erf pattern
 *   x * (1 + erf(x / sqrt 2)) * 0.5 (opset 13 has no Gelu op)
 *   output "logits" [N, n_classes]
 *
 * Initializers keep the safetensors names ("0.weight", "3.running_var"), so
 * a weight is found under the same name in both files. The model's record
 * (classes, split, input range) goes into metadata_props. */
#include "model/onnx.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.pb-c.h"

#define NAME 64
#define MAX_ATTR 5

struct xnode {
    Onnx__NodeProto n;
    char *in[5], *out[1];
    char name[NAME], inb[5][NAME], outb[NAME];
    Onnx__AttributeProto a[MAX_ATTR], *pa[MAX_ATTR];
    int64_t ints[MAX_ATTR][4];
};

struct xinit {
    Onnx__TensorProto t;
    int64_t dims[4];
    char name[NAME];
    float scalar;
};

struct ex {
    struct xnode *nodes;
    Onnx__NodeProto **pnodes;
    int n_nodes, cap_nodes;
    struct xinit *inits;
    Onnx__TensorProto **pinits;
    int n_inits, cap_inits;
    char cur[NAME];      /* the running value's name */
    int tmp;             /* counter of intermediate names */
    char (*outs)[NAME];  /* every layer's output value, for the layers of a graph that read it */
    char in[NAME];       /* the input after the input transform */
};

static void init_tensor(struct ex *x, const char *name, const float *data, int ndim, const int64_t *dims)
{
    SK_ASSERT(x->n_inits < x->cap_inits);
    struct xinit *I = &x->inits[x->n_inits];
    onnx__tensor_proto__init(&I->t);
    snprintf(I->name, NAME, "%s", name);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        I->dims[d] = dims[d];
        numel *= (size_t)dims[d];
    }
    I->t.name = I->name;
    I->t.n_dims = (size_t)ndim;
    I->t.dims = I->dims;
    I->t.has_data_type = 1;
    I->t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    I->t.has_raw_data = 1;
    I->t.raw_data.len = numel * sizeof(float);
    /* borrowed from the model for the packing; never freed through protobuf-c */
    I->t.raw_data.data = (uint8_t *)(uintptr_t)data;
    x->pinits[x->n_inits] = &I->t;
    x->n_inits++;
}

/* A scalar (0-d) initializer. */
static void init_scalar(struct ex *x, const char *name, float v)
{
    SK_ASSERT(x->n_inits < x->cap_inits);
    struct xinit *I = &x->inits[x->n_inits];
    I->scalar = v;
    init_tensor(x, name, &I->scalar, 0, NULL);
}

/* A node reading the running value and the n_more named values more[];
 * its output (named out, or a fresh name) becomes the running value. */
static struct xnode *node(struct ex *x, const char *op, const char *name, int n_more, const char *const *more,
                          const char *out)
{
    SK_ASSERT(x->n_nodes < x->cap_nodes && n_more < 5);
    struct xnode *N = &x->nodes[x->n_nodes];
    onnx__node_proto__init(&N->n);
    snprintf(N->name, NAME, "%s", name);
    snprintf(N->inb[0], NAME, "%s", x->cur);
    for (int k = 0; k < n_more; k++) snprintf(N->inb[k + 1], NAME, "%s", more[k]);
    for (int k = 0; k <= n_more; k++) N->in[k] = N->inb[k];
    if (out) snprintf(N->outb, NAME, "%s", out);
    else snprintf(N->outb, NAME, "t%d", x->tmp++);
    N->out[0] = N->outb;
    N->n.name = N->name;
    N->n.op_type = (char *)(uintptr_t)op;
    N->n.n_input = (size_t)n_more + 1;
    N->n.input = N->in;
    N->n.n_output = 1;
    N->n.output = N->out;
    N->n.attribute = N->pa;
    x->pnodes[x->n_nodes++] = &N->n;
    snprintf(x->cur, NAME, "%s", N->outb);
    return N;
}

static struct xnode *node1(struct ex *x, const char *op, const char *name, const char *more, const char *out)
{
    return node(x, op, name, more ? 1 : 0, &more, out);
}

static Onnx__AttributeProto *attr_new(struct xnode *N, const char *name, Onnx__AttributeProto__AttributeType t)
{
    SK_ASSERT(N->n.n_attribute < MAX_ATTR);
    Onnx__AttributeProto *a = &N->a[N->n.n_attribute];
    onnx__attribute_proto__init(a);
    a->name = (char *)(uintptr_t)name;
    a->has_type = 1;
    a->type = t;
    N->pa[N->n.n_attribute++] = a;
    return a;
}

static void attr_int(struct xnode *N, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr_new(N, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void attr_float(struct xnode *N, const char *name, float v)
{
    Onnx__AttributeProto *a = attr_new(N, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static void attr_ints(struct xnode *N, const char *name, int n, int64_t v)
{
    size_t k = N->n.n_attribute;
    Onnx__AttributeProto *a = attr_new(N, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    for (int i = 0; i < n; i++) N->ints[k][i] = v;
    a->n_ints = (size_t)n;
    a->ints = N->ints[k];
}

/* A value-info of a float tensor [N, dims[1..]] with a symbolic batch. */
struct xvi {
    Onnx__ValueInfoProto vi, *pvi;
    Onnx__TypeProto tp;
    Onnx__TypeProto__Tensor tt;
    Onnx__TensorShapeProto sh;
    Onnx__TensorShapeProto__Dimension d[4], *pd[4];
};

static void value_info(struct xvi *v, const char *name, int ndim, const int64_t *dims)
{
    onnx__value_info_proto__init(&v->vi);
    onnx__type_proto__init(&v->tp);
    onnx__type_proto__tensor__init(&v->tt);
    onnx__tensor_shape_proto__init(&v->sh);
    for (int k = 0; k < ndim; k++) {
        onnx__tensor_shape_proto__dimension__init(&v->d[k]);
        if (k == 0) {
            v->d[k].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            v->d[k].dim_param = (char *)(uintptr_t) "N";
        } else {
            v->d[k].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            v->d[k].dim_value = dims[k];
        }
        v->pd[k] = &v->d[k];
    }
    v->sh.n_dim = (size_t)ndim;
    v->sh.dim = v->pd;
    v->tt.has_elem_type = 1;
    v->tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    v->tt.shape = &v->sh;
    v->tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->tp.tensor_type = &v->tt;
    v->vi.name = (char *)(uintptr_t)name;
    v->vi.type = &v->tp;
    v->pvi = &v->vi;
}

/* The nodes and initializers of layer i. */
static int add_layer(struct ex *x, const struct sk_model *m, int i)
{
    const struct sk_layer *L = &m->layers[i];
    const char *out = i == m->n_layers - 1 ? "logits" : NULL;
    char nm[NAME], w[NAME], b[NAME], rm[NAME], rv[NAME];
    snprintf(nm, NAME, "%d.%s", i, sk_layer_name(L->kind));
    snprintf(w, NAME, "%d.weight", i);
    snprintf(b, NAME, "%d.bias", i);
    snprintf(rm, NAME, "%d.running_mean", i);
    snprintf(rv, NAME, "%d.running_var", i);
    const char *wb[4] = { w, b, rm, rv };
    const float *pw = m->params + L->w_off, *pb = m->params + L->b_off;
    struct xnode *N;
    snprintf(x->cur, NAME, "%s", L->from[0] < 0 ? x->in : x->outs[L->from[0]]);
    const char *second = L->from[1] < 0 ? x->in : x->outs[L->from[1]];
    switch (L->kind) {
    case SK_LAYER_ADD: node1(x, "Add", nm, second, out); break;
    case SK_LAYER_CAT: attr_int(node1(x, "Concat", nm, second, out), "axis", 1); break;
    case SK_LAYER_DENSE: {
        int64_t wd[2] = { L->units, L->in[0] }, bd[1] = { L->units };
        init_tensor(x, w, pw, 2, wd);
        init_tensor(x, b, pb, 1, bd);
        attr_int(node(x, "Gemm", nm, 2, wb, out), "transB", 1);
        break;
    }
    case SK_LAYER_CONV: {
        int64_t wd[4] = { L->units, L->in[0], L->k, L->k }, bd[1] = { L->units };
        init_tensor(x, w, pw, 4, wd);
        init_tensor(x, b, pb, 1, bd);
        N = node(x, "Conv", nm, 2, wb, out);
        attr_ints(N, "kernel_shape", 2, L->k);
        attr_ints(N, "strides", 2, L->stride);
        attr_ints(N, "pads", 4, L->pad);
        attr_ints(N, "dilations", 2, 1);
        attr_int(N, "group", 1);
        break;
    }
    case SK_LAYER_MAXPOOL:
    case SK_LAYER_AVGPOOL:
        N = node(x, L->kind == SK_LAYER_MAXPOOL ? "MaxPool" : "AveragePool", nm, 0, NULL, out);
        attr_ints(N, "kernel_shape", 2, L->k);
        attr_ints(N, "strides", 2, L->stride);
        break;
    case SK_LAYER_GAP: {
        /* skeptic's gap gives [N, C]; GlobalAveragePool gives [N, C, 1, 1] */
        char f[NAME];
        snprintf(f, NAME, "%d.flatten", i);
        node(x, "GlobalAveragePool", nm, 0, NULL, NULL);
        attr_int(node(x, "Flatten", f, 0, NULL, out), "axis", 1);
        break;
    }
    case SK_LAYER_FLATTEN: attr_int(node(x, "Flatten", nm, 0, NULL, out), "axis", 1); break;
    case SK_LAYER_RELU: node(x, "Relu", nm, 0, NULL, out); break;
    case SK_LAYER_TANH: node(x, "Tanh", nm, 0, NULL, out); break;
    case SK_LAYER_SIGMOID: node(x, "Sigmoid", nm, 0, NULL, out); break;
    case SK_LAYER_SOFTPLUS: node(x, "Softplus", nm, 0, NULL, out); break;
    case SK_LAYER_LRELU: attr_float(node(x, "LeakyRelu", nm, 0, NULL, out), "alpha", L->p); break;
    case SK_LAYER_GELU: {
        char c1[NAME], c2[NAME], c3[NAME], n1[NAME], n2[NAME], n3[NAME], n4[NAME], xin[NAME];
        snprintf(c1, NAME, "%d.gelu.sqrt2", i);
        snprintf(c2, NAME, "%d.gelu.one", i);
        snprintf(c3, NAME, "%d.gelu.half", i);
        snprintf(n1, NAME, "%d.gelu.erf", i);
        snprintf(n2, NAME, "%d.gelu.add", i);
        snprintf(n3, NAME, "%d.gelu.mul", i);
        snprintf(n4, NAME, "%d.gelu.scale", i);
        snprintf(xin, NAME, "%s", x->cur);
        init_scalar(x, c1, 1.41421356237f);
        init_scalar(x, c2, 1.0f);
        init_scalar(x, c3, 0.5f);
        node1(x, "Div", nm, c1, NULL);
        node1(x, "Erf", n1, NULL, NULL);
        node1(x, "Add", n2, c2, NULL);
        node1(x, "Mul", n3, xin, NULL);
        node1(x, "Mul", n4, c3, out);
        break;
    }
    case SK_LAYER_DROPOUT: {
        char r[NAME];
        snprintf(r, NAME, "%d.ratio", i);
        init_scalar(x, r, L->p);
        node1(x, "Dropout", nm, r, out);
        break;
    }
    case SK_LAYER_BATCHNORM: {
        int64_t cd[1] = { L->units };
        init_tensor(x, w, pw, 1, cd);
        init_tensor(x, b, pb, 1, cd);
        init_tensor(x, rm, m->buffers + L->rm_off, 1, cd);
        init_tensor(x, rv, m->buffers + L->rv_off, 1, cd);
        N = node(x, "BatchNormalization", nm, 4, wb, out);
        attr_float(N, "epsilon", m->bn_eps);
        /* ONNX keeps momentum for the running statistics, PyTorch for the batch */
        attr_float(N, "momentum", 1.0f - m->bn_momentum);
        break;
    }
    default: return sk_error(SK_EINVAL, "ONNX export: layer %d (%s) has no ONNX form", i, sk_layer_name(L->kind));
    }
    return SK_OK;
}

/* The model's record as metadata_props (key, value pairs into kv[]). */
static int record_props(const struct sk_model *m, char **kv, int *n)
{
    *n = 0;
    kv[(*n)++] = sk_strdup("skeptic.spec");
    kv[(*n)++] = sk_strdup(m->spec);
    if (m->data.classes[0]) {
        kv[(*n)++] = sk_strdup("skeptic.classes");
        kv[(*n)++] = sk_strdup(m->data.classes);
    }
    if (m->data.has_split) {
        char t[48];
        kv[(*n)++] = sk_strdup("skeptic.data_seed");
        snprintf(t, sizeof t, "%llu", (unsigned long long)m->data.data_seed);
        kv[(*n)++] = sk_strdup(t);
        kv[(*n)++] = sk_strdup("skeptic.test_fraction");
        snprintf(t, sizeof t, "%.9g", m->data.test_fraction);
        kv[(*n)++] = sk_strdup(t);
    }
    if (m->in_lo) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddItemToObject(r, "lo", cJSON_CreateFloatArray(m->in_lo, m->in_dim));
        cJSON_AddItemToObject(r, "hi", cJSON_CreateFloatArray(m->in_hi, m->in_dim));
        char *t = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        kv[(*n)++] = sk_strdup("skeptic.input_range");
        kv[(*n)++] = t ? sk_strdup(t) : NULL;
        free(t);
    }
    for (int k = 0; k < *n; k++)
        if (!kv[k]) return SK_ENOMEM;
    return SK_OK;
}

int sk_model_save_onnx(const struct sk_model *m, const char *path)
{
    const uint32_t probe = 1;
    if (*(const uint8_t *)&probe != 1)
        return sk_error(SK_EINVAL, "%s: ONNX raw tensor data is little-endian; this machine is not", path);
    struct ex x;
    memset(&x, 0, sizeof x);
    x.cap_nodes = 5 * m->n_layers + 4;
    x.cap_inits = 4 * m->n_layers + 4;
    x.nodes = sk_calloc((size_t)x.cap_nodes, sizeof *x.nodes);
    x.pnodes = sk_calloc((size_t)x.cap_nodes, sizeof *x.pnodes);
    x.inits = sk_calloc((size_t)x.cap_inits, sizeof *x.inits);
    x.pinits = sk_calloc((size_t)x.cap_inits, sizeof *x.pinits);
    x.outs = sk_calloc((size_t)m->n_layers, sizeof *x.outs);
    struct xvi *vio = sk_calloc(2, sizeof *vio);
    char *kv[12] = { 0 };
    int n_kv = 0;
    uint8_t *buf = NULL;
    int rc = x.nodes && x.pnodes && x.inits && x.pinits && x.outs && vio ? SK_OK : SK_ENOMEM;
    if (!rc) rc = record_props(m, kv, &n_kv);
    if (!rc) {
        snprintf(x.cur, NAME, "input");
        int64_t in_dims[4] = { 1, m->in_c, m->in_h, m->in_w };
        if (!m->spatial) in_dims[1] = m->in_dim;
        int in_nd = m->spatial ? 4 : 2;
        value_info(&vio[0], "input", in_nd, in_dims);
        int64_t out_dims[2] = { 1, m->n_classes };
        value_info(&vio[1], "logits", 2, out_dims);
        if (m->prep) {
            init_tensor(&x, "input.shift", m->prep->shift, in_nd, in_dims);
            init_tensor(&x, "input.scale", m->prep->scale, in_nd, in_dims);
            node1(&x, "Sub", "input.sub", "input.shift", NULL);
            node1(&x, "Mul", "input.mul", "input.scale", NULL);
        }
        snprintf(x.in, NAME, "%s", x.cur);
        for (int i = 0; !rc && i < m->n_layers; i++) {
            rc = add_layer(&x, m, i);
            snprintf(x.outs[i], NAME, "%s", x.cur);
        }
    }
    if (!rc) {
        Onnx__StringStringEntryProto props[6], *pprops[6];
        for (int k = 0; k < n_kv / 2; k++) {
            onnx__string_string_entry_proto__init(&props[k]);
            props[k].key = kv[2 * k];
            props[k].value = kv[2 * k + 1];
            pprops[k] = &props[k];
        }
        Onnx__OperatorSetIdProto os;
        onnx__operator_set_id_proto__init(&os);
        os.domain = (char *)(uintptr_t) "";
        os.has_version = 1;
        os.version = SK_ONNX_OPSET_WRITTEN;
        Onnx__OperatorSetIdProto *pos = &os;
        Onnx__GraphProto g;
        onnx__graph_proto__init(&g);
        g.name = (char *)(uintptr_t) "skeptic";
        g.n_node = (size_t)x.n_nodes;
        g.node = x.pnodes;
        g.n_initializer = (size_t)x.n_inits;
        g.initializer = x.pinits;
        g.n_input = 1;
        g.input = &vio[0].pvi;
        g.n_output = 1;
        g.output = &vio[1].pvi;
        Onnx__ModelProto mp;
        onnx__model_proto__init(&mp);
        mp.has_ir_version = 1;
        mp.ir_version = 7; /* the IR of opset 13 */
        mp.n_opset_import = 1;
        mp.opset_import = &pos;
        mp.producer_name = (char *)(uintptr_t) "skeptic";
        mp.producer_version = (char *)(uintptr_t)SKEPTIC_VERSION;
        mp.graph = &g;
        mp.n_metadata_props = (size_t)n_kv / 2;
        mp.metadata_props = pprops;
        size_t len = onnx__model_proto__get_packed_size(&mp);
        buf = sk_malloc(len ? len : 1);
        if (!buf) rc = SK_ENOMEM;
        else if (onnx__model_proto__pack(&mp, buf) != len)
            rc = sk_error(SK_EINVAL, "%s: protobuf packing gave an unexpected size", path);
        const void *parts[1] = { buf };
        if (!rc) rc = sk_write_file_atomic(path, parts, &len, 1);
    }
    for (int k = 0; k < n_kv; k++) sk_free(kv[k]);
    sk_free(buf);
    sk_free(vio);
    sk_free(x.nodes);
    sk_free(x.outs);
    sk_free(x.pnodes);
    sk_free(x.inits);
    sk_free(x.pinits);
    return rc;
}
