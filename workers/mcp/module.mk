# workers/mcp: the MCP worker (omni-mcp) and its unit tests.
$(eval $(call omni_lib,mcp,$(filter-out %/main.c,$(wildcard workers/mcp/*.c))))
$(eval $(call omni_prog,omni-mcp,workers/mcp/main.c,mcp worker omni core))
$(eval $(call omni_lib,mcptest,tests/unit/mcp_testlib.c))
$(eval $(call omni_tests,mcp,mcptest mcp worker omni core))
$(OBJ)/tests/unit/test_mcp_%.o $(OBJ)/tests/unit/mcp_testlib.o: CFLAGS += -Iworkers/mcp
