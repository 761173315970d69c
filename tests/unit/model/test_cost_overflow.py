"""A BPR power (or volume/capacity) whose time overflows float64 is a clear input error, not
a run that ends "at gap nan" with meaningless flows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulation_worker.model import AssignmentSettings, CostParameters, TntpCase, run_model
from simulation_worker.model.classes import VehicleClass, assign_classes
from simulation_worker.model.cli import main
from simulation_worker.model.errors import CostOverflowError
from tests.unit.model.conftest import network_folder


def _steep(case: TntpCase, algorithm: str, power: float = 1000.0) -> object:
    model = case.model_input(CostParameters(), AssignmentSettings(
        algorithm=algorithm, relative_gap=1e-6, max_iterations=200))
    return replace(model, network=replace(model.network,
                                          bpr_power=np.full(model.network.n_links, power)))


@pytest.mark.parametrize("algorithm", ["b", "bfw", "fw"])
def test_a_time_beyond_float64_names_the_link_and_its_power(sioux_falls: TntpCase,
                                                             algorithm: str) -> None:
    with pytest.raises(CostOverflowError) as error:
        run_model(_steep(sioux_falls, algorithm))  # type: ignore[arg-type]
    message = str(error.value)
    assert message.startswith("travel times overflow at the assigned flows: link ")
    assert "at SiouxFalls_net.tntp line " in message and "BPR power 1000" in message


def test_several_classes_too(sioux_falls: TntpCase) -> None:
    with pytest.raises(CostOverflowError, match=r"SiouxFalls_net.tntp line \d+ carries"):
        assign_classes(_steep(sioux_falls, "b"),  # type: ignore[arg-type]
                       {"car": 0.9 * sioux_falls.trips, "truck": 0.1 * sioux_falls.trips},
                       (VehicleClass("car"), VehicleClass("truck", pce=2.5)))


def test_the_cli_prints_it_in_one_line(tmp_path: object,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = network_folder("SiouxFalls")
    lines = (folder / "SiouxFalls_net.tntp").read_text().splitlines()
    for i, line in enumerate(lines):  # the power column of every link row
        fields = line.split("\t")
        if line.startswith("\t") and line.rstrip().endswith(";") and fields[1].isdigit():
            fields[7] = "4000"
            lines[i] = "\t".join(fields)
    net = "\n".join(lines) + "\n"
    target = tmp_path / "steep"  # type: ignore[operator]
    target.mkdir()
    (target / "SiouxFalls_net.tntp").write_text(net)
    (target / "SiouxFalls_trips.tntp").write_text((folder / "SiouxFalls_trips.tntp").read_text())
    code = main(["model", "run", "--network", str(target)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "travel times overflow at the assigned flows" in err and "BPR power 4000" in err
