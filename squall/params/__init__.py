"""Action parameters: merging runner and action specs, checks, CLI coercion, resolution."""

from __future__ import annotations

from squall.params.coerce import cast_rendered_value, coerce_cli_value
from squall.params.resolve import (
    MASK,
    CompiledParameters,
    ResolvedParameters,
    compile_parameters,
    mask_secrets,
    resolve_parameters,
)
from squall.params.specs import (
    merge_parameter_specs,
    parameter_types,
    schema_of,
    secret_parameter_names,
    validate_parameter_specs,
)

__all__ = [
    "MASK",
    "CompiledParameters",
    "ResolvedParameters",
    "cast_rendered_value",
    "coerce_cli_value",
    "compile_parameters",
    "mask_secrets",
    "merge_parameter_specs",
    "parameter_types",
    "resolve_parameters",
    "schema_of",
    "secret_parameter_names",
    "validate_parameter_specs",
]
