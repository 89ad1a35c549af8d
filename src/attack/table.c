/* The attack table: one row per attack kind (attack.h's enum order), the
 * only place that says which norms an attack supports, its defaults, its
 * family and the function that runs it on a chunk. Names, parsing, defaults
 * and the dispatcher (attack.c) read it; nothing else switches on the kind. */
#include "attack/internal.h"

#define LINF (1u << SK_NORM_LINF)
#define L2 (1u << SK_NORM_L2)
#define L0 (1u << SK_NORM_L0)

/* the suite (Croce & Hein 2020's AutoAttack, FMN added): the L2 suite has no square stage */
static const enum sk_attack_kind suite_stages[] = { SK_ATTACK_APGD_CE, SK_ATTACK_APGD_T, SK_ATTACK_FMN,
                                                    SK_ATTACK_SQUARE };

/* steps: fgsm 1, pgd 20, mifgsm 10, cw 100 per search step, deepfool 50, the rest 100.
 * Step size: pgd 2.5 eps / steps, mifgsm eps / steps, cw's Adam 0.01; apgd and fmn
 * schedule their own. p_init: square 0.8 of the pixels, sparse 0.3 of the k swapped. */
static const struct sk_attack_spec table[SK_ATTACK_COUNT] = {
    { SK_ATTACK_FGSM, "fgsm", NULL, LINF | L2, "linf or l2", SK_ATK_GRADIENT, 1, 0, 0, 0.8f, 2, 2, false, 0, NULL,
      sk_attack_run_fgsm },
    { SK_ATTACK_PGD, "pgd", "bim", LINF | L2, "linf or l2", SK_ATK_GRADIENT, 20, 2.5f, 0, 0.8f, 2, 2, false, 0, NULL,
      sk_attack_run_pgd },
    { SK_ATTACK_MIFGSM, "mifgsm", "mi-fgsm", LINF | L2, "linf or l2", SK_ATK_GRADIENT, 10, 1.0f, 0, 0.8f, 2, 2, false,
      0, NULL, sk_attack_run_mifgsm },
    { SK_ATTACK_APGD_CE, "apgd-ce", NULL, LINF | L2, "linf or l2", SK_ATK_GRADIENT, 100, 0, 0, 0.8f, 2, 2, false, 0,
      NULL, sk_attack_run_apgd_ce },
    { SK_ATTACK_APGD_DLR, "apgd-dlr", NULL, LINF | L2, "linf or l2", SK_ATK_GRADIENT, 100, 0, 0, 0.8f, 3, 4, false, 0,
      NULL, sk_attack_run_apgd_dlr },
    { SK_ATTACK_APGD_T, "apgd-t", NULL, LINF | L2, "linf or l2", SK_ATK_GRADIENT, 100, 0, 0, 0.8f, 4, 4, true, 0, NULL,
      sk_attack_run_apgd_t },
    { SK_ATTACK_CW, "cw", NULL, L2, "l2", SK_ATK_MINNORM, 100, 0, 0.01f, 0.8f, 2, 2, false, 0, NULL, sk_attack_run_cw },
    { SK_ATTACK_DEEPFOOL, "deepfool", NULL, L2, "l2", SK_ATK_MINNORM, 50, 0, 0, 0.8f, 2, 2, false, 0, NULL,
      sk_attack_run_deepfool },
    { SK_ATTACK_FMN, "fmn", NULL, LINF | L2, "linf or l2", SK_ATK_MINNORM, 100, 0, 0, 0.8f, 2, 2, false, 0, NULL,
      sk_attack_run_fmn },
    { SK_ATTACK_SQUARE, "square", NULL, LINF, "linf", SK_ATK_SEARCH, 100, 0, 0, 0.8f, 2, 2, false, 0, NULL,
      sk_attack_run_square },
    { SK_ATTACK_SPARSE, "sparse", NULL, L0, "l0 (eps = number of pixels)", SK_ATK_SEARCH, 100, 0, 0, 0.3f, 2, 2,
      false, 0, NULL, sk_attack_run_sparse },
    { SK_ATTACK_SUITE, "suite", NULL, LINF | L2, "linf or l2", SK_ATK_COMPOSITE, 100, 0, 0, 0.8f, 4, 4, true,
      (int)(sizeof suite_stages / sizeof *suite_stages), suite_stages, NULL },
};

const struct sk_attack_spec *sk_attack_spec(enum sk_attack_kind k)
{
    if ((unsigned)k >= SK_ATTACK_COUNT) return NULL;
    SK_ASSERT(table[k].kind == k); /* rows in the enum's order */
    return &table[k];
}

const char *sk_attack_name(enum sk_attack_kind k)
{
    const struct sk_attack_spec *s = sk_attack_spec(k);
    return s ? s->name : "?";
}

int sk_attack_parse(const char *s)
{
    for (int i = 0; s && i < SK_ATTACK_COUNT; i++)
        if (!strcmp(s, table[i].name)) return i;
    for (int i = 0; s && i < SK_ATTACK_COUNT; i++)
        if (table[i].alias && !strcmp(s, table[i].alias)) return i;
    return -1;
}

struct sk_attack_config sk_attack_defaults(enum sk_attack_kind kind, enum sk_norm norm, float eps)
{
    const struct sk_attack_spec *s = sk_attack_spec(kind);
    struct sk_attack_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.norm = norm;
    c.eps = eps;
    c.restarts = 1;
    c.n_target_classes = 9;
    c.momentum = 1.0f;
    c.queries = 5000;
    c.p_init = s ? s->p_init : 0.8f;
    c.cw_search_steps = 9;
    c.cw_c_init = 1e-2f;
    c.overshoot = 0.02f;
    c.batch = 256;
    c.clip_min = 0;
    c.clip_max = 1;
    c.audit = true;
    c.verdict_samples = SK_ATTACK_VERDICT_SAMPLES;
    return c;
}

void sk_attack_resolve(struct sk_attack_config *c, enum sk_attack_kind kind)
{
    const struct sk_attack_spec *s = sk_attack_spec(kind);
    SK_ASSERT(s);
    if (c->steps <= 0) c->steps = s->steps;
    if (c->step_size <= 0) {
        if (s->step_rel > 0) c->step_size = s->step_rel * c->eps / c->steps;
        else if (s->step_abs > 0) c->step_size = s->step_abs;
    }
    if (c->restarts < 1) c->restarts = 1;
    if (c->batch < 1) c->batch = 256;
    if (c->queries < 1) c->queries = 5000;
    if (c->p_init <= 0) c->p_init = s->p_init;
    if (c->cw_search_steps < 1) c->cw_search_steps = 9;
    if (c->cw_c_init <= 0) c->cw_c_init = 1e-2f;
    if (c->n_target_classes < 1) c->n_target_classes = 9;
    if (c->verdict_samples < 1) c->verdict_samples = SK_ATTACK_VERDICT_SAMPLES;
}
