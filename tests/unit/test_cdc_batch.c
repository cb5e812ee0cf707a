/*
 * test_cdc_batch: the collapse of a source transaction's changes to one final
 * state per key (sync/cdc_batch.c), on a hand-made table (id key, status,
 * note) whose relation columns arrive in the order (note, id, status), so the
 * by-name mapping is exercised too.
 */
#include "autoconfig.h"

#include "suites.h"
#include "sync/cdc_batch.h"

#include <string.h>

static struct cdc_col cols[] = {{.name = "id", .pk = true}, {.name = "status"}, {.name = "note"}};
static int pk[] = {0};
static int col_src[] = {1, 2, 0}; /* synced column -> relation column */
static struct cdc_table table = {.target = "t",
                                 .src_schema = "public",
                                 .src_table = "s",
                                 .ncols = 3,
                                 .cols = cols,
                                 .npk = 1,
                                 .pk = pk,
                                 .col_src = col_src};

/* A tuple in relation order (note, id, status); "\x01" = not sent, NULL = SQL NULL. */
static struct pgo_value vals[8][3];
static int nvals;

static struct pgo_tuple tuple(const char *note, const char *id, const char *status)
{
	const char *in[3] = {note, id, status};
	struct pgo_value *v = vals[nvals++ % 8];

	for (int i = 0; i < 3; i++) {
		if (!in[i])
			v[i] = (struct pgo_value){.kind = 'n'};
		else if (strcmp(in[i], "\x01") == 0)
			v[i] = (struct pgo_value){.kind = 'u'};
		else
			v[i] = (struct pgo_value){
			        .kind = 't', .data = in[i], .len = (uint32_t)strlen(in[i])};
	}
	return (struct pgo_tuple){.n = 3, .v = v};
}

static char *array(struct cdc_batch *b, enum cdc_op op, int col)
{
	static char out[256];
	struct strbuf sb;

	strbuf_init(&sb);
	cdc_batch_array(b, op, col, -1, &sb);
	snprintf(out, sizeof(out), "%s", sb.data);
	strbuf_free(&sb);
	return out;
}

START_TEST(insert_then_updates_collapse)
{
	char err[256];
	struct cdc_batch *b = cdc_batch_new(&table);
	struct pgo_tuple t1 = tuple("a", "1", "placed"), t2 = tuple("b", "1", "paid"),
	                 t3 = tuple("c", "2", "placed");

	ck_assert(cdc_batch_insert(b, &t1, err, sizeof(err)));
	ck_assert(cdc_batch_update(b, NULL, &t2, err, sizeof(err)));
	ck_assert(cdc_batch_insert(b, &t3, err, sizeof(err)));
	ck_assert_int_eq(cdc_batch_size(b), 2);
	ck_assert_int_eq(cdc_batch_count(b, CDC_UPSERT), 2);
	ck_assert_str_eq(array(b, CDC_UPSERT, 0), "{\"1\",\"2\"}");
	ck_assert_str_eq(array(b, CDC_UPSERT, 1), "{\"paid\",\"placed\"}");
	ck_assert_str_eq(array(b, CDC_UPSERT, 2), "{\"b\",\"c\"}");
	cdc_batch_free(b);
}
END_TEST

START_TEST(delete_keeps_the_key_and_reinsert_leaks_nothing)
{
	char err[256];
	struct cdc_batch *b = cdc_batch_new(&table);
	struct pgo_tuple t1 = tuple("old", "7", "placed"), k = tuple(NULL, "7", NULL);

	ck_assert(cdc_batch_insert(b, &t1, err, sizeof(err)));
	ck_assert(cdc_batch_delete(b, &k, err, sizeof(err)));
	ck_assert_int_eq(cdc_batch_count(b, CDC_DELETE), 1);
	ck_assert_str_eq(array(b, CDC_DELETE, 0), "{\"7\"}");
	/* Inserted again, with a TOAST column not sent: nothing of "old" may come back. */
	struct pgo_tuple t2 = tuple("\x01", "7", "paid");
	ck_assert(cdc_batch_insert(b, &t2, err, sizeof(err)));
	ck_assert_int_eq(cdc_batch_count(b, CDC_DELETE), 0);
	ck_assert_int_eq(cdc_batch_count(b, CDC_PARTIAL), 1);
	cdc_batch_free(b);
}
END_TEST

START_TEST(key_change_deletes_the_old_key)
{
	char err[256];
	struct cdc_batch *b = cdc_batch_new(&table);
	struct pgo_tuple ins = tuple("n", "1", "placed"), oldk = tuple(NULL, "1", NULL),
	                 upd = tuple("\x01", "9", "paid");

	ck_assert(cdc_batch_insert(b, &ins, err, sizeof(err)));
	ck_assert(cdc_batch_update(b, &oldk, &upd, err, sizeof(err)));
	ck_assert_int_eq(cdc_batch_count(b, CDC_DELETE), 1);
	ck_assert_str_eq(array(b, CDC_DELETE, 0), "{\"1\"}");
	/* The unsent note comes from the old key's row of the same batch. */
	ck_assert_int_eq(cdc_batch_count(b, CDC_UPSERT), 1);
	ck_assert_str_eq(array(b, CDC_UPSERT, 0), "{\"9\"}");
	ck_assert_str_eq(array(b, CDC_UPSERT, 2), "{\"n\"}");
	cdc_batch_free(b);
}
END_TEST

