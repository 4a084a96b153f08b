"""The previous release of cachenet (main at PREVIOUS), to run beside this one on one database.

Its source is vendored as a tarball (CI may have no git history), made with
``git archive PREVIOUS src/cachenet | gzip -9 > releases/cachenet-PREVIOUS.tar.gz``;
it runs with this interpreter and its libraries (``harness.cli.run_cachenet(...,
source=...)``).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

PREVIOUS = "bedfd13"
TARBALL = Path(__file__).parent / "releases" / f"cachenet-{PREVIOUS}.tar.gz"


def extract_previous_release(directory: Path) -> Path:
    """Unpack the previous release under ``directory``; the path to put first on sys.path."""
    with tarfile.open(TARBALL) as tar:
        tar.extractall(directory, filter="data")
    source = directory / "src"
    assert (source / "cachenet" / "__main__.py").is_file(), f"{TARBALL} holds no cachenet"
    return source
