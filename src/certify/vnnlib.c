/* VNN-LIB properties: the SMT-LIB subset of the verification competitions
 * read into an input box and a disjunction of conjunctions of linear output
 * constraints (see certify.h). The file is tokenised into S-expressions
 * (every node keeps its line and column for messages), then each assert is
 * interpreted: bounds on one input variable tighten the box; constraints on
 * outputs are brought to sum_k a_k Y_k <= b and multiplied out into
 * disjunctive normal form. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/certify.h"

#define MAX_FILE ((long)1 << 28)
#define MAX_VARS (1 << 24)
/* the multiplied-out property: conjunctions times constraints per conjunction
 * (competition properties stay far below; a few kilobytes of nested (or ...)
 * could otherwise ask for gigabytes) */
#define MAX_DNF_TERMS (1 << 16)

struct sx {
    bool list;
    const char *atom;  /* into the text (not NUL-terminated) */
    int len;
    int line, col;
    int first, n;      /* list: children are kids[first .. first + n) of the parser */
};

struct rd {
    const char *path;
    const char *s;
    size_t size, at;
    int line, col;
    struct sx *nodes;
    int n_nodes, cap_nodes;
    int *kids;
    int n_kids, cap_kids;
    struct sk_vnnlib *p;
    bool *x_decl, *y_decl;
};

