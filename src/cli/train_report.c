/* The progress and epoch lines of every training run (train_report.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli/train_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_train_report_init(struct cli_train_report *r, int n_epochs, int n_members)
{
    memset(r, 0, sizeof *r);
    cli_progress_init(&r->prog, n_epochs);
    r->n_epochs = n_epochs;
    r->n_members = n_members;
    r->member = 1;
    r->member_mode = n_members > 1;
    r->ckpt_step = -1;
    r->last_epoch = -1;
    if (r->member_mode) cli_progress_member(&r->prog, 1, n_members);
}

/* An ensemble's next member starts at epoch 0 again. */
static void track_member(struct cli_train_report *r, int epoch, int batch)
{
    bool restart = r->last_epoch >= 0 && (epoch < r->last_epoch || (epoch == r->last_epoch && batch < r->last_batch));
    if (restart && r->member_mode) {
        r->member++;
        cli_progress_member(&r->prog, r->member, r->n_members);
    } else if (restart && r->next_phase) {
        r->phase = r->next_phase;
        r->n_epochs = r->prog.n_epochs = r->next_epochs;
        r->next_phase = NULL;
        r->prog.epoch_seen = -1;
    }
    r->last_epoch = epoch;
    r->last_batch = batch;
}

void cli_train_on_batch(void *ctx, int epoch, int batch, int n_batches, float loss, double sps)
{
    struct cli_train_report *r = ctx;
    track_member(r, epoch, batch);
    cli_progress_update(&r->prog, epoch, batch, n_batches, loss, sps);
}

/* "member 2/5 epoch 3/10" or "sampling epoch 1/2" or "epoch 3/10". */
static void epoch_label(const struct cli_train_report *r, int epoch, char *b, size_t cap)
{
    if (r->member_mode)
        snprintf(b, cap, "member %d/%d epoch %d/%d", r->member, r->n_members, epoch + 1, r->n_epochs);
    else if (r->phase)
        snprintf(b, cap, "%s epoch %d/%d", r->phase, epoch + 1, r->n_epochs);
    else
        snprintf(b, cap, "epoch %d/%d", epoch + 1, r->n_epochs);
}

int cli_train_on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    struct cli_train_report *r = ctx;
    /* an epoch without batches seen (a resumed run at an epoch's end) still counts */
    track_member(r, em->epoch, 1 << 30);
    cli_progress_clear(&r->prog);
    r->last = *em;
    r->epochs_run++;
    if (cli_verbosity >= 0) {
        char lab[64], line[512];
        epoch_label(r, em->epoch, lab, sizeof lab);
        int o = snprintf(line, sizeof line, "%s  loss %.4f  acc %.2f%%", lab, em->train_loss, 100 * em->train_acc);
        if (!isnan(em->val_loss))
            o += snprintf(line + o, sizeof line - (size_t)o, "  val loss %.4f  val acc %.2f%%%s", em->val_loss,
                          100 * em->val_acc, em->improved ? " *" : "");
        char t[24];
        cli_fmt_time(t, sizeof t, em->seconds);
        if (cli_verbosity > 0)
            snprintf(line + o, sizeof line - (size_t)o, "  lr %.3g  %s  %.0f samples/s", em->lr, t, em->samples_per_s);
        else
            snprintf(line + o, sizeof line - (size_t)o, "  %s", t);
        /* one line that fits: the tail goes first on a narrow terminal */
        int W = isatty(2) ? cli_term_width(stderr) - 1 : (int)sizeof line;
        if ((int)strlen(line) > W && W > 20) line[W] = 0;
        fprintf(stderr, "%s\n", line);
    }
    if (r->log) {
        cJSON *o = cJSON_CreateObject();
        if (r->member_mode) cJSON_AddNumberToObject(o, "member", r->member);
        if (r->phase) cJSON_AddStringToObject(o, "phase", r->phase);
        cJSON_AddNumberToObject(o, "epoch", em->epoch + 1);
        cli_json_num(o, "train_loss", em->train_loss);
        cli_json_num(o, "train_acc", em->train_acc);
        cli_json_num(o, "val_loss", em->val_loss);
        cli_json_num(o, "val_acc", em->val_acc);
        cli_json_num(o, "lr", em->lr);
        cli_json_num(o, "seconds", em->seconds);
        cli_json_num(o, "samples_per_s", em->samples_per_s);
        cJSON_AddBoolToObject(o, "improved", em->improved);
        char *txt = cJSON_PrintUnformatted(o);
        if (txt) {
            fprintf(r->log, "%s\n", txt);
            fflush(r->log);
            free(txt);
        }
        cJSON_Delete(o);
    }
    return 0;
}

