/*
 * strata -- the Strata command-line tool (docs/cli.md): global options and
 * dispatch to the command groups.
 */
#include "cli.h"

#include "sc_log.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

cli_t cli;

static const char usage[] =
    "usage: strata [global options] <command> [<subcommand>] [options] [args]\n"
    "\n"
    "Commands:\n"
    "  topic create|list|describe|delete|alter-config   manage topics\n"
    "  produce <topic> [file...]                        write lines as records\n"
    "  consume <topic>                                  read records\n"
    "  group list|describe|reset-offsets                consumer groups and their offsets\n"
    "  cluster info                                     brokers, controller, cluster id\n"
    "  plugin list|status [instance...]                 broker plugin instances (-d DATA_DIR)\n"
    "\n"
    "Global options (accepted by every command):\n"
    "  -b, --bootstrap-server HOST:PORT[,...]  brokers to start from (default: $STRATA_BOOTSTRAP,\n"
    "                                          else 127.0.0.1:9092)\n"
    "  -X KEY=VALUE          a libstrata configuration key (docs/client.md), repeatable\n"
    "      --format table|json  output format (default table; consume: a template or json)\n"
    "  -h, --help            help for the command\n"
    "      --version         print the version\n"
    "\n"
    "Exit codes: 0 success, 1 a request failed, 2 usage error.\n"
    "Run 'strata <command> --help' for a command's options.\n";

#define GLOBAL_SHORT "b:X:h"
static const struct option global_long[] = {
    {"bootstrap-server", required_argument, NULL, 'b'},
    {"format", required_argument, NULL, 0x100},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 0x101},
};
#define NGLOBAL (sizeof global_long / sizeof global_long[0])

int cli_global_opt(int c, const char *arg)
{
    char errstr[256];

    switch (c) {
    case 'b':
        if (strata_conf_set(cli.conf, "bootstrap.servers", arg, errstr, sizeof errstr))
            return cli_usage_err("-b %s: %s", arg, errstr);
        return 0;
    case 'X': {
        const char *eq = strchr(arg, '=');
        char key[256];
        if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof key)
            return cli_usage_err("-X wants key=value, got \"%s\"", arg);
        memcpy(key, arg, (size_t)(eq - arg));
        key[eq - arg] = 0;
        if (strata_conf_set(cli.conf, key, eq + 1, errstr, sizeof errstr))
            return cli_usage_err("-X %s: %s", arg, errstr);
        return 0;
    }
    case 0x100:
        cli.format = arg;
        cli.json = !strcmp(arg, "json");
        return 0;
    case 0x101:
        printf("strata %s\n", strata_version());
        exit(0);
    }
    return CLI_USAGE;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               cli_opt_fn on_opt, void *ctx, const char *cmd_usage)
{
    char sopts[128];
    struct option lopts[64];
    size_t n = 0;
    int c, rc;

    snprintf(sopts, sizeof sopts, ":%s%s", shortopts ? shortopts : "", GLOBAL_SHORT);
    for (; longopts && longopts[n].name && n < 64 - NGLOBAL - 1; n++)
        lopts[n] = longopts[n];
    for (size_t i = 0; i < NGLOBAL; i++)
        lopts[n++] = global_long[i];
    memset(&lopts[n], 0, sizeof lopts[n]);
    optind = 0; /* 0: glibc re-initialises (main scanned with "+") */
    opterr = 0;
    while ((c = getopt_long(argc, argv, sopts, lopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(cmd_usage, stdout);
            exit(0);
        }
        if (c == '?') {
            if (optopt)
                cli_usage_err("%s: unknown option -%c", argv[0], optopt);
            else
                cli_usage_err("%s: unknown option %s", argv[0], argv[optind - 1]);
            return -1;
        }
        if (c == ':') {
            cli_usage_err("%s: option %s needs a value", argv[0], argv[optind - 1]);
            return -1;
        }
        if (c == 'b' || c == 'X' || c == 0x100 || c == 0x101)
            rc = cli_global_opt(c, optarg);
        else
            rc = on_opt ? on_opt(c, optarg, ctx) : CLI_USAGE;
        if (rc)
            return -1;
    }
    if (cli.format && strcmp(cli.format, "json") && strcmp(cli.format, "table") &&
        strcmp(argv[0], "consume")) {
        cli_usage_err("--format: want table or json, got \"%s\"", cli.format);
        return -1;
    }
    return optind;
}

int main(int argc, char **argv)
{
    const char *bs = getenv("STRATA_BOOTSTRAP");
    char errstr[256];
    int c, rc;

    signal(SIGPIPE, SIG_IGN);
    /* libstrata logs warnings and errors only; STRATA_LOG="info,client=debug" for more */
    const char *logspec = getenv("STRATA_LOG");
    sc_log_set_level(SC_LOG_WARN);
    if (logspec && *logspec && sc_log_configure(logspec))
        fprintf(stderr, "strata: STRATA_LOG: cannot parse \"%s\" (ignored)\n", logspec);
    if (!(cli.conf = strata_conf_new())) {
        fputs("strata: out of memory\n", stderr);
        return CLI_FAIL;
    }
    if (strata_conf_set(cli.conf, "bootstrap.servers", bs && *bs ? bs : "127.0.0.1:9092", errstr,
                        sizeof errstr)) {
        fprintf(stderr, "strata: STRATA_BOOTSTRAP: %s\n", errstr);
        return CLI_USAGE;
    }
    strata_conf_set(cli.conf, "client.id", "strata-cli", NULL, 0);
    /* global options before the command */
    struct option lopts[NGLOBAL + 1];
    memcpy(lopts, global_long, sizeof global_long);
    memset(&lopts[NGLOBAL], 0, sizeof lopts[NGLOBAL]);
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:" GLOBAL_SHORT, lopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (c == '?' || c == ':')
            return cli_usage_err("bad global option %s", argv[optind - 1]);
        if ((rc = cli_global_opt(c, optarg)))
            return rc;
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[optind];
    int cargc = argc - optind;
    char **cargv = argv + optind;
    if (!strcmp(cmd, "topic"))
        rc = cmd_topic(cargc, cargv);
    else if (!strcmp(cmd, "produce"))
        rc = cmd_produce(cargc, cargv);
    else if (!strcmp(cmd, "consume"))
        rc = cmd_consume(cargc, cargv);
    else if (!strcmp(cmd, "group"))
        rc = cmd_group(cargc, cargv);
    else if (!strcmp(cmd, "cluster"))
        rc = cmd_cluster(cargc, cargv);
    else if (!strcmp(cmd, "plugin"))
        rc = cmd_plugin(cargc, cargv);
    else if (!strcmp(cmd, "help")) {
        fputs(usage, stdout);
        rc = 0;
    } else
        rc = cli_usage_err("unknown command \"%s\"", cmd);
    fflush(stdout);
    strata_conf_free(cli.conf);
    return rc;
}
