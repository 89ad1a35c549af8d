/* parity_dump — helper of tests/test_torch_parity.py (not a test itself).
 *
 *   parity_dump SPEC MODE SMOOTHING N SEED OUTDIR [hvp]
 *
 * Builds the model SPEC, initialises it (PyTorch's default init, seeded),
 * randomises batch-norm affine parameters and running statistics so that
 * every term of their gradients matters, draws an input batch x [N,in_dim]
 * ~ N(0,1) and labels, records the forward in MODE (train | eval), the
 * cross-entropy with label smoothing SMOOTHING, runs one backward, and writes
 * raw little-endian arrays into OUTDIR:
 *
 *   meta.txt        N C H W in_dim n_classes spatial bn_momentum bn_eps loss
 *   layers.txt      one line per layer: kind units k stride pad p in0 in1 in2 spatial_in
 *   tensors.txt     one line per tensor: name buffer offset ndim shape...
 *   params.bin      float32 flat parameter buffer (the weights used)
 *   buffers.bin     float32 running statistics before the forward
 *   buffers_after.bin  the same after it (train mode updates them)
 *   x.bin y.bin     input (float32) and labels (int32)
 *   logits.bin      float32 [N,n_classes]
 *   grads.bin       float32 dL/dparams (flat, same layout as params.bin)
 *   dx.bin          float32 dL/dx [N,in_dim]
 *
 * With hvp (helper of tests/test_hvp_torch.py; MODE eval): the model is
 * also written to model.safetensors and read back from it, and the exact
 * Hessian-vector products of the eval-mode mean cross-entropy (smoothing 0)
 * of the model read back are written too:
 *
 *   v.bin hv.bin    direction over the parameters (flat layout) and sk_model_hvp
 *   vx.bin hvx.bin  direction over the input rows [N,in_dim] and sk_model_hvp_input
 *
 * The Python side loads the same weights into torch.nn.Sequential and
 * compares. Exit status 0 on success, 1 with a message on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"

static int write_raw(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "parity_dump: cannot write %s\n", path);
        return 1;
    }
    size_t w = bytes ? fwrite(p, 1, bytes, f) : 0;
    int bad = fclose(f) != 0 || w != bytes;
    if (bad) fprintf(stderr, "parity_dump: short write on %s\n", path);
    return bad;
}

static FILE *open_txt(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "parity_dump: cannot write %s\n", path);
    return f;
}

/* The hvp files (see the top): the model goes through model.safetensors. */
static int dump_hvp(const struct sk_model *m0, const char *dir, const float *x, const int *y, int N, struct sk_rng *r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct sk_model *m = sk_model_save(m0, path, NULL) ? NULL : sk_model_load(path, NULL, NULL);
    if (!m) {
        fprintf(stderr, "parity_dump: %s\n", sk_last_error());
        return 1;
    }
    size_t P = m->n_params, nx = (size_t)N * m->in_dim;
    float *v = malloc(sizeof(float) * P), *hv = malloc(sizeof(float) * P);
    float *vx = malloc(sizeof(float) * nx), *hvx = malloc(sizeof(float) * nx);
    int bad = !v || !hv || !vx || !hvx;
    if (!bad) {
        for (size_t i = 0; i < P; i++) v[i] = sk_rng_normal(r);
        for (size_t i = 0; i < nx; i++) vx[i] = sk_rng_normal(r);
        bad = sk_model_hvp(m, x, y, N, v, hv) || sk_model_hvp_input(m, x, y, N, vx, hvx);
        if (bad) fprintf(stderr, "parity_dump: %s\n", sk_last_error());
    }
    if (!bad) {
        bad |= write_raw(dir, "v.bin", v, sizeof(float) * P);
        bad |= write_raw(dir, "hv.bin", hv, sizeof(float) * P);
        bad |= write_raw(dir, "vx.bin", vx, sizeof(float) * nx);
        bad |= write_raw(dir, "hvx.bin", hvx, sizeof(float) * nx);
    }
    free(v);
    free(hv);
    free(vx);
    free(hvx);
    sk_model_free(m);
    return bad;
}

