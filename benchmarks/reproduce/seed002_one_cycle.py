"""Paper 002, Table 1 (MNIST rows): one-cycle (super-convergence) vs step learning rate for LeNet
on MNIST with the ideal (floating point), semi-ideal and Gokmen-Vlasov devices.

Paper settings: step LR 0.01 x0.94 every 2 epochs, momentum 0.9; one-cycle LR 0.01 -> 0.1 with
momentum 0.95 -> 0.85, rising for 5 of 12 epochs; weight decay 5e-4, batch 512. Here both
schedules get the same (small) budget of epochs on a subset of MNIST, with batch 64 so that a
subset still gives enough steps per epoch; the paper's step rows ran 50 and 85 epochs.

    .venv/bin/python benchmarks/reproduce/seed002_one_cycle.py            # ~20 min on 2 busy cores
"""

from __future__ import annotations

import time

from _common import log, machine, mean_std, parse, parser, pyplot, write

from dse.trial.run import run_trial

DEVICES = {"ideal": "ideal", "semi_ideal": "semi_ideal", "gokmen_vlasov": "gokmen_vlasov"}
PAPER = {  # Table 1, MNIST / LeNet: accuracy (%) N, SI, GV
    "step 50 epochs": (84.44, 79.78, 82.99), "step 85 epochs": (92.97, 92.02, 91.92),
    "one_cycle 12 epochs": (98.59, 89.89, 90.07), "one_cycle 25 epochs": (98.89, 93.74, 94.25),
}


def trial(args, *, hardware: str, schedule: str, seed: int) -> dict:
    training = {"epochs": args.epochs, "batch_size": args.batch, "momentum": 0.9, "weight_decay": 5e-4}
    if schedule == "step":
        training |= {"lr": 0.01, "schedule": {"type": "step", "step_size": 2, "gamma": 0.94}}
    else:
        rise = max(1, round(args.epochs * 5 / 12))  # the paper's 5 of 12 epochs
        training |= {"lr": 0.1, "schedule": {"type": "one_cycle", "div_factor": 10, "step_epochs": rise,
                                             "momentum_max": 0.95, "momentum_min": 0.85}}
    return {
        "dataset": {"name": "mnist", "data_dir": args.data_dir, "max_train_samples": args.train,
                    "max_test_samples": args.test},
        "model": {"name": "lenet5"},
        "hardware": hardware,
        "training": training,
        "evaluation": {"repeats": 1, "drift_times_s": [], "batch_size": 500},
        "seed": seed,
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--train", type=int, default=6000, help="training examples (of 60,000)")
    p.set_defaults(seeds=2)
    p.add_argument("--test", type=int, default=1000, help="test examples (of 10,000)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=64)
    args = parse(p)
    if args.quick:
        args.train, args.test, args.epochs = 200, 100, 2
    start = time.time()
    rows = []
    for name, preset in DEVICES.items():
        for schedule in ("step", "one_cycle"):
            accs, curves = [], []
            for seed in range(args.seeds):
                curve: list[float] = []
                m = run_trial(trial(args, hardware=preset, schedule=schedule, seed=seed),
                              lambda r, c=curve: c.append(r["accuracy"]), num_threads=args.threads)
                accs.append(m["test_accuracy"])
                curves.append(curve)
            mean, std = mean_std(accs)
            rows.append({"device": name, "schedule": schedule, "epochs": args.epochs, "test_accuracy": mean,
                         "test_accuracy_std": std, "val_accuracy_per_epoch": curves[0],
                         "train_time_s": m["train_time_s"]})
            log(f"{name:<14} {schedule:<9} test accuracy {mean:.4f} ± {std:.4f} ({m['train_time_s']:.0f} s)")

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        ax.plot(range(1, args.epochs + 1), row["val_accuracy_per_epoch"],
                "-" if row["schedule"] == "one_cycle" else "--", marker="o", markersize=3,
                label=f"{row['device']} {row['schedule']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"paper 002: LeNet on MNIST ({args.train} training images)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write(args.out, "seed002_one_cycle", {
        "paper": "002", "experiment": "one-cycle vs step LR, LeNet / MNIST, ideal / semi-ideal / Gokmen-Vlasov",
        "scale": {"train": args.train, "test": args.test, "epochs": args.epochs, "batch": args.batch,
                  "seeds": args.seeds},
        "rows": rows, "paper_table1_mnist_percent": PAPER, "elapsed_s": time.time() - start, "machine": machine(),
    }, fig)


if __name__ == "__main__":
    main()
