#!/usr/bin/env bash
# Regenerates every client stub from proto/ with buf (buf.gen.yaml). Run by `make generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
gen=service/kodad/gen
rm -rf "$gen/koda" clients/go/gen clients/typescript/src/gen clients/java/src/main/java/dev/kodad/koda clients/rust/src/gen
node_modules/.bin/buf generate
# protoc's Python generator imports siblings as top-level `koda.v1`; they live in kodad.gen.
sed -i 's/^from koda\.v1 import/from kodad.gen.koda.v1 import/' "$gen"/koda/v1/*.py "$gen"/koda/v1/*.pyi
touch "$gen/koda/__init__.py" "$gen/koda/v1/__init__.py"
# The descriptors with their source info (the proto's comments): served by reflection, and
# the source of the Markdown reference.
node_modules/.bin/buf build --exclude-imports -o "$gen/koda/v1/koda.binpb"
.venv/bin/python tools/proto_docs.py "$gen/koda/v1/koda.binpb" docs/reference.md
