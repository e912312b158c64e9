#!/usr/bin/env bash
# Run HERE (not on the GPU machine), once, before scripts/device_llm_full.sh: packs what the bare GPU machine lacks
# into two folders that git ignores, one per device call (each call may carry at most 64 MiB):
#   .dev/a: the first 44 MiB of the embedded model's GGUF file, and the pinned transformers, peft and gguf wheels
#           (the machine's image has torch 2.11, pandas, matplotlib, seaborn, accelerate, but transformers 5.17
#           and no gguf);
#   .dev/b: the rest of the GGUF file.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
grep -qx '/.dev/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.dev/' >> .git/info/exclude; }
rm -rf .dev/a .dev/b && mkdir -p .dev/a .dev/b
G="$($PY -c 'from soo.llm import models; print(models.gguf_folder())')/SmolLM2-135M-Instruct.Q4_1.gguf"
head -c 46137344 "$G" > .dev/a/gguf.part0
tail -c +46137345 "$G" > .dev/b/gguf.part1
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .dev/a transformers==5.23.0 peft==0.21.2 gguf==0.19.0
du -sh .dev/a .dev/b
cat .dev/a/gguf.part0 .dev/b/gguf.part1 | sha256sum
