/* skeptic study seed: the seed study (sk_study_run, skeptic/study_seed.h)
 * on the command line: the plan and its estimated time (--dry-run), an
 * overall progress bar with ETA on a terminal, a line per finished step
 * otherwise, the report's paths at the end. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "skeptic/study_seed.h"

static const struct cli_field_flag study_flags[] = {
    { "study.out", "--out" }, { "study.only", "--only" }, { "study.cancer_csv", "--cancer-csv" }, { NULL, NULL },
};

struct live {
    struct cli_progress prog;
    double t0;
    double run_est;      /* estimated seconds of the steps this invocation ran to the end */
    int n_run;
    double step_t0;
    bool lines;
};

static void on_progress(void *ctx, const struct sk_study_progress *p)
{
    struct live *l = ctx;
    if (p->finished) {
        cli_progress_clear(&l->prog);
        if (!p->skipped) {
            l->run_est += p->step_est;
            l->n_run++;
        }
        if (l->lines) {
            char t[24];
            cli_fmt_time(t, sizeof t, sk_now() - l->step_t0);
            fprintf(stderr, "study: %d/%d %-5s %s%s\n", p->step + 1, p->n_steps, p->id,
                    p->skipped ? "finished earlier, kept" : "finished in ", p->skipped ? "" : t);
        }
        l->step_t0 = sk_now();
        return;
    }
    if (p->step_frac == 0 && !l->prog.drawn) l->step_t0 = sk_now();
    /* the ETA scales the estimates of what is left by how this machine has
     * kept to them so far (the estimates until there is a minute's evidence) */
    double done_now = l->run_est + p->step_frac * p->step_est;
    double el = sk_now() - l->t0;
    double rate = done_now > 30 && el > 5 ? el / done_now : 1;
    double left_est = p->total_est - p->done_est - p->step_frac * p->step_est;
    double frac = p->total_est > 0 ? (p->done_est + p->step_frac * p->step_est) / p->total_est : 0;
    char left[64], e0[160], e1[48], t[24];
    snprintf(left, sizeof left, "step %d/%d %s", p->step + 1, p->n_steps, p->id);
    cli_fmt_time(t, sizeof t, left_est * rate);
    snprintf(e1, sizeof e1, "ETA %s", t);
    snprintf(e0, sizeof e0, "%s", p->what ? p->what : "");
    const char *extra[] = { e1, e0 };
    cli_progress_draw(&l->prog, left, frac, extra, 2, false);
}

static int dry_run(const struct sk_study_config *cfg, bool json)
{
    struct sk_study_step_info st[SK_STUDY_MAX_STEPS];
    int n = 0;
    if (sk_study_plan(cfg, st, SK_STUDY_MAX_STEPS, &n)) return cli_usage_lib(study_flags);
    double total = 0, todo = 0;
    for (int i = 0; i < n; i++) {
        total += st[i].est_seconds;
        if (!st[i].done) todo += st[i].est_seconds;
    }
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "profile", sk_study_profile_name(cfg->profile));
        cJSON_AddStringToObject(j, "out", cfg->out);
        cJSON *a = cJSON_AddArrayToObject(j, "steps");
        for (int i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "id", st[i].id);
            cJSON_AddStringToObject(e, "title", st[i].title);
            cJSON_AddStringToObject(e, "what", st[i].what);
            cJSON_AddNumberToObject(e, "estimated_seconds", st[i].est_seconds);
            cJSON_AddBoolToObject(e, "done", st[i].done);
            cJSON_AddItemToArray(a, e);
        }
        cJSON_AddNumberToObject(j, "estimated_seconds", total);
        cJSON_AddNumberToObject(j, "estimated_seconds_left", todo);
        cli_json_print(j);
        return CLI_OK;
    }
    printf("plan of the %s profile into %s\n(times estimated for two cores, optimised build)\n\n",
           sk_study_profile_name(cfg->profile), cfg->out);
    int w = cli_term_width(stdout);
    for (int i = 0; i < n; i++) {
        char t[24];
        cli_fmt_time(t, sizeof t, st[i].est_seconds);
        char title[256];
        snprintf(title, sizeof title, "%s%s", st[i].title, st[i].done ? " (finished, kept)" : "");
        printf("  %-4s %8s  ", st[i].id, t);
        cli_wrap(stdout, title, 17, 17, w);
        printf("\n%17s", "");
        cli_wrap(stdout, st[i].what, 17, 17, w);
        printf("\n");
    }
    char t1[24], t2[24];
    cli_fmt_time(t1, sizeof t1, total);
    cli_fmt_time(t2, sizeof t2, todo);
    printf("\nestimated time: %s in all, %s for the steps not finished\n", t1, t2);
    return CLI_OK;
}

