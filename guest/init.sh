#!/bin/sh
# PID 1 of the mmapkit guest (static busybox, from the initramfs).
#
# It loads the virtio and 9p modules, mounts the host's root read-only over
# 9p, gives it fresh proc/sys/dev and a tmpfs scratch, mounts the run's
# output directory (the only host path the guest may write) and then runs,
# chrooted into the host root, either the guest agent or an interactive
# shell. Whatever happens, it ends by powering off, so QEMU exits.
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

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

for word in $(cat /proc/cmdline); do
	case "$word" in
	mmapkit.mode=*) MODE=${word#*=} ;;
	mmapkit.root=*) REPO=${word#*=} ;;
	mmapkit.out=*) OUT=${word#*=} ;;
	mmapkit.insmod=*) INSMOD=${word#*=} ;;
	mmapkit.term=*) TERM=${word#*=} ;;
	esac
done
[ -n "$MODE" ] && [ -n "$REPO" ] && [ -n "$OUT" ] || fatal "missing mmapkit.mode, mmapkit.root or mmapkit.out on the kernel command line"

# The order was computed on the host with modprobe --show-depends:
# insmod does not resolve dependencies.
while read -r module; do
	insmod "/lib/modules/$module" || fatal "insmod $module failed"
done </lib/modules/order

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host ||
	fatal "cannot mount the host root over 9p"

# A tmpfs over /tmp would hide a checkout that lives under /tmp: keep it
# visible by moving a bind mount of it on top of the fresh tmpfs.
case "$REPO" in
/tmp/*) mkdir -p /keep && mount --bind "/host$REPO" /keep ;;
esac
for dir in /tmp /run /root /var/tmp; do
	mount -t tmpfs -o mode=1777 scratch "/host$dir" || fatal "cannot mount a tmpfs on $dir"
done
if [ -d /keep ]; then
	mkdir -p "/host$REPO" && mount --move /keep "/host$REPO" || fatal "cannot keep $REPO visible"
fi

mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mount -t devpts devpts /host/dev/pts 2>/dev/null
mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /host/sys/kernel/tracing 2>/dev/null

mkdir -p "/host$OUT" && mount -t 9p -o trans=virtio,version=9p2000.L,rw out "/host$OUT" ||
	fatal "cannot mount the output directory $OUT"

GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

case "$MODE" in
agent)
	for port in /sys/class/virtio-ports/*; do
		[ "$(cat "$port/name" 2>/dev/null)" = mmapkit.agent ] && PORT=/dev/${port##*/}
	done
	[ -n "$PORT" ] || fatal "no virtio-serial port named mmapkit.agent"
	chroot /host /usr/bin/env -i PATH=$GUEST_PATH HOME=/root MMAPKIT_PORT="$PORT" \
		MMAPKIT_ROOT="$REPO" MMAPKIT_OUT="$OUT" \
		/usr/bin/node "$REPO/build/guest/agent.mjs"
	say "agent exited with status $?"
	;;
shell)
	if [ -n "$INSMOD" ]; then
		chroot /host /sbin/insmod "$INSMOD" || say "insmod $INSMOD failed"
	fi
	say "shell ready: the repository is at $REPO, write results to $OUT; exit to power off"
	setsid cttyhack chroot /host /usr/bin/env -i PATH=$GUEST_PATH HOME=/root TERM="${TERM:-vt100}" \
		/bin/bash -i
	;;
*)
	fatal "unknown mode $MODE"
	;;
esac
poweroff -f
