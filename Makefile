# hubgate: `make run` starts a hub on the embedded registry; `make test` runs
# every test (installing what the tests need on a fresh Debian machine).
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
NODE_E2E := internal/e2e/node

.PHONY: run build test deps node-deps vet fuzz bench clean

run:
	$(GO) run ./cmd/hubgate serve

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o hubgate ./cmd/hubgate

# System packages the tests use: mosquitto_pub/sub (plain MQTT client),
# redis-server (started by the tests themselves on free ports), Node.js + npm
# (the official Azure SDKs). Installed only when missing.
deps:
	@missing=""; \
	command -v mosquitto_pub >/dev/null || missing="$$missing mosquitto-clients"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $$missing; \
	fi

node-deps: deps
	npm ci --prefix $(NODE_E2E) --no-audit --no-fund

vet:
	$(GO) vet ./...

# Short runs of the parser fuzzers on top of their seed corpora (which plain
# `go test` always runs).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseSAS$$' -fuzztime 10s ./authn
	$(GO) test -run '^$$' -fuzz '^FuzzParseMQTTUsername$$' -fuzztime 10s ./authn

test: node-deps vet
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./authn ./registry ./broker

clean:
	rm -f hubgate
