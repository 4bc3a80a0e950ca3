"""bf16 and int8 SDPA on q/k/v captured from a diffusers UNet2DConditionModel forward
(examples/python/precision_accuracy.py), against a float64 reference. Skipped without torch and
diffusers. bf16: our error is no larger than torch's own bf16 SDPA on the same inputs (relative L1
and max error). int8: SageAttention's metrics — cosine similarity ≥ 0.999, relative L1 ≤ 3e-2."""

import os
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))
import precision_accuracy  # noqa: E402


@pytest.fixture(scope="module")
def calls():
    return precision_accuracy.capture_sdpa_inputs(latent=16, seed=0)


def test_real_inputs(calls):
    assert len(calls) >= 4
    for q, k, v in calls:
        m = precision_accuracy.compare(q, k, v)
        label = f"{q.shape}×{k.shape[2]}"
        assert m["ours bf16"][0] <= m["torch bf16"][0], (label, m)
        assert m["ours bf16"][1] <= m["torch bf16"][1], (label, m)
        assert m["ours int8"][2] >= 0.999 and m["ours int8"][0] <= 3e-2, (label, m)
