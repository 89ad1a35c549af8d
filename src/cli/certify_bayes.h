/* skeptic certify on posterior files (certify_bayes.c), called by cmd_certify.c. */
#ifndef SK_CLI_CERTIFY_BAYES_H
#define SK_CLI_CERTIFY_BAYES_H

#include "cli/cli.h"
#include "skeptic/certify.h"

/* certify's flags that reach sk_certify_bayes's config */
struct cli_bayes_cert_opts {
    int method;          /* -1: the best bound the model admits */
    int samples;         /* --samples (0: the library's default) */
    uint64_t seed;       /* --seed */
    double confidence;   /* --confidence */
    bool sound_fp;       /* --sound-fp */
};

/* Load c->model as a posterior, certify c->data's rows at eps in the box of
 * --clip-min / --clip-max (NaN: the default box), print text or --json.
 * A CLI exit status. */
int cli_certify_bayes(const struct cli_common *c, const struct cli_bayes_cert_opts *o, float eps, float clip_min,
                      float clip_max);

#endif
