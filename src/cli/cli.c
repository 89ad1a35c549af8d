/* Shared command-line helpers: option parsing, errors, JSON, progress bar,
 * loading data and models. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cli_command = "";

static void vreport(const char *kind, const char *fmt, va_list ap)
{
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int col = fprintf(stderr, "skeptic%s%s: ", cli_command[0] ? " " : "", cli_command) + (int)strlen(kind) + 2;
    fprintf(stderr, "%s%s:%s ", cli_sgr(stderr, CLI_STYLE_ERROR), kind, cli_sgr(stderr, CLI_STYLE_OFF));
    /* on a terminal the message is wrapped at words; into a file or pipe it stays one line */
    if (isatty(STDERR_FILENO)) cli_wrap(stderr, msg, 2, col, cli_term_width(stderr));
    else fputs(msg, stderr);
    fputc('\n', stderr);
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("error", fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("usage error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "(see skeptic%s%s --help)\n", cli_command[0] ? " " : "", cli_command);
    return CLI_USAGE;
}


/* Whether s[0] continues a field name like "adv.eps" (a '.' only inside one). */
static bool in_word(const char *s)
{
    return isalnum((unsigned char)s[0]) || s[0] == '_' || (s[0] == '.' && isalnum((unsigned char)s[1]));
}

/* sk_last_error() into buf with the fields of map named by their flags. */
static const char *map_fields(const struct cli_field_flag *map, char *buf, size_t cap)
{
    const char *e = sk_last_error()[0] ? sk_last_error() : "unknown failure";
    size_t n = 0;
    for (const char *p = e; *p && n + 1 < cap;) {
        const struct cli_field_flag *m = NULL;
        if (p == e || !in_word(p - 1))
            for (m = map; m && m->field; m++) {
                size_t l = strlen(m->field);
                if (!strncmp(p, m->field, l) && !in_word(p + l)) break;
            }
        if (m && m->field) {
            n += (size_t)snprintf(buf + n, cap - n, "%s", m->flag);
            if (n >= cap) n = cap - 1;
            p += strlen(m->field);
        } else {
            buf[n++] = *p++;
        }
    }
    buf[n] = 0;
    return buf;
}

int cli_fail_lib_map(const struct cli_field_flag *map)
{
    char buf[2048];
    return cli_fail("%s", map_fields(map, buf, sizeof buf));
}

int cli_usage_lib(const struct cli_field_flag *map)
{
    char buf[2048];
    return cli_usage("%s", map_fields(map, buf, sizeof buf));
}

/* Fields that any command's library calls may name: the data options, and
 * the training loop's learning rate. */
static const struct cli_field_flag common_flags[] = {
    { "opt.labels_path", "--labels" }, { "labels_path", "--labels" }, { "cfg.opt.lr", "--lr" }, { NULL, NULL },
};

int cli_fail_lib(void)
{
    char buf[2048];
    return cli_fail("%s", map_fields(common_flags, buf, sizeof buf));
}

int cli_input_box(const char *cmd, const char *data, const struct sk_dataset *d, float given_lo, float given_hi,
                  bool allow_none, float *lo, float *hi)
{
    if (isnan(given_lo) != isnan(given_hi)) return cli_usage("give both --clip-min and --clip-max, or neither");
    if (!isnan(given_lo) && !(given_lo < given_hi))
        return cli_usage("--clip-min %g must be below --clip-max %g", given_lo, given_hi);
    size_t n = (size_t)d->n * (size_t)d->dim;
    if (!isnan(given_lo)) {
        for (size_t i = 0; i < n; i++)
            if (!(d->x[i] >= given_lo && d->x[i] <= given_hi))
                return cli_fail("%s: row %zu has the value %g outside --clip-min %g .. --clip-max %g", data,
                                i / (size_t)d->dim, d->x[i], given_lo, given_hi);
        *lo = given_lo;
        *hi = given_hi;
        return CLI_OK;
    }
    float mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        mn = d->x[i] < mn ? d->x[i] : mn;
        mx = d->x[i] > mx ? d->x[i] : mx;
    }
    if (n == 0 || (mn >= 0 && mx <= 1)) {
        *lo = 0;
        *hi = 1;
    } else if (allow_none) {
        *lo = *hi = 0;
        fprintf(stderr, "skeptic %s: note: the data leave [0,1] (range %g..%g): no input box is used "
                        "(--clip-min/--clip-max set one)\n", cmd, mn, mx);
    } else {
        *lo = mn;
        *hi = mx < mn + 1e-6f ? mn + 1e-6f : mx;
        fprintf(stderr, "skeptic %s: note: the data leave [0,1] (range %g..%g): the input box is that range "
                        "(--clip-min/--clip-max set another)\n", cmd, mn, mx);
    }
    return CLI_OK;
}

