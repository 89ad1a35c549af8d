/* skeptic attack --property: the property's input box is the threat model
 * and its output constraints the goal; the point found is re-checked
 * against the file's own numbers by the library before it is reported. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/attack_property.h"
#include "skeptic/certify.h"
#include "skeptic/io.h"

/* Smallest slack max_k(d_k - c_k·y) over the disjunct's rows, as the file
 * writes them: how far inside the violating region y lies (>= 0). */
static double margin_of(const struct sk_vnnlib *v, int disj, const float *y)
{
    double m = INFINITY;
    if (disj < 0 || disj >= v->n_disjuncts) return NAN;
    for (int t = 0; t < v->disj[disj].n; t++) {
        const struct sk_vnnlib_constraint *ct = &v->disj[disj].c[t];
        double s = ct->rhs;
        for (int q = 0; q < ct->n_terms; q++) s -= ct->coef[q] * (double)y[ct->idx[q]];
        m = s < m ? s : m;
    }
    return m;
}

int cli_attack_property(const struct cli_common *c, const char *property, int restarts, int steps, uint64_t seed,
                        const char *save)
{
    if (restarts < 0 || steps < 0) return cli_usage("--restarts and --steps must be positive");
    if (restarts == 0) restarts = 5;
    if (steps == 0) steps = 100;
    char *meta = NULL;
    struct sk_model *m = cli_load_model(c, &meta);
    sk_free(meta);
    if (!m) return CLI_FAIL;
    struct sk_vnnlib *v = sk_certify_vnnlib_read(property);
    float *x = sk_malloc(sizeof(float) * (size_t)m->in_dim), *y = sk_malloc(sizeof(float) * (size_t)m->n_classes);
    int status = CLI_OK, disj = -1;
    bool found = false;
    double t0 = sk_now();
    if (!v || !x || !y ||
        sk_certify_falsify_vnnlib(m, v, restarts, steps, seed, 3600, &found, x, y, &disj))
        status = cli_fail_lib();
    double secs = sk_now() - t0;
    if (!status && found && save) {
        int64_t shape[2] = { 1, m->in_dim };
        if (sk_npy_write_f32(save, x, 2, shape)) status = cli_fail_lib();
    }
    if (!status) {
        double mg = found ? margin_of(v, disj, y) : NAN;
        if (c->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "model", c->model);
            cJSON_AddStringToObject(j, "property", property);
            cJSON_AddStringToObject(j, "result", found ? "violated" : "not found");
            cJSON_AddNumberToObject(j, "restarts", restarts);
            cJSON_AddNumberToObject(j, "steps", steps);
            cli_json_num(j, "seconds", secs);
            if (found) {
                cJSON_AddNumberToObject(j, "disjunct", disj);
                cli_json_num(j, "margin", mg);
                cJSON_AddItemToObject(j, "counterexample", cJSON_CreateFloatArray(x, m->in_dim));
                cJSON_AddItemToObject(j, "outputs", cJSON_CreateFloatArray(y, m->n_classes));
            }
            cli_json_print(j);
        } else if (found) {
            printf("violated: a point of the box meets disjunct %d of %s (margin %.4g), found in %.2f s\n", disj,
                   property, mg, secs);
            printf("outputs:");
            for (int k = 0; k < m->n_classes; k++) printf(" %.6g", (double)y[k]);
            printf("\n");
            if (save) printf("point: %s\n", save);
        } else {
            printf("not found: %d start%s per disjunct of %d steps, %.2f s (this proves nothing: skeptic verify "
                   "decides the property)\n", restarts, restarts == 1 ? "" : "s", steps, secs);
        }
    }
    sk_certify_vnnlib_free(v);
    sk_free(x);
    sk_free(y);
    sk_model_free(m);
    return status;
}
