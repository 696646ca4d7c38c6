#!/usr/bin/env bash
# The soak (issue 28, item 5): continuous commands and queries against a devnet (five
# gatekeepers, two workers) while, in turn, a worker restarts from its checkpoint, an
# epoch is rotated and the one before retired, pRuntime is upgraded to a new build
# (each worker replaced from a peer's committed checkpoint, the old build removed), and,
# once, a sixth gatekeeper (its own process) is elected, cut off, rolled back until its
# log forks, caught by the audit, reported and reshared out. It fails unless every
# accepted command is applied exactly once by every worker, every sampled answer
# verifies with `phalanx verify answer`, nobody but the forked gatekeeper is named and a
# removed build cannot start; it prints the fraction of queries answered within a second
# and the longest gap.
#
#   scripts/soak.sh [SECONDS]    # default 1800 (the long form, by hand)
#
# `make test` runs the short form (40 s) with the other tests.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1800}"
PHALANX_SOAK_SECS="$secs" exec cargo test --locked -p phalanx-cli --test availability \
  soak_loses_nothing -- --nocapture
