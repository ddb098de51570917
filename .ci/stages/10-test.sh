#!/usr/bin/env bash
# The README's test command: unit, integration and doc tests.
set -euo pipefail
cargo test --release
