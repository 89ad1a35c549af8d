#define _POSIX_C_SOURCE 200809L
/* Spec-string parser and model allocation. The words of a cnn:/seq: spec,
 * their arguments, shapes and tensors are the layer table's (layers.h); the
 * mlp: shorthand expands into rows of it. */
#include "model/layers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct parser {
    const char *spec;
    const char *p;
    struct sk_model *m;
    int cap_layers, cap_tensors;
    /* running shape */
    int C, H, W;
    bool spatial;
    /* graphs: every layer's output shape and label ("" = none), and the input's */
    struct sk_layer_shape *shapes, in_shape;
    char (*labels)[16];
    char in_label[16];
};

static int perr(struct parser *ps, const char *at, const char *fmt, const char *detail)
{
    char what[256];
    snprintf(what, sizeof what, fmt, detail);
    return sk_error(SK_EINVAL, "spec '%s' at column %d: %s", ps->spec, (int)(at - ps->spec) + 1, what);
}

/* Parse a positive integer at ps->p. */
static int parse_int(struct parser *ps, int *out, const char *what)
{
    const char *s = ps->p;
    if (!isdigit((unsigned char)*s)) return perr(ps, s, "expected %s (a positive integer)", what);
    long v = 0;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        if (v > 1000000000L) return perr(ps, ps->p, "%s is too large", what);
        s++;
    }
    if (v <= 0) return perr(ps, ps->p, "%s must be positive", what);
    *out = (int)v;
    ps->p = s;
    return 0;
}

static int parse_float(struct parser *ps, float *out, const char *what)
{
    /* digits with at most one '.', nothing else (no sign, no exponent) */
    const char *s = ps->p, *q = s;
    int dots = 0;
    while (isdigit((unsigned char)*q) || (*q == '.' && dots++ == 0)) q++;
    if (q == s || (q == s + 1 && *s == '.') || q - s >= 32)
        return perr(ps, s, "expected %s (a number such as 0.5)", what);
    char buf[32];
    memcpy(buf, s, (size_t)(q - s));
    buf[q - s] = 0;
    *out = strtof(buf, NULL);
    ps->p = q;
    return 0;
}

static struct sk_layer *add_layer(struct parser *ps, enum sk_layer_kind kind)
{
    struct sk_model *m = ps->m;
    SK_ASSERT(m->n_layers < ps->cap_layers);
    struct sk_layer *L = &m->layers[m->n_layers++];
    memset(L, 0, sizeof *L);
    L->kind = kind;
    L->from[0] = m->n_layers - 2;
    L->from[1] = -1;
    L->in[0] = ps->C;
    L->in[1] = ps->H;
    L->in[2] = ps->W;
    L->spatial_in = ps->spatial;
    return L;
}

static void finish_layer(struct parser *ps, struct sk_layer *L)
{
    L->out[0] = ps->C;
    L->out[1] = ps->H;
    L->out[2] = ps->W;
    ps->shapes[L - ps->m->layers] = (struct sk_layer_shape){ ps->C, ps->H, ps->W, ps->spatial };
}

/* The output shape of layer i (-1: the input). */
static struct sk_layer_shape shape_of(const struct parser *ps, int i)
{
    return i < 0 ? ps->in_shape : ps->shapes[i];
}

/* A label at ps->p into out: a lower-case letter, then lower-case letters,
 * digits or '_'; at most 15 characters. */
