/* Nothing a file or a flag can do breaks it: sizes are checked before
 * anything is allocated (specs from a flag against stated limits, specs from
 * a file against the file's own tensors), with a message that gives the
 * count and the limit. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static bool err_has(const char *a, const char *b)
{
    const char *e = sk_last_error();
    return strstr(e, a) && (!b || strstr(e, b));
}

static void test_spec_limits(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:2-400000000-2");
    CHECK(!m && err_has("width 400000000", "limit"), "a huge mlp width is refused before allocating: %s", sk_last_error());
    m = sk_model_from_spec("cnn:100000x100000x100000-flatten-dense2");
    CHECK(!m && err_has("1000000000000000 values per row", "limit"), "C x H x W overflowing an int is refused: %s",
          sk_last_error());
    m = sk_model_from_spec("cnn:1x28x28-conv1000000000k28-flatten-dense2");
    CHECK(!m && err_has("limit", NULL), "a conv layer of 2^30 channels is refused: %s", sk_last_error());
    m = sk_model_from_spec("mlp:2-20000-20000-2");
    CHECK(!m && err_has("parameters and buffers, over the limit of 134217728", NULL),
          "400M parameters over a sum of widths that each pass: %s", sk_last_error());
    size_t np = 0, nb = 0;
    CHECK(sk_spec_size("cnn:1x28x28-conv4k3-bn-relu-flatten-dense10", &np, &nb) == 0 && np == 4 * 9 + 4 + 8 + 10 * 2704 + 10 &&
              nb == 8,
          "sk_spec_size counts without allocating (%zu parameters, %zu buffers)", np, nb);
    m = sk_model_from_spec("mlp:784-512-512-10");
    CHECK(m && m->n_params == 669706, "an ordinary spec still builds (%zu parameters)", m ? m->n_params : 0);
    sk_model_free(m);
}

/* a safetensors file with one 1x1 tensor whose metadata names `spec` */
static void write_tiny(const char *name, const char *spec)
{
    char h[512];
    int n = snprintf(h, sizeof h,
                     "{\"__metadata__\":{\"skeptic.spec\":\"%s\",\"format\":\"pt\"},"
                     "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]}}",
                     spec);
    while (n % 8) h[n++] = ' ';
    unsigned char buf[600];
    unsigned long long len = (unsigned long long)n;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, h, (size_t)n);
    memset(buf + 8 + n, 0, 4);
    sk_test_write(sk_test_path(name), buf, (size_t)n + 12);
}

static void test_file_spec_against_tensors(void)
{
    write_tiny("huge.st", "mlp:2-4000-4000-2");
    struct sk_model *m = sk_model_load(sk_test_path("huge.st"), NULL, NULL);
    CHECK(!m && err_has("16024002 parameters and buffers but the file holds 1 values", "huge.st"),
          "a 1-value file naming a 16M-parameter spec is refused before allocating: %s", sk_last_error());
    int rc = sk_cli_run("info huge.st");
    CHECK(rc == 1 && strstr(sk_cli_err, "the file holds 1 values"), "skeptic info says so: %s", sk_cli_err);
    write_tiny("huge2.st", "mlp:2-400000000-2");
    rc = sk_cli_run("info huge2.st");
    CHECK(rc == 1 && strstr(sk_cli_err, "limit"), "a spec over the limit in a file: %s", sk_cli_err);
    rc = sk_cli_run("train --data moons --arch mlp:2-100000000-2 --epochs 1 --out o.safetensors");
    CHECK(rc == 2 && strstr(sk_cli_err, "--arch") && strstr(sk_cli_err, "limit"),
          "train --arch with a 100M-wide layer is a usage error at once: %s", sk_cli_err);
}

