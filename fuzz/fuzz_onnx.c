/* ONNX models: sk_model_load on the bytes (content sniffing, the protobuf
 * decode under its allocation budget, the graph walk); a model that loads
 * runs a forward pass and is written back as ONNX and read again, which
 * must give the same weights and logits bit for bit. */
#include "fuzz_util.h"
#include "skeptic/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("model.onnx", data, size);
    char *meta = NULL;
    struct sk_model *m = sk_model_load(path, NULL, &meta);
    if (m && m->in_dim <= 4096 && m->n_classes <= 1024 && m->n_params <= ((size_t)1 << 20)) {
        float *x = sk_calloc((size_t)m->in_dim * 2, sizeof(float));
        float *z = sk_calloc((size_t)m->n_classes * 2, sizeof(float));
        float *z2 = sk_calloc((size_t)m->n_classes * 2, sizeof(float));
        for (int i = 0; x && i < 2 * m->in_dim; i++) x[i] = (float)(i % 7) * 0.25f - 0.5f;
        bool ok = x && z && z2 && sk_model_logits(m, x, 2, z) == 0;
        const char *again = fuzz_path("again.onnx");
        struct sk_model *m2 = ok && sk_model_save_onnx(m, again) == 0 ? sk_model_load_onnx(again, NULL) : NULL;
        if (m2) {
            if (sk_model_weights_hash(m2) != sk_model_weights_hash(m) || sk_model_logits(m2, x, 2, z2) ||
                memcmp(z, z2, sizeof(float) * 2 * (size_t)m->n_classes)) {
                fprintf(stderr, "ONNX round trip of '%s' changed the model\n", m->spec);
                abort();
            }
        } else if (ok && !sk_alloc_fail_taken()) {
            fprintf(stderr, "a loaded model ('%s') was not written and read back: %s\n", m->spec, sk_last_error());
            abort();
        }
        sk_model_free(m2);
        sk_free(x);
        sk_free(z);
        sk_free(z2);
    }
    sk_model_free(m);
    sk_free(meta);
    return 0;
}
