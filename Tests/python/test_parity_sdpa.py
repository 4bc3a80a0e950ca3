"""Parity of diffattn.scaled_dot_product_attention with torch.nn.functional.scaled_dot_product_attention
(golden fixtures of kind "sdpa" in Tests/Fixtures/attention/index.json; ids = case names)."""

import numpy as np
import pytest

import diffattn
import fixtures


@pytest.mark.parametrize("case", fixtures.params("sdpa"))
def test_sdpa(case):
    args, kwargs = case.call_args()
    before = [a.copy() for a in args]
    if case.expects_error:
        with pytest.raises(case.accepted_errors()):
            diffattn.scaled_dot_product_attention(*args, **kwargs)
        return
    out = diffattn.scaled_dot_product_attention(*args, **kwargs)
    fixtures.assert_matches(out, case.expected(), what=case.name)
    for a, b in zip(args, before):  # inputs are read, never written
        np.testing.assert_array_equal(a, b)


def test_sdpa_strided_fixtures_are_views():
    """The strided cases really hand non-contiguous arrays to the binding."""
    strided = [c for c in fixtures.cases("sdpa") if c.category == "sdpa_strided"]
    assert strided
    for c in strided:
        args, _ = c.call_args()
        assert any(not a.flags["C_CONTIGUOUS"] for a in args), c.name


def test_sdpa_dropout_zero_default():
    """dropout_p=0.0 and enable_gqa=False are accepted explicitly (torch's keyword names)."""
    c = next(c for c in fixtures.cases("sdpa") if c.name == "sdpa_d8_self")
    args, _ = c.call_args()
    out = diffattn.scaled_dot_product_attention(*args, attn_mask=None, dropout_p=0.0, is_causal=False,
                                                scale=None, enable_gqa=False)
    fixtures.assert_matches(out, c.expected(), what=c.name)
