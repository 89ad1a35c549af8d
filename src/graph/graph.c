/* The tape: node storage, inputs/params, backward driver. */
#include "graph_impl.h"

#include <string.h>

struct sk_graph *sk_graph_new(void)
{
    struct sk_graph *g = sk_calloc(1, sizeof *g);
    if (!g) return NULL;
    g->arena = sk_arena_new(1 << 20);
    g->cap = 64;
    g->nodes = sk_malloc(sizeof(struct sk_node) * (size_t)g->cap);
    if (!g->arena || !g->nodes) {
        sk_graph_free(g);
        return NULL;
    }
    g->param_grads = true;
    return g;
}

void sk_graph_free(struct sk_graph *g)
{
    if (!g) return;
    sk_arena_free(g->arena);
    sk_free(g->nodes);
    sk_free(g);
}

void sk_graph_reset(struct sk_graph *g)
{
    g->n_nodes = 0;
    sk_arena_reset(g->arena);
}

void sk_graph_set_param_grads(struct sk_graph *g, bool on) { g->param_grads = on; }

int sk_node_check(const struct sk_graph *g, int id, const char *op, const char *what)
{
    if (id < 0) return id; /* propagate an earlier failure unchanged */
    if (id >= g->n_nodes)
        return sk_error(SK_EINVAL, "%s: %s is node %d but the graph has %d nodes", op, what, id,
                        g->n_nodes);
    return 0;
}

static int push_node(struct sk_graph *g)
{
    if (g->n_nodes == g->cap) {
        int cap = g->cap * 2;
        struct sk_node *nn = sk_malloc(sizeof(struct sk_node) * (size_t)cap);
        if (!nn) return SK_ENOMEM;
        memcpy(nn, g->nodes, sizeof(struct sk_node) * (size_t)g->n_nodes);
        sk_free(g->nodes);
        g->nodes = nn;
        g->cap = cap;
    }
    struct sk_node *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->in[0] = nd->in[1] = nd->in[2] = -1;
    return g->n_nodes++;
}

static void set_shape(struct sk_node *nd, int ndim, const int *shape)
{
    nd->ndim = ndim;
    nd->n = 1;
    for (int i = 0; i < 4; i++) nd->shape[i] = i < ndim ? shape[i] : 1;
    for (int i = 0; i < ndim; i++) nd->n *= (size_t)shape[i];
}

int sk_node_new(struct sk_graph *g, int op, int ndim, const int *shape, int in0, int in1, int in2)
{
    int id = push_node(g);
    if (id < 0) return id;
    struct sk_node *nd = &g->nodes[id];
    nd->op = op;
    nd->in[0] = in0;
    nd->in[1] = in1;
    nd->in[2] = in2;
    set_shape(nd, ndim, shape);
    for (int k = 0; k < 3; k++)
        if (nd->in[k] >= 0 && g->nodes[nd->in[k]].needs_grad) nd->needs_grad = true;
    if (op != OP_FLATTEN) {
        nd->val = sk_arena_alloc(g->arena, nd->n * sizeof(float));
        if (!nd->val) {
            g->n_nodes--;
            return SK_ENOMEM;
        }
    }
    return id;
}

static int check_shape(int ndim, const int *shape, const char *what)
{
    if (ndim < 1 || ndim > 4) return sk_error(SK_EINVAL, "%s: ndim %d not in 1..4", what, ndim);
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0)
            return sk_error(SK_EINVAL, "%s: dimension %d is %d (must be positive)", what, i, shape[i]);
    return 0;
}

int sk_graph_input(struct sk_graph *g, const float *x, int ndim, const int *shape, bool needs_grad)
{
    int rc = check_shape(ndim, shape, "sk_graph_input");
    if (rc) return rc;
    int id = push_node(g);
    if (id < 0) return id;
    struct sk_node *nd = &g->nodes[id];
    nd->op = OP_INPUT;
    set_shape(nd, ndim, shape);
    nd->val = (float *)x; /* caller-owned, never written */
    nd->needs_grad = needs_grad;
    return id;
}

int sk_graph_param(struct sk_graph *g, float *w, float *dw, int ndim, const int *shape)
{
    int rc = check_shape(ndim, shape, "sk_graph_param");
    if (rc) return rc;
    int id = push_node(g);
    if (id < 0) return id;
    struct sk_node *nd = &g->nodes[id];
    nd->op = OP_PARAM;
    set_shape(nd, ndim, shape);
    nd->val = w;
    nd->grad = dw;
    nd->needs_grad = dw != NULL && g->param_grads;
    return id;
}

void *sk_graph_scratch(struct sk_graph *g, size_t bytes) { return sk_arena_alloc(g->arena, bytes); }
void *sk_graph_scratch_zero(struct sk_graph *g, size_t bytes) { return sk_arena_zalloc(g->arena, bytes); }