static void test_outputs_checked_first(void)
{
    CHECK(sk_cli_run("train --data moons --arch mlp:2-8-2:relu --epochs 1 --out m.safetensors") == 0, "train: %s",
          sk_cli_err);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = sk_test_file_bytes("m.safetensors", &n0);
    const char *same[] = {
        "eval --model m.safetensors --data moons --predictions m.safetensors",
        "eval --model m.safetensors --data moons --logits m.safetensors",
        "attack --model m.safetensors --data moons --eps 0.1 --save-grad m.safetensors",
        "attack --model m.safetensors --data moons --eps-list 0,0.1 --csv m.safetensors",
        "train --data m.safetensors --arch mlp:2-8-2:relu --epochs 1 --out m.safetensors",
        "train --data moons --arch mlp:2-8-2:relu --epochs 1 --checkpoint x.st --out x.st",
        "train --data moons --arch mlp:2-8-2:relu --epochs 1 --log o.st --out o.st",
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        int rc = sk_cli_run(same[i]);
        CHECK(rc == 2 && (strstr(sk_cli_err, "destroy the input") || strstr(sk_cli_err, "name the same file")),
              "output = input refused naming both flags: skeptic %s -> %d %s", same[i], rc, sk_cli_err);
    }
    unsigned char *after = sk_test_file_bytes("m.safetensors", &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0), "the model file is intact");
    free(before);
    free(after);
    /* problems with an output are found before the work, not after it */
    int rc = sk_cli_run("train --data moons --arch mlp:2-8-2:relu --epochs 3 --out nodir/m.safetensors");
    CHECK(rc == 1 && strstr(sk_cli_err, "nodir") && strstr(sk_cli_err, "does not exist") && !strstr(sk_cli_err, "epoch"),
          "a missing directory is reported before training: %s", sk_cli_err);
    mkdir(sk_test_path("adir"), 0777);
    rc = sk_cli_run("train --data moons --arch mlp:2-8-2:relu --epochs 3 --out adir");
    CHECK(rc == 1 && strstr(sk_cli_err, "is a directory") && !strstr(sk_cli_err, "epoch"),
          "a directory as the output is reported before training: %s", sk_cli_err);
    if (geteuid() != 0) { /* root writes anywhere: the permission check cannot be seen then */
        mkdir(sk_test_path("ro"), 0555);
        rc = sk_cli_run("train --data moons --arch mlp:2-8-2:relu --epochs 3 --out ro/m.safetensors");
        CHECK(rc == 1 && strstr(sk_cli_err, "not writable"), "a read-only directory: %s", sk_cli_err);
    }
}

static void test_flag_ranges(void)
{
    const char *bad[] = {
        "attack --model m.safetensors --data moons --eps 0.1 --steps 0",
        "attack --model m.safetensors --data moons --eps 0.1 --attack square --queries 0",
        "attack --model m.safetensors --data moons --eps 0.1 --eot 0",
        "attack --model m.safetensors --data moons --eps 0.1 --step-size -1",
        "attack --model m.safetensors --data moons --eps 1e30",
        "train --data moons --arch mlp:2-8-2 --out t.st --clip -1",
        "train --data moons --arch mlp:2-8-2 --out t.st --warmup -5",
        "train --data moons --arch mlp:2-8-2 --out t.st --threads -3",
        "train --data moons --arch mlp:2-8-2 --out t.st --threads 0",
        "train --data moons --arch mlp:2-8-2 --out t.st --threads 10000",
        "train --data moons --arch mlp:2-8-2 --out t.st --batch 1000000000",
        "eval --model m.safetensors --data moons --n -1",
        "certify --model m.safetensors --data moons --eps 0.1 --n -1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = sk_cli_run(bad[i]);
        CHECK(rc == 2 && strstr(sk_cli_err, "must be in ["), "out of range, a usage error with the range: skeptic %s -> %d %s",
              bad[i], rc, sk_cli_err);
    }
    int rc = sk_cli_run("eval --model m.safetensors --data moons --n 0 --json");
    cJSON *o = sk_cli_json();
    CHECK(rc == 0 && sk_json_num(o, "n") == 1000, "--n 0 means every row (%g)", sk_json_num(o, "n"));
    cJSON_Delete(o);
}

static void test_stale_temporaries(void)
{
    /* a temporary of a dead process and an old unattributed one are removed by the next
     * write of the same file; one of a live process is not */
    char dead[64], live[64];
    snprintf(dead, sizeof dead, "s.safetensors.tmp-%d-abcdef", 2147483600);
    snprintf(live, sizeof live, "s.safetensors.tmp-%ld-ghijkl", (long)getpid());
    sk_test_write(sk_test_path(dead), "x", 1);
    sk_test_write(sk_test_path(live), "x", 1);
    sk_test_write(sk_test_path("s.safetensors.tmp-OLDOLD"), "x", 1);
    struct timespec old[2] = { { time(NULL) - 7200, 0 }, { time(NULL) - 7200, 0 } };
    utimensat(AT_FDCWD, sk_test_path("s.safetensors.tmp-OLDOLD"), old, 0);
    int rc = sk_cli_run("train --data moons --arch mlp:2-8-2:relu --epochs 1 --out s.safetensors");
    struct stat st;
    CHECK(rc == 0 && stat(sk_test_path(dead), &st) != 0 && stat(sk_test_path("s.safetensors.tmp-OLDOLD"), &st) != 0,
          "stale temporaries removed by the next write");
    CHECK(stat(sk_test_path(live), &st) == 0, "a live process's temporary is kept");
}

