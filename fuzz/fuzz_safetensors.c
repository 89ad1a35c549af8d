/* Model files: the safetensors container (header, metadata, every tensor
 * converted to float) and sk_model_load on it (spec from the file), with a
 * forward pass when the model loads, so that what the reader accepted is
 * also usable. */
#include "fuzz_util.h"
#include "skeptic/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("model.safetensors", data, size);
    struct sk_safetensors *f = sk_safetensors_read(path);
    if (f) {
        for (int i = 0; i < sk_safetensors_count(f); i++) {
            int ndim = 0;
            int64_t shape[4];
            const char *name = sk_safetensors_name(f, i);
            if (name) (void)sk_safetensors_get(f, name, &ndim, shape);
        }
        (void)sk_safetensors_meta(f, "skeptic.spec");
        sk_free(sk_safetensors_meta_json(f));
        sk_safetensors_free(f);
    }
    char *meta = NULL;
    struct sk_model *m = sk_model_load(path, NULL, &meta);
    if (m && m->in_dim <= 4096 && m->n_classes <= 1024) {
        float *x = sk_calloc((size_t)m->in_dim * 2, sizeof(float));
        float *lp = sk_calloc((size_t)m->n_classes * 2, sizeof(float));
        if (x && lp) (void)sk_model_log_probs(m, x, 2, lp);
        sk_free(x);
        sk_free(lp);
    }
    sk_model_free(m);
    sk_free(meta);
    return 0;
}
