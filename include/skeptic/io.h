/* skeptic/io.h — file formats, with no knowledge of models: safetensors (the
 * format of the PyTorch / Hugging Face world), NumPy .npy, PNG, and the
 * atomic write every one of them goes through. A temporary file in the same
 * directory, fsync, rename: a failed or interrupted write never destroys an
 * existing file.
 *
 * safetensors layout (https://github.com/huggingface/safetensors): 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape,
 * data_offsets}, "__metadata__": {string: string}}, then raw little-endian
 * data. Model files (skeptic/model_file.h) and training checkpoints
 * (skeptic/train.h) are safetensors files written through this interface.
 *
 * Example: write an array as .npy and a text file, each atomically.
 *
 *     float x[6] = { 1, 2, 3, 4, 5, 6 };
 *     int64_t shape[2] = { 2, 3 };
 *     if (sk_npy_write_f32("x.npy", x, 2, shape)) fprintf(stderr, "%s\n", sk_last_error());
 *     const char *text = "eps,robust_accuracy\n0.1,0.42\n";
 *     const void *parts[1] = { text };
 *     size_t lens[1] = { strlen(text) };
 *     sk_write_file_atomic("curve.csv", parts, lens, 1);   // old file intact on failure
 *     struct sk_safetensors *f = sk_safetensors_read("model.safetensors");
 *     const char *spec = f ? sk_safetensors_meta(f, "skeptic.spec") : NULL;
 *     sk_safetensors_free(f);
 */
#ifndef SKEPTIC_IO_H
#define SKEPTIC_IO_H

#include "skeptic/core.h"

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
/* Write a float32 C-order array as NumPy .npy (format 1.0), atomically. */
int sk_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

/* ---- metadata: a JSON object of strings ----
 * safetensors' __metadata__ holds strings only. The object keeps its keys in
 * order (files written from the same object are byte-identical). */
struct sk_meta;
/* Parse metadata_json (a JSON object text; NULL = empty) into *out: values
 * that are not strings become their JSON text, and of duplicate keys the
 * last wins. SK_EINVAL if the text is not a JSON object, SK_ENOMEM. The
 * caller frees *out with sk_meta_free. */
int sk_meta_parse(const char *metadata_json, struct sk_meta **out);
void sk_meta_free(struct sk_meta *m); /* NULL ok */
/* Remove key, then (value not NULL) append key = value at the end. */
int sk_meta_set(struct sk_meta *m, const char *key, const char *value);
/* The object as JSON text (one line), freed with sk_free; NULL if out of
 * memory. */
char *sk_meta_print(const struct sk_meta *m);
/* A value of a JSON object text (a __metadata__ dump), copied into buf (size
 * cap); NULL if absent or not a string. */
const char *sk_meta_get(const char *metadata_json, const char *key, char *buf, size_t cap);

/* ---- safetensors ---- */
struct sk_st_tensor {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data;   /* float32, written as "F32" */
};

/* Write tensors (in this order, names unique and not "__metadata__") and
 * string metadata (a JSON object text as sk_meta_parse takes, or NULL)
 * atomically. */
int sk_safetensors_write(const char *path, const struct sk_st_tensor *tensors, int n, const char *metadata_json);

/* A file read and validated whole (header length against file size, JSON,
 * dtypes F32/F64/F16/BF16/I64/I32/U8 converted to float on access, shapes,
 * offsets inside the data area, no overlaps). NULL + sk_last_error() naming
 * the file and the problem. */
struct sk_safetensors;
struct sk_safetensors *sk_safetensors_read(const char *path);
void sk_safetensors_free(struct sk_safetensors *f); /* NULL ok */
/* The path f was read from (owned by f), for messages. */
const char *sk_safetensors_path(const struct sk_safetensors *f);
int sk_safetensors_count(const struct sk_safetensors *f);
/* Elements of all tensors together (each bounded by the file's size). */
size_t sk_safetensors_total_numel(const struct sk_safetensors *f);
/* Name of tensor i in header order (owned by f); NULL if i is out of range. */
const char *sk_safetensors_name(const struct sk_safetensors *f, int i);
/* Tensor by name converted to float32 (owned by f); NULL if absent. ndim
 * (0..4) and shape (4 entries) may be NULL. */
const float *sk_safetensors_get(const struct sk_safetensors *f, const char *name, int *ndim, int64_t *shape);
/* A metadata value (owned by f), NULL if absent. */
const char *sk_safetensors_meta(const struct sk_safetensors *f, const char *key);
/* The whole __metadata__ object as JSON text ("{}" if the file has none);
 * the caller frees it with sk_free. NULL if out of memory. */
char *sk_safetensors_meta_json(const struct sk_safetensors *f);

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
