#!/usr/bin/env python3
"""Refresh the vendored front-end libraries in qixin/api/static/vendor/ from the npm registry.

The manifest (qixin/api/static/vendor/manifest.json) is the list of pins: for each package its exact
version, its licence, the files taken from its tarball and the sha256 of each, and the registry's
integrity hash of the tarball. The committed files are what the platform serves; `make run` and
`make test` never need npm. This script is only for the engineer who refreshes or upgrades a library.

    python3 scripts/vendor.py            # download the pinned versions, verify every hash, install the files
    python3 scripts/vendor.py --verify   # offline: the committed files match the manifest (no npm)
    python3 scripts/vendor.py --update   # after editing a version in the manifest: record the new hashes

Rules:
- Only `npm pack NAME@VERSION` (exact versions, scripts ignored) into a temporary directory; nothing is
  installed into node_modules and nothing runs.
- Without --update a hash that differs from the manifest is an error and no file is written.
- With --update the tarball's integrity, each file's sha256 and the licence from package.json are
  written to the manifest: review `git diff` before committing.
- A package's directory holds exactly the files its manifest entry lists; other versions are removed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "qixin" / "api" / "static" / "vendor"
MANIFEST_NAME = "manifest.json"


class VendorError(Exception):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(vendor: Path) -> dict[str, Any]:
    return json.loads((vendor / MANIFEST_NAME).read_text(encoding="utf-8"))


def save(vendor: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (vendor / MANIFEST_NAME).write_text(text, encoding="utf-8")


def verify(vendor: Path) -> list[str]:
    """Problems with the committed files: missing, changed, unlisted, or a package without a licence."""
    manifest = load(vendor)
    problems: list[str] = []
    listed: set[Path] = {vendor / MANIFEST_NAME}
    for pkg in manifest["packages"]:
        base = vendor / pkg["name"] / pkg["version"]
        names = {f["file"] for f in pkg["files"]}
        if not pkg.get("licence") or not pkg.get("licence_files"):
            problems.append(f"{pkg['name']}: no licence recorded")
        problems += [
            f"{pkg['name']}: licence file {n} is not among its files" for n in pkg["licence_files"] if n not in names
        ]
        for f in pkg["files"]:
            path = base / f["file"]
            listed.add(path)
            if not path.is_file():
                problems.append(f"{pkg['name']}: missing {path.relative_to(vendor)}")
            elif sha256(path.read_bytes()) != f.get("sha256"):
                problems.append(f"{pkg['name']}: sha256 of {path.relative_to(vendor)} differs from the manifest")
    for path in sorted(p for p in vendor.rglob("*") if p.is_file()):
        if path not in listed:
            problems.append(f"not in the manifest: {path.relative_to(vendor)}")
    return problems


def npm_pack(name: str, version: str, into: Path) -> tuple[Path, str]:
    """Download NAME@VERSION's tarball from the npm registry; return its path and the registry's integrity."""
    proc = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--json", "--ignore-scripts", "--pack-destination", str(into)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise VendorError(f"npm pack {name}@{version} failed: {proc.stderr.strip()[-500:]}")
    info = json.loads(proc.stdout)[0]
    if info["version"] != version:
        raise VendorError(f"{name}: npm returned version {info['version']}, pinned {version}")
    return into / info["filename"], info["integrity"]


def fetch(pkg: dict[str, Any], tmp: Path, update: bool) -> dict[str, bytes]:
    """The package's listed files from its tarball, checked against (or, with update, recorded in) pkg."""
    tarball, integrity = npm_pack(pkg["name"], pkg["version"], tmp)
    if update:
        pkg["integrity"] = integrity
    elif pkg.get("integrity") != integrity:
        raise VendorError(f"{pkg['name']}@{pkg['version']}: tarball integrity {integrity} differs from the manifest")
    with tarfile.open(tarball, "r:gz") as tar:

        def read(src: str) -> bytes:
            member = tar.extractfile(f"package/{src}")
            if member is None:
                raise VendorError(f"{pkg['name']}: {src} is not a file in the tarball")
            return member.read()

        licence = json.loads(read("package.json"))["license"]
        if update:
            pkg["licence"] = licence
        elif licence != pkg["licence"]:
            raise VendorError(f"{pkg['name']}: package.json says licence {licence}, manifest {pkg['licence']}")
        files: dict[str, bytes] = {}
        for f in pkg["files"]:
            data = read(f["src"])
            if update:
                f["sha256"] = sha256(data)
            elif f.get("sha256") != sha256(data):
                raise VendorError(f"{pkg['name']}: sha256 of {f['src']} differs from the manifest")
            files[f["file"]] = data
    return files


def install(vendor: Path, update: bool) -> None:
    manifest = load(vendor)
    with tempfile.TemporaryDirectory(prefix="qixin-vendor-") as tmp:
        fetched = {pkg["name"]: fetch(pkg, Path(tmp), update) for pkg in manifest["packages"]}
    # Every download verified: only now touch the committed tree.
    for pkg in manifest["packages"]:
        pkg_dir = vendor / pkg["name"]
        if pkg_dir.exists():
            shutil.rmtree(pkg_dir)
        base = pkg_dir / pkg["version"]
        base.mkdir(parents=True)
        for file, data in fetched[pkg["name"]].items():
            (base / file).write_bytes(data)
        size = sum(len(d) for d in fetched[pkg["name"]].values())
        print(f"{pkg['name']}@{pkg['version']}: {len(fetched[pkg['name']])} files, {size / 1024:.0f} KiB")
    known = {pkg["name"] for pkg in manifest["packages"]}
    for child in vendor.iterdir():
        if child.is_dir() and child.name not in known:
            shutil.rmtree(child)
    if update:
        save(vendor, manifest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--verify", action="store_true", help="check the committed files offline")
    mode.add_argument("--update", action="store_true", help="record new hashes after changing a version")
    ap.add_argument("--dir", type=Path, default=VENDOR, help="vendor directory (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        if not args.verify:
            install(args.dir, args.update)
        problems = verify(args.dir)
    except (VendorError, OSError) as e:
        print(f"vendor: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"vendor: {p}", file=sys.stderr)
    if not problems:
        print(f"vendor: {len(load(args.dir)['packages'])} packages match {args.dir / MANIFEST_NAME}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
