/*
 * csv: a byte-at-a-time state machine over a 256 KiB read buffer. Field
 * bytes are appended to a record_buf, so a field may span buffer refills.
 * The reader tracks the physical line so errors point at the real place,
 * also inside multi-line quoted fields.
 */
#include "autoconfig.h"

#include "sync/csv.h"

#include <stdlib.h>
#include <string.h>

#define CSV_BUFSIZE (256 * 1024)
/* A record larger than this is surely not a row of an extract. */
#define CSV_MAX_RECORD (64 * 1024 * 1024)

enum csv_state {
	ST_FIELD_START, /* at the start of a field */
	ST_UNQUOTED,    /* inside an unquoted field */
	ST_QUOTED,      /* inside a quoted field */
	ST_QUOTE_SEEN,  /* a quote inside a quoted field: end, or the first of "" */
	ST_CR,          /* a CR that must be followed by LF */
};

struct csv_reader {
	struct source *src;
	char *buf;
	size_t pos, end;
	bool eof;
	long long line; /* the physical line being read */
	int col;        /* the 1-based field being read, for errors */
	struct record_buf rec;
};

struct csv_reader *csv_open(struct source *src)
{
	struct csv_reader *r = xcalloc(1, sizeof(*r));

	r->src = src;
	r->buf = xmalloc(CSV_BUFSIZE);
	r->line = 1;
	record_buf_init(&r->rec);
	return r;
}

void csv_close(struct csv_reader *r)
{
	if (!r)
		return;
	record_buf_free(&r->rec);
	free(r->buf);
	free(r);
}

/* Returns the next byte, -1 at the end, -2 on a read error. */
static int next_byte(struct csv_reader *r, char *err, size_t errlen)
{
	if (r->pos == r->end) {
		if (r->eof)
			return -1;
		ssize_t n = source_read(r->src, r->buf, CSV_BUFSIZE, err, errlen);
		if (n < 0)
			return -2;
		if (n == 0) {
			r->eof = true;
			return -1;
		}
		r->pos = 0;
		r->end = (size_t)n;
	}
	return (unsigned char)r->buf[r->pos++];
}

static int bad_at(struct csv_reader *r, long long line, char *err, size_t errlen, const char *what)
{
	errf(err, errlen, "%s: line %lld, column %d: %s", source_path(r->src), line, r->col, what);
	return -1;
}

static int bad(struct csv_reader *r, char *err, size_t errlen, const char *what)
{
	return bad_at(r, r->line, err, errlen, what);
}

/*
 * A line break outside quotes in state st. Returns true when it ends a
 * record, false for a blank line (no field started), which is skipped.
 */
static bool end_line(struct csv_reader *r, enum csv_state st)
{
	r->line++;
	if (st == ST_FIELD_START) {
		if (r->rec.n == 0)
			return false;
		record_buf_begin_field(&r->rec, true); /* after a trailing comma */
	}
	record_buf_end_field(&r->rec);
	return true;
}

int csv_next(struct csv_reader *r, struct record *rec, char *err, size_t errlen)
{
	enum csv_state st = ST_FIELD_START, before_cr = ST_FIELD_START;
	long long start_line = r->line;
	char rerr[ODS_ERRLEN];
	int c;

	record_buf_reset(&r->rec);
	r->col = 1;
	for (;;) {
		c = next_byte(r, rerr, sizeof(rerr));
		if (c == -2) {
			errf(err, errlen, "%s (at line %lld)", rerr, r->line);
			return -1;
		}
		if (r->rec.bytes.len > CSV_MAX_RECORD)
			return bad(r, err, errlen, "record larger than 64 MiB");
		if (c == -1) {
			if (st == ST_QUOTED)
				return bad_at(
				        r, start_line, err, errlen,
				        "quoted field never closed (the file ends inside it)");
			if (st == ST_CR)
				return bad(r, err, errlen,
				           "carriage return not followed by line feed");
			if (!end_line(r, st))
				return 0;
			r->line--; /* no line break was read */
			record_buf_publish(&r->rec, rec, start_line);
			return 1;
		}
		if (c == '\0')
			return bad(r, err, errlen, "NUL byte");
		switch (st) {
		case ST_FIELD_START:
			if (c == '"') {
				record_buf_begin_field(&r->rec, false);
				st = ST_QUOTED;
			} else if (c == ',') {
				record_buf_begin_field(&r->rec, true);
				record_buf_end_field(&r->rec);
				r->col++;
			} else if (c == '\r') {
				before_cr = st;
				st = ST_CR;
			} else if (c == '\n') {
				if (end_line(r, st))
					goto done;
				start_line = r->line;
			} else {
				record_buf_begin_field(&r->rec, false);
				strbuf_addc(&r->rec.bytes, (char)c);
				st = ST_UNQUOTED;
			}
			break;
		case ST_UNQUOTED:
		case ST_QUOTE_SEEN:
			if (c == ',') {
				record_buf_end_field(&r->rec);
				r->col++;
				st = ST_FIELD_START;
			} else if (c == '\n') {
				end_line(r, st);
				goto done;
			} else if (c == '\r') {
				before_cr = st;
				st = ST_CR;
			} else if (st == ST_QUOTE_SEEN && c == '"') {
				strbuf_addc(&r->rec.bytes, '"');
				st = ST_QUOTED;
			} else if (st == ST_QUOTE_SEEN) {
				return bad(r, err, errlen,
				           "unexpected character after a closing quote");
			} else if (c == '"') {
				return bad(r, err, errlen, "quote inside an unquoted field");
			} else {
				strbuf_addc(&r->rec.bytes, (char)c);
			}
			break;
		case ST_QUOTED:
			if (c == '"') {
				st = ST_QUOTE_SEEN;
			} else {
				if (c == '\n')
					r->line++;
				strbuf_addc(&r->rec.bytes, (char)c);
			}
			break;
		case ST_CR:
			if (c != '\n')
				return bad(r, err, errlen,
				           "carriage return not followed by line feed");
			if (end_line(r, before_cr))
				goto done;
			start_line = r->line;
			st = ST_FIELD_START;
			break;
		}
	}
done:
	record_buf_publish(&r->rec, rec, start_line);
	return 1;
}
