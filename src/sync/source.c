/*
 * source: gzip-or-plain file reading through zlib's gzFile, plus the shared
 * record buffer. See source.h for the model.
 */
#include "autoconfig.h"

#include "sync/source.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct source {
	gzFile gz;
	char *path;
	/* A COPY ... TO STDOUT stream instead of a file: the connection, and the
	 * unread rest of the last row libpq handed us. */
	PGconn *copy;
	char *row;
	size_t row_off, row_len;
	bool copy_done;
};

struct source *source_open_copy(PGconn *conn, const char *label)
{
	struct source *s = xcalloc(1, sizeof(*s));

	s->copy = conn;
	s->path = xstrdup(label);
	return s;
}

/* Serves the COPY stream row by row; at its end, checks how the COPY ended. */
static ssize_t copy_read(struct source *s, void *buf, size_t n, char *err, size_t errlen)
{
	while (s->row_off == s->row_len) {
		PGresult *res;
		int got;

		if (s->copy_done)
			return 0;
		PQfreemem(s->row);
		s->row = NULL;
		s->row_off = s->row_len = 0;
		got = PQgetCopyData(s->copy, &s->row, 0);
		if (got > 0) {
			s->row_len = (size_t)got;
			continue;
		}
		s->copy_done = true;
		if (got == -2) {
			errf(err, errlen, "%s: %s", s->path, PQerrorMessage(s->copy));
			return -1;
		}
		res = PQgetResult(s->copy);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			errf(err, errlen, "%s: %s", s->path, PQresultErrorMessage(res));
		PQclear(res);
		while ((res = PQgetResult(s->copy)) != NULL)
			PQclear(res);
		if (!ok)
			return -1;
	}
	if (n > s->row_len - s->row_off)
		n = s->row_len - s->row_off;
	memcpy(buf, s->row + s->row_off, n);
	s->row_off += n;
	return (ssize_t)n;
}

struct source *source_open(const char *path, char *err, size_t errlen)
{
	struct source *s;
	gzFile gz = gzopen(path, "rb");

	if (!gz) {
		errf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot open");
		return NULL;
	}
	gzbuffer(gz, 256 * 1024);
	s = xcalloc(1, sizeof(*s));
	s->gz = gz;
	s->path = xstrdup(path);
	return s;
}

ssize_t source_read(struct source *s, void *buf, size_t n, char *err, size_t errlen)
{
	int code;
	const char *msg;
	int got;

	if (s->copy)
		return copy_read(s, buf, n, err, errlen);
	got = gzread(s->gz, buf, n > INT_MAX ? INT_MAX : (unsigned)n);

	if (got > 0)
		return got;
	msg = gzerror(s->gz, &code);
	if (got == 0 && code == Z_OK)
		return 0;
	if (code == Z_BUF_ERROR || (got == 0 && code != Z_OK))
		errf(err, errlen, "%s: truncated gzip data (the compressed stream ends early)",
		     s->path);
	else if (code == Z_ERRNO)
		errf(err, errlen, "%s: %s", s->path, strerror(errno));
	else
		errf(err, errlen, "%s: corrupt gzip data (%s)", s->path, msg);
	return -1;
}

const char *source_path(const struct source *s)
{
	return s->path;
}

void source_close(struct source *s)
{
	if (!s)
		return;
	if (s->gz)
		gzclose(s->gz);
	PQfreemem(s->row);
	free(s->path);
	free(s);
}

void record_buf_init(struct record_buf *b)
{
	memset(b, 0, sizeof(*b));
	strbuf_init(&b->bytes);
}

void record_buf_free(struct record_buf *b)
{
	strbuf_free(&b->bytes);
	free(b->off);
	free(b->len);
	free(b->null);
	free(b->ptr);
	record_buf_init(b);
}

void record_buf_reset(struct record_buf *b)
{
	strbuf_reset(&b->bytes);
	b->n = 0;
}

void record_buf_begin_field(struct record_buf *b, bool null)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->off = xrealloc(b->off, (size_t)b->cap * sizeof(*b->off));
		b->len = xrealloc(b->len, (size_t)b->cap * sizeof(*b->len));
		b->null = xrealloc(b->null, (size_t)b->cap * sizeof(*b->null));
		b->ptr = xrealloc(b->ptr, (size_t)b->cap * sizeof(*b->ptr));
	}
	b->off[b->n] = b->bytes.len;
	b->len[b->n] = 0;
	b->null[b->n] = null;
	b->n++;
}

void record_buf_end_field(struct record_buf *b)
{
	size_t start = b->off[b->n - 1];

	b->len[b->n - 1] = b->bytes.len - start;
	/* A NUL after each field lets consumers treat fields as C strings too. */
	strbuf_addc(&b->bytes, '\0');
}

void record_buf_publish(struct record_buf *b, struct record *rec, long long line)
{
	for (int i = 0; i < b->n; i++)
		b->ptr[i] = b->bytes.data + b->off[i];
	rec->line = line;
	rec->nfields = b->n;
	rec->field = b->ptr;
	rec->len = b->len;
	rec->null = b->null;
}
