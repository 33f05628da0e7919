/* See placement.h. */
#include "manager/services/placement.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

bool
place_list_has(const char *list, const char *w)
{
	size_t l = strlen(w);

	if (!l)
		return false;
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, w, l) && (p[l] == ',' || p[l] == '\0'))
			return true;
	return false;
}

bool
place_names_has(const char *names, const char *w)
{
	size_t l = strlen(w);

	if (!l || !names)
		return false;
	for (const char *p = names; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, w, l) && (p[l] == '\n' || p[l] == '\0'))
			return true;
	return false;
}

static bool
pick(bool (*has)(void *, const char *), void *ctx, const char *stem,
	const char *const *suffixes, const char *const *shared, char buf[129])
{
	char cand[160];

	for (size_t i = 0; suffixes[i]; i++) {
		snprintf(cand, sizeof cand, "%s%s", stem, suffixes[i]);
		if (strlen(cand) < 129 && has(ctx, cand)) {
			snprintf(buf, 129, "%s", cand);
			return true;
		}
	}
	for (size_t i = 0; shared && shared[i]; i++)
		if (has(ctx, shared[i])) {
			snprintf(buf, 129, "%s", shared[i]);
			return true;
		}
	buf[0] = '\0';
	return false;
}

void
image_boot_pick(bool (*has)(void *ctx, const char *name), void *ctx, const char *image,
	char kernel[129], char initrd[129])
{
	static const char *const ksuf[] = { ".vmlinuz", ".vmlinux", NULL };
	static const char *const kshared[] = { "vmlinuz", "vmlinux", NULL };
	static const char *const isuf[] = { ".initrd", NULL };
	char stem[129];
	char *dot;

	snprintf(stem, sizeof stem, "%s", image);
	dot = strrchr(stem, '.');
	if (dot)
		*dot = '\0';
	pick(has, ctx, stem, ksuf, kshared, kernel);
	pick(has, ctx, stem, isuf, NULL, initrd);
}

static bool
names_has(void *ctx, const char *name)
{
	return place_names_has(ctx, name);
}

/* Why h lacks a boot file need asks for ("" when it has them all). A
 * host that never reported its image dir is not checked. */
static void
missing_file(const struct place_host *h, const struct place_need *need, char *why,
	size_t whysz)
{
	char kernel[129], initrd[129];

	why[0] = '\0';
	if (!h->images)
		return;
	if (need->boot_image && *need->boot_image) {
		if (!place_names_has(h->images, need->boot_image)) {
			snprintf(why, whysz, "it has no %s in its image dir",
				need->boot_image);
			return;
		}
		image_boot_pick(names_has, (void *)h->images, need->boot_image, kernel,
			initrd);
		if (!kernel[0]) {
			snprintf(why, whysz,
				"it has no kernel for %s in its image dir (a .vmlinuz beside it, or vmlinuz)",
				need->boot_image);
			return;
		}
	}
	for (size_t i = 0; need->files && need->files[i]; i++)
		if (*need->files[i] && !place_names_has(h->images, need->files[i])) {
			snprintf(why, whysz, "it has no %s in its image dir",
				need->files[i]);
			return;
		}
}

/* Memory left on h; a host that does not say how much it has is not
 * limited by the manager. */
static long long
left_mib(const struct place_host *h)
{
	return h->memory_mib > 0 ? h->memory_mib - h->used_mib : LLONG_MAX / 2;
}

bool
place_host_fits(const struct place_host *h, const struct place_need *need, char *why,
	size_t whysz)
{
	long long left = left_mib(h);
	char miss[320];

	why[0] = '\0';
	missing_file(h, need, miss, sizeof miss);
	if (need->exclude_host_id && !strcmp(h->id, need->exclude_host_id))
		snprintf(why, whysz, "it is the VM's current host");
	else if (need->owner_host && *need->owner_host && strcmp(h->id, need->owner_host))
		snprintf(why, whysz, "the %s backend belongs to host %s", need->kind,
			need->owner_host);
	else if (strcmp(h->status, "ok") != 0)
		snprintf(why, whysz, "it is %s", h->status);
	else if (h->draining)
		snprintf(why, whysz, "it is draining");
	else if (!place_list_has(h->backend_kinds, need->kind))
		snprintf(why, whysz, "it does not support %s backends", need->kind);
	else if (!h->hypervisors || !*h->hypervisors)
		snprintf(why, whysz, "it has no hypervisor");
	else if (miss[0])
		snprintf(why, whysz, "%s", miss);
	else if (h->backend_status && *h->backend_status &&
		 strcmp(h->backend_status, "ok") != 0)
		snprintf(why, whysz, "the backend is %s there", h->backend_status);
	else if (left < (long long)need->memory_mib)
		snprintf(why, whysz, "it has %lld MiB of memory free, %u MiB needed",
			left < 0 ? 0 : left, need->memory_mib);
	return why[0] == '\0';
}

static void
append(char *buf, size_t sz, const char *name, const char *why)
{
	size_t pos = strlen(buf);

	if (pos < sz)
		snprintf(buf + pos, sz - pos, "%shost %s: %s", pos ? "; " : "", name, why);
}

int
place_choose(const struct place_host *hosts, size_t n, const struct place_need *need,
	size_t *ret_idx, char *why, size_t whysz)
{
	char one[256];
	long long best_left = -1;
	size_t best = n;

	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const struct place_host *h = &hosts[i];
		bool fits;
		if (need->host_id && strcmp(h->id, need->host_id))
			continue;
		fits = place_host_fits(h, need, one, sizeof one);
		if (need->host_id) {
			if (!fits) {
				snprintf(why, whysz, "%s", one);
				return -ENOENT;
			}
			*ret_idx = i;
			return 0;
		}
		if (!fits) {
			append(why, whysz, h->name ? h->name : h->id, one);
			continue;
		}
		if (left_mib(h) > best_left) {
			best_left = left_mib(h);
			best = i;
		}
	}
	if (need->host_id) {
		snprintf(why, whysz, "no host with id %.64s", need->host_id);
		return -ENOENT;
	}
	if (best == n) {
		if (!why[0])
			snprintf(why, whysz, "there is no host");
		return -ENOENT;
	}
	why[0] = '\0';
	*ret_idx = best;
	return 0;
}