static int parse_label(struct parser *ps, char out[16])
{
    const char *s = ps->p;
    if (!islower((unsigned char)*s))
        return perr(ps, s, "%s", "expected a label (a lower-case letter, then letters, digits or '_')");
    while (islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_') s++;
    if (s - ps->p > 15) return perr(ps, ps->p, "%s", "a label has at most 15 characters");
    memcpy(out, ps->p, (size_t)(s - ps->p));
    out[s - ps->p] = 0;
    ps->p = s;
    return 0;
}

/* The layer whose output is labelled `name` (-1: the input), or -2. */
static int find_label(const struct parser *ps, const char *name)
{
    if (!strcmp(ps->in_label, name)) return -1;
    for (int i = 0; i < ps->m->n_layers; i++)
        if (!strcmp(ps->labels[i], name)) return i;
    return -2;
}

/* "=label" at ps->p names the output of layer i (-1: the input). */
static int parse_name(struct parser *ps, int i)
{
    if (*ps->p != '=') return 0;
    const char *at = ++ps->p;
    char name[16];
    int rc = parse_label(ps, name);
    if (rc) return rc;
    if (find_label(ps, name) != -2) return perr(ps, at, "the label '%s' is already taken", name);
    memcpy(i < 0 ? ps->in_label : ps->labels[i], name, sizeof name);
    return 0;
}

/* "@a" or "@a@b" at ps->p: the outputs the next layer reads (src[k], -1 the
 * input); their count. */
static int parse_sources(struct parser *ps, int src[2], int *n)
{
    *n = 0;
    while (*ps->p == '@') {
        const char *at = ps->p++;
        if (*n == 2) return perr(ps, at, "%s", "a layer reads at most two outputs ('@a@b')");
        char name[16];
        int rc = parse_label(ps, name);
        if (rc) return rc;
        int i = find_label(ps, name);
        if (i == -2) return perr(ps, at + 1, "no earlier layer is labelled '%s' (label one with '=name')", name);
        src[(*n)++] = i;
    }
    return 0;
}

/* The running shape's values per row within SK_MODEL_MAX_ACTIVATION (in
 * 64 bits: C x H x W of three ints can overflow an int). */
static int check_shape(struct parser *ps, const char *at)
{
    long long v = (long long)ps->C * ps->H * ps->W;
    if (v > SK_MODEL_MAX_ACTIVATION) {
        char d[96];
        snprintf(d, sizeof d, "%dx%dx%d = %lld values per row, over the limit of %ld", ps->C, ps->H, ps->W, v,
                 SK_MODEL_MAX_ACTIVATION);
        return perr(ps, at, "%s", d);
    }
    return 0;
}

static void add_tensor(struct parser *ps, int layer, const char *suffix, bool buffer, int ndim, const int *shape,
                       size_t *off_out)
{
    struct sk_model *m = ps->m;
    SK_ASSERT(m->n_tensors < ps->cap_tensors);
    struct sk_tensor_info *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%d.%s", layer, suffix);
    t->layer = layer;
    t->buffer = buffer;
    t->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        /* saturate past the limit (no wrap-around): sk_model_from_spec then refuses the spec */
        n = n > (size_t)SK_MODEL_MAX_PARAMS / (size_t)shape[i] ? (size_t)SK_MODEL_MAX_PARAMS + 1 : n * (size_t)shape[i];
    }
    if (buffer) {
        t->off = m->n_buffers;
        m->n_buffers += n;
    } else {
        t->off = m->n_params;
        m->n_params += n;
    }
    *off_out = t->off;
}

/* The words of the table's rows (with `act`, only mlp:'s activations)
 * separated by ", ", the last one by `last` when given. */
static void row_words(char *buf, size_t cap, bool act, const char *last)
{
    int total = 0, count = 0;
    for (int k = 0; k < SK_LAYER_COUNT; k++) total += !act || sk_layer_table[k].activation;
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < SK_LAYER_COUNT; k++) {
        if (act && !sk_layer_table[k].activation) continue;
        const char *sep = count == 0 ? "" : last && count + 1 == total ? last : ", ";
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep, sk_layer_table[k].name);
        SK_ASSERT(n < cap);
        count++;
    }
}

/* The row whose word is w, or -1. */
static int row_of_word(const char *w)
{
    for (int k = 0; k < SK_LAYER_COUNT; k++)
        if (!strcmp(sk_layer_table[k].name, w)) return k;
    return -1;
}

/* L's fields of its row's arguments at their defaults. */
static void arg_defaults(struct sk_layer *L)
{
    const struct sk_layer_def *d = &sk_layer_table[L->kind];
    for (int i = 0; i < SK_LAYER_MAX_ARGS && d->args[i].what; i++) {
        char *f = (char *)L + d->args[i].field;
        if (d->args[i].type == SK_ARG_FLOAT) *(float *)f = d->args[i].def;
        else *(int *)f = (int)d->args[i].def;
    }
}

/* The arguments of L's row at ps->p into L. */
static int parse_args(struct parser *ps, struct sk_layer *L)
{
    const struct sk_layer_def *d = &sk_layer_table[L->kind];
    arg_defaults(L);
    for (int i = 0; i < SK_LAYER_MAX_ARGS && d->args[i].what; i++) {
        const struct sk_layer_arg *a = &d->args[i];
        char *f = (char *)L + a->field;
        bool present;
        if (a->tag) {
            present = *ps->p == a->tag;
            if (!present && !a->optional) return perr(ps, ps->p, "%s", a->missing);
            if (present) ps->p++;
        } else {
            present = !a->optional || isdigit((unsigned char)*ps->p) || (a->type == SK_ARG_FLOAT && *ps->p == '.');
        }
        if (!present) continue;
        int rc = 0;
        if (a->type == SK_ARG_FLOAT) rc = parse_float(ps, (float *)f, a->what);
        else if (a->type == SK_ARG_INT0 && *ps->p == '0') ps->p++, *(int *)f = 0;
        else rc = parse_int(ps, (int *)f, a->what);
        if (rc) return rc;
    }
    return 0;
}

