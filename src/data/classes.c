/* Class names of the named data sets, through a model's class selection. */
#include "skeptic/data.h"

#include <stdlib.h>
#include <string.h>

const char *sk_data_class_name(const char *data, const char *classes, int k)
{
    static const char *const fashion[10] = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot" };
    static const char *const digits[10] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" };
    if (!data || k < 0) return NULL;
    const char *const *names = !strcmp(data, "fashion-mnist") ? fashion : !strcmp(data, "mnist") ? digits : NULL;
    if (!names) return NULL;
    int label = k;
    if (classes && *classes) { /* the k-th entry of the list "a,b,c" */
        const char *q = classes;
        for (int i = 0; i <= k; i++) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q || v < 0 || v > 9 || (*end && *end != ',')) return NULL;
            label = (int)v;
            if (i < k && !*end) return NULL;
            q = end + (*end == ',');
        }
    }
    return label < 10 ? names[label] : NULL;
}
