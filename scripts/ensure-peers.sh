#!/bin/sh
# Installs the benchmarks' peers, PyTorch and scikit-learn from Debian's packages, for
# /usr/bin/python3 (what the benches run; BULWARK_PEER_PYTHON points elsewhere). `npm run
# bench:peers`. Without them the benches still run and mark the peer figures skipped.
exec sh "$(dirname "$0")/apt-ensure.sh" ensure-peers '/usr/bin/python3 -c "import torch, sklearn"' python3-torch python3-sklearn
