"""contrib/grafana/cllavio-milter.json as the tests see it: load it, check the structure Grafana's
import needs, and list every panel's PromQL with the dashboard's variables substituted.

    dash = load()
    problems = structure_problems(dash)            # [] when it imports cleanly
    for panel, ref, expr in exprs(dash, rate_interval="30s"):
        prometheus.query(expr)                     # $org, $instance -> ".*"

Python standard library only.
"""

from __future__ import annotations

import json
import os
import re

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = os.path.join(_REPO, "contrib", "grafana", "cllavio-milter.json")
DS_REF = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def load(path: str = PATH) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def panels(dash: dict) -> list[dict]:
    """Every panel that is not a row (rows' nested panels included, for collapsed rows)."""
    out = []
    for p in dash.get("panels", []):
        if p.get("type") == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def structure_problems(dash: dict) -> list[str]:
    """What would keep the dashboard from importing cleanly or from working once imported."""
    bad = []
    inputs = dash.get("__inputs", [])
    if [(i.get("name"), i.get("type"), i.get("pluginId")) for i in inputs] != \
            [("DS_PROMETHEUS", "datasource", "prometheus")]:
        bad.append(f"__inputs must declare one Prometheus data source DS_PROMETHEUS: {inputs}")
    if not 36 <= dash.get("schemaVersion", 0) <= 39:
        bad.append(f"schemaVersion {dash.get('schemaVersion')} (expected about 38)")
    for k in ("uid", "title"):
        if not dash.get(k):
            bad.append(f"no {k}")
    if dash.get("id") is not None:
        bad.append("id must be null in an exported dashboard")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    if variables.get("DS_PROMETHEUS", {}).get("type") != "datasource":
        bad.append("no data source variable DS_PROMETHEUS")
    for name in ("org", "instance"):
        v = variables.get(name)
        if not v or v.get("type") != "query" or v.get("datasource") != DS_REF or v.get("allValue") != ".*":
            bad.append(f"variable {name}: a query variable on ${{DS_PROMETHEUS}} with allValue .* expected")
    ids, cells = set(), []
    for p in dash.get("panels", []) + [c for r in dash.get("panels", []) for c in r.get("panels", [])]:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            bad.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24 or g["w"] <= 0:
            bad.append(f"{where}: bad gridPos {g}")
        else:
            cells.append((where, g))
        if p.get("type") == "row":
            continue
        if not p.get("title") or not p.get("description"):
            bad.append(f"{where}: title and description wanted")
        if p.get("datasource") != DS_REF:
            bad.append(f"{where}: datasource is not ${{DS_PROMETHEUS}}")
        targets = p.get("targets") or []
        if not targets:
            bad.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            bad.append(f"{where}: duplicate refId")
        for t in targets:
            if t.get("datasource") != DS_REF or not t.get("expr", "").strip():
                bad.append(f"{where} {t.get('refId')}: target without ${{DS_PROMETHEUS}} or expr")
    # No two panels overlap on the 24-column grid.
    for i, (wa, a) in enumerate(cells):
        for wb, b in cells[i + 1:]:
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and \
                    a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]:
                bad.append(f"{wa} overlaps {wb}")
    text = json.dumps(dash)
    for m in set(re.findall(r"\$\{?(\w+)", text)):
        if m not in variables and not m.startswith("__"):
            bad.append(f"unknown variable ${m}")
    return bad


def substitute(expr: str, rate_interval: str = "30s", values: dict | None = None) -> str:
    """expr with $__rate_interval and the query variables ($org, ${instance}...) replaced;
    a variable not in values becomes ".*" (the dashboard's "All")."""
    values = values or {}
    expr = expr.replace("$__rate_interval", rate_interval).replace("${__rate_interval}", rate_interval)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), ".*"), expr)


def exprs(dash: dict, rate_interval: str = "30s", values: dict | None = None) -> list[tuple[str, str, str]]:
    """[(panel title, refId, PromQL with the variables substituted)] for every target."""
    return [(p["title"], t["refId"], substitute(t["expr"], rate_interval, values))
            for p in panels(dash) for t in p.get("targets", [])]
