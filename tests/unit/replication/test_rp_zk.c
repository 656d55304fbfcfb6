/* Unit tests for replication/rp_zk against a real ZooKeeper server that main()
 * starts (java ... ZooKeeperServerMain <free port> <temp dir>, Debian's
 * zookeeper package) and kills by pid; exit 77 when java / the jar is missing
 * or the server does not come up. Each test uses its own chroot.
 *   - election: one winner, the loser sees it, the epoch grows on failover;
 *   - fencing: a controller whose role was taken cannot write partition state
 *     (STALE_CONTROLLER_EPOCH), and state writes are versioned (CAS);
 *   - the zookeeper metadata store shared by two brokers: first cluster id
 *     wins, topics/configs seen after reload, a create race loses cleanly,
 *     producer-id blocks never overlap, deletes are seen;
 *   - registration: a second live broker with the same id is refused;
 *   - offered_image: the registry read for another thread's store
 *     (rp_zk_topics_*) is what its next reload installs; an image read
 *     before a topic write made through the store is dropped, not installed;
 *   - two_phase: rp_meta_op_* (prepare / run / finish, the write run between
 *     two owner-thread steps): checks at prepare, nothing visible before
 *     finish, a reload in between that already holds the change leaves it
 *     there once, an image read before the finish is dropped, deletes /
 *     partitions / configs / producer-id blocks; the local store refuses. */
#include "rp_meta.h"
#include "rp_meta_int.h"
#include "rp_zk.h"
#include "sc_err.h"
#include "sc_log.h"
#include "t_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char zk_hosts[64];
static char conn[128];

static void use_chroot(const char *name)
{
    snprintf(conn, sizeof conn, "%s/%s", zk_hosts, name);
}

static rp_zk_t *zopen(void)
{
    rp_zk_t *z = NULL;
    ck_assert_int_eq(rp_zk_open(conn, 6000, 20000, &z), 0);
    return z;
}

START_TEST(election)
{
    use_chroot("election");
    rp_zk_t *a = zopen(), *b = zopen();
    int32_t ea = 0, eb = 0, id = -1, ep = -1;
    ck_assert_int_eq(rp_zk_controller(a, &id, &ep), SC_ERR_NOT_FOUND);
    ck_assert_int_eq(rp_zk_elect(a, 1, &ea), 0);
    ck_assert_int_eq(ea, 1);
    ck_assert(rp_zk_is_controller(a));
    ck_assert_int_eq(rp_zk_elect(b, 2, &eb), SC_ERR_NOT_CONTROLLER);
    ck_assert(!rp_zk_is_controller(b));
    ck_assert_int_eq(rp_zk_controller(b, &id, &ep), 0);
    ck_assert_int_eq(id, 1);
    ck_assert_int_eq(ep, 1);
    rp_zk_close(a); /* the session ends: /controller goes with it */
    ck_assert_int_eq(rp_zk_elect(b, 2, &eb), 0);
    ck_assert_int_eq(eb, 2);
    ck_assert_int_eq(rp_zk_controller(b, &id, &ep), 0);
    ck_assert_int_eq(id, 2);
    ck_assert_int_eq(ep, 2);
    rp_zk_close(b);
}
END_TEST

