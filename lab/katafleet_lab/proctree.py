"""Simulated /proc trees for the verifier's unit tests and benchmark: the process shapes Kata leaves on a host,
with any cgroup paths, including the forms the lab cannot build (systemd driver slices)."""

import os

V1 = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"]


def cgroup_text(path, version=1, per_controller=None):
    """/proc/<pid>/task/<tid>/cgroup content; ``per_controller`` overrides single v1 controllers."""
    per_controller = per_controller or {}
    if version == 2:
        return "0::%s\n" % path
    lines = ["%d:%s:%s" % (i + 2, c, per_controller.get(c, path)) for i, c in enumerate(V1)]
    return "\n".join(lines + ["1:name=systemd:/", "0::/"]) + "\n"


def write_process(root, pid, ppid, comm, argv, exe, threads, version=1):
    """threads: [(tid, comm, cgroup path or {controller: path, "": default})]."""
    d = os.path.join(root, str(pid))
    os.makedirs(os.path.join(d, "task"))
    with open(os.path.join(d, "comm"), "w") as f:
        f.write(comm + "\n")
    with open(os.path.join(d, "stat"), "w") as f:
        f.write("%d (%s) S %d 0 0\n" % (pid, comm, ppid))
    with open(os.path.join(d, "cmdline"), "wb") as f:
        f.write(b"\0".join(a.encode() for a in argv) + b"\0")
    os.symlink(exe, os.path.join(d, "exe"))
    for tid, tcomm, path in threads:
        t = os.path.join(d, "task", str(tid))
        os.makedirs(t)
        with open(os.path.join(t, "comm"), "w") as f:
            f.write(tcomm + "\n")
        with open(os.path.join(t, "cgroup"), "w") as f:
            if isinstance(path, dict):
                f.write(cgroup_text(path[""], version, {k: v for k, v in path.items() if k}))
            else:
                f.write(cgroup_text(path, version))


def write_sandbox(root, base_pid, sandbox, places, version=1, vmm=True, virtiofsd=True):
    """One Kata sandbox: shim, 2 virtiofsd processes (3 threads), qemu with 5 threads (2 vCPUs).

    ``places``: {"shim", "virtiofsd", "vmm", "vcpu"} -> cgroup path. Returns the pids."""
    shim, vfs1, vfs2, qemu = base_pid, base_pid + 1, base_pid + 3, base_pid + 6
    write_process(root, shim, 1, "containerd-shim",
                  ["/opt/kata/bin/containerd-shim-kata-v2", "-namespace", "k8s.io", "-id", sandbox],
                  "/opt/kata/bin/containerd-shim-kata-v2", [(shim, "containerd-shim", places["shim"])], version)
    if virtiofsd:
        write_process(root, vfs1, shim, "virtiofsd", ["/opt/kata/libexec/virtiofsd"], "/opt/kata/libexec/virtiofsd",
                      [(vfs1, "virtiofsd", places["virtiofsd"])], version)
        write_process(root, vfs2, vfs1, "virtiofsd", ["/opt/kata/libexec/virtiofsd"], "/opt/kata/libexec/virtiofsd",
                      [(vfs2, "virtiofsd", places["virtiofsd"]), (vfs2 + 1, "virtiofsd", places["virtiofsd"])], version)
    if vmm:
        write_process(root, qemu, shim, "qemu-system-x86",
                      ["/opt/kata/bin/qemu-system-x86_64", "-name", "sandbox-%s" % sandbox],
                      "/opt/kata/bin/qemu-system-x86_64",
                      [(qemu, "qemu-system-x86", places["vmm"]), (qemu + 1, "call_rcu", places["vmm"]),
                       (qemu + 2, "IO mon_iothread", places["vmm"]), (qemu + 3, "CPU 0/KVM", places["vcpu"]),
                       (qemu + 4, "CPU 1/KVM", places["vcpu"])], version)
    return {"shim": shim, "virtiofsd": [vfs1, vfs2], "vmm": qemu, "vcpus": [qemu + 3, qemu + 4]}
