#!/usr/bin/env bash
# The device tool sends every tracked file with each call: a tracked
# weights/reference_256.safetensors (52 MB) leaves no room under its 64 MiB for .gpu/ (57 MB).
# For the GPU session only, untrack it (the file stays on disk; .gpu_init/ carries a copy in
# call 2) and ignore it locally, then restore both right after. Commit nothing in between
# (`git status` shows the staged deletion while it is hidden).
#   bash scripts/gpu/hide_weights.sh hide|restore|status
set -euo pipefail
FILE=weights/reference_256.safetensors
EXCLUDE=$(git rev-parse --git-path info/exclude)
case "${1:-status}" in
  hide)
    git ls-files --error-unmatch "$FILE" > /dev/null 2>&1 || { echo "$FILE is not tracked"; exit 0; }
    git rm -q --cached "$FILE"
    mkdir -p "$(dirname "$EXCLUDE")" && echo "/$FILE" >> "$EXCLUDE"
    echo "hidden: $FILE untracked and excluded; restore with: bash $0 restore" ;;
  restore)
    git reset -q -- "$FILE"
    [ -f "$EXCLUDE" ] && sed -i "\#^/$FILE\$#d" "$EXCLUDE"
    git status --short -- "$FILE"
    echo "restored: $FILE tracked again" ;;
  status)
    if git ls-files --error-unmatch "$FILE" > /dev/null 2>&1; then echo "$FILE: tracked (travels)"
    elif grep -qx "/$FILE" "$EXCLUDE" 2>/dev/null; then echo "$FILE: hidden (restore after the session)"
    else echo "$FILE: not in git"; fi ;;
  *) echo "usage: $0 hide|restore|status" >&2; exit 2 ;;
esac
