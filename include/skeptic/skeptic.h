/* skeptic.h — how far to trust a neural network.
 *
 * libskeptic trains small networks (MLPs, CNNs) and puts them on trial:
 * adversarial attacks, Bayesian inference, uncertainty and calibration
 * metrics, certified bounds. This umbrella header includes every area:
 *
 *   core.h   status and errors, seeded random streams, arena, threads, sgemm
 *   graph.h  reverse-mode autodiff on a tape; the ops and losses
 *   model.h  sequential models from spec strings; the classifier seam; model files (model_file.h)
 *   optim.h  optimisers and schedules
 *   train.h  the training loop; checkpoints
 *   data.h   datasets and loaders (IDX, MNIST JSON, CSV, npy, synthetic), splits, preprocessing
 *   io.h     file formats (safetensors, npy, png) and atomic writes
 *   metrics.h accuracy, NLL, Brier, ECE and reliability, entropy, mutual information, detection AUROC
 *   attack.h adversarial attacks through the classifier seam, the suite, EOT verdicts
 *   bayes.h  Bayesian posteriors (VI, MC dropout, ensembles, SGLD, Laplace), their predictive
 *   certify.h certified bounds (IBP, CROWN, a proved Lipschitz bound)
 *   curvature.h the loss's Hessian spectrum (Lanczos, trace, density), sharpness and generalization measures
 *   robust.h adversarial and certified training
 *   study.h  the seed's experiments as library calls (compare: deterministic vs Bayesian)
 *
 * A worked example (train an MLP on two moons):
 *
 *   #include <skeptic/skeptic.h>
 *   struct sk_dataset *d = sk_data_moons(1000, 0.1f, 42);
 *   struct sk_model *m = sk_model_from_spec("mlp:2-32-32-2:relu");
 *   sk_model_init(m, SK_INIT_HE_UNIFORM, 42);
 *   struct sk_train_config cfg = sk_train_defaults();
 *   cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
 *   if (sk_train(m, &cfg, d->x, d->y, d->n)) fprintf(stderr, "%s\n", sk_last_error());
 *   double acc; sk_model_evaluate(m, d->x, d->y, d->n, &acc, NULL);
 *   sk_model_free(m); sk_dataset_free(d);
 */
#ifndef SKEPTIC_H
#define SKEPTIC_H

#include "skeptic/core.h"
#include "skeptic/data.h"
#include "skeptic/graph.h"
#include "skeptic/model.h"
#include "skeptic/optim.h"
#include "skeptic/train.h"
#include "skeptic/io.h"
#include "skeptic/figure.h"
#include "skeptic/metrics.h"
#include "skeptic/attack.h"
#include "skeptic/bayes.h"
#include "skeptic/certify.h"
#include "skeptic/curvature.h"
#include "skeptic/robust.h"
#include "skeptic/study.h"

#endif
