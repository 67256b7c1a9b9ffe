"""Writing results: ``bench/results/latest.json`` and a Markdown rendering, ``latest.md``."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
JSON_FILE = RESULTS / "latest.json"
MARKDOWN_FILE = RESULTS / "latest.md"


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def load() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(JSON_FILE.read_text())
        return data
    except (OSError, ValueError):
        return {}


def save(results: Mapping[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    _write(JSON_FILE, json.dumps(results, indent=2) + "\n")
    _write(MARKDOWN_FILE, markdown(results))


def _write(path: Path, text: str) -> None:
    scratch = path.with_suffix(path.suffix + ".tmp")
    scratch.write_text(text)
    scratch.replace(path)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return [*lines, ""]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "**met**" if value else "**not met**"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def markdown(results: Mapping[str, Any]) -> str:
    lines = ["# Benchmark results", ""]
    info = results.get("machine", {})
    lines += [
        f"Command: `{results.get('command', '')}` · mode: {results.get('mode', '')} · "
        f"finished {results.get('finished_at', '')}",
        "",
        f"Machine: {info.get('cpu_model')} · {info.get('cores')} cores · Python "
        f"{info.get('python')} · load average at start {info.get('load_average_at_start')}",
        "",
        "Method and baselines: docs/benchmarks.md.",
        "",
    ]
    parts = results.get("parts", {})
    for name, render in (
        ("admission", _admission),
        ("carbon", _carbon),
        ("reporter", _reporter),
        ("growth", _growth),
        ("readpool-model", _readpool),
        ("readpool-kube", _readpool_kube),
        ("envelope", _envelope),
        ("apiserver-load", _apiserver_load),
        ("follow-model", _follow),
        ("history", _history),
        ("karmada-replay", _karmada_replay),
    ):
        part = parts.get(name)
        if part is None:
            continue
        lines.append(f"## {name.capitalize()}")
        lines.append("")
        lines.append(f"Mode {part.get('mode')}, {part.get('seconds')} s, run {part.get('ran_at')}.")
        lines.append("")
        if "error" in part:
            lines += [f"**Failed:** `{part['error']}`", ""]
            continue
        try:
            lines += render(part["result"])
        except (KeyError, TypeError, ValueError) as e:
            # A part kept from an older run may lack fields this renderer expects.
            lines += [f"(not rendered: {type(e).__name__} {e}; see latest.json)", ""]
    return "\n".join(lines) + "\n"


def _admission(r: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            run["payload"],
            run["concurrency"],
            run["floor"]["throughput_per_s"],
            run["webhook"]["throughput_per_s"],
            run["ratio"],
            run["capacity_ratio"],
            run["floor"]["server_cpu_ms_per_request"],
            run["webhook"]["server_cpu_ms_per_request"],
            f"{run['floor']['p50_ms']:.2f} / {run['floor']['p99_ms']:.2f}",
            f"{run['webhook']['p50_ms']:.2f} / {run['webhook']['p99_ms']:.2f}",
        ]
        for run in r["runs"]
    ]
    lines = _table(
        [
            "payload",
            "concurrency",
            "floor req/s",
            "webhook req/s",
            "ratio b/a",
            "CPU ratio",
            "floor CPU ms/req",
            "webhook CPU ms/req",
            "floor p50/p99 ms",
            "webhook p50/p99 ms",
        ],
        rows,
    )
    fixed = r["fixed_rate"]
    lines += [f"Fixed rate {fixed['rate_per_s']:g} req/s for {fixed['seconds']:g} s:", ""]
    lines += _table(
        ["server", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "server CPU"],
        [
            [
                name,
                fixed[name]["p50_ms"],
                fixed[name]["p90_ms"],
                fixed[name]["p99_ms"],
                fixed[name]["max_ms"],
                fixed[name]["errors"],
                _pct(fixed[name]["server_cpu_utilisation"]),
            ]
            for name in ("floor", "webhook")
        ],
    )
    lines += _targets(r["targets"])
    return lines


def _carbon(r: Mapping[str, Any]) -> list[str]:
    fleet = r["fleet"]
    lines = [
        f"{len(r['regions'])} regions, {fleet['nodes']} nodes, {fleet['free_replica_slots']} free "
        f"replica slots, about {fleet['reference_concurrency']} replicas alive; weeks "
        f"{', '.join(r['weeks'])}; pods per week {r['pods_per_week']}.",
        "",
    ]
    lines += _policy_table(r["policies"])
    kube = r.get("kube_scheduler")
    if kube:
        lines += [
            f"Real kube-scheduler, weeks {', '.join(kube['weeks'])}: {kube['pods_created']} pods "
            f"created per policy, in {kube['decision_points']} of the replayed hours (control "
            f"plane up in {kube['control_plane_startup_s']} s). Same-week model rows for "
            "reference.",
            "",
        ]
        lines += _policy_table(kube["policies"])
        adherence = [
            [
                policy,
                run["pods_mutated"],
                run["pods_bound"],
                run.get("adherence", {}).get("followed_best_available_term"),
                run.get("adherence", {}).get("mean_node_affinity_points_given_up"),
                run["seconds"],
            ]
            for policy, run in kube["runs"].items()
        ]
        lines += _table(
            [
                "run",
                "pods mutated",
                "pods bound",
                "followed best available term",
                "NodeAffinity points given up (of 200)",
                "seconds",
            ],
            adherence,
        )
    if r.get("sweep"):
        lines += ["Sensitivity to the read pool's size (all weeks, models):", ""]
        rows = []
        for concurrency, policies in r["sweep"].items():
            for name, row in policies.items():
                rows.append(
                    [
                        concurrency,
                        name,
                        row["g_per_replica_hour"],
                        _pct(row["reduction_vs_agnostic"]),
                        _pct(row["fraction_of_oracle"]),
                        _pct(row["unserved_share"]),
                    ]
                )
        lines += _table(
            ["replicas", "policy", "g/replica-h", "reduction", "of oracle", "unserved"], rows
        )
    lines += [f"Targets (basis: {r['basis']}):", ""]
    target = r["targets"]
    lines += _table(
        ["policy", "reduction vs agnostic", "fraction of oracle", "unserved", "verdict"],
        [
            [
                policy,
                _pct(target[policy]["reduction_vs_agnostic"]),
                _pct(target[policy]["fraction_of_oracle"]),
                _pct(target[policy]["unserved_share"]),
                target[policy]["met"],
            ]
            for policy in ("prefer", "require")
        ],
    )
    return lines


def _policy_table(policies: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return _table(
        [
            "policy",
            "g/replica-h",
            "kg total",
            "reduction vs agnostic",
            "of oracle's savings",
            "unserved",
            "where (share of hours)",
        ],
        [
            [
                name,
                row["g_per_replica_hour"],
                row["kg_total"],
                _pct(row["reduction_vs_agnostic"]),
                _pct(row["fraction_of_oracle"]),
                _pct(row["unserved_share"]),
                ", ".join(f"{k} {v:.0%}" for k, v in row["top_regions_by_hours"].items()),
            ]
            for name, row in policies.items()
        ],
    )


def _envelope(r: Mapping[str, Any]) -> list[str]:
    envelope, small = r["envelope"], r["small"]
    seed = envelope["seed"]
    lines = [
        f"Real kube-apiserver seeded with {envelope['nodes']} nodes and {envelope['pods']} bound "
        f"pods ({envelope['stellar_pods']} Stellar); seeding the pods took "
        f"{seed['pods_seconds']} s ({seed['pods_per_second']} pods/s). "
        f"Small cluster: {small['nodes']} nodes, {small['pods']} pods.",
        "",
    ]
    runs = [
        ("small, selector", small),
        ("envelope, selector", envelope["selector"]),
        ("envelope, every pod", envelope["every_pod"]),
    ]
    lines += _table(
        [
            "cluster, pod watch",
            "webhook sync s",
            "webhook RSS MiB",
            "admission p50 / p99 ms",
            "reporter sync s",
            "reporter RSS MiB",
            "/metrics p50 / p99 ms",
            "first scrape ms",
        ],
        [
            [
                name,
                run["webhook"]["sync_s"],
                run["webhook"]["rss_mb"],
                f"{run['webhook']['admission']['p50_ms']} / "
                f"{run['webhook']['admission']['p99_ms']}",
                run["reporter"]["sync_s"],
                run["reporter"]["rss_mb"],
                f"{run['reporter']['prometheus']['p50_ms']} / "
                f"{run['reporter']['prometheus']['p99_ms']}",
                run["reporter"]["first_scrape_ms"],
            ]
            for name, run in runs
        ],
    )
    return lines


def _latency_table(title: str, rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """p50, p99 and throughput per endpoint, and the server's CPU per request when measured."""
    cpu = all("server_cpu_ms_per_request" in row for row in rows.values())
    return _table(
        [title, "p50 ms", "p99 ms", "req/s", *(["server CPU ms/request"] if cpu else [])],
        [
            [
                name,
                row["p50_ms"],
                row["p99_ms"],
                row["throughput_per_s"],
                *([row["server_cpu_ms_per_request"]] if cpu else []),
            ]
            for name, row in rows.items()
        ],
    )


