/* The seed study's report: report.json (every step's result as saved, in
 * plan order) and report.html, one self-contained file: text escaped for
 * HTML, figures embedded as base64 PNG, the command that reproduces each
 * table and figure under it, no external links. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/io.h"
#include "study/study_impl.h"

/* A growing text buffer; a failed allocation sets bad and drops the rest. */
struct buf {
    char *p;
    size_t n, cap;
    bool bad;
};

static void put(struct buf *b, const char *s, size_t len)
{
    if (b->bad) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + len + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->bad = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void printf_(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(struct buf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* Text as HTML character data or a quoted attribute value: the five
 * characters with a meaning in HTML become references, and bytes below
 * 0x20 other than tab and newline (which HTML forbids) are dropped. */
static void esc(struct buf *b, const char *s)
{
    if (!s) return;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': puts_(b, "&amp;"); break;
        case '<': puts_(b, "&lt;"); break;
        case '>': puts_(b, "&gt;"); break;
        case '"': puts_(b, "&quot;"); break;
        case '\'': puts_(b, "&#39;"); break;
        default:
            if (c >= 0x20 || c == '\t' || c == '\n') put(b, s, 1);
        }
    }
}

static void base64(struct buf *b, const unsigned char *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        q[0] = tab[v >> 18 & 63];
        q[1] = tab[v >> 12 & 63];
        q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? tab[v & 63] : '=';
        put(b, q, 4);
    }
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *d = NULL;
    size_t cap = 0, len = 0, got;
    unsigned char chunk[65536];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got > cap) {
            cap = (len + got) * 2;
            unsigned char *nd = realloc(d, cap);
            if (!nd) {
                free(d);
                fclose(f);
                return NULL;
            }
            d = nd;
        }
        memcpy(d + len, chunk, got);
        len += got;
    }
    fclose(f);
    *n = len;
    return d;
}

/* A number as a table shows it: integers whole, others with 4 significant
 * digits (report.json keeps every digit). */
static void cell_num(struct buf *b, double v)
{
    if (v == floor(v) && fabs(v) < 1e9) printf_(b, "%.0f", v);
    else if (fabs(v) >= 1e-3 && fabs(v) < 1e5) printf_(b, "%.4g", v);
    else printf_(b, "%.3e", v);
}

static void reproduce(struct buf *b, const char *cmd)
{
    puts_(b, "<div class=\"cmd\">reproduce: <code>");
    esc(b, cmd);
    puts_(b, "</code></div>\n");
}

static void html_table(struct buf *b, const cJSON *t, const char *cmd, int no)
{
    printf_(b, "<figure class=\"table\"><figcaption>Table %d. ", no);
    esc(b, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "caption")));
    puts_(b, "</figcaption>\n<div class=\"scroll\"><table>\n<thead><tr>");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(t, "columns"))
    {
        puts_(b, "<th>");
        esc(b, cJSON_GetStringValue(c));
        puts_(b, "</th>");
    }
    puts_(b, "</tr></thead>\n<tbody>\n");
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(t, "rows"))
    {
        puts_(b, "<tr>");
        cJSON_ArrayForEach(c, r)
        {
            if (cJSON_IsNumber(c)) {
                puts_(b, "<td class=\"n\">");
                cell_num(b, c->valuedouble);
            } else if (cJSON_IsString(c)) {
                puts_(b, "<td>");
                esc(b, c->valuestring);
            } else {
                puts_(b, "<td class=\"na\">n/a");
            }
            puts_(b, "</td>");
        }
        puts_(b, "</tr>\n");
    }
    puts_(b, "</tbody></table></div>\n");
    reproduce(b, cmd);
    puts_(b, "</figure>\n");
}

static int html_figure(struct buf *b, const struct study *s, const cJSON *f, const char *cmd, int no)
{
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "file"));
    char path[1024];
    study_path(s, path, sizeof path, "%s", file ? file : "");
    size_t n = 0;
    unsigned char *d = file ? read_all(path, &n) : NULL;
    if (!d) return sk_error(SK_EIO, "study report: cannot read the figure %s", path);
    puts_(b, "<figure class=\"fig\"><img alt=\"");
    esc(b, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "caption")));
    puts_(b, "\" src=\"data:image/png;base64,");
    base64(b, d, n);
    free(d);
    printf_(b, "\">\n<figcaption>Figure %d. ", no);
    esc(b, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "caption")));
    puts_(b, "</figcaption>\n");
    reproduce(b, cmd);
    puts_(b, "</figure>\n");
    return SK_OK;
}

static const char css[] =
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}"
    "h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}"
    "table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ccc;padding:.2em .5em}"
    "th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}td.na{color:#999}"
    ".scroll{overflow-x:auto}figure{margin:1.2em 0}figcaption{font-size:.9em;margin:.3em 0}"
    ".fig img{max-width:100%;border:1px solid #ddd}.cmd{font-size:.8em;color:#555}"
    "code{background:#f5f5f5;padding:0 .2em}.what{color:#555;font-style:italic}"
    ".note{background:#fff6e0;border-left:4px solid #e0a000;padding:.5em 1em}"
    ".notrun{color:#a00}";

