"""AdmissionReview wire formats, parsing of a request body, and response building.

The TypedDicts mirror ``admission.k8s.io/v1`` (kubernetes/api ``admission/v1/types.go``). Parsing
turns an HTTP body into an ``AdmissionRequest`` or raises ``BadReview`` with a one-line reason;
the response builders echo the received ``apiVersion``/``kind`` and ``request.uid``, which the
API server verifies before it looks at anything else.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, NotRequired, TypedDict

import orjson

from shared.core.shapes import MAX_DEPTH, deeper_than, kind_of, quote
from webhook.errors import BadReview

REVIEW_KIND: Final = "AdmissionReview"
REVIEW_GROUP = "admission.k8s.io"
SUPPORTED_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
WARNING_LIMIT = 120
"""Kubernetes asks webhooks to keep each warning within 120 characters."""
MAX_WARNINGS = 8

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
_OPERATIONS: tuple[str, ...] = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class RequestPayload(TypedDict, total=False):
    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    subResource: str
    requestKind: GroupVersionKind
    requestResource: GroupVersionResource
    requestSubResource: str
    name: str
    namespace: str
    operation: Operation
    userInfo: UserInfo
    object: dict[str, Any] | None
    oldObject: dict[str, Any] | None
    dryRun: bool
    options: dict[str, Any] | None


class RequestReview(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: RequestPayload


class ResponseStatus(TypedDict, total=False):
    code: int
    message: str
    reason: str


class ResponsePayload(TypedDict):
    uid: str
    allowed: bool
    patch: NotRequired[str]
    patchType: NotRequired[Literal["JSONPatch"]]
    warnings: NotRequired[list[str]]
    status: NotRequired[ResponseStatus]
    auditAnnotations: NotRequired[dict[str, str]]


class ResponseReview(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: ResponsePayload


class JsonPatchOp(TypedDict):
    """One RFC 6902 operation. The mutation only ever emits ``add``."""

    op: Literal["add", "remove", "replace", "test"]
    path: str
    value: NotRequired[Any]


class AdmissionRequest(NamedTuple):
    """The parts of a validated AdmissionReview request the webhook acts on.

    A named tuple rather than a frozen dataclass: one is made for every request, and a frozen
    dataclass takes several times longer to make."""

    api_version: str
    """Echoed in the response: the API server expects the version it sent."""
    uid: str
    operation: str
    kind: GroupVersionKind
    namespace: str
    """``request.namespace``: always set correctly, unlike the object's own metadata."""
    name: str
    """Empty on CREATE when the pod uses ``generateName``."""
    object: dict[str, Any] | None
    dry_run: bool = False

    def with_object(self, pod: dict[str, Any]) -> AdmissionRequest:
        """This request about ``pod`` instead."""
        return AdmissionRequest(*self[:6], pod, self.dry_run)

    @property
    def generate_name(self) -> str:
        """``metadata.generateName`` when the object has one, for log lines about nameless pods."""
        metadata = (self.object or {}).get("metadata")
        value = metadata.get("generateName") if isinstance(metadata, dict) else None
        return value if isinstance(value, str) else ""

    @property
    def display_name(self) -> str:
        """``namespace/name`` or ``namespace/generateName*``, for logs."""
        name = self.name or (f"{self.generate_name}*" if self.generate_name else "<unnamed>")
        return f"{self.namespace}/{name}" if self.namespace else name


