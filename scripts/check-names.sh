#!/usr/bin/env bash
# Fails if a tracked file or folder has a name Windows reserves (CON, PRN, AUX, NUL, COM1-9,
# LPT1-9, with any extension, any case): such a repository cannot be checked out on Windows,
# where the DX12 users of this library are.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(git ls-files | tr '/' '\n' | sort -u |
  grep -iE '^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$' || true)
if [ -n "$bad" ]; then
  echo "check-names: Windows-reserved names in the repository: $bad" >&2
  exit 1
fi
echo "check-names: no Windows-reserved names among $(git ls-files | wc -l) tracked files"
