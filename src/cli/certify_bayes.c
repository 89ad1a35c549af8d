/* skeptic certify on a posterior file: the certified share of posterior
 * samples per test point with its Clopper-Pearson interval, and for vi the
 * weight-box lower bound (sk_certify_bayes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/certify_bayes.h"
#include "skeptic/bayes.h"

/* The flags of the values the library's messages name. */
static const struct cli_field_flag bayes_flags[] = {
    { "cfg.samples", "--samples" }, { "cfg.confidence", "--confidence" }, { "cfg.method", "--method" },
    { "cfg.sound_fp", "--sound-fp" }, { NULL, NULL }
};

static const char *samples_word(const struct sk_posterior *p)
{
    switch (p->method) {
    case SK_BAYES_ENSEMBLE: return "members";
    case SK_BAYES_SGLD: return "sgld samples";
    case SK_BAYES_MCDROPOUT: return "dropout masks";
    case SK_BAYES_DETERMINISTIC: return "network";
    default: return "weight draws";
    }
}

static void print_json(const struct cli_common *c, const struct sk_posterior *p, const struct cli_bayes_cert_opts *o,
                       float eps, int n, const struct sk_certify_bayes_result *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", c->model);
    cJSON_AddStringToObject(j, "posterior", sk_bayes_method_name(p->method));
    cJSON_AddStringToObject(j, "data", c->data);
    cJSON_AddStringToObject(j, "split", c->split ? c->split : "test");
    char eb[32];
    snprintf(eb, sizeof eb, "%g", eps);
    cli_json_num(j, "eps", atof(eb));
    cJSON_AddNumberToObject(j, "n", n);
    cJSON_AddStringToObject(j, "method", sk_certify_method_name((enum sk_certify_method)r->method));
    cJSON_AddBoolToObject(j, "sound_fp", o->sound_fp);
    cJSON_AddNumberToObject(j, "samples", r->n_samples);
    snprintf(eb, sizeof eb, "%g", o->confidence); /* the flag as given, not its float rounding */
    cli_json_num(j, "confidence", atof(eb));
    cli_json_num(j, "certified_mass", r->mean_frac);
    cli_json_num(j, "certified_mass_cp_lower", r->mean_cp_lo);
    cli_json_num(j, "certified_mass_cp_upper", r->mean_cp_hi);
    cJSON_AddNumberToObject(j, "n_all_certified", r->n_all);
    cJSON_AddNumberToObject(j, "n_none_certified", r->n_none);
    cli_json_num(j, "sample_accuracy", r->sample_clean);
    if (r->vi_lower) {
        cli_json_num(j, "vi_lower", r->mean_vi_lower);
        cJSON *a = cJSON_AddArrayToObject(j, "vi_boxes");
        for (int i = 0; i < r->n_k; i++) {
            cJSON *b = cJSON_CreateObject();
            cli_json_num(b, "k", r->k[i]);
            cli_json_num(b, "mass", r->k_mass[i]);
            cJSON_AddNumberToObject(b, "n_certified", r->k_certified[i]);
            cJSON_AddItemToArray(a, b);
        }
    }
    cli_json_num(j, "seconds", r->seconds);
    cli_json_print(j);
}

static void print_text(const struct cli_common *c, const struct sk_posterior *p, const struct cli_bayes_cert_opts *o,
                       float eps, const struct sk_certify_domain *bx, int n, const struct sk_certify_bayes_result *r)
{
    printf("model      %s (%s, %s posterior)\n", c->model, p->model->spec, sk_bayes_method_name(p->method));
    printf("data       %s, split %s, %d rows\n", c->data, c->split ? c->split : "test", n);
    printf("threat     L-inf ball of radius %g", eps);
    if (bx->blo) printf(" within the per-feature training range (overall [%g, %g])\n", bx->lo, bx->hi);
    else if (bx->lo < bx->hi) printf(" within [%g, %g]\n", bx->lo, bx->hi);
    else printf(" (no input box)\n");
    printf("method     %s on each of %d %s%s\n", sk_certify_method_name((enum sk_certify_method)r->method),
           r->n_samples, samples_word(p), o->sound_fp ? ", outward rounding (--sound-fp)" : "");
    printf("samples    %.4f of the (sample, point) predictions are right\n", r->sample_clean);
    printf("certified  posterior mass %.4f (mean over points of the certified share of samples)\n", r->mean_frac);
    printf("           %g%% Clopper-Pearson per point, means of the ends [%.4f, %.4f]\n", 100 * o->confidence,
           r->mean_cp_lo, r->mean_cp_hi);
    printf("           every sample certified at %d of %d points, none at %d\n", r->n_all, n, r->n_none);
    if (r->vi_lower) {
        printf("vi bound   %.4g: mean over points of a proved lower bound of q(prediction = label over the ball)\n",
               r->mean_vi_lower);
        printf("           weight box |w - mu| <= k sigma: ");
        for (int i = 0; i < r->n_k; i++)
            printf("%sk %g mass %.3g certifies %d", i ? "; " : "", r->k[i], r->k_mass[i], r->k_certified[i]);
        printf("\n");
    }
    printf("time       %.2f s\n", r->seconds);
}

int cli_certify_bayes(const struct cli_common *c, const struct cli_bayes_cert_opts *o, float eps, float clip_min,
                      float clip_max)
{
    struct sk_posterior *p = sk_bayes_load(c->model);
    if (!p) return cli_fail_lib();
    struct sk_dataset *d = cli_load_eval_data(c, p->model, NULL);
    int status = CLI_FAIL;
    struct sk_certify_domain bx = { 0, 0, NULL, NULL };
    float *blo = NULL, *bhi = NULL;
    if (d && d->n < 1) status = cli_fail("%s: no rows to certify", c->data);
    else if (d && !(status = cli_feature_box("certify", c->data, d, p->model, clip_min, clip_max, true, &bx.lo, &bx.hi,
                                             &blo, &bhi))) {
        bx.blo = blo;
        bx.bhi = bhi;
        struct sk_certify_bayes_config cfg = sk_certify_bayes_defaults();
        cfg.method = o->method;
        cfg.samples = o->samples;
        cfg.seed = o->seed;
        cfg.confidence = o->confidence;
        cfg.sound_fp = o->sound_fp;
        struct sk_certify_bayes_result r;
        if (sk_certify_bayes(p, d->x, d->y, d->n, eps, &bx, &cfg, &r)) {
            status = cli_fail_lib_map(bayes_flags);
        } else {
            if (c->json) print_json(c, p, o, eps, d->n, &r);
            else print_text(c, p, o, eps, &bx, d->n, &r);
            sk_certify_bayes_result_free(&r);
        }
    }
    sk_free(blo);
    sk_free(bhi);
    sk_dataset_free(d);
    sk_bayes_free(p);
    return status;
}
