/*
 * cdc_batch: an append-only arena of value bytes, an array of rows (one per
 * key, in the order keys first appeared) with ncols values each, and an
 * open-addressing hash from key bytes to row. A key's later change rewrites
 * its row in place; superseded bytes stay in the arena until the batch is
 * freed (a batch lives for one transaction or chunk).
 */
#include "autoconfig.h"

#include "sync/cdc_batch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct val {
	char kind; /* 'n' NULL, 'u' not sent (unchanged TOAST), 't' text */
	size_t off, len;
};

struct row {
	char op;
	size_t key_off, key_len;
	uint64_t hash;
};

struct cdc_batch {
	const struct cdc_table *t;
	struct strbuf bytes;
	struct row *rows;
	struct val *vals; /* rows[i]'s values at vals[i * ncols] */
	int n, cap;
	int *slots; /* row index + 1, 0 = empty */
	size_t nslots;
};

struct cdc_batch *cdc_batch_new(const struct cdc_table *t)
{
	struct cdc_batch *b = xcalloc(1, sizeof(*b));

	b->t = t;
	strbuf_init(&b->bytes);
	b->nslots = 64;
	b->slots = xcalloc(b->nslots, sizeof(int));
	return b;
}

void cdc_batch_free(struct cdc_batch *b)
{
	if (!b)
		return;
	strbuf_free(&b->bytes);
	free(b->rows);
	free(b->vals);
	free(b->slots);
	free(b);
}

const struct cdc_table *cdc_batch_table(const struct cdc_batch *b)
{
	return b->t;
}

int cdc_batch_size(const struct cdc_batch *b)
{
	return b->n;
}

int cdc_batch_count(const struct cdc_batch *b, enum cdc_op op)
{
	int k = 0;

	for (int i = 0; i < b->n; i++)
		k += b->rows[i].op == (char)op;
	return k;
}

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

/* The tuple's value for synced column c; NULL when the tuple is too short. */
static const struct pgo_value *value_of(const struct cdc_batch *b, const struct pgo_tuple *tu,
                                        int c)
{
	int j = b->t->col_src[c];
	return j >= 0 && j < tu->n ? &tu->v[j] : NULL;
}

/* Key bytes of tu into key: for each key column, 4 length bytes then the text. */
static bool make_key(const struct cdc_batch *b, const struct pgo_tuple *tu, struct strbuf *key,
                     char *err, size_t errlen)
{
	strbuf_reset(key);
	for (int k = 0; k < b->t->npk; k++) {
		const struct pgo_value *v = value_of(b, tu, b->t->pk[k]);
		if (!v || v->kind != 't')
			return errf(
			        err, errlen, "a change to %s.%s carries no value for key column %s",
			        b->t->src_schema, b->t->src_table, b->t->cols[b->t->pk[k]].name);
		uint32_t n = v->len;
		strbuf_add(key, &n, sizeof(n));
		strbuf_add(key, v->data, v->len);
	}
	return true;
}

static void grow_slots(struct cdc_batch *b)
{
	size_t n = b->nslots * 2;
	int *slots = xcalloc(n, sizeof(int));

	for (int i = 0; i < b->n; i++) {
		size_t s = b->rows[i].hash & (n - 1);
		while (slots[s])
			s = (s + 1) & (n - 1);
		slots[s] = i + 1;
	}
	free(b->slots);
	b->slots = slots;
	b->nslots = n;
}

/* The row of key, created (op unset, values 'u') when absent. */
static int find_row(struct cdc_batch *b, const struct strbuf *key, bool create)
{
	uint64_t h = fnv1a(key->data, key->len);
	size_t s = h & (b->nslots - 1);

	for (; b->slots[s]; s = (s + 1) & (b->nslots - 1)) {
		const struct row *r = &b->rows[b->slots[s] - 1];
		if (r->hash == h && r->key_len == key->len &&
		    memcmp(b->bytes.data + r->key_off, key->data, key->len) == 0)
			return b->slots[s] - 1;
	}
	if (!create)
		return -1;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->rows = xrealloc(b->rows, (size_t)b->cap * sizeof(*b->rows));
		b->vals = xrealloc(b->vals,
		                   (size_t)b->cap * (size_t)(b->t->ncols + 1) * sizeof(*b->vals));
	}
	struct row *r = &b->rows[b->n];
	r->op = 0;
	r->hash = h;
	r->key_off = b->bytes.len;
	r->key_len = key->len;
	strbuf_add(&b->bytes, key->data, key->len);
	for (int c = 0; c < b->t->ncols; c++)
		b->vals[(size_t)b->n * (size_t)b->t->ncols + (size_t)c].kind = 'u';
	b->slots[s] = ++b->n;
	if ((size_t)b->n * 2 > b->nslots)
		grow_slots(b);
	return b->n - 1;
}

