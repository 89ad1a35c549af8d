/* What a model was trained on: the record written into its file. */
#include <stdio.h>
#include <string.h>

#include "skeptic/model.h"

int sk_model_record_data(struct sk_model *m, const char *data, const char *classes, uint64_t data_seed,
                         float test_fraction, const struct sk_dataset *train, enum sk_prep_kind prep)
{
    struct sk_data_record *r = &m->data;
    memset(r, 0, sizeof *r);
    if (classes && strlen(classes) >= sizeof r->classes)
        return sk_error(SK_EINVAL, "the class list '%.40s...' is longer than %zu characters", classes,
                        sizeof r->classes - 1);
    if (classes) snprintf(r->classes, sizeof r->classes, "%s", classes);
    /* the effective values, so that a later request without them opens the same split */
    r->data_seed = data_seed ? data_seed : 1;
    r->test_fraction = test_fraction > 0 ? test_fraction : 0.2f;
    r->has_split = sk_data_split_by_seed(data);
    struct sk_preprocess *p = sk_preprocess_fit(train, prep);
    int rc = p ? sk_model_set_preprocess(m, p) : SK_ENOMEM;
    sk_preprocess_free(p);
    return rc ? rc : sk_model_set_range(m, train);
}
