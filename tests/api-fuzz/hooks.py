"""Checks added to schemathesis' own for jira-bridge (loaded via SCHEMATHESIS_HOOKS).

- `problem_json_errors`: every 4xx/5xx is an RFC 9457 problem document of ours
  (`application/problem+json`, `type` `urn:jira-bridge:problem:…`, `status` equal to the
  response's, `title` and `detail` strings).
- `no_foreign_tenant_data`: no response carries any of the values in
  `JB_FUZZ_FOREIGN` (comma-separated): another tenant's ids and a marker string in
  its objects' names. The run's key belongs to a different tenant.
- `no_secret_echo`: no response carries a value of `JB_FUZZ_SECRETS` (the Jira token
  of the connections, the admin key).
"""

import json
import os

import schemathesis

PREFIX = "urn:jira-bridge:problem:"


def _values(name):
    return [v for v in os.environ.get(name, "").split(",") if v]


FOREIGN = _values("JB_FUZZ_FOREIGN")
SECRETS = _values("JB_FUZZ_SECRETS")


def _header(response, name):
    values = response.headers.get(name.lower()) or []
    return values[0] if values else ""


@schemathesis.check
def problem_json_errors(ctx, response, case):
    if response.status_code < 400:
        return None
    content_type = _header(response, "content-type")
    if content_type.split(";")[0].strip() != "application/problem+json":
        raise AssertionError(
            f"{response.status_code} answered as {content_type!r}, not application/problem+json"
        )
    try:
        problem = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"problem body is not JSON: {e}") from None
    if not isinstance(problem, dict):
        raise AssertionError("problem body is not an object")
    if not str(problem.get("type", "")).startswith(PREFIX):
        raise AssertionError(f"problem type {problem.get('type')!r} is not {PREFIX}…")
    if problem.get("status") != response.status_code:
        raise AssertionError(
            f"problem status {problem.get('status')!r} differs from {response.status_code}"
        )
    for field in ("title", "detail"):
        if not isinstance(problem.get(field), str):
            raise AssertionError(f"problem has no string {field!r}")
    return None


def _scan(response, needles, what):
    body = response.content.decode("utf-8", "replace")
    for needle in needles:
        if needle in body:
            raise AssertionError(f"the response carries {what}: {needle!r}")


@schemathesis.check
def no_foreign_tenant_data(ctx, response, case):
    # A path that names a foreign id may be echoed back in a 404's detail.
    path = case.formatted_path if hasattr(case, "formatted_path") else ""
    _scan(response, [v for v in FOREIGN if v not in path], "another tenant's data")
    return None


@schemathesis.check
def no_secret_echo(ctx, response, case):
    _scan(response, SECRETS, "a secret")
    return None
