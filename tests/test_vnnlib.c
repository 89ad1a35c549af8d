/* VNN-LIB properties: the input box and the output constraints in
 * disjunctive normal form, checked on hand-written properties (every
 * construct the reader takes, against the values they state); malformed
 * ones give "file:line:column: what"; the 30 mnist_fc properties of
 * VNN-COMP 2022 parse with the box the image and eps make. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static struct sk_vnnlib *parse(const char *t) { return sk_certify_vnnlib_parse(t, strlen(t), "p.vnnlib"); }

/* coefficient of Y_j in constraint c (0 when absent) */
static double coef(const struct sk_vnnlib_constraint *c, int j)
{
    for (int t = 0; t < c->n_terms; t++)
        if (c->idx[t] == j) return c->coef[t];
    return 0;
}

static void test_constructs(void)
{
    const char *t = "; a comment\n"
                    "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
                    "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n"
                    "(assert (<= X_0 0.5))\n(assert (>= X_0 -0.25))\n"
                    "(assert (>= 1e-1 X_1)) (assert (<= 0 X_1)) (assert (<= X_1 0.2))\n"
                    "(assert (<= (+ Y_0 (* -2 Y_1)) 3))\n"
                    "(assert (or (and (>= Y_0 Y_2) (<= Y_1 1.5)) (and (>= (- Y_1 Y_2) 0.5))))\n";
    struct sk_vnnlib *p = parse(t);
    CHECK(p, "parse: %s", sk_last_error());
    if (!p) return;
    CHECK(p->n_inputs == 2 && p->n_outputs == 3, "%d inputs, %d outputs", p->n_inputs, p->n_outputs);
    CHECK(p->lo[0] == -0.25 && p->hi[0] == 0.5 && p->lo[1] == 0 && p->hi[1] == 0.1, "box [%g,%g] [%g,%g]", p->lo[0],
          p->hi[0], p->lo[1], p->hi[1]);
    CHECK(p->n_disjuncts == 2, "two disjuncts, got %d", p->n_disjuncts);
    if (p->n_disjuncts == 2) {
        const struct sk_vnnlib_conj *a = &p->disj[0], *b = &p->disj[1];
        /* the shared constraint Y_0 - 2 Y_1 <= 3 is in both */
        CHECK(a->n == 3 && b->n == 2, "sizes %d %d", a->n, b->n);
        if (a->n == 3 && b->n == 2) {
            CHECK(coef(&a->c[0], 0) == 1 && coef(&a->c[0], 1) == -2 && a->c[0].rhs == 3, "shared constraint");
            CHECK(coef(&a->c[1], 0) == -1 && coef(&a->c[1], 2) == 1 && a->c[1].rhs == 0, "Y_0 >= Y_2 as Y_2 - Y_0 <= 0");
            CHECK(coef(&a->c[2], 1) == 1 && a->c[2].rhs == 1.5, "Y_1 <= 1.5");
            CHECK(coef(&b->c[1], 1) == -1 && coef(&b->c[1], 2) == 1 && b->c[1].rhs == -0.5,
                  "Y_1 - Y_2 >= 0.5 as Y_2 - Y_1 <= -0.5");
        }
    }
    /* satisfied: y = (2, 0.5, 1): Y0 - 2Y1 = 1 <= 3, Y0 >= Y2, Y1 <= 1.5 -> disjunct 0 */
    float y1[3] = { 2, 0.5f, 1 }, y2[3] = { 0, 2, 1 }, y3[3] = { 0, 2, 3 };
    CHECK(sk_certify_vnnlib_satisfied(p, y1, 0), "y1 satisfies disjunct 0");
    CHECK(sk_certify_vnnlib_satisfied(p, y2, 0), "y2 satisfies disjunct 1 (Y1 - Y2 = 1 >= 0.5)");
    CHECK(!sk_certify_vnnlib_satisfied(p, y3, 0), "y3 satisfies nothing");
    float x_in[2] = { 0.5f, 0.05f }, x_out[2] = { 0.6f, 0.05f };
    CHECK(sk_certify_vnnlib_in_box(p, x_in, 0) && !sk_certify_vnnlib_in_box(p, x_out, 0), "in_box");
    sk_certify_vnnlib_free(p);
    sk_certify_vnnlib_free(NULL);

    /* two (or ...) multiply out: 2 x 3 disjuncts */
    p = parse("(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)"
              "(assert (<= X_0 1))(assert (>= X_0 0))"
              "(assert (or (<= Y_0 0) (<= Y_1 0)))"
              "(assert (or (and (<= Y_0 1)) (and (<= Y_0 2)) (and (<= Y_0 3) (<= Y_1 4))))");
    CHECK(p && p->n_disjuncts == 6 && p->disj[5].n == 3, "DNF of two ors: %s", p ? "" : sk_last_error());
    sk_certify_vnnlib_free(p);
}

