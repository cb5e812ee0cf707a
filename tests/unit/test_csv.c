/*
 * csv suite: csv_next over real files (source_open needs a path), plain and
 * gzip. Inputs go to a directory under /tmp made for the suite and removed
 * after it. Records are rendered as text ("LINE:[f1]~[f3]\n",
 * ~ = NULL) so a whole parse compares in one assertion.
 */
#include "autoconfig.h"

#include "suites.h"

#include "core/util.h"
#include "sync/csv.h"

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
	dir = xstrdup("/tmp/ods-csv.XXXXXX");
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

/* Writes data to dir/name, gzip-compressed when gz; returns the path (caller frees). */
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

static void render(struct strbuf *out, const struct record *rec)
{
	strbuf_addf(out, "%lld:", rec->line);
	for (int i = 0; i < rec->nfields; i++) {
		/* Every field is NUL-terminated as promised by source.h. */
		ck_assert(rec->field[i][rec->len[i]] == '\0');
		if (rec->null[i]) {
			ck_assert_uint_eq(rec->len[i], 0);
			strbuf_addc(out, '~');
		} else {
			strbuf_addc(out, '[');
			strbuf_add(out, rec->field[i], rec->len[i]);
			strbuf_addc(out, ']');
		}
	}
	strbuf_addc(out, '\n');
}

/*
 * Parses the file at path to the end: every record rendered, then "END" or
 * "ERR". The error message (if any) goes to err. Caller frees.
 */
static char *parse_path(const char *path, char *err, size_t errlen)
{
	struct strbuf out;
	struct record rec;
	struct source *src;
	struct csv_reader *r;
	int got;

	err[0] = '\0';
	src = source_open(path, err, errlen);
	ck_assert_msg(src != NULL, "%s", err);
	r = csv_open(src);
	strbuf_init(&out);
	while ((got = csv_next(r, &rec, err, errlen)) == 1)
		render(&out, &rec);
	ck_assert_int_ge(got, -1);
	ck_assert_int_le(got, 0);
	strbuf_adds(&out, got == 0 ? "END" : "ERR");
	if (got == -1)
		ck_assert_msg(err[0] != '\0', "csv_next returned -1 without a message");
	csv_close(r);
	source_close(src);
	return strbuf_detach(&out);
}

static char *parse_data(const char *data, size_t len, bool gz, char *err, size_t errlen)
{
	char *path = put(gz ? "in.csv.gz" : "in.csv", data, len, gz);
	char *s = parse_path(path, err, errlen);

	free(path);
	return s;
}

/* Asserts that data (plain, and again gzipped) parses to want with no error. */
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

