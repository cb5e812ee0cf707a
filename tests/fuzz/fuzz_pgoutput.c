/*
 * libFuzzer target: sync/pgoutput.c, the decoder of what a logical
 * replication stream carries. The input is read three ways: as a CopyData
 * frame ('w' XLogData or 'k' keepalive) whose XLogData payload is decoded as
 * a pgoutput message; as a pgoutput message directly; and, split at its
 * first byte, as two messages decoded by one decoder in a row (its arrays
 * are reused and must never show the previous message's contents past
 * their counts). Every decoded field is touched so ASan sees any read
 * outside the input.
 */
#include "autoconfig.h"

#include "sync/pgoutput.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void touch_tuple(const struct pgo_tuple *t)
{
	for (int i = 0; i < t->n; i++) {
		sink += (unsigned char)t->v[i].kind + t->v[i].len;
		if (t->v[i].len)
			sink += (unsigned char)t->v[i].data[0] +
			        (unsigned char)t->v[i].data[t->v[i].len - 1];
	}
}

static void touch(const struct pgo_msg *m)
{
	switch (m->kind) {
	case PGO_RELATION:
		sink += strlen(m->relation.nspname) + strlen(m->relation.relname);
		for (int i = 0; i < m->relation.ncols; i++)
			sink += strlen(m->relation.cols[i].name) + m->relation.cols[i].type_oid;
		break;
	case PGO_INSERT:
	case PGO_UPDATE:
	case PGO_DELETE:
		touch_tuple(&m->change.new_tuple);
		if (m->change.old_kind)
			touch_tuple(&m->change.old_tuple);
		break;
	case PGO_TRUNCATE:
		for (int i = 0; i < m->truncate.nrels; i++)
			sink += m->truncate.relids[i];
		break;
	case PGO_ORIGIN:
		sink += strlen(m->origin.name);
		break;
	case PGO_TYPE:
		sink += strlen(m->type.nspname) + strlen(m->type.typname);
		break;
	case PGO_MESSAGE:
		sink += strlen(m->message.prefix) + m->message.len;
		if (m->message.len)
			sink += m->message.content[m->message.len - 1];
		break;
	default:
		sink += (size_t)m->kind;
	}
}

static void decode(struct pgo_decoder *d, const uint8_t *p, size_t n)
{
	char err[512];
	struct pgo_msg m;

	/* A heap copy of exactly n bytes, so a read past the end is caught. */
	uint8_t *copy = malloc(n ? n : 1);
	if (n)
		memcpy(copy, p, n);
	if (pgo_decode(d, copy, n, &m, err, sizeof(err)))
		touch(&m);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], lsn[32];
	struct pgo_frame f;
	struct pgo_decoder *d = pgo_decoder_new();
	uint64_t v;

	if (pgo_parse_frame(data, size, &f, err, sizeof(err)) && f.kind == PGO_FRAME_XLOGDATA)
		decode(d, f.data, f.len);
	decode(d, data, size);
	if (size > 1) {
		size_t cut = 1 + data[0] % (size - 1);
		decode(d, data + 1, cut - 1);
		decode(d, data + cut, size - cut);
	}
	/* LSN text round trip on the input as a string. */
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (pgo_lsn_parse(s, &v)) {
		uint64_t back;
		pgo_lsn_format(v, lsn, sizeof(lsn));
		if (!pgo_lsn_parse(lsn, &back) || back != v)
			abort();
	}
	free(s);
	pgo_decoder_free(d);
	return 0;
}
