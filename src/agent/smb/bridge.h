/* Finding the nqrust-smbfs process that serves a FUSE mount. The bridge
 * daemonizes, so the agent does not keep its pid; it is found again from
 * /proc by its argv (<program> //server/share <mount_point> -o …). */
#pragma once

/* 1 when a live (not zombie) nqrust-smbfs process serves mount_point, 0
 * when none does, -errno when /proc cannot be read. */
int smb_bridge_alive(const char *mount_point);
