#!/usr/bin/env python3
"""What a user would write instead of jira-bridge: the PyPI `jira` library (pycontribs),
used unchanged with its defaults, one call per item, sequentially.

Usage: baseline.py SERVER EMAIL API_TOKEN WORKLOAD INPUT.json

WORKLOAD is W1 (create_issue per ticket, a user search per assigned ticket), W2
(issue(key) per linked ticket to read its status), W3 (add_worklog per time entry) or
W4 (create_issue per epic, then per story with its parent). Prints one JSON line:
{"time_s", "done", "error_count", "errors"}; the caller counts the calls at the
simulator and checks its state.
"""

from __future__ import annotations

import datetime
import json
import sys
import time

from jira import JIRA


def main() -> int:
    server, email, token, workload, path = sys.argv[1:6]
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    jira = JIRA(server=server, basic_auth=(email, token))
    done = 0
    errors: list[str] = []
    statuses: dict[str, str] = {}
    started = time.monotonic()

    def attempt(fn):
        nonlocal done
        try:
            result = fn()
            done += 1
            return result
        except Exception as err:  # the library's errors, after its own retries
            errors.append(str(err)[:300])
            return None

    if workload == "W1":
        for item in spec["items"]:
            fields = {
                "project": {"key": spec["project"]},
                "issuetype": {"name": spec["issue_type"]},
                "summary": item["summary"],
            }

            def create(item=item, fields=fields):
                if item.get("assignee_email"):
                    users = jira.search_users(query=item["assignee_email"])
                    if users:
                        fields["assignee"] = {"accountId": users[0].accountId}
                return jira.create_issue(fields=fields)

            attempt(create)
    elif workload == "W2":
        for key in spec["keys"]:
            issue = attempt(lambda key=key: jira.issue(key, fields="status"))
            if issue is not None:
                statuses[key] = issue.fields.status.name
    elif workload == "W3":
        for entry in spec["entries"]:
            when = datetime.datetime.fromisoformat(entry["started"].replace("Z", "+00:00"))
            attempt(
                lambda entry=entry, when=when: jira.add_worklog(
                    entry["issue"],
                    timeSpentSeconds=str(entry["seconds"]),
                    started=when,
                    comment=entry["comment"],
                )
            )
    elif workload == "W4":
        for epic in spec["epics"]:
            created = attempt(
                lambda epic=epic: jira.create_issue(
                    fields={
                        "project": {"key": spec["project"]},
                        "issuetype": {"name": "Epic"},
                        "summary": epic["summary"],
                    }
                )
            )
            if created is None:
                continue
            for story in epic["stories"]:
                attempt(
                    lambda story=story, parent=created.key: jira.create_issue(
                        fields={
                            "project": {"key": spec["project"]},
                            "issuetype": {"name": "Story"},
                            "summary": story,
                            "parent": {"key": parent},
                        }
                    )
                )
    else:
        print(f"unknown workload {workload}", file=sys.stderr)
        return 2

    out = {
        "time_s": time.monotonic() - started,
        "done": done,
        "error_count": len(errors),
        "errors": errors[:5],
    }
    if statuses:
        out["statuses"] = statuses
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
