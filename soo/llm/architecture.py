"""A model's architecture without its weights: its transformers config (packaged for the paper's models and the
embedded one, built in code for the tiny models, else read from a folder or the local Hugging Face cache) and its
depth, which every layer parameter is checked against before any compute."""
from __future__ import annotations

import json
from pathlib import Path

from . import models
from .config import MODEL_PRESETS, preset_name

CONFIG_DIR = Path(__file__).resolve().parents[1] / "data" / "model_configs"


def architecture(model: str):
    """The model's transformers config, without its weights: packaged for the paper's models and the embedded one
    (``soo/data/model_configs``), built in code for the tiny models, else read from the folder or the local
    Hugging Face cache; ``None`` when it cannot be read here."""
    from transformers import AutoConfig

    key = preset_name(model)
    packaged = CONFIG_DIR / f"{key}.json"
    exact = str(model).lower() in (key, (MODEL_PRESETS[key].hf_id or "").lower())
    if exact and packaged.exists():
        d = {k: v for k, v in json.loads(packaged.read_text()).items() if not k.startswith("_")}
        return AutoConfig.for_model(d.pop("model_type"), **d)
    if str(model) in models.TINY_MODELS:
        return models.tiny_config(str(model).removeprefix("tiny-random-"))
    try:
        return AutoConfig.from_pretrained(models.resolve(str(model)))
    except (OSError, ValueError, models.ModelNotAvailableError):
        return None


def n_layers_of(model: str) -> int | None:
    """The model's number of decoder layers from its config alone (:func:`architecture`, no weights loaded): what
    every layer parameter is checked against before any compute; ``None`` when the config cannot be read here."""
    cfg = architecture(model)
    cfg = getattr(cfg, "text_config", None) or cfg
    return getattr(cfg, "num_hidden_layers", None)
