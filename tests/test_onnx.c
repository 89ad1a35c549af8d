/* ONNX: every skeptic layer, chains and graphs (residual add, cat, a label
 * on the input), exported and read back bit for bit (layers and what they
 * read, logits, weights, record); hand-built graphs of the patterns the
 * reader maps (an input transform from Sub/Div, MatMul + Add, Transpose of
 * weights, GELU, an output Softmax; branches joined by Add, Sum and Concat,
 * with the nodes out of order) against the arithmetic they stand for; the
 * VNN-COMP mnist_fc networks; and a corpus of malformed files (truncated,
 * wrong types, sizes that disagree, unknown ops, huge declared sizes,
 * cycles, branches that do not fit or lead nowhere) that must give an error
 * naming the file, never a crash. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx/onnx.pb-c.h"
#include "skeptic/skeptic.h"
#include "testutil.h"

static bool err_has(const char *a, const char *b)
{
    const char *e = sk_last_error();
    return strstr(e, a) && (!b || strstr(e, b));
}

static void randomize(struct sk_model *m, uint64_t seed)
{
    struct sk_rng r = sk_rng_new(seed);
    sk_model_init(m, SK_INIT_TORCH, seed);
    for (int i = 0; i < m->n_layers; i++) {
        const struct sk_layer *L = &m->layers[i];
        if (L->kind != SK_LAYER_BATCHNORM) continue;
        for (int c = 0; c < L->units; c++) {
            m->params[L->w_off + c] = 0.5f + sk_rng_uniform(&r);
            m->params[L->b_off + c] = sk_rng_normal(&r) * 0.3f;
            m->buffers[L->rm_off + c] = sk_rng_normal(&r) * 0.2f;
            m->buffers[L->rv_off + c] = 0.5f + sk_rng_uniform(&r);
        }
    }
}

/* Every layer kind, with an input transform and a full record, exported and
 * read back: same spec layers, same weights (hash), same logits bit for bit. */
static void test_round_trip(void)
{
    static const char *specs[] = {
        "mlp:6-5-4-3:lrelu:dropout0.25",
        "seq:2x8x8-conv3k3s1p1-bn-relu-maxpool2-conv4k3s2p1-tanh-avgpool2s1-flatten-dense5-sigmoid-dense3",
        "seq:1x6x6-conv2k3p1-gelu-gap-softplus-bn-dense4-lrelu0.2-dropout0.1-dense3",
        "seq:3x5x5-flatten-dense7-gelu-dense2",
        "mlp:4-3:tanh",
        /* graphs: identity and projection shortcuts, a cat of images, a GELU whose input a branch also reads */
        "seq:2x6x6-conv3k3p1-bn-relu=a-conv3k3p1-bn-add@a-relu=b-conv4k1s2@b=c-conv4k3s2p1@b-bn-add@c-relu=d"
        "-conv2k3p1-maxpool1-cat@d-gap-dropout0.1-dense3",
        "seq:5=x-dense5=a-gelu=g-dense5@x-tanh-add@a-cat@g-bn-dense3",
    };
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        struct sk_model *m = sk_model_from_spec(specs[s]);
        CHECK(m, "%s: %s", specs[s], sk_last_error());
        if (!m) continue;
        randomize(m, 11 + s);
        struct sk_rng r = sk_rng_new(5 + s);
        int D = m->in_dim, N = 7;
        struct sk_preprocess p = { .kind = SK_PREP_STANDARDIZE, .dim = D };
        p.shift = malloc(sizeof(float) * D);
        p.scale = malloc(sizeof(float) * D);
        for (int j = 0; j < D; j++) p.shift[j] = sk_rng_normal(&r), p.scale[j] = 0.3f + sk_rng_uniform(&r);
        CHECK(sk_model_set_preprocess(m, &p) == 0, "prep");
        free(p.shift);
        free(p.scale);
        snprintf(m->data.classes, sizeof m->data.classes, "2,0,1");
        m->data.has_split = true;
        m->data.data_seed = 42;
        m->data.test_fraction = 0.25f;
        float *x = malloc(sizeof(float) * N * D), *z0 = malloc(sizeof(float) * N * m->n_classes),
              *z1 = malloc(sizeof(float) * N * m->n_classes);
        for (int i = 0; i < N * D; i++) x[i] = 2 * sk_rng_normal(&r);
        struct sk_dataset d = { .n = N, .dim = D, .c = m->in_c, .h = m->in_h, .w = m->in_w, .x = x };
        CHECK(sk_model_set_range(m, &d) == 0, "range");
        const char *path = sk_test_path("rt.onnx");
        CHECK(sk_model_save_onnx(m, path) == 0, "%s: save: %s", specs[s], sk_last_error());
        char *meta = NULL;
        struct sk_model *l = sk_model_load(path, NULL, &meta);
        CHECK(l, "%s: load: %s", specs[s], sk_last_error());
        if (l) {
            CHECK(l->n_layers == m->n_layers && l->n_params == m->n_params && l->n_buffers == m->n_buffers,
                  "%s read back as %s", specs[s], l->spec);
            for (int i = 0; i < m->n_layers && i < l->n_layers; i++)
                CHECK(l->layers[i].kind == m->layers[i].kind && l->layers[i].units == m->layers[i].units &&
                          l->layers[i].k == m->layers[i].k && l->layers[i].stride == m->layers[i].stride &&
                          l->layers[i].pad == m->layers[i].pad && l->layers[i].p == m->layers[i].p &&
                          l->layers[i].from[0] == m->layers[i].from[0] && l->layers[i].from[1] == m->layers[i].from[1] &&
                          !memcmp(l->layers[i].out, m->layers[i].out, sizeof m->layers[i].out),
                      "%s layer %d (read back as %s)", specs[s], i, l->spec);
            CHECK(sk_model_is_chain(l) == sk_model_is_chain(m), "%s: chain or graph", specs[s]);
            CHECK(sk_model_weights_hash(l) == sk_model_weights_hash(m), "%s: weights differ", specs[s]);
            CHECK(sk_model_logits(m, x, N, z0) == 0 && sk_model_logits(l, x, N, z1) == 0, "logits");
            CHECK(!memcmp(z0, z1, sizeof(float) * N * m->n_classes), "%s: logits not bit-identical (rel %g)", specs[s],
                  sk_rel_err(z1, z0, (size_t)N * m->n_classes));
            CHECK(l->prep && !memcmp(l->prep->shift, m->prep->shift, sizeof(float) * D) &&
                      !memcmp(l->prep->scale, m->prep->scale, sizeof(float) * D),
                  "%s: input transform", specs[s]);
            CHECK(!strcmp(l->data.classes, "2,0,1") && l->data.has_split && l->data.data_seed == 42 &&
                      l->data.test_fraction == 0.25f,
                  "%s: record", specs[s]);
            CHECK(l->in_lo && !memcmp(l->in_lo, m->in_lo, sizeof(float) * D), "%s: input range", specs[s]);
            char v[64];
            CHECK(meta && sk_meta_get(meta, "format", v, sizeof v) && !strcmp(v, "onnx") &&
                      sk_meta_get(meta, "onnx.opset", v, sizeof v) && !strcmp(v, "13") &&
                      !sk_meta_get(meta, "skeptic.import_notes", v, sizeof v),
                  "%s: metadata %s", specs[s], meta ? meta : "(null)");
            /* and once more through safetensors: the imported spec is an ordinary one */
            const char *st = sk_test_path("rt.safetensors");
            struct sk_model *l2 = sk_model_save(l, st, NULL) ? NULL : sk_model_load(st, NULL, NULL);
            CHECK(l2 && sk_model_logits(l2, x, N, z1) == 0 && !memcmp(z0, z1, sizeof(float) * N * m->n_classes),
                  "%s: ONNX -> safetensors changes the logits", specs[s]);
            sk_model_free(l2);
        }
        CHECK(!sk_model_load(path, "mlp:9-9", NULL) && err_has("does not match", NULL), "--arch against an ONNX file: %s",
              sk_last_error());
        /* the posterior loader (eval --samples, compare) takes it as a deterministic network */
        struct sk_posterior *bp = sk_bayes_load(path);
        CHECK(bp && bp->method == SK_BAYES_DETERMINISTIC && sk_model_weights_hash(bp->model) == sk_model_weights_hash(m),
              "%s: sk_bayes_load: %s", specs[s], bp ? "other weights" : sk_last_error());
        sk_bayes_free(bp);
        sk_free(meta);
        sk_model_free(l);
        sk_model_free(m);
        free(x);
        free(z0);
        free(z1);
    }
}

