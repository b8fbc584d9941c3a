"""Figures of the side-by-side benchmarks: read an agent's lab report, medians, ratios.

Pure functions over the guest report's JSON (``image-builder/guest/report.py``),
shared by ``bench/boot_vs_cloudinit.py`` and ``bench/run_all.py`` and tested
in ``tests/bench``. No QEMU, no I/O.
"""

from __future__ import annotations

import base64
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# cloud-init's stage names in status.json, in boot order
CLOUD_INIT_STAGES = ("init-local", "init", "modules-config", "modules-final")


@dataclass
class Expected:
    """What the typical config must have left in the guest (both agents)."""

    hostname: str
    users: dict[str, int]  # name -> number of authorized keys
    files: dict[str, bytes | None]  # path -> exact content, None: must exist
    phone_home_prefix: str


@dataclass
class AgentRun:
    """One boot of one image, as figures."""

    agent: str
    configured_uptime: float | None = None
    multi_user_uptime: float | None = None
    stages: dict[str, float] = field(default_factory=dict)  # the agent's own stage times
    unit_wall: dict[str, float] = field(default_factory=dict)  # systemd: main process run time
    unit_cpu: dict[str, float] = field(default_factory=dict)  # systemd: CPUUsageNSec, seconds
    slowest_modules: dict[str, float] = field(default_factory=dict)  # bootseed: top 5, seconds
    problems: list[str] = field(default_factory=list)
    # Time to SSH (bench/sshprobe.py): guest uptime at the first accepted login, and the
    # host's wall seconds from QEMU's start to it; None when not probed or never accepted.
    ssh_uptime: float | None = None
    ssh_host_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.configured_uptime is not None

    @property
    def wall_total(self) -> float | None:
        return round(sum(self.unit_wall.values()), 3) if self.unit_wall else None

    @property
    def cpu_total(self) -> float | None:
        return round(sum(self.unit_cpu.values()), 3) if self.unit_cpu else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def unit_figures(units: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(wall seconds, CPU seconds) per unit from the report's ``agent_units``.

    Wall is the main process's run time (``ExecMainExitTimestampMonotonic -
    ExecMainStartTimestampMonotonic``); units that did not run are left out.
    """
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for unit, props in units.items():
        if not isinstance(props, dict):
            continue
        start = _number(props.get("ExecMainStartTimestampMonotonic"))
        end = _number(props.get("ExecMainExitTimestampMonotonic"))
        if start and end and end >= start:
            wall[unit] = round((end - start) / 1e6, 3)
        used = props.get("CPUUsageNSec")
        # systemd prints 2^64-1 when it has no figure
        if isinstance(used, int) and 0 <= used < 2**63:
            cpu[unit] = round(used / 1e9, 3)
    return wall, cpu


def cloud_init_stages(status_json: Any) -> dict[str, float]:
    """Stage durations from cloud-init's ``status.json`` (``v1.<stage>.start/finished``)."""
    v1 = status_json.get("v1") if isinstance(status_json, dict) else None
    found: dict[str, float] = {}
    if not isinstance(v1, dict):
        return found
    for name in CLOUD_INIT_STAGES:
        stage = v1.get(name)
        if not isinstance(stage, dict):
            continue
        start, end = _number(stage.get("start")), _number(stage.get("finished"))
        if start is not None and end is not None:
            found[name] = round(end - start, 3)
    return found


def cloud_init_errors(block: dict[str, Any]) -> list[str]:
    """Errors cloud-init recorded itself (result.json, then each stage of status.json)."""
    errors: list[str] = []
    result = block.get("result")
    if not isinstance(result, dict):
        errors.append("cloud-init wrote no /run/cloud-init/result.json")
    else:
        errors += [f"cloud-init: {e}" for e in (result.get("v1") or {}).get("errors") or []]
    status = block.get("status")
    v1 = status.get("v1") if isinstance(status, dict) else None
    if isinstance(v1, dict):
        for name in CLOUD_INIT_STAGES:
            stage = v1.get(name)
            if isinstance(stage, dict):
                errors += [f"cloud-init {name}: {e}" for e in stage.get("errors") or []
                           if f"cloud-init: {e}" not in errors]
    return errors


