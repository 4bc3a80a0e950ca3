"""Hook fixtures (issue 6): pyramid attention broadcast decisions made by diffusers' own hooks.

Called from ``Tests/Fixtures/generate.py`` (or alone with the reference venv):

    /work/venv-ref/bin/python Tests/Fixtures/gen_hooks.py

For tiny models (configs from ``models/index.json``) and fixed schedules, diffusers'
``apply_pyramid_attention_broadcast`` is applied on top of a recording hook registered first on
every attention module (so it is inside PAB's hook): the recorder sees a call exactly when PAB
computes. Every attention module is then called ``calls_per_step`` times per timestep (in
``attn_processors`` order); optionally the root registry's ``reset_stateful_hooks()`` runs and the
schedule is repeated. The recorder's ``new_forward`` does not run the attention (the decision does
not depend on the numbers), so any module can be driven with a dummy input.

Writes ``hooks/pab.json``: ``{"format": "diffattn-hooks", "format_version": 1, "versions", "cases"}``;
a case has ``name``, ``model`` (a case name of models/index.json), ``config`` (the
PyramidAttentionBroadcastConfig fields; ``null`` = None), ``schedule``, ``calls_per_step``,
``repeat_after_reset``, ``hooked`` (paths diffusers hooked, pre-order) and ``decisions``
(path -> string of ``C`` = computed / ``R`` = reused, one letter per call).
"""

import json
import os
import sys
from fixture_io import write_hook_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hooks", "pab.json")

SCHEDULE = [999, 800, 700, 600, 500, 400, 300, 200, 100, 50]
CASES = [
    dict(name="unet2d_s2_c3", model="unet2d", config=dict(spatial_attention_block_skip_range=2,
                                                         cross_attention_block_skip_range=3)),
    dict(name="unet2d_defaults_mutated", model="unet2d", config={}),
    dict(name="unet3d_custom", model="unet3d",
         config=dict(spatial_attention_block_skip_range=3, spatial_attention_timestep_skip_range=[50, 950],
                     temporal_attention_block_skip_range=2, temporal_attention_block_identifiers=["temp_attentions"],
                     spatial_attention_block_identifiers=["^down_blocks", "up_blocks"],
                     cross_attention_block_skip_range=4, cross_attention_timestep_skip_range=[0, 600])),
    dict(name="unet3d_temporal_only", model="unet3d", config=dict(temporal_attention_block_skip_range=2)),
    dict(name="hunyuan_cfg_two_calls", model="hunyuan_dit", calls_per_step=2,
         config=dict(spatial_attention_block_skip_range=3, cross_attention_block_skip_range=2)),
    dict(name="pixart_reset", model="pixart", repeat_after_reset=True,
         config=dict(spatial_attention_block_skip_range=2, cross_attention_block_skip_range=2,
                     cross_attention_timestep_skip_range=[100, 999])),
    dict(name="flux_spatial", model="flux", config=dict(spatial_attention_block_skip_range=2,
                                                        cross_attention_block_skip_range=2)),
]


def run_case(case, configs):
    import torch
    import diffusers
    from diffusers.hooks import HookRegistry, ModelHook, PyramidAttentionBroadcastConfig, apply_pyramid_attention_broadcast
    from diffusers.hooks._common import _ATTENTION_CLASSES

    model_case = configs[case["model"]]
    cls = getattr(diffusers, model_case["class"])
    torch.manual_seed(0)
    model = cls.from_config(model_case["config"])
    decisions = {}

    class Recorder(ModelHook):
        def __init__(self, path):
            super().__init__()
            self.path = path

        def new_forward(self, module, *args, **kwargs):
            decisions[self.path] += "C"
            return torch.zeros(1)

    paths = [p for p, m in model.named_modules() if isinstance(m, _ATTENTION_CLASSES)]
    for p in paths:
        decisions[p] = ""
        HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).register_hook(Recorder(p), "recorder")
    state = {"t": None}
    cfg = dict(case["config"])
    for k in list(cfg):
        if k.endswith("_range") and isinstance(cfg[k], list):
            cfg[k] = tuple(cfg[k])
    apply_pyramid_attention_broadcast(model, PyramidAttentionBroadcastConfig(**cfg, current_timestep_callback=lambda: state["t"]))
    hooked = [p for p in paths
              if HookRegistry.check_if_exists_or_initialize(model.get_submodule(p)).get_hook("pyramid_attention_broadcast")]
    runs = 2 if case.get("repeat_after_reset") else 1
    for run in range(runs):
        if run:
            HookRegistry.check_if_exists_or_initialize(model).reset_stateful_hooks()
        for t in SCHEDULE:
            state["t"] = t
            for _ in range(case.get("calls_per_step", 1)):
                for p in paths:
                    before = len(decisions[p])
                    model.get_submodule(p)(torch.zeros(1, 2, 4))
                    if len(decisions[p]) == before:
                        decisions[p] += "R"
    return dict(name=case["name"], model=case["model"], config=case["config"], schedule=SCHEDULE,
                calls_per_step=case.get("calls_per_step", 1), repeat_after_reset=bool(case.get("repeat_after_reset")),
                hooked=hooked, decisions={p: d for p, d in decisions.items() if p in hooked},
                unhooked=[p for p in paths if p not in hooked])


def main():
    with open(os.path.join(HERE, "models", "index.json")) as fh:
        configs = {c["name"]: c for c in json.load(fh)["cases"]}
    cases = [run_case(c, configs) for c in CASES]
    write_hook_fixture(OUT, "diffattn-hooks", "Tests/Fixtures/gen_hooks.py", cases)
    print(f"wrote {OUT}: {len(cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
