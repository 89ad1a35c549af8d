/* `skeptic help TOPIC`: the conventions every command shares, from the
 * documentation (docs/model-files.md, docs/cli.md, include/skeptic/model.h).
 * A paragraph whose lines start with two spaces is printed as it stands
 * (grammars, examples); any other is wrapped at the terminal width. */
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name, *title, *text;
} topics[] = {
    { "specs", "Model specs: the grammar of --arch",
      "A model spec names a chain of layers; no whitespace.\n\n"
      "  spec   := \"mlp:\" dims [\":\" act] [\":dropout\" P]\n"
      "          | (\"cnn:\" | \"seq:\") input (\"-\" layer)*\n"
      "  dims   := D (\"-\" D)+                   e.g. 784-512-512-10\n"
      "  input  := D | C \"x\" H \"x\" W            e.g. 1x28x28\n"
      "  layer  := \"dense\" O | \"conv\" OC \"k\" K [\"s\" S] [\"p\" P]\n"
      "          | \"maxpool\" K [\"s\" S] | \"avgpool\" K [\"s\" S] | \"gap\"\n"
      "          | \"flatten\" | \"relu\" | \"lrelu\" [A] | \"tanh\" | \"sigmoid\"\n"
      "          | \"softplus\" | \"gelu\" | \"dropout\" P | \"bn\"\n"
      "  act    := relu | lrelu | tanh | sigmoid | softplus | gelu\n\n"
      "mlp:784-512-512-10:relu is Linear(784,512) ReLU Linear(512,512) ReLU Linear(512,10); with :dropout0.2 a "
      "Dropout follows every hidden activation. Pool stride defaults to the window. A dense layer after a spatial "
      "layer needs an explicit flatten, as in PyTorch. Layer i of the spec is element i of the equivalent torch "
      "nn.Sequential, so its tensors are named i.weight, i.bias (batch norm also i.running_mean, i.running_var). "
      "A malformed spec is refused naming the column of the offending character.\n\n"
      "Examples:\n\n"
      "  mlp:784-256-10:relu\n"
      "  mlp:784-400-400-10:relu:dropout0.2\n"
      "  cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-\n"
      "      dense128-relu-dense10            (one spec, broken here to fit)" },
    { "eps", "Units of eps: always the data's own",
      "A model trained with --normalize standardize (or minmax) keeps its data raw: the standardisation is the "
      "first layer of the network, differentiated through by attacks and bounded exactly by IBP and CROWN. So eps, "
      "step sizes, the valid input box, saved adversarial examples and certified radii are all in the units of the "
      "data you pass: pixels in [0, 1] for Fashion-MNIST, whatever the model does inside. --eps 0.1 is a "
      "perturbation of 0.1 in pixel intensity, inside the pixel box [0, 1].\n\n"
      "eps is printed as given (0.1, not 0.10000000149011612); the JSON key eps holds the value as given, "
      "eps_f32 the float the library used.\n\n"
      "The valid input box is [0, 1] per pixel for images. For tables it is per feature: attack and certify take "
      "the training range the model file records, widened to include the evaluated rows' own values; train --adv "
      "the training split's range. A note on stderr names the box. --clip-min/--clip-max set one box for every "
      "feature." },
    { "ood", "Out-of-distribution metrics: the convention",
      "eval --ood D and compare score every input by its uncertainty (1 - max probability, total predictive "
      "entropy, mutual information) and treat out-of-distribution inputs as the positive class: AUROC is the "
      "probability that a random OOD input scores higher than a random test input; AUPR is AUPR-Out (OOD "
      "positive); FPR@95%TPR is the fraction of in-distribution test inputs flagged when 95% of the OOD inputs "
      "are. The OOD data go through the model's own preprocessing like the test data.\n\n"
      "Misclassification detection uses the same convention with the misclassified test inputs as positives. In "
      "compare, the adversarial-detection AUROC is over the attacked rows the model classified correctly before "
      "the attack.\n\n"
      "Mutual information is the disagreement between a posterior's samples; a deterministic network has one "
      "sample, so its MI is 0 for every input and the MI metrics do not apply: tables print n/a, JSON null." },
    { "files", "Files: models, posteriors, checkpoints, data",
      "Models are safetensors files: tensor names and layouts of the PyTorch nn.Sequential with the same layers, "
      "__metadata__ holding the spec (skeptic.spec), the preprocessing, the input range, the class selection, the "
      "data, the seed, the training configuration and the final metrics. Files written by PyTorch load with "
      "--arch SPEC.\n\n"
      "A posterior file (train --method) holds the mean, MAP or first member under the plain names and the "
      "method's extra tensors under prefixes (rho., member3., sample7., laplace.).\n\n"
      "A checkpoint (train --checkpoint) is a model file that also holds the optimiser's moments and the "
      "position of the run; train --resume continues from it bit for bit. Every file is written atomically "
      "(temporary, fsync, rename): an interrupted write never destroys an existing file.\n\n"
      "--data takes fashion-mnist, mnist, moons, spirals, blobs[:k=3,...], a directory of IDX files, an IDX "
      "images file, FILE.csv (numeric features and one label column) or FILE.npy (labels from --labels or a "
      "companion _labels.npy). See docs/cli.md for every detail." },
    { "exit-codes", "Exit codes, output streams, colour",
      "  0    success\n"
      "  1    runtime failure: an unreadable file, a model that does not fit\n"
      "       the data, a diverging run\n"
      "  2    usage error: unknown command or option, bad value, missing flag\n"
      "  130  interrupted (Ctrl-C): train says where it stopped, what it wrote\n\n"
      "Results go to stdout; progress, notes, warnings and errors to stderr. With --json, stdout holds exactly "
      "one JSON object. The progress bar is drawn only when stderr is a terminal, and fits its width; piped or "
      "redirected, commands print whole lines only. Colour is used on terminals only, never when NO_COLOR is set "
      "or TERM is dumb. --quiet keeps results and errors only; --verbose adds detail. Long help pages go through "
      "$PAGER (less by default) on a terminal; PAGER=cat turns that off." },
};
#define N_TOPICS ((int)(sizeof topics / sizeof *topics))