int cmd_study(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    const char *profile = "quick", *out = NULL, *only = NULL, *cancer = NULL;
    uint64_t seed = 1;
    bool dry = false, report_only = false;
    struct cli_opt opts[] = {
        { "profile", CLI_STR, &profile, "quick|full", "quick: subsets, minutes; full: real sizes, hours (default quick)" },
        { "out", CLI_STR, &out, "DIR", "output directory: report.html, report.json, models/, figures/, steps/, study.log" },
        { "seed", CLI_U64, &seed, "S", "seed of every stream (default 1)" },
        { "only", CLI_STR, &only, "LIST", "run (again) only these steps, e.g. exp2,oq2 (and unfinished steps they read)" },
        { "dry-run", CLI_FLAG, &dry, NULL, "print the plan and its estimated time, run nothing" },
        { "report-only", CLI_FLAG, &report_only, NULL, "write the report from the steps finished so far, run nothing "
          "(also while another process runs the study)" },
        { "cancer-csv", CLI_STR, &cancer, "FILE", "the breast-cancer table (default: python3-sklearn's copy)" },
        CLI_THREADS_OPT(c), CLI_JSON_OPT(c), { 0 } };
    static const struct cli_help h = {
        "study", "skeptic study seed --profile quick|full --out DIR [options]",
        "Run the seed's three experiments, three next checks and three open questions on real data and write "
        "DIR/report.html (one self-contained file, figures embedded) and DIR/report.json. Each step is saved as it "
        "finishes: run the same command again after an interruption and it goes on where it stopped, with the "
        "same numbers.",
        "skeptic study seed --profile quick --out study-quick\n"
        "  skeptic study seed --profile full --out study-full --dry-run" };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(argc, argv, &h, opts, pos, 1, &n_pos);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (n_pos != 1 || strcmp(pos[0], "seed"))
        return cli_usage("expected the study's name: skeptic study seed --profile quick|full --out DIR");
    int pk = sk_study_profile_parse(profile);
    if (pk < 0) {
        static const char *const choices[] = { "quick", "full" };
        return cli_bad_choice("--profile", profile, choices, 2);
    }
    if (!out) return cli_usage("--out DIR is required");
    struct sk_study_config cfg = sk_study_defaults((enum sk_study_profile)pk);
    cfg.out = out;
    cfg.only = only;
    cfg.seed = seed;
    cfg.cancer_csv = cancer;
    if (dry) return dry_run(&cfg, c.json);
    if (report_only) {
        if (sk_study_write_report(&cfg)) return cli_fail_lib_map(study_flags);
        if (c.json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "out", out);
            cli_json_print(j);
        } else {
            printf("report   %s/report.html\nnumbers  %s/report.json\n", out, out);
        }
        return CLI_OK;
    }
    char cmd[1200];
    int k = snprintf(cmd, sizeof cmd, "skeptic study seed --profile %s --seed %llu --out %s", profile,
                     (unsigned long long)seed, out);
    if (cancer && k > 0 && (size_t)k < sizeof cmd) snprintf(cmd + k, sizeof cmd - (size_t)k, " --cancer-csv %s", cancer);
    cfg.command = cmd;
    struct live l = { .t0 = sk_now() };
    cli_progress_init(&l.prog, 0);
    l.lines = cli_verbosity >= 0 && !c.json;
    l.step_t0 = l.t0;
    cfg.on_progress = on_progress;
    cfg.ctx = &l;
    rc = sk_study_run(&cfg);
    cli_progress_clear(&l.prog);
    if (rc) return rc == SK_EINVAL || rc == SK_ESTATE ? cli_usage_lib(study_flags) : cli_fail_lib_map(study_flags);
    double secs = sk_now() - l.t0;
    if (c.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "profile", profile);
        cJSON_AddStringToObject(j, "out", out);
        char p1[1100], p2[1100];
        snprintf(p1, sizeof p1, "%s/report.html", out);
        snprintf(p2, sizeof p2, "%s/report.json", out);
        cJSON_AddStringToObject(j, "report_html", p1);
        cJSON_AddStringToObject(j, "report_json", p2);
        cJSON_AddNumberToObject(j, "steps_run", l.n_run);
        cli_json_num(j, "seconds", secs);
        cli_json_print(j);
    } else {
        char t[24];
        cli_fmt_time(t, sizeof t, secs);
        printf("report   %s/report.html\nnumbers  %s/report.json\nsteps    %d run now, time %s\n", out, out, l.n_run, t);
    }
    return CLI_OK;
}