def check_applied(raw: dict[str, Any], expected: Expected) -> list[str]:
    """What of the typical config is missing from the guest report's probes."""
    missing: list[str] = []
    if raw.get("hostname") != expected.hostname:
        missing.append(f"hostname is {raw.get('hostname')!r}, not {expected.hostname!r}")
    users = {u.get("name"): u for u in raw.get("users") or [] if isinstance(u, dict)}
    for name, keys in expected.users.items():
        entry = users.get(name)
        if entry is None:
            missing.append(f"user {name} missing")
        elif len(entry.get("authorized_keys") or []) != keys:
            missing.append(f"user {name}: {len(entry.get('authorized_keys') or [])} "
                           f"authorized keys, expected {keys}")
    files = raw.get("files") or {}
    for path, content in expected.files.items():
        entry = files.get(path)
        if not isinstance(entry, dict) or "b64" not in entry:
            missing.append(f"file {path} missing")
        elif content is not None and base64.b64decode(entry["b64"]) != content:
            missing.append(f"file {path} has other content")
    return missing


def agent_run(raw: dict[str, Any], expected: Expected | None = None,
              phone_home_paths: Sequence[str] = ()) -> AgentRun:
    """Figures and problems of one boot from its guest report."""
    agent = str(raw.get("agent") or "bootseed")
    run = AgentRun(agent=agent, multi_user_uptime=_number(raw.get("multi_user_reached")))
    if "report_error" in raw:
        run.problems.append(f"guest report failed: {raw['report_error']}")
        return run
    run.unit_wall, run.unit_cpu = unit_figures(raw.get("agent_units") or {})
    if agent == "cloud-init":
        block = raw.get("cloud_init") or {}
        if block.get("timed_out"):
            run.problems.append("cloud-init did not finish before the report timed out")
        run.configured_uptime = _number(block.get("boot_finished_uptime"))
        run.stages = cloud_init_stages(block.get("status"))
        run.problems += cloud_init_errors(block)
    else:
        status = (raw.get("status") or {}).get("json")
        if not isinstance(status, dict):
            run.problems.append("no bootseed status in the report")
        else:
            run.configured_uptime = _number(status.get("boot_finished_uptime"))
            if status.get("state") != "done":
                run.problems.append(f"bootseed state {status.get('state')!r}")
            for module in status.get("modules") or []:
                if isinstance(module, dict) and (module.get("error") or
                                                 module.get("status") in ("error", "failed")):
                    run.problems.append(f"bootseed module {module.get('name')}: "
                                        f"{module.get('error') or 'failed'}")
            durations = [(str(m.get("name")), _number(m.get("duration")))
                         for m in status.get("modules") or [] if isinstance(m, dict)]
            run.slowest_modules = {name: round(d, 3) for name, d in sorted(
                ((n, d) for n, d in durations if d is not None), key=lambda x: -x[1])[:5]}
            for name, info in (status.get("stages") or {}).items():
                duration = _number(info.get("duration")) if isinstance(info, dict) else None
                if duration is not None:
                    run.stages[name] = round(duration, 3)
    if run.configured_uptime is None and not run.problems:
        run.problems.append(f"{agent} reported no finish time")
    if expected is not None:
        run.problems += check_applied(raw, expected)
        if not any(p.startswith(expected.phone_home_prefix) for p in phone_home_paths):
            run.problems.append(f"no phone-home request under {expected.phone_home_prefix}")
    return run


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def ratio(slow: float | None, fast: float | None) -> float | None:
    """How many times ``fast`` is less than ``slow`` (None when either is missing or 0)."""
    if slow is None or fast is None or fast <= 0:
        return None
    return round(slow / fast, 2)


@dataclass
class Pair:
    bootseed: AgentRun
    cloud_init: AgentRun

    @property
    def ok(self) -> bool:
        return self.bootseed.ok and self.cloud_init.ok


