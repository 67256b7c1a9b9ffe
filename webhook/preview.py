"""``python -m webhook.preview manifest.yaml``: what the webhook would do to a pod, offline.

Takes a Pod, or a workload (Deployment, StatefulSet, ReplicaSet, DaemonSet, Job, CronJob) whose pod
template it turns into the pod its controller would create. It wraps the pod in an AdmissionReview
and calls ``webhook.admission.admit``, the very function the HTTPS handler calls, against the mock
carbon data and the demo inventory (or ``--inventory FILE``). Prints the mutated pod as YAML, or
with ``--patch`` the JSON patch. Warnings and the outcome go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

import jsonpatch
import yaml

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.demo import StaticInventory, demo_inventory
from shared.cluster.inventory import Inventory
from shared.core.clock import Clock, fixed, utcnow
from shared.core.errors import ConfigError
from shared.core.shapes import object_or_empty
from shared.factory import build_runtime
from shared.settings import CarbonSettings
from webhook.admission import Admission, Placement, admit
from webhook.review import build_review, review_from_dict
from webhook.settings import Policy

_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job"})
_OWNER_KIND = {"Deployment": "ReplicaSet", "CronJob": "Job"}
"""The controller that actually creates the pods of a workload kind, when it is another one."""


class PreviewError(Exception):
    """The manifest cannot be previewed; the message says why, in one line."""


def pod_from_workload(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The pod a manifest stands for: the Pod itself, or what a controller makes of its template."""
    kind = manifest.get("kind")
    if kind == "Pod":
        return _json_copy(manifest)
    spec = object_or_empty(manifest.get("spec"))
    if kind in _TEMPLATE_KINDS:
        template = object_or_empty(spec.get("template"))
    elif kind == "CronJob":
        template = object_or_empty(
            object_or_empty(object_or_empty(spec.get("jobTemplate")).get("spec")).get("template")
        )
    else:
        raise PreviewError(f"kind {kind!r} is not a Pod or a workload with a pod template")
    if not template:
        raise PreviewError(f"{kind} has no spec.template")
    workload = object_or_empty(manifest.get("metadata"))
    name = str(workload.get("name") or "preview")
    metadata = _json_copy(object_or_empty(template.get("metadata")))
    metadata.pop("name", None)
    metadata["generateName"] = f"{name}-"
    if kind == "StatefulSet":
        # StatefulSet pods get a stable ordinal name on top of the generateName prefix.
        metadata["name"] = f"{name}-0"
        metadata.setdefault("labels", {})["statefulset.kubernetes.io/pod-name"] = f"{name}-0"
    if workload.get("namespace"):
        metadata["namespace"] = workload["namespace"]
    owner_kind = _OWNER_KIND.get(str(kind), str(kind))
    metadata["ownerReferences"] = [
        {
            "apiVersion": "batch/v1" if owner_kind == "Job" else "apps/v1",
            "kind": owner_kind,
            "name": name,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"stellar-carbon-preview/{kind}/{name}")),
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": _json_copy(object_or_empty(template.get("spec"))),
    }


def load_manifest(text: str, source: str) -> Mapping[str, Any]:
    """The first Pod or workload document of a YAML/JSON file."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as e:
        raise PreviewError(f"{source}: not valid YAML or JSON: {e}") from e
    for document in documents:
        if isinstance(document, Mapping) and document.get("kind") in (
            {"Pod", "CronJob"} | _TEMPLATE_KINDS
        ):
            return document
    raise PreviewError(f"{source}: no Pod, Deployment, StatefulSet or other workload found")


def preview(
    pod: Mapping[str, Any],
    *,
    snapshot: CarbonSnapshot,
    inventory: Inventory,
    placement: Placement,
    clock: Clock,
    namespace: str = "default",
) -> Admission:
    """Admit ``pod`` exactly as the webhook would, from an AdmissionReview built for it."""
    metadata = object_or_empty(pod.get("metadata"))
    review = build_review(
        pod,
        namespace=str(metadata.get("namespace") or namespace),
        uid=str(uuid.uuid4()),
    )
    return admit(
        review_from_dict(review),
        carbon=lambda: snapshot,
        nodes=lambda: inventory.nodes,
        placement=placement,
        clock=clock,
    )


async def mock_snapshot(inventory: Inventory, *, at: datetime | None) -> CarbonSnapshot:
    """Carbon data for the inventory's regions from the mock provider (static as fallback)."""
    runtime = build_runtime(CarbonSettings(providers=("mock", "static"), mock_clock=at))
    runtime.track_inventory(inventory)
    try:
        return await runtime.refresher.refresh_once()
    finally:
        await runtime.close()


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        text = sys.stdin.read() if args.manifest == "-" else _read(args.manifest)
        pod = pod_from_workload(load_manifest(text, args.manifest))
        inventory = (
            StaticInventory.from_file(args.inventory) if args.inventory else demo_inventory()
        )
    except (PreviewError, ConfigError) as e:
        print(f"preview: {e}", file=sys.stderr)
        return 2
    clock: Clock = fixed(args.at) if args.at is not None else utcnow
    snapshot = asyncio.run(mock_snapshot(inventory, at=args.at))
    placement = Placement(default_policy=Policy(args.policy))
    admission = preview(
        pod,
        snapshot=snapshot,
        inventory=inventory,
        placement=placement,
        clock=clock,
        namespace=args.namespace,
    )
    print(f"outcome: {admission.outcome}", file=sys.stderr)
    if admission.ranking is not None:
        print(f"ranking: {admission.ranking.annotation()}", file=sys.stderr)
    for warning in admission.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        if args.patch:
            json.dump(list(admission.patch), out, indent=2)
            out.write("\n")
        else:
            mutated = jsonpatch.apply_patch(pod, list(admission.patch))
            yaml.safe_dump(mutated, out, sort_keys=False)
        out.flush()
    except BrokenPipeError:
        # Piped into `head` and the like: the reader is gone, which is not an error.
        sys.stderr.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m webhook.preview",
        description="Show what the carbon-aware webhook would do to a pod, without a cluster.",
    )
    parser.add_argument("manifest", help="Pod or workload manifest (YAML or JSON); - for stdin")
    parser.add_argument("--patch", action="store_true", help="print the JSON patch only")
    parser.add_argument("--inventory", help="node inventory file instead of the demo cluster")
    parser.add_argument(
        "--policy",
        choices=[p.value for p in Policy],
        default=Policy.PREFER.value,
        help="default policy, as the webhook's setting (a pod annotation still wins)",
    )
    parser.add_argument("--namespace", default="default", help="namespace when the pod has none")
    parser.add_argument(
        "--at",
        type=_timestamp,
        help="decide as of this RFC 3339 time (mock data follows it); default now",
    )
    return parser


def _timestamp(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from e
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a timezone, e.g. {text}Z")
    return at


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise PreviewError(f"cannot read {path}: {e}") from e


def _json_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy holding only JSON types, as the API server would send the object."""
    copied: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return copied


if __name__ == "__main__":
    raise SystemExit(main())
