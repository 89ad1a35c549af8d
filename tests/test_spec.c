/* Model specs read from the layer table: every row's word and arguments
 * parse to that row, the messages list the table's words, and a spec that
 * uses every kind gives the layer list, shapes, offsets and tensors worked
 * out by hand. */
#include <string.h>

#include "model/layers.h"
#include "testutil.h"

struct want_layer {
    enum sk_layer_kind kind;
    int out[3];
    int units, k, stride, pad;
    float p;
    size_t w_off, n_w, b_off, n_b;
};

static void check_layers(const char *spec, const struct sk_model *m, const struct want_layer *w, int n)
{
    CHECK(m && m->n_layers == n, "%s: %d layers (got %d; %s)", spec, n, m ? m->n_layers : -1, m ? "" : sk_last_error());
    if (!m || m->n_layers != n) return;
    for (int i = 0; i < n; i++) {
        const struct sk_layer *L = &m->layers[i];
        bool ok = L->kind == w[i].kind && !memcmp(L->out, w[i].out, sizeof L->out) && L->units == w[i].units &&
                  L->k == w[i].k && L->stride == w[i].stride && L->pad == w[i].pad && L->p == w[i].p &&
                  L->w_off == w[i].w_off && L->n_w == w[i].n_w && L->b_off == w[i].b_off && L->n_b == w[i].n_b;
        CHECK(ok, "%s layer %d: %s out %dx%dx%d units %d k %d s %d p %d p %g w %zu+%zu b %zu+%zu", spec, i,
              sk_layer_name(L->kind), L->out[0], L->out[1], L->out[2], L->units, L->k, L->stride, L->pad, L->p,
              L->w_off, L->n_w, L->b_off, L->n_b);
        if (i > 0) CHECK(!memcmp(L->in, m->layers[i - 1].out, sizeof L->in), "%s layer %d takes its input's shape",
                         spec, i);
    }
}