static void expect_err(const char *text, const char *where, const char *what)
{
    struct sk_vnnlib *p = parse(text);
    const char *e = sk_last_error();
    CHECK(!p && strstr(e, where) && strstr(e, what), "'%s' -> %s", text, p ? "parsed" : e);
    sk_certify_vnnlib_free(p);
}

static void test_errors(void)
{
    const char *D = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n";
    char b[1024];
    snprintf(b, sizeof b, "%s(assert (<= X_0 1)\n", D);
    expect_err(b, "p.vnnlib:4:1:", "never closed");
    snprintf(b, sizeof b, "%s(assert (<= X_0 1)))\n", D);
    expect_err(b, "p.vnnlib:4:20:", "without a matching");
    snprintf(b, sizeof b, "%s(assert (<= X_3 1))\n", D);
    expect_err(b, "p.vnnlib:4:13:", "before its (declare-const");
    snprintf(b, sizeof b, "%s(assert (<= (* Y_0 Y_1) 1))\n", D);
    expect_err(b, "p.vnnlib:4:20:", "not linear");
    snprintf(b, sizeof b, "%s(assert (<= X_0 1))(assert (or (and (<= X_0 0.5)) (and (<= Y_0 0))))\n", D);
    expect_err(b, "p.vnnlib:4:", "several input boxes");
    snprintf(b, sizeof b, "%s(assert (<= X_0 abc))\n", D);
    expect_err(b, "p.vnnlib:4:17:", "found 'abc'");
    snprintf(b, sizeof b, "%s(assert (<= X_0 0))(assert (>= X_0 1))(assert (<= Y_0 Y_1))\n", D);
    expect_err(b, "X_0", "empty");
    snprintf(b, sizeof b, "%s(assert (<= X_0 1))\n", D);
    expect_err(b, "p.vnnlib", "no constraint on the outputs");
    expect_err("(declare-const X_0 Real)(declare-const X_0 Real)", "p.vnnlib:1:40:", "declared twice");
    expect_err("(declare-const X_1 Real)(declare-const Y_0 Real)(assert (<= Y_0 0))", "p.vnnlib", "X_0 is not declared");
    expect_err("(declare-const X_0 Int)", "p.vnnlib:1:20:", "Real");
    expect_err("(check-sat)", "p.vnnlib:1:1:", "expected (declare-const");
    expect_err("", "p.vnnlib", "no input variable");
    snprintf(b, sizeof b, "%s(assert (<= X_0 Y_0))\n", D);
    expect_err(b, "p.vnnlib:4:9:", "mixing inputs and outputs");
    /* deep nesting is iterative: no stack overflow, an error for the unclosed lists */
    size_t n = 200000;
    char *deep = malloc(n + 1);
    memset(deep, '(', n);
    deep[n] = 0;
    struct sk_vnnlib *p = sk_certify_vnnlib_parse(deep, n, "deep.vnnlib");
    CHECK(!p && strstr(sk_last_error(), "never closed"), "200000 open parentheses: %s", sk_last_error());
    free(deep);
    /* an (or) of 2^12 alternatives twice would be 2^24 conjunctions: refused */
    size_t cap = 200000, o = 0;
    char *big = malloc(cap);
    o += (size_t)snprintf(big + o, cap - o, "%s(assert (<= X_0 1))", D);
    for (int r = 0; r < 2; r++) {
        o += (size_t)snprintf(big + o, cap - o, "(assert (or");
        for (int k = 0; k < 4096; k++) o += (size_t)snprintf(big + o, cap - o, " (<= Y_0 %d)", k);
        o += (size_t)snprintf(big + o, cap - o, "))");
    }
    p = sk_certify_vnnlib_parse(big, o, "big.vnnlib");
    CHECK(!p && strstr(sk_last_error(), "2^16"), "a multiplied-out blow-up is refused: %s", sk_last_error());
    free(big);
    p = sk_certify_vnnlib_read("/nonexistent/p.vnnlib");
    CHECK(!p && strstr(sk_last_error(), "/nonexistent/p.vnnlib"), "a missing file: %s", sk_last_error());
}

