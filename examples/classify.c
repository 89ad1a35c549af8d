/* classify — a model file judged through libskeptic's public API only: classify
 * the test rows of a data set, then attack them with PGD and report what is left.
 *
 *   classify MODEL.safetensors DATA [EPS [CLIP_MIN CLIP_MAX]]
 *
 * DATA is anything sk_data_open accepts (fashion-mnist, moons, a CSV or .npy
 * file, ...); EPS the L-infinity budget (default 0.1) in the data's own units;
 * the attack stays in the box [CLIP_MIN, CLIP_MAX] (default [0, 1]). Prints
 *
 *   rows N
 *   accuracy A      clean accuracy of the argmax predictions
 *   robust R        accuracy under PGD-20 (seeded: the same figure every run)
 *
 * which are the figures `skeptic eval` (accuracy) and `skeptic attack --attack
 * pgd --steps 20` (robust_accuracy) give on the same file, data and box.
 * Build it against an installed libskeptic:
 *
 *   cc classify.c $(pkg-config --cflags --libs skeptic) -o classify
 *
 * Exit status 0, or 1 with the library's message on stderr, 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>

#include <skeptic/skeptic.h>

static int parse_float(const char *s, float *v)
{
    char *end;
    *v = strtof(s, &end);
    return end != s && *end == '\0';
}

int main(int argc, char **argv)
{
    float eps = 0.1f, lo = 0.0f, hi = 1.0f;
    if (argc != 3 && argc != 4 && argc != 6) {
        fprintf(stderr, "usage: %s MODEL.safetensors DATA [EPS [CLIP_MIN CLIP_MAX]]\n", argv[0]);
        return 2;
    }
    if ((argc >= 4 && !parse_float(argv[3], &eps)) ||
        (argc == 6 && (!parse_float(argv[4], &lo) || !parse_float(argv[5], &hi)))) {
        fprintf(stderr, "%s: EPS, CLIP_MIN and CLIP_MAX must be numbers\n", argv[0]);
        return 2;
    }

    /* The spec and the preprocessing come from the file: data stay raw. */
    struct sk_model *m = sk_model_load(argv[1], NULL, NULL);
    struct sk_dataset *d = m ? sk_data_open(argv[2], "test", NULL) : NULL;
    struct sk_classifier *c = d ? sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0) : NULL;
    int *pred = c ? malloc(sizeof(int) * (size_t)d->n) : NULL;
    struct sk_attack_result *r = NULL;
    int status = 1;
    if (c && !pred) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    if (!pred || sk_classifier_predict(c, d->x, d->n, pred) != SK_OK) goto fail;

    long correct = 0;
    for (int i = 0; i < d->n; i++) correct += pred[i] == d->y[i];

    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, eps);
    cfg.steps = 20;
    cfg.clip_min = lo;
    cfg.clip_max = hi;
    r = sk_attack_evaluate(c, &cfg, d->x, d->y, d->n);
    if (!r) goto fail;
    printf("rows %d\naccuracy %.6f\nrobust %.6f\n", d->n, (double)correct / d->n, r->robust_acc);
    for (int i = 0; i < r->n_warnings; i++) fprintf(stderr, "warning: %s\n", r->warnings[i]);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "error: %s\n", sk_last_error());
done:
    sk_attack_result_free(r);
    free(pred);
    sk_classifier_free(c);
    sk_dataset_free(d);
    sk_model_free(m);
    return status;
}
