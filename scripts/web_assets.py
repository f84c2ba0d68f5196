"""Take the browser files Qiao serves from their npm packages (run as scripts/web-assets).

web/package.json pins the packages and names, under ``qiaoAssets``, each file
Qiao ships and where it lies in its package; web/package-lock.json pins every
version and tarball hash. The script installs exactly that lock with the
machine's npm (``npm ci``, no install scripts) in a temporary folder, then
writes into core/web/static/vendor:

- each named file, byte for byte as published except for a trailing
  ``sourceMappingURL`` comment, which is dropped (the maps are not shipped,
  so browsers would ask for files that do not exist);
- ``sources.json``: for each file its package, version, path and SHA-256, so
  anyone can check the files against the registry's tarballs;
- ``LICENSES.txt``: the licence of every package whose code the files may
  hold (the shipped packages and everything they depend on, peers included,
  because the UMD builds bundle their dependencies).

It also rewrites the generated table of docs/web-assets.md. The result
depends only on the lock, so running it again changes nothing; ``--check``
builds into a temporary folder and exits 1 if the committed files differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
VENDOR = ROOT / "core" / "web" / "static" / "vendor"
DOC = ROOT / "docs" / "web-assets.md"
BEGIN = "<!-- begin: written by scripts/web-assets -->"
END = "<!-- end: written by scripts/web-assets -->"
#: A source map reference as the last line of a JS or CSS file.
SOURCE_MAP = re.compile(rb"\n(//# sourceMappingURL=[^\n]*|/\*# sourceMappingURL=[^\n]*\*/)\n?$")
LICENCE_FILE = re.compile(r"^(licen[cs]e|copying)(\.(md|txt))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Package:
    """One installed package, as the lock and its folder describe it."""

    name: str
    version: str
    licence: str
    folder: Path

    def licence_text(self) -> str | None:
        texts = sorted(p for p in self.folder.iterdir() if LICENCE_FILE.match(p.name))
        return texts[0].read_text(encoding="utf-8").strip() if texts else None


class Installed:
    """The packages of one ``npm ci``, resolved the way Node resolves them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        lock = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))
        self.entries: dict[str, dict[str, Any]] = lock["packages"]

    def resolve(self, name: str, below: str = "") -> str | None:
        """The lock key of ``name`` as required from the package at lock key ``below``."""
        base = below
        while True:
            key = f"{base}/node_modules/{name}" if base else f"node_modules/{name}"
            if key in self.entries:
                return key
            if not base:
                return None
            base = base.rpartition("/node_modules/")[0]

    def package(self, key: str) -> Package:
        entry = self.entries[key]
        return Package(
            name=key.rpartition("node_modules/")[2],
            version=entry["version"],
            licence=entry.get("license", "UNKNOWN"),
            folder=self.root / key,
        )

    def requires(self, key: str) -> list[str]:
        """The lock keys of what the package at ``key`` needs; optional ones only if present."""
        entry = self.entries[key]
        optional_peers = {
            name
            for name, meta in entry.get("peerDependenciesMeta", {}).items()
            if meta.get("optional")
        }
        keys = []
        for group in ("dependencies", "optionalDependencies", "peerDependencies"):
            for name in entry.get(group, {}):
                found = self.resolve(name, key)
                if found is None and group == "dependencies":
                    raise SystemExit(f"web/package-lock.json lacks {name}, which {key} needs")
                if found is not None and (group == "dependencies" or name not in optional_peers):
                    keys.append(found)
        return keys

    def closure(self, names: list[str]) -> list[Package]:
        """The packages ``names`` and everything they require, each name and version once."""
        seen: dict[tuple[str, str], Package] = {}
        todo = [key for key in map(self.resolve, names) if key is not None]
        while todo:
            key = todo.pop()
            package = self.package(key)
            if (package.name, package.version) in seen or not package.folder.is_dir():
                continue  # counted already, or an optional dependency for another platform
            seen[package.name, package.version] = package
            todo.extend(self.requires(key))
        return sorted(seen.values(), key=lambda p: (p.name, p.version))


