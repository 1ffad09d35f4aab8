#!/bin/sh
# apt-ensure.sh LABEL CHECK PACKAGE...: runs CHECK (a shell command); when it fails, installs
# the Debian PACKAGEs with apt-get (waiting for another apt run's lock) and says what happened.
# Never fails the caller: what needs the packages skips with a message of its own instead.
set -u
if [ $# -lt 3 ]; then
  echo "usage: apt-ensure.sh LABEL CHECK PACKAGE..." >&2
  exit 0
fi
label=$1
check=$2
shift 2

if sh -c "$check" >/dev/null 2>&1; then
  echo "$label: present"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$label: missing and apt-get is not available; install $* by hand"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "$label: missing and this is not root; run 'sudo apt-get install -y $*'"
  exit 0
fi

# Another apt run (an image build, unattended upgrades) holds the dpkg lock; wait for it
# rather than fail, up to ten minutes.
waited=0
while pgrep -x apt-get >/dev/null 2>&1 || pgrep -x dpkg >/dev/null 2>&1 || pgrep -x apt >/dev/null 2>&1; do
  if [ "$waited" -ge 600 ]; then
    echo "$label: another apt run has held the lock for 10 minutes; giving up"
    exit 0
  fi
  [ "$waited" -eq 0 ] && echo "$label: waiting for another apt run to finish"
  sleep 5
  waited=$((waited + 5))
done
# Another apt run may have just installed it.
if sh -c "$check" >/dev/null 2>&1; then
  echo "$label: present"
  exit 0
fi

echo "$label: installing Debian's $*"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if apt-get install -y -q --no-install-recommends "$@" >"$log" 2>&1 \
  || { apt-get update -q >>"$log" 2>&1 && apt-get install -y -q --no-install-recommends "$@" >>"$log" 2>&1; }; then
  echo "$label: installed $*"
else
  echo "$label: apt-get could not install $* (last lines of its output follow)"
  tail -n 5 "$log"
fi
rm -f "$log"
exit 0
