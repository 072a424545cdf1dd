#!/usr/bin/env bash
# Runs clang-tidy (the repo's .clang-tidy) over our sources, using the build's
# compile_commands.json.  Fails on any warning.
set -euo pipefail
build="${1:-build}"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard \
  'appliance/*.cc' 'control/*.cc' 'manager/*.cc' 'tools/*.cc')
if ((${#files[@]} == 0)); then
  echo "tidy: no files" >&2
  exit 1
fi
# Two at a time: the machine has two cores.  The compile commands are GCC's,
# and clang does not know some of its flags (-Wno-error=restrict on GCC 12).
printf '%s\n' "${files[@]}" |
  xargs -P 2 -n 4 clang-tidy -p "$build" --quiet --warnings-as-errors='*' \
    --extra-arg=-Wno-unknown-warning-option 2>/dev/null
echo "tidy: ${#files[@]} files clean"
