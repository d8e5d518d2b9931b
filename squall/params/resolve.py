"""Resolving an execution's parameters: defaults, templates, casting, validation.

:func:`compile_parameters` prepares an action's merged parameter specs once (types, schema
validators, templated defaults and their dependencies); :meth:`CompiledParameters.resolve`
then runs per execution. With no templates involved it is a handful of dict operations and
type checks; jsonschema runs only for schemas beyond type/enum, or to word an error.

Rules (StackStorm's):

* an unknown provided parameter is an error; so is providing an immutable parameter with a
  value other than its default;
* templates in defaults *and* provided values are rendered in the sandbox with ``context``,
  the other parameters by name (a parameter without a value is ``None``) and ``st2kv``, in
  dependency order; a cycle is an error showing the cycle (``a -> b -> a``);
* parameters named in ``shell_params`` (a shell runner's ``cmd``) are rendered shell-safe;
* rendered strings are cast to the declared type; ``{{ x | use_none }}`` gives ``None``;
* missing required parameters are reported together; values are validated (type, enum,
  the rest of the JSON schema) with errors naming the parameter.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft4Validator

from squall.errors import DomainError, Issue, ParameterError
from squall.expr.jinja import compile_template, is_template
from squall.expr.kv import KeyRef, KVSnapshot
from squall.expr.shell import render_shell_safe
from squall.params.coerce import cast_rendered_value
from squall.params.specs import parameter_types, schema_of, secret_parameter_names

__all__ = [
    "MASK",
    "CompiledParameters",
    "ResolvedParameters",
    "compile_parameters",
    "mask_secrets",
    "resolve_parameters",
]

MASK = "********"
_SIMPLE_SCHEMA_KEYS = frozenset({"type", "enum", "description", "title"})
_TYPE_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


@dataclass(frozen=True)
class ResolvedParameters:
    """The outcome of resolution.

    Attributes:
        runner: Values of the runner's parameters.
        action: Values of the action's own parameters.
        all: Both together.
        secret_names: Parameters to mask wherever values are shown.
        missed_kv: Datastore keys templates asked for that the snapshot did not have (fetch
            them and resolve again; see :func:`squall.expr.kv.render_with_kv`).
    """

    runner: dict[str, Any]
    action: dict[str, Any]
    all: dict[str, Any]
    secret_names: frozenset[str]
    missed_kv: frozenset[KeyRef] = frozenset()

    def masked(self) -> dict[str, Any]:
        """All values with secrets replaced by ``********``."""
        return mask_secrets(self.all, self.secret_names)


def mask_secrets(values: Mapping[str, Any], secret_names: Collection[str]) -> dict[str, Any]:
    """Copy of ``values`` with each secret parameter's value replaced by ``********``."""
    return {k: (MASK if k in secret_names else v) for k, v in values.items()}


def _walk_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        out: list[str] = []
        for k, v in value.items():
            out.extend(_walk_strings(k))
            out.extend(_walk_strings(v))
        return out
    if isinstance(value, list | tuple):
        return [s for item in value for s in _walk_strings(item)]
    return []


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping | list | tuple):
        return any(is_template(s) for s in _walk_strings(value))
    return False


def _referenced(value: Any, param_names: frozenset[str]) -> frozenset[str]:
    names: set[str] = set()
    for text in _walk_strings(value):
        if is_template(text):
            names |= compile_template(text).referenced_names
    return frozenset(names & param_names)


class _Param:
    """One parameter, prepared for fast resolution."""

    __slots__ = ("check", "default", "has_default", "name", "spec", "types", "validator")

    def __init__(self, name: str, spec: Mapping[str, Any]) -> None:
        self.name = name
        self.spec = spec
        self.types = parameter_types(spec)
        self.has_default = "default" in spec
        self.default = spec.get("default")
        schema = schema_of(spec)
        self.validator = Draft4Validator(schema)
        self.check: Any = None
        if set(schema) <= _SIMPLE_SCHEMA_KEYS and all(t in _TYPE_CHECKS for t in self.types):
            checks = [_TYPE_CHECKS[t] for t in self.types]
            enum = schema.get("enum")

            def check(value: Any) -> bool:
                if checks and not any(c(value) for c in checks):
                    return False
                return enum is None or value in enum

            self.check = check

    def issues(self, value: Any) -> list[Issue]:
        if self.check is not None and self.check(value):
            return []
        return [
            Issue(
                f"parameter '{self.name}': {error.message}",
                path=".".join(["parameters", self.name, *(str(p) for p in error.absolute_path)]),
            )
            for error in self.validator.iter_errors(value)
        ]