/* mnist_fc 2022: 784 inputs in [0,1], boxes of width <= 2 eps (clipped), and
 * the output constraint "some Y_j >= Y_label", j != label, 9 disjuncts. */
static void test_mnistfc(void)
{
    char dir[4096];
    const char *e = getenv("SKEPTIC_BENCHMARKS"), *src = getenv("SKEPTIC_SOURCE_DIR");
    if (e) snprintf(dir, sizeof dir, "%s/vnncomp-mnistfc/vnnlib", e);
    else snprintf(dir, sizeof dir, "%s/../shared/benchmarks/vnncomp-mnistfc/vnnlib", src ? src : "..");
    struct stat sb;
    /* a clone outside the workspace: the workspace's shared folder */
    if (!e && stat(dir, &sb) != 0) snprintf(dir, sizeof dir, "/work/shared/benchmarks/vnncomp-mnistfc/vnnlib");
    CHECK(stat(dir, &sb) == 0, "the VNN-COMP mnist_fc properties are missing: %s (set SKEPTIC_BENCHMARKS)", dir);
    int n_ok = 0;
    for (int i = 0; i < 15; i++)
        for (int k = 0; k < 2; k++) {
            double eps = k ? 0.05 : 0.03;
            char path[4300], line[128] = "";
            snprintf(path, sizeof path, "%s/prop_%d_%s.vnnlib", dir, i, k ? "0.05" : "0.03");
            FILE *fp = fopen(path, "r");
            if (fp && !fgets(line, sizeof line, fp)) line[0] = 0;
            if (fp) fclose(fp);
            const char *l = strstr(line, "label: ");
            int label = l ? atoi(l + 7) : -1;
            struct sk_vnnlib *p = sk_certify_vnnlib_read(path);
            CHECK(p, "%s: %s", path, sk_last_error());
            if (!p) continue;
            bool ok = p->n_inputs == 784 && p->n_outputs == 10 && p->n_disjuncts == 9 && label >= 0;
            for (int j = 0; ok && j < 784; j++)
                ok = p->lo[j] >= 0 && p->hi[j] <= 1 && p->hi[j] - p->lo[j] <= 2 * eps + 1e-7 && p->hi[j] > p->lo[j];
            for (int d = 0; ok && d < 9; d++) {
                const struct sk_vnnlib_constraint *c = &p->disj[d].c[0];
                int j = d < label ? d : d + 1;
                ok = p->disj[d].n == 1 && c->n_terms == 2 && coef(c, label) == 1 && coef(c, j) == -1 && c->rhs == 0;
            }
            CHECK(ok, "%s: structure (label %d)", path, label);
            n_ok += ok;
            sk_certify_vnnlib_free(p);
        }
    CHECK(n_ok == 30, "30 mnist_fc properties, %d as expected", n_ok);
}

int main(void)
{
    test_constructs();
    test_errors();
    test_mnistfc();
    return sk_test_finish("test_vnnlib");
}
