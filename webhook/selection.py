"""Which admission requests the webhook changes, and under which policy.

Pure: looks only at the request. Opt-in is the upstream Stellar-K8s read-pool label or an explicit
annotation; the opt-out annotation always wins; bound, mirror and DaemonSet pods are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.core.shapes import object_or_empty
from webhook.outcomes import SkipReason
from webhook.review import AdmissionRequest
from webhook.settings import Policy

ROLE_LABEL = "stellar.org/role"
READ_REPLICA = "read-replica"
CARBON_AWARE_ANNOTATION = "stellar.org/carbon-aware"
POLICY_ANNOTATION = "stellar.org/carbon-policy"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

_POD = {"group": "", "version": "v1", "kind": "Pod"}
_OPT_IN = frozenset({"enabled", "true"})
_OPT_OUT = frozenset({"disabled", "false"})


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to mutate; ``reason`` is set exactly when not."""

    reason: SkipReason | None
    policy: Policy
    warnings: tuple[str, ...] = ()

    @property
    def mutate(self) -> bool:
        return self.reason is None


def should_mutate(request: AdmissionRequest, *, default_policy: Policy) -> Decision:
    """Decide for one request; ``default_policy`` applies without a valid policy annotation."""

    def skip(reason: SkipReason) -> Decision:
        return Decision(reason=reason, policy=default_policy)

    if request.kind != _POD:
        return skip(SkipReason.NOT_POD)
    if request.operation != "CREATE":
        return skip(SkipReason.NOT_CREATE)
    pod = request.object
    if pod is None:
        return skip(SkipReason.NO_OBJECT)
    metadata = object_or_empty(pod.get("metadata"))
    labels = object_or_empty(metadata.get("labels"))
    annotations = object_or_empty(metadata.get("annotations"))
    warnings: list[str] = []

    opt = annotations.get(CARBON_AWARE_ANNOTATION)
    opt_value = opt.strip().lower() if isinstance(opt, str) else None
    if opt_value in _OPT_OUT:
        return skip(SkipReason.OPTED_OUT)
    if opt_value is not None and opt_value not in _OPT_IN:
        warnings.append(
            f"{CARBON_AWARE_ANNOTATION}={opt!r} is not enabled/true/disabled/false; ignored"
        )
    selected = labels.get(ROLE_LABEL) == READ_REPLICA or opt_value in _OPT_IN
    if not selected:
        return Decision(SkipReason.NOT_SELECTED, default_policy, tuple(warnings))

    spec = object_or_empty(pod.get("spec"))
    if spec.get("nodeName"):
        return skip(SkipReason.BOUND)
    if MIRROR_ANNOTATION in annotations:
        return skip(SkipReason.MIRROR)
    owners = metadata.get("ownerReferences")
    if isinstance(owners, list) and any(
        isinstance(owner, Mapping) and owner.get("kind") == "DaemonSet" for owner in owners
    ):
        return skip(SkipReason.DAEMONSET)

    policy = default_policy
    raw_policy = annotations.get(POLICY_ANNOTATION)
    if raw_policy is not None:
        try:
            policy = Policy(str(raw_policy).strip().lower())
        except ValueError:
            warnings.append(
                f"{POLICY_ANNOTATION}={raw_policy!r} is not prefer/require; using {default_policy}"
            )
    return Decision(reason=None, policy=policy, warnings=tuple(warnings))
