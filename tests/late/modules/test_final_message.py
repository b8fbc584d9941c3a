from __future__ import annotations

import re
from pathlib import Path

from bootseed.late import __version__
from bootseed.late.modules import final_message
from bootseed.late.modules.base import Frequency, InstanceInfo
from bootseed.late.target import TargetRoot

from testsupport.targetfs import Recorder, make_ctx


def test_default_message_substitutes(tmp_path: Path) -> None:
    rec = Recorder()
    ctx = make_ctx(TargetRoot(tmp_path), {}, recorder=rec,
                   instance=InstanceInfo(instance_id="i-1", source="NoCloud"))
    final_message.MODULE.handle(ctx)
    assert final_message.MODULE.frequency is Frequency.PER_BOOT
    (line,) = rec.console
    assert f"v. {__version__}" in line and "Datasource NoCloud" in line
    assert "Up 1.00 seconds" in line and "$" not in line


def test_custom_message_all_syntaxes(tmp_path: Path) -> None:
    rec = Recorder()
    cfg = {"final_message": "up ${UPTIME} {{ version }} $DATASOURCE $TIMESTAMP $UNKNOWN"}
    final_message.MODULE.handle(make_ctx(TargetRoot(tmp_path), cfg, recorder=rec))
    (line,) = rec.console
    assert re.match(rf"up 1\.00 {re.escape(__version__)} none \w{{3}}, .* \$UNKNOWN$", line)