/* One spec with every layer kind: 2x7x7 input. */
static void test_every_kind(void)
{
    const char *spec = "cnn:2x7x7-conv3k3s2p1-bn-lrelu-maxpool2-conv4k2-gelu-avgpool1s1-dropout0.25-gap-flatten-"
                       "dense5-tanh-sigmoid-softplus-relu-lrelu0.5-dense3";
    struct sk_model *m = sk_model_from_spec(spec);
    const struct want_layer w[] = {
        /* (7 + 2 - 3) / 2 + 1 = 4; weight [3,2,3,3] */
        { SK_LAYER_CONV, { 3, 4, 4 }, 3, 3, 2, 1, 0, 0, 54, 54, 3 },
        { SK_LAYER_BATCHNORM, { 3, 4, 4 }, 3, 0, 0, 0, 0, 57, 3, 60, 3 },
        { SK_LAYER_LRELU, { 3, 4, 4 }, 0, 0, 0, 0, 0.01f, 0, 0, 0, 0 },
        /* stride = window */
        { SK_LAYER_MAXPOOL, { 3, 2, 2 }, 0, 2, 2, 0, 0, 0, 0, 0, 0 },
        /* stride 1, no padding: weight [4,3,2,2] */
        { SK_LAYER_CONV, { 4, 1, 1 }, 4, 2, 1, 0, 0, 63, 48, 111, 4 },
        { SK_LAYER_GELU, { 4, 1, 1 }, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { SK_LAYER_AVGPOOL, { 4, 1, 1 }, 0, 1, 1, 0, 0, 0, 0, 0, 0 },
        { SK_LAYER_DROPOUT, { 4, 1, 1 }, 0, 0, 0, 0, 0.25f, 0, 0, 0, 0 },
        { SK_LAYER_GAP, { 4, 1, 1 }, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { SK_LAYER_FLATTEN, { 4, 1, 1 }, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { SK_LAYER_DENSE, { 5, 1, 1 }, 5, 0, 0, 0, 0, 115, 20, 135, 5 },
        { SK_LAYER_TANH, { 5, 1, 1 }, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { SK_LAYER_SIGMOID, { 5, 1, 1 }, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { SK_LAYER_SOFTPLUS, { 5, 1, 1 }, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { SK_LAYER_RELU, { 5, 1, 1 }, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { SK_LAYER_LRELU, { 5, 1, 1 }, 0, 0, 0, 0, 0.5f, 0, 0, 0, 0 },
        { SK_LAYER_DENSE, { 3, 1, 1 }, 3, 0, 0, 0, 0, 140, 15, 155, 3 },
    };
    check_layers(spec, m, w, (int)(sizeof w / sizeof *w));
    CHECK(m && m->n_params == 158 && m->n_buffers == 6 && m->in_dim == 98 && m->spatial && m->n_classes == 3,
          "every kind: 158 parameters, 6 buffers, 98 inputs, 3 classes");
    /* file order, nn.Sequential names, running statistics as buffers */
    const struct { const char *name; bool buffer; size_t off; int ndim, shape[4]; } t[] = {
        { "0.weight", false, 0, 4, { 3, 2, 3, 3 } }, { "0.bias", false, 54, 1, { 3 } },
        { "1.weight", false, 57, 1, { 3 } },         { "1.bias", false, 60, 1, { 3 } },
        { "1.running_mean", true, 0, 1, { 3 } },     { "1.running_var", true, 3, 1, { 3 } },
        { "4.weight", false, 63, 4, { 4, 3, 2, 2 } }, { "4.bias", false, 111, 1, { 4 } },
        { "10.weight", false, 115, 2, { 5, 4 } },    { "10.bias", false, 135, 1, { 5 } },
        { "16.weight", false, 140, 2, { 3, 5 } },    { "16.bias", false, 155, 1, { 3 } },
    };
    int nt = (int)(sizeof t / sizeof *t);
    CHECK(m && m->n_tensors == nt, "every kind: %d tensors (got %d)", nt, m ? m->n_tensors : -1);
    for (int i = 0; m && i < nt && i < m->n_tensors; i++) {
        const struct sk_tensor_info *ti = &m->tensors[i];
        CHECK(!strcmp(ti->name, t[i].name) && ti->buffer == t[i].buffer && ti->off == t[i].off &&
              ti->ndim == t[i].ndim && !memcmp(ti->shape, t[i].shape, sizeof(int) * (size_t)t[i].ndim),
              "tensor %d is %s at %zu (got %s at %zu)", i, t[i].name, t[i].off, ti->name, ti->off);
    }
    /* batch norm starts at gamma 1, running variance 1 */
    CHECK(m && m->params[57] == 1 && m->params[60] == 0 && m->buffers[0] == 0 && m->buffers[3] == 1,
          "batch norm's initial gamma, beta and running statistics");
    sk_model_free(m);

    /* the mlp: shorthand names rows of the table: dense, the activation at
     * its defaults, dropout between dense layers */
    spec = "mlp:6-4-2:lrelu:dropout0.5";
    m = sk_model_from_spec(spec);
    const struct want_layer wm[] = {
        { SK_LAYER_DENSE, { 4, 1, 1 }, 4, 0, 0, 0, 0, 0, 24, 24, 4 },
        { SK_LAYER_LRELU, { 4, 1, 1 }, 0, 0, 0, 0, 0.01f, 0, 0, 0, 0 },
        { SK_LAYER_DROPOUT, { 4, 1, 1 }, 0, 0, 0, 0, 0.5f, 0, 0, 0, 0 },
        { SK_LAYER_DENSE, { 2, 1, 1 }, 2, 0, 0, 0, 0, 28, 8, 36, 2 },
    };
    check_layers(spec, m, wm, 4);
    CHECK(m && m->n_params == 38 && m->n_tensors == 4 && !strcmp(m->tensors[2].name, "3.weight"),
          "mlp: 38 parameters, tensors named after the layer list");
    sk_model_free(m);
}

/* Each row of the table: its word alone parses to that row, or (a row whose
 * first argument is required) is refused naming that argument; the messages
 * list every row's word in table order. */
static void test_rows(void)
{
    struct sk_model *m = sk_model_from_spec("seq:4-");
    char list[512];
    snprintf(list, sizeof list, "%s", m ? "" : sk_last_error());
    sk_model_free(m);
    const char *at = list;
    m = sk_model_from_spec("mlp:4-3:swish");
    char acts[512];
    snprintf(acts, sizeof acts, "%s", m ? "" : sk_last_error());
    sk_model_free(m);
    const char *act_at = acts;
    int n_act = 0;
    for (int k = 0; k < SK_LAYER_COUNT; k++) {
        const struct sk_layer_def *d = &sk_layer_table[k];
        const char *hit = strstr(at, d->name);
        CHECK(hit != NULL, "the layer-name message lists '%s' after the rows before it: %s", d->name, list);
        if (hit) at = hit + strlen(d->name);
        /* an image input for image layers, a vector for the others */
        char spec[96];
        /* a two-input row (add, cat) reads the input twice */
        snprintf(spec, sizeof spec,
                 d->input == SK_INPUT_IMAGE ? "cnn:2x4x4-%s-flatten-dense2"
                 : d->join                  ? "seq:4=x-%s@x@x-dense2"
                                            : "seq:4-%s-dense2",
                 d->name);
        m = sk_model_from_spec(spec);
        if (d->args[0].what && !d->args[0].optional) {
            CHECK(!m && strstr(sk_last_error(), d->args[0].what), "%s: refused naming '%s': %s", spec,
                  d->args[0].what, sk_last_error());
        } else {
            CHECK(m && m->layers[0].kind == (enum sk_layer_kind)k && m->layers[1].in[0] > 0, "%s parses to row %s: %s",
                  spec, d->name, m ? "" : sk_last_error());
            /* left-out arguments take the row's defaults */
            for (int i = 0; m && i < SK_LAYER_MAX_ARGS && d->args[i].what; i++) {
                const char *f = (const char *)&m->layers[0] + d->args[i].field;
                float v = d->args[i].type == SK_ARG_FLOAT ? *(const float *)f : (float)*(const int *)f;
                CHECK(v == d->args[i].def, "%s: %s defaults to %g (got %g)", spec, d->args[i].what, d->args[i].def, v);
            }
        }
        sk_model_free(m);
        /* the wrong kind of input is refused with the row's note */
        if (d->input != SK_INPUT_ANY) {
            snprintf(spec, sizeof spec, d->input == SK_INPUT_IMAGE ? "seq:4-%s2" : "cnn:2x4x4-%s2", d->name);
            m = sk_model_from_spec(spec);
            CHECK(!m && strstr(sk_last_error(), d->input_note), "%s refused: %s", spec, sk_last_error());
            sk_model_free(m);
        }
        if (d->activation) {
            n_act++;
            hit = strstr(act_at, d->name);
            CHECK(hit != NULL, "the activation message lists '%s': %s", d->name, acts);
            if (hit) act_at = hit + strlen(d->name);
            snprintf(spec, sizeof spec, "mlp:4-3-2:%s", d->name);
            m = sk_model_from_spec(spec);
            CHECK(m && m->n_layers == 3 && m->layers[1].kind == (enum sk_layer_kind)k, "%s: the activation is row %s",
                  spec, d->name);
            sk_model_free(m);
        }
    }
    CHECK(n_act == 6 && strstr(acts, "softplus or gelu"), "six activations, the last after 'or': %s", acts);
    /* the tagged arguments: a required letter, an optional one, a padding of 0 */
    m = sk_model_from_spec("cnn:1x5x5-conv2s2-flatten-dense2");
    CHECK(!m && strstr(sk_last_error(), "expected 'k' and the kernel size"), "conv needs 'k': %s", sk_last_error());
    sk_model_free(m);
    m = sk_model_from_spec("cnn:1x5x5-conv2k3p0s2-flatten-dense2");
    CHECK(!m && strstr(sk_last_error(), "column 20: expected '-'"), "arguments keep the row's order: %s",
          sk_last_error());
    sk_model_free(m);
    m = sk_model_from_spec("cnn:1x5x5-conv2k3s2p0-flatten-dense2");
    CHECK(m && m->layers[0].stride == 2 && m->layers[0].pad == 0 && m->layers[0].out[1] == 2, "conv2k3s2p0: 2x2x2");
    sk_model_free(m);
}

/* sk_spec_size tells a malformed spec (SK_EINVAL) from parsing out of memory
 * (SK_ENOMEM), for every allocation the parse makes. */
static void test_size_status(void)
{
    size_t np = 0, nb = 0;
    CHECK(sk_spec_size("mlp:4-8-3:relu", &np, &nb) == SK_OK && np == 4 * 8 + 8 + 8 * 3 + 3 && nb == 0,
          "mlp:4-8-3 counts %zu %zu", np, nb);
    CHECK(sk_spec_size("mlp:4-8-3:rellu", NULL, NULL) == SK_EINVAL, "a malformed spec is SK_EINVAL");
    int enomem = 0;
    for (long k = 1; k <= 8; k++) {
        sk_alloc_fail_after(k);
        int rc = sk_spec_size("mlp:4-8-3:relu", &np, &nb);
        bool taken = sk_alloc_fail_taken();
        sk_alloc_fail_after(0);
        if (!taken) {
            CHECK(rc == SK_OK, "no failure taken at %ld: SK_OK (got %d)", k, rc);
            break;
        }
        CHECK(rc == SK_ENOMEM, "allocation %ld failing: SK_ENOMEM (got %d: %s)", k, rc, sk_last_error());
        enomem++;
    }
    CHECK(enomem >= 3, "the parse allocates at least the model, its layers and tensors (%d failures seen)", enomem);
}

int main(void)
{
    test_every_kind();
    test_rows();
    test_size_status();
    return sk_test_finish("test_spec");
}
