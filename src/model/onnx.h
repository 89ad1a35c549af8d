/* Internal to libskeptic: what the ONNX reader (onnx.c) and writer
 * (onnx_export.c) share. */
#ifndef SK_MODEL_ONNX_H
#define SK_MODEL_ONNX_H

#include <stdbool.h>
#include <stddef.h>

#include "skeptic/model.h"

/* The operator-set versions of the default domain read and written. */
#define SK_ONNX_OPSET_MIN 9
#define SK_ONNX_OPSET_MAX 17
#define SK_ONNX_OPSET_WRITTEN 13

/* Whether the first bytes of the file at path are an ONNX ModelProto rather
 * than a safetensors header: a safetensors file has an 8-byte length that
 * fits the file and '{' after it; a protobuf starts with a field tag. False
 * when the file cannot be read (the safetensors reader then says why). */
bool sk_onnx_sniff(const char *path);

/* A float written as plain decimal digits (no sign, no exponent) that reads
 * back (strtof) as exactly v, into buf (cap >= 32); false when v < 0 or it
 * needs 32 characters or more (the spec grammar's limit). */
bool sk_onnx_plain_float(float v, char *buf, size_t cap);

#endif
