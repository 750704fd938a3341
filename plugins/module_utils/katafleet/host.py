"""Host prerequisites of a Kata node, read and fixed in one pass (one module call, one round trip).

What a node needs, with the upstream place each rule comes from (KC = kata-containers/kata-containers,
read at 7c6ba40c):
- the hypervisor's device: ``/dev/kvm`` for every KVM-based VMM (KC src/runtime/cmd/kata-runtime/kata-check.go
  ``kvmDevice``); none for ``remote`` (peer pods: the VM runs elsewhere, KC virtcontainers/hypervisor.go
  ``RemoteHypervisor``);
- ``/dev/vhost-vsock`` where the VMM talks to the agent over vhost-vsock: QEMU and StratoVirt
  (``generateVMSocket``, which opens ``utils.VHostVSockDevicePath``). Cloud Hypervisor, Firecracker and
  Dragonball use a hybrid vsock (a unix socket, KC virtcontainers/clh.go / fc.go ``GenerateSocket`` return
  ``types.HybridVSock``), so they do not need the device;
- kernel modules ``vhost_vsock`` and ``vhost_net`` loaded (kata-check_amd64.go lists both; kubespray's kata role
  loads them with modprobe and persists them in ``/etc/modules-load.d/``);
- where the Kata tools are installed, their own verdict: ``kata-runtime check --no-network-checks --verbose``
  (kata-check.go: flags ``no-network-checks, n`` and ``verbose, v``; prints "System is capable of running Kata
  Containers", and as root "System can currently create Kata Containers"; exit 1 on failure) or
  ``kata-ctl check no-network-checks`` (KC src/tools/kata-ctl/src/args.rs ``CheckSubCommand``; note that
  ops/check_ops.rs runs only the CPU check for ``no-network-checks``, the module and KVM checks only for ``all``).

Every path is read below ``root`` so that tests run on temporary trees. Plain Python, stdlib only.
"""

import importlib
import os
import shutil
import site
import stat
import subprocess
import sys

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import fileio

KVM = "/dev/kvm"
VHOST_VSOCK = "/dev/vhost-vsock"
# hypervisor -> (device the VMM opens, vsock device the agent connection needs)
HYPERVISORS = {
    "qemu": (KVM, VHOST_VSOCK),
    "stratovirt": (KVM, VHOST_VSOCK),
    "clh": (KVM, None),          # hybrid vsock (clh.go GenerateSocket)
    "firecracker": (KVM, None),  # hybrid vsock (fc.go GenerateSocket)
    "dragonball": (KVM, None),   # hybrid vsock (runtime-rs dragonball)
    "remote": (None, None),      # peer pods: no local VM
}
DEFAULT_MODULES = ("vhost_vsock", "vhost_net")
DEFAULT_LIBRARIES = ("tomlkit", "yaml")
MODULES_LOAD_FILE = "/etc/modules-load.d/katafleet.conf"
KATA_TOOLS = ("kata-runtime", "kata-ctl")  # preferred first: kata-runtime checks modules and KVM offline
KATA_TOOL_DIRS = ("/opt/kata/bin",)
MODPROBE_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
# verdict lines of kata-runtime check (kata-check.go successMessageCreate / successMessageCapable / failMessage)
VERDICTS = (
    "System can currently create Kata Containers",
    "System is capable of running Kata Containers",
    "System is not capable of running Kata Containers",
)
DEVICE_HINTS = {
    KVM: "enable hardware virtualization (VT-x/AMD-V in the firmware, nested virtualization on a VM) and load "
         "kvm_intel or kvm_amd",
    VHOST_VSOCK: "load the vhost_vsock kernel module",
}


def under(root, path):
    """``path`` (absolute) below ``root``."""
    if not root or root == "/":
        return path
    return os.path.join(root, path.lstrip("/"))


def is_host_root(root):
    return not root or os.path.realpath(root) == "/"


def none_if_off(value):
    """Device options: '' / 'none' / None mean "no device to check"."""
    if value is None:
        return None
    value = str(value).strip()
    return None if value.lower() in ("", "none", "null") else value


# ---------- Python libraries the other modules import ----------
def check_libraries(names=DEFAULT_LIBRARIES):
    """{name: {present, version, error}} for this Python (the node's, when run as a module)."""
    out = {}
    for name in names:
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # ImportError, or a broken install raising anything else
            out[name] = dict(present=False, version=None, error="%s: %s" % (type(exc).__name__, exc))
            continue
        version = getattr(mod, "__version__", None)
        out[name] = dict(present=True, version=str(version) if version is not None else None, error=None)
    return out


def python_info():
    try:
        packages = site.getsitepackages()[0]
    except (AttributeError, IndexError):  # virtualenvs of old Pythons
        packages = None
    return dict(executable=sys.executable, version="%d.%d.%d" % sys.version_info[:3], site_packages=packages)


