/*
 * metrics: a fixed-size open-addressing table keyed by (label, status),
 * guarded by one mutex held for a few hundred nanoseconds per request. Each
 * slot carries the histogram of its (label, status); rendering sums the
 * histograms per label. The number of labels is bounded by the route
 * catalog, so the table cannot grow without limit; once full, new
 * combinations are counted under label "other".
 */
#include "autoconfig.h"

#include "ods/metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 1024
static const double bucket_ms[] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
#define NBUCKETS ((int)ODS_ARRAY_LEN(bucket_ms))

struct slot {
	char *label; /* NULL: empty */
	int status;
	unsigned long long count;
	unsigned long long bucket[NBUCKETS]; /* non-cumulative */
	double sum_ms;
};

#define NCOUNTERS 16

struct counter {
	char name[64]; /* "" = unused */
	long long value;
};

struct metrics {
	pthread_mutex_t lock;
	struct slot slot[SLOTS];
	int used;
	struct counter counter[NCOUNTERS];
};

struct metrics *metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (int i = 0; i < SLOTS; i++)
		free(m->slot[i].label);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static uint64_t hash(const char *label, int status)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *)label; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (h ^ (uint64_t)status) * 1099511628211ULL;
}

/* The slot for (label, status), created if needed; NULL when the table is full. */
static struct slot *find(struct metrics *m, const char *label, int status)
{
	uint64_t h = hash(label, status);

	for (int probe = 0; probe < SLOTS; probe++) {
		struct slot *s = &m->slot[(h + (uint64_t)probe) % SLOTS];
		if (!s->label) {
			if (m->used >= SLOTS * 3 / 4)
				return NULL;
			s->label = xstrdup(label);
			s->status = status;
			m->used++;
			return s;
		}
		if (s->status == status && strcmp(s->label, label) == 0)
			return s;
	}
	return NULL;
}

void metrics_observe(struct metrics *m, const char *label, int status, double ms)
{
	struct slot *s;
	int b = 0;

	while (b < NBUCKETS && ms > bucket_ms[b])
		b++;
	pthread_mutex_lock(&m->lock);
	s = find(m, label, status);
	if (!s)
		s = find(m, "other", status);
	if (s) {
		s->count++;
		s->sum_ms += ms;
		if (b < NBUCKETS)
			s->bucket[b]++;
	}
	pthread_mutex_unlock(&m->lock);
}

void metrics_count(struct metrics *m, const char *name, long long n)
{
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < NCOUNTERS; i++) {
		struct counter *c = &m->counter[i];
		if (c->name[0] == '\0')
			snprintf(c->name, sizeof(c->name), "%s", name);
		if (strcmp(c->name, name) == 0) {
			c->value += n;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
}

static int cmp_slot(const void *a, const void *b)
{
	const struct slot *x = *(const struct slot *const *)a, *y = *(const struct slot *const *)b;
	int c = strcmp(x->label, y->label);
	return c ? c : x->status - y->status;
}

void metrics_render(struct metrics *m, struct strbuf *out)
{
	struct slot **v = xcalloc(SLOTS, sizeof(*v));
	int n = 0;

	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < SLOTS; i++)
		if (m->slot[i].label) {
			v[n] = xmalloc(sizeof(struct slot));
			*v[n] = m->slot[i];
			v[n]->label = xstrdup(m->slot[i].label);
			n++;
		}
	pthread_mutex_unlock(&m->lock);
	qsort(v, (size_t)n, sizeof(*v), cmp_slot);

	strbuf_adds(out, "# HELP ods_http_requests_total HTTP requests by route and status.\n"
	                 "# TYPE ods_http_requests_total counter\n");
	for (int i = 0; i < n; i++)
		strbuf_addf(out, "ods_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
		            v[i]->label, v[i]->status, v[i]->count);
	strbuf_adds(out, "# HELP ods_http_request_duration_seconds Request latency by route.\n"
	                 "# TYPE ods_http_request_duration_seconds histogram\n");
	for (int i = 0; i < n;) {
		unsigned long long cum[NBUCKETS] = {0}, count = 0;
		double sum = 0;
		int j = i;
		for (; j < n && strcmp(v[j]->label, v[i]->label) == 0; j++) {
			for (int b = 0; b < NBUCKETS; b++)
				cum[b] += v[j]->bucket[b];
			count += v[j]->count;
			sum += v[j]->sum_ms;
		}
		unsigned long long acc = 0;
		for (int b = 0; b < NBUCKETS; b++) {
			acc += cum[b];
			strbuf_addf(
			        out,
			        "ods_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
			        "%llu\n",
			        v[i]->label, bucket_ms[b] / 1000.0, acc);
		}
		strbuf_addf(
		        out,
		        "ods_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
		        "ods_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
		        "ods_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		        v[i]->label, count, v[i]->label, sum / 1000.0, v[i]->label, count);
		i = j;
	}
	for (int i = 0; i < n; i++) {
		free(v[i]->label);
		free(v[i]);
	}
	free(v);
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < NCOUNTERS && m->counter[i].name[0]; i++)
		strbuf_addf(out, "# TYPE ods_%s_total counter\nods_%s_total %lld\n",
		            m->counter[i].name, m->counter[i].name, m->counter[i].value);
	pthread_mutex_unlock(&m->lock);
}