/* L (arguments set) through its row: output shape, tensors, running shape. */
static int build_layer(struct parser *ps, struct sk_layer *L, const char *at)
{
    const struct sk_layer_def *d = &sk_layer_table[L->kind];
    struct sk_layer_shape sh = { ps->C, ps->H, ps->W, ps->spatial }, s2 = shape_of(ps, L->from[1]);
    const char *why = d->join ? d->join(L, &sh, &s2) : d->shape ? d->shape(L, &sh) : NULL;
    if (why) return perr(ps, at, "%s", why);
    struct sk_layer_tensor t[SK_LAYER_MAX_TENSORS];
    int nt = d->tensors ? d->tensors(L, t) : 0, idx = (int)(L - ps->m->layers);
    for (int i = 0; i < nt; i++) {
        size_t *off = t[i].slot == SK_TENSOR_W ? &L->w_off
                      : t[i].slot == SK_TENSOR_B ? &L->b_off
                      : t[i].slot == SK_TENSOR_RUNNING_MEAN ? &L->rm_off : &L->rv_off;
        add_tensor(ps, idx, t[i].suffix, t[i].buffer, t[i].ndim, t[i].shape, off);
        size_t numel = 1;
        for (int j = 0; j < t[i].ndim; j++) numel *= (size_t)t[i].shape[j];
        if (t[i].slot == SK_TENSOR_W) L->n_w = numel;
        if (t[i].slot == SK_TENSOR_B) L->n_b = numel;
    }
    ps->C = sh.C;
    ps->H = sh.H;
    ps->W = sh.W;
    ps->spatial = sh.spatial;
    finish_layer(ps, L);
    return check_shape(ps, at);
}

/* One layer token at ps->p (for cnn/seq specs): a row's word and arguments. */
static int parse_layer(struct parser *ps)
{
    const char *start = ps->p;
    const char *s = ps->p;
    while (isalpha((unsigned char)*s)) s++;
    size_t len = (size_t)(s - start);
    char word[16] = { 0 };
    if (len == 0 || len >= sizeof word) {
        char words[160];
        row_words(words, sizeof words, false, NULL);
        return perr(ps, start, "expected a layer name (%s)", words);
    }
    memcpy(word, start, len);
    ps->p = s;
    int kind = row_of_word(word);
    if (kind < 0) return perr(ps, start, "unknown layer '%s'", word);
    const struct sk_layer_def *d = &sk_layer_table[kind];
    /* without '@' the layer reads the previous output: a wrong input kind is
     * named before the arguments are read */
    size_t tok = strcspn(s, "-");
    bool reads_prev = !memchr(s, '@', tok);
    if (reads_prev && ((d->input == SK_INPUT_IMAGE && !ps->spatial) || (d->input == SK_INPUT_VECTOR && ps->spatial)))
        return perr(ps, start, "%s", d->input_note);
    struct sk_layer tmp = { .kind = (enum sk_layer_kind)kind };
    int src[2], ns, rc = parse_args(ps, &tmp);
    if (!rc) rc = parse_sources(ps, src, &ns);
    if (rc) return rc;
    int prev = ps->m->n_layers - 1, from[2] = { prev, -1 };
    if (d->join) {
        if (ns == 0) return perr(ps, ps->p, "'%s' reads two outputs: the previous one and '@label', or '@a@b'", word);
        from[0] = ns == 2 ? src[0] : prev;
        from[1] = src[ns - 1];
    } else {
        if (ns == 2) return perr(ps, start, "'%s' reads one output, not two", word);
        if (ns == 1) from[0] = src[0];
    }
    struct sk_layer_shape in = shape_of(ps, from[0]);
    ps->C = in.C, ps->H = in.H, ps->W = in.W, ps->spatial = in.spatial;
    if ((d->input == SK_INPUT_IMAGE && !ps->spatial) || (d->input == SK_INPUT_VECTOR && ps->spatial))
        return perr(ps, start, "%s", d->input_note);
    struct sk_layer *L = add_layer(ps, (enum sk_layer_kind)kind);
    struct sk_layer keep = *L;
    *L = tmp;
    L->from[0] = from[0];
    L->from[1] = from[1];
    memcpy(L->in, keep.in, sizeof L->in);
    L->spatial_in = keep.spatial_in;
    rc = build_layer(ps, L, start);
    return rc ? rc : parse_name(ps, prev + 1);
}

