/* skeptic verify: complete verification of VNN-LIB properties, one instance
 * or a benchmark's instances.csv, with VNN-COMP's result words. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_dist.h"
#include "skeptic/certify.h"

static const struct cli_field_flag verify_flags[] = { { "cfg.timeout_s", "--timeout" }, { NULL, NULL } };

/* The counterexample in the competition's form: ((X_0 v) ... (Y_k v)). */
static int write_cex(const char *path, const float *x, int D, const float *y, int K)
{
    FILE *f = fopen(path, "w");
    if (!f) return cli_fail("cannot write the counterexample to %s: %s", path, strerror(errno));
    for (int j = 0; j < D; j++) fprintf(f, "%s(X_%d %.9g)\n", j ? "" : "(", j, (double)x[j]);
    for (int k = 0; k < K; k++) fprintf(f, "(Y_%d %.9g)%s\n", k, (double)y[k], k == K - 1 ? ")" : "");
    if (fclose(f) != 0) return cli_fail("cannot write the counterexample to %s: %s", path, strerror(errno));
    return CLI_OK;
}

struct vopts {
    double timeout;
    int pgd_restarts, pgd_steps, alpha_iters, inter_alpha_iters, bab_iters, batch, max_domain_mb;
    int refine_layers, refine_domains;
    float branch_decay; /* NAN: not given (the parser refuses NaN) */
    bool no_bab, sound_fp, child_intervals;
    uint64_t seed;
};

static struct sk_certify_verify_config config_of(const struct vopts *o, double timeout)
{
    struct sk_certify_verify_config cfg = sk_certify_verify_defaults();
    cfg.timeout_s = timeout;
    if (o->pgd_restarts >= 0) cfg.pgd_restarts = o->pgd_restarts;
    if (o->pgd_steps >= 0) cfg.pgd_steps = o->pgd_steps;
    if (o->alpha_iters >= 0) cfg.alpha_iters = o->alpha_iters;
    if (o->bab_iters >= 0) cfg.bab_iters = o->bab_iters;
    if (o->inter_alpha_iters >= 0) cfg.inter_alpha_iters = o->inter_alpha_iters;
    if (o->refine_layers >= 0) cfg.refine_layers = o->refine_layers;
    if (o->refine_domains >= 0) cfg.refine_domains = o->refine_domains;
    if (o->batch > 0) cfg.batch = o->batch;
    if (o->max_domain_mb > 0) cfg.max_domain_mb = o->max_domain_mb;
    if (!isnan(o->branch_decay)) cfg.branch_decay = o->branch_decay;
    cfg.child_crown = !o->child_intervals;
    cfg.bab = !o->no_bab;
    cfg.sound_fp = o->sound_fp;
    cfg.seed = o->seed;
    return cfg;
}

/* One model file and one property: the verdict word on stdout (or JSON). */
static int verify_one(const struct cli_common *c, const char *vnnlib, const char *cex_path, const struct vopts *o)
{
    char *meta = NULL;
    struct sk_model *m = cli_load_model(c, &meta);
    sk_free(meta);
    if (!m) return CLI_FAIL;
    struct sk_vnnlib *v = sk_certify_vnnlib_read(vnnlib);
    int status = CLI_OK;
    float *x = NULL, *y = NULL;
    struct sk_certify_verify_report rep = { .verdict = SK_VERDICT_ERROR, .stage = "" };
    if (!v) {
        status = cli_fail_lib();
    } else {
        x = sk_malloc(sizeof(float) * (size_t)m->in_dim);
        y = sk_malloc(sizeof(float) * (size_t)m->n_classes);
        struct sk_certify_verify_config cfg = config_of(o, o->timeout);
        if (!x || !y || sk_certify_verify_vnnlib(m, v, &cfg, &rep, x, y)) status = cli_fail_lib_map(verify_flags);
    }
    if (!status && rep.verdict == SK_VERDICT_SAT && cex_path)
        status = write_cex(cex_path, x, m->in_dim, y, m->n_classes);
    const char *word = sk_certify_verdict_name(status ? SK_VERDICT_ERROR : rep.verdict);
    if (c->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", c->model);
        cJSON_AddStringToObject(j, "vnnlib", vnnlib);
        cJSON_AddStringToObject(j, "result", word);
        cJSON_AddStringToObject(j, "stage", rep.stage ? rep.stage : "");
        cli_json_num(j, "seconds", rep.seconds);
        cJSON_AddNumberToObject(j, "domains", (double)rep.domains);
        if (rep.verdict == SK_VERDICT_SAT && !status) {
            cJSON_AddNumberToObject(j, "disjunct", rep.disjunct);
            cJSON_AddItemToObject(j, "counterexample", cJSON_CreateFloatArray(x, m->in_dim));
            cJSON_AddItemToObject(j, "outputs", cJSON_CreateFloatArray(y, m->n_classes));
        }
        if (rep.verdict == SK_VERDICT_TIMEOUT || rep.verdict == SK_VERDICT_UNKNOWN) cli_json_num(j, "worst_bound", rep.worst_lb);
        cli_json_print(j);
    } else {
        printf("%s\n", word);
    }
    sk_free(x);
    sk_free(y);
    sk_certify_vnnlib_free(v);
    sk_model_free(m);
    return status;
}

