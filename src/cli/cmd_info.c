/* skeptic info MODEL and skeptic data D. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/eval_uncertainty.h"
#include "skeptic/bayes.h"

int cmd_info(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct cli_opt opts[] = {
        { "arch", CLI_STR, &c.arch, "SPEC", "architecture, for files without one (e.g. saved by PyTorch)" },
        CLI_JSON_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "info",
        "skeptic info MODEL [--arch SPEC] [--json]",
        "Show a model file's architecture (layer by layer, with tensor names as in PyTorch), parameter count,\n"
        "a hash of its weights and its metadata (training configuration, preprocessing, final metrics). For a\n"
        "Bayesian posterior (skeptic train --method M) the weights are the mean / MAP / member 0, and the method\n"
        "and its number of stored members or samples are shown.\n"
        "JSON keys: model, arch, params, layers, tensors, weights_fnv1a64, metadata, method, members.",
        "skeptic info mlp.safetensors",
    };
    const char *pos[1];
    int np = 0;
    int rc = cli_parse(argc, argv, &h, opts, pos, 1, &np);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (np != 1) return cli_usage("give the model file: skeptic info MODEL");
    c.model = pos[0];
    char *meta = NULL;
    struct sk_model *m = NULL;
    struct sk_posterior *p = NULL;
    if (cli_is_posterior_file(c.model)) {
        /* a posterior: its extra tensors (rho, members, ...) are not part of the spec */
        struct sk_safetensors *f = sk_safetensors_read(c.model);
        p = f ? sk_bayes_load(c.model) : NULL;
        meta = p ? sk_safetensors_meta_json(f) : NULL;
        sk_safetensors_free(f);
        if (!p || !meta) {
            sk_bayes_free(p);
            return cli_fail_lib();
        }
        m = p->model;
    } else if (!(m = cli_load_model(&c, &meta))) {
        return CLI_FAIL;
    }
    const char *method = sk_bayes_method_name(p ? p->method : SK_BAYES_DETERMINISTIC);
    int members = p ? p->n_members : 0;
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)sk_model_weights_hash(m));
    cJSON *md = cJSON_Parse(meta ? meta : "{}");
    if (c.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", c.model);
        cJSON_AddStringToObject(o, "arch", m->spec);
        cJSON_AddNumberToObject(o, "params", (double)m->n_params);
        cJSON_AddNumberToObject(o, "layers", m->n_layers);
        cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
        for (int i = 0; i < m->n_tensors; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "name", m->tensors[i].name);
            cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(m->tensors[i].shape, m->tensors[i].ndim));
            cJSON_AddItemToArray(ts, t);
        }
        cJSON_AddStringToObject(o, "weights_fnv1a64", hash);
        cJSON_AddItemToObject(o, "metadata", md ? md : cJSON_CreateObject());
        cJSON_AddStringToObject(o, "method", method);
        cJSON_AddNumberToObject(o, "members", members);
        md = NULL;
        cli_json_print(o);
    } else {
        printf("model     %s\narch      %s\ninput     %dx%dx%d\nclasses   %d\nparams    %zu\nweights   fnv1a64 %s\n",
               c.model, m->spec, m->in_c, m->in_h, m->in_w, m->n_classes, m->n_params, hash);
        if (members) printf("method    %s (%d members / samples)\n\n", method, members);
        else printf("method    %s\n\n", method);
        printf("layer  kind      output      tensors\n");
        for (int i = 0; i < m->n_layers; i++) {
            const struct sk_layer *L = &m->layers[i];
            char shp[48];
            if (L->out[1] == 1 && L->out[2] == 1 && !(L->kind == SK_LAYER_CONV))
                snprintf(shp, sizeof shp, "%d", L->out[0]);
            else
                snprintf(shp, sizeof shp, "%dx%dx%d", L->out[0], L->out[1], L->out[2]);
            printf("%5d  %-8s  %-10s ", i, sk_layer_name(L->kind), shp);
            for (int j = 0; j < m->n_tensors; j++)
                if (m->tensors[j].layer == i) {
                    printf(" %s[", m->tensors[j].name);
                    for (int d = 0; d < m->tensors[j].ndim; d++) printf(d ? ",%d" : "%d", m->tensors[j].shape[d]);
                    printf("]");
                }
            printf("\n");
        }
        printf("\nmetadata\n");
        for (cJSON *it = md ? md->child : NULL; it; it = it->next) {
            const char *v = cJSON_IsString(it) ? it->valuestring : "";
            if (strlen(v) > 200)
                printf("  %-22s %.160s... (%zu chars)\n", it->string, v, strlen(v));
            else
                printf("  %-22s %s\n", it->string, v);
        }
    }
    cJSON_Delete(md);
    sk_free(meta);
    if (p) sk_bayes_free(p);
    else sk_model_free(m);
    return CLI_OK;
}

