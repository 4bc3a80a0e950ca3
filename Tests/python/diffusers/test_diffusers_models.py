"""Stock diffusers vs use_diffattn on tiny random-weight models (docs/diffusers.md coverage table).

The expectation is diffusers' own output from the same model in the same process; the call count
proves the swap happened; restore must give diffusers' output bit for bit. Set
DIFFATTN_COVERAGE_REPORT=path to write the measured differences as JSON lines."""

import json
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import diffattn.diffusers as dd  # noqa: E402
from tiny_models import MODELS  # noqa: E402

TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2}
# Models whose every attention module runs whole in module mode (docs/diffusers.md, "module mode"
# column); the others keep kernel mode for some or all modules, and stats say which.
WHOLE_IN_MODULE_MODE = {"StableDiffusion UNet", "SDXL-style UNet", "DiT", "PixArt-Σ", "SD3", "Flux", "CogVideoX",
                        "AuraFlow"}


def _first(out):
    out = out[0] if isinstance(out, (tuple, list)) else getattr(out, "sample", out)
    return out[0] if isinstance(out, (tuple, list)) else out


def _run(model, inputs, dtype):
    with torch.no_grad():
        return _first(model(**inputs(dtype), return_dict=False)).float()


def _report(**row):
    path = os.environ.get("DIFFATTN_COVERAGE_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_diffusers_in_both_modes(name, dtype):
    model, inputs = MODELS[name]()
    model = model.to(dtype).eval()
    stock = _run(model, inputs, dtype)
    scale = stock.abs().max().item()
    for mode in ("kernel", "module"):
        dd.use_diffattn(model, mode=mode)
        out = _run(model, inputs, dtype)
        s = dd.stats(model)
        dd.restore(model)
        diff = (out - stock).abs().max().item() / scale
        _report(model=name, dtype=str(dtype).replace("torch.", ""), mode=mode, rel_max_diff=diff, calls=s["calls"],
                fallbacks=s["fallbacks"], reasons=s["fallback_reasons"])
        assert s["calls"] > 0, (mode, s)
        assert s["fallbacks"] == 0, (mode, s)
        if mode == "module" and name in WHOLE_IN_MODULE_MODE:
            assert not any("kernel mode" in r for r in s["fallback_reasons"]), s
        assert diff <= TOLERANCE[dtype], f"{name} {mode}: max|Δ|/max = {diff:.3g}"
        assert torch.equal(_run(model, inputs, dtype), stock), f"{name}: restore is not bitwise diffusers"
