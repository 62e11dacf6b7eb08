# workers/llm: the llm engine (lib llm), the provider translators (lib
# llmprov, declared in providers/module.mk, which the top Makefile's
# two-level wildcard does not reach, so it is included from here) and
# the omni-llm worker.  SHA-256 for the cache keys comes from libcrypto.
LLM_CRYPTO := $(shell pkg-config --libs libcrypto)

ifeq ($(filter workers/llm/providers/module.mk,$(MAKEFILE_LIST)),)
include workers/llm/providers/module.mk
endif

$(eval $(call omni_lib,llm,$(filter-out workers/llm/main.c workers/llm/llm_sse.c,$(wildcard workers/llm/*.c))))
$(eval $(call omni_prog,omni-llm,workers/llm/main.c,llm llmprov worker omni core,$(LLM_CRYPTO)))
$(eval $(call omni_tests,llmeng,llm llmprov worker omni core,$(LLM_CRYPTO)))

$(OBJ)/workers/llm/%.o: CFLAGS += -Iworkers/llm
$(OBJ)/tests/unit/test_llmeng_%.o: CFLAGS += -Iworkers/llm