/* ---------------- a benchmark's instances ---------------- */

/* Split a CSV line "a,b,c" (no quoting in VNN-COMP's files) in place. */
static int split_csv(char *line, char **f, int cap)
{
    int n = 0;
    char *s = line;
    line[strcspn(line, "\r\n")] = 0;
    while (n < cap) {
        f[n++] = s;
        char *comma = strchr(s, ',');
        if (!comma) break;
        *comma = 0;
        s = comma + 1;
    }
    return n;
}

static int verify_instances(const struct cli_common *c, const char *csv, const char *root, const char *out,
                            const char *cex_dir, const struct vopts *o)
{
    FILE *in = fopen(csv, "r");
    if (!in) return cli_fail("cannot open %s: %s", csv, strerror(errno));
    FILE *res = fopen(out, "w");
    if (!res) {
        fclose(in);
        return cli_fail("cannot write %s: %s", out, strerror(errno));
    }
    fprintf(res, "onnx,vnnlib,result,time_s,raw_result,prepare_s\n");
    char line[4096], cur_model[4096] = "";
    struct sk_model *m = NULL;
    int status = CLI_OK, line_no = 0, counts[5] = { 0 };
    double total = 0;
    double *times = NULL;
    int n_times = 0, cap_times = 0;
    while (fgets(line, sizeof line, in) && status == CLI_OK) {
        line_no++;
        char *f[4];
        if (line[0] == '\n' || line[0] == '\r' || line[0] == 0) continue;
        int nf = split_csv(line, f, 4);
        char *endp = NULL;
        double tmo = nf >= 3 ? strtod(f[2], &endp) : NAN;
        if (nf < 3 || !endp || *endp || !(tmo > 0)) {
            status = cli_fail("%s:%d: expected onnx,vnnlib,timeout (a timeout > 0 in seconds)", csv, line_no);
            break;
        }
        if (o->timeout > 0 && o->timeout < tmo) tmo = o->timeout;
        char mpath[4096], ppath[4096];
        if (snprintf(mpath, sizeof mpath, "%s/%s", root, f[0]) >= (int)sizeof mpath ||
            snprintf(ppath, sizeof ppath, "%s/%s", root, f[1]) >= (int)sizeof ppath) {
            status = cli_fail("%s:%d: a path under %s is longer than %zu bytes", csv, line_no, root, sizeof mpath - 1);
            break;
        }
        double t0 = sk_now();
        enum sk_certify_verdict verdict = SK_VERDICT_ERROR;
        if (!m || strcmp(cur_model, mpath)) {
            sk_model_free(m);
            struct cli_common cc = *c;
            cc.model = mpath;
            char *meta = NULL;
            m = cli_load_model(&cc, &meta);
            sk_free(meta);
            snprintf(cur_model, sizeof cur_model, "%s", m ? mpath : "");
        }
        struct sk_vnnlib *v = m ? sk_certify_vnnlib_read(ppath) : NULL;
        if (m && !v) fprintf(stderr, "skeptic verify: %s\n", sk_last_error());
        double prep = sk_now() - t0, secs = 0;
        struct sk_certify_verify_report rep = { .verdict = SK_VERDICT_ERROR, .stage = "" };
        float *x = m ? sk_malloc(sizeof(float) * (size_t)m->in_dim) : NULL;
        float *y = m ? sk_malloc(sizeof(float) * (size_t)m->n_classes) : NULL;
        if (m && v && x && y) {
            struct sk_certify_verify_config cfg = config_of(o, tmo);
            if (sk_certify_verify_vnnlib(m, v, &cfg, &rep, x, y))
                fprintf(stderr, "skeptic verify: %s: %s\n", ppath, sk_last_error());
            verdict = rep.verdict;
            secs = rep.seconds;
            if (verdict == SK_VERDICT_SAT && cex_dir) {
                char cp[4096], base_m[512], base_p[512];
                const char *bm = strrchr(f[0], '/'), *bp = strrchr(f[1], '/');
                bool fits = snprintf(base_m, sizeof base_m, "%s", bm ? bm + 1 : f[0]) < (int)sizeof base_m &&
                            snprintf(base_p, sizeof base_p, "%s", bp ? bp + 1 : f[1]) < (int)sizeof base_p;
                base_m[strcspn(base_m, ".")] = 0;
                char *dot = strrchr(base_p, '.');
                if (dot) *dot = 0;
                if (!fits ||
                    snprintf(cp, sizeof cp, "%s/%s_%s.counterexample", cex_dir, base_m, base_p) >= (int)sizeof cp)
                    status = cli_fail("%s:%d: the counterexample's file name under %s is too long", csv, line_no,
                                      cex_dir);
                else
                    status = write_cex(cp, x, m->in_dim, y, m->n_classes);
            }
        }
        sk_free(x);
        sk_free(y);
        sk_certify_vnnlib_free(v);
        const char *word = sk_certify_verdict_name(verdict);
        fprintf(res, "%s,%s,%s,%.3f,%s,%.3f\n", f[0], f[1], word, secs, word, prep);
        fflush(res);
        fprintf(stderr, "%-28s %-26s %-8s %7.2f s  %s, %ld subdomains\n", f[0], f[1], word, secs, rep.stage,
                rep.domains);
        counts[verdict]++;
        total += secs;
        if (verdict == SK_VERDICT_SAT || verdict == SK_VERDICT_UNSAT) {
            if (n_times == cap_times) {
                cap_times = cap_times ? 2 * cap_times : 64;
                double *t = realloc(times, sizeof(double) * (size_t)cap_times);
                if (!t) {
                    status = cli_fail("out of memory");
                    break;
                }
                times = t;
            }
            times[n_times++] = secs;
        }
    }
    sk_model_free(m);
    fclose(in);
    if (fclose(res) != 0 && !status) status = cli_fail("cannot write %s: %s", out, strerror(errno));
    if (!status) {
        for (int a = 1; a < n_times; a++)
            for (int b = a; b > 0 && times[b - 1] > times[b]; b--) {
                double t = times[b];
                times[b] = times[b - 1];
                times[b - 1] = t;
            }
        double med = n_times ? times[n_times / 2] : NAN;
        if (c->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "instances", csv);
            cJSON_AddStringToObject(j, "out", out);
            for (int k = 0; k < 5; k++)
                cJSON_AddNumberToObject(j, sk_certify_verdict_name((enum sk_certify_verdict)k), counts[k]);
            cli_json_num(j, "total_seconds", total);
            cli_json_num(j, "median_solved_seconds", med);
            cli_json_print(j);
        } else {
            printf("unsat %d  sat %d  timeout %d  unknown %d  error %d  (total %.1f s, median of the solved %.2f s)\n",
                   counts[0], counts[1], counts[2], counts[3], counts[4], total, med);
        }
    }
    free(times);
    return status;
}

