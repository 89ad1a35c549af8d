/* VNN-LIB properties: sk_certify_vnnlib_parse on the bytes as text; a
 * property that parses is evaluated at the centre of its box. */
#include "fuzz_util.h"
#include "skeptic/certify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sk_vnnlib *p = sk_certify_vnnlib_parse((const char *)data, size, "fuzz.vnnlib");
    if (p) {
        float *x = sk_calloc((size_t)p->n_inputs, sizeof(float)), *y = sk_calloc((size_t)p->n_outputs, sizeof(float));
        for (int i = 0; x && i < p->n_inputs; i++) {
            double c = 0.5 * (p->lo[i] + p->hi[i]);
            x[i] = c > 1e30 ? 1e30f : c < -1e30 ? -1e30f : c == c ? (float)c : 0.0f;
        }
        if (x && y) {
            (void)sk_certify_vnnlib_in_box(p, x, 0);
            (void)sk_certify_vnnlib_satisfied(p, y, 0);
        }
        sk_free(x);
        sk_free(y);
        sk_certify_vnnlib_free(p);
    }
    return 0;
}
