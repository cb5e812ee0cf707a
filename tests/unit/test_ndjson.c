/*
 * ndjson suite: ndjson_next over real files, plain and gzip. Inputs go to a
 * directory under /tmp made for the suite and removed after it. A parse renders as
 * "cols:a,b\nLINE:[v1]~\n...END" (~ = NULL) so it compares in one assertion.
 */
#include "autoconfig.h"

#include "suites.h"

#include "core/util.h"
#include "sync/ndjson.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char *dir;

/* An unchecked fixture: the parent makes the directory once and removes it
 * after the last test, also when a test failed (its forked child never
 * reaches a teardown). Tests run one at a time, so they can share it. */
static void setup(void)
{
	dir = xstrdup("/tmp/ods-ndjson.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
}

static void teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *p = xasprintf("%s/%s", dir, e->d_name);
		unlink(p);
		free(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	free(dir);
}

static char *put(const char *name, const void *data, size_t len, bool gz)
{
	char *path = xasprintf("%s/%s", dir, name);

	if (gz) {
		gzFile f = gzopen(path, "wb");
		ck_assert(f != NULL);
		ck_assert(len == 0 || gzwrite(f, data, (unsigned)len) == (int)len);
		ck_assert(gzclose(f) == Z_OK);
	} else {
		FILE *f = fopen(path, "wb");
		ck_assert(f != NULL);
		ck_assert(fwrite(data, 1, len, f) == len);
		ck_assert(fclose(f) == 0);
	}
	return path;
}

/* Parses path to the end (see the top comment); the error goes to err. Caller frees. */
static char *parse_path(const char *path, char *err, size_t errlen)
{
	struct strbuf out;
	struct record rec;
	struct source *src;
	struct ndjson_reader *r;
	const char *const *cols;
	int got, ncols;

	err[0] = '\0';
	src = source_open(path, err, errlen);
	ck_assert_msg(src != NULL, "%s", err);
	r = ndjson_open(src);
	strbuf_init(&out);
	ndjson_columns(r, &ncols);
	ck_assert_int_eq(ncols, 0);
	while ((got = ndjson_next(r, &rec, err, errlen)) == 1) {
		cols = ndjson_columns(r, &ncols);
		ck_assert_int_eq(rec.nfields, ncols);
		if (out.len == 0) {
			strbuf_adds(&out, "cols:");
			for (int i = 0; i < ncols; i++)
				strbuf_addf(&out, "%s%s", i ? "," : "", cols[i]);
			strbuf_addc(&out, '\n');
		}
		strbuf_addf(&out, "%lld:", rec.line);
		for (int i = 0; i < rec.nfields; i++) {
			ck_assert(rec.field[i][rec.len[i]] == '\0');
			if (rec.null[i]) {
				strbuf_addc(&out, '~');
				continue;
			}
			strbuf_addc(&out, '[');
			strbuf_add(&out, rec.field[i], rec.len[i]);
			strbuf_addc(&out, ']');
		}
		strbuf_addc(&out, '\n');
	}
	ck_assert_msg(got == 0 || got == -1, "ndjson_next returned %d", got);
	if (got == -1)
		ck_assert_msg(err[0] != '\0', "ndjson_next returned -1 without a message");
	strbuf_adds(&out, got == 0 ? "END" : "ERR");
	ndjson_close(r);
	source_close(src);
	return strbuf_detach(&out);
}

static char *parse_data(const char *data, size_t len, bool gz, char *err, size_t errlen)
{
	char *path = put(gz ? "in.ndjson.gz" : "in.ndjson", data, len, gz);
	char *s = parse_path(path, err, errlen);

	free(path);
	return s;
}

static void expect_parse(const char *data, size_t len, const char *want)
{
	char err[ODS_ERRLEN];

	for (int gz = 0; gz <= 1; gz++) {
		char *got = parse_data(data, len, gz, err, sizeof(err));
		ck_assert_msg(strcmp(got, want) == 0, "%s input %s:\n got: %s\nwant: %s",
		              gz ? "gzip" : "plain", data, got, want);
		ck_assert_msg(err[0] == '\0', "unexpected error: %s", err);
		free(got);
	}
}

#define EXPECT(data, want) expect_parse(data, sizeof(data) - 1, want)

static void expect_error(const char *data, size_t len, const char *want_prefix,
                         const char *const *needles)
{
	char err[ODS_ERRLEN];
	char *got = parse_data(data, len, false, err, sizeof(err));
	char *path = xasprintf("%s/in.ndjson", dir);

	ck_assert_msg(util_ends_with(got, "ERR"), "no error for input: got %s", got);
	ck_assert_msg(strncmp(got, want_prefix, strlen(want_prefix)) == 0 &&
	                      strlen(got) == strlen(want_prefix) + 3,
	              "records before the error: got %s, want %sERR", got, want_prefix);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "error does not name the file: %s",
	              err);
	for (int i = 0; needles[i]; i++)
		ck_assert_msg(strstr(err, needles[i]) != NULL, "error \"%s\" lacks \"%s\"", err,
		              needles[i]);
	free(path);
	free(got);
}

