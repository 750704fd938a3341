"""The katafleet lab: N Kata-like nodes on one machine, reached by Ansible over SSH.

Each node is sshd running as PID 1 in its own network, mount, uts, ipc, pid and cgroup namespaces,
with private /etc, /opt, /var, /root, /usr/local (overlays), /run and /tmp (tmpfs), its own
containerd, a cgroup v1 tree or a cgroup v2 root, and the shared fake /opt/kata read-only
(real qemu and virtiofsd binaries, a fake shim). See ../shared/LAB-NOTES.md for what was measured.

Labs are named; each name has its own directory, bridge, subnet, netns names and host cgroups, so a
test lab and a demo lab never collide. ``up`` first removes whatever an interrupted run of the
same name left behind; ``down`` always leaves nothing.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_FILES = os.path.join(HERE, "node")
ROOT = os.path.dirname(os.path.dirname(HERE))
BASE = os.environ.get("KATAFLEET_LAB_DIR", "/srv/katafleet-lab")  # outside every tree a node overlays
CG = "/sys/fs/cgroup"
QEMU = "/usr/bin/qemu-system-x86_64"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
FIXTURES = os.path.join(ROOT, "tests", "data", "fixtures")
KATA_DEFAULT_CONFIG = os.path.join(FIXTURES, "kata", "configuration-qemu.toml-rendered-main-7c6ba40c-prefix-opt-kata")
# kubeadm-style node files, so the Kubernetes-side roles have real files to work on
APISERVER_MANIFEST = os.path.join(FIXTURES, "kubernetes", "kube-apiserver.v1.29.0.kubeadm.yaml")
KUBELET_CONFIG = os.path.join(FIXTURES, "kubernetes", "kubelet-config.v1.20.kubeadm.yaml")
# a flags file left over from a pre-1.26 cluster: PodOverhead=true would stop a 1.26+ kubelet
KUBEADM_FLAGS = ('KUBELET_KUBEADM_ARGS="--container-runtime=remote '
                 '--container-runtime-endpoint=unix:///run/containerd/containerd.sock --feature-gates=PodOverhead=true"\n')


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def host_hierarchies():
    """Mount points of the host's cgroup hierarchies (v1 controllers and the v2 one)."""
    out = []
    with open("/proc/self/mounts") as handle:
        for line in handle:
            dev, mnt, fstype, opts = line.split()[:4]
            if fstype in ("cgroup", "cgroup2") and mnt.startswith(CG):
                out.append((mnt, fstype))
    return out


def host_supports_v1():
    return any(t == "cgroup" for _m, t in host_hierarchies())


