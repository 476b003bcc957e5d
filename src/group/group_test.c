/*
 * group_test.c -- unit tests of group/'s server-side assignors (assign.c) and
 * topic-partition sets: every partition of a subscribed topic goes to exactly
 * one member that subscribes to it; uniform is balanced and sticky; range
 * gives contiguous ranges in member id order; heterogeneous subscriptions;
 * empty inputs.
 */
#include "group/group_int.h"

#include <stdio.h>
#include <string.h>

static int failures;
#define CHECK(c)                                                            \
    do {                                                                    \
        if (!(c)) {                                                         \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);    \
        }                                                                   \
    } while (0)

#define MAXM 8
#define MAXT 4

typedef struct fixture_s {
    mk_asg_topic_t topics[MAXT];
    int32_t ntopics;
    mk_asg_member_t members[MAXM];
    bool subs[MAXM][MAXT];
    mk_gtps_t current[MAXM];
    int32_t nmembers;
} fixture_t;

static void fx_topic(fixture_t *f, const char *name, int32_t partitions)
{
    mk_asg_topic_t *t = &f->topics[f->ntopics++];
    memset(t, 0, sizeof(*t));
    t->id[0] = (uint8_t)f->ntopics; /* ids 1, 2, ... */
    t->name = name;
    t->partitions = partitions;
}

/* A member subscribed to the topics whose bit is set in mask. */
static void fx_member(fixture_t *f, const char *id, unsigned mask)
{
    int32_t k = f->nmembers++;
    for (int32_t t = 0; t < MAXT; t++)
        f->subs[k][t] = (mask >> t) & 1;
    memset(&f->members[k], 0, sizeof(f->members[k]));
    f->members[k].member_id = id;
    f->members[k].subscribed = f->subs[k];
    f->members[k].current = &f->current[k];
}

static void fx_free(fixture_t *f)
{
    for (int32_t i = 0; i < f->nmembers; i++) {
        mk_gtps_free(&f->members[i].out);
        mk_gtps_free(&f->current[i]);
    }
}

/* The result as the next round's present target (stickiness). */
static void fx_carry(fixture_t *f)
{
    for (int32_t i = 0; i < f->nmembers; i++)
        mk_gtps_copy(&f->current[i], &f->members[i].out);
}

/* Every partition of every topic someone subscribes to is assigned exactly
 * once, and only to a subscriber. */
static bool fx_valid(const fixture_t *f)
{
    for (int32_t t = 0; t < f->ntopics; t++) {
        bool anyone = false;
        for (int32_t m = 0; m < f->nmembers; m++)
            anyone |= f->subs[m][t];
        for (int32_t p = 0; p < f->topics[t].partitions; p++) {
            int owners = 0;
            for (int32_t m = 0; m < f->nmembers; m++)
                if (mk_gtps_has(&f->members[m].out, f->topics[t].id, p)) {
                    owners++;
                    if (!f->subs[m][t])
                        return false;
                }
            if (owners != (anyone ? 1 : 0))
                return false;
        }
    }
    return true;
}

static int32_t count_of(const fixture_t *f, int32_t m) { return f->members[m].out.n; }

static void test_sets(void)
{
    mk_gtps_t a = {0}, b = {0};
    uint8_t t1[16] = {1}, t2[16] = {2};
    CHECK(mk_gtps_add(&a, t2, 3) == 0);
    CHECK(mk_gtps_add(&a, t1, 5) == 0);
    CHECK(mk_gtps_add(&a, t1, 0) == 0);
    CHECK(mk_gtps_add(&a, t1, 5) == 0); /* duplicate */
    mk_gtps_sort(&a);
    CHECK(a.n == 3);
    CHECK(a.v[0].partition == 0 && a.v[0].id[0] == 1);
    CHECK(a.v[2].partition == 3 && a.v[2].id[0] == 2);
    CHECK(mk_gtps_has(&a, t1, 5) && !mk_gtps_has(&a, t2, 5));
    CHECK(mk_gtps_copy(&b, &a) == 0 && mk_gtps_equal(&a, &b));
    mk_gtps_clear(&b);
    CHECK(!mk_gtps_equal(&a, &b) && b.n == 0);
    mk_gtps_free(&a);
    mk_gtps_free(&b);
}

