"""Shared helpers of the benchmark scripts: the built-in model, the reference package in its own virtual
environment, and interleaved timing."""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("_landscaper_driver.py")
SETUP_HINT = (
    "python -m venv .venv-landscaper && .venv-landscaper/bin/python -m pip install torch==2.13.0 "
    "landscaper==1.3.1   (run in the repository root; landscaper pins numpy<2 and networkx<3)"
)


@functools.lru_cache(maxsize=1)
def reference_python() -> str | None:
    """Python of the virtual environment holding landscaper 1.3.1 (env LANDSCAPER_PYTHON or .venv-landscaper)."""
    cand = os.environ.get("LANDSCAPER_PYTHON") or str(ROOT / ".venv-landscaper" / "bin" / "python")
    if not Path(cand).exists():
        return None
    ok = subprocess.run([cand, "-c", "import landscaper"], capture_output=True)
    return cand if ok.returncode == 0 else None


def run_reference(task: dict, timeout: float = 900) -> dict:
    """Run one task of the driver in the reference environment; returns its JSON answer."""
    py = reference_python()
    if py is None:
        raise RuntimeError(f"landscaper 1.3.1 is not installed; set it up with: {SETUP_HINT}")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(task, fh)
        path = fh.name
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}
        env = {k: v for k, v in env.items() if v != ""}
        out = subprocess.run([py, str(DRIVER), path], capture_output=True, text=True, timeout=timeout, env=env)
    finally:
        os.unlink(path)
    if out.returncode != 0:
        raise RuntimeError(f"reference driver failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def machine() -> str:
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"
