/* Unit tests for core/log.c: the per-call-site rate limit. */
#include "autoconfig.h"

#include "suites.h"

#include "core/log.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs n limited calls with stderr sent to a file; returns what was written. */
static char *capture(struct log_limit *l, int n)
{
	char path[] = "/tmp/ods-log-XXXXXX", err[ODS_ERRLEN];
	int fd = mkstemp(path), saved = dup(2);
	size_t len = 0;
	char *text;

	ck_assert(fd >= 0 && saved >= 0);
	fflush(stderr);
	ck_assert(dup2(fd, 2) == 2);
	for (int i = 0; i < n; i++)
		log_limited(l, LOG_WARN, "database down %d", i);
	fflush(stderr);
	ck_assert(dup2(saved, 2) == 2);
	close(saved);
	close(fd);
	text = util_read_file(path, &len, err, sizeof(err));
	unlink(path);
	ck_assert_msg(text != NULL, "%s", err);
	return text;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_limited_one_per_second)
{
	struct log_limit l = {0};
	char *out;

	log_set_json(false);
	log_set_level(LOG_INFO);
	out = capture(&l, 100);
	ck_assert_int_eq(count_lines(out), 1);
	ck_assert_str_eq(out, "warn: database down 0\n");
	free(out);

	/* The next second's message says how many were skipped. */
	atomic_store(&l.next_ms, 0);
	out = capture(&l, 3);
	ck_assert_str_eq(out, "warn: database down 0 (and 99 more like it since the last one)\n");
	free(out);

	/* Below the level: nothing written, nothing counted. */
	log_set_level(LOG_ERROR);
	atomic_store(&l.next_ms, 0);
	atomic_store(&l.suppressed, 0);
	out = capture(&l, 5);
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_int_eq(atomic_load(&l.suppressed), 0);
	log_set_level(LOG_INFO);
}
END_TEST

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("limit");

	tcase_add_test(tc, test_limited_one_per_second);
	suite_add_tcase(s, tc);
	return s;
}