def pair_ratios(pairs: Sequence[Pair], attribute: str) -> list[float | None]:
    """cloud-init / bootseed of one figure per pair; pairs where either side failed
    give None (a benchmark where one side failed is not a figure)."""
    values: list[float | None] = []
    for pair in pairs:
        if not pair.ok:
            values.append(None)
            continue
        values.append(ratio(getattr(pair.cloud_init, attribute),
                            getattr(pair.bootseed, attribute)))
    return values


@dataclass(frozen=True)
class Spread:
    """Median, lowest and highest of the values present, and how many there were."""

    median: float | None
    low: float | None
    high: float | None
    n: int

    def text(self, digits: int = 2) -> str:
        if self.median is None or self.low is None or self.high is None:
            return "-"
        if self.n == 1:
            return f"{self.median:.{digits}f} (n=1)"
        low, high = f"{self.low:.{digits}f}", f"{self.high:.{digits}f}"
        return f"{self.median:.{digits}f} ({low}-{high}, n={self.n})"


def spread(values: Sequence[float | None]) -> Spread:
    present = [v for v in values if v is not None]
    if not present:
        return Spread(None, None, None, 0)
    return Spread(median(present), round(min(present), 3), round(max(present), 3), len(present))


def overhead(value: float | None, floor: float | None) -> float | None:
    """What a boot figure adds over its own floor (the same image with its agent off)."""
    if value is None or floor is None:
        return None
    return round(value - floor, 3)


@dataclass(frozen=True)
class Comparison:
    """One figure for both images over the pairs: each side's spread and the spread of
    the per-pair ratio cloud-init / bootseed (a pair missing either side gives none)."""

    figure: str
    bootseed: Spread
    cloud_init: Spread
    ratio: Spread


def compare(figure: str, pairs: Sequence[tuple[float | None, float | None]]) -> Comparison:
    """``pairs``: (bootseed, cloud-init) values of one figure, one tuple per pair."""
    return Comparison(figure, spread([bs for bs, _ in pairs]), spread([ci for _, ci in pairs]),
                      spread([ratio(ci, bs) for bs, ci in pairs]))


# The floor and time-to-SSH figures (issue 24), in report order: id -> label.
FLOOR_FIGURES = {
    "floor_multi_user": "floor: multi-user with the agent off (guest uptime, s)",
    "multi_user": "multi-user, typical seed (guest uptime, s)",
    "multi_user_overhead": "multi-user overhead over the floor (s)",
    "configured_overhead": "configured overhead over the floor (s)",
    "ssh_uptime": "time to SSH (guest uptime at the first accepted login, s)",
    "ssh_overhead": "time to SSH overhead over the floor (s)",
    "ssh_host": "time to SSH (host wall from QEMU's start, s)",
    "hostkeys_wall": "host keys given (ssh_keys): agent wall (units, s)",
    "hostkeys_cpu": "host keys given (ssh_keys): agent CPU (units, s)",
}
SIDES = ("bootseed", "cloud_init")


def _side(block: Any, side: str, key: str) -> float | None:
    entry = block.get(side) if isinstance(block, Mapping) else None
    return _number(entry.get(key)) if isinstance(entry, Mapping) else None


def _floor(row: Mapping[str, Any], side: str) -> float | None:
    block = row.get("floor")
    entry = block.get(side) if isinstance(block, Mapping) else None
    if not isinstance(entry, Mapping) or entry.get("problems"):
        return None
    return _number(entry.get("multi_user_uptime"))


