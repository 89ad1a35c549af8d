/* skeptic certify: certified accuracy by bound propagation (IBP, CROWN) or a
 * global Lipschitz bound. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "skeptic/certify.h"

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The flags of the values the library's messages name. */
static const struct cli_field_flag certify_flags[] = { { "method ibp", "--method ibp" }, { NULL, NULL } };

/* What certify found: the report, and the Lipschitz radii's medians. */
struct cert_result {
    struct sk_cert_report rep;
    double med2, medinf;
};

/* Certify d: the Lipschitz bound (one computation of the layer bounds gives
 * the certified points and the radii) or bound propagation in [lo, hi]. */
static int certify(struct sk_model *m, const struct sk_dataset *d, int method, float eps, float lo, float hi,
                   struct cert_result *r)
{
    unsigned char *cert = sk_malloc((size_t)d->n);
    float *r2 = NULL, *rinf = NULL;
    int status = CLI_OK;
    r->med2 = r->medinf = NAN;
    if (!cert) {
        status = cli_fail_lib();
    } else if (method == SK_CERT_LIPSCHITZ) {
        r2 = sk_malloc(sizeof(float) * (size_t)d->n);
        rinf = sk_malloc(sizeof(float) * (size_t)d->n);
        if (!r2 || !rinf || sk_certify_lipschitz(m, d->x, d->y, d->n, eps, cert, r2, rinf, &r->rep)) {
            status = cli_fail_lib();
        } else {
            qsort(r2, (size_t)d->n, sizeof(float), cmp_float);
            qsort(rinf, (size_t)d->n, sizeof(float), cmp_float);
            r->med2 = r2[d->n / 2];
            r->medinf = rinf[d->n / 2];
        }
    } else if (sk_certify(m, (enum sk_cert_method)method, d->x, d->y, d->n, eps, lo, hi, cert, &r->rep)) {
        status = cli_fail_lib_map(certify_flags);
    }
    sk_free(cert);
    sk_free(r2);
    sk_free(rinf);
    return status;
}

static void print_json(const struct cli_common *c, int method, float eps, float lo, float hi, int n,
                       const struct cert_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "data", c->data);
    cJSON_AddStringToObject(o, "split", c->split ? c->split : "test");
    cJSON_AddStringToObject(o, "method", sk_cert_method_name((enum sk_cert_method)method));
    char eb[32];
    snprintf(eb, sizeof eb, "%g", eps); /* the flag as given, not its float rounding */
    cli_json_num(o, "eps", atof(eb));
    cJSON_AddNumberToObject(o, "n", n);
    cli_json_num(o, "clean_accuracy", r->rep.clean_acc);
    cli_json_num(o, "certified_accuracy", r->rep.certified_acc);
    cJSON_AddNumberToObject(o, "n_certified", r->rep.n_certified);
    cli_json_num(o, "mean_margin_lower", r->rep.mean_margin_lo);
    cli_json_num(o, "seconds", r->rep.seconds);
    if (lo < hi) {
        cJSON *b = cJSON_AddArrayToObject(o, "box");
        cJSON_AddItemToArray(b, cJSON_CreateNumber(lo));
        cJSON_AddItemToArray(b, cJSON_CreateNumber(hi));
    } else {
        cJSON_AddNullToObject(o, "box");
    }
    if (method == SK_CERT_LIPSCHITZ) {
        cli_json_num(o, "lipschitz_global", r->rep.lipschitz_global);
        cJSON_AddBoolToObject(o, "lipschitz_proved", r->rep.lipschitz_proved);
        cli_json_num(o, "median_radius_l2", r->med2);
        cli_json_num(o, "median_radius_linf", r->medinf);
    }
    cli_json_print(o);
}

