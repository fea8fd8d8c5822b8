"""The demo's console shows its own progress lines: building the curation head's circuit logs no
numerical fidelity table as a warning (`zkml.pipeline` keeps it at debug), and the generator's
worker processes, spawned after `quiet_libraries`, load their pipeline without diffusers' progress
bar or its advice to install accelerate. (`make demo`'s compile step is the Makefile's `ape
compile`, whose input listing only its own `-v` option silences.)"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.zk_support import HEAD_SEED, SHAPE
from zkml.curation_head import build_curation_head, export_onnx
from zkml.pipeline import Circuit

ROOT = Path(__file__).resolve().parents[3]
FIDELITY = "Numerical Fidelity Report"


def test_building_a_circuit_logs_its_fidelity_table_at_debug_not_as_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.DEBUG, logger="zkml.pipeline")
    onnx = export_onnx(build_curation_head(SHAPE, seed=HEAD_SEED), tmp_path / "head.onnx", batch=1)
    Circuit.build(onnx, tmp_path / "cache", batch=1, embed_dim=SHAPE.embed_dim)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, [f"{r.name}: {r.getMessage()[:200]}" for r in loud]
    kept = [r for r in caplog.records if r.name == "zkml.pipeline" and FIDELITY in r.getMessage()]
    assert len(kept) == 1 and kept[0].levelno == logging.DEBUG, "ezkl still reports it; it is kept, at debug"


LOAD_TWICE = """
import multiprocessing, sys
from agents.models.generator import load_pipeline
from agents.runtime.processes import quiet_libraries

def load(context):
    worker = context.Process(target=load_pipeline, args=(sys.argv[1],))
    worker.start()
    worker.join()
    assert worker.exitcode == 0

context = multiprocessing.get_context("spawn")
print("=== before", file=sys.stderr, flush=True)
load(context)
quiet_libraries()
print("=== after", file=sys.stderr, flush=True)
load(context)
"""


@pytest.mark.slow
def test_workers_spawned_after_quiet_libraries_load_the_generator_without_noise():
    env = {k: v for k, v in os.environ.items() if k not in ("DIFFUSERS_VERBOSITY", "TQDM_DISABLE")}
    env["HF_HUB_OFFLINE"] = "1"
    run = subprocess.run(
        [sys.executable, "-c", LOAD_TWICE, str(ROOT / "models" / "tiny-t2i")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2_000:]
    before, after = run.stderr.split("=== after")
    assert "Loading pipeline components" in before, "the noise this test is about (else it proves nothing)"
    assert "Loading pipeline components" not in after and "accelerate" not in after, after[-2_000:]
