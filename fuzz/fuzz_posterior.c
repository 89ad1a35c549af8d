/* Posterior files (sk_bayes_load: every method's extra tensors and
 * record), with a two-sample predictive when the file loads, so that sizes
 * the reader accepted are also the sizes prediction uses. */
#include "fuzz_util.h"
#include "skeptic/bayes.h"
#include "skeptic/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("posterior.safetensors", data, size);
    struct sk_posterior *p = sk_bayes_load(path);
    if (p && p->model->in_dim <= 4096 && p->model->n_classes <= 1024) {
        float *x = sk_calloc((size_t)p->model->in_dim * 2, sizeof(float));
        float *pbar = sk_calloc((size_t)p->model->n_classes * 2, sizeof(float));
        float mi[2];
        if (x && pbar) (void)sk_bayes_predict(p, x, 2, 2, 1, pbar, mi);
        sk_free(x);
        sk_free(pbar);
    }
    sk_bayes_free(p);
    return 0;
}
