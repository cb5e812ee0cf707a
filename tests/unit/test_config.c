#include "autoconfig.h"
#include "suites.h"
Suite *config_suite(void)
{
	return suite_create("config");
}