/* ---------------- hand-built graphs ---------------- */

struct gb {
    Onnx__ModelProto mp;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto os, *pos;
    Onnx__NodeProto nodes[24], *pn[24];
    char *nin[24][6], *nout[24][2];
    Onnx__AttributeProto attrs[24][4], *pa[24][4];
    int64_t aints[24][4][4];
    Onnx__TensorProto inits[24], *pi[24];
    int64_t idims[24][4];
    Onnx__ValueInfoProto vi[2], *pvi[2];
    Onnx__TypeProto tp[2];
    Onnx__TypeProto__Tensor tt[2];
    Onnx__TensorShapeProto sh[2];
    Onnx__TensorShapeProto__Dimension dm[2][4], *pdm[2][4];
};

static void gb_init(struct gb *b, int opset, int in_nd, const int64_t *in_dims, int n_out)
{
    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->mp);
    onnx__graph_proto__init(&b->g);
    onnx__operator_set_id_proto__init(&b->os);
    b->os.domain = "";
    b->os.has_version = 1;
    b->os.version = opset;
    b->pos = &b->os;
    b->mp.has_ir_version = 1;
    b->mp.ir_version = 7;
    b->mp.n_opset_import = 1;
    b->mp.opset_import = &b->pos;
    b->mp.producer_name = "test_onnx";
    b->mp.graph = &b->g;
    b->g.node = b->pn;
    b->g.initializer = b->pi;
    for (int k = 0; k < 2; k++) {
        int nd = k == 0 ? in_nd : 2;
        onnx__value_info_proto__init(&b->vi[k]);
        onnx__type_proto__init(&b->tp[k]);
        onnx__type_proto__tensor__init(&b->tt[k]);
        onnx__tensor_shape_proto__init(&b->sh[k]);
        for (int d = 0; d < nd; d++) {
            onnx__tensor_shape_proto__dimension__init(&b->dm[k][d]);
            b->dm[k][d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            b->dm[k][d].dim_value = k == 0 ? in_dims[d] : d == 0 ? 1 : n_out;
            b->pdm[k][d] = &b->dm[k][d];
        }
        b->sh[k].n_dim = (size_t)nd;
        b->sh[k].dim = b->pdm[k];
        b->tt[k].has_elem_type = 1;
        b->tt[k].elem_type = 1;
        b->tt[k].shape = &b->sh[k];
        b->tp[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        b->tp[k].tensor_type = &b->tt[k];
        b->vi[k].name = k == 0 ? "x" : "y";
        b->vi[k].type = &b->tp[k];
        b->pvi[k] = &b->vi[k];
    }
    b->g.n_input = 1;
    b->g.input = &b->pvi[0];
    b->g.n_output = 1;
    b->g.output = &b->pvi[1];
}

/* node op(inputs ...) -> out; inputs NULL-terminated */
static Onnx__NodeProto *gb_node(struct gb *b, const char *op, const char *out, const char *in0, const char *in1,
                                const char *in2)
{
    int k = (int)b->g.n_node++;
    Onnx__NodeProto *n = &b->nodes[k];
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->name = (char *)out;
    const char *ins[3] = { in0, in1, in2 };
    for (int i = 0; i < 3 && ins[i]; i++) b->nin[k][n->n_input++] = (char *)ins[i];
    n->input = b->nin[k];
    b->nout[k][0] = (char *)out;
    n->n_output = 1;
    n->output = b->nout[k];
    n->attribute = b->pa[k];
    b->pn[k] = n;
    return n;
}

static void gb_attr_i(struct gb *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    int k = (int)(n - b->nodes), a = (int)n->n_attribute++;
    onnx__attribute_proto__init(&b->attrs[k][a]);
    b->attrs[k][a].name = (char *)name;
    b->attrs[k][a].has_type = 1;
    b->attrs[k][a].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    b->attrs[k][a].has_i = 1;
    b->attrs[k][a].i = v;
    b->pa[k][a] = &b->attrs[k][a];
}

static Onnx__TensorProto *gb_init_f(struct gb *b, const char *name, int nd, const int64_t *dims, const float *data,
                                    size_t n)
{
    int k = (int)b->g.n_initializer++;
    Onnx__TensorProto *t = &b->inits[k];
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    for (int d = 0; d < nd; d++) b->idims[k][d] = dims[d];
    t->n_dims = (size_t)nd;
    t->dims = b->idims[k];
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_float_data = n;
    t->float_data = (float *)data;
    b->pi[k] = t;
    return t;
}

static const char *gb_write(struct gb *b, const char *name)
{
    size_t len = onnx__model_proto__get_packed_size(&b->mp);
    uint8_t *buf = malloc(len + 1);
    onnx__model_proto__pack(&b->mp, buf);
    const char *p = sk_test_path(name);
    sk_test_write(p, buf, len);
    free(buf);
    return p;
}

static float gelu_ref(float v) { return (float)(0.5 * v * (1 + erf(v / sqrt(2.0)))); }

/* x -> Sub(mu) -> Div(sd) -> MatMul(Transpose(W)) -> Add(b) -> GELU (erf
 * pattern, torch's order) -> Gemm(transB=0, alpha 2) -> Softmax: the
 * importer's model against the arithmetic itself. */
static void test_patterns(void)
{
    int64_t in_dims[2] = { 1, 3 };
    struct gb b;
    gb_init(&b, 13, 2, in_dims, 2);
    static const float mu[3] = { 0.5f, -1.0f, 2.0f }, sd[3] = { 2.0f, 0.5f, 4.0f };
    static const float W[4 * 3] = { 0.1f, -0.2f, 0.3f, 0.4f, 0.5f, -0.6f, -0.7f, 0.8f, 0.9f, 1.0f, -1.1f, 1.2f };
    static const float bb[4] = { 0.05f, -0.1f, 0.15f, 0.2f };
    static const float V[4 * 2] = { 1, -1, 0.5f, 0.25f, -0.75f, 1.5f, 2, 0.1f }; /* [4, 2], transB = 0 */
    static const float vb[2] = { 0.3f, -0.3f }, sqrt2 = 1.41421356f, one = 1, half = 0.5f;
    int64_t d3[2] = { 1, 3 }, dw[2] = { 4, 3 }, d4[1] = { 4 }, dv[2] = { 4, 2 }, d2[1] = { 2 };
    gb_init_f(&b, "mu", 2, d3, mu, 3);
    gb_init_f(&b, "sd", 2, d3, sd, 3);
    gb_init_f(&b, "W", 2, dw, W, 12);
    gb_init_f(&b, "b", 1, d4, bb, 4);
    gb_init_f(&b, "V", 2, dv, V, 8);
    gb_init_f(&b, "vb", 1, d2, vb, 2);
    gb_init_f(&b, "sqrt2", 0, NULL, &sqrt2, 1);
    gb_init_f(&b, "one", 0, NULL, &one, 1);
    gb_init_f(&b, "half", 0, NULL, &half, 1);
    gb_node(&b, "Sub", "s", "x", "mu", NULL);
    gb_node(&b, "Div", "n", "s", "sd", NULL);
    gb_node(&b, "Transpose", "Wt", "W", NULL, NULL);
    gb_node(&b, "MatMul", "h", "n", "Wt", NULL);
    gb_node(&b, "Add", "hb", "h", "b", NULL);
    gb_node(&b, "Div", "g1", "hb", "sqrt2", NULL);
    gb_node(&b, "Erf", "g2", "g1", NULL, NULL);
    gb_node(&b, "Add", "g3", "g2", "one", NULL);
    gb_node(&b, "Mul", "g4", "hb", "g3", NULL);
    gb_node(&b, "Mul", "g5", "g4", "half", NULL);
    Onnx__NodeProto *gm = gb_node(&b, "Gemm", "z", "g5", "V", "vb");
    Onnx__AttributeProto *alpha = &b.attrs[gm - b.nodes][0];
    onnx__attribute_proto__init(alpha);
    alpha->name = "alpha";
    alpha->has_type = 1;
    alpha->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    alpha->has_f = 1;
    alpha->f = 2.0f;
    b.pa[gm - b.nodes][0] = alpha;
    gm->n_attribute = 1;
    gb_node(&b, "Softmax", "y", "z", NULL, NULL);
    const char *path = gb_write(&b, "patterns.onnx");
    char *meta = NULL;
    struct sk_model *m = sk_model_load(path, NULL, &meta);
    CHECK(m, "patterns: %s", sk_last_error());
    if (!m) return;
    CHECK(!strcmp(m->spec, "seq:3-dense4-gelu-dense2"), "spec %s", m->spec);
    CHECK(m->prep && m->prep->shift[1] == -1.0f && m->prep->scale[2] == 0.25f, "input transform from Sub/Div");
    char note[512];
    CHECK(meta && sk_meta_get(meta, "skeptic.import_notes", note, sizeof note) && strstr(note, "Softmax"),
          "the removed softmax is noted: %s", meta ? meta : "");
    float x[2 * 3] = { 1, 2, 3, -0.5f, 0.25f, 7 }, z[4];
    CHECK(sk_model_logits(m, x, 2, z) == 0, "logits");
    for (int r = 0; r < 2; r++) {
        float h[4];
        for (int o = 0; o < 4; o++) {
            double s = bb[o];
            for (int i = 0; i < 3; i++) s += (double)W[o * 3 + i] * ((x[r * 3 + i] - mu[i]) / sd[i]);
            h[o] = gelu_ref((float)s);
        }
        for (int k = 0; k < 2; k++) {
            double s = vb[k];
            for (int o = 0; o < 4; o++) s += 2.0 * V[o * 2 + k] * h[o];
            CHECK(fabs(z[r * 2 + k] - s) <= 1e-5 * (1 + fabs(s)), "row %d logit %d: %g vs %g", r, k, z[r * 2 + k], s);
        }
    }
    sk_free(meta);
    sk_model_free(m);
}

/* A CNN graph: Conv (no bias) -> Mul by a per-channel constant (folded into
 * the conv) -> Relu -> MaxPool -> BatchNormalization (epsilon 1e-3) ->
 * Flatten -> Gemm; compared with the same layers built by spec. */
static void test_cnn_graph(void)
{
    int64_t in_dims[4] = { 1, 1, 4, 4 };
    struct gb b;
    gb_init(&b, 11, 4, in_dims, 3);
    float Wc[2 * 9], sc[2] = { 2.0f, 0.5f }, g[2] = { 1.5f, 0.5f }, be[2] = { 0.1f, -0.2f }, mu[2] = { 0.3f, -0.1f },
                      var[2] = { 0.8f, 1.7f }, Wd[3 * 2], bd[3] = { 0.1f, 0.2f, 0.3f };
    for (int i = 0; i < 18; i++) Wc[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < 6; i++) Wd[i] = (float)((i * 5) % 7) / 7.0f - 0.4f;
    int64_t dwc[4] = { 2, 1, 3, 3 }, dsc[3] = { 2, 1, 1 }, dc[1] = { 2 }, dwd[2] = { 3, 2 }, d3[1] = { 3 };
    gb_init_f(&b, "Wc", 4, dwc, Wc, 18);
    gb_init_f(&b, "sc", 3, dsc, sc, 2);
    gb_init_f(&b, "g", 1, dc, g, 2);
    gb_init_f(&b, "be", 1, dc, be, 2);
    gb_init_f(&b, "mu", 1, dc, mu, 2);
    gb_init_f(&b, "var", 1, dc, var, 2);
    gb_init_f(&b, "Wd", 2, dwd, Wd, 6);
    gb_init_f(&b, "bd", 1, d3, bd, 3);
    Onnx__NodeProto *cv = gb_node(&b, "Conv", "c", "x", "Wc", NULL);
    (void)cv;
    gb_node(&b, "Mul", "cs", "c", "sc", NULL);
    gb_node(&b, "Relu", "r", "cs", NULL, NULL);
    Onnx__NodeProto *mp = gb_node(&b, "MaxPool", "p", "r", NULL, NULL);
    int k = (int)(mp - b.nodes);
    for (int a = 0; a < 2; a++) {
        onnx__attribute_proto__init(&b.attrs[k][a]);
        b.attrs[k][a].name = a ? "strides" : "kernel_shape";
        b.attrs[k][a].has_type = 1;
        b.attrs[k][a].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        b.aints[k][a][0] = b.aints[k][a][1] = 2;
        b.attrs[k][a].n_ints = 2;
        b.attrs[k][a].ints = b.aints[k][a];
        b.pa[k][a] = &b.attrs[k][a];
    }
    mp->n_attribute = 2;
    Onnx__NodeProto *bn = gb_node(&b, "BatchNormalization", "bn", "p", "g", "be");
    b.nin[bn - b.nodes][3] = "mu";
    b.nin[bn - b.nodes][4] = "var";
    bn->n_input = 5;
    k = (int)(bn - b.nodes);
    onnx__attribute_proto__init(&b.attrs[k][0]);
    b.attrs[k][0].name = "epsilon";
    b.attrs[k][0].has_type = 1;
    b.attrs[k][0].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    b.attrs[k][0].has_f = 1;
    b.attrs[k][0].f = 1e-3f;
    b.pa[k][0] = &b.attrs[k][0];
    bn->n_attribute = 1;
    gb_node(&b, "Flatten", "f", "bn", NULL, NULL);
    gb_attr_i(&b, gb_node(&b, "Gemm", "y", "f", "Wd", "bd"), "transB", 1);
    const char *path = gb_write(&b, "cnn.onnx");
    struct sk_model *m = sk_model_load(path, NULL, NULL);
    CHECK(m, "cnn graph: %s", sk_last_error());
    if (!m) return;
    CHECK(!strcmp(m->spec, "seq:1x4x4-conv2k3s1p0-relu-maxpool2s2-bn-flatten-dense3"), "spec %s", m->spec);
    float x[16], z[3];
    for (int i = 0; i < 16; i++) x[i] = (float)((i * 3) % 5) - 2.0f;
    CHECK(sk_model_logits(m, x, 1, z) == 0, "logits");
    /* by hand: conv (2 channels, 2x2 out), scaled, relu, 2x2 max -> 2 values, bn, dense */
    float pooled[2];
    for (int c = 0; c < 2; c++) {
        float best = -INFINITY;
        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++) {
                double s = 0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) s += (double)Wc[c * 9 + ky * 3 + kx] * x[(oy + ky) * 4 + ox + kx];
                float v = (float)(s * sc[c]);
                v = v > 0 ? v : 0;
                best = v > best ? v : best;
            }
        pooled[c] = (float)((best - mu[c]) / sqrt(var[c] + 1e-3) * g[c] + be[c]);
    }
    for (int o = 0; o < 3; o++) {
        double s = bd[o] + Wd[o * 2] * pooled[0] + Wd[o * 2 + 1] * pooled[1];
        CHECK(fabs(z[o] - s) <= 1e-5 * (1 + fabs(s)), "cnn logit %d: %g vs %g", o, z[o], s);
    }
    sk_model_free(m);
}

