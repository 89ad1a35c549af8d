/* Sweeps (study.h): Kendall's tau-b and Psi against hand-worked values; the
 * grid's points and its checks; a 4-configuration sweep on synthetic data
 * run twice gives the same rows bit for bit (trained afresh, and loaded from
 * its model directory); a sweep killed with SIGKILL after its first row and
 * restarted ends with the rows of an uninterrupted run; a torn last line is
 * cut on resume; bad grids are refused naming the flag (or file and line)
 * and the value. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static void test_tau(void)
{
    double a[5] = { 1, 2, 3, 4, 5 }, b[5] = { 3, 4, 1, 2, 5 };
    /* 6 concordant, 4 discordant pairs of 10 */
    CHECK(fabs(sk_stat_kendall_tau_b(a, b, 5) - 0.2) < 1e-15, "tau %g", sk_stat_kendall_tau_b(a, b, 5));
    /* ties: C 3, D 1, one pair tied in a, one in b: (3 - 1) / sqrt(5 * 5) */
    double c[4] = { 1, 2, 2, 3 }, d[4] = { 1, 3, 2, 2 };
    CHECK(fabs(sk_stat_kendall_tau_b(c, d, 4) - 0.4) < 1e-15, "tau-b with ties %g", sk_stat_kendall_tau_b(c, d, 4));
    double e[4] = { 4, 3, 2, 1 };
    /* against a reversal: 5 discordant pairs, one tied in c: -5 / sqrt(5 * 6) */
    CHECK(fabs(sk_stat_kendall_tau_b(c, e, 4) + 5.0 / sqrt(30)) < 1e-15, "reversed with a tie %.17g",
          sk_stat_kendall_tau_b(c, e, 4));
    double k[3] = { 2, 2, 2 };
    CHECK(isnan(sk_stat_kendall_tau_b(k, a, 3)), "a constant side has no tau");
    double n[5] = { 1, NAN, 3, 4, 5 };
    /* the NaN row drops out: rows 0,2,3,4 (a 1,3,4,5; b 3,1,2,5): C 4, D 2 */
    CHECK(fabs(sk_stat_kendall_tau_b(n, b, 5) - 1.0 / 3) < 1e-15, "NaN rows are left out: %g", sk_stat_kendall_tau_b(n, b, 5));
}

