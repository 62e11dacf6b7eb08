# clients/lambda: the Lambda custom runtime (bootstrap) and the Lambda
# extension that runs the broker (omni-extension), and the packaging
# goals:
#   make lambda ARCH=arm64|x86_64        build/lambda/ARCH/{function,layer}.zip
#        [LAMBDA_WITHOUT="omni-rag"]      (programs to leave out)
#   make lambda-test ARCH=arm64|x86_64   unit tests built for ARCH and run
#                                        (arm64 under qemu-aarch64)
# Both call deployment/lambda/build.sh, which builds release objects in
# build/lambda-obj/ARCH with this same Makefile (cross-compiling for
# arm64 against the sysroot of deployment/lambda/sysroot.sh).
$(eval $(call omni_lib,lambda,$(filter-out clients/lambda/bootstrap.c clients/lambda/extension.c,$(wildcard clients/lambda/*.c))))
$(eval $(call omni_prog,bootstrap,clients/lambda/bootstrap.c,lambda http omni core))
$(eval $(call omni_prog,omni-extension,clients/lambda/extension.c,lambda omni core))
$(eval $(call omni_tests,lambda,lambda http omni core))

$(OBJ)/clients/lambda/%.o: CFLAGS += -Iclients/http
$(OBJ)/tests/unit/test_lambda_%.o: CFLAGS += -Iclients/lambda -Iclients/http

ARCH ?= $(shell uname -m | sed 's/aarch64/arm64/')

.PHONY: lambda-test
lambda:
	$(Q)LAMBDA_WITHOUT="$(LAMBDA_WITHOUT)" deployment/lambda/build.sh package $(ARCH)

lambda-test:
	$(Q)deployment/lambda/build.sh test $(ARCH)
