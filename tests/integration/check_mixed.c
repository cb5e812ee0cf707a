/*
 * mixed-traffic leak test (issue 5, item 6): 10,000 requests from several
 * client threads over every route family (tests/mixload.h), against odsd
 * built with AddressSanitizer + LeakSanitizer, then SIGTERM.
 *
 * What it asserts: every answer was in the set its request may get (so no
 * 500 and no problem without problem+json), every status the mix is meant to
 * produce did occur (the mix really exercised those paths), odsd still
 * answers /healthz, and it exits 0 after SIGTERM: a LeakSanitizer report (or
 * any ASan/UBSan error) makes that exit status non-zero.
 *
 * The database is migrated and gets a 300-customer demo through the real
 * `odsctl demo generate` + `demo load`.
 */
#include "autoconfig.h"

#include "httptest.h"
#include "mixload.h"
#include "testutil.h"

#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>

#define REQUESTS 10000

START_TEST(test_mixed_10k)
{
	static const int must_see[] = {200, 201, 204, 304, 400, 401, 403,
	                               404, 405, 412, 413, 415, 422};
	char *uri = tu_migrated_db(), *dir = tu_tmpdir(), *out = NULL;
	struct mixload_opts o = {.requests = REQUESTS, .threads = 4, .seed = 42};
	struct mixload_report rep;
	struct tu_http_response r;
	char err[512];
	struct tu_odsd *od;
	int rc;

	rc = tu_odsctl(&out, "demo generate --customers 300 --out '%s'", dir);
	ck_assert_msg(rc == 0, "demo generate failed: %s", out);
	free(out);
	rc = tu_odsctl(&out, "demo load --db '%s' --from '%s'", uri, dir);
	ck_assert_msg(rc == 0, "demo load failed: %s", out);
	free(out);

	od = tu_odsd_start(uri, NULL);
	o.port = od->port;
	o.secret_file = od->secret_file;
	o.db_uri = uri;
	ck_assert_msg(mixload_run(&o, &rep, err, sizeof(err)), "mixload: %s", err);
	mixload_print(&rep, stdout);
	ck_assert_int_eq(rep.requests, REQUESTS);
	ck_assert_msg(rep.unexpected == 0, "%ld unexpected answers; first: %s", rep.unexpected,
	              rep.first_unexpected);
	for (int s = 500; s < MIXLOAD_MAX_STATUS; s++)
		ck_assert_msg(rep.status[s] == 0, "%ld answers with status %d", rep.status[s], s);
	for (size_t i = 0; i < ODS_ARRAY_LEN(must_see); i++)
		ck_assert_msg(rep.status[must_see[i]] > 0, "the mix produced no %d", must_see[i]);
	ck_assert_msg(rep.aborted > 0, "no client went away mid-request");

	tu_http(od->port, "GET", "/healthz", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	tu_http_free(&r);
	tu_odsd_stop(od); /* exit 0: no LeakSanitizer report */
	free(uri);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mixed");
	TCase *tc = tcase_create("leaks");
	int rc;

#ifdef PR_SET_CHILD_SUBREAPER
	prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_mixed_10k);
	suite_add_tcase(s, tc);
	rc = tu_run_suite(s);
	tu_kill_orphans();
	return rc;
}
