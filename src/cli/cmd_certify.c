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
    if (c.threads) sk_set_threads(c.threads);
    char *meta = NULL;
    struct sk_model *m = cli_load_model(&c, &meta);
    if (!m) return CLI_FAIL;
    struct sk_dataset *d = cli_load_eval_data(&c, m, meta);
    int status = CLI_FAIL;
    unsigned char *cert = NULL;
    float *r2 = NULL, *rinf = NULL;
    if (!d) goto out;
    if (d->n < 1) {
        status = cli_fail("%s: no rows to certify", c.data);
        goto out;
    }
    /* the box: given, else [0,1] when the data lie in it, else none */
    float cmin = clip_min, cmax = clip_max;
    int brc = cli_input_box("certify", c.data, d, cmin, cmax, true, &clip_min, &clip_max);
    if (brc) {
        status = brc;
        goto out;
    }
    cert = sk_malloc((size_t)d->n);
    if (!cert) {
        status = cli_fail_lib();
        goto out;
    }
    struct sk_cert_report rep;
    double med2 = NAN, medinf = NAN;
    if (method == SK_CERT_LIPSCHITZ) {
        /* one computation of the layer bounds gives the certified points and the radii */
        r2 = sk_malloc(sizeof(float) * (size_t)d->n);
        rinf = sk_malloc(sizeof(float) * (size_t)d->n);
        if (!r2 || !rinf || sk_certify_lipschitz(m, d->x, d->y, d->n, eps, cert, r2, rinf, &rep)) {
            status = cli_fail_lib();
            goto out;
        }
        qsort(r2, (size_t)d->n, sizeof(float), cmp_float);
        qsort(rinf, (size_t)d->n, sizeof(float), cmp_float);
        med2 = r2[d->n / 2];
        medinf = rinf[d->n / 2];
    } else if (sk_certify(m, (enum sk_cert_method)method, d->x, d->y, d->n, eps, clip_min, clip_max, cert, &rep)) {
        status = cli_fail("%s", sk_last_error());
        goto out;
    }
    double lip = rep.lipschitz_global;
    bool lip_proved = rep.lipschitz_proved;
    bool has_box = clip_min < clip_max;
    if (c.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", c.model);
        cJSON_AddStringToObject(o, "data", c.data);
        cJSON_AddStringToObject(o, "split", c.split ? c.split : "test");
        cJSON_AddStringToObject(o, "method", sk_cert_method_name((enum sk_cert_method)method));
        char eb[32];
        snprintf(eb, sizeof eb, "%g", eps); /* the flag as given, not its float rounding */
        cli_json_num(o, "eps", atof(eb));
        cJSON_AddNumberToObject(o, "n", d->n);
        cli_json_num(o, "clean_accuracy", rep.clean_acc);
        cli_json_num(o, "certified_accuracy", rep.certified_acc);
        cJSON_AddNumberToObject(o, "n_certified", rep.n_certified);
        cli_json_num(o, "mean_margin_lower", rep.mean_margin_lo);
        cli_json_num(o, "seconds", rep.seconds);
        if (has_box) {
            cJSON *b = cJSON_AddArrayToObject(o, "box");
            cJSON_AddItemToArray(b, cJSON_CreateNumber(clip_min));
            cJSON_AddItemToArray(b, cJSON_CreateNumber(clip_max));
        } else {
            cJSON_AddNullToObject(o, "box");
        }
        if (method == SK_CERT_LIPSCHITZ) {
            cli_json_num(o, "lipschitz_global", lip);
            cJSON_AddBoolToObject(o, "lipschitz_proved", lip_proved);
            cli_json_num(o, "median_radius_l2", med2);
            cli_json_num(o, "median_radius_linf", medinf);
        }
        cli_json_print(o);
    } else {
        printf("model      %s (%s)\n", c.model, m->spec);
        printf("data       %s, split %s, %d rows\n", c.data, c.split ? c.split : "test", d->n);
        printf("threat     L-inf ball of radius %g", eps);
        if (has_box) printf(" within [%g, %g]\n", clip_min, clip_max);
        else printf(" (no input box)\n");
        printf("method     %s\n", sk_cert_method_name((enum sk_cert_method)method));
        printf("clean      %.4f  (%d of %d)\n", rep.clean_acc, rep.n_correct, d->n);
        printf("certified  %.4f  (%d of %d)\n", rep.certified_acc, rep.n_certified, d->n);
        printf("margin     mean lower bound of the worst margin %.4g\n", rep.mean_margin_lo);
        if (method == SK_CERT_LIPSCHITZ)
            printf("lipschitz  global L2 bound %.4g (%s); median certified radius L2 %.4g, L-inf %.4g\n", lip,
                   lip_proved ? "proved" : "estimated: a layer too large for Gram iteration", med2, medinf);
        printf("time       %.2f s\n", rep.seconds);
    }
    status = CLI_OK;
out:
    sk_free(cert);
    sk_free(r2);
    sk_free(rinf);
    sk_free(meta);
    sk_dataset_free(d);
    sk_model_free(m);
    return status;
}