# ---------- kernel modules ----------
def kernel_release(root="/"):
    text = fileio.read_text(under(root, "/proc/sys/kernel/osrelease"))
    if text and text.strip():
        return text.strip()
    return os.uname().release if is_host_root(root) else None


def find_modprobe(root="/"):
    for d in MODPROBE_DIRS:
        p = under(root, os.path.join(d, "modprobe"))
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    if is_host_root(root):
        return shutil.which("modprobe")
    return None


def _builtin(root, release, name):
    text = fileio.read_text(under(root, "/lib/modules/%s/modules.builtin" % release)) if release else None
    if not text:
        return False
    want = name.replace("-", "_") + ".ko"
    return any(os.path.basename(line.strip()).replace("-", "_") == want for line in text.splitlines())


def module_loaded(root, release, name):
    """'loaded' (in /sys/module, as kata-check.go haveKernelModule looks), 'builtin', or None."""
    if os.path.isdir(under(root, "/sys/module/" + name.replace("-", "_"))):
        return "loaded"
    if _builtin(root, release, name):
        return "builtin"
    return None


def run_command(argv, timeout=120, env=None):
    """(rc, stdout, stderr); rc 124 and a message on timeout, 127 when the program cannot be run."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return 124, exc.stdout or "", "timed out after %ss" % timeout
    except OSError as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def load_modules(names, root="/", load=True, check_mode=False, run=run_command):
    """Load each module that is not loaded yet. Returns [{name, state, reason}], state one of
    already_loaded, builtin, loaded, would_load, skipped, failed."""
    release = kernel_release(root)
    modprobe = find_modprobe(root) if load else None
    moddir = under(root, "/lib/modules/%s" % release) if release else None
    skip = []
    if not load:
        skip.append("load_modules is off")
    else:
        if modprobe is None:
            skip.append("no modprobe on this node")
        if moddir is None or not os.path.isdir(moddir):
            skip.append("no /lib/modules/%s on this node (no module files for the running kernel)"
                        % (release or "<unknown release>"))
    out = []
    for name in names:
        have = module_loaded(root, release, name)
        if have:
            out.append(dict(name=name, state="already_loaded" if have == "loaded" else "builtin",
                            reason="/sys/module/%s exists" % name if have == "loaded"
                            else "built into kernel %s" % release))
        elif skip:
            out.append(dict(name=name, state="skipped", reason="; ".join(skip)))
        elif check_mode:
            out.append(dict(name=name, state="would_load", reason="check mode"))
        else:
            rc, _out, err = run([modprobe, name], timeout=60)
            if rc == 0:
                out.append(dict(name=name, state="loaded", reason="%s %s" % (modprobe, name)))
            else:
                out.append(dict(name=name, state="failed",
                                reason="%s %s: exit %d: %s" % (modprobe, name, rc, (err or _out).strip())))
    return out


def modules_load_text(names):
    if not names:
        return None
    return ("# Managed by katafleet (katafleet.kata.kata_prereqs): kernel modules Kata Containers needs,\n"
            "# loaded at boot by systemd-modules-load (modules-load.d(5)).\n" + "".join(n + "\n" for n in names))


def plan_modules_file(names, path):
    """(before, after) of the modules-load.d file; after None means the file goes (no modules wanted)."""
    return fileio.read_text(path), modules_load_text(names)


def apply_modules_file(path, after):
    if after is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    else:
        fileio.atomic_write(path, after, default_mode=0o644)


# ---------- devices ----------
def check_device(root, path, role, loads=()):
    """{role, path, present, reason}. ``loads`` are this run's module results, quoted when the device is missing."""
    full = under(root, path)
    try:
        st = os.stat(full)
    except FileNotFoundError:
        reason = "%s is missing" % path
        hint = DEVICE_HINTS.get(path)
        if hint:
            reason += ": " + hint
        why = ["%s %s (%s)" % (m["name"], m["state"], m["reason"]) for m in loads
               if m["state"] in ("skipped", "failed") and path == VHOST_VSOCK and m["name"] == "vhost_vsock"]
        if why:
            reason += "; " + "; ".join(why)
        return dict(role=role, path=path, present=False, reason=reason)
    except OSError as exc:
        return dict(role=role, path=path, present=False, reason="%s: %s" % (path, exc.strerror))
    if not stat.S_ISCHR(st.st_mode):
        return dict(role=role, path=path, present=False, reason="%s is not a character device" % path)
    return dict(role=role, path=path, present=True, reason="character device %d:%d" % (
        os.major(st.st_rdev), os.minor(st.st_rdev)))


# ---------- the Kata tools' own check ----------
def find_kata_tool(root="/", choice="auto", dirs=KATA_TOOL_DIRS):
    """(tool, path) of the Kata check tool to run, or (None, reason)."""
    if choice == "none":
        return None, "kata_check is none"
    tools = KATA_TOOLS if choice == "auto" else (choice,)
    for tool in tools:
        for d in dirs:
            p = under(root, os.path.join(d, tool))
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return tool, p
        if is_host_root(root):
            p = shutil.which(tool)
            if p:
                return tool, p
    return None, "%s not found in %s%s" % (" or ".join(tools), ", ".join(dirs),
                                           " or PATH" if is_host_root(root) else "")


