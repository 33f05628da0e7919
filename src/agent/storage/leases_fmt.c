/* The lease record: parse, format, decide (leases.h). Pure functions: a
 * lease file is written by another host and may be anything. */
#include "agent/storage/leases.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/macro.h"

#define MS_PER_S 1000LL

long long
lease_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * MS_PER_S + ts.tv_nsec / 1000000;
}

long long
lease_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * MS_PER_S + ts.tv_nsec / 1000000;
}

unsigned
lease_interval_ms(unsigned lease_seconds)
{
	unsigned s = lease_seconds / 5;

	return (s ? s : 1) * 1000;
}

unsigned
lease_period_ms(unsigned lease_seconds)
{
	unsigned i = lease_interval_ms(lease_seconds);

	/* Fencing leaves L - 2i; below 3i, one renewal a little late would
	 * fence: renew twice per interval then. */
	return (unsigned long long)lease_seconds * 1000 - 2ULL * i < 3ULL * i ? i / 2 : i;
}

unsigned
lease_io_deadline_s(unsigned lease_seconds)
{
	unsigned i = lease_interval_ms(lease_seconds) / 1000;

	return 2 * i > 1 ? 2 * i - 1 : 1;
}

static int
whyf(char *why, size_t whysz, const char *field, const char *what)
{
	snprintf(why, whysz, "%s %s", field, what);
	return -EINVAL;
}

static int
get_uuid(json_t *o, const char *key, char out[NQ_UUID_LEN + 1], char *why, size_t whysz)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return whyf(why, whysz, key, "is missing");
	if (!json_is_string(v) || validate_uuid(key, json_string_value(v), out, NULL) < 0)
		return whyf(why, whysz, key, "must be a UUID string");
	return 0;
}

static int
get_ms(json_t *o, const char *key, long long *out, char *why, size_t whysz)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return whyf(why, whysz, key, "is missing");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return whyf(why, whysz, key, "must be a non-negative integer");
	*out = (long long)json_integer_value(v);
	return 0;
}

static int
get_host(json_t *o, char out[LEASE_HOST_MAX + 1], char *why, size_t whysz)
{
	json_t *v = json_object_get(o, "host_name");
	const char *s;
	size_t n;

	if (!v)
		return whyf(why, whysz, "host_name", "is missing");
	if (!json_is_string(v))
		return whyf(why, whysz, "host_name", "must be a string");
	s = json_string_value(v);
	n = strlen(s);
	if (n == 0 || n > LEASE_HOST_MAX || n != json_string_length(v))
		return whyf(why, whysz, "host_name", "must be 1..255 characters");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return whyf(why, whysz, "host_name", "must be printable ASCII");
	memcpy(out, s, n + 1);
	return 0;
}

int
lease_parse(const char *buf, size_t len, struct lease *ret, char *why, size_t whysz)
{
	struct lease l = { 0 };
	json_error_t jerr;
	json_t *o;
	int r;

	if (len > LEASE_FILE_MAX)
		return whyf(why, whysz, "the file", "is too large for a lease");
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return whyf(why, whysz, "the file", "is not JSON");
	if (!json_is_object(o)) {
		json_decref(o);
		return whyf(why, whysz, "the file", "is not a JSON object");
	}
	if ((r = get_uuid(o, "agent_id", l.agent_id, why, whysz)) < 0 ||
		(r = get_host(o, l.host_name, why, whysz)) < 0 ||
		(r = get_uuid(o, "vm_id", l.vm_id, why, whysz)) < 0 ||
		(r = get_uuid(o, "volume_id", l.volume_id, why, whysz)) < 0 ||
		(r = get_ms(o, "expires_at_ms", &l.expires_at_ms, why, whysz)) < 0 ||
		(r = get_ms(o, "renewed_at_ms", &l.renewed_at_ms, why, whysz)) < 0 ||
		(r = get_ms(o, "generation", &l.generation, why, whysz)) < 0) {
		json_decref(o);
		return r;
	}
	json_decref(o);
	*ret = l;
	return 0;
}

int
lease_format(const struct lease *l, char *buf, size_t bufsz)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "agent_id",
		l->agent_id, "host_name", l->host_name, "vm_id", l->vm_id, "volume_id",
		l->volume_id, "expires_at_ms", (json_int_t)l->expires_at_ms,
		"renewed_at_ms", (json_int_t)l->renewed_at_ms, "generation",
		(json_int_t)l->generation);
	size_t n;

	if (!o)
		return -ENOMEM;
	n = json_dumpb(o, buf, bufsz, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (n == 0 || n + 1 >= bufsz)
		return -ENOSPC;
	buf[n++] = '\n';
	buf[n] = '\0';
	return (int)n;
}

static void
held_until(struct lease_decision *d, long long until, long long now_ms)
{
	d->held_until_ms = until;
	d->v = now_ms >= until ? LEASE_EXPIRED : LEASE_HELD;
}

void
lease_decide(const struct lease_view *cur, const char *agent_id, const char *volume_id,
	long long now_ms, unsigned lease_seconds, struct lease_decision *ret)
{
	long long L = (long long)lease_seconds * MS_PER_S;
	struct lease_decision d = { .v = LEASE_FREE };

	if (!cur->present) {
		*ret = d;
		return;
	}
	if (!cur->valid || strcmp(cur->l.volume_id, volume_id)) {
		/* Unreadable: nobody can say whose it is, so it is held until
		 * it has gone unwritten for a whole lease period. */
		d.corrupt = true;
		held_until(&d, cur->mtime_ms + L, now_ms);
	} else if (!strcmp(cur->l.agent_id, agent_id)) {
		d.v = LEASE_OURS;
		d.held_until_ms = cur->l.expires_at_ms;
	} else if (cur->l.expires_at_ms > now_ms + 10 * L) {
		d.corrupt = true;
		held_until(&d, cur->mtime_ms + 10 * L, now_ms);
	} else {
		held_until(&d, cur->l.expires_at_ms, now_ms);
	}
	*ret = d;
}
