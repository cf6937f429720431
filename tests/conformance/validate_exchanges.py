#!/usr/bin/env python3
"""Validates recorded simulator exchanges against Atlassian's OpenAPI documents.

Usage:
  validate_exchanges.py RECORD.jsonl --flavor cloud|dc [--json]
  validate_exchanges.py --list-operations --flavor cloud|dc [RECORD.jsonl] [--json]
  validate_exchanges.py --map-routes ROUTES.txt --flavor cloud|dc
    ROUTES.txt: one "METHOD /served/path/{param}" a line; prints a JSON object mapping
    each line to the "METHOD template" of the documented operation it serves, or null.

RECORD.jsonl holds one exchange per line, as jira-sim writes them:
  {"method","path","query","status","request_body","response_body","flavor"}

Each exchange is mapped to the operation of the same method and path template in the
Cloud platform document (jira-cloud-openapi.json) or the Data Center one
(jira-server-dc-10.0.0-openapi.json). The documents are looked up in JIRA_OPENAPI_DIR,
else in ../shared/jira/openapi relative to the repository root.

Path handling: the `/ex/jira/{cloudId}` (OAuth gateway) and `/site/{slug}` prefixes are
stripped; `/_sim/`, `/oauth` and `/authorize` exchanges are not Jira REST and are skipped.
On Cloud, `/rest/api/2/...` and `/rest/api/latest/...` are judged against the v3 operation
of the same path (Jira serves both versions with the same resources; only rich-text
fields differ, and those are free-form in the document). On Data Center the document's
paths are relative to `/rest`.

Data Center document corrections: that document is generated from Jira's Java resources
and has two systematic defects, which are corrected (and counted in the report) so that
the real Jira would pass: a `java.lang.Object` value (field values, default values) is
rendered as a bare {"type": "object"} although it may be any JSON value, so such a
schema in a property, `additionalProperties` or `items` position is read as "any value";
and list responses are declared with their element type only, so an array body whose
documented schema is not an array is judged element by element. Also, where a success
status is missing but another success status is documented (201 Created beside 200),
the body is judged against the documented one; and a refused bulk create, for which the
DC document gives no body, is judged by the bulk result schema as on Cloud.

Observed corrections (both flavors, listed in OBSERVED_NULLABLE and OBSERVED_ANY): a few
properties the documents type too narrowly although captured Jira payloads show
otherwise (changelog items with "from": null).

Checks per exchange:
  - the method + path matches a documented operation (else: "no operation");
  - the status is documented for the operation (exact code, `4XX`-style range or
    `default`); an undocumented 2xx/3xx is a violation, an undocumented error status is
    a warning (the documents omit 429 and 5xx almost everywhere);
  - a 2xx body validates against the documented schema, with OpenAPI 3.0 semantics
    (`nullable`, read-only/write-only) and every `$ref` resolved; a 2xx the document
    declares without content must have an empty body;
  - every 4xx/5xx body has Jira's error shape {"errorMessages": [string],
    "errors": {string: string}} (optionally "status": int) and, where the document gives
    a schema for that status, validates against it too; where the document gives that
    exact status a body of its own (bulk create's 400 is the bulk result), that schema
    rules instead. A 401 answered on the OAuth
    gateway path (or recorded with "via": "gateway") may instead carry the gateway's
    {"code": int, "message": string}.

Exit status: 0 when there is no violation, 1 on any violation or unmatched exchange,
2 on a usage or input error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

try:
    from openapi_schema_validator import OAS30ReadValidator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(f"validate_exchanges: missing Python tools ({exc}); run tests/conformance/setup.sh\n")
    sys.exit(2)

SPEC_FILES = {
    "cloud": "jira-cloud-openapi.json",
    "dc": "jira-server-dc-10.0.0-openapi.json",
}
SPEC_URI = "urn:jira-openapi"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
ANNOTATIONS = {"example", "description", "title", "default", "deprecated", "readOnly", "writeOnly", "xml", "externalDocs"}
SKIPPED_PREFIXES = ("/_sim/", "/oauth/", "/authorize")
SKIPPED_EXACT = ("/_sim", "/oauth", "/authorize")
# Jira REST resources that exist in Jira but are not part of the platform OpenAPI
# documents. Exchanges with them are reported under their own pseudo-operation; only
# the error shape of their 4xx/5xx answers can be checked.
OFF_DOCUMENT = {
    "cloud": [
        ("GET", "/rest/webhooks/1.0/webhook", "admin webhooks (Jira webhooks REST API)"),
        ("POST", "/rest/webhooks/1.0/webhook", "admin webhooks (Jira webhooks REST API)"),
        ("GET", "/rest/webhooks/1.0/webhook/{id}", "admin webhooks (Jira webhooks REST API)"),
        ("PUT", "/rest/webhooks/1.0/webhook/{id}", "admin webhooks (Jira webhooks REST API)"),
        ("DELETE", "/rest/webhooks/1.0/webhook/{id}", "admin webhooks (Jira webhooks REST API)"),
    ],
    "dc": [
        ("GET", "/rest/webhooks/1.0/webhook", "admin webhooks (Jira webhooks REST API)"),
        ("POST", "/rest/webhooks/1.0/webhook", "admin webhooks (Jira webhooks REST API)"),
        ("GET", "/rest/webhooks/1.0/webhook/{id}", "admin webhooks (Jira webhooks REST API)"),
        ("PUT", "/rest/webhooks/1.0/webhook/{id}", "admin webhooks (Jira webhooks REST API)"),
        ("DELETE", "/rest/webhooks/1.0/webhook/{id}", "admin webhooks (Jira webhooks REST API)"),
    ],
}
# Properties the documents do not mark nullable although Jira sends null for them, as
# captured responses and webhook payloads show (../shared/jira/fixtures: changelog items
# with "from": null, "fromString": null, "to": null).
OBSERVED_NULLABLE = {
    "cloud": {"ChangeDetails": ["from", "fromString", "to", "toString"]},
    "dc": {"ChangeItemBean": ["from", "fromString", "to", "toString"]},
}
# Properties typed more narrowly than what Jira sends: an entity property's value is any
# JSON value (the DC document types it as a string, from the Java field holding the JSON).
OBSERVED_ANY = {
    "dc": {"EntityPropertyBean": ["value"]},
}
GATEWAY_RE = re.compile(r"^/ex/jira/[^/]+(?=/)")
SITE_RE = re.compile(r"^/site/[^/]+(?=/)")


class UsageError(Exception):
    pass


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent.parent


def openapi_dir() -> Path:
    env = os.environ.get("JIRA_OPENAPI_DIR")
    if env:
        return Path(env)
    return repo_root().parent / "shared" / "jira" / "openapi"


def pointer_escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Operation:
    def __init__(self, method: str, template: str, op: dict[str, Any], off_document: bool = False):
        self.off_document = off_document
        self.method = method.upper()
        self.template = template
        self.op = op
        self.operation_id = op.get("operationId", "")
        self.deprecated = bool(op.get("deprecated"))
        segments = template.strip("/").split("/")
        parts = []
        for seg in segments:
            # A segment may mix literal text and parameters, e.g. "{key}.json".
            pieces = re.split(r"(\{[^}]+\})", seg)
            parts.append("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in pieces if p))
        self.regex = re.compile("^/" + "/".join(parts) + "/?$")
        # Literal segments win over parameters when several templates match.
        self.rank = tuple(0 if "{" in seg else 1 for seg in segments)

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


class Spec:
    def __init__(self, flavor: str):
        if flavor not in SPEC_FILES:
            raise UsageError(f"unknown flavor {flavor!r} (cloud or dc)")
        self.flavor = flavor
        path = openapi_dir() / SPEC_FILES[flavor]
        try:
            with open(path, encoding="utf-8") as fh:
                self.doc = json.load(fh)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc} (set JIRA_OPENAPI_DIR)") from exc
        self.corrections: Counter = Counter()
        if flavor == "dc":
            self._correct_dc(self.doc)
        self._correct_observed(flavor)
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(self.doc, default_specification=DRAFT4)
        )
        self.operations: list[Operation] = []
        for template, item in self.doc.get("paths", {}).items():
            for method in METHODS:
                if isinstance(item.get(method), dict):
                    self.operations.append(Operation(method, template, item[method]))
        self.by_method: dict[str, list[Operation]] = defaultdict(list)
        for op in self.operations:
            self.by_method[op.method].append(op)
        self._validators: dict[str, Any] = {}
        self.off_document = [
            Operation(m, t, {"operationId": f"outside the document: {why}", "responses": {}}, True)
            for m, t, why in OFF_DOCUMENT[flavor]
        ]

    @staticmethod
    def _bare_object(schema: Any) -> bool:
        return (
            isinstance(schema, dict)
            and schema.get("type") == "object"
            and not set(schema) - ANNOTATIONS - {"type"}
        )

    def _correct_dc(self, node: Any) -> None:
        """Reads a bare {"type": "object"} in a value position as "any value"."""
        label = "java.lang.Object value rendered as a bare object schema"
        if isinstance(node, dict):
            for key, child in list(node.items()):
                if key == "properties" and isinstance(child, dict):
                    for name, prop in list(child.items()):
                        if self._bare_object(prop):
                            child[name] = {}
                            self.corrections[label] += 1
                        else:
                            self._correct_dc(prop)
                elif key in ("additionalProperties", "items") and self._bare_object(child):
                    node[key] = {}
                    self.corrections[label] += 1
                else:
                    self._correct_dc(child)
        elif isinstance(node, list):
            for child in node:
                self._correct_dc(child)

    def _correct_observed(self, flavor: str) -> None:
        """Applies OBSERVED_NULLABLE and OBSERVED_ANY to the component schemas."""
        schemas = self.doc.get("components", {}).get("schemas", {})
        for name, props in OBSERVED_NULLABLE.get(flavor, {}).items():
            for prop in props:
                target = schemas.get(name, {}).get("properties", {}).get(prop)
                if isinstance(target, dict):
                    target["nullable"] = True
                    self.corrections[f"{name}.{prop} sent as null by Jira"] += 1
        for name, props in OBSERVED_ANY.get(flavor, {}).items():
            for prop in props:
                properties = schemas.get(name, {}).get("properties", {})
                if prop in properties:
                    properties[prop] = {}
                    self.corrections[f"{name}.{prop} is any JSON value"] += 1

    def resolve(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                return schema
            node: Any = self.doc
            for token in ref[2:].split("/"):
                node = node.get(token.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
            schema = node
            seen += 1
        return schema

    def pointer_target(self, pointer: str) -> Any:
        node: Any = self.doc
        for token in pointer.strip("/").split("/"):
            node = node.get(token.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        return node

    def to_spec_path(self, path: str) -> str:
        """Maps a served path (after prefix stripping) to the document's path space."""
        if self.flavor == "cloud":
            return re.sub(r"^/rest/api/(2|latest)/", "/rest/api/3/", path)
        path = re.sub(r"^/rest/api/latest/", "/rest/api/2/", path)
        if path.startswith("/rest/"):
            return path[len("/rest"):]
        return path

    def match(self, method: str, spec_path: str) -> Operation | None:
        candidates = [op for op in self.by_method.get(method.upper(), []) if op.regex.match(spec_path)]
        if not candidates:
            # Off-document resources are listed by their served path.
            served = spec_path if self.flavor == "cloud" else "/rest" + spec_path
            candidates = [
                op for op in self.off_document
                if op.method == method.upper() and op.regex.match(served)
            ]
        if not candidates:
            return None
        return max(candidates, key=lambda op: op.rank)

    def validator(self, pointer: str):
        v = self._validators.get(pointer)
        if v is None:
            v = OAS30ReadValidator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry)
            self._validators[pointer] = v
        return v

    def response_for(self, op: Operation, status: int) -> tuple[str | None, dict[str, Any] | None]:
        responses = op.op.get("responses", {})
        for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
            if key in responses:
                return key, responses[key]
        return None, None


