"""Refresh the vendored browser libraries from the npm registry (maintainers only: users need no
Node.js, and pages load nothing from a CDN).

Each package is pinned below by version and by the registry's own sha512 ``integrity`` of its
tarball. The script downloads the tarball, refuses it unless the digest matches, and copies only the
listed files (and the licence) into ``static/vendor/<package>/``. ``MANIFEST.json`` records the
sha256 of every file kept, so ``tests/web/test_vendor.py`` can tell an edited or missing file offline.

    python static/vendor/refresh.py          # fetch, verify, write the files and MANIFEST.json
    python static/vendor/refresh.py --check  # only compare the files on disk with MANIFEST.json

To move a pin: change ``version`` and ``integrity`` (``npm view <name>@<version> dist.integrity``),
run the script, read the libraries' changelogs, and run the page tests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "MANIFEST.json"
REGISTRY = "https://registry.npmjs.org"

PACKAGES = {
    # Time series: the chart library Coroot, SigNoz and HyperDX chose (canvas, 50 KB).
    "uplot": {
        "version": "1.6.32",
        "integrity": "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",  # noqa: E501 - the registry's digest, whole
        "files": ["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"],
    },
    # The service map: graph model, rendering and interaction.
    "cytoscape": {
        "version": "3.35.0",
        "integrity": "sha512-sMvBIXiGMnhkCaWz2R06FwF/27MNlS+Tqvi17foO9UhnUg3XGZccKjxsvEqQFAQYMSSZmN5SxYzUYlQ0DOJJ3g==",  # noqa: E501 - the registry's digest, whole
        "files": ["dist/cytoscape.min.js", "LICENSE"],
    },
    # A layered (caller above callee) layout for the map; the bundle includes dagre and graphlib (MIT).
    "cytoscape-dagre": {
        "version": "4.0.1",
        "integrity": "sha512-hyNdh8Vp1nwzBcjHnM4c71G81bFhPmQYLXD2HM9AZIvl+8TrMzWEOPW45hF/XOBQiEguPcDQzi6VrXR1XBcXOA==",  # noqa: E501 - the registry's digest, whole
        "files": ["dist/cytoscape-dagre.min.js", "LICENSE"],
    },
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified_tarball(name: str, pin: dict) -> bytes:
    import requests  # only the maintainer's refresh needs the network

    url = f"{REGISTRY}/{name}/-/{name}-{pin['version']}.tgz"
    response = requests.get(url, timeout=60)
    response.raise_for_status()
    algorithm, _, expected = pin["integrity"].partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, response.content).digest()).decode()
    if actual != expected:
        raise SystemExit(f"{name}@{pin['version']}: tarball digest {actual} is not the pinned {expected}")
    return response.content


def refresh() -> dict:
    manifest = {}
    for name, pin in PACKAGES.items():
        with tarfile.open(fileobj=io.BytesIO(_verified_tarball(name, pin)), mode="r:gz") as tar:
            for member in pin["files"]:
                data = tar.extractfile(f"package/{member}").read()
                target = HERE / name / Path(member).name
                target.parent.mkdir(exist_ok=True)
                target.write_bytes(data)
                manifest[f"{name}/{target.name}"] = {"version": pin["version"], "sha256": _sha256(data)}
                print(f"{name}@{pin['version']}: {target.relative_to(HERE)} ({len(data):,} bytes)")
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def check() -> list[str]:
    """What differs between the files on disk and MANIFEST.json (empty: all is as fetched)."""
    problems = []
    for path, entry in json.loads(MANIFEST.read_text()).items():
        file = HERE / path
        if not file.is_file():
            problems.append(f"{path}: missing")
        elif _sha256(file.read_bytes()) != entry["sha256"]:
            problems.append(f"{path}: changed since it was fetched ({entry['version']})")
    return problems


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        found = check()
        print("\n".join(found) or "vendored files match MANIFEST.json")
        sys.exit(1 if found else 0)
    refresh()
