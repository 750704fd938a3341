"""kata_containerd logic against every containerd fixture, validated by the real containerd binary."""

import os
import shutil
import subprocess
import tomllib

import pytest

from helpers import fixture_path, sha
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import containerd
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

CTD = shutil.which("containerd")
pytestmark = pytest.mark.skipif(CTD is None, reason="containerd is installed by scripts/setup.sh")
MAJOR = containerd.binary_version(CTD)[0] if CTD else 0

D = fixture_path("containerd")
V = fixture_path("containerd", "validation-1.6")
# fixtures the installed containerd (1.x) reads, and the v3 ones that need 2.x
READABLE = [os.path.join(D, n) for n in ("config-debian-shipped-etc-1.6.toml", "config-default-1.6-debian.toml",
                                         "config-v1-legacy-cri-1.1-era.toml")] + \
           [os.path.join(V, n) for n in ("good.toml", "unknownkey.toml", "unknowntop.toml", "version1.toml")]
V3 = [os.path.join(D, "config-default-2.1.9.toml"), os.path.join(V, "version3.toml"), os.path.join(V, "v3ids.toml")]
INVALID = {"broken.toml": "not valid TOML at line 2", "wrongtype.toml": "Can't convert 5(int64) to string",
           "wrongtype_top.toml": "Can't convert high(string) to int"}

HANDLERS = [
    {"name": "kata-qemu", "runtime_path": "/opt/kata/bin/containerd-shim-kata-v2",
     "config_path": "/opt/kata/share/defaults/kata-containers/configuration-qemu.toml"},
    {"name": "kata-clh", "config_path": "/opt/kata/share/defaults/kata-containers/configuration-clh.toml"},
]


def test_every_fixture_is_classified():
    listed = {os.path.basename(p) for p in READABLE + V3} | set(INVALID) | {"config-dump-1.6-good-kata.toml"}
    present = {n for n in os.listdir(D) if n.endswith(".toml")} | {n for n in os.listdir(V) if n.endswith(".toml")}
    assert present == listed


def place(fixture, tmp_path):
    path = tmp_path / "config.toml"
    shutil.copyfile(fixture, path)
    if os.path.basename(fixture) == "config-dump-1.6-good-kata.toml":
        shutil.copyfile(os.path.join(V, "good.toml"), tmp_path / "good.toml")  # it imports good.toml
    return str(path)


def dumped_runtimes(path):
    out = subprocess.run([CTD, "--config", path, "config", "dump"], capture_output=True, text=True, check=True).stdout
    data = tomllib.loads(out)
    return containerd._get(data, containerd.runtimes_path(data.get("version", 2))), data


def is_subsequence(small, big):
    it = iter(big)
    return all(line in it for line in small)


@pytest.mark.parametrize("fixture", READABLE, ids=os.path.basename)
def test_add_update_remove_validated_by_real_containerd(fixture, tmp_path):
    path = place(fixture, tmp_path)
    original = open(path).read()
    p = containerd.plan(path, HANDLERS)
    assert p.validated_by and p.changed
    containerd.apply(p)
    runtimes, data = dumped_runtimes(path)
    assert runtimes["kata-qemu"]["runtime_type"] == "io.containerd.kata.v2"
    assert runtimes["kata-qemu"]["options"]["ConfigPath"].endswith("configuration-qemu.toml")
    assert runtimes["kata-qemu"]["privileged_without_host_devices"] is True
    assert runtimes["kata-qemu"]["pod_annotations"] == ["io.katacontainers.*"]
    assert "kata-clh" in runtimes
    ok, name = containerd.default_runtime_ok(containerd._get(data, containerd.runtimes_path(2)[:-2]), runtimes)
    assert ok, "CRI default runtime %s lost" % name
    # every original line (comments included) is still there, in order
    assert is_subsequence(original.splitlines(), open(path).read().splitlines())
    # idempotent
    assert not containerd.plan(path, HANDLERS).changed
    # update one field: only its line changes
    before = open(path).read()
    upd = [dict(HANDLERS[0], config_path="/etc/kata-containers/configuration.toml"), HANDLERS[1]]
    p = containerd.plan(path, upd)
    containerd.apply(p)
    changed = list(set(before.splitlines()) ^ set(open(path).read().splitlines()))
    assert len(changed) == 2 and all("ConfigPath" in l for l in changed)
    assert dumped_runtimes(path)[0]["kata-qemu"]["options"]["ConfigPath"] == "/etc/kata-containers/configuration.toml"
    # remove: exactly our stanzas go
    p = containerd.plan(path, [{"name": "kata-clh"}], state="absent")
    containerd.apply(p)
    runtimes, dummy = dumped_runtimes(path)
    assert "kata-clh" not in runtimes and "kata-qemu" in runtimes
    assert not containerd.plan(path, [{"name": "kata-clh"}], state="absent").changed


