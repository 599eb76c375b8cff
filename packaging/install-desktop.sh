#!/bin/sh
# Install the menu entry and icon of a built bundle for the current user (Linux, XDG).
#   packaging/install-desktop.sh [BUNDLE]        BUNDLE defaults to dist/ich-viewer
# The bundle stays where it is; the entry points at its executable by absolute path.
set -e
BUNDLE=$(cd "${1:-dist/ich-viewer}" && pwd)
EXE="$BUNDLE/ich-viewer"
RES="$BUNDLE/_internal/resources"
[ -f "$EXE" ] && [ -x "$EXE" ] || { echo "no executable at $EXE - build it first (make package)"; exit 1; }
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$DATA/applications" "$DATA/icons/hicolor/256x256/apps" "$DATA/icons/hicolor/scalable/apps"
cp "$RES/icons/ich-viewer.png" "$DATA/icons/hicolor/256x256/apps/ich-viewer.png"
[ -f "$RES/icons/ich-viewer.svg" ] && cp "$RES/icons/ich-viewer.svg" "$DATA/icons/hicolor/scalable/apps/ich-viewer.svg"
sed "s|^Exec=.*|Exec=\"$EXE\" %f|" "$RES/ich-viewer.desktop" > "$DATA/applications/ich-viewer.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA/applications" || true
echo "installed $DATA/applications/ich-viewer.desktop -> $EXE"
