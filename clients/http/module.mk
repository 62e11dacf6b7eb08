# clients/http: omni-http, the OpenAI-compatible HTTP front.  The route
# and reply mapping (routes.c, multipart.c) is transport-independent and
# also serves the Lambda runtime.
$(eval $(call omni_lib,http,$(filter-out %/main.c,$(wildcard clients/http/*.c))))
$(eval $(call omni_prog,omni-http,clients/http/main.c,http omni core))
$(eval $(call omni_tests,http,http core))
$(OBJ)/tests/unit/test_http_%.o: CFLAGS += -Iclients/http
