#!/bin/sh
# Makes sure Debian's chromium is at /usr/bin/chromium for the report's browser test
# (test/audit/browser.test.ts drives it with playwright-core). Never fails the caller: when
# it cannot install, it says why and exits 0, and the browser test then skips with a message.
exec sh "$(dirname "$0")/apt-ensure.sh" ensure-chromium 'test -x /usr/bin/chromium' chromium
