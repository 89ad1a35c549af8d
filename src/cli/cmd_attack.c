/* skeptic attack: adversarial attacks and robustness evaluation (library:
 * skeptic/attack.h). Prints clean and robust accuracy, success rate, norms,
 * cost, per-stage figures of the suite and the audits' warnings; optionally
 * the accuracy-versus-eps curve (CSV, PNG), the adversarial examples (.npy),
 * the clean input gradients (.npy) and a picture grid (PNG). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/eval_uncertainty.h"
#include "skeptic/attack.h"
#include "skeptic/bayes.h"

#define MAX_EPS 32

static int parse_eps_list(const char *s, float *eps, int *n)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0) || *n >= MAX_EPS)
            return cli_usage("--eps-list: expected up to %d comma-separated numbers >= 0, got '%s'", MAX_EPS, s);
        eps[(*n)++] = (float)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return cli_usage("--eps-list: unexpected '%c' in '%s'", *p, s);
    }
    if (!*n) return cli_usage("--eps-list is empty");
    for (int i = 1; i < *n; i++)
        if (eps[i] < eps[i - 1]) return cli_usage("--eps-list must be ascending ('%s')", s);
    return 0;
}

static void json_result(cJSON *o, const struct sk_attack_result *r)
{
    cJSON_AddStringToObject(o, "attack", r->attack);
    cJSON_AddStringToObject(o, "norm", sk_norm_name(r->norm));
    cli_json_num(o, "eps", r->eps);
    cJSON_AddNumberToObject(o, "n", r->n);
    cli_json_num(o, "clean_accuracy", r->clean_acc);
    cli_json_num(o, "robust_accuracy", r->robust_acc);
    cli_json_num(o, "success_rate", r->success_rate);
    cli_json_num(o, "mean_norm", r->mean_norm);
    cli_json_num(o, "median_norm", r->median_norm);
    cJSON_AddNumberToObject(o, "grad_evals", (double)r->grad_evals);
    cJSON_AddNumberToObject(o, "queries", (double)r->queries);
    cli_json_num(o, "seconds", r->seconds);
    cJSON_AddBoolToObject(o, "targeted", r->targeted);
    cJSON_AddBoolToObject(o, "stochastic", r->stochastic);
    cJSON_AddNumberToObject(o, "eot_samples", r->eot_samples);
    cJSON_AddBoolToObject(o, "no_eot", r->no_eot);
    cJSON_AddNumberToObject(o, "verdict_samples", r->verdict_samples);
    cli_json_num(o, "robust_accuracy_se", r->robust_acc_se);
    if (r->no_eot) cJSON_AddStringToObject(o, "label", "stochastic model, no EOT: optimistic robust accuracy");
    cJSON *st = cJSON_AddArrayToObject(o, "stages");
    for (int s = 0; s < r->n_stages; s++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "attack", r->stages[s].name);
        cJSON_AddNumberToObject(e, "attacked", r->stages[s].n_attacked);
        cJSON_AddNumberToObject(e, "broken", r->stages[s].n_broken);
        cli_json_num(e, "robust_accuracy", r->stages[s].robust_acc);
        cJSON_AddNumberToObject(e, "grad_evals", (double)r->stages[s].grad_evals);
        cJSON_AddNumberToObject(e, "queries", (double)r->stages[s].queries);
        cli_json_num(e, "seconds", r->stages[s].seconds);
        cJSON_AddItemToArray(st, e);
    }
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (int i = 0; i < r->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(r->warnings[i]));
}

int cmd_attack(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    const char *attack = "pgd", *norm = NULL, *eps_list = NULL, *targeted = NULL, *loss = NULL;
    const char *save_adv = NULL, *save_grad = NULL, *grid = NULL, *plot = NULL, *csv = NULL;
    float eps = NAN, step_size = 0, clip_min = NAN, clip_max = NAN;
    int steps = 0, restarts = 1, eot = 0, queries = 0, n_targets = 0, batch = 256, target = -1, grid_n = 8;
    int verdict = SK_ATTACK_VERDICT_SAMPLES;
    uint64_t seed = 0;
    bool random_start = false, mc = false;
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c),
        CLI_DATA_OPTS(c),
        { "attack", CLI_STR, &attack, "A",
          "fgsm | pgd | mifgsm | apgd-ce | apgd-dlr | apgd-t | cw | deepfool | fmn | square | sparse | suite (default pgd)" },
        { "norm", CLI_STR, &norm, "P", "linf | l2 | l0 (sparse: eps = pixels) (default linf; cw, deepfool: l2)" },
        { "eps", CLI_FLOAT, &eps, "E", "budget (required, except cw/deepfool/fmn: unbounded by default)" },
        { "eps-list", CLI_STR, &eps_list, "LIST", "accuracy versus eps, e.g. 0,0.02,0.05,0.1,0.2 (ascending)" },
        { "steps", CLI_INT, &steps, "S", "iterations (default: pgd 20, mifgsm 10, apgd/fmn 100, cw 100 per search step)" },
        { "restarts", CLI_INT, &restarts, "R", "restarts, run on the points still standing (default 1)" },
        { "step-size", CLI_FLOAT, &step_size, "A", "pgd (default 2.5 eps/steps), mifgsm (eps/steps), cw Adam lr (0.01)" },
        { "random-start", CLI_FLAG, &random_start, NULL, "pgd: start at a uniform point of the ball" },
        { "loss", CLI_STR, &loss, "L", "pgd/mifgsm loss: ce | cw | dlr (default ce)" },
        { "targeted", CLI_STR, &targeted, "T", "random | least-likely | given (with --target K)" },
        { "target", CLI_INT, &target, "K", "target class for every point (implies --targeted given)" },
        { "mc", CLI_FLAG, &mc, NULL, "attack the MC-dropout predictive (dropout on at test time)" },
        { "eot", CLI_INT, &eot, "K", "expectation over transformation: K dropout samples per call (with --mc)" },
        { "verdict-samples", CLI_INT, &verdict, "N",
          "stochastic model: predictive samples that judge each point (default 200; same for every stage)" },
        { "queries", CLI_INT, &queries, "Q", "square/sparse queries per point (default 5000)" },
        { "n-targets", CLI_INT, &n_targets, "K", "apgd-t: target classes tried (default 9)" },
        { "batch", CLI_INT, &batch, "B", "rows per model call (default 256)" },
        { "seed", CLI_U64, &seed, "S", "seed of random starts, targets and search (default 0)" },
        { "save-adv", CLI_STR, &save_adv, "FILE.npy", "write the adversarial examples (float32, N x C x H x W)" },
        { "save-grad", CLI_STR, &save_grad, "FILE.npy", "write the input gradient of the cross-entropy at the clean points" },
        { "grid", CLI_STR, &grid, "FILE.png", "picture: originals, perturbations (magnified), adversarial examples" },
        { "grid-n", CLI_INT, &grid_n, "N", "rows of the grid (default 8; successful examples first)" },
        { "plot", CLI_STR, &plot, "FILE.png", "with --eps-list: the accuracy-versus-eps plot" },
        { "csv", CLI_STR, &csv, "FILE", "with --eps-list: eps,robust_accuracy lines" },
        CLI_BOX_OPTS(clip_min, clip_max),
        CLI_THREADS_OPT(c),
        CLI_JSON_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "attack",
        "skeptic attack --model M --data D --attack A [--norm P] --eps E [options]",
        "Attack a model on the test split of D (the first --n points) and report clean accuracy, robust accuracy\n"
        "(correct at the adversarial example), attack success rate, mean and median norm of the successful\n"
        "perturbations, input gradients and forward rows spent, and wall time. Every example is projected onto the\n"
        "eps ball and the valid input box ([0,1] when the data lie in it, else their range, or --clip-min/--clip-max);\n"
        "each point keeps the best example found across iterations and restarts.\n"
        "--attack suite runs APGD-CE, APGD-T (targeted DLR), FMN and Square (linf) each on the points still\n"
        "standing: a point is robust only if it survives all. Audits print warnings: stochastic model without EOT,\n"
        "zero or non-finite input gradients, black-box beating white-box (gradient masking), outputs that look\n"
        "like probabilities, train-mode behaviour. With --mc and no --eot K the figure is labelled 'no EOT'.\n"
        "JSON keys: attack, norm, eps, n, clean_accuracy, robust_accuracy, success_rate, mean_norm, median_norm,\n"
        "grad_evals, queries, seconds, stochastic, eot_samples, no_eot, verdict_samples, robust_accuracy_se,\n"
        "stages, warnings, curve, box. With --mc the attacks run all their steps on every point and a point is\n"
        "broken only if the average of --verdict-samples predictive samples misclassifies it.",
        "skeptic attack --model mlp.safetensors --data fashion-mnist --n 1000 --attack pgd --eps 0.1 --steps 20\n"
        "skeptic attack --model mlp.safetensors --data fashion-mnist --n 1000 --attack suite --eps 0.1 --json\n"
        "skeptic attack --model mlp.safetensors --data fashion-mnist --n 1000 --eps-list 0,0.02,0.05,0.1,0.2 --plot eps.png\n"
        "skeptic attack --model mlp.safetensors --data fashion-mnist --attack deepfool --grid adv.png",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!c.model) return cli_usage("--model FILE is required");
    if (!c.data) return cli_usage("--data D is required");
    int kind = sk_attack_parse(attack);
    if (kind < 0) return cli_usage("--attack: unknown attack '%s' (see --help)", attack);
    int p;
    if (norm) {
        p = sk_norm_parse(norm);
        if (p < 0) return cli_usage("--norm: expected linf, l2 or l0, got '%s'", norm);
    } else {
        p = kind == SK_ATTACK_CW || kind == SK_ATTACK_DEEPFOOL ? SK_NORM_L2
            : kind == SK_ATTACK_SPARSE                         ? SK_NORM_L0
                                                               : SK_NORM_LINF;
    }
    bool minnorm = kind == SK_ATTACK_CW || kind == SK_ATTACK_DEEPFOOL || kind == SK_ATTACK_FMN;
    float epsv[MAX_EPS];
    int n_eps = 0;
    if (eps_list && (rc = parse_eps_list(eps_list, epsv, &n_eps))) return rc;
    if (!eps_list && isnan(eps)) {
        if (!minnorm) return cli_usage("--eps E is required for --attack %s (or give --eps-list)", attack);
        eps = INFINITY;
    }
    if (!eps_list && !(eps >= 0)) return cli_usage("--eps must be >= 0 (got %g)", eps);
    if ((plot || csv) && !eps_list) return cli_usage("--plot and --csv need --eps-list");
    if (steps < 0 || restarts < 1 || batch < 1 || eot < 0 || queries < 0 || grid_n < 1 || verdict < 1)
        return cli_usage("--steps, --restarts, --batch, --eot, --queries, --verdict-samples and --grid-n must be positive");
    struct sk_attack_config cfg = sk_attack_defaults((enum sk_attack_kind)kind, (enum sk_norm)p, eps);
    cfg.steps = steps;
    cfg.restarts = restarts;
    cfg.step_size = step_size;
    cfg.random_start = random_start;
    cfg.batch = batch;
    cfg.seed = seed;
    cfg.verdict_samples = verdict;
    if (queries) cfg.queries = queries;
    if (n_targets) cfg.n_target_classes = n_targets;
    if (loss) {
        if (!strcmp(loss, "ce")) cfg.loss = SK_LOSS_CE;
        else if (!strcmp(loss, "cw")) cfg.loss = SK_LOSS_CW;
        else if (!strcmp(loss, "dlr")) cfg.loss = SK_LOSS_DLR;
        else return cli_usage("--loss: expected ce, cw or dlr, got '%s'", loss);
    }
    if (target >= 0 && !targeted) targeted = "given";
    if (targeted) {
        if (!strcmp(targeted, "random")) cfg.target = SK_TARGET_RANDOM;
        else if (!strcmp(targeted, "least-likely") || !strcmp(targeted, "ll")) cfg.target = SK_TARGET_LEAST_LIKELY;
        else if (!strcmp(targeted, "given")) {
            if (target < 0) return cli_usage("--targeted given needs --target K");
            cfg.target = SK_TARGET_GIVEN;
        } else
            return cli_usage("--targeted: expected random, least-likely or given, got '%s'", targeted);
    }
    if (c.threads) sk_set_threads(c.threads);

    char *meta = NULL;
    /* a posterior file (or one with a temperature) is attacked through its
     * predictive, like eval and compare judge it; a plain file as a network */
    struct sk_posterior *post = NULL;
    struct sk_model *m = NULL;
    if (cli_is_posterior_file(c.model)) {
        if (!(post = sk_posterior_load(c.model))) return cli_fail_lib();
        m = post->model;
    } else if (!(m = cli_load_model(&c, &meta))) {
        return CLI_FAIL;
    }
    struct sk_dataset *d = cli_load_eval_data(&c, m, meta);
    struct sk_classifier *cl = NULL;
    struct sk_attack_result *r = NULL, **rs = NULL;
    int *tg = NULL;
    float *gx = NULL;
    int status = CLI_FAIL;
    if (!d) goto out;
    if (d->n < 1) {
        status = cli_fail("%s: no rows to attack", c.data);
        goto out;
    }
    if (target >= m->n_classes) {
        status = cli_usage("--target %d: the model has %d classes", target, m->n_classes);
        goto out;
    }
    if (post && mc) {
        status = cli_usage("--mc: %s holds a %s posterior, attacked through its own predictive (--eot K samples per "
                           "call); --mc is for plain files with dropout", c.model, sk_bayes_method_name(post->method));
        goto out;
    }
    if (mc && !sk_model_has_dropout(m)) {
        status = cli_usage("--mc: the model has no dropout layer, it is deterministic");
        goto out;
    }
    int brc = cli_input_box("attack", c.data, d, clip_min, clip_max, false, &cfg.clip_min, &cfg.clip_max);
    if (brc) {
        status = brc;
        goto out;
    }
    if (post) {
        /* ensembles and SGLD: every member unless --eot K; vi / laplace: K samples per call (default 1: no EOT) */
        bool stoch = post->method == SK_BAYES_VI || post->method == SK_BAYES_LAPLACE || post->method == SK_BAYES_MCDROPOUT;
        cl = sk_posterior_classifier(post, eot ? eot : (stoch ? 1 : 0), seed);
        if (cl)
            fprintf(stderr, "skeptic attack: %s is a %s posterior: attacking its predictive over %d sample(s) per call, "
                    "temperature %g applied\n", c.model, sk_bayes_method_name(post->method), cl->n_samples,
                    post->temperature);
    } else {
        if (eot && !mc)
            fprintf(stderr, "skeptic attack: note: --eot without --mc: the model runs deterministic (eval mode); --eot ignored\n");
        cl = sk_classifier_from_model(m, mc ? SK_MODE_MC : SK_MODE_EVAL, mc ? (eot ? eot : 1) : 1, seed);
    }
    if (!cl) {
        status = cli_fail_lib();
        goto out;
    }
    /* image shape for square/sparse and pictures: the data's (an MLP sees a vector) */
    if (d->c * d->h * d->w == m->in_dim) {
        cfg.img_c = d->c;
        cfg.img_h = d->h;
        cfg.img_w = d->w;
    }
    if (cfg.target == SK_TARGET_GIVEN) {
        tg = sk_malloc(sizeof(int) * (size_t)d->n);
        if (!tg) {
            status = cli_fail_lib();
            goto out;
        }
        for (int i = 0; i < d->n; i++) tg[i] = target;
        cfg.targets = tg;
    }
    double curve[MAX_EPS];
    if (eps_list) {
        rs = sk_calloc((size_t)n_eps, sizeof *rs);
        if (!rs || sk_attack_curve(cl, &cfg, epsv, n_eps, d->x, d->y, d->n, curve, rs)) {
            status = cli_fail_lib();
            goto out;
        }
        r = rs[n_eps - 1];
    } else {
        r = sk_attack_evaluate(cl, &cfg, d->x, d->y, d->n);
        if (!r) {
            status = cli_fail_lib();
            goto out;
        }
    }
    for (int i = 0; i < r->n_warnings && !c.json; i++) fprintf(stderr, "warning: %s\n", r->warnings[i]);
    if (c.json)
        for (int i = 0; i < r->n_warnings; i++) fprintf(stderr, "skeptic attack: warning: %s\n", r->warnings[i]);
    if (csv) {
        size_t cap = 64 + 48 * (size_t)n_eps, o = 0;
        char *buf = sk_malloc(cap);
        if (!buf) {
            status = cli_fail_lib();
            goto out;
        }
        o += (size_t)snprintf(buf + o, cap - o, "eps,robust_accuracy\n");
        for (int e = 0; e < n_eps; e++) o += (size_t)snprintf(buf + o, cap - o, "%g,%.6f\n", epsv[e], curve[e]);
        const void *parts[1] = { buf };
        size_t lens[1] = { o };
        int wrc = sk_write_file_atomic(csv, parts, lens, 1);
        sk_free(buf);
        if (wrc) {
            status = cli_fail_lib();
            goto out;
        }
    }
    if (plot) {
        char title[96];
        snprintf(title, sizeof title, "%s %s%s", sk_attack_name(cfg.kind), sk_norm_name(cfg.norm),
                 r->no_eot ? " NO EOT" : "");
        const char *names[1] = { title };
        if (sk_attack_plot_curve(plot, title, epsv, n_eps, curve, 1, names)) {
            status = cli_fail_lib();
            goto out;
        }
    }
    int C = cfg.img_c ? cfg.img_c : m->in_c, H = cfg.img_c ? cfg.img_h : m->in_h, W = cfg.img_c ? cfg.img_w : m->in_w;
    if (save_adv && sk_attack_save_npy(save_adv, r->x_adv, r->n, C, H, W)) {
        status = cli_fail_lib();
        goto out;
    }
    if (save_grad) {
        gx = sk_malloc(sizeof(float) * (size_t)d->n * m->in_dim);
        int B = batch;
        for (int s = 0; gx && s < d->n; s += B) {
            int nb = d->n - s < B ? d->n - s : B;
            if (cl->input_grad(cl->self, d->x + (size_t)s * m->in_dim, nb, sk_logp_loss_ce, d->y + s, NULL, NULL,
                               gx + (size_t)s * m->in_dim)) {
                status = cli_fail_lib();
                goto out;
            }
        }
        if (!gx || sk_attack_save_npy(save_grad, gx, d->n, C, H, W)) {
            status = cli_fail_lib();
            goto out;
        }
    }
    if (grid) {
        if (C != 1 && C != 3) {
            status = cli_fail("--grid: images need 1 or 3 channels (the data has %d)", C);
            goto out;
        }
        int *idx = sk_malloc(sizeof(int) * (size_t)d->n), k = 0;
        if (!idx) {
            status = cli_fail_lib();
            goto out;
        }
        for (int i = 0; i < d->n && k < grid_n; i++)
            if (r->success[i]) idx[k++] = i;
        for (int i = 0; i < d->n && k < grid_n; i++)
            if (!r->success[i]) idx[k++] = i;
        int grc = sk_attack_grid_png(grid, d->x, r->x_adv, d->y, r->pred_adv, idx, k, C, H, W);
        sk_free(idx);
        if (grc) {
            status = cli_fail_lib();
            goto out;
        }
    }
    if (c.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", c.model);
        cJSON_AddStringToObject(o, "data", c.data);
        json_result(o, r);
        cJSON *bx = cJSON_AddArrayToObject(o, "box");
        cJSON_AddItemToArray(bx, cJSON_CreateNumber(cfg.clip_min));
        cJSON_AddItemToArray(bx, cJSON_CreateNumber(cfg.clip_max));
        if (eps_list) {
            cJSON *cv = cJSON_AddObjectToObject(o, "curve");
            cJSON *ea = cJSON_AddArrayToObject(cv, "eps"), *aa = cJSON_AddArrayToObject(cv, "robust_accuracy");
            for (int e = 0; e < n_eps; e++) {
                cJSON_AddItemToArray(ea, cJSON_CreateNumber(epsv[e]));
                cJSON_AddItemToArray(aa, cJSON_CreateNumber(curve[e]));
            }
        }
        cli_json_print(o);
    } else {
        char buf[4096];
        if (eps_list) {
            printf("accuracy versus eps (%s, %s%s), %d points\n  eps        robust accuracy\n", r->attack,
                   sk_norm_name(r->norm), r->no_eot ? ", stochastic model, no EOT" : "", r->n);
            for (int e = 0; e < n_eps; e++) printf("  %-9g  %.4f\n", epsv[e], curve[e]);
            printf("\nat the largest eps:\n");
        }
        sk_attack_summary(r, buf, sizeof buf);
        /* warnings were printed on stderr already */
        char *w = strstr(buf, "warning: ");
        if (w) *w = 0;
        fputs(buf, stdout);
        if (save_adv) printf("adversarial examples written to %s\n", save_adv);
        if (grid) printf("grid written to %s\n", grid);
        if (plot) printf("plot written to %s\n", plot);
    }
    status = CLI_OK;
out:
    if (rs) {
        for (int e = 0; e < n_eps; e++) sk_attack_result_free(rs[e]);
        sk_free(rs);
    } else {
        sk_attack_result_free(r);
    }
    sk_free(tg);
    sk_free(gx);
    sk_classifier_free(cl);
    sk_free(meta);
    sk_dataset_free(d);
    if (post)
        sk_posterior_free(post);
    else
        sk_model_free(m);
    return status;
}
