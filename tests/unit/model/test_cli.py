"""``cartolog model run`` through the module's own ``main``."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import pytest

from simulation_worker.model import TntpCase
from simulation_worker.model.cli import main
from tests.unit.model.conftest import network_folder


def test_run_prints_summary_and_writes_csv(tmp_path: Path, sioux_falls: TntpCase,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "links.csv"
    code = main(["model", "run", "--network", str(network_folder("SiouxFalls")),
                 "--gap", "1e-6", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    for label in ("relative gap", "beckmann", "iterations", "time", "peak memory"):
        assert label in printed
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["from", "to", "flow", "cost"]
    assert len(rows) == sioux_falls.network.n_links + 1
    assert [(int(r[0]), int(r[1])) for r in rows[1:]] == list(
        zip(sioux_falls.network.link_from.tolist(), sioux_falls.network.link_to.tolist(),
            strict=True))


def test_run_without_node_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["model", "run", "--network", str(network_folder("Winnipeg")),
                 "--algorithm", "b", "--gap", "1e-4"])
    assert code == 0
    assert "Winnipeg" in capsys.readouterr().out


def test_failure_prints_one_line_reason(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["model", "run", "--network", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and "no *_net.tntp" in err


def test_help_describes_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["model", "run", "--help"])
    text = capsys.readouterr().out
    for option in ("--network", "--gap", "--max-iter", "--toll-factor", "--distance-factor",
                   "--algorithm", "--out"):
        assert option in text


def test_gzipped_files_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for kind in ("net", "trips"):
        plain = network_folder("SiouxFalls") / f"SiouxFalls_{kind}.tntp"
        (tmp_path / f"SiouxFalls_{kind}.tntp.gz").write_bytes(gzip.compress(plain.read_bytes()))
    code = main(["model", "run", "--network", str(tmp_path), "--gap", "1e-4"])
    printed = capsys.readouterr().out
    assert code == 0 and "SiouxFalls" in printed and "converged        yes" in printed


def test_a_broken_gzip_file_is_one_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    plain = network_folder("SiouxFalls")
    (tmp_path / "SiouxFalls_net.tntp").write_bytes((plain / "SiouxFalls_net.tntp").read_bytes())
    (tmp_path / "SiouxFalls_trips.tntp.gz").write_bytes(b"\x1f\x8b\x08 not really gzip")
    code = main(["model", "run", "--network", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "SiouxFalls_trips.tntp.gz: not a readable gzip file" in err


def test_a_plain_and_a_gzipped_copy_are_ambiguous(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    plain = network_folder("SiouxFalls")
    for name in ("SiouxFalls_net.tntp", "SiouxFalls_trips.tntp"):
        (tmp_path / name).write_bytes((plain / name).read_bytes())
    (tmp_path / "SiouxFalls_trips.tntp.gz").write_bytes(
        gzip.compress((plain / "SiouxFalls_trips.tntp").read_bytes()))
    code = main(["model", "run", "--network", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "more than one *_trips.tntp[.gz]" in err


def test_progress_goes_to_stderr_only_when_asked_or_on_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(network_folder("SiouxFalls"))
    out = tmp_path / "links.csv"
    assert main(["model", "run", "--network", folder, "--gap", "1e-6", "--progress",
                 "--out", str(out)]) == 0
    shown = capsys.readouterr()
    lines = shown.err.splitlines()
    assert lines[0].endswith(f"reading {folder}")
    assert "read 24 nodes, 76 links, 24 zones" in lines[1]
    gaps = [line for line in lines if " iteration " in line]
    assert gaps and all(re.search(r"^\[ *\d+\.\d s\] iteration +\d+  relative gap \S+$", g)
                        for g in gaps)
    assert lines[-1].endswith(f"writing {out}")
    assert "converged        yes" in shown.out and "[" not in shown.out
    # Not a terminal (pytest's capture), no flag: stderr stays empty.
    assert main(["model", "run", "--network", folder, "--gap", "1e-6"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["model", "run", "--network", folder, "--gap", "1e-6", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_cut_off_zone_is_refused_or_dropped_with_unreachable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sioux Falls without its links into node 1 (2->1, 3->1): zone 1 cannot be reached."""
    folder = tmp_path / "cut"
    folder.mkdir()
    source = network_folder("SiouxFalls")
    lines = (source / "SiouxFalls_net.tntp").read_text().splitlines()
    kept = [line for line in lines if line.split()[:2] not in (["2", "1"], ["3", "1"])]
    assert len(kept) == len(lines) - 2
    (folder / "cut_net.tntp").write_text("\n".join(kept).replace(
        "<NUMBER OF LINKS> 76", "<NUMBER OF LINKS> 74") + "\n")
    (folder / "cut_trips.tntp").write_text((source / "SiouxFalls_trips.tntp").read_text())
    assert main(["model", "run", "--network", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--unreachable drop" in err
    assert "as destination 1 (23 pairs)" in err
    code = main(["model", "run", "--network", str(folder), "--quiet", "--gap", "1e-4",
                 "--unreachable", "drop"])
    out = capsys.readouterr().out
    assert code == 0
    found = re.search(r"^unassigned +23 OD pair\(s\) with (\S+) trips have no path", out,
                      re.MULTILINE)
    assert found is not None, out
    assert float(found.group(1)) > 0
