/* check_unit: runs every unit suite (no database needed). */
#include "autoconfig.h"

#include "suites.h"

#include <stdlib.h>

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_add_suite(sr, csv_suite());
	srunner_add_suite(sr, ndjson_suite());
	srunner_add_suite(sr, auth_suite());
	srunner_add_suite(sr, log_suite());
	srunner_add_suite(sr, cdc_batch_suite());
	srunner_add_suite(sr, pgoutput_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
