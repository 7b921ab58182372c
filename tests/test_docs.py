"""README.md and docs/ stay true: every relative link leads to a file (and a heading, for an
anchor), and every `hrpose` command they show names a real command whose --help lists each
flag it uses."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from hrpose.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    body = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(line.lstrip("#")) for line in body.splitlines() if line.startswith("#")}


def test_the_readme_fits_on_a_few_screens():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_somewhere(page: Path):
    body = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in LINK.findall(body):
        if re.match(r"[a-z]+:", target):
            continue                                   # http(s), mailto: not checked here
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target} leads nowhere"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"{page.name}: no heading #{anchor} in {file.name}"


def _commands(text: str) -> list[str]:
    """`hrpose ...` command lines: in shell blocks (continuations joined) and inline code."""
    found = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            at = line.find("hrpose ")
            if at >= 0 and not line.startswith(("#", "pip")):
                found.append(line[at:])
    found += [c for c in re.findall(r"`(hrpose [^`]+)`", text) if "..." not in c]
    return found


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by name, sub-commands as 'data synth'."""
    out = {}
    for name, parser in build_parser()._subparsers._group_actions[0].choices.items():
        out[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                out.update({f"{name} {sub}": p for sub, p in action.choices.items()})
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_shown_parses(page: Path):
    parsers = _parsers()
    commands = _commands(page.read_text())
    for command in commands:
        words = shlex.split(command.replace("$(", "(").replace('"', ""), posix=True)[1:]
        if not words or words[0].startswith("-"):
            continue                                   # `hrpose --help`, `hrpose -V`
        name = " ".join(words[:2]) if " ".join(words[:2]) in parsers else words[0]
        assert name in parsers, f"{page.name}: `{command}`: no command {words[0]!r}"
        flags = {s for a in parsers[name]._actions for s in a.option_strings}
        for word in words:
            flag = word.split("=", 1)[0]
            if flag.startswith("--"):
                assert flag in flags, f"{page.name}: `{command}`: {name} has no {flag}"