int cmd_verify(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    const char *vnnlib = NULL, *cex = NULL, *instances = NULL, *root = NULL, *out = NULL, *cex_dir = NULL;
    const char *child_bounds = NULL;
    float timeout = 0;
    struct vopts o = { .pgd_restarts = -1, .pgd_steps = -1, .alpha_iters = -1, .inter_alpha_iters = -1, .bab_iters = -1,
                     .refine_layers = -1, .refine_domains = -1, .branch_decay = NAN, .seed = 1 };
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c),
        { "vnnlib", CLI_STR, &vnnlib, "FILE", "the property (VNN-LIB): input box and output constraints of a counterexample" },
        { "timeout", CLI_FLOAT, &timeout, "S", "wall-clock seconds for the instance (with --instances: at most S per row, "
          "else the row's own)" },
        { "cex", CLI_STR, &cex, "FILE", "write the counterexample of a sat verdict: ((X_0 v) ... (Y_9 v))" },
        { "instances", CLI_STR, &instances, "CSV", "run a benchmark: rows onnx,vnnlib,timeout_s (VNN-COMP's instances.csv)" },
        { "root", CLI_STR, &root, "DIR", "with --instances: the folder the CSV's paths are relative to (default: the CSV's)" },
        { "out", CLI_STR, &out, "CSV", "with --instances: results in VNN-COMP's columns onnx,vnnlib,result,time_s,raw_result,prepare_s" },
        { "cex-dir", CLI_STR, &cex_dir, "DIR", "with --instances: a counterexample file per sat instance" },
        { "pgd-restarts", CLI_INT, &o.pgd_restarts, "R", "margin PGD restarts per disjunct before bounding (default 5)" },
        { "pgd-steps", CLI_INT, &o.pgd_steps, "N", "PGD steps (default 100)" },
        { "alpha-iters", CLI_INT, &o.alpha_iters, "N", "alpha-CROWN steps on the whole box (default 50)" },
        { "inter-alpha-iters", CLI_INT, &o.inter_alpha_iters, "N", "alpha-CROWN steps on every layer's intermediate "
          "bounds over the whole box before branch and bound (default 10; 0: CROWN's)" },
        { "refine-layers", CLI_INT, &o.refine_layers, "N", "before branch and bound, tighten the intermediate bounds "
          "of the N relu layers after the first by branch and bound over the relus before them, as a MIP solver would "
          "(default 2; 0: none; chains only)" },
        { "refine-domains", CLI_INT, &o.refine_domains, "N", "subdomains per bound of each neuron so refined "
          "(default 100)" },
        { "bab-iters", CLI_INT, &o.bab_iters, "N", "alpha/beta steps per subdomain (default 20)" },
        { "batch", CLI_INT, &o.batch, "N", "subdomains split per round, bounded as one batch (default 64)" },
        { "child-bounds", CLI_STR, &child_bounds, "crown|intervals", "a subdomain's intermediate bounds after its "
          "newest split: re-bounded by CROWN with the split neurons fixed (default), or its parent's tightened by "
          "intervals alone (cheaper, much looser on deep nets)" },
        { "branch-decay", CLI_FLOAT, &o.branch_decay, "F", "divide a split's score by F^k for a relu of the k-th relu "
          "layer: earlier splits tighten every layer after them (default 8; 1: the BaBSR-style score alone)" },
        { "max-domain-mb", CLI_INT, &o.max_domain_mb, "MB", "memory of the subdomain queue (default 1024); full: unknown" },
        { "no-bab", CLI_FLAG, &o.no_bab, NULL, "stop after alpha-CROWN (incomplete: unknown instead of branching)" },
        { "sound-fp", CLI_FLAG, &o.sound_fp, NULL, "round every bound outward (a-priori error terms): unsat then holds "
          "for the real-number network, not only up to float32 rounding" },
        { "seed", CLI_U64, &o.seed, "S", "seed of the PGD starts (default 1)" },
        CLI_THREADS_OPT(c),
        CLI_JSON_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "verify",
        "skeptic verify --model NET --vnnlib PROP --timeout S [--cex FILE] [--json]\n"
        "       skeptic verify --instances instances.csv [--root DIR] --out results.csv [--timeout S]",
        "Decide a VNN-LIB property: is there an input in its box whose outputs meet its output constraints (a\n"
        "counterexample)? Prints exactly one of VNN-COMP's words: unsat (proved: no counterexample exists, so the\n"
        "property's negation, e.g. robustness, holds), sat (a counterexample, re-checked in the box by the model's own\n"
        "forward pass; --cex writes it), timeout, unknown (the search stopped without an answer: the subdomain queue\n"
        "is full, or --no-bab), error. Method: margin PGD with restarts, then CROWN and alpha-CROWN bounds, then branch\n"
        "and bound over relu splits with alpha/beta-CROWN bounds per subdomain, subdomains bounded in parallel.\n"
        "With --instances, every row of a benchmark in turn; the results CSV has the published columns.\n"
        "JSON keys (one instance): model, vnnlib, result, stage, seconds, domains, counterexample, outputs,\n"
        "worst_bound; (--instances): unsat, sat, timeout, unknown, error, total_seconds, median_solved_seconds.",
        "skeptic verify --model mnist-net_256x2.onnx --vnnlib prop_0_0.03.vnnlib --timeout 120\n"
        "skeptic verify --instances bench/instances.csv --out results.csv --cex-dir cex",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    /* one process: under mpirun the other ranks wait (docs/mpi.md) */
    if (cli_dist_sit_out("verify")) return CLI_OK;
    if (!(timeout >= 0) || !isfinite(timeout)) return cli_usage("--timeout S must be a number of seconds > 0");
    o.timeout = timeout;
    if (o.batch < 0 || o.max_domain_mb < 0) return cli_usage("--batch and --max-domain-mb must be > 0");
    if (o.refine_layers < -1 || o.refine_domains < -1) return cli_usage("--refine-layers and --refine-domains must be >= 0");
    if (child_bounds && strcmp(child_bounds, "crown") != 0 && strcmp(child_bounds, "intervals") != 0)
        return cli_usage("--child-bounds is crown or intervals, not '%s'", child_bounds);
    o.child_intervals = child_bounds && strcmp(child_bounds, "intervals") == 0;
    if (!isnan(o.branch_decay) && !(o.branch_decay >= 1))
        return cli_usage("--branch-decay F must be a number >= 1, not %g", (double)o.branch_decay);
    if (instances) {
        if (c.model || vnnlib || cex) return cli_usage("--instances runs the CSV's rows: no --model, --vnnlib or --cex");
        if (!out) return cli_usage("--out results.csv is required with --instances");
        char dir[4096];
        if (!root) {
            snprintf(dir, sizeof dir, "%s", instances);
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0;
            else snprintf(dir, sizeof dir, ".");
            root = dir;
        }
        const struct cli_path outs[] = { { "--out", out, false }, { NULL, NULL, false } };
        const struct cli_path ins[] = { { "--instances", instances, false }, { NULL, NULL, false } };
        if ((rc = cli_check_outputs(outs, ins))) return rc;
        /* before the first instance, not at the first sat one minutes later */
        struct stat sb;
        if (cex_dir && mkdir(cex_dir, 0777) != 0 && !(errno == EEXIST && stat(cex_dir, &sb) == 0 && S_ISDIR(sb.st_mode)))
            return cli_fail("--cex-dir %s: cannot make the folder: %s", cex_dir, strerror(errno == EEXIST ? ENOTDIR : errno));
        return verify_instances(&c, instances, root, out, cex_dir, &o);
    }
    if (!c.model) return cli_usage("--model FILE is required (or --instances CSV)");
    if (!vnnlib) return cli_usage("--vnnlib FILE is required");
    if (!(timeout > 0)) return cli_usage("--timeout S is required (seconds > 0)");
    const struct cli_path outs[] = { { "--cex", cex, false }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--model", c.model, false }, { "--vnnlib", vnnlib, false }, { NULL, NULL, false } };
    if ((rc = cli_check_outputs(outs, ins))) return rc;
    return verify_one(&c, vnnlib, cex, &o);
}
