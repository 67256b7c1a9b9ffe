"""The webhook's exception tree. Messages are one line and never carry key material."""

from __future__ import annotations


class WebhookError(Exception):
    """Base of every error the webhook raises on purpose."""


class BadReview(WebhookError):
    """The HTTP body is not a usable AdmissionReview: the caller gets a 400 with this reason."""


class MutationError(WebhookError):
    """The pod has a shape the mutation cannot merge into safely (e.g. ``affinity`` is a string).

    The pod is admitted unchanged: a patch that does not apply would fail the pod's creation even
    with ``failurePolicy: Ignore``.
    """


class CertificateError(WebhookError):
    """Serving certificate files or a stored pair are missing, unreadable or do not match."""