def install(work: Path) -> Installed:
    """``npm ci`` of web/'s lock in ``work``: no install scripts run, nothing else touched."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(WEB / name, work / name)
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to take the files from their packages; install Node.js")
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=work,
        check=True,
    )
    return Installed(work)


def build(installed: Installed, out: Path) -> str:
    """Write the shipped files, sources.json and LICENSES.txt to ``out``; return the docs table."""
    spec = json.loads((WEB / "package.json").read_text(encoding="utf-8"))
    sources: dict[str, dict[str, str]] = {}
    for target, source in spec["qiaoAssets"].items():
        package_name = next(n for n in spec["dependencies"] if source.startswith(n + "/"))
        package = installed.package(f"node_modules/{package_name}")
        path = source.removeprefix(package_name + "/")
        data = SOURCE_MAP.sub(b"\n", (package.folder / path).read_bytes())
        (out / target).write_bytes(data)
        sources[target] = {
            "package": package.name,
            "version": package.version,
            "path": path,
            "licence": package.licence,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    (out / "sources.json").write_text(json.dumps(sources, indent=2) + "\n", encoding="utf-8")
    bundled = installed.closure(list(spec["dependencies"]))
    (out / "LICENSES.txt").write_text(_licences(bundled), encoding="utf-8")
    return _table(sources, bundled)


def _licences(packages: list[Package]) -> str:
    parts = [
        "Licences of the npm packages whose code Qiao's browser files (this folder) may hold.\n"
        "Written by scripts/web-assets from web/package-lock.json; see docs/web-assets.md.\n"
    ]
    for package in packages:
        text = package.licence_text() or (
            f"(The package ships no licence file; its package.json declares {package.licence}.)"
        )
        parts.append(
            f"{'=' * 78}\n{package.name} {package.version} ({package.licence})\n\n{text}\n"
        )
    return "\n".join(parts)


def _table(sources: dict[str, dict[str, str]], bundled: list[Package]) -> str:
    rows = ["| File | Package | Version | Licence |", "|---|---|---|---|"]
    rows += [
        f"| `{name}` | {s['package']} | {s['version']} | {s['licence']} |"
        for name, s in sources.items()
    ]
    counts: dict[str, int] = {}
    for package in bundled:
        counts[package.licence] = counts.get(package.licence, 0) + 1
    summary = ", ".join(f"{licence} {n}" for licence, n in sorted(counts.items()))
    return (
        "\n".join(rows)
        + f"\n\nPackages whose code the files may hold, by licence: {summary}"
        + f" ({len(bundled)} packages; each one's licence text is in"
        + " `core/web/static/vendor/LICENSES.txt`).\n"
    )


def _with_table(doc: str, table: str) -> str:
    head, begin, rest = doc.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not (begin and end):
        raise SystemExit(f"{DOC} lacks the markers {BEGIN} ... {END}")
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def _differences(built: Path, doc: str) -> list[str]:
    names = {p.name for p in built.iterdir()} | {p.name for p in VENDOR.glob("*")}
    differ = [
        str(VENDOR / name)
        for name in sorted(names)
        if not (VENDOR / name).is_file()
        or not (built / name).is_file()
        or (VENDOR / name).read_bytes() != (built / name).read_bytes()
    ]
    if DOC.read_text(encoding="utf-8") != doc:
        differ.append(str(DOC))
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/web-assets", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed files differ from a build"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qiao-web-") as tmp:
        work, built = Path(tmp) / "npm", Path(tmp) / "vendor"
        work.mkdir()
        built.mkdir()
        table = build(install(work), built)
        doc = _with_table(DOC.read_text(encoding="utf-8"), table)
        if args.check:
            differ = _differences(built, doc)
            for path in differ:
                print(f"differs from a build of web/package-lock.json: {path}", file=sys.stderr)
            return 1 if differ else 0
        shutil.rmtree(VENDOR, ignore_errors=True)
        shutil.copytree(built, VENDOR)
        DOC.write_text(doc, encoding="utf-8")
    print(f"wrote {len(list(VENDOR.iterdir()))} files to {VENDOR.relative_to(ROOT)} and {DOC.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
