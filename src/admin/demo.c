/* placeholder until the generator lands */
#include "autoconfig.h"
#include "admin/demo.h"
#include "core/util.h"
bool demo_generate(const struct demo_opts *o, char *err, size_t errlen)
{
	(void)o;
	return errf(err, errlen, "not implemented yet");
}
