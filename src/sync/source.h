/*
 * source: the bytes of an extract file and the records parsed from them.
 *
 * A source reads a file, gunzipping on the fly when it starts with the gzip
 * magic (zlib's transparent mode reads plain files as they are). It reports
 * a gzip stream that ends early as an error rather than as a short file, so
 * a truncated extract can never load as a smaller snapshot.
 *
 * A record is one row of the file as text fields; the reader that filled it
 * owns the memory, valid until its next call.
 */
#ifndef ODS_SOURCE_H
#define ODS_SOURCE_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct source;

struct source *source_open(const char *path, char *err, size_t errlen) ODS_MUST_CHECK;
/* Up to n bytes into buf: the count, 0 at the end, -1 on error (err filled). */
/* The data of a COPY ... TO STDOUT that conn has started, as if it were a
 * file named label; a COPY that fails is a read error. conn stays the
 * caller's. */
struct source *source_open_copy(PGconn *conn, const char *label);
ssize_t source_read(struct source *s, void *buf, size_t n, char *err, size_t errlen);
const char *source_path(const struct source *s);
void source_close(struct source *s);

struct record {
	long long line; /* the file line the record starts on, 1-based */
	int nfields;
	const char **field; /* field[i] points at len[i] bytes (NUL-terminated too) */
	size_t *len;
	bool *null; /* true for SQL NULL: an empty unquoted CSV field, JSON null */
};

/* Growable per-record storage shared by the CSV and NDJSON readers: field
 * bytes go into one buffer; pointers are fixed up once the record is whole. */
struct record_buf {
	struct strbuf bytes;
	size_t *off;
	size_t *len;
	bool *null;
	const char **ptr;
	int n, cap;
};

void record_buf_init(struct record_buf *b);
void record_buf_free(struct record_buf *b);
void record_buf_reset(struct record_buf *b);
/* Starts a new field; its bytes follow with strbuf_add on b->bytes. */
void record_buf_begin_field(struct record_buf *b, bool null);
/* Ends the current field (records its length). */
void record_buf_end_field(struct record_buf *b);
/* Points rec at the fields collected so far. */
void record_buf_publish(struct record_buf *b, struct record *rec, long long line);

#endif