#define EXPECT_ERR(data, prefix, ...)                                                              \
	do {                                                                                       \
		const char *const needles_[] = {__VA_ARGS__, NULL};                                \
		expect_error(data, sizeof(data) - 1, prefix, needles_);                            \
	} while (0)

START_TEST(columns_from_first_object)
{
	/* Key order of the first object, whatever the order of later ones. */
	EXPECT("{\"b\":1,\"a\":\"x\",\"c\":null}\n{\"a\":\"y\",\"c\":2,\"b\":3}\n",
	       "cols:b,a,c\n1:[1][x]~\n2:[3][y][2]\nEND");
}
END_TEST

START_TEST(value_forms)
{
	EXPECT("{\"s\":\"caf\\u00e9 \\\"q\\\"\\n\\t\",\"e\":\"\",\"i\":-42,"
	       "\"big\":9223372036854775807,\"t\":true,\"f\":false,\"n\":null}\n",
	       "cols:s,e,i,big,t,f,n\n1:[caf\xc3\xa9 \"q\"\n\t][][-42][9223372036854775807][true]"
	       "[false]~\nEND");
	/* Reals in their shortest round-trip form. */
	EXPECT("{\"a\":0.1,\"b\":19.99,\"c\":1e300,\"d\":-2.5,\"e\":1.5e-7,"
	       "\"f\":0.30000000000000004,\"g\":123456.789}\n",
	       "cols:a,b,c,d,e,f,g\n1:[0.1][19.99][1e+300][-2.5][1.5e-07][0.30000000000000004]"
	       "[123456.789]\nEND");
	/* Nested values as compact JSON text (for jsonb columns). */
	EXPECT("{\"o\": {\"k\": [1, \"x\", {\"z\": null}], \"b\": true}, \"a\": [], \"e\": {}}\n",
	       "cols:o,a,e\n1:[{\"k\":[1,\"x\",{\"z\":null}],\"b\":true}][[]][{}]\nEND");
}
END_TEST

/* Reals inside nested values keep their shortest form too: jsonb stores
 * what we send, and 0.10000000000000001 is not the source's 0.1. */
START_TEST(nested_reals_shortest_form)
{
	EXPECT("{\"o\":{\"w\":0.1,\"a\":[19.99,1e300,-2.5,{\"x\":0.3}]}}\n",
	       "cols:o\n1:[{\"w\":0.1,\"a\":[19.99,1e+300,-2.5,{\"x\":0.3}]}]\nEND");
}
END_TEST

/* A real that is a whole number reads back exactly, whatever its spelling. */
START_TEST(whole_reals_round_trip)
{
	static const char in[] = "{\"a\":100.0,\"b\":1e21,\"c\":-0.0}\n";
	char err[ODS_ERRLEN];
	char *path = put("r.ndjson", in, sizeof(in) - 1, false);
	struct source *src = source_open(path, err, sizeof(err));
	struct ndjson_reader *r;
	struct record rec;

	ck_assert(src != NULL);
	r = ndjson_open(src);
	ck_assert_int_eq(ndjson_next(r, &rec, err, sizeof(err)), 1);
	ck_assert(strtod(rec.field[0], NULL) == 100.0);
	ck_assert(strtod(rec.field[1], NULL) == 1e21);
	ck_assert(strtod(rec.field[2], NULL) == 0.0);
	ndjson_close(r);
	source_close(src);
	free(path);
}
END_TEST

START_TEST(nul_in_string)
{
	/* \u0000 is allowed in a string; the field's length says where it ends. */
	static const char in[] = "{\"a\":\"x\\u0000y\"}\n";
	char err[ODS_ERRLEN];
	char *path = put("nul.ndjson", in, sizeof(in) - 1, false);
	struct source *src = source_open(path, err, sizeof(err));
	struct ndjson_reader *r;
	struct record rec;

	ck_assert(src != NULL);
	r = ndjson_open(src);
	ck_assert_int_eq(ndjson_next(r, &rec, err, sizeof(err)), 1);
	ck_assert_uint_eq(rec.len[0], 3);
	ck_assert(memcmp(rec.field[0], "x\0y", 3) == 0);
	ndjson_close(r);
	source_close(src);
	free(path);
}
END_TEST

START_TEST(blank_lines_and_line_numbers)
{
	EXPECT("\n{\"a\":1}\n   \n\r\n\t\n{\"a\":2}\n\n", "cols:a\n2:[1]\n6:[2]\nEND");
	/* CRLF line endings and no final newline. */
	EXPECT("{\"a\":1}\r\n{\"a\":2}", "cols:a\n1:[1]\n2:[2]\nEND");
	EXPECT("", "END");
	EXPECT("\n \n", "END");
}
END_TEST

