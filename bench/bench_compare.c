/*
 * bench_compare -- `strata-bench compare`: the peer comparison in one command.
 *
 * Starts, on free loopback ports with data under --dir:
 *   stratad (fsync)   its default: every acks=all answer waits for fdatasync
 *   stratad (OS)      log.flush.interval.messages = max: flushing left to the OS
 *   nats-server       JetStream on, file store (2.9.10: acks after the write to
 *                     the OS, fsync every 2 min; no per-ack sync option)
 * and runs, --runs times, interleaved (the order of the systems rotates each
 * run), the same three workloads against each system/client pair:
 *   produce  max rate for --duration s (1 KiB records, acks=all, 1 partition)
 *   consume  catch-up read of what produce wrote
 *   latency  --rate records/s for --duration s, end-to-end from intended send
 * Every server it started is stopped by pid on exit, on failure and on
 * SIGINT/SIGTERM (and dies with us: PR_SET_PDEATHSIG). Prints min/median/max
 * over runs, ratios computed per run, and the goals.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SRV 12 /* --cluster: ZooKeeper, N stratad, N nats-server */
static pid_t g_pids[MAX_SRV];
static int g_zk_slot = -1; /* stopped after the brokers (their controlled shutdown needs it) */

static void stop_servers_phase(int zk);

static void stop_servers(void)
{
    stop_servers_phase(0);
    stop_servers_phase(1);
}

static void stop_servers_phase(int zk)
{
    for (int i = 0; i < MAX_SRV; i++)
        if (g_pids[i] > 0 && (i == g_zk_slot) == zk)
            kill(g_pids[i], SIGTERM);
    for (int i = 0; i < MAX_SRV; i++) {
        if (g_pids[i] <= 0 || (i == g_zk_slot) != zk)
            continue;
        for (int k = 0; k < 100; k++) { /* 10 s, then SIGKILL */
            if (waitpid(g_pids[i], NULL, WNOHANG) == g_pids[i])
                break;
            if (k == 99) {
                kill(g_pids[i], SIGKILL);
                waitpid(g_pids[i], NULL, 0);
            }
            usleep(100000);
        }
        g_pids[i] = 0;
    }
}

static void on_signal(int sig)
{
    for (int i = 0; i < MAX_SRV; i++)
        if (g_pids[i] > 0)
            kill(g_pids[i], SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &l)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts argv with stdout/stderr to log; waits until port accepts (timeout_s). */
static int start_server_t(int slot, char *const argv[], const char *log, int port, int timeout_s)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    g_pids[slot] = pid;
    for (int i = 0; i < timeout_s * 20; i++) {
        if (port_open(port))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            g_pids[slot] = 0;
            fprintf(stderr, "strata-bench compare: %s exited at start; see %s\n", argv[0], log);
            return -1;
        }
        usleep(50000);
    }
    fprintf(stderr, "strata-bench compare: %s did not listen on %d in %d s; see %s\n", argv[0],
            port, timeout_s, log);
    return -1;
}

static int start_server(int slot, char *const argv[], const char *log, int port)
{
    return start_server_t(slot, argv, log, port, 10);
}

typedef struct {
    const char *label;  /* "libstrata -> stratad" */
    const char *server; /* "stratad (fsync)" */
    bench_client_t client;
    int srv; /* 0 stratad fsync (--cluster: the cluster), 1 stratad os, 2 nats */
    int rf, min_insync; /* --cluster: topic / stream replicas, min.insync.replicas */
    const char *durability;
    int runs_ok;
    double p_rps[64], p_mbps[64], c_rps[64], c_mbps[64], p50[64], p99[64], p999[64], pmax[64],
        ack_p99[64];
    int ok[64];
} sys_t;

static const char *DUR_FSYNC = "fsync per ack: stratad answers acks=all after fdatasync (group commit)";
static const char *DUR_OS = "no fsync per ack: stratad with log.flush.interval.messages=max (OS writeback)";
static const char *DUR_NATS = "no fsync per ack: nats-server 2.9.10 JetStream file store acks after write(2); fsync every 2 min; no per-ack sync option in this version";

static void self_dir(char *out, size_t n)
{
    ssize_t l = readlink("/proc/self/exe", out, n - 1);
    if (l < 0)
        l = 0;
    out[l] = 0;
    char *s = strrchr(out, '/');
    if (s)
        *s = 0;
}

static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

static void cmd_version(const char *path, char *out, size_t n)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "'%s' --version 2>&1", path);
    FILE *p = popen(cmd, "r");
    out[0] = 0;
    if (p) {
        if (!fgets(out, (int)n, p))
            out[0] = 0;
        pclose(p);
    }
    out[strcspn(out, "\n")] = 0;
}

