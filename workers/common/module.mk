# workers/common/: the runtime every worker links (libworker.a).
$(eval $(call omni_lib,worker,$(wildcard workers/common/*.c)))
$(eval $(call omni_tests,worker,worker omni core))
