/* Checkpoints: a model file plus the optimiser moments, the best weights and
 * the train state. The state fields are listed once, in `fields`, which
 * both save and load walk. */
#include "skeptic/train.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum home { IN_TRAINER, IN_OPTIM }; /* the optimiser is a separate allocation */
enum type { T_INT, T_LONG, T_U64, T_DOUBLE, T_BOOL };
/* What a value read back must be, against the run that resumes. */
enum range {
    R_SAVED,      /* written for the reader, not read back */
    R_SAME,       /* equal to this run's (else another command line: SK_EINVAL) */
    R_EPOCH,      /* [0, epochs] */
    R_BATCH,      /* [0, batches per epoch] */
    R_BEST_EPOCH, /* -1 (none yet) or [0, epochs] */
    R_EPOCHS,     /* a number of epochs, [0, epochs] */
    R_ROWS,       /* a number of training rows, [0, n_train] */
    R_COUNT,      /* >= 0 */
    R_FINITE,
    R_SECONDS,    /* finite, >= 0 */
    R_BEST_LOSS,  /* finite, or +inf before any validation */
    R_FLAG,       /* 0 or 1 */
};

struct field {
    const char *name;  /* key in "skeptic.state"; the order is the file's */
    enum home home;
    size_t off;
    enum type type;
    enum range range;
};

#define TRAINER(member) IN_TRAINER, offsetof(struct sk_trainer, member)

static const struct field fields[] = {
    { "epoch", TRAINER(st.epoch), T_INT, R_EPOCH },
    { "batch", TRAINER(st.batch), T_INT, R_BATCH },
    { "step", TRAINER(st.step), T_LONG, R_COUNT },
    { "ep_loss_sum", TRAINER(st.ep_loss_sum), T_DOUBLE, R_FINITE },
    { "ep_correct", TRAINER(st.ep_correct), T_LONG, R_ROWS },
    { "ep_seen", TRAINER(st.ep_seen), T_LONG, R_ROWS },
    { "ep_seconds", TRAINER(st.ep_seconds), T_DOUBLE, R_SECONDS },
    { "best_val", TRAINER(st.best_val), T_DOUBLE, R_BEST_LOSS },
    { "best_epoch", TRAINER(st.best_epoch), T_INT, R_BEST_EPOCH },
    { "bad_epochs", TRAINER(st.bad_epochs), T_INT, R_EPOCHS },
    { "done", TRAINER(st.done), T_BOOL, R_FLAG },
    { "hook_count", TRAINER(st.hook_count), T_LONG, R_COUNT },
    { "optim_t", IN_OPTIM, offsetof(struct sk_optim, t), T_LONG, R_COUNT },
    /* the seed is checked against "skeptic.seed", which holds all 64 bits */
    { "seed", TRAINER(cfg.seed), T_U64, R_SAVED },
    { "batch_size", TRAINER(cfg.batch), T_INT, R_SAME },
    { "n_train", TRAINER(n_train), T_INT, R_SAME },
    { "n_val", TRAINER(n_val), T_INT, R_SAME },
};
enum { N_FIELDS = (int)(sizeof fields / sizeof fields[0]) };

static const void *field_at(const struct field *fd, const struct sk_trainer *t)
{
    return (const char *)(fd->home == IN_OPTIM ? (const void *)t->opt : (const void *)t) + fd->off;
}

static double field_get(const struct field *fd, const struct sk_trainer *t)
{
    const void *p = field_at(fd, t);
    switch (fd->type) {
    case T_INT: return *(const int *)p;
    case T_LONG: return (double)*(const long *)p;
    case T_U64: return (double)*(const uint64_t *)p;
    case T_BOOL: return *(const bool *)p;
    default: return *(const double *)p;
    }
}

/* v has passed check_type for fd->type. */
static void field_put(const struct field *fd, struct sk_trainer *t, double v)
{
    void *p = (void *)field_at(fd, t);
    switch (fd->type) {
    case T_INT: *(int *)p = (int)v; break;
    case T_LONG: *(long *)p = (long)v; break;
    case T_U64: *(uint64_t *)p = (uint64_t)v; break;
    case T_BOOL: *(bool *)p = v != 0; break;
    default: *(double *)p = v; break;
    }
}

