/* Robust accuracy of posterior files (any method: deterministic, vi,
 * mc-dropout, ensemble, ...) under an EOT attack through the posterior
 * classifier seam: each attack gradient is the EOT gradient of the log of
 * the averaged probability over --eot samples; a point is robust when that
 * classifier (fresh samples) is still correct at the adversarial example.
 * `skeptic attack` reads plain model files only; this reads posteriors.
 * One JSON line per file and attack on stdout.
 *
 *   bayes_adv_eval [--data fashion-mnist] [--n 500] [--eps 0.1] [--eot 10]
 *                  [--attack pgd|apgd-ce|fgsm|...] [--steps 20] [--seed 0]
 *                  [--threads 1] FILE.safetensors...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/attack.h"
#include "skeptic/bayes.h"
#include "skeptic/skeptic.h"

int main(int argc, char **argv)
{
    const char *data = "fashion-mnist", *attack = "pgd";
    int n = 500, eot = 10, steps = 20, threads = 1;
    float eps = 0.1f;
    unsigned long long seed = 0;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--eps") && i + 1 < argc) eps = (float)atof(argv[++i]);
        else if (!strcmp(argv[i], "--eot") && i + 1 < argc) eot = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--attack") && i + 1 < argc) attack = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "bayes_adv_eval: unknown option %s\n", argv[i]);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    int kind = sk_attack_parse(attack);
    if (first >= argc || kind < 0 || n < 1 || eot < 1) {
        fprintf(stderr, "usage: bayes_adv_eval [--data D] [--n N] [--eps E] [--eot S] [--attack A] [--steps K] "
                        "[--seed S] [--threads T] FILE...\n");
        return 2;
    }
    sk_set_threads(threads);
    struct sk_data_options dopt = { 0 };
    struct sk_dataset *te = sk_data_open(data, "test", &dopt);
    if (!te) {
        fprintf(stderr, "bayes_adv_eval: %s\n", sk_last_error());
        return 1;
    }
    if (n > te->n) n = te->n;
    int status = 0;
    for (int f = first; f < argc; f++) {
        struct sk_posterior *p = sk_bayes_load(argv[f]);
        if (p && p->method == SK_BAYES_DETERMINISTIC && sk_model_has_dropout(p->model) && strstr(argv[f], "dropout"))
            p->method = SK_BAYES_MCDROPOUT; /* a plain file of a dropout net, named as such */
        struct sk_classifier *c = p ? sk_bayes_classifier(p, eot, seed + 7) : NULL;
        struct sk_attack_config ac = sk_attack_defaults((enum sk_attack_kind)kind, SK_NORM_LINF, eps);
        if (kind == SK_ATTACK_PGD) {
            ac.steps = steps;
            ac.random_start = true;
        }
        ac.seed = seed;
        double t0 = sk_now();
        struct sk_attack_result *r = c ? sk_attack_evaluate(c, &ac, te->x, te->y, n) : NULL;
        if (!r) {
            fprintf(stderr, "bayes_adv_eval: %s: %s\n", argv[f], sk_last_error());
            status = 1;
        } else {
            printf("{\"file\": \"%s\", \"method\": \"%s\", \"attack\": \"%s\", \"eps\": %g, \"n\": %d, \"eot\": %d, "
                   "\"clean_acc\": %.4f, \"robust_acc\": %.4f, \"seconds\": %.1f}\n",
                   argv[f], sk_bayes_method_name(p->method), r->attack, eps, n, r->eot_samples, r->clean_acc,
                   r->robust_acc, sk_now() - t0);
            fflush(stdout);
        }
        sk_attack_result_free(r);
        sk_classifier_free(c);
        sk_bayes_free(p);
    }
    sk_dataset_free(te);
    return status;
}
