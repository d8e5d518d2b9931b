"""Rule matching throughput: events/s on one core, pure matching (no database).

1,000 rules over 50 trigger types (20 per type, one of them a backstop) with a mix of
operators — equals/iequals, contains/icontains, startswith, regex, matchwildcard,
greaterthan/lessthan, inside, exists/nexists, timediff, search over a list and a few Jinja
patterns — matched against pre-generated events. Only ``RuleSet.match`` is timed.

Usage: ``python bench/rules_bench.py [--quick] [--events N] [--rules N] [--types N]``
(``--quick``: 50,000 events; default 1,000,000). Target: >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from squall.rules import RuleSet, compile_rule

SEVERITIES = ["critical", "warning", "info", "debug", "error"]
SERVICES = ["nginx", "postgres", "redis", "api", "worker", "cron", "kafka", "ldap"]
ENVS = ["prod", "staging", "dev"]
TEAMS = ["core", "web", "data", "sre"]
WORDS = ["disk", "full", "timeout", "latency", "OOM", "restart", "failed", "ok", "high", "cpu"]
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def make_criteria(rnd: random.Random) -> dict[str, Any]:
    """One to three criteria, operators weighted as alerting rules tend to use them."""
    pool: list[tuple[str, dict[str, Any]]] = [
        ("trigger.severity", {"type": "equals", "pattern": rnd.choice(SEVERITIES)}),
        ("trigger.severity", {"type": "equals", "pattern": rnd.choice(SEVERITIES)}),
        ("trigger.labels.env", {"type": "eq", "pattern": rnd.choice(ENVS)}),
        ("trigger.service", {"type": "iequals", "pattern": rnd.choice(SERVICES).upper()}),
        ("trigger.tags", {"type": "contains", "pattern": rnd.choice(WORDS)}),
        ("trigger.message", {"type": "icontains", "pattern": rnd.choice(WORDS)}),
        ("trigger.host", {"type": "startswith", "pattern": f"web-{rnd.randint(0, 9)}"}),
        ("trigger.message", {"type": "regex", "pattern": rf"\b{rnd.choice(WORDS)}\b.*\d+"}),
        ("trigger.host", {"type": "matchwildcard", "pattern": f"*-{rnd.randint(0, 9)}?"}),
        ("trigger.count", {"type": "greaterthan", "pattern": rnd.randint(10, 90)}),
        ("trigger.count", {"type": "lt", "pattern": rnd.randint(10, 90)}),
        ("trigger.labels.team", {"type": "inside", "pattern": rnd.sample(TEAMS, 2)}),
        ("trigger.labels.owner", {"type": rnd.choice(["exists", "nexists"])}),
        ("trigger.ts", {"type": "td_lt", "pattern": rnd.choice([60, 300, 3600])}),
        (
            "trigger.items",
            {
                "type": "search",
                "condition": rnd.choice(["any", "all", "any2any", "all2any"]),
                "pattern": {
                    "item.name": {"type": "eq", "pattern": rnd.choice(WORDS)},
                    "item.value": {"type": "gt", "pattern": rnd.randint(0, 100)},
                },
            },
        ),
        ("trigger.labels.env", {"type": "equals", "pattern": "{{ trigger.expected_env }}"}),
    ]
    weights = [18, 18, 10, 6, 6, 6, 5, 4, 4, 5, 5, 4, 3, 3, 2, 1]
    criteria: dict[str, Any] = {}
    for i in range(rnd.choice([1, 1, 2, 2, 2, 3])):
        key, spec = rnd.choices(pool, weights)[0]
        criteria[f"{key}#{i}"] = spec
    return criteria


def make_rules(n_rules: int, n_types: int, rnd: random.Random) -> list[dict[str, Any]]:
    rules = []
    for i in range(n_rules):
        trigger_type = f"bench.type{i % n_types:02d}"
        backstop = i // n_types == 0  # one backstop rule per trigger type
        rules.append(
            {
                "name": f"rule{i:04d}",
                "pack": "bench",
                "trigger": {"type": trigger_type},
                "criteria": {} if backstop else make_criteria(rnd),
                "type": {"ref": "backstop" if backstop else "standard"},
                "action": {"ref": "core.noop"},
            }
        )
    return rules


def make_event(n_types: int, rnd: random.Random) -> tuple[str, dict[str, Any]]:
    words = rnd.sample(WORDS, 3)
    labels: dict[str, Any] = {"env": rnd.choice(ENVS), "team": rnd.choice(TEAMS)}
    if rnd.random() < 0.3:
        labels["owner"] = "alice"
    payload = {
        "severity": rnd.choice(SEVERITIES),
        "service": rnd.choice(SERVICES),
        "host": f"web-{rnd.randint(0, 99)}",
        "count": rnd.randint(0, 100),
        "tags": words,
        "message": f"{words[0]} {words[1]} on host after {rnd.randint(1, 999)} ms",
        "ts": (NOW - timedelta(seconds=rnd.randint(0, 7200))).isoformat(),
        "labels": labels,
        "items": [{"name": rnd.choice(WORDS), "value": rnd.randint(0, 100)} for _ in range(3)],
        "expected_env": rnd.choice(ENVS),
    }
    return f"bench.type{rnd.randrange(n_types):02d}", payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 events")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--types", type=int, default=50)
    parser.add_argument("--unique", type=int, default=100_000, help="distinct events to cycle")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    n_events = args.events or (50_000 if args.quick else 1_000_000)
    rnd = random.Random(args.seed)

    t0 = time.perf_counter()
    ruleset = RuleSet.build(compile_rule(doc) for doc in make_rules(args.rules, args.types, rnd))
    build_s = time.perf_counter() - t0
    unique = [make_event(args.types, rnd) for _ in range(min(args.unique, n_events))]
    events = (unique * (n_events // len(unique) + 1))[:n_events]

    gc.collect()
    gc.freeze()  # the pre-generated events are not part of what is measured
    matched = errors = backstops = 0
    match = ruleset.match
    start = time.perf_counter()
    for trigger_type, payload in events:
        result = match(trigger_type, payload)
        if result.matched:
            matched += len(result.matched)
            backstops += result.backstop
        if result.errors:
            errors += len(result.errors)
    elapsed = time.perf_counter() - start
    gc.unfreeze()

    results = {
        "events": n_events,
        "rules": args.rules,
        "trigger_types": args.types,
        "compile_s": round(build_s, 3),
        "match_s": round(elapsed, 3),
        "events_per_s": round(n_events / elapsed),
        "us_per_event": round(elapsed / n_events * 1e6, 2),
        "matches_per_event": round(matched / n_events, 3),
        "backstop_share": round(backstops / n_events, 3),
        "errors": errors,
    }
    width = max(len(k) for k in results)
    print("\n== rules matching (one core)")
    for key, value in results.items():
        print(f"  {key.ljust(width)}  {value}")
    print("JSON " + json.dumps({"bench": "rules_matching", **results}))


if __name__ == "__main__":
    main()
