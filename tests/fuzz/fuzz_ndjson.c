/*
 * libFuzzer target: sync/ndjson.c (and sync/source.c, including its gzip path).
 * The input is written to a memfd and read back through source_open, as the
 * loader reads an extract file; every record is read to the end or the
 * first error. Build and run: see tests/fuzz/README.md.
 *
 * Inputs are small, so they never reach the reader's 256 KiB refill. An
 * input starting with 0xFE is therefore placed across that boundary: bytes
 * 1-2 give k (0..4095), the file is (256 KiB - k) blank lines, which the
 * reader skips, followed by the rest of the input, so its first k bytes
 * end the first buffer and the others start the second.
 */
#include "autoconfig.h"

#include "sync/ndjson.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* NDJSON_BUFSIZE in src/sync/ndjson.c; keep in sync. */
#define READER_BUFSIZE (256 * 1024)
#define BOUNDARY_MODE  0xFE

static int fd = -1;
static uint8_t *boundary_buf;
static char path[64];

static int write_input(const uint8_t *data, size_t size)
{
	if (fd < 0) {
		fd = memfd_create("fuzz_ndjson", 0);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct source *src;
	struct ndjson_reader *r;
	struct record rec;
	volatile size_t sink = 0;
	int rc;

	if (size >= 3 && data[0] == BOUNDARY_MODE) {
		size_t k = ((size_t)data[1] | (size_t)data[2] << 8) % 4096;
		size_t pad = READER_BUFSIZE - k, n = size - 3;
		if (!boundary_buf) {
			boundary_buf = malloc(READER_BUFSIZE + 1024 * 1024);
			if (!boundary_buf)
				abort();
		}
		if (n > 1024 * 1024)
			return 0;
		memset(boundary_buf, '\n', pad);
		memcpy(boundary_buf + pad, data + 3, n);
		write_input(boundary_buf, pad + n);
	} else {
		write_input(data, size);
	}
	src = source_open(path, err, sizeof(err));
	if (!src)
		return 0;
	r = ndjson_open(src);
	while ((rc = ndjson_next(r, &rec, err, sizeof(err))) == 1) {
		/* Touch every field so ASan sees any out-of-bounds record. */
		for (int i = 0; i < rec.nfields; i++) {
			if (rec.field[i][rec.len[i]] != '\0')
				abort();
			sink += rec.len[i] + (rec.null[i] ? 1 : 0);
			if (rec.len[i])
				sink += (unsigned char)rec.field[i][0];
		}
	}
	{
		int n = 0;
		const char *const *cols = ndjson_columns(r, &n);
		for (int i = 0; cols && i < n; i++)
			sink += strlen(cols[i]);
	}
	(void)sink;
	ndjson_close(r);
	source_close(src);
	return 0;
}
