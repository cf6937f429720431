#!/usr/bin/env python3
"""Drives a Jira with the PyPI `jira` library (pycontribs), used unchanged.

Usage:
  pyjira_smoke.py --server URL --flavor cloud --user EMAIL --token API_TOKEN [--project OPS]
  pyjira_smoke.py --server URL --flavor dc --pat PERSONAL_ACCESS_TOKEN [--project OPS]

Creates issues singly and in bulk (one bulk element invalid on purpose), reads create
metadata, searches (on Cloud the library must use /search/jql, with nextPageToken
paging), transitions an issue, and adds and deletes worklogs, asserting the results
(keys, counts, statuses) at each step. Exit status 0 when every assertion holds.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import uuid
import warnings

from jira import JIRA, JIRAError


def step(message: str) -> None:
    print(f"- {message}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def create_metadata(j: JIRA, cloud: bool, project: str) -> str:
    """Reads the create metadata of `project`; returns the Task issue type id."""
    if cloud:
        # On Cloud the library refuses its per-project createmeta methods
        # (pycontribs/jira#2353) and offers the global `createmeta` instead, which Jira
        # Cloud deprecated (CHANGE-1304; the document still lists it, whether it still
        # answers is unconfirmed). Where it answers, its content must be right; where it
        # answers 404, users call the per-project endpoints through the library's own
        # authenticated JSON helper, and so does this script.
        try:
            j.project_issue_types(project)
            raise AssertionError("project_issue_types was expected to be refused on Cloud by the library")
        except JIRAError as err:
            check("Unsupported" in str(err.text), f"unexpected refusal: {err}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                meta = j.createmeta(projectKeys=project, expand="projects.issuetypes.fields")
        except JIRAError as err:
            check(err.status_code == 404, f"global createmeta: {err.status_code} {err.text}")
            meta = None
        if meta is not None:
            projects = meta.get("projects", [])
            check(len(projects) == 1 and projects[0]["key"] == project, f"createmeta projects: {projects}")
            legacy = {t["name"]: t for t in projects[0]["issuetypes"]}
            check({"Task", "Bug"} <= set(legacy), f"createmeta issue types: {sorted(legacy)}")
            legacy_fields = legacy["Task"]["fields"]
            check(legacy_fields.get("summary", {}).get("required") is True,
                  f"summary not required: {legacy_fields.get('summary')}")
            step(f"createmeta (global): {len(legacy)} issue types")
        page = j._get_json(f"issue/createmeta/{project}/issuetypes")
        types = {t["name"]: t for t in page.get("issueTypes", [])}
        check({"Task", "Bug"} <= set(types), f"createmeta issue types: {sorted(types)}")
        task_id = str(types["Task"]["id"])
        fields_page = j._get_json(f"issue/createmeta/{project}/issuetypes/{task_id}")
        fields = {f["fieldId"]: f for f in fields_page.get("fields", [])}
        check(fields.get("summary", {}).get("required") is True, f"summary: {fields.get('summary')}")
        check("project" in fields and "issuetype" in fields, f"createmeta fields: {sorted(fields)}")
        step(f"createmeta (per project): {len(types)} issue types, Task has {len(fields)} fields")
        return task_id

    types = j.project_issue_types(project)
    names = {t.name: t for t in types}
    check({"Task", "Bug"} <= set(names), f"project_issue_types: {sorted(names)}")
    task = names["Task"]
    fields = j.project_issue_fields(project, task.id)
    by_id = {f.fieldId: f for f in fields}
    check("summary" in by_id and by_id["summary"].required is True, f"project_issue_fields: {sorted(by_id)}")
    check("issuetype" in by_id, f"project_issue_fields: {sorted(by_id)}")
    step(f"project_issue_types: {len(types)}; project_issue_fields(Task): {len(fields)}")
    return str(task.id)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--flavor", required=True, choices=["cloud", "dc"])
    parser.add_argument("--user")
    parser.add_argument("--token")
    parser.add_argument("--pat")
    parser.add_argument("--project", default="OPS")
    args = parser.parse_args(argv)
    cloud = args.flavor == "cloud"
    project = args.project
    tag = uuid.uuid4().hex[:10]

    if cloud:
        j = JIRA(server=args.server, basic_auth=(args.user, args.token))
    else:
        j = JIRA(server=args.server, token_auth=args.pat)
    info = j.server_info()
    check((info.get("deploymentType") == "Cloud") == cloud, f"serverInfo deploymentType: {info}")
    me = j.myself()
    if cloud:
        check(me.get("emailAddress") == args.user, f"myself: {me}")
    step(f"connected to {info.get('deploymentType')} {info.get('version')} as {me.get('displayName')}")

    # Create metadata is checked on its own: a failure there is reported at the end and
    # the remaining steps still run.
    failures: list[str] = []
    try:
        task_type = create_metadata(j, cloud, project)
    except Exception as err:  # noqa: BLE001 - reported below with its type
        failures.append(f"create metadata: {type(err).__name__}: {err}")
        step(f"create metadata FAILED: {err}")
        task_type = str(j.issue_type_by_name("Task", project=project).id)

    # Single create.
    single = j.create_issue(
        project=project,
        summary=f"pyjira single {tag}",
        issuetype={"name": "Task"},
        description="Created by the Python jira library.",
        labels=["pyjira"],
    )
    check(single.key.startswith(f"{project}-"), f"created key {single.key}")
    check(single.fields.summary == f"pyjira single {tag}", f"summary {single.fields.summary!r}")
    check(single.fields.issuetype.name == "Task", f"issue type {single.fields.issuetype.name}")
    check(single.fields.status.name == "To Do", f"new issue status {single.fields.status.name}")
    step(f"create_issue -> {single.key}")

    # Bulk create: three valid elements and one without a summary.
    payload = [
        {"project": project, "summary": f"pyjira bulk {tag} {n}", "issuetype": "Task"} for n in range(3)
    ]
    payload.insert(2, {"project": project, "issuetype": {"id": task_type}})
    results = j.create_issues(payload)
    check(len(results) == 4, f"create_issues returned {len(results)} results")
    statuses = [r["status"] for r in results]
    check(statuses == ["Success", "Success", "Error", "Success"], f"bulk statuses {statuses}")
    check("summary" in results[2]["error"], f"bulk error {results[2]['error']}")
    bulk_keys = [r["issue"].key for r in results if r["issue"] is not None]
    check(len(set(bulk_keys)) == 3, f"bulk keys {bulk_keys}")
    for r, n in zip([results[0], results[1], results[3]], range(3)):
        check(r["issue"].fields.summary == f"pyjira bulk {tag} {n}", f"bulk summary {r['issue'].fields.summary}")
    step(f"create_issues -> {bulk_keys}, one element refused: {results[2]['error']}")

    # Search.
    created = sorted([single.key, *bulk_keys], key=lambda k: int(k.split("-")[1]))
    jql = f'project = {project} AND summary ~ "{tag}" ORDER BY key ASC'
    found = j.search_issues(jql, maxResults=50)
    check([i.key for i in found] == created, f"search_issues {[i.key for i in found]} != {created}")
    check(all(i.fields.summary.endswith(tuple([tag, f"{tag} 0", f"{tag} 1", f"{tag} 2"])) for i in found),
          "search results carry their summaries")
    step(f"search_issues -> {len(found)} issues")
    if cloud:
        first = j.enhanced_search_issues(jql, maxResults=2, fields="summary")
        check([i.key for i in first] == created[:2], f"first page {[i.key for i in first]}")
        check(bool(first.nextPageToken), "first page of 2 of 4 has a nextPageToken")
        second = j.enhanced_search_issues(jql, maxResults=2, fields="summary", nextPageToken=first.nextPageToken)
        check([i.key for i in second] == created[2:], f"second page {[i.key for i in second]}")
        everything = j.enhanced_search_issues(jql, maxResults=False)
        check([i.key for i in everything] == created, f"all pages {[i.key for i in everything]}")
        count = j.approximate_issue_count(jql)
        check(count == 4, f"approximate count {count}")
        step("enhanced_search_issues pages through nextPageToken")
    else:
        page = j.search_issues(jql, startAt=2, maxResults=2)
        check([i.key for i in page] == created[2:], f"startAt page {[i.key for i in page]}")
        check(page.total == 4, f"total {page.total}")
        step("search_issues pages with startAt")

    # Transition.
    # Transition names are the workflow's ("Start Progress"); pick by target status.
    available = j.transitions(single)
    to_progress = [t for t in available if t.get("to", {}).get("name") == "In Progress"]
    check(len(to_progress) == 1, f"transitions {[(t['name'], t.get('to', {}).get('name')) for t in available]}")
    j.transition_issue(single, to_progress[0]["id"])
    status = j.issue(single.key).fields.status
    check(status.name == "In Progress", f"status after transition {status.name}")
    moved = j.search_issues(f'project = {project} AND summary ~ "{tag}" AND status = "In Progress"')
    check([i.key for i in moved] == [single.key], f"status search {[i.key for i in moved]}")
    step(f"transition_issue {single.key} -> {status.name}")

    # Worklogs.
    def worklogs() -> None:
        started = datetime.datetime(2026, 11, 20, 9, 15, tzinfo=datetime.timezone.utc)
        kept = j.add_worklog(single.key, timeSpent="15m", started=started)
        check(int(kept.timeSpentSeconds) == 900, f"timeSpentSeconds {kept.timeSpentSeconds}")
        gone = j.add_worklog(single, timeSpent="1h 30m", comment="pyjira work", started=started)
        check(int(gone.timeSpentSeconds) == 5400, f"timeSpentSeconds {gone.timeSpentSeconds}")
        ids = sorted(w.id for w in j.worklogs(single.key))
        check(ids == sorted([kept.id, gone.id]), f"worklogs {ids}")
        gone.delete()
        ids = [w.id for w in j.worklogs(single.key)]
        check(ids == [kept.id], f"worklogs after delete {ids}")
        spent = j.issue(single.key, fields="timetracking,timespent").fields.timespent
        check(spent == 900, f"timespent after delete {spent}")
        step(f"add_worklog x2, delete 1 -> {ids}")

    def worklog_seconds_as_text() -> None:
        # The library types timeSpentSeconds as a string and sends it as given.
        started = datetime.datetime(2026, 11, 21, 8, 0, tzinfo=datetime.timezone.utc)
        log = j.add_worklog(single.key, timeSpentSeconds="600", started=started)
        check(int(log.timeSpentSeconds) == 600, f"timeSpentSeconds {log.timeSpentSeconds}")
        log.delete()
        step("add_worklog with timeSpentSeconds as text")

    def worklog_without_started() -> None:
        # The library's most common call leaves `started` out; Jira then logs the work
        # as started now.
        log = j.add_worklog(single, "2h")
        check(int(log.timeSpentSeconds) == 7200, f"timeSpentSeconds {log.timeSpentSeconds}")
        check(log.id in [w.id for w in j.worklogs(single.key)], "worklog without started listed")
        log.delete()
        step("add_worklog without started")

    for name, part in [
        ("worklogs", worklogs),
        ("worklog with timeSpentSeconds as text", worklog_seconds_as_text),
        ("worklog without started", worklog_without_started),
    ]:
        try:
            part()
        except Exception as err:  # noqa: BLE001 - reported below with its type
            failures.append(f"{name}: {type(err).__name__}: {err}")
            step(f"{name} FAILED: {err}")

    # Refusals surface as JIRAError with Jira's status.
    try:
        j.issue(f"{project}-999999")
        raise AssertionError("a missing issue must raise")
    except JIRAError as err:
        check(err.status_code == 404, f"missing issue status {err.status_code}")
    step("missing issue -> 404")

    # Clean up the bulk issues.
    for key in bulk_keys:
        j.issue(key).delete()
    left = j.search_issues(jql)
    check([i.key for i in left] == [single.key], f"after delete {[i.key for i in left]}")
    step("deleted the bulk issues")
    if failures:
        print("pyjira smoke: FAILED steps:\n  " + "\n  ".join(failures))
        return 1
    print("pyjira smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