def floor_comparisons(rows: Sequence[Mapping[str, Any]]) -> list[Comparison]:
    """The floor, overhead, time-to-SSH and given-host-keys figures of
    ``boot_vs_cloudinit.run_pairs``'s rows: a typical boot counts when its pair is
    valid, an overhead when the same pair's floor boot of that image reached
    multi-user, the host-key figures when that variant's pair is valid.
    Comparisons with no value on either side are left out (a variant not run)."""
    values: dict[str, list[tuple[float | None, float | None]]] = {k: [] for k in FLOOR_FIGURES}
    for row in rows:
        typical = row if row.get("ok") else {}
        hostkeys = row.get("hostkeys") if isinstance(row.get("hostkeys"), Mapping) else None
        given = hostkeys if hostkeys is not None and hostkeys.get("ok") else {}
        per_side: dict[str, dict[str, float | None]] = {}
        for side in SIDES:
            floor = _floor(row, side)
            multi_user = _side(typical, side, "multi_user_uptime")
            ssh = _side(typical, side, "ssh_uptime")
            per_side[side] = {
                "floor_multi_user": floor,
                "multi_user": multi_user,
                "multi_user_overhead": overhead(multi_user, floor),
                "configured_overhead": overhead(_side(typical, side, "configured_uptime"),
                                                floor),
                "ssh_uptime": ssh,
                "ssh_overhead": overhead(ssh, floor),
                "ssh_host": _side(typical, side, "ssh_host_seconds"),
                "hostkeys_wall": _side(given, side, "wall_total"),
                "hostkeys_cpu": _side(given, side, "cpu_total"),
            }
        for key in FLOOR_FIGURES:
            values[key].append((per_side["bootseed"][key], per_side["cloud_init"][key]))
    found = [compare(key, pairs) for key, pairs in values.items()]
    return [c for c in found if c.bootseed.n or c.cloud_init.n]


def render_comparisons(comparisons: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of ``asdict(Comparison)`` entries: median (lowest-highest, n)."""

    def cell(block: Mapping[str, Any]) -> str:
        return Spread(**block).text()

    lines = ["| figure | bootseed | cloud-init | cloud-init / bootseed |",
             "|---|---:|---:|---:|"]
    for entry in comparisons:
        label = FLOOR_FIGURES.get(str(entry["figure"]), str(entry["figure"]))
        lines.append(f"| {label} | {cell(entry['bootseed'])} | {cell(entry['cloud_init'])} "
                     f"| {cell(entry['ratio'])} |")
    return "\n".join(lines)


def comparison_ratio(comparisons: Sequence[Mapping[str, Any]], figure: str) -> float | None:
    """The median per-pair ratio of one figure, None when it was not measured."""
    for entry in comparisons:
        if entry.get("figure") == figure:
            return _number((entry.get("ratio") or {}).get("median"))
    return None


def target_verdict(measured: float | None, target: float, higher_is_better: bool,
                   unit: str = "") -> str:
    """"met" / "missed by ..." / "not measured" for the report."""
    if measured is None:
        return "not measured"
    if higher_is_better:
        if measured >= target:
            return f"met ({measured:g}{unit} >= {target:g}{unit})"
        return (f"MISSED by {target - measured:.3g}{unit} ({measured:g}{unit} < "
                f"{target:g}{unit}, {measured / target:.0%} of the target)")
    if measured <= target:
        return f"met ({measured:g}{unit} <= {target:g}{unit})"
    return (f"MISSED by {measured - target:.3g}{unit} ({measured:g}{unit} > {target:g}{unit}, "
            f"{measured / target:.2f}x the target)")


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")
_IMPORT_HEADER = "import time: self [us] | cumulative | imported package"


@dataclass
class ImportProfile:
    """One interpreter's ``-X importtime`` output: total self time, heaviest top-level imports."""

    total_s: float
    top: dict[str, float]  # top-level package -> cumulative seconds, heaviest first


def importtime_profiles(text: str, top: int = 8) -> list[ImportProfile]:
    """Each interpreter's ``-X importtime`` block in a console log, in order.

    A block starts at the header line Python prints first; top-level imports
    are the lines indented by one space only.
    """
    profiles: list[ImportProfile] = []
    total = 0
    heads: dict[str, int] = {}
    started = False

    def close() -> None:
        if started and heads:
            heaviest = sorted(heads.items(), key=lambda item: -item[1])[:top]
            profiles.append(ImportProfile(round(total / 1e6, 4),
                                          {name: round(us / 1e6, 4) for name, us in heaviest}))

    for line in text.replace("\r", "\n").splitlines():
        if _IMPORT_HEADER in line:
            close()
            started, total, heads = True, 0, {}
            continue
        match = _IMPORT_LINE.search(line)
        if match is None or not started:
            continue
        total += int(match.group(1))
        if len(match.group(3)) == 0:
            heads[match.group(4)] = heads.get(match.group(4), 0) + int(match.group(2))
    close()
    return profiles
