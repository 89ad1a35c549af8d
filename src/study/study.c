/* The seed study's run loop: the plan, resuming from the step results in the
 * output directory, progress, and the helpers the steps build their results
 * with (see skeptic/study_seed.h). */
#define _POSIX_C_SOURCE 200809L /* mkdir, strtok_r */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "skeptic/io.h"
#include "study/study_impl.h"

const char *sk_study_profile_name(enum sk_study_profile p)
{
    return p == SK_STUDY_FULL ? "full" : "quick";
}

int sk_study_profile_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "quick")) return SK_STUDY_QUICK;
    if (!strcmp(s, "full")) return SK_STUDY_FULL;
    return -1;
}

struct sk_study_config sk_study_defaults(enum sk_study_profile profile)
{
    struct sk_study_config c;
    memset(&c, 0, sizeof c);
    c.profile = profile;
    c.seed = 1;
    return c;
}

const char *study_path(const struct study *s, char *buf, size_t cap, const char *fmt, ...)
{
    int k = snprintf(buf, cap, "%s/", s->dir);
    if (k < 0 || (size_t)k >= cap) k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, cap - (size_t)k, fmt, ap);
    va_end(ap);
    return buf;
}

void study_log(struct study *s, const char *fmt, ...)
{
    if (!s->log) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(s->log, "[%s] ", s->id ? s->id : "study");
    vfprintf(s->log, fmt, ap);
    fputc('\n', s->log);
    fflush(s->log);
    va_end(ap);
}

static void emit(struct study *s, const char *what, double frac, bool skipped, bool finished)
{
    if (!s->c.on_progress) return;
    struct sk_study_progress p = { .step = s->step, .n_steps = s->n_steps, .id = s->id, .what = what,
                                   .step_frac = frac < 0 ? 0 : frac > 1 ? 1 : frac, .done_est = s->done_est,
                                   .total_est = s->total_est, .step_est = s->step_est, .skipped = skipped,
                                   .finished = finished };
    s->c.on_progress(s->c.ctx, &p);
}

void study_progress(struct study *s, double frac, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    study_log(s, "%s", what);
    emit(s, what, frac, false, false);
}

/* ---- JSON files ---- */

int study_write_json(const char *path, const cJSON *j)
{
    char *text = cJSON_Print(j);
    if (!text) return sk_error(SK_ENOMEM, "out of memory writing %s", path);
    size_t len = strlen(text);
    const void *parts[2] = { text, "\n" };
    size_t lens[2] = { len, 1 };
    int rc = sk_write_file_atomic(path, parts, lens, 2);
    cJSON_free(text);
    return rc;
}

cJSON *study_read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? sk_malloc((size_t)n + 1) : NULL;
    cJSON *j = NULL;
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        j = cJSON_Parse(buf);
        if (!j) sk_error(SK_EFORMAT, "%s: not a JSON document near offset %ld", path,
                         cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - buf) : 0L);
    }
    sk_free(buf);
    fclose(f);
    return j;
}

/* A result counts as finished only when it was made by this profile and
 * seed, so a directory reused for another study is refused, not mixed. */
static int check_owner(const struct study *s, const cJSON *j, const char *path)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "profile");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(j, "seed");
    if (!cJSON_IsString(p) || !cJSON_IsNumber(sd))
        return sk_error(SK_EFORMAT, "%s: field profile or seed missing", path);
    if (strcmp(p->valuestring, sk_study_profile_name(s->c.profile)) || (uint64_t)sd->valuedouble != s->c.seed)
        return sk_error(SK_ESTATE, "%s was made by the %s profile with seed %.0f; this run is %s with seed %llu: "
                        "give another study.out", path, p->valuestring, sd->valuedouble,
                        sk_study_profile_name(s->c.profile), (unsigned long long)s->c.seed);
    return SK_OK;
}

