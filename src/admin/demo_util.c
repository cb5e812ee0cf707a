/*
 * demo_util: the demo generator's tools.
 *
 * Random streams are splitmix64 states seeded from (seed, kind, id), so every entity
 * has its own reproducible stream and the output never depends on the C library's
 * rand() or on the order in which entities are visited. CSV rows are assembled in a
 * fixed buffer and written with one fwrite each (the FILE has a 64 KiB buffer), with
 * integers, decimals, timestamps and uuids formatted by hand: no allocation per row,
 * no locale, no floating point in the output.
 */
#include "autoconfig.h"

#include "admin/demo_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

struct rng rng_for(uint64_t seed, enum rng_kind kind, uint64_t id)
{
	struct rng r = {mix64(mix64(seed + GOLDEN * ((uint64_t)kind + 1)) ^ mix64(id))};
	return r;
}

uint64_t rng_next(struct rng *r)
{
	r->s += GOLDEN;
	return mix64(r->s);
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

int64_t rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	return hi <= lo ? lo : lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

bool rng_chance(struct rng *r, unsigned per_mille)
{
	return rng_below(r, 1000) < per_mille;
}

int rng_weighted(struct rng *r, const unsigned *w, int n)
{
	uint64_t total = 0, x;
	int i;

	for (i = 0; i < n; i++)
		total += w[i];
	x = rng_below(r, total);
	for (i = 0; i < n - 1 && x >= w[i]; i++)
		x -= w[i];
	return i;
}

struct uuid uuid_draw(struct rng *r)
{
	struct uuid u;

	u.hi = (rng_next(r) & ~UINT64_C(0xf000)) | UINT64_C(0x4000);
	u.lo = (rng_next(r) & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62);
	return u;
}

/* ---- CSV ---- */

bool out_open(struct out_csv *c, const char *path, const char *header, char *err, size_t errlen)
{
	c->path = xstrdup(path);
	c->f = fopen(path, "w");
	if (!c->f)
		return errf(err, errlen, "cannot create %s: %s", path, strerror(errno));
	setvbuf(c->f, c->iobuf, _IOFBF, sizeof(c->iobuf));
	if (fputs(header, c->f) == EOF || fputc('\n', c->f) == EOF)
		c->write_errno = errno ? errno : EIO;
	return true;
}

bool out_close(struct out_csv *c, char *err, size_t errlen)
{
	bool ok = true;

	if (c->f) {
		if (c->overflow)
			ok = errf(err, errlen, "%s: a row exceeds %zu bytes", c->path,
			          sizeof(c->row));
		else if (c->write_errno)
			ok = errf(err, errlen, "cannot write %s: %s", c->path,
			          strerror(c->write_errno));
		if (fclose(c->f) != 0 && ok)
			ok = errf(err, errlen, "cannot write %s: %s", c->path, strerror(errno));
		c->f = NULL;
	}
	free(c->path);
	c->path = NULL;
	return ok;
}

static void put(struct out_csv *c, const char *s, size_t n)
{
	if (c->len + n >= sizeof(c->row)) {
		c->overflow = true;
		return;
	}
	memcpy(c->row + c->len, s, n);
	c->len += n;
}

static void next_field(struct out_csv *c)
{
	if (c->nfields++ > 0)
		put(c, ",", 1);
}

void out_null(struct out_csv *c)
{
	next_field(c);
}

void out_str(struct out_csv *c, const char *s)
{
	const char *q;

	next_field(c);
	if (!s)
		return;
	if (*s && !strpbrk(s, ",\"\r\n")) {
		put(c, s, strlen(s));
		return;
	}
	put(c, "\"", 1); /* the empty string too: "" is not NULL */
	for (; (q = strchr(s, '"')) != NULL; s = q + 1) {
		put(c, s, (size_t)(q - s) + 1);
		put(c, "\"", 1);
	}
	put(c, s, strlen(s));
	put(c, "\"", 1);
}

void out_fmt(struct out_csv *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out_str(c, buf);
}

void out_dec(struct out_csv *c, int64_t v, int scale)
{
	char b[32], *p = b + sizeof(b);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	for (int i = 0; u || i <= scale; i++, u /= 10) {
		if (i == scale && scale > 0)
			*--p = '.';
		*--p = (char)('0' + u % 10);
	}
	if (v < 0)
		*--p = '-';
	next_field(c);
	put(c, p, (size_t)(b + sizeof(b) - p));
}

void out_int(struct out_csv *c, int64_t v)
{
	out_dec(c, v, 0);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static char *put_digits(char *p, int v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + width;
}

static void put_time(struct out_csv *c, int64_t t, bool date_only)
{
	char b[24], *p = b;
	int y, m, d, s = (int)(t % DAY);

	next_field(c);
	if (t < 0)
		return;
	civil_from_days(t / DAY, &y, &m, &d);
	p = put_digits(p, y, 4);
	*p++ = '-';
	p = put_digits(p, m, 2);
	*p++ = '-';
	p = put_digits(p, d, 2);
	if (!date_only) {
		*p++ = 'T';
		p = put_digits(p, s / HOUR, 2);
		*p++ = ':';
		p = put_digits(p, s / MINUTE % 60, 2);
		*p++ = ':';
		p = put_digits(p, s % 60, 2);
		*p++ = 'Z';
	}
	put(c, b, (size_t)(p - b));
}

void out_ts(struct out_csv *c, int64_t t)
{
	put_time(c, t, false);
}

void out_date(struct out_csv *c, int64_t t)
{
	put_time(c, t, true);
}

void out_uuid(struct out_csv *c, struct uuid u)
{
	static const char hex[] = "0123456789abcdef";
	char b[36], *p = b;

	for (int i = 0; i < 32; i++) {
		uint64_t w = i < 16 ? u.hi : u.lo;
		if (i == 8 || i == 12 || i == 16 || i == 20)
			*p++ = '-';
		*p++ = hex[(w >> (60 - 4 * (i % 16))) & 15];
	}
	next_field(c);
	put(c, b, sizeof(b));
}

void out_phone(struct out_csv *c, struct rng *r)
{
	int area = (int)rng_range(r, 201, 989);

	out_fmt(c, "+1-%03d-555-%04d", area, (int)rng_below(r, 10000));
}

void out_end(struct out_csv *c)
{
	put(c, "\n", 1);
	if (!c->overflow && !c->write_errno && fwrite(c->row, 1, c->len, c->f) != c->len)
		c->write_errno = errno ? errno : EIO;
	c->len = 0;
	c->nfields = 0;
}

bool demo_parse_time(const char *s, int64_t *t)
{
	static const int width[6] = {4, 2, 2, 2, 2, 2};
	static const char sep[6] = {'-', '-', 'T', ':', ':', 'Z'};
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int v[6];

	if (strlen(s) != 20)
		return false;
	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		for (int k = 0; k < width[i]; k++, s++) {
			if (*s < '0' || *s > '9')
				return false;
			v[i] = v[i] * 10 + (*s - '0');
		}
		if (*s++ != sep[i])
			return false;
	}
	bool leap = v[0] % 4 == 0 && (v[0] % 100 != 0 || v[0] % 400 == 0);
	if (v[0] < 2000 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > mdays[v[1] - 1] ||
	    (v[1] == 2 && v[2] == 29 && !leap) || v[3] > 23 || v[4] > 59 || v[5] > 59)
		return false;
	*t = days_from_civil(v[0], v[1], v[2]) * DAY + v[3] * HOUR + v[4] * MINUTE + v[5];
	return true;
}

/* ---- vocabulary ---- */

const char *const demo_regions[NREGIONS] = {"northeast", "southeast", "midwest", "southwest",
                                            "west"};

const char *const demo_cities[NREGIONS][4] = {
        {"Boston", "New York", "Philadelphia", "Hartford"},
        {"Atlanta", "Miami", "Charlotte", "Nashville"},
        {"Chicago", "Detroit", "Minneapolis", "St. Louis"},
        {"Phoenix", "Dallas", "Albuquerque", "Houston"},
        {"Seattle", "Portland", "San Francisco", "Denver"},
};

const char *const demo_first_names[32] = {
        "James",   "Mary",  "Robert", "Patricia", "John",   "Jennifer", "Michael", "Linda",
        "David",   "Maria", "Joseph", "Susan",    "Thomas", "Jessica",  "Carlos",  "Sarah",
        "Daniel",  "Lisa",  "Mark",   "Ashley",   "Wei",    "Priya",    "Ahmed",   "Fatima",
        "Hiroshi", "Yuki",  "Olga",   "Ivan",     "Aisha",  "Kwame",    "Lucia",   "Mateo"};

const char *const demo_last_names[32] = {
        "Smith",     "Johnson",  "Williams", "Brown",  "Jones",    "Garcia", "Miller", "Davis",
        "Rodriguez", "Martinez", "Lopez",    "Wilson", "Anderson", "Taylor", "Moore",  "Jackson",
        "Lee",       "Perez",    "Thompson", "White",  "Harris",   "Clark",  "Lewis",  "Walker",
        "Young",     "King",     "O'Brien",  "Nguyen", "Patel",    "Kim",    "Chen",   "Okafor"};

const char *demo_slug(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	for (; *s && n + 1 < len; s++)
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
			buf[n++] = (char)(*s | 0x20);
	buf[n] = '\0';
	return buf;
}
