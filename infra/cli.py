"""The `cartolog` console script. `cartolog model ...` loads only the model; every other
command loads the operator command of infra/cli_commands.py.

Importing the service (API, database, broker clients) takes over two seconds; a cold
`cartolog model run`, whose numba compilation already takes several, should not pay it
before it has even parsed its arguments (docs/decisions/0115).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cartolog` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["model"]:
        from simulation_worker.model.cli import main as model_main

        return model_main(args)
    from infra.cli_commands import main as commands_main

    return commands_main(args)


if __name__ == "__main__":
    sys.exit(main())
