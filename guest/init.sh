#!/bin/sh
# PID 1 of the mmapkit guest (static busybox, from the initramfs).
#
# It loads the virtio and 9p modules and builds the guest's root on a tmpfs
# from what the host shares (tools/qemu/guest-view.ts says what and why): the
# skeleton from the initramfs (/bin, /lib, ... as links into /usr, a /etc of
# its own), /usr and the checkout read-only, the run's inputs (read-only
# copies of the files the run names elsewhere) at their host paths, fresh
# proc/sys/dev, tmpfs scratch on /tmp, /run, /root and /var/tmp, and the
# run's output directory, the only host directory the guest may write. The
# root itself is then made read-only and, chrooted into it, either the guest
# agent or an interactive shell runs. Whatever happens, it ends by powering
# off, so QEMU exits.
#
# Parameters come from the kernel command line (mmapkit.*=...). Progress and
# failures are printed as "mmapkit-init: ..." lines on the console, where the
# host's console parser looks for them.

export PATH=/bin

say() { echo "mmapkit-init: $*"; }
fatal() {
	say "FATAL: $*"
	poweroff -f
	sleep 5
}
# mark NAME: a kernel log record "mmapkit-init: at NAME UPTIME" at level 6, so
# not on the console, from which `mmapkit bench --tool` times the boot's
# phases (tools/bench/tool-phases.ts). read and echo are shell builtins: no
# process is started for it.
mark() {
	read -r up _ </proc/uptime && echo "<6>mmapkit-init: at $1 $up" >/dev/kmsg
}

# The applets' links in /bin come with the image (tools/qemu/initramfs.ts),
# not from `busybox --install` here: that cost each boot about 25 ms.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mark init

for word in $(cat /proc/cmdline); do
	case "$word" in
	mmapkit.mode=*) MODE=${word#*=} ;;
	mmapkit.root=*) REPO=${word#*=} ;;
	mmapkit.out=*) OUT=${word#*=} ;;
	mmapkit.inputs=*) INPUTS=${word#*=} ;;
	mmapkit.insmod=*) INSMOD=${word#*=} ;;
	mmapkit.term=*) TERM=${word#*=} ;;
	mmapkit.hold=*) HOLD=${word#*=} ;;
	esac
done
[ -n "$MODE" ] && [ -n "$REPO" ] || fatal "missing mmapkit.mode or mmapkit.root on the kernel command line"

# The order was computed on the host with modprobe --show-depends:
# insmod does not resolve dependencies.
while read -r module; do
	insmod "/lib/modules/$module" || fatal "insmod $module failed"
done </lib/modules/order
mark modules

ROOT=/sysroot
GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The agent's runtime (tools/qemu/agent-runtime.ts): node, then the libraries
# it loads, each as "LOOKUP REAL".
read -r NODE _ </agent-runtime

# share TAG DIR OPTIONS: mounts the host directory shared under TAG on DIR.
share() {
	mkdir -p "$2" && mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,$3" "$1" "$2" ||
		fatal "cannot mount the host's $1 share on $2"
}

# start_agent [KEY=VALUE]...: the agent, chrooted into the guest's root, in
# the background (its pid in AGENT); env is busybox's, outside the root,
# which needs nothing of /usr before node.
start_agent() {
	for port in /sys/class/virtio-ports/*; do
		[ "$(cat "$port/name" 2>/dev/null)" = mmapkit.agent ] && PORT=/dev/${port##*/}
	done
	[ -n "$PORT" ] || fatal "no virtio-serial port named mmapkit.agent"
	env -i PATH=$GUEST_PATH HOME=/root MMAPKIT_PORT="$PORT" MMAPKIT_ROOT="$REPO" "$@" \
		/bin/chroot "$ROOT" "$NODE" "$REPO/build/guest/agent.cjs" &
	AGENT=$!
}

