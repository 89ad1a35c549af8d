/* Model files and checkpoints: safetensors round trips (bitwise), dtype
 * conversion, every kind of malformed header refused with a message naming
 * the file and the problem, atomic writes that leave the old file intact when
 * the write fails, a checkpoint/resume that ends bitwise identical to an
 * uninterrupted run, and crafted checkpoint states refused naming the field. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)l + 1);
    *n = fread(b, 1, (size_t)l, f);
    fclose(f);
    return b;
}

/* A safetensors file from a header text and a data area. */
static void write_st(const char *path, const char *header, const void *data, size_t dn)
{
    size_t hl = strlen(header);
    unsigned char *b = malloc(8 + hl + dn + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (dn) memcpy(b + 8 + hl, data, dn);
    sk_test_write(path, b, 8 + hl + dn);
    free(b);
}

static bool err_has(const char *a, const char *b)
{
    const char *e = sk_last_error();
    return strstr(e, a) && (!b || strstr(e, b));
}

static struct sk_model *random_model(const char *spec, uint64_t seed)
{
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m) return NULL;
    sk_model_init(m, SK_INIT_TORCH, seed);
    for (size_t i = 0; i < m->n_buffers; i++) m->buffers[i] = 0.5f + 0.25f * (float)i;
    return m;
}

static void test_round_trip(void)
{
    const char *specs[] = { "mlp:784-64-10:relu", "cnn:3x8x8-conv4k3p1-bn-relu-maxpool2-flatten-dense5",
                            "mlp:5-7-3:tanh:dropout0.3" };
    for (int s = 0; s < 3; s++) {
        struct sk_model *m = random_model(specs[s], 7 + s);
        const char *p = sk_test_path("rt.safetensors");
        int rc = sk_model_save(m, p, "{\"note\":\"hello\",\"n\":3}");
        CHECK(rc == 0, "save %s: %s", specs[s], sk_last_error());
        char *meta = NULL;
        struct sk_model *l = sk_model_load(p, NULL, &meta);
        CHECK(l != NULL, "load %s: %s", specs[s], sk_last_error());
        if (l) {
            CHECK(!strcmp(l->spec, m->spec), "spec from the file's metadata");
            CHECK(!memcmp(l->params, m->params, sizeof(float) * m->n_params), "parameters bitwise equal (%s)", specs[s]);
            CHECK(!memcmp(l->buffers, m->buffers, sizeof(float) * m->n_buffers), "buffers bitwise equal (%s)", specs[s]);
            CHECK(sk_model_weights_hash(l) == sk_model_weights_hash(m), "hash equal");
            char v[64];
            CHECK(sk_meta_get(meta, "note", v, sizeof v) && !strcmp(v, "hello"), "string metadata kept: %s", meta);
            CHECK(sk_meta_get(meta, "n", v, sizeof v) && !strcmp(v, "3"), "number metadata kept as a string");
            CHECK(sk_meta_get(meta, "format", v, sizeof v) && !strcmp(v, "pt"), "format pt for the HF world");
        }
        sk_free(meta);
        sk_model_free(l);
        /* data offsets aligned: header length a multiple of 8 */
        size_t n;
        unsigned char *b = read_bytes(p, &n);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
        CHECK(hl % 8 == 0 && 8 + hl + 4 * (m->n_params + m->n_buffers) == n, "layout: 8 + header + data = file size");
        free(b);
        sk_model_free(m);
    }
    /* generic API, a weight changed by one ulp changes the hash */
    struct sk_model *a = random_model("mlp:3-4-2", 1), *b2 = sk_model_clone(a);
    b2->params[5] = nextafterf(b2->params[5], 10.0f);
    CHECK(sk_model_weights_hash(a) != sk_model_weights_hash(b2), "hash sees a one-ulp change");
    sk_model_free(a);
    sk_model_free(b2);
}

