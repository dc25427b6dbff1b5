#!/usr/bin/env bash
# The demo dataset, sampled through `transformers serve` (an OpenAI-compatible server) on loopback:
# what `make demo` builds, with the policy behind a server instead of in the build's process.
# Usage: scripts/demo_served.sh PROJECT OUT [PORT]   (make demo-served fills these in)
set -euo pipefail
project=$1 out=$2 port=${3:-8000}
bin=$(dirname "$0")/../.venv/bin
model=$(dirname "$out")/smollm2-sampling

# `transformers serve` has no request field for sampling: it samples only when the served model's
# generation_config.json says so. A copy of the bundled SmolLM2 with "do_sample": true.
rm -rf "$model"
cp -r "$("$bin/python" -c 'from actforge.pipelines.policy.models import smollm2_folder; print(smollm2_folder())')" "$model"
"$bin/python" - "$model/generation_config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
json.dump(config | {"do_sample": True}, open(path, "w"), indent=2)
PY
model=$(realpath "$model")  # a pinned server knows its model by exactly the path it was given

"$bin/transformers" serve --host 127.0.0.1 --port "$port" "$model" >"$out.serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
"$bin/python" - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(240):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=1)
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("transformers serve did not answer /health within 2 minutes (see the .serve.log)")
PY

# A batch of 32 states lets --concurrency 8 keep the server busy.
"$bin/actforge" build --project "$project" --out "$out" \
  --policy "openai:$model" --base-url "http://127.0.0.1:$port/v1" \
  --batch-size 32 --concurrency 8
"$bin/actforge" stats "$out"