def schema_pointer(op: Operation, status_key: str, response: dict[str, Any]) -> str | None:
    content = response.get("content") or {}
    for media in ("application/json", "application/json;charset=UTF-8", "*/*"):
        if media in content and "schema" in content[media]:
            break
    else:
        media = next((m for m in content if "json" in m and "schema" in content[m]), None)
        if media is None:
            return None
    return "/".join(
        [
            "",
            "paths",
            pointer_escape(op.template),
            op.method.lower(),
            "responses",
            pointer_escape(status_key),
            "content",
            pointer_escape(media),
            "schema",
        ]
    )


def decode_body(body: Any) -> tuple[bool, Any]:
    """Returns (present, value). Bodies are recorded as JSON values, or strings when the
    response was not JSON."""
    if body is None or body == "":
        return False, None
    if isinstance(body, str):
        try:
            return True, json.loads(body)
        except ValueError:
            return True, body
    return True, body


def error_shape_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return [f"error body is not Jira's error object: {short(body)}"]
    problems = []
    extra = set(body) - {"errorMessages", "errors", "status"}
    if extra:
        problems.append(f"error body has unexpected keys {sorted(extra)}")
    msgs = body.get("errorMessages")
    if not isinstance(msgs, list) or not all(isinstance(m, str) for m in msgs):
        problems.append("error body: errorMessages must be an array of strings")
    errs = body.get("errors")
    if not isinstance(errs, dict) or not all(isinstance(v, str) for v in errs.values()):
        problems.append("error body: errors must be an object of strings")
    if "status" in body and not isinstance(body["status"], int):
        problems.append("error body: status must be an integer")
    if not problems and not msgs and not errs:
        problems.append("error body carries no message (errorMessages and errors both empty)")
    return problems