static bench_stats_t st(const double *v, int n)
{
    double tmp[64];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > 0)
            tmp[k++] = v[i];
    if (!k)
        return (bench_stats_t){0, 0, 0};
    return bench_stats(tmp, k);
}

static void fmt3(char *out, size_t n, bench_stats_t s, int dec)
{
    if (dec)
        snprintf(out, n, "%.2f/%.2f/%.2f", s.min, s.median, s.max);
    else
        snprintf(out, n, "%.0f/%.0f/%.0f", s.min, s.median, s.max);
}

static void json_stats(FILE *f, const char *name, const double *v, int n)
{
    bench_stats_t s = st(v, n);
    fprintf(f, "\"%s\":{\"min\":%.3f,\"median\":%.3f,\"max\":%.3f,\"runs\":[", name, s.min,
            s.median, s.max);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.3f", i ? "," : "", v[i]);
    fprintf(f, "]}");
}

/* ratio a/b per run (both > 0) */
static int ratios(const double *a, const double *b, int n, double *out)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (a[i] > 0 && b[i] > 0)
            out[k++] = a[i] / b[i];
    return k;
}

/* The disk's floor for a durable ack: 10 KiB appends, each followed by
 * fdatasync, for `secs` in dir. Writes p50/p99 (ms) and appends/s. */
static int fsync_probe(const char *dir, double secs, double *p50, double *p99, double *rate)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    static char buf[10240];
    memset(buf, 'x', sizeof buf);
    sc_hist_t *h = malloc(sizeof *h);
    if (!h) {
        close(fd);
        return -1;
    }
    sc_hist_init(h);
    struct timespec a, b, t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double el = 0;
    while (el < secs) {
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            break;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (fdatasync(fd))
            break;
        clock_gettime(CLOCK_MONOTONIC, &b);
        sc_hist_record(h, (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec)));
        el = (double)(b.tv_sec - t0.tv_sec) + (double)(b.tv_nsec - t0.tv_nsec) / 1e9;
    }
    close(fd);
    unlink(path);
    *p50 = (double)sc_hist_percentile(h, 50) / 1e6;
    *p99 = (double)sc_hist_percentile(h, 99) / 1e6;
    *rate = el > 0 ? (double)h->count / el : 0;
    int rc = h->count ? 0 : -1;
    free(h);
    return rc;
}

static const char *DUR_RF1 =
    "RF=1: one copy; stratad answers acks=all after the leader's fdatasync (group commit)";
static const char *DUR_RF3 =
    "RF=N, min.insync.replicas=N/2+1: acks=all answered once every in-sync replica (all N while "
    "up) has fetched the records, a follower fetching on only after its own flush (fdatasync) "
    "-- N fsynced copies";
static const char *DUR_JS3 = "replicas=N stream: ack after a Raft quorum stored it with write(2); "
                             "nats-server 2.9.10 fsyncs every 2 min, no per-ack sync option";

#define ZK_JAR "/usr/share/java/zookeeper.jar"

/* --cluster N: ZooKeeper (slot 0), stratad brokers 1..N (slots 1..N, one at a
 * time), nats-server nodes (slots N+1..2N, each routed to the others). kboot
 * gets the bootstrap list, nurl node 1's URL (the client connects there; the
 * stream's replicas are spread over the cluster). 0, -1 failure, 3 ZooKeeper
 * or java missing / not starting. */