class CompiledParameters:
    """An action's parameters prepared once; :meth:`resolve` runs per execution.

    Args:
        specs: Merged parameter specs (see :func:`~squall.params.merge_parameter_specs`);
            treated as immutable once compiled.
        runner_param_names: Which parameters belong to the runner.
        shell_params: Parameters rendered shell-safe (a shell runner's ``cmd``).
        action_ref: ``pack.name``, for error messages.
    """

    def __init__(
        self,
        specs: Mapping[str, Mapping[str, Any]],
        *,
        runner_param_names: Collection[str] = (),
        shell_params: Collection[str] = (),
        action_ref: str | None = None,
    ) -> None:
        self.specs = specs
        self.action_ref = action_ref
        self._params = {name: _Param(name, spec) for name, spec in specs.items()}
        self.names = frozenset(self._params)
        self.runner_names = frozenset(runner_param_names) & self.names
        self.shell_params = frozenset(shell_params)
        self.secret_names = secret_parameter_names(specs)
        self._required = tuple(n for n, s in specs.items() if s.get("required") is True)
        self._immutable = {n: s.get("default") for n, s in specs.items() if s.get("immutable")}
        self._defaults = {n: p.default for n, p in self._params.items() if p.has_default}
        self._unset = dict.fromkeys(self.names)
        self._templated_defaults = frozenset(
            n for n, v in self._defaults.items() if _has_template(v)
        )

    def _where(self) -> str:
        return f" for action {self.action_ref}" if self.action_ref else ""

    def _check_provided(self, provided: Mapping[str, Any]) -> None:
        unknown = [name for name in provided if name not in self._params]
        if unknown:
            raise ParameterError(
                f"unexpected parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(n) for n in unknown)}{self._where()}; "
                f"known: {', '.join(sorted(self.names)) or '(none)'}",
                issues=[Issue("unknown parameter", path=f"parameters.{n}") for n in unknown],
            )
        issues = [
            Issue(
                f"parameter '{name}' is immutable and cannot be changed from its default "
                f"{self._immutable[name]!r}",
                path=f"parameters.{name}",
            )
            for name, value in provided.items()
            if name in self._immutable and value is not None and value != self._immutable[name]
        ]
        if issues:
            raise ParameterError(f"immutable parameters were given{self._where()}", issues=issues)

    def _order(self, templated: dict[str, frozenset[str]]) -> list[str]:
        """Templated parameters in dependency order; raises on a cycle."""
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = visiting, 2 = done
        stack: list[str] = []

        def visit(name: str) -> None:
            state[name] = 1
            stack.append(name)
            for dep in sorted(templated[name]):
                if dep not in templated:
                    continue
                if state.get(dep) == 1:
                    cycle = [*stack[stack.index(dep) :], dep]
                    raise ParameterError(
                        f"parameters reference each other in a cycle{self._where()}: "
                        + " -> ".join(cycle),
                        issues=[Issue("dependency cycle", path=f"parameters.{n}") for n in cycle],
                    )
                if dep not in state:
                    visit(dep)
            stack.pop()
            state[name] = 2
            order.append(name)

        for name in templated:
            if name not in state:
                visit(name)
        return order

    def _render(self, name: str, raw: Any, ctx: dict[str, Any]) -> Any:
        param = self._params[name]
        try:
            if isinstance(raw, str):
                if name in self.shell_params:
                    return render_shell_safe(raw, ctx)
                value = compile_template(raw).render_native(ctx, keep_none_marker=True)
                if value is None and param.types == ("string",):
                    # StackStorm renders None into a string parameter as "None"; only
                    # `| use_none` passes a real null.
                    return "None"
                return value
            return _render_nested(raw, ctx)
        except DomainError as exc:
            raise ParameterError(
                f"parameter '{name}'{self._where()}: {exc.message}",
                issues=[Issue(exc.message, path=f"parameters.{name}")],
            ) from exc

    def resolve(
        self,
        provided: Mapping[str, Any],
        *,
        context: Mapping[str, Any],
        kv: KVSnapshot | None = None,
    ) -> ResolvedParameters:
        """Resolve one execution's parameters.

        Args:
            provided: Values given by the user, rule or workflow.
            context: Template variables (``trigger``, ``action_context``, ``config_context``…).
            kv: Datastore snapshot for ``st2kv`` (``missed_kv`` reports what it lacked).

        Raises:
            ParameterError: unknown, immutable, unrenderable, missing or invalid parameters.
        """
        self._check_provided(provided)
        values = {**self._defaults, **provided}
        for name, value in provided.items():
            if value is None and name in self._defaults:
                values[name] = self._defaults[name]  # an explicit null means "use the default"
        templated_names = [
            n
            for n, v in values.items()
            if (n in self._templated_defaults and v is self._defaults[n])
            or (n in provided and _has_template(v))
        ]
        if templated_names:
            templated = {n: _referenced(values[n], self.names) for n in templated_names}
            ctx: dict[str, Any] = dict(context)
            if kv is not None:
                ctx["st2kv"] = kv.root
            ctx.update(self._unset)
            ctx.update((n, v) for n, v in values.items() if n not in templated)
            for name in self._order(templated):
                rendered = self._render(name, values[name], ctx)
                values[name] = ctx[name] = cast_rendered_value(self._params[name].spec, rendered)
        for name, value in values.items():
            if isinstance(value, str) and name not in templated_names:
                spec = self._params[name].spec
                if spec.get("type", "string") != "string":
                    values[name] = cast_rendered_value(spec, value)
        missing = [n for n in self._required if values.get(n) is None]
        if missing:
            raise ParameterError(
                f"missing required parameter{'s' if len(missing) > 1 else ''}{self._where()}: "
                + ", ".join(missing),
                issues=[Issue("is required", path=f"parameters.{n}") for n in missing],
            )
        issues: list[Issue] = []
        for name, value in values.items():
            if value is not None:
                issues.extend(self._params[name].issues(value))
        if issues:
            raise ParameterError(f"invalid parameters{self._where()}", issues=issues)
        runner = {n: v for n, v in values.items() if n in self.runner_names}
        action = {n: v for n, v in values.items() if n not in self.runner_names}
        return ResolvedParameters(
            runner=runner,
            action=action,
            all=values,
            secret_names=self.secret_names,
            missed_kv=kv.missed if kv is not None else frozenset(),
        )


