# workers/rag: the RAG worker (library rag, program omni-rag) and its
# benchmark program omni-rag-bench (bench/rag).
RAG_PKGS := poppler-glib
RAG_LIBS := $(shell pkg-config --libs $(RAG_PKGS)) -lstemmer

$(eval $(call omni_lib,rag,$(filter-out %/main.c,$(wildcard workers/rag/*.c))))
$(eval $(call omni_prog,omni-rag,workers/rag/main.c,rag worker omni core,$(RAG_LIBS)))
$(eval $(call omni_prog,omni-rag-bench,$(wildcard bench/rag/*.c),rag omni core,$(RAG_LIBS)))
$(eval $(call omni_tests,rag,rag core,$(RAG_LIBS)))

$(OBJ)/workers/rag/%.o: CFLAGS += $(shell pkg-config --cflags $(RAG_PKGS))
$(OBJ)/tests/unit/test_rag_%.o: CFLAGS += -Iworkers/rag
$(OBJ)/bench/rag/%.o: CFLAGS += -Iworkers/rag