cJSON *study_load_step(const struct study *s, const char *id)
{
    char path[1024];
    study_path(s, path, sizeof path, "steps/%s.json", id);
    cJSON *j = study_read_json(path);
    if (j && check_owner(s, j, path)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

cJSON *study_load_part(const struct study *s, const char *key)
{
    char path[1024];
    study_path(s, path, sizeof path, "steps/%s/%s.json", s->id, key);
    return study_read_json(path);
}

int study_save_part(const struct study *s, const char *key, const cJSON *part)
{
    char path[1024];
    study_path(s, path, sizeof path, "steps/%s", s->id);
    mkdir(path, 0777);
    study_path(s, path, sizeof path, "steps/%s/%s.json", s->id, key);
    return study_write_json(path, part);
}

/* ---- building a step's result ---- */

void study_text(struct study *s, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(s->res, "text");
    cJSON_AddItemToArray(t, cJSON_CreateString(buf));
}

void study_num(struct study *s, const char *key, double v)
{
    cJSON *n = cJSON_GetObjectItemCaseSensitive(s->res, "numbers");
    cJSON_DeleteItemFromObjectCaseSensitive(n, key);
    cJSON_AddItemToObject(n, key, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

cJSON *study_table(struct study *s, const char *caption, const char *const *cols, int n_cols)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "caption", caption);
    cJSON_AddItemToObject(t, "columns", cJSON_CreateStringArray(cols, n_cols));
    cJSON *rows = cJSON_AddArrayToObject(t, "rows");
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(s->res, "tables"), t);
    return rows;
}

void study_row(cJSON *rows, const char *fmt, ...)
{
    cJSON *r = cJSON_CreateArray();
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        if (*f == 's') {
            cJSON_AddItemToArray(r, cJSON_CreateString(va_arg(ap, const char *)));
        } else if (*f == 'i') {
            cJSON_AddItemToArray(r, cJSON_CreateNumber(va_arg(ap, int)));
        } else {
            double v = va_arg(ap, double);
            cJSON_AddItemToArray(r, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
        }
    }
    va_end(ap);
    cJSON_AddItemToArray(rows, r);
}

void study_figure(struct study *s, const char *name, const char *caption)
{
    cJSON *f = cJSON_CreateObject();
    char rel[256];
    snprintf(rel, sizeof rel, "figures/%s.png", name);
    cJSON_AddStringToObject(f, "file", rel);
    cJSON_AddStringToObject(f, "caption", caption);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(s->res, "figures"), f);
}

/* ---- data ---- */

int study_data(struct study *s)
{
    if (s->fm_tr) return SK_OK;
    struct sk_dataset *tr = sk_data_fashion_mnist(NULL, "train"), *te = sk_data_fashion_mnist(NULL, "test");
    if (!tr || !te) {
        sk_dataset_free(tr);
        sk_dataset_free(te);
        return SK_EIO;
    }
    s->fm_tr = tr;
    s->fm_te = te;
    /* the profile's rows: the first ones of each file, whose classes are balanced to within a few percent */
    if (s->z->fm_train && s->z->fm_train < tr->n) tr->n = s->z->fm_train;
    if (s->z->fm_test && s->z->fm_test < te->n) te->n = s->z->fm_test;
    s->mn_te = sk_data_mnist(NULL, "test");
    if (!s->mn_te) study_log(s, "MNIST digits not found (%s): no out-of-distribution columns", sk_last_error());
    else if (s->z->ood_n && s->z->ood_n < s->mn_te->n) {
        /* the test digits come digit by digit: a seeded subset keeps every digit */
        struct sk_rng r = sk_rng_derive(sk_rng_new(s->c.seed).key, SK_STREAM_DATA);
        int *idx = sk_malloc(sizeof(int) * (size_t)s->mn_te->n);
        if (!idx) return SK_ENOMEM;
        for (int i = 0; i < s->mn_te->n; i++) idx[i] = i;
        sk_rng_shuffle(&r, idx, s->mn_te->n);
        struct sk_dataset *sub = sk_dataset_subset(s->mn_te, idx, s->z->ood_n);
        sk_free(idx);
        if (!sub) return SK_ENOMEM;
        sk_dataset_free(s->mn_te);
        s->mn_te = sub;
    }
    sk_error_clear();
    return SK_OK;
}