static void test_dtypes(void)
{
    /* F64 [2], F16 [3], BF16 [2], I64 [2], U8 [2], I32 [1] */
    unsigned char data[256];
    size_t o = 0;
    double d2[2] = { 1.5, -2.25 };
    memcpy(data + o, d2, 16);
    o += 16;
    uint16_t h3[3] = { 0x3c00, 0xc000, 0x0001 }; /* 1, -2, smallest subnormal 2^-24 */
    memcpy(data + o, h3, 6);
    o += 6;
    uint16_t bf[2] = { 0x3f80, 0x4049 }; /* 1.0, 3.140625 */
    memcpy(data + o, bf, 4);
    o += 4;
    int64_t i64[2] = { -7, 123456 };
    memcpy(data + o, i64, 16);
    o += 16;
    unsigned char u8[2] = { 0, 255 };
    memcpy(data + o, u8, 2);
    o += 2;
    int32_t i32 = -5;
    memcpy(data + o, &i32, 4);
    o += 4;
    char hdr[1024];
    snprintf(hdr, sizeof hdr,
             "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
             "\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
             "\"c\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[22,26]},"
             "\"d\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[26,42]},"
             "\"e\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[42,44]},"
             "\"f\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[44,48]},"
             "\"__metadata__\":{\"k\":\"v\"}}");
    const char *p = sk_test_path("dtypes.safetensors");
    write_st(p, hdr, data, o);
    struct sk_safetensors *f = sk_safetensors_read(p);
    CHECK(f != NULL, "mixed dtypes read: %s", sk_last_error());
    if (!f) return;
    int nd;
    int64_t sh[4];
    const float *x = sk_safetensors_get(f, "a", &nd, sh);
    CHECK(x && nd == 1 && sh[0] == 2 && x[0] == 1.5f && x[1] == -2.25f, "F64 converted");
    x = sk_safetensors_get(f, "b", NULL, NULL);
    CHECK(x && x[0] == 1.0f && x[1] == -2.0f && x[2] == ldexpf(1.0f, -24), "F16 converted (with a subnormal)");
    x = sk_safetensors_get(f, "c", &nd, sh);
    CHECK(x && nd == 2 && x[0] == 1.0f && x[1] == 3.140625f, "BF16 converted");
    x = sk_safetensors_get(f, "d", NULL, NULL);
    CHECK(x && x[0] == -7.0f && x[1] == 123456.0f, "I64 converted");
    x = sk_safetensors_get(f, "e", NULL, NULL);
    CHECK(x && x[0] == 0.0f && x[1] == 255.0f, "U8 converted");
    x = sk_safetensors_get(f, "f", &nd, NULL);
    CHECK(x && nd == 0 && x[0] == -5.0f, "I32 scalar converted");
    CHECK(sk_safetensors_count(f) == 6 && sk_safetensors_get(f, "zz", NULL, NULL) == NULL, "count and absent name");
    CHECK(sk_safetensors_meta(f, "k") && !strcmp(sk_safetensors_meta(f, "k"), "v"), "metadata read");
    sk_safetensors_free(f);
}

static void expect_bad(const char *name, const char *header, const void *data, size_t dn, const char *want)
{
    const char *p = sk_test_path(name);
    write_st(p, header, data, dn);
    struct sk_safetensors *f = sk_safetensors_read(p);
    CHECK(f == NULL && err_has(p, want), "%s refused naming the file and '%s': got '%s'", name, want, sk_last_error());
    sk_safetensors_free(f);
}

static void test_malformed(void)
{
    float z[8] = { 0 };
    expect_bad("badjson.st", "{\"a\":{\"dtype\":\"F32\",", z, 32, "not a valid JSON object");
    expect_bad("notobj.st", "[1,2,3]       ", z, 32, "does not start with '{'");
    expect_bad("baddtype.st", "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", z, 8, "dtype 'Q7'");
    expect_bad("outside.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", z, 8,
               "outside the data area");
    expect_bad("overlap.st",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
               z, 32, "overlap");
    expect_bad("span.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", z, 16,
               "need 12");
    expect_bad("negshape.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", z, 4,
               "shape[0]");
    expect_bad("revoff.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", z, 8,
               "begin <= end");
    expect_bad("dup.st",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               z, 8, "twice");
    expect_bad("meta.st", "{\"__metadata__\":{\"k\":3}}", z, 0, "not a string");
    expect_bad("fivedims.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", z, 4,
               "at most 4");
    /* header length larger than the file */
    const char *p = sk_test_path("badlen.st");
    unsigned char b[16] = { 0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}' };
    sk_test_write(p, b, 10);
    struct sk_safetensors *f = sk_safetensors_read(p);
    CHECK(!f && err_has(p, "header length 65535"), "length past the end: %s", sk_last_error());
    sk_test_write(p, b, 5);
    f = sk_safetensors_read(p);
    CHECK(!f && err_has(p, "too short"), "5-byte file: %s", sk_last_error());
    /* random garbage, many seeds: never a crash, always a clear refusal */
    struct sk_rng r = sk_rng_new(99);
    int refused = 0;
    for (int t = 0; t < 200; t++) {
        unsigned char g[300];
        size_t n = (size_t)sk_rng_below(&r, sizeof g);
        for (size_t i = 0; i < n; i++) g[i] = (unsigned char)sk_rng_below(&r, 256);
        if (t % 2 && n > 8) { /* plausible lengths reach the JSON parser */
            uint64_t hl = sk_rng_below(&r, n - 8 + 1);
            for (int i = 0; i < 8; i++) g[i] = (unsigned char)(hl >> (8 * i));
            g[8] = '{';
        }
        sk_test_write(p, g, n);
        f = sk_safetensors_read(p);
        refused += f == NULL && strstr(sk_last_error(), p) != NULL;
        sk_safetensors_free(f);
    }
    CHECK(refused == 200, "random garbage refused with the file named: %d/200", refused);
    f = sk_safetensors_read(sk_test_path("does-not-exist.st"));
    CHECK(!f && err_has("does-not-exist.st", "cannot open"), "missing file");
}

