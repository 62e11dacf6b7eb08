# bench/llm: omni-httpload, the open-loop HTTP load generator that
# bench/llm/run.sh drives against omni-http and against the upstream
# directly (see bench/llm/README.md).
$(eval $(call omni_prog,omni-httpload,bench/llm/httpload.c bench/bench_stats.c,core))
$(OBJ)/bench/llm/%.o: CFLAGS += -Ibench
