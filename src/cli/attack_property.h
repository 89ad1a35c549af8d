/* skeptic attack --property: a VNN-LIB property as the attack's threat model. */
#ifndef SK_CLI_ATTACK_PROPERTY_H
#define SK_CLI_ATTACK_PROPERTY_H

#include <stdint.h>

#include "cli/cli.h"

/* Search the box of the VNN-LIB file `property` for a point whose outputs
 * meet the file's constraints (sk_certify_falsify_vnnlib: restarts starts
 * per disjunct, steps each; 0: 5 and 100), on c's model. Prints
 * "violated" with the disjunct, the outputs and the margin, or "not
 * found" (c->json: one JSON line); save (may be NULL): the point as a
 * float32 .npy of shape [1, n_inputs]. Returns the exit status. */
int cli_attack_property(const struct cli_common *c, const char *property, int restarts, int steps, uint64_t seed,
                        const char *save);

#endif