const char *sk_graph_op_name(const struct sk_graph *g, int id)
{
    if (id < 0 || id >= g->n_nodes) return "?";
    return sk_op_table[g->nodes[id].op].name;
}

int sk_graph_n_nodes(const struct sk_graph *g) { return g->n_nodes; }
int sk_graph_ndim(const struct sk_graph *g, int id) { return g->nodes[id].ndim; }
const int *sk_graph_shape(const struct sk_graph *g, int id) { return g->nodes[id].shape; }
size_t sk_graph_numel(const struct sk_graph *g, int id) { return g->nodes[id].n; }
float *sk_graph_value(const struct sk_graph *g, int id) { return g->nodes[id].val; }
float *sk_graph_grad(const struct sk_graph *g, int id)
{
    const struct sk_node *nd = &g->nodes[id];
    return nd->needs_grad ? nd->grad : NULL;
}

void sk_grad_zero(struct sk_node *o)
{
    if (o->grad) memset(o->grad, 0, o->n * sizeof(float));
}

int sk_graph_backward(struct sk_graph *g, int id, const float *seed)
{
    int rc = sk_node_check(g, id, "sk_graph_backward", "the output");
    if (rc) return rc;
    struct sk_node *top = &g->nodes[id];
    if (!seed && top->n != 1)
        return sk_error(SK_EINVAL, "sk_graph_backward: node %d has %zu elements; pass a seed gradient "
                        "for a non-scalar output", id, top->n);
    if (!top->needs_grad)
        return sk_error(SK_ESTATE, "sk_graph_backward: node %d depends on no input or parameter that "
                        "needs a gradient", id);
    /* Allocate (on first use) every intermediate gradient up to id and mark it
     * fresh: it is zeroed lazily, or overwritten by its first contribution
     * (see in_grad_w), instead of being cleared here in a pass of its own. */
    for (int i = 0; i <= id; i++) {
        struct sk_node *nd = &g->nodes[i];
        if (!nd->needs_grad || nd->op == OP_PARAM) continue;
        if (nd->op == OP_FLATTEN) {
            nd->grad = g->nodes[nd->in[0]].grad; /* a view shares the gradient */
            continue;
        }
        if (!nd->grad) {
            nd->grad = sk_arena_alloc(g->arena, nd->n * sizeof(float));
            if (!nd->grad) return SK_ENOMEM;
        }
        nd->grad_fresh = true;
    }
    struct sk_node *o = grad_owner(g, id);
    if (seed) {
        memcpy(top->grad, seed, top->n * sizeof(float));
    } else {
        if (o->grad_fresh) sk_grad_zero(o);
        top->grad[0] = 1.0f;
    }
    o->grad_fresh = false;
    for (int i = id; i >= 0; i--) {
        struct sk_node *nd = &g->nodes[i];
        if (!nd->needs_grad) continue;
        sk_op_fn f = sk_op_table[nd->op].backward;
        if (!f) continue;
        struct sk_node *own = grad_owner(g, i);
        if (own->grad_fresh) { /* no contribution reached it: its gradient is zero */
            sk_grad_zero(own);
            own->grad_fresh = false;
        }
        f(g, nd);
    }
    /* Gradients nothing flowed into (e.g. an input the output does not depend on). */
    for (int i = 0; i <= id; i++) {
        struct sk_node *nd = &g->nodes[i];
        if (nd->grad_fresh) {
            sk_grad_zero(nd);
            nd->grad_fresh = false;
        }
    }
    return SK_OK;
}

/* ---- second order ---- */

static bool is_leaf(const struct sk_node *nd) { return nd->op == OP_INPUT || nd->op == OP_PARAM; }

int sk_graph_set_direction(struct sk_graph *g, int leaf, const float *v, float *hv)
{
    int rc = sk_node_check(g, leaf, "sk_graph_set_direction", "the leaf");
    if (rc) return rc;
    struct sk_node *nd = &g->nodes[leaf];
    if (!is_leaf(nd))
        return sk_error(SK_EINVAL, "sk_graph_set_direction: node %d is a %s, not an input or parameter", leaf,
                        sk_op_table[nd->op].name);
    if (hv && !nd->needs_grad)
        return sk_error(SK_EINVAL, "sk_graph_set_direction: node %d (%s) has no gradient (an input without "
                        "needs_grad, or a frozen parameter), so it has no Hessian-vector product", leaf,
                        sk_op_table[nd->op].name);
    nd->tval = (float *)v; /* borrowed, never written */
    nd->tgrad = hv;
    return SK_OK;
}

int sk_graph_param_directions(struct sk_graph *g, const float *params, size_t n, const float *v, float *hv)
{
    uintptr_t lo = (uintptr_t)params, hi = lo + n * sizeof(float);
    int found = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        struct sk_node *nd = &g->nodes[i];
        uintptr_t p = (uintptr_t)nd->val;
        if (nd->op != OP_PARAM || p < lo || p + nd->n * sizeof(float) > hi) continue;
        size_t off = (p - lo) / sizeof(float);
        nd->tval = v ? (float *)v + off : NULL;
        nd->tgrad = hv && nd->needs_grad ? hv + off : NULL;
        found++;
    }
    return found;
}