# stage_agent: with the hold point, the agent is started before the save, so
# that a restored guest does not pay node's start, about 1 s under TCG. node,
# its libraries, the agent's bundle and the addon are copied from the shares onto
# tmpfs at the paths the agent opens them by, the shares unmounted again
# (which lets QEMU save the guest), and the copies put where the shares
# will later be mounted over them: the running agent keeps what it opened.
# The agent says it is held on one FIFO and waits for the run's parameters
# on the other (guest/agent.ts, awaitGo).
stage_agent() {
	share usr /stage/usr ro
	share checkout /stage/checkout ro
	mkdir -p /stage/root && mount -t tmpfs -o mode=0755 staged /stage/root || fatal "cannot mount a tmpfs for the agent's runtime"
	while read -r lookup real; do
		dest=/stage/root${lookup#/usr}
		mkdir -p "${dest%/*}" && cp "/stage/usr${real#/usr}" "$dest" || fatal "cannot copy $real for the agent"
	done </agent-runtime
	# The checkout's files the agent opens before it is held: its bundle and the addon.
	while read -r file; do
		mkdir -p "$ROOT$REPO/${file%/*}" && cp "/stage/checkout/$file" "$ROOT$REPO/$file" || fatal "cannot copy the agent's $file"
	done </agent-checkout-files
	umount /stage/usr /stage/checkout || fatal "cannot unmount the shares the agent was copied from"
	mount --move /stage/root "$ROOT/usr" || fatal "cannot move the agent's runtime into the guest's root"
	mkdir "$ROOT/.mmapkit" && mkfifo "$ROOT/.mmapkit/held" "$ROOT/.mmapkit/go" || fatal "cannot make the agent's FIFOs"
	start_agent MMAPKIT_HOLD=/.mmapkit
	read -r _ <"$ROOT/.mmapkit/held" || fatal "the agent did not start"
}

mount -t tmpfs -o mode=0755 root "$ROOT" && cp -a /guest-root/. "$ROOT/" || fatal "cannot make the guest's root"

# Before the hold point: the agent reads the kernel log there (/dev/kmsg) and a
# devtmpfs holds nothing of the host's, so a saved guest may keep it mounted.
mount -t devtmpfs devtmpfs "$ROOT/dev" || fatal "cannot mount devtmpfs in the guest's root"

# mmapkit.hold=1 (agent mode, tools/qemu/snapshot.ts): the host may save the
# guest here, with the agent started, before the 9p shares are mounted (QEMU
# refuses to migrate a guest with a 9p share mounted), and start later
# guests from that state instead of booting them. So nothing before this
# point may depend on the run: the run's own parameters (the output and
# inputs directories) come on the line the host then sends on the console,
# "go EPOCH SEED [KEY=VALUE]...", with the host's clock (a restored guest's
# clock is the saved guest's) and fresh bytes for the random pool (each
# restored guest starts from the same pool; the agent reseeds the kernel's
# generator from it before anything reads boot_id).
if [ "$HOLD" = 1 ]; then
	[ "$MODE" = agent ] || fatal "mmapkit.hold=1 needs mmapkit.mode=agent"
	stage_agent
	stty -echo 2>/dev/null
	say "snapshot point"
	read -r word epoch seed rest || fatal "no go line from the host"
	[ "$word" = go ] || fatal "expected a go line from the host, got '$word'"
	date -u -s "@$epoch" >/dev/null || fatal "cannot set the clock to $epoch"
	echo "$seed" >/dev/urandom
	for word in $rest; do
		case "$word" in
		out=*) OUT=${word#*=} ;;
		inputs=*) INPUTS=${word#*=} ;;
		esac
	done
	mark resume
fi
[ -n "$OUT" ] || fatal "missing mmapkit.out on the kernel command line or the go line"

share usr "$ROOT/usr" ro,cache=loose
for dir in /tmp /run /root /var/tmp; do
	mount -t tmpfs -o mode=1777 scratch "$ROOT$dir" || fatal "cannot mount a tmpfs on $dir"
done
# After the scratch tmpfs, so that a checkout under /tmp is not hidden.
share checkout "$ROOT$REPO" ro,cache=loose
if [ -n "$INPUTS" ]; then
	share inputs "$ROOT$INPUTS" ro,cache=loose
	# Each copy appears at its host path, as a link into the read-only share.
	(cd "$ROOT$INPUTS" && find . -type f) | while read -r file; do
		file=${file#.}
		mkdir -p "$ROOT${file%/*}" && ln -s "$INPUTS$file" "$ROOT$file" || fatal "cannot show the guest $file"
	done
fi

mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mkdir -p "$ROOT/dev/pts" && mount -t devpts devpts "$ROOT/dev/pts" 2>/dev/null
mount -t debugfs debugfs "$ROOT/sys/kernel/debug" 2>/dev/null
mount -t tracefs tracefs "$ROOT/sys/kernel/tracing" 2>/dev/null

share out "$ROOT$OUT" rw
mount -o remount,ro "$ROOT" || fatal "cannot make the guest's root read-only"
mark root

case "$MODE" in
agent)
	if [ -n "$AGENT" ]; then
		# The held agent's parameters; it reads until this write ends.
		echo "MMAPKIT_OUT=$OUT" >"$ROOT/.mmapkit/go" || fatal "cannot send the held agent its parameters"
	else
		start_agent MMAPKIT_OUT="$OUT"
	fi
	wait "$AGENT"
	say "agent exited with status $?"
	;;
shell)
	if [ -n "$INSMOD" ]; then
		chroot "$ROOT" /sbin/insmod "$INSMOD" || say "insmod $INSMOD failed"
	fi
	say "shell ready: the repository is at $REPO, write results to $OUT; exit to power off"
	setsid cttyhack chroot "$ROOT" /usr/bin/env -i PATH=$GUEST_PATH HOME=/root TERM="${TERM:-vt100}" \
		/bin/bash -i
	;;
*)
	fatal "unknown mode $MODE"
	;;
esac
poweroff -f
