/* Checkpoints (sk_checkpoint_load) into a fresh trainer of a fixed run: an
 * MLP 2-3-2 with Adam on 8 rows, batches of 4, 3 epochs. A checkpoint that
 * loads is resumed to the end, so that the state it restored is also state
 * the loop can run from.
 *
 * SKEPTIC_FUZZ_WRITE_SEEDS=DIR (fuzz/make-corpus sets it) writes valid
 * checkpoints of this run into DIR first, one at every step and epoch end. */
#include "fuzz_util.h"
#include "skeptic/model.h"
#include "skeptic/train.h"

static const float xs[16] = { 0, 0, 0, 1, 1, 0, 1, 1, .5f, .5f, .2f, .8f, .8f, .2f, .9f, .9f };
static const int ys[8] = { 0, 1, 1, 0, 1, 0, 0, 1 };

static struct sk_train_config config(void)
{
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 3;
    cfg.batch = 4;
    cfg.seed = 7;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    return cfg;
}

static struct sk_trainer *trainer(struct sk_model **m, const struct sk_train_config *cfg)
{
    *m = sk_model_from_spec("mlp:2-3-2:relu");
    struct sk_trainer *t = *m ? sk_trainer_new(*m, cfg, xs, ys, 8) : NULL;
    if (!t) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", sk_last_error());
        abort();
    }
    return t;
}

struct seeds {
    const char *dir;
    int n;
};

static int save_seed(void *ctx, struct sk_trainer *t)
{
    struct seeds *s = ctx;
    char path[1024];
    snprintf(path, sizeof path, "%s/ckpt%d-step%ld.safetensors", s->dir, s->n++, t->st.step);
    return sk_checkpoint_save(path, t, "{\"cmd\":\"fuzz\"}");
}

static void write_seeds(const char *dir)
{
    struct seeds s = { dir, 0 };
    struct sk_train_config cfg = config();
    cfg.on_checkpoint = save_seed;
    cfg.checkpoint_every = 1;
    cfg.ctx = &s;
    struct sk_model *m;
    struct sk_trainer *t = trainer(&m, &cfg);
    if (sk_trainer_run(t)) abort();
    sk_trainer_free(t);
    sk_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int seeded;
    if (!seeded) {
        const char *dir = getenv("SKEPTIC_FUZZ_WRITE_SEEDS");
        if (dir && *dir) write_seeds(dir);
        seeded = 1;
    }
    const char *path = fuzz_write("checkpoint.safetensors", data, size);
    struct sk_train_config cfg = config();
    struct sk_model *m;
    struct sk_trainer *t = trainer(&m, &cfg);
    char *meta = NULL;
    if (sk_checkpoint_load(path, t, &meta) == SK_OK) (void)sk_trainer_run(t);
    sk_free(meta);
    sk_trainer_free(t);
    sk_model_free(m);
    return 0;
}
