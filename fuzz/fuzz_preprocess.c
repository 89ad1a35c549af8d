/* The preprocessing record (sk_preprocess_from_json), round-tripped through
 * sk_preprocess_to_json when it parses. */
#include "fuzz_util.h"
#include "skeptic/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_cstr(data, size);
    struct sk_preprocess *p = sk_preprocess_from_json(json);
    if (p) {
        char *back = sk_preprocess_to_json(p);
        struct sk_preprocess *q = back ? sk_preprocess_from_json(back) : NULL;
        if (back && (!q || q->kind != p->kind || q->dim != p->dim)) {
            fprintf(stderr, "preprocessing record does not round-trip: %s -> %s\n", json, back);
            abort();
        }
        sk_preprocess_free(q);
        sk_free(back);
    }
    sk_preprocess_free(p);
    free(json);
    return 0;
}
