#!/bin/sh
# Install (when root with apt) or name the system libraries Qt's xcb window needs.
# With --offscreen only the libraries the offscreen platform needs are checked.
LIBS_OFFSCREEN="libgl1 libegl1 libfontconfig1 libxkbcommon0 libglib2.0-0 libdbus-1-3"
LIBS_WINDOW="$LIBS_OFFSCREEN libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libxcb-randr0 libxcb-xkb1 libxrender1 libxi6"
if [ "$1" = "--offscreen" ]; then LIBS="$LIBS_OFFSCREEN"; else LIBS="$LIBS_WINDOW"; fi
command -v dpkg-query >/dev/null 2>&1 || exit 0   # not Debian-like: nothing we can check
MISSING=""
for p in $LIBS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || MISSING="$MISSING $p"
done
[ -z "$MISSING" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system libraries for Qt:$MISSING"
  (apt-get install -y -q $MISSING >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $MISSING >/dev/null; }) && exit 0
fi
echo "Qt needs these system packages, which are missing:$MISSING"
echo "Install them with:  sudo apt-get install$MISSING"
exit 1