/* A graph with branches, its nodes in reverse order (the reader sorts them):
 *   h = Gemm(x, W1)         [4]     read by Relu, Add
 *   r = Relu(h)                     read by Gemm W2, Concat
 *   h2 = Gemm(r, W2)        [4]
 *   s = Add(h, h2)                  a residual sum
 *   c = Concat(s, r, axis 1) [8]
 *   t = Sum(c, c2), c2 = Sigmoid(c)  Sum of two computed tensors
 *   y = Gemm(t, W3)         [3]
 * against the arithmetic, in double. */
static void test_branches(void)
{
    int64_t in_dims[2] = { 1, 4 };
    struct gb b;
    gb_init(&b, 13, 2, in_dims, 3);
    float W1[16], W2[16], W3[24];
    for (int i = 0; i < 16; i++) W1[i] = (float)((i * 7) % 11) / 11.0f - 0.45f, W2[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
    for (int i = 0; i < 24; i++) W3[i] = (float)((i * 3) % 7) / 7.0f - 0.4f;
    int64_t d44[2] = { 4, 4 }, d38[2] = { 3, 8 };
    gb_init_f(&b, "W1", 2, d44, W1, 16);
    gb_init_f(&b, "W2", 2, d44, W2, 16);
    gb_init_f(&b, "W3", 2, d38, W3, 24);
    gb_attr_i(&b, gb_node(&b, "Gemm", "y", "t", "W3", NULL), "transB", 1);
    gb_node(&b, "Sum", "t", "c", "c2", NULL);
    gb_node(&b, "Sigmoid", "c2", "c", NULL, NULL);
    gb_attr_i(&b, gb_node(&b, "Concat", "c", "s", "r", NULL), "axis", 1);
    gb_node(&b, "Add", "s", "h", "h2", NULL);
    gb_attr_i(&b, gb_node(&b, "Gemm", "h2", "r", "W2", NULL), "transB", 1);
    gb_node(&b, "Relu", "r", "h", NULL, NULL);
    gb_attr_i(&b, gb_node(&b, "Gemm", "h", "x", "W1", NULL), "transB", 1);
    struct sk_model *m = sk_model_load(gb_write(&b, "branches.onnx"), NULL, NULL);
    CHECK(m, "branches: %s", sk_last_error());
    if (!m) return;
    CHECK(!strcmp(m->spec, "seq:4-dense4=l0-relu=l1-dense4=l2-add@l0@l2-cat@l1=l4-sigmoid=l5-add@l4@l5-dense3"),
          "branches read as %s", m->spec);
    CHECK(!sk_model_is_chain(m), "a graph");
    float x[2 * 4] = { 0.5f, -1, 2, 0.25f, -0.75f, 1.5f, 0.1f, -2 }, z[2 * 3];
    CHECK(sk_model_logits(m, x, 2, z) == 0, "logits: %s", sk_last_error());
    for (int r = 0; r < 2; r++) {
        double h[4], rl[4], c[8];
        for (int o = 0; o < 4; o++) {
            h[o] = 0;
            for (int i = 0; i < 4; i++) h[o] += (double)W1[o * 4 + i] * x[r * 4 + i];
            rl[o] = h[o] > 0 ? h[o] : 0;
        }
        for (int o = 0; o < 4; o++) {
            double h2 = 0;
            for (int i = 0; i < 4; i++) h2 += (double)W2[o * 4 + i] * rl[i];
            c[o] = h[o] + h2;
            c[4 + o] = rl[o];
        }
        for (int k = 0; k < 3; k++) {
            double y = 0;
            for (int j = 0; j < 8; j++) y += (double)W3[k * 8 + j] * (c[j] + 1 / (1 + exp(-c[j])));
            CHECK(fabs(z[r * 3 + k] - y) <= 1e-5 * (1 + fabs(y)), "branches row %d logit %d: %g vs %g", r, k, z[r * 3 + k], y);
        }
    }
    /* its export reads back as the same layers */
    const char *again = sk_test_path("branches-again.onnx");
    struct sk_model *l = sk_model_save_onnx(m, again) ? NULL : sk_model_load(again, NULL, NULL);
    CHECK(l && !strcmp(l->spec, m->spec), "branches exported and read back: %s", l ? l->spec : sk_last_error());
    sk_model_free(l);
    sk_model_free(m);

    /* images: a conv whose output a residual Add also reads, the mean over H and W
     * (ReduceMean, x.mean((2, 3)) in PyTorch), a Mul by a constant folded into a
     * conv read once */
    int64_t img[4] = { 1, 1, 4, 4 };
    gb_init(&b, 13, 4, img, 2);
    float Wa[2 * 9], Wb[2 * 2 * 9], sc[2] = { 2.0f, -0.5f }, Wd[2 * 2];
    for (int i = 0; i < 18; i++) Wa[i] = (float)((i * 5) % 9) / 9.0f - 0.4f;
    for (int i = 0; i < 36; i++) Wb[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    for (int i = 0; i < 4; i++) Wd[i] = 0.25f * (float)i - 0.3f;
    int64_t dwa[4] = { 2, 1, 3, 3 }, dwb[4] = { 2, 2, 3, 3 }, dsc[3] = { 2, 1, 1 }, dwd[2] = { 2, 2 };
    gb_init_f(&b, "Wa", 4, dwa, Wa, 18);
    gb_init_f(&b, "Wb", 4, dwb, Wb, 36);
    gb_init_f(&b, "sc", 3, dsc, sc, 2);
    gb_init_f(&b, "Wd", 2, dwd, Wd, 4);
    Onnx__NodeProto *ca = gb_node(&b, "Conv", "a", "x", "Wa", NULL);
    Onnx__NodeProto *cb = gb_node(&b, "Conv", "bc", "a", "Wb", NULL);
    for (Onnx__NodeProto *cv = ca; cv; cv = cv == ca ? cb : NULL) {
        int k = (int)(cv - b.nodes);
        onnx__attribute_proto__init(&b.attrs[k][0]);
        b.attrs[k][0].name = "pads";
        b.attrs[k][0].has_type = 1;
        b.attrs[k][0].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        for (int q = 0; q < 4; q++) b.aints[k][0][q] = 1;
        b.attrs[k][0].n_ints = 4;
        b.attrs[k][0].ints = b.aints[k][0];
        b.pa[k][0] = &b.attrs[k][0];
        cv->n_attribute = 1;
    }
    gb_node(&b, "Mul", "bs", "bc", "sc", NULL);
    gb_node(&b, "Add", "s", "a", "bs", NULL);
    Onnx__NodeProto *rm = gb_node(&b, "ReduceMean", "g", "s", NULL, NULL);
    gb_attr_i(&b, rm, "keepdims", 0);
    {
        int k = (int)(rm - b.nodes), a = (int)rm->n_attribute++;
        onnx__attribute_proto__init(&b.attrs[k][a]);
        b.attrs[k][a].name = "axes";
        b.attrs[k][a].has_type = 1;
        b.attrs[k][a].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        b.aints[k][a][0] = -1;
        b.aints[k][a][1] = 2;
        b.attrs[k][a].n_ints = 2;
        b.attrs[k][a].ints = b.aints[k][a];
        b.pa[k][a] = &b.attrs[k][a];
    }
    gb_attr_i(&b, gb_node(&b, "Gemm", "y", "g", "Wd", NULL), "transB", 1);
    m = sk_model_load(gb_write(&b, "residual-conv.onnx"), NULL, NULL);
    CHECK(m && !strcmp(m->spec, "seq:1x4x4-conv2k3s1p1=l0-conv2k3s1p1=l1-add@l0@l1-gap-dense2"), "residual conv: %s",
          m ? m->spec : sk_last_error());
    if (m) {
        float xi[16], zi[2];
        for (int i = 0; i < 16; i++) xi[i] = (float)((i * 3) % 7) / 7.0f - 0.3f;
        CHECK(sk_model_logits(m, xi, 1, zi) == 0, "logits");
        double a[2][4][4], s2[2] = { 0, 0 };
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < 4; y++)
                for (int u = 0; u < 4; u++) {
                    double v = 0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = y + ky - 1, xx = u + kx - 1;
                            if (yy >= 0 && yy < 4 && xx >= 0 && xx < 4) v += (double)Wa[c * 9 + ky * 3 + kx] * xi[yy * 4 + xx];
                        }
                    a[c][y][u] = v;
                }
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < 4; y++)
                for (int u = 0; u < 4; u++) {
                    double v = 0;
                    for (int ci = 0; ci < 2; ci++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int yy = y + ky - 1, xx = u + kx - 1;
                                if (yy >= 0 && yy < 4 && xx >= 0 && xx < 4)
                                    v += (double)Wb[((c * 2 + ci) * 3 + ky) * 3 + kx] * a[ci][yy][xx];
                            }
                    s2[c] += (a[c][y][u] + sc[c] * v) / 16;
                }
        for (int k = 0; k < 2; k++) {
            double y = Wd[k * 2] * s2[0] + Wd[k * 2 + 1] * s2[1];
            CHECK(fabs(zi[k] - y) <= 1e-5 * (1 + fabs(y)), "residual conv logit %d: %g vs %g", k, zi[k], y);
        }
    }
    sk_model_free(m);
}