class Lab(object):
    def __init__(self, name="demo", base=BASE):
        if not name.replace("-", "").isalnum() or len(name) > 12:
            raise ValueError("lab name: letters, digits and '-', at most 12 characters")
        self.name = name
        self.dir = os.path.join(base, name)
        self.state_file = os.path.join(self.dir, "state.json")
        self.inventory = os.path.join(self.dir, "inventory.ini")
        self.key = os.path.join(self.dir, "id_ed25519")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.shared = os.path.join(self.dir, "shared")

    # ---------- state ----------
    def load_state(self):
        try:
            with open(self.state_file) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def save_state(self, state):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.state_file, "w") as handle:
            json.dump(state, handle, indent=1)

    def cgroup_rel(self, node=None):
        return "katafleet-lab/%s%s" % (self.name, "/" + node if node else "")

    # ---------- network index: one /24 and one bridge per lab ----------
    def _pick_index(self):
        used = set()
        if os.path.isdir(os.path.dirname(self.dir)):
            for other in os.listdir(os.path.dirname(self.dir)):
                if other == self.name:
                    continue
                try:
                    with open(os.path.join(os.path.dirname(self.dir), other, "state.json")) as handle:
                        used.add(json.load(handle)["index"])
                except (OSError, ValueError, KeyError):
                    pass
        links = sh(["ip", "-o", "link", "show"]).stdout
        for idx in range(1, 250):
            if idx not in used and (" kfbr%d:" % idx) not in links:
                return idx
        raise RuntimeError("no free lab network index")

    # ---------- teardown ----------
    def _node_processes(self):
        """[(unshare_pid, [children])] of this lab's nodes, found in /proc (works without a state file).
        The unshare process keeps `node-init.sh ... <lab dir>/nodes/...` in its cmdline; its child is the
        node's PID 1 (sshd after exec)."""
        marker = ("%s/nodes/" % self.dir).encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    cmd = handle.read()
                if not cmd.startswith(b"unshare\0") or b"node-init.sh" not in cmd or marker not in cmd:
                    continue
                with open("/proc/%s/task/%s/children" % (entry, entry)) as handle:
                    found.append((int(entry), [int(c) for c in handle.read().split()]))
            except OSError:
                continue
        return found

    def down(self):
        state = self.load_state() or {}
        procs = self._node_processes()
        for unshare_pid, kids in procs:
            for pid in kids + [unshare_pid]:
                try:
                    os.kill(pid, signal.SIGKILL)  # PID 1 of the node: the kernel kills its whole pid namespace
                except ProcessLookupError:
                    pass
        for unshare_pid, kids in procs:
            for pid in kids + [unshare_pid]:
                for _ in range(100):
                    if not os.path.exists("/proc/%d" % pid):
                        break
                    time.sleep(0.05)
        prefix = "kf-%s-" % self.name
        for ns in sh(["ip", "netns", "list"], check=False).stdout.split("\n"):
            ns = ns.split(" ")[0]
            if ns.startswith(prefix):
                sh(["ip", "netns", "del", ns], check=False)
        # the bridge and the host ends of the veth pairs carry the lab's alias: found even without a state file
        # (veth pairs would go with their netns, but only asynchronously)
        for ifname in self._links():
            sh(["ip", "link", "del", ifname], check=False)
        self._rm_cgroups()
        # the lab's files too (node overlays, fake /opt/kata, keys, inventory): nothing is left behind
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(self.dir))
        except OSError:
            pass

    def _alias(self):
        return "katafleet-lab:%s" % self.name

    def _links(self):
        """Host-side links this lab created (bridge first), by their alias."""
        out = []
        for line in sh(["ip", "-o", "link", "show"], check=False).stdout.splitlines():
            if line.rstrip().endswith("alias " + self._alias()):
                ifname = line.split(":")[1].strip().split("@")[0]
                out.append(ifname)
        return sorted(out, key=lambda n: "br" not in n)

    def _rm_cgroups(self):
        for mnt, _t in host_hierarchies():
            top = os.path.join(mnt, self.cgroup_rel())
            if not os.path.isdir(top):
                continue
            for attempt in range(2):
                for dirpath, dirnames, _f in sorted(os.walk(top, topdown=False), key=lambda x: -x[0].count("/")):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
                if not os.path.isdir(top):
                    break
                time.sleep(0.3)
            parent = os.path.dirname(top)
            try:
                os.rmdir(parent)  # katafleet-lab/ itself, when no other lab uses it
            except OSError:
                pass

    # ---------- bring-up ----------
    def build_shared(self):
        """The fake /opt/kata every node mounts read-only, and the node tools."""
        opt = os.path.join(self.shared, "opt-kata")
        if os.path.exists(os.path.join(self.shared, ".built")):
            return
        shutil.rmtree(self.shared, ignore_errors=True)
        for d in ("bin", "libexec", "share/defaults/kata-containers", "lib/ipxe"):
            os.makedirs(os.path.join(opt, d), exist_ok=True)
        shim = os.path.join(opt, "bin", "containerd-shim-kata-v2")
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc:
            sh([cc, "-O2", "-static", "-o", shim, os.path.join(NODE_FILES, "fake-shim.c")])
        else:  # right comm and exe, wrong args and parentage (LAB-NOTES section 2)
            shutil.copy2("/bin/sleep", shim)
        shutil.copy2(QEMU, os.path.join(opt, "bin", "qemu-system-x86_64"))
        shutil.copy2(VIRTIOFSD, os.path.join(opt, "libexec", "virtiofsd"))
        # a copied qemu looks for firmware relative to itself (LAB-NOTES section 2)
        os.symlink("/usr/share/seabios", os.path.join(opt, "share", "seabios"))
        os.symlink("/usr/share/qemu", os.path.join(opt, "share", "qemu"))
        os.symlink("/usr/lib/ipxe/qemu", os.path.join(opt, "lib", "ipxe", "qemu"))
        defaults = os.path.join(opt, "share", "defaults", "kata-containers")
        shutil.copyfile(KATA_DEFAULT_CONFIG, os.path.join(defaults, "configuration-qemu.toml"))
        os.symlink("configuration-qemu.toml", os.path.join(defaults, "configuration.toml"))
        open(os.path.join(self.shared, ".built"), "w").close()

    def _node_dirs(self, node):
        nd = os.path.join(self.dir, "nodes", node)
        shutil.rmtree(nd, ignore_errors=True)
        for d in ("etc", "opt", "var", "root", "usr_local"):
            os.makedirs(os.path.join(nd, "upper", d))
            os.makedirs(os.path.join(nd, "work", d))
        os.makedirs(os.path.join(nd, "containerd"))
        return nd

    def _prepare_node_files(self, nd, node, ip):
        up = os.path.join(nd, "upper")
        ssh_dir = os.path.join(up, "etc", "ssh", "sshd_config.d")
        os.makedirs(ssh_dir)
        hostkey = os.path.join(up, "etc", "ssh", "katalab_host_ed25519_key")
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", node, "-f", hostkey])
        with open(os.path.join(ssh_dir, "katalab.conf"), "w") as handle:
            handle.write(
                "ListenAddress %s\nHostKey /etc/ssh/katalab_host_ed25519_key\nPermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\nUsePAM no\nUseDNS no\nMaxStartups 100:30:200\nMaxSessions 100\n" % ip)
        os.makedirs(os.path.join(up, "root", ".ssh"), mode=0o700)
        shutil.copyfile(self.key + ".pub", os.path.join(up, "root", ".ssh", "authorized_keys"))
        os.chmod(os.path.join(up, "root", ".ssh", "authorized_keys"), 0o600)
        sbin = os.path.join(up, "usr_local", "sbin")
        os.makedirs(sbin)
        for tool in ("katalab-containerd", "katalab-sandbox"):
            shutil.copy2(os.path.join(NODE_FILES, tool), os.path.join(sbin, tool))
        os.makedirs(os.path.join(up, "var", "log"), exist_ok=True)
        kubelet = os.path.join(up, "var", "lib", "kubelet")
        os.makedirs(kubelet)
        shutil.copyfile(KUBELET_CONFIG, os.path.join(kubelet, "config.yaml"))
        with open(os.path.join(kubelet, "kubeadm-flags.env"), "w") as handle:
            handle.write(KUBEADM_FLAGS)
        if node == "node1":  # the lab's control-plane node
            manifests = os.path.join(up, "etc", "kubernetes", "manifests")
            os.makedirs(manifests)
            shutil.copyfile(APISERVER_MANIFEST, os.path.join(manifests, "kube-apiserver.yaml"))

    def _join_cgroups_script(self, node):
        lines = []
        for mnt, _t in host_hierarchies():
            d = os.path.join(mnt, self.cgroup_rel(node))
            os.makedirs(d, exist_ok=True)
            if os.path.exists(os.path.join(d, "cpuset.cpus")):
                for parent in (os.path.dirname(os.path.dirname(d)), os.path.dirname(d), d):
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        p = os.path.join(parent, f)
                        if not open(p).read().strip():
                            with open(p, "w") as out:
                                out.write(open(os.path.join(os.path.dirname(parent), f)).read())
            lines.append("echo $$ > %s/cgroup.procs" % d)
        return "; ".join(lines)

    def up(self, nodes=(("node1", "v1"), ("node2", "v1"), ("node3", "v2"))):
        """Bring up the nodes; returns the state dict. Cleans up a previous run of this lab first."""
        self.down()
        if not host_supports_v1():
            nodes = [(n, "v2") for n, _m in nodes]
        os.makedirs(self.dir, exist_ok=True)
        index = self._pick_index()
        bridge = "kfbr%d" % index
        subnet = "10.200.%d" % index
        state = {"name": self.name, "index": index, "bridge": bridge, "subnet": subnet + ".0/24", "nodes": []}
        self.save_state(state)  # so that an interrupted bring-up is cleaned up next time
        self.build_shared()
        if not os.path.exists(self.key):
            sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "katafleet-lab", "-f", self.key])
        sh(["ip", "link", "add", bridge, "type", "bridge"])
        sh(["ip", "link", "set", bridge, "alias", self._alias()])
        sh(["ip", "addr", "add", subnet + ".1/24", "dev", bridge])
        sh(["ip", "link", "set", bridge, "up"])
        for i, (node, mode) in enumerate(nodes, start=1):
            ns = "kf-%s-%s" % (self.name, node)
            ip = "%s.%d" % (subnet, 10 + i)
            veth = "kf%dn%d" % (index, i)
            sh(["ip", "netns", "add", ns])
            sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            sh(["ip", "link", "set", veth, "alias", self._alias()])
            sh(["ip", "link", "set", veth, "master", bridge, "up"])
            sh(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            nd = self._node_dirs(node)
            self._prepare_node_files(nd, node, ip)
            script = "%s; exec nsenter --net=/run/netns/%s unshare --mount --uts --ipc --pid --fork --cgroup " \
                     "--propagation private %s %s %s %s %s" % (
                         self._join_cgroups_script(node), ns, os.path.join(NODE_FILES, "node-init.sh"),
                         node, mode, nd, self.shared)
            log = open(os.path.join(nd, "init.log"), "w")
            proc = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
            state["nodes"].append({"name": node, "cgroup": mode, "ip": ip, "netns": ns, "unshare_pid": proc.pid})
            self.save_state(state)
        for node in state["nodes"]:
            node["pid"] = self._wait_init(node["unshare_pid"])
            self.save_state(state)
        for node in state["nodes"]:
            self._wait_ssh(node)
        scan = sh(["ssh-keyscan", "-t", "ed25519"] + [n["ip"] for n in state["nodes"]]).stdout
        with open(self.known_hosts, "w") as handle:
            handle.write(scan)
        self.write_inventory(state)
        self.save_state(state)
        return state

    def _wait_init(self, unshare_pid):
        """Host PID of the node's PID 1 (the child of `unshare --fork`)."""
        for _ in range(200):
            try:
                with open("/proc/%d/task/%d/children" % (unshare_pid, unshare_pid)) as handle:
                    kids = handle.read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("node init did not start (pid %d)" % unshare_pid)

    def _wait_ssh(self, node):
        for _ in range(300):
            try:
                with socket.create_connection((node["ip"], 22), timeout=0.2) as s:
                    if s.recv(4).startswith(b"SSH"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        log = open(os.path.join(self.dir, "nodes", node["name"], "init.log")).read()
        raise RuntimeError("sshd on %s (%s) did not come up:\n%s" % (node["name"], node["ip"], log))

    def ssh_args(self):
        return ["-i", self.key, "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=auto",
                "-o", "ControlPersist=60s", "-o", "ControlPath=" + os.path.join(self.dir, "cp-%C")]

    def write_inventory(self, state):
        lines = ["# katafleet lab %s: generated by `python -m katafleet_lab up`" % self.name, "[kata_nodes]"]
        for n in state["nodes"]:
            lines.append("%s ansible_host=%s katalab_cgroup=%s" % (n["name"], n["ip"], n["cgroup"]))
        lines += [
            "", "[kata_nodes:vars]", "ansible_user=root", "ansible_python_interpreter=/usr/bin/python3",
            "ansible_ssh_private_key_file=%s" % self.key,
            "ansible_ssh_common_args='%s'" % " ".join(a for a in self.ssh_args()[2:]),
            "katafleet_lab=true",
            # lab nodes have no init system and no network to a package mirror
            "kata_containerd_restart_command='/usr/local/sbin/katalab-containerd restart'",
            "kata_prereqs_tomlkit_install=controller",
            # the lab's shared kernel has no vhost_vsock (no /dev/vhost-vsock, no modprobe, no /lib/modules):
            # the prerequisite check warns instead of failing (tests/lab/test_prereqs.py sets fail)
            "kata_prereqs_on_missing=warn",
            "",
            "[control_plane]",
            "node1",
            "",
        ]
        with open(self.inventory, "w") as handle:
            handle.write("\n".join(lines))
        os.makedirs(os.path.join(self.dir, "group_vars"), exist_ok=True)
        with open(os.path.join(self.dir, "group_vars", "all.yml"), "w") as handle:
            handle.write(
                "# generated by the katafleet lab: the kubeadm-style files it puts on the nodes (Kubernetes 1.29)\n"
                "kata_feature_gates_kubernetes_version: '1.29'\n"
                "kata_feature_gates_kubelet_files: [/var/lib/kubelet/config.yaml, /var/lib/kubelet/kubeadm-flags.env]\n"
                "kata_feature_gates_kubelet_restart_command: 'true'  # no kubelet runs in the lab\n")

    def ssh(self, node, command, check=True, timeout=120):
        state = self.load_state()
        ip = [n["ip"] for n in state["nodes"] if n["name"] == node][0]
        return sh(["ssh"] + self.ssh_args() + ["root@" + ip, command], check=check, timeout=timeout)

    def node_names(self):
        return [n["name"] for n in (self.load_state() or {}).get("nodes", [])]