def is_gateway_error(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"code", "message"}
        and isinstance(body["code"], int)
        and isinstance(body["message"], str)
    )


def short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_error(err) -> str:
    where = "/" + "/".join(str(p) for p in err.absolute_path)
    return f"{where}: {short(err.message, 300)}"


def normalise(raw_path: str) -> tuple[str | None, bool]:
    """Returns (path without prefixes, or None when skipped; whether it came via the gateway)."""
    path = raw_path.split("?", 1)[0]
    if path.startswith(SKIPPED_PREFIXES) or path in SKIPPED_EXACT:
        return None, False
    gateway = False
    m = GATEWAY_RE.match(path)
    if m:
        path = path[m.end():]
        gateway = True
    m = SITE_RE.match(path)
    if m:
        path = path[m.end():]
    if path.startswith(SKIPPED_PREFIXES) or path in SKIPPED_EXACT:
        return None, gateway
    return path, gateway


def check_exchange(spec: Spec, ex: dict[str, Any], report: dict[str, Any]) -> None:
    method = str(ex.get("method", "")).upper()
    raw_path = str(ex.get("path", ""))
    status = ex.get("status")
    if not isinstance(status, int):
        report["violations"].append(
            {"method": method, "path": raw_path, "status": 0, "operation": None,
             "message": f"exchange has no integer status: {short(ex)}"}
        )
        return
    path, gateway = normalise(raw_path)
    # jira-sim records the path after the site prefix and marks gateway exchanges.
    gateway = gateway or ex.get("via") == "gateway"
    if path is None:
        report["skipped"] += 1
        return
    report["exchanges"] += 1
    spec_path = spec.to_spec_path(path)
    op = spec.match(method, spec_path)
    if op is None:
        report["unmatched"][f"{method} {path}"] += 1
        report["violations"].append(
            {"method": method, "path": raw_path, "status": status, "operation": None,
             "message": f"no operation {method} {spec_path} in the {spec.flavor} document"}
        )
        return

    entry = report["operations"].setdefault(
        op.key,
        {"method": op.method, "template": op.template, "operation_id": op.operation_id,
         "deprecated": op.deprecated, "off_document": op.off_document, "count": 0,
         "statuses": Counter(), "violations": 0},
    )
    entry["count"] += 1
    entry["statuses"][str(status)] += 1

    def violation(message: str) -> None:
        entry["violations"] += 1
        report["violations"].append(
            {"method": method, "path": raw_path, "status": status, "operation": op.key, "message": message}
        )

    present, body = decode_body(ex.get("response_body"))
    if op.off_document:
        if status >= 400:
            if not present:
                violation("error response without a body")
            for problem in error_shape_problems(body) if present else []:
                violation(problem)
        return
    status_key, response = spec.response_for(op, status)
    if (spec.flavor == "dc" and status == 400 and op.key == "POST /api/2/issue/bulk"
            and isinstance(body, dict) and "errors" in body and "issues" in body):
        # A refused bulk create answers with the bulk result bean (the Cloud document
        # says so; the DC one documents no body): judge it by the 201 schema.
        status_key, response = "201", op.op["responses"]["201"]
        spec.corrections["bulk create refusal answered with the bulk result bean"] += 1
        errors = list(spec.validator(schema_pointer(op, "201", response)).iter_errors(body))
        for err in errors[:10]:
            violation(f"201 schema (bulk refusal): {format_error(err)}")
        return
    if response is None and spec.flavor == "dc" and 200 <= status < 300:
        # The generated DC document often lists one success status only (200 where Jira
        # answers 201 Created for a new resource): judge by the documented sibling.
        siblings = sorted(k for k in op.op.get("responses", {}) if k.startswith("2"))
        if siblings:
            status_key, response = siblings[0], op.op["responses"][siblings[0]]
            spec.corrections["success status missing beside a documented one"] += 1
    is_error = status >= 400

    if response is None:
        if is_error:
            report["warnings"].append(
                {"method": method, "path": raw_path, "status": status, "operation": op.key,
                 "message": f"status {status} is not documented for {op.key}"}
            )
        else:
            violation(f"status {status} is not documented for {op.key} "
                      f"(documented: {sorted(op.op.get('responses', {}))})")
            return

    if is_error:
        if gateway and status == 401 and is_gateway_error(body):
            return
        if not present:
            violation("error response without a body")
            return
        pointer = schema_pointer(op, status_key, response) if response is not None else None
        declared = spec.resolve(spec.pointer_target(pointer)) if pointer else None
        error_collection = spec.resolve({"$ref": "#/components/schemas/ErrorCollection"})
        if declared and declared != error_collection and status_key == str(status):
            # The document gives this refusal its own body (e.g. bulk create's 400 is the
            # bulk result): that schema rules instead of Jira's usual error shape.
            pass
        else:
            for problem in error_shape_problems(body):
                violation(problem)
        if response is None:
            return

    pointer = schema_pointer(op, status_key, response) if response is not None else None
    if pointer is None:
        if present and not is_error:
            violation(f"the document declares no body for {status}, got {short(body)}")
        return
    if not present:
        if status != 204 and spec.resolve(spec.pointer_target(pointer)) != {}:
            violation(f"empty body where the document has a schema for {status_key}")
        return
    instances = [body]
    if spec.flavor == "dc" and isinstance(body, list):
        declared = spec.resolve(spec.pointer_target(pointer))
        if isinstance(declared, dict) and declared.get("type") != "array" and "items" not in declared:
            spec.corrections["list response declared by its element type"] += 1
            instances = body
    errors = []
    for instance in instances:
        errors.extend(spec.validator(pointer).iter_errors(instance))
    errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
    for err in errors[:10]:
        violation(f"{status_key} schema: {format_error(err)}")
    if len(errors) > 10:
        violation(f"… and {len(errors) - 10} more schema errors")