def _reporter(r: Mapping[str, Any]) -> list[str]:
    lines = [
        f"{r['nodes']} nodes, {r['pods']} pods; ready in {r['startup_s']} s; first request "
        f"(builds the view) {r['first_request_ms']} ms.",
        "",
    ]
    endpoints = ("nodes", "nodes_all", "metrics_summary", "prometheus")
    lines += _latency_table(
        "endpoint (sequential requests)", {name: r["endpoints"][name] for name in endpoints}
    )
    calls = r["provider_calls"]
    lines += [
        f"RSS: reporter {r['rss_mb']['reporter']} MiB, webhook {r['rss_mb']['webhook']} MiB "
        f"(webhook admissions at this size: p50 {r['webhook_admissions_at_scale']['p50_ms']} ms, "
        f"p99 {r['webhook_admissions_at_scale']['p99_ms']} ms).",
        "",
        f"Upstream calls: {calls['calls_per_hour']} per hour for {calls['zones']} zones "
        f"({calls['regions']} regions) while serving {calls['requests_served']} requests "
        f"({calls['simulated_hours']} simulated hours at x{calls['time_scale']:g}); at most "
        f"{calls['expected_at_most_per_hour']:g} expected ({calls['expected_basis']}); "
        f"{calls['startup_calls']} at startup.",
        "",
    ]
    return lines