def test_remove_after_add_restores_the_file_byte_for_byte(tmp_path):
    path = place(os.path.join(D, "config-default-1.6-debian.toml"), tmp_path)
    digest = sha(path)
    containerd.apply(containerd.plan(path, HANDLERS))
    assert sha(path) != digest
    containerd.apply(containerd.plan(path, HANDLERS, state="absent"))
    assert sha(path) == digest


def test_minimal_config_keeps_runc_when_kata_is_added(tmp_path):
    """Debian's shipped config defines no runtime; adding kata alone would replace containerd's built-in map
    and CRI would refuse to start (LAB-NOTES section 4), so runc's built-in stanza is written too."""
    path = place(os.path.join(D, "config-debian-shipped-etc-1.6.toml"), tmp_path)
    containerd.apply(containerd.plan(path, HANDLERS[:1]))
    runtimes, dummy = dumped_runtimes(path)
    assert runtimes["runc"]["runtime_type"] == "io.containerd.runc.v2"
    assert set(runtimes) == {"runc", "kata-qemu"}


@pytest.mark.parametrize("fixture", V3, ids=os.path.basename)
def test_version3_layout(fixture, tmp_path):
    path = place(fixture, tmp_path)
    digest = sha(path)
    if MAJOR < 2:
        with pytest.raises(KatafleetError, match=r"config version 3 is not read by containerd 1\."):
            containerd.plan(path, HANDLERS)
        assert sha(path) == digest
    p = containerd.plan(path, HANDLERS, validate_config=(MAJOR >= 2))
    containerd.apply(p)
    data = tomllib.loads(open(path).read())
    rt = data["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]
    assert rt["kata-qemu"]["runtime_type"] == "io.containerd.kata.v2"
    assert rt["kata-qemu"]["options"]["ConfigPath"].endswith("configuration-qemu.toml")
    assert "plugins.'io.containerd.cri.v1.runtime'" in open(path).read() or "2.1.9" not in fixture
    assert not containerd.plan(path, HANDLERS, validate_config=False).changed


def test_v3_dropin_and_clean_removal(tmp_path):
    path = place(os.path.join(D, "config-default-2.1.9.toml"), tmp_path)
    original = open(path).read()
    p = containerd.plan(path, HANDLERS, dropin="conf.d/katafleet.toml", validate_config=(MAJOR >= 2))
    containerd.apply(p)
    drop = tmp_path / "conf.d" / "katafleet.toml"
    assert tomllib.loads(open(path).read())["imports"] == [str(drop)]
    d = tomllib.loads(drop.read_text())
    assert d["version"] == 3
    assert "kata-clh" in d["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]
    assert not containerd.plan(path, HANDLERS, dropin="conf.d/katafleet.toml", validate_config=False).changed
    p = containerd.plan(path, HANDLERS, state="absent", dropin="conf.d/katafleet.toml", validate_config=(MAJOR >= 2))
    containerd.apply(p)
    assert not drop.exists()
    assert open(path).read() == original  # `imports = []` back, no dangling entry


def test_dropin_refused_on_1x(tmp_path):
    path = place(os.path.join(D, "config-default-1.6-debian.toml"), tmp_path)
    digest = sha(path)
    with pytest.raises(KatafleetError) as err:
        containerd.plan(path, HANDLERS, dropin="conf.d/katafleet.toml")
    assert "replaces a whole plugin section" in str(err.value) and path in str(err.value)
    assert sha(path) == digest and os.listdir(tmp_path) == ["config.toml"]


@pytest.mark.parametrize("name,message", sorted(INVALID.items()))
def test_invalid_files_are_refused_untouched(name, message, tmp_path):
    path = place(os.path.join(V, name), tmp_path)
    digest = sha(path)
    with pytest.raises(KatafleetError) as err:
        containerd.apply(containerd.plan(path, HANDLERS))
    assert message in str(err.value) and path in str(err.value)
    assert sha(path) == digest and os.listdir(tmp_path) == ["config.toml"]


@pytest.mark.parametrize("handler,message", [
    ({"name": "kata_qemu"}, "DNS label"),
    ({"name": "Kata"}, "DNS label"),
    ({"name": "kata", "runtime_type": "kata"}, "runtime_type format"),
    ({"name": "kata", "pod_annotations": "io.katacontainers.*"}, "list of strings"),
    ({"name": "kata", "privileged_without_host_devices": "yes"}, "must be a boolean"),
    ({"name": "kata", "colour": "blue"}, "unknown handler option"),
])
def test_bad_handlers_are_refused(handler, message, tmp_path):
    path = place(os.path.join(D, "config-default-1.6-debian.toml"), tmp_path)
    digest = sha(path)
    with pytest.raises(KatafleetError) as err:
        containerd.plan(path, [handler])
    assert message in str(err.value)
    assert sha(path) == digest


def test_undefined_default_runtime_is_caught(tmp_path):
    path = place(os.path.join(D, "config-default-1.6-debian.toml"), tmp_path)
    containerd.apply(containerd.plan(path, HANDLERS))
    text = open(path).read().replace('default_runtime_name = "runc"', 'default_runtime_name = "kata-clh"')
    open(path, "w").write(text)
    digest = sha(path)
    with pytest.raises(KatafleetError, match="default_runtime_name.*kata-clh"):
        containerd.plan(path, [{"name": "kata-clh"}], state="absent")
    assert sha(path) == digest


def test_import_that_overrides_cri_on_1x_is_explained(tmp_path):
    """config-dump-1.6-good-kata.toml imports good.toml, whose CRI section replaces the main file's wholesale on
    containerd 1.x: the handlers added to the main file never reach the dump, and the module says why."""
    path = place(os.path.join(D, "config-dump-1.6-good-kata.toml"), tmp_path)
    digest = sha(path)
    with pytest.raises(KatafleetError) as err:
        containerd.plan(path, HANDLERS)
    text = str(err.value)
    assert "dropped the runtime" in text and "imports good.toml" in text and "kata-qemu" in text
    assert sha(path) == digest


def test_dangling_import_is_caught(tmp_path):
    path = place(os.path.join(D, "config-dump-1.6-good-kata.toml"), tmp_path)
    os.unlink(tmp_path / "good.toml")
    with pytest.raises(KatafleetError, match="imports a file that does not exist"):
        containerd.plan(path, HANDLERS)


def test_missing_file_is_created_from_containerd_defaults(tmp_path):
    path = str(tmp_path / "etc" / "config.toml")
    containerd.apply(containerd.plan(path, HANDLERS))
    runtimes, dummy = dumped_runtimes(path)
    assert {"runc", "kata-qemu", "kata-clh"} <= set(runtimes)


def test_cross_checks_with_kata_config(tmp_path):
    path = place(os.path.join(D, "config-default-1.6-debian.toml"), tmp_path)
    kata = tmp_path / "kata.toml"
    shutil.copyfile(fixture_path("kata", "configuration-qemu.toml-rendered-main-7c6ba40c-prefix-opt-kata"), kata)
    p = containerd.plan(path, [{"name": "kata", "pod_annotations": [], "config_path": str(kata)},
                               {"name": "kata-fc", "config_path": "/nonexistent/configuration-fc.toml"}])
    assert any("enable_iommu" in w and "does not pass it" in w for w in p.warnings)
    assert any("/nonexistent/configuration-fc.toml does not exist" in w for w in p.warnings)
    p = containerd.plan(path, [{"name": "kata", "config_path": str(kata)}])
    assert not [w for w in p.warnings if "does not pass" in w]


def test_version4_uses_the_cri_v1_runtime_layout(tmp_path):
    """containerd 2.3+ writes `version = 4`; runtimes live where version 3 puts them (no 2.x binary here to validate)."""
    path = tmp_path / "config.toml"
    path.write_text(open(os.path.join(D, "config-default-2.1.9.toml")).read().replace("version = 3", "version = 4", 1))
    p = containerd.plan(str(path), HANDLERS, validate_config=False)
    assert p.version == 4
    containerd.apply(p)
    data = tomllib.loads(path.read_text())
    assert set(data["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]) == {"runc", "kata-qemu", "kata-clh"}
    if MAJOR < 2:
        with pytest.raises(KatafleetError, match="config version 4 is not read by containerd 1"):
            containerd.plan(str(path), [{"name": "kata-fc"}])
