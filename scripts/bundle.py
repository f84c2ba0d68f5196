"""Build the offline bundle for sites with no network (run as scripts/bundle).

The bundle is a folder, and a .tar.gz of it, holding everything a machine
with no way out needs to install and run Qiao (docs/deploy-airgapped.md):

- ``wheels/``: Qiao's wheel and a wheel of every dependency, for one Python
  version and platform (this machine's unless ``--platform`` and
  ``--python-version`` name another); packages published only as source are
  built into wheels here, so the target needs no compiler and no index;
- ``install.sh``: makes a virtual environment and installs from ``wheels/``
  alone, ignoring the machine's pip settings;
- ``helm/``: the Helm chart, packaged as ``helm package`` would;
- ``image/``: the container image as ``docker save`` writes it, when a Docker
  engine answers here (otherwise the script says why it left it out);
- ``README.md`` (docs/deploy-airgapped.md), ``BUNDLE.txt`` (what was built,
  for what) and ``SHA256SUMS``, which install.sh checks first.

Building needs the package index (or pip's cache) and, for the image, Docker;
installing from the bundle needs neither.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "qiao"
DOC = ROOT / "docs" / "deploy-airgapped.md"
#: Files the wheel is built from besides the package folders pyproject.toml maps.
PROJECT_FILES = ("pyproject.toml", "README.md")
SKIPPED = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")
#: Fixed timestamps keep the archives of one tree identical from build to build.
EPOCH = 0
#: ``manylinux_2_28_aarch64``: wheels for glibc 2.28 on 64-bit ARM.
MANYLINUX = re.compile(r"^manylinux_2_(\d+)_(\w+)$")
#: The older names of glibc baselines, still the only tag of some wheels.
LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class Target:
    """The Python and platform the wheelhouse is for."""

    python_version: str  # "3.11"
    platforms: tuple[str, ...]  # pip --platform tags; empty: the building interpreter's


def main() -> int:
    args = _arguments()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    python = shutil.which(args.python) or args.python
    native = _python_version(python)
    target = Target(args.python_version or native, platform_tags(args.platform))
    if target.python_version != native and not target.platforms:
        raise SystemExit(
            f"--python-version {target.python_version} needs --platform too "
            f"(or --python naming a Python {target.python_version})"
        )
    label = _label(python, target)
    name = f"qiao-{version}-offline-{label}"
    out = Path(args.out).resolve()
    bundle = out / name
    shutil.rmtree(bundle, ignore_errors=True)
    bundle.mkdir(parents=True)

    print(f"==> wheels of qiao-crm {version} and its dependencies for {label}")
    wheelhouse(python, target, bundle / "wheels", version)
    print("==> the Helm chart")
    chart = package_chart(bundle / "helm")
    image_note = "skipped (--no-image)" if args.no_image else save_image(bundle / "image", version)
    write_install_script(bundle, version, target.python_version)
    shutil.copy2(DOC, bundle / "README.md")
    wheels = sorted(p.name for p in (bundle / "wheels").iterdir())
    (bundle / "BUNDLE.txt").write_text(
        f"Qiao {version}, offline bundle\n"
        f"Python: {target.python_version}\n"
        f"Platform: {label}\n"
        f"Helm chart: helm/{chart.name}\n"
        f"Container image: {image_note}\n"
        f"Wheels ({len(wheels)}):\n" + "".join(f"  {w}\n" for w in wheels),
        encoding="utf-8",
    )
    write_checksums(bundle)
    print(f"==> {bundle}")
    if not args.no_archive:
        archive = out / f"{name}.tar.gz"
        _tar(bundle, bundle.name, archive)
        print(f"==> {archive} ({archive.stat().st_size / 1e6:.1f} MB)")
    return 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bundle", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="folder to write to (./dist)")
    parser.add_argument(
        "--python", default="python3", help="the Python that builds the wheels (python3)"
    )
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        help="pip platform tag of the target (repeatable); manylinux_2_28_aarch64 means "
        "64-bit ARM with glibc 2.28 or newer",
    )
    parser.add_argument("--python-version", help="the target's Python, e.g. 3.12")
    parser.add_argument("--no-image", action="store_true", help="leave the container image out")
    parser.add_argument(
        "--no-archive", action="store_true", help="write the folder only, no .tar.gz"
    )
    return parser.parse_args()


def platform_tags(named: list[str]) -> tuple[str, ...]:
    """The tags pip should accept for the platforms named: a glibc baseline stands for itself
    and every older one (pip expands only the legacy names such as manylinux2014)."""
    tags: list[str] = []
    for tag in named:
        tags.append(tag)
        match = MANYLINUX.match(tag)
        if match:
            newest, arch = int(match.group(1)), match.group(2)
            for minor in range(newest - 1, 4, -1):
                tags.append(f"manylinux_2_{minor}_{arch}")
            tags += [f"{name}_{arch}" for m, name in LEGACY_MANYLINUX.items() if m <= newest]
    return tuple(dict.fromkeys(tags))


def _python_version(python: str) -> str:
    return _ask(python, "import sys; print('%d.%d' % sys.version_info[:2])")


def _native_platform(python: str) -> str:
    return _ask(python, "import sysconfig; print(sysconfig.get_platform())").replace("-", "_")


def _label(python: str, target: Target) -> str:
    platform = target.platforms[0] if target.platforms else _native_platform(python)
    return f"cp{target.python_version.replace('.', '')}-{platform}"


def _ask(python: str, code: str) -> str:
    try:
        return subprocess.run(
            [python, "-c", code], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"cannot run {python}: {exc}") from None


def wheelhouse(python: str, target: Target, dest: Path, version: str) -> None:
    """Qiao's wheel and a wheel of each dependency, resolved for ``target``, in ``dest``."""
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory(prefix="qiao-bundle-") as tmp:
        source, built = Path(tmp) / "source", Path(tmp) / "built"
        # Built from a copy, so the working tree gets no build/ or .egg-info folders.
        source.mkdir()
        for name in PROJECT_FILES:
            shutil.copy2(ROOT / name, source / name)
        for name in _package_folders():
            shutil.copytree(ROOT / name, source / name, ignore=SKIPPED)
        _run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(built), str(source)])
        (qiao,) = built.glob(f"qiao_crm-{version}-*.whl")
        if not target.platforms:
            _run([*pip, "wheel", "--quiet", "--wheel-dir", str(dest), str(qiao)])
            return
        # For another platform: packages published only as source are built into (pure)
        # wheels here first, then pip picks the target's binary wheels around them.
        _run([*pip, "wheel", "--quiet", "--wheel-dir", str(built), str(qiao)])
        platform_args = [arg for tag in target.platforms for arg in ("--platform", tag)]
        _run(
            [
                *pip,
                "download",
                "--quiet",
                "--only-binary=:all:",
                *platform_args,
                "--python-version",
                target.python_version,
                "--implementation",
                "cp",
                "--find-links",
                str(built),
                "--dest",
                str(dest),
                str(qiao),
            ]
        )