int cmd_data(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct cli_opt opts[] = { CLI_DATA_OPTS(c), CLI_JSON_OPT(c), { 0 } };
    static const struct cli_help h = {
        "data",
        "skeptic data D [options]",
        "Load a dataset the way train and eval do and describe it: rows, shape, classes and their counts, value\n"
        "range and mean, for the train and test splits (or only --split S).\n"
        "JSON keys: data, splits (train/test/all: n, shape, n_classes, counts, min, max, mean).",
        "skeptic data fashion-mnist\n"
        "skeptic data breast_cancer.csv --label-column target\n"
        "skeptic data moons:n=500,noise=0.2 --json",
    };
    const char *pos[1];
    int np = 0;
    int rc = cli_parse(argc, argv, &h, opts, pos, 1, &np);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (np == 1) c.data = pos[0];
    if (!c.data) return cli_usage("give the dataset: skeptic data D");
    const char *splits[2] = { "train", "test" };
    int n_splits = 2;
    if (c.split) {
        splits[0] = c.split;
        n_splits = 1;
    }
    c.split = NULL;
    cJSON *o = cJSON_CreateObject(), *so = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "data", c.data);
    cJSON_AddItemToObject(o, "splits", so);
    int status = CLI_OK;
    if (!c.json) printf("data   %s\n", c.data);
    for (int s = 0; s < n_splits; s++) {
        struct sk_dataset *d = cli_load_data(&c, splits[s]);
        if (!d) {
            status = cli_fail_lib();
            break;
        }
        int K = d->n_classes > 0 ? d->n_classes : 1;
        long *cnt = sk_calloc((size_t)K, sizeof(long));
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        for (size_t i = 0; i < (size_t)d->n * d->dim; i++) {
            double v = d->x[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        for (int i = 0; cnt && i < d->n; i++) cnt[d->y[i] < K ? d->y[i] : 0]++;
        double mean = d->n ? sum / ((double)d->n * d->dim) : NAN;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "n", d->n);
        int shp[3] = { d->c, d->h, d->w };
        cJSON_AddItemToObject(e, "shape", cJSON_CreateIntArray(shp, 3));
        cJSON_AddNumberToObject(e, "dim", d->dim);
        cJSON_AddNumberToObject(e, "n_classes", d->n_classes);
        cJSON *ca = cJSON_AddArrayToObject(e, "counts");
        for (int k = 0; cnt && k < K; k++) cJSON_AddItemToArray(ca, cJSON_CreateNumber((double)cnt[k]));
        cli_json_num(e, "min", lo);
        cli_json_num(e, "max", hi);
        cli_json_num(e, "mean", mean);
        cJSON_AddItemToObject(so, splits[s], e);
        if (!c.json) {
            printf("\nsplit  %s\nrows   %d\nshape  %dx%dx%d (%d values per row)\nrange  [%g, %g], mean %.4f\nclasses %d:", splits[s],
                   d->n, d->c, d->h, d->w, d->dim, lo, hi, mean, d->n_classes);
            for (int k = 0; cnt && k < K; k++) printf(" %d:%ld", k, cnt[k]);
            printf("\n");
        }
        sk_free(cnt);
        sk_dataset_free(d);
    }
    if (c.json && status == CLI_OK)
        cli_json_print(o);
    else
        cJSON_Delete(o);
    return status;
}