static int parse_activation(struct parser *ps, enum sk_layer_kind *k)
{
    const char *start = ps->p;
    for (int i = 0; i < SK_LAYER_COUNT; i++) {
        const char *name = sk_layer_table[i].name;
        size_t n = strlen(name);
        if (sk_layer_table[i].activation && !strncmp(start, name, n) && (start[n] == 0 || start[n] == ':')) {
            *k = (enum sk_layer_kind)i;
            ps->p += n;
            return 0;
        }
    }
    char words[160];
    row_words(words, sizeof words, true, " or ");
    return perr(ps, start, "expected an activation: %s", words);
}

static int parse_mlp(struct parser *ps)
{
    int dims[256], nd = 0, rc;
    const char *dstart[256];
    for (;;) {
        if (nd == 256) return perr(ps, ps->p, "%s", "too many layers");
        dstart[nd] = ps->p;
        if ((rc = parse_int(ps, &dims[nd], "a layer width"))) return rc;
        nd++;
        if (*ps->p != '-') break;
        ps->p++;
    }
    if (nd < 2) return perr(ps, ps->p, "%s", "an mlp needs at least an input and an output width (e.g. 784-10)");
    enum sk_layer_kind act = SK_LAYER_RELU;
    float drop = 0;
    if (*ps->p == ':') {
        ps->p++;
        if ((rc = parse_activation(ps, &act))) return rc;
    }
    const char *dropout = sk_layer_table[SK_LAYER_DROPOUT].name;
    if (*ps->p == ':') {
        ps->p++;
        size_t dn = strlen(dropout);
        if (strncmp(ps->p, dropout, dn)) return perr(ps, ps->p, "expected '%s' and a probability", dropout);
        ps->p += dn;
        const char *at = ps->p;
        if ((rc = parse_float(ps, &drop, "the dropout probability"))) return rc;
        if (!(drop >= 0 && drop < 1)) return perr(ps, at, "%s", "dropout probability must be in [0,1)");
    }
    if (*ps->p) return perr(ps, ps->p, "%s", "unexpected text after the mlp spec");
    ps->C = dims[0];
    ps->H = ps->W = 1;
    ps->spatial = false;
    ps->in_shape = (struct sk_layer_shape){ ps->C, 1, 1, false };
    for (int i = 0; i < nd; i++)
        if (dims[i] > SK_MODEL_MAX_ACTIVATION) {
            char d[96];
            snprintf(d, sizeof d, "width %d is over the limit of %ld", dims[i], SK_MODEL_MAX_ACTIVATION);
            return perr(ps, dstart[i], "%s", d);
        }
    /* dense, then (between dense layers) the activation at its defaults and dropout */
    for (int i = 1; i < nd; i++) {
        struct sk_layer *L = add_layer(ps, SK_LAYER_DENSE);
        L->units = dims[i];
        if ((rc = build_layer(ps, L, dstart[i]))) return rc;
        if (i + 1 < nd) {
            L = add_layer(ps, act);
            arg_defaults(L);
            if ((rc = build_layer(ps, L, dstart[i]))) return rc;
            if (drop > 0) {
                L = add_layer(ps, SK_LAYER_DROPOUT);
                L->p = drop;
                if ((rc = build_layer(ps, L, dstart[i]))) return rc;
            }
        }
    }
    return 0;
}

