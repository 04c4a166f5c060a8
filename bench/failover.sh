#!/usr/bin/env bash
# VIP failover benchmark (issue 9): kill -9 and partition trials of the VIP holder in the
# namespace lab of bin/ironfence/tests/front_door.rs, for each VRRP mode, in one run:
#   ironfence   - the shipped default (VRRPv3, centisecond adverts, unicast, readiness gating)
#   vrrp2       - VRRPv2 with the shared key (PASS), 1 s adverts
#   packetfence - PacketFence's keepalived settings (VRRPv2, advert_int 5)
# Usage: bench/failover.sh [TRIALS] [MODES...]   (as root; prints one figure line per mode)
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-10}"
shift || true
modes=("$@")
((${#modes[@]})) || modes=(ironfence vrrp2 packetfence)
for mode in "${modes[@]}"; do
    echo "==> $mode ($trials kills, $trials partitions)"
    IRONFENCE_BENCH_VRRP="$mode" IRONFENCE_BENCH_TRIALS="$trials" \
        cargo nextest run -p ironfence --test front_door --run-ignored only --no-capture \
        bench_vip_failover 2>&1 | grep -E "^(trial|figure)"
done
