"""Orquesta workflows: spec, inspection, the pure conductor, rehearsal, and action-chain.

Entry points: :func:`compile_workflow` (parse + inspect + compile, cached),
:class:`WorkflowConductor` (one execution; see its module for how an engine drives it),
:func:`inspect_definition`, ``squall.workflow.rehearsal.main`` (``workflow rehearse``),
:func:`parse_chain` / :class:`ChainStepper` (action-chain).
"""

from __future__ import annotations

from squall.workflow.chain import ActionChain, ChainStep, ChainStepper, parse_chain
from squall.workflow.conductor import WorkflowConductor
from squall.workflow.functions import MISSING
from squall.workflow.inspect import inspect_definition, inspect_spec
from squall.workflow.requests import ActionRequest, RerunRequest, TaskRequest
from squall.workflow.spec import WorkflowSpec, parse_workflow
from squall.workflow.state import WorkflowState, apply_changes
from squall.workflow.workflow import Workflow, compile_workflow

__all__ = [
    "MISSING",
    "ActionChain",
    "ActionRequest",
    "ChainStep",
    "ChainStepper",
    "RerunRequest",
    "TaskRequest",
    "Workflow",
    "WorkflowConductor",
    "WorkflowSpec",
    "WorkflowState",
    "apply_changes",
    "compile_workflow",
    "inspect_definition",
    "inspect_spec",
    "parse_chain",
    "parse_workflow",
]
