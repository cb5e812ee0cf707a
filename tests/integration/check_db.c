#include "autoconfig.h"
#include "testutil.h"
int main(void)
{
	return tu_run_suite(suite_create("db"));
}
