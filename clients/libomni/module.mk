# clients/libomni: the C client library.
#
# Inside the tree programs link the static libomni (objects/libomni.a)
# with core.  For users, `make all` also installs the public artefacts:
# $(LIBD)/libomni.a and $(LIBD)/libomni.so (libomni and core objects in
# one library) and $(INCD)/omni.h.
$(eval $(call omni_lib,omni,$(wildcard clients/libomni/*.c)))
$(eval $(call omni_tests,omni,omni core))

OMNI_PUB_OBJS := $(patsubst %.c,$(OBJ)/%.o,\
  $(wildcard clients/libomni/*.c common/*.c protocol/*.c))

$(LIBD)/libomni.a: $(OMNI_PUB_OBJS)
	@mkdir -p $(@D)
	@echo "  AR    $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBD)/libomni.so: $(OMNI_PUB_OBJS)
	@mkdir -p $(@D)
	@echo "  LINK  $@"
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,libomni.so -o $@ $^ $(LDLIBS)

$(INCD)/omni.h: clients/libomni/omni.h
	@mkdir -p $(@D)
	$(Q)cp $< $@

HEADERS += $(INCD)/omni.h $(LIBD)/libomni.a $(LIBD)/libomni.so
