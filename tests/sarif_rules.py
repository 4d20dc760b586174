"""What GitHub code scanning demands of an uploaded SARIF file, beyond the OASIS schema, written
down as checks. Each rule cites where GitHub documents it:

[support] https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning
[limits]  https://docs.github.com/en/code-security/code-scanning/troubleshooting-sarif-uploads/results-exceed-limit
[size]    https://docs.github.com/en/code-security/code-scanning/troubleshooting-sarif-uploads/file-too-large
[upload]  https://docs.github.com/en/rest/code-scanning/code-scanning#upload-an-analysis-as-sarif-data

    problems = github_sarif_problems(json.loads(Path("check.sarif").read_text()))
    assert not problems, problems
"""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

MAX_RUNS = 20  # [limits] runs per file
MAX_RESULTS = 25_000  # [limits] results per run (only the top 5,000 are shown); [upload] more are rejected
MAX_RULES = 25_000  # [limits] rules per run
MAX_TAGS = 20  # [limits] tags per rule (only 10 are shown)
MAX_LOCATIONS = 1_000  # [limits] locations per result (only 100 are shown)
MAX_GZIP_BYTES = 10 * 1024 * 1024  # [size] the gzip-compressed file must be under 10 MB
LEVELS = {"none", "note", "warning", "error"}  # [support] result.level / defaultConfiguration.level


def github_sarif_problems(doc: dict[str, Any]) -> list[str]:
    """Every way `doc` breaks a rule GitHub documents for uploads (empty: GitHub accepts it)."""
    p: list[str] = []
    # [support] "Code scanning supports a subset of the SARIF 2.1.0 JSON schema": version 2.1.0 only
    if doc.get("version") != "2.1.0":
        p.append(f"version {doc.get('version')!r}: GitHub accepts SARIF 2.1.0 only")
    # [support] runs: required (may be empty); [limits] at most 20 runs per file
    runs = doc.get("runs")
    if not isinstance(runs, list) or len(runs) > MAX_RUNS:
        p.append(f"runs: an array of at most {MAX_RUNS} runs is required")
        return p
    # [size] the gzip-compressed file must be smaller than 10 MB
    size = len(gzip.compress(json.dumps(doc).encode()))
    if size >= MAX_GZIP_BYTES:
        p.append(f"{size} bytes gzip-compressed: GitHub accepts less than 10 MB")
    for r, run in enumerate(runs):
        p += _run_problems(f"runs[{r}]", run)
    return p