static int err_at(const struct rd *r, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int err_at(const struct rd *r, int line, int col, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sk_error(SK_EFORMAT, "%s:%d:%d: %s", r->path, line, col, what);
}

static int new_node(struct rd *r)
{
    if (r->n_nodes == r->cap_nodes) {
        int cap = r->cap_nodes ? 2 * r->cap_nodes : 1024;
        struct sx *n = sk_malloc(sizeof *n * (size_t)cap);
        if (!n) return SK_ENOMEM;
        if (r->n_nodes) memcpy(n, r->nodes, sizeof *n * (size_t)r->n_nodes);
        sk_free(r->nodes);
        r->nodes = n;
        r->cap_nodes = cap;
    }
    memset(&r->nodes[r->n_nodes], 0, sizeof r->nodes[0]);
    r->nodes[r->n_nodes].line = r->line;
    r->nodes[r->n_nodes].col = r->col;
    return r->n_nodes++;
}

static void advance(struct rd *r)
{
    if (r->s[r->at] == '\n') r->line++, r->col = 1;
    else r->col++;
    r->at++;
}

static void skip_space(struct rd *r)
{
    while (r->at < r->size) {
        char c = r->s[r->at];
        if (c == ';')
            while (r->at < r->size && r->s[r->at] != '\n') advance(r);
        else if (isspace((unsigned char)c))
            advance(r);
        else
            break;
    }
}

/* One S-expression at r->at (iterative: nesting depth is bounded only by
 * the file). Returns its node index or a negative status. */
static int parse_sx(struct rd *r)
{
    int *stack = NULL, depth = 0, cap = 0, root = -1;
    /* children are gathered per open list in a temporary buffer, then moved to kids */
    int *tmp = NULL, n_tmp = 0, cap_tmp = 0;
    int *tmp_start = NULL;
    int rc = SK_OK;
    for (;;) {
        skip_space(r);
        if (r->at >= r->size) {
            rc = depth ? err_at(r, r->nodes[stack[depth - 1]].line, r->nodes[stack[depth - 1]].col,
                                "this '(' is never closed (end of file)")
                       : err_at(r, r->line, r->col, "expected an expression, found the end of the file");
            break;
        }
        char c = r->s[r->at];
        int node = -1;
        if (c == '(') {
            int k = new_node(r);
            if (k < 0) { rc = k; break; }
            r->nodes[k].list = true;
            advance(r);
            if (depth == cap) {
                cap = cap ? 2 * cap : 32;
                int *s2 = sk_malloc(sizeof(int) * (size_t)cap), *t2 = sk_malloc(sizeof(int) * (size_t)cap);
                if (!s2 || !t2) { sk_free(s2); sk_free(t2); rc = SK_ENOMEM; break; }
                if (depth) memcpy(s2, stack, sizeof(int) * (size_t)depth), memcpy(t2, tmp_start, sizeof(int) * (size_t)depth);
                sk_free(stack);
                sk_free(tmp_start);
                stack = s2;
                tmp_start = t2;
            }
            stack[depth] = k;
            tmp_start[depth] = n_tmp;
            depth++;
            continue;
        }
        if (c == ')') {
            if (!depth) { rc = err_at(r, r->line, r->col, "')' without a matching '('"); break; }
            advance(r);
            depth--;
            node = stack[depth];
            int n = n_tmp - tmp_start[depth];
            if (r->n_kids + n > r->cap_kids) {
                int kc = r->cap_kids ? r->cap_kids : 1024;
                while (kc < r->n_kids + n) kc *= 2;
                int *k2 = sk_malloc(sizeof(int) * (size_t)kc);
                if (!k2) { rc = SK_ENOMEM; break; }
                if (r->n_kids) memcpy(k2, r->kids, sizeof(int) * (size_t)r->n_kids);
                sk_free(r->kids);
                r->kids = k2;
                r->cap_kids = kc;
            }
            r->nodes[node].first = r->n_kids;
            r->nodes[node].n = n;
            if (n) memcpy(r->kids + r->n_kids, tmp + tmp_start[depth], sizeof(int) * (size_t)n);
            r->n_kids += n;
            n_tmp = tmp_start[depth];
        } else {
            node = new_node(r);
            if (node < 0) { rc = node; break; }
            size_t a = r->at;
            while (r->at < r->size && !isspace((unsigned char)r->s[r->at]) && r->s[r->at] != '(' &&
                   r->s[r->at] != ')' && r->s[r->at] != ';')
                advance(r);
            if (r->at - a > 4096) { rc = err_at(r, r->nodes[node].line, r->nodes[node].col, "a token of %zu characters", r->at - a); break; }
            r->nodes[node].atom = r->s + a;
            r->nodes[node].len = (int)(r->at - a);
        }
        if (!depth) {
            root = node;
            break;
        }
        if (n_tmp == cap_tmp) {
            cap_tmp = cap_tmp ? 2 * cap_tmp : 256;
            int *t2 = sk_malloc(sizeof(int) * (size_t)cap_tmp);
            if (!t2) { rc = SK_ENOMEM; break; }
            if (n_tmp) memcpy(t2, tmp, sizeof(int) * (size_t)n_tmp);
            sk_free(tmp);
            tmp = t2;
        }
        tmp[n_tmp++] = node;
    }
    sk_free(stack);
    sk_free(tmp);
    sk_free(tmp_start);
    return rc ? rc : root;
}

static const struct sx *kid(const struct rd *r, const struct sx *e, int i) { return &r->nodes[r->kids[e->first + i]]; }

static bool atom_is(const struct sx *e, const char *w)
{
    return !e->list && (size_t)e->len == strlen(w) && !memcmp(e->atom, w, (size_t)e->len);
}

static int err_sx(const struct rd *r, const struct sx *e, const char *what)
{
    if (e->list) return err_at(r, e->line, e->col, "%s", what);
    return err_at(r, e->line, e->col, "%s (found '%.*s')", what, e->len > 60 ? 60 : e->len, e->atom);
}

/* X_i / Y_i: *which 'X' or 'Y', *idx i; false for other atoms. */
static bool var_of(const struct sx *e, char *which, int *idx)
{
    if (e->list || e->len < 3 || (e->atom[0] != 'X' && e->atom[0] != 'Y') || e->atom[1] != '_') return false;
    long v = 0;
    for (int k = 2; k < e->len; k++) {
        if (!isdigit((unsigned char)e->atom[k]) || v > MAX_VARS) return false;
        v = v * 10 + (e->atom[k] - '0');
    }
    if (v >= MAX_VARS) return false;
    *which = e->atom[0];
    *idx = (int)v;
    return true;
}

static bool number_of(const struct sx *e, double *v)
{
    if (e->list || e->len < 1 || e->len > 63) return false;
    char b[64];
    memcpy(b, e->atom, (size_t)e->len);
    b[e->len] = 0;
    char *end;
    errno = 0;
    *v = strtod(b, &end);
    return *end == 0 && end != b && isfinite(*v) && !isalpha((unsigned char)b[0]);
}

/* A linear expression: coef[n_out] over outputs, coef over inputs counted
 * in *n_x (inputs are kept only as their single index and coefficient, for
 * bounds), plus a constant. */
struct lin {
    double *a;         /* n_outputs */
    double c;
    int x_idx, n_x;    /* an input variable with coefficient x_coef */
    double x_coef;
    bool any_y;
};

static int linear(struct rd *r, const struct sx *e, double scale, struct lin *L)
{
    char w;
    int i;
    double v;
    if (var_of(e, &w, &i)) {
        int n = w == 'X' ? r->p->n_inputs : r->p->n_outputs;
        bool decl = i < n && (w == 'X' ? r->x_decl[i] : r->y_decl[i]);
        if (!decl) return err_sx(r, e, "a variable used before its (declare-const ... Real)");
        if (w == 'Y') {
            L->a[i] += scale;
            L->any_y = true;
        } else {
            if (L->n_x && L->x_idx != i) return err_sx(r, e, "a constraint over two input variables (only bounds X_i <= c are read)");
            L->x_idx = i;
            L->n_x = 1;
            L->x_coef += scale;
        }
        return SK_OK;
    }
    if (number_of(e, &v)) {
        L->c += scale * v;
        return SK_OK;
    }
    if (!e->list || e->n < 2) return err_sx(r, e, "expected a variable X_i / Y_i, a number or (+ ...), (- ...), (* c ...)");
    const struct sx *op = kid(r, e, 0);
    int rc = SK_OK;
    if (atom_is(op, "+")) {
        for (int k = 1; !rc && k < e->n; k++) rc = linear(r, kid(r, e, k), scale, L);
    } else if (atom_is(op, "-")) {
        if (e->n == 2) return linear(r, kid(r, e, 1), -scale, L);
        rc = linear(r, kid(r, e, 1), scale, L);
        for (int k = 2; !rc && k < e->n; k++) rc = linear(r, kid(r, e, k), -scale, L);
    } else if (atom_is(op, "*")) {
        /* one factor may be an expression, the others numbers */
        double f = 1;
        const struct sx *term = NULL;
        for (int k = 1; k < e->n; k++) {
            const struct sx *q = kid(r, e, k);
            if (number_of(q, &v)) f *= v;
            else if (!term) term = q;
            else return err_sx(r, q, "a product of two variables is not linear");
        }
        if (term) rc = linear(r, term, scale * f, L);
        else L->c += scale * f;
    } else {
        return err_sx(r, op, "expected +, - or * in a linear expression");
    }
    return rc;
}

/* Append constraint sum a_k Y_k <= b to conjunction cj. */
static int conj_add(struct sk_vnnlib_conj *cj, const double *a, int n_out, double b)
{
    int nt = 0;
    for (int k = 0; k < n_out; k++) nt += a[k] != 0;
    struct sk_vnnlib_constraint *c2 = sk_malloc(sizeof *c2 * (size_t)(cj->n + 1));
    if (!c2) return SK_ENOMEM;
    if (cj->n) memcpy(c2, cj->c, sizeof *c2 * (size_t)cj->n);
    struct sk_vnnlib_constraint *c = &c2[cj->n];
    c->n_terms = nt;
    c->idx = sk_malloc(sizeof(int) * (size_t)(nt ? nt : 1));
    c->coef = sk_malloc(sizeof(double) * (size_t)(nt ? nt : 1));
    c->rhs = b;
    if (!c->idx || !c->coef) {
        sk_free(c->idx);
        sk_free(c->coef);
        sk_free(c2);
        return SK_ENOMEM;
    }
    for (int k = 0, t = 0; k < n_out; k++)
        if (a[k] != 0) c->idx[t] = k, c->coef[t++] = a[k];
    sk_free(cj->c);
    cj->c = c2;
    cj->n++;
    return SK_OK;
}

static void conj_clear(struct sk_vnnlib_conj *cj)
{
    for (int k = 0; k < cj->n; k++) {
        sk_free(cj->c[k].idx);
        sk_free(cj->c[k].coef);
    }
    sk_free(cj->c);
    cj->c = NULL;
    cj->n = 0;
}

static int conj_copy(struct sk_vnnlib_conj *dst, const struct sk_vnnlib_conj *src, int n_out, double *scratch)
{
    memset(dst, 0, sizeof *dst);
    for (int k = 0; k < src->n; k++) {
        memset(scratch, 0, sizeof(double) * (size_t)n_out);
        for (int t = 0; t < src->c[k].n_terms; t++) scratch[src->c[k].idx[t]] = src->c[k].coef[t];
        int rc = conj_add(dst, scratch, n_out, src->c[k].rhs);
        if (rc) {
            conj_clear(dst);
            return rc;
        }
    }
    return SK_OK;
}

/* One comparison (<= A B) / (>= A B): a bound on an input variable
 * (tightening the box) when in_box, else an output constraint appended to
 * cj. */
static int comparison(struct rd *r, const struct sx *e, struct sk_vnnlib_conj *cj, bool allow_input, double *a)
{
    const struct sx *op = kid(r, e, 0);
    bool le = atom_is(op, "<=") || atom_is(op, "<"), ge = atom_is(op, ">=") || atom_is(op, ">");
    if (!le && !ge) return err_sx(r, op, "expected <=, >=, and, or");
    if (e->n != 3) return err_sx(r, e, "a comparison takes two operands");
    int n_out = r->p->n_outputs;
    struct lin L = { .a = a };
    memset(a, 0, sizeof(double) * (size_t)(n_out ? n_out : 1));
    /* A - B <= 0 (for >=: B - A <= 0) */
    int rc = linear(r, kid(r, e, 1), le ? 1 : -1, &L);
    if (!rc) rc = linear(r, kid(r, e, 2), le ? -1 : 1, &L);
    if (rc) return rc;
    if (L.n_x && L.any_y) return err_sx(r, e, "a constraint mixing inputs and outputs is not supported");
    if (L.n_x) {
        if (!allow_input)
            return err_sx(r, e, "a bound on an input inside (or ...): several input boxes are not supported");
        if (L.x_coef == 0) return err_sx(r, e, "the input variable cancels out");
        /* x_coef * X + c <= 0 */
        double bnd = -L.c / L.x_coef;
        int i = L.x_idx;
        if (L.x_coef > 0) r->p->hi[i] = fmin(r->p->hi[i], bnd);
        else r->p->lo[i] = fmax(r->p->lo[i], bnd);
        return SK_OK;
    }
    if (!L.any_y) return err_sx(r, e, "a comparison of constants");
    return conj_add(cj, a, n_out, -L.c);
}

/* A conjunction (and c1 c2 ...) or a single comparison, into cj. */
static int conjunction(struct rd *r, const struct sx *e, struct sk_vnnlib_conj *cj, bool allow_input, double *a)
{
    if (!e->list || e->n < 1) return err_sx(r, e, "expected a constraint such as (<= Y_0 Y_1)");
    if (atom_is(kid(r, e, 0), "and")) {
        for (int k = 1; k < e->n; k++) {
            const struct sx *q = kid(r, e, k);
            if (!q->list || q->n < 1) return err_sx(r, q, "expected a constraint such as (<= Y_0 Y_1)");
            int rc = atom_is(kid(r, q, 0), "and") ? conjunction(r, q, cj, allow_input, a)
                                                   : comparison(r, q, cj, allow_input, a);
            if (rc) return rc;
        }
        return SK_OK;
    }
    if (atom_is(kid(r, e, 0), "or")) return err_sx(r, e, "an (or ...) inside (and ...) is not supported");
    return comparison(r, e, cj, allow_input, a);
}

static size_t dnf_size(const struct sk_vnnlib *p)
{
    size_t t = 0;
    for (int d = 0; d < p->n_disjuncts; d++) t += (size_t)p->disj[d].n + 1;
    return t;
}

/* (assert (or C1 C2 ...)): the property's disjunction times this one. */
static int assert_or(struct rd *r, const struct sx *e, double *a)
{
    struct sk_vnnlib *p = r->p;
    int n_alt = e->n - 1;
    if (n_alt < 1) return err_sx(r, e, "an empty (or)");
    struct sk_vnnlib_conj *alt = sk_calloc((size_t)n_alt, sizeof *alt);
    if (!alt) return SK_ENOMEM;
    int rc = SK_OK;
    for (int k = 0; !rc && k < n_alt; k++) rc = conjunction(r, kid(r, e, k + 1), &alt[k], false, a);
    size_t est = 0;
    for (int k = 0; !rc && k < n_alt; k++) est += (size_t)alt[k].n + 1;
    if (!rc && (double)est * (double)(p->n_disjuncts ? p->n_disjuncts : 1) + (double)dnf_size(p) * n_alt >
                   (double)MAX_DNF_TERMS)
        rc = err_sx(r, e, "multiplying out this (or ...) with the earlier ones gives more than 2^16 constraints");
    int n_new = p->n_disjuncts * n_alt;
    struct sk_vnnlib_conj *nd = rc ? NULL : sk_calloc((size_t)(n_new ? n_new : 1), sizeof *nd);
    if (!rc && !nd) rc = SK_ENOMEM;
    for (int d = 0; !rc && d < p->n_disjuncts; d++)
        for (int k = 0; !rc && k < n_alt; k++) {
            struct sk_vnnlib_conj *t = &nd[d * n_alt + k];
            rc = conj_copy(t, &p->disj[d], p->n_outputs, a);
            for (int q = 0; !rc && q < alt[k].n; q++) {
                memset(a, 0, sizeof(double) * (size_t)p->n_outputs);
                for (int u = 0; u < alt[k].c[q].n_terms; u++) a[alt[k].c[q].idx[u]] = alt[k].c[q].coef[u];
                rc = conj_add(t, a, p->n_outputs, alt[k].c[q].rhs);
            }
        }
    for (int k = 0; k < n_alt; k++) conj_clear(&alt[k]);
    sk_free(alt);
    if (rc) {
        for (int k = 0; nd && k < n_new; k++) conj_clear(&nd[k]);
        sk_free(nd);
        return rc;
    }
    for (int d = 0; d < p->n_disjuncts; d++) conj_clear(&p->disj[d]);
    sk_free(p->disj);
    p->disj = nd;
    p->n_disjuncts = n_new;
    return SK_OK;
}

static int declare(struct rd *r, const struct sx *e)
{
    char w;
    int i;
    if (e->n != 3 || !var_of(kid(r, e, 1), &w, &i))
        return err_sx(r, e, "expected (declare-const X_i Real) or (declare-const Y_i Real)");
    if (!atom_is(kid(r, e, 2), "Real")) return err_sx(r, kid(r, e, 2), "the variable's sort must be Real");
    struct sk_vnnlib *p = r->p;
    int *n = w == 'X' ? &p->n_inputs : &p->n_outputs;
    bool **decl = w == 'X' ? &r->x_decl : &r->y_decl;
    if (i >= *n) {
        int cap = i + 1;
        bool *d2 = sk_calloc((size_t)cap, sizeof(bool));
        if (!d2) return SK_ENOMEM;
        if (*n) memcpy(d2, *decl, sizeof(bool) * (size_t)*n);
        sk_free(*decl);
        *decl = d2;
        if (w == 'X') {
            double *lo = sk_malloc(sizeof(double) * (size_t)cap), *hi = sk_malloc(sizeof(double) * (size_t)cap);
            if (!lo || !hi) {
                sk_free(lo);
                sk_free(hi);
                return SK_ENOMEM;
            }
            for (int k = 0; k < cap; k++) {
                lo[k] = k < *n ? p->lo[k] : -INFINITY;
                hi[k] = k < *n ? p->hi[k] : INFINITY;
            }
            sk_free(p->lo);
            sk_free(p->hi);
            p->lo = lo;
            p->hi = hi;
        }
        *n = cap;
    }
    if ((*decl)[i]) return err_sx(r, kid(r, e, 1), "declared twice");
    (*decl)[i] = true;
    return SK_OK;
}

void sk_certify_vnnlib_free(struct sk_vnnlib *p)
{
    if (!p) return;
    for (int d = 0; d < p->n_disjuncts; d++) conj_clear(&p->disj[d]);
    sk_free(p->disj);
    sk_free(p->lo);
    sk_free(p->hi);
    sk_free(p);
}

struct sk_vnnlib *sk_certify_vnnlib_parse(const char *text, size_t len, const char *name)
{
    struct rd r;
    memset(&r, 0, sizeof r);
    r.path = name ? name : "<vnnlib>";
    r.s = text;
    r.size = len;
    r.line = r.col = 1;
    r.p = sk_calloc(1, sizeof *r.p);
    double *a = NULL;
    int rc = r.p ? SK_OK : SK_ENOMEM;
    bool y_used = false;
    for (size_t k = 0; !rc && k < len; k++)
        if (!text[k]) rc = sk_error(SK_EFORMAT, "%s: a NUL byte at offset %zu (not a text file)", r.path, k);
    while (!rc) {
        skip_space(&r);
        if (r.at >= r.size) break;
        int root = parse_sx(&r);
        if (root < 0) {
            rc = root;
            break;
        }
        const struct sx *e = &r.nodes[root];
        if (!e->list || e->n < 1) {
            rc = err_sx(&r, e, "expected (declare-const ...) or (assert ...)");
            break;
        }
        const struct sx *head = kid(&r, e, 0);
        if (atom_is(head, "declare-const")) {
            rc = declare(&r, e);
            continue;
        }
        if (!atom_is(head, "assert") || e->n != 2) {
            rc = err_sx(&r, e, "expected (declare-const ...) or (assert ...) with one expression");
            break;
        }
        sk_free(a);
        a = sk_malloc(sizeof(double) * (size_t)(r.p->n_outputs ? r.p->n_outputs : 1));
        if (!a) {
            rc = SK_ENOMEM;
            break;
        }
        const struct sx *body = kid(&r, e, 1);
        if (!body->list || body->n < 1) {
            rc = err_sx(&r, body, "expected a constraint after assert");
            break;
        }
        if (!r.p->n_disjuncts && !y_used) {
            /* the property starts as one empty conjunction (true) */
            r.p->disj = sk_calloc(1, sizeof *r.p->disj);
            if (!r.p->disj) {
                rc = SK_ENOMEM;
                break;
            }
            r.p->n_disjuncts = 1;
        }
        if (atom_is(kid(&r, body, 0), "or")) {
            rc = assert_or(&r, body, a);
            y_used = true;
        } else {
            /* a conjunction: bounds on inputs, or constraints every disjunct shares */
            struct sk_vnnlib_conj tmp = { 0 };
            rc = conjunction(&r, body, &tmp, true, a);
            if (!rc && tmp.n) {
                y_used = true;
                if ((double)dnf_size(r.p) + (double)tmp.n * r.p->n_disjuncts > (double)MAX_DNF_TERMS)
                    rc = err_sx(&r, body, "the multiplied-out property has more than 2^16 constraints");
                for (int d = 0; !rc && d < r.p->n_disjuncts; d++)
                    for (int q = 0; !rc && q < tmp.n; q++) {
                        memset(a, 0, sizeof(double) * (size_t)r.p->n_outputs);
                        for (int u = 0; u < tmp.c[q].n_terms; u++) a[tmp.c[q].idx[u]] = tmp.c[q].coef[u];
                        rc = conj_add(&r.p->disj[d], a, r.p->n_outputs, tmp.c[q].rhs);
                    }
            }
            conj_clear(&tmp);
        }
    }
    if (!rc && !r.p->n_inputs) rc = sk_error(SK_EFORMAT, "%s: no input variable X_0 is declared", r.path);
    if (!rc && !r.p->n_outputs) rc = sk_error(SK_EFORMAT, "%s: no output variable Y_0 is declared", r.path);
    for (int i = 0; !rc && i < r.p->n_inputs; i++)
        if (!r.x_decl[i]) rc = sk_error(SK_EFORMAT, "%s: X_%d is not declared (inputs X_0 .. X_%d are)", r.path, i, r.p->n_inputs - 1);
    for (int i = 0; !rc && i < r.p->n_outputs; i++)
        if (!r.y_decl[i]) rc = sk_error(SK_EFORMAT, "%s: Y_%d is not declared (outputs Y_0 .. Y_%d are)", r.path, i, r.p->n_outputs - 1);
    for (int i = 0; !rc && i < r.p->n_inputs; i++)
        if (r.p->lo[i] > r.p->hi[i])
            rc = sk_error(SK_EFORMAT, "%s: the bounds of X_%d are empty: [%.17g, %.17g]", r.path, i, r.p->lo[i], r.p->hi[i]);
    if (!rc && !y_used) rc = sk_error(SK_EFORMAT, "%s: no constraint on the outputs Y_i", r.path);
    sk_free(a);
    sk_free(r.nodes);
    sk_free(r.kids);
    sk_free(r.x_decl);
    sk_free(r.y_decl);
    if (rc) {
        sk_certify_vnnlib_free(r.p);
        return NULL;
    }
    return r.p;
}

struct sk_vnnlib *sk_certify_vnnlib_read(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sk_error(SK_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (size < 0 || size > MAX_FILE || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        sk_error(size > MAX_FILE ? SK_EFORMAT : SK_EIO, "%s: %s", path,
                 size > MAX_FILE ? "larger than 256 MiB" : "cannot read");
        return NULL;
    }
    char *b = sk_malloc((size_t)size + 1);
    size_t got = b ? fread(b, 1, (size_t)size, fp) : 0;
    fclose(fp);
    if (!b) return NULL;
    if (got != (size_t)size) {
        sk_free(b);
        sk_error(SK_EIO, "%s: short read", path);
        return NULL;
    }
    b[got] = 0;
    struct sk_vnnlib *p = sk_certify_vnnlib_parse(b, got, path);
    sk_free(b);
    return p;
}

bool sk_certify_vnnlib_satisfied(const struct sk_vnnlib *p, const float *y, double tol)
{
    for (int d = 0; d < p->n_disjuncts; d++) {
        bool all = true;
        for (int k = 0; all && k < p->disj[d].n; k++) {
            const struct sk_vnnlib_constraint *c = &p->disj[d].c[k];
            double s = 0;
            for (int t = 0; t < c->n_terms; t++) s += c->coef[t] * (double)y[c->idx[t]];
            all = s <= c->rhs + tol;
        }
        if (all) return true;
    }
    return false;
}

bool sk_certify_vnnlib_in_box(const struct sk_vnnlib *p, const float *x, double tol)
{
    for (int i = 0; i < p->n_inputs; i++)
        if (!((double)x[i] >= p->lo[i] - tol && (double)x[i] <= p->hi[i] + tol)) return false;
    return true;
}
