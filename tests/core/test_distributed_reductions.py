"""The two reductions that make a global batch over ranks equal one process's batch, checked
exactly (float64) on two gloo processes: ``mean_over_ranks`` (a token mean over ranks that
hold different numbers of tokens) and ``gather_with_grad`` (in-batch negatives from every
rank). DDP averages the ranks' gradients; each worker does that average by hand, and the
result must be the gradient of the one-process loss over the whole batch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from polymodal.distributed import gather_with_grad, mean_over_ranks
from tests.conftest import free_port

WORLD = 2
TOKENS = [3, 7]  # ranks hold different numbers of tokens
ROWS = 3  # retrieval pairs per rank


def _token_data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(sum(TOKENS), 4, generator=generator, dtype=torch.float64)
    y = torch.randn(sum(TOKENS), generator=generator, dtype=torch.float64)
    return x, y


def _pair_data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return (torch.randn(WORLD * ROWS, 5, generator=generator, dtype=torch.float64),
            torch.randn(WORLD * ROWS, 5, generator=generator, dtype=torch.float64))


def _token_grad(x: torch.Tensor, y: torch.Tensor, distributed: bool) -> torch.Tensor:
    w = torch.linspace(-1, 1, 4, dtype=torch.float64).requires_grad_()
    per_token = (x @ w - y) ** 2
    if distributed:
        loss = mean_over_ranks(per_token.sum(), torch.tensor(len(per_token)))
    else:
        loss = per_token.mean()
    loss.backward()
    return w.grad


def _contrastive_grad(images: torch.Tensor, texts: torch.Tensor, offset: int
                      ) -> torch.Tensor:
    project = torch.eye(5, dtype=torch.float64).requires_grad_()
    image = images @ project
    text = gather_with_grad(texts @ project)  # columns: every rank's texts
    logits = image @ text.T
    labels = torch.arange(len(images)) + offset  # this rank's pairs within the gathered batch
    F.cross_entropy(logits, labels).backward()
    return project.grad


def _worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        x, y = _token_data()
        start = sum(TOKENS[:rank])
        token = _token_grad(x[start:start + TOKENS[rank]], y[start:start + TOKENS[rank]],
                            distributed=True)
        images, texts = _pair_data()
        rows = slice(rank * ROWS, (rank + 1) * ROWS)
        pairs = _contrastive_grad(images[rows], texts[rows], offset=rank * ROWS)
        for grad in (token, pairs):  # what DDP does: the mean of the ranks' gradients
            dist.all_reduce(grad)
            grad /= WORLD
        if rank == 0:
            Path(out).write_text(json.dumps({"token": token.tolist(),
                                             "pairs": pairs.tolist()}))
        dist.barrier()  # both ranks leave together: rank 0 hosts the TCP store
    finally:
        dist.destroy_process_group()
    # Gloo's threads can abort the interpreter's own exit ("terminate called without an
    # active exception", about one run in three on this machine); the work is done and
    # written, so the worker leaves without running exit handlers.
    os._exit(0)


def test_reductions_over_two_ranks_equal_one_process_batch(tmp_path: Path) -> None:
    out = tmp_path / "grads.json"
    mp.spawn(_worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    got = json.loads(out.read_text())

    x, y = _token_data()
    expected_token = _token_grad(x, y, distributed=False)
    images, texts = _pair_data()
    expected_pairs = _contrastive_grad(images, texts, offset=0)
    torch.testing.assert_close(torch.tensor(got["token"], dtype=torch.float64),
                               expected_token, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.tensor(got["pairs"], dtype=torch.float64),
                               expected_pairs, rtol=1e-12, atol=1e-12)
    # The local mean (what a per-rank reduction would give) is another gradient: the
    # check can fail.
    local = [_token_grad(x[:3], y[:3], False), _token_grad(x[3:], y[3:], False)]
    assert not torch.allclose((local[0] + local[1]) / 2, expected_token, atol=1e-3)
    halves = [_contrastive_grad(images[r * ROWS:(r + 1) * ROWS], texts[r * ROWS:(r + 1) * ROWS],
                                offset=0) for r in range(WORLD)]  # no gather: fewer negatives
    assert not torch.allclose((halves[0] + halves[1]) / 2, expected_pairs, atol=1e-3)
