/*
 * fuzz_extract: the harness fuzz_csv and fuzz_ndjson share. The input is
 * written to a memfd and opened through source_open, as the loader opens an
 * extract file (sync/source.c, gzip path included).
 *
 * Inputs are small, so they never reach the readers' 256 KiB refill. An
 * input starting with 0xFE is therefore placed across that boundary: bytes
 * 1-2 give k (0..4095), the file is (256 KiB - k) blank lines, which the
 * readers skip, followed by the rest of the input, so its first k bytes
 * end the first buffer and the others start the second.
 *
 * Header-only: each fuzz target is one translation unit.
 */
#ifndef ODS_FUZZ_EXTRACT_H
#define ODS_FUZZ_EXTRACT_H

#include "sync/source.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* CSV_BUFSIZE and NDJSON_BUFSIZE in src/sync/; keep in sync. */
#define READER_BUFSIZE (256 * 1024)
#define BOUNDARY_MODE  0xFE

static void fuzz_extract_write(int fd, const uint8_t *data, size_t size)
{
	if (ftruncate(fd, 0) != 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
}

/* The input as an opened extract, or NULL when source_open refuses it. */
static struct source *fuzz_extract_open(const char *name, const uint8_t *data, size_t size)
{
	static int fd = -1;
	static uint8_t *boundary_buf;
	static char path[64];
	char err[512];

	if (fd < 0) {
		fd = memfd_create(name, 0);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (size >= 3 && data[0] == BOUNDARY_MODE) {
		size_t k = ((size_t)data[1] | (size_t)data[2] << 8) % 4096;
		size_t pad = READER_BUFSIZE - k, n = size - 3;
		if (n > 1024 * 1024)
			return NULL;
		if (!boundary_buf && !(boundary_buf = malloc(READER_BUFSIZE + 1024 * 1024)))
			abort();
		memset(boundary_buf, '\n', pad);
		memcpy(boundary_buf + pad, data + 3, n);
		fuzz_extract_write(fd, boundary_buf, pad + n);
	} else {
		fuzz_extract_write(fd, data, size);
	}
	return source_open(path, err, sizeof(err));
}

#endif