def _growth(r: Mapping[str, Any]) -> list[str]:
    operations = ("ranking", "mutation", "nodes_view", "nodes_page")
    rows = [
        [
            size,
            row["regions"],
            *(
                f"{row[name]['ms']:.3f} ms / {row[name]['peak_kib']:,.0f} KiB"
                for name in operations
            ),
        ]
        for size, row in r["sizes"].items()
    ]
    lines = _table(["nodes", "regions", *operations], rows)
    lines += [
        f"Growth ({r['growth_basis']}): "
        + ", ".join(f"{name} x{factor}" for name, factor in r["growth_factor"].items()),
        "",
    ]
    return lines


def _readpool(r: Mapping[str, Any]) -> list[str]:
    from bench.readpool import table  # the read-pool replay renders its own rows

    return [f"Weeks {', '.join(r['weeks'])}; method in docs/webhook.md.", "", *table(r), ""]


def _readpool_kube(r: Mapping[str, Any]) -> list[str]:
    from bench.kube_readpool import table  # the real-scheduler read-pool replay renders its rows

    met = [case for case, verdict in r["targets"].items() if verdict["met"]]
    return [
        f"Real kube-scheduler, weeks {', '.join(r['weeks'])} ({r['hours_per_week']} h each); "
        "method in docs/benchmarks.md.",
        "",
        *table(r),
        "",
        f"Targets (default arm: >= 95 % of the oracle, 0 unserved beyond agnostic, 0 Pending "
        f"because of the webhook) met in {len(met)} of {len(r['targets'])} cases: "
        + (", ".join(met) or "none")
        + ".",
        "",
    ]


