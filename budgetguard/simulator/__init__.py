"""A faithful stand-in for the OpenAI admin API (usage, costs, directory and the controls:
spend limits, spend alerts, model permissions, hosted tools, rate limits), for demos and tests."""

from budgetguard.simulator.api import Response, SimulatedAPI
from budgetguard.simulator.faults import FAULT_KINDS, Fault, FaultPlan
from budgetguard.simulator.org import Organisation
from budgetguard.simulator.server import SimulatorServer, build_api

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultPlan",
    "Organisation",
    "Response",
    "SimulatedAPI",
    "SimulatorServer",
    "build_api",
]
