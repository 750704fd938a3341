"""kata_config logic against every Kata fixture (tests/data/fixtures/kata, copied from upstream)."""

import difflib
import os
import re
import shutil
import stat
import tomllib

import pytest

from helpers import kata_fixtures, sha
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import fileio, kata_config
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

RENDERED = kata_fixtures(rendered=True)
TEMPLATES = kata_fixtures(rendered=False)


def hv_of(path):
    with open(path, "rb") as handle:
        return next(iter(tomllib.load(handle)["hypervisor"]))


def copy(src, tmp_path, name="configuration.toml"):
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return str(dst)


def changed_lines(before, after):
    out = []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line[:2] in ("- ", "+ "):
            out.append(line)
    return out


def lookup(data, table, key):
    for part in table:
        data = data.get(part, {})
    return data.get(key)


def test_fixtures_are_all_there():
    names = {os.path.basename(p) for p in RENDERED + TEMPLATES}
    assert len(RENDERED) == 4 and len(TEMPLATES) == 4, names


# option -> (new value, tables relative to the file's hypervisor)
OPTION_VALUES = {
    "default_vcpus": (2, ["hypervisor"]),
    "default_maxvcpus": (4, ["hypervisor"]),
    "default_memory": (4096, ["hypervisor"]),
    "default_maxmemory": (8192, ["hypervisor"]),
    "memory_slots": (12, ["hypervisor"]),
    "enable_virtio_mem": (True, ["hypervisor"]),
    "static_sandbox_resource_mgmt": (None, ["runtime"]),  # None: flip the current value
    "sandbox_cgroup_only": (True, ["runtime"]),
    "enable_debug": (True, ["runtime", "hypervisor", "agent.kata"]),
    "debug_console_enabled": (True, ["agent.kata"]),
}


@pytest.mark.parametrize("fixture", RENDERED, ids=os.path.basename)
@pytest.mark.parametrize("option", sorted(OPTION_VALUES))
def test_each_option_changes_only_its_lines(fixture, option, tmp_path):
    path = copy(fixture, tmp_path)
    hv = hv_of(path)
    value, tables = OPTION_VALUES[option]
    tables = [("hypervisor", hv) if t == "hypervisor" else tuple(t.split(".")) for t in tables]
    with open(path, "rb") as handle:
        before_data = tomllib.load(handle)
    if value is None:
        value = not bool(lookup(before_data, tables[0], option))
    if option == "enable_virtio_mem" and hv != "qemu":
        with pytest.raises(KatafleetError, match="only honoured by qemu"):
            kata_config.plan(path, options={option: value})
        return
    p = kata_config.plan(path, options={option: value}, host_cpus=8, host_memory_mib=16384)
    after_data = tomllib.loads(p.after)
    for table in tables:
        assert lookup(after_data, table, option) == value
    # nothing else changed, semantically ...
    for table in tables:
        node = after_data
        for part in table:
            node = node[part]
        del node[option]
        node = before_data
        for part in table:
            node = node[part]
        node.pop(option, None)
    assert after_data == before_data
    # ... nor textually: every changed line is a line of this key
    key_line = re.compile(r"^[-+] \s*%s\s*=" % option)
    lines = changed_lines(p.before, p.after)
    assert lines and all(key_line.match(line) for line in lines), lines
    kata_config.apply(p)
    assert open(path).read() == p.after
    again = kata_config.plan(path, options={option: value}, host_cpus=8, host_memory_mib=16384)
    assert not again.changed and again.changes == []


def test_commented_keys_are_inserted_next_to_their_comment(tmp_path):
    fixture = [f for f in RENDERED if "qemu" in f and "3.22" in f][0]
    path = copy(fixture, tmp_path)
    p = kata_config.plan(path, options={"enable_debug": True, "debug_console_enabled": True, "memory_slots": 12},
                         settings={"runtime": {"enable_pprof": True}})
    before, after = p.before.splitlines(), p.after.splitlines()
    assert len(after) == len(before) + 6  # 3x enable_debug, console, slots, pprof; nothing appended elsewhere
    for key, comment in [("enable_debug", "#enable_debug = true"), ("debug_console_enabled", "#debug_console_enabled = true"),
                         ("memory_slots", "#memory_slots = 10"), ("enable_pprof", "# enable_pprof = true")]:
        idxs = [i for i, line in enumerate(after) if line == comment]
        assert idxs, comment
        for i in idxs:
            assert re.match(r"^%s = " % key, after[i + 1]), (key, after[i + 1])
    data = tomllib.loads(p.after)
    assert data["runtime"]["enable_debug"] is True
    assert data["hypervisor"]["qemu"]["enable_debug"] is True
    assert data["agent"]["kata"]["enable_debug"] is True
    assert data["agent"]["kata"]["debug_console_enabled"] is True
    assert data["hypervisor"]["qemu"]["memory_slots"] == 12
    assert data["runtime"]["enable_pprof"] is True


