/*
 * libFuzzer target: sync/ndjson.c (and sync/source.c, including its gzip path).
 * The input is opened as an extract file (tests/fuzz/fuzz_extract.h, which
 * also places some inputs across the reader's refill boundary); every record
 * is read to the end or the first error. Build and run: tests/fuzz/README.md.
 */
#include "autoconfig.h"

#include "sync/ndjson.h"

#include "fuzz_extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct source *src;
	struct ndjson_reader *r;
	struct record rec;
	volatile size_t sink = 0;
	int rc;

	src = fuzz_extract_open("fuzz_ndjson", data, size);
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