static void print_text(const struct cli_common *c, const char *spec, int method, float eps, float lo, float hi,
                       int n, const struct cert_result *r)
{
    printf("model      %s (%s)\n", c->model, spec);
    printf("data       %s, split %s, %d rows\n", c->data, c->split ? c->split : "test", n);
    printf("threat     L-inf ball of radius %g", eps);
    if (lo < hi) printf(" within [%g, %g]\n", lo, hi);
    else printf(" (no input box)\n");
    printf("method     %s\n", sk_cert_method_name((enum sk_cert_method)method));
    printf("clean      %.4f  (%d of %d)\n", r->rep.clean_acc, r->rep.n_correct, n);
    printf("certified  %.4f  (%d of %d)\n", r->rep.certified_acc, r->rep.n_certified, n);
    printf("margin     mean lower bound of the worst margin %.4g\n", r->rep.mean_margin_lo);
    if (method == SK_CERT_LIPSCHITZ)
        printf("lipschitz  global L2 bound %.4g (%s); median certified radius L2 %.4g, L-inf %.4g\n",
               r->rep.lipschitz_global,
               r->rep.lipschitz_proved ? "proved" : "estimated: a layer too large for Gram iteration", r->med2,
               r->medinf);
    printf("time       %.2f s\n", r->rep.seconds);
}

static int run(const struct cli_common *c, int method, float eps, float clip_min, float clip_max)
{
    char *meta = NULL;
    struct sk_model *m = cli_load_model(c, &meta);
    if (!m) return CLI_FAIL;
    struct sk_dataset *d = cli_load_eval_data(c, m, meta);
    int status = CLI_FAIL;
    float lo = 0, hi = 0;
    struct cert_result r = { 0 };
    if (d && d->n < 1) status = cli_fail("%s: no rows to certify", c->data);
    /* the box: given, else [0,1] when the data lie in it, else none */
    else if (d && !(status = cli_input_box("certify", c->data, d, clip_min, clip_max, true, &lo, &hi)) &&
             !(status = certify(m, d, method, eps, lo, hi, &r))) {
        if (c->json) print_json(c, method, eps, lo, hi, d->n, &r);
        else print_text(c, m->spec, method, eps, lo, hi, d->n, &r);
    }
    sk_free(meta);
    sk_dataset_free(d);
    sk_model_free(m);
    return status;
}

int cmd_certify(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    float eps = -1, clip_min = NAN, clip_max = NAN;
    const char *method_s = "ibp";
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c),
        CLI_DATA_OPTS(c),
        { "eps", CLI_FLOAT, &eps, "E", "L-infinity radius (in the model's input units)" },
        { "method", CLI_STR, &method_s, "M", "ibp | crown | lipschitz (default ibp; crown needs an MLP)" },
        { "clip-min", CLI_FLOAT, &clip_min, "X", "lower end of the valid input box (default 0 if the data lie in [0,1], else no box)" },
        { "clip-max", CLI_FLOAT, &clip_max, "X", "upper end of the valid input box (default 1 if the data lie in [0,1], else no box)" },
        CLI_THREADS_OPT(c),
        CLI_JSON_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "certify",
        "skeptic certify --model MODEL --data D --eps E [--method ibp|crown|lipschitz] [options]",
        "Prove robustness: a test point is certified when no input within L-infinity distance E (inside the valid box)\n"
        "can change its prediction. ibp pushes intervals through every layer and bounds the logit differences with\n"
        "the last layer folded in; crown (MLPs) adds backward linear relaxation and is never looser than ibp;\n"
        "lipschitz uses the product of the layers' spectral norms (cheap, loose) and also reports the certified L2\n"
        "and L-infinity radius of every point. Certified accuracy is a lower bound on the accuracy under any attack.\n"
        "JSON keys: method, eps, n, clean_accuracy, certified_accuracy, n_certified, mean_margin_lower, seconds,\n"
        "box, lipschitz_global (lipschitz), median_radius_l2, median_radius_linf (lipschitz).",
        "skeptic certify --model ibp.safetensors --data fashion-mnist --eps 0.1\n"
        "skeptic certify --model mlp.safetensors --data fashion-mnist --eps 0.01 --method crown --n 1000 --json",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!c.model) return cli_usage("--model FILE is required");
    if (!c.data) return cli_usage("--data D is required");
    if (!(eps >= 0) || !isfinite(eps)) return cli_usage("--eps E is required (a finite radius >= 0, e.g. 0.1)");
    int method = sk_cert_method_parse(method_s);
    if (method < 0) return cli_usage("--method '%s' is not ibp, crown or lipschitz", method_s);
    return run(&c, method, eps, clip_min, clip_max);
}
