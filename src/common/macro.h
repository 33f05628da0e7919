/* Small macros shared by every nqrust program: cleanup attributes and
 * ownership hand-off, in the style of systemd's macro.h. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_ __attribute__((warn_unused_result))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Return *p and set it to NULL: the caller now owns the pointer. */
#define TAKE_PTR(p)                                                                       \
	({                                                                                \
		__typeof__(p) _tp_ = (p);                                                 \
		(p) = NULL;                                                               \
		_tp_;                                                                     \
	})
/* Return fd and set it to -1: the caller now owns the descriptor. */
#define TAKE_FD(fd)                                                                       \
	({                                                                                \
		int _tf_ = (fd);                                                          \
		(fd) = -1;                                                                \
		_tf_;                                                                     \
	})

static inline void
freep(void *p)
{
	free(*(void **)p);
}

static inline void
closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                           \
	static inline void func##p(type *p)                                               \
	{                                                                                 \
		if (*p)                                                                   \
			func(*p);                                                         \
	}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Negative errno from the current errno, never 0. */
static inline int
negerrno(void)
{
	return errno > 0 ? -errno : -EIO;
}
