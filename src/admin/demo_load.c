#include "autoconfig.h"
#include "admin/demo_load.h"
bool demo_load(PGconn *conn, const char *dir, FILE *progress, char *err, size_t errlen)
{
	(void)conn, (void)dir, (void)progress;
	return errf(err, errlen, "not implemented yet");
}