/* Whether v converts to fd's type without loss or undefined behaviour. */
static bool check_type(enum type type, double v)
{
    if (isnan(v)) return false;
    switch (type) {
    case T_DOUBLE: return true;
    case T_INT: return v == floor(v) && v >= INT_MIN && v <= INT_MAX;
    /* 0x1p63 is exact; LONG_MAX is not representable as a double */
    case T_LONG: return v == floor(v) && v >= -0x1p63 && v < 0x1p63;
    case T_U64: return v == floor(v) && v >= 0 && v < 0x1p64;
    default: return v == 0 || v == 1;
    }
}

/* Whether v lies in fd's range for the run t resumes; else *want says what
 * would. */
static bool check_range(const struct field *fd, const struct sk_trainer *t, double v, char *want, size_t cap)
{
    int epochs = t->cfg.epochs, batches = (t->n_train + t->cfg.batch - 1) / t->cfg.batch;
    switch (fd->range) {
    case R_EPOCH:
        snprintf(want, cap, "an epoch in [0, %d] (this run's epochs)", epochs);
        return v >= 0 && v <= epochs;
    case R_BATCH:
        snprintf(want, cap, "a batch in [0, %d] (this run's batches per epoch)", batches);
        return v >= 0 && v <= batches;
    case R_BEST_EPOCH:
        snprintf(want, cap, "-1 or an epoch in [0, %d] (this run's epochs)", epochs);
        return v >= -1 && v <= epochs;
    case R_EPOCHS:
        snprintf(want, cap, "a number of epochs in [0, %d] (this run's epochs)", epochs);
        return v >= 0 && v <= epochs;
    case R_ROWS:
        snprintf(want, cap, "a number of rows in [0, %d] (this run's training rows)", t->n_train);
        return v >= 0 && v <= t->n_train;
    case R_COUNT: snprintf(want, cap, "a count >= 0"); return v >= 0;
    case R_FINITE: snprintf(want, cap, "a finite number"); return isfinite(v);
    case R_SECONDS: snprintf(want, cap, "a finite number of seconds >= 0"); return isfinite(v) && v >= 0;
    case R_BEST_LOSS: snprintf(want, cap, "a finite loss, or inf before any validation"); return isfinite(v) || v == INFINITY;
    case R_FLAG: snprintf(want, cap, "0 or 1"); return v == 0 || v == 1;
    default: return true;
    }
}

static const char *type_name(enum type type)
{
    switch (type) {
    case T_INT: return "an integer that fits an int";
    case T_LONG: return "an integer that fits a long";
    case T_U64: return "a non-negative 64-bit integer";
    case T_BOOL: return "0 or 1";
    default: return "a number";
    }
}

/* The optimiser as the checkpoint names it: the kind, then SAM / ASAM and
 * gradient noise when on (a plain optimiser reads as before), and the chunk
 * size of the batch gradient: all of them change the run, none holds state
 * beyond (seed, step). */
static void optim_desc(const struct sk_trainer *t, char *b, size_t cap)
{
    const struct sk_optim_config *o = &t->opt->cfg;
    int k = snprintf(b, cap, "%s", sk_optim_kind_name(o->kind));
    if (o->sam_rho > 0 && k >= 0 && (size_t)k < cap)
        k += o->sam_adaptive ? snprintf(b + k, cap - (size_t)k, "+asam(rho=%.9g,eta=%.9g)", o->sam_rho, o->sam_eta)
                             : snprintf(b + k, cap - (size_t)k, "+sam(rho=%.9g)", o->sam_rho);
    if (o->grad_noise > 0 && k >= 0 && (size_t)k < cap)
        k += snprintf(b + k, cap - (size_t)k, "+noise(%.9g)", o->grad_noise);
    if (t->cfg.micro_batch > 0 && k >= 0 && (size_t)k < cap)
        snprintf(b + k, cap - (size_t)k, "+chunks(%d)", t->cfg.micro_batch);
}