def test_no_space_style_is_kept(tmp_path):
    fixture = [f for f in RENDERED if "3.22" in f][0]
    path = copy(fixture, tmp_path)
    assert "sandbox_cgroup_only=false\n" in open(path).read()
    p = kata_config.plan(path, options={"sandbox_cgroup_only": True})
    assert changed_lines(p.before, p.after) == ["- sandbox_cgroup_only=false", "+ sandbox_cgroup_only=true"]


@pytest.mark.parametrize("fixture", RENDERED, ids=os.path.basename)
def test_annotations_replace_and_add(fixture, tmp_path):
    path = copy(fixture, tmp_path)
    hv = hv_of(path)
    current = tomllib.loads(open(path).read())["hypervisor"][hv]["enable_annotations"]
    p = kata_config.plan(path, annotations=["default_vcpus", current[0]], annotations_mode="add")
    assert tomllib.loads(p.after)["hypervisor"][hv]["enable_annotations"] == current + ["default_vcpus"]
    p = kata_config.plan(path, annotations=["default_memory"])
    assert tomllib.loads(p.after)["hypervisor"][hv]["enable_annotations"] == ["default_memory"]
    assert len(changed_lines(p.before, p.after)) == 2


@pytest.mark.parametrize("template", TEMPLATES, ids=os.path.basename)
def test_invalid_toml_is_reported_with_its_line_and_untouched(template, tmp_path):
    path = copy(template, tmp_path)
    digest = sha(path)
    with pytest.raises(KatafleetError) as err:
        kata_config.plan(path, options={"default_memory": 4096})
    assert path in str(err.value)
    assert re.search(r"not valid TOML at line \d+, column \d+", str(err.value))
    assert sha(path) == digest


BAD_INPUTS = [
    (dict(options={"default_memory": 128}), "default_memory", "below 256 MiB Kata silently uses 2048"),
    (dict(options={"default_memory": 0}), "default_memory", "below 256 MiB"),
    (dict(options={"default_memory": 300000}), "default_memory", "above 256 GiB"),
    (dict(options={"default_vcpus": 6}, settings={"hypervisor": {"default_maxvcpus": 4}}), "default_vcpus",
     "exceeds default_maxvcpus 4"),
    (dict(settings={"hypervisor": {"defualt_memory": 4096}}), "defualt_memory", "did you mean 'default_memory'"),
    (dict(settings={"runtime": {"sandbox_cgroups_only": True}}), "sandbox_cgroups_only", "did you mean 'sandbox_cgroup_only'"),
    (dict(settings={"runtime": {"enable_cpu_memory_hotplug": False}}), "enable_cpu_memory_hotplug",
     "static_sandbox_resource_mgmt"),
    (dict(settings={"runtime": {"sandbox_cgroup_only": "yes"}}), "sandbox_cgroup_only", "must be a boolean"),
    (dict(options={"default_memory": True}), "default_memory", "must be an integer"),
    (dict(options={"default_vcpus": "two"}), "default_vcpus", "must be a number"),
    (dict(settings={"hypervisor": {"enable_annotations": "default_vcpus"}}), "enable_annotations", "list of strings"),
    (dict(settings={"runtim": {"enable_debug": True}}), "runtim", "Kata reads no table"),
    (dict(hypervisor="clh"), "hypervisor", "configures [hypervisor.qemu]"),
    (dict(remove=["enable_debug"]), "enable_debug", "'table.key'"),
]


@pytest.mark.parametrize("kwargs,key,message", BAD_INPUTS, ids=[b[1] + "-" + b[2][:20] for b in BAD_INPUTS])
def test_bad_input_is_refused_and_nothing_written(kwargs, key, message, tmp_path):
    fixture = [f for f in RENDERED if "qemu" in f and "main" in f][0]
    path = copy(fixture, tmp_path)
    digest = sha(path)
    with pytest.raises(KatafleetError) as err:
        p = kata_config.plan(path, **kwargs)
        kata_config.apply(p)
    text = str(err.value)
    assert message in text and key in text
    assert path in text or "hypervisor" == key
    assert sha(path) == digest
    assert os.listdir(tmp_path) == ["configuration.toml"]


def test_several_errors_are_reported_together(tmp_path):
    path = copy(RENDERED[0], tmp_path)
    with pytest.raises(KatafleetError) as err:
        kata_config.plan(path, settings={"runtime": {"enable_debugg": True, "sandbox_cgroup_only": 1}})
    assert "2 problems" in str(err.value)


