#include "autoconfig.h"
#include "suites.h"
Suite *ndjson_suite(void)
{
	return suite_create("ndjson");
}