/* Directional derivatives of every value reaching `id` (forward), in tape order. */
static int hvp_tangents(struct sk_graph *g, int id, const unsigned char *reach)
{
    for (int i = 0; i <= id; i++) {
        struct sk_node *nd = &g->nodes[i];
        if (is_leaf(nd)) continue;
        nd->tval = NULL;
        nd->tgrad = NULL;
        if (!reach[i]) continue;
        if (nd->op == OP_FLATTEN) { /* a view: its input's tangents */
            nd->tval = g->nodes[nd->in[0]].tval;
            nd->tgrad = grad_owner(g, i)->tgrad;
            continue;
        }
        if (nd->needs_grad) {
            if (!nd->tgbuf && !(nd->tgbuf = sk_arena_alloc(g->arena, nd->n * sizeof(float)))) return SK_ENOMEM;
            memset(nd->tgbuf, 0, nd->n * sizeof(float));
            nd->tgrad = nd->tgbuf;
        }
        const struct sk_op_hvp *rule = sk_op_table[nd->op].hvp;
        if (!rule) continue; /* no gradient flows through it (step): R{y} = 0 */
        if (rule->temp_floats && !nd->ttmp &&
            !(nd->ttmp = sk_arena_alloc(g->arena, rule->temp_floats(g, nd) * sizeof(float))))
            return SK_ENOMEM;
        bool moves = false;
        for (int k = 0; k < 3; k++) moves |= nd->in[k] >= 0 && g->nodes[nd->in[k]].tval;
        sk_op_fn f = rule->tangent;
        if (!moves || !f) continue;
        if (!nd->tbuf && !(nd->tbuf = sk_arena_alloc(g->arena, nd->n * sizeof(float)))) return SK_ENOMEM;
        nd->tval = nd->tbuf;
        f(g, nd);
    }
    return SK_OK;
}

int sk_graph_hvp(struct sk_graph *g, int id)
{
    int rc = sk_node_check(g, id, "sk_graph_hvp", "the loss");
    if (rc) return rc;
    struct sk_node *top = &g->nodes[id];
    if (top->n != 1)
        return sk_error(SK_EINVAL, "sk_graph_hvp: node %d has %zu elements; the Hessian is of a scalar loss", id,
                        top->n);
    if (!top->needs_grad)
        return sk_error(SK_ESTATE, "sk_graph_hvp: node %d depends on no input or parameter that needs a gradient",
                        id);
    /* Only nodes the loss depends on take part: an op without a rule
     * elsewhere on the tape (a logged metric) does not matter. */
    unsigned char *reach = sk_arena_zalloc(g->arena, (size_t)id + 1);
    if (!reach) return SK_ENOMEM;
    reach[id] = 1;
    for (int i = id; i >= 0; i--) {
        struct sk_node *nd = &g->nodes[i];
        if (!reach[i]) continue;
        for (int k = 0; k < 3; k++)
            if (nd->in[k] >= 0) reach[nd->in[k]] = 1;
        const struct sk_op_def *def = &sk_op_table[nd->op];
        if (def->backward && !def->hvp)
            return sk_error(SK_EINVAL, "sk_graph_hvp: op '%s' (node %d) has no exact second-order rule: %s",
                            def->name, i, def->no_hvp ? def->no_hvp : "none written");
    }
    rc = hvp_tangents(g, id, reach);
    if (rc) return rc;
    /* The R-backward needs the gradients of inner nodes, not those of the
     * parameters: the ordinary backward skips them (a third of its products). */
    for (int i = 0; i <= id; i++) {
        struct sk_node *nd = &g->nodes[i];
        /* a view of a parameter too: it shares the parameter's buffer */
        bool param = nd->op == OP_PARAM || (nd->op == OP_FLATTEN && grad_owner(g, i)->op == OP_PARAM);
        if (param && nd->needs_grad) {
            nd->needs_grad = false;
            reach[i] |= 2;
        }
    }
    rc = sk_graph_backward(g, id, NULL);
    for (int i = 0; i <= id; i++)
        if (reach[i] & 2) g->nodes[i].needs_grad = true;
    if (rc) return rc;
    for (int i = id; i >= 0; i--) {
        struct sk_node *nd = &g->nodes[i];
        const struct sk_op_hvp *rule = sk_op_table[nd->op].hvp;
        if (reach[i] && nd->needs_grad && rule && rule->backward) rule->backward(g, nd);
    }
    return SK_OK;
}

const float *sk_graph_tangent(const struct sk_graph *g, int id)
{
    if (id < 0 || id >= g->n_nodes) return NULL;
    return g->nodes[id].tval;
}
