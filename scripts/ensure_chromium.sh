#!/usr/bin/env bash
# report.html's browser test needs a real browser: Debian's `chromium`. Install it when it is missing,
# we are root and apt-get exists; otherwise say why and carry on (the test then skips with its reason).
# Never fails the build.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: not installed and apt-get is not usable here (not root or no apt); the report.html browser test will skip"
    exit 0
fi
echo "chromium: installing Debian's chromium for the report.html browser test"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "chromium: apt-get could not install it; the report.html browser test will skip"
fi
exit 0
