"""bench/compare: the PyTorch side of the comparison (see README.md).

    torchrun --standalone --nproc-per-node 4 torch_pipe.py     # the pipeline steps
    python torch_pipe.py --micro                              # one stage pass alone

Every stage is one nn.Linear(64, 64) on micro-batches of 8 rows; the last stage's loss is
F.mse_loss (mean over the micro-batch), and the schedule's default scale_grads=True divides
the gradients by m. One step is `zero_grad()` + `schedule.step(..., return_outputs=False)`:
forward and backward of all m micro-batches (rank 0 passes the whole batch, the last rank
the target and a list for the losses). CPU, gloo,
one process per rank, one intra-op thread per process (4 processes share the cores).

Prints, from rank 0, one line per schedule and m:
    RESULT {"runtime": "torch", "schedule": ..., "m": ..., "step_ms": ..., "check": "OK"}
step_ms: the median over timed iterations (after warm-up) of the slowest rank's wall time of
one step (a barrier before each step). check: the gradients of every rank's stages after
one step, against the same model run sequentially (nn.Sequential, whole batch) on that rank.
"""

import copy
import json
import os
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore")  # e.g. "Failed to initialize NumPy" (numpy is not needed)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

P = 4  # ranks
WIDTH = 64  # features
ROWS = 8  # rows per micro-batch
WARMUP = int(os.environ.get("WARMUP", "20"))
ITERS = int(os.environ.get("ITERS", "100"))


def micro():
    """F+B of one stage pass alone: the layer with autograd (what a pipeline stage runs),
    and the same math as three raw ops without autograd."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lin = nn.Linear(WIDTH, WIDTH)
    x = torch.randn(ROWS, WIDTH, requires_grad=True)  # a received activation needs its gradient
    g = torch.randn(ROWS, WIDTH)

    def autograd_pass():
        y = lin(x)
        torch.autograd.backward(y, g)

    w, b = lin.weight.detach(), lin.bias.detach()
    xd = x.detach()
    gw, gb = torch.zeros_like(w), torch.zeros_like(b)

    def raw_pass():
        torch.addmm(b, xd, w.t())  # forward
        torch.mm(g, w)  # input gradient
        gw.addmm_(g.t(), xd)  # weight gradient, accumulated
        gb.add_(g.sum(0))

    for name, fn in (("torch autograd", autograd_pass), ("torch raw ops", raw_pass)):
        reps, per_pass = 2000, []
        for block in range(25):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            dt = time.perf_counter() - t0
            if block >= 5:
                per_pass.append(dt * 1e6 / reps)
        print("MICRO " + json.dumps({"runtime": name, "fb_us": statistics.median(per_pass)}), flush=True)


def bench(name, schedule_cls, m, rank, group):
    from torch.distributed.pipelining import PipelineStage

    v = 2 if name == "Interleaved1F1B" else 1
    stages = P * v
    torch.manual_seed(1234)  # the same model and data on every rank
    layers = [nn.Linear(WIDTH, WIDTH) for _ in range(stages)]
    ref_layers = copy.deepcopy(layers)
    x = torch.randn(m * ROWS, WIDTH)
    target = torch.randn(m * ROWS, WIDTH)

    mine = [s for s in range(stages) if s % P == rank]  # stage s on rank s mod p (loop placement)
    pstages = [PipelineStage(layers[s], s, stages, torch.device("cpu"), group=group) for s in mine]
    if v == 1:
        sched = schedule_cls(pstages[0], n_microbatches=m, loss_fn=F.mse_loss)
    else:
        sched = schedule_cls(pstages, n_microbatches=m, loss_fn=F.mse_loss)
    first, last = 0 in mine, stages - 1 in mine

    def one_step():
        for s in mine:
            layers[s].zero_grad()
        args = (x,) if first else ()
        kwargs = {"target": target, "losses": []} if last else {}
        sched.step(*args, return_outputs=False, **kwargs)  # no merged output: pipesched makes none

    # The check: one step against the sequential model (whole batch: the mean of the
    # micro-batch MSEs is the MSE of the batch, as all micro-batches have ROWS rows).
    one_step()
    seq = nn.Sequential(*ref_layers)
    F.mse_loss(seq(x), target).backward()
    diff, scale = 0.0, 1e-30
    for s in mine:
        for p, q in zip(layers[s].parameters(), ref_layers[s].parameters()):
            diff = max(diff, (p.grad - q.grad).abs().max().item())
            scale = max(scale, q.grad.abs().max().item())
    rel = torch.tensor([diff / scale], dtype=torch.float64)
    dist.all_reduce(rel, op=dist.ReduceOp.MAX)

    times = []
    slowest = torch.zeros(1, dtype=torch.float64)
    for it in range(WARMUP + ITERS):
        dist.barrier()
        t0 = time.perf_counter()
        one_step()
        slowest[0] = (time.perf_counter() - t0) * 1e3
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        if it >= WARMUP:
            times.append(slowest.item())

    # Actions the schedule executes, counted as pipesched counts them: F and B of every stage
    # and micro-batch, plus a send and a receive for each boundary crossing (activation
    # forward, gradient back): 2*S*m + 4*(S-1)*m (every boundary crosses ranks here).
    actions = 2 * stages * m + 4 * (stages - 1) * m
    if rank == 0:
        rec = {
            "runtime": "torch",
            "schedule": name,
            "m": m,
            "stages": stages,
            "actions": actions,
            "step_ms": statistics.median(times),
            "min_ms": min(times),
            "iters": ITERS,
            "check": "OK" if rel.item() <= 1e-4 else "FAILED",
            "grad_rel_diff": rel.item(),
        }
        print("RESULT " + json.dumps(rec), flush=True)


def main():
    if "--micro" in sys.argv:
        micro()
        return
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    assert world == P, f"run with {P} processes (torchrun --nproc-per-node {P})"
    from torch.distributed.pipelining import Schedule1F1B, ScheduleGPipe, ScheduleInterleaved1F1B

    group = dist.group.WORLD
    for name, cls in (("1F1B", Schedule1F1B), ("GPipe", ScheduleGPipe), ("Interleaved1F1B", ScheduleInterleaved1F1B)):
        for m in (8, 32):
            try:
                bench(name, cls, m, rank, group)
            except Exception as e:  # report and go on with the next schedule
                if rank == 0:
                    print("RESULT " + json.dumps({"runtime": "torch", "schedule": name, "m": m, "error": repr(e)}),
                          flush=True)
                raise
            dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
