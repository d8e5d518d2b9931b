"""Static inspection: syntax, semantics, expressions, context; and refusal at compile time."""

from __future__ import annotations

import pytest

from squall.errors import WorkflowError
from squall.workflow import compile_workflow, inspect_definition

VALID = """
version: 1.0
input:
  - name
tasks:
  task1:
    action: core.echo message=<% ctx().name %>
    next:
      - when: <% succeeded() %>
        publish: greeting=<% result() %>
        do: task2
  task2:
    action: core.echo message=<% ctx(greeting) %>
output:
  - greeting: <% ctx().greeting %>
"""


def test_valid_definition_has_no_errors() -> None:
    assert inspect_definition(VALID) == {}


def test_syntax_errors_name_the_path() -> None:
    errors = inspect_definition(
        """
version: 1.0
tasks:
  task1:
    action: core.noop
    bogus: 1
    next:
      - when: <% succeeded() %>
        do: task2
        oops: true
  task2:
    join: sometimes
    action: core.noop
"""
    )
    syntax = errors["syntax"]
    paths = {e["spec_path"] for e in syntax}
    assert {"tasks.task1", "tasks.task1.next[0]", "tasks.task2.join"} <= paths
    assert any("bogus" in e["message"] for e in syntax)
    assert all(e["schema_path"] for e in syntax)


def test_missing_tasks_is_a_syntax_error() -> None:
    errors = inspect_definition("version: 1.0\ndescription: nothing to do\n")
    assert errors["syntax"][0]["message"] == "'tasks' is a required property"


def test_semantic_errors() -> None:
    errors = inspect_definition(
        """
version: 1.0
tasks:
  task1:
    action: core.noop
    next:
      - do: task9
  noop:
    action: core.noop
  task3:
    with: <% ctx(xs) %>
"""
    )
    messages = [e["message"] for e in errors["semantics"]]
    assert 'The task "task9" is not defined.' in messages
    assert 'The task name "noop" is reserved with special function.' in messages
    assert "The action property is required for with items task." in messages
    undefined = next(e for e in errors["semantics"] if "task9" in e["message"])
    assert undefined["spec_path"] == "tasks.task1.next[0].do"


def test_no_start_task_when_everything_is_a_cycle() -> None:
    errors = inspect_definition(
        """
version: 1.0
tasks:
  a:
    action: core.noop
    next: [{do: b}]
  b:
    action: core.noop
    next: [{do: a}]
"""
    )
    assert errors["semantics"][0]["message"].startswith("Unable to identify any tasks to start")


def test_ambiguous_join_after_nested_split_is_unreachable() -> None:
    errors = inspect_definition(
        """
version: 1.0
tasks:
  t1:
    action: core.noop
    next: [{do: "t2, t3"}]
  t2:
    action: core.noop
    next: [{do: t4}]
  t3:
    action: core.noop
    next: [{do: t4}]
  t4:
    action: core.noop
    next: [{do: t6}]
  t5:
    action: core.noop
    next: [{do: t6}]
  t6:
    join: all
    action: core.noop
"""
    )
    assert any('The join task "t6" is unreachable' in e["message"] for e in errors["semantics"])


def test_expression_syntax_errors_carry_expression_and_path() -> None:
    errors = inspect_definition(
        """
version: 1.0
tasks:
  task1:
    action: core.noop
    next:
      - when: <% succeeded( %>
        publish:
          - x: "{{ ctx( }}"
        do: task2
  task2:
    action: core.echo message=<% item(a), item(b) %>
"""
    )
    by_path = {e["spec_path"]: e for e in errors["expressions"]}
    when = by_path["tasks.task1.next[0].when"]
    assert when["type"] == "yaql" and when["expression"] == "<% succeeded( %>"
    assert (
        when["schema_path"]
        == "properties.tasks.patternProperties.^\\w+$.properties.next.items.properties.when"
    )
    assert by_path["tasks.task1.next[0].publish"]["type"] == "jinja"
    assert "unexpected ','" in by_path["tasks.task2.input"]["message"]


def test_context_errors_for_variables_used_before_assignment() -> None:
    errors = inspect_definition(
        """
version: 1.0
input:
  - a
vars:
  - b: <% ctx().a %>
  - c: <% ctx(undefined_var) %>
tasks:
  task1:
    action: core.echo message=<% ctx().later %>
    next:
      - publish: later=<% result() %>
        do: task2
  task2:
    action: core.echo
    input:
      message: <% ctx().later %> <% ctx().__private %>
"""
    )
    context = errors["context"]
    messages = {(e["spec_path"], e["message"]) for e in context}
    assert ("vars[1]", 'Variable "undefined_var" is referenced before assignment.') in messages
    assert ("tasks.task1.input", 'Variable "later" is referenced before assignment.') in messages
    assert not any(p == "tasks.task2.input" and "later" in m for p, m in messages)
    assert any("private variable" in m for _, m in messages)
    assert all(e["type"] == "yaql" and e["expression"] for e in context)


def test_app_context_names_are_known() -> None:
    definition = """
version: 1.0
tasks:
  task1:
    action: core.echo message=<% ctx().st2.user %>
"""
    assert "context" in inspect_definition(definition)
    assert inspect_definition(definition, app_ctx={"st2": {}}) == {}


def test_compile_refuses_invalid_definitions_with_issues() -> None:
    with pytest.raises(WorkflowError) as info:
        compile_workflow(
            """
version: 1.0
tasks:
  task1:
    action: core.noop
    next:
      - when: <% succeeded( %>
        do: missing
"""
        )
    error = info.value
    assert error.message == "Workflow definition failed inspection."
    paths = {issue.path for issue in error.issues}
    assert {"tasks.task1.next[0].when", "tasks.task1.next[0].do"} <= paths
    assert "[expressions]" in str(error) and "[semantics]" in str(error)


def test_compile_refuses_non_yaml() -> None:
    with pytest.raises(WorkflowError, match="not valid YAML"):
        compile_workflow("tasks: [unclosed")