int cli_feature_box(const char *cmd, const char *data, const struct sk_dataset *d, const struct sk_model *m,
                    float given_lo, float given_hi, bool allow_none, float *lo, float *hi, float **blo, float **bhi)
{
    *blo = *bhi = NULL;
    bool tabular = d->h * d->w <= 1 && d->n > 0 && (!m || (m->in_lo && m->in_dim == d->dim));
    if (!isnan(given_lo) || !isnan(given_hi) || !tabular)
        return cli_input_box(cmd, data, d, given_lo, given_hi, allow_none, lo, hi);
    int D = d->dim;
    float *a = sk_malloc(sizeof(float) * (size_t)D), *b = sk_malloc(sizeof(float) * (size_t)D);
    if (!a || !b) {
        sk_free(a);
        sk_free(b);
        return cli_fail("out of memory");
    }
    /* widened to the rows' own values: a value a little outside the training
     * range is its own clean point, never projected away from itself */
    for (int j = 0; j < D; j++) {
        a[j] = m ? m->in_lo[j] : d->x[j];
        b[j] = m ? m->in_hi[j] : d->x[j];
        for (size_t i = 0; i < (size_t)d->n; i++) {
            float v = d->x[i * (size_t)D + j];
            a[j] = v < a[j] ? v : a[j];
            b[j] = v > b[j] ? v : b[j];
        }
        /* a constant feature: an empty box would stop the CW attack's tanh map */
        if (!(b[j] > a[j])) b[j] = fmaxf(a[j] + 1e-6f, nextafterf(a[j], INFINITY));
    }
    float mn = a[0], mx = b[0];
    for (int j = 1; j < D; j++) {
        mn = a[j] < mn ? a[j] : mn;
        mx = b[j] > mx ? b[j] : mx;
    }
    *lo = mn;
    *hi = mx;
    *blo = a;
    *bhi = b;
    fprintf(stderr, "skeptic %s: note: tabular data: the input box is per feature, %s (feature 0: [%g, %g]", cmd,
            m ? "the model's training range widened to include these rows' own values" : "the training split's range",
            a[0], b[0]);
    if (D > 1) fprintf(stderr, "%s feature %d: [%g, %g]", D > 2 ? ", ...," : ",", D - 1, a[D - 1], b[D - 1]);
    fprintf(stderr, "); --clip-min/--clip-max set one box for all\n");
    return CLI_OK;
}

/* Text whose single newlines are spaces (the help texts break lines for
 * source code, not for the terminal) and whose blank lines are paragraphs. */
static void wrap_prose(FILE *fp, const char *text, int indent, int width)
{
    size_t n = strlen(text);
    char *t = malloc(n + 1);
    if (!t) {
        fputs(text, fp);
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n' && text[i + 1] == '\n') {
            t[o++] = '\n';
            t[o++] = '\n';
            i++;
        } else {
            t[o++] = text[i] == '\n' ? ' ' : text[i];
        }
    }
    t[o] = 0;
    fprintf(fp, "%*s", indent, "");
    cli_wrap(fp, t, indent, indent, width);
    fputc('\n', fp);
    free(t);
}

