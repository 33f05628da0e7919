#!/usr/bin/env bash
# Start (or stop) nqrust-agent and nqrust-manager on this host, on localhost,
# with the embedded SQLite database. Used by `make run` / `make stop`.
#   scripts/run-local.sh start|stop|status [BUILD_DIR]
set -euo pipefail

cmd=${1:-start}
build=$(cd "${2:-build}" && pwd)
listen=${NQRUST_LISTEN:-127.0.0.1:18080}
etc=/etc/nqrust
lib=/var/lib/nqrust
run=/run/nqrust
logdir=/var/log/nqrust
user=nqrust

if [ "$(id -u)" -ne 0 ]; then
	echo "run-local.sh: run as root: the agent mounts shares" >&2
	exit 1
fi

running() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

stop_one() {
	if running "$1"; then
		kill -TERM "$(cat "$run/$1.pid")"
		for _ in $(seq 50); do running "$1" || break; sleep 0.1; done
	fi
	rm -f "$run/$1.pid"
}

case "$cmd" in
stop)
	stop_one nqrust-manager
	stop_one nqrust-agent
	echo "nqrust stopped (mounted shares stay mounted; the agent adopts them on start)"
	exit 0 ;;
status)
	for d in nqrust-agent nqrust-manager; do
		if running $d; then echo "$d: running (pid $(cat $run/$d.pid))"; else echo "$d: stopped"; fi
	done
	exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop|status [BUILD_DIR]" >&2; exit 2 ;;
esac

# The manager runs unprivileged as "nqrust"; the agent's socket is group nqrust.
getent group $user >/dev/null || groupadd --system $user
id -u $user >/dev/null 2>&1 || useradd --system -g $user -M -d $lib/manager -s /usr/sbin/nologin $user
install -d -m 0755 $etc $lib $lib/images $run $logdir
install -d -m 0700 $etc/storage-creds
install -d -m 0750 -o $user -g $user $lib/manager

# Admin password: from NQRUST_ADMIN_PASSWORD, else generated once and kept
# root-only so `make run` can print it again.
pwfile=$etc/admin-password
if [ -n "${NQRUST_ADMIN_PASSWORD:-}" ]; then
	admin_pw=$NQRUST_ADMIN_PASSWORD
elif [ -s $pwfile ]; then
	admin_pw=$(cat $pwfile)
else
	admin_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20)
	(umask 077; printf '%s\n' "$admin_pw" > $pwfile)
fi

if running nqrust-agent; then
	echo "nqrust-agent already running (pid $(cat $run/nqrust-agent.pid))"
else
	"$build/nqrust-agent" --listen-unix $run/agent.sock --socket-group $user \
		--smbfs-path "$build/nqrust-smbfs" >>$logdir/agent.log 2>&1 </dev/null &
	echo $! > $run/nqrust-agent.pid
	for _ in $(seq 100); do [ -S $run/agent.sock ] && break; sleep 0.05; done
	[ -S $run/agent.sock ] || { echo "agent failed to start; see $logdir/agent.log" >&2; tail -5 $logdir/agent.log >&2; exit 1; }
fi

if [ ! -x "$build/nqrust-manager" ]; then
	echo "nqrust-agent is running (socket $run/agent.sock); nqrust-manager is not built yet"
	exit 0
fi
if running nqrust-manager; then
	echo "nqrust-manager already running (pid $(cat $run/nqrust-manager.pid))"
else
	touch $logdir/manager.log && chown $user:$user $logdir/manager.log
	NQRUST_ADMIN_PASSWORD=$admin_pw setpriv --reuid=$user --regid=$user --init-groups \
		"$build/nqrust-manager" --listen "$listen" --state-dir $lib/manager \
		--agent unix:$run/agent.sock >>$logdir/manager.log 2>&1 </dev/null &
	echo $! > $run/nqrust-manager.pid
	for _ in $(seq 100); do
		curl -fsS "http://$listen/healthz" >/dev/null 2>&1 && break
		running nqrust-manager || break
		sleep 0.1
	done
	curl -fsS "http://$listen/healthz" >/dev/null 2>&1 || {
		echo "manager failed to start; see $logdir/manager.log" >&2
		tail -5 $logdir/manager.log >&2; exit 1; }
fi

cat <<MSG

  nqrust is running.
    URL:       http://$listen/
    username:  admin
    password:  $admin_pw
    CLI:       $build/nqrust --url http://$listen login --username admin
    logs:      $logdir/agent.log, $logdir/manager.log
    stop:      make stop

MSG
