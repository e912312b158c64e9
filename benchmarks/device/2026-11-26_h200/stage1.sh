# device call 1: stage half of the GGUF and install the pinned pure-Python wheels
set -e
S=/root/stage; mkdir -p $S /root/site
cp .dev/a/gguf.part0 $S/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /root/site .dev/a/*.whl
ls /root/site | head -30
python3 -c "import sys, torch; print(sys.version); print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
