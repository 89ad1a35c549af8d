/* Spec strings (sk_model_from_spec). sk_spec_size parses the same way
 * without allocating: both must agree, and specs whose parameters would not
 * fit the fuzzer's memory limit are only sized. */
#include "fuzz_util.h"
#include "skeptic/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = fuzz_cstr(data, size);
    size_t np = 0, nb = 0;
    bool parses = sk_spec_size(spec, &np, &nb) == SK_OK;
    if (!parses || np + nb <= ((size_t)1 << 22)) {
        struct sk_model *m = sk_model_from_spec(spec);
        if (!m != !parses) {
            fprintf(stderr, "sk_spec_size and sk_model_from_spec disagree on '%s': %s\n", spec, sk_last_error());
            abort();
        }
        sk_model_free(m);
    }
    free(spec);
    return 0;
}