START_TEST(error_invalid_json)
{
	EXPECT_ERR("{\"a\":1}\n\n{\"a\":2,}\n", "cols:a\n1:[1]\n", ": line 3, column ",
	           "invalid JSON");
	EXPECT_ERR("{\"a\":1}\n{\"a\":2}{\"a\":3}\n", "cols:a\n1:[1]\n", ": line 2, column ",
	           "invalid JSON");
	EXPECT_ERR("{\"a\":\"unterminated}\n", "", ": line 1, column ", "invalid JSON");
}
END_TEST

START_TEST(error_not_an_object)
{
	EXPECT_ERR("{\"a\":1}\n[1,2]\n", "cols:a\n1:[1]\n", ": line 2:", "expected a JSON object");
	/* A scalar is rejected by the parser itself ('[' or '{' expected). */
	EXPECT_ERR("{\"a\":1}\n\n42\n", "cols:a\n1:[1]\n", ": line 3");
	EXPECT_ERR("\"s\"\n", "", ": line 1");
	EXPECT_ERR("[{\"a\":1}]\n", "", ": line 1:", "expected a JSON object");
}
END_TEST

START_TEST(error_missing_key)
{
	EXPECT_ERR("{\"a\":1,\"b\":2}\n{\"a\":1}\n", "cols:a,b\n1:[1][2]\n",
	           ": line 2, column b:", "missing key");
	/* Same number of keys, one of them different. */
	EXPECT_ERR("{\"a\":1,\"b\":2}\n{\"a\":1,\"c\":2}\n", "cols:a,b\n1:[1][2]\n",
	           ": line 2, column b:", "missing key");
}
END_TEST

START_TEST(error_extra_key)
{
	EXPECT_ERR("{\"a\":1}\n{\"a\":1,\"z\":2}\n", "cols:a\n1:[1]\n",
	           ": line 2, column z:", "unexpected key");
}
END_TEST

START_TEST(error_duplicate_key)
{
	EXPECT_ERR("{\"a\":1}\n{\"a\":1,\"a\":2}\n", "cols:a\n1:[1]\n", ": line 2, column ",
	           "duplicate");
	EXPECT_ERR("{\"a\":1,\"a\":2}\n", "", ": line 1, column ", "duplicate");
}
END_TEST

START_TEST(gzip_identical)
{
	struct strbuf in;
	char err[ODS_ERRLEN];
	char *plain, *gz;

	strbuf_init(&in);
	for (int i = 0; i < 30000; i++)
		strbuf_addf(&in, "{\"id\":%d,\"v\":%d.25,\"s\":\"row %d\",\"j\":{\"k\":[%d]}}\n", i,
		            i, i, i);
	plain = parse_data(in.data, in.len, false, err, sizeof(err));
	ck_assert_msg(util_ends_with(plain, "END"), "%s", err);
	gz = parse_data(in.data, in.len, true, err, sizeof(err));
	ck_assert_msg(util_ends_with(gz, "END"), "%s", err);
	ck_assert(strcmp(plain, gz) == 0);
	ck_assert(strstr(plain, "\n30000:[29999][29999.25][row 29999][{\"k\":[29999]}]\nEND"));
	free(plain);
	free(gz);
	strbuf_free(&in);
}
END_TEST

START_TEST(gzip_truncated)
{
	struct strbuf in;
	char err[ODS_ERRLEN];
	char *path, *got;
	FILE *f;
	long size;

	strbuf_init(&in);
	for (int i = 0; i < 20000; i++)
		strbuf_addf(&in, "{\"id\":%d,\"v\":%u}\n", i, (unsigned)i * 2654435761u);
	path = put("t.ndjson.gz", in.data, in.len, true);
	f = fopen(path, "r+b");
	ck_assert(f != NULL);
	ck_assert(fseek(f, 0, SEEK_END) == 0);
	size = ftell(f);
	ck_assert(fclose(f) == 0);
	ck_assert(truncate(path, size / 2) == 0);
	got = parse_path(path, err, sizeof(err));
	ck_assert_msg(util_ends_with(got, "ERR"), "a truncated gzip parsed cleanly");
	ck_assert_msg(strstr(err, path) && strstr(err, "truncated"), "%s", err);
	free(got);
	free(path);
	strbuf_free(&in);
}
END_TEST

