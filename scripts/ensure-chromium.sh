#!/bin/sh
# Makes sure Debian's chromium is at /usr/bin/chromium for the report's browser test
# (test/audit/browser.test.ts drives it with playwright-core). Never fails the caller: when
# it cannot install, it says why and exits 0, and the browser test then skips with a message.
set -u

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "ensure-chromium: $CHROMIUM is present"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is absent and apt-get is not available; install Chromium at $CHROMIUM by hand to run the report's browser test"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: $CHROMIUM is absent and this is not root; run 'sudo apt-get install -y chromium' to run the report's browser test"
  exit 0
fi

# Another apt run (an image build, unattended upgrades) holds the dpkg lock; wait for it
# rather than fail, up to ten minutes.
wait_for_apt() {
  waited=0
  while pgrep -x apt-get >/dev/null 2>&1 || pgrep -x dpkg >/dev/null 2>&1 || pgrep -x apt >/dev/null 2>&1; do
    if [ "$waited" -ge 600 ]; then
      echo "ensure-chromium: another apt run has held the lock for 10 minutes; giving up"
      return 1
    fi
    [ "$waited" -eq 0 ] && echo "ensure-chromium: waiting for another apt run to finish"
    sleep 5
    waited=$((waited + 5))
  done
  return 0
}

wait_for_apt || exit 0
# Another apt run may have just installed it.
if [ -x "$CHROMIUM" ]; then
  echo "ensure-chromium: $CHROMIUM is present"
  exit 0
fi

echo "ensure-chromium: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1 \
  || { apt-get update -q >>"$log" 2>&1 && apt-get install -y -q --no-install-recommends chromium >>"$log" 2>&1; }; then
  echo "ensure-chromium: installed $($CHROMIUM --version 2>/dev/null || echo chromium)"
else
  echo "ensure-chromium: apt-get could not install chromium (last lines of its output follow); the report's browser test will skip"
  tail -n 5 "$log"
fi
rm -f "$log"
exit 0