START_TEST(unchanged_toast_without_earlier_value_is_partial)
{
	char err[256];
	const char *v;
	size_t len;
	struct cdc_batch *b = cdc_batch_new(&table);
	struct pgo_tuple upd = tuple("\x01", "3", "shipped");

	ck_assert(cdc_batch_update(b, NULL, &upd, err, sizeof(err)));
	ck_assert_int_eq(cdc_batch_count(b, CDC_PARTIAL), 1);
	ck_assert_int_eq(cdc_batch_count(b, CDC_UPSERT), 0);
	ck_assert(cdc_batch_value(b, CDC_PARTIAL, 0, 1, &v, &len));
	ck_assert_int_eq((int)len, 7);
	ck_assert(memcmp(v, "shipped", 7) == 0);
	ck_assert(!cdc_batch_value(b, CDC_PARTIAL, 0, 2, &v, &len)); /* note: keep the stored one */
	/* A later full row for the key makes it a plain upsert again. */
	struct pgo_tuple full = tuple("x", "3", "delivered");
	ck_assert(cdc_batch_update(b, NULL, &full, err, sizeof(err)));
	ck_assert_int_eq(cdc_batch_count(b, CDC_UPSERT), 1);
	cdc_batch_free(b);
}
END_TEST

START_TEST(array_literal_escapes)
{
	char err[256];
	struct cdc_batch *b = cdc_batch_new(&table);
	struct pgo_tuple t1 = tuple("a\"b", "1", "x"), t2 = tuple("c\\d,{e}", "2", "y"),
	                 t3 = tuple(NULL, "3", "z");

	ck_assert(cdc_batch_insert(b, &t1, err, sizeof(err)));
	ck_assert(cdc_batch_insert(b, &t2, err, sizeof(err)));
	ck_assert(cdc_batch_insert(b, &t3, err, sizeof(err)));
	ck_assert_str_eq(array(b, CDC_UPSERT, 2), "{\"a\\\"b\",\"c\\\\d,{e}\",NULL}");
	struct strbuf one;
	strbuf_init(&one);
	cdc_batch_array(b, CDC_UPSERT, 0, 1, &one);
	ck_assert_str_eq(one.data, "{\"2\"}");
	strbuf_free(&one);
	cdc_batch_free(b);
}
END_TEST

START_TEST(hostile_tuples_are_errors)
{
	char err[256] = "";
	struct cdc_batch *b = cdc_batch_new(&table);
	struct pgo_tuple nokey = tuple("n", NULL, "s"), unsent = tuple("n", "\x01", "s");
	struct pgo_tuple shorty = tuple("n", "1", "s");

	ck_assert(!cdc_batch_insert(b, &nokey, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "key column id"));
	ck_assert(!cdc_batch_delete(b, &unsent, err, sizeof(err)));
	shorty.n = 2; /* fewer columns than the mapping needs */
	ck_assert(!cdc_batch_insert(b, &shorty, err, sizeof(err)));
	ck_assert_int_eq(cdc_batch_size(b), 0);
	cdc_batch_free(b);
}
END_TEST

START_TEST(many_keys)
{
	char err[256], id[16];
	struct cdc_batch *b = cdc_batch_new(&table);

	for (int i = 0; i < 20000; i++) {
		snprintf(id, sizeof(id), "%d", i % 10000);
		struct pgo_tuple t = tuple("n", id, i < 10000 ? "placed" : "paid");
		ck_assert(cdc_batch_insert(b, &t, err, sizeof(err)));
	}
	ck_assert_int_eq(cdc_batch_size(b), 10000);
	struct strbuf sb;
	strbuf_init(&sb);
	cdc_batch_array(b, CDC_UPSERT, 1, -1, &sb);
	ck_assert_ptr_null(strstr(sb.data, "placed"));
	strbuf_free(&sb);
	cdc_batch_free(b);
}
END_TEST

Suite *cdc_batch_suite(void)
{
	Suite *s = suite_create("cdc_batch");
	TCase *tc = tcase_create("collapse");

	tcase_add_test(tc, insert_then_updates_collapse);
	tcase_add_test(tc, delete_keeps_the_key_and_reinsert_leaks_nothing);
	tcase_add_test(tc, key_change_deletes_the_old_key);
	tcase_add_test(tc, unchanged_toast_without_earlier_value_is_partial);
	tcase_add_test(tc, array_literal_escapes);
	tcase_add_test(tc, hostile_tuples_are_errors);
	tcase_add_test(tc, many_keys);
	suite_add_tcase(s, tc);
	return s;
}
