"""Training speed of the bundled recipe: slices/s, data-loading share, reproduce wall time.

Trains the bundled architecture at the bundled input size for a fixed number of steps on
cached phantom slices (CPU, 2 threads; and CUDA when present), exactly through
``trainer.train.fit`` (augmentation, windowing, weighted BCE, AdamW). The reproduce wall
time is not re-run here (it takes tens of minutes): it is read from the model card,
which records the phase times of the run that produced the bundled weights.
Prints JSON.
"""
from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from trainer.cache import build_cached_set  # noqa: E402
from trainer.data.synthetic import synthetic_volumes  # noqa: E402
from trainer.pipeline import Config  # noqa: E402
from trainer.train import Recipe, fit, set_threads  # noqa: E402

STEPS = 40


def bundled_config() -> tuple[Config, dict]:
    card_path = ROOT / "models" / "model_card.json"
    config = Config()
    card = {}
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        recipe = card.get("recipe", {})
        config = replace(config, size=int(recipe.get("size", config.size)),
                         context=int(recipe.get("context", config.context)),
                         recipe=Recipe.from_dict(recipe["recipe"]) if "recipe" in recipe else config.recipe)
    return config, card


def measure(config: Config, data, device: torch.device) -> dict:
    recipe = replace(config.recipe, epochs=1, samples_per_epoch=STEPS * config.recipe.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        fit(data, config.spec(), recipe, Path(tmp) / "warmup", device=device, resume=False,
            log=lambda _: None) if device.type == "cuda" else None
        _, stats = fit(data, config.spec(), recipe, Path(tmp) / "run", device=device, resume=False,
                       log=lambda _: None)
    return {"device": str(device), "slices_per_second": round(stats.slices_per_second, 1),
            "data_loading_share": round(stats.data_share, 3), "steps": STEPS,
            "batch_size": recipe.batch_size}


def main() -> int:
    threads = set_threads(2)
    config, card = bundled_config()
    started = time.monotonic()
    data = build_cached_set(synthetic_volumes(4, seed=7, matrix=128), config.spec())
    prepare = time.monotonic() - started
    results = {"cpu": measure(config, data, torch.device("cpu"))}
    if torch.cuda.is_available():
        results["cuda"] = measure(config, data, torch.device("cuda"))
    training = card.get("training", {})
    out = {
        "benchmark": "train",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {threads} torch threads, python {platform.python_version()}, "
                   f"torch {torch.__version__}",
        "input_size": config.size,
        "architecture": config.recipe.arch,
        "preprocess_seconds_per_slice": round(prepare / max(len(data), 1), 4),
        "training": results,
        "reproduce_seconds_recorded": training.get("reproduce_seconds"),
        "reproduce_note": "parts of the run behind the bundled weights, from its model card; the wall "
                          "time of a fresh reproduce is in docs/benchmarks.md (Training)",
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