static void test_uniform_balanced(void)
{
    fixture_t f = {0};
    fx_topic(&f, "a", 7);
    fx_topic(&f, "b", 5);
    fx_member(&f, "m1", 3);
    fx_member(&f, "m2", 3);
    fx_member(&f, "m3", 3);
    CHECK(mk_group_assign_uniform(f.topics, f.ntopics, f.members, f.nmembers) == 0);
    CHECK(fx_valid(&f));
    for (int32_t m = 0; m < 3; m++)
        CHECK(count_of(&f, m) == 4); /* 12 partitions over 3 */
    /* same input, same output */
    fixture_t g = f;
    for (int32_t m = 0; m < 3; m++) {
        g.members[m].subscribed = g.subs[m];
        g.members[m].current = &g.current[m];
        memset(&g.members[m].out, 0, sizeof(g.members[m].out));
    }
    CHECK(mk_group_assign_uniform(g.topics, g.ntopics, g.members, g.nmembers) == 0);
    for (int32_t m = 0; m < 3; m++)
        CHECK(mk_gtps_equal(&f.members[m].out, &g.members[m].out));
    for (int32_t m = 0; m < 3; m++)
        mk_gtps_free(&g.members[m].out);
    fx_free(&f);
}

static void test_uniform_sticky(void)
{
    fixture_t f = {0};
    fx_topic(&f, "a", 12);
    fx_member(&f, "m1", 1);
    fx_member(&f, "m2", 1);
    CHECK(mk_group_assign_uniform(f.topics, f.ntopics, f.members, f.nmembers) == 0);
    CHECK(count_of(&f, 0) == 6 && count_of(&f, 1) == 6);
    fx_carry(&f);
    /* a third member: each of the two gives up exactly 2, keeping the rest */
    fx_member(&f, "m3", 1);
    CHECK(mk_group_assign_uniform(f.topics, f.ntopics, f.members, f.nmembers) == 0);
    CHECK(fx_valid(&f));
    for (int32_t m = 0; m < 3; m++)
        CHECK(count_of(&f, m) == 4);
    for (int32_t m = 0; m < 2; m++) {
        int kept = 0;
        for (int32_t i = 0; i < f.members[m].out.n; i++)
            kept += mk_gtps_has(&f.current[m], f.members[m].out.v[i].id, f.members[m].out.v[i].partition);
        CHECK(kept == 4); /* nothing it keeps moved */
    }
    fx_carry(&f);
    /* m2 leaves: its partitions go to the others, who keep theirs */
    fixture_t h = {0};
    fx_topic(&h, "a", 12);
    fx_member(&h, "m1", 1);
    fx_member(&h, "m3", 1);
    mk_gtps_copy(&h.current[0], &f.current[0]);
    mk_gtps_copy(&h.current[1], &f.current[2]);
    CHECK(mk_group_assign_uniform(h.topics, h.ntopics, h.members, h.nmembers) == 0);
    CHECK(fx_valid(&h));
    CHECK(count_of(&h, 0) == 6 && count_of(&h, 1) == 6);
    for (int32_t i = 0; i < h.current[0].n; i++)
        CHECK(mk_gtps_has(&h.members[0].out, h.current[0].v[i].id, h.current[0].v[i].partition));
    fx_free(&h);
    fx_free(&f);
}

static void test_uniform_heterogeneous(void)
{
    fixture_t f = {0};
    fx_topic(&f, "a", 6);
    fx_topic(&f, "b", 2);
    fx_member(&f, "m1", 1); /* a */
    fx_member(&f, "m2", 3); /* a, b */
    fx_member(&f, "m3", 2); /* b */
    CHECK(mk_group_assign_uniform(f.topics, f.ntopics, f.members, f.nmembers) == 0);
    CHECK(fx_valid(&f));
    /* 8 partitions: m3 can only take b's 2; a's 6 split between m1 and m2 */
    CHECK(count_of(&f, 2) >= 1);
    int32_t lo = 99, hi = 0;
    for (int32_t m = 0; m < 3; m++) {
        lo = MK_MIN(lo, count_of(&f, m));
        hi = MK_MAX(hi, count_of(&f, m));
    }
    CHECK(hi - lo <= 2);
    fx_free(&f);
}