def _run_problems(where: str, run: dict[str, Any]) -> list[str]:
    p: list[str] = []
    driver = run.get("tool", {}).get("driver", {})
    # [support] toolComponent: name is required; version is used to track changes between runs
    if not driver.get("name"):
        p.append(f"{where}.tool.driver.name is required")
    if not (driver.get("version") or driver.get("semanticVersion")):
        p.append(f"{where}.tool.driver: a version or semanticVersion is expected")
    rules = driver.get("rules", [])
    # [limits] at most 25,000 rules per run
    if len(rules) > MAX_RULES:
        p.append(f"{where}: {len(rules)} rules, GitHub accepts at most {MAX_RULES}")
    ids = [rule.get("id") for rule in rules]
    # [support] reportingDescriptor.id: required, a unique identifier of the rule
    if len(set(ids)) != len(ids) or not all(ids):
        p.append(f"{where}: rule ids must be present and unique")
    for i, rule in enumerate(rules):
        w = f"{where}.rules[{i}] ({rule.get('id')})"
        # [support] shortDescription.text, fullDescription.text and help.text are required
        for field in ("shortDescription", "fullDescription", "help"):
            if not (rule.get(field) or {}).get("text"):
                p.append(f"{w}: {field}.text is required")
        level = (rule.get("defaultConfiguration") or {}).get("level")
        if level is not None and level not in LEVELS:
            p.append(f"{w}: defaultConfiguration.level {level!r} is not one of {sorted(LEVELS)}")
        props = rule.get("properties") or {}
        # [limits] at most 20 tags per rule
        if len(props.get("tags", [])) > MAX_TAGS:
            p.append(f"{w}: more than {MAX_TAGS} tags")
        # [support] security-severity: a string holding a score from 0.0 to 10.0
        sev = props.get("security-severity")
        if sev is not None and not (isinstance(sev, str) and re.fullmatch(r"\d+(\.\d+)?", sev)
                                    and 0.0 <= float(sev) <= 10.0):
            p.append(f"{w}: security-severity {sev!r} must be a string of a number from 0.0 to 10.0")
    results = run.get("results", [])
    # [limits] at most 25,000 results per run; [upload] a file with more is rejected
    if len(results) > MAX_RESULTS:
        p.append(f"{where}: {len(results)} results, GitHub rejects more than {MAX_RESULTS}")
    bases = run.get("originalUriBaseIds") or {}
    identities: set[tuple[Any, ...]] = set()
    for i, res in enumerate(results):
        w = f"{where}.results[{i}]"
        # [support] result.ruleId: required, the id of a rule in tool.driver.rules
        if res.get("ruleId") not in ids:
            p.append(f"{w}: ruleId {res.get('ruleId')!r} is not a rule of the run")
        elif "ruleIndex" in res and ids[res["ruleIndex"]] != res["ruleId"]:
            p.append(f"{w}: ruleIndex {res['ruleIndex']} is not rule {res['ruleId']}")
        # [support] result.message.text: required
        if not (res.get("message") or {}).get("text"):
            p.append(f"{w}: message.text is required")
        if "level" in res and res["level"] not in LEVELS:
            p.append(f"{w}: level {res['level']!r} is not one of {sorted(LEVELS)}")
        # [support] locations: at least one is required for code scanning to display a result;
        # [limits] at most 1,000 per result
        locations = res.get("locations") or []
        if not 1 <= len(locations) <= MAX_LOCATIONS:
            p.append(f"{w}: needs 1 to {MAX_LOCATIONS} locations, has {len(locations)}")
            continue
        physical = locations[0].get("physicalLocation") or {}
        artifact = physical.get("artifactLocation") or {}
        uri = artifact.get("uri")
        # [support] physicalLocation.artifactLocation.uri: required; best a path relative to the
        # repository root (an absolute URI must be a file:// one)
        if not uri:
            p.append(f"{w}: locations[0].physicalLocation.artifactLocation.uri is required")
        elif re.match(r"^[a-z][a-z0-9+.-]*:", uri) and not uri.startswith("file:///"):
            p.append(f"{w}: uri {uri!r} is neither relative nor file://")
        elif uri.startswith("/") or "\\" in uri:
            p.append(f"{w}: uri {uri!r} must be a relative URI reference or a file:// URI")
        base = artifact.get("uriBaseId")
        if base is not None and not str((bases.get(base) or {}).get("uri", "")).endswith("/"):
            p.append(f"{w}: uriBaseId {base} is not defined in originalUriBaseIds with a uri ending in /")
        # [support] region.startLine: required for GitHub to show the result at a line
        start = (physical.get("region") or {}).get("startLine")
        if not isinstance(start, int) or start < 1:
            p.append(f"{w}: locations[0].physicalLocation.region.startLine (>= 1) is required")
        # [support] partialFingerprints: used to match a result across runs; without them GitHub's
        # API upload shows duplicate alerts (primaryLocationLineHash is the one it reads)
        fp = (res.get("partialFingerprints") or {}).get("primaryLocationLineHash")
        if not fp:
            p.append(f"{w}: partialFingerprints.primaryLocationLineHash is missing")
        # [support] results with the same rule, file and fingerprint are one alert: two results of
        # a run must not collapse into one
        identity = (res.get("ruleId"), uri, fp)
        if identity in identities:
            p.append(f"{w}: same rule, file and fingerprint as an earlier result: GitHub would merge them")
        identities.add(identity)
    return p
