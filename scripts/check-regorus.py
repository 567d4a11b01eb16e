#!/usr/bin/env python3
"""Checks that third_party/regorus is regorus 0.14.1 from crates.io plus exactly the patches
that third_party/regorus/PATCHES.md lists, and nothing else (`make check` runs it).

- The commit that added the vendored copy must hold the crate's own files unchanged: `src/`,
  `build.rs`, `LICENSE`, `README.md` byte for byte, and its `Cargo.toml` without the test,
  bench and example targets (their files are not vendored). The crate is fetched by cargo.
- Every later commit that changes the copy is one patch, named `regorus patch N: …`, or a
  follow-up of an earlier patch, `regorus patch N, continued: …`; a commit may also change
  PATCHES.md alone (wording). The patch numbers are the numbered entries of PATCHES.md,
  each once.
- The working tree holds no uncommitted change to the copy.
"""

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDORED = "third_party/regorus"
VERSION = "0.14.1"
# Files of the crate that are vendored unchanged (besides everything under src/).
TOP_FILES = ("build.rs", "LICENSE", "README.md")
PATCH_SUBJECT = re.compile(r"^regorus patch (\d+)(, continued)?: ")
PATCH_ENTRY = re.compile(r"^(\d+)\. \*\*", re.MULTILINE)


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def pristine_crate(work: Path) -> Path:
    """Fetches regorus VERSION with cargo (outside this workspace, so unpatched)."""
    (work / "src").mkdir(parents=True)
    (work / "src" / "lib.rs").write_text("")
    (work / "Cargo.toml").write_text(
        '[package]\nname = "regorus-pristine"\nversion = "0.0.0"\nedition = "2021"\n'
        f'[dependencies]\nregorus = {{ version = "={VERSION}", default-features = false }}\n'
    )
    subprocess.run(["cargo", "fetch", "--quiet"], cwd=work, check=True)
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--quiet"],
            cwd=work,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    (manifest,) = [
        p["manifest_path"] for p in metadata["packages"] if p["name"] == "regorus"
    ]
    return Path(manifest).parent


def check_vendoring_commit(commit: str, crate: Path, work: Path) -> list[str]:
    tree = work / "vendored"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", commit, VENDORED], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    vendored = tree / VENDORED
    problems = []
    expected = {p.relative_to(crate) for p in (crate / "src").rglob("*") if p.is_file()}
    expected |= {Path(name) for name in TOP_FILES}
    found = {
        p.relative_to(vendored)
        for p in vendored.rglob("*")
        if p.is_file() and p.name != "Cargo.toml" and p.name != "PATCHES.md"
    }
    for path in sorted(expected - found):
        problems.append(f"{commit[:10]}: {VENDORED}/{path} is missing")
    for path in sorted(found - expected):
        problems.append(f"{commit[:10]}: {VENDORED}/{path} is not in regorus {VERSION}")
    for path in sorted(expected & found):
        if (crate / path).read_bytes() != (vendored / path).read_bytes():
            problems.append(f"{commit[:10]}: {VENDORED}/{path} differs from regorus {VERSION}")
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    for target in ("test", "bench", "example"):
        manifest.pop(target, None)
    if tomllib.loads((vendored / "Cargo.toml").read_text()) != manifest:
        problems.append(
            f"{commit[:10]}: {VENDORED}/Cargo.toml is not regorus {VERSION}'s without its "
            "test, bench and example targets"
        )
    return problems


def check_patch_commits(vendoring: str) -> list[str]:
    problems = []
    numbers: dict[int, str] = {}
    log = git("log", "--reverse", "--no-merges", "--format=%H %s", f"{vendoring}..HEAD", "--", VENDORED)
    for line in log.splitlines():
        commit, subject = line.split(" ", 1)
        changed = git("show", "--format=", "--name-only", commit, "--", VENDORED).split()
        if changed == [f"{VENDORED}/PATCHES.md"]:
            continue
        match = PATCH_SUBJECT.match(subject)
        if not match:
            problems.append(
                f"{commit[:10]} changes {VENDORED} but is not named 'regorus patch N: …': {subject}"
            )
            continue
        number = int(match.group(1))
        if match.group(2):
            if number not in numbers:
                problems.append(f"{commit[:10]} continues patch {number}, which no earlier commit is")
            continue
        if number in numbers:
            problems.append(f"patch {number} is both {numbers[number][:10]} and {commit[:10]}")
        numbers[number] = commit
    listed = [int(n) for n in PATCH_ENTRY.findall((ROOT / VENDORED / "PATCHES.md").read_text())]
    if len(listed) != len(set(listed)):
        problems.append(f"PATCHES.md numbers an entry twice: {listed}")
    for number in sorted(set(listed) - set(numbers)):
        problems.append(f"PATCHES.md lists patch {number}, but no commit is named 'regorus patch {number}: …'")
    for number in sorted(set(numbers) - set(listed)):
        problems.append(f"commit {numbers[number][:10]} is patch {number}, which PATCHES.md does not list")
    return problems


def main() -> int:
    if git("rev-parse", "--is-shallow-repository").strip() == "true":
        # The check reads the commits since the copy was vendored; a shallow clone lacks them.
        print(f"{VENDORED}: not checked in a shallow clone (`git fetch --unshallow` first)")
        return 0
    if git("status", "--porcelain", "--", VENDORED).strip():
        print(f"error: {VENDORED} has uncommitted changes", file=sys.stderr)
        return 1
    added = git("log", "--diff-filter=A", "--format=%H", "--", f"{VENDORED}/Cargo.toml").split()
    if not added:
        print(f"error: no commit adds {VENDORED}", file=sys.stderr)
        return 1
    vendoring = added[-1]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        crate = pristine_crate(work / "probe")
        problems = check_vendoring_commit(vendoring, crate, work)
    problems += check_patch_commits(vendoring)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    count = len(PATCH_ENTRY.findall((ROOT / VENDORED / "PATCHES.md").read_text()))
    print(f"{VENDORED}: regorus {VERSION} ({vendoring[:10]}) plus the {count} patches of PATCHES.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
