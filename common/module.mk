# common/ and protocol/: what every process links.
$(eval $(call omni_lib,core,$(wildcard common/*.c protocol/*.c)))
$(eval $(call omni_tests,core,core))
