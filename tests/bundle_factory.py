"""An untrained but complete policy bundle for tests that need one (export path of the real CLI)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from legion_core.training.agent.agent import LegionAgent
from legion_core.training.agent.config import AgentConfig
from legion_core.training.export import agent_weights, build_contract, write_bundle
from legion_core.training.trainer import TrainConfig


def make_tiny_bundle(run_dir: Path, out: Path, tasks=("reach", "drawer-close"), seed: int = 3):
    """Returns (agent, embeddings, bundle_dir)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(name="t", tasks=list(tasks))
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump({"preset": "presets/x.yaml", "config": dataclasses.asdict(cfg)})
    )
    agent = LegionAgent(AgentConfig(seed=seed))
    rng = np.random.default_rng(0)
    agent.fit_dpmm(np.concatenate([rng.normal(0, 0.01, (300, 10)), rng.normal(1, 0.01, (300, 10))]))
    contract, emb = build_contract(run_dir, agent, dataclasses.asdict(cfg), {"env_steps": 0}, out.name)
    write_bundle(out, contract, agent_weights(agent, emb))
    return agent, emb, out