static void test_model_mismatch(void)
{
    struct sk_model *m = random_model("mlp:4-3-2:relu", 3);
    const char *p = sk_test_path("small.safetensors");
    CHECK(sk_model_save(m, p, NULL) == 0, "save");
    struct sk_model *l = sk_model_load(p, "mlp:4-5-2:relu", NULL);
    CHECK(!l && err_has(p, "has shape [3,4] but spec 'mlp:4-5-2:relu' needs [5,4]"), "shape mismatch: %s",
          sk_last_error());
    sk_model_free(l);
    l = sk_model_load(p, "mlp:4-3-2-2:relu", NULL);
    CHECK(!l && err_has(p, "missing"), "missing tensor: %s", sk_last_error());
    l = sk_model_load(p, "mlp:4-2", NULL);
    CHECK(!l && err_has(p, "0.weight"), "spec with other shapes: %s", sk_last_error());
    l = sk_model_load(p, "mlp:4-x", NULL);
    CHECK(!l && err_has(p, "column"), "bad spec named with the file: %s", sk_last_error());
    /* a file without a spec (as PyTorch writes them) needs one */
    struct sk_st_tensor t[1] = { { "0.weight", 2, { 2, 4 }, m->params } };
    const char *q = sk_test_path("nospec.safetensors");
    CHECK(sk_safetensors_write(q, t, 1, NULL) == 0, "generic write");
    l = sk_model_load(q, NULL, NULL);
    CHECK(!l && err_has(q, "--arch"), "no spec: %s", sk_last_error());
    /* extra tensors are refused (wrong architecture), torch's num_batches_tracked is not */
    struct sk_st_tensor ex[2] = { { "9.weight", 1, { 2 }, m->params }, { "0.num_batches_tracked", 0, { 0 }, m->params } };
    CHECK(sk_model_save_ex(m, q, NULL, ex + 1, 1) == 0, "save with num_batches_tracked");
    l = sk_model_load(q, NULL, NULL);
    CHECK(l != NULL, "num_batches_tracked ignored: %s", sk_last_error());
    sk_model_free(l);
    CHECK(sk_model_save_ex(m, q, NULL, ex, 1) == 0, "save with an extra tensor");
    l = sk_model_load(q, NULL, NULL);
    CHECK(!l && err_has(q, "'9.weight' is not part of spec"), "extra tensor: %s", sk_last_error());
    /* NaN weights */
    m->params[2] = NAN;
    CHECK(sk_model_save(m, q, NULL) == 0, "save NaN");
    l = sk_model_load(q, NULL, NULL);
    CHECK(!l && err_has(q, "element 2 is nan"), "NaN weight refused: %s", sk_last_error());
    sk_model_free(m);
}

static int count_tmp_files(void)
{
    DIR *d = opendir(sk_test_tmpdir());
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) n++;
    if (d) closedir(d);
    return n;
}