def load_record(path: Path) -> list[dict[str, Any]]:
    exchanges = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    ex = json.loads(line)
                except ValueError as exc:
                    raise UsageError(f"{path}:{n}: not JSON: {exc}") from exc
                if not isinstance(ex, dict):
                    raise UsageError(f"{path}:{n}: not a JSON object")
                exchanges.append(ex)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    return exchanges


def validate(spec: Spec, exchanges: list[dict[str, Any]]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "flavor": spec.flavor,
        "spec_version": spec.doc.get("info", {}).get("version", ""),
        "exchanges": 0,
        "skipped": 0,
        "operations": {},
        "unmatched": Counter(),
        "violations": [],
        "warnings": [],
    }
    for ex in exchanges:
        check_exchange(spec, ex, report)
    report["corrections"] = spec.corrections
    return report


def report_json(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "flavor": report["flavor"],
        "spec_version": report["spec_version"],
        "corrections": dict(report["corrections"]),
        "exchanges": report["exchanges"],
        "skipped": report["skipped"],
        "operations": [
            {**entry, "statuses": dict(sorted(entry["statuses"].items()))}
            for _, entry in sorted(report["operations"].items())
        ],
        "unmatched": [{"request": k, "count": v} for k, v in sorted(report["unmatched"].items())],
        "violations": report["violations"],
        "warnings": report["warnings"],
    }


