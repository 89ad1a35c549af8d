/* Internal to libskeptic: the model's record read through any key lookup
 * (safetensors __metadata__, ONNX metadata_props). */
#ifndef SK_MODEL_RECORD_H
#define SK_MODEL_RECORD_H

#include "skeptic/model.h"

/* sk_model_read_record with meta(ctx, key) giving each value (NULL: absent);
 * path names the file in messages. */
int sk_model_read_record_from(struct sk_model *m, const char *path, const char *(*meta)(const void *ctx, const char *key),
                              const void *ctx);

#endif