static int parse_seq(struct parser *ps)
{
    int rc, a;
    const char *start = ps->p;
    if ((rc = parse_int(ps, &a, "the input size (D or CxHxW)"))) return rc;
    if (*ps->p == 'x') {
        int h, w;
        ps->p++;
        if ((rc = parse_int(ps, &h, "the input height"))) return rc;
        if (*ps->p != 'x') return perr(ps, ps->p, "%s", "expected 'x' and the input width (CxHxW)");
        ps->p++;
        if ((rc = parse_int(ps, &w, "the input width"))) return rc;
        ps->C = a, ps->H = h, ps->W = w, ps->spatial = true;
    } else {
        ps->C = a, ps->H = ps->W = 1, ps->spatial = false;
    }
    if ((rc = check_shape(ps, start))) return rc;
    ps->in_shape = (struct sk_layer_shape){ ps->C, ps->H, ps->W, ps->spatial };
    if ((rc = parse_name(ps, -1))) return rc;
    while (*ps->p) {
        if (*ps->p != '-') return perr(ps, ps->p, "%s", "expected '-' between layers");
        ps->p++;
        if ((rc = parse_layer(ps))) return rc;
    }
    struct sk_model *m = ps->m;
    if (m->n_layers == 0) return perr(ps, ps->p, "%s", "no layers after the input shape");
    /* a branch nothing reads would be computed, trained and exported for nothing */
    for (int i = 0; i < m->n_layers - 1; i++) {
        bool read = false;
        for (int j = i + 1; j < m->n_layers && !read; j++) read = m->layers[j].from[0] == i || m->layers[j].from[1] == i;
        if (!read) {
            char d[96];
            snprintf(d, sizeof d, "no later layer reads the output of layer %d (%s%s%s)", i,
                     sk_layer_name(m->layers[i].kind), ps->labels[i][0] ? " =" : "", ps->labels[i]);
            return perr(ps, ps->spec, "%s", d);
        }
    }
    return 0;
}

/* Parse spec into a model without parameter storage (layers, tensors,
 * counts and shapes); NULL + sk_last_error() on a malformed or too large spec. */
/* The model of spec without its buffers; NULL with *status SK_EINVAL (a
 * malformed spec) or SK_ENOMEM. */
static struct sk_model *parse_spec(const char *spec, int *status)
{
    *status = SK_EINVAL;
    if (!spec) {
        sk_error(SK_EINVAL, "model spec is NULL");
        return NULL;
    }
    *status = SK_ENOMEM;
    struct sk_model *m = sk_calloc(1, sizeof *m);
    if (!m) {
        sk_error(SK_ENOMEM, "spec: out of memory");
        return NULL;
    }
    struct parser ps = { .spec = spec, .p = spec, .m = m };
    size_t len = strlen(spec);
    ps.cap_layers = (int)(2 * len + 4); /* an mlp width of 1 char can yield up to 3 layers */
    ps.cap_tensors = 4 * ps.cap_layers;
    m->layers = sk_calloc((size_t)ps.cap_layers, sizeof *m->layers);
    m->tensors = sk_calloc((size_t)ps.cap_tensors, sizeof *m->tensors);
    ps.shapes = sk_calloc((size_t)ps.cap_layers, sizeof *ps.shapes);
    ps.labels = sk_calloc((size_t)ps.cap_layers, sizeof *ps.labels);
    m->spec = sk_strdup(spec);
    m->bn_momentum = 0.1f;
    m->bn_eps = 1e-5f;
    m->data.data_seed = 1;
    m->data.test_fraction = 0.2f;
    int rc = SK_ENOMEM;
    bool ok = m->layers && m->tensors && m->spec && ps.shapes && ps.labels;
    if (!ok) sk_error(SK_ENOMEM, "spec: out of memory");
    if (ok) {
        if (!strncmp(spec, "mlp:", 4)) {
            ps.p += 4;
            rc = parse_mlp(&ps);
        } else if (!strncmp(spec, "cnn:", 4) || !strncmp(spec, "seq:", 4)) {
            ps.p += 4;
            rc = parse_seq(&ps);
        } else {
            rc = perr(&ps, spec, "%s", "a spec starts with 'mlp:', 'cnn:' or 'seq:' (see --help for the grammar)");
        }
    }
    if (!rc) {
        struct sk_layer *last = &m->layers[m->n_layers - 1];
        if (last->out[1] != 1 || last->out[2] != 1 || ps.spatial)
            rc = perr(&ps, spec + len, "%s", "the last layer must give a vector of class scores (add flatten/gap and dense)");
    }
    if (!rc) {
        struct sk_layer *first = &m->layers[0];
        m->in_c = first->in[0];
        m->in_h = first->in[1];
        m->in_w = first->in[2];
        m->in_dim = m->in_c * m->in_h * m->in_w;
        m->spatial = first->spatial_in;
        m->n_classes = m->layers[m->n_layers - 1].out[0];
        if (m->n_params + m->n_buffers > (size_t)SK_MODEL_MAX_PARAMS) {
            char d[128];
            snprintf(d, sizeof d, "%zu parameters and buffers, over the limit of %ld", m->n_params + m->n_buffers,
                     SK_MODEL_MAX_PARAMS);
            rc = perr(&ps, spec, "%s", d);
        }
    }
    sk_free(ps.shapes);
    sk_free(ps.labels);
    *status = rc;
    if (rc) {
        sk_model_free(m);
        return NULL;
    }
    return m;
}

