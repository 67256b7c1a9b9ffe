"""Which admission requests the webhook changes, and under which policy.

Pure: looks at the request and at the ``stellar.org/carbon-aware`` annotations of the pod's
owning StatefulSet and namespace the caller passes in. Opt-in is the upstream Stellar-K8s
read-pool label or an explicit annotation. The pod's own annotation, when it is one of the
recognised values, decides alone; otherwise ``disabled`` on the StatefulSet or the namespace opts
out (whatever the other says: the operator writes ``enabled`` on every read-pool StatefulSet, so
a namespace opt-out must still win over it) and ``enabled`` on either opts in. Bound, mirror and
DaemonSet pods are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

POD_KIND = {"group": "", "version": "v1", "kind": "Pod"}
_OPT_IN = frozenset({"enabled", "true"})
_OPT_OUT = frozenset({"disabled", "false"})


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to mutate; ``reason`` is set exactly when not."""

    reason: SkipReason | None
    policy: Policy
    warnings: tuple[str, ...] = ()
    explicit_policy: bool = False
    """The pod carries a valid ``stellar.org/carbon-policy`` annotation."""

    @property
    def mutate(self) -> bool:
        return self.reason is None


def should_mutate(
    request: AdmissionRequest,
    *,
    default_policy: Policy,
    inherited: Sequence[str | None] = (),
) -> Decision:
    """Decide for one request; ``default_policy`` applies without a valid policy annotation.

    ``inherited``: the ``stellar.org/carbon-aware`` annotations of the owning StatefulSet and of
    the namespace (None where absent)."""

    def skip(reason: SkipReason) -> Decision:
        return Decision(reason=reason, policy=default_policy)

    if request.kind != POD_KIND:
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
    if opt_value in _OPT_IN:
        selected = True
    else:
        selected = labels.get(ROLE_LABEL) == READ_REPLICA
        # Plain loops rather than a set and any() over a generator: this runs for every pod.
        for value in inherited:
            if isinstance(value, str):
                above = value.strip().lower()
                if above in _OPT_OUT:
                    return skip(SkipReason.OPTED_OUT)
                selected = selected or above in _OPT_IN
    if not selected:
        return Decision(SkipReason.NOT_SELECTED, default_policy, tuple(warnings))

    spec = object_or_empty(pod.get("spec"))
    if spec.get("nodeName"):
        return skip(SkipReason.BOUND)
    if MIRROR_ANNOTATION in annotations:
        return skip(SkipReason.MIRROR)
    owners = metadata.get("ownerReferences")
    if isinstance(owners, list):
        for owner in owners:
            # ``dict`` first: what JSON decodes to, and several times cheaper than the ABC check.
            if (type(owner) is dict or isinstance(owner, Mapping)) and owner.get(
                "kind"
            ) == "DaemonSet":
                return skip(SkipReason.DAEMONSET)

    policy = default_policy
    explicit = False
    raw_policy = annotations.get(POLICY_ANNOTATION)
    if raw_policy is not None:
        try:
            policy = Policy(str(raw_policy).strip().lower())
            explicit = True
        except ValueError:
            warnings.append(
                f"{POLICY_ANNOTATION}={raw_policy!r} is not prefer/require; using {default_policy}"
            )
    if not warnings and not explicit:
        return _PLAIN[policy]
    return Decision(reason=None, policy=policy, warnings=tuple(warnings), explicit_policy=explicit)


_PLAIN = {policy: Decision(reason=None, policy=policy) for policy in Policy}
"""The decision for most selected pods (no warning, no policy of their own), made once."""
