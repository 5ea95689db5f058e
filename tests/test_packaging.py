"""Every data file the service reads at run time ships in the package."""

from __future__ import annotations

import configparser
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGE = REPOSITORY / "bridge"


def test_package_data_covers_every_data_file():
    setup = configparser.ConfigParser()
    setup.read(REPOSITORY / "setup.cfg")
    patterns = setup["options.package_data"]["bridge"].split()
    shipped = {path for pattern in patterns for path in PACKAGE.glob(pattern)}
    data_files = {
        path
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc"}
        and "__pycache__" not in path.parts
    }
    missing = sorted(str(path.relative_to(PACKAGE)) for path in data_files - shipped)
    assert missing == []
