/* The record of a model file (sk_model_read_record): the input's lines are
 * the values of "skeptic.preprocess", "skeptic.input_range",
 * "skeptic.classes", "skeptic.data_seed" and "skeptic.test_fraction" (an
 * empty line leaves the key out), written into a safetensors file with no
 * tensors, read back and applied to a model of a fixed small spec. */
#include "fuzz_util.h"
#include <cjson/cJSON.h>
#include "skeptic/model.h"

static const char *const keys[5] = { "skeptic.preprocess", "skeptic.input_range", "skeptic.classes",
                                     "skeptic.data_seed", "skeptic.test_fraction" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    cJSON *meta = cJSON_CreateObject();
    char *line = text;
    for (int k = 0; k < 5 && line; k++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) cJSON_AddStringToObject(meta, keys[k], line);
        line = nl ? nl + 1 : NULL;
    }
    char *mj = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    const char *path = fuzz_path("record.safetensors");
    if (mj && sk_safetensors_write(path, NULL, 0, mj) == SK_OK) {
        struct sk_safetensors *f = sk_safetensors_read(path);
        struct sk_model *m = f ? sk_model_from_spec("mlp:4-3-2:relu") : NULL;
        if (m && sk_model_read_record(m, f) == SK_OK) {
            float x[8] = { 0 }, lp[4];
            (void)sk_model_log_probs(m, x, 2, lp);
        }
        sk_model_free(m);
        sk_safetensors_free(f);
    }
    cJSON_free(mj);
    free(text);
    return 0;
}
