#!/usr/bin/env bash
# Runs on a CUDA machine what .ci/gpu/build.sh packed into .gpu/ (no Rust needed there), as root:
#   o  the op tests on the CUDA device (the patched build's expectations)
#   l  qwen3next-tiny's teacher-forced logits on CUDA against the CPU, with each build's libraries
#   s  graph nodes and splits of a fully offloaded qwen3next-tiny (GGML_SCHED_DEBUG=2), per build
#   c  `llama-bench compare -ngl 99 -p 512 -n 128` on the synthetic Qwen3-Next-80B-A3B, Q4_0, with
#      LAYERS layers (default: 48 if this machine writes it in time, see below), REPS repetitions
#   g  the patched build's tg128 with and without CUDA graphs (GGML_CUDA_DISABLE_GRAPHS=1)
#   p  where the time goes, per build, on the same model: `llama-bench profile -ngl 99` for a
#      512-token ubatch and for decode steps (each node computed and synchronised alone: per-op
#      times, CUDA graphs off), and, where nsys is installed, its CUDA kernel summary of a plain
#      pp512 and tg32 run
# Usage: bash .gpu/run.sh [STAGES]   (default olscg; summary in $OUT/summary.txt, logs beside it)
set -u
stages=${1:-olscg}
G=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
log=$OUT/summary.txt
say() { echo "$@" | tee -a "$log"; }
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 ))s]"; }
say "== $(date -u) $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader) nproc=$(nproc)"
df -h / /tmp /dev/shm 2>/dev/null | tee -a "$log"
python3 -c "import tarfile; tarfile.open('$G/bundle.tar.xz').extractall('/')" || { say "unpack failed"; exit 1; }
# The CUDA runtime, cuBLAS and the driver into ld.so.cache, wherever this machine keeps them.
for n in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcuda.so.1; do
  ldconfig -p | grep -q "$n" && continue
  d=$(find /usr/local /opt /usr/lib -name "$n" 2>/dev/null | head -n1)
  [ -n "$d" ] && dirname "$d" >> /etc/ld.so.conf.d/zz-llama-rs.conf
done
ldconfig
pre=
for n in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcuda.so.1; do
  f=$(ldconfig -p | grep -m1 "$n" | sed 's/.*=> //'); say "$n: $f"
  # libggml-cuda.so was linked here against symbol-less cuBLAS/driver stubs, so it names only
  # libcudart: the other three must be in the global scope for its symbols to bind.
  [ "$n" != libcudart.so.13 ] && pre="$pre${pre:+:}$f"
done
export LD_PRELOAD=$pre
PATCHED=$(sed -n 1p "$G/libdirs")
export LD_LIBRARY_PATH=$PATCHED
say "LD_PRELOAD=$LD_PRELOAD LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
"$G/bin/llama-bench" --list-devices 2>&1 | tee -a "$log"
B=$G/bin
cd "$G"
say "$(el) bundle ready"

if [[ $stages == *o* ]]; then
  for t in "$B"/ops-*; do
    name=$(basename "$t")
    timeout 75 "$t" --test-threads 8 > "$OUT/$name.log" 2>&1; rc=$?
    say "$(el) $name rc=$rc: $(grep -E '^test result' "$OUT/$name.log" | tr '\n' ' ')"
    grep -E 'SKIPPED|panicked|FAILED|failed|rejected|runs on CUDA|CUDA0: ' "$OUT/$name.log" | sort | uniq -c | sort -rn | head -n 12 | tee -a "$log"
  done
  cat "$OUT"/ops-*.log > "$OUT/ops.log"; rm -f "$OUT"/ops-*.log
fi

if [[ $stages == *l* ]]; then
  for v in patched upstream; do
    # the test binary is the patched build's: with upstream's libraries only its NMSE lines count
    L=$(grep "/out/$v/lib" "$G/libdirs")
    LD_LIBRARY_PATH=$L timeout 90 "$B/gpu_logits" --nocapture > "$OUT/gpu_logits-$v.log" 2>&1; rc=$?
    say "$(el) gpu_logits with $v libraries rc=$rc"
    grep -E 'step (0|1|2|8|16|32):|worst|test result|panicked|does not take' "$OUT/gpu_logits-$v.log" | tee -a "$log"
  done
  cat "$OUT"/gpu_logits-*.log > "$OUT/gpu_logits.log"; rm -f "$OUT"/gpu_logits-*.log
fi

if [[ $stages == *s* ]]; then
  # Graph splits of a fully offloaded qwen3next-tiny, per build: 1 split means every node ran on CUDA.
  "$B/llama-bench" synth --preset qwen3next-tiny --type q4_0 -q -o /tmp/tiny.gguf
  for v in patched upstream; do
    L=$(grep "/out/$v/lib" "$G/libdirs")
    GGML_SCHED_DEBUG=2 LD_LIBRARY_PATH=$L timeout 60 "$B/llama-bench" -m /tmp/tiny.gguf -ngl 99 -p 8 -n 4 -r 1 -v \
      > "$OUT/splits-$v.log" 2>&1
    say "$(el) $v tiny: $(grep -iE 'splits' "$OUT/splits-$v.log" | sort | uniq -c | tr '\n' ' ')"
  done
  cat "$OUT"/splits-*.log | xz -9 > "$OUT/splits.log.xz"; rm -f "$OUT"/splits-*.log