static void test_certify_points_and_sandwich(void)
{
    CHECK(sk_cli_run("train --data blobs:k=3,dim=4,n=300 --arch mlp:4-16-3:relu --epochs 5 --lr 0.01 --adv ibp "
                     "--adv-eps 0.3 --out ib.safetensors") == 0,
          "IBP-trained blobs model: %s", sk_cli_err);
    int rc = sk_cli_run("attack --model ib.safetensors --data blobs:k=3,dim=4,n=300 --attack pgd --eps 0.3 --n 200 "
                        "--save-adv adv.npy --json");
    cJSON *o = sk_cli_json();
    double clean = sk_json_num(o, "clean_accuracy"), rob = sk_json_num(o, "robust_accuracy");
    cJSON_Delete(o);
    rc |= sk_cli_run("certify --model ib.safetensors --data blobs:k=3,dim=4,n=300 --eps 0.3 --n 200 --points pts.csv "
                     "--attacked adv.npy --json");
    o = sk_cli_json();
    cJSON *sw = o ? cJSON_GetObjectItem(o, "sandwich") : NULL;
    double cert = sk_json_num(o, "certified_accuracy"), broken = sw ? sk_json_num(sw, "broken") : -1;
    cJSON_Delete(o);
    printf("blobs IBP model: clean %.3f, PGD %.3f, certified %.3f, broken %g\n", clean, rob, cert, broken);
    CHECK(rc == 0 && cert > 0 && cert <= rob && fabs(broken - (clean - rob) * 200) < 0.5,
          "certify --attacked: the points PGD broke (%g) are counted and none is certified; certified %g <= robust %g: %s",
          broken, cert, rob, sk_cli_err);
    char csv[1 << 14];
    sk_test_slurp(sk_test_path("pts.csv"), csv, sizeof csv);
    int lines = 0, certified = 0;
    for (char *p = strchr(csv, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        lines++;
        int i, y, pr, c;
        float mg;
        if (sscanf(p + 1, "%d,%d,%d,%d,%g", &i, &y, &pr, &c, &mg) == 5 && c) {
            certified++;
            CHECK(mg > 0 && pr == y, "a certified point has a positive margin and the right class (point %d)", i);
        }
    }
    CHECK(!strncmp(csv, "index,label,predicted,certified,margin_lower\n", 45) && lines == 200 &&
              fabs(certified - cert * 200) < 0.5,
          "--points: 200 lines, %d certified (report %g)", certified, cert * 200);
    rc = sk_cli_run("certify --model ib.safetensors --data blobs:k=3,dim=4,n=300 --eps 0.3 --n 100 --attacked adv.npy");
    CHECK(rc == 1 && strstr(sk_cli_err, "200 rows") && strstr(sk_cli_err, "100 rows"),
          "examples of other points are refused: %s", sk_cli_err);
}

static void test_overflowing_columns(void)
{
    FILE *f = fopen(sk_test_path("big.csv"), "w");
    for (int i = 0; i < 40; i++) fprintf(f, "%g,%g,%d\n", i % 2 ? 3e38 : -3e38, (double)i, i % 2);
    fclose(f);
    int rc = sk_cli_run("train --data big.csv --header no --arch mlp:2-4-2:relu --epochs 1 --normalize minmax --out b.st");
    CHECK(rc == 1 && strstr(sk_cli_err, "overflows float32") && strstr(sk_cli_err, "feature 0") && !strstr(sk_cli_err, "learning rate"),
          "columns of +-3e38: the range overflow is named, not a diverging loss: %s", sk_cli_err);
}

/* Peak memory of `skeptic info` on a file under 1 MB whose spec is as large
 * as a file that size lets through (its values plus the load's slack): the
 * run happens in a fresh child, whose own children's peak is measured. */
static void test_info_peak_memory(void)
{
    write_tiny("big-spec.st", "mlp:2-1000-1000-2");
    size_t n = 0;
    unsigned char *b = sk_test_file_bytes("big-spec.st", &n);
    free(b);
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' info '%s' > /dev/null 2>&1", sk_cli_bin(), sk_test_path("big-spec.st"));
        int st = system(cmd);
        struct rusage ru;
        getrusage(RUSAGE_CHILDREN, &ru);
        FILE *f = fopen(sk_test_path("rss.txt"), "w");
        if (f) {
            fprintf(f, "%ld %d\n", ru.ru_maxrss, st);
            fclose(f);
        }
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    char buf[64] = "";
    sk_test_slurp(sk_test_path("rss.txt"), buf, sizeof buf);
    long kb = -1;
    int rc = -1;
    sscanf(buf, "%ld %d", &kb, &rc);
    /* ASan's shadow memory and quarantine inflate the figure: the bound is for the plain build */
    long limit = getenv("SKEPTIC_SANITIZED") ? 400 * 1024 : 100 * 1024;
    printf("skeptic info on a %zu-byte file naming mlp:2-1000-1000-2: peak %ld KB\n", n, kb);
    CHECK(n < (1 << 20) && kb > 0 && kb < limit && rc != 0, "info's peak memory %ld KB < %ld KB, and an error", kb, limit);
}

int main(void)
{
    test_spec_limits();
    test_file_spec_against_tensors();
    test_outputs_checked_first();
    test_flag_ranges();
    test_stale_temporaries();
    test_certify_points_and_sandwich();
    test_overflowing_columns();
    test_info_peak_memory();
    return sk_test_finish("test_bad_input");
}
