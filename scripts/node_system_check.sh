#!/bin/sh
# The DICOM node's tests talk to real peers: Orthanc (a PACS) and DCMTK's echoscu/storescu;
# the conformance tests check what we write with dicom3tools' dciodvfy.
# Installs them when missing and running as root with apt; otherwise names them (those
# tests then skip with that reason; everything else still runs).
command -v dpkg-query >/dev/null 2>&1 || exit 0   # not Debian-like: nothing we can check
MISSING=""
for p in orthanc dcmtk dicom3tools; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || MISSING="$MISSING $p"
done
[ -z "$MISSING" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing DICOM peers and the validator for the node and conformance tests:$MISSING"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q $MISSING >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $MISSING >/dev/null; }) && exit 0
fi
echo "The DICOM node and conformance tests need these packages, which are missing (those tests will be skipped):$MISSING"
echo "Install them with:  sudo apt-get install$MISSING"
exit 0