/* Asserts that data parses to the records want_prefix then fails with every needle in err. */
static void expect_error(const char *data, size_t len, const char *want_prefix,
                         const char *const *needles)
{
	char err[ODS_ERRLEN];
	char *got = parse_data(data, len, false, err, sizeof(err));
	char *path = xasprintf("%s/in.csv", dir);

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

START_TEST(simple_records)
{
	EXPECT("id,name,qty\n1,alice,3\n2,bob,4\n",
	       "1:[id][name][qty]\n2:[1][alice][3]\n3:[2][bob][4]\nEND");
	EXPECT("x\n", "1:[x]\nEND");
	EXPECT(" a , b \n", "1:[ a ][ b ]\n"
	                    "END");
}
END_TEST

START_TEST(quoted_fields)
{
	EXPECT("1,\"a,b\",\"say \"\"hi\"\"\",\"x\ny\",\"p\r\nq\"\n2,z\n",
	       "1:[1][a,b][say \"hi\"][x\ny][p\r\nq]\n4:[2][z]\nEND");
	/* A quoted field may hold a lone CR and a lone quote pair. */
	EXPECT("\"a\rb\",\"\"\"\"\n", "1:[a\rb][\"]\nEND");
	/* Several line breaks inside one field: the next record's line stays right. */
	EXPECT("h\n\"1\n2\n3\n\"\nnext\n", "1:[h]\n2:[1\n2\n3\n]\n6:[next]\nEND");
}
END_TEST

START_TEST(crlf_line_endings)
{
	EXPECT("a,b\r\n1,2\r\n\"x\r\ny\",3\r\n4,5\r\n",
	       "1:[a][b]\n2:[1][2]\n3:[x\r\ny][3]\n5:[4][5]\nEND");
}
END_TEST

START_TEST(null_vs_empty_string)
{
	EXPECT("a,,\"\"\n", "1:[a]~[]\nEND");
	EXPECT(",a\n", "1:~[a]\nEND");
	EXPECT("\"\",\n", "1:[]~\nEND");
	EXPECT("\"\"\n", "1:[]\nEND");
	EXPECT(",\n", "1:~~\nEND");
}
END_TEST

START_TEST(trailing_comma)
{
	EXPECT("a,b,\n1,2,\n", "1:[a][b]~\n2:[1][2]~\nEND");
	EXPECT("a,b,\r\n", "1:[a][b]~\nEND");
	EXPECT("a,b,", "1:[a][b]~\nEND");
}
END_TEST

START_TEST(no_final_newline)
{
	EXPECT("a,b\n1,2", "1:[a][b]\n2:[1][2]\nEND");
	EXPECT("a,b\n1,\"2\"", "1:[a][b]\n2:[1][2]\nEND");
	EXPECT("a,b\n1,\"\"", "1:[a][b]\n2:[1][]\nEND");
}
END_TEST

START_TEST(blank_lines_skipped)
{
	EXPECT("\n\na\n\n\r\nb\n\n", "3:[a]\n6:[b]\nEND");
	EXPECT("a\n\n\n", "1:[a]\nEND");
}
END_TEST

START_TEST(header_only)
{
	EXPECT("id,name\n", "1:[id][name]\nEND");
}
END_TEST

START_TEST(empty_file)
{
	EXPECT("", "END");
	EXPECT("\n\n\r\n", "END");
}
END_TEST

/* A larger input that crosses several 256 KiB refills, plain vs gzip. */
START_TEST(gzip_identical_large)
{
	struct strbuf in;
	char err[ODS_ERRLEN];
	char *plain, *gz;

	strbuf_init(&in);
	strbuf_adds(&in, "id,text,note\n");
	for (int i = 0; i < 40000; i++)
		strbuf_addf(&in, "%d,\"row %d, \"\"q\"\"\nline2\",%s\r\n", i, i, i % 3 ? "x" : "");
	plain = parse_data(in.data, in.len, false, err, sizeof(err));
	ck_assert_msg(util_ends_with(plain, "END"), "%s", err);
	gz = parse_data(in.data, in.len, true, err, sizeof(err));
	ck_assert_msg(util_ends_with(gz, "END"), "%s", err);
	ck_assert(strcmp(plain, gz) == 0);
	/* Spot-check the last record: 2 physical lines per record after the header. */
	ck_assert_msg(strstr(plain, "\n80000:[39999][row 39999, \"q\"\nline2]~\nEND") != NULL,
	              "last record wrong");
	free(plain);
	free(gz);
	strbuf_free(&in);
}
END_TEST

/* Compresses data in memory (gzip format); caller frees. */
static unsigned char *gzip_bytes(const char *data, size_t len, size_t *outlen)
{
	z_stream z;
	size_t cap = len + len / 10 + 64;
	unsigned char *out = xmalloc(cap);

	memset(&z, 0, sizeof(z));
	ck_assert(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	z.next_in = (unsigned char *)(uintptr_t)data;
	z.avail_in = (unsigned)len;
	z.next_out = out;
	z.avail_out = (unsigned)cap;
	ck_assert(deflate(&z, Z_FINISH) == Z_STREAM_END);
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

static char *numbers_csv(int rows, size_t *len)
{
	struct strbuf in;

	strbuf_init(&in);
	strbuf_adds(&in, "id,v\n");
	for (int i = 0; i < rows; i++)
		strbuf_addf(&in, "%d,%u\n", i, (unsigned)i * 2654435761u);
	*len = in.len;
	return strbuf_detach(&in);
}

static void expect_gzip_error(const unsigned char *gz, size_t len, const char *needle)
{
	char err[ODS_ERRLEN];
	char *path = put("bad.csv.gz", gz, len, false);
	char *got = parse_path(path, err, sizeof(err));

	ck_assert_msg(util_ends_with(got, "ERR"), "no error for damaged gzip (%zu bytes)", len);
	ck_assert_msg(strstr(err, path) != NULL, "error does not name the file: %s", err);
	ck_assert_msg(strstr(err, needle) != NULL, "error \"%s\" lacks \"%s\"", err, needle);
	free(got);
	free(path);
}

START_TEST(gzip_truncated)
{
	size_t len, gzlen;
	char *in = numbers_csv(50000, &len);
	unsigned char *gz = gzip_bytes(in, len, &gzlen);

	/* Cut in the middle of the deflate data, just after the header, and
	 * at the very end (only the CRC/size trailer missing). */
	expect_gzip_error(gz, gzlen / 2, "truncated");
	expect_gzip_error(gz, 12, "truncated");
	expect_gzip_error(gz, gzlen - 4, "truncated");
	expect_gzip_error(gz, gzlen - 8, "truncated");
	free(gz);
	free(in);
}
END_TEST

START_TEST(gzip_corrupt)
{
	static const unsigned char garbage[] = "\x1f\x8b this is not a deflate stream at all";
	size_t len, gzlen;
	char *in = numbers_csv(1000, &len);
	unsigned char *gz = gzip_bytes(in, len, &gzlen);

	expect_gzip_error(garbage, sizeof(garbage) - 1, "gzip");
	/* A damaged CRC: all data decompresses but the check fails. */
	gz[gzlen - 6] ^= 0x55;
	expect_gzip_error(gz, gzlen, "corrupt");
	free(gz);
	free(in);
}
END_TEST

START_TEST(error_unterminated_quote)
{
	/* Reported at the line where the field opened, not at the end of the file. */
	EXPECT_ERR("a,b\n1,\"abc\ndef\nghi\n", "1:[a][b]\n", ": line 2, column 2:", "never closed");
}
END_TEST

START_TEST(error_after_closing_quote)
{
	EXPECT_ERR("a,b\n1,\"x\"y\n", "1:[a][b]\n", ": line 2, column 2:", "after a closing quote");
	/* The physical line inside a multi-line record. */
	EXPECT_ERR("a\n\"x\ny\"z\n", "1:[a]\n", ": line 3, column 1:", "after a closing quote");
}
END_TEST

START_TEST(error_quote_in_unquoted)
{
	EXPECT_ERR("a,b,c\n1,2,ab\"c\n", "1:[a][b][c]\n",
	           ": line 2, column 3:", "quote inside an unquoted field");
}
END_TEST

START_TEST(error_bare_cr)
{
	EXPECT_ERR("a,b\n1,a\rb\n", "1:[a][b]\n", ": line 2, column 2:", "carriage return");
	EXPECT_ERR("a,b\r", "", ": line 1, column 2:", "carriage return");
	EXPECT_ERR("a,b\r\r\n", "", ": line 1", "carriage return");
}
END_TEST

START_TEST(error_nul_byte)
{
	EXPECT_ERR("a,b\n1,a\0b\n", "1:[a][b]\n", ": line 2, column 2:", "NUL byte");
	EXPECT_ERR("a,b\n1,\"x\0\"\n", "1:[a][b]\n", ": line 2, column 2:", "NUL byte");
}
END_TEST

/* An error right after a comma is in the field the comma opened. */
START_TEST(error_column_at_field_start)
{
	EXPECT_ERR("a,b,c\n1,2,\0\n", "1:[a][b][c]\n", ": line 2, column 3:", "NUL byte");
	EXPECT_ERR("a,b,c\n1,\rx\n", "1:[a][b][c]\n", ": line 2, column 2:", "carriage return");
	EXPECT_ERR("a,b,c\n\0\n", "1:[a][b][c]\n", ": line 2, column 1:", "NUL byte");
	EXPECT_ERR("a,b,c\n,,\"x\"\"y\"z\n", "1:[a][b][c]\n",
	           ": line 2, column 3:", "after a closing quote");
}
END_TEST

/* A field larger than the 256 KiB read buffer, quoted and unquoted. */
START_TEST(field_spans_buffer)
{
	const size_t big = 300 * 1000;
	struct strbuf in, want;
	char err[ODS_ERRLEN];

	strbuf_init(&in);
	strbuf_init(&want);
	strbuf_adds(&in, "a,b\n1,\"");
	strbuf_adds(&want, "1:[a][b]\n2:[1][");
	for (size_t i = 0; i < big; i++) {
		char c = "xyz,\n\""[i % 6];
		if (c == '"')
			strbuf_addc(&in, '"');
		strbuf_addc(&in, c);
		strbuf_addc(&want, c);
	}
	strbuf_adds(&in, "\"\n2,");
	/* 300000 / 6 embedded LFs: the next record starts 50000 lines later. */
	strbuf_adds(&want, "]\n50003:[2][");
	for (size_t i = 0; i < big; i++) {
		strbuf_addc(&in, (char)('a' + i % 26));
		strbuf_addc(&want, (char)('a' + i % 26));
	}
	strbuf_adds(&in, "\nlast,x\n");
	strbuf_adds(&want, "]\n50004:[last][x]\nEND");
	for (int gz = 0; gz <= 1; gz++) {
		char *got = parse_data(in.data, in.len, gz, err, sizeof(err));
		ck_assert_msg(strcmp(got, want.data) == 0, "big field mangled (%s, gzip=%d)", err,
		              gz);
		free(got);
	}
	strbuf_free(&in);
	strbuf_free(&want);
}
END_TEST

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: fixed seed, the same inputs on every run */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* Bytes biased towards the characters the state machine cares about. */
static size_t random_input(unsigned char *buf, size_t cap)
{
	static const char interesting[] = ",\"\r\n\0a ";
	size_t len = rng() % cap;

	for (size_t i = 0; i < len; i++) {
		uint64_t x = rng();
		buf[i] = x % 4 == 0
		                 ? (unsigned char)(x >> 8)
		                 : (unsigned char)interesting[(x >> 8) % (sizeof(interesting) - 1)];
	}
	return len;
}

/* Parses path to the end, checking the reader's contract on every record. */
static void parse_hostile(const char *path, size_t len)
{
	char err[ODS_ERRLEN];
	struct record rec;
	struct source *src = source_open(path, err, sizeof(err));
	struct csv_reader *r;
	long long last_line = 0, records = 0;
	int got;

	ck_assert_msg(src != NULL, "%s", err);
	r = csv_open(src);
	while ((got = csv_next(r, &rec, err, sizeof(err))) == 1) {
		ck_assert_int_ge(rec.nfields, 1);
		ck_assert_int_gt(rec.line, last_line);
		for (int i = 0; i < rec.nfields; i++)
			ck_assert(rec.field[i][rec.len[i]] == '\0');
		last_line = rec.line;
		ck_assert_int_le(++records, (long long)len + 1);
	}
	ck_assert_msg(got == 0 || got == -1, "csv_next returned %d", got);
	if (got == -1)
		ck_assert(err[0] != '\0');
	csv_close(r);
	source_close(src);
}

START_TEST(hostile_random_bytes)
{
	unsigned char buf[600];
	char *path = xasprintf("%s/fuzz.csv", dir);

	rng_state = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 10000; i++) {
		size_t len = random_input(buf, sizeof(buf));
		/* Every tenth input gzipped, every 50th a gzip header over garbage. */
		if (i % 50 == 0 && len >= 2) {
			buf[0] = 0x1f;
			buf[1] = 0x8b;
		}
		free(put("fuzz.csv", buf, len, i % 10 == 5));
		parse_hostile(path, len);
	}
	free(path);
}
END_TEST

Suite *csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("csv");

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, simple_records);
	tcase_add_test(tc, quoted_fields);
	tcase_add_test(tc, crlf_line_endings);
	tcase_add_test(tc, null_vs_empty_string);
	tcase_add_test(tc, trailing_comma);
	tcase_add_test(tc, no_final_newline);
	tcase_add_test(tc, blank_lines_skipped);
	tcase_add_test(tc, header_only);
	tcase_add_test(tc, empty_file);
	tcase_add_test(tc, gzip_identical_large);
	tcase_add_test(tc, gzip_truncated);
	tcase_add_test(tc, gzip_corrupt);
	tcase_add_test(tc, error_unterminated_quote);
	tcase_add_test(tc, error_after_closing_quote);
	tcase_add_test(tc, error_quote_in_unquoted);
	tcase_add_test(tc, error_bare_cr);
	tcase_add_test(tc, error_nul_byte);
	tcase_add_test(tc, error_column_at_field_start);
	tcase_add_test(tc, field_spans_buffer);
	tcase_add_test(tc, hostile_random_bytes);
	suite_add_tcase(s, tc);
	return s;
}
