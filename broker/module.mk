# broker/: omni-broker (router, worker registry, supervisor, listener).
$(eval $(call omni_lib,broker,$(filter-out broker/main.c,$(wildcard broker/*.c))))
$(eval $(call omni_prog,omni-broker,broker/main.c,broker http omni core))
$(eval $(call omni_tests,broker,broker core))
$(OBJ)/broker/main.o: CFLAGS += -Iclients/http
