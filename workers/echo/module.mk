# workers/echo/: omni-echo, the test and benchmark service.
$(eval $(call omni_prog,omni-echo,workers/echo/main.c,worker omni core))