static void test_atomic(void)
{
    struct sk_model *a = random_model("mlp:20-30-5:relu", 1), *b = random_model("mlp:20-30-5:relu", 2);
    const char *p = sk_test_path("atomic.safetensors");
    CHECK(sk_model_save(a, p, NULL) == 0, "first write");
    size_t n0 = 0, n1 = 0;
    unsigned char *before = read_bytes(p, &n0);
    long cuts[] = { 0, 5, 100, 2000 };
    for (int i = 0; i < 4; i++) {
        sk_io_fail_write_after(cuts[i]);
        int rc = sk_model_save(b, p, NULL);
        CHECK(rc == SK_EIO && err_has(p, "untouched"), "failing write after %ld bytes reports: %s", cuts[i],
              sk_last_error());
        unsigned char *after = read_bytes(p, &n1);
        CHECK(after && n0 == n1 && !memcmp(before, after, n0), "old file intact after a write failing at %ld", cuts[i]);
        free(after);
    }
    CHECK(count_tmp_files() == 0, "no temporary files left behind");
    CHECK(sk_model_save(b, p, NULL) == 0, "a later write succeeds");
    struct sk_model *l = sk_model_load(p, NULL, NULL);
    CHECK(l && sk_model_weights_hash(l) == sk_model_weights_hash(b), "new contents after a good write");
    sk_model_free(l);
    /* a directory that does not exist */
    int rc = sk_model_save(a, "/nonexistent-dir/x.safetensors", NULL);
    CHECK(rc == SK_EIO && err_has("/nonexistent-dir/x.safetensors", "temporary"), "bad directory: %s", sk_last_error());
    free(before);
    sk_model_free(a);
    sk_model_free(b);
}

/* Stop a run from its checkpoint callback at a given step (as a kill would),
 * resume from the file in a fresh trainer, compare with one uninterrupted run. */
struct stopper {
    const char *path;
    long stop_at;
};
static int ck_stop(void *ctx, struct sk_trainer *t)
{
    struct stopper *s = ctx;
    if (sk_checkpoint_save(s->path, t, "{\"cmd\":\"test\"}")) return SK_EIO;
    return t->st.step >= s->stop_at ? SK_ESTATE : 0;
}

static void test_checkpoint_resume(void)
{
    struct sk_dataset *d = sk_data_blobs(600, 3, 6, 2.0f, 5);
    const char *spec = "seq:6-dense16-bn-relu-dropout0.3-dense3";
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 3;
    cfg.batch = 32;
    cfg.val_split = 0.2f;
    cfg.seed = 11;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.sched = SK_SCHED_COSINE;
    struct sk_model *full = sk_model_from_spec(spec);
    CHECK(full != NULL, "spec: %s", sk_last_error());
    if (!full) {
        sk_dataset_free(d);
        return;
    }
    sk_model_init(full, SK_INIT_HE_UNIFORM, 11);
    CHECK(sk_train(full, &cfg, d->x, d->y, d->n) == 0, "uninterrupted run");

    struct stopper s = { sk_test_path("run.ckpt"), 20 }; /* 15 batches per epoch: step 20 is mid-epoch 2 */
    struct sk_model *m = sk_model_from_spec(spec);
    sk_model_init(m, SK_INIT_HE_UNIFORM, 11);
    struct sk_train_config c2 = cfg;
    c2.on_checkpoint = ck_stop;
    c2.checkpoint_every = 4;
    c2.ctx = &s;
    struct sk_trainer *t = sk_trainer_new(m, &c2, d->x, d->y, d->n);
    int rc = sk_trainer_run(t);
    CHECK(rc == SK_ESTATE && t->st.step == 20 && t->st.batch == 4, "stopped mid-epoch at step %ld batch %d", t->st.step,
          t->st.batch);
    sk_trainer_free(t);
    sk_model_free(m);

    m = sk_model_from_spec(spec); /* fresh weights: all must come from the file */
    t = sk_trainer_new(m, &cfg, d->x, d->y, d->n);
    char *meta = NULL;
    rc = sk_checkpoint_load(s.path, t, &meta);
    CHECK(rc == 0, "checkpoint load: %s", sk_last_error());
    char v[32];
    CHECK(meta && sk_meta_get(meta, "cmd", v, sizeof v) && !strcmp(v, "test"), "checkpoint metadata");
    CHECK(t->st.epoch == 1 && t->st.batch == 5 && t->st.step == 20 && t->opt->t == 20, "state restored");
    CHECK(sk_trainer_run(t) == 0, "resumed run");
    CHECK(sk_model_weights_hash(m) == sk_model_weights_hash(full) &&
              !memcmp(m->params, full->params, sizeof(float) * m->n_params) &&
              !memcmp(m->buffers, full->buffers, sizeof(float) * m->n_buffers),
          "resumed run is bitwise identical to the uninterrupted one");
    sk_free(meta);
    sk_trainer_free(t);
    sk_model_free(m);

    /* a checkpoint from another configuration is refused */
    struct sk_train_config c3 = cfg;
    c3.seed = 12;
    m = sk_model_from_spec(spec);
    t = sk_trainer_new(m, &c3, d->x, d->y, d->n);
    rc = sk_checkpoint_load(s.path, t, NULL);
    CHECK(rc != 0 && err_has(s.path, "seed 11"), "other seed refused: %s", sk_last_error());
    sk_trainer_free(t);
    sk_model_free(m);
    m = sk_model_from_spec("seq:6-dense8-relu-dense3");
    t = sk_trainer_new(m, &cfg, d->x, d->y, d->n);
    rc = sk_checkpoint_load(s.path, t, NULL);
    CHECK(rc != 0 && err_has(s.path, "this run trains"), "other model refused: %s", sk_last_error());
    sk_trainer_free(t);
    sk_model_free(m);
    /* a model file is not a checkpoint */
    const char *mp = sk_test_path("plain.safetensors");
    sk_model_save(full, mp, NULL);
    m = sk_model_from_spec(spec);
    t = sk_trainer_new(m, &cfg, d->x, d->y, d->n);
    rc = sk_checkpoint_load(mp, t, NULL);
    CHECK(rc != 0 && err_has(mp, "not a checkpoint"), "model file as checkpoint: %s", sk_last_error());
    sk_trainer_free(t);
    sk_model_free(m);
    sk_model_free(full);
    sk_dataset_free(d);
}