def print_report(report: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"flavor {report['flavor']}, document {report['spec_version']}: "
              f"{report['exchanges']} exchanges checked, {report['skipped']} skipped (control/OAuth)\n\n")
    by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in report["violations"]:
        by_op[v["operation"] or ""].append(v)
    for key, entry in sorted(report["operations"].items()):
        statuses = " ".join(f"{s}×{n}" for s, n in sorted(entry["statuses"].items()))
        mark = "FAIL" if entry["violations"] else "ok  "
        dep = " (deprecated)" if entry["deprecated"] else ""
        out.write(f"{mark} {key} [{entry['operation_id']}]{dep}: {statuses}\n")
        for v in by_op.get(key, []):
            out.write(f"       {v['status']} {v['path']}: {v['message']}\n")
    if report["unmatched"]:
        out.write("\nhit with no matching operation in the document:\n")
        for req, n in sorted(report["unmatched"].items()):
            out.write(f"  {req} ×{n}\n")
    other = by_op.get("", [])
    other = [v for v in other if not v["message"].startswith("no operation")]
    for v in other:
        out.write(f"  {v['method']} {v['path']}: {v['message']}\n")
    if report["warnings"]:
        out.write("\nwarnings:\n")
        for w in report["warnings"]:
            out.write(f"  {w['status']} {w['method']} {w['path']}: {w['message']}\n")
    if report["corrections"]:
        out.write("\ndocument corrections applied:\n")
        for what, n in sorted(report["corrections"].items()):
            out.write(f"  {what} ×{n}\n")
    ops = len(report["operations"])
    out.write(f"\n{ops} operations, {len(report['violations'])} violations, "
              f"{len(report['unmatched'])} unmatched requests\n")