/* One example command per line, continued with " \\" where it is wider than
 * the terminal (so it still pastes into a shell). */
static void print_examples(FILE *fp, const char *ex, int width)
{
    char buf[4096];
    size_t o = 0;
    /* the texts' own continuations joined first, then wrapped for this terminal */
    for (const char *p = ex; p && *p && o + 1 < sizeof buf; p++) {
        if (p[0] == '\\' && p[1] == '\n') {
            p++;
            while (p[1] == ' ') p++;
            continue;
        }
        buf[o++] = *p;
    }
    buf[o] = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int col = 2;
        bool first = true;
        fprintf(fp, "  ");
        char *ws = NULL;
        char *next = NULL;
        for (char *w = strtok_r(line, " ", &ws); w; w = next ? next : strtok_r(NULL, " ", &ws)) {
            next = NULL;
            int wl = (int)strlen(w);
            /* "--flag value" moves to the next line as one */
            if (w[0] == '-' && w[1] == '-' && (next = strtok_r(NULL, " ", &ws)) && next[0] != '-') {
                w[wl] = ' ';
                wl = (int)strlen(w);
                next = NULL;
            }
            if (!first && col + 1 + wl > width - 3) {
                fprintf(fp, " \\\n      ");
                col = 6;
            } else if (!first) {
                fputc(' ', fp);
                col++;
            }
            fputs(w, fp);
            col += wl;
            first = false;
        }
        fputc('\n', fp);
    }
}

static void print_opt(FILE *fp, const char *left, const char *help, int colw, int width)
{
    int l = (int)strlen(left);
    fprintf(fp, "  %s", left);
    if (l + 2 > colw) {
        fprintf(fp, "\n%*s", colw + 2, "");
    } else {
        fprintf(fp, "%*s", colw + 2 - l, "");
    }
    cli_wrap(fp, help, colw + 4, colw + 4, width);
    fputc('\n', fp);
}

void cli_print_help(FILE *fp, const struct cli_help *h, const struct cli_opt *opts)
{
    FILE *pg = fp == stdout ? cli_pager_open() : NULL;
    if (pg) fp = pg;
    int width = cli_term_width(stdout);
    if (width > 120) width = 120; /* prose is hard to read wider */
    int colw = 22;
    fprintf(fp, "usage: ");
    cli_wrap(fp, h->usage, 9, 7, width);
    fputs("\n\n", fp);
    wrap_prose(fp, h->summary, 0, width);
    bool grouped = opts && opts->name && opts->type == CLI_GROUP;
    if (!grouped) fprintf(fp, "\noptions:\n");
    for (const struct cli_opt *o = opts; o && o->name; o++) {
        if (o->type == CLI_GROUP) {
            fprintf(fp, "\n%s:\n", o->name);
            continue;
        }
        char left[96];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->meta ? " " : "", o->meta ? o->meta : "");
        print_opt(fp, left, o->help, colw, width);
    }
    fprintf(fp, "%s", grouped ? "\ncommon:\n" : "");
    print_opt(fp, "-q, --quiet", "results and errors only: no progress bar, notes or per-epoch lines", colw, width);
    print_opt(fp, "-v, --verbose", "more detail on stderr (settings, per-stage costs)", colw, width);
    print_opt(fp, "-h, --help", "show this help", colw, width);
    fprintf(fp, "\nexample:\n");
    print_examples(fp, h->example, width);
    fprintf(fp, "\nSee also: skeptic help specs | eps | ood | files | exit-codes\n");
    if (pg) cli_pager_close(pg);
}

/* The valid range of an option, by name: the same flag means the same
 * thing in every command. Given values outside are usage errors naming the
 * range; defaults are not checked (0 often means "not given"). */
