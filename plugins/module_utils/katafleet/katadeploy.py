"""Is kata-deploy managing this node's files? katafleet does not fight it: it refuses to touch them and
offers explicit adoption instead.

What kata-deploy writes and marks (kata-containers tools/packaging/kata-deploy/binary/src, read at
7c6ba40c, 2026-08):
- config.rs ``Config::new``/``get_containerd_paths``: its containerd drop-in
  ``{dest_dir}/containerd/config.d/kata-deploy.toml`` (dest_dir default ``/opt/kata``, ``/opt/kata-<suffix>``
  for a multi-install), listed in the main config's ``imports``; on containerd >= 2.2 with a conf.d import
  ``/etc/containerd/conf.d/kata-deploy[-<suffix>].toml``; k0s ``/etc/containerd/containerd.d/kata-deploy.toml``;
  K3s/RKE2 ``<template dir>/config.toml.d|config-v3.toml.d/kata-deploy.toml``; the backup ``<config>.bak``.
- runtime/containerd.rs ``configure_containerd``/``created_marker_file``: without drop-ins it edits the main
  config in place and, when it created the file, leaves the marker ``<config>.kata-deploy-created``;
  ``configure_containerd_runtime`` names handlers ``kata-<shim>`` with ``options.ConfigPath`` =
  ``{dest_dir}/share/defaults/kata-containers[/runtime-rs]/runtimes/<shim>/configuration-<shim>.toml``
  (utils/system.rs ``get_kata_containers_config_path``), custom runtimes under ``custom-runtimes/<handler>/``.
- artifacts/install.rs ``setup_runtime_directory``/``add_kata_deploy_warning``: per-shim copies under
  ``runtimes/<shim>/`` starting with "IMPORTANT: This file is managed by kata-deploy", the shipped
  ``configuration-<shim>.toml`` replaced by a symlink into ``runtimes/``, and ``config.d/`` drop-ins
  (10-installation-prefix, 20-debug, 22-k0s-kubelet-root, 30-kernel-params, 50-user-overrides, 50-overrides).
- main.rs: node labels ``katacontainers.io/kata-runtime`` and ``kata-deploy.katacontainers.io/<instance>``
  (the cluster side; see roles/kata_runtimeclass/tasks/uninstall.yml).
"""

import glob
import os
import re

try:
    import tomllib
except ImportError:  # pragma: no cover
    tomllib = None

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import fileio

SRC = "kata-containers tools/packaging/kata-deploy/binary/src/"
WARNING_HEADER = "IMPORTANT: This file is managed by kata-deploy"
CONFIG_PATH_RX = re.compile(r"/share/defaults/kata-containers/(runtime-rs/)?(runtimes|custom-runtimes)/")
KATA_DROPINS = ("10-installation-prefix.toml", "20-debug.toml", "22-k0s-kubelet-root.toml", "30-kernel-params.toml",
                "50-user-overrides.toml", "50-overrides.toml")
ADOPT_HINT = ("katafleet does not fight kata-deploy for these files. Remove kata-deploy from this node first "
              "(helm uninstall, or its cleanup job) and run again, or let katafleet take them over explicitly with "
              "%s=true (only once kata-deploy's DaemonSet no longer runs on this node, or it rewrites them)")


def _runtimes(data):
    for plugin in ("cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"):
        node = ((data.get("plugins") or {}).get(plugin) or {}).get("containerd") or {}
        rts = node.get("runtimes")
        if isinstance(rts, dict):
            return rts
    return {}


def containerd_findings(config_path, text=None, ignore_handlers=(), ignore_files=(), kata_prefixes=("/opt/kata*",)):
    """kata-deploy's traces around one containerd config: a list of sentences naming the file and the
    upstream source that writes it. ``ignore_handlers``: handlers katafleet owns (or adopted)."""
    found = []
    directory = os.path.dirname(os.path.abspath(config_path))
    if text is None:
        text = fileio.read_text(config_path)
    marker = config_path + ".kata-deploy-created"
    if os.path.exists(marker):
        found.append("%s: kata-deploy's marker that it created %s (%sruntime/containerd.rs created_marker_file)"
                     % (marker, config_path, SRC))
    candidates = [os.path.join(directory, "conf.d", "kata-deploy*.toml"),
                  os.path.join(directory, "containerd.d", "kata-deploy.toml"),
                  os.path.join(directory, "config.toml.d", "kata-deploy.toml"),
                  os.path.join(directory, "config-v3.toml.d", "kata-deploy.toml")]
    candidates += [os.path.join(p, "containerd", "config.d", "kata-deploy.toml") for p in kata_prefixes]
    for pattern in candidates:
        for path in sorted(glob.glob(pattern)):
            if path not in ignore_files:
                found.append("%s: kata-deploy's containerd drop-in (%sconfig.rs get_containerd_paths)" % (path, SRC))
    data = {}
    if text:
        try:
            data = tomllib.loads(text)
        except ValueError:
            data = {}
    for imp in data.get("imports") or []:
        if isinstance(imp, str) and os.path.basename(imp).startswith("kata-deploy") and imp not in ignore_files:
            found.append("%s: imports %s, kata-deploy's drop-in (%sruntime/containerd.rs configure_containerd)"
                         % (config_path, imp, SRC))
    for name, rt in sorted(_runtimes(data).items()):
        if name in ignore_handlers or not isinstance(rt, dict):
            continue
        cfg = (rt.get("options") or {}).get("ConfigPath") if isinstance(rt.get("options"), dict) else None
        if isinstance(cfg, str) and CONFIG_PATH_RX.search(cfg):
            found.append("%s: handler %s points at kata-deploy's per-shim config %s (%sruntime/containerd.rs "
                         "configure_containerd_runtime)" % (config_path, name, cfg, SRC))
    return found


def kata_findings(target, owned_paths=()):
    """kata-deploy's traces on the Kata config file katafleet is about to write (or beside it)."""
    found = []
    if target in owned_paths:
        return found
    real = os.path.realpath(target)
    shown = target if real == target else "%s (-> %s)" % (target, real)
    if CONFIG_PATH_RX.search(real):
        found.append("%s: kata-deploy's per-shim config directory (%sartifacts/install.rs setup_runtime_directory)"
                     % (shown, SRC))
    text = fileio.read_text(real) if os.path.isfile(real) else None
    if text and WARNING_HEADER in text[:2000]:
        found.append("%s: carries kata-deploy's header %r (%sartifacts/install.rs add_kata_deploy_warning)"
                     % (shown, WARNING_HEADER, SRC))
    ddir = os.path.join(os.path.dirname(real), "config.d")
    # the drop-in names alone are common words (20-debug.toml): evidence only beside a kata-deploy file
    for name in KATA_DROPINS if found else ():
        p = os.path.join(ddir, name)
        if os.path.exists(p) and p not in owned_paths:
            found.append("%s: kata-deploy's Kata drop-in (%sartifacts/install.rs write_common_drop_ins)" % (p, SRC))
    return found
