"""README.md and docs/*.md against the code they describe: every `rfmlake ...` invocation they show
names commands, flags and choices the CLI's argparse parser has (and a complete example passes the
required flags), and every Python file or doc they name exists. A doc that claims what the code does
not do is a bug; these checks make the mechanical kind fail CI."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from rfmlake.cli.main import build_parser

REPO = Path(__file__).parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]  # not docs/adr: decisions as taken

_CODE_SPAN = re.compile(r"`([^`]+)`")
# `rfmlake <command> ...` at the start of a command: line start, after whitespace, a path (.venv/bin/) or `$(`
_INVOCATION = re.compile(r"(?:^|(?<=[\s/(]))rfmlake\s+([a-z].*)")
_FLAG = re.compile(r"^--[a-z][a-z0-9-]*$")
_LITERAL = re.compile(r"^[a-z][a-z0-9_]*$")  # a value as typed; NAME, <id>, DIR are placeholders


@dataclass(frozen=True)
class Invocation:
    where: str      # file:line
    text: str       # what follows `rfmlake `
    complete: bool  # a full example (code block, table row), not a reference to one flag in prose


def invocations(path: Path) -> list[Invocation]:
    found: list[Invocation] = []
    in_block = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        where = f"{path.relative_to(REPO)}:{number}"
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            match = _INVOCATION.search(line)
            if match:
                text = re.split(r"\s#", match.group(1))[0]  # a shell comment
                found.append(Invocation(where, text, complete=True))
            continue
        for span in _CODE_SPAN.findall(line):
            match = _INVOCATION.search(span)
            if match:
                found.append(Invocation(where, match.group(1), complete=line.lstrip().startswith("|")))
    return found


def _tokens(text: str) -> list[str]:
    text = text.replace("\\|", "|")
    text = re.sub(r'"[^"]*"', " QUERY ", text)  # a quoted SQL query is one positional argument
    return [t.strip("[]()&;,") for t in text.split() if t.strip("[]()&;,")]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def _positional_choices(parser: argparse.ArgumentParser) -> set[str]:
    return {str(c) for a in parser._actions if not a.option_strings and a.choices
            and not isinstance(a, argparse._SubParsersAction) for c in a.choices}


def problems(invocation: Invocation, root: argparse.ArgumentParser) -> list[str]:
    """What in one documented invocation the parser does not accept (empty: it matches)."""
    tokens = _tokens(invocation.text)
    parser, path, errors = root, ["rfmlake"], []
    words = iter(tokens)
    # the command path: rfmlake <command> [<subcommand>], or alternatives a|b|c of the last level
    for word in words:
        if word.startswith("-"):
            break
        commands = _subparsers(parser)
        names = word.split("|")
        if commands and len(names) == 1 and word in commands:
            parser, path = commands[word], [*path, word]
            continue
        if commands and parser is root:
            errors.append(f"`rfmlake {word}`: no such command (commands: {', '.join(commands)})")
            return errors
        known = set(commands) | _positional_choices(parser)
        if len(names) > 1 and known:
            errors += [f"`{' '.join(path)} {n}`: not one of {sorted(known)}" for n in names if n not in known]
        break
    options = _options(parser)
    for position, token in enumerate(tokens):
        if not _FLAG.match(token):
            continue
        action = options.get(token)
        if action is None:
            errors.append(f"`{' '.join(path)}` has no option {token} (it has {', '.join(sorted(options))})")
            continue
        value = tokens[position + 1] if position + 1 < len(tokens) else ""
        if action.choices and action.nargs != 0:
            for choice in value.split("|"):
                if _LITERAL.match(choice) and choice not in action.choices:
                    errors.append(f"`{' '.join(path)} {token} {choice}`: not one of {list(action.choices)}")
    if invocation.complete and any(_FLAG.match(t) for t in tokens) and not _subparsers(parser):
        given = set(tokens)
        for action in parser._actions:
            if action.required and action.option_strings and not given & set(action.option_strings):
                errors.append(f"`{' '.join(path)}` example lacks the required {'/'.join(action.option_strings)}")
    return errors


ALL = [invocation for doc in DOCS for invocation in invocations(doc)]


def test_the_docs_show_rfmlake_invocations() -> None:
    # the scan finds what it is meant to check (a regex that found nothing would pass everything)
    assert len(ALL) > 100
    assert {i.text.split()[0] for i in ALL} >= {"run", "demo", "sql", "activate", "journeys", "serve", "erase"}


@pytest.mark.parametrize("invocation", ALL, ids=[i.where for i in ALL])
def test_documented_invocation_matches_the_cli(invocation: Invocation) -> None:
    assert problems(invocation, build_parser()) == [], invocation.where


@pytest.mark.parametrize(("text", "complete", "expected"), [
    ("run --input DIR --lake DIR [--as-of YYYY-MM-DD]", True, []),
    ("sql --lake DIR --format yaml", True, ["`rfmlake sql --format yaml`: not one of ['table', 'csv', 'json']"]),
    ("activate --lake DIR --destinations file", True, ["`rfmlake activate` has no option --destinations"]),
    ("profiles index --full", True, ["`rfmlake profiles index` example lacks the required --lake"]),
    ("profiles index --full", False, []),  # prose naming a flag
    ("journeys validate|run|audit", False, ["`rfmlake journeys audit`: not one of"]),
    ("governance validate|plan|apply|show", False, []),
    ("export --lake DIR", True, ["`rfmlake export`: no such command"]),
])
def test_the_check_finds_drift(text: str, complete: bool, expected: list[str]) -> None:
    found = problems(Invocation("test", text, complete), build_parser())
    assert len(found) == len(expected) and all(f.startswith(e) for f, e in zip(found, expected, strict=True)), found


# A repository path the docs name: a Python file, or a doc. (Other paths may name lake or S3 keys.)
_REPO_FILE = re.compile(r"(?<![\w/.<$-])((?:src|tests|lambdas|infra|glue_jobs|models|bench|tools)/[\w./-]*\.py"
                        r"|docs/[\w./-]*\.md)\b")


def test_python_files_and_docs_the_docs_name_exist() -> None:
    missing = [f"{doc.relative_to(REPO)}:{number}: {path}"
               for doc in DOCS for number, line in enumerate(doc.read_text().splitlines(), 1)
               for path in _REPO_FILE.findall(line) if not (REPO / path).exists()]
    assert missing == []
