# bench: omni-bench (load generator and checker through the broker) and
# omni-floor (the bare Unix-socket and ZeroMQ round trips it is
# compared with).  bench/broker.sh runs both; see bench/README.md.
$(eval $(call omni_prog,omni-bench,bench/omni_bench.c bench/bench_stats.c,omni core))
$(eval $(call omni_prog,omni-floor,bench/floor.c bench/floor_unix.c bench/floor_zmq.c bench/bench_stats.c,core))
