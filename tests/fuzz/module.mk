# tests/fuzz: libFuzzer targets, built with clang from the sources (not
# the gcc objects) under ASan + UBSan.
#
#   make fuzz [FUZZ_SECONDS=60]   build $(BUILD)/fuzz/fuzz_proto and run it
#                                 for that long on tests/fuzz/corpus/
#                                 (grown, not committed) seeded from
#                                 tests/fuzz/seeds/
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SRCS    := tests/fuzz/fuzz_proto.c protocol/omni_proto.c \
                $(filter-out common/omni_evzmq.c,$(wildcard common/*.c))
FUZZ_FLAGS   := -g -O1 -std=c17 -D_GNU_SOURCE \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -fno-omit-frame-pointer \
                $(INCS) $(shell pkg-config --cflags msgpack)

$(FUZZ_DIR)/fuzz_proto: $(FUZZ_SRCS) $(wildcard common/*.h protocol/*.h)
	@mkdir -p $(@D)
	@echo "  FUZZ  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_SRCS) \
	  $(shell pkg-config --libs msgpack) -lm

fuzz: $(FUZZ_DIR)/fuzz_proto
	@mkdir -p tests/fuzz/corpus
	$(Q)$< -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	  -print_final_stats=1 tests/fuzz/corpus tests/fuzz/seeds