int cli_train_on_checkpoint(void *ctx, struct sk_trainer *t)
{
    struct cli_train_report *r = ctx;
    if (!r->ckpt) return 0;
    int rc = sk_checkpoint_save(r->ckpt, t, r->ckpt_meta);
    if (!rc) r->ckpt_step = t->st.step;
    return rc;
}

void cli_train_interrupted(const struct cli_train_report *r, int epoch, int batch, long step, const char *what)
{
    cli_progress_clear((struct cli_progress *)&r->prog);
    char where[96];
    int o = 0;
    if (r->member_mode) o = snprintf(where, sizeof where, "member %d/%d, ", r->member, r->n_members);
    else if (r->phase) o = snprintf(where, sizeof where, "%s, ", r->phase);
    o += snprintf(where + o, sizeof where - (size_t)o, "epoch %d, batch %d", epoch + 1, batch);
    if (step >= 0) snprintf(where + o, sizeof where - (size_t)o, " (step %ld)", step);
    fprintf(stderr, "skeptic train: %sinterrupted%s at %s\n  ", cli_sgr(stderr, CLI_STYLE_WARN),
            cli_sgr(stderr, CLI_STYLE_OFF), where);
    cli_wrap(stderr, what, 2, 2, isatty(2) ? cli_term_width(stderr) : 100);
    fputc('\n', stderr);
}

cJSON *cli_train_summary_json(const struct cli_train_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", s->out);
    cJSON_AddStringToObject(o, "arch", s->arch);
    cJSON_AddStringToObject(o, "method", s->method);
    cJSON_AddNumberToObject(o, "params", (double)s->params);
    cJSON_AddNumberToObject(o, "epochs_run", s->epochs_run);
    cJSON_AddNumberToObject(o, "train_rows", s->train_rows);
    cJSON_AddNumberToObject(o, "val_rows", s->val_rows);
    cJSON_AddNumberToObject(o, "test_rows", s->test_rows);
    cli_json_num(o, "train_loss", s->train_loss);
    cli_json_num(o, "train_acc", s->train_acc);
    cli_json_num(o, "val_loss", s->val_loss);
    cli_json_num(o, "test_accuracy", s->test_acc);
    if (s->test_rows > 0) cJSON_AddNumberToObject(o, "test_correct", (double)s->test_correct);
    else cJSON_AddNullToObject(o, "test_correct");
    cli_json_num(o, "test_loss", s->test_loss);
    cli_json_num(o, "seconds", s->seconds);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)s->weights_hash);
    cJSON_AddStringToObject(o, "weights_fnv1a64", hash);
    return o;
}

void cli_train_summary_print(const struct cli_train_summary *s)
{
    char t[24];
    cli_fmt_time(t, sizeof t, s->seconds);
    char line[2048];
    snprintf(line, sizeof line, "%s (%s, %zu parameters%s%s)", s->out, s->arch, s->params,
             strcmp(s->method, "deterministic") ? ", " : "", strcmp(s->method, "deterministic") ? s->method : "");
    printf("model      ");
    cli_wrap(stdout, line, 11, 11, isatty(1) ? cli_term_width(stdout) : 1000);
    putchar('\n');
    printf("trained    %d epoch%s on %d rows in %s\n", s->epochs_run, s->epochs_run == 1 ? "" : "s", s->train_rows, t);
    if (s->test_rows > 0 && !isnan(s->test_acc))
        printf("test       accuracy %.2f%% (%ld/%d)  loss %.4f\n", 100 * s->test_acc, s->test_correct, s->test_rows,
               s->test_loss);
}
