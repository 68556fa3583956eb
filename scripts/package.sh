#!/usr/bin/env bash
# Builds the Debian package into dist/ and checks it with lintian.
#   scripts/package.sh                       full build (dpkg-buildpackage -b, hardening=+all)
#   scripts/package.sh --prebuilt BUILD_DIR  package BUILD_DIR's binaries (a CMake tree already
#                                            built, e.g. the test build); no compilation
#   --out DIR                                put the results in DIR instead of dist/
#   --no-lintian                             skip lintian (it takes several seconds)
# The source is copied to a temp dir and built there: the worktree stays clean and the
# parent directory (where dpkg-buildpackage writes) is private. Prints the .deb's path last.
# Needs debhelper, dpkg-dev, fakeroot, lintian and the Build-Depends (scripts/deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prebuilt=""
lint=1
out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt) prebuilt=$(cd "${2:?--prebuilt needs a build dir}" && pwd); shift 2 ;;
    --out) mkdir -p "${2:?--out needs a folder}"; out=$(cd "$2" && pwd); shift 2 ;;
    --no-lintian) lint=0; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -n "$prebuilt" ]; then
  for exe in milter/cllavio-milter cli/cllavioctl; do
    [ -x "$prebuilt/$exe" ] || { echo "package.sh: $prebuilt/$exe is not built" >&2; exit 1; }
  done
fi

version=$(cd "$root" && dpkg-parsechangelog -S Version)
project_version=$(sed -n 's/^project(cllavio-milter VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
if [ "$version" != "$project_version" ]; then
  echo "package.sh: debian/changelog says $version, CMakeLists.txt $project_version: add a changelog entry (dch -v $project_version)" >&2
  exit 1
fi
arch=$(dpkg --print-architecture)

work=$(mktemp -d /tmp/cllavio-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/cllavio-milter-$version"
mkdir "$src"
tar -C "$root" --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude=./dist \
    --exclude='./obj-*' --exclude=__pycache__ -cf - . | tar -C "$src" -xf -

log="$work/build.log"
opts=${DEB_BUILD_OPTIONS:-}
[ -n "$prebuilt" ] && opts="$opts noautodbgsym"  # a test package needs no debug symbols package
if ! (cd "$src" && CLLAVIO_PREBUILT="$prebuilt" DEB_BUILD_OPTIONS="${opts# }" dpkg-buildpackage -b -us -uc) \
    >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "package.sh: dpkg-buildpackage failed (log above)" >&2
  exit 1
fi

mkdir -p "$out"
rm -f "$out/cllavio-milter"*"_${version}_${arch}".*  # results of an earlier build of this version
deb="$out/cllavio-milter_${version}_${arch}.deb"
for f in "$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes; do
  [ -e "$f" ] && mv -f "$f" "$out/"
done
[ -f "$deb" ] || { echo "package.sh: $deb was not produced" >&2; exit 1; }

if [ "$lint" = 1 ]; then
  # Errors fail the build; the warnings that stay are explained in docs/install.md.
  lintian --fail-on error --tag-display-limit 0 "$deb"
fi
echo "$deb"
