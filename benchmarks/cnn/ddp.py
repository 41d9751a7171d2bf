"""Data-parallel training of one optimizer configuration with DistributedDataParallel (gloo on CPU,
nccl on CUDA), one process per rank under torchrun:

    torchrun --nproc_per_node=2 -m benchmarks.cnn.ddp --optimizer Adam --lr 1e-3 --out results/cnn-ddp
    torchrun --nproc_per_node=2 --master-addr=127.0.0.1 --master-port=29500 -m benchmarks.cnn.ddp ...

The loop is train.py's: each rank trains on its DistributedSampler shard with batch_size // world_size
images per step (the global batch is the single-process one). After training every rank compares its
parameters, BN buffers and optimizer state (exp_avg, ...) with rank 0's; --save-state DIR also writes
them to DIR/rank<r>.pt. Rank 0 writes the per-epoch rows to OUT/ddp_epochs.csv."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

from benchmarks import optimizer_specs
from benchmarks.resume import write_csv

from .budget import budget_for
from .data import DATASETS, DataFileError, DataNotFoundError, load_dataset
from .executor import VALIDATION_FRACTION
from .sweep import row_metadata
from .train import World, train_run


def replica_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Everything that must agree across ranks: parameters, buffers and every optimizer state tensor."""
    out = {f"param {n}": p.detach() for n, p in model.named_parameters()}
    out |= {f"buffer {n}": b for n, b in model.named_buffers()}
    for index, state in optimizer.state_dict()["state"].items():
        out |= {f"state {index}.{k}": v for k, v in state.items() if torch.is_tensor(v)}
    return out


def replica_mismatches(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Names of the tensors that differ from rank 0's on any rank (the same list on every rank)."""
    bad = []
    tensors = replica_tensors(model, optimizer)
    for t in tensors.values():
        ref = t.clone()
        dist.broadcast(ref, 0)
        bad.append(not torch.equal(ref, t))
    flags = torch.tensor(bad, dtype=torch.int32, device=next(iter(tensors.values())).device)
    dist.all_reduce(flags)  # how many ranks disagree, per tensor
    return [name for name, n in zip(tensors, flags.tolist(), strict=True) if n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchrun ... -m benchmarks.cnn.ddp", description=__doc__)
    parser.add_argument("--dataset", default="digits", choices=DATASETS)
    parser.add_argument("--data-dir")
    parser.add_argument("--optimizer", default="Adam", choices=list(optimizer_specs.SPECS))
    parser.add_argument("--lr", type=float, help="default: the centre of the optimizer's sweep")
    parser.add_argument("--epochs", type=int, help="default: the dataset's budget")
    parser.add_argument("--batch-size", type=int, help="global batch (default: the dataset's budget)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--out", help="rank 0 writes OUT/ddp_epochs.csv")
    parser.add_argument("--save-state", metavar="DIR", help="each rank writes DIR/rank<r>.pt")
    args = parser.parse_args(argv)
    if "RANK" not in os.environ:
        parser.error("run under torchrun (RANK, WORLD_SIZE and MASTER_ADDR come from it)")

    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if args.device == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        device = torch.device("cpu")
    torch.set_num_threads(args.threads)
    budget = budget_for(args.dataset, args.quick, args.epochs)
    batch_size = args.batch_size or budget.batch_size
    spec = optimizer_specs.SPECS[args.optimizer]
    lr = args.lr if args.lr is not None else spec.cnn_lr
    try:
        data = load_dataset(args.dataset, args.data_dir).subset(budget.max_train, budget.max_test)
    except (DataNotFoundError, DataFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    data = data.validation_split(VALIDATION_FRACTION).to(device)

    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=5))
    try:
        result = train_run(
            spec,
            lr,
            data,
            seed=args.seed,
            epochs=budget.epochs,
            batch_size=batch_size,
            device=device,
            world=World(rank, size),
        )
        mismatched = replica_mismatches(result.model.module, result.optimizer)
        if args.save_state:
            os.makedirs(args.save_state, exist_ok=True)
            tensors = replica_tensors(result.model.module, result.optimizer)
            torch.save(
                {k: v.cpu() for k, v in tensors.items()}, os.path.join(args.save_state, f"rank{rank}.pt")
            )
        if rank == 0:
            import pandas as pd

            last = result.records[-1]
            seconds = sum(r["train_seconds"] for r in result.records)
            print(
                f"ddp: {size} ranks, {args.optimizer} lr {lr:g}, {budget.epochs} epochs: test accuracy "
                f"{100 * last['test_accuracy']:.1f}%, training {seconds:.2f} s; "
                + ("replicas identical" if not mismatched else f"replicas DIFFER in {mismatched}")
            )
            if args.out:
                frame = pd.DataFrame(result.records).assign(
                    stage="ddp",
                    dataset=args.dataset,
                    optimizer=spec.name,
                    hyperparams=spec.hyper_json(),
                    lr=lr,
                    seed=args.seed,
                    **data.sizes(),
                    epochs_budget=budget.epochs,
                    batch_size=batch_size,
                    world_size=size,
                    backend=dist.get_backend(),
                    replicas_identical=not mismatched,
                    **row_metadata(str(device)),
                )
                write_csv(frame, os.path.join(args.out, "ddp_epochs.csv"))
    finally:
        dist.destroy_process_group()
    return 0 if not mismatched else 1


if __name__ == "__main__":
    sys.exit(main())
