"""Run a piece of hostile-input code in a child process that cannot eat the machine.

The child gets an address-space limit (``RLIMIT_AS``) and a wall-clock timeout, so
a regression fails the test (MemoryError, killed, timed out) instead of swapping
or hanging the suite. The child reports the CPU time it spent (not wall time,
which a busy machine stretches) and its peak RSS growth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Enough for the interpreter, PyYAML, jinja2 and the engine, far below a bomb's appetite.
ADDRESS_SPACE = 1536 * 1024 * 1024

_PRELUDE = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
_rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_t0 = time.process_time()
"""

_EPILOGUE = """
_report = {"seconds": time.process_time() - _t0,
           "rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - _rss0) / 1024,
           "result": RESULT}
sys.stdout.write("\\n@@REPORT@@" + json.dumps(_report))
"""


@dataclass
class Outcome:
    seconds: float  # CPU seconds of the child's timed body
    rss_growth_mb: float
    result: object


def run_bounded(setup: str, body: str, *, timeout: float = 60.0) -> Outcome:
    """Run ``setup`` (imports, untimed) then ``body``, which must set ``RESULT`` to
    something JSON-serialisable; fail loudly on timeout, crash or no report."""
    script = "\n".join([
        textwrap.dedent(setup),
        _PRELUDE.format(limit=ADDRESS_SPACE),
        textwrap.dedent(body),
        _EPILOGUE,
    ])
    try:
        done = subprocess.run([sys.executable, "-"], input=script, capture_output=True,
                              text=True, timeout=timeout, check=False, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"did not finish within {timeout} s") from None
    marker = done.stdout.rfind("@@REPORT@@")
    if done.returncode != 0 or marker < 0:
        raise AssertionError(
            f"child failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout[marker + len("@@REPORT@@"):])
    return Outcome(report["seconds"], report["rss_growth_mb"], report["result"])