static const struct {
    const char *name;
    double lo, hi;
    const char *note; /* appended to the message */
} ranges[] = {
    { "epochs", 1, 1e6, "" },
    { "batch", 1, 1 << 20, "" },
    { "steps", 1, 1e6, "" },
    { "restarts", 1, 1e4, "" },
    { "queries", 1, 1e8, "" },
    { "eot", 1, 1e5, "" },
    { "samples", 1, 1e6, "" },
    { "members", 1, 1e4, "" },
    { "verdict-samples", 1, 1e6, "" },
    { "threads", 1, 1024, " (leave it out to use every core)" },
    { "n", 0, 2147483647.0, " (0: every row)" },
    { "n-test", 0, 2147483647.0, " (0: every row)" },
    { "n-adv", 0, 2147483647.0, "" },
    { "eps", 0, 1e6, "" },
    { "step-size", 0, 1e6, " (0: the attack's default)" },
    { "clip", 0, 1e30, " (0: no clipping)" },
    { "warmup", 0, 1e12, "" },
    { "lr", 0, 1e6, "" },
    { "checkpoint-every", 0, 1e15, "" },
    { "grid-n", 1, 1e4, "" },
};

static int check_range(const struct cli_opt *o, double x)
{
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if (!strcmp(ranges[i].name, o->name) && !(x >= ranges[i].lo && x <= ranges[i].hi))
            return cli_usage("--%s must be in [%.10g, %.10g]%s; got %.10g", o->name, ranges[i].lo, ranges[i].hi,
                             ranges[i].note, x);
    return 0;
}

static int set_value(const struct cli_opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case CLI_STR: *(const char **)o->dst = v; return 0;
    case CLI_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno || x < -2147483647L || x > 2147483647L)
            return cli_usage("--%s expects an integer, got '%s'", o->name, v);
        if (check_range(o, (double)x)) return CLI_USAGE;
        *(int *)o->dst = (int)x;
        return 0;
    }
    case CLI_LONG: {
        long x = strtol(v, &end, 10);
        if (end == v || *end || errno) return cli_usage("--%s expects an integer, got '%s'", o->name, v);
        if (check_range(o, (double)x)) return CLI_USAGE;
        *(long *)o->dst = x;
        return 0;
    }
    case CLI_U64: {
        if (v[0] == '-') return cli_usage("--%s expects a non-negative integer, got '%s'", o->name, v);
        unsigned long long x = strtoull(v, &end, 10);
        if (end == v || *end || errno) return cli_usage("--%s expects a non-negative integer, got '%s'", o->name, v);
        *(uint64_t *)o->dst = (uint64_t)x;
        return 0;
    }
    case CLI_FLOAT: {
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x)) return cli_usage("--%s expects a number, got '%s'", o->name, v);
        if (check_range(o, x)) return CLI_USAGE;
        *(float *)o->dst = (float)x;
        return 0;
    }
    case CLI_FLAG: case CLI_GROUP: return 0;
    }
    return 0;
}

