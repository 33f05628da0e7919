/* The serial consoles of QEMU VMs. QEMU's serial port is a unix socket
 * chardev (qemu.c) that stalls the guest's console writes while nobody is
 * connected, so one pump thread stays connected to every running VM's
 * socket and drains it (QEMU itself appends the output to serial.log).
 * Keystrokes go to the guest through the same connection.
 *
 * Thread-safe. No lock is held across a blocking write: input is written
 * on a duplicate of the connection, non-blocking with a deadline. */
#pragma once

#include <stddef.h>

int console_pump_start(void);
void console_pump_stop(void);
/* Connect to sock_path (retrying for a while: QEMU creates it as it
 * starts) and keep the connection until QEMU closes it. Replaces an older
 * connection of vm_id. */
void console_attach(const char *vm_id, const char *sock_path);
/* Write len bytes to vm_id's serial port within timeout_ms: the bytes
 * written (all of them, or fewer when the deadline passed), -ENOTCONN when
 * the VM has no console connection (not running, or not QEMU). */
int console_input(const char *vm_id, const void *buf, size_t len, int timeout_ms);
/* The same through a Firecracker VM's stdin FIFO at path (vmm.h,
 * VMM_CONSOLE_FIFO): -ENOTCONN when no VMM reads it. */
int console_input_fifo(const char *path, const void *buf, size_t len, int timeout_ms);
