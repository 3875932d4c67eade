#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver (chromedriver) are installed, for the web UI's
# browser tests (workers/underling-worker/tests/webui.rs): installs Debian's `chromium` and
# `chromium-driver` when either is missing, and fails loudly if they still cannot run.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "Chromium or chromedriver is not installed: installing Debian's chromium and chromium-driver"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if ! chromedriver --version >/dev/null 2>&1; then
  echo "ERROR: chromedriver does not run; the web UI's browser tests cannot run" >&2
  exit 1
fi
echo "Chromium is ready: $(chromium --version 2>/dev/null | head -n 1); $(chromedriver --version | head -n 1)"
