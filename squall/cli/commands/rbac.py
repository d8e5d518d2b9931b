"""``squall rbac load|roles|role|assignments|permissions``: RBAC definitions."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from squall.cli.client import Client
from squall.cli.output import print_detail, print_json, print_table

__all__ = ["register"]


def cmd_load(args: argparse.Namespace, client: Client) -> int:
    doc = client.post("/api/v1/rbac/load", {})
    if args.json:
        print_json(doc)
    else:
        roles = ", ".join(doc["roles"]) or "none"
        print(f"loaded {doc['directory']}: roles {roles}; {doc['assignments']} assignments")
    return 0


def cmd_roles(args: argparse.Namespace, client: Client) -> int:
    docs = client.get("/api/v1/rbac/roles")
    if args.json:
        print_json(docs)
    else:
        print_table(
            docs,
            [
                ("name", "name"),
                ("system", "system"),
                ("enabled", "enabled"),
                ("description", "description"),
            ],
        )
    return 0


def cmd_role(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(f"/api/v1/rbac/roles/{quote(args.name, safe='')}")
    if args.json:
        print_json(doc)
    else:
        print_detail(sorted(doc.items()))
    return 0


def cmd_assignments(args: argparse.Namespace, client: Client) -> int:
    docs = client.get("/api/v1/rbac/role_assignments", user=args.user, role=args.role)
    if args.json:
        print_json(docs)
    else:
        print_table(docs, [("user", "user"), ("role", "role"), ("source", "source")])
    return 0


def cmd_permissions(args: argparse.Namespace, client: Client) -> int:
    if args.resource_type:
        types = client.get(f"/api/v1/rbac/permission_types/{quote(args.resource_type, safe='')}")
        doc = {args.resource_type: types}
    else:
        doc = client.get("/api/v1/rbac/permission_types")
    if args.json:
        print_json(doc)
    else:
        for resource_type, names in doc.items():
            print(f"{resource_type}: {', '.join(names)}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rbac = sub.add_parser("rbac", help="roles, assignments and permission types")
    rsub = rbac.add_subparsers(dest="verb", required=True, metavar="VERB")

    def jsonable(p: argparse.ArgumentParser) -> None:
        p.add_argument("-j", "--json", action="store_true", help="print JSON")

    load = rsub.add_parser("load", help="re-read $SQUALL_HOME/rbac (roles/, assignments/)")
    jsonable(load)
    load.set_defaults(func=cmd_load)
    roles = rsub.add_parser("roles", help="list roles")
    jsonable(roles)
    roles.set_defaults(func=cmd_roles)
    role = rsub.add_parser("role", help="show a role and its grants")
    role.add_argument("name")
    jsonable(role)
    role.set_defaults(func=cmd_role)
    asg = rsub.add_parser("assignments", help="who holds which roles")
    asg.add_argument("-u", "--user")
    asg.add_argument("-r", "--role")
    jsonable(asg)
    asg.set_defaults(func=cmd_assignments)
    perms = rsub.add_parser("permissions", help="permission types by resource type")
    perms.add_argument("resource_type", nargs="?")
    jsonable(perms)
    perms.set_defaults(func=cmd_permissions)
