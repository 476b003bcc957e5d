/*
 * base_test.c -- unit tests of L0: checked reader (sticky errors, bounds,
 * varint limits), buffer encoders, arena, crc32c against the standard check
 * value, map, and the allocation fault hook.
 */
#include "base/base.h"

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

static void test_reader(void)
{
    const uint8_t d[] = {0x01, 0x02, 0x03, 0x04, 0x05};
    mk_reader_t r;
    mk_rd_init(&r, d, sizeof(d));
    CHECK(mk_rd_i16(&r) == 0x0102);
    CHECK(mk_rd_i32(&r) == 0); /* only 3 left: fails, sticky */
    CHECK(r.err == MK_ERR_TRUNCATED);
    CHECK(mk_rd_i8(&r) == 0 && !mk_rd_ok(&r));
    CHECK(mk_rd_remaining(&r) == 0);

    /* varints: 300 = 0xac 0x02; zig-zag -1 = 1 */
    const uint8_t v[] = {0xac, 0x02, 0x01};
    mk_rd_init(&r, v, sizeof(v));
    CHECK(mk_rd_uvarint(&r) == 300);
    CHECK(mk_rd_varint(&r) == -1);
    CHECK(mk_rd_ok(&r));
    /* an over-long varint is refused */
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    mk_rd_init(&r, bad, sizeof(bad));
    mk_rd_uvarint(&r);
    CHECK(!mk_rd_ok(&r));
    const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x7f};
    mk_rd_init(&r, big, sizeof(big));
    mk_rd_uvarint32(&r);
    CHECK(!mk_rd_ok(&r));
    CHECK(mk_rd_bytes(&r, 1) == NULL);
}

static void test_buf(void)
{
    mk_buf_t b;
    mk_buf_init(&b);
    mk_buf_put_i16(&b, 0x0102);
    mk_buf_put_i32(&b, -2);
    mk_buf_put_i64(&b, 0x0102030405060708LL);
    mk_buf_put_uvarint(&b, 300);
    mk_buf_put_varint(&b, -1);
    const uint8_t want[] = {1, 2, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 0xac, 0x02, 0x01};
    CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
    mk_buf_patch_i32(&b, 2, 7);
    CHECK(b.data[5] == 7);
    for (int64_t x = -70000; x < 70000; x += 997) {
        mk_buf_reset(&b);
        mk_buf_put_varint(&b, x);
        CHECK(b.len == mk_varint_len(x));
        mk_reader_t r;
        mk_rd_init(&r, b.data, b.len);
        CHECK(mk_rd_varint(&r) == x);
    }
    mk_buf_free(&b);
}

static void test_crc(void)
{
    CHECK(mk_crc32c(0, "123456789", 9) == 0xE3069283u); /* the standard check value */
    uint32_t c = mk_crc32c(0, "1234", 4);
    CHECK(mk_crc32c(c, "56789", 5) == 0xE3069283u);
    uint8_t big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (uint8_t)(i * 7);
    uint32_t whole = mk_crc32c(0, big, sizeof(big));
    CHECK(mk_crc32c(mk_crc32c(0, big, 333), big + 333, 667) == whole);
}

static void test_arena_map(void)
{
    mk_arena_t a;
    mk_arena_init(&a);
    char *s = mk_arena_sprintf(&a, "x%dy", 42);
    CHECK(s && strcmp(s, "x42y") == 0);
    void *large = mk_arena_alloc(&a, 100000);
    CHECK(large != NULL);
    CHECK(((uintptr_t)mk_arena_alloc(&a, 3) & 7) == 0);
    mk_arena_free(&a);

    mk_map_t m;
    mk_map_init(&m);
    char keys[500][16];
    for (int i = 0; i < 500; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        CHECK(mk_map_put(&m, keys[i], keys[i]) == 0);
    }
    CHECK(m.count == 500);
    for (int i = 0; i < 500; i += 2)
        CHECK(mk_map_del(&m, keys[i]) == keys[i]);
    for (int i = 0; i < 500; i++)
        CHECK((mk_map_get(&m, keys[i]) != NULL) == (i % 2 == 1));
    size_t it = 0, n = 0;
    const char *k;
    void *v;
    while (mk_map_next(&m, &it, &k, &v))
        n++;
    CHECK(n == 250);
    mk_map_free(&m);
}

static void test_fault_hook(void)
{
    mk_mem_fail_at(2);
    void *a = mk_malloc(8);
    void *b = mk_malloc(8);
    void *c = mk_malloc(8);
    CHECK(a != NULL && b == NULL && c != NULL);
    mk_free(a);
    mk_free(c);
    mk_buf_t buf;
    mk_buf_init(&buf);
    mk_mem_fail_at(1);
    mk_buf_put_i32(&buf, 1);
    CHECK(!mk_buf_ok(&buf));
    mk_buf_free(&buf);
}

/* The per-loop registry: one object per loop key, made on demand, found
 * again, taken off its list (first, middle, last) and freed. */
static void test_per_loop(void)
{
    typedef struct {
        mk_per_loop_t link;
        int n;
    } obj_t;
    mk_per_loop_t *list = NULL;
    int keys[3];
    CHECK(mk_per_loop_get(&list, &keys[0], 0) == NULL && list == NULL);
    obj_t *o[3];
    for (int i = 0; i < 3; i++) {
        o[i] = mk_per_loop_get(&list, &keys[i], sizeof(obj_t));
        CHECK(o[i] != NULL && o[i]->n == 0 && o[i]->link.loop == &keys[i]);
        o[i]->n = i + 1;
    }
    for (int i = 0; i < 3; i++)
        CHECK(mk_per_loop_get(&list, &keys[i], 0) == o[i] && mk_per_loop_get(&list, &keys[i], sizeof(obj_t)) == o[i]);
    mk_per_loop_free(&list, o[1]);
    CHECK(mk_per_loop_get(&list, &keys[1], 0) == NULL);
    CHECK(mk_per_loop_get(&list, &keys[0], 0) == o[0] && mk_per_loop_get(&list, &keys[2], 0) == o[2]);
    mk_per_loop_free(&list, o[2]);
    mk_per_loop_free(&list, o[0]);
    CHECK(list == NULL);
    mk_mem_fail_at(1);
    CHECK(mk_per_loop_get(&list, &keys[0], sizeof(obj_t)) == NULL && list == NULL);
}

int main(void)
{
    test_reader();
    test_buf();
    test_crc();
    test_arena_map();
    test_fault_hook();
    test_per_loop();
    if (failures) {
        fprintf(stderr, "base_test: %d failures\n", failures);
        return 1;
    }
    printf("base_test: ok\n");
    return 0;
}