fi

# The model: 48 layers (45 GB) when this machine writes it fast enough, else as many as fit ~120 s.
D=/dev/shm; [ "$(df -B1G --output=avail $D 2>/dev/null | tail -n1)" -gt 60 ] 2>/dev/null || D=/tmp
M=$D/m.gguf
if [[ $stages == *c* || $stages == *g* || $stages == *p* ]] && [ -s $M ] && [ -s $M.layers ] \
    && { [ -z "${LAYERS:-}" ] || [ "$LAYERS" = "$(cat $M.layers)" ]; }; then
  # a later call on the same warm machine: the model of the earlier one (writing 48 layers takes
  # about two minutes of the device budget)
  say "$(el) reusing $M ($(cat $M.layers) layers)"
elif [[ $stages == *c* || $stages == *g* || $stages == *p* ]]; then
  rm -f $M.layers  # written again only once the model is complete
  s0=$(date +%s.%N)
  "$B/llama-bench" synth --preset qwen3next-80b-a3b --layers 2 --type q4_0 --no-vocab --vocab-size 151936 -q -o $M
  per=$(python3 -c "print(($(date +%s.%N) - $s0) / 2)"); rm -f $M
  layers=${LAYERS:-$(python3 -c "print(max(4, min(48, int(120 / max($per, 1e-3)) // 4 * 4)))")}
  say "$(el) 2-layer synth: $per s per layer on $D -> $layers layers"
  timeout 200 "$B/llama-bench" synth --preset qwen3next-80b-a3b --layers $layers --type q4_0 \
    --no-vocab --vocab-size 151936 -q -o $M; rc=$?
  say "$(el) synth rc=$rc $(ls -la $M 2>&1)"
  [ $rc = 0 ] && echo "$layers" > $M.layers
fi

if [[ $stages == *c* ]]; then
  timeout 220 "$B/llama-bench" compare -m $M -ngl 99 -p 512 -n 128 -r "${REPS:-3}" -o md --progress \
    > "$OUT/compare.md" 2> "$OUT/compare.err"; rc=$?
  say "$(el) compare rc=$rc"
  cat "$OUT/compare.md" | tee -a "$log"; tail -n 15 "$OUT/compare.err" | tee -a "$log"
fi

if [[ $stages == *g* ]]; then
  P=$PATCHED
  for dis in 0 1; do
    if [ $dis = 1 ]; then export GGML_CUDA_DISABLE_GRAPHS=1; fi
    LD_LIBRARY_PATH=$P timeout 60 "$B/llama-bench" -m $M -ngl 99 -p 0 -n 128 -r 3 -o md > "$OUT/graphs$dis.md" 2>&1
    say "$(el) patched tg128, GGML_CUDA_DISABLE_GRAPHS=$dis rc=$?"; grep -E 'tg128|error' "$OUT/graphs$dis.md" | tee -a "$log"
  done
fi
if [[ $stages == *p* ]]; then
  nsys=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -n1)
  for v in patched upstream; do
    L=$(grep "/out/$v/lib" "$G/libdirs")
    for b in 512 1; do
      n=$([ $b = 1 ] && echo 32 || echo 3)
      LD_LIBRARY_PATH=$L timeout 240 "$B/llama-bench" profile -m $M -ngl 99 -b $b -n $n \
        > "$OUT/profile-$v-b$b.md" 2> "$OUT/profile-$v-b$b.err"
      say "$(el) profile $v -b $b rc=$?"; head -n 3 "$OUT/profile-$v-b$b.md" | tail -n 2 | tee -a "$log"
      sed -n '6,21p' "$OUT/profile-$v-b$b.md" | tee -a "$log"
    done
    if [ -n "$nsys" ]; then
      for pn in "-p 512 -n 0" "-p 0 -n 32"; do
        tag=$(echo "$pn" | tr -d ' -')
        LD_LIBRARY_PATH=$L timeout 240 "$nsys" profile -t cuda -f true -o "$OUT/nsys-$v-$tag" \
          "$B/llama-bench" -m $M -ngl 99 $pn -r 2 > /dev/null 2>&1
        "$nsys" stats -q -r cuda_gpu_kern_sum -f csv "$OUT/nsys-$v-$tag.nsys-rep" > "$OUT/kern-$v-$tag.csv" 2>/dev/null
        say "$(el) nsys $v $tag: top kernels (time %, total ns, instances, name)"
        head -n 16 "$OUT/kern-$v-$tag.csv" | cut -d, -f1,2,3,9- | tee -a "$log"
        rm -f "$OUT/nsys-$v-$tag.nsys-rep" "$OUT/nsys-$v-$tag.sqlite"
      done
    else
      say "no nsys on this machine: per-op times from llama-bench profile only"
    fi
  done
fi
say "$(el) done"