def parse_review(body: bytes | str) -> AdmissionRequest:
    """Validate an HTTP body as an AdmissionReview request; ``BadReview`` says what is wrong.

    JSON that orjson cannot read and the standard library can is held to ``MAX_DEPTH`` levels."""
    try:
        # Several times faster than the standard library, and it refuses nesting deeper than
        # 1,024 levels; nothing on the admission path recurses into client data (messages only
        # name containers, serialising has its own limit), so a body it reads needs no walk.
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses a few bodies the standard library reads (UTF-16, NaN, lone surrogates,
        # nesting deeper than 1024, integers beyond 64 bits); the standard library has the last
        # word, and what it reads is held to ``MAX_DEPTH``.
        data = _loads(body)
        if deeper_than(data, MAX_DEPTH):
            raise BadReview(f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    return review_from_dict(data)


def encode_review(review: ResponseReview) -> bytes:
    """The HTTP body of a response: compact UTF-8 JSON."""
    return _dumps(review)


def _loads(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        # ValueError covers JSONDecodeError and an integer literal beyond Python's digit limit.
        raise BadReview(f"malformed JSON: {_one_line(str(e))}") from e
    except RecursionError as e:
        raise BadReview("malformed JSON: nested too deeply") from e


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # A lone surrogate (a request may carry one escaped, and a warning may quote it) is not
        # UTF-8; the standard library writes it as an escape.
        return json.dumps(value, separators=(",", ":")).encode()


def review_from_dict(data: object) -> AdmissionRequest:
    """Validate an already decoded AdmissionReview; see ``parse_review``."""
    if not isinstance(data, dict):
        raise BadReview(f"not an AdmissionReview: expected a JSON object, got {kind_of(data)}")
    if data.get("kind") != REVIEW_KIND:
        raise BadReview(f"not an AdmissionReview: kind is {quote(data.get('kind'))}")
    api_version = data.get("apiVersion")
    if api_version not in SUPPORTED_VERSIONS:
        raise BadReview(
            f"unsupported AdmissionReview apiVersion {quote(api_version)}; "
            f"expected {SUPPORTED_VERSIONS[0]}"
        )
    request = data.get("request")
    if not isinstance(request, dict):
        raise BadReview("not an AdmissionReview request: request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("missing request.uid")
    kind = request.get("kind")
    # Spelled out rather than all() over a generator: this runs for every request.
    if not (
        isinstance(kind, dict)
        and isinstance(group := kind.get("group"), str)
        and isinstance(version := kind.get("version"), str)
        and isinstance(kind_name := kind.get("kind"), str)
    ):
        raise BadReview("request.kind must be an object with string group, version and kind")
    operation = request.get("operation")
    if operation not in _OPERATIONS:
        raise BadReview(f"request.operation must be one of {', '.join(_OPERATIONS)}")
    obj = request.get("object")
    if obj is not None and not isinstance(obj, dict):
        raise BadReview(f"request.object must be an object or null, got {kind_of(obj)}")
    namespace = request.get("namespace", "")
    name = request.get("name", "")
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise BadReview("request.namespace and request.name must be strings")
    # Positional: a named tuple takes keywords several times slower, and this runs per request.
    return AdmissionRequest(
        api_version,
        uid,
        operation,
        {"group": group, "version": version, "kind": kind_name},
        namespace,
        name,
        obj,
        request.get("dryRun") is True,
    )


@dataclass(frozen=True, slots=True)
class EncodedPatch:
    """A JSON patch with its wire form, for a patch sent more than once. Its operations may be
    shared between responses: nothing may modify them."""

    ops: tuple[JsonPatchOp, ...]
    text: str
    """``encode_patch(ops)``."""

    @classmethod
    def of(cls, ops: Sequence[JsonPatchOp]) -> EncodedPatch:
        return cls(tuple(ops), encode_patch(ops) if ops else "")

    def __bool__(self) -> bool:
        return bool(self.ops)


def encode_patch(patch: Sequence[JsonPatchOp]) -> str:
    """The ``response.patch`` text: the patch as JSON, base64-encoded."""
    return base64.b64encode(_dumps(list(patch))).decode("ascii")


def allow(
    request: AdmissionRequest,
    *,
    patch: Sequence[JsonPatchOp] | EncodedPatch = (),
    warnings: Iterable[str] = (),
) -> ResponseReview:
    """An allowing response, with the JSON patch (base64) only when there is something to change."""
    response = ResponsePayload(uid=request.uid, allowed=True)
    text = patch.text if isinstance(patch, EncodedPatch) else encode_patch(patch) if patch else ""
    if text:
        response["patch"] = text
        response["patchType"] = "JSONPatch"
    shown = [shorten_warning(text) for text in warnings][:MAX_WARNINGS]
    if shown:
        response["warnings"] = shown
    return ResponseReview(apiVersion=request.api_version, kind=REVIEW_KIND, response=response)


def answer_again(review: ResponseReview, request: AdmissionRequest) -> ResponseReview:
    """``review``'s answer to another request: with its uid, in its AdmissionReview version."""
    response = review["response"].copy()
    response["uid"] = request.uid
    again: ResponseReview = {
        "apiVersion": request.api_version,
        "kind": REVIEW_KIND,
        "response": response,
    }
    return again


def answer_tail(review: ResponseReview) -> bytes:
    """What follows the uid in ``encode_review(review)``, for ``encode_again``."""
    rest = {name: value for name, value in review["response"].items() if name != "uid"}
    return b"," + _dumps(rest)[1:] + b"}"


def encode_again(tail: bytes, request: AdmissionRequest) -> bytes:
    """``encode_review(answer_again(review, request))`` from ``answer_tail(review)``: the answer
    (its patch, a few KB) is not serialised again for every pod it is given to."""
    return b"".join(
        (
            b'{"apiVersion":',
            _dumps(request.api_version),
            b',"kind":"AdmissionReview","response":{"uid":',
            _dumps(request.uid),
            tail,
        )
    )


def decode_patch(response: ResponseReview) -> list[JsonPatchOp]:
    """The JSON patch carried by a response, ``[]`` when it carries none."""
    encoded = response["response"].get("patch")
    if encoded is None:
        return []
    ops: list[JsonPatchOp] = json.loads(base64.b64decode(encoded))
    return ops


def build_review(
    pod: Mapping[str, Any],
    *,
    namespace: str,
    uid: str,
    operation: Operation = "CREATE",
    dry_run: bool = False,
) -> RequestReview:
    """An AdmissionReview as the API server would send it for ``pod`` (used by the preview CLI)."""
    metadata = pod.get("metadata")
    name = metadata.get("name", "") if isinstance(metadata, Mapping) else ""
    pod_kind = GroupVersionKind(group="", version="v1", kind="Pod")
    pods = GroupVersionResource(group="", version="v1", resource="pods")
    request = RequestPayload(
        uid=uid,
        kind=pod_kind,
        resource=pods,
        requestKind=pod_kind,
        requestResource=pods,
        name=name if isinstance(name, str) else "",
        namespace=namespace,
        operation=operation,
        userInfo=UserInfo(username="stellar-carbon-preview"),
        object=dict(pod),
        oldObject=None,
        dryRun=dry_run,
        options={"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    )
    return RequestReview(apiVersion=SUPPORTED_VERSIONS[0], kind=REVIEW_KIND, request=request)


def shorten_warning(text: str, limit: int = WARNING_LIMIT) -> str:
    """One line of at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
