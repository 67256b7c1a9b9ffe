"""The Dockerfile, checked without building it: what it copies exists and is not ignored, and the
commands it names are the package's console scripts."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib

from tests.tools import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def instructions(keyword: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(keyword + " ")
    ]


def ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def context_sources() -> list[str]:
    sources: list[str] = []
    for args in instructions("COPY"):
        if args.startswith("--from="):
            continue
        sources += args.split()[:-1]
    return sources


def test_every_file_the_image_copies_from_the_context_exists_and_is_not_ignored() -> None:
    sources = context_sources()
    assert {"pyproject.toml", "LICENSE", "NOTICE", "shared", "webhook", "reporter"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), source
        assert not ignored(source), source


def test_the_image_runs_a_console_script_of_the_package() -> None:
    with (REPO / "pyproject.toml").open("rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    (cmd,) = instructions("CMD")
    assert json.loads(cmd)[0] in scripts
    assert {"stellar-carbon-webhook", "stellar-carbon-reporter"} <= set(scripts)


def test_the_image_runs_as_the_non_root_user_the_chart_expects() -> None:
    (user,) = instructions("USER")
    assert user.strip() == "65532:65532"
    values = (REPO / "charts" / "stellar-carbon" / "values.yaml").read_text(encoding="utf-8")
    assert "65532" in values
