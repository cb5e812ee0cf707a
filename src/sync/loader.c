#include "autoconfig.h"
#include "sync/loader.h"
bool loader_run(PGconn *conn, const struct load_opts *o, struct load_result *r, char *err,
                size_t errlen)
{
	(void)conn, (void)o, (void)r;
	return errf(err, errlen, "not implemented yet");
}
void loader_print_result(FILE *out, const struct load_opts *o, const struct load_result *r)
{
	(void)out, (void)o, (void)r;
}