int cli_parse(int argc, char **argv, const struct cli_help *h, const struct cli_opt *opts, const char **pos,
              int max_pos, int *n_pos)
{
    int np = 0;
    if (n_pos) *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_print_help(stdout, h, opts);
            return -1;
        }
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) {
                if (np >= max_pos) return cli_usage("unexpected argument '%s'", argv[i]);
                pos[np++] = argv[i];
            }
            break;
        }
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t nl = eq ? (size_t)(eq - name) : strlen(name);
            const struct cli_opt *o = opts;
            for (; o->name; o++)
                if (o->type != CLI_GROUP && strlen(o->name) == nl && !strncmp(o->name, name, nl)) break;
            if (!o->name) {
                char word[128];
                snprintf(word, sizeof word, "%.*s", (int)(nl < 120 ? nl : 120), name);
                if (!strcmp(word, "quiet")) { cli_verbosity = -1; continue; }
                if (!strcmp(word, "verbose")) { cli_verbosity = 1; continue; }
                const char *cands[512];
                int nc = 0;
                for (const struct cli_opt *q = opts; q->name && nc < 510; q++)
                    if (q->type != CLI_GROUP) cands[nc++] = q->name;
                cands[nc++] = "quiet";
                cands[nc++] = "verbose";
                const char *s = cli_suggest(word, cands, nc);
                if (s) return cli_usage("unknown option '--%s'; did you mean '--%s'?", word, s);
                return cli_usage("unknown option '--%s'", word);
            }
            if (o->type == CLI_FLAG) {
                if (eq) return cli_usage("--%s takes no value", o->name);
                *(bool *)o->dst = true;
                continue;
            }
            const char *v = eq ? eq + 1 : NULL;
            if (!v) {
                if (i + 1 >= argc) return cli_usage("--%s needs a value (%s)", o->name, o->meta ? o->meta : "value");
                v = argv[++i];
            }
            int rc = set_value(o, v);
            if (rc) return rc;
            continue;
        }
        if (!strcmp(a, "-q")) { cli_verbosity = -1; continue; }
        if (!strcmp(a, "-v")) { cli_verbosity = 1; continue; }
        if (a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) return cli_usage("unknown option '%s'", a);
        if (np >= max_pos) return cli_usage("unexpected argument '%s'", a);
        pos[np++] = a;
    }
    if (n_pos) *n_pos = np;
    /* options whose values are one of a fixed set, the same in every command:
     * a value outside is a usage error listing the set */
    static const struct {
        const char *name;
        const char *set[8];
    } choices[] = {
        { "split", { "train", "test", "all" } },
        { "header", { "yes", "no", "auto" } },
        { "norm", { "linf", "l2", "l1", "l0" } },
        { "schedule", { "constant", "step", "cosine", "onecycle" } },
        { "normalize", { "none", "minmax", "standardize" } },
        { "init", { "he-uniform", "he-normal", "glorot-uniform", "glorot-normal", "torch" } },
        { "prior", { "gaussian", "mixture" } },
        { "hessian", { "kfac", "full" } },
    };
    for (const struct cli_opt *o = opts; o->name; o++) {
        if (o->type != CLI_STR || !*(const char **)o->dst) continue;
        const char *v = *(const char **)o->dst;
        for (size_t k = 0; k < sizeof choices / sizeof *choices; k++) {
            if (strcmp(choices[k].name, o->name)) continue;
            int n = 0, hit = 0;
            while (n < 8 && choices[k].set[n]) hit |= !strcmp(v, choices[k].set[n++]);
            char flag[64];
            snprintf(flag, sizeof flag, "--%s", o->name);
            if (!hit) return cli_bad_choice(flag, v, choices[k].set, n);
        }
    }
    for (const struct cli_opt *o = opts; o->name; o++)
        if (!strcmp(o->name, "threads") && o->type == CLI_INT && *(int *)o->dst != 0) sk_set_threads(*(int *)o->dst);
    return 0;
}

