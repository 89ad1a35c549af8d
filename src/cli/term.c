/* The terminal side of the command line: width (following SIGWINCH),
 * colour (terminals only, never under NO_COLOR), the progress bar, word
 * wrapping, paging long help, and "did you mean" suggestions. */
#define _XOPEN_SOURCE 700 /* sigaction, ioctl's TIOCGWINSZ via sys/ioctl.h */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_verbosity = 0;

/* ---- width ---- */

static volatile sig_atomic_t width_changed = 1;
static int width_cached = 80;

static void on_winch(int sig)
{
    (void)sig;
    width_changed = 1;
}

void cli_term_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
}

int cli_term_width(FILE *fp)
{
    if (!width_changed) return width_cached;
    width_changed = 0;
    struct winsize ws;
    int w = 0;
    if (fp && isatty(fileno(fp)) && !ioctl(fileno(fp), TIOCGWINSZ, &ws)) w = ws.ws_col;
    else if (!ioctl(STDERR_FILENO, TIOCGWINSZ, &ws)) w = ws.ws_col;
    else if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws)) w = ws.ws_col;
    if (w <= 0) {
        const char *c = getenv("COLUMNS");
        w = c ? atoi(c) : 0;
    }
    /* a width is only a limit: text for a file or a pipe is laid out for 80 columns */
    width_cached = w >= 20 ? (w > 1000 ? 1000 : w) : 80;
    return width_cached;
}

/* ---- colour ---- */

bool cli_color(FILE *fp)
{
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    if (nc && *nc) return false;
    if (term && !strcmp(term, "dumb")) return false;
    return isatty(fileno(fp));
}

const char *cli_sgr(FILE *fp, enum cli_style s)
{
    if (!cli_color(fp)) return "";
    switch (s) {
    case CLI_STYLE_OFF: return "\033[0m";
    case CLI_STYLE_ERROR: return "\033[1;31m";
    case CLI_STYLE_WARN: return "\033[1;33m";
    case CLI_STYLE_GOOD: return "\033[32m";
    case CLI_STYLE_BAD: return "\033[31m";
    case CLI_STYLE_BOLD: return "\033[1m";
    case CLI_STYLE_DIM: return "\033[2m";
    }
    return "";
}

/* ---- progress bar ---- */

void cli_progress_init(struct cli_progress *p, int n_epochs)
{
    memset(p, 0, sizeof *p);
    p->on = cli_verbosity >= 0 && isatty(STDERR_FILENO) && !getenv("SKEPTIC_NO_PROGRESS");
    p->n_epochs = n_epochs;
    p->epoch_seen = -1;
    p->t_start = sk_now();
}

void cli_progress_member(struct cli_progress *p, int member, int n_members)
{
    p->member = member;
    p->n_members = n_members;
    p->epoch_seen = -1;
}

