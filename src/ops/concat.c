/* Concatenation along dimension 1 (channels of [N,C,H,W], features of
 * [N,D]): a copy, so its gradient splits and its second-order rule is the
 * same copy on tangents. */
#include "graph/graph_impl.h"

#include <string.h>

int sk_op_concat(struct sk_graph *g, int a, int b)
{
    int rc = sk_node_check(g, a, "sk_op_concat", "a");
    if (!rc) rc = sk_node_check(g, b, "sk_op_concat", "b");
    if (rc) return rc;
    struct sk_node *A = node_at(g, a), *B = node_at(g, b);
    bool same = A->ndim == B->ndim && A->ndim >= 2 && A->shape[0] == B->shape[0];
    for (int i = 2; same && i < A->ndim; i++) same = A->shape[i] == B->shape[i];
    if (!same)
        return sk_error(SK_EINVAL,
                        "sk_op_concat: shapes [%d,%d,%d,%d] (%d dims) and [%d,%d,%d,%d] (%d dims) differ outside "
                        "dimension 1",
                        A->shape[0], A->shape[1], A->shape[2], A->shape[3], A->ndim, B->shape[0], B->shape[1],
                        B->shape[2], B->shape[3], B->ndim);
    int shape[4];
    memcpy(shape, A->shape, sizeof shape);
    shape[1] = A->shape[1] + B->shape[1];
    return sk_node_run(g, sk_node_new(g, OP_CONCAT, A->ndim, shape, a, b, -1));
}

/* Per sample, the a-block then the b-block; na, nb are the blocks' sizes. */
static void blocks(struct sk_graph *g, const struct sk_node *nd, size_t *N, size_t *na, size_t *nb)
{
    *N = (size_t)nd->shape[0];
    *na = *N ? node_at(g, nd->in[0])->n / *N : 0;
    *nb = *N ? node_at(g, nd->in[1])->n / *N : 0;
}

/* y[n] = (a[n], b[n]); a or b NULL: zeros (a tangent that is zero) */
static void join(float *y, const float *a, const float *b, size_t N, size_t na, size_t nb)
{
    for (size_t n = 0; n < N; n++) {
        float *yn = y + n * (na + nb);
        if (a) memcpy(yn, a + n * na, sizeof(float) * na);
        else memset(yn, 0, sizeof(float) * na);
        if (b) memcpy(yn + na, b + n * nb, sizeof(float) * nb);
        else memset(yn + na, 0, sizeof(float) * nb);
    }
}

/* da += dy[n][:na], db += dy[n][na:] (either NULL: skipped) */
static void split_add(float *da, float *db, const float *dy, size_t N, size_t na, size_t nb)
{
    for (size_t n = 0; n < N; n++) {
        const float *d = dy + n * (na + nb);
        if (da)
            for (size_t i = 0; i < na; i++) da[n * na + i] += d[i];
        if (db)
            for (size_t i = 0; i < nb; i++) db[n * nb + i] += d[na + i];
    }
}

void sk_concat_forward(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, na, nb;
    blocks(g, nd, &N, &na, &nb);
    join(nd->val, in_val(g, nd, 0), in_val(g, nd, 1), N, na, nb);
}

void sk_concat_backward(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, na, nb;
    blocks(g, nd, &N, &na, &nb);
    /* one call per input: a and b may be one node */
    split_add(in_grad(g, nd, 0), NULL, nd->grad, N, na, nb);
    split_add(NULL, in_grad(g, nd, 1), nd->grad, N, na, nb);
}

/* Linear: R{y} = concat(R{a}, R{b}), R{da} += R{dy}[:na], R{db} += R{dy}[na:]. */
static void concat_tangent(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, na, nb;
    blocks(g, nd, &N, &na, &nb);
    join(nd->tval, in_tval(g, nd, 0), in_tval(g, nd, 1), N, na, nb);
}

static void concat_rback(struct sk_graph *g, struct sk_node *nd)
{
    size_t N, na, nb;
    blocks(g, nd, &N, &na, &nb);
    split_add(in_tgrad(g, nd, 0), NULL, nd->tgrad, N, na, nb);
    split_add(NULL, in_tgrad(g, nd, 1), nd->tgrad, N, na, nb);
}
const struct sk_op_hvp sk_hvp_concat = { concat_tangent, concat_rback, NULL };