def test_clamp_warnings_and_effective_values(tmp_path):
    path = copy(RENDERED[0], tmp_path)
    p = kata_config.plan(path, options={"default_vcpus": 16, "default_memory": 300}, host_cpus=4, host_memory_mib=8192)
    assert p.effective["default_vcpus"] == 4
    assert p.effective["default_memory"] == 300
    assert p.effective["default_maxvcpus"] == 4
    assert p.effective["default_maxmemory"] == 8192
    assert any("clamps it to 4" in w for w in p.warnings)


def test_existing_rule_violation_is_a_warning_not_a_blocker(tmp_path):
    path = copy([f for f in RENDERED if "qemu" in f and "main" in f][0], tmp_path)
    text = open(path).read().replace("default_memory = 2048", "default_memory = 100")
    open(path, "w").write(text)
    p = kata_config.plan(path, options={"sandbox_cgroup_only": True})
    assert any("default_memory = 100" in w and "already in the file" in w for w in p.warnings)
    assert p.effective["default_memory"] == 2048  # what Kata silently does


def test_create_from_source(tmp_path):
    source = [f for f in RENDERED if "qemu" in f and "main" in f][0]
    path = str(tmp_path / "etc" / "configuration.toml")
    with pytest.raises(KatafleetError, match="no source"):
        kata_config.plan(path, options={"default_memory": 4096})
    p = kata_config.plan(path, options={"default_memory": 4096}, source=source)
    assert p.before is None and p.changed
    kata_config.apply(p)
    assert tomllib.loads(open(path).read())["hypervisor"]["qemu"]["default_memory"] == 4096
    assert len(changed_lines(open(source).read(), open(path).read())) == 2


def test_mode_and_owner_are_kept_and_backup_goes_elsewhere(tmp_path):
    path = copy(RENDERED[0], tmp_path)
    os.chmod(path, 0o640)
    os.chown(path, 1234, 4321)
    p = kata_config.plan(path, options={"default_memory": 3072})
    backups = tmp_path / "backups"
    b = kata_config.apply(p, backup=True, backup_dir=str(backups))
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (1234, 4321)
    assert os.path.dirname(b) == str(backups) and not b.endswith(".toml")
    assert open(b).read() == p.before
    assert sorted(os.listdir(tmp_path)) == ["backups", "configuration.toml"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = copy(RENDERED[0], tmp_path)
    digest = sha(path)
    p = kata_config.plan(path, options={"default_memory": 3072})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "replace", boom)
    with pytest.raises(OSError):
        kata_config.apply(p)
    assert sha(path) == digest
    assert os.listdir(tmp_path) == ["configuration.toml"]


def test_dropin_mode(tmp_path):
    path = copy([f for f in RENDERED if "qemu" in f and "main" in f][0], tmp_path)
    digest = sha(path)
    os.makedirs(tmp_path / "config.d")
    (tmp_path / "config.d" / "10-site.toml").write_text("[hypervisor.qemu]\ndefault_vcpus = 3\n")
    p = kata_config.plan(path, options={"default_memory": 4096, "enable_debug": True}, dropin="50-katafleet.toml",
                         host_cpus=8, host_memory_mib=16384)
    kata_config.apply(p, backup=True, backup_dir=str(tmp_path / "bk"))
    assert sha(path) == digest
    drop = tmp_path / "config.d" / "50-katafleet.toml"
    data = tomllib.loads(drop.read_text())
    assert data == {"hypervisor": {"qemu": {"default_memory": 4096, "enable_debug": True}},
                    "agent": {"kata": {"enable_debug": True}}, "runtime": {"enable_debug": True}}
    assert p.effective["default_vcpus"] == 3 and p.effective["default_memory"] == 4096
    assert not kata_config.plan(path, options={"default_memory": 4096, "enable_debug": True},
                                dropin="50-katafleet.toml").changed
    # a second run with other settings rewrites the owned drop-in and backs the old one up outside config.d
    p2 = kata_config.plan(path, options={"default_memory": 3072}, dropin="50-katafleet.toml")
    kata_config.apply(p2, backup=True, backup_dir=str(tmp_path / "bk"))
    assert sorted(os.listdir(tmp_path / "config.d")) == ["10-site.toml", "50-katafleet.toml"]
    assert len(os.listdir(tmp_path / "bk")) == 1
    with pytest.raises(KatafleetError, match="cannot remove"):
        kata_config.plan(path, remove=["runtime.enable_debug"], dropin="50-katafleet.toml")
    with pytest.raises(KatafleetError, match="ending in .toml"):
        kata_config.plan(path, options={"default_memory": 3072}, dropin="katafleet.conf")