def _package_folders() -> set[str]:
    """The folders pyproject.toml installs under ``qiao`` (``[tool.setuptools.package-dir]``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(project["tool"]["setuptools"]["package-dir"].values())


def package_chart(dest: Path) -> Path:
    """The chart as ``helm package`` lays it out: ``qiao/...`` in ``qiao-<version>.tgz``."""
    text = (CHART / "Chart.yaml").read_text(encoding="utf-8")
    match = re.search(r"^version:\s*\"?([^\"\s]+)", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"{CHART / 'Chart.yaml'} names no version")
    dest.mkdir()
    path = dest / f"qiao-{match.group(1)}.tgz"
    _tar(CHART, "qiao", path)
    return path


def save_image(dest: Path, version: str) -> str:
    """Build the image and ``docker save`` it to ``dest``; say why not when Docker is missing."""
    docker = shutil.which("docker")
    reason = "no 'docker' command" if docker is None else _docker_unavailable(docker)
    if docker is None or reason:
        note = f"skipped: {reason}"
        print(
            f"==> skipped the container image: {reason}.\n"
            "    On a machine with Docker (and the network), build and save it with:\n"
            f"      docker build -f deploy/Dockerfile -t qiao:{version} .\n"
            f"      docker save qiao:{version} | gzip > qiao-{version}-image.tar.gz\n"
            "    and put that file in the bundle's image/ folder (docs/deploy-airgapped.md)."
        )
        return note
    tag = f"qiao:{version}"
    print(f"==> the container image {tag}")
    _run([docker, "build", "-f", str(ROOT / "deploy" / "Dockerfile"), "-t", tag, str(ROOT)])
    dest.mkdir()
    path = dest / f"qiao-{version}-image.tar.gz"
    with subprocess.Popen([docker, "save", tag], stdout=subprocess.PIPE) as save:
        assert save.stdout is not None
        with gzip.open(path, "wb", compresslevel=6) as out:
            shutil.copyfileobj(save.stdout, out)
    if save.returncode != 0:
        raise SystemExit(f"docker save {tag} failed")
    return f"image/{path.name} (load it with: docker load -i image/{path.name})"


def _docker_unavailable(docker: str) -> str:
    """Empty when a Docker engine answers; otherwise why not, in a few words."""
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 30 s"
    if info.returncode == 0:
        return ""
    lines = [line for line in info.stderr.splitlines() if line.strip()]
    return f"no Docker engine answers ({lines[-1].strip() if lines else 'docker info failed'})"


INSTALL = """#!/usr/bin/env bash
# Install Qiao from this bundle, with no network:  ./install.sh [VENV [PACKAGE...]]
# VENV (default /opt/qiao) gets a virtual environment holding qiao-crm @VERSION@ and its
# dependencies, taken from ./wheels only. Each PACKAGE (a plugin or template whose wheels
# were added to ./wheels) is installed from there as well. QIAO_PYTHON names the Python
# to use (python3). The machine's pip settings are ignored: ./wheels is all there is.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-/opt/qiao}"
shift $(( $# > 0 ? 1 : 0 ))
PYTHON="${QIAO_PYTHON:-python3}"

have="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || {
    echo "install.sh: cannot run '$PYTHON'; set QIAO_PYTHON to a Python @PYTHON@" >&2
    exit 1
}
if [ "$have" != "@PYTHON@" ]; then
    echo "install.sh: this bundle's wheels are for Python @PYTHON@, '$PYTHON' is $have;" \\
        "set QIAO_PYTHON to a Python @PYTHON@" >&2
    exit 1
fi
echo "==> checking the bundle's files against SHA256SUMS"
(cd "$HERE" && sha256sum --quiet --check SHA256SUMS) || {
    echo "install.sh: files of the bundle are damaged or changed; copy it again" >&2
    exit 1
}
for name in $(env | sed -n 's/^\\(PIP_[A-Za-z0-9_]*\\)=.*/\\1/p'); do unset "$name"; done
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "==> installing qiao-crm @VERSION@${*:+ and $*} from $HERE/wheels"
"$VENV/bin/python" -m pip install --quiet --no-index --find-links "$HERE/wheels" \\
    "qiao-crm==@VERSION@" "$@"
"$VENV/bin/qiao" --help > /dev/null
echo "==> installed: $VENV/bin/qiao"
echo "    next: $VENV/bin/qiao init DIR --demo && cd DIR && $VENV/bin/qiao serve"
"""


def write_install_script(bundle: Path, version: str, python_version: str) -> None:
    script = bundle / "install.sh"
    script.write_text(
        INSTALL.replace("@VERSION@", version).replace("@PYTHON@", python_version),
        encoding="utf-8",
    )
    script.chmod(0o755)


def write_checksums(bundle: Path) -> None:
    lines = []
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(bundle).as_posix()}\n")
    (bundle / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


def _tar(folder: Path, top: str, archive: Path) -> None:
    """``folder`` as ``top/...`` in a gzipped tar, the same bytes for the same files."""
    with (
        gzip.GzipFile(archive, "wb", compresslevel=6, mtime=EPOCH) as out,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in [folder, *sorted(folder.rglob("*"))]:
            if "__pycache__" in path.parts:
                continue
            info = tar.gettarinfo(str(path), arcname=str(Path(top) / path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
            if path.is_file():
                with path.open("rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)


def _run(command: list[str]) -> None:
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}")


if __name__ == "__main__":
    sys.exit(main())
