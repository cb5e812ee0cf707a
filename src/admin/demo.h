#ifndef ODS_DEMO_H
#define ODS_DEMO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
struct demo_opts {
	const char *out_dir;
	long customers;
	uint64_t seed;
	const char *as_of;
};
bool demo_generate(const struct demo_opts *o, char *err, size_t errlen);
#endif
