"""Paper 004: accuracy vs programming imprecision alpha, before and after detector retraining
(figs. 3a / 4a / 5a): a fully-connected tanh network with one hidden layer of N_FE neurons is
trained on MNIST; its feature extractor (the hidden layer) is programmed with
``g(w) = (1 + alpha N(0, 1)) w`` and frozen, and the detector (the output layer) is retrained.
Each point averages several programming realizations (the paper averaged 100 runs).

    .venv/bin/python benchmarks/reproduce/seed004_detector.py --threads 2   # 3 seeds: ~7 min on 2 quiet cores
"""

from __future__ import annotations

import copy
import time

from _common import log, machine, mean_std, parse, parser, pyplot, write

from dse.trial.config import DetectorRetrainAlgorithm, parse_trial_config
from dse.trial.run import prepare
from dse.trial.training import evaluate


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--train", type=int, default=20000, help="training examples (of 60,000)")
    p.add_argument("--test", type=int, default=5000, help="test examples (of 10,000)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--retrain-epochs", type=int, default=3)
    p.add_argument("--hidden", type=int, nargs="+", default=[10, 50, 200], help="N_FE values")
    p.add_argument("--alpha", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    p.add_argument("--realizations", type=int, default=5, help="programming realizations per point")
    p.set_defaults(seeds=3)
    args = parse(p)
    if args.quick:
        args.seeds = 1
        args.train, args.test, args.epochs, args.retrain_epochs = 300, 200, 1, 1
        args.hidden, args.alpha, args.realizations = [10], [0.0, 1.0], 2
    start = time.time()
    rows = []
    for n_fe in args.hidden:
        for seed in range(args.seeds):
            config = {
                "dataset": {"name": "mnist", "data_dir": args.data_dir, "max_train_samples": args.train,
                            "max_test_samples": args.test},
                "model": {"name": "fcnn", "hidden": [n_fe], "activation": "tanh"},
                "hardware": "ideal",
                "training": {"epochs": args.epochs, "batch_size": 32, "lr": 0.05, "momentum": 0.9},
                "seed": seed,
            }
            trained = prepare(parse_trial_config(config))
            trained.fit()
            for alpha in args.alpha:
                before, after = [], []
                for r in range(args.realizations):
                    run = copy.deepcopy(trained)
                    out = run.retrain_detector(DetectorRetrainAlgorithm(
                        alpha=alpha, retrain_layers=1, retrain_epochs=args.retrain_epochs), seed=seed * 10_000 + r)
                    before.append(out["programmed_test_accuracy"])
                    after.append(evaluate(run.model, run.test, 1000)[0])
                rows.append({"n_fe": n_fe, "seed": seed, "alpha": alpha,
                             "clean_test_accuracy": out["pretrained_test_accuracy"],
                             "degraded_test_accuracy": mean_std(before)[0], "degraded_std": mean_std(before)[1],
                             "retrained_test_accuracy": mean_std(after)[0], "retrained_std": mean_std(after)[1]})
                log(f"N_FE {n_fe:<4} alpha {alpha:<5} degraded {rows[-1]['degraded_test_accuracy']:.3f}  "
                    f"retrained {rows[-1]['retrained_test_accuracy']:.3f}")

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for n_fe in args.hidden:
        pts = [r for r in rows if r["n_fe"] == n_fe and r["seed"] == 0]
        a = [r["alpha"] for r in pts]
        axes[0].plot(a, [r["degraded_test_accuracy"] for r in pts], marker="o", label=f"N_FE={n_fe}")
        axes[1].plot(a, [r["retrained_test_accuracy"] for r in pts], marker="o", label=f"N_FE={n_fe}")
        axes[2].plot(a, [r["retrained_test_accuracy"] - r["degraded_test_accuracy"] for r in pts], marker="o",
                     label=f"N_FE={n_fe}")
    for ax, title in zip(axes, ("fig. 3a: programmed feature extractor", "fig. 4a: detector retrained",
                                "fig. 5a: gain of retraining")):
        ax.set_xlabel("alpha")
        ax.set_title(f"paper 004 {title}", fontsize=9)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy")
    fig.tight_layout()
    write(args.out, "seed004_detector", {
        "paper": "004", "experiment": "accuracy vs alpha before and after detector retraining (FCNN, MNIST)",
        "scale": {"train": args.train, "test": args.test, "epochs": args.epochs,
                  "retrain_epochs": args.retrain_epochs, "realizations": args.realizations, "seeds": args.seeds},
        "rows": rows, "elapsed_s": time.time() - start, "machine": machine(),
    }, fig)


if __name__ == "__main__":
    main()