/* The same file: same device and inode when both exist, else the same
 * spelling after resolving the directory part. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!stat(a, &sa) && !stat(b, &sb)) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return !strcmp(a, b);
}

int cli_check_outputs(const struct cli_path *outs, const struct cli_path *ins)
{
    for (const struct cli_path *o = outs; o->flag; o++) {
        if (!o->path) continue;
        for (const struct cli_path *i = ins; i && i->flag; i++)
            if (i->path && same_file(o->path, i->path))
                return cli_usage("%s %s is also the %s file: writing it would destroy the input; choose another path",
                                 o->flag, o->path, i->flag);
        for (const struct cli_path *q = outs; q < o; q++)
            if (q->path && same_file(o->path, q->path))
                return cli_usage("%s and %s name the same file %s: one would overwrite the other", q->flag, o->flag,
                                 o->path);
        struct stat st;
        bool is_dir = o->dir;
        if (!stat(o->path, &st)) {
            if (!is_dir && S_ISDIR(st.st_mode))
                return cli_fail("%s %s is a directory, not a file", o->flag, o->path);
            if (is_dir && !S_ISDIR(st.st_mode)) return cli_fail("%s %s exists and is not a directory", o->flag, o->path);
            if (is_dir && access(o->path, W_OK | X_OK))
                return cli_fail("%s %s: the directory is not writable", o->flag, o->path);
            if (is_dir) continue;
        }
        /* the directory that will hold the file (or the new directory) must exist and be writable:
         * files are written by rename from a temporary beside them */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", o->path);
        char *slash = strrchr(dir, '/');
        if (slash == dir) dir[1] = 0;
        else if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        if (stat(dir, &st) || !S_ISDIR(st.st_mode))
            return cli_fail("%s %s: the directory %s does not exist", o->flag, o->path, dir);
        if (access(dir, W_OK | X_OK)) return cli_fail("%s %s: the directory %s is not writable", o->flag, o->path, dir);
    }
    return CLI_OK;
}

struct cli_common cli_common_defaults(void)
{
    struct cli_common c;
    memset(&c, 0, sizeof c);
    return c;
}

/* Parse a class list; on error writes a message to err and returns -1. */
static int parse_classes(const char *s, int *classes, int cap, int *k, char *err, size_t errcap)
{
    *k = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 100000 || (*end && *end != ',')) {
            snprintf(err, errcap, "--classes expects a comma-separated list of class numbers like 6,0; got '%s'", s);
            return -1;
        }
        if (*k >= cap) {
            snprintf(err, errcap, "--classes: at most %d classes", cap);
            return -1;
        }
        for (int j = 0; j < *k; j++)
            if (classes[j] == v) {
                snprintf(err, errcap, "--classes: class %ld is listed twice", v);
                return -1;
            }
        classes[(*k)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (*k < 2) {
        snprintf(err, errcap, "--classes needs at least two classes, got '%s'", s);
        return -1;
    }
    return 0;
}

int cli_parse_classes(const char *s, int *classes, int cap, int *k)
{
    char err[256];
    if (parse_classes(s, classes, cap, k, err, sizeof err)) return cli_usage("%s", err);
    return 0;
}

static struct sk_data_options data_options(const struct cli_common *c)
{
    struct sk_data_options o;
    memset(&o, 0, sizeof o);
    o.seed = c->data_seed;
    o.labels_path = c->labels;
    o.label_column = c->label_column;
    o.test_fraction = c->test_fraction;
    o.header = !c->header || !strcmp(c->header, "auto") ? 0 : !strcmp(c->header, "yes") ? 1 : 2;
    return o;
}

static struct sk_dataset *select_and_limit(struct sk_dataset *d, const char *classes, int limit)
{
    if (d && classes && *classes) {
        int cl[1024], k;
        char err[256];
        if (parse_classes(classes, cl, 1024, &k, err, sizeof err)) {
            sk_dataset_free(d);
            sk_error(SK_EINVAL, "%s", err);
            return NULL;
        }
        struct sk_dataset *s = sk_data_select_classes(d, cl, k);
        sk_dataset_free(d);
        d = s;
    }
    if (d && limit > 0 && limit < d->n) {
        int *idx = sk_malloc(sizeof(int) * (size_t)limit);
        struct sk_dataset *s = NULL;
        if (idx) {
            for (int i = 0; i < limit; i++) idx[i] = i;
            s = sk_dataset_subset(d, idx, limit);
            if (s) s->n_classes = d->n_classes;
        }
        sk_free(idx);
        sk_dataset_free(d);
        d = s;
    }
    return d;
}

