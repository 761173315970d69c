#!/usr/bin/env bash
# GDAL's command-line tools (Debian gdal-bin), which the OGC API test drives as a real GIS
# client would (ogrinfo through the OAPIF driver). Idempotent; run by `make test`.
# Cartolog itself reads and writes GeoPackage through pyogrio, whose wheel carries its own GDAL.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=infra/apt.sh
source infra/apt.sh
if ! command -v ogrinfo >/dev/null 2>&1; then
  printf '[gis] installing Debian gdal-bin (ogrinfo) for the OGC API client test\n' >&2
  apt_install gdal-bin
fi