int sk_checkpoint_save(const char *path, const struct sk_trainer *t, const char *metadata_json)
{
    const struct sk_model *m = t->model;
    struct sk_meta *meta = NULL;
    int rc = sk_meta_parse(metadata_json, &meta);
    if (rc) return rc;
    cJSON *st = cJSON_CreateObject();
    for (int i = 0; i < N_FIELDS && st; i++) {
        char b[40];
        snprintf(b, sizeof b, "%.17g", field_get(&fields[i], t));
        cJSON_AddStringToObject(st, fields[i].name, b);
    }
    char od[160];
    optim_desc(t, od, sizeof od);
    cJSON_AddStringToObject(st, "optimizer", od);
    char *txt = st ? cJSON_PrintUnformatted(st) : NULL;
    cJSON_Delete(st);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)t->cfg.seed);
    rc = txt ? sk_meta_set(meta, "skeptic.state", txt) : SK_ENOMEM;
    free(txt);
    if (!rc) rc = sk_meta_set(meta, "skeptic.seed", seed);
    char *mj = rc ? NULL : sk_meta_print(meta);
    sk_meta_free(meta);
    if (rc) return rc;
    if (!mj) return SK_ENOMEM;
    struct sk_st_tensor ex[4 + SK_STEP_MAX_STATE] = {
        { "skeptic.optim.m", 1, { (int64_t)t->n_params }, t->opt->m },
        { "skeptic.optim.v", 1, { (int64_t)t->n_params }, t->opt->v },
        { "skeptic.best.params", 1, { (int64_t)m->n_params }, t->best_params },
        { "skeptic.best.buffers", 1, { (int64_t)m->n_buffers }, t->best_buffers },
    };
    int n_ex = 4;
    const struct sk_step_hook *h = t->cfg.step;
    for (int i = 0; h && i < h->n_state; i++, n_ex++)
        ex[n_ex] = (struct sk_st_tensor){ h->state[i].name, 1, { (int64_t)h->state[i].n }, h->state[i].data };
    rc = sk_model_save_ex(m, path, mj, ex, n_ex);
    sk_free(mj);
    return rc;
}

/* Every read-back field of "skeptic.state" into v[], checked for its type
 * (SK_EFORMAT). */
static int read_fields(const char *path, const cJSON *st, double *v)
{
    for (int i = 0; i < N_FIELDS; i++) {
        const struct field *fd = &fields[i];
        if (fd->range == R_SAVED) continue;
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(st, fd->name);
        char *end = NULL;
        if (!cJSON_IsString(j) || (v[i] = strtod(j->valuestring, &end), end == j->valuestring || *end))
            return sk_error(SK_EFORMAT, "%s: checkpoint state lacks a number '%s'", path, fd->name);
        if (!check_type(fd->type, v[i]))
            return sk_error(SK_EFORMAT, "%s: checkpoint state field '%s' is '%.40s', not %s", path, fd->name,
                            j->valuestring, type_name(fd->type));
    }
    return SK_OK;
}

static int field_index(const char *name)
{
    for (int i = 0; i < N_FIELDS; i++)
        if (!strcmp(fields[i].name, name)) return i;
    return -1;
}

/* The fields that must match this run's command line (SK_EINVAL), then the
 * ranges of the others against it (SK_EFORMAT). */