struct sk_dataset *cli_load_data(const struct cli_common *c, const char *split)
{
    if (c->header && strcmp(c->header, "yes") && strcmp(c->header, "no") && strcmp(c->header, "auto")) {
        sk_error(SK_EINVAL, "--header must be yes, no or auto (got '%s')", c->header);
        return NULL;
    }
    struct sk_data_options o = data_options(c);
    struct sk_dataset *d = sk_data_open(c->data, c->split ? c->split : split, &o);
    return select_and_limit(d, c->classes, c->limit);
}

struct sk_model *cli_load_model(const struct cli_common *c, char **meta)
{
    *meta = NULL;
    if (!c->model) {
        cli_usage("--model FILE is required");
        return NULL;
    }
    struct sk_model *m = sk_model_load(c->model, c->arch, meta);
    if (!m) cli_fail_lib();
    /* what an ONNX import changed (an output softmax removed, ...) */
    char note[2048];
    if (m && *meta && sk_meta_get(*meta, "skeptic.import_notes", note, sizeof note))
        fprintf(stderr, "skeptic %s: note: %s: %s\n", cli_command, c->model, note);
    return m;
}

int cli_record_training_data(struct sk_model *m, const struct cli_common *c, const struct sk_dataset *train,
                             enum sk_prep_kind prep)
{
    return sk_model_record_data(m, c->data, c->classes, c->data_seed, c->test_fraction, train, prep);
}

struct sk_dataset *cli_open_model_data(const struct cli_common *c, const struct sk_model *m, const char *name,
                                       const char *split)
{
    struct sk_data_record eff;
    if (sk_data_record_check(&m->data, c->model ? c->model : "the model", c->classes, c->data_seed,
                             c->test_fraction, &eff))
        return NULL;
    struct sk_data_options o = data_options(c);
    o.seed = eff.data_seed;
    o.test_fraction = eff.test_fraction;
    struct sk_dataset *d = sk_data_open(name, split, &o);
    d = select_and_limit(d, eff.classes, c->limit);
    if (!d) return NULL;
    if (d->dim != m->in_dim) {
        sk_error(SK_EINVAL, "%s has %d values per row (%dx%dx%d) but model '%s' expects %d", name, d->dim, d->c, d->h,
                 d->w, m->spec, m->in_dim);
        sk_dataset_free(d);
        return NULL;
    }
    if (sk_model_check_range(m, d->x, d->n, name)) {
        sk_dataset_free(d);
        return NULL;
    }
    return d;
}

struct sk_dataset *cli_load_eval_data(const struct cli_common *c, const struct sk_model *m, const char *meta)
{
    (void)meta;
    if (!c->data) {
        cli_usage("--data D is required");
        return NULL;
    }
    struct sk_dataset *d = cli_open_model_data(c, m, c->data, c->split ? c->split : "test");
    if (!d) {
        cli_fail_lib();
        return NULL;
    }
    for (int i = 0; i < d->n; i++)
        if (d->y[i] >= m->n_classes) {
            cli_fail("%s: row %d has label %d but the model has only %d classes (select classes with --classes)",
                     c->data, i, d->y[i], m->n_classes);
            sk_dataset_free(d);
            return NULL;
        }
    return d;
}

void cli_json_print(cJSON *o)
{
    char *t = cJSON_PrintUnformatted(o);
    if (t) {
        fputs(t, stdout);
        fputc('\n', stdout);
        free(t);
    }
    fflush(stdout);
    cJSON_Delete(o);
}

void cli_json_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* A value outside a fixed set: a usage error listing the set, with the
 * nearest choice when one is close (cli_suggest). */
int cli_bad_choice(const char *flag, const char *value, const char *const *choices, int n)
{
    char list[512];
    size_t o = 0;
    list[0] = 0;
    for (int i = 0; i < n && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", choices[i]);
    const char *s = cli_suggest(value, choices, n);
    if (s) return cli_usage("%s '%s' is not one of %s; did you mean '%s'?", flag, value, list, s);
    return cli_usage("%s '%s' is not one of %s", flag, value, list);
}
