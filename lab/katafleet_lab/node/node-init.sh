#!/bin/sh
# PID 1 of a katafleet lab node. Runs inside fresh mount/uts/ipc/pid/cgroup namespaces and the node's
# network namespace. Builds the node's private view, then becomes sshd.
#   node-init.sh NODE_NAME CGROUP_MODE(v1|v2) NODE_DIR SHARED_DIR
set -eu
NODE=$1 MODE=$2 ND=$3 SHARED=$4
hostname "$NODE"
mount --make-rprivate /
mount -t proc proc /proc
mount -t sysfs sysfs /sys
if [ "$MODE" = v2 ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
else
  mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
  for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
    mkdir -p /sys/fs/cgroup/$c
    mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
  done
  mkdir -p /sys/fs/cgroup/systemd
  mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
fi
# private, writable /etc /opt /var /root /usr/local: overlays with per-node upper dirs
for d in etc opt var root usr/local; do
  u=$(echo "$d" | tr / _)
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$ND/upper/$u,workdir=$ND/work/$u" "/$d"
done
# the shared fake Kata install, read-only as the static tarball / kata-deploy leaves it
mkdir -p /opt/kata
mount --bind "$SHARED/opt-kata" /opt/kata
mount -o remount,bind,ro /opt/kata
# containerd's snapshots cannot live on an overlay: a per-node plain directory
mkdir -p /var/lib/containerd
mount --bind "$ND/containerd" /var/lib/containerd
mount -t tmpfs -o mode=755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mkdir -p /run/sshd /run/containerd /run/katalab
ip link set lo up
/usr/local/sbin/katalab-containerd start >/dev/null 2>&1 || true
exec /usr/sbin/sshd -D -e
