#!/usr/bin/env bash
# Differential check of our jinja chat-template rendering against Python's jinja2 (what Hugging
# Face transformers uses): every template below, with a few conversations, rendered by
# examples/render_template.rs and by .ci/render_template.py, must print the same text.
#
# The templates are real models' ones, fetched (never committed) from the llama-cpp-python
# source release that vendors llama.cpp's template collection, checked by SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE="llama-cpp-python==0.3.36"
ARCHIVE="llama_cpp_python-0.3.36.tar.gz"
SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
TEMPLATES=(
  Qwen-Qwen3-0.6B.jinja
  Qwen3-Coder.jinja
  Qwen3.5-4B.jinja
  Qwen-Qwen2.5-7B-Instruct.jinja
  meta-llama-Llama-3.1-8B-Instruct.jinja
  meta-llama-Llama-3.2-3B-Instruct.jinja
  openai-gpt-oss-120b.jinja
)

python3 -c 'import jinja2' 2>/dev/null || python3 -m pip install --user jinja2 \
  || python3 -m pip install --user --break-system-packages jinja2

# The archive is shared with the tests' fetch (llamacpp/tests/common/templates.rs): same directory.
work="${TEMPLATE_CHECK_DIR:-${LLAMACPP_SYNTH_CACHE:-${TMPDIR:-/tmp}/llamacpp-synth-cache}/templates}"
mkdir -p "$work"
if [ ! -f "$work/$ARCHIVE" ] || ! echo "$SHA256  $work/$ARCHIVE" | sha256sum -c --status; then
  pip download --no-deps --no-binary :all: "$PACKAGE" -d "$work"
fi
echo "$SHA256  $work/$ARCHIVE" | sha256sum -c --status \
  || { echo "template-check: $ARCHIVE does not have the expected SHA-256" >&2; exit 1; }
tar -xzf "$work/$ARCHIVE" -C "$work" --wildcards '*/vendor/llama.cpp/models/templates/*.jinja'
tdir="$work/${ARCHIVE%.tar.gz}/vendor/llama.cpp/models/templates"

cargo build -q -p llamacpp --example render_template
render="target/debug/examples/render_template"

cases="$work/cases"
mkdir -p "$cases"
# Keys are deliberately not in sorted order: both sides must keep them as written (Python's dicts
# do; the workspace builds serde_json with `preserve_order`).
weather='{"name": "get_weather", "description": "Weather in a city <now>", "parameters": {"type": "object", "properties": {"unit": {"type": "string", "enum": ["c", "f"]}, "city": {"type": "string", "description": "City name"}}, "required": ["city"]}}'
call='{"id": "call_1", "name": "get_weather", "arguments": {"unit": "c", "city": "Paris"}}'
cat > "$cases/plain.json" <<JSON
{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "now": 1700000000,
 "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello, 'world' <b>é</b>"}]}
JSON
cat > "$cases/multiturn.json" <<JSON
{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "now": 1700000000,
 "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "  How are you?\n"}]}
JSON
cat > "$cases/tools.json" <<JSON
{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "now": 1700000000,
 "tools": [$weather],
 "messages": [{"role": "system", "content": "You help."}, {"role": "user", "content": "Weather in Paris?"}]}
JSON
cat > "$cases/roundtrip.json" <<JSON
{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "now": 1700000000,
 "tools": [$weather],
 "messages": [{"role": "user", "content": "Weather in Paris?"},
              {"role": "assistant", "content": "", "tool_calls": [$call]},
              {"role": "tool", "content": "{\"temp\": 21}", "tool_call_id": "call_1", "name": "get_weather"}]}
JSON
cat > "$cases/thinking.json" <<JSON
{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "now": 1700000000,
 "kwargs": {"enable_thinking": false, "reasoning_effort": "high"},
 "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4", "reasoning_content": "Add them."}, {"role": "user", "content": "3+3?"}]}
JSON

export TZ=UTC
fail=0
for t in "${TEMPLATES[@]}"; do
  for c in "$cases"/*.json; do
    name="$t / $(basename "$c" .json)"
    if ! python3 .ci/render_template.py "$tdir/$t" < "$c" > "$work/py.txt" 2> "$work/py.err"; then
      # A template that refuses a conversation must refuse it here too.
      if "$render" "$tdir/$t" < "$c" > "$work/rs.txt" 2> "$work/rs.err"; then
        echo "DIFF $name: jinja2 raised ($(tail -n1 "$work/py.err")), we rendered"; fail=1
      else
        echo "same $name (both raise)"
      fi
      continue
    fi
    if ! "$render" "$tdir/$t" < "$c" > "$work/rs.txt" 2> "$work/rs.err"; then
      echo "DIFF $name: we failed: $(cat "$work/rs.err")"; fail=1; continue
    fi
    if diff -u "$work/py.txt" "$work/rs.txt" > "$work/diff.txt"; then
      echo "same $name ($(wc -c < "$work/py.txt") bytes)"
    else
      echo "DIFF $name:"; cat "$work/diff.txt"; fail=1
    fi
  done
done
exit $fail
