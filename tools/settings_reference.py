"""Renders docs/settings.md, the reference of every settings variable of the product.

``python -m tools.settings_reference`` prints it; ``--write`` replaces docs/settings.md. The unit
tests fail while the file differs from what the code renders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from multicluster.settings import KarmadaSettings
from reporter.settings import ReporterSettings
from shared.settings import CarbonSettings
from shared.settings.reference import render
from tiers.settings import TiersSettings
from webhook.settings import WebhookSettings

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "settings.md"

READERS = (
    (CarbonSettings, "webhook, reporter, tiers and karmada"),
    (WebhookSettings, "webhook"),
    (ReporterSettings, "reporter"),
    (TiersSettings, "tiers"),
    (KarmadaSettings, "karmada"),
)


def reference() -> str:
    return render(READERS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"replace {DOCUMENT.name}")
    args = parser.parse_args(argv)
    if args.write:
        DOCUMENT.write_text(reference(), encoding="utf-8")
    else:
        sys.stdout.write(reference())


if __name__ == "__main__":
    main()