static void print_topic(FILE *fp, int t, int width)
{
    fprintf(fp, "%s%s%s\n\n", cli_sgr(fp, CLI_STYLE_BOLD), topics[t].title, cli_sgr(fp, CLI_STYLE_OFF));
    const char *p = topics[t].text;
    while (*p) {
        const char *e = strstr(p, "\n\n");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char para[4096];
        snprintf(para, sizeof para, "%.*s", (int)(len < sizeof para ? len : sizeof para - 1), p);
        if (!strncmp(para, "  ", 2)) {
            fprintf(fp, "%s\n", para);
        } else {
            cli_wrap(fp, para, 0, 0, width);
            fputc('\n', fp);
        }
        if (!e) break;
        fputc('\n', fp);
        p = e + 2;
    }
}

int cli_help_topic(const char *topic, const char *const *commands)
{
    for (int t = 0; t < N_TOPICS; t++)
        if (!strcmp(topic, topics[t].name)) {
            FILE *pg = cli_pager_open();
            int w = cli_term_width(stdout);
            print_topic(pg ? pg : stdout, t, w > 100 ? 100 : w);
            cli_pager_close(pg);
            return CLI_OK;
        }
    const char *cands[64];
    int n = 0;
    for (int t = 0; t < N_TOPICS; t++) cands[n++] = topics[t].name;
    for (int i = 0; commands && commands[i] && n < 63; i++) cands[n++] = commands[i];
    const char *s = cli_suggest(topic, cands, n);
    char list[256];
    size_t o = 0;
    for (int t = 0; t < N_TOPICS; t++) o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", t ? ", " : "", topics[t].name);
    if (s) return cli_usage("no help topic '%s'; did you mean '%s'? (topics: %s; or a command)", topic, s, list);
    return cli_usage("no help topic '%s' (topics: %s; or a command)", topic, list);
}