static void header(struct buf *b, const struct study *s, int done, double secs)
{
    const char *prof = sk_study_profile_name(s->c.profile);
    puts_(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>skeptic study seed (");
    esc(b, prof);
    printf_(b, ")</title>\n<style>%s</style>\n</head>\n<body>\n", css);
    puts_(b, "<h1>The seed study: ");
    esc(b, prof);
    puts_(b, " profile</h1>\n<p>The experiments, next checks and open questions of the summary of <em>Transgressing "
             "the boundaries: towards a rigorous understanding of deep learning and its (non-)robustness</em> "
             "(arXiv 2307.02454), run by skeptic on real data: Fashion-MNIST, MNIST digits as out-of-distribution "
             "inputs, and the Wisconsin breast-cancer table.</p>\n<p>Run by <code>");
    char cmd[1200];
    if (s->c.command) snprintf(cmd, sizeof cmd, "%s", s->c.command);
    else snprintf(cmd, sizeof cmd, "skeptic study seed --profile %s --seed %llu --out %s", prof,
                  (unsigned long long)s->c.seed, s->dir);
    esc(b, cmd);
    printf_(b, "</code>: seed %llu, %d of %d steps finished, %.0f s of computing in all.</p>\n",
            (unsigned long long)s->c.seed, done, study_n_steps, secs);
    if (s->c.profile == SK_STUDY_QUICK)
        printf_(b, "<p class=\"note\">The quick profile checks the whole pipeline in minutes: it trains on the "
                   "first %d Fashion-MNIST training images (of 60,000) and judges on the first %d test images (of "
                   "10,000) and %d MNIST digits, for a few epochs, with fewer attack steps and fewer points under "
                   "attack. Its numbers show that every part runs and roughly where things stand; the full profile "
                   "(<code>--profile full</code>) is the one to draw conclusions from.</p>\n",
                s->z->fm_train, s->z->fm_test, s->z->ood_n);
    else
        puts_(b, "<p>The full profile: every Fashion-MNIST training (60,000) and test (10,000) image, all 2,004 "
                 "MNIST test digits, the attacks at their reference settings.</p>\n");
    puts_(b, "<p>Every table and figure names the command that recomputes it: the step alone, reading the networks "
             "the steps before it saved in the same directory.</p>\n<nav><h2>Contents</h2><ol>\n");
    for (int i = 0; i < study_n_steps; i++) {
        printf_(b, "<li><a href=\"#%s\">", study_steps[i].id);
        esc(b, study_steps[i].title);
        puts_(b, "</a></li>\n");
    }
    puts_(b, "</ol></nav>\n");
}

int study_report_write(const struct study *s)
{
    struct buf b = { 0 };
    cJSON *all = cJSON_CreateObject(), *steps = cJSON_AddObjectToObject(all, "steps");
    cJSON_AddStringToObject(all, "study", "seed");
    cJSON_AddStringToObject(all, "profile", sk_study_profile_name(s->c.profile));
    cJSON_AddNumberToObject(all, "seed", (double)s->c.seed);
    cJSON *loaded[SK_STUDY_MAX_STEPS] = { 0 };
    int done = 0, rc = SK_OK;
    double secs = 0;
    for (int i = 0; i < study_n_steps; i++) {
        loaded[i] = study_load_step(s, study_steps[i].id);
        if (!loaded[i]) continue;
        done++;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(loaded[i], "timing"),
                                                          "seconds");
        if (cJSON_IsNumber(t)) secs += t->valuedouble;
    }
    sk_error_clear();
    header(&b, s, done, secs);
    int n_tab = 0, n_fig = 0;
    for (int i = 0; i < study_n_steps && !rc; i++) {
        const struct study_step *st = &study_steps[i];
        printf_(&b, "<section id=\"%s\">\n<h2>", st->id);
        esc(&b, st->title);
        puts_(&b, "</h2>\n");
        const cJSON *j = loaded[i];
        if (!j) {
            puts_(&b, "<p class=\"notrun\">Not run yet: <code>");
            char cmd[1200];
            snprintf(cmd, sizeof cmd, "skeptic study seed --profile %s --seed %llu --out %s --only %s",
                     sk_study_profile_name(s->c.profile), (unsigned long long)s->c.seed, s->dir, st->id);
            esc(&b, cmd);
            puts_(&b, "</code></p>\n</section>\n");
            continue;
        }
        const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "command"));
        puts_(&b, "<p class=\"what\">");
        esc(&b, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "what")));
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "timing"), "seconds");
        if (cJSON_IsNumber(t)) printf_(&b, " (%.1f s)", t->valuedouble);
        puts_(&b, "</p>\n");
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "text"))
        {
            puts_(&b, "<p>");
            esc(&b, cJSON_GetStringValue(e));
            puts_(&b, "</p>\n");
        }
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "tables")) html_table(&b, e, cmd, ++n_tab);
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "figures"))
        {
            if ((rc = html_figure(&b, s, e, cmd, ++n_fig))) break;
        }
        puts_(&b, "</section>\n");
        cJSON_AddItemToObject(steps, st->id, loaded[i]);
        loaded[i] = NULL;
    }
    puts_(&b, "</body>\n</html>\n");
    for (int i = 0; i < study_n_steps; i++) cJSON_Delete(loaded[i]);
    if (!rc && b.bad) rc = sk_error(SK_ENOMEM, "out of memory writing the study report");
    char path[1024];
    if (!rc) rc = study_write_json(study_path(s, path, sizeof path, "report.json"), all);
    if (!rc) {
        const void *parts[1] = { b.p };
        size_t lens[1] = { b.n };
        rc = sk_write_file_atomic(study_path(s, path, sizeof path, "report.html"), parts, lens, 1);
    }
    free(b.p);
    cJSON_Delete(all);
    return rc;
}
