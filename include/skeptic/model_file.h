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

/* ---- ONNX (the schema in third_party/onnx/onnx.proto; docs/model-files.md) ----
 * sk_model_load reads ONNX files too: it tells them from safetensors by
 * their first bytes and calls sk_model_load_onnx (a spec given to it must
 * then equal the imported model's). */

/* Read an ONNX model (opsets 9-17) as a skeptic model: a chain of layers
 * from one float input [N, D] / [N, C, H, W] (or [N, D, 1]) to one output.
 * Sub/Div/Add/Mul by constants before the first layer become the model's
 * input transform; by constants right after Gemm/MatMul/Conv/
 * BatchNormalization they are folded into that layer; a final Softmax or
 * LogSoftmax is removed (the model gives logits). *metadata_json_out (may
 * be NULL; caller sk_free()s) receives "format":"onnx", "onnx.opset",
 * "onnx.ir_version", "onnx.producer", the file's metadata_props and, when
 * the import changed anything (a softmax removed, a batch-norm epsilon moved
 * into the variance, a tanh GELU made exact), "skeptic.import_notes": a
 * command shows them. NULL + sk_last_error() naming the file and what was
 * wrong: a malformed protobuf, sizes that disagree with the data, a cycle,
 * and for an unsupported op or a branching graph the node, its op type and
 * the opset. Decoding is bounded by the file's size. */
struct sk_model *sk_model_load_onnx(const char *path, char **metadata_json_out);
/* Write m as ONNX (opset 13) atomically: its input transform as Sub and Mul
 * nodes in front, one node (GELU: an Erf pattern) per layer, the weights
 * under their safetensors names, the record (classes, split, input range)
 * in metadata_props. sk_model_load_onnx reads it back bit for bit. */
int sk_model_save_onnx(const struct sk_model *m, const char *path);

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