/* Writes tu's values into row i; a value not sent keeps what the row had. */
static bool store_row(struct cdc_batch *b, int i, const struct pgo_tuple *tu, char *err,
                      size_t errlen)
{
	struct val *vals = &b->vals[(size_t)i * (size_t)b->t->ncols];
	bool partial = false;

	for (int c = 0; c < b->t->ncols; c++) {
		const struct pgo_value *v = value_of(b, tu, c);
		if (!v)
			return errf(err, errlen,
			            "a change to %s.%s has %d columns, fewer than mapped",
			            b->t->src_schema, b->t->src_table, tu->n);
		if (v->kind == 'u') {
			partial |= vals[c].kind == 'u';
			continue;
		}
		vals[c].kind = v->kind;
		vals[c].off = b->bytes.len;
		vals[c].len = v->kind == 't' ? v->len : 0;
		if (v->kind == 't')
			strbuf_add(&b->bytes, v->data, v->len);
	}
	b->rows[i].op = partial ? CDC_PARTIAL : CDC_UPSERT;
	return true;
}

/* A deleted row keeps its key values: the DELETE reads them. */
static void mark_deleted(struct cdc_batch *b, int i, const struct pgo_tuple *old_key)
{
	struct val *vals = &b->vals[(size_t)i * (size_t)b->t->ncols];

	for (int k = 0; k < b->t->npk; k++) {
		const struct pgo_value *v = value_of(b, old_key, b->t->pk[k]);
		struct val *d = &vals[b->t->pk[k]];
		d->kind = 't';
		d->off = b->bytes.len;
		d->len = v->len; /* make_key checked it is there, as text */
		strbuf_add(&b->bytes, v->data, v->len);
	}
	b->rows[i].op = CDC_DELETE;
}

/* Checked before a row exists for it, so a bad tuple leaves the batch as it was. */
static bool complete(const struct cdc_batch *b, const struct pgo_tuple *row, char *err,
                     size_t errlen)
{
	for (int c = 0; c < b->t->ncols; c++)
		if (!value_of(b, row, c))
			return errf(err, errlen,
			            "a change to %s.%s has %d columns, fewer than mapped",
			            b->t->src_schema, b->t->src_table, row->n);
	return true;
}

static bool put(struct cdc_batch *b, const struct pgo_tuple *row, char *err, size_t errlen)
{
	struct strbuf key;
	bool ok;
	int i;

	strbuf_init(&key);
	ok = make_key(b, row, &key, err, errlen);
	ok = ok && complete(b, row, err, errlen);
	if (ok) {
		i = find_row(b, &key, true);
		/* After a delete, nothing of the old row may leak into the new one. */
		if (b->rows[i].op == CDC_DELETE)
			for (int c = 0; c < b->t->ncols; c++)
				b->vals[(size_t)i * (size_t)b->t->ncols + (size_t)c].kind = 'u';
		ok = store_row(b, i, row, err, errlen);
	}
	strbuf_free(&key);
	return ok;
}

bool cdc_batch_insert(struct cdc_batch *b, const struct pgo_tuple *row, char *err, size_t errlen)
{
	return put(b, row, err, errlen);
}

bool cdc_batch_delete(struct cdc_batch *b, const struct pgo_tuple *old_key, char *err,
                      size_t errlen)
{
	struct strbuf key;
	bool ok;

	strbuf_init(&key);
	ok = make_key(b, old_key, &key, err, errlen);
	if (ok)
		mark_deleted(b, find_row(b, &key, true), old_key);
	strbuf_free(&key);
	return ok;
}

