#!/usr/bin/env bash
# Fails if any C++ file differs from what clang-format (the repo's .clang-format) makes of it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h')
if ((${#files[@]} == 0)); then
  echo "format: no files" >&2
  exit 1
fi
clang-format --dry-run --Werror "${files[@]}"
echo "format: ${#files[@]} files clean"