def list_operations(spec: Spec, exchanges: list[dict[str, Any]], as_json: bool) -> int:
    report = validate(spec, exchanges) if exchanges else None
    hits = report["operations"] if report else {}
    rows = []
    for op in sorted(spec.operations, key=lambda o: (o.template, o.method)):
        entry = hits.get(op.key)
        rows.append({"method": op.method, "template": op.template, "operation_id": op.operation_id,
                     "deprecated": op.deprecated, "count": entry["count"] if entry else 0})
    if as_json:
        json.dump({"flavor": spec.flavor, "operations": rows,
                   "unmatched": sorted(report["unmatched"]) if report else []}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    covered = [r for r in rows if r["count"]]
    for r in rows:
        if exchanges and not r["count"]:
            continue
        hit = f"  ×{r['count']}" if r["count"] else ""
        dep = " (deprecated)" if r["deprecated"] else ""
        sys.stdout.write(f"{r['method']:7} {r['template']} [{r['operation_id']}]{dep}{hit}\n")
    if exchanges:
        sys.stdout.write(f"\n{len(covered)} of {len(rows)} documented operations covered\n")
        if report and report["unmatched"]:
            sys.stdout.write("served but not documented:\n")
            for req in sorted(report["unmatched"]):
                sys.stdout.write(f"  {req}\n")
    return 0


def map_routes(spec: Spec, routes_file: Path) -> int:
    try:
        lines = [line.strip() for line in routes_file.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise UsageError(f"cannot read {routes_file}: {exc}") from exc
    out: dict[str, str | None] = {}
    for line in lines:
        if not line:
            continue
        method, _, path = line.partition(" ")
        normal, _ = normalise(path)
        if normal is None:
            continue
        op = spec.match(method, spec.to_spec_path(normal))
        out[line] = op.key if op else None
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("record", nargs="?", type=Path, help="JSON-lines recording of exchanges")
    parser.add_argument("--flavor", required=True, choices=sorted(SPEC_FILES))
    parser.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    parser.add_argument("--list-operations", action="store_true",
                        help="list the document's operations (only those the record covers, if given)")
    parser.add_argument("--map-routes", type=Path, metavar="ROUTES.txt",
                        help="map served route templates to documented operations")
    args = parser.parse_args(argv)
    try:
        spec = Spec(args.flavor)
        if args.map_routes:
            return map_routes(spec, args.map_routes)
        exchanges = load_record(args.record) if args.record else []
        if args.list_operations:
            return list_operations(spec, exchanges, args.json)
        if args.record is None:
            raise UsageError("a RECORD.jsonl is required")
        report = validate(spec, exchanges)
    except UsageError as exc:
        sys.stderr.write(f"validate_exchanges: {exc}\n")
        return 2
    if args.json:
        json.dump(report_json(report), sys.stdout)
        sys.stdout.write("\n")
    else:
        print_report(report)
    return 1 if report["violations"] or report["unmatched"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
