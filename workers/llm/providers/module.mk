# workers/llm/llm_sse.c and the provider translators: libllmprov, linked
# into omni-llm; their unit tests read recorded cassettes with libyaml.
$(eval $(call omni_lib,llmprov,$(wildcard workers/llm/llm_sse.c workers/llm/providers/*.c)))
$(OBJ)/workers/llm/%.o: CFLAGS += -Iworkers/llm -Iworkers/llm/providers
$(OBJ)/tests/unit/test_llm_%.o $(OBJ)/tests/unit/llm_cassette.o: \
  CFLAGS += -Iworkers/llm -Iworkers/llm/providers
$(eval $(call omni_lib,llmtest,tests/unit/llm_cassette.c))
$(eval $(call omni_tests,llm_sse,llmtest llmprov core,-lyaml))
$(eval $(call omni_tests,llm_openai,llmtest llmprov core,-lyaml))
$(eval $(call omni_tests,llm_anthropic,llmtest llmprov core,-lyaml))