int main(int argc, char **argv)
{
    bool hvp = argc == 8 && !strcmp(argv[7], "hvp");
    if (argc != 7 && !hvp) {
        fprintf(stderr, "usage: parity_dump SPEC train|eval SMOOTHING N SEED OUTDIR [hvp]\n");
        return 2;
    }
    const char *spec = argv[1], *dir = argv[6];
    bool train = !strcmp(argv[2], "train");
    if (!train && strcmp(argv[2], "eval")) {
        fprintf(stderr, "parity_dump: mode must be train or eval, got '%s'\n", argv[2]);
        return 2;
    }
    float smoothing = strtof(argv[3], NULL);
    int N = atoi(argv[4]);
    uint64_t seed = strtoull(argv[5], NULL, 10);
    if (N < 1) {
        fprintf(stderr, "parity_dump: N must be >= 1\n");
        return 2;
    }
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m) {
        fprintf(stderr, "parity_dump: %s\n", sk_last_error());
        return 1;
    }
    if (sk_model_init(m, SK_INIT_TORCH, seed)) {
        fprintf(stderr, "parity_dump: %s\n", sk_last_error());
        return 1;
    }
    struct sk_rng r = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_DATA);
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (L->kind != SK_LAYER_BATCHNORM) continue;
        for (int c = 0; c < L->units; c++) {
            m->params[L->w_off + c] = 0.5f + sk_rng_uniform(&r);
            m->params[L->b_off + c] = sk_rng_uniform(&r) - 0.5f;
            m->buffers[L->rm_off + c] = 0.4f * (sk_rng_uniform(&r) - 0.5f);
            m->buffers[L->rv_off + c] = 0.5f + sk_rng_uniform(&r);
        }
    }
    size_t nx = (size_t)N * m->in_dim;
    float *x = malloc(sizeof(float) * nx);
    int *y = malloc(sizeof(int) * (size_t)N);
    float *buf0 = malloc(sizeof(float) * (m->n_buffers + 1));
    if (!x || !y || !buf0) return 1;
    for (size_t i = 0; i < nx; i++) x[i] = sk_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = (int)sk_rng_below(&r, (uint64_t)m->n_classes);
    memcpy(buf0, m->buffers, sizeof(float) * m->n_buffers);

    struct sk_graph *g = sk_graph_new();
    int shape[2] = { N, m->in_dim };
    int xin = sk_graph_input(g, x, 2, shape, true);
    int z = sk_model_forward(m, g, xin, train ? SK_MODE_TRAIN : SK_MODE_EVAL, 0);
    int L = sk_loss_cross_entropy(g, z, y, smoothing);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    if (L < 0 || sk_graph_backward(g, L, NULL)) {
        fprintf(stderr, "parity_dump: %s\n", sk_last_error());
        return 1;
    }

    int bad = 0;
    FILE *f = open_txt(dir, "meta.txt");
    if (!f) return 1;
    fprintf(f, "%d %d %d %d %d %d %d %.9g %.9g %.9g\n", N, m->in_c, m->in_h, m->in_w, m->in_dim, m->n_classes,
            (int)m->spatial, m->bn_momentum, m->bn_eps, sk_graph_value(g, L)[0]);
    bad |= fclose(f) != 0;
    if (!(f = open_txt(dir, "layers.txt"))) return 1;
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *ly = &m->layers[li];
        fprintf(f, "%s %d %d %d %d %.9g %d %d %d %d\n", sk_layer_name(ly->kind), ly->units, ly->k, ly->stride,
                ly->pad, ly->p, ly->in[0], ly->in[1], ly->in[2], (int)ly->spatial_in);
    }
    bad |= fclose(f) != 0;
    if (!(f = open_txt(dir, "tensors.txt"))) return 1;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct sk_tensor_info *t = &m->tensors[i];
        fprintf(f, "%s %d %zu %d", t->name, (int)t->buffer, t->off, t->ndim);
        for (int d = 0; d < t->ndim; d++) fprintf(f, " %d", t->shape[d]);
        fprintf(f, "\n");
    }
    bad |= fclose(f) != 0;
    bad |= write_raw(dir, "params.bin", m->params, sizeof(float) * m->n_params);
    bad |= write_raw(dir, "buffers.bin", buf0, sizeof(float) * m->n_buffers);
    bad |= write_raw(dir, "buffers_after.bin", m->buffers, sizeof(float) * m->n_buffers);
    bad |= write_raw(dir, "x.bin", x, sizeof(float) * nx);
    bad |= write_raw(dir, "y.bin", y, sizeof(int) * (size_t)N);
    bad |= write_raw(dir, "logits.bin", sk_graph_value(g, z), sizeof(float) * (size_t)N * m->n_classes);
    bad |= write_raw(dir, "grads.bin", m->grads, sizeof(float) * m->n_params);
    bad |= write_raw(dir, "dx.bin", sk_graph_grad(g, xin), sizeof(float) * nx);
    if (hvp && !bad) bad = dump_hvp(m, dir, x, y, N, &r);
    sk_graph_free(g);
    sk_model_free(m);
    free(x);
    free(y);
    free(buf0);
    return bad;
}
