# clients/cli: the `omni` command, linked with libomni and core.
$(eval $(call omni_prog,omni,$(wildcard clients/cli/*.c),omni core))
