/*
 * libFuzzer target: core/config.c through config_load on a file holding
 * the input. ODS_* variables are cleared at start so the environment never
 * masks the file. A successful load is also written back with config_dump
 * and loaded again (round trip), then both configs are freed.
 */
#include "autoconfig.h"

#include "core/config.h"
#include "core/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1, fd2 = -1;
static char path[64], path2[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Drop ODS_* variables (restart the scan after each unsetenv). */
	for (int again = 1; again;) {
		again = 0;
		for (char **e = environ; e && *e; e++) {
			if (strncmp(*e, "ODS_", 4) == 0) {
				char name[256];
				size_t n = strcspn(*e, "=");
				if (n >= sizeof(name))
					abort();
				memcpy(name, *e, n);
				name[n] = '\0';
				unsetenv(name);
				again = 1;
				break;
			}
		}
	}
	log_set_level(LOG_ERROR);
	fd = memfd_create("fuzz_config", 0);
	fd2 = memfd_create("fuzz_config_dump", 0);
	if (fd < 0 || fd2 < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(path2, sizeof(path2), "/proc/self/fd/%d", fd2);
	return 0;
}

static void put(int f, const uint8_t *data, size_t size)
{
	if (ftruncate(f, 0) != 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t w = pwrite(f, data + off, size - off, (off_t)off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ods_config c, c2;
	char err[512];

	put(fd, data, size);
	if (!config_load(&c, path, err, sizeof(err)))
		return 0;

	/* Round trip: what config_dump writes, config_load must read back. */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	if (!config_dump(&c, f))
		abort();
	fclose(f);
	put(fd2, (const uint8_t *)buf, len);
	free(buf);
	if (!config_load(&c2, path2, err, sizeof(err))) {
		fprintf(stderr, "config_dump output does not load back: %s\n", err);
		abort();
	}
	config_free(&c2);
	config_free(&c);
	return 0;
}