static int check_fields(const char *path, const struct sk_safetensors *f, const cJSON *st, const struct sk_trainer *t,
                        const double *v)
{
    int bs = (int)v[field_index("batch_size")], nt = (int)v[field_index("n_train")], nv = (int)v[field_index("n_val")];
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(st, "optimizer");
    const char *seed_s = sk_safetensors_meta(f, "skeptic.seed");
    unsigned long long seed = seed_s ? strtoull(seed_s, NULL, 10) : 0;
    char kind[160];
    optim_desc(t, kind, sizeof kind);
    bool same = seed == t->cfg.seed && cJSON_IsString(ok) && !strcmp(ok->valuestring, kind);
    for (int i = 0; i < N_FIELDS; i++)
        if (fields[i].range == R_SAME) same = same && v[i] == field_get(&fields[i], t);
    if (!same)
        return sk_error(SK_EINVAL,
                        "%s: checkpoint was written with seed %llu, batch %d, %d training + %d validation rows, "
                        "optimizer %s; this run has seed %llu, batch %d, %d + %d rows, optimizer %s — resume with the "
                        "same command line",
                        path, seed, bs, nt, nv, cJSON_IsString(ok) ? ok->valuestring : "?",
                        (unsigned long long)t->cfg.seed, t->cfg.batch, t->n_train, t->n_val, kind);
    for (int i = 0; i < N_FIELDS; i++) {
        char want[96];
        if (fields[i].range != R_SAVED && fields[i].range != R_SAME && !check_range(&fields[i], t, v[i], want, sizeof want))
            return sk_error(SK_EFORMAT, "%s: checkpoint state field '%s' is %.17g, not %s", path, fields[i].name, v[i],
                            want);
    }
    return SK_OK;
}

int sk_checkpoint_load(const char *path, struct sk_trainer *t, char **metadata_json_out)
{
    if (metadata_json_out) *metadata_json_out = NULL;
    struct sk_model *m = t->model;
    struct sk_safetensors *f = sk_safetensors_read(path);
    if (!f) return sk_last_error()[0] ? SK_EFORMAT : SK_EIO;
    int rc = SK_OK;
    cJSON *st = NULL;
    const char *spec = sk_safetensors_meta(f, "skeptic.spec"), *sts = sk_safetensors_meta(f, "skeptic.state");
    if (!spec || strcmp(spec, m->spec)) {
        rc = sk_error(SK_EFORMAT, "%s: checkpoint is of model '%s', this run trains '%s'", path, spec ? spec : "?",
                      m->spec);
        goto out;
    }
    if (!sts || !(st = cJSON_Parse(sts))) {
        rc = sk_error(SK_EFORMAT, "%s: not a checkpoint (no valid __metadata__ \"skeptic.state\")", path);
        goto out;
    }
    double v[N_FIELDS];
    if ((rc = read_fields(path, st, v)) || (rc = check_fields(path, f, st, t, v))) goto out;
    struct sk_train_tensor ex[4 + SK_STEP_MAX_STATE] = {
        { "skeptic.optim.m", t->opt->m, t->n_params },
        { "skeptic.optim.v", t->opt->v, t->n_params },
        { "skeptic.best.params", t->best_params, m->n_params },
        { "skeptic.best.buffers", t->best_buffers, m->n_buffers },
    };
    int n_ex = 4;
    const struct sk_step_hook *h = t->cfg.step;
    for (int i = 0; h && i < h->n_state; i++) ex[n_ex++] = h->state[i];
    /* every tensor is checked before any is restored */
    const float *src[4 + SK_STEP_MAX_STATE];
    for (int i = 0; i < n_ex; i++) {
        int nd;
        int64_t shp[4];
        src[i] = sk_safetensors_get(f, ex[i].name, &nd, shp);
        if (!src[i] || nd != 1 || (size_t)shp[0] != ex[i].n) {
            rc = sk_error(SK_EFORMAT, "%s: checkpoint tensor '%s' is missing or not of %zu values", path, ex[i].name,
                          ex[i].n);
            goto out;
        }
    }
    if ((rc = sk_model_read_tensors(m, f))) goto out;
    for (int i = 0; i < n_ex; i++) memcpy(ex[i].data, src[i], sizeof(float) * ex[i].n);
    for (int i = 0; i < N_FIELDS; i++)
        if (fields[i].range != R_SAVED && fields[i].range != R_SAME) field_put(&fields[i], t, v[i]);
    if (metadata_json_out && !(*metadata_json_out = sk_safetensors_meta_json(f))) rc = SK_ENOMEM;
out:
    cJSON_Delete(st);
    sk_safetensors_free(f);
    return rc;
}
