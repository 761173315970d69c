"""Why an import was refused: every bad feature, each with where it is and why."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidCommand


@dataclass(frozen=True)
class FeatureProblem:
    """One bad feature (or file, index -1) of one layer or file, and the reason."""

    layer: str
    index: int
    reason: str

    def __str__(self) -> str:
        where = self.layer if self.index < 0 else f"{self.layer}[{self.index}]"
        return f"{where}: {self.reason}"


class ImportRejected(InvalidCommand):
    """An upload with bad features: nothing was stored."""

    def __init__(self, message: str, problems: list[FeatureProblem]) -> None:
        super().__init__(message, [str(p) for p in problems])
        self.features = problems