/* ---------------- malformed files ---------------- */

/* A valid small graph x[1,4] -> Gemm(W[3,4]) -> y, then one defect. */
static void base_graph(struct gb *b, float *W)
{
    int64_t in_dims[2] = { 1, 4 }, dw[2] = { 3, 4 };
    gb_init(b, 13, 2, in_dims, 3);
    for (int i = 0; i < 12; i++) W[i] = (float)i / 12.0f;
    gb_init_f(b, "W", 2, dw, W, 12);
    gb_attr_i(b, gb_node(b, "Gemm", "y", "x", "W", NULL), "transB", 1);
}

static void expect_fail(const char *path, const char *what, const char *a, const char *b)
{
    struct sk_model *m = sk_model_load(path, NULL, NULL);
    CHECK(!m && strstr(sk_last_error(), path) && err_has(a, b), "%s: %s", what, m ? "loaded" : sk_last_error());
    sk_model_free(m);
}

static void test_bad_graphs(void)
{
    float W[12];
    struct gb b;
    base_graph(&b, W);
    struct sk_model *m = sk_model_load(gb_write(&b, "ok.onnx"), NULL, NULL);
    CHECK(m && !strcmp(m->spec, "seq:4-dense3"), "the base graph loads: %s", m ? m->spec : sk_last_error());
    sk_model_free(m);

    base_graph(&b, W);
    b.nodes[0].op_type = "Elu";
    expect_fail(gb_write(&b, "unknown.onnx"), "unknown op", "'y' (Elu, opset 13)", "supported ops");

    base_graph(&b, W);
    b.os.version = 18;
    expect_fail(gb_write(&b, "opset.onnx"), "opset 18", "opset 18", "9 to 17");

    base_graph(&b, W);
    b.idims[0][1] = 5;
    expect_fail(gb_write(&b, "count.onnx"), "dims against data", "declares 15 elements", "holds 12");

    base_graph(&b, W);
    b.idims[0][0] = (int64_t)1 << 30;
    b.idims[0][1] = (int64_t)1 << 30;
    expect_fail(gb_write(&b, "huge.onnx"), "huge declared size", "more than 2^31", NULL);

    base_graph(&b, W);
    b.inits[0].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
    expect_fail(gb_write(&b, "type.onnx"), "wrong data type", "STRING", NULL);

    base_graph(&b, W);
    b.tt[0].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    expect_fail(gb_write(&b, "intype.onnx"), "integer input", "INT64", NULL);

    base_graph(&b, W);
    b.dm[0][1].dim_value = 5;
    expect_fail(gb_write(&b, "shape.onnx"), "shapes that disagree", "takes 4 features but its input has 5", NULL);

    base_graph(&b, W);
    b.inits[0].has_data_location = 1;
    b.inits[0].data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    expect_fail(gb_write(&b, "external.onnx"), "external data", "external file", NULL);

    /* a cycle: y = Relu(a), a = Relu(y) beside the chain */
    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    gb_node(&b, "Add", "a", "h", "c", NULL);
    gb_node(&b, "Relu", "c", "a", NULL, NULL);
    gb_node(&b, "Relu", "y", "c", NULL, NULL);
    expect_fail(gb_write(&b, "cycle.onnx"), "cycle", "cycle", NULL);

    /* a branch: h feeds a Relu and a Sigmoid added together; then the ways a branch goes wrong */
    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    gb_node(&b, "Relu", "r1", "h", NULL, NULL);
    gb_node(&b, "Sigmoid", "r2", "h", NULL, NULL);
    gb_node(&b, "Add", "y", "r1", "r2", NULL);
    m = sk_model_load(gb_write(&b, "branch.onnx"), NULL, NULL);
    CHECK(m && !strcmp(m->spec, "seq:4-dense3=l0-relu=l1-sigmoid@l0=l2-add@l1@l2"), "a branching graph loads: %s",
          m ? m->spec : sk_last_error());
    sk_model_free(m);

    b.nodes[3].op_type = "Mul";
    expect_fail(gb_write(&b, "branch-mul.onnx"), "a product of two branches", "'y' (Mul, opset 13)",
                "combines 2 computed tensors");
    b.nodes[3].op_type = "Concat";
    gb_attr_i(&b, &b.nodes[3], "axis", 0);
    expect_fail(gb_write(&b, "branch-axis.onnx"), "Concat on the batch axis", "'y' (Concat, opset 13)", "axis 0");

    /* branches of different shapes: h [3] + Gemm(h) [2] */
    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    gb_attr_i(&b, gb_node(&b, "Gemm", "h2", "h", "W", NULL), "transB", 0);
    gb_node(&b, "Add", "y", "h", "h2", NULL);
    expect_fail(gb_write(&b, "branch-shapes.onnx"), "branches of different shapes", "'y' (Add, opset 13)",
                "'h' (a vector of 3) and 'h2' (a vector of 4) do not fit");

    /* a side branch that reaches no output */
    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    gb_node(&b, "Sigmoid", "dead", "h", NULL, NULL);
    gb_node(&b, "Relu", "y", "h", NULL, NULL);
    expect_fail(gb_write(&b, "side-branch.onnx"), "a side branch", "'dead' (Sigmoid, opset 13)", "side branch");

    /* a constant folded into a layer whose output another branch reads */
    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    static const float three[3] = { 1, 2, 3 };
    int64_t d3[1] = { 3 };
    gb_init_f(&b, "c3", 1, d3, three, 3);
    gb_node(&b, "Mul", "hm", "h", "c3", NULL);
    gb_node(&b, "Add", "y", "h", "hm", NULL);
    expect_fail(gb_write(&b, "fold-shared.onnx"), "a fold into a shared layer", "'hm' (Mul, opset 13)",
                "also read by node 'y'");

    /* a join with a constant input */
    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    gb_node(&b, "Relu", "r", "h", NULL, NULL);
    gb_attr_i(&b, gb_node(&b, "Concat", "y", "h", "r", "c3"), "axis", 1);
    gb_init_f(&b, "c3", 1, d3, three, 3);
    expect_fail(gb_write(&b, "join-const.onnx"), "a Concat with a constant", "'y' (Concat, opset 13)",
                "input 2 is a constant");

    /* a value used before any node produces it, within a cycle through a join */
    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    gb_node(&b, "Add", "s", "h", "y", NULL);
    gb_node(&b, "Relu", "y", "s", NULL, NULL);
    expect_fail(gb_write(&b, "join-cycle.onnx"), "a cycle through a join", "'y' (Relu, opset 13)", "on a cycle");

    base_graph(&b, W);
    b.nin[0][1] = "nowhere";
    expect_fail(gb_write(&b, "dangling.onnx"), "undefined input", "'nowhere' is produced by no node", NULL);

    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    gb_node(&b, "Softmax", "s", "h", NULL, NULL);
    gb_node(&b, "Relu", "y", "s", NULL, NULL);
    expect_fail(gb_write(&b, "softmax.onnx"), "softmax in the middle", "softmax before the output", NULL);

    base_graph(&b, W);
    gb_node(&b, "Relu", "y", "x", NULL, NULL);
    expect_fail(gb_write(&b, "twice.onnx"), "a value defined twice", "defined twice", NULL);

    base_graph(&b, W);
    b.mp.graph = NULL;
    expect_fail(gb_write(&b, "nograph.onnx"), "no graph", "no graph", NULL);

    /* Conv on a vector, a Mul after a relu: shapes and places that map onto no layer */
    base_graph(&b, W);
    b.nout[0][0] = "h";
    b.nodes[0].name = "h";
    gb_node(&b, "Relu", "r", "h", NULL, NULL);
    gb_node(&b, "Mul", "y", "r", "W", NULL);
    expect_fail(gb_write(&b, "mulrelu.onnx"), "Mul after relu", "follows relu", NULL);

    /* the bytes: empty, truncated everywhere, mangled */
    base_graph(&b, W);
    size_t len = onnx__model_proto__get_packed_size(&b.mp);
    uint8_t *buf = malloc(len);
    onnx__model_proto__pack(&b.mp, buf);
    const char *p = sk_test_path("trunc.onnx");
    int n_fail = 0, n_total = 0;
    for (size_t cut = 1; cut < len; cut++) {
        sk_test_write(p, buf, cut);
        struct sk_model *t = sk_model_load(p, NULL, NULL);
        n_total++;
        if (!t) n_fail += strstr(sk_last_error(), "trunc.onnx") != NULL;
        sk_model_free(t);
    }
    CHECK(n_fail == n_total, "every truncation of a %zu-byte file is an error naming it (%d of %d)", len, n_fail, n_total);
    uint64_t st = 7;
    int mangled_ok = 0;
    for (int rep = 0; rep < 300; rep++) {
        uint8_t *c = malloc(len);
        memcpy(c, buf, len);
        for (int f = 0; f < 3; f++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            c[(st >> 33) % len] = (uint8_t)(st >> 17);
        }
        sk_test_write(p, c, len);
        struct sk_model *t = sk_model_load(p, NULL, NULL);
        mangled_ok += t || strstr(sk_last_error(), "trunc.onnx") != NULL;
        sk_model_free(t);
        free(c);
    }
    CHECK(mangled_ok == 300, "mangled files load or fail naming the file (%d of 300)", mangled_ok);
    free(buf);
    sk_test_write(p, "", 0);
    CHECK(!sk_model_load_onnx(p, NULL) && err_has("trunc.onnx", NULL), "an empty file: %s", sk_last_error());

    /* the command line: nonzero exit and the message */
    int rc = sk_cli_run("info unknown.onnx");
    CHECK(rc == 1 && strstr(sk_cli_err, "Elu") && strstr(sk_cli_err, "supported ops"), "skeptic info: rc %d, %s", rc,
          sk_cli_err);
    rc = sk_cli_run("info branch.onnx");
    CHECK(rc == 0 && strstr(sk_cli_out, "add@l1@l2"), "skeptic info on a branching graph: rc %d, %s", rc, sk_cli_err);
    rc = sk_cli_run("info side-branch.onnx");
    CHECK(rc == 1 && strstr(sk_cli_err, "side branch"), "skeptic info on a side branch: rc %d, %s", rc, sk_cli_err);
    rc = sk_cli_run("info patterns.onnx");
    CHECK(rc == 0 && strstr(sk_cli_err, "note:") && strstr(sk_cli_err, "Softmax") && strstr(sk_cli_out, "seq:3-dense4"),
          "skeptic info says what the import changed: rc %d, %s", rc, sk_cli_err);
    rc = sk_cli_run("export --model patterns.onnx --format onnx --out again.onnx");
    CHECK(rc == 0, "export: rc %d, %s", rc, sk_cli_err);
    rc = sk_cli_run("export --model patterns.onnx --format tflite --out x.tflite");
    CHECK(rc == 2 && strstr(sk_cli_err, "--format"), "export --format tflite: rc %d", rc);
}