static void test_psi(void)
{
    /* depth {1,2} x width {a,b,c}: along depth every group agrees (tau 1);
     * along width each depth has tau 1/3; Psi = (1 + 1/3) / 2 */
    double m[6] = { 1, 2, 3, 4, 5, 6 }, t[6] = { 1, 3, 2, 4, 6, 5 };
    int key[12] = { 0, 0, 0, 1, 0, 2, 1, 0, 1, 1, 1, 2 };
    double ma[2];
    double psi = sk_stat_psi(m, t, 6, key, 2, ma);
    CHECK(fabs(ma[0] - 1) < 1e-15 && fabs(ma[1] - 1.0 / 3) < 1e-15, "m_depth %g m_width %g", ma[0], ma[1]);
    CHECK(fabs(psi - 2.0 / 3) < 1e-15, "psi %.17g", psi);
    CHECK(fabs(sk_stat_kendall_tau_b(m, t, 6) - 11.0 / 15) < 1e-15, "overall tau %g", sk_stat_kendall_tau_b(m, t, 6));
    /* an axis whose every other-axis combination is unique has no groups of
     * two: left out of the mean (here axis 0, all rows in one group of axis 1) */
    int key1[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    for (int i = 0; i < 6; i++) key1[2 * i + 1] = i;
    psi = sk_stat_psi(m, t, 6, key1, 2, ma);
    CHECK(fabs(psi - 11.0 / 15) < 1e-15 && isnan(ma[0]), "psi over one axis = its tau: %g (%g)", psi, ma[0]);
}

static void test_grid(void)
{
    struct sk_sweep_config c = sk_sweep_defaults();
    CHECK(sk_sweep_grid_set(&c.grid, SK_SWEEP_DEPTH, "1,2,3,4") == SK_OK, "%s", sk_last_error());
    CHECK(sk_sweep_grid_set(&c.grid, SK_SWEEP_OPTIMIZER, "sgd,adam,sam") == SK_OK, "%s", sk_last_error());
    CHECK(sk_sweep_grid_size(&c.grid) == 12, "size %ld", sk_sweep_grid_size(&c.grid));
    struct sk_sweep_point p;
    /* the first axis varies slowest: 4 = depth 2, optimizer adam */
    CHECK(sk_sweep_point(&c.grid, 4, &p) == SK_OK && p.depth == 2 && !strcmp(p.optimizer, "adam") &&
              p.lr == 1e-3f,
          "point 4: depth %d %s lr %g", p.depth, p.optimizer, p.lr);
    CHECK(sk_sweep_point(&c.grid, 11, &p) == SK_OK && p.depth == 4 && !strcmp(p.optimizer, "sam") && p.lr == 0.01f,
          "point 11: depth %d %s lr %g", p.depth, p.optimizer, p.lr);
    CHECK(sk_sweep_point(&c.grid, 12, &p) == SK_EINVAL, "outside the grid");
    const struct { enum sk_sweep_axis a; const char *list, *want; } bad[] = {
        { SK_SWEEP_DEPTH, "1,x", "sweep.depth value 'x'" },   { SK_SWEEP_WIDTH, "0", "sweep.width value '0'" },
        { SK_SWEEP_BATCH, "32,,64", "empty value" },          { SK_SWEEP_LR, "-1", "sweep.lr value '-1'" },
        { SK_SWEEP_OPTIMIZER, "adma", "sweep.optimizer value 'adma'" }, { SK_SWEEP_BAYES, "mc", "sweep.bayes value 'mc'" },
        { SK_SWEEP_ADV, "pgdd", "sweep.adv value 'pgdd'" },    { SK_SWEEP_SEED, "1,1", "given twice" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct sk_sweep_grid g = c.grid;
        CHECK(sk_sweep_grid_set(&g, bad[i].a, bad[i].list) == SK_EINVAL && strstr(sk_last_error(), bad[i].want),
              "'%s': %s", bad[i].list, sk_last_error());
        CHECK(g.n[SK_SWEEP_DEPTH] == 4, "a refused list leaves the grid as it was");
    }
}

/* The rows file as text. */
static void slurp(const char *name, char *buf, size_t cap)
{
    sk_test_slurp(sk_test_path(name), buf, cap);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#define SWEEP "sweep --data blobs:n=600,k=4,dim=8 --depth 1,2 --width 16,32 --epochs 4 --n-adv 40 --n-suite 16 " \
              "--n-curv 64 --n-test 200 --clip-min -10 --clip-max 10 --eps 0.5 --cert-eps 0.05 --threads 1"

static char ref[1 << 16], got[1 << 16];

static void test_sweep_twice(void)
{
    CHECK(sk_cli_run(SWEEP " --out a.jsonl --models none") == 0, "%s", sk_cli_err);
    CHECK(strstr(sk_cli_out, "Psi") && strstr(sk_cli_out, "lambda_max"), "the table is printed: %.300s", sk_cli_out);
    slurp("a.jsonl", ref, sizeof ref);
    CHECK(count_lines(ref) == 4, "4 rows (%d)", count_lines(ref));
    CHECK(strstr(ref, "\"pgd_ece\":") && strstr(ref, "\"lambda_max\":") && strstr(ref, "\"ibp_cert_acc\":") &&
              strstr(ref, "\"weights_hash\":\"") && strstr(ref, "\"suite_acc\":0") && strstr(ref, "\"gap_err\":"),
          "row fields: %.400s", ref);
    CHECK(sk_cli_run(SWEEP " --out b.jsonl") == 0, "%s", sk_cli_err);
    slurp("b.jsonl", got, sizeof got);
    CHECK(!strcmp(ref, got), "a second run has the same rows:\n%.600s\n%.600s", ref, got);
    /* the same rows from the saved models (b.models) */
    CHECK(sk_cli_run(SWEEP " --out c.jsonl --models b.models") == 0, "%s", sk_cli_err);
    slurp("c.jsonl", got, sizeof got);
    CHECK(!strcmp(ref, got), "rows of loaded models are the same:\n%.600s\n%.600s", ref, got);
    /* a finished sweep runs nothing; --dry-run says so */
    CHECK(sk_cli_run(SWEEP " --out b.jsonl --dry-run") == 0 && strstr(sk_cli_out, "4 finished, 0 to run"), "%s%s",
          sk_cli_out, sk_cli_err);
    CHECK(sk_cli_run(SWEEP " --out b.jsonl --dry-run --json") == 0, "%s", sk_cli_err);
    cJSON *j = sk_cli_json();
    CHECK(j && sk_json_num(j, "configurations") == 4 && sk_json_num(j, "to_run") == 0 &&
              sk_json_num(j, "estimated_seconds") == 0,
          "dry-run JSON: %s", sk_cli_out);
    cJSON_Delete(j);
    /* --summarize on the file: the JSON has tau and Psi per measure and target */
    CHECK(sk_cli_run("sweep --summarize a.jsonl --json") == 0, "%s", sk_cli_err);
    j = sk_cli_json();
    const cJSON *ms = j ? cJSON_GetObjectItemCaseSensitive(j, "measures") : NULL;
    const cJSON *lm = ms ? cJSON_GetObjectItemCaseSensitive(ms, "lambda_max") : NULL;
    const cJSON *g = lm ? cJSON_GetObjectItemCaseSensitive(lm, "gap_err") : NULL;
    CHECK(g && cJSON_GetObjectItemCaseSensitive(g, "tau") && cJSON_GetObjectItemCaseSensitive(g, "psi") &&
              sk_json_num(j, "n_rows") == 4,
          "summary JSON: %.300s", sk_cli_out);
    cJSON_Delete(j);
}

static void test_kill_resume(void)
{
    /* slower configurations, so that the kill lands while later ones run */
    const char *args = SWEEP " --epochs 30 --out k.jsonl";
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && (SKEPTIC_NO_PROGRESS=1 '%s' %s > /dev/null 2>&1 & pid=$!; "
             "while [ ! -s k.jsonl ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done; kill -9 $pid; wait $pid) "
             "2>/dev/null",
             sk_test_tmpdir(), sk_cli_bin(), args);
    int st = system(cmd);
    (void)st;
    slurp("k.jsonl", got, sizeof got);
    int killed_rows = count_lines(got);
    CHECK(killed_rows >= 1 && killed_rows < 4, "killed after its first row (%d rows)", killed_rows);
    /* a torn line, as a kill during a write of another writer would leave */
    FILE *f = fopen(sk_test_path("k.jsonl"), "a");
    fputs("{\"index\":3,\"config_ha", f);
    fclose(f);
    char resume[4096];
    snprintf(resume, sizeof resume, "%s", args);
    CHECK(sk_cli_run(resume) == 0, "resume: %s", sk_cli_err);
    slurp("k.jsonl", got, sizeof got);
    CHECK(sk_cli_run(SWEEP " --epochs 30 --out full.jsonl --models none") == 0, "%s", sk_cli_err);
    slurp("full.jsonl", ref, sizeof ref);
    CHECK(count_lines(got) == 4 && !strcmp(ref, got), "killed and resumed = uninterrupted:\n%.900s\n---\n%.900s", got,
          ref);
}

static void write_text(const char *name, const char *text)
{
    sk_test_write(sk_test_path(name), text, strlen(text));
}

static void test_bad_grids(void)
{
    CHECK(sk_cli_run(SWEEP " --depth 1,x --out x.jsonl") == 2 && strstr(sk_cli_err, "--depth value 'x'"),
          "bad depth: %s", sk_cli_err);
    CHECK(sk_cli_run(SWEEP " --optimizer sgd,adma --out x.jsonl") == 2 && strstr(sk_cli_err, "--optimizer value 'adma'"),
          "bad optimizer: %s", sk_cli_err);
    CHECK(sk_cli_run(SWEEP " --epochs 0 --out x.jsonl") == 2 && strstr(sk_cli_err, "--epochs"), "bad epochs: %s",
          sk_cli_err);
    write_text("g.txt", "# a grid\ndepth = 1,2\nwidht = 3\n");
    CHECK(sk_cli_run(SWEEP " --grid g.txt --out x.jsonl") == 2 && strstr(sk_cli_err, "g.txt line 3") &&
              strstr(sk_cli_err, "'widht' is no axis"),
          "bad grid file: %s", sk_cli_err);
    write_text("g2.txt", "batch: 32, 1024\nlr = auto,0\n");
    CHECK(sk_cli_run(SWEEP " --grid g2.txt --out x.jsonl") == 2 && strstr(sk_cli_err, "g2.txt line 2") &&
              strstr(sk_cli_err, "value '0'"),
          "bad lr in a grid file: %s", sk_cli_err);
    write_text("g3.txt", "depth = 3\nwidth = 8\n");
    /* the file's depth 3 and width 8 give way to SWEEP's --width 16,32 and the later --depth 1 */
    CHECK(sk_cli_run(SWEEP " --grid g3.txt --depth 1 --out x.jsonl --dry-run") == 0 &&
              strstr(sk_cli_out, "2 configurations (0 finished") && !strstr(sk_cli_out, " 3         16"),
          "a flag overrides the grid file: %s%s", sk_cli_out, sk_cli_err);
    CHECK(sk_cli_run("sweep --summarize nothere.jsonl") == 1 && strstr(sk_cli_err, "nothere.jsonl"), "%s", sk_cli_err);
}

int main(void)
{
    test_tau();
    test_psi();
    test_grid();
    test_bad_grids();
    test_sweep_twice();
    test_kill_resume();
    return sk_test_finish("test_sweep");
}
