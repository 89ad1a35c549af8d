/* skeptic export: a model file in another format (ONNX, safetensors). */
#include <string.h>

#include "cli/cli.h"
#include "cli/eval_uncertainty.h"
#include "skeptic/bayes.h"

int cmd_export(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    const char *format = NULL, *out = NULL;
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c),
        { "format", CLI_STR, &format, "F", "onnx | safetensors (default: from the --out suffix)" },
        { "out", CLI_STR, &out, "FILE", "the file to write" },
        CLI_JSON_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "export",
        "skeptic export --model MODEL --out FILE [--format onnx|safetensors]",
        "Write a model in another format. ONNX (opset 13): the input transform as Sub and Mul nodes in front, one\n"
        "node per layer (GELU as its Erf pattern), the weights under their safetensors names, the record (classes,\n"
        "split, input range) in metadata_props; reading the file back gives the same logits bit for bit, and\n"
        "onnx.checker accepts it. safetensors: the skeptic model file (from an ONNX model, say). MODEL may be either.\n"
        "A Bayesian posterior is not exported: its predictive averages samples that one network does not carry.\n"
        "JSON keys: model, out, format, arch, params.",
        "skeptic export --model mlp.safetensors --format onnx --out mlp.onnx\n"
        "skeptic export --model net.onnx --out net.safetensors",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!c.model) return cli_usage("--model FILE is required");
    if (!out) return cli_usage("--out FILE is required");
    if (!format) {
        size_t n = strlen(out);
        format = n > 5 && !strcmp(out + n - 5, ".onnx") ? "onnx" : "safetensors";
    }
    if (strcmp(format, "onnx") && strcmp(format, "safetensors"))
        return cli_usage("--format must be onnx or safetensors (got '%s')", format);
    const struct cli_path outs[] = { { "--out", out, false }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--model", c.model, false }, { NULL, NULL, false } };
    if ((rc = cli_check_outputs(outs, ins))) return rc;
    if (cli_is_posterior_file(c.model))
        return cli_fail("%s holds a Bayesian posterior (or a temperature): its predictive averages several networks' "
                        "probabilities, which one exported network does not carry", c.model);
    char *meta = NULL;
    struct sk_model *m = cli_load_model(&c, &meta);
    if (!m) return CLI_FAIL;
    rc = !strcmp(format, "onnx") ? sk_model_save_onnx(m, out) : sk_model_save(m, out, NULL);
    int status = rc ? cli_fail_lib() : CLI_OK;
    if (!rc && c.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", c.model);
        cJSON_AddStringToObject(o, "out", out);
        cJSON_AddStringToObject(o, "format", format);
        cJSON_AddStringToObject(o, "arch", m->spec);
        cJSON_AddNumberToObject(o, "params", (double)m->n_params);
        cli_json_print(o);
    } else if (!rc) {
        printf("wrote %s (%s, %s, %zu parameters)\n", out, format, m->spec, m->n_params);
    }
    sk_free(meta);
    sk_model_free(m);
    return status;
}