def kata_check_argv(tool, path, network=False):
    if tool == "kata-runtime":
        return [path, "check"] + ([] if network else ["--no-network-checks"]) + ["--verbose"]
    return [path, "check", "all" if network else "no-network-checks"]


def verdict_of(rc, stdout, stderr):
    """The tool's verdict line when it printed one, else its exit status and last line."""
    text = (stdout or "") + "\n" + (stderr or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if rc == 0:
        for line in VERDICTS[:2]:
            if line in text:
                return line
        return "passed (exit 0)"
    if VERDICTS[2] in text:
        return VERDICTS[2]
    return "failed (exit %d)%s" % (rc, ": " + lines[-1] if lines else "")


def run_kata_check(tool, path, network=False, timeout=120, run=run_command):
    argv = kata_check_argv(tool, path, network)
    rc, out, err = run(argv, timeout=timeout)
    output = ((out or "") + (err or "")).strip()
    return dict(tool=tool, path=path, command=argv, rc=rc, passed=rc == 0, verdict=verdict_of(rc, out, err),
                output=output[-4000:], skipped=False, reason=None)


# ---------- one pass ----------
def inspect(root="/", libraries=DEFAULT_LIBRARIES, host_checks=True, hypervisor="qemu", hypervisor_device="default",
            vsock_device="default", kernel_modules=None, load=True, persist=True, modules_load_file=MODULES_LOAD_FILE,
            kata_check="auto", kata_check_network=False, kata_tool_dirs=KATA_TOOL_DIRS, kata_check_timeout=120,
            check_mode=False, run=run_command):
    """Everything the module reports. Changes (modprobe, the modules-load.d file) only outside check mode.

    Returns a dict: libraries, missing_libraries, python, and with host_checks: hypervisor, kernel_modules,
    modules_load_file {path, changed, before, after}, devices, kata_check, problems, changed."""
    libs = check_libraries(libraries)
    result = dict(libraries=libs, missing_libraries=[n for n, v in libs.items() if not v["present"]],
                  python=python_info(), problems=[], changed=False)
    if not host_checks:
        return result
    if hypervisor not in HYPERVISORS:
        raise ValueError("unknown hypervisor %r (known: %s)" % (hypervisor, ", ".join(sorted(HYPERVISORS))))
    dev_default, vsock_default = HYPERVISORS[hypervisor]
    device = dev_default if hypervisor_device == "default" else none_if_off(hypervisor_device)
    vsock = vsock_default if vsock_device == "default" else none_if_off(vsock_device)
    if kernel_modules is None:
        kernel_modules = [] if hypervisor == "remote" else list(DEFAULT_MODULES)
    result["hypervisor"] = hypervisor
    result["kernel_release"] = kernel_release(root)

    loads = load_modules(kernel_modules, root=root, load=load, check_mode=check_mode, run=run)
    result["kernel_modules"] = loads
    problems = ["kernel module %s: load failed: %s" % (m["name"], m["reason"]) for m in loads if m["state"] == "failed"]
    changed = any(m["state"] in ("loaded", "would_load") for m in loads)

    mfile = dict(path=modules_load_file, changed=False)
    if persist:
        full = under(root, modules_load_file)
        before, after = plan_modules_file(kernel_modules, full)
        mfile.update(before=before, after=after, changed=before != after)
        if mfile["changed"]:
            changed = True
            if not check_mode:
                apply_modules_file(full, after)
    result["modules_load_file"] = mfile

    devices = []
    if device:
        devices.append(check_device(root, device, "hypervisor", loads))
    if vsock:
        devices.append(check_device(root, vsock, "vsock", loads))
    result["devices"] = devices
    problems += [d["reason"] for d in devices if not d["present"]]

    tool, where = find_kata_tool(root, kata_check, kata_tool_dirs)
    if tool is None:
        kc = dict(tool=None, skipped=True, reason=where, passed=None, verdict=None)
    elif check_mode:
        # kata-runtime check modprobes every module it wants that is not loaded (kata-check.go haveKernelModule)
        kc = dict(tool=tool, path=where, skipped=True, passed=None, verdict=None,
                  reason="check mode: %s check may load kernel modules" % tool)
    else:
        kc = run_kata_check(tool, where, kata_check_network, kata_check_timeout, run=run)
        if not kc["passed"]:
            problems.append("%s check: %s" % (tool, kc["verdict"]))
    result["kata_check"] = kc
    result["problems"] = problems
    result["changed"] = changed
    return result


def failure_message(result):
    problems = result["problems"]
    return "this node cannot run Kata Containers (hypervisor %s): %d problem%s: %s" % (
        result.get("hypervisor"), len(problems), "" if len(problems) == 1 else "s",
        "; ".join("(%d) %s" % (i, p) for i, p in enumerate(problems, 1)))