void cli_fmt_time(char *b, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(b, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(b, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(b, cap, "%ld:%02ld", t / 60, t % 60);
}

/* A rate for a narrow bar: 812, 81.2k, 1.3M. */
static void fmt_rate(char *b, size_t cap, double r)
{
    if (!(r >= 0) || !isfinite(r)) snprintf(b, cap, "-");
    else if (r >= 1e6) snprintf(b, cap, "%.1fM", r / 1e6);
    else if (r >= 1e4) snprintf(b, cap, "%.0fk", r / 1e3);
    else if (r >= 1e3) snprintf(b, cap, "%.1fk", r / 1e3);
    else snprintf(b, cap, "%.0f", r);
}

void cli_progress_draw(struct cli_progress *p, const char *left, double frac, const char *const *extra, int n_extra,
                       bool force)
{
    if (!p->on) return;
    double now = sk_now();
    if (!force && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    /* one line of at most width - 1 characters, so the terminal never wraps it
     * (a line of exactly the width leaves the cursor pending on the next row
     * on some terminals); the extras are dropped from the right until the
     * bar has at least 10 cells, then the bar goes, then the line is cut */
    int W = cli_term_width(stderr) - 1;
    char right[256];
    int ne = n_extra;
    int bar_w = 0;
    for (;;) {
        size_t o = 0;
        right[0] = 0;
        for (int i = 0; i < ne && o < sizeof right; i++)
            o += (size_t)snprintf(right + o, sizeof right - o, " %s", extra[i]);
        int used = (int)strlen(left) + (int)strlen(right) + 3; /* " [" "]" */
        bar_w = W - used;
        if (bar_w >= 10 || ne == 0) break;
        ne--;
    }
    if (bar_w > 60) bar_w = 60;
    char line[1100];
    if (bar_w >= 4) {
        char bar[64];
        if (!(frac >= 0)) frac = 0;
        if (frac > 1) frac = 1;
        int filled = (int)(frac * bar_w);
        for (int i = 0; i < bar_w; i++) bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
        bar[bar_w] = 0;
        snprintf(line, sizeof line, "%s [%s]%s", left, bar, right);
    } else {
        snprintf(line, sizeof line, "%s%s", left, right);
    }
    if ((int)strlen(line) > W && W > 0) line[W] = 0;
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->drawn = true;
}

void cli_progress_update(struct cli_progress *p, int epoch, int batch, int n_batches, float loss, double samples_per_s)
{
    if (!p->on) return;
    double now = sk_now();
    if (batch < n_batches && now - p->last_draw < 0.1) return;
    if (epoch != p->epoch_seen) {
        p->epoch_seen = epoch;
        p->epoch_start = now;
    }
    double frac = n_batches > 0 ? (double)batch / n_batches : 1;
    double el = now - p->epoch_start;
    double per_epoch = frac > 0.02 ? el / frac : NAN;
    int E = p->n_epochs > 0 ? p->n_epochs : 1;
    double eta = per_epoch * ((1 - frac) + (E - epoch - 1));
    if (p->n_members > 1) eta += per_epoch * E * (p->n_members - p->member);
    char left[96], e0[48], e1[48], e2[48], e3[48], t[24], r[24];
    if (p->n_members > 1)
        snprintf(left, sizeof left, "member %d/%d epoch %d/%d", p->member, p->n_members, epoch + 1, E);
    else
        snprintf(left, sizeof left, "epoch %d/%d", epoch + 1, E);
    cli_fmt_time(t, sizeof t, eta);
    fmt_rate(r, sizeof r, samples_per_s);
    snprintf(e0, sizeof e0, "%d/%d", batch, n_batches);
    snprintf(e1, sizeof e1, "ETA %s", t);
    snprintf(e2, sizeof e2, "loss %.4f", loss);
    snprintf(e3, sizeof e3, "%s samples/s", r);
    const char *extra[] = { e0, e1, e2, e3 };
    cli_progress_draw(p, left, frac, extra, 4, batch >= n_batches);
}

void cli_progress_clear(struct cli_progress *p)
{
    if (!p->on || !p->drawn) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->drawn = false;
}

/* ---- wrapping ---- */

void cli_wrap(FILE *fp, const char *text, int indent, int first_col, int width)
{
    /* words never break: a word longer than the line gets a line of its own */
    int col = first_col;
    const char *p = text;
    bool line_start = true;
    while (*p) {
        if (*p == '\n') {
            fputc('\n', fp);
            fprintf(fp, "%*s", indent, "");
            col = indent;
            line_start = true;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        const char *e = p;
        while (*e && *e != ' ' && *e != '\n') e++;
        int len = 0;
        for (const char *q = p; q < e; q++) len += ((unsigned char)*q & 0xC0) != 0x80; /* UTF-8: count code points */
        if (!line_start && col + 1 + len > width - 1) {
            fprintf(fp, "\n%*s", indent, "");
            col = indent;
            line_start = true;
        }
        if (!line_start) {
            fputc(' ', fp);
            col++;
        }
        fwrite(p, 1, (size_t)(e - p), fp);
        col += len;
        line_start = false;
        p = e;
    }
}

/* ---- paging ---- */

FILE *cli_pager_open(void)
{
    if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) return NULL;
    const char *pg = getenv("PAGER");
    if (pg && !*pg) return NULL;
    if (!pg) pg = "less";
    if (!strcmp(pg, "cat")) return NULL;
    /* as git does: less quits when the text fits one screen, keeps colours */
    if (!getenv("LESS")) setenv("LESS", "FRX", 0);
    fflush(stdout);
    return popen(pg, "w");
}

void cli_pager_close(FILE *fp)
{
    if (fp) pclose(fp);
}

/* ---- suggestions ---- */

int cli_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            /* a swap of two neighbours ("trian") is one typo */
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

const char *cli_suggest(const char *word, const char *const *cands, int n)
{
    const char *best = NULL;
    int bd = 99;
    for (int i = 0; i < n; i++) {
        if (!cands[i]) continue;
        int d = cli_edit_distance(word, cands[i]);
        /* "epoch" is a prefix of "epochs": prefixes count as near */
        size_t lw = strlen(word);
        if (lw >= 3 && !strncmp(cands[i], word, lw)) d = d < 1 ? d : 1;
        if (d < bd) {
            bd = d;
            best = cands[i];
        }
    }
    size_t l = strlen(word);
    int limit = l <= 3 ? 1 : l <= 6 ? 2 : 3;
    return bd <= limit ? best : NULL;
}

/* ---- Ctrl-C ---- */

volatile sig_atomic_t cli_interrupted = 0;
static struct sigaction saved_int;
static bool armed;

/* The first SIGINT only asks the work to stop at its next step boundary;
 * the second ends the process at once, as the default action does, after
 * removing the temporary file of an atomic write in progress. */
static void on_interrupt(int sig)
{
    if (cli_interrupted) {
        sk_io_remove_inflight();
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cli_interrupted = 1;
}

void cli_interrupt_arm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    cli_interrupted = 0;
    armed = !sigaction(SIGINT, &sa, &saved_int);
}

void cli_interrupt_disarm(void)
{
    if (armed) sigaction(SIGINT, &saved_int, NULL);
    armed = false;
}

/* ---- numbers for people ---- */

double cli_float_as_given(float v, char *buf, size_t cap)
{
    char tmp[48];
    if (!isfinite(v)) {
        snprintf(buf, cap, "%g", v);
        return v;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if ((float)strtod(tmp, NULL) == v) break;
    }
    snprintf(buf, cap, "%s", tmp);
    return strtod(tmp, NULL);
}