int sk_spec_size(const char *spec, size_t *n_params, size_t *n_buffers)
{
    int st;
    struct sk_model *m = parse_spec(spec, &st);
    if (!m) return st;
    if (n_params) *n_params = m->n_params;
    if (n_buffers) *n_buffers = m->n_buffers;
    sk_model_free(m);
    return SK_OK;
}

struct sk_model *sk_model_from_spec(const char *spec)
{
    int st;
    struct sk_model *m = parse_spec(spec, &st);
    if (!m) return NULL;
    /* parameters and gradients (8 bytes each) must fit in physical memory */
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    double need = 8.0 * (double)m->n_params + 4.0 * (double)m->n_buffers;
    if (pages > 0 && psize > 0 && need > (double)pages * (double)psize) {
        sk_error(SK_ENOMEM, "spec '%s': %zu parameters need %.1f GiB, more than this machine's %.1f GiB of memory",
                 spec, m->n_params, need / 1073741824.0, (double)pages * (double)psize / 1073741824.0);
        sk_model_free(m);
        return NULL;
    }
    m->params = sk_calloc(m->n_params ? m->n_params : 1, sizeof(float));
    m->grads = sk_calloc(m->n_params ? m->n_params : 1, sizeof(float));
    m->buffers = sk_calloc(m->n_buffers ? m->n_buffers : 1, sizeof(float));
    if (!m->params || !m->grads || !m->buffers) {
        sk_model_free(m);
        return NULL;
    }
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SK_LAYER_BATCHNORM)
            for (int c = 0; c < m->layers[i].units; c++) {
                m->buffers[m->layers[i].rv_off + c] = 1.0f;
                m->params[m->layers[i].w_off + c] = 1.0f;
            }
    return m;
}

void sk_model_free(struct sk_model *m)
{
    if (!m) return;
    sk_free(m->spec);
    sk_free(m->layers);
    sk_free(m->tensors);
    sk_free(m->params);
    sk_free(m->grads);
    sk_free(m->buffers);
    sk_preprocess_free(m->prep);
    sk_free(m->in_lo);
    sk_free(m->in_hi);
    sk_free(m);
}

struct sk_model *sk_model_clone(const struct sk_model *src)
{
    struct sk_model *m = sk_model_from_spec(src->spec);
    if (!m) return NULL;
    m->bn_momentum = src->bn_momentum;
    m->bn_eps = src->bn_eps;
    m->data = src->data;
    sk_model_copy_weights(m, src);
    if (sk_model_set_preprocess(m, src->prep)) {
        sk_model_free(m);
        return NULL;
    }
    if (src->in_lo) {
        m->in_lo = sk_malloc(sizeof(float) * (size_t)m->in_dim);
        m->in_hi = sk_malloc(sizeof(float) * (size_t)m->in_dim);
        if (!m->in_lo || !m->in_hi) {
            sk_model_free(m);
            return NULL;
        }
        memcpy(m->in_lo, src->in_lo, sizeof(float) * (size_t)m->in_dim);
        memcpy(m->in_hi, src->in_hi, sizeof(float) * (size_t)m->in_dim);
    }
    return m;
}

int sk_model_copy_weights(struct sk_model *dst, const struct sk_model *src)
{
    if (dst->n_params != src->n_params || dst->n_buffers != src->n_buffers)
        return sk_error(SK_EINVAL, "copy weights: models differ ('%s' vs '%s')", dst->spec, src->spec);
    memcpy(dst->params, src->params, sizeof(float) * src->n_params);
    memcpy(dst->buffers, src->buffers, sizeof(float) * src->n_buffers);
    return SK_OK;
}

size_t sk_model_n_params(const struct sk_model *m) { return m->n_params; }

const struct sk_tensor_info *sk_model_tensor(const struct sk_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

float *sk_model_tensor_data(const struct sk_model *m, const struct sk_tensor_info *t)
{
    return (t->buffer ? m->buffers : m->params) + t->off;
}

bool sk_model_is_chain(const struct sk_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].from[0] != i - 1 || m->layers[i].from[1] >= 0 || sk_layer_of(&m->layers[i])->join) return false;
    return true;
}

bool sk_model_has_dropout(const struct sk_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SK_LAYER_DROPOUT && m->layers[i].p > 0) return true;
    return false;
}