/* ---- the plan and the run ---- */

static int step_index(const char *id)
{
    for (int i = 0; i < study_n_steps; i++)
        if (!strcmp(study_steps[i].id, id)) return i;
    return -1;
}

static bool step_done(const struct study *s, int i)
{
    cJSON *j = study_load_step(s, study_steps[i].id);
    bool ok = j != NULL;
    cJSON_Delete(j);
    sk_error_clear();
    return ok;
}

static int init(struct study *s, const struct sk_study_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->c = *cfg;
    if (!s->c.seed) s->c.seed = 1;
    if (cfg->profile != SK_STUDY_QUICK && cfg->profile != SK_STUDY_FULL)
        return sk_error(SK_EINVAL, "study: study.profile %d is neither quick nor full", (int)cfg->profile);
    if (!cfg->out || !*cfg->out) return sk_error(SK_EINVAL, "study: study.out (the output directory) is required");
    if (strlen(cfg->out) > 700) return sk_error(SK_EINVAL, "study: study.out is longer than 700 characters");
    snprintf(s->dir, sizeof s->dir, "%s", cfg->out);
    size_t n = strlen(s->dir);
    while (n > 1 && s->dir[n - 1] == '/') s->dir[--n] = 0;
    s->z = study_sizes_of(cfg->profile);
    s->n_steps = study_n_steps;
    return SK_OK;
}

int sk_study_plan(const struct sk_study_config *cfg, struct sk_study_step_info *steps, int cap, int *n)
{
    struct study s;
    *n = 0;
    int rc = init(&s, cfg);
    if (rc) return rc;
    for (int i = 0; i < study_n_steps && *n < cap; i++) {
        const struct study_step *st = &study_steps[i];
        steps[*n] = (struct sk_study_step_info){ st->id, st->title, st->what[cfg->profile], st->est[cfg->profile],
                                                 step_done(&s, i) };
        (*n)++;
    }
    return SK_OK;
}

/* Which steps to run: all that are not finished, or the --only list and the
 * unfinished steps they read from. */
static int select_steps(struct study *s, bool *run)
{
    for (int i = 0; i < study_n_steps; i++) run[i] = !s->c.only && !step_done(s, i);
    if (!s->c.only) return SK_OK;
    char list[256];
    snprintf(list, sizeof list, "%s", s->c.only);
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = step_index(t);
        if (i < 0) {
            char ids[256] = "";
            for (int k = 0; k < study_n_steps; k++) {
                strncat(ids, study_steps[k].id, sizeof ids - strlen(ids) - 1);
                if (k + 1 < study_n_steps) strncat(ids, ", ", sizeof ids - strlen(ids) - 1);
            }
            return sk_error(SK_EINVAL, "study: study.only names step '%s'; the steps are %s", t, ids);
        }
        run[i] = true;
        char deps[128];
        snprintf(deps, sizeof deps, "%s", study_steps[i].deps);
        char *sv2 = NULL;
        for (char *d = strtok_r(deps, ",", &sv2); d; d = strtok_r(NULL, ",", &sv2)) {
            int k = step_index(d);
            SK_ASSERT(k >= 0);
            if (!step_done(s, k)) run[k] = true;
        }
    }
    return SK_OK;
}

