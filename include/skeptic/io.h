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
#include "skeptic/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write the concatenation of parts[0..n_parts) to path atomically: a
 * temporary file beside it (path.tmp-XXXXXX), fsync, rename, fsync of the
 * directory. On failure the temporary file is removed and an existing file at
 * path is untouched. */
int sk_write_file_atomic(const char *path, const void *const *parts, const size_t *lens, int n_parts);
/* Encode an 8-bit RGB image (h rows of w pixels, 3 bytes each, row-major)
 * as PNG with libpng and write it atomically (sk_write_file_atomic). */
int sk_png_write_rgb(const char *path, const unsigned char *rgb, int w, int h);

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
/* The whole __metadata__ object as JSON text ("{}" if the file has none);
 * the caller frees it with sk_free. NULL if out of memory. */
char *sk_safetensors_meta_json(const struct sk_safetensors *f);

/* ---- models ----
 * The spec goes in __metadata__["skeptic.spec"]; metadata_json (a JSON
 * object of strings, may be NULL) is merged into __metadata__. */
int sk_model_save(const struct sk_model *m, const char *path, const char *metadata_json);
/* Load a model; spec NULL = take it from the file's metadata (required for
 * files written by PyTorch, which carry none). Every tensor of the spec must
 * be present with the right shape. *metadata_json_out (may be NULL) receives
 * the whole __metadata__ object as JSON text (caller frees with sk_free). */
struct sk_model *sk_model_load(const char *path, const char *spec, char **metadata_json_out);

/* Write a model plus extra float32 tensors (names must not clash with the
 * model's) atomically; what sk_model_save and checkpoints build on. */
int sk_model_save_ex(const struct sk_model *m, const char *path, const char *metadata_json,
                     const struct sk_st_tensor *extra, int n_extra);

/* A metadata value of a JSON object text (a __metadata__ dump), copied into
 * buf (size cap); NULL if absent or not a string. */
const char *sk_meta_get(const char *metadata_json, const char *key, char *buf, size_t cap);
/* FNV-1a 64-bit hash of the model's parameters and buffers (their bytes):
 * two models with the same hash have bitwise identical weights. */
uint64_t sk_model_weights_hash(const struct sk_model *m);
/* Read the model's record from f's __metadata__ into m: the preprocessing
 * ("skeptic.preprocess", attached with sk_model_set_preprocess), the class
 * selection ("skeptic.classes") and the split ("skeptic.data_seed",
 * "skeptic.test_fraction"). sk_model_load does it; sk_model_save_ex writes
 * them from the model, so every file kind carries them. SK_EFORMAT naming
 * the file on a malformed record. */
int sk_model_read_record(struct sk_model *m, const struct sk_safetensors *f);

/* ---- checkpoints ----
 * A checkpoint is a safetensors file holding the model's tensors, the
 * optimiser moments ("skeptic.optim.m", "skeptic.optim.v"), the best weights
 * so far ("skeptic.best.params", "skeptic.best.buffers") and, in
 * __metadata__, the optimiser step count and struct sk_train_state
 * ("skeptic.state": doubles printed with 17 significant digits, so a resume
 * is exact) next to metadata_json (e.g. the command line that started the
 * run). Written atomically, so a run killed while writing leaves the
 * previous checkpoint intact. */
int sk_checkpoint_save(const char *path, const struct sk_trainer *t, const char *metadata_json);
/* Restore a checkpoint into a trainer built with the same model spec, data
 * and configuration: weights, buffers, optimiser state, train state, best
 * weights. *metadata_json_out (may be NULL) receives the __metadata__ text. */
int sk_checkpoint_load(const char *path, struct sk_trainer *t, char **metadata_json_out);

/* Write a float32 C-order array as NumPy .npy (format 1.0), atomically. */
int sk_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

/* Async-signal-safe: removes the temporary file of the atomic write in
 * progress, if any (the destination is untouched until the rename). For a
 * program's SIGINT/SIGTERM/SIGXFSZ handler, so that an interrupted write
 * leaves no `PATH.tmp-XXXXXX` behind; SIGKILL cannot be caught and still can. */
void sk_io_remove_inflight(void);

/* Tests only: make the next atomic write fail after `bytes` bytes of the
 * temporary file are written (-1 = never), to check that the old file
 * survives. */
void sk_io_fail_write_after(long bytes);

#ifdef __cplusplus
}
#endif
#endif
