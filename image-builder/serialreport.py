"""Read the guest's report from its serial console log, and summarise a boot.

The guest (``guest/report.py``) prints one JSON document on a line between
``==== BOOTSEED-REPORT BEGIN ====`` and ``==== BOOTSEED-REPORT END ====``.
Kernel messages can still land in between (printk bypasses the tty layer),
so lines that look like kernel log lines are dropped before parsing.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from bootseed.image_builder.guest.report import BEGIN_MARKER, END_MARKER

_KERNEL_LINE = re.compile(r"^\s*\[\s*\d+\.\d+\]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class ReportError(Exception):
    """The console log has a report that cannot be read."""


@dataclass
class GuestReport:
    """What the guest said about itself; ``raw`` is the whole document."""

    raw: dict[str, Any]

    @property
    def status(self) -> dict[str, Any] | None:
        block = self.raw.get("status") or {}
        value = block.get("json")
        return value if isinstance(value, dict) else None

    @property
    def generator(self) -> str:
        """bootseed-generator's verdict for this boot ("" if it did not run)."""
        return str(self.raw.get("generator") or "")

    @property
    def not_run(self) -> bool:
        """bootseed-generator left bootseed out of this boot (no seed, or off)."""
        return self.status is None and self.generator.startswith("disabled")

    @property
    def status_problem(self) -> str:
        """Why there is no status document, if there is none and should be one."""
        if "report_error" in self.raw:
            return f"the guest's report script failed: {self.raw['report_error']}"
        block = self.raw.get("status") or {}
        if self.status is not None or self.not_run:
            return ""
        detail = block.get("error") or (block.get("stderr") or "").strip().splitlines()[-1:]
        if isinstance(detail, list):
            detail = detail[0] if detail else "no output"
        return f"`bootseed status` exited {block.get('rc')}: {detail}"

    @property
    def state(self) -> str:
        if self.not_run:
            return "not-run"
        return str((self.status or {}).get("state", "unknown"))

    @property
    def modules(self) -> list[dict[str, Any]]:
        value = (self.status or {}).get("modules") or []
        return [m for m in value if isinstance(m, dict)]

    @property
    def module_errors(self) -> list[dict[str, Any]]:
        return [m for m in self.modules
                if m.get("error") or m.get("status") in ("error", "failed")]

    @property
    def problems(self) -> list[Any]:
        return list((self.status or {}).get("problems") or [])

    @property
    def no_seed(self) -> bool:
        if self.not_run:
            return "no seed" in self.generator
        return bool((self.status or {}).get("no_seed"))

    @property
    def configured(self) -> bool:
        """Done without module errors, or rightly left out: nothing to configure."""
        if self.not_run:
            return self.no_seed
        return self.state == "done" and not self.module_errors

    @property
    def hostname(self) -> str:
        return str(self.raw.get("hostname", ""))

    def user(self, name: str) -> dict[str, Any] | None:
        for entry in self.raw.get("users") or []:
            if entry.get("name") == name:
                return dict(entry)
        return None

    def file_bytes(self, path: str) -> bytes | None:
        entry = (self.raw.get("files") or {}).get(path)
        if not entry or "b64" not in entry:
            return None
        return base64.b64decode(entry["b64"])

    def file_entry(self, path: str) -> dict[str, Any] | None:
        entry = (self.raw.get("files") or {}).get(path)
        return dict(entry) if isinstance(entry, dict) else None

    @property
    def addresses(self) -> list[str]:
        found = []
        for link in self.raw.get("addresses") or []:
            for info in link.get("addr_info") or []:
                found.append(f"{link.get('ifname')}:{info.get('local')}/{info.get('prefixlen')}")
        return found


def extract_reports(console: str) -> list[GuestReport]:
    """Every report in a console log, in order (a reboot test may have several)."""
    text = _ANSI.sub("", console.replace("\r", ""))
    reports: list[GuestReport] = []
    pos = 0
    while True:
        start = text.find(BEGIN_MARKER, pos)
        if start < 0:
            return reports
        end = text.find(END_MARKER, start)
        if end < 0:
            raise ReportError("the console log has a report start marker but no end marker "
                              "(the guest stopped while reporting)")
        body = text[start + len(BEGIN_MARKER) : end]
        lines = [ln for ln in body.split("\n") if ln.strip() and not _KERNEL_LINE.match(ln)]
        try:
            document = json.loads("".join(lines))
        except ValueError as exc:
            raise ReportError(f"the guest's report is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ReportError("the guest's report is not a JSON object")
        reports.append(GuestReport(raw=document))
        pos = end + len(END_MARKER)


@dataclass
class BootSummary:
    """The short human report of one boot."""

    verdict: str
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([self.verdict, *self.lines])