static int run_step(struct study *s, int i)
{
    const struct study_step *st = &study_steps[i];
    char path[1024];
    s->res = cJSON_CreateObject();
    if (!s->res) return sk_error(SK_ENOMEM, "out of memory");
    cJSON_AddStringToObject(s->res, "id", st->id);
    cJSON_AddStringToObject(s->res, "title", st->title);
    cJSON_AddStringToObject(s->res, "profile", sk_study_profile_name(s->c.profile));
    cJSON_AddNumberToObject(s->res, "seed", (double)s->c.seed);
    cJSON_AddStringToObject(s->res, "what", st->what[s->c.profile]);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "skeptic study seed --profile %s --seed %llu --out %s --only %s",
             sk_study_profile_name(s->c.profile), (unsigned long long)s->c.seed, s->dir, st->id);
    cJSON_AddStringToObject(s->res, "command", cmd);
    cJSON_AddArrayToObject(s->res, "text");
    cJSON_AddArrayToObject(s->res, "tables");
    cJSON_AddArrayToObject(s->res, "figures");
    cJSON_AddObjectToObject(s->res, "numbers");
    double t0 = sk_now();
    study_progress(s, 0, "%s", st->title);
    int rc = st->run(s);
    if (!rc) {
        cJSON *timing = cJSON_AddObjectToObject(s->res, "timing");
        cJSON_AddNumberToObject(timing, "seconds", sk_now() - t0);
        rc = study_write_json(study_path(s, path, sizeof path, "steps/%s.json", st->id), s->res);
    }
    if (!rc) study_log(s, "finished in %.1f s", sk_now() - t0);
    else study_log(s, "failed: %s", sk_last_error());
    cJSON_Delete(s->res);
    s->res = NULL;
    return rc;
}

static int make_dirs(const struct study *s)
{
    char path[1024];
    const char *sub[] = { "", "steps", "figures", "models" };
    for (int i = 0; i < 4; i++) {
        study_path(s, path, sizeof path, "%s", sub[i]);
        if (mkdir(path, 0777) && errno != EEXIST)
            return sk_error(SK_EIO, "study: cannot create %s: %s", path, strerror(errno));
    }
    return SK_OK;
}

static void release(struct study *s)
{
    sk_dataset_free(s->fm_tr);
    sk_dataset_free(s->fm_te);
    sk_dataset_free(s->mn_te);
    if (s->log) fclose(s->log);
    s->fm_tr = s->fm_te = s->mn_te = NULL;
    s->log = NULL;
}

int sk_study_run(const struct sk_study_config *cfg)
{
    struct study s;
    int rc = init(&s, cfg);
    if (rc) return rc;
    if ((rc = make_dirs(&s))) return rc;
    bool run[SK_STUDY_MAX_STEPS];
    if ((rc = select_steps(&s, run))) return rc;
    /* a directory of another study is refused before anything is computed */
    for (int i = 0; i < study_n_steps; i++) {
        char path[1024];
        cJSON *j = study_read_json(study_path(&s, path, sizeof path, "steps/%s.json", study_steps[i].id));
        rc = j ? check_owner(&s, j, path) : SK_OK;
        cJSON_Delete(j);
        if (rc) return rc;
    }
    sk_error_clear();
    char path[1024];
    s.log = fopen(study_path(&s, path, sizeof path, "study.log"), "a");
    if (!s.log) return sk_error(SK_EIO, "study: cannot open %s for appending", path);
    study_log(&s, "start: profile %s, seed %llu, %d threads", sk_study_profile_name(s.c.profile),
              (unsigned long long)s.c.seed, sk_get_threads());
    /* the progress covers the steps that run and those kept from before;
     * steps left out by study.only and not finished are not part of it */
    bool done[SK_STUDY_MAX_STEPS];
    for (int i = 0; i < study_n_steps; i++) {
        done[i] = !run[i] && step_done(&s, i);
        if (run[i] || done[i]) s.total_est += study_steps[i].est[s.c.profile];
    }
    for (int i = 0; i < study_n_steps && !rc; i++) {
        if (!run[i] && !done[i]) continue;
        s.step = i;
        s.id = study_steps[i].id;
        s.step_est = study_steps[i].est[s.c.profile];
        if (!run[i]) {
            emit(&s, "finished earlier", 1, true, true);
        } else {
            rc = run_step(&s, i);
            if (!rc) emit(&s, "finished", 1, false, true);
        }
        s.done_est += s.step_est;
    }
    s.id = NULL;
    if (!rc) rc = study_report_write(&s);
    release(&s);
    return rc;
}

int sk_study_write_report(const struct sk_study_config *cfg)
{
    struct study s;
    int rc = init(&s, cfg);
    if (!rc) rc = make_dirs(&s);
    if (!rc) rc = study_report_write(&s);
    release(&s);
    return rc;
}
