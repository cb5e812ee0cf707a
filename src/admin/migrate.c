#include "autoconfig.h"
#include "admin/migrate.h"
bool migrate_run(PGconn *conn, const char *api_dir, int *applied, char *err, size_t errlen)
{
	(void)conn, (void)api_dir, (void)applied;
	return errf(err, errlen, "not implemented yet");
}
