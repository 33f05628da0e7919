/* The placement decision as a pure function over host rows, so it can be
 * tested without a database or an agent (hosts_place gathers the rows). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct place_host {
	const char *id;
	const char *name;
	const char *status; /* "ok", "unreachable" (the heartbeat's view) */
	bool draining;
	const char *backend_kinds; /* comma-separated */
	const char *hypervisors;   /* comma-separated */
	long long memory_mib;      /* what the host offers; 0: unknown, not checked */
	long long used_mib;        /* memory of VMs placed there that are not stopped */
	/* The backend on this host: "" when not attached (attachable on first
	 * use), else its status there ("ok", "error", ...). */
	const char *backend_status;
	/* The names in the host's image dir, '\n'-joined ("" when empty);
	 * NULL when the agent never reported them: then not checked. */
	const char *images;
};

struct place_need {
	const char *kind;       /* the backend's kind */
	const char *owner_host; /* a localfile backend's host, or "" / NULL */
	unsigned memory_mib;
	const char *host_id;         /* explicit choice or NULL */
	const char *exclude_host_id; /* or NULL */
	/* A new VM's base image, or NULL: it and a kernel for it (the rule
	 * of image_boot_pick) must be in the host's image dir. */
	const char *boot_image;
	/* Other names that must be there (a VM's kernel and initrd when it
	 * moves), NULL-terminated; NULL or "" entries are skipped. */
	const char *const *files;
};

/* The boot files of base image `image` among the names `has` says are
 * there: kernel <stem>.vmlinuz or <stem>.vmlinux, else a shared vmlinuz or
 * vmlinux ("" when none); initrd <stem>.initrd ("" when none). */
void image_boot_pick(bool (*has)(void *ctx, const char *name), void *ctx,
	const char *image, char kernel[129], char initrd[129]);
/* True when the '\n'-joined list holds name w. */
bool place_names_has(const char *names, const char *w);

/* Why host h cannot take need, written to why (empty when it can); returns
 * true when it can. */
bool place_host_fits(const struct place_host *h, const struct place_need *need, char *why,
	size_t whysz);
/* The index of the chosen host in hosts[0..n): the explicit host when it
 * fits, otherwise the fitting host with the most memory left (ties: first
 * in the array). -ENOENT with why filled when none fits: for an explicit
 * host its reason, else one reason per host. */
int place_choose(const struct place_host *hosts, size_t n, const struct place_need *need,
	size_t *ret_idx, char *why, size_t whysz);
/* True when the comma-separated list holds word w. */
bool place_list_has(const char *list, const char *w);