/* A line larger than the 256 KiB read buffer. */
START_TEST(line_spans_buffer)
{
	struct strbuf in, want;
	char err[ODS_ERRLEN];

	strbuf_init(&in);
	strbuf_init(&want);
	strbuf_adds(&in, "{\"a\":1,\"s\":\"\"}\n{\"a\":2,\"s\":\"");
	strbuf_adds(&want, "cols:a,s\n1:[1][]\n2:[2][");
	for (int i = 0; i < 300000; i++) {
		strbuf_addc(&in, (char)('a' + i % 26));
		strbuf_addc(&want, (char)('a' + i % 26));
	}
	strbuf_adds(&in, "\"}\n{\"a\":3,\"s\":\"z\"}\n");
	strbuf_adds(&want, "]\n3:[3][z]\nEND");
	for (int gz = 0; gz <= 1; gz++) {
		char *got = parse_data(in.data, in.len, gz, err, sizeof(err));
		ck_assert_msg(strcmp(got, want.data) == 0, "long line mangled (%s)", err);
		free(got);
	}
	strbuf_free(&in);
	strbuf_free(&want);
}
END_TEST

START_TEST(hostile_deep_nesting)
{
	struct strbuf in;
	char err[ODS_ERRLEN];
	char *got;

	strbuf_init(&in);
	for (int i = 0; i < 100000; i++)
		strbuf_addc(&in, '[');
	strbuf_addc(&in, '\n');
	got = parse_data(in.data, in.len, false, err, sizeof(err));
	ck_assert_str_eq(got, "ERR");
	ck_assert(strstr(err, "line 1"));
	free(got);

	/* Deep nesting inside an object, closed properly. */
	strbuf_reset(&in);
	strbuf_adds(&in, "{\"a\":");
	for (int i = 0; i < 100000; i++)
		strbuf_adds(&in, "{\"a\":");
	strbuf_addc(&in, '1');
	for (int i = 0; i < 100001; i++)
		strbuf_addc(&in, '}');
	strbuf_addc(&in, '\n');
	got = parse_data(in.data, in.len, false, err, sizeof(err));
	ck_assert_str_eq(got, "ERR");
	free(got);
	strbuf_free(&in);
}
END_TEST

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

START_TEST(hostile_random_bytes)
{
	/* JSON-ish tokens and raw bytes, so some lines get deep into the parser. */
	static const char *const tokens[] = {
	        "{",           "}",  "[", "]",           "\"a\"",      "\"b\"",
	        ":",           ",",  "1", "-0.5e3",      "null",       "true",
	        "\"\\u0000\"", "\n", " ", "\"\\ud800\"", "{\"a\":1}\n"};
	char *path = xasprintf("%s/fuzz.ndjson", dir);
	unsigned char buf[800];
	char err[ODS_ERRLEN];

	rng_state = 0x2545f4914f6cdd1dull;
	for (int i = 0; i < 10000; i++) {
		size_t len = 0, want = rng() % 600;
		while (len < want) {
			uint64_t x = rng();
			if (x % 3 == 0) {
				buf[len++] = (unsigned char)(x >> 8);
			} else {
				const char *t = tokens[(x >> 8) % ODS_ARRAY_LEN(tokens)];
				size_t n = strlen(t);
				memcpy(buf + len, t, n);
				len += n;
			}
		}
		free(put("fuzz.ndjson", buf, len, i % 10 == 5));
		struct source *src = source_open(path, err, sizeof(err));
		ck_assert(src != NULL);
		struct ndjson_reader *r = ndjson_open(src);
		struct record rec;
		long long records = 0, last = 0;
		int got;
		while ((got = ndjson_next(r, &rec, err, sizeof(err))) == 1) {
			ck_assert_int_gt(rec.line, last);
			last = rec.line;
			ck_assert_int_le(++records, (long long)len);
		}
		ck_assert_msg(got == 0 || got == -1, "ndjson_next returned %d", got);
		ndjson_close(r);
		source_close(src);
	}
	free(path);
}
END_TEST

Suite *ndjson_suite(void)
{
	Suite *s = suite_create("ndjson");
	TCase *tc = tcase_create("ndjson");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, columns_from_first_object);
	tcase_add_test(tc, value_forms);
	tcase_add_test(tc, nested_reals_shortest_form);
	tcase_add_test(tc, whole_reals_round_trip);
	tcase_add_test(tc, nul_in_string);
	tcase_add_test(tc, blank_lines_and_line_numbers);
	tcase_add_test(tc, error_invalid_json);
	tcase_add_test(tc, error_not_an_object);
	tcase_add_test(tc, error_missing_key);
	tcase_add_test(tc, error_extra_key);
	tcase_add_test(tc, error_duplicate_key);
	tcase_add_test(tc, gzip_identical);
	tcase_add_test(tc, gzip_truncated);
	tcase_add_test(tc, line_spans_buffer);
	tcase_add_test(tc, hostile_deep_nesting);
	tcase_add_test(tc, hostile_random_bytes);
	suite_add_tcase(s, tc);
	return s;
}
