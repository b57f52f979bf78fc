"""Training on two processes with DistributedDataParallel (gloo backend, CPU), through torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import argparse, os, sys
    import torch
    import torch.distributed as dist
    from repair.data import PairedDataset
    from repair.callbacks import TimeLimit
    from repair.train import fit, new_state
    from repair.train_cli import _distributed, run_train, wrap_ddp
    from repair.train_options_cli import add_train_arguments
    from tests.test_train import SIZE, photos

    torch.set_num_threads(1)
    out = sys.argv[1]
    rank, world, device = _distributed(torch.device("cpu"))
    assert world == 2 and dist.get_backend() == "gloo"
    for recipe in ("paper", "pix2pix"):
        state = new_state(recipe, ngf=4, ndf=8, image_size=SIZE, seed=0)
        wrap_ddp(state, device)
        train_ds = PairedDataset(photos(8), SIZE, train=True, seed=0)
        fit(state, train_ds, None, num_epochs=1, batch_size=2, progress=False, rank=rank,
            world=world)
        params = lambda net: {k: v.detach() for k, v in net.module.named_parameters()}
        torch.save({"G": params(state.net_G), "D": params(state.net_D),
                    "images_seen": state.images_seen, "steps": state.global_step},
                   f"{out}/{recipe}_rank{rank}.pt")
    # a stop asked for on one process (a time limit) stops every process at the same step
    state = new_state("l1", ngf=4, ndf=8, image_size=SIZE, seed=0)
    wrap_ddp(state, device)
    fit(state, PairedDataset(photos(8), SIZE, train=True, seed=0), None, num_epochs=2,
        batch_size=1, progress=False, rank=rank, world=world,
        callbacks=[TimeLimit(0)] if rank == 0 else [])
    torch.save({"steps": state.global_step}, f"{out}/stop_rank{rank}.pt")
    args = add_train_arguments(argparse.ArgumentParser()).parse_args(
        ["--profile", "tiny", "--recipe", "pix2pix", "--device", "cpu", "--workers", "0",
         "--image-size", "32", "--batch-size", "2", "--max-steps", "2", "--epochs", "3",
         "--quiet", "--out", f"{out}/cli"])
    sys.exit(run_train(args))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available() or
                    not torch.distributed.is_gloo_available(), reason="no gloo backend")
def test_two_processes_train_identical_replicas(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script),
           str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for recipe in ("paper", "pix2pix"):
        r0 = torch.load(tmp_path / f"{recipe}_rank0.pt", weights_only=True)
        r1 = torch.load(tmp_path / f"{recipe}_rank1.pt", weights_only=True)
        assert r0["steps"] == 2 and r0["images_seen"] == 8        # 8 photos sharded 4 + 4
        for net in ("G", "D"):
            # parameters move in lockstep (averaged gradients); BatchNorm running statistics
            # are each process's own until DDP broadcasts rank 0's at the next forward
            for name, value in r0[net].items():
                assert torch.equal(value, r1[net][name]), f"{recipe} {net}.{name} differs"
    for rank in (0, 1):
        assert torch.load(tmp_path / f"stop_rank{rank}.pt", weights_only=True)["steps"] == 1
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["images_seen"] == 8   # 2 steps x 2 images x 2 ranks
    assert (tmp_path / "cli" / "last.pt").exists()
    assert not (tmp_path / "cli" / "rank1").exists()
