/*
 * cli_cluster -- strata cluster info.
 */
#include "cli.h"

#include <string.h>

static const char cluster_usage[] =
    "usage: strata cluster info [options]\n"
    "\n"
    "Prints the cluster id, the controller, every broker (id, host, port) and\n"
    "the number of topics and partitions the cluster lists (Kafka lists its\n"
    "internal topics among them, Strata does not).\n"
    "  plus the global options (strata --help)\n";

static int cluster_info(int argc, char **argv)
{
    int i = cli_getopt(argc, argv, "", NULL, NULL, NULL, cluster_usage);
    strata_admin_t *a;
    strata_metadata_t *md = NULL;
    size_t nparts = 0;

    if (i < 0)
        return CLI_USAGE;
    if (i < argc)
        return cli_usage_err("cluster info: unexpected argument \"%s\"", argv[i]);
    if (!(a = cli_admin()))
        return CLI_FAIL;
    strata_err_t err = strata_admin_describe_topics(a, NULL, 0, -1, &md);
    strata_admin_free(a);
    if (err)
        return cli_fail(err, "cluster metadata");
    for (size_t t = 0; t < md->topic_count; t++)
        nparts += md->topics[t].partition_count;
    if (cli.json) {
        jw_t j;
        jw_init(&j, stdout);
        jw_obj(&j);
        jw_key(&j, "cluster_id");
        jw_str(&j, md->cluster_id);
        jw_key(&j, "controller_id");
        jw_int(&j, md->controller_id);
        jw_key(&j, "brokers");
        jw_arr(&j);
        for (size_t b = 0; b < md->broker_count; b++) {
            jw_obj(&j);
            jw_key(&j, "id");
            jw_int(&j, md->brokers[b].node_id);
            jw_key(&j, "host");
            jw_str(&j, md->brokers[b].host);
            jw_key(&j, "port");
            jw_int(&j, md->brokers[b].port);
            jw_key(&j, "controller");
            jw_bool(&j, md->brokers[b].node_id == md->controller_id);
            jw_obj_end(&j);
        }
        jw_arr_end(&j);
        jw_key(&j, "topics");
        jw_int(&j, (int64_t)md->topic_count);
        jw_key(&j, "partitions");
        jw_int(&j, (int64_t)nparts);
        jw_obj_end(&j);
        jw_end(&j);
    } else {
        printf("CLUSTER\n=======\n");
        cli_table_t *t = tbl_new(2, "CLUSTER-ID", md->cluster_id ? md->cluster_id : "-");
        tbl_rowf(t, "CONTROLLER\t%d", md->controller_id);
        tbl_rowf(t, "TOPICS\t%zu", md->topic_count);
        tbl_rowf(t, "PARTITIONS\t%zu", nparts);
        tbl_print(t, stdout);
        printf("\nBROKERS\n=======\n");
        t = tbl_new(3, "ID", "HOST", "PORT");
        for (size_t b = 0; b < md->broker_count; b++)
            tbl_rowf(t, "%d%s\t%s\t%d", md->brokers[b].node_id,
                     md->brokers[b].node_id == md->controller_id ? "*" : "", md->brokers[b].host,
                     md->brokers[b].port);
        tbl_print(t, stdout);
    }
    strata_metadata_free(md);
    return CLI_OK;
}

int cmd_cluster(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(cluster_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "info"))
        return cluster_info(argc - 1, argv + 1);
    return cli_usage_err("cluster: unknown subcommand \"%s\"", argv[1]);
}