static int start_cluster(int n, const char *dir, const char *stratad, const char *nats,
                         int have_nats, char *kboot, size_t kn, char *nurl, size_t nn)
{
    char java[PATH_MAX] = "";
    FILE *p = popen("command -v java 2>/dev/null", "r");
    if (p && fgets(java, sizeof java, p))
        java[strcspn(java, "\n")] = 0;
    if (p)
        pclose(p);
    if (!java[0] || access(ZK_JAR, R_OK)) {
        fprintf(stderr, "strata-bench compare: --cluster needs java and %s (Debian's zookeeper "
                        "package: bash scripts/deps.sh)\n", ZK_JAR);
        return 3;
    }
    char zkdir[PATH_MAX + 16], zklog[PATH_MAX + 16], zkport[16];
    snprintf(zkdir, sizeof zkdir, "%s/zk", dir);
    snprintf(zklog, sizeof zklog, "%s/zk.log", dir);
    bench_mkdir_p(zkdir);
    int zp = free_port();
    snprintf(zkport, sizeof zkport, "%d", zp);
    char *za[] = {java, "-Xmx256m", "-Dzookeeper.admin.enableServer=false", "-cp",
                  ZK_JAR ":/usr/share/java/*", "org.apache.zookeeper.server.ZooKeeperServerMain",
                  zkport, zkdir, NULL};
    g_zk_slot = 0;
    if (start_server_t(0, za, zklog, zp, 30)) {
        fprintf(stderr, "strata-bench compare: ZooKeeper did not start (see %s)\n", zklog);
        return 3;
    }
    kboot[0] = nurl[0] = 0;
    for (int i = 1; i <= n; i++) {
        int port = free_port();
        char o[7][PATH_MAX + 48], log[PATH_MAX + 32], bdir[PATH_MAX + 16];
        snprintf(bdir, sizeof bdir, "%s/stratad-%d", dir, i);
        snprintf(log, sizeof log, "%s/stratad-%d.log", dir, i);
        snprintf(o[0], sizeof o[0], "listeners=PLAINTEXT://127.0.0.1:%d", port);
        snprintf(o[1], sizeof o[1], "log.dirs=%s", bdir);
        snprintf(o[2], sizeof o[2], "log.level=warn");
        snprintf(o[3], sizeof o[3], "metadata.store=zookeeper");
        snprintf(o[4], sizeof o[4], "zookeeper.connect=127.0.0.1:%d/strata", zp);
        snprintf(o[5], sizeof o[5], "broker.id=%d", i);
        snprintf(o[6], sizeof o[6], "admin.listener=127.0.0.1:%d", free_port());
        char *a[] = {(char *)stratad, "--override", o[0], "--override", o[1], "--override", o[2],
                     "--override", o[3], "--override", o[4], "--override", o[5], "--override",
                     o[6], NULL};
        if (start_server_t(i, a, log, port, 30))
            return -1;
        size_t l = strlen(kboot);
        snprintf(kboot + l, kn - l, "%s127.0.0.1:%d", i > 1 ? "," : "", port);
    }
    if (!have_nats)
        return 0;
    int cp[MAX_SRV], np[MAX_SRV];
    for (int i = 0; i < n; i++) {
        cp[i] = free_port();
        np[i] = free_port();
    }
    for (int i = 0; i < n; i++) {
        char sport[16], name[32], sd[PATH_MAX + 16], clu[64], routes[512] = "", log[PATH_MAX + 32];
        snprintf(sport, sizeof sport, "%d", np[i]);
        snprintf(name, sizeof name, "nats-%d", i + 1);
        snprintf(sd, sizeof sd, "%s/nats-%d", dir, i + 1);
        snprintf(log, sizeof log, "%s/nats-%d.log", dir, i + 1);
        snprintf(clu, sizeof clu, "nats://127.0.0.1:%d", cp[i]);
        for (int j = 0; j < n; j++) {
            if (j == i)
                continue;
            size_t l = strlen(routes);
            snprintf(routes + l, sizeof routes - l, "%snats://127.0.0.1:%d", l ? "," : "", cp[j]);
        }
        char *a[] = {(char *)nats, "-a", "127.0.0.1", "-p", sport, "-n", name, "-js", "-sd", sd,
                     "--cluster_name", "strata-bench", "--cluster", clu, "--routes", routes, NULL};
        if (start_server_t(n + 1 + i, a, log, np[i], 30))
            return -1;
        if (i == 0)
            snprintf(nurl, nn, "nats://127.0.0.1:%d", np[i]);
    }
    return 0;
}

/* Waits (up to 60 s) until an RF=rf topic / replicas=rf stream can be created
 * (every broker registered, the JetStream meta leader elected); removes it. */
static int cluster_ready(bench_client_t cl, const char *addr, int rf, int misr)
{
    char err[256] = "";
    bench_cfg_t c;
    bench_cfg_defaults(&c, BW_PRODUCE);
    c.client = cl;
    c.brokers = addr;
    c.create = 1;
    c.replication_factor = rf;
    c.min_insync = misr;
    snprintf(c.topic, sizeof c.topic, "cmp-ready");
    for (int i = 0; i < 120; i++) {
        int rc = cl == BC_NATS ? bench_ops_nats()->setup(&c, err, sizeof err)
                               : bench_kafka_setup_topic_rf(addr, c.topic, 1, 1, rf, misr, err,
                                                            sizeof err);
        if (rc > 0) {
            cl == BC_NATS ? bench_ops_nats()->teardown(&c, err, sizeof err)
                          : bench_kafka_delete_topic(addr, c.topic, err, sizeof err);
            return 0;
        }
        usleep(500000);
    }
    fprintf(stderr, "strata-bench compare: %s cluster not ready after 60 s: %s\n",
            cl == BC_NATS ? "JetStream" : "stratad", err);
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: strata-bench compare [options]\n"
               "  --runs N            repetitions, interleaved (default 3)\n"
               "  --duration S        seconds of each produce and latency run (default 5)\n"
               "  --rate N            latency workload rate, records/s (default 5000)\n"
               "  -s, --message-size B  record size (default 1024)\n"
               "  --max-pending N     NATS outstanding async publishes (default 4096)\n"
               "  --stratad PATH      default: next to strata-bench\n"
               "  --nats-server PATH  default: nats-server on PATH, else /usr/sbin/nats-server\n"
               "  --dir DIR           server data and logs (default ./bench-data/compare; removed\n"
               "                      after a clean run, kept after a failure or Ctrl-C)\n"
               "  --latency-linger-ms N  Kafka producers' linger.ms in the latency runs (default 0;\n"
               "                      the produce runs keep 5)\n"
               "  --no-rdkafka        skip librdkafka\n"
               "  --cluster N         replication comparison instead: ZooKeeper + N stratad\n"
               "                      (metadata.store=zookeeper) and an N-node JetStream cluster;\n"
               "                      stratad RF=1, stratad RF=N (min.insync.replicas N/2+1) and a\n"
               "                      replicas=N stream (N 2..5; the issue's case is 3)\n"
               "  --json              one JSON object on stdout (the table goes to stderr)\n");
}

