"""``python -m bench [--quick] [--only admission,carbon,...,history,karmada-replay]``.

Runs the chosen parts in order and writes ``bench/results/latest.json`` and ``latest.md``. With
``--only``, parts not run keep their previous results in those files. ``--quick`` (a couple of
minutes) shortens every measurement and skips the carbon part's real-scheduler replay; the
read pools' (``readpool-kube``) runs one simulated day instead of two weeks, and so does the
multi-cluster replay on the real Karmada (``karmada-replay``) instead of one week; the
envelope's seeds a tenth of 5,000 nodes and 150,000 pods, the API server load
(``apiserver-load``) runs one round instead of three, and following the grid
(``follow-model``) one 2024 week, without its sensitivity rows or 2023. The
real-control-plane parts need its binaries (``make bench`` provides them through
``STELLAR_CARBON_BIN``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bench import admission, carbon, follow, growth, history, readpool, reporter, results
from shared.core.clock import rfc3339

logger = logging.getLogger("bench")

PARTS: dict[str, Callable[[bool], Awaitable[dict[str, Any]]]] = {
    "admission": admission.run,
    "carbon": lambda quick: carbon.run(quick, kube=not quick),
    "reporter": reporter.run,
    "growth": growth.run,
    "readpool-model": readpool.run,
    "readpool-kube": lambda quick: _readpool_kube(quick),
    "envelope": lambda quick: _envelope(quick),
    "apiserver-load": lambda quick: _apiserver_load(quick),
    "follow-model": follow.run,
    "history": history.run,
    "karmada-replay": lambda quick: _karmada_replay(quick),
}


async def _readpool_kube(quick: bool) -> dict[str, Any]:
    from bench import kube_readpool  # needs the control-plane binaries

    return await kube_readpool.run(quick)


async def _envelope(quick: bool) -> dict[str, Any]:
    from bench import envelope  # needs the control-plane binaries

    return await envelope.run(quick)


async def _apiserver_load(quick: bool) -> dict[str, Any]:
    from bench import apiserver_load  # needs the control-plane binaries

    return await apiserver_load.run(quick)


async def _karmada_replay(quick: bool) -> dict[str, Any]:
    from bench import karmada_replay  # needs the control-plane and Karmada binaries

    return await karmada_replay.run(quick)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="stellar-carbon benchmarks; results in bench/results/latest.{json,md}",
    )
    parser.add_argument("--quick", action="store_true", help="short runs (under two minutes)")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to run (default: all of {', '.join(PARTS)})",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in PARTS]
    if unknown or not chosen:
        parser.error(f"--only takes {', '.join(PARTS)}; got {args.only!r}")
    args.parts = chosen
    return args


async def _run(args: argparse.Namespace) -> bool:
    previous = results.load()
    mode = "quick" if args.quick else "full"
    report: dict[str, Any] = {
        "command": results.command_line(),
        "mode": mode,
        "started_at": rfc3339(datetime.now(UTC)),
        "machine": results.machine(),
        "parts": dict(previous.get("parts", {})),
    }
    ok = True
    started = time.perf_counter()
    for name in args.parts:
        logger.info("running %s (%s)", name, mode)
        began = time.perf_counter()
        entry: dict[str, Any] = {"mode": mode, "ran_at": rfc3339(datetime.now(UTC))}
        try:
            entry["result"] = await PARTS[name](args.quick)
        except Exception as e:
            ok = False
            entry["error"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        entry["seconds"] = round(time.perf_counter() - began, 1)
        report["parts"][name] = entry
        logger.info("%s done in %.0fs", name, entry["seconds"])
        report["finished_at"] = rfc3339(datetime.now(UTC))
        report["seconds"] = round(time.perf_counter() - started, 1)
        report.update(_headline(report["parts"]))
        results.save(report)
    logger.info("results in %s and %s", results.JSON_FILE, results.MARKDOWN_FILE)
    return ok


_HEADLINE_KEYS: dict[str, tuple[str, ...]] = {
    "admission": ("ratio", "capacity_ratio", "p99_ms"),
    "carbon": ("reduction_vs_agnostic", "fraction_of_oracle", "basis"),
    "reporter": ("nodes_p99_ms", "metrics_p99_ms", "rss_mb"),
    "envelope": ("rss_mb", "prometheus_p99_ms", "admission_p99_ms"),
}
"""Per part, the keys of its result other tools read."""


def _headline(parts: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys other tools read: admission.ratio, carbon.fraction_of_oracle, ..."""

    def result(name: str) -> dict[str, Any]:
        value: dict[str, Any] = parts.get(name, {}).get("result", {})
        return value

    headline: dict[str, Any] = {}
    for name, keys in _HEADLINE_KEYS.items():
        if r := result(name):
            headline[name] = {key: r[key] for key in keys}
    if r := result("reporter"):
        headline["reporter"]["provider_calls_per_hour"] = r["provider_calls"]["calls_per_hour"]
    if result("growth"):
        headline["growth"] = result("growth")["growth_factor"]
    if result("apiserver-load"):
        r = result("apiserver-load")
        headline["apiserver_load"] = {
            "steady_added_p99_ms": r["steady"]["added_p99_ms"],
            "burst_added_p99_ms": r["burst"]["added_p99_ms"],
            "failed_creations": r["targets"]["failed_creations"]["value"],
            "unpatched_selected_pods": r["targets"]["unpatched_selected_pods"]["value"],
        }
    if result("follow-model"):
        headline["follow"] = {
            case: {key: verdict[key] for key in ("fraction_of_oracle", "evictions_per_replica_day")}
            for case, verdict in result("follow-model")["targets"].items()
        }
    if result("history"):
        headline["history"] = {
            name: target["value"] for name, target in result("history")["targets"].items()
        }
    if result("karmada-replay"):
        r = result("karmada-replay")
        headline["karmada_replay"] = {
            basis: {
                "reduction_vs_equal": r[basis]["reduction_vs_equal"],
                "fraction_of_oracle": r[basis]["fraction_of_oracle"],
                "redivisions_per_dwell": r[basis]["redivisions_per_dwell"],
            }
            for basis in ("fleet", "karmada")
        }
    return headline


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logger.setLevel(logging.INFO)
    logging.getLogger("bench").setLevel(logging.INFO)
    sys.exit(0 if asyncio.run(_run(args)) else 1)


if __name__ == "__main__":
    main()
