"""Delta Lake's jars: fetched from Maven Central once, at setup, and cached so later runs are offline.

`python -m jobs.runtime.jars` (run by `make setup`) downloads them and checks Maven's SHA-1 for each.
"""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

DELTA_VERSION = "4.0.1"           # must match delta-spark in pyproject.toml (Delta 4.0 <-> Spark 4.0)
SCALA = "2.13"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
# delta-spark's compile dependencies are these two plus antlr4-runtime 4.13.1, which Spark 4.0 ships.
ARTIFACTS = (
    ("io.delta", f"delta-spark_{SCALA}", DELTA_VERSION),
    ("io.delta", "delta-storage", DELTA_VERSION),
)


def jars_dir() -> Path:
    """LAKESIFT_JARS_DIR, else .jars in the source checkout, else ~/.cache/lakesift/jars."""
    if os.environ.get("LAKESIFT_JARS_DIR"):
        return Path(os.environ["LAKESIFT_JARS_DIR"]).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists():
        return checkout / ".jars"
    return Path.home() / ".cache" / "lakesift" / "jars"


def jar_paths() -> list[Path]:
    return [jars_dir() / f"{artifact}-{version}.jar" for _, artifact, version in ARTIFACTS]


def missing_jars() -> list[Path]:
    return [p for p in jar_paths() if not p.is_file()]


def fetch(verbose: bool = True) -> list[Path]:
    """Download whatever is missing; verify each against Maven Central's published SHA-1."""
    target = jars_dir()
    target.mkdir(parents=True, exist_ok=True)
    for group, artifact, version in ARTIFACTS:
        dest = target / f"{artifact}-{version}.jar"
        if dest.is_file():
            continue
        url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"
        if verbose:
            print(f"fetching {url}", file=sys.stderr)
        with urllib.request.urlopen(url, timeout=120) as resp:
            data = resp.read()
        with urllib.request.urlopen(url + ".sha1", timeout=60) as resp:
            expected = resp.read().decode().split()[0].strip()
        actual = hashlib.sha1(data).hexdigest()
        if actual != expected:
            raise RuntimeError(f"{url}: SHA-1 {actual} does not match Maven Central's {expected}")
        tmp = dest.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(dest)
    return jar_paths()


if __name__ == "__main__":
    for path in fetch():
        print(path)