/* Rewrite checkpoint src as dst with state field `key` set to `val` (NULL:
 * removed), everything else as it was, through io's generic interface. */
static int craft_checkpoint(const char *src, const char *dst, const char *key, const char *val)
{
    struct sk_safetensors *f = sk_safetensors_read(src);
    if (!f) return -1;
    cJSON *st = cJSON_Parse(sk_safetensors_meta(f, "skeptic.state"));
    if (val)
        cJSON_ReplaceItemInObjectCaseSensitive(st, key, cJSON_CreateString(val));
    else
        cJSON_DeleteItemFromObjectCaseSensitive(st, key);
    char *state = cJSON_PrintUnformatted(st), *mj = sk_safetensors_meta_json(f), *out = NULL;
    struct sk_meta *meta = NULL;
    int n = sk_safetensors_count(f), rc = sk_meta_parse(mj, &meta);
    if (!rc) rc = sk_meta_set(meta, "skeptic.state", state);
    if (!rc) out = sk_meta_print(meta);
    struct sk_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    for (int i = 0; i < n; i++) {
        ts[i].name = sk_safetensors_name(f, i);
        ts[i].data = sk_safetensors_get(f, ts[i].name, &ts[i].ndim, ts[i].shape);
    }
    if (!rc) rc = sk_safetensors_write(dst, ts, n, out);
    free(ts);
    sk_free(out);
    sk_meta_free(meta);
    sk_free(mj);
    free(state);
    cJSON_Delete(st);
    sk_safetensors_free(f);
    return rc;
}

/* A checkpoint whose state was edited by hand is refused with SK_EFORMAT
 * naming the file and the field, before anything of the trainer changes:
 * negative, NaN, huge (float -> int overflow), fractional and out-of-range
 * values against the resuming run's configuration. */