static void test_range(void)
{
    fixture_t f = {0};
    fx_topic(&f, "a", 7);
    fx_topic(&f, "b", 7);
    fx_member(&f, "m2", 3);
    fx_member(&f, "m1", 3);
    fx_member(&f, "m3", 3);
    CHECK(mk_group_assign_range(f.topics, f.ntopics, f.members, f.nmembers) == 0);
    CHECK(fx_valid(&f));
    /* member id order m1, m2, m3: 3, 2, 2 of each topic, contiguous, and
     * co-partitioned (partition i of a and b with the same member) */
    const mk_gtps_t *m1 = &f.members[1].out, *m2 = &f.members[0].out, *m3 = &f.members[2].out;
    CHECK(m1->n == 6 && m2->n == 4 && m3->n == 4);
    for (int32_t p = 0; p < 7; p++) {
        const mk_gtps_t *want = p < 3 ? m1 : p < 5 ? m2 : m3;
        CHECK(mk_gtps_has(want, f.topics[0].id, p) && mk_gtps_has(want, f.topics[1].id, p));
    }
    fx_free(&f);
    /* a topic only one member subscribes to goes whole to it */
    fixture_t g = {0};
    fx_topic(&g, "a", 4);
    fx_topic(&g, "b", 3);
    fx_member(&g, "x", 1);
    fx_member(&g, "y", 3);
    CHECK(mk_group_assign_range(g.topics, g.ntopics, g.members, g.nmembers) == 0);
    CHECK(fx_valid(&g));
    CHECK(g.members[0].out.n == 2 && g.members[1].out.n == 5);
    fx_free(&g);
}

static void test_edges(void)
{
    fixture_t f = {0};
    fx_topic(&f, "a", 2);
    /* no members */
    CHECK(mk_group_assign_uniform(f.topics, f.ntopics, f.members, 0) == 0);
    CHECK(mk_group_assign_range(f.topics, f.ntopics, f.members, 0) == 0);
    /* more members than partitions: some get none, none twice */
    for (int i = 0; i < 5; i++) {
        static const char *ids[] = {"a", "b", "c", "d", "e"};
        fx_member(&f, ids[i], 1);
    }
    CHECK(mk_group_assign_uniform(f.topics, f.ntopics, f.members, f.nmembers) == 0);
    CHECK(fx_valid(&f));
    CHECK(mk_group_assign_range(f.topics, f.ntopics, f.members, f.nmembers) == 0);
    CHECK(fx_valid(&f));
    /* a stale present target (partition gone, topic not subscribed) is ignored */
    uint8_t gone[16] = {9};
    mk_gtps_add(&f.current[0], f.topics[0].id, 7);
    mk_gtps_add(&f.current[0], gone, 0);
    mk_gtps_sort(&f.current[0]);
    CHECK(mk_group_assign_uniform(f.topics, f.ntopics, f.members, f.nmembers) == 0);
    CHECK(fx_valid(&f));
    fx_free(&f);
    /* the registry */
    const char *canon = NULL;
    CHECK(mk_group_assignor_find("uniform", &canon) == mk_group_assign_uniform && strcmp(canon, "uniform") == 0);
    CHECK(mk_group_assignor_find("org.apache.kafka.coordinator.group.assignor.RangeAssignor", &canon) ==
              mk_group_assign_range &&
          strcmp(canon, "range") == 0);
    CHECK(mk_group_assignor_find("sticky", NULL) == NULL);
    CHECK(mk_group_assignor_find(NULL, NULL) == NULL);
}

int main(void)
{
    test_sets();
    test_uniform_balanced();
    test_uniform_sticky();
    test_uniform_heterogeneous();
    test_range();
    test_edges();
    if (failures) {
        fprintf(stderr, "group_test: %d failures\n", failures);
        return 1;
    }
    printf("group_test: ok\n");
    return 0;
}
