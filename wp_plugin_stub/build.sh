#!/bin/sh
# Build build/coachbridge.zip, an installable plugin zip with a top folder
# coachbridge/. Uses the zip command when present, else Python's zipfile.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build="$here/build"
staging="$build/staging"
archive="$build/coachbridge.zip"

rm -rf "$staging" "$archive"
mkdir -p "$staging/coachbridge"

# Only the files WordPress loads, plus the readme. The build script stays out.
cp "$here/coachbridge.php" "$here/uninstall.php" "$here/README.md" "$staging/coachbridge/"
cp -R "$here/includes" "$here/assets" "$staging/coachbridge/"

if command -v zip >/dev/null 2>&1; then
	(cd "$staging" && zip -q -r -X "$archive" coachbridge)
else
	python3 - "$staging" "$archive" <<'PYTHON'
import os
import sys
import zipfile

staging, archive = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
    for folder, _, files in os.walk(os.path.join(staging, "coachbridge")):
        for name in sorted(files):
            path = os.path.join(folder, name)
            bundle.write(path, os.path.relpath(path, staging))
PYTHON
fi

rm -rf "$staging"
echo "built $archive"
