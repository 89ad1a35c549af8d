/* skeptic/model_file.h — model files: a model's tensors in safetensors
 * (skeptic/io.h), named as the torch nn.Sequential of the same architecture,
 * with the model's record in __metadata__:
 *
 *   "format"                 "pt" (what the Hugging Face tools expect)
 *   "skeptic.spec"           the spec string (sk_model_from_spec)
 *   "skeptic.preprocess"     the input transform (sk_preprocess_to_json;
 *                            {"kind":"none"} without one)
 *   "skeptic.input_range"    {"lo":[in_dim numbers],"hi":[...]}, if recorded
 *   "skeptic.classes"        the class selection, e.g. "6,0", if any
 *   "skeptic.data_seed",
 *   "skeptic.test_fraction"  the seeded split of single-file data, if any
 *
 * Included by skeptic/model.h; model files sit above io and below train.
 */
#ifndef SKEPTIC_MODEL_FILE_H
#define SKEPTIC_MODEL_FILE_H

#include "skeptic/io.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sk_model;

/* Write the model atomically. The spec goes in __metadata__["skeptic.spec"];
 * metadata_json (a JSON object of strings, may be NULL) is merged into
 * __metadata__, but the model's own record replaces any of its keys there:
 * the model is the authority on what it was trained on. */
int sk_model_save(const struct sk_model *m, const char *path, const char *metadata_json);
/* Load a model; spec NULL = take it from the file's metadata (required for
 * files written by PyTorch, which carry none). Every tensor of the spec must
 * be present with the right shape. *metadata_json_out (may be NULL) receives
 * the whole __metadata__ object as JSON text (caller frees with sk_free).
 * NULL + sk_last_error() naming the file on failure. */
struct sk_model *sk_model_load(const char *path, const char *spec, char **metadata_json_out);

/* Write a model plus extra float32 tensors (after the model's; names must
 * not clash with the model's) atomically; what sk_model_save and checkpoints
 * build on. */
int sk_model_save_ex(const struct sk_model *m, const char *path, const char *metadata_json,
                     const struct sk_st_tensor *extra, int n_extra);

/* Copy every tensor of m's spec from f into m's parameters and buffers,
 * checking presence, shape (SK_EFORMAT) and finiteness (SK_ENONFINITE).
 * Tensors of f outside the spec are an error (a wrong architecture), except
 * PyTorch's "*.num_batches_tracked" and skeptic's own "skeptic.*" extras.
 * On error m may hold some of f's tensors. */
int sk_model_read_tensors(struct sk_model *m, const struct sk_safetensors *f);
/* Read the model's record from f's __metadata__ into m: the preprocessing
 * ("skeptic.preprocess", attached with sk_model_set_preprocess), the input
 * range ("skeptic.input_range"), the class selection ("skeptic.classes") and
 * the split ("skeptic.data_seed", "skeptic.test_fraction"). sk_model_load
 * does it; sk_model_save_ex writes them from the model, so every file kind
 * carries them. SK_EFORMAT naming the file on a malformed record. */
int sk_model_read_record(struct sk_model *m, const struct sk_safetensors *f);

/* FNV-1a 64-bit hash of the model's parameters and buffers (their bytes):
 * two models with the same hash have bitwise identical weights. */
uint64_t sk_model_weights_hash(const struct sk_model *m);

/* Before allocating the model of `spec` for file f: SK_EFORMAT naming the
 * file when the spec asks for far more values (over 2^20 more) than f holds,
 * so a small file naming a huge spec is an error, not a huge allocation.
 * Smaller gaps are left to the tensor-by-tensor check, which names the
 * missing or misshapen tensor. */
int sk_model_check_file_size(const char *spec, const struct sk_safetensors *f);

#ifdef __cplusplus
}
#endif
#endif