static void test_checkpoint_crafted(void)
{
    struct sk_dataset *d = sk_data_blobs(600, 3, 6, 2.0f, 5);
    const char *spec = "seq:6-dense16-bn-relu-dense3";
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 3;
    cfg.batch = 32; /* 480 training rows: 15 batches per epoch */
    cfg.val_split = 0.2f;
    cfg.seed = 11;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    struct stopper s = { sk_test_path("craft.ckpt"), 20 };
    struct sk_train_config c2 = cfg;
    c2.on_checkpoint = ck_stop;
    c2.checkpoint_every = 4;
    c2.ctx = &s;
    struct sk_model *m = sk_model_from_spec(spec);
    sk_model_init(m, SK_INIT_HE_UNIFORM, 11);
    struct sk_trainer *t = sk_trainer_new(m, &c2, d->x, d->y, d->n);
    CHECK(sk_trainer_run(t) == SK_ESTATE, "run stopped at step 20");
    sk_trainer_free(t);
    sk_model_free(m);

    static const struct {
        const char *key, *val, *want;
    } cases[] = {
        { "batch", "-3", "a batch in [0, 15]" },
        { "batch", "16", "a batch in [0, 15]" },
        { "batch", "1.5", "not an integer" },
        { "batch", "", "lacks a number" },
        { "batch", NULL, "lacks a number" },
        { "epoch", "nan", "'nan', not an integer" },
        { "epoch", "1e99", "not an integer" },
        { "epoch", "4", "an epoch in [0, 3]" },
        { "epoch", "-inf", "not an integer" },
        { "step", "-1", "a count >= 0" },
        { "step", "1e99", "fits a long" },
        { "step", "9223372036854775808", "fits a long" },
        { "optim_t", "-5", "a count >= 0" },
        { "ep_seen", "481", "in [0, 480]" },
        { "ep_correct", "1e20", "fits a long" },
        { "ep_loss_sum", "inf", "a finite number" },
        { "ep_loss_sum", "nan", "not a number" },
        { "ep_seconds", "-1", ">= 0" },
        { "best_val", "nan", "not a number" },
        { "best_val", "-inf", "a finite loss" },
        { "best_epoch", "-2", "-1 or an epoch" },
        { "bad_epochs", "9", "in [0, 3]" },
        { "done", "2", "not 0 or 1" },
        { "n_train", "1e99", "fits an int" },
        { "batch_size", "-1e300", "fits an int" },
        { "n_val", "nan", "fits an int" },
    };
    const char *cp = sk_test_path("crafted.ckpt");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        m = sk_model_from_spec(spec);
        uint64_t fresh = sk_model_weights_hash(m);
        t = sk_trainer_new(m, &cfg, d->x, d->y, d->n);
        CHECK(craft_checkpoint(s.path, cp, cases[i].key, cases[i].val) == 0, "craft %s: %s", cases[i].key,
              sk_last_error());
        char field[40];
        snprintf(field, sizeof field, "'%s'", cases[i].key);
        int rc = sk_checkpoint_load(cp, t, NULL);
        CHECK(rc == SK_EFORMAT && err_has(cp, field) && err_has(cases[i].want, NULL),
              "\"%s\":\"%s\" gives rc %d: %s", cases[i].key, cases[i].val ? cases[i].val : "(absent)", rc,
              sk_last_error());
        CHECK(t->st.epoch == 0 && t->st.batch == 0 && t->st.step == 0 && t->opt->t == 0 &&
                  sk_model_weights_hash(m) == fresh,
              "\"%s\":\"%s\" left the trainer untouched", cases[i].key, cases[i].val ? cases[i].val : "");
        sk_trainer_free(t);
        sk_model_free(m);
    }
    m = sk_model_from_spec(spec);
    t = sk_trainer_new(m, &cfg, d->x, d->y, d->n);
    /* another command line is still SK_EINVAL, not a format error */
    CHECK(craft_checkpoint(s.path, cp, "batch_size", "64") == 0, "craft batch_size");
    CHECK(sk_checkpoint_load(cp, t, NULL) == SK_EINVAL && err_has(cp, "batch 64"), "other batch size: %s",
          sk_last_error());
    /* the crafting itself keeps a checkpoint whole: an unchanged value loads */
    CHECK(craft_checkpoint(s.path, cp, "epoch", "1") == 0, "craft epoch 1");
    int rc = sk_checkpoint_load(cp, t, NULL);
    CHECK(rc == 0 && t->st.epoch == 1 && t->st.batch == 5 && t->st.step == 20 && t->opt->t == 20 && t->st.best_epoch == 0,
          "rewritten checkpoint loads: rc %d %s", rc, sk_last_error());
    sk_trainer_free(t);
    sk_model_free(m);
    sk_dataset_free(d);
}

int main(void)
{
    sk_set_threads(1);
    test_round_trip();
    test_dtypes();
    test_malformed();
    test_model_mismatch();
    test_atomic();
    test_checkpoint_resume();
    test_checkpoint_crafted();
    return sk_test_finish("test_io");
}