def _render_nested(value: Any, ctx: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return compile_template(value).render_native(ctx) if is_template(value) else value
    if isinstance(value, Mapping):
        return {_render_nested(k, ctx): _render_nested(v, ctx) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render_nested(v, ctx) for v in value]
    return value


def compile_parameters(
    specs: Mapping[str, Mapping[str, Any]],
    *,
    runner_param_names: Collection[str] = (),
    shell_params: Collection[str] = (),
    action_ref: str | None = None,
) -> CompiledParameters:
    """Prepare ``specs`` for fast repeated resolution (see :class:`CompiledParameters`)."""
    return CompiledParameters(
        specs,
        runner_param_names=runner_param_names,
        shell_params=shell_params,
        action_ref=action_ref,
    )


_CacheKey = tuple[int, frozenset[str], frozenset[str], str | None]
_CACHE: OrderedDict[_CacheKey, CompiledParameters] = OrderedDict()
_CACHE_SIZE = 512


def resolve_parameters(
    specs: Mapping[str, Mapping[str, Any]],
    provided: Mapping[str, Any],
    *,
    context: Mapping[str, Any],
    kv: KVSnapshot | None,
    runner_param_names: Collection[str],
    shell_params: Collection[str] = (),
    action_ref: str | None = None,
) -> ResolvedParameters:
    """Resolve parameters (function form of :class:`CompiledParameters`).

    Compiled specs are cached by the identity of ``specs`` (do not mutate a specs mapping
    after resolving with it). See :meth:`CompiledParameters.resolve` for the rules.

    Raises:
        ParameterError: unknown, immutable, unrenderable, missing or invalid parameters.
    """
    key = (id(specs), frozenset(runner_param_names), frozenset(shell_params), action_ref)
    compiled = _CACHE.get(key)
    if compiled is None or compiled.specs is not specs:
        compiled = compile_parameters(
            specs,
            runner_param_names=runner_param_names,
            shell_params=shell_params,
            action_ref=action_ref,
        )
        _CACHE[key] = compiled
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return compiled.resolve(provided, context=context, kv=kv)
