"""torch.distributed plumbing: the process group under torchrun, rank-aware helpers, and
the elastic launcher behind ``polymodal train --nproc-per-node N``.

gloo on CPU, nccl on CUDA. Processes are started by torch's own elastic launcher
(``torch.distributed.run``), never by polymodal.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def restart_count() -> int:
    """How many times the elastic agent has restarted this worker group."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def init_from_env(timeout_s: float = 120.0) -> DistContext:
    """Join the process group torchrun describes in the environment (idempotent)."""
    if not launched_by_torchrun():
        return SINGLE
    ctx = DistContext(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                      int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend="nccl" if cuda else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_s))
    return ctx


def current() -> DistContext:
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(),
                           int(os.environ.get("LOCAL_RANK", "0")))
    return SINGLE


def device_for(ctx: DistContext, requested: str | None) -> torch.device:
    """One GPU per process under torchrun (cuda:LOCAL_RANK); otherwise the usual choice."""
    from polymodal.device import pick_device

    if ctx.enabled and requested is None and torch.cuda.is_available():
        return torch.device("cuda", ctx.local_rank)
    return pick_device(requested)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. a stop request)."""
    if not current().enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def sum_across(values: list[float], device: torch.device) -> list[float]:
    if not current().enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def mean_over_ranks(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``total / count`` where ``count`` is summed over the ranks of a training step (the
    tokens of a global batch, say), times the world size: DDP averages the ranks'
    gradients, so that average is the gradient of the global mean, as in one process. Out
    of a training step (no grad: validation, where ranks may hold different numbers of
    batches) and in one process, the local mean."""
    ctx = current()
    if not ctx.enabled or not torch.is_grad_enabled():
        return total / count.clamp(min=1)
    global_count = count.detach().to(total.dtype).clone()
    dist.all_reduce(global_count)
    return total * ctx.world_size / global_count.clamp(min=1)


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` concatenated in rank order, gradients flowing back to each
    rank's own part (in-batch negatives over the global batch of a contrastive loss). In
    one process, or out of a training step, ``tensor`` itself."""
    if not current().enabled or not torch.is_grad_enabled():
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)


def barrier() -> None:
    if current().enabled:
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launch(worker_args: list[str], *, nproc_per_node: int, nnodes: str = "1",
           node_rank: int = 0, rdzv_endpoint: str | None = None, max_restarts: int = 0,
           monitor_interval: float = 0.5) -> None:
    """Run ``python -m polymodal.train WORKER_ARGS`` under torch's elastic launcher."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    from polymodal.errors import PolymodalError

    args: list[str] = [f"--nproc-per-node={nproc_per_node}", f"--nnodes={nnodes}",
                       f"--max-restarts={max_restarts}",
                       f"--monitor-interval={monitor_interval}"]
    if rdzv_endpoint:
        args += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}",
                 f"--node-rank={node_rank}"]
    else:
        args += ["--standalone"]
    args += ["-m", "polymodal.train", *worker_args]
    config = get_args_parser().parse_args(args)
    try:
        run(config)
    except ChildFailedError as exc:
        failures = "; ".join(
            f"rank {rank} exited with {failure.exitcode}" +
            (f" ({failure.message})" if failure.message else "")
            for rank, failure in sorted(exc.failures.items())
        )
        raise PolymodalError(f"distributed training failed: {failures}") from None

