"""The external-command adapter: JSON in, JSON out, timeout, stderr, malformed output."""

from __future__ import annotations

import json
import sys
import time

import pytest

from simulation_worker.external import (
    ExternalModel,
    ExternalModelFailed,
    ExternalModelTimeout,
    MalformedModelOutput,
    input_document,
)
from simulation_worker.model import TntpCase, content_hash

ECHO_MODEL = """
import json, sys
job = json.load(sys.stdin)
links = [{"id": l["id"], "flow": 1.0, "cost": l["free_flow_time"]} for l in job["network"]["links"]]
print(json.dumps({"schema": "cartolog.model-output/1", "links": links,
                  "indicators": {"total_trips": sum(map(sum, job["demand"]["trips"]))}}))
"""


def _python(code: str, timeout: float = 30.0) -> ExternalModel:
    return ExternalModel([sys.executable, "-c", code], timeout_seconds=timeout)


def test_runs_command_on_job_json(sioux_falls: TntpCase) -> None:
    model = sioux_falls.model_input()
    job = input_document(model, content_hash(model))
    json.dumps(job, allow_nan=False)  # the input document is strict JSON
    result = _python(ECHO_MODEL).run(job)
    assert len(result.link_flows) == sioux_falls.network.n_links
    assert result.indicators["total_trips"] == pytest.approx(360600.0)


def test_timeout_kills_the_command() -> None:
    started = time.monotonic()
    with pytest.raises(ExternalModelTimeout, match=r"timed out after 0\.5 s; stderr: warming up"):
        _python("import sys, time; print('warming up', file=sys.stderr, flush=True); "
                "time.sleep(30)", timeout=0.5).run({})
    assert time.monotonic() - started < 10


def test_failure_carries_stderr() -> None:
    with pytest.raises(ExternalModelFailed, match="status 3; stderr: no licence"):
        _python("import sys; print('no licence', file=sys.stderr); sys.exit(3)").run({})


def test_missing_executable_is_a_failure() -> None:
    with pytest.raises(ExternalModelFailed, match="cannot start"):
        ExternalModel(["/nonexistent/model"]).run({})


@pytest.mark.parametrize(
    ("stdout", "words"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"schema": "other"}', "'schema' must be"),
        ('{"schema": "cartolog.model-output/1"}', "'links' must be a list"),
        ('{"schema": "cartolog.model-output/1", "links": [{"id": "a"}]}', "'id' must be"),
        ('{"schema": "cartolog.model-output/1", "links": [{"id": 1, "flow": -1, "cost": 1}]}',
         "links[0].flow must be >= 0"),
        ('{"schema": "cartolog.model-output/1", "links": [{"id": 1, "flow": 1, "cost": NaN}]}',
         "links[0].cost must be finite"),
        ('{"schema": "cartolog.model-output/1", "links": [{"id": 7, "flow": 1, "cost": 1}]}',
         "unknown link id 7"),
        ('{"schema": "cartolog.model-output/1", "links": [], "indicators": {"vkt": "x"}}',
         "indicators.vkt must be a number"),
    ],
)
def test_malformed_output_is_rejected(stdout: str, words: str) -> None:
    code = f"import sys; sys.stdin.read(); sys.stdout.write({stdout!r})"
    job = {"network": {"links": [{"id": 1}]}}
    with pytest.raises(MalformedModelOutput, match=words.replace("[", r"\[").replace("]", r"\]")):
        _python(code).run(job)