int bench_compare_main(int argc, char **argv)
{
    int runs = 3, msg = 1024, max_pending = 4096, json = 0, no_rdkafka = 0, lat_linger = 0,
        cluster = 0;
    double duration = 5, rate = 5000;
    char stratad[PATH_MAX], nats[PATH_MAX] = "", dir[PATH_MAX] = "bench-data/compare";
    self_dir(stratad, sizeof stratad - 16);
    strcat(stratad, "/stratad");
    enum { O_RUNS = 256, O_DUR, O_RATE, O_PEND, O_SD, O_NATS, O_DIR, O_NORK, O_JSON, O_LL, O_CL };
    static const struct option lo[] = {
        {"runs", 1, 0, O_RUNS},         {"duration", 1, 0, O_DUR},   {"rate", 1, 0, O_RATE},
        {"message-size", 1, 0, 's'},    {"max-pending", 1, 0, O_PEND}, {"stratad", 1, 0, O_SD},
        {"nats-server", 1, 0, O_NATS},  {"dir", 1, 0, O_DIR},        {"no-rdkafka", 0, 0, O_NORK},
        {"json", 0, 0, O_JSON},         {"latency-linger-ms", 1, 0, O_LL},
        {"cluster", 1, 0, O_CL},
        {"help", 0, 0, 'h'},            {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
        switch (o) {
        case O_RUNS: runs = atoi(optarg); break;
        case O_DUR: duration = atof(optarg); break;
        case O_RATE: rate = atof(optarg); break;
        case 's': msg = atoi(optarg); break;
        case O_PEND: max_pending = atoi(optarg); break;
        case O_SD: snprintf(stratad, sizeof stratad, "%s", optarg); break;
        case O_NATS: snprintf(nats, sizeof nats, "%s", optarg); break;
        case O_DIR: snprintf(dir, sizeof dir, "%s", optarg); break;
        case O_NORK: no_rdkafka = 1; break;
        case O_JSON: json = 1; break;
        case O_LL: lat_linger = atoi(optarg); break;
        case O_CL: cluster = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (runs < 1 || runs > 64 || duration <= 0 || rate <= 0 || msg < BENCH_HDR ||
        (cluster && (cluster < 2 || cluster > 5))) {
        fprintf(stderr, "strata-bench compare: --runs 1..64, --duration > 0, --rate > 0, "
                        "--message-size >= %d, --cluster 2..5\n", BENCH_HDR);
        return 2;
    }
    if (!nats[0]) {
        FILE *p = popen("command -v nats-server 2>/dev/null", "r");
        if (p && fgets(nats, sizeof nats, p))
            nats[strcspn(nats, "\n")] = 0;
        if (p)
            pclose(p);
        if (!nats[0])
            snprintf(nats, sizeof nats, "/usr/sbin/nats-server");
    }
    if (access(stratad, X_OK)) {
        fprintf(stderr, "strata-bench compare: no stratad at %s (--stratad)\n", stratad);
        return 2;
    }
    int have_nats = bench_ops_nats() && !access(nats, X_OK);
    if (!have_nats)
        fprintf(stderr, "strata-bench compare: %s; JetStream left out\n",
                bench_ops_nats() ? "nats-server not found" : "built without libnats-dev");
    int have_rk = bench_ops_rdkafka() && !no_rdkafka && !cluster;
    int misr = cluster / 2 + 1;
    char lab_rf1[32], lab_rfn[32], lab_js[32];
    snprintf(lab_rf1, sizeof lab_rf1, "stratad RF=1");
    snprintf(lab_rfn, sizeof lab_rfn, "stratad RF=%d", cluster);
    snprintf(lab_js, sizeof lab_js, "JetStream R%d", cluster);
    FILE *out = json ? stderr : stdout;

    sys_t sys[4];
    int nsys = 0;
    memset(sys, 0, sizeof sys);
    if (cluster) {
        sys[nsys++] = (sys_t){.label = "libstrata -> stratad", .server = lab_rf1,
                              .client = BC_LIBSTRATA, .srv = 0, .durability = DUR_RF1, .rf = 1};
        sys[nsys++] = (sys_t){.label = "libstrata -> stratad", .server = lab_rfn,
                              .client = BC_LIBSTRATA, .srv = 0, .durability = DUR_RF3,
                              .rf = cluster, .min_insync = misr};
        if (have_nats)
            sys[nsys++] = (sys_t){.label = "nats.c -> JetStream", .server = lab_js,
                                  .client = BC_NATS, .srv = 2, .durability = DUR_JS3,
                                  .rf = cluster};
    } else {
        sys[nsys++] = (sys_t){.label = "libstrata -> stratad", .server = "stratad (fsync)",
                              .client = BC_LIBSTRATA, .srv = 0, .durability = DUR_FSYNC};
        if (have_rk)
            sys[nsys++] = (sys_t){.label = "librdkafka -> stratad", .server = "stratad (fsync)",
                                  .client = BC_RDKAFKA, .srv = 0, .durability = DUR_FSYNC};
        sys[nsys++] = (sys_t){.label = "libstrata -> stratad", .server = "stratad (OS flush)",
                              .client = BC_LIBSTRATA, .srv = 1, .durability = DUR_OS};
        if (have_nats)
            sys[nsys++] = (sys_t){.label = "nats.c -> JetStream", .server = "nats-server (file)",
                                  .client = BC_NATS, .srv = 2, .durability = DUR_NATS};
    }

    /* servers */
    char d_fsync[PATH_MAX + 16], d_os[PATH_MAX + 16], d_nats[PATH_MAX + 16], logs[3][PATH_MAX + 32];
    bench_rm_rf(dir);
    if (bench_mkdir_p(dir)) {
        fprintf(stderr, "strata-bench compare: mkdir %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(d_fsync, sizeof d_fsync, "%s/stratad-fsync", dir);
    snprintf(d_os, sizeof d_os, "%s/stratad-os", dir);
    snprintf(d_nats, sizeof d_nats, "%s/nats", dir);
    for (int i = 0; i < 3; i++)
        snprintf(logs[i], sizeof logs[i], "%s/%s.log", dir,
                 i == 0 ? "stratad-fsync" : i == 1 ? "stratad-os" : "nats-server");
    atexit(stop_servers);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    int ports[3] = {0, 0, 0};
    char addr[3][512];
    int crc = 0;
    if (cluster) {
        crc = start_cluster(cluster, dir, stratad, nats, have_nats, addr[0], sizeof addr[0],
                            addr[2], sizeof addr[2]);
        snprintf(addr[1], sizeof addr[1], "%s", addr[0]);
        if (!crc && (cluster_ready(BC_LIBSTRATA, addr[0], cluster, misr) ||
                     (have_nats && cluster_ready(BC_NATS, addr[2], cluster, 0))))
            crc = -1;
        if (crc) {
            stop_servers();
            fprintf(stderr, "strata-bench compare: cluster start failed; logs kept in %s\n", dir);
            return crc == 3 ? 3 : 1;
        }
    }
    for (int i = 0; i < 3 && !cluster; i++) {
        ports[i] = free_port();
        snprintf(addr[i], sizeof addr[i], i == 2 ? "nats://127.0.0.1:%d" : "127.0.0.1:%d",
                 ports[i]);
    }
    char lis[2][96], ldir[2][PATH_MAX + 32], sport[16];
    for (int i = 0; i < 2; i++) {
        snprintf(lis[i], sizeof lis[i], "listeners=PLAINTEXT://127.0.0.1:%d", ports[i]);
        snprintf(ldir[i], sizeof ldir[i], "log.dirs=%s", i ? d_os : d_fsync);
    }
    char *a0[] = {stratad, "--override", lis[0], "--override", ldir[0], "--override",
                  "log.level=warn", NULL};
    char *a1[] = {stratad, "--override", lis[1], "--override", ldir[1], "--override",
                  "log.level=warn", "--override",
                  "log.flush.interval.messages=9223372036854775807", NULL};
    snprintf(sport, sizeof sport, "%d", ports[2]);
    char *a2[] = {nats, "-a", "127.0.0.1", "-p", sport, "-js", "-sd", d_nats, NULL};
    if (!cluster && (start_server(0, a0, logs[0], ports[0]) || start_server(1, a1, logs[1], ports[1]) ||
        (have_nats && start_server(2, a2, logs[2], ports[2])))) {
        stop_servers();
        return 1;
    }
    char nver[128] = "", sver[128] = "";
    if (have_nats)
        cmd_version(nats, nver, sizeof nver);
    cmd_version(stratad, sver, sizeof sver);
    double fs50 = 0, fs99 = 0, fsrate = 0;
    fsync_probe(dir, 2, &fs50, &fs99, &fsrate);
    double load0 = loadavg();
    if (!json)
        bench_machine_banner(dir);
    if (cluster)
        fprintf(out, "servers: ZooKeeper + %d x %s %s; %d x %s %s\n", cluster, sver, addr[0],
                cluster, have_nats ? nver : "no nats-server", have_nats ? addr[2] : "");
    else
        fprintf(out, "servers: %s (fsync) %s, (OS flush) %s; %s %s\n", sver, addr[0], addr[1],
                have_nats ? nver : "no nats-server", have_nats ? addr[2] : "");
    fprintf(out, "workloads: %d B records, acks=all, 1 partition, 1 producer; produce max rate %.0f s; "
                 "consume catch-up; latency at %.0f records/s for %.0f s (first min(1 s, duration/5) excluded, "
                 "Kafka linger.ms %d); %d runs, interleaved\n",
            msg, duration, rate, duration, lat_linger, runs);
    fflush(out);

    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < nsys; k++) {
            sys_t *s = &sys[(k + r) % nsys];
            int si = (int)(s - sys);
            bench_cfg_t c;
            bench_result_t *res = malloc(sizeof *res);
            char err[256];
            bench_cfg_defaults(&c, BW_PRODUCE);
            c.client = s->client;
            c.brokers = addr[s->srv];
            c.message_size = msg;
            c.duration_s = duration;
            c.quiet = 1;
            c.max_pending = max_pending;
            c.durability = s->durability;
            c.idempotence = s->client != BC_NATS;
            c.replication_factor = s->rf;
            c.min_insync = s->min_insync;
            snprintf(c.topic, sizeof c.topic, "cmp-%d-%d-throughput", r, si);
            sync();
            int ok = bench_run(&c, res) == 0;
            s->p_rps[r] = ok ? res->rps : 0;
            s->p_mbps[r] = ok ? res->mbps : 0;
            s->ack_p99[r] = ok ? (double)sc_hist_percentile(&res->ack, 99) / 1e6 : 0;
            fprintf(stderr, "run %d/%d %-22s %-19s produce %9.0f rec/s %s\n", r + 1, runs, s->label,
                    s->server, res->rps, ok ? "" : res->first_error);
            uint64_t produced = res->acked;
            if (ok && produced) {
                c.workload = BW_CONSUME;
                c.records = (long)produced;
                c.duration_s = 0;
                int okc = bench_run(&c, res) == 0;
                s->c_rps[r] = okc ? res->rps : 0;
                s->c_mbps[r] = okc ? res->mbps : 0;
                fprintf(stderr, "run %d/%d %-22s %-19s consume %9.0f rec/s %s\n", r + 1, runs,
                        s->label, s->server, res->rps, okc ? "" : res->first_error);
                ok &= okc;
            }
            s->client == BC_NATS ? bench_ops_nats()->teardown(&c, err, sizeof err)
                                 : bench_kafka_delete_topic(c.brokers, c.topic, err, sizeof err);
            bench_cfg_defaults(&c, BW_LATENCY);
            c.client = s->client;
            c.brokers = addr[s->srv];
            c.message_size = msg;
            c.duration_s = duration;
            c.rate = rate;
            c.warmup_s = duration >= 5 ? 1 : duration / 5;
            c.linger_ms = lat_linger;
            c.quiet = 1;
            c.max_pending = max_pending;
            c.durability = s->durability;
            c.idempotence = s->client != BC_NATS;
            c.replication_factor = s->rf;
            c.min_insync = s->min_insync;
            snprintf(c.topic, sizeof c.topic, "cmp-%d-%d-latency", r, si);
            sync();
            int okl = bench_run(&c, res) == 0;
            s->p50[r] = okl ? (double)sc_hist_percentile(&res->e2e, 50) / 1e6 : 0;
            s->p99[r] = okl ? (double)sc_hist_percentile(&res->e2e, 99) / 1e6 : 0;
            s->p999[r] = okl ? (double)sc_hist_percentile(&res->e2e, 99.9) / 1e6 : 0;
            s->pmax[r] = okl ? (double)res->e2e.max / 1e6 : 0;
            fprintf(stderr, "run %d/%d %-22s %-19s latency p50 %.2f p99 %.2f p99.9 %.2f max %.2f ms %s\n",
                    r + 1, runs, s->label, s->server, s->p50[r], s->p99[r], s->p999[r], s->pmax[r],
                    okl ? "" : res->first_error);
            s->client == BC_NATS ? bench_ops_nats()->teardown(&c, err, sizeof err)
                                 : bench_kafka_delete_topic(c.brokers, c.topic, err, sizeof err);
            s->ok[r] = ok && okl;
            free(res);
        }
    }
    double load1 = loadavg();
    stop_servers();

    /* table */
    char a[64], b[64], cc[64], d[64];
    fprintf(out, "\n%-22s %-19s %-29s %-8s %-29s %-8s %s\n", "client -> server", "server",
            "produce rec/s min/med/max", "MB/s", "consume rec/s min/med/max", "MB/s",
            "e2e ms p50 / p99 / p99.9 / max (median; p99 min-max)");
    for (int i = 0; i < nsys; i++) {
        sys_t *s = &sys[i];
        fmt3(a, sizeof a, st(s->p_rps, runs), 0);
        fmt3(b, sizeof b, st(s->c_rps, runs), 0);
        bench_stats_t p99 = st(s->p99, runs);
        snprintf(cc, sizeof cc, "%.2f / %.2f / %.2f / %.2f", st(s->p50, runs).median, p99.median,
                 st(s->p999, runs).median, st(s->pmax, runs).median);
        snprintf(d, sizeof d, "(%.2f-%.2f)", p99.min, p99.max);
        int fails = 0;
        for (int r = 0; r < runs; r++)
            fails += !s->ok[r];
        fprintf(out, "%-22s %-19s %-29s %-8.1f %-29s %-8.1f %s %s%s\n", s->label, s->server, a,
                st(s->p_mbps, runs).median, b, st(s->c_mbps, runs).median, cc, d,
                fails ? " (failed runs, see stderr)" : "");
    }
    fprintf(out, "\ndurability:\n");
    for (int i = 0; i < nsys; i++)
        if (i == 0 || sys[i].durability != sys[i - 1].durability)
            fprintf(out, "  %-19s %s\n", sys[i].server, sys[i].durability);

    /* ratios, paired per run */
    double rv[64];
    int n;
    sys_t *ls = &sys[0], *rk = have_rk ? &sys[1] : NULL, *los = &sys[have_rk ? 2 : 1],
          *js = have_nats ? &sys[nsys - 1] : NULL;
    typedef struct {
        const char *what;
        double *x, *y;
        double goal; /* 0 = none */
        const char *key; /* in --json */
    } row_t;
    row_t rows_std[] = {
        {"stratad (fsync) / JetStream, produce records/s", ls->p_rps, js ? js->p_rps : NULL, 2,
         "stratad_fsync_vs_jetstream_produce"},
        {"stratad (OS flush) / JetStream, produce records/s", los->p_rps, js ? js->p_rps : NULL, 2,
         "stratad_os_vs_jetstream_produce"},
        {"JetStream / stratad (fsync), e2e p99 (>= 2: stratad at most half)", js ? js->p99 : NULL,
         ls->p99, 2, "jetstream_vs_stratad_fsync_e2e_p99"},
        {"JetStream / stratad (OS flush), e2e p99", js ? js->p99 : NULL, los->p99, 2,
         "jetstream_vs_stratad_os_e2e_p99"},
        {"libstrata / librdkafka producer (stratad fsync), records/s", ls->p_rps,
         rk ? rk->p_rps : NULL, 1, "libstrata_vs_librdkafka_produce"},
        {"stratad (fsync) / JetStream, consume records/s", ls->c_rps, js ? js->c_rps : NULL, 0,
         "stratad_fsync_vs_jetstream_consume"},
    };
    /* --cluster: sys[0] RF=1, sys[1] RF=N, sys[2] JetStream RN */
    sys_t *c1 = &sys[0], *cn = &sys[1];
    row_t rows_cl[] = {
        {"stratad RF=N / RF=1, produce records/s", cn->p_rps, c1->p_rps, 0, "rfn_vs_rf1_produce"},
        {"stratad RF=N / RF=1, e2e p99", cn->p99, c1->p99, 0, "rfn_vs_rf1_e2e_p99"},
        {"stratad RF=N / JetStream RN, produce records/s", cn->p_rps, js ? js->p_rps : NULL, 2,
         "stratad_rfn_vs_jetstream_rn_produce"},
        {"JetStream RN / stratad RF=N, e2e p99 (>= 2: stratad at most half)",
         js ? js->p99 : NULL, cn->p99, 2, "jetstream_rn_vs_stratad_rfn_e2e_p99"},
        {"stratad RF=N / JetStream RN, consume records/s", cn->c_rps, js ? js->c_rps : NULL, 0,
         "stratad_rfn_vs_jetstream_rn_consume"},
    };
    row_t *rows = cluster ? rows_cl : rows_std;
    size_t nrows = cluster ? sizeof rows_cl / sizeof *rows_cl : sizeof rows_std / sizeof *rows_std;
    fprintf(out, "\nratios (per run, min/median/max):\n");
    for (size_t i = 0; i < nrows; i++) {
        if (!rows[i].x || !rows[i].y)
            continue;
        n = ratios(rows[i].x, rows[i].y, runs, rv);
        if (!n)
            continue;
        bench_stats_t s = bench_stats(rv, n);
        fprintf(out, "  %-66s %.2f/%.2f/%.2f", rows[i].what, s.min, s.median, s.max);
        if (rows[i].goal > 0)
            fprintf(out, "   goal >= %.0f: %s", rows[i].goal,
                    s.median >= rows[i].goal ? "MET (median)" : "NOT MET (median)");
        fputc('\n', out);
    }
    fprintf(out, "\nmachine: %ld cores; load average %.2f before, %.2f after (other processes share these cores)\n",
            sysconf(_SC_NPROCESSORS_ONLN), load0, load1);
    fprintf(out, "disk under %s: 10 KiB append + fdatasync p50 %.2f ms, p99 %.2f ms, %.0f/s "
                 "(2 s probe before the runs: the floor of an fsync-per-ack latency)\n",
            dir, fs50, fs99, fsrate);

    if (json) {
        FILE *f = stdout;
        fprintf(f, "{\"machine\":{\"cores\":%ld,\"load_before\":%.2f,\"load_after\":%.2f,"
                   "\"fdatasync_p50_ms\":%.3f,\"fdatasync_p99_ms\":%.3f,\"fdatasync_per_s\":%.0f},",
                sysconf(_SC_NPROCESSORS_ONLN), load0, load1, fs50, fs99, fsrate);
        fprintf(f, "\"config\":{\"runs\":%d,\"duration_s\":%.3f,\"rate\":%.0f,\"message_size\":%d,"
                   "\"acks\":\"all\",\"partitions\":1,\"producers\":1,\"max_pending\":%d,"
                   "\"produce_linger_ms\":5,\"latency_linger_ms\":%d,\"cluster\":%d,"
                   "\"min_insync_replicas\":%d},",
                runs, duration, rate, msg, max_pending, lat_linger, cluster, cluster ? misr : 0);
        fprintf(f, "\"servers\":{\"stratad\":\"%s\",\"nats_server\":\"%s\"},\"systems\":[", sver,
                have_nats ? nver : "");
        for (int i = 0; i < nsys; i++) {
            sys_t *s = &sys[i];
            fprintf(f, "%s{\"label\":\"%s\",\"server\":\"%s\",\"client\":\"%s\",\"durability\":\"%s\",",
                    i ? "," : "", s->label, s->server, bench_client_name(s->client), s->durability);
            int okr = 0;
            for (int r = 0; r < runs; r++)
                okr += s->ok[r];
            fprintf(f, "\"runs_ok\":%d,\"replicas\":%d,", okr, s->rf ? s->rf : 1);
            json_stats(f, "produce_records_per_s", s->p_rps, runs);
            fputc(',', f);
            json_stats(f, "produce_mb_per_s", s->p_mbps, runs);
            fputc(',', f);
            json_stats(f, "produce_ack_p99_ms", s->ack_p99, runs);
            fputc(',', f);
            json_stats(f, "consume_records_per_s", s->c_rps, runs);
            fputc(',', f);
            json_stats(f, "consume_mb_per_s", s->c_mbps, runs);
            fputc(',', f);
            json_stats(f, "e2e_p50_ms", s->p50, runs);
            fputc(',', f);
            json_stats(f, "e2e_p99_ms", s->p99, runs);
            fputc(',', f);
            json_stats(f, "e2e_p999_ms", s->p999, runs);
            fputc(',', f);
            json_stats(f, "e2e_max_ms", s->pmax, runs);
            fputc('}', f);
        }
        fprintf(f, "],\"ratios\":{");
        int first = 1;
        for (size_t i = 0; i < nrows; i++) {
            if (!rows[i].x || !rows[i].y)
                continue;
            n = ratios(rows[i].x, rows[i].y, runs, rv);
            if (!n)
                continue;
            bench_stats_t s = bench_stats(rv, n);
            fprintf(f, "%s\"%s\":{\"min\":%.3f,\"median\":%.3f,\"max\":%.3f}", first ? "" : ",",
                    rows[i].key, s.min, s.median, s.max);
            first = 0;
        }
        fprintf(f, "}}\n");
    }
    int fails = 0;
    for (int i = 0; i < nsys; i++)
        for (int r = 0; r < runs; r++)
            fails += !sys[i].ok[r];
    if (fails)
        fprintf(stderr, "strata-bench compare: %d workload run(s) failed; servers' data and logs "
                        "kept in %s\n", fails, dir);
    else
        bench_rm_rf(dir);
    return fails ? 1 : 0;
}
