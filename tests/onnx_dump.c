/* onnx_dump — helper of tests/test_onnx_torch.py and test_onnx_vnncomp.py
 * (not a test itself).
 *
 *   onnx_dump MODEL X.bin N Y.bin OUTDIR
 *
 * Loads MODEL (ONNX or safetensors, through sk_model_load), reads N rows of
 * float32 input X [N, in_dim] and int32 labels Y [N], and writes into
 * OUTDIR raw little-endian float32 arrays:
 *
 *   logits.bin   [N, n_classes]  sk_model_logits
 *   dx.bin       [N, in_dim]     d/dx of the summed cross-entropy of the
 *                                labels, through the classifier seam
 *   spec.txt     the imported spec; notes.txt the import notes (may be empty)
 *
 * Exit status 0 on success, 1 with a message on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"

static int write_file(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    size_t w = bytes ? fwrite(p, 1, bytes, f) : 0;
    return (fclose(f) != 0) | (w != bytes);
}

static void *read_file(const char *path, size_t want)
{
    FILE *f = fopen(path, "rb");
    void *p = malloc(want ? want : 1);
    size_t got = f && p ? fread(p, 1, want, f) : 0;
    if (f) fclose(f);
    if (got != want) {
        free(p);
        return NULL;
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: onnx_dump MODEL X.bin N Y.bin OUTDIR\n");
        return 1;
    }
    char *meta = NULL;
    struct sk_model *m = sk_model_load(argv[1], NULL, &meta);
    if (!m) {
        fprintf(stderr, "onnx_dump: %s\n", sk_last_error());
        return 1;
    }
    int N = atoi(argv[3]), K = m->n_classes;
    size_t D = (size_t)m->in_dim;
    float *x = N > 0 ? read_file(argv[2], sizeof(float) * (size_t)N * D) : NULL;
    int *y = N > 0 ? read_file(argv[4], sizeof(int) * (size_t)N) : NULL;
    float *z = malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * K), *dx = malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * D);
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 1);
    int bad = !x || !y || !z || !dx || !c;
    if (bad) fprintf(stderr, "onnx_dump: cannot read %s / %s (%d rows of %zu)\n", argv[2], argv[4], N, D);
    if (!bad && (sk_model_logits(m, x, N, z) || c->input_grad(c->self, x, N, sk_logp_loss_ce, y, NULL, NULL, dx))) {
        fprintf(stderr, "onnx_dump: %s\n", sk_last_error());
        bad = 1;
    }
    char notes[4096] = "";
    if (!bad) sk_meta_get(meta, "skeptic.import_notes", notes, sizeof notes);
    bad = bad || write_file(argv[5], "logits.bin", z, sizeof(float) * (size_t)N * K) ||
          write_file(argv[5], "dx.bin", dx, sizeof(float) * (size_t)N * D) ||
          write_file(argv[5], "spec.txt", m->spec, strlen(m->spec)) || write_file(argv[5], "notes.txt", notes, strlen(notes));
    sk_classifier_free(c);
    sk_model_free(m);
    sk_free(meta);
    free(x);
    free(y);
    free(z);
    free(dx);
    return bad;
}
