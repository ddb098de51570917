#!/usr/bin/env bash
# The NATS JetStream bridge (bridge/chunkq-nats) against a real nats-server:
# its unit tests, its doc tests (every example in the crate documentation
# runs, each against a server it starts), and tests/jetstream.rs, which
# starts its own servers (JetStream on, loopback only, a fresh store
# directory, a free port): a round trip through another process
# (examples/import_stage.rs), server kills and restarts in the middle of an
# export and an import and while the exporter awaits its consumer, fan-out
# copies of one item exported into one stream, Start::Seq round trips,
# backpressure from a small chunkq budget, malformed messages, and the
# examples run against a server.
# Installs nats-server with apt-get when it is missing; skipped (77) when
# it cannot be had. Once a server binary is found, CHUNKQ_NATS_REQUIRED
# makes a test that cannot find it fail instead of printing SKIPPED.
# About 4 minutes on 2 cores from a cold build, 15-60 s of it the tests
# (the restart test waits out ack timeouts and redeliveries).
set -uo pipefail

find_server() {
    local c
    for c in "${NATS_SERVER:-}" "$(command -v nats-server 2>/dev/null)" \
        /usr/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server; do
        if [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

if ! server=$(find_server); then
    if command -v apt-get >/dev/null 2>&1; then
        echo "installing nats-server with apt-get"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server) \
            >/tmp/chunkq-nats-apt.log 2>&1 || tail -5 /tmp/chunkq-nats-apt.log
    fi
fi
if ! server=$(find_server); then
    echo "SKIPPED: nats-server not available (apt-get install -y nats-server failed or no apt-get)"
    exit 77
fi
echo "using $server ($("$server" --version))"

export NATS_SERVER="$server" CHUNKQ_NATS_REQUIRED=1
if ! timeout 900 cargo test --release -p chunkq-nats -- --nocapture; then
    echo "chunkq-nats tests failed"
    exit 1
fi
