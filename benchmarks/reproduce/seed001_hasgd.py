"""Paper 001: HA-SGD vs SGD, accuracy vs perturbation std (fig. 7) and under a device mean shift
(fig. 8), with paper 001's perturbation model ``W + (mean + std N(0, 1)) * max|W_tile|``.

Networks are trained with plain SGD and with HA-SGD (L perturbation samples per step) at several
training noise levels, then each is evaluated at every test noise level over R realizations. The
paper used WideResNet-28 on CIFAR-100; this runs an MNIST FCNN (784-256-128-10) on a subset.

    .venv/bin/python benchmarks/reproduce/seed001_hasgd.py --threads 2   # 3 seeds: ~6 min on 2 quiet cores
"""

from __future__ import annotations

import time

from _common import log, machine, mean_std, parse, parser, pyplot, write

from dse.trial.config import parse_trial_config
from dse.trial.run import prepare
from dse.trial.training import evaluate
from simulator import inference
from simulator.configs import AdditiveProgNoise


def base(args, seed: int, algorithm: dict) -> dict:
    return {
        "dataset": {"name": "mnist", "data_dir": args.data_dir, "max_train_samples": args.train,
                    "max_test_samples": args.test},
        "model": {"name": "fcnn", "hidden": [256, 128]},
        "hardware": "ideal",
        "training": {"epochs": args.epochs, "batch_size": 32, "lr": 0.02, "momentum": 0.9},
        "algorithm": algorithm,
        "seed": seed,
    }


def noisy_accuracy(run, std: float, mean: float, repeats: int, seed: int) -> float:
    accs = []
    for r in range(repeats):
        inference.program(run.model, seed=seed * 1000 + r, noise=AdditiveProgNoise(std=std, mean_shift=mean))
        accs.append(evaluate(run.model, run.test, 1000)[0])
        inference.reset(run.model)
    return mean_std(accs)[0]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--train", type=int, default=20000, help="training examples (of 60,000)")
    p.add_argument("--test", type=int, default=5000, help="test examples (of 10,000)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--samples", type=int, default=2, help="HA-SGD perturbation samples per step (L)")
    p.add_argument("--repeats", type=int, default=5, help="noise realizations per evaluation (R)")
    p.add_argument("--train-std", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    p.add_argument("--test-std", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3])
    p.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.05, 0.1])
    p.set_defaults(seeds=3)
    args = parse(p)
    if args.quick:
        args.seeds = 1
        args.train, args.test, args.epochs, args.repeats = 300, 200, 1, 2
        args.train_std, args.test_std, args.shifts = [0.1], [0.0, 0.1], [0.0, 0.1]
    start = time.time()
    # fig. 7: zero-mean perturbation, accuracy vs test std per training std.
    variance = []
    for train_std in [0.0, *args.train_std]:
        algo = {"type": "analog_sgd"} if train_std == 0 else {"type": "ha_sgd", "std": train_std,
                                                              "samples": args.samples}
        curves = []
        for seed in range(args.seeds):
            run = prepare(parse_trial_config(base(args, seed, algo)))
            run.fit()
            curves.append([noisy_accuracy(run, s, 0.0, args.repeats, seed) for s in args.test_std])
        row = {"train_std": train_std, "algorithm": algo["type"],
               "test_accuracy": [mean_std([c[i] for c in curves])[0] for i in range(len(args.test_std))],
               "test_accuracy_std": [mean_std([c[i] for c in curves])[1] for i in range(len(args.test_std))]}
        variance.append(row)
        log(f"train std {train_std:<5}: " + "  ".join(f"{s}:{a:.3f}" for s, a in zip(args.test_std, row["test_accuracy"])))
    # fig. 8: test with 5% noise and a mean shift of the largest shift; train with each shift.
    test_shift, test_std = max(args.shifts), 0.05
    shift_rows = []
    for train_shift in args.shifts:
        for algo in ({"type": "analog_sgd"}, {"type": "ha_sgd", "std": test_std, "mean_shift": train_shift,
                                              "samples": args.samples}):
            if algo["type"] == "analog_sgd" and train_shift != args.shifts[0]:
                continue  # plain SGD does not see the shift: one row is enough
            accs = []
            for seed in range(args.seeds):
                run = prepare(parse_trial_config(base(args, seed, algo)))
                run.fit()
                accs.append(noisy_accuracy(run, test_std, test_shift, args.repeats, seed))
            mean, std = mean_std(accs)
            shift_rows.append({"algorithm": algo["type"], "train_shift": train_shift if algo["type"] == "ha_sgd"
                               else None, "test_shift": test_shift, "test_std": test_std,
                               "test_accuracy": mean, "test_accuracy_std": std})
            log(f"{algo['type']:<10} train shift {train_shift}: accuracy at shift {test_shift} = {mean:.3f}")

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for row in variance:
        label = "SGD" if row["algorithm"] == "analog_sgd" else f"HA-SGD, train std {row['train_std']}"
        ax1.plot(args.test_std, row["test_accuracy"], marker="o", label=label)
    ax1.set_xlabel("test perturbation std (relative to max |w| per tile)")
    ax1.set_ylabel("test accuracy")
    ax1.set_title("paper 001 fig. 7: zero-mean perturbation")
    ax1.legend(fontsize=8)
    labels = ["SGD" if r["algorithm"] == "analog_sgd" else f"HA-SGD shift {r['train_shift']}" for r in shift_rows]
    ax2.bar(labels, [r["test_accuracy"] for r in shift_rows], yerr=[r["test_accuracy_std"] for r in shift_rows])
    ax2.set_ylabel("test accuracy")
    ax2.set_title(f"paper 001 fig. 8: tested at std {test_std}, shift {test_shift}")
    ax2.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    write(args.out, "seed001_hasgd", {
        "paper": "001", "experiment": "HA-SGD vs SGD: accuracy vs perturbation std, and under a mean shift",
        "scale": {"train": args.train, "test": args.test, "epochs": args.epochs, "samples_L": args.samples,
                  "repeats_R": args.repeats, "seeds": args.seeds},
        "test_std": args.test_std, "variance": variance, "mean_shift": shift_rows,
        "elapsed_s": time.time() - start, "machine": machine(),
    }, fig)


if __name__ == "__main__":
    main()
