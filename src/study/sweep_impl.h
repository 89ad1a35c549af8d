/* The sweep's state, shared by sweep.c (grid, rows file) and sweep_run.c
 * (one configuration: train and measure). */
#ifndef SKEPTIC_SWEEP_IMPL_H
#define SKEPTIC_SWEEP_IMPL_H

#include "skeptic/study.h"

struct sk_sweep {
    struct sk_sweep_config cfg;
    const struct sk_dataset *train, *test, *ood;
    long size;
    uint64_t *hash;         /* [size] configuration hashes */
    uint64_t measure_hash;  /* of the measurement settings */
    bool *done;             /* [size] */
};

/* FNV-1a 64 (the hash of model_file.h's weights hash) of n bytes, from h. */
#define SK_SWEEP_FNV0 0xcbf29ce484222325ull
uint64_t sk_sweep_fnv(uint64_t h, const void *p, size_t n);

#endif
