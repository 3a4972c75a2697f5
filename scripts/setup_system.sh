#!/usr/bin/env bash
# System packages: offline TTS engines of the built-in corpus and ffmpeg for videos.
# Installs what is missing when running as root with apt; otherwise says what to install.
set -euo pipefail
# chromium: the live page's browser test (tests/test_live.py; skipped without it).
PKGS=(festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k flite espeak-ng libespeak-ng1 ffmpeg chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "system packages: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "system packages missing: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  echo "(voices that are not installed are skipped; videos fall back to GIF without ffmpeg)" >&2
fi