/* ---------------- VNN-COMP mnist_fc ---------------- */

static const char *bench_dir(void)
{
    static char dir[4096];
    const char *e = getenv("SKEPTIC_BENCHMARKS");
    const char *src = getenv("SKEPTIC_SOURCE_DIR");
    if (e) snprintf(dir, sizeof dir, "%s/vnncomp-mnistfc", e);
    else snprintf(dir, sizeof dir, "%s/../shared/benchmarks/vnncomp-mnistfc", src ? src : "..");
    struct stat sb;
    /* a clone outside the workspace: the workspace's shared folder */
    if (!e && stat(dir, &sb) != 0) snprintf(dir, sizeof dir, "/work/shared/benchmarks/vnncomp-mnistfc");
    return dir;
}

/* The three networks load as dense chains; at the centre of each of the
 * 30 properties' boxes they predict the label the file's comment gives
 * (except prop_12 on 256x2, whose clipped box is not centred on the image:
 * see the folder's README); the logits themselves are checked against the
 * reference reader by test_onnx_vnncomp.py. */
static void test_mnistfc(void)
{
    const char *dir = bench_dir();
    struct stat sb;
    CHECK(stat(dir, &sb) == 0, "the VNN-COMP mnist_fc files are missing: %s (set SKEPTIC_BENCHMARKS to the folder "
          "holding vnncomp-mnistfc)", dir);
    if (stat(dir, &sb)) return;
    static const char *nets[3] = { "mnist-net_256x2", "mnist-net_256x4", "mnist-net_256x6" };
    int n_ok = 0;
    for (int k = 0; k < 3; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/onnx/%s.onnx", dir, nets[k]);
        struct sk_model *m = sk_model_load(path, NULL, NULL);
        CHECK(m && m->in_dim == 784 && m->n_classes == 10 && m->n_layers == 4 * (k + 1) + 1,
              "%s: %s", nets[k], m ? m->spec : sk_last_error());
        if (!m) continue;
        for (int i = 0; i < 15; i++)
            for (int e = 0; e < 2; e++) {
                char vp[4300], line[256] = "";
                snprintf(vp, sizeof vp, "%s/vnnlib/prop_%d_%s.vnnlib", dir, i, e ? "0.05" : "0.03");
                struct sk_vnnlib *p = sk_certify_vnnlib_read(vp);
                CHECK(p && p->n_inputs == 784 && p->n_outputs == 10, "%s: %s", vp, p ? "" : sk_last_error());
                if (!p) continue;
                FILE *fp = fopen(vp, "r");
                if (fp && !fgets(line, sizeof line, fp)) line[0] = 0;
                if (fp) fclose(fp);
                const char *lab = strstr(line, "label: ");
                int label = lab ? atoi(lab + 7) : -1;
                float x[784], z[10];
                for (int j = 0; j < 784; j++) x[j] = (float)((p->lo[j] + p->hi[j]) / 2);
                CHECK(sk_model_logits(m, x, 1, z) == 0, "logits");
                int best = 0;
                for (int c = 1; c < 10; c++) best = z[c] > z[best] ? c : best;
                if (!(k == 0 && i == 12)) {
                    CHECK(best == label, "%s prop_%d: argmax %d, label %d", nets[k], i, best, label);
                    /* the centre, correctly classified, is no counterexample */
                    CHECK(!sk_certify_vnnlib_satisfied(p, z, 0) && sk_certify_vnnlib_in_box(p, x, 0),
                          "%s prop_%d: the centre satisfies the negated property", nets[k], i);
                    n_ok++;
                }
                sk_certify_vnnlib_free(p);
            }
        sk_model_free(m);
    }
    CHECK(n_ok == 88, "88 of the 90 instances checked, got %d", n_ok);
}

int main(void)
{
    test_round_trip();
    test_patterns();
    test_cnn_graph();
    test_branches();
    test_bad_graphs();
    test_mnistfc();
    return sk_test_finish("test_onnx");
}
