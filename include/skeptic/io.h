/* skeptic/io.h — model files in safetensors (the format of the PyTorch /
 * Hugging Face world) and training checkpoints. Writes are atomic: a
 * temporary file in the same directory, fsync, rename. A failed or
 * interrupted write never destroys an existing file.
 *
 * File layout (https://github.com/huggingface/safetensors): 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape,
 * data_offsets}, "__metadata__": {string: string}}, then raw little-endian
 * data. Tensor names match a torch nn.Sequential of the same architecture.
 */
#ifndef SKEPTIC_IO_H
#define SKEPTIC_IO_H

#include "skeptic/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- generic safetensors ---- */
struct sk_st_tensor {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data;   /* float32, written as "F32" */
};

/* Write tensors and string metadata (a JSON object text whose values are
 * strings, or NULL) atomically. */
int sk_safetensors_write(const char *path, const struct sk_st_tensor *tensors, int n, const char *metadata_json);

/* A file read and validated whole (header length against file size, JSON,
 * dtypes F32/F64/F16/BF16/I64/I32/U8 converted to float on access, shapes,
 * offsets inside the data area, no overlaps). NULL + sk_last_error() naming
 * the file and the problem. */
struct sk_safetensors;
struct sk_safetensors *sk_safetensors_read(const char *path);
void sk_safetensors_free(struct sk_safetensors *f); /* NULL ok */
int sk_safetensors_count(const struct sk_safetensors *f);
const char *sk_safetensors_name(const struct sk_safetensors *f, int i);
/* Tensor by name converted to float32 (owned by f); NULL if absent. */
const float *sk_safetensors_get(const struct sk_safetensors *f, const char *name, int *ndim, int64_t *shape);
/* A metadata value (owned by f), NULL if absent. */
const char *sk_safetensors_meta(const struct sk_safetensors *f, const char *key);

/* ---- models ----
 * The spec goes in __metadata__["skeptic.spec"]; metadata_json (a JSON
 * object of strings, may be NULL) is merged into __metadata__. */
int sk_model_save(const struct sk_model *m, const char *path, const char *metadata_json);
/* Load a model; spec NULL = take it from the file's metadata (required for
 * files written by PyTorch, which carry none). Every tensor of the spec must
 * be present with the right shape. *metadata_json_out (may be NULL) receives
 * the whole __metadata__ object as JSON text (caller frees with sk_free). */
struct sk_model *sk_model_load(const char *path, const char *spec, char **metadata_json_out);

#ifdef __cplusplus
}
#endif
#endif
