#!/usr/bin/env python3
"""Checks the repository's Markdown (`make check`): every relative link resolves to a file in the
repository and, with a `#fragment`, to a heading of that file (GitHub's anchor rules); no
document points outside the repository. `third_party/` is vendored as published and left out.

    python3 scripts/check-doc-links.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# Paths that exist only on a development machine, never in a clone.
OUTSIDE = re.compile(r"\.\./shared/|/work/")


def prose_lines(text: str):
    """Lines outside fenced code blocks, with their numbers."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.lower().replace("`", "")
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def main() -> int:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    documents = [ROOT / f for f in files if not f.startswith("third_party/")]
    cache: dict[Path, set[str]] = {}
    errors = []
    for doc in documents:
        text = doc.read_text(encoding="utf-8")
        where = doc.relative_to(ROOT)
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                errors.append(f"{where}:{number}: names a path outside the repository: {line.strip()}")
        for number, line in prose_lines(text):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, …
                    continue
                path_part, _, fragment = target.partition("#")
                resolved = (doc.parent / path_part).resolve() if path_part else doc
                if ROOT not in resolved.parents and resolved != ROOT:
                    errors.append(f"{where}:{number}: {target}: outside the repository")
                    continue
                if not resolved.exists():
                    errors.append(f"{where}:{number}: {target}: no such file")
                    continue
                if fragment:
                    if resolved.suffix != ".md":
                        errors.append(f"{where}:{number}: {target}: anchor into a file that is not Markdown")
                        continue
                    if resolved not in cache:
                        cache[resolved] = anchors(resolved)
                    if fragment not in cache[resolved]:
                        errors.append(f"{where}:{number}: {target}: no heading with that anchor")
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        return 1
    print(f"doc links: {len(documents)} Markdown files, every relative link resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
