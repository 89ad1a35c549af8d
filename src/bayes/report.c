/* The uncertainty report of a posterior on in- and out-of-distribution data. */
#include "bayes/bayes_impl.h"

#include <math.h>
#include <string.h>

void sk_bayes_report_free(struct sk_bayes_report *r)
{
    if (!r) return;
    sk_free(r->entropy);
    sk_free(r->mi);
    sk_free(r->ood_entropy);
    sk_free(r->ood_mi);
    r->entropy = r->mi = r->ood_entropy = r->ood_mi = NULL;
}

int sk_bayes_report(struct sk_posterior *p, const float *x, const int *y, int n, const float *ood_x, int n_ood, int S,
                    uint64_t seed, struct sk_bayes_report *out)
{
    memset(out, 0, sizeof *out);
    if (n < 1) return sk_error(SK_EINVAL, "the uncertainty report needs test rows");
    int K = p->model->n_classes;
    double t0 = sk_now();
    out->n = n;
    out->n_ood = ood_x ? n_ood : 0;
    out->n_samples = sk_bayes_n_samples(p, S);
    int nm = n > out->n_ood ? n : out->n_ood;
    float *pb = sk_malloc(sizeof(float) * (size_t)nm * K), *sc_in = sk_malloc(sizeof(float) * (size_t)n);
    float *sc_out = sk_malloc(sizeof(float) * (size_t)(out->n_ood + 1));
    out->entropy = sk_malloc(sizeof(float) * (size_t)n);
    out->mi = sk_malloc(sizeof(float) * (size_t)n);
    out->ood_entropy = sk_malloc(sizeof(float) * (size_t)(out->n_ood + 1));
    out->ood_mi = sk_malloc(sizeof(float) * (size_t)(out->n_ood + 1));
    float *pin = sk_malloc(sizeof(float) * (size_t)n * K);
    int rc = SK_ENOMEM;
    if (!pb || !sc_in || !sc_out || !out->entropy || !out->mi || !out->ood_entropy || !out->ood_mi || !pin) goto fail;
    if ((rc = sk_bayes_predict(p, x, n, S, seed, pin, out->mi))) goto fail;
    sk_entropy_rows(pin, n, K, out->entropy);
    if ((rc = sk_metric_summary(pin, y, n, K, &out->clean))) goto fail;
    if ((rc = sk_metric_calibration(pin, y, n, K, 0, &out->rel))) goto fail;
    for (int s = 0; s < 3; s++) {
        /* all right or all wrong leaves misclassification detection undefined */
        if (sk_metric_misclassification(pin, out->mi, y, n, K, (enum sk_unc_score)s, &out->misc[s]))
            out->misc[s].auroc = out->misc[s].aupr = out->misc[s].fpr95 = NAN;
    }
    float cov[4] = { 0.5f, 0.8f, 0.9f, 1.0f };
    if ((rc = sk_metric_coverage(out->entropy, pin, y, n, K, cov, 4, out->coverage_acc))) goto fail;
    if (out->n_ood > 0) {
        if ((rc = sk_bayes_predict(p, ood_x, out->n_ood, S, seed + 7919, pb, out->ood_mi))) goto fail;
        sk_entropy_rows(pb, out->n_ood, K, out->ood_entropy);
        for (int s = 0; s < 3; s++) {
            sk_unc_score((enum sk_unc_score)s, pin, out->mi, n, K, sc_in);
            sk_unc_score((enum sk_unc_score)s, pb, out->ood_mi, out->n_ood, K, sc_out);
            if ((rc = sk_metric_detection(sc_out, out->n_ood, sc_in, n, &out->ood[s]))) goto fail;
        }
    }
    out->seconds = sk_now() - t0;
    sk_free(pb);
    sk_free(pin);
    sk_free(sc_in);
    sk_free(sc_out);
    return SK_OK;
fail:
    sk_free(pb);
    sk_free(pin);
    sk_free(sc_in);
    sk_free(sc_out);
    sk_bayes_report_free(out);
    return rc;
}