START_TEST(fencing)
{
    use_chroot("fencing");
    rp_zk_t *a = zopen(), *b = zopen();
    rp_meta_t *m = NULL;
    ck_assert_int_eq(rp_meta_open_zk(a, "cid-fencing", &m), 0);
    ck_assert_int_eq(rp_meta_topic_create(m, "t", 2, 2, NULL, 0), 0);
    int32_t e;
    rp_pstate_t s, got;
    int32_t rep[2] = {1, 2}, live[2] = {1, 2};
    ck_assert_int_eq(rp_zk_pstate_write(a, "t", 0, &s, -1), SC_ERR_STALE_CONTROLLER_EPOCH);
    ck_assert_int_eq(rp_zk_elect(a, 1, &e), 0);
    rp_pstate_init(&s, rep, 2, live, 2, e);
    ck_assert_int_eq(rp_zk_pstate_write(a, "t", 0, &s, -1), 0);
    ck_assert_int_eq(rp_zk_pstate_write(a, "t", 0, &s, -1), SC_ERR_INVALID_REQUEST); /* exists */
    ck_assert_int_eq(rp_zk_pstate_write(a, "nope", 0, &s, -1), SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    int v1 = -1;
    ck_assert_int_eq(rp_zk_pstate_get(b, "t", 0, &got, &v1), 0);
    ck_assert_int_eq(memcmp(&got, &s, sizeof s), 0);
    ck_assert_int_eq(rp_zk_pstate_get(b, "t", 1, &got, &v1), SC_ERR_NOT_FOUND);
    ck_assert_int_eq(rp_zk_pstate_get(b, "t", 0, &got, &v1), 0);

    /* b takes the role while a still believes it holds it */
    ck_assert_int_eq(rp__zk_delete_for_test(b, "/controller"), 0);
    int32_t eb;
    ck_assert_int_eq(rp_zk_elect(b, 2, &eb), 0);
    ck_assert_int_eq(eb, e + 1);
    ck_assert(rp_zk_is_controller(a)); /* not noticed yet */
    rp_pstate_t stale = s;
    stale.leader = 1;
    stale.leader_epoch = 7;
    ck_assert_int_eq(rp_zk_pstate_write(a, "t", 0, &stale, v1), SC_ERR_STALE_CONTROLLER_EPOCH);
    ck_assert(!rp_zk_is_controller(a));
    int v2 = -1;
    ck_assert_int_eq(rp_zk_pstate_get(b, "t", 0, &got, &v2), 0);
    ck_assert_int_eq(got.leader_epoch, 0); /* the stale write did not land */

    /* versioned: the new controller's write with the version it read works once */
    rp_pstate_t n = got;
    n.leader = 2;
    n.leader_epoch = 1;
    n.controller_epoch = eb;
    ck_assert_int_eq(rp_zk_pstate_write(b, "t", 0, &n, v2), 0);
    ck_assert_int_eq(rp_zk_pstate_write(b, "t", 0, &n, v2), SC_ERR_INVALID_REQUEST);
    ck_assert_int_eq(rp_zk_pstate_get(a, "t", 0, &got, &v2), 0);
    ck_assert_int_eq(got.leader, 2);
    ck_assert_int_eq(got.controller_epoch, eb);
    rp_meta_close(m);
    rp_zk_close(a);
    rp_zk_close(b);
}
END_TEST

START_TEST(shared_store)
{
    use_chroot("store");
    rp_zk_t *a = zopen(), *b = zopen();
    rp_meta_t *ma = NULL, *mb = NULL;
    ck_assert_int_eq(rp_meta_open_zk(a, "first-id", &ma), 0);
    ck_assert_int_eq(rp_meta_open_zk(b, "second-id", &mb), 0);
    ck_assert_str_eq(rp_meta_cluster_id(mb), "first-id");
    ck_assert_str_eq(rp_meta_backend_name(mb), "zookeeper");
    char id[64];
    ck_assert_int_eq(rp_zk_cluster_id(b, id, sizeof id), 0);
    ck_assert_str_eq(id, "first-id");

    rp_meta_kv_t kv[1] = {{"retention.ms", "1000"}};
    ck_assert_int_eq(rp_meta_topic_create(ma, "x", 3, 2, kv, 1), 0);
    ck_assert_ptr_null(rp_meta_topic_find(mb, "x", 1));
    ck_assert_int_eq(rp_meta_reload(mb), 0);
    const rp_meta_topic_t *xa = rp_meta_topic_find(ma, "x", 1), *xb = rp_meta_topic_find(mb, "x", 1);
    ck_assert_ptr_nonnull(xb);
    ck_assert_int_eq(memcmp(xa->id, xb->id, 16), 0);
    ck_assert_int_eq(xb->partitions, 3);
    ck_assert_int_eq(xb->replication_factor, 2);
    ck_assert_str_eq(rp_meta_topic_config(xb, "retention.ms"), "1000");

    /* both create y; b has not seen a's: the store refuses b's */
    ck_assert_int_eq(rp_meta_topic_create(ma, "y", 1, 1, NULL, 0), 0);
    ck_assert_int_eq(rp_meta_topic_create(mb, "y", 1, 1, NULL, 0), SC_ERR_TOPIC_ALREADY_EXISTS);
    ck_assert_ptr_null(rp_meta_topic_find(mb, "y", 1)); /* state unchanged on error */

    /* partitions and configs changed by b are seen by a */
    ck_assert_int_eq(rp_meta_topic_set_partitions(mb, "x", 5), 0);
    ck_assert_int_eq(rp_meta_reload(ma), 0);
    ck_assert_int_eq(rp_meta_topic_find(ma, "x", 1)->partitions, 5);
    ck_assert_str_eq(rp_meta_topic_config(rp_meta_topic_find(ma, "x", 1), "retention.ms"), "1000");

    /* a's image still says 3 partitions: its config change must not shrink x */
    ck_assert_int_eq(rp_meta_topic_set_configs(mb, "x", NULL, 0), 0);
    ck_assert_int_eq(rp_meta_topic_set_partitions(mb, "x", 6), 0);
    rp_meta_kv_t kv2[1] = {{"retention.ms", "5"}};
    ck_assert_int_eq(rp_meta_topic_set_configs(ma, "x", kv2, 1), SC_ERR_INVALID_PARTITIONS);
    ck_assert_int_eq(rp_meta_reload(ma), 0);
    ck_assert_int_eq(rp_meta_topic_find(ma, "x", 1)->partitions, 6);
    ck_assert_int_eq(rp_meta_topic_set_configs(ma, "x", kv2, 1), 0);

    /* producer ids from both stores never overlap */
    int64_t seen[4000];
    int n = 0;
    for (int i = 0; i < 2000; i++) {
        ck_assert_int_eq(rp_meta_producer_id_next(i % 2 ? ma : mb, &seen[n]), 0);
        n++;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            ck_assert_msg(seen[i] != seen[j], "producer id %lld handed out twice",
                          (long long)seen[i]);

    ck_assert_int_eq(rp_meta_topic_delete(ma, "x"), 0);
    ck_assert_int_eq(rp_meta_reload(mb), 0);
    ck_assert_ptr_null(rp_meta_topic_find(mb, "x", 1));
    ck_assert_ptr_nonnull(rp_meta_topic_find(mb, "y", 1));
    rp_meta_close(ma);
    rp_meta_close(mb);
    /* a reopened store loads what is there */
    ck_assert_int_eq(rp_meta_open_zk(a, "other", &ma), 0);
    ck_assert_int_eq(rp_meta_topic_count(ma), 1);
    rp_meta_close(ma);
    rp_zk_close(a);
    rp_zk_close(b);
}
END_TEST

START_TEST(offered_image)
{
    use_chroot("offer");
    rp_zk_t *a = zopen(), *b = zopen();
    rp_meta_t *ma = NULL, *mb = NULL;
    ck_assert_int_eq(rp_meta_open_zk(a, "cid-offer", &ma), 0);
    ck_assert_int_eq(rp_meta_open_zk(b, "cid-offer", &mb), 0);
    ck_assert_int_eq(rp_zk_topics_offered(b), 0);

    /* another broker's topic, read (the cluster thread) and offered */
    ck_assert_int_eq(rp_meta_topic_create(ma, "t1", 2, 1, NULL, 0), 0);
    rp_zk_topics_t *img = NULL;
    ck_assert_int_eq(rp_zk_topics_read(b, &img), 0);
    ck_assert_uint_eq(rp_zk_topics_count(img), 1);
    ck_assert_str_eq(rp_zk_topics_at(img, 0)->name, "t1");
    ck_assert_int_eq(rp_zk_topics_at(img, 0)->partitions, 2);
    rp_zk_topics_offer(b, img);
    ck_assert_int_eq(rp_zk_topics_offered(b), 1);
    /* t2 appears after the read: the reload installs the offered image
     * (t1, not t2), it does not read */
    ck_assert_int_eq(rp_meta_topic_create(ma, "t2", 1, 1, NULL, 0), 0);
    ck_assert_int_eq(rp_meta_reload(mb), 0);
    ck_assert_ptr_nonnull(rp_meta_topic_find(mb, "t1", 2));
    ck_assert_ptr_null(rp_meta_topic_find(mb, "t2", 2));
    ck_assert_int_eq(rp_zk_topics_offered(b), 0);

    /* read, then b's store creates t3: the image would undo it, dropped */
    ck_assert_int_eq(rp_zk_topics_read(b, &img), 0);
    ck_assert_int_eq(rp_meta_topic_create(mb, "t3", 1, 1, NULL, 0), 0);
    rp_zk_topics_offer(b, img);
    ck_assert_int_eq(rp_zk_topics_offered(b), -1);
    ck_assert_int_eq(rp_zk_topics_offered(b), 0);
    ck_assert_ptr_nonnull(rp_meta_topic_find(mb, "t3", 2));

    /* read (t3 listed), then b's store deletes t3: a reload given the stale
     * image reads anew instead of bringing t3 back */
    ck_assert_int_eq(rp_zk_topics_read(b, &img), 0);
    ck_assert_uint_eq(rp_zk_topics_count(img), 3);
    ck_assert_int_eq(rp_meta_topic_delete(mb, "t3"), 0);
    rp_zk_topics_offer(b, img);
    ck_assert_int_eq(rp_meta_reload(mb), 0);
    ck_assert_ptr_null(rp_meta_topic_find(mb, "t3", 2));
    ck_assert_ptr_nonnull(rp_meta_topic_find(mb, "t2", 2));
    rp_meta_close(ma);
    rp_meta_close(mb);
    rp_zk_close(a);
    rp_zk_close(b);
}
END_TEST

static size_t count_named(const rp_meta_t *m, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < rp_meta_topic_count(m); i++)
        k += strcmp(rp_meta_topic_at(m, i)->name, name) == 0;
    return k;
}

START_TEST(two_phase)
{
    use_chroot("twophase");
    rp_zk_t *a = zopen(), *b = zopen();
    rp_meta_t *ma = NULL, *mb = NULL;
    rp_meta_op_t *op = NULL;
    ck_assert_int_eq(rp_meta_open_zk(a, "cid-2p", &ma), 0);
    ck_assert_int_eq(rp_meta_open_zk(b, "cid-2p", &mb), 0);

    /* checks at prepare */
    ck_assert_int_eq(rp_meta_op_topic_create(mb, "", 1, 1, NULL, 0, &op),
                     SC_ERR_INVALID_TOPIC_EXCEPTION);
    ck_assert_ptr_null(op);
    ck_assert_int_eq(rp_meta_op_topic_delete(mb, "nope", &op), SC_ERR_UNKNOWN_TOPIC_OR_PARTITION);

    /* create: written by run, visible after finish; an image read before
     * the finish is dropped */
    ck_assert_int_eq(rp_meta_op_topic_create(mb, "p1", 2, 1, NULL, 0, &op), 0);
    rp_zk_topics_t *img = NULL;
    ck_assert_int_eq(rp_zk_topics_read(b, &img), 0);
    rp_meta_op_run(op);
    ck_assert_ptr_null(rp_meta_topic_find(mb, "p1", 2));
    ck_assert_int_eq(rp_meta_op_finish(mb, op), 0);
    ck_assert_int_eq(rp_meta_topic_find(mb, "p1", 2)->partitions, 2);
    rp_zk_topics_offer(b, img);
    ck_assert_int_eq(rp_zk_topics_offered(b), -1);
    ck_assert_int_eq(rp_meta_reload(ma), 0);
    ck_assert_ptr_nonnull(rp_meta_topic_find(ma, "p1", 2));

    /* a reload between run and finish already holds the topic: once */
    ck_assert_int_eq(rp_meta_op_topic_create(mb, "p2", 1, 1, NULL, 0, &op), 0);
    rp_meta_op_run(op);
    ck_assert_int_eq(rp_zk_topics_read(b, &img), 0);
    rp_zk_topics_offer(b, img);
    ck_assert_int_eq(rp_zk_topics_offered(b), 1);
    ck_assert_int_eq(rp_meta_reload(mb), 0);
    ck_assert_ptr_nonnull(rp_meta_topic_find(mb, "p2", 2));
    ck_assert_int_eq(rp_meta_op_finish(mb, op), 0);
    ck_assert_uint_eq(count_named(mb, "p2"), 1);
    ck_assert_uint_eq(rp_meta_topic_count(mb), 2);

    /* a create racing another broker's loses cleanly */
    ck_assert_int_eq(rp_meta_op_topic_create(mb, "p3", 1, 1, NULL, 0, &op), 0);
    ck_assert_int_eq(rp_meta_topic_create(ma, "p3", 4, 1, NULL, 0), 0);
    rp_meta_op_run(op);
    ck_assert_int_eq(rp_meta_op_finish(mb, op), SC_ERR_TOPIC_ALREADY_EXISTS);
    ck_assert_ptr_null(rp_meta_topic_find(mb, "p3", 2));

    /* partitions, configs, delete */
    ck_assert_int_eq(rp_meta_op_topic_set_partitions(mb, "p1", 2, &op), SC_ERR_INVALID_PARTITIONS);
    ck_assert_int_eq(rp_meta_op_topic_set_partitions(mb, "p1", 5, &op), 0);
    rp_meta_op_run(op);
    ck_assert_int_eq(rp_meta_topic_find(mb, "p1", 2)->partitions, 2);
    ck_assert_int_eq(rp_meta_op_finish(mb, op), 0);
    ck_assert_int_eq(rp_meta_topic_find(mb, "p1", 2)->partitions, 5);
    rp_meta_kv_t kv[] = {{"retention.ms", "1000"}};
    ck_assert_int_eq(rp_meta_op_topic_set_configs(mb, "p1", kv, 1, &op), 0);
    rp_meta_op_run(op);
    ck_assert_int_eq(rp_meta_op_finish(mb, op), 0);
    ck_assert_str_eq(rp_meta_topic_config(rp_meta_topic_find(mb, "p1", 2), "retention.ms"),
                     "1000");
    ck_assert_int_eq(rp_meta_reload(ma), 0);
    ck_assert_int_eq(rp_meta_topic_find(ma, "p1", 2)->partitions, 5);
    ck_assert_int_eq(rp_meta_op_topic_delete(mb, "p2", &op), 0);
    rp_meta_op_run(op);
    ck_assert_ptr_nonnull(rp_meta_topic_find(mb, "p2", 2));
    ck_assert_int_eq(rp_meta_op_finish(mb, op), 0);
    ck_assert_ptr_null(rp_meta_topic_find(mb, "p2", 2));

    /* a producer-id block: ids from it without a write, none shared with
     * another store's block */
    int64_t pid = -1, other = -1;
    ck_assert_int_eq(rp_meta_producer_id_cached(mb, &pid), 0);
    ck_assert_int_eq(rp_meta_op_producer_ids(mb, &op), 0);
    rp_meta_op_run(op);
    ck_assert_int_eq(rp_meta_op_finish(mb, op), 0);
    ck_assert_int_eq(rp_meta_producer_id_cached(mb, &pid), 1);
    ck_assert_int_eq(rp_meta_producer_id_next(ma, &other), 0);
    ck_assert(other >= pid + RP_META_PID_BLOCK || other + RP_META_PID_BLOCK <= pid);
    /* a prepared op that never runs */
    ck_assert_int_eq(rp_meta_op_topic_create(mb, "p4", 1, 1, NULL, 0, &op), 0);
    rp_meta_op_free(op);
    ck_assert_ptr_null(rp_meta_topic_find(mb, "p4", 2));
    rp_meta_close(ma);
    rp_meta_close(mb);
    rp_zk_close(a);
    rp_zk_close(b);

    /* the local store writes from its image: no two-phase ops */
    char dir[] = "/tmp/rp_zk_2p_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    rp_meta_t *ml = NULL;
    ck_assert_int_eq(rp_meta_open_local(dir, "cid-local", &ml), 0);
    ck_assert_int_eq(rp_meta_op_topic_create(ml, "x", 1, 1, NULL, 0, &op), SC_ERR_INVALID_REQUEST);
    ck_assert_ptr_null(op);
    rp_meta_close(ml);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, RP_META_LOCAL_FILE);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(registration)
{
    use_chroot("reg");
    rp_zk_t *a = zopen(), *b = zopen();
    rp_broker_t me;
    memset(&me, 0, sizeof me);
    me.id = 7;
    strcpy(me.rack, "r1");
    ck_assert_int_eq(rp_zk_register(a, &me, "127.0.0.1", 9092, 0), 0);
    ck_assert_int_eq(rp_zk_register(b, &me, "127.0.0.2", 9093, 300), SC_ERR_BAD_CONFIG);
    rp_zk_broker_t list[4];
    int n = 0;
    ck_assert_int_eq(rp_zk_brokers(b, list, 4, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(list[0].b.id, 7);
    ck_assert_str_eq(list[0].b.rack, "r1");
    ck_assert_str_eq(list[0].host, "127.0.0.1");
    ck_assert_int_eq(list[0].port, 9092);
    rp_zk_close(a);
    ck_assert_int_eq(rp_zk_register(b, &me, "127.0.0.2", 9093, 0), 0);
    rp_zk_close(b);
}
END_TEST

START_TEST(bad_connect)
{
    rp_zk_t *z = NULL;
    ck_assert_int_eq(rp_zk_open("", 6000, 100, &z), SC_ERR_BAD_CONFIG);
    /* nothing listens there: no session within the wait */
    ck_assert_int_eq(rp_zk_open("127.0.0.1:1", 6000, 300, &z), SC_ERR_BROKER_NOT_AVAILABLE);
}
END_TEST

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &l))
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static int imok(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char buf[8] = {0};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
             write(fd, "ruok", 4) == 4 && read(fd, buf, 4) == 4 && memcmp(buf, "imok", 4) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int main(void)
{
    if (access("/usr/bin/java", X_OK) || access("/usr/share/java/zookeeper.jar", R_OK)) {
        printf("SKIP: needs java and /usr/share/java/zookeeper.jar (bash scripts/deps.sh)\n");
        return 77;
    }
    char dir[PATH_MAX];
    t_tmpdir("rpzk", dir);
    int port = free_port();
    char portstr[16], logpath[PATH_MAX + 16];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(logpath, sizeof logpath, "%s.log", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {"java", "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
                    "-Dzookeeper.4lw.commands.whitelist=ruok", "-cp",
                    "/usr/share/java/zookeeper.jar:/usr/share/java/*",
                    "org.apache.zookeeper.server.ZooKeeperServerMain", portstr, dir, NULL};
    pid_t pid;
    int sprc = posix_spawn(&pid, "/usr/bin/java", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (sprc != 0) {
        printf("SKIP: cannot start java\n");
        return 77;
    }
    int up = 0;
    for (int i = 0; i < 300 && !up; i++) {
        up = imok(port);
        if (!up)
            usleep(100 * 1000);
    }
    if (!up) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        printf("SKIP: ZooKeeper did not answer ruok within 30 s (log %s)\n", logpath);
        return 77;
    }
    snprintf(zk_hosts, sizeof zk_hosts, "127.0.0.1:%d", port);
    sc_log_configure("error");

    Suite *s = suite_create("rp_zk");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, election);
    tcase_add_test(tc, fencing);
    tcase_add_test(tc, shared_store);
    tcase_add_test(tc, registration);
    tcase_add_test(tc, offered_image);
    tcase_add_test(tc, two_phase);
    tcase_add_test(tc, bad_connect);
    suite_add_tcase(s, tc);
    int rc = t_run_suite(s);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    t_rm_rf(dir);
    unlink(logpath);
    return rc;
}
