/* skeptic command line: git-style subcommands. Each command lives in
 * src/cli/cmd_NAME.c as `int cmd_NAME(int argc, char **argv)` and has one
 * line in the table below. Exit codes: 0 success, 1 runtime failure, 2 usage
 * error. */
#define _XOPEN_SOURCE 700 /* sigaction, SA_RESETHAND, SIGXFSZ */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_dist.h"
#include "skeptic/io.h"

int cmd_train(int argc, char **argv);
int cmd_certify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_curvature(int argc, char **argv);
int cmd_landscape(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_study(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    { "train", cmd_train, "train a classifier and save it as a safetensors file" },
    { "eval", cmd_eval, "accuracy, loss, per-class accuracy and confusion matrix of a model on data" },
    { "info", cmd_info, "architecture, parameter count and metadata of a model file" },
    { "data", cmd_data, "shape, classes, counts and value range of a dataset" },
    { "certify", cmd_certify, "certified accuracy: no perturbation within eps changes the prediction (ibp, crown, lipschitz)" },
    { "attack", cmd_attack, "adversarial attacks and robustness: fgsm, pgd, apgd, cw, deepfool, fmn, square, suite" },
    { "compare", cmd_compare, "deterministic vs Bayesian nets: accuracy, NLL, ECE, OOD and adversarial detection" },
    { "curvature", cmd_curvature, "Hessian spectrum, sharpness and generalization measures of a model: how flat is its minimum" },
    { "landscape", cmd_landscape, "loss along random or eigen directions, between two models, and the edge-of-stability plot of a training log" },
    { "verify", cmd_verify, "decide a VNN-LIB property: unsat (proved), sat (counterexample), timeout, unknown; or a benchmark's instances.csv" },
    { "sweep", cmd_sweep, "train a grid of configurations, measure each (gap, curvature, robustness, calibration under attack) and rank the measures (tau, Psi)" },
    { "study", cmd_study, "the seed's experiments, next checks and open questions on real data, as one resumable report: skeptic study seed --profile quick --out DIR" },
    { "export", cmd_export, "write a model as ONNX (or safetensors): skeptic export --model M --format onnx --out net.onnx" },
};
#define N_COMMANDS ((int)(sizeof commands / sizeof *commands))

/* The commands' names, NULL-terminated (for suggestions). */
static const char *const *command_names(void)
{
    static const char *names[N_COMMANDS + 1];
    for (int i = 0; i < N_COMMANDS; i++) names[i] = commands[i].name;
    return names;
}

static void usage(FILE *fp)
{
    fprintf(fp, "usage: skeptic <command> [options]    (skeptic <command> --help for details)\n\ncommands:\n");
    int w = cli_term_width(fp);
    for (int i = 0; i < N_COMMANDS; i++) {
        fprintf(fp, "  %-10s ", commands[i].name);
        cli_wrap(fp, commands[i].summary, 13, 13, w);
        fputc('\n', fp);
    }
    fprintf(fp, "\nhelp topics (skeptic help TOPIC):\n  specs      the architecture grammar of --arch\n"
                "  eps        units of eps, the input box\n  ood        out-of-distribution metrics: the convention\n"
                "  files      model, posterior and checkpoint files; data formats\n  exit-codes exit codes, output streams, colour\n");
    fprintf(fp, "\noptions:\n  --version  print the version\n  --help     this help\n"
                "\nexample:\n  skeptic train --data fashion-mnist --arch mlp:784-512-512-10:relu \\\n"
                "      --epochs 10 --out mlp.safetensors\n"
                "  skeptic eval --model mlp.safetensors --data fashion-mnist\n");
}

/* Ctrl-C, kill or a closed terminal during an atomic write: remove its
 * temporary file, then die of the signal as usual (the destination was never
 * touched). A file size limit (ulimit -f) is not a signal to die of: with
 * SIGXFSZ ignored the write fails with EFBIG and the command says so. */
static void on_fatal_signal(int sig)
{
    sk_io_remove_inflight();
    raise(sig); /* SA_RESETHAND: the default action now */
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

/* Under SKEPTIC_FAIL_ALLOC: whether the run met its failure, so that a test
 * tells a run past its last allocation from one that absorbed the failure. */
static void report_injected_failure(void)
{
    if (sk_alloc_fail_taken())
        fprintf(stderr, "skeptic: injected allocation failure %s taken\n", getenv("SKEPTIC_FAIL_ALLOC"));
}

int main(int argc, char **argv)
{
    { void sk_cli_coretype_reexec(int, char **); sk_cli_coretype_reexec(argc, argv); } /* first: src/cli/coretype.c */
    cli_dist_start(&argc, &argv); /* mpirun -np N: see cli_dist.h */
    install_signal_handlers();
    cli_term_install();
    const char *fail_alloc = getenv("SKEPTIC_FAIL_ALLOC"); /* tests: see sk_alloc_fail_after */
    if (fail_alloc && *fail_alloc) {
        sk_alloc_fail_after(strtol(fail_alloc, NULL, 10));
        atexit(report_injected_failure);
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("skeptic %s\n", SKEPTIC_VERSION);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            for (int i = 0; i < N_COMMANDS; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *args[] = { argv[2], "--help", NULL };
                    cli_command = commands[i].name;
                    return commands[i].run(2, args);
                }
            return cli_help_topic(argv[2], command_names());
        }
        usage(stdout);
        return CLI_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            cli_command = commands[i].name;
            return cli_dist_end(commands[i].run(argc - 1, argv + 1));
        }
    const char *s = cli_suggest(argv[1], command_names(), N_COMMANDS);
    if (s) {
        fprintf(stderr, "skeptic: %sunknown command%s '%s'; did you mean '%s'?\n", cli_sgr(stderr, CLI_STYLE_ERROR),
                cli_sgr(stderr, CLI_STYLE_OFF), argv[1], s);
        return CLI_USAGE;
    }
    fprintf(stderr, "skeptic: %sunknown command%s '%s'\n\n", cli_sgr(stderr, CLI_STYLE_ERROR), cli_sgr(stderr, CLI_STYLE_OFF),
            argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