def _apiserver_load(r: Mapping[str, Any]) -> list[str]:
    lines = [
        f"{r['nodes']} kwok nodes, webhook {r['replicas']} replicas behind a Service; "
        f"{r['rounds']} interleaved round(s); steady {r['rate_per_s']:g} pods/s for "
        f"{r['steady_seconds']:g} s, bursts of {r['burst_size']} by "
        f"{r['burst_concurrency']} workers; "
        f"load average {r['load_average']['start']} at start, {r['load_average']['end']} at end.",
        "",
    ]
    rows = []
    for shape in ("steady", "burst"):
        for arm in ("without", "floor", "with"):
            a = r[shape].get(arm)
            if a is None:
                continue  # runs before the floor arm existed
            rows.append(
                [
                    shape,
                    arm,
                    a["pods"],
                    a["pods_per_s"],
                    a["p50_ms"],
                    a["p99_ms"],
                    a["failed"],
                    f"{a['patched']} / {a['unpatched']}",
                    a["cpu_ms_per_pod"]["kube-apiserver"],
                    a["cpu_ms_per_pod"]["floor" if arm == "floor" else "webhook"],
                ]
            )
    lines += _table(
        [
            "load",
            "webhook",
            "pods",
            "pods/s",
            "p50 ms",
            "p99 ms",
            "failed",
            "patched / not",
            "apiserver CPU ms/pod",
            "webhook CPU ms/pod (floor: the floor's)",
        ],
        rows,
    )
    lines += [
        f"Added by the webhook: steady p50 {r['steady']['added_p50_ms']:+.2f} ms, p99 "
        f"{r['steady']['added_p99_ms']:+.2f} ms; burst p50 {r['burst']['added_p50_ms']:+.2f} ms, "
        f"p99 {r['burst']['added_p99_ms']:+.2f} ms."
        + (
            f" Over the floor mutating webhook: steady p50 {r['steady']['over_floor_p50_ms']:+.2f}"
            f" ms, p99 {r['steady']['over_floor_p99_ms']:+.2f} ms; burst p50 "
            f"{r['burst']['over_floor_p50_ms']:+.2f} ms, p99 "
            f"{r['burst']['over_floor_p99_ms']:+.2f} ms."
            if "over_floor_p99_ms" in r["steady"]
            else ""
        ),
        "",
        f"Certificate renewal and rolling restart under {r['rate_per_s']:g} pods/s (endpoint "
        f"turns terminating {r['endpoint_lag_s']:g} s after SIGTERM):",
        "",
    ]
    lines += _table(
        [
            "replicas",
            "rolls",
            "pods",
            "failed",
            "not patched",
            "p50 ms",
            "p99 ms",
            "renewal s (max)",
            "roll s (max)",
            "renewed",
        ],
        [
            [
                arm,
                roll["rolls"],
                roll["pods"],
                roll["failed"],
                roll["unpatched"],
                roll["p50_ms"],
                roll["p99_ms"],
                roll["rotation_seconds"],
                roll["roll_seconds"],
                roll["certificate_renewed"],
            ]
            for arm, roll in r["rotation_and_roll"].items()
        ],
    )
    lines += _targets(r["targets"])
    return lines


def _follow(r: Mapping[str, Any]) -> list[str]:
    from bench.follow import table  # the following-the-grid replay renders its own rows

    profile, tiers = r["profile"], r["tier_policy"]
    met = [case for case, verdict in r["targets"].items() if verdict["met"]]
    return [
        f"Weeks {', '.join(r['weeks'])}; descheduler every {profile['interval_minutes']} min, "
        f"minPodAge {profile['min_pod_age_minutes']} min, PDB replicas - "
        f"{profile['unavailable']}, catch-up {profile['catch_up_minutes']} min; tiers band "
        f"{tiers['band']:g}, step {tiers['step']:g}, margin {tiers['margin']:g}, dwell "
        f"{tiers['dwell_hours']:g} h. Method in docs/benchmarks.md.",
        "",
        *table(r),
        "",
        f"Targets (following: >= 95 % of the oracle, <= 1 eviction / replica / day, never below "
        f"minAvailable) met in {len(met)} of {len(r['targets'])} cases: "
        + (", ".join(met) or "none")
        + ".",
        "",
        *_follow_2023(r.get("2023")),
    ]