bool cdc_batch_update(struct cdc_batch *b, const struct pgo_tuple *old_key,
                      const struct pgo_tuple *row, char *err, size_t errlen)
{
	struct strbuf oldk, newk;
	bool ok = true;

	if (!old_key)
		return put(b, row, err, errlen);
	strbuf_init(&oldk);
	strbuf_init(&newk);
	ok = make_key(b, old_key, &oldk, err, errlen) && make_key(b, row, &newk, err, errlen) &&
	     complete(b, row, err, errlen);
	if (ok && (oldk.len != newk.len || memcmp(oldk.data, newk.data, oldk.len) != 0)) {
		/* The key changed: values the new row did not send come from the old
		 * key's row of this batch, if any, before that row ends deleted. */
		int from = find_row(b, &oldk, true);
		int to = find_row(b, &newk, true);
		const struct val *src = &b->vals[(size_t)from * (size_t)b->t->ncols];
		struct val *dst = &b->vals[(size_t)to * (size_t)b->t->ncols];
		for (int c = 0; c < b->t->ncols; c++)
			dst[c] =
			        b->rows[from].op == CDC_DELETE ? (struct val){.kind = 'u'} : src[c];
		mark_deleted(b, from, old_key);
		ok = store_row(b, to, row, err, errlen);
	} else if (ok) {
		ok = put(b, row, err, errlen);
	}
	strbuf_free(&oldk);
	strbuf_free(&newk);
	return ok;
}

static void add_element(struct strbuf *out, const struct cdc_batch *b, const struct val *v)
{
	if (v->kind != 't') {
		strbuf_adds(out, "NULL");
		return;
	}
	const char *p = b->bytes.data + v->off;
	size_t run = 0;
	strbuf_addc(out, '"');
	for (size_t i = 0; i < v->len; i++) {
		if (p[i] != '"' && p[i] != '\\')
			continue;
		strbuf_add(out, p + run, i - run);
		strbuf_addc(out, '\\');
		run = i;
	}
	strbuf_add(out, p + run, v->len - run);
	strbuf_addc(out, '"');
}

void cdc_batch_array(const struct cdc_batch *b, enum cdc_op op, int col, int only,
                     struct strbuf *out)
{
	int k = 0;
	bool first = true;

	strbuf_addc(out, '{');
	for (int i = 0; i < b->n; i++) {
		if (b->rows[i].op != (char)op)
			continue;
		if (only < 0 || k == only) {
			if (!first)
				strbuf_addc(out, ',');
			first = false;
			add_element(out, b,
			            &b->vals[(size_t)i * (size_t)b->t->ncols + (size_t)col]);
		}
		k++;
	}
	strbuf_addc(out, '}');
}

/* The row index of the i-th row whose state is op, -1 if none. */
static int nth(const struct cdc_batch *b, enum cdc_op op, int i)
{
	for (int r = 0; r < b->n; r++)
		if (b->rows[r].op == (char)op && i-- == 0)
			return r;
	return -1;
}

bool cdc_batch_value(const struct cdc_batch *b, enum cdc_op op, int i, int col, const char **val,
                     size_t *len)
{
	int r = nth(b, op, i);
	const struct val *v =
	        r < 0 ? NULL : &b->vals[(size_t)r * (size_t)b->t->ncols + (size_t)col];

	if (!v || v->kind == 'u')
		return false;
	*val = v->kind == 't' ? b->bytes.data + v->off : NULL;
	*len = v->len;
	return true;
}

void cdc_batch_key_text(const struct cdc_batch *b, enum cdc_op op, int i, struct strbuf *out)
{
	int r = nth(b, op, i);
	const char *p;
	uint32_t n;

	if (r < 0)
		return;
	strbuf_addc(out, '(');
	for (int k = 0; k < b->t->npk; k++)
		strbuf_addf(out, "%s%s", k ? ", " : "", b->t->cols[b->t->pk[k]].name);
	strbuf_adds(out, ")=(");
	p = b->bytes.data + b->rows[r].key_off;
	for (int k = 0; k < b->t->npk; k++) {
		memcpy(&n, p, sizeof(n));
		strbuf_addf(out, "%s%.*s", k ? ", " : "", (int)n, p + sizeof(n));
		p += sizeof(n) + n;
	}
	strbuf_addc(out, ')');
}
