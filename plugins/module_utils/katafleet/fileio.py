"""Atomic file replacement with mode/owner kept, and backups kept away from loaded directories.

One home for these rules, used by every file-editing module:
- the new content goes to a temporary file in the same directory (a dot-file, so neither Kata's
  config.d loader (*.toml) nor the kubelet's static-pod loader (skips dot-files) ever picks it up),
  is fsynced, gets the old file's mode and owner, then replaces the old file with os.replace:
  readers see the old or the new file, never a partial one;
- backups go to a separate directory (default /var/backups/katafleet), never beside the file,
  because the kubelet runs every file in /etc/kubernetes/manifests and Kata loads every
  config.d/*.toml.
"""

import os
import shutil
import tempfile
import time

DEFAULT_BACKUP_DIR = "/var/backups/katafleet"


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def atomic_write(path, text, default_mode=0o644):
    """Replace ``path`` with ``text`` atomically, keeping mode and owner of an existing file."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    try:
        st = os.stat(path)
        mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
    except FileNotFoundError:
        mode, uid, gid = default_mode, None, None
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".katafleet-tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if uid is not None:
            os.chown(tmp, uid, gid)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def backup(path, backup_dir=DEFAULT_BACKUP_DIR):
    """Copy ``path`` into ``backup_dir`` (flattened name + timestamp); returns the backup path."""
    if not os.path.exists(path):
        return None
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    flat = os.path.abspath(path).strip("/").replace("/", "__")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    dest = os.path.join(backup_dir, "%s.%s.%d.bak" % (flat, stamp, os.getpid()))
    shutil.copy2(path, dest)
    return dest


def unified_diff(before, after, path):
    """A unified diff of two texts, for messages and tests (Ansible renders its own from before/after)."""
    import difflib

    return "".join(
        difflib.unified_diff(
            (before or "").splitlines(True), (after or "").splitlines(True), "a" + path, "b" + path
        )
    )
