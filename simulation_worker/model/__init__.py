"""Cartolog's built-in transport model: a pure library (numpy, scipy, numba).

Entry point: ``run_model(ModelInput, progress) -> ModelResult``. Inputs come from
``load_tntp_folder`` or are built directly; scenario edits go through ``apply_edits``.
"""

# First: importing it points numba's cache at this version of the sources (decision 0118).
from simulation_worker.model import _kernel_cache  # noqa: F401
from simulation_worker.model.assignment import AssignmentResult, ProgressCallback, assign
from simulation_worker.model.edits import (
    AddLink,
    CloseLink,
    Edit,
    SetDemandParameters,
    SetLinkCapacity,
    SetLinkLanes,
    SetLinkSpeed,
    SetZoneJobs,
    SetZonePopulation,
    apply_edits,
)
from simulation_worker.model.errors import ModelInputError
from simulation_worker.model.hashing import content_hash
from simulation_worker.model.indicators import EmissionFactors, Indicators, LinkResults
from simulation_worker.model.network import (
    AssignmentSettings,
    CostParameters,
    ExplicitDemand,
    GravityDemand,
    ModelInput,
    Network,
    Units,
    Zone,
    make_network,
)
from simulation_worker.model.run import ModelResult, run_model
from simulation_worker.model.tntp import TntpCase, load_tntp_folder

__all__ = [
    "AddLink",
    "AssignmentResult",
    "AssignmentSettings",
    "CloseLink",
    "CostParameters",
    "Edit",
    "EmissionFactors",
    "ExplicitDemand",
    "GravityDemand",
    "Indicators",
    "LinkResults",
    "ModelInput",
    "ModelInputError",
    "ModelResult",
    "Network",
    "ProgressCallback",
    "SetDemandParameters",
    "SetLinkCapacity",
    "SetLinkLanes",
    "SetLinkSpeed",
    "SetZoneJobs",
    "SetZonePopulation",
    "TntpCase",
    "Units",
    "Zone",
    "apply_edits",
    "assign",
    "content_hash",
    "load_tntp_folder",
    "make_network",
    "run_model",
]