def _follow_2023(r: Mapping[str, Any] | None) -> list[str]:
    from bench.follow import table_2023

    if not r:
        return []
    met = [case for case, verdict in r["targets"].items() if verdict["met"]]
    return [
        f"Weeks {', '.join(r['weeks'])} (2023 data), reduction vs agnostic / fraction of the "
        "oracle:",
        "",
        *table_2023(r),
        "",
        f"Targets met in {len(met)} of {len(r['targets'])} cases: " + (", ".join(met) or "none"),
        "",
    ]


def _history(r: Mapping[str, Any]) -> list[str]:
    disk, latency, recording = r["disk"], r["latency"], r["recording"]
    lines = [
        f"A year of 100 regions: {disk['year_mb']} MB on disk ({disk['year_basis']}; "
        f"{disk['samples']} samples written in {disk['write_seconds']} s).",
        "",
    ]
    lines += _latency_table("endpoint, 30 days x 100 regions (sequential)", latency)
    lines += [
        f"Recording at {recording['nodes']} nodes: at most {recording['cpu_ms_max']} ms of CPU "
        f"({recording['wall_ms_max']} ms wall) per hourly sample of "
        f"{recording['samples_per_hour']} rows. Load average at the end: "
        f"{r['load_average_at_end']:.1f}.",
        "",
        *_targets(r["targets"]),
        "",
    ]
    return lines


def _karmada_replay(r: Mapping[str, Any]) -> list[str]:
    fleet, real = r["fleet"], r["karmada"]
    same = real["model_same_clusters"]

    def row(label: str, s: Mapping[str, Any], extra: str) -> list[Any]:
        return [
            label,
            s["hours"],
            _pct(s["reduction_vs_equal"]),
            _pct(s["fraction_of_oracle"]),
            s["replicas_moved_per_day"],
            s["redivisions_per_dwell"],
            extra,
        ]

    scheduled, ready = real["change_to_scheduled_s"], real["change_to_ready_s"]
    lines = [
        f"A read pool of {r['replicas']} replicas; method in docs/benchmarks.md.",
        "",
        *_table(
            [
                "figure",
                "hours",
                "vs equal weights",
                "of the oracle",
                "replicas moved/day",
                "re-divisions/dwell",
                "change → ready (median / max s)",
            ],
            [
                row(
                    f"model, {len(fleet['clusters'])} clusters, weeks {', '.join(fleet['weeks'])}",
                    fleet,
                    "–",
                ),
                row(
                    f"real Karmada, {len(real['clusters'])} members, weeks "
                    f"{', '.join(real['weeks'])}",
                    real,
                    f"{ready['median']} / {ready['max']}",
                ),
                row(f"model, the same {len(real['clusters'])} clusters and hours", same, "–"),
            ],
        ),
        f"Real Karmada: up in {real['karmada_startup_s']} s "
        f"({real.get('karmada_processes_resident_mib')} MiB resident), the replay took "
        f"{real['replay_wall_s']} s; {real['redivisions']} writes, "
        f"{real['writes_matching_the_estimate']} divided exactly as the controller estimated; "
        f"change → scheduled median {scheduled['median']} s, max {scheduled['max']} s.",
        "",
    ]
    for basis in ("fleet", "karmada"):
        lines += [f"Targets ({basis}):", "", *_targets(r["targets"][basis])]
    return lines


def _targets(targets: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return _table(
        ["target", "wanted", "measured", "verdict"],
        [[name, t["target"], t["value"], t["met"]] for name, t in targets.items()],
    )


def command_line() -> str:
    return " ".join(["python -m bench", *sys.argv[1:]])
