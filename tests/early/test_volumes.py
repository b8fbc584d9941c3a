"""bootseed-volume.yaml parsing, the image config switches and the kernel parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.early.blockdev import BlockDevice, matches, mount_table
from bootseed.early.rootswitch import Report, read_image_config
from bootseed.early.volumes import VolumeError, parse_volume_file

VOL = BlockDevice("/dev/vdb", fstype="ext4", label="data", uuid="0e0e-11")


def parse(text: str) -> dict:
    spec = parse_volume_file(text.encode(), VOL, "vdb:/bootseed-volume.yaml")
    return {"action": spec.action, "mountpoint": spec.mountpoint, "options": spec.options,
            "run": spec.run}


def test_volume_file_actions() -> None:
    assert parse("action: root\n")["action"] == "root"
    assert parse("# comment\naction: mount\nmountpoint: /srv/data/\n") == {
        "action": "mount", "mountpoint": "/srv/data", "options": "defaults", "run": None}
    assert parse('{"action": "exec", "run": "setup/run.sh"}')["run"] == "setup/run.sh"


@pytest.mark.parametrize(("text", "message"), [
    ("action: format\n", "action: 'format'; expected one of root, mount, exec"),
    ("mountpoint: /x\n", "action: None"),
    ("action: mount\n", "mountpoint: needs an absolute path other than /, got None"),
    ("action: mount\nmountpoint: /\n", "mountpoint: needs an absolute path other than /"),
    ("action: mount\nmountpoint: srv\n", "needs an absolute path"),
    ("action: mount\nmountpoint: /srv/../etc\n", "needs an absolute path"),
    ("action: mount\nmountpoint: /srv\noptions: a b\n", "options: needs mount options"),
    ("action: exec\n", "run: needs a path relative to the volume's root"),
    ("action: exec\nrun: /bin/sh\n", "run: needs a path relative"),
    ("action: exec\nrun: ../x\n", "run: needs a path relative"),
    ("action: root\nextra: 1\n", "unknown key(s) extra"),
    ("- action: root\n", "expected a mapping"),
    ("action: [root\n", "line 1"),
])
def test_volume_file_errors_name_the_file(text: str, message: str) -> None:
    with pytest.raises(VolumeError) as err:
        parse(text)
    assert str(err.value).startswith("vdb:/bootseed-volume.yaml: ")
    assert message in str(err.value)


def test_matches_label_case_insensitively_uuid_and_path() -> None:
    assert matches(VOL, "LABEL=DATA") and matches(VOL, "label=data")
    assert matches(VOL, "UUID=0E0E-11") and not matches(VOL, "UUID=0e0e-12")
    assert matches(VOL, "/dev/vdb") and not matches(VOL, "/dev/vdc")
    assert not matches(BlockDevice("/dev/vdc"), "LABEL=data")


def test_mount_table_reads_escapes(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / ro,relatime shared:1 - ext4 /dev/sda1 ro\n"
        "30 22 0:40 / /media/my\\040disk rw,nosuid - overlay bootseed-root rw,lowerdir=/x\n")
    entries = mount_table(str(info))
    assert entries[0].read_only and entries[0].majmin == (8, 1)
    assert entries[1].mountpoint == "/media/my disk" and not entries[1].read_only
    assert entries[1].fstype == "overlay" and entries[1].source == "bootseed-root"


def _config(tmp_path: Path, main: str, extra: dict[str, str] | None = None):
    cfg = tmp_path / "etc/bootseed"
    (cfg / "bootseed.cfg.d").mkdir(parents=True, exist_ok=True)
    (cfg / "bootseed.cfg").write_text(main)
    for name, text in (extra or {}).items():
        (cfg / "bootseed.cfg.d" / name).write_text(text)
    report = Report()
    return read_image_config(tmp_path, report), [f"{p.where}: {p.message}"
                                                  for p in report.problems]


def test_image_config_defaults_and_merge(tmp_path: Path) -> None:
    config, problems = _config(tmp_path, "")
    assert (config.consume, config.actions, config.timeout, config.overlay) == (
        True, ("root", "mount", "exec"), 20.0, None)
    # Keys the late agent owns (even YAML the small reader cannot read) do not matter.
    config, problems = _config(
        tmp_path, "users: [{name: a, groups: [b]}]\nvolumes:\n  consume: true\n  actions:\n"
        "    - mount\n  timeout: 5\noverlay: tmpfs\nruncmd:\n - [ls, '-l']\n",
        {"50-x.cfg": "volumes:\n  actions: [exec, mount]\n"})
    assert problems == []
    assert (config.consume, config.actions, config.timeout, config.overlay) == (
        True, ("exec", "mount"), 5.0, "tmpfs")


def test_image_config_errors_are_located_and_fail_closed(tmp_path: Path) -> None:
    config, problems = _config(tmp_path, "a: 1\nvolumes:\n  consume: maybe\n  timeout: 0\n"
                               "  what: 1\noverlay:\n  upper: x\n")
    assert config.consume is True and config.timeout == 20.0 and config.overlay is None
    assert problems == [
        "/etc/bootseed/bootseed.cfg line 2: volumes: unknown key 'what'; ignored",
        "/etc/bootseed/bootseed.cfg line 2: volumes.consume: expected true or false; kept true",
        "/etc/bootseed/bootseed.cfg line 2: volumes.timeout: expected seconds above 0 and at "
        "most 600; kept 20",
        "/etc/bootseed/bootseed.cfg line 6: overlay: expected tmpfs, LABEL=NAME[,mkfs], "
        "UUID=.. or /dev/..; ignored"]
    config, problems = _config(tmp_path, "volumes:\n  consume: true\n   bad: indent\n")
    assert config.consume is False
    assert problems[0].startswith("/etc/bootseed/bootseed.cfg line 3: volumes: ")
    assert problems[0].endswith("volume consumption off until fixed")
